//! systemd's service notification protocol (`Type=notify`): readiness,
//! status, stopping, and the watchdog. A datagram to `$NOTIFY_SOCKET`; a
//! no-op when the agent was not started by systemd.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

/// Sends `state` (`READY=1`, `STATUS=…`, `WATCHDOG=1`, `STOPPING=1`).
/// Returns false when there is no socket or the send failed.
pub fn notify(state: &str) -> bool {
    std::env::var_os("NOTIFY_SOCKET").is_some_and(|path| notify_to(&path, state))
}

/// Sends `state` to the notification socket at `path` (`@name`: abstract).
pub fn notify_to(path: &std::ffi::OsStr, state: &str) -> bool {
    let Ok(sock) = UnixDatagram::unbound() else { return false };
    let bytes = path.as_encoded_bytes();
    let sent = match bytes.strip_prefix(b"@") {
        // An abstract socket (`@name`).
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|addr| sock.send_to_addr(state.as_bytes(), &addr))
        }
        None => sock.send_to(state.as_bytes(), path),
    };
    sent.is_ok()
}

/// Half the watchdog period systemd asked for (`WatchdogSec=`), if it is
/// meant for this process.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID")
        && pid.parse::<u32>().ok() != Some(std::process::id())
    {
        return None;
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2))
}

/// Pings the watchdog from a thread of its own, so that a long converge
/// (a package install) never looks like a hang.
pub fn spawn_watchdog() {
    if let Some(every) = watchdog_interval() {
        std::thread::spawn(move || {
            loop {
                notify("WATCHDOG=1");
                std::thread::sleep(every);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_reach_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let server = UnixDatagram::bind(&path).unwrap();
        assert!(notify_to(path.as_os_str(), "READY=1\nSTATUS=ok"));
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=ok");
        assert!(!notify_to(dir.path().join("absent").as_os_str(), "READY=1"));
    }
}
