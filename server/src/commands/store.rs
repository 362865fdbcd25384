//! Documents, commands and their per-node invocations.

use sqlx::Row;
use sqlx::any::AnyRow;
use tend_model::command::{InvocationResult, InvocationStatus, InvocationView};

use crate::store::{Result, Store, StoreError, now, now_ms, stored_enum};

stored_enum! {
    /// A command as a whole: waiting for its first release, running, being
    /// cancelled, or ended (as [`aggregate`](super::dispatch::aggregate) sums up its invocations).
    pub enum CommandStatus {
        Pending, InProgress, Cancelling, Success, Failed, TimedOut, Cancelled, DeliveryTimedOut, Undeliverable,
    }
}

impl CommandStatus {
    /// The command status an invocation's final status sums up to.
    pub fn ended(s: InvocationStatus) -> CommandStatus {
        match s {
            InvocationStatus::Success => CommandStatus::Success,
            InvocationStatus::TimedOut => CommandStatus::TimedOut,
            InvocationStatus::Cancelled => CommandStatus::Cancelled,
            InvocationStatus::DeliveryTimedOut => CommandStatus::DeliveryTimedOut,
            InvocationStatus::Undeliverable => CommandStatus::Undeliverable,
            _ => CommandStatus::Failed,
        }
    }

    pub fn is_final(self) -> bool {
        !matches!(self, CommandStatus::Pending | CommandStatus::InProgress | CommandStatus::Cancelling)
    }
}

/// A command as stored (its invocations apart).
#[derive(Debug, Clone)]
pub struct CommandRow {
    pub id: String,
    pub document: String,
    /// The `Delivery` JSON every node receives.
    pub delivery: String,
    pub params_shown: String,
    pub targets: String,
    pub max_concurrency: i64,
    pub max_errors: i64,
    pub delivery_timeout_ms: i64,
    /// All steps' timeouts: an invocation silent for longer (plus a grace) timed out.
    pub run_timeout_ms: i64,
    pub status: CommandStatus,
    pub cancel_requested: bool,
    pub comment: Option<String>,
    pub created_at: String,
    pub created_by: String,
    pub finished_at: Option<String>,
}

pub struct NewCommand<'a> {
    pub row: &'a CommandRow,
    /// (node id, hostname, initial status) in dispatch order.
    pub nodes: &'a [(String, String, InvocationStatus)],
}

/// What the dispatcher needs of an invocation.
#[derive(Debug, Clone)]
pub struct InvocationRow {
    pub node_id: String,
    pub status: InvocationStatus,
    pub released_ms: Option<i64>,
    pub acked_ms: Option<i64>,
}

