//! The `tend-server` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use serde::Deserialize;
use tend_server::serve::ServeOptions;

#[derive(Parser)]
#[command(name = "tend-server", version, about = "tend's server: recipes, nodes, reports and agent certificates")]
struct Cli {
    #[arg(long, global = true, default_value = "info", env = "TEND_LOG")]
    log: tracing::Level,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API over HTTPS.
    Serve(Box<ServeArgs>),
    /// Put a new key first in DATA_DIR/secrets.keys, seal every stored
    /// sensitive value again under it, and drop the old keys. Run it with the
    /// servers stopped, then copy the file to every replica.
    RotateSecretKey {
        /// [default: /var/lib/tend-server]
        #[arg(long, default_value = "/var/lib/tend-server")]
        data_dir: PathBuf,
        /// The PostgreSQL database, if not the embedded SQLite.
        #[arg(long, env = "TEND_DATABASE", hide_env_values = true)]
        database: Option<String>,
    },
    /// Write man pages and shell completions under DIR (for the packages).
    #[command(hide = true)]
    Assets {
        #[arg(long)]
        out: PathBuf,
    },
}

/// Every setting can come from the configuration file; a flag wins over it.
#[derive(clap::Args, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ServeArgs {
    /// A YAML file with these settings (keys as the flags, with `_`):
    /// default /etc/tend/server.yaml when it exists.
    #[arg(long)]
    #[serde(skip)]
    config: Option<PathBuf>,
    /// Holds the database, the CA (ca.pem) and the first admin token (admin.token)
    /// [default: /var/lib/tend-server].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// [default: 127.0.0.1:8443]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// PostgreSQL instead of the embedded SQLite: postgres://USER@HOST:PORT/DB
    #[arg(long, env = "TEND_DATABASE", hide_env_values = true)]
    database: Option<String>,
    /// Run reports kept per node (older ones are deleted) [default: 100].
    #[arg(long)]
    reports_kept: Option<u32>,
    /// More host names or addresses for the server certificate.
    #[arg(long = "name")]
    #[serde(default)]
    names: Vec<String>,
    /// Characters of each run-command output stream stored per node
    /// (inline output in listings is capped at 24,000) [default: 1000000].
    #[arg(long)]
    output_cap: Option<usize>,
    /// Days a finished run command, with its output, is kept [default: 90].
    #[arg(long)]
    commands_kept_days: Option<u32>,
    /// Agent packages and their MANIFEST (`packaging/build.sh` makes
    /// both), served at /packages/ for `GET /install.sh`.
    #[arg(long)]
    packages_dir: Option<PathBuf>,
    /// The shortest `rate(…)` an association may have, in seconds [default: 1800].
    #[arg(long)]
    min_rate: Option<u64>,
    /// Client connections open at once; more are closed on accept [default: 20000].
    /// Each agent daemon holds one; keep it above the fleet's size.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Requests without credentials (registrations) in flight at once [default: 32].
    #[arg(long)]
    max_anonymous: Option<usize>,
    /// Seconds a whole request body may take to arrive [default: 30].
    #[arg(long)]
    body_timeout: Option<u64>,
    /// Days audit entries are kept [default: 400].
    #[arg(long)]
    audit_kept_days: Option<u32>,
}

const DEFAULT_CONFIG: &str = "/etc/tend/server.yaml";

impl ServeArgs {
    /// The flags over the file over the defaults.
    fn resolve(self) -> anyhow::Result<ServeOptions> {
        let (path, required) = match &self.config {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        let file: ServeArgs = match std::fs::read_to_string(&path) {
            Ok(text) => serde_yaml::from_str::<Option<ServeArgs>>(&text)
                .with_context(|| format!("reading {}", path.display()))?
                .unwrap_or_default(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => ServeArgs::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let listen = match self.listen.or(file.listen) {
            Some(l) => l,
            None => "127.0.0.1:8443".parse()?,
        };
        Ok(ServeOptions {
            data_dir: self.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("/var/lib/tend-server")),
            listen,
            database: self.database.or(file.database),
            reports_kept: self.reports_kept.or(file.reports_kept).unwrap_or(100),
            names: if self.names.is_empty() { file.names } else { self.names },
            output_cap: self.output_cap.or(file.output_cap).unwrap_or(1_000_000),
            commands_kept_days: self.commands_kept_days.or(file.commands_kept_days).unwrap_or(90),
            packages_dir: self.packages_dir.or(file.packages_dir),
            min_rate: std::time::Duration::from_secs(self.min_rate.or(file.min_rate).unwrap_or(1800)),
            max_connections: self.max_connections.or(file.max_connections).unwrap_or(20_000),
            max_anonymous: self.max_anonymous.or(file.max_anonymous).unwrap_or(32),
            body_timeout: std::time::Duration::from_secs(self.body_timeout.or(file.body_timeout).unwrap_or(30)),
            audit_kept_days: self.audit_kept_days.or(file.audit_kept_days).unwrap_or(400),
        })
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt().with_max_level(cli.log).with_writer(std::io::stderr).with_target(false).init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    match cli.command {
        Command::Assets { out } => {
            use clap::CommandFactory;
            tend_model::cli_assets::write(Cli::command(), &out)?;
            Ok(())
        }
        Command::Serve(args) => runtime.block_on(tend_server::serve::serve(args.resolve()?)),
        Command::RotateSecretKey { data_dir, database } => {
            runtime.block_on(tend_server::serve::rotate_secret_key(&data_dir, database.as_deref()))
        }
    }
}
