//! The versioned schema: a database from before versioning (its tables made
//! by running every schema file at each open, as releases up to 0.1 did)
//! upgrades in place and keeps its data; a second open applies nothing;
//! a database whose recorded migration differs from this build's, or that
//! has a migration this build does not know, is refused. On both backends.

mod common;

use sqlx::{Connection, Executor, Row};
use tend_model::wire::Role;
use tend_server::store::Store;
use tend_server::store::migrations::{POSTGRES, SQLITE};

/// What `Store::open_*` ran before versioning: every file, every open.
const UNVERSIONED_SQLITE: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_commands.sql"),
    include_str!("../migrations/0003_automation.sql"),
    include_str!("../migrations/0004_associations.sql"),
    include_str!("../migrations/0005_health.sql"),
];
const UNVERSIONED_POSTGRES: &[&str] = &[
    include_str!("../migrations/0001_init.postgres.sql"),
    include_str!("../migrations/0002_commands.sql"),
    include_str!("../migrations/0003_automation.sql"),
    include_str!("../migrations/0004_associations.sql"),
    include_str!("../migrations/0005_health.sql"),
];

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime")
}

async fn raw(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut c = sqlx::AnyConnection::connect(url).await.expect("connect");
    c.execute(sqlx::raw_sql(sql)).await.expect(sql);
}

async fn applied(url: &str) -> Vec<i64> {
    let mut c = sqlx::AnyConnection::connect(url).await.expect("connect");
    let rows =
        sqlx::query("SELECT version FROM _sqlx_migrations ORDER BY version").fetch_all(&mut c).await.expect("read");
    rows.iter().map(|r| r.get::<i64, _>("version")).collect()
}

/// The whole story on one backend: `open` opens the store at `url`.
async fn upgrade_story<F, Fut>(url: &str, old: &[&str], expected: &[i64], tamper: &str, open: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<Store, tend_server::store::StoreError>>,
{
    for sql in old {
        raw(url, sql).await;
    }
    raw(
        url,
        "INSERT INTO tokens (id, name, role, scope, secret_hash, created_at) \
         VALUES ('tok-old', 'from-0.1', 'operator', NULL, 'h', '2026-01-01T00:00:00Z')",
    )
    .await;

    let store = open().await.expect("an unversioned database upgrades");
    let tokens = store.list_tokens().await.expect("tokens");
    assert!(tokens.iter().any(|t| t.name == "from-0.1" && t.role == Role::Operator), "data kept: {tokens:?}");
    assert_eq!(applied(url).await, expected, "every migration recorded");
    drop(store);

    // A second open applies nothing and keeps working.
    let store = open().await.expect("reopen");
    assert_eq!(store.count_tokens().await.expect("count"), 1);
    drop(store);
    assert_eq!(applied(url).await, expected);

    // A recorded migration that differs from this build's file: refused.
    raw(url, tamper).await;
    let err = open().await.err().expect("a changed migration is refused").to_string();
    assert!(err.contains("migrating the database") && err.contains('2'), "{err}");

    // A migration from a newer build: refused, not ignored.
    raw(url, "DELETE FROM _sqlx_migrations WHERE version = 2").await;
    let err = open().await.err();
    // Version 2 is re-applied (its SQL is idempotent) with the right checksum...
    assert!(err.is_none(), "a missing idempotent migration is applied again: {err:?}");
    raw(
        url,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) \
         SELECT 99, 'from a newer build', installed_on, success, checksum, execution_time FROM _sqlx_migrations WHERE version = 1",
    )
    .await;
    let err = open().await.err().expect("an unknown migration is refused").to_string();
    assert!(err.contains("99"), "{err}");
}

#[test]
fn an_unversioned_sqlite_database_upgrades_and_changed_migrations_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("tend.db").display());
    let expected: Vec<i64> = SQLITE.iter().map(|m| m.0).collect();
    let tamper = "UPDATE _sqlx_migrations SET checksum = X'00' WHERE version = 2";
    rt().block_on(upgrade_story(&url, UNVERSIONED_SQLITE, &expected, tamper, || Store::open_sqlite(dir.path())));
}

#[test]
fn an_unversioned_postgres_database_upgrades_and_changed_migrations_are_refused() {
    let url = common::fresh_postgres_database();
    let expected: Vec<i64> = POSTGRES.iter().map(|m| m.0).collect();
    let tamper = "UPDATE _sqlx_migrations SET checksum = '\\x00'::bytea WHERE version = 2";
    rt().block_on(upgrade_story(&url, UNVERSIONED_POSTGRES, &expected, tamper, || Store::open_postgres(&url)));
}

#[test]
fn both_backends_list_the_same_migrations() {
    let names = |l: &[(i64, &str, &str)]| l.iter().map(|m| (m.0, m.1.to_string())).collect::<Vec<_>>();
    assert_eq!(names(SQLITE), names(POSTGRES), "append every migration to both lists");
    let versions: Vec<i64> = SQLITE.iter().map(|m| m.0).collect();
    assert_eq!(versions, (1..=SQLITE.len() as i64).collect::<Vec<_>>(), "numbered 1, 2, 3… without gaps");
}
