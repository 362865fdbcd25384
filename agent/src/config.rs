//! `/etc/tend/agent.yaml`: where the agent keeps its state, how often it
//! runs, and where its facts come from. Command-line flags override it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;

use crate::facts::{Ec2Mode, FactOptions};

pub const DEFAULT_PATH: &str = "/etc/tend/agent.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Holds the identity, the recipe cache, queued reports, the lock and the last report.
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Time between runs (`30m`, `1h`).
    #[serde(default = "default_interval", with = "duration")]
    pub interval: Duration,
    /// Spread of run start times across the fleet: each host waits a fixed
    /// offset of up to `splay` (from its node id), plus a little jitter, on every run.
    #[serde(default = "default_splay", with = "duration")]
    pub splay: Duration,
    #[serde(default = "default_facts_dir")]
    pub facts_dir: PathBuf,
    /// How long an executable in the facts directory may run (`10s`).
    #[serde(default = "default_fact_timeout", with = "duration")]
    pub fact_timeout: Duration,
    /// How long an executable's output is reused (`5m`; `0s`: run it every time).
    #[serde(default = "default_fact_cache", with = "duration")]
    pub fact_cache: Duration,
    /// `auto`, `on` or `off`.
    #[serde(default = "default_ec2")]
    pub ec2: String,
    /// ed25519 public keys (hex, as `tend recipe keygen` prints them). When
    /// set, only recipes signed by one of them are converged.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// `s3://bucket/prefix/`: read recipes from S3 instead of a server
    /// (requires `trusted_keys`). Unset: the server the agent registered with.
    #[serde(default)]
    pub source: Option<String>,
    /// Server URLs to try in order (replicas behind one CA). Unset: the
    /// server the agent registered with. The first that answers serves the
    /// whole run (recipes, facts, reports).
    #[serde(default)]
    pub servers: Vec<String>,
    /// Hold the run-command channel open (the daemon, when registered).
    #[serde(default = "yes")]
    pub commands: bool,
    /// Let a command reboot the host (a script exiting 194).
    #[serde(default = "yes")]
    pub reboot: bool,
    /// Register at start when not registered (an image, cloud-init): so
    /// an instance whose identity was reset registers as a new node.
    #[serde(default)]
    pub register: Option<AutoRegister>,
}

/// `register:` in the configuration: what `tend-agent register` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoRegister {
    pub server: String,
    pub ca: PathBuf,
    pub activation_id: String,
    /// The code, or `activation_code_file` (a file holding it).
    #[serde(default)]
    pub activation_code: Option<String>,
    #[serde(default)]
    pub activation_code_file: Option<PathBuf>,
    #[serde(default)]
    pub tags: tend_model::wire::Tags,
}

impl AutoRegister {
    pub fn code(&self) -> anyhow::Result<String> {
        match (&self.activation_code, &self.activation_code_file) {
            (Some(c), _) => Ok(c.clone()),
            (None, Some(f)) => Ok(std::fs::read_to_string(f)
                .with_context(|| format!("reading the activation code from {}", f.display()))?
                .trim()
                .to_string()),
            (None, None) => anyhow::bail!("register: needs activation_code or activation_code_file"),
        }
    }
}

fn yes() -> bool {
    true
}

fn default_state_dir() -> PathBuf {
    PathBuf::from("/var/lib/tend")
}
fn default_interval() -> Duration {
    Duration::from_secs(30 * 60)
}
fn default_splay() -> Duration {
    Duration::from_secs(5 * 60)
}
fn default_facts_dir() -> PathBuf {
    PathBuf::from("/etc/tend/facts.d")
}
fn default_fact_timeout() -> Duration {
    crate::facts::DEFAULT_EXEC_TIMEOUT
}
fn default_fact_cache() -> Duration {
    crate::facts::DEFAULT_EXEC_CACHE
}
fn default_ec2() -> String {
    "auto".into()
}

impl Default for AgentConfig {
    fn default() -> Self {
        serde_yaml::from_str("{}").unwrap_or_else(|_| AgentConfig {
            state_dir: default_state_dir(),
            interval: default_interval(),
            splay: default_splay(),
            facts_dir: default_facts_dir(),
            fact_timeout: default_fact_timeout(),
            fact_cache: default_fact_cache(),
            ec2: default_ec2(),
            trusted_keys: Vec::new(),
            source: None,
            servers: Vec::new(),
            commands: true,
            reboot: true,
            register: None,
        })
    }
}

