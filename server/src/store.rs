//! The store: one pool over embedded SQLite or PostgreSQL (sqlx's `Any`
//! driver), the versioned schema ([`migrations`]), and the tables every
//! capability shares: tokens (which [`crate::auth`] checks), nodes, and
//! stored-data helpers ([`decode`], [`stored_enum!`]). Each capability adds
//! its own queries in its folder's `store.rs` (`impl Store`); the audit log's
//! are in [`crate::audit`]. Every query is portable SQL (`$N` placeholders,
//! `ON CONFLICT`), so both backends pass the same tests.

use std::path::Path;

use sqlx::AnyPool;
use sqlx::Row;
use sqlx::any::{AnyPoolOptions, AnyRow};
use tend_model::wire::{LastRun, Node, Role, Tags, Token};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(String),
    #[error("migrating the database: {0}")]
    Migrate(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

pub mod migrations;

/// A status stored as its name (`"InProgress"`): the same text the
/// database held before the types, so the schema does not change. A name
/// read back that is none of the variants is corrupt data.
macro_rules! stored_enum {
    ($(#[$m:meta])* $vis:vis enum $name:ident { $($(#[$vm:meta])* $v:ident),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        $vis enum $name { #[default] $($(#[$vm])* $v),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),+ }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::store::StoreError;
            fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
                match s {
                    $(stringify!($v) => Ok($name::$v),)+
                    other => Err($crate::store::StoreError::Corrupt(format!(
                        "{} {other:?} is not one of {}", stringify!($name), [$(stringify!($v)),+].join(", ")
                    ))),
                }
            }
        }
    };
}
pub(crate) use stored_enum;

impl StoreError {
    /// A fault of the storage rather than of the request: the disk is full,
    /// I/O failed, the database is unreachable or busy past its timeout.
    pub fn is_fault(&self) -> bool {
        let StoreError::Db(e) = self else { return matches!(self, StoreError::Io(_)) };
        match e {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(d) => {
                let code = d.code().unwrap_or_default();
                if code.len() == 5 {
                    // A PostgreSQL SQLSTATE: classes 08 connection, 53 resources
                    // (disk full, memory), 57 operator intervention, 58 system (I/O).
                    ["08", "53", "57", "58"].iter().any(|c| code.starts_with(c))
                } else {
                    // An SQLite result code (extended codes keep the primary in the
                    // low byte): BUSY 5, LOCKED 6, NOMEM 7, READONLY 8, IOERR 10,
                    // CORRUPT 11, FULL 13, CANTOPEN 14.
                    code.parse::<u32>().is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 7 | 8 | 10 | 11 | 13 | 14))
                }
            }
            _ => false,
        }
    }
}

/// A token as the server checks it.
#[derive(Debug, Clone)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub scope: Option<String>,
    pub revoked: bool,
}

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RegisterRefusal {
    UnknownActivation,
    WrongCode,
    Expired,
    LimitReached,
    KeyAlreadyRegistered,
}

/// One store over SQLite or PostgreSQL (sqlx's `Any` driver): the same
/// portable SQL (`$N` placeholders, `ON CONFLICT`) runs on both, so both
/// pass the same tests.
#[derive(Clone)]
pub struct Store {
    /// Domain modules add their queries in their own `store.rs` (`impl Store`).
    pub(crate) pool: AnyPool,
    /// Reports kept per node; older ones are deleted as new ones arrive.
    pub(crate) reports_kept: i64,
    pub(crate) postgres: bool,
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// Stored JSON read back: what does not parse is corrupt data, an error
/// (never an empty value that would act as if nothing were there).
pub fn decode<T: serde::de::DeserializeOwned>(what: &str, text: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn tags_of(text: &str) -> Result<Tags> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("tags: {e}")))
}

/// False if the connection has a transaction open: `BEGIN` is refused
/// inside one (a write failed half-way; the pool then closes it).
async fn sqlite_idle(conn: &mut sqlx::AnyConnection) -> std::result::Result<bool, sqlx::Error> {
    if let Err(e) = sqlx::query("BEGIN").execute(&mut *conn).await {
        tracing::debug!(error = %e, "closing a database connection left inside a transaction");
        return Ok(false);
    }
    sqlx::query("ROLLBACK").execute(&mut *conn).await?;
    Ok(true)
}

