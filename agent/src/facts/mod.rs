//! Facts about the host: cheap ones are read on every run (files only, no
//! process spawned); the EC2 metadata probe is gated, time-boxed and cached;
//! executable custom facts are time-boxed and cached.

mod custom;
pub mod ec2;
mod exec_cache;
mod executable;
mod file_head;
mod init;
mod mounts;
mod net;
mod os;
mod packages;
mod security;
mod ssh;
mod time;
mod virt;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

pub use ec2::Ec2Mode;

/// Where facts come from and which slow probes are allowed.
#[derive(Debug, Clone)]
pub struct FactOptions {
    /// Custom facts: every `*.yaml` here is merged under `facts.custom`.
    pub facts_dir: PathBuf,
    pub ec2: Ec2Mode,
    /// The instance metadata endpoint (tests point it at loopback).
    pub imds_endpoint: String,
    /// Where the EC2 result and the output of executable facts are cached;
    /// None disables both caches.
    pub cache_dir: Option<PathBuf>,
    /// How long an executable fact may run before its process group is killed.
    pub exec_timeout: Duration,
    /// How long an executable fact's output is reused (zero: run it every time).
    pub exec_cache: Duration,
}

/// The default of `exec_timeout` (`fact_timeout` in the agent configuration).
pub const DEFAULT_EXEC_TIMEOUT: Duration = Duration::from_secs(10);
/// The default of `exec_cache` (`fact_cache`): shorter than the run interval,
/// so each daemon run sees fresh output, while bursts of runs (commands,
/// repeated applies) share one.
pub const DEFAULT_EXEC_CACHE: Duration = Duration::from_secs(5 * 60);

impl Default for FactOptions {
    fn default() -> Self {
        Self {
            facts_dir: PathBuf::from("/etc/tend/facts.d"),
            ec2: Ec2Mode::Auto,
            imds_endpoint: ec2::DEFAULT_ENDPOINT.to_string(),
            cache_dir: None,
            exec_timeout: DEFAULT_EXEC_TIMEOUT,
            exec_cache: DEFAULT_EXEC_CACHE,
        }
    }
}

/// The facts, and the problems met gathering them (a custom facts file or
/// program left out), for the run report.
#[derive(Debug, Clone)]
pub struct Gathered {
    pub facts: Value,
    pub warnings: Vec<String>,
}

/// Gathers every fact (problems are logged; see [`gather_with_warnings`]).
pub fn gather(opts: &FactOptions) -> Value {
    gather_with_warnings(opts).facts
}

/// Gathers every fact, and says what went wrong.
pub fn gather_with_warnings(opts: &FactOptions) -> Gathered {
    let root = Path::new("/");
    let (hostname, kernel, arch) = os::uname();
    let fqdn = os::fqdn(&hostname);
    let domain = fqdn.split_once('.').map(|(_, d)| d.to_string()).unwrap_or_default();
    let interfaces = net::interfaces();
    let route = net::default_route();
    let ipv4 = net::primary_ipv4(&interfaces, route.as_ref());
    let ipv4_default = net::ipv4_default(&interfaces, route.as_ref());
    let virtualization = virt::facts(kernel["release"].as_str().unwrap_or_default());
    let exec = custom::ExecOptions {
        timeout: opts.exec_timeout,
        cache_dir: opts.cache_dir.as_deref(),
        cache_ttl: opts.exec_cache,
    };
    let custom = custom::load(&opts.facts_dir, &exec);
    let mut facts = json!({
        "os": os::os_release(),
        "hostname": hostname,
        "fqdn": fqdn,
        "domain": domain,
        "kernel": kernel,
        "architecture": arch,
        "cpu": { "count": os::cpu_count() },
        "memory": os::memory(),
        "interfaces": interfaces,
        "ipv4": ipv4,
        "ipv4_default": ipv4_default,
        "virtualization": virtualization,
        "init": init::init(root),
        "systemd": { "version": init::systemd_version(root) },
        "selinux": security::selinux(root),
        "apparmor": security::apparmor(root),
        "mounts": mounts::facts(),
        "packages": { "manager": packages::manager(root) },
        "ssh": ssh::host_keys(root),
        "custom": Value::Object(custom.facts),
        "tend": { "version": env!("CARGO_PKG_VERSION") },
    });
    if let Some(e) = ec2::facts(opts) {
        facts["ec2"] = e;
    }
    if let Some(t) = time::ntp() {
        facts["ntp"] = t;
    }
    Gathered { facts, warnings: custom.warnings }
}

/// Every standard fact with a placeholder value (see `tend_model::facts`).
pub fn skeleton() -> Value {
    tend_model::facts::skeleton()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The facts gathered here have the shape of the skeleton that recipes
    /// are validated against, key for key (`ec2` and `ntp` may be missing).
    #[test]
    fn gathered_facts_have_the_skeleton_shape() {
        fn same_shape(path: &str, skeleton: &Value, real: &Value) {
            match (skeleton, real) {
                (Value::Object(s), Value::Object(_)) if s.is_empty() => {}
                (Value::Object(s), Value::Object(r)) => {
                    for k in r.keys() {
                        assert!(s.contains_key(k), "{path}.{k} is gathered but not in the skeleton");
                    }
                    for (k, v) in s {
                        match r.get(k) {
                            Some(rv) => same_shape(&format!("{path}.{k}"), v, rv),
                            None if path == "facts" && (k == "ec2" || k == "ntp") => {}
                            None => panic!("{path}.{k} is in the skeleton but not gathered"),
                        }
                    }
                }
                (Value::String(_), Value::String(_))
                | (Value::Number(_), Value::Number(_))
                | (Value::Bool(_), Value::Bool(_))
                | (Value::Array(_), Value::Array(_)) => {}
                _ => panic!("{path}: gathered {real}, the skeleton has {skeleton}"),
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let opts = FactOptions { facts_dir: dir.path().to_path_buf(), ec2: Ec2Mode::Off, ..FactOptions::default() };
        same_shape("facts", &skeleton(), &gather(&opts));
    }
}
