//! Associations, their runs (one per schedule slot, never two) and the
//! compliance events their results produce.

use sqlx::Row;
use sqlx::any::AnyRow;

use crate::commands::CommandStatus;
use crate::store::{Result, Store, StoreError, now, stored_enum};

/// A run: its command not yet ended, ended as the command did, or refused
/// when it was to be created (stored as `Refused: why`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    Pending,
    Ended(CommandStatus),
    Refused(String),
}

impl std::fmt::Display for RunStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunStatus::Pending => f.write_str("Pending"),
            RunStatus::Ended(c) => f.write_str(c.as_str()),
            RunStatus::Refused(why) => write!(f, "Refused: {why}"),
        }
    }
}

impl std::str::FromStr for RunStatus {
    type Err = StoreError;
    fn from_str(s: &str) -> std::result::Result<RunStatus, StoreError> {
        if let Some(why) = s.strip_prefix("Refused: ") {
            return Ok(RunStatus::Refused(why.to_string()));
        }
        match s.parse::<CommandStatus>()? {
            CommandStatus::Pending => Ok(RunStatus::Pending),
            c => Ok(RunStatus::Ended(c)),
        }
    }
}

stored_enum! {
    /// A node's compliance with an association, as one event.
    pub enum Compliance { Compliant, NonCompliant }
}

