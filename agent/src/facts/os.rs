//! Operating system, kernel, host name, CPU and memory facts.

use serde_json::{Value, json};

/// Reads os-release (id, version, family, …).
pub fn os_release() -> Value {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .unwrap_or_default();
    parse_os_release(&text)
}

pub fn parse_os_release(text: &str) -> Value {
    let mut get = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some((k, v)) = line.split_once('=') {
            let v = v.trim().trim_matches('"').trim_matches('\'');
            get.insert(k.trim(), v.to_string());
        }
    }
    let field = |k: &str| get.get(k).cloned().unwrap_or_default();
    let id = field("ID");
    let like = field("ID_LIKE");
    let version = field("VERSION");
    let version_id = field("VERSION_ID");
    let codename = Some(field("VERSION_CODENAME"))
        .filter(|c| !c.is_empty())
        .or_else(|| Some(field("UBUNTU_CODENAME")).filter(|c| !c.is_empty()))
        .unwrap_or_else(|| codename_in(&version).to_string());
    json!({
        "id": id,
        "name": field("NAME"),
        "pretty_name": field("PRETTY_NAME"),
        "version": version,
        "version_id": version_id,
        "version_major": version_major(&version_id),
        "codename": codename,
        "family": family(&id, &like),
    })
}

/// The part of VERSION_ID before its first dot: `9.3` → `9`, `12` → `12`.
fn version_major(version_id: &str) -> &str {
    version_id.split('.').next().unwrap_or_default()
}

/// The code name in a VERSION such as `9 (stretch)` or `9.3 (Blue Onyx)`:
/// the text in parentheses, as written; empty when there is none.
fn codename_in(version: &str) -> &str {
    let Some((_, rest)) = version.split_once('(') else { return "" };
    rest.split(')').next().unwrap_or_default().trim()
}

/// `debian`, `redhat`, `suse`, `arch`, `alpine`, or the id itself.
fn family(id: &str, like: &str) -> String {
    let words: Vec<&str> = std::iter::once(id).chain(like.split_whitespace()).collect();
    let has = |names: &[&str]| words.iter().any(|w| names.contains(w));
    if has(&["debian", "ubuntu"]) {
        "debian".into()
    } else if has(&["rhel", "fedora", "centos", "amzn", "rocky", "almalinux", "ol"]) {
        "redhat".into()
    } else if has(&["suse", "opensuse", "sles"]) {
        "suse".into()
    } else if has(&["arch"]) {
        "arch".into()
    } else {
        id.to_string()
    }
}

/// (hostname, kernel facts, architecture).
pub fn uname() -> (String, Value, String) {
    let u = nix::sys::utsname::uname();
    match u {
        Ok(u) => {
            let s = |o: &std::ffi::OsStr| o.to_string_lossy().into_owned();
            (
                s(u.nodename()),
                json!({ "name": s(u.sysname()), "release": s(u.release()), "version": s(u.version()) }),
                s(u.machine()),
            )
        }
        Err(_) => (String::new(), json!({"name": "", "release": "", "version": ""}), String::new()),
    }
}

/// The fully qualified name, found without network access: the host name if
/// it is dotted, else /etc/hosts, else the resolver's domain.
pub fn fqdn(hostname: &str) -> String {
    if hostname.contains('.') {
        return hostname.to_string();
    }
    if let Ok(hosts) = std::fs::read_to_string("/etc/hosts") {
        for line in hosts.lines() {
            let names: Vec<&str> = line.split('#').next().unwrap_or("").split_whitespace().skip(1).collect();
            if names.contains(&hostname) {
                if let Some(f) = names.iter().find(|n| n.starts_with(&format!("{hostname}."))) {
                    return f.to_string();
                }
            }
        }
    }
    if let Ok(conf) = std::fs::read_to_string("/etc/resolv.conf") {
        for line in conf.lines() {
            let mut w = line.split_whitespace();
            if let (Some("domain" | "search"), Some(d)) = (w.next(), w.next()) {
                return format!("{hostname}.{d}");
            }
        }
    }
    hostname.to_string()
}

pub fn cpu_count() -> usize {
    let sys = sysinfo::System::new_with_specifics(
        sysinfo::RefreshKind::nothing().with_cpu(sysinfo::CpuRefreshKind::nothing()),
    );
    sys.cpus().len().max(1)
}

pub fn memory() -> Value {
    let mut sys = sysinfo::System::new();
    sys.refresh_memory();
    json!({
        "total_bytes": sys.total_memory(),
        "available_bytes": sys.available_memory(),
        "total_mb": sys.total_memory() / (1024 * 1024),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_from_os_release() {
        let d = parse_os_release("ID=debian\nVERSION_ID=\"12\"\nVERSION_CODENAME=bookworm\n");
        assert_eq!(d["family"], "debian");
        assert_eq!(d["version_id"], "12");
        let a = parse_os_release("ID=\"amzn\"\nID_LIKE=\"fedora\"\nVERSION_ID=\"2023\"\n");
        assert_eq!(a["family"], "redhat");
        let u = parse_os_release("ID=ubuntu\nID_LIKE=debian\n");
        assert_eq!(u["family"], "debian");
    }

    #[test]
    fn major_version_is_the_part_before_the_first_dot() {
        assert_eq!(parse_os_release("VERSION_ID=\"12\"\n")["version_major"], "12");
        assert_eq!(parse_os_release("VERSION_ID=\"9.3\"\n")["version_major"], "9");
        assert_eq!(parse_os_release("VERSION_ID=22.04\n")["version_major"], "22");
        assert_eq!(parse_os_release("ID=arch\n")["version_major"], "");
    }

    #[test]
    fn codename_falls_back_to_the_version_text() {
        let named = parse_os_release("VERSION=\"12 (bookworm)\"\nVERSION_CODENAME=bookworm\n");
        assert_eq!(named["codename"], "bookworm");
        let old = parse_os_release("VERSION=\"9 (stretch)\"\nVERSION_ID=\"9\"\n");
        assert_eq!(old["codename"], "stretch");
        let ubuntu = parse_os_release("VERSION=\"16.04.7 LTS (Xenial Xerus)\"\nUBUNTU_CODENAME=xenial\n");
        assert_eq!(ubuntu["codename"], "xenial");
        let words = parse_os_release("VERSION=\"9.3 (Blue Onyx)\"\nVERSION_CODENAME=\n");
        assert_eq!(words["codename"], "Blue Onyx");
        assert_eq!(parse_os_release("VERSION=\"2023\"\n")["codename"], "");
    }
}