mod duration {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s).map_err(|e| serde::de::Error::custom(format!("{s:?}: {e}")))
    }
}

impl AgentConfig {
    /// Parses and checks the text of a configuration file (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<AgentConfig> {
        let c: AgentConfig = tend_model::yaml::parse(text, &tend_model::yaml::YamlLimits::CONFIG)
            .map_err(|e| anyhow::anyhow!("{}:{}:{}: {}", path.display(), e.line, e.col, e.message))
            .context("reading the agent configuration")?;
        anyhow::ensure!(c.interval >= Duration::from_secs(1), "{}: interval must be at least 1s", path.display());
        anyhow::ensure!(!c.fact_timeout.is_zero(), "{}: fact_timeout must be more than 0s", path.display());
        if let Some(src) = &c.source {
            s3_location(src).with_context(|| format!("{}: source", path.display()))?;
            anyhow::ensure!(
                !c.trusted_keys.is_empty(),
                "{}: an S3 source needs trusted_keys: S3 says nothing about who wrote the recipes, so they must be signed",
                path.display()
            );
        }
        Ok(c)
    }

    /// Reads FILE, or the default file when it exists, or the defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<AgentConfig> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => AgentConfig::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(AgentConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    /// The servers to try, in order: `servers`, or the registered one.
    pub fn server_urls(&self, registered: &str) -> Vec<String> {
        if self.servers.is_empty() {
            vec![registered.to_string()]
        } else {
            self.servers.iter().map(|s| s.trim_end_matches('/').to_string()).collect()
        }
    }

    pub fn fact_options(&self) -> anyhow::Result<FactOptions> {
        Ok(FactOptions {
            facts_dir: self.facts_dir.clone(),
            ec2: self.ec2.parse::<Ec2Mode>().map_err(anyhow::Error::msg)?,
            cache_dir: Some(self.state_dir.clone()),
            exec_timeout: self.fact_timeout,
            exec_cache: self.fact_cache,
            ..FactOptions::default()
        })
    }
}

/// `s3://bucket/prefix/` → (bucket, object key of the recipe set).
pub fn s3_location(url: &str) -> anyhow::Result<(String, String)> {
    let Some(rest) = url.strip_prefix("s3://") else { anyhow::bail!("{url:?} is not an s3://bucket/prefix/ URL") };
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        anyhow::bail!("{url:?} names no bucket");
    }
    let prefix = prefix.trim_matches('/');
    let key = if prefix.is_empty() { "recipes.json".to_string() } else { format!("{prefix}/recipes.json") };
    Ok((bucket.to_string(), key))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<AgentConfig> {
        AgentConfig::parse(text, Path::new("agent.yaml"))
    }

    #[test]
    fn executable_fact_settings() {
        let d = parse("{}").unwrap();
        assert_eq!((d.fact_timeout, d.fact_cache), (Duration::from_secs(10), Duration::from_secs(300)));
        let c = parse("fact_timeout: 30s\nfact_cache: 0s\n").unwrap();
        let o = c.fact_options().unwrap();
        assert_eq!((o.exec_timeout, o.exec_cache), (Duration::from_secs(30), Duration::ZERO));
        assert_eq!(o.cache_dir.as_deref(), Some(Path::new("/var/lib/tend")));
        let e = parse("fact_timeout: 0s\n").unwrap_err();
        assert!(format!("{e:#}").contains("fact_timeout must be more than 0s"), "{e:#}");
        assert!(parse("fact_cache: soon\n").is_err());
    }

    #[test]
    fn parses_s3_urls() {
        assert_eq!(s3_location("s3://b/web/prod/").unwrap(), ("b".into(), "web/prod/recipes.json".into()));
        assert_eq!(s3_location("s3://b").unwrap(), ("b".into(), "recipes.json".into()));
        assert!(s3_location("https://b/x").is_err());
        assert!(s3_location("s3:///x").is_err());
    }
}