#[derive(Debug, Clone, Default)]
pub struct AssociationRow {
    pub id: String,
    pub document: Option<String>,
    pub recipe: Option<String>,
    pub targets: String,
    pub schedule: String,
    pub timezone: Option<String>,
    pub params: String,
    pub raw_params: String,
    pub max_concurrency: Option<String>,
    pub max_errors: Option<String>,
    pub apply_only_at_cron_interval: bool,
    /// `audit`: a recipe checked, never applied.
    pub mode: Option<String>,
    pub token_id: String,
    pub token_name: String,
    pub role: String,
    pub scope: Option<String>,
    pub created_at: String,
    pub created_ms: i64,
    pub last_slot_ms: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct RunRow {
    pub slot_ms: i64,
    pub trigger: String,
    pub command_id: String,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub skipped: i64,
}

#[derive(Debug, Clone)]
pub struct ComplianceRow {
    pub association_id: String,
    pub node_id: String,
    pub hostname: String,
    pub status: Compliance,
    pub at: String,
    pub reason: Option<String>,
    pub changes: String,
}

fn association_of(r: &AnyRow) -> Result<AssociationRow> {
    Ok(AssociationRow {
        id: r.try_get("id")?,
        document: r.try_get("document")?,
        recipe: r.try_get("recipe")?,
        targets: r.try_get("targets")?,
        schedule: r.try_get("schedule")?,
        timezone: r.try_get("timezone")?,
        params: r.try_get("params")?,
        raw_params: r.try_get("raw_params")?,
        max_concurrency: r.try_get("max_concurrency")?,
        max_errors: r.try_get("max_errors")?,
        apply_only_at_cron_interval: r.try_get::<i64, _>("apply_only_at_cron_interval")? != 0,
        mode: r.try_get("mode")?,
        token_id: r.try_get("token_id")?,
        token_name: r.try_get("token_name")?,
        role: r.try_get("role")?,
        scope: r.try_get("scope")?,
        created_at: r.try_get("created_at")?,
        created_ms: r.try_get("created_ms")?,
        last_slot_ms: r.try_get("last_slot_ms")?,
    })
}

fn run_of(r: &AnyRow) -> Result<RunRow> {
    Ok(RunRow {
        slot_ms: r.try_get("slot_ms")?,
        trigger: r.try_get("trig")?,
        command_id: r.try_get("command_id")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        started_at: r.try_get("started_at")?,
        finished_at: r.try_get("finished_at")?,
        skipped: r.try_get("skipped")?,
    })
}

impl Store {
    /// The changes the node's last audit found pending.
    pub async fn set_pending(&self, node: &str, pending: i64) -> Result<()> {
        sqlx::query("UPDATE nodes SET pending = $1 WHERE id = $2").bind(pending).bind(node).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn create_association(&self, a: &AssociationRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO associations (id, document, recipe, targets, schedule, timezone, params, raw_params, \
             max_concurrency, max_errors, apply_only_at_cron_interval, token_id, token_name, role, scope, created_at, \
             created_ms, last_slot_ms, mode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
             $16, $17, $18, $19)",
        )
        .bind(&a.id)
        .bind(&a.document)
        .bind(&a.recipe)
        .bind(&a.targets)
        .bind(&a.schedule)
        .bind(&a.timezone)
        .bind(&a.params)
        .bind(&a.raw_params)
        .bind(&a.max_concurrency)
        .bind(&a.max_errors)
        .bind(i64::from(a.apply_only_at_cron_interval))
        .bind(&a.token_id)
        .bind(&a.token_name)
        .bind(&a.role)
        .bind(&a.scope)
        .bind(&a.created_at)
        .bind(a.created_ms)
        .bind(a.last_slot_ms)
        .bind(&a.mode)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn association(&self, id: &str) -> Result<Option<AssociationRow>> {
        let row = sqlx::query("SELECT * FROM associations WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(association_of).transpose()
    }

    pub async fn list_associations(&self) -> Result<Vec<AssociationRow>> {
        let rows = sqlx::query("SELECT * FROM associations ORDER BY created_ms, id").fetch_all(&self.pool).await?;
        rows.iter().map(association_of).collect()
    }

    pub async fn delete_association(&self, id: &str) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM association_runs WHERE association_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM compliance WHERE association_id = $1").bind(id).execute(&mut *tx).await?;
        let r = sqlx::query("DELETE FROM associations WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(r.rows_affected() > 0)
    }

    /// Records a run for `slot_ms` and moves the association past that
    /// slot, in one transaction. False if the slot has a run already.
    pub async fn add_run(&self, id: &str, run: &RunRow, last_slot_ms: Option<i64>) -> Result<bool> {
        let mut tx = self.pool.begin().await?;
        let r = sqlx::query(
            "INSERT INTO association_runs (association_id, slot_ms, trig, command_id, status, started_at, skipped) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(run.slot_ms)
        .bind(&run.trigger)
        .bind(&run.command_id)
        .bind(run.status.to_string())
        .bind(&run.started_at)
        .bind(run.skipped)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some(last) = last_slot_ms {
            sqlx::query("UPDATE associations SET last_slot_ms = $1 WHERE id = $2 AND (last_slot_ms IS NULL OR last_slot_ms < $1)")
                .bind(last)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn set_last_slot(&self, id: &str, slot_ms: i64) -> Result<()> {
        sqlx::query("UPDATE associations SET last_slot_ms = $1 WHERE id = $2")
            .bind(slot_ms)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn finish_run(&self, id: &str, slot_ms: i64, status: &RunStatus) -> Result<()> {
        sqlx::query(
            "UPDATE association_runs SET status = $1, finished_at = $2 WHERE association_id = $3 AND slot_ms = $4",
        )
        .bind(status.to_string())
        .bind(now())
        .bind(id)
        .bind(slot_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs, newest first.
    pub async fn runs(&self, id: &str, limit: i64) -> Result<Vec<RunRow>> {
        let rows =
            sqlx::query("SELECT * FROM association_runs WHERE association_id = $1 ORDER BY slot_ms DESC LIMIT $2")
                .bind(id)
                .bind(limit)
                .fetch_all(&self.pool)
                .await?;
        rows.iter().map(run_of).collect()
    }

    pub async fn add_compliance(&self, c: &ComplianceRow, command_id: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO compliance (id, association_id, node_id, hostname, status, at, reason, changes, command_id) \
             VALUES ((SELECT COALESCE(MAX(id), 0) + 1 FROM compliance), $1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.association_id)
        .bind(&c.node_id)
        .bind(&c.hostname)
        .bind(c.status.as_str())
        .bind(&c.at)
        .bind(&c.reason)
        .bind(&c.changes)
        .bind(command_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// True if compliance was already recorded from this command.
    pub async fn compliance_recorded(&self, command_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM compliance WHERE command_id = $1")
            .bind(command_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(row.try_get::<i64, _>("n")? > 0)
    }

    /// Compliance events, newest first; filtered by association and node.
    pub async fn compliance(&self, association: Option<&str>, node: Option<&str>) -> Result<Vec<ComplianceRow>> {
        let rows = sqlx::query(
            "SELECT * FROM compliance WHERE ($1 = '' OR association_id = $1) AND ($2 = '' OR node_id = $2) \
             ORDER BY id DESC LIMIT 10000",
        )
        .bind(association.unwrap_or(""))
        .bind(node.unwrap_or(""))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(ComplianceRow {
                    association_id: r.try_get("association_id")?,
                    node_id: r.try_get("node_id")?,
                    hostname: r.try_get("hostname")?,
                    status: r.try_get::<String, _>("status")?.parse()?,
                    at: r.try_get("at")?,
                    reason: r.try_get("reason")?,
                    changes: r.try_get("changes")?,
                })
            })
            .collect()
    }
}
