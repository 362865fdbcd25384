//! Runs a command in its own process group with a timeout, capturing its
//! output up to a cap. A timeout kills the whole group, children included.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid, User};

/// The PATH commands get: the agent's own environment is not inherited.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Shell text, run with `/bin/sh -c`.
    pub script: String,
    /// When set, run this program with these arguments instead of a shell
    /// (no shell parsing at all: arguments are passed as they are).
    pub argv: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub cwd: Option<String>,
    /// Run as this user (name or uid), with its primary and supplementary groups.
    pub user: Option<String>,
    pub timeout: Duration,
    /// Bytes of each stream kept (the rest is counted, not kept).
    pub capture_limit: usize,
    /// Set from elsewhere to kill the whole process group (a cancel).
    pub cancel: Option<Arc<AtomicBool>>,
    /// Receives the process group id once the command has started.
    pub started: Option<std::sync::mpsc::Sender<u32>>,
    /// Written to the command's standard input, which is then closed
    /// (otherwise stdin is /dev/null). For secrets that must not appear in
    /// the argument list, which every local user can read.
    pub stdin: Option<Vec<u8>>,
}

impl Job {
    pub fn shell(script: impl Into<String>, timeout: Duration) -> Self {
        Self {
            script: script.into(),
            argv: None,
            env: Vec::new(),
            cwd: None,
            user: None,
            timeout,
            capture_limit: 64 * 1024,
            cancel: None,
            started: None,
            stdin: None,
        }
    }

    /// A program and its arguments, run without a shell.
    pub fn argv<S: AsRef<str>>(argv: &[S], timeout: Duration) -> Self {
        let mut job = Self::shell(String::new(), timeout);
        job.argv = Some(argv.iter().map(|a| a.as_ref().to_string()).collect());
        job
    }
}

/// How the command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Code(i32),
    Signal(i32),
    TimedOut,
    /// Killed because `Job::cancel` was set.
    Cancelled,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub exit: Exit,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// True if either stream was longer than the cap.
    pub truncated: bool,
    pub duration: Duration,
}

impl Outcome {
    pub fn success_in(&self, codes: &[i32]) -> bool {
        matches!(self.exit, Exit::Code(c) if codes.contains(&c))
    }

