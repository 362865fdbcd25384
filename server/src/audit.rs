//! Bounds on the audit log: a detail is at most [`MAX_DETAIL`] bytes,
//! refusals of anonymous requests are written at most once a minute per
//! kind (with the count of those left out), and entries past their
//! retention are deleted. Nothing a caller without credentials sends can
//! grow the log faster than that.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;

use sqlx::Row;
use tend_model::wire::AuditEntry;

use crate::store::{Result, Store, decode, now};

/// Bytes of one audit entry's detail (JSON).
pub const MAX_DETAIL: usize = 4096;
/// Characters kept of one string inside a detail that is over [`MAX_DETAIL`].
const CLIPPED_STRING: usize = 200;

/// `s`, cut to `max` characters with an ellipsis.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// The detail as stored: as given when small; else with every long string
/// clipped, long lists cut, and `"truncated": true`; else only its size.
pub fn bounded(detail: &Value) -> String {
    let text = detail.to_string();
    if text.len() <= MAX_DETAIL {
        return text;
    }
    fn shrink(v: &Value, depth: usize) -> Value {
        match v {
            Value::String(s) => Value::String(clip(s, CLIPPED_STRING)),
            Value::Array(a) if depth < 4 => Value::Array(a.iter().take(16).map(|x| shrink(x, depth + 1)).collect()),
            Value::Object(m) if depth < 4 => {
                Value::Object(m.iter().take(32).map(|(k, x)| (clip(k, 64), shrink(x, depth + 1))).collect())
            }
            Value::Array(_) | Value::Object(_) => Value::String("…".into()),
            other => other.clone(),
        }
    }
    let mut small = shrink(detail, 0);
    if let Value::Object(m) = &mut small {
        m.insert("truncated".into(), Value::Bool(true));
    }
    let text = small.to_string();
    if text.len() <= MAX_DETAIL {
        return text;
    }
    serde_json::json!({ "truncated": true, "bytes": detail.to_string().len() }).to_string()
}

/// Lets one entry per key through each `window`; counts the rest.
pub struct Throttle {
    window: Duration,
    seen: Mutex<HashMap<String, (Instant, u64)>>,
}

impl Default for Throttle {
    fn default() -> Self {
        Throttle { window: Duration::from_secs(60), seen: Mutex::default() }
    }
}

impl Throttle {
    /// `Some(n)` when an entry for `key` should be written now, `n` being how
    /// many were left out since the last one; `None` to leave this one out.
    pub fn admit(&self, key: &str) -> Option<u64> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        // Few keys (one per kind of refusal); forget the stale ones anyway.
        if seen.len() > 64 {
            seen.retain(|_, (at, _)| now.duration_since(*at) < self.window);
        }
        match seen.get_mut(key) {
            Some((at, skipped)) if now.duration_since(*at) < self.window => {
                *skipped += 1;
                None
            }
            Some((at, skipped)) => {
                let n = *skipped;
                (*at, *skipped) = (now, 0);
                Some(n)
            }
            None => {
                seen.insert(key.to_string(), (now, 0));
                Some(0)
            }
        }
    }
}

impl Store {
    /// Appends an audit entry; its detail is bounded ([`bounded`]).
    pub async fn audit(&self, actor: &str, action: &str, detail: &serde_json::Value) -> Result<()> {
        let (actor, action) = (clip(actor, 128), clip(action, 128));
        sqlx::query("INSERT INTO audit (at, actor, action, detail) VALUES ($1, $2, $3, $4)")
            .bind(now())
            .bind(actor)
            .bind(action)
            .bind(bounded(detail))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Deletes audit entries older than `cutoff` (RFC 3339); returns how many.
    pub async fn purge_audit(&self, cutoff: &str) -> Result<u64> {
        let r = sqlx::query("DELETE FROM audit WHERE at < $1").bind(cutoff).execute(&self.pool).await?;
        Ok(r.rows_affected())
    }

    pub async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>> {
        let rows = sqlx::query("SELECT at, actor, action, detail FROM audit ORDER BY id DESC LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditEntry {
                    at: r.get("at"),
                    actor: r.get("actor"),
                    action: r.get("action"),
                    detail: decode("audit detail", r.get::<&str, _>("detail"))?,
                })
            })
            .collect()
    }
}

/// Deletes audit entries past `retention`, hourly.
pub async fn purge_loop(store: Store, retention: Duration) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let cutoff = humantime::format_rfc3339_seconds(std::time::SystemTime::now() - retention).to_string();
        match store.purge_audit(&cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(entries = n, "deleted audit entries past their retention"),
            Err(e) => tracing::error!(error = %e, "purging the audit log"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_are_bounded() {
        let small = serde_json::json!({ "activation": "act-1" });
        assert_eq!(bounded(&small), small.to_string());
        let huge = serde_json::json!({ "activation": "a".repeat(30_000_000), "hostname": "h" });
        let out = bounded(&huge);
        assert!(out.len() <= MAX_DETAIL, "{}", out.len());
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["truncated"], true);
        assert_eq!(v["hostname"], "h");
        let wide = Value::Object((0..100_000).map(|i| (format!("k{i}"), Value::from(i))).collect());
        assert!(bounded(&wide).len() <= MAX_DETAIL);
        assert_eq!(clip("héllo", 2), "hé…");
    }

    #[test]
    fn throttle_admits_one_per_window() {
        let t = Throttle { window: Duration::from_millis(200), seen: Mutex::default() };
        assert_eq!(t.admit("WrongCode"), Some(0));
        assert_eq!(t.admit("WrongCode"), None);
        assert_eq!(t.admit("WrongCode"), None);
        assert_eq!(t.admit("Expired"), Some(0));
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(t.admit("WrongCode"), Some(2));
    }
}
