//! `ntp`: time synchronisation. Writes the configuration of the host's time
//! daemon (chrony, systemd-timesyncd or ntpd), restarts it only when that
//! configuration changed, and can install chrony first.

use std::path::Path;

use tend_model::resources::Presence;
use tend_model::resources::ntp::{NtpProps, NtpProvider};
use tend_model::{CompiledResource, Spec};

use super::file::{self, FileWant};
use super::support::systemd;
use super::{Applied, Ctx, Error, ResourceType, Result, mismatch};
use crate::report::Change;

pub struct NtpType;

/// The Amazon Time Sync Service, reachable from every EC2 instance.
pub const AMAZON_TIME_SYNC: &str = "169.254.169.123";

fn props(r: &CompiledResource) -> Result<&NtpProps> {
    match &r.spec {
        Spec::Ntp(p) => Ok(p),
        _ => Err(mismatch(r)),
    }
}

fn debian(facts: &serde_json::Value) -> bool {
    facts["os"]["family"] == "debian"
}

/// The daemon to configure: the one asked for, else the one installed.
fn provider(p: &NtpProps) -> Option<NtpProvider> {
    if let Some(pr) = p.provider {
        return Some(pr);
    }
    let exists = |paths: &[&str]| paths.iter().any(|x| Path::new(x).exists());
    if exists(&["/usr/sbin/chronyd", "/sbin/chronyd"]) {
        Some(NtpProvider::Chrony)
    } else if exists(&["/lib/systemd/systemd-timesyncd", "/usr/lib/systemd/systemd-timesyncd"]) {
        Some(NtpProvider::Timesyncd)
    } else if exists(&["/usr/sbin/ntpd", "/sbin/ntpd"]) {
        Some(NtpProvider::Ntpd)
    } else if p.install {
        Some(NtpProvider::Chrony)
    } else {
        None
    }
}

fn installed(pr: NtpProvider) -> bool {
    let paths: &[&str] = match pr {
        NtpProvider::Chrony => &["/usr/sbin/chronyd", "/sbin/chronyd"],
        NtpProvider::Timesyncd => &["/lib/systemd/systemd-timesyncd", "/usr/lib/systemd/systemd-timesyncd"],
        NtpProvider::Ntpd => &["/usr/sbin/ntpd", "/sbin/ntpd"],
    };
    paths.iter().any(|x| Path::new(x).exists())
}

fn package(pr: NtpProvider, facts: &serde_json::Value) -> &'static str {
    match pr {
        NtpProvider::Chrony => "chrony",
        NtpProvider::Timesyncd => "systemd-timesyncd",
        NtpProvider::Ntpd if debian(facts) => "ntpsec",
        NtpProvider::Ntpd => "ntp",
    }
}

fn unit(pr: NtpProvider, facts: &serde_json::Value) -> &'static str {
    match pr {
        NtpProvider::Chrony if debian(facts) => "chrony.service",
        NtpProvider::Chrony => "chronyd.service",
        NtpProvider::Timesyncd => "systemd-timesyncd.service",
        NtpProvider::Ntpd if debian(facts) => "ntpsec.service",
        NtpProvider::Ntpd => "ntpd.service",
    }
}

fn config_path(pr: NtpProvider, facts: &serde_json::Value) -> &'static str {
    match pr {
        NtpProvider::Chrony if debian(facts) => "/etc/chrony/chrony.conf",
        NtpProvider::Chrony => "/etc/chrony.conf",
        NtpProvider::Timesyncd => "/etc/systemd/timesyncd.conf.d/tend.conf",
        NtpProvider::Ntpd if Path::new("/etc/ntpsec").is_dir() => "/etc/ntpsec/ntp.conf",
        NtpProvider::Ntpd => "/etc/ntp.conf",
    }
}

/// Servers and pools after defaults: the Amazon Time Sync Service on EC2,
/// the distribution's pool elsewhere.
fn sources(p: &NtpProps, facts: &serde_json::Value) -> (Vec<String>, Vec<String>) {
    if !p.servers.is_empty() || !p.pools.is_empty() {
        return (p.servers.clone(), p.pools.clone());
    }
    if facts.get("ec2").is_some_and(|e| !e.is_null()) {
        return (vec![AMAZON_TIME_SYNC.to_string()], vec![]);
    }
    let pool = if debian(facts) { "2.debian.pool.ntp.org" } else { "2.pool.ntp.org" };
    (vec![], vec![pool.to_string()])
}

fn options(p: &NtpProps) -> String {
    let mut o = String::new();
    if p.iburst {
        o.push_str(" iburst");
    }
    if let Some(v) = p.minpoll {
        o.push_str(&format!(" minpoll {v}"));
    }
    if let Some(v) = p.maxpoll {
        o.push_str(&format!(" maxpoll {v}"));
    }
    o
}