impl Store {
    /// Opens (creating) `DIR/tend.db` in WAL mode and applies the schema.
    pub async fn open_sqlite(dir: &Path) -> Result<Store> {
        // 0600 from the start (SQLite gives its -wal and -shm files the same mode).
        {
            use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
            let path = dir.join("tend.db");
            let io = |e: std::io::Error| StoreError::Io(format!("{}: {e}", path.display()));
            std::fs::OpenOptions::new().create(true).append(true).mode(0o600).open(&path).map_err(io)?;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        let url = format!("sqlite://{}?mode=rwc", dir.join("tend.db").display());
        // Readers run in parallel under WAL; writers take turns (busy_timeout),
        // and every write transaction starts with its write.
        let store = Store::connect(&url, 4).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens a PostgreSQL database (`postgres://…`) and applies the schema.
    pub async fn open_postgres(url: &str) -> Result<Store> {
        let store = Store::connect(url, 16).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Applies the migrations this database has not had ([`migrations`]).
    /// On PostgreSQL the migrator holds an advisory lock meanwhile, so one
    /// replica at a time migrates.
    async fn migrate(&self) -> Result<()> {
        let m = migrations::migrator(self.postgres).await.map_err(|e| StoreError::Migrate(e.to_string()))?;
        m.run(&self.pool).await.map_err(|e| StoreError::Migrate(e.to_string()))
    }

    async fn connect(url: &str, max: u32) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        // Per connection: WAL without an fsync per commit
                        // (durable at checkpoints), and wait rather than fail on a lock.
                        for pragma in
                            ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=NORMAL", "PRAGMA busy_timeout=5000"]
                        {
                            sqlx::query(pragma).execute(&mut *conn).await?;
                        }
                    }
                    Ok(())
                })
            })
            // A write that failed mid-transaction (disk full, I/O error) can
            // leave SQLite's transaction open while sqlx believes it closed:
            // every later write on that connection would then be answered
            // yet never committed, and hold the write lock. A connection is
            // therefore checked when it comes back and before it is reused,
            // and closed (which rolls back) unless it is idle.
            .after_release(move |conn, _| {
                Box::pin(async move { if sqlite { sqlite_idle(conn).await } else { Ok(true) } })
            })
            .before_acquire(move |conn, _| {
                Box::pin(async move { if sqlite { sqlite_idle(conn).await } else { Ok(true) } })
            })
            .connect(url)
            .await?;
        Ok(Store { pool, reports_kept: REPORTS_KEPT, postgres: !sqlite })
    }

    // --- tokens ---

    pub async fn create_token(
        &self,
        id: &str,
        name: &str,
        role: Role,
        scope: Option<&str>,
        hash: &str,
    ) -> Result<String> {
        let at = now();
        sqlx::query(
            "INSERT INTO tokens (id, name, role, scope, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(name)
        .bind(role.to_string())
        .bind(scope)
        .bind(hash)
        .bind(&at)
        .execute(&self.pool)
        .await?;
        Ok(at)
    }

    pub async fn token_by_hash(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let row = sqlx::query("SELECT id, name, role, scope, revoked_at FROM tokens WHERE secret_hash = $1")
            .bind(hash)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| {
            let role: String = r.get("role");
            Ok(TokenRecord {
                id: r.get("id"),
                name: r.get("name"),
                role: role.parse().map_err(StoreError::Corrupt)?,
                scope: r.get("scope"),
                revoked: r.get::<Option<String>, _>("revoked_at").is_some(),
            })
        })
        .transpose()
    }

    pub async fn list_tokens(&self) -> Result<Vec<Token>> {
        let rows =
            sqlx::query("SELECT id, name, role, scope, created_at, revoked_at FROM tokens ORDER BY created_at, id")
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|r| {
                let role: String = r.get("role");
                Ok(Token {
                    id: r.get("id"),
                    name: r.get("name"),
                    role: role.parse().map_err(StoreError::Corrupt)?,
                    scope: r.get("scope"),
                    token: None,
                    created_at: r.get("created_at"),
                    revoked_at: r.get("revoked_at"),
                })
            })
            .collect()
    }

    /// Returns false if there is no such token.
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    pub async fn count_tokens(&self) -> Result<i64> {
        Ok(sqlx::query("SELECT COUNT(*) AS n FROM tokens").fetch_one(&self.pool).await?.get("n"))
    }

    // --- nodes ---

    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        let rows = sqlx::query("SELECT * FROM nodes WHERE deregistered_at IS NULL ORDER BY hostname, id")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(node_of).collect()
    }

    pub async fn node(&self, id: &str) -> Result<Option<Node>> {
        let row = sqlx::query("SELECT * FROM nodes WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(node_of).transpose()
    }

    /// The live node holding this client certificate; deregistered nodes are
    /// refused at once.
    pub async fn node_by_cert(&self, cert_fingerprint: &str) -> Result<Option<Node>> {
        let row = sqlx::query("SELECT * FROM nodes WHERE cert_fingerprint = $1 AND deregistered_at IS NULL")
            .bind(cert_fingerprint)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(node_of).transpose()
    }

    pub async fn set_facts(&self, id: &str, facts: &str) -> Result<()> {
        sqlx::query("UPDATE nodes SET facts = $1, facts_at = $2, last_seen = $3 WHERE id = $4")
            .bind(facts)
            .bind(now())
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn facts(&self, id: &str) -> Result<Option<serde_json::Value>> {
        let row = sqlx::query("SELECT facts FROM nodes WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        let text: Option<String> = row.and_then(|r| r.get::<Option<String>, _>("facts"));
        text.map(|t| decode::<serde_json::Value>("facts", &t)).transpose()
    }

    /// Records that the node was seen; at most one write per node per 30 s
    /// (a heartbeat must not turn into a write per request).
    pub async fn touch_node(&self, id: &str) -> Result<()> {
        let stale =
            humantime::format_rfc3339_seconds(std::time::SystemTime::now() - std::time::Duration::from_secs(30))
                .to_string();
        sqlx::query("UPDATE nodes SET last_seen = $1 WHERE id = $2 AND (last_seen IS NULL OR last_seen < $3)")
            .bind(now())
            .bind(id)
            .bind(stale)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn deregister(&self, id: &str) -> Result<bool> {
        let r = sqlx::query("UPDATE nodes SET deregistered_at = $1 WHERE id = $2 AND deregistered_at IS NULL")
            .bind(now())
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Seals again every stored value that holds sealed content (assignment
    /// parameters, command deliveries): `f` returns the new text, or None to
    /// leave a row as it is. One transaction; returns how many rows changed.
    pub async fn reseal(&self, f: impl Fn(&str) -> std::result::Result<Option<String>, String>) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        let mut n = 0;
        for (table, column) in [
            ("assignments", "params"),
            ("commands", "delivery"),
            ("associations", "params"),
            ("associations", "raw_params"),
            ("executions", "params"),
        ] {
            let rows = sqlx::query(&format!("SELECT id, {column} AS v FROM {table}")).fetch_all(&mut *tx).await?;
            for r in rows {
                let (id, v): (String, String) = (r.get("id"), r.get("v"));
                if let Some(new) = f(&v).map_err(|e| StoreError::Corrupt(format!("{table} {id}: {e}")))? {
                    sqlx::query(&format!("UPDATE {table} SET {column} = $1 WHERE id = $2"))
                        .bind(new)
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    n += 1;
                }
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    /// A write of some size (64 KiB, then taken
    /// back): it succeeds only once the store takes real writes again.
    pub async fn probe_write(&self, replica: &str) -> Result<()> {
        let pad = format!("{}|{}", now(), "x".repeat(64 * 1024));
        let q = "INSERT INTO health (replica, at) VALUES ($1, $2) ON CONFLICT (replica) DO UPDATE SET at = excluded.at";
        sqlx::query(q).bind(replica).bind(&pad).execute(&self.pool).await?;
        sqlx::query(q).bind(replica).bind(now()).execute(&self.pool).await?;
        Ok(())
    }
}

/// A node about to be registered.
pub struct NewNode {
    pub id: String,
    pub hostname: String,
    pub tags: Tags,
    pub key_fingerprint: String,
    pub cert_fingerprint: String,
}

fn node_of(r: &AnyRow) -> Result<Node> {
    let last_run: Option<String> = r.get("last_run");
    Ok(Node {
        id: r.get("id"),
        hostname: r.get("hostname"),
        tags: tags_of(r.get("tags"))?,
        registered_at: r.get("registered_at"),
        last_seen: r.get("last_seen"),
        last_run: last_run.map(|t| decode::<LastRun>("last run", &t)).transpose()?,
        pending: r.try_get::<Option<i64>, _>("pending")?.map(|p| p.max(0) as u64),
        deregistered_at: r.get("deregistered_at"),
        facts: None,
        last_report: None,
    })
}

/// Compares secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The default number of reports kept per node.
pub const REPORTS_KEPT: i64 = 100;

impl Store {
    /// Keeps this many reports per node (at least one).
    pub fn with_reports_kept(mut self, n: u32) -> Store {
        self.reports_kept = i64::from(n.max(1));
        self
    }
}

impl Store {
    /// Tries to become the replica that fires schedules. SQLite has one
    /// replica: always. PostgreSQL: a session advisory lock on a connection
    /// of its own, held for as long as this replica lives (PostgreSQL
    /// releases it the moment the replica dies).
    pub async fn try_lead(&self) -> Result<Option<Leadership>> {
        if !self.postgres {
            return Ok(Some(Leadership { conn: None }));
        }
        let mut conn = self.pool.acquire().await?.detach();
        let row = sqlx::query("SELECT pg_try_advisory_lock(7366527) AS ok").fetch_one(&mut conn).await?;
        Ok(row.try_get::<bool, _>("ok")?.then_some(Leadership { conn: Some(conn) }))
    }
}

/// This replica fires the schedules while it holds this.
pub struct Leadership {
    conn: Option<sqlx::AnyConnection>,
}

impl Leadership {
    /// False once the lock's connection is gone (then lead again, or not).
    pub async fn alive(&mut self) -> bool {
        match &mut self.conn {
            None => true,
            Some(c) => sqlx::query("SELECT 1").execute(c).await.is_ok(),
        }
    }
}
