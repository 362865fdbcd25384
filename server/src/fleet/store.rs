//! The fleet's tables: activations and registration (one transaction: an
//! activation use and a node, or neither), recipes, assignments and reports.

use sqlx::Row;
use sqlx::any::AnyRow;
use tend_model::wire::{Activation, LastRun, Tags};

use crate::store::{NewNode, RegisterRefusal, Result, Store, StoreError, constant_time_eq, now, tags_of};

impl Store {
    // --- activations ---

    pub async fn create_activation(
        &self,
        id: &str,
        code_hash: &str,
        tags: &Tags,
        limit: u32,
        expires_at: &str,
        by: &str,
    ) -> Result<Activation> {
        let at = now();
        sqlx::query(
            "INSERT INTO activations (id, code_hash, tags, usage_limit, used, expires_at, created_at, created_by) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, $7)",
        )
        .bind(id)
        .bind(code_hash)
        .bind(serde_json::to_string(tags).unwrap_or_default())
        .bind(i64::from(limit))
        .bind(expires_at)
        .bind(&at)
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(Activation {
            id: id.into(),
            code: None,
            tags: tags.clone(),
            limit,
            used: 0,
            expires_at: expires_at.into(),
            created_at: at,
        })
    }

    pub async fn list_activations(&self) -> Result<Vec<Activation>> {
        let rows = sqlx::query("SELECT * FROM activations ORDER BY created_at, id").fetch_all(&self.pool).await?;
        rows.iter().map(activation_of).collect()
    }

    /// Checks the activation and records the node, in one transaction.
    pub async fn register(
        &self,
        activation_id: &str,
        code_hash: &str,
        node: &NewNode,
    ) -> Result<std::result::Result<Tags, RegisterRefusal>> {
        let mut tx = self.pool.begin().await?;
        // The write comes first, so the transaction takes the write lock at
        // once (waiting its turn on SQLite) and the count cannot race:
        // a valid, unexpired activation with room left is counted here.
        let counted = sqlx::query(
            "UPDATE activations SET used = used + 1 \
             WHERE id = $1 AND code_hash = $2 AND expires_at > $3 AND used < usage_limit",
        )
        .bind(activation_id)
        .bind(code_hash)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        let Some(row) =
            sqlx::query("SELECT * FROM activations WHERE id = $1").bind(activation_id).fetch_optional(&mut *tx).await?
        else {
            return Ok(Err(RegisterRefusal::UnknownActivation));
        };
        if counted.rows_affected() == 0 {
            // Not counted: say why (the transaction is rolled back on drop).
            let stored: String = row.get("code_hash");
            let act = activation_of(&row)?;
            return Ok(Err(if !constant_time_eq(stored.as_bytes(), code_hash.as_bytes()) {
                RegisterRefusal::WrongCode
            } else if act.expires_at <= now() {
                RegisterRefusal::Expired
            } else {
                RegisterRefusal::LimitReached
            }));
        }
        let act = activation_of(&row)?;
        let used = sqlx::query("SELECT 1 FROM nodes WHERE key_fingerprint = $1")
            .bind(&node.key_fingerprint)
            .fetch_optional(&mut *tx)
            .await?;
        if used.is_some() {
            return Ok(Err(RegisterRefusal::KeyAlreadyRegistered));
        }
        // The host's own tags may add keys, never change the activation's:
        // a host must not talk itself into another scope (env=prod).
        let mut tags = node.tags.clone();
        tags.extend(act.tags.clone());
        sqlx::query(
            "INSERT INTO nodes (id, hostname, tags, key_fingerprint, cert_fingerprint, activation_id, registered_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&node.id)
        .bind(&node.hostname)
        .bind(serde_json::to_string(&tags).unwrap_or_default())
        .bind(&node.key_fingerprint)
        .bind(&node.cert_fingerprint)
        .bind(activation_id)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Ok(tags))
    }
}

fn activation_of(r: &AnyRow) -> Result<Activation> {
    Ok(Activation {
        id: r.get("id"),
        code: None,
        tags: tags_of(r.get("tags"))?,
        limit: u32::try_from(r.get::<i64, _>("usage_limit")).unwrap_or(0),
        used: u32::try_from(r.get::<i64, _>("used")).unwrap_or(u32::MAX),
        expires_at: r.get("expires_at"),
        created_at: r.get("created_at"),
    })
}

impl Store {
    // --- recipes ---

