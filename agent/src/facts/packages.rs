//! The package manager, from which program is installed.

use std::path::Path;

/// Package managers and where their programs are, in the order tried: dnf
/// before yum (EL8 and later have both), apt first.
const MANAGERS: &[(&str, &[&str])] = &[
    ("apt", &["usr/bin/apt-get"]),
    ("dnf", &["usr/bin/dnf"]),
    ("yum", &["usr/bin/yum"]),
    ("zypper", &["usr/bin/zypper"]),
    ("apk", &["sbin/apk", "usr/sbin/apk", "usr/bin/apk"]),
    ("pacman", &["usr/bin/pacman"]),
];

/// `apt`, `dnf`, `yum`, `zypper`, `apk`, `pacman`, or empty.
pub fn manager(root: &Path) -> &'static str {
    MANAGERS
        .iter()
        .find(|(_, paths)| paths.iter().any(|p| root.join(p).is_file()))
        .map(|(name, _)| *name)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(files: &[&str]) -> &'static str {
        let dir = tempfile::tempdir().unwrap();
        for f in files {
            let p = dir.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "").unwrap();
        }
        manager(dir.path())
    }

    #[test]
    fn first_manager_installed() {
        assert_eq!(with(&[]), "");
        assert_eq!(with(&["usr/bin/apt-get", "usr/bin/dnf"]), "apt");
        assert_eq!(with(&["usr/bin/yum", "usr/bin/dnf"]), "dnf");
        assert_eq!(with(&["usr/bin/yum"]), "yum");
        assert_eq!(with(&["usr/bin/zypper"]), "zypper");
        assert_eq!(with(&["sbin/apk"]), "apk");
        assert_eq!(with(&["usr/bin/pacman"]), "pacman");
    }
}
