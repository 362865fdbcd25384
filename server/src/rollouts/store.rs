//! Plans, rollouts, their batches and nodes, and the version pins rollouts
//! set. Every transition of a rollout is a written row, and the ones that
//! act on nodes (pinning a batch, pinning it back) are conditional updates
//! in one transaction with the pins: a restarted or second driver finds the
//! batch already moved on and never pins it twice.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;
use tend_model::rollout::GateResult;

use crate::store::{Result, Store, decode, now, now_ms, stored_enum};

stored_enum! {
    /// A rollout: driven while `Running` or `RollingBack`; the rest wait
    /// for an operator (`Paused`) or are final.
    pub enum RolloutStatus { Running, Paused, Succeeded, Stopped, Failed, RollingBack, RolledBack, RollbackFailed }
}

impl RolloutStatus {
    pub fn is_final(self) -> bool {
        matches!(
            self,
            RolloutStatus::Succeeded
                | RolloutStatus::Stopped
                | RolloutStatus::Failed
                | RolloutStatus::RolledBack
                | RolloutStatus::RollbackFailed
        )
    }
}

stored_enum! {
    /// A batch: waiting, converging the new version, running the health
    /// document, baking, passed, failed, or never run (the rollout ended first).
    pub enum BatchStatus { Pending, Converging, Checking, Baking, Done, Failed, NotRun }
}

stored_enum! {
    /// A node in a rollout.
    pub enum NodeState { Waiting, Converging, Healthy, Failed, RollingBack, RolledBack, RollbackFailed }
}

impl NodeState {
    /// Pinned to the new version (by its batch): what a rollback takes back.
    pub fn took_new_version(self) -> bool {
        matches!(self, NodeState::Converging | NodeState::Healthy | NodeState::Failed)
    }
}

/// The statuses the driver advances.
const ACTIVE: &str = "('Running', 'Paused', 'RollingBack')";

#[derive(Debug, Clone)]
pub struct RolloutRow {
    pub id: String,
    pub recipe: String,
    pub version: String,
    pub targets: String,
    pub strategy: String,
    /// The `RolloutCreate` (JSON).
    pub options: String,
    pub status: RolloutStatus,
    pub reason: Option<String>,
    /// `pause`, `stop` or `rollback`, until the driver acts on it.
    pub request: Option<String>,
    pub token_id: String,
    pub token_name: String,
    pub role: String,
    pub scope: Option<String>,
    pub created_at: String,
    pub rollback_command: Option<String>,
    pub finished_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct BatchRow {
    pub idx: i64,
    pub group: Option<String>,
    pub wait_after_ms: i64,
    pub status: BatchStatus,
    pub phase_ms: Option<i64>,
    pub gates: Vec<GateResult>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NodeRow {
    pub node: String,
    pub hostname: String,
    pub batch: i64,
    pub before: String,
    pub state: NodeState,
    pub detail: Option<String>,
}

/// A stored plan: the question asked; the answers are its command's invocations.
#[derive(Debug, Clone)]
pub struct PlanRow {
    pub id: String,
    pub recipe: String,
    pub version: String,
    pub targets: String,
    pub not_assigned: String,
    pub command_id: String,
    pub created_at: String,
    pub created_by: String,
}

fn rollout_of(r: &AnyRow) -> Result<RolloutRow> {
    Ok(RolloutRow {
        id: r.try_get("id")?,
        recipe: r.try_get("recipe")?,
        version: r.try_get("version")?,
        targets: r.try_get("targets")?,
        strategy: r.try_get("strategy")?,
        options: r.try_get("options")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        reason: r.try_get("reason")?,
        request: r.try_get("request")?,
        token_id: r.try_get("token_id")?,
        token_name: r.try_get("token_name")?,
        role: r.try_get("role")?,
        scope: r.try_get("scope")?,
        created_at: r.try_get("created_at")?,
        rollback_command: r.try_get("rollback_command")?,
        finished_at: r.try_get("finished_at")?,
    })
}

fn batch_of(r: &AnyRow) -> Result<BatchRow> {
    Ok(BatchRow {
        idx: r.try_get("idx")?,
        group: r.try_get("grp")?,
        wait_after_ms: r.try_get("wait_after_ms")?,
        status: r.try_get::<String, _>("status")?.parse()?,
        phase_ms: r.try_get("phase_ms")?,
        gates: decode("batch gates", &r.try_get::<String, _>("gates")?)?,
        started_at: r.try_get("started_at")?,
        ended_at: r.try_get("ended_at")?,
    })
}

fn node_of(r: &AnyRow) -> Result<NodeRow> {
    Ok(NodeRow {
        node: r.try_get("node_id")?,
        hostname: r.try_get("hostname")?,
        batch: r.try_get("batch")?,
        before: r.try_get("before_version")?,
        state: r.try_get::<String, _>("state")?.parse()?,
        detail: r.try_get("detail")?,
    })
}

/// What a new rollout writes at once.
pub struct NewRollout<'a> {
    pub row: &'a RolloutRow,
    /// (group, wait after in ms) per batch, in order.
    pub batches: &'a [(Option<String>, i64)],
    pub nodes: &'a [NodeRow],
}

impl Store {
    // --- pins ---