    /// The last `n` lines of stderr, or of stdout when stderr is empty.
    pub fn tail(&self, n: usize) -> String {
        let src = if self.stderr.iter().any(|b| !b.is_ascii_whitespace()) { &self.stderr } else { &self.stdout };
        let text = String::from_utf8_lossy(src);
        let lines: Vec<&str> = text.trim_end().lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub fn describe_exit(&self) -> String {
        match self.exit {
            Exit::Code(c) => format!("exit code {c}"),
            Exit::Signal(s) => format!("killed by signal {s}"),
            Exit::TimedOut => format!("timed out after {:.0?}; its process group was killed", self.duration),
            Exit::Cancelled => "cancelled; its process group was killed".to_string(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("user `{0}` does not exist")]
    NoUser(String),
    #[error("cannot start the command: {0}")]
    Spawn(std::io::Error),
    #[error("while waiting for the command: {0}")]
    Wait(std::io::Error),
}

struct Identity {
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: String,
    name: String,
}

fn identity(user: &str) -> Result<Identity, RunError> {
    let u = match user.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(user),
    }
    .ok()
    .flatten()
    .ok_or_else(|| RunError::NoUser(user.to_string()))?;
    let cname = std::ffi::CString::new(u.name.clone()).map_err(|_| RunError::NoUser(user.to_string()))?;
    let groups = nix::unistd::getgrouplist(&cname, u.gid).unwrap_or_else(|_| vec![u.gid]);
    Ok(Identity { uid: u.uid, gid: u.gid, groups, home: u.dir.to_string_lossy().into_owned(), name: u.name })
}

/// Runs the job to completion or timeout.
pub fn run(job: &Job) -> Result<Outcome, RunError> {
    let mut cmd = match &job.argv {
        Some(argv) => {
            let Some((program, args)) = argv.split_first() else {
                return Err(RunError::Spawn(std::io::Error::other("empty command")));
            };
            let mut c = Command::new(program);
            c.args(args);
            c
        }
        None => {
            let mut c = Command::new("/bin/sh");
            c.arg("-c").arg(&job.script);
            c
        }
    };
    cmd.env_clear();
    let mut env: HashMap<String, String> = HashMap::new();
    env.insert("PATH".into(), DEFAULT_PATH.into());
    env.insert("LANG".into(), "C.UTF-8".into());
    match &job.user {
        Some(u) => {
            let id = identity(u)?;
            env.insert("HOME".into(), id.home.clone());
            env.insert("USER".into(), id.name.clone());
            env.insert("LOGNAME".into(), id.name.clone());
            cmd.uid(id.uid.as_raw()).gid(id.gid.as_raw());
            set_groups(&mut cmd, id.groups);
        }
        None => {
            let me = User::from_uid(nix::unistd::geteuid()).ok().flatten();
            let (home, name) =
                me.map(|u| (u.dir.to_string_lossy().into_owned(), u.name)).unwrap_or(("/".into(), "root".into()));
            env.insert("HOME".into(), home);
            env.insert("USER".into(), name.clone());
            env.insert("LOGNAME".into(), name);
        }
    }
    for (k, v) in &job.env {
        env.insert(k.clone(), v.clone());
    }
    cmd.envs(env);
    if let Some(cwd) = &job.cwd {
        cmd.current_dir(cwd);
    }
    reset_oom_score(&mut cmd);
    let input = if job.stdin.is_some() { Stdio::piped() } else { Stdio::null() };
    cmd.process_group(0).stdin(input).stdout(Stdio::piped()).stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(RunError::Spawn)?;
    if let (Some(data), Some(mut pipe)) = (job.stdin.clone(), child.stdin.take()) {
        // On its own thread, so that a child that does not read cannot
        // block the output pumping; the pipe closes when it is done.
        std::thread::spawn(move || {
            use std::io::Write as _;
            let _ = pipe.write_all(&data);
        });
    }
    let pgid = Pid::from_raw(child.id() as i32);
    if let Some(tx) = &job.started {
        let _ = tx.send(child.id());
    }
    let mut out = child.stdout.take();
    let mut err = child.stderr.take();
    let mut bufs = [Vec::new(), Vec::new()];
    let mut truncated = false;
    let mut timed_out = false;
    let mut cancelled = false;
    let status = loop {
        let remaining = job.timeout.saturating_sub(start.elapsed());
        if remaining.is_zero() && !timed_out && !cancelled {
            timed_out = true;
            kill_group(pgid);
        }
        if !cancelled && !timed_out && job.cancel.as_ref().is_some_and(|c| c.load(Ordering::SeqCst)) {
            cancelled = true;
            kill_group(pgid);
        }
        // Wait for output (or 50 ms), then see whether the child has exited.
        let wait_ms = remaining.as_millis().clamp(1, 50) as u16;
        pump(&mut out, &mut err, &mut bufs, job.capture_limit, &mut truncated, wait_ms);
        if let Some(status) = child.try_wait().map_err(RunError::Wait)? {
            // Collect what is already buffered, without waiting for
            // background processes that may keep the pipes open.
            for _ in 0..64 {
                if !pump(&mut out, &mut err, &mut bufs, job.capture_limit, &mut truncated, 0) {
                    break;
                }
            }
            break status;
        }
    };
    if timed_out || cancelled {
        kill_group(pgid);
    }
    let exit = if timed_out {
        Exit::TimedOut
    } else if cancelled {
        Exit::Cancelled
    } else if let Some(c) = status.code() {
        Exit::Code(c)
    } else {
        Exit::Signal(status.signal().unwrap_or(0))
    };
    let [stdout, stderr] = bufs;
    Ok(Outcome { exit, stdout, stderr, truncated, duration: start.elapsed() })
}

/// Reads whatever is ready on the two pipes. Returns true if anything was read.
fn pump(
    out: &mut Option<std::process::ChildStdout>,
    err: &mut Option<std::process::ChildStderr>,
    bufs: &mut [Vec<u8>; 2],
    limit: usize,
    truncated: &mut bool,
    wait_ms: u16,
) -> bool {
    let mut ready = [false, false];
    {
        let mut fds = Vec::new();
        let mut which = Vec::new();
        if let Some(o) = out.as_ref() {
            fds.push(PollFd::new(o.as_fd(), PollFlags::POLLIN));
            which.push(0);
        }
        if let Some(e) = err.as_ref() {
            fds.push(PollFd::new(e.as_fd(), PollFlags::POLLIN));
            which.push(1);
        }
        if fds.is_empty() {
            if wait_ms > 0 {
                std::thread::sleep(Duration::from_millis(u64::from(wait_ms)));
            }
            return false;
        }
        if poll(&mut fds, PollTimeout::from(wait_ms)).unwrap_or(0) <= 0 {
            return false;
        }
        for (fd, w) in fds.iter().zip(which) {
            if fd.revents().is_some_and(|r| !r.is_empty()) {
                ready[w] = true;
            }
        }
    }
    let mut any = false;
    let mut chunk = [0u8; 16 * 1024];
    for (i, r) in ready.iter().enumerate() {
        if !r {
            continue;
        }
        let n = match i {
            0 => out.as_mut().map(|s| s.read(&mut chunk)),
            _ => err.as_mut().map(|s| s.read(&mut chunk)),
        };
        match n {
            Some(Ok(0)) | Some(Err(_)) | None => {
                // End of stream: stop polling it.
                if i == 0 { *out = None } else { *err = None }
            }
            Some(Ok(n)) => {
                any = true;
                let room = limit.saturating_sub(bufs[i].len());
                bufs[i].extend_from_slice(&chunk[..n.min(room)]);
                if n > room {
                    *truncated = true;
                }
            }
        }
    }
    any
}

fn kill_group(pgid: Pid) {
    let _ = killpg(pgid, Signal::SIGKILL);
}

/// The agent runs with `OOMScoreAdjust=-900` so that it survives memory
/// pressure; what it runs must not inherit that.
#[allow(unsafe_code)]
fn reset_oom_score(cmd: &mut Command) {
    let own = std::fs::read_to_string("/proc/self/oom_score_adj").ok().and_then(|s| s.trim().parse::<i32>().ok());
    if own.is_none_or(|v| v >= 0) {
        return;
    }
    // SAFETY: open(2), write(2) and close(2) are async-signal-safe, and the
    // path is a static C string: nothing is allocated after the fork.
    unsafe {
        cmd.pre_exec(|| {
            use nix::fcntl::{OFlag, open};
            use nix::sys::stat::Mode;
            if let Ok(fd) = open(c"/proc/self/oom_score_adj", OFlag::O_WRONLY | OFlag::O_CLOEXEC, Mode::empty()) {
                let _ = nix::unistd::write(&fd, b"0");
            }
            Ok(())
        });
    }
}

/// Sets supplementary groups in the child. std has no stable API for this.
#[allow(unsafe_code)]
fn set_groups(cmd: &mut Command, groups: Vec<Gid>) {
    // SAFETY: setgroups(2) is a single async-signal-safe system call; the
    // closure allocates nothing (the vector was built before the fork).
    unsafe {
        cmd.pre_exec(move || nix::unistd::setgroups(&groups).map_err(std::io::Error::from));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_exit_code() {
        let o = run(&Job::shell("echo out; echo err >&2; exit 3", Duration::from_secs(10))).unwrap();
        assert_eq!(o.exit, Exit::Code(3));
        assert_eq!(o.stdout, b"out\n");
        assert_eq!(o.stderr, b"err\n");
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        let script = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let o = run(&Job::shell(script, Duration::from_millis(300))).unwrap();
        assert_eq!(o.exit, Exit::TimedOut);
        let pid: i32 = std::fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
        std::thread::sleep(Duration::from_millis(100));
        let alive = nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
            && !std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default().contains(") Z");
        assert!(!alive, "grandchild sleep survived");
    }

    #[test]
    fn background_children_do_not_hold_the_run() {
        let o = run(&Job::shell("(sleep 5 &) ; echo done", Duration::from_secs(3))).unwrap();
        assert_eq!(o.exit, Exit::Code(0));
        assert!(o.duration < Duration::from_secs(3));
    }

    #[test]
    fn caps_output() {
        let mut job = Job::shell("head -c 100000 /dev/zero", Duration::from_secs(10));
        job.capture_limit = 1000;
        let o = run(&job).unwrap();
        assert_eq!(o.stdout.len(), 1000);
        assert!(o.truncated);
    }
}
