//! The names and shapes of the standard facts, shared by the agent (which
//! gathers them) and the server (which validates recipes without a host).

use serde_json::{Value, json};

/// Every standard fact with a placeholder value: what `validate` renders
/// against, and what `fact:` references are checked against. An empty object
/// marks an open namespace whose keys depend on the host.
pub fn skeleton() -> Value {
    json!({
        "os": { "id": "", "name": "", "pretty_name": "", "version": "", "version_id": "", "codename": "", "family": "" },
        "hostname": "",
        "fqdn": "",
        "domain": "",
        "kernel": { "name": "", "release": "", "version": "" },
        "architecture": "",
        "cpu": { "count": 0 },
        "memory": { "total_bytes": 0, "available_bytes": 0, "total_mb": 0 },
        "interfaces": {},
        "ipv4": "",
        "custom": {},
        "tend": { "version": "" },
        "ntp": { "synchronized": false, "max_error_us": 0, "est_error_us": 0, "provider": "" },
        "ec2": { "instance_id": "", "instance_type": "", "region": "", "availability_zone": "", "ami_id": "", "account_id": "", "private_ip": "" },
    })
}
