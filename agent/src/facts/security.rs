//! SELinux and AppArmor status, from the files their kernel parts publish.

use std::path::Path;

use serde_json::{Value, json};

use super::file_head::first_line;

/// `{ "enabled", "mode" }`: `enforcing` or `permissive` from selinuxfs's
/// `enforce`; `disabled` (not enabled) when selinuxfs is not mounted.
pub fn selinux(root: &Path) -> Value {
    let enforce = first_line(&root.join("sys/fs/selinux/enforce"));
    let mode = match enforce.as_deref() {
        Some("1") => "enforcing",
        Some(_) => "permissive",
        None => "disabled",
    };
    json!({ "enabled": mode != "disabled", "mode": mode })
}

/// `{ "enabled" }`: the AppArmor module's `enabled` parameter is `Y`.
pub fn apparmor(root: &Path) -> Value {
    let enabled =
        std::fs::read_to_string(root.join("sys/module/apparmor/parameters/enabled")).is_ok_and(|v| v.trim() == "Y");
    json!({ "enabled": enabled })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root_with(path: &str, content: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content).unwrap();
        dir
    }

    #[test]
    fn selinux_modes() {
        let none = tempfile::tempdir().unwrap();
        assert_eq!(selinux(none.path()), json!({ "enabled": false, "mode": "disabled" }));
        let on = root_with("sys/fs/selinux/enforce", "1");
        assert_eq!(selinux(on.path()), json!({ "enabled": true, "mode": "enforcing" }));
        let permissive = root_with("sys/fs/selinux/enforce", "0");
        assert_eq!(selinux(permissive.path()), json!({ "enabled": true, "mode": "permissive" }));
    }

    #[test]
    fn apparmor_enabled_parameter() {
        assert_eq!(apparmor(tempfile::tempdir().unwrap().path()), json!({ "enabled": false }));
        assert_eq!(apparmor(root_with("sys/module/apparmor/parameters/enabled", "Y\n").path())["enabled"], true);
        assert_eq!(apparmor(root_with("sys/module/apparmor/parameters/enabled", "N\n").path())["enabled"], false);
    }
}
