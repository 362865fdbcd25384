//! EC2 instance facts through IMDSv2. The probe runs only on a host that
//! looks like EC2 (or when forced), has a total budget of 200 ms, and its
//! result is cached per boot so that later runs pay nothing.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::FactOptions;

pub const DEFAULT_ENDPOINT: &str = "http://169.254.169.254";
/// How long a failed probe is remembered before the next try.
const NEGATIVE_TTL_SECS: u64 = 600;
/// The whole probe (token plus document) must fit in this.
pub const BUDGET: Duration = Duration::from_millis(200);

/// Whether to probe the instance metadata service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ec2Mode {
    /// Probe only when DMI or the hypervisor says this is EC2.
    #[default]
    Auto,
    /// Always probe.
    On,
    /// Never probe.
    Off,
}

impl std::str::FromStr for Ec2Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Self::Auto),
            "on" | "true" => Ok(Self::On),
            "off" | "false" => Ok(Self::Off),
            _ => Err(format!("{s:?} is not one of auto, on, off")),
        }
    }
}

/// EC2 facts, or None when not on EC2 (or not reachable within the budget).
pub fn facts(opts: &FactOptions) -> Option<Value> {
    match opts.ec2 {
        Ec2Mode::Off => return None,
        Ec2Mode::Auto if !looks_like_ec2(Path::new("/")) => return None,
        _ => {}
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let cache = opts.cache_dir.as_ref().map(|d| d.join("ec2-facts.json"));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    if let Some(cached) = cache.as_ref().and_then(|c| std::fs::read(c).ok()) {
        if let Ok(v) = serde_json::from_slice::<Value>(&cached) {
            let same_boot = v["boot_id"] == boot_id.trim();
            let found = v.get("facts").filter(|f| !f.is_null());
            let fresh_miss = v["checked_at"].as_u64().is_some_and(|t| now.saturating_sub(t) < NEGATIVE_TTL_SECS);
            // A hit is good for the whole boot; a miss is retried after a while,
            // and at once when the probe is forced on.
            match found {
                Some(f) if same_boot => return Some(f.clone()),
                None if same_boot && fresh_miss && opts.ec2 == Ec2Mode::Auto => return None,
                _ => {}
            }
        }
    }
    let found = probe(&opts.imds_endpoint, BUDGET);
    if let Some(c) = cache {
        let record = json!({ "boot_id": boot_id.trim(), "checked_at": now, "facts": found });
        if let Err(e) = crate::state::write_atomic(&c, &serde_json::to_vec(&record).unwrap_or_default(), 0o600) {
            tracing::debug!(error = %e, "could not cache EC2 facts");
        }
    }
    found
}

/// DMI and hypervisor hints, as cloud-init's ds-identify reads them.
pub fn looks_like_ec2(root: &Path) -> bool {
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap_or_default().to_lowercase();
    ["sys/class/dmi/id/sys_vendor", "sys/class/dmi/id/board_vendor", "sys/class/dmi/id/bios_vendor"]
        .iter()
        .any(|p| read(p).contains("amazon"))
        || read("sys/hypervisor/uuid").starts_with("ec2")
}

/// Asks IMDSv2 for the instance identity document within `budget`.
pub fn probe(endpoint: &str, budget: Duration) -> Option<Value> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
    rt.block_on(async { tokio::time::timeout(budget, fetch(endpoint)).await.ok().flatten() })
}

async fn fetch(endpoint: &str) -> Option<Value> {
    let client = reqwest::Client::builder().no_proxy().build().ok()?;
    let token = client
        .put(format!("{endpoint}/latest/api/token"))
        .header("X-aws-ec2-metadata-token-ttl-seconds", "21600")
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .text()
        .await
        .ok()?;
    let doc = client
        .get(format!("{endpoint}/latest/dynamic/instance-identity/document"))
        .header("X-aws-ec2-metadata-token", token.trim())
        .send()
        .await
        .ok()?
        .error_for_status()
        .ok()?
        .bytes()
        .await
        .ok()?;
    let d: Value = serde_json::from_slice(&doc).ok()?;
    let s = |k: &str| d.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
    Some(json!({
        "instance_id": s("instanceId"),
        "instance_type": s("instanceType"),
        "region": s("region"),
        "availability_zone": s("availabilityZone"),
        "ami_id": s("imageId"),
        "account_id": s("accountId"),
        "private_ip": s("privateIp"),
    }))
}
