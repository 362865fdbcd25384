//! `tend-server serve`: data directory, CA, first admin token, HTTPS.

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tend_model::wire::Role;

use crate::app::{Parts, Services};
use crate::pki::{Pki, random_hex, sha256_hex, write_secret};
use crate::store::Store;

pub struct ServeOptions {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// `postgres://…` for PostgreSQL (several replicas); None for SQLite in the data directory.
    pub database: Option<String>,
    /// Reports kept per node.
    pub reports_kept: u32,
    /// Extra names for the server certificate (besides localhost and the listen address).
    pub names: Vec<String>,
    /// Characters of each command output stream stored per invocation.
    pub output_cap: usize,
    /// Days finished commands (and their output) are kept.
    pub commands_kept_days: u32,
    /// Agent packages (with MANIFEST) for install.sh.
    pub packages_dir: Option<PathBuf>,
    /// The shortest `rate(…)` an association may have.
    pub min_rate: std::time::Duration,
    /// Client connections open at once.
    pub max_connections: usize,
    /// Requests without credentials in flight at once.
    pub max_anonymous: usize,
    /// The longest a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// Days audit entries are kept.
    pub audit_kept_days: u32,
}

pub async fn serve(opts: ServeOptions) -> anyhow::Result<()> {
    let dir = &opts.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    if !opts.listen.ip().is_unspecified() {
        names.push(opts.listen.ip().to_string());
    }
    names.extend(opts.names.iter().cloned());
    names.sort();
    names.dedup();
    let pki = Arc::new(Pki::load_or_create(dir, &names).context("setting up the certificate authority")?);
    let store = open_store(dir, opts.database.as_deref()).await?;
    let store = store.with_reports_kept(opts.reports_kept);
    let token_path = dir.join("admin.token");
    if store.count_tokens().await? == 0 {
        let secret = format!("tend_{}", random_hex(24)?);
        let id = format!("tok-{}", random_hex(6)?);
        store.create_token(&id, "admin", Role::Admin, None, &sha256_hex(secret.as_bytes())).await?;
        write_secret(&token_path, &format!("{secret}\n"), 0o600)?;
        store
            .audit("server", "token.create", &serde_json::json!({ "id": id, "name": "admin", "role": "admin" }))
            .await?;
        println!("first admin token written to {}", token_path.display());
    }
    let tls = crate::tls::server_config(&pki)?;
    let listener =
        tokio::net::TcpListener::bind(opts.listen).await.with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    println!("CA certificate: {}", dir.join(crate::pki::CA_CERT).display());
    println!("tend-server listening on https://{addr}");
    let retention = std::time::Duration::from_secs(u64::from(opts.commands_kept_days) * 86_400);
    let dispatcher = crate::commands::Dispatcher::new(store.clone(), retention);
    let audit_retention = std::time::Duration::from_secs(u64::from(opts.audit_kept_days) * 86_400);
    tokio::spawn(crate::audit::purge_loop(store.clone(), audit_retention));
    tokio::spawn(dispatcher.clone().run());
    let metrics: Arc<crate::metrics::Metrics> = Default::default();
    let leader: Arc<crate::leader::Leader> = Default::default();
    tokio::spawn(leader.clone().run(store.clone()));
    let services = Services::new(Parts {
        store: store.clone(),
        pki,
        metrics: metrics.clone(),
        dispatcher,
        secrets: Arc::new(crate::secrets::Secrets::load_or_create(dir).context("loading the secrets key")?),
        intake: crate::intake::Intake::new(opts.max_anonymous, opts.body_timeout),
        leader,
        output_cap: opts.output_cap,
        packages_dir: opts.packages_dir.clone(),
        min_rate: opts.min_rate,
    });
    let replica = addr.to_string();
    tokio::spawn(crate::health::run(store, metrics.clone(), replica));
    tokio::spawn(crate::automation::engine::run(services.automation.clone()));
    tokio::spawn(crate::associations::engine::run(services.associations.clone()));
    tokio::spawn(crate::rollouts::engine::run(services.rollouts.clone()));
    let app = services.router();
    let limits = crate::tls::ConnLimits { max_connections: opts.max_connections, metrics };
    crate::tls::serve(listener, tls, app, limits, shutdown_signal()).await;
    println!("tend-server stopped");
    Ok(())
}

/// `tend-server rotate-secret-key`: see [`crate::secrets`].
pub async fn rotate_secret_key(dir: &std::path::Path, database: Option<&str>) -> anyhow::Result<()> {
    let store = open_store(dir, database).await?;
    let mut secrets = crate::secrets::Secrets::load_or_create(dir).context("loading the secrets key")?;
    let id = secrets.add_key()?;
    let n = store.reseal(|text| secrets.reseal(text).map_err(|e| e.to_string())).await?;
    let dropped = secrets.drop_old_keys()?;
    println!("new key {id}: {n} stored value(s) sealed again, {dropped} old key(s) removed");
    Ok(())
}

async fn open_store(dir: &std::path::Path, database: Option<&str>) -> anyhow::Result<Store> {
    Ok(match database {
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Store::open_postgres(url).await.context("opening the PostgreSQL database")?
        }
        Some(other) => {
            anyhow::bail!("--database {other:?}: only postgres:// URLs are supported (SQLite is the default)")
        }
        None => Store::open_sqlite(dir).await.context("opening the database")?,
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