    /// Stores a version; returns false if it was there already (versions are immutable).
    pub async fn put_recipe(&self, name: &str, version: &str, bundle: &str, by: &str) -> Result<bool> {
        let r = sqlx::query(
            "INSERT INTO recipes (name, version, bundle, created_at, created_by, seq) \
             VALUES ($1, $2, $3, $4, $5, (SELECT COALESCE(MAX(seq), 0) + 1 FROM recipes)) ON CONFLICT DO NOTHING",
        )
        .bind(name)
        .bind(version)
        .bind(bundle)
        .bind(now())
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected() > 0)
    }

    /// (version, bundle JSON, created_at) of NAME, at VERSION or the newest.
    pub async fn recipe(&self, name: &str, version: Option<&str>) -> Result<Option<(String, String, String)>> {
        let row = match version {
            Some(v) => {
                sqlx::query("SELECT version, bundle, created_at FROM recipes WHERE name = $1 AND version = $2")
                    .bind(name)
                    .bind(v)
                    .fetch_optional(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT version, bundle, created_at FROM recipes WHERE name = $1 ORDER BY seq DESC LIMIT 1")
                    .bind(name)
                    .fetch_optional(&self.pool)
                    .await?
            }
        };
        Ok(row.map(|r| (r.get("version"), r.get("bundle"), r.get("created_at"))))
    }

    /// Every version: (name, version, created_at, bundle JSON), newest first per name.
    pub async fn list_recipes(&self) -> Result<Vec<(String, String, String, String)>> {
        let rows = sqlx::query("SELECT name, version, created_at, bundle FROM recipes ORDER BY name, seq DESC")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get("name"), r.get("version"), r.get("created_at"), r.get("bundle"))).collect())
    }

    // --- assignments ---

    pub async fn create_assignment(&self, a: &tend_model::wire::Assignment, by: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO assignments (id, recipe, version, targets, params, created_at, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&a.id)
        .bind(&a.recipe)
        .bind(&a.version)
        .bind(serde_json::to_string(&a.targets).unwrap_or_default())
        .bind(serde_json::to_string(&a.params).unwrap_or_default())
        .bind(&a.created_at)
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn list_assignments(&self) -> Result<Vec<tend_model::wire::Assignment>> {
        let rows = sqlx::query("SELECT * FROM assignments ORDER BY created_at, id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|r| {
                Ok(tend_model::wire::Assignment {
                    id: r.get("id"),
                    recipe: r.get("recipe"),
                    version: r.get("version"),
                    targets: serde_json::from_str(r.get("targets")).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    params: serde_json::from_str(r.get("params")).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    created_at: r.get("created_at"),
                })
            })
            .collect()
    }

    pub async fn delete_assignment(&self, id: &str) -> Result<bool> {
        Ok(sqlx::query("DELETE FROM assignments WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() > 0)
    }

    // --- reports ---

    /// Stores a report, updates the node's last run, and trims old reports.
    pub async fn add_report(&self, node_id: &str, last_run: &LastRun, report: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO reports (node_id, at, report) VALUES ($1, $2, $3)")
            .bind(node_id)
            .bind(&last_run.at)
            .bind(report)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE nodes SET last_run = $1, last_seen = $2 WHERE id = $3")
            .bind(serde_json::to_string(last_run).unwrap_or_default())
            .bind(now())
            .bind(node_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "DELETE FROM reports WHERE node_id = $1 AND id NOT IN (SELECT id FROM reports WHERE node_id = $2 ORDER BY id DESC LIMIT $3)",
        )
        .bind(node_id)
        .bind(node_id)
        .bind(self.reports_kept)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Reports, newest first: (node, at, report JSON).
    pub async fn reports(&self, node: Option<&str>, limit: i64) -> Result<Vec<(String, String, String)>> {
        let rows = match node {
            Some(n) => {
                sqlx::query("SELECT node_id, at, report FROM reports WHERE node_id = $1 ORDER BY id DESC LIMIT $2")
                    .bind(n)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
            None => {
                sqlx::query("SELECT node_id, at, report FROM reports ORDER BY id DESC LIMIT $1")
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?
            }
        };
        Ok(rows.iter().map(|r| (r.get("node_id"), r.get("at"), r.get("report"))).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_history_is_bounded_by_the_setting() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async {
            let store = Store::open_sqlite(dir.path()).await.expect("open").with_reports_kept(2);
            let run = LastRun { status: "changed".into(), changed: 1, failed: 0, cached: false, at: now() };
            for i in 0..3 {
                store.add_report("n-x", &run, &format!("{{\"n\":{i}}}")).await.expect("report");
            }
            let kept = store.reports(Some("n-x"), 10).await.expect("reports");
            let bodies: Vec<&str> = kept.iter().map(|(_, _, r)| r.as_str()).collect();
            assert_eq!(bodies, ["{\"n\":2}", "{\"n\":1}"], "the newest two, newest first");
        });
    }
}
