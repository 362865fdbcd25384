//! The init system (PID 1) and the version of the installed systemd, from
//! run-time and library file names: no process is spawned.

use std::path::Path;

/// `systemd` when systemd is PID 1 (it creates `/run/systemd/system`), else
/// PID 1's command name (`init`, `tini`, `bash`…); empty when unreadable.
pub fn init(root: &Path) -> String {
    if root.join("run/systemd/system").is_dir() {
        return "systemd".into();
    }
    super::file_head::first_line(&root.join("proc/1/comm")).unwrap_or_default()
}

/// The installed systemd's version (`252`), from the name of its shared
/// library (`libsystemd-shared-252.so`, `libsystemd-shared-254.5-2.fc39.so`);
/// empty when systemd is not installed or the library is not found.
pub fn systemd_version(root: &Path) -> String {
    let triplet = multiarch_dir(std::env::consts::ARCH).map(|t| format!("usr/lib/{t}/systemd"));
    let dirs = triplet.into_iter().chain(["usr/lib64/systemd", "usr/lib/systemd", "lib/systemd"].map(String::from));
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(root.join(&dir)) else { continue };
        let newest = entries
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().and_then(version_in_library_name))
            .max();
        if let Some(v) = newest {
            return v.to_string();
        }
    }
    String::new()
}

/// The leading number of a `libsystemd-shared-VERSION….so` name.
fn version_in_library_name(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("libsystemd-shared-")?;
    if !rest.ends_with(".so") {
        return None;
    }
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Debian's multiarch directory name for this architecture.
fn multiarch_dir(arch: &str) -> Option<&'static str> {
    Some(match arch {
        "x86_64" => "x86_64-linux-gnu",
        "aarch64" => "aarch64-linux-gnu",
        "x86" => "i386-linux-gnu",
        "arm" => "arm-linux-gnueabihf",
        "powerpc64" => "powerpc64le-linux-gnu",
        "s390x" => "s390x-linux-gnu",
        "riscv64" => "riscv64-linux-gnu",
        "loongarch64" => "loongarch64-linux-gnu",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn systemd_as_pid1_or_the_command_of_pid1() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(init(dir.path()), "");
        std::fs::create_dir_all(dir.path().join("proc/1")).unwrap();
        std::fs::write(dir.path().join("proc/1/comm"), "tini\n").unwrap();
        assert_eq!(init(dir.path()), "tini");
        std::fs::create_dir_all(dir.path().join("run/systemd/system")).unwrap();
        assert_eq!(init(dir.path()), "systemd");
    }

    #[test]
    fn version_from_the_shared_library_name() {
        assert_eq!(version_in_library_name("libsystemd-shared-252.so"), Some(252));
        assert_eq!(version_in_library_name("libsystemd-shared-254.5-2.fc39.so"), Some(254));
        assert_eq!(version_in_library_name("libsystemd-core-252.so"), None);
        assert_eq!(version_in_library_name("libsystemd-shared-.so"), None);
        assert_eq!(version_in_library_name("libsystemd-shared-252.so.bak"), None);
    }

    #[test]
    fn version_from_the_first_library_directory_that_has_one() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(systemd_version(dir.path()), "");
        let lib = dir.path().join("usr/lib/systemd");
        std::fs::create_dir_all(&lib).unwrap();
        for f in ["systemd-journald", "libsystemd-shared-249.so", "libsystemd-shared-251.so"] {
            std::fs::write(lib.join(f), "").unwrap();
        }
        assert_eq!(systemd_version(dir.path()), "251");
        let lib64 = dir.path().join("usr/lib64/systemd");
        std::fs::create_dir_all(&lib64).unwrap();
        std::fs::write(lib64.join("libsystemd-shared-252.so"), "").unwrap();
        assert_eq!(systemd_version(dir.path()), "252");
    }
}
