//! The names and shapes of the standard facts, shared by the agent (which
//! gathers them) and the server (which validates recipes without a host).

use serde_json::{Value, json};

/// Every standard fact with a placeholder value: what `validate` renders
/// against, and what `fact:` references are checked against. Strings are
/// `"placeholder"` (not empty, so that a path or name made from a fact is
/// still well formed), numbers 1, booleans false, lists empty. An empty
/// object marks an open namespace whose keys depend on the host.
pub fn skeleton() -> Value {
    const S: &str = "placeholder";
    json!({
        "os": {
            "id": S, "name": S, "pretty_name": S, "version": S, "version_id": S, "version_major": S,
            "codename": S, "family": S,
        },
        "hostname": S,
        "fqdn": S,
        "domain": S,
        "kernel": { "name": S, "release": S, "version": S },
        "architecture": S,
        "cpu": { "count": 1 },
        "memory": { "total_bytes": 1, "available_bytes": 1, "total_mb": 1 },
        "interfaces": {},
        "ipv4": S,
        "ipv4_default": { "address": S, "interface": S, "gateway": S },
        "virtualization": { "type": S, "name": S },
        "init": S,
        "systemd": { "version": S },
        "selinux": { "enabled": false, "mode": S },
        "apparmor": { "enabled": false },
        "mounts": [],
        "packages": { "manager": S },
        "ssh": {},
        "custom": {},
        "tend": { "version": S },
        "ntp": { "synchronized": false, "max_error_us": 1, "est_error_us": 1, "provider": S },
        "ec2": {
            "instance_id": S, "instance_type": S, "region": S, "availability_zone": S, "ami_id": S,
            "account_id": S, "private_ip": S,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every leaf follows the placeholder convention.
    #[test]
    fn placeholders_are_never_empty_strings_or_zero() {
        fn walk(path: &str, v: &Value) {
            match v {
                Value::String(s) => assert_eq!(s, "placeholder", "{path}"),
                Value::Number(n) => assert_eq!(n.as_u64(), Some(1), "{path}"),
                Value::Bool(b) => assert!(!b, "{path}"),
                Value::Array(a) => assert!(a.is_empty(), "{path}"),
                Value::Object(m) => m.iter().for_each(|(k, v)| walk(&format!("{path}.{k}"), v)),
                Value::Null => panic!("{path} is null"),
            }
        }
        walk("facts", &skeleton());
    }

    /// A path made from a fact is well formed at validation (an empty
    /// placeholder made `/srv/backups/` and "must not end with '/'").
    #[test]
    fn paths_made_from_facts_validate() {
        let recipe = r#"name: r
resources:
  - directory: "/srv/backups/{{facts.hostname}}"
  - user: backup
    home: "/srv/backups/{{facts.hostname}}"
  - exec: mk
    command: "mkdir -p /srv/backups/{{facts.hostname}}"
    creates: "/srv/backups/{{facts.os.version_major}}/{{facts.virtualization.name}}"
"#;
        let files = std::collections::BTreeMap::from([("r.yaml".to_string(), recipe.to_string())]);
        let b = crate::bundle::Bundle { name: "r".into(), root: "r.yaml".into(), files, signature: None };
        if let Err(d) = b.validate(&skeleton()) {
            panic!("{d}");
        }
    }
}
