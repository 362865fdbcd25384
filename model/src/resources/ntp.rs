use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Time synchronisation daemons tend can configure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NtpProvider {
    Chrony,
    Timesyncd,
    Ntpd,
}

/// `makestep THRESHOLD LIMIT`: step the clock when off by more than
/// `threshold` seconds during the first `limit` updates.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MakeStep {
    pub threshold: f64,
    pub limit: i32,
}

impl Eq for MakeStep {}

/// Time synchronisation: servers, pools and options, written in the
/// provider's own configuration. The time service restarts only when the
/// configuration changed. With no servers or pools, EC2 hosts use the Amazon
/// Time Sync Service (169.254.169.123) and others keep the distribution's pool.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NtpProps {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<String>,
    #[serde(default = "yes")]
    pub iburst: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minpoll: Option<i8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maxpoll: Option<i8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub makestep: Option<MakeStep>,
    /// The daemon to configure; by default the one the host has (chrony, then
    /// systemd-timesyncd, then ntpd), or chrony when `install` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<NtpProvider>,
    /// Install the provider's package when it is missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub install: bool,
}

fn yes() -> bool {
    true
}

impl NtpProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        for (field, list) in [("servers", &self.servers), ("pools", &self.pools)] {
            for s in list {
                let ok = !s.is_empty()
                    && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'_'));
                if !ok {
                    out.push((field, format!("{s:?} is not a host name or address")));
                }
            }
        }
        for (field, v) in [("minpoll", self.minpoll), ("maxpoll", self.maxpoll)] {
            if v.is_some_and(|p| !(-6..=24).contains(&p)) {
                out.push((field, format!("{field} must be between -6 and 24")));
            }
        }
        if let (Some(a), Some(b)) = (self.minpoll, self.maxpoll) {
            if a > b {
                out.push(("minpoll", "minpoll must not exceed maxpoll".to_string()));
            }
        }
        if self.provider == Some(NtpProvider::Timesyncd) && (self.minpoll.is_some() || self.makestep.is_some()) {
            out.push((
                "provider",
                "systemd-timesyncd has no minpoll or makestep (maxpoll sets PollIntervalMaxSec); use chrony"
                    .to_string(),
            ));
        }
        if self.provider == Some(NtpProvider::Timesyncd) && self.maxpoll.is_some_and(|p| p < 5) {
            out.push(("maxpoll", "systemd-timesyncd needs maxpoll 5 (32 s) or more".to_string()));
        }
        out
    }
}
