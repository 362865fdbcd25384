use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Presence;

/// A local user account, managed with useradd, usermod and userdel.
/// (No `Default`: the defaults are serde's, `manage_home: true` among them.)
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UserProps {
    #[serde(default)]
    pub state: Presence,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// Primary group: a name or a numeric gid. Created by a `group` resource if declared.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Supplementary groups: exactly these, unless `append` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<String>>,
    /// Only add the listed supplementary groups; never remove others.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub append: bool,
    /// Home directory (created with the skeleton when missing, unless `manage_home: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home: Option<String>,
    #[serde(default = "yes")]
    pub manage_home: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// The GECOS field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// A system account (uid from the system range) when created.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub system: bool,
    /// A crypt(3) hash (`openssl passwd -6`), or `!`/`*` to lock. Always treated as sensitive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Exactly these keys in ~/.ssh/authorized_keys (0600, in a 0700 ~/.ssh owned by the user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_authorized_keys: Option<Vec<String>>,
    /// Days a password may be used before it must be changed (shadow's
    /// maximum, `chage -M`); -1: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_max_age: Option<i64>,
    /// Days before a password may be changed again (`chage -m`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_min_age: Option<i64>,
    /// Days of warning before the password expires (`chage -W`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_warn_age: Option<i64>,
    /// The day the account expires (`YYYY-MM-DD`, `chage -E`), or `never`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// With `state: absent`, also remove the home directory and mail spool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub remove_home: bool,
}

fn yes() -> bool {
    true
}

impl UserProps {
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(p) = &self.password {
            let is_hash = |h: &str| h.starts_with('$') && h.matches('$').count() >= 3;
            let hashed = is_hash(p);
            // Locked: `!`, `*`, `!*`, or `!` before a hash (usermod -L).
            let locked = matches!(p.as_str(), "!" | "*" | "!*" | "!!") || p.strip_prefix('!').is_some_and(is_hash);
            if p.contains(':') || p.contains('\n') {
                out.push(("password", "password must not contain ':' or a newline".to_string()));
            }
            if !hashed && !locked {
                out.push((
                    "password",
                    "password must be a crypt(3) hash such as `openssl passwd -6` prints (or `!` to lock), never plain text"
                        .to_string(),
                ));
            }
        }
        if let Some(h) = &self.home {
            if let Some(e) = super::check_absolute_path(h) {
                out.push(("home", e));
            }
        }
        if let Some(s) = &self.shell {
            if !s.starts_with('/') {
                out.push(("shell", format!("{s:?} is not an absolute path")));
            }
        }
        if self.comment.as_deref().is_some_and(|c| c.contains(':') || c.contains('\n')) {
            out.push(("comment", "comment must not contain ':' or a newline".to_string()));
        }
        for (field, v, min) in [
            ("password_max_age", self.password_max_age, -1),
            ("password_min_age", self.password_min_age, 0),
            ("password_warn_age", self.password_warn_age, 0),
        ] {
            if v.is_some_and(|v| !(min..=MAX_AGE).contains(&v)) {
                out.push((field, format!("days from {min} to {MAX_AGE}")));
            }
        }
        if let Some(e) = &self.expires {
            if expiry_days(e).is_none() {
                out.push(("expires", format!("{e:?} is not a date YYYY-MM-DD (from 1970-01-02) or `never`")));
            }
        }
        if let Some(keys) = &self.ssh_authorized_keys {
            for k in keys {
                if k.contains('\n') || k.split_whitespace().count() < 2 {
                    out.push(("ssh_authorized_keys", format!("{:?} is not a single public key line", short(k))));
                }
            }
        }
        out
    }
}

/// The largest password age shadow-utils take (days).
const MAX_AGE: i64 = 99999;

/// An `expires` value as shadow's field: days since 1970-01-01, None for
/// `never`; the outer None when it is neither a valid date nor `never`.
pub fn expiry_days(v: &str) -> Option<Option<i64>> {
    if v == "never" {
        return Some(None);
    }
    let mut parts = v.splitn(3, '-');
    let mut num = |len: usize| {
        parts.next().filter(|p| p.len() == len && p.bytes().all(|b| b.is_ascii_digit()))?.parse::<i64>().ok()
    };
    let (y, m, d) = (num(4)?, num(2)?, num(2)?);
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Day 0 in shadow means "expired"; `chage -E 0` is not what a date means.
    (days > 0).then_some(Some(days))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// The date (`YYYY-MM-DD`) of a day count since 1970-01-01.
pub fn civil_from_days(z: i64) -> String {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A valid user or group name: what useradd accepts on Debian and RHEL.
pub fn check_account_name(name: &str) -> Option<String> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !name.bytes().all(|b| b.is_ascii_digit());
    (!ok).then(|| format!("{name:?} is not a valid account name (letters, digits, '_', '-', '.'; at most 32)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_day_counts_round_trip() {
        assert_eq!(expiry_days("1970-01-02"), Some(Some(1)));
        assert_eq!(expiry_days("2024-02-29"), Some(Some(19782)));
        assert_eq!(expiry_days("never"), Some(None));
        for bad in ["1970-01-01", "2023-02-29", "2024-13-01", "24-01-01", "2024-1-01", "tomorrow", "2024-01-01x"] {
            assert_eq!(expiry_days(bad), None, "{bad}");
        }
        for d in [1, 365, 19782, 20000, 2_932_896] {
            assert_eq!(expiry_days(&civil_from_days(d)), Some(Some(d)));
        }
    }
}
