//! Automation executions and their step timeline. The last step row of an
//! execution is its state: every transition is one written row, so a
//! restarted server resumes exactly where it was.

use sqlx::Row;
use sqlx::any::AnyRow;

use serde::{Deserialize, Serialize};

use crate::store::{Result, Store, decode, now, now_ms, stored_enum};

stored_enum! {
    /// An execution: running, waiting for a person (an approval, a resume),
    /// or ended.
    pub enum ExecutionStatus { InProgress, Waiting, Success, Failed, Cancelled, TimedOut }
}

stored_enum! {
    /// One attempt at a step.
    pub enum StepStatus { Pending, InProgress, Waiting, Success, Failed, Cancelled, TimedOut }
}

impl StepStatus {
    pub fn is_final(self) -> bool {
        matches!(self, StepStatus::Success | StepStatus::Failed | StepStatus::Cancelled | StepStatus::TimedOut)
    }
}

/// One token's decision on an approve step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    pub token: String,
    pub decision: Verdict,
    #[serde(default)]
    pub comment: Option<String>,
    pub at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Approve,
    Reject,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Approve => "approve",
            Verdict::Reject => "reject",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ExecutionRow {
    pub id: String,
    pub document: String,
    /// The automation document (JSON).
    pub body: String,
    pub params: String,
    pub params_shown: String,
    pub status: ExecutionStatus,
    pub token_id: String,
    pub token_name: String,
    pub role: String,
    pub scope: Option<String>,
    pub cancel_requested: bool,
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct StepRow {
    pub seq: i64,
    pub name: String,
    pub attempt: i64,
    pub status: StepStatus,
    pub started_at: Option<String>,
    pub started_ms: Option<i64>,
    pub ended_at: Option<String>,
    /// Stored as a JSON object.
    pub outputs: serde_json::Map<String, serde_json::Value>,
    pub error: Option<String>,
    pub command_id: Option<String>,
    pub wake_ms: Option<i64>,
    /// Stored as a JSON array of {token, decision, comment, at}.
    pub approvals: Vec<Approval>,
    pub resumed: bool,
}

fn execution_of(r: &AnyRow) -> Result<ExecutionRow> {
    Ok(ExecutionRow {
        id: r.try_get("id")?,
        document: r.try_get("document")?,
        body: r.try_get("body")?,
        params: r.try_get("params")?,
        params_shown: r.try_get("params_shown")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        token_id: r.try_get("token_id")?,
        token_name: r.try_get("token_name")?,
        role: r.try_get("role")?,
        scope: r.try_get("scope")?,
        cancel_requested: r.try_get::<i64, _>("cancel_requested")? != 0,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn step_of(r: &AnyRow) -> Result<StepRow> {
    Ok(StepRow {
        seq: r.try_get("seq")?,
        name: r.try_get("name")?,
        attempt: r.try_get("attempt")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        started_at: r.try_get("started_at")?,
        started_ms: r.try_get("started_ms")?,
        ended_at: r.try_get("ended_at")?,
        outputs: decode("step outputs", &r.try_get::<String, _>("outputs")?)?,
        error: r.try_get("error")?,
        command_id: r.try_get("command_id")?,
        wake_ms: r.try_get("wake_ms")?,
        approvals: decode("step approvals", &r.try_get::<String, _>("approvals")?)?,
        resumed: r.try_get::<i64, _>("resumed")? != 0,
    })
}

impl Store {
    pub async fn create_execution(&self, e: &ExecutionRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO executions (id, document, body, params, params_shown, status, token_id, token_name, role, \
             scope, cancel_requested, created_at, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $11, $12)",
        )
        .bind(&e.id)
        .bind(&e.document)
        .bind(&e.body)
        .bind(&e.params)
        .bind(&e.params_shown)
        .bind(e.status.as_str())
        .bind(&e.token_id)
        .bind(&e.token_name)
        .bind(&e.role)
        .bind(&e.scope)
        .bind(&e.created_at)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn execution(&self, id: &str) -> Result<Option<ExecutionRow>> {
        let row = sqlx::query("SELECT * FROM executions WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.as_ref().map(execution_of).transpose()
    }

    pub async fn list_executions(&self, limit: i64) -> Result<Vec<ExecutionRow>> {
        let rows = sqlx::query("SELECT * FROM executions ORDER BY created_ms DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(execution_of).collect()
    }

    /// Ids of executions not finished.
    pub async fn active_executions(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM executions WHERE finished_at IS NULL ORDER BY created_ms")
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    pub async fn set_execution_status(
        &self,
        id: &str,
        status: ExecutionStatus,
        error: Option<&str>,
        finished: bool,
    ) -> Result<()> {
        sqlx::query("UPDATE executions SET status = $1, error = COALESCE($2, error), finished_at = $3 WHERE id = $4")
            .bind(status.as_str())
            .bind(error)
            .bind(finished.then(now))
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn request_execution_cancel(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE executions SET cancel_requested = 1 WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn steps(&self, id: &str) -> Result<Vec<StepRow>> {
        let rows = sqlx::query("SELECT * FROM execution_steps WHERE execution_id = $1 ORDER BY seq")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(step_of).collect()
    }

    /// Appends a step row (the next transition). False if `seq` exists
    /// already (another pass got there first).
    pub async fn add_step(&self, id: &str, s: &StepRow) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO execution_steps (execution_id, seq, name, attempt, status, command_id) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(s.seq)
        .bind(&s.name)
        .bind(s.attempt)
        .bind(s.status.as_str())
        .bind(&s.command_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// Writes a step row's state.
    pub async fn update_step(&self, id: &str, s: &StepRow) -> Result<()> {
        sqlx::query(
            "UPDATE execution_steps SET status = $1, started_at = $2, started_ms = $3, ended_at = $4, outputs = $5, \
             error = $6, command_id = $7, wake_ms = $8, approvals = $9, resumed = $10 \
             WHERE execution_id = $11 AND seq = $12",
        )
        .bind(s.status.as_str())
        .bind(&s.started_at)
        .bind(s.started_ms)
        .bind(&s.ended_at)
        .bind(serde_json::Value::Object(s.outputs.clone()).to_string())
        .bind(&s.error)
        .bind(&s.command_id)
        .bind(s.wake_ms)
        .bind(serde_json::to_string(&s.approvals).map_err(|e| crate::store::StoreError::Corrupt(e.to_string()))?)
        .bind(i64::from(s.resumed))
        .bind(id)
        .bind(s.seq)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