fn command_of(r: &AnyRow) -> Result<CommandRow> {
    Ok(CommandRow {
        id: r.try_get("id")?,
        document: r.try_get("document")?,
        delivery: r.try_get("delivery")?,
        params_shown: r.try_get("params_shown")?,
        targets: r.try_get("targets")?,
        max_concurrency: r.try_get("max_concurrency")?,
        max_errors: r.try_get("max_errors")?,
        delivery_timeout_ms: r.try_get("delivery_timeout_ms")?,
        run_timeout_ms: r.try_get("run_timeout_ms")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        comment: r.try_get("comment")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn status_of(s: &str) -> Result<InvocationStatus> {
    InvocationStatus::parse(s).ok_or_else(|| StoreError::Corrupt(format!("invocation status {s:?}")))
}

const TERMINAL: &str = "('Success','Failed','TimedOut','Cancelled','DeliveryTimedOut','Undeliverable')";

impl Store {
    // --- documents ---

    /// Stores a document version; false if it was already there.
    pub async fn put_document(&self, name: &str, version: &str, kind: &str, body: &str, by: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO documents (name, version, kind, body, created_at, created_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(version)
        .bind(kind)
        .bind(body)
        .bind(now())
        .bind(now_ms())
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// (version, kind, body, created_at) of a version, or of the newest.
    pub async fn document(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<(String, String, String, String)>> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT version, kind, body, created_at FROM documents WHERE name = $1 AND version = $2")
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query(
                    "SELECT version, kind, body, created_at FROM documents WHERE name = $1 \
                     ORDER BY created_ms DESC, version LIMIT 1",
                )
                .bind(name)
                .fetch_optional(&self.pool)
                .await?
            }
        };
        row.map(|r| Ok((r.try_get("version")?, r.try_get("kind")?, r.try_get("body")?, r.try_get("created_at")?)))
            .transpose()
    }

    /// (name, version, kind, created_at), newest version of each name first.
    pub async fn list_documents(&self) -> Result<Vec<(String, String, String, String)>> {
        let rows = sqlx::query(
            "SELECT name, version, kind, created_at FROM documents ORDER BY name, created_ms DESC, version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("version")?, r.try_get("kind")?, r.try_get("created_at")?)))
            .collect()
    }

    // --- commands ---

    /// Ids of the deregistered nodes.
    pub async fn deregistered_nodes(&self) -> Result<std::collections::HashSet<String>> {
        let rows = sqlx::query("SELECT id FROM nodes WHERE deregistered_at IS NOT NULL").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The command and all its invocations, in one transaction.
    pub async fn create_command(&self, c: NewCommand<'_>) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let r = c.row;
        sqlx::query(
            "INSERT INTO commands (id, document, delivery, params_shown, targets, max_concurrency, max_errors, \
             delivery_timeout_ms, run_timeout_ms, status, cancel_requested, comment, created_at, created_ms, \
             created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12, $13, $14)",
        )
        .bind(&r.id)
        .bind(&r.document)
        .bind(&r.delivery)
        .bind(&r.params_shown)
        .bind(&r.targets)
        .bind(r.max_concurrency)
        .bind(r.max_errors)
        .bind(r.delivery_timeout_ms)
        .bind(r.run_timeout_ms)
        .bind(r.status.as_str())
        .bind(&r.comment)
        .bind(&r.created_at)
        .bind(now_ms())
        .bind(&r.created_by)
        .execute(&mut *tx)
        .await?;
        for (i, (node, host, status)) in c.nodes.iter().enumerate() {
            sqlx::query(
                "INSERT INTO invocations (command_id, node_id, ord, hostname, status) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&r.id)
            .bind(node)
            .bind(i as i64)
            .bind(host)
            .bind(status.as_str())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn command(&self, id: &str) -> Result<Option<CommandRow>> {
        let row = sqlx::query("SELECT * FROM commands WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(command_of).transpose()
    }

    pub async fn list_commands(&self, limit: i64) -> Result<Vec<CommandRow>> {
        let rows = sqlx::query("SELECT * FROM commands ORDER BY created_ms DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(command_of).collect()
    }

    /// Ids of the commands not finished yet.
    pub async fn active_commands(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM commands WHERE finished_at IS NULL").fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// Deletes commands (with their invocations and output) that finished
    /// before `cutoff` (RFC 3339). Returns how many.
    pub async fn purge_commands(&self, cutoff: &str) -> Result<u64> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "DELETE FROM invocations WHERE command_id IN \
             (SELECT id FROM commands WHERE finished_at IS NOT NULL AND finished_at < $1)",
        )
        .bind(cutoff)
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query("DELETE FROM commands WHERE finished_at IS NOT NULL AND finished_at < $1")
            .bind(cutoff)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected())
    }

    /// Serializes changes to one command across replicas: on PostgreSQL a
    /// transaction-scoped advisory lock, released when the returned
    /// transaction is dropped (also if the holder dies). SQLite has one
    /// replica: nothing to take.
    pub async fn command_lock(&self, id: &str) -> Result<Option<sqlx::Transaction<'static, sqlx::Any>>> {
        if !self.postgres {
            return Ok(None);
        }
        let key = tend_model::compile::stable_hash(&[b"command:", id.as_bytes()]) as i64;
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(key).execute(&mut *tx).await?;
        Ok(Some(tx))
    }

    pub async fn request_cancel(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE commands SET cancel_requested = 1 WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn set_command_status(&self, id: &str, status: CommandStatus, finished: bool) -> Result<()> {
        let finished_at = finished.then(now);
        sqlx::query("UPDATE commands SET status = $1, finished_at = $2 WHERE id = $3")
            .bind(status.as_str())
            .bind(finished_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Status counts per command, for listings.
    pub async fn invocation_counts(&self, id: &str) -> Result<Vec<(String, i64)>> {
        let rows = sqlx::query("SELECT status, COUNT(*) AS n FROM invocations WHERE command_id = $1 GROUP BY status")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok((r.try_get("status")?, r.try_get("n")?))).collect()
    }

    pub async fn invocations(&self, id: &str) -> Result<Vec<InvocationRow>> {
        let rows = sqlx::query(
            "SELECT node_id, status, released_ms, acked_ms FROM invocations WHERE command_id = $1 ORDER BY ord",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InvocationRow {
                    node_id: r.try_get("node_id")?,
                    status: status_of(&r.try_get::<String, _>("status")?)?,
                    released_ms: r.try_get("released_ms")?,
                    acked_ms: r.try_get("acked_ms")?,
                })
            })
            .collect()
    }

    /// Invocations as operators see them (inline output only).
    pub async fn invocation_views(&self, id: &str) -> Result<Vec<InvocationView>> {
        let rows = sqlx::query(
            "SELECT node_id, hostname, status, exit_code, stdout, stderr, started_at, ended_at, duration_ms, \
             reason, reboot FROM invocations WHERE command_id = $1 ORDER BY ord",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InvocationView {
                    node: r.try_get("node_id")?,
                    hostname: r.try_get("hostname")?,
                    result: InvocationResult {
                        status: status_of(&r.try_get::<String, _>("status")?)?,
                        exit_code: r.try_get::<Option<i64>, _>("exit_code")?.map(|c| c as i32),
                        stdout: r.try_get("stdout")?,
                        stderr: r.try_get("stderr")?,
                        started_at: r.try_get("started_at")?,
                        ended_at: r.try_get("ended_at")?,
                        duration_ms: r.try_get::<Option<i64>, _>("duration_ms")?.map(|d| d.max(0) as u64),
                        reason: r.try_get("reason")?,
                        reboot: r.try_get::<i64, _>("reboot")? != 0,
                        report: None,
                    },
                })
            })
            .collect()
    }

    /// The full output of one stream.
    pub async fn invocation_output(&self, id: &str, node: &str, stderr: bool) -> Result<Option<String>> {
        let col = if stderr { "full_stderr" } else { "full_stdout" };
        let row = sqlx::query(&format!("SELECT {col} AS out FROM invocations WHERE command_id = $1 AND node_id = $2"))
            .bind(id)
            .bind(node)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| Ok(r.try_get("out")?)).transpose()
    }

    /// Applies the dispatcher's decisions in one transaction: (node, new
    /// status, released now?, reason).
    pub async fn transition(
        &self,
        id: &str,
        changes: &[(String, InvocationStatus, bool, Option<String>)],
    ) -> Result<()> {
        if changes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        let t = now_ms();
        for (node, status, released, reason) in changes {
            sqlx::query(&format!(
                "UPDATE invocations SET status = $1, released_ms = CASE WHEN $2 = 1 THEN $3 ELSE released_ms END, \
                 reason = COALESCE($4, reason) WHERE command_id = $5 AND node_id = $6 AND status NOT IN {TERMINAL}"
            ))
            .bind(status.as_str())
            .bind(i64::from(*released))
            .bind(t)
            .bind(reason)
            .bind(id)
            .bind(node)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// (command id, delivery JSON) of the invocations released to this node
    /// and not yet acknowledged.
    pub async fn pending_deliveries(&self, node: &str) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT c.id AS id, c.delivery AS delivery FROM invocations i JOIN commands c ON c.id = i.command_id \
             WHERE i.node_id = $1 AND i.status IN ('Pending', 'Delayed') AND i.released_ms IS NOT NULL \
             ORDER BY i.released_ms",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("delivery")?))).collect()
    }

    /// Commands this node is running whose cancellation was asked for.
    pub async fn cancelled_running(&self, node: &str) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT c.id AS id FROM invocations i JOIN commands c ON c.id = i.command_id \
             WHERE i.node_id = $1 AND i.status = 'InProgress' AND c.cancel_requested = 1",
        )
        .bind(node)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The agent has the invocation (persisted): InProgress. Returns the
    /// status afterwards (None: no such invocation).
    pub async fn ack_invocation(&self, id: &str, node: &str) -> Result<Option<InvocationStatus>> {
        sqlx::query(
            "UPDATE invocations SET status = 'InProgress', acked_ms = $1, started_at = $2 \
             WHERE command_id = $3 AND node_id = $4 AND status IN ('Pending', 'Delayed') AND released_ms IS NOT NULL",
        )
        .bind(now_ms())
        .bind(now())
        .bind(id)
        .bind(node)
        .execute(&self.pool)
        .await?;
        let row = sqlx::query("SELECT status FROM invocations WHERE command_id = $1 AND node_id = $2")
            .bind(id)
            .bind(node)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|r| status_of(&r.try_get::<String, _>("status")?)).transpose()
    }

    /// Records a result, unless the invocation already ended (a re-sent
    /// result is accepted and ignored). Inline output is capped; the full
    /// output up to `full_cap` characters per stream.
    pub async fn finish_invocation(
        &self,
        id: &str,
        node: &str,
        res: &InvocationResult,
        full_cap: usize,
    ) -> Result<bool> {
        use tend_model::command::{INLINE_OUTPUT, head_chars};
        let r = sqlx::query(&format!(
            "UPDATE invocations SET status = $1, exit_code = $2, stdout = $3, stderr = $4, full_stdout = $5, \
             full_stderr = $6, started_at = COALESCE($7, started_at), ended_at = $8, duration_ms = $9, \
             reason = $10, reboot = $11, acked_ms = COALESCE(acked_ms, $12), report = $13 \
             WHERE command_id = $14 AND node_id = $15 AND status NOT IN {TERMINAL}"
        ))
        .bind(res.status.as_str())
        .bind(res.exit_code.map(i64::from))
        .bind(head_chars(&res.stdout, INLINE_OUTPUT))
        .bind(head_chars(&res.stderr, INLINE_OUTPUT))
        .bind(head_chars(&res.stdout, full_cap))
        .bind(head_chars(&res.stderr, full_cap))
        .bind(&res.started_at)
        .bind(res.ended_at.clone().unwrap_or_else(now))
        .bind(res.duration_ms.map(|d| d.min(i64::MAX as u64) as i64))
        .bind(&res.reason)
        .bind(i64::from(res.reboot))
        .bind(now_ms())
        .bind(res.report.as_ref().map(|r| r.to_string()))
        .bind(id)
        .bind(node)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Each invocation of a command with its converge report, if any:
    /// (node, hostname, status, reason, report JSON).
    pub async fn invocation_reports(&self, id: &str) -> Result<Vec<InvocationReport>> {
        let rows = sqlx::query(
            "SELECT node_id, hostname, status, reason, report FROM invocations WHERE command_id = $1 ORDER BY ord",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(InvocationReport {
                    node: r.try_get("node_id")?,
                    hostname: r.try_get("hostname")?,
                    status: status_of(&r.try_get::<String, _>("status")?)?,
                    reason: r.try_get("reason")?,
                    report: r.try_get("report")?,
                })
            })
            .collect()
    }
}

/// One invocation's outcome and report, as plans and rollouts read them.
#[derive(Debug, Clone)]
pub struct InvocationReport {
    pub node: String,
    pub hostname: String,
    pub status: InvocationStatus,
    pub reason: Option<String>,
    pub report: Option<String>,
}