/// The provider's whole configuration file.
pub fn render(pr: NtpProvider, p: &NtpProps, facts: &serde_json::Value, id: &str) -> String {
    let (servers, pools) = sources(p, facts);
    let opts = options(p);
    let mut s = format!("# Managed by tend ({id}). Local changes are overwritten.\n");
    match pr {
        NtpProvider::Chrony => {
            for x in &servers {
                s.push_str(&format!("server {x}{opts}\n"));
            }
            for x in &pools {
                s.push_str(&format!("pool {x}{opts}\n"));
            }
            let step = p.makestep.map(|m| format!("makestep {} {}", m.threshold, m.limit));
            if debian(facts) {
                s.push_str("sourcedir /run/chrony-dhcp\nsourcedir /etc/chrony/sources.d\nconfdir /etc/chrony/conf.d\n");
                s.push_str("keyfile /etc/chrony/chrony.keys\ndriftfile /var/lib/chrony/chrony.drift\n");
                s.push_str("ntsdumpdir /var/lib/chrony\nlogdir /var/log/chrony\nmaxupdateskew 100.0\n");
            } else {
                s.push_str("keyfile /etc/chrony.keys\ndriftfile /var/lib/chrony/drift\nntsdumpdir /var/lib/chrony\n");
                s.push_str("logdir /var/log/chrony\n");
            }
            s.push_str(&format!("{}\nrtcsync\nleapsectz right/UTC\n", step.unwrap_or_else(|| "makestep 1 3".into())));
        }
        NtpProvider::Timesyncd => {
            let all: Vec<String> = servers.iter().chain(&pools).cloned().collect();
            s.push_str(&format!("[Time]\nNTP={}\n", all.join(" ")));
            if let Some(v) = p.maxpoll {
                s.push_str(&format!("PollIntervalMaxSec={}\n", 1u64 << v.clamp(0, 17)));
            }
        }
        NtpProvider::Ntpd => {
            s.push_str("driftfile /var/lib/ntpsec/ntp.drift\n");
            for x in &servers {
                s.push_str(&format!("server {x}{opts}\n"));
            }
            for x in &pools {
                s.push_str(&format!("pool {x}{opts}\n"));
            }
            s.push_str("restrict default kod nomodify nopeer noquery limited\nrestrict 127.0.0.1\nrestrict ::1\n");
        }
    }
    s
}

fn want(content: &[u8]) -> FileWant<'_> {
    FileWant::system(Presence::Present, Some(content))
}

impl ResourceType for NtpType {
    fn check(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let Some(pr) = provider(p) else {
            return Err(Error::Failed("no time daemon is installed (chrony, systemd-timesyncd or ntpd); set `install: true` to install chrony".into()));
        };
        let mut changes = Vec::new();
        if !installed(pr) {
            if !p.install {
                return Err(Error::Failed(format!("{} is not installed; set `install: true`", package(pr, ctx.facts))));
            }
            changes.push(Change::new("package", Some("absent".into()), Some(package(pr, ctx.facts).into())));
        }
        let text = render(pr, p, ctx.facts, &r.id.to_string());
        let path = Path::new(config_path(pr, ctx.facts));
        if let Some(dir) = path.parent() {
            if !dir.is_dir() {
                ctx.dirs.insert(dir.to_path_buf());
            }
        }
        for mut c in file::check(path, &want(text.as_bytes()), ctx)? {
            c.property = format!("config {}", c.property);
            changes.push(c);
        }
        Ok(changes)
    }

    fn apply(&self, r: &CompiledResource, changes: &[Change], ctx: &mut Ctx) -> Result<Applied> {
        let p = props(r)?;
        let Some(pr) = provider(p) else { return Err(Error::Failed("no time daemon".into())) };
        if changes.iter().any(|c| c.property == "package") {
            super::package::ensure_installed(ctx, &[package(pr, ctx.facts)])?;
        }
        let text = render(pr, p, ctx.facts, &r.id.to_string());
        let path = Path::new(config_path(pr, ctx.facts));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io(format!("mkdir {}", dir.display())))?;
        }
        // Re-check after a package install: the package brings its own file.
        let file_changes = file::check(path, &want(text.as_bytes()), ctx)?;
        if !file_changes.is_empty() {
            file::apply_now(path, &want(text.as_bytes()), &file_changes, ctx)?;
            systemd::daemon_reload_if_pending(ctx.runner, &mut ctx.run.systemd)?;
            systemd::systemctl(ctx.runner, "restart", unit(pr, ctx.facts))?;
        }
        Ok(Applied::Done)
    }

    fn verify(&self, r: &CompiledResource, ctx: &mut Ctx) -> Result<Vec<Change>> {
        let p = props(r)?;
        let Some(pr) = provider(p) else { return Ok(vec![]) };
        let text = render(pr, p, ctx.facts, &r.id.to_string());
        file::verify(Path::new(config_path(pr, ctx.facts)), &want(text.as_bytes()), ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ntp(y: &str) -> NtpProps {
        serde_yaml::from_str(y).unwrap()
    }

    #[test]
    fn chrony_config_on_debian_and_ec2_defaults() {
        let facts = serde_json::json!({"os": {"family": "debian"}});
        let c = render(
            NtpProvider::Chrony,
            &ntp("{servers: [time.example.net], pools: [pool.example.net], maxpoll: 10}"),
            &facts,
            "ntp:x",
        );
        assert!(c.contains("server time.example.net iburst maxpoll 10\n"), "{c}");
        assert!(c.contains("pool pool.example.net iburst maxpoll 10\n"));
        assert!(c.contains("makestep 1 3\n"));
        let ec2 = serde_json::json!({"os": {"family": "redhat"}, "ec2": {"region": "eu-west-1"}});
        let c = render(NtpProvider::Chrony, &ntp("{makestep: {threshold: 0.5, limit: -1}}"), &ec2, "ntp:x");
        assert!(c.contains("server 169.254.169.123 iburst\n") && c.contains("makestep 0.5 -1\n"), "{c}");
        let t = render(NtpProvider::Timesyncd, &ntp("{}"), &facts, "ntp:x");
        assert!(t.contains("[Time]\nNTP=2.debian.pool.ntp.org\n"), "{t}");
    }
}
