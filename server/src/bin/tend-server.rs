//! The `tend-server` command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    Serve {
        /// Holds the database, the CA (ca.pem) and the first admin token (admin.token).
        #[arg(long, default_value = "/var/lib/tend-server")]
        data_dir: PathBuf,
        #[arg(long, default_value = "127.0.0.1:8443")]
        listen: SocketAddr,
        /// PostgreSQL instead of the embedded SQLite: postgres://USER@HOST:PORT/DB
        #[arg(long, env = "TEND_DATABASE", hide_env_values = true)]
        database: Option<String>,
        /// Run reports kept per node (older ones are deleted).
        #[arg(long, default_value_t = 100)]
        reports_kept: u32,
        /// More host names or addresses for the server certificate.
        #[arg(long = "name")]
        names: Vec<String>,
        /// Characters of each run-command output stream stored per node
        /// (inline output in listings is capped at 24,000).
        #[arg(long, default_value_t = 1_000_000)]
        output_cap: usize,
        /// Days a finished run command, with its output, is kept.
        #[arg(long, default_value_t = 90)]
        commands_kept_days: u32,
        /// Agent packages and their MANIFEST (`packaging/build.sh` makes
        /// both), served at /packages/ for `GET /install.sh`.
        #[arg(long)]
        packages_dir: Option<PathBuf>,
    },
    /// Write man pages and shell completions under DIR (for the packages).
    #[command(hide = true)]
    Assets {
        #[arg(long)]
        out: PathBuf,
    },
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
        Command::Serve {
            data_dir,
            listen,
            database,
            reports_kept,
            names,
            output_cap,
            commands_kept_days,
            packages_dir,
        } => runtime.block_on(tend_server::serve::serve(tend_server::serve::ServeOptions {
            data_dir,
            listen,
            database,
            reports_kept,
            names,
            output_cap,
            commands_kept_days,
            packages_dir,
        })),
    }
}