    /// recipe → version pinned on this node.
    pub async fn pins_of(&self, node: &str) -> Result<HashMap<String, String>> {
        let rows =
            sqlx::query("SELECT recipe, version FROM pins WHERE node_id = $1").bind(node).fetch_all(&self.pool).await?;
        rows.iter().map(|r| Ok((r.try_get("recipe")?, r.try_get("version")?))).collect()
    }

    /// Drops the pins of `recipe` on these nodes (a new assignment decides for them).
    pub async fn unpin(&self, recipe: &str, nodes: &[String]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for n in nodes {
            sqlx::query("DELETE FROM pins WHERE node_id = $1 AND recipe = $2")
                .bind(n)
                .bind(recipe)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    // --- plans ---

    pub async fn create_plan(&self, p: &PlanRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO plans (id, recipe, version, targets, not_assigned, command_id, created_at, created_ms, created_by) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&p.id)
        .bind(&p.recipe)
        .bind(&p.version)
        .bind(&p.targets)
        .bind(&p.not_assigned)
        .bind(&p.command_id)
        .bind(&p.created_at)
        .bind(now_ms())
        .bind(&p.created_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn plan(&self, id: &str) -> Result<Option<PlanRow>> {
        let row = sqlx::query("SELECT * FROM plans WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| plan_of(&r)).transpose()
    }

    pub async fn list_plans(&self, limit: i64) -> Result<Vec<PlanRow>> {
        let rows = sqlx::query("SELECT * FROM plans ORDER BY created_ms DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(plan_of).collect()
    }

    // --- rollouts ---

    /// The rollout, its batches and its nodes, with every node pinned to
    /// the version it has now (so that nothing outside the batches moves),
    /// in one transaction.
    pub async fn create_rollout(&self, n: NewRollout<'_>) -> Result<()> {
        let r = n.row;
        let at = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO rollouts (id, recipe, version, targets, strategy, options, status, token_id, token_name, role, \
             scope, created_at, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&r.id)
        .bind(&r.recipe)
        .bind(&r.version)
        .bind(&r.targets)
        .bind(&r.strategy)
        .bind(&r.options)
        .bind(r.status.as_str())
        .bind(&r.token_id)
        .bind(&r.token_name)
        .bind(&r.role)
        .bind(&r.scope)
        .bind(&r.created_at)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
        for (i, (group, wait)) in n.batches.iter().enumerate() {
            sqlx::query(
                "INSERT INTO rollout_batches (rollout_id, idx, grp, wait_after_ms, status) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(&r.id)
            .bind(i as i64)
            .bind(group)
            .bind(*wait)
            .bind(BatchStatus::Pending.as_str())
            .execute(&mut *tx)
            .await?;
        }
        for node in n.nodes {
            sqlx::query(
                "INSERT INTO rollout_nodes (rollout_id, node_id, hostname, batch, before_version, state) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&r.id)
            .bind(&node.node)
            .bind(&node.hostname)
            .bind(node.batch)
            .bind(&node.before)
            .bind(NodeState::Waiting.as_str())
            .execute(&mut *tx)
            .await?;
            pin(&mut tx, &node.node, &r.recipe, &node.before, &r.id, &at).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn rollout(&self, id: &str) -> Result<Option<RolloutRow>> {
        let row = sqlx::query("SELECT * FROM rollouts WHERE id = $1").bind(id).fetch_optional(&self.pool).await?;
        row.map(|r| rollout_of(&r)).transpose()
    }

    pub async fn list_rollouts(&self, limit: i64) -> Result<Vec<RolloutRow>> {
        let rows = sqlx::query("SELECT * FROM rollouts ORDER BY created_ms DESC, id LIMIT $1")
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(rollout_of).collect()
    }

    /// Rollouts the driver advances, oldest first.
    pub async fn active_rollouts(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(&format!("SELECT id FROM rollouts WHERE status IN {ACTIVE} ORDER BY created_ms, id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    /// The rollout of this recipe that is not finished, if any.
    pub async fn active_rollout_of(&self, recipe: &str) -> Result<Option<String>> {
        let row = sqlx::query(&format!("SELECT id FROM rollouts WHERE recipe = $1 AND status IN {ACTIVE} LIMIT 1"))
            .bind(recipe)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    pub async fn rollout_batches(&self, id: &str) -> Result<Vec<BatchRow>> {
        let rows = sqlx::query("SELECT * FROM rollout_batches WHERE rollout_id = $1 ORDER BY idx")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(batch_of).collect()
    }

    pub async fn rollout_nodes(&self, id: &str) -> Result<Vec<NodeRow>> {
        let rows = sqlx::query("SELECT * FROM rollout_nodes WHERE rollout_id = $1 ORDER BY batch, hostname, node_id")
            .bind(id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(node_of).collect()
    }

    /// Pins batch `idx` to the new version and marks it converging, if it
    /// is still pending; false if it was not (another pass did it).
    pub async fn start_batch(&self, r: &RolloutRow, idx: i64, nodes: &[String]) -> Result<bool> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE rollout_batches SET status = $1, phase_ms = $2, started_at = $3 \
             WHERE rollout_id = $4 AND idx = $5 AND status = $6",
        )
        .bind(BatchStatus::Converging.as_str())
        .bind(now_ms())
        .bind(&at)
        .bind(&r.id)
        .bind(idx)
        .bind(BatchStatus::Pending.as_str())
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        for n in nodes {
            pin(&mut tx, n, &r.recipe, &r.version, &r.id, &at).await?;
        }
        sqlx::query("UPDATE rollout_nodes SET state = $1 WHERE rollout_id = $2 AND batch = $3")
            .bind(NodeState::Converging.as_str())
            .bind(&r.id)
            .bind(idx)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Moves a batch on: its status, when the new phase began, its gates.
    pub async fn set_batch(
        &self,
        id: &str,
        idx: i64,
        status: BatchStatus,
        phase_ms: Option<i64>,
        gates: &[GateResult],
    ) -> Result<()> {
        let ended = matches!(status, BatchStatus::Done | BatchStatus::Failed | BatchStatus::NotRun).then(now);
        sqlx::query(
            "UPDATE rollout_batches SET status = $1, phase_ms = COALESCE($2, phase_ms), gates = $3, \
             ended_at = COALESCE($4, ended_at) WHERE rollout_id = $5 AND idx = $6",
        )
        .bind(status.as_str())
        .bind(phase_ms)
        .bind(serde_json::to_string(gates).unwrap_or_else(|_| "[]".into()))
        .bind(ended)
        .bind(id)
        .bind(idx)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Batches not started are marked as never run.
    pub async fn skip_pending_batches(&self, id: &str) -> Result<()> {
        sqlx::query("UPDATE rollout_batches SET status = $1 WHERE rollout_id = $2 AND status = $3")
            .bind(BatchStatus::NotRun.as_str())
            .bind(id)
            .bind(BatchStatus::Pending.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn set_node_states(&self, id: &str, states: &[(String, NodeState, Option<String>)]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for (node, state, detail) in states {
            sqlx::query("UPDATE rollout_nodes SET state = $1, detail = $2 WHERE rollout_id = $3 AND node_id = $4")
                .bind(state.as_str())
                .bind(detail)
                .bind(id)
                .bind(node)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Sets the status (and reason); a final status also ends the rollout.
    pub async fn set_rollout_status(&self, id: &str, status: RolloutStatus, reason: Option<&str>) -> Result<()> {
        let finished = status.is_final().then(now);
        sqlx::query(
            "UPDATE rollouts SET status = $1, reason = COALESCE($2, reason), finished_at = $3, request = NULL WHERE id = $4",
        )
        .bind(status.as_str())
        .bind(reason)
        .bind(finished)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_rollout_request(&self, id: &str, request: Option<&str>) -> Result<()> {
        sqlx::query("UPDATE rollouts SET request = $1 WHERE id = $2")
            .bind(request)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Pins the nodes that took the new version back to what they had, and
    /// marks the rollout as rolling back with its command's id, in one
    /// transaction; false if it was already rolling back or had ended so.
    pub async fn begin_rollback(&self, r: &RolloutRow, nodes: &[NodeRow], command: &str, reason: &str) -> Result<bool> {
        let at = now();
        let mut tx = self.pool.begin().await?;
        let moved = sqlx::query(
            "UPDATE rollouts SET status = $1, rollback_command = $2, reason = $3, finished_at = NULL, request = NULL \
             WHERE id = $4 AND status NOT IN ('RollingBack', 'RolledBack', 'RollbackFailed')",
        )
        .bind(RolloutStatus::RollingBack.as_str())
        .bind(command)
        .bind(reason)
        .bind(&r.id)
        .execute(&mut *tx)
        .await?;
        if moved.rows_affected() == 0 {
            return Ok(false);
        }
        for n in nodes {
            pin(&mut tx, &n.node, &r.recipe, &n.before, &r.id, &at).await?;
            sqlx::query("UPDATE rollout_nodes SET state = $1 WHERE rollout_id = $2 AND node_id = $3")
                .bind(NodeState::RollingBack.as_str())
                .bind(&r.id)
                .bind(&n.node)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}

async fn pin(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    node: &str,
    recipe: &str,
    version: &str,
    rollout: &str,
    at: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO pins (node_id, recipe, version, rollout_id, at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (node_id, recipe) DO UPDATE SET version = excluded.version, rollout_id = excluded.rollout_id, \
         at = excluded.at",
    )
    .bind(node)
    .bind(recipe)
    .bind(version)
    .bind(rollout)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

fn plan_of(r: &AnyRow) -> Result<PlanRow> {
    Ok(PlanRow {
        id: r.try_get("id")?,
        recipe: r.try_get("recipe")?,
        version: r.try_get("version")?,
        targets: r.try_get("targets")?,
        not_assigned: r.try_get("not_assigned")?,
        command_id: r.try_get("command_id")?,
        created_at: r.try_get("created_at")?,
        created_by: r.try_get("created_by")?,
    })
}
