//! The schema, as versioned migrations (sqlx's migrator): one ordered list
//! per backend, applied in order at every open, each in its transaction and
//! recorded with its checksum in `_sqlx_migrations`. A database that has a
//! migration this build does not know, or whose recorded checksum differs
//! from this build's file, is refused rather than guessed at.
//!
//! **Writing the next migration:** add a file `NNNN_what.sql` (the next
//! number) under `server/migrations/` and append it to *both* lists below
//! (a PostgreSQL variant `NNNN_what.postgres.sql` where the SQL differs).
//! A released migration never changes: change the schema with a new one.
//! Migrations 1 to 5 are written with `IF NOT EXISTS` because databases
//! from before versioning already hold their tables; the upgrade test in
//! `server/tests/migrations.rs` opens such a database.

use std::borrow::Cow;
use std::future::Future;
use std::pin::Pin;

use sqlx::migrate::{Migration, MigrationSource, MigrationType, Migrator};

type Step = (i64, &'static str, &'static str);

pub const SQLITE: &[Step] = &[
    (1, "init", include_str!("../../migrations/0001_init.sql")),
    (2, "commands", include_str!("../../migrations/0002_commands.sql")),
    (3, "automation", include_str!("../../migrations/0003_automation.sql")),
    (4, "associations", include_str!("../../migrations/0004_associations.sql")),
    (5, "health", include_str!("../../migrations/0005_health.sql")),
    (6, "rollouts", include_str!("../../migrations/0006_rollouts.sql")),
];

pub const POSTGRES: &[Step] = &[
    (1, "init", include_str!("../../migrations/0001_init.postgres.sql")),
    (2, "commands", include_str!("../../migrations/0002_commands.sql")),
    (3, "automation", include_str!("../../migrations/0003_automation.sql")),
    (4, "associations", include_str!("../../migrations/0004_associations.sql")),
    (5, "health", include_str!("../../migrations/0005_health.sql")),
    (6, "rollouts", include_str!("../../migrations/0006_rollouts.sql")),
];

/// The migrations compiled into this binary.
#[derive(Debug)]
struct Embedded(&'static [Step]);

impl<'s> MigrationSource<'s> for Embedded {
    fn resolve(self) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, sqlx::error::BoxDynError>> + Send + 's>> {
        Box::pin(async move {
            Ok(self
                .0
                .iter()
                .map(|(v, name, sql)| {
                    Migration::new(*v, Cow::Borrowed(*name), MigrationType::Simple, Cow::Borrowed(*sql), false)
                })
                .collect())
        })
    }
}

pub async fn migrator(postgres: bool) -> Result<Migrator, sqlx::migrate::MigrateError> {
    Migrator::new(Embedded(if postgres { POSTGRES } else { SQLITE })).await
}
