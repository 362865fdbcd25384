use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The host's time zone (`timezone: Europe/Paris`): the `/etc/localtime`
/// link into the zone database, and `/etc/timezone` where the distribution
/// keeps one (Debian). The zone must exist in `/usr/share/zoneinfo`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TimezoneProps {}

/// Checks a zone name's shape (the agent checks that the zone exists).
pub fn check_zone(zone: &str) -> Option<String> {
    let ok = !zone.is_empty()
        && zone.len() <= 64
        && !zone.starts_with('/')
        && zone.split('/').all(|w| !w.is_empty() && w != "." && w != "..")
        && zone.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-' | b'+'));
    (!ok).then(|| format!("{zone:?} is not a time zone name such as Europe/Paris or UTC"))
}
