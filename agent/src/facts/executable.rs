//! Executable custom facts: a program in the facts directory is run with no
//! arguments, standard input `/dev/null`, a timeout and a clean environment,
//! in its own process group (killed whole on timeout); what it prints, a
//! JSON or YAML mapping, joins `facts.custom`.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};

use crate::system::process::{self, Exit, Job, RunError};

/// Bytes of standard output read; more is an error (the YAML limit for
/// configuration text is the same).
pub const OUTPUT_LIMIT: usize = tend_model::yaml::YamlLimits::CONFIG.max_bytes;

/// Why an executable's facts are missing.
#[derive(Debug, thiserror::Error)]
pub enum ExecFactError {
    #[error("not run: {0}")]
    Unsafe(String),
    #[error("its path is not UTF-8")]
    Path,
    #[error(transparent)]
    Run(#[from] RunError),
    #[error("{0}")]
    Failed(String),
    #[error("printed more than {} bytes", OUTPUT_LIMIT)]
    TooLarge,
    #[error("printed text that is not UTF-8")]
    NotUtf8,
    #[error("printed neither JSON nor YAML: line {line} column {col}: {message}")]
    Parse { line: usize, col: usize, message: String },
    #[error("printed a {0}, not a mapping")]
    NotMapping(&'static str),
}

/// True if `meta` is a regular file with an execute bit (for anyone).
pub fn is_executable(meta: &std::fs::Metadata) -> bool {
    meta.is_file() && meta.mode() & 0o111 != 0
}

/// Refuses a program that someone other than root or the agent's user could
/// have written: it runs with the agent's privileges.
pub fn check_owner(meta: &std::fs::Metadata, euid: u32) -> Result<(), ExecFactError> {
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(ExecFactError::Unsafe(format!("owned by uid {}, not root or the agent's user", meta.uid())));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(ExecFactError::Unsafe(format!("writable by group or others (mode {:04o})", meta.mode() & 0o7777)));
    }
    Ok(())
}

/// Runs the program at `path` (in `dir`) and parses what it prints.
pub fn run(path: &Path, dir: &Path, timeout: Duration) -> Result<Map<String, Value>, ExecFactError> {
    let program = path.to_str().ok_or(ExecFactError::Path)?;
    let mut job = Job::argv(&[program], timeout);
    // One byte more than the limit tells "too large" from "exactly the limit".
    job.capture_limit = OUTPUT_LIMIT + 1;
    job.cwd = dir.to_str().map(str::to_string);
    let t = Instant::now();
    let out = process::run(&job)?;
    tracing::debug!(program, elapsed = ?t.elapsed(), exit = ?out.exit, "executable facts ran");
    match out.exit {
        Exit::Code(0) => {}
        Exit::Code(_) => {
            let tail = out.tail(3);
            let sep = if tail.is_empty() { "" } else { ": " };
            return Err(ExecFactError::Failed(format!("{}{sep}{tail}", out.describe_exit())));
        }
        _ => return Err(ExecFactError::Failed(out.describe_exit())),
    }
    parse_output(&out.stdout)
}

/// The mapping in an executable's output: JSON or YAML (JSON is YAML);
/// empty output is an empty mapping.
pub fn parse_output(stdout: &[u8]) -> Result<Map<String, Value>, ExecFactError> {
    if stdout.len() > OUTPUT_LIMIT {
        return Err(ExecFactError::TooLarge);
    }
    let text = std::str::from_utf8(stdout).map_err(|_| ExecFactError::NotUtf8)?;
    let value: Value = tend_model::yaml::parse(text, &tend_model::yaml::YamlLimits::CONFIG)
        .map_err(|e| ExecFactError::Parse { line: e.line, col: e.col, message: e.message })?;
    match value {
        Value::Object(m) => Ok(m),
        Value::Null => Ok(Map::new()),
        Value::Array(_) => Err(ExecFactError::NotMapping("list")),
        Value::String(_) => Err(ExecFactError::NotMapping("string")),
        Value::Number(_) => Err(ExecFactError::NotMapping("number")),
        Value::Bool(_) => Err(ExecFactError::NotMapping("boolean")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn json_yaml_and_empty_output() {
        let m = parse_output(br#"{"role": "web", "rack": 4}"#).unwrap();
        assert_eq!(Value::Object(m), serde_json::json!({ "role": "web", "rack": 4 }));
        let m = parse_output(b"role: db\nzones: [a, b]\n").unwrap();
        assert_eq!(Value::Object(m), serde_json::json!({ "role": "db", "zones": ["a", "b"] }));
        assert!(parse_output(b"").unwrap().is_empty());
        assert!(parse_output(b"\n").unwrap().is_empty());
    }

    #[test]
    fn bad_output() {
        assert!(matches!(parse_output(b"[1, 2]"), Err(ExecFactError::NotMapping("list"))));
        assert!(matches!(parse_output(b"just words"), Err(ExecFactError::NotMapping("string"))));
        assert!(matches!(parse_output(b"a: [1, 2\n"), Err(ExecFactError::Parse { .. })));
        assert!(matches!(parse_output(b"a: \xff\n"), Err(ExecFactError::NotUtf8)));
        assert!(matches!(parse_output(&vec![b' '; OUTPUT_LIMIT + 1]), Err(ExecFactError::TooLarge)));
    }

    #[test]
    fn only_safe_programs_run() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        let euid = nix::unistd::geteuid().as_raw();
        let set = |mode| std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        set(0o644);
        assert!(!is_executable(&std::fs::metadata(&p).unwrap()));
        set(0o700);
        let meta = std::fs::metadata(&p).unwrap();
        assert!(is_executable(&meta));
        assert!(check_owner(&meta, euid).is_ok());
        set(0o775);
        let e = check_owner(&std::fs::metadata(&p).unwrap(), euid).unwrap_err();
        assert_eq!(e.to_string(), "not run: writable by group or others (mode 0775)");
        set(0o755);
        if euid != 0 {
            assert!(check_owner(&std::fs::metadata(&p).unwrap(), euid + 1).is_err());
        }
    }

    #[test]
    fn runs_a_program_in_its_directory() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("where");
        std::fs::write(&p, "#!/bin/sh\nprintf 'dir: %s\\nstdin: %s\\n' \"$(pwd)\" \"$(cat)\"\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let m = run(&p, dir.path(), Duration::from_secs(10)).unwrap();
        assert_eq!(m["dir"], dir.path().to_str().unwrap());
        assert_eq!(m["stdin"], Value::Null);
    }

    #[test]
    fn failures_say_how() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fails");
        std::fs::write(&p, "#!/bin/sh\necho 'no CMDB' >&2\nexit 3\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = run(&p, dir.path(), Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.to_string(), "exit code 3: no CMDB");
    }
}
