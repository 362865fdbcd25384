//! `tend`: the operator CLI over tend-server's API.

mod associations;
mod automation;
mod client;
mod commands;
mod documents;
mod files;
mod output;
mod recipes;
mod rollouts;
mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use tend_model::diag::Diagnostics;
use tend_model::wire::{Activation, ActivationCreate, AuditEntry, Node, Role, Token, TokenCreate};

use client::Client;
use output::{Output, show};

#[derive(Parser)]
#[command(name = "tend", version, about = "Operate a tend fleet through tend-server")]
struct Cli {
    /// A configuration file with `server`, `ca` and `token_file` (or `token`);
    /// default ~/.config/tend/cli.yaml when it exists. Flags and TEND_* override it.
    #[arg(long, global = true, env = "TEND_CONFIG")]
    config: Option<PathBuf>,
    /// The server, e.g. https://tend.example.net:8443 (default https://127.0.0.1:8443).
    #[arg(long, global = true, env = "TEND_SERVER")]
    server: Option<String>,
    /// The server's CA certificate (its data directory's ca.pem).
    #[arg(long, global = true, env = "TEND_CA")]
    ca: Option<PathBuf>,
    /// An API token (`tend token create`); the first is the server's admin.token.
    #[arg(long, global = true, env = "TEND_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Tables for people, or JSON for scripts.
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Write man pages and shell completions under DIR (for the packages).
    #[command(hide = true)]
    Assets {
        #[arg(long)]
        out: PathBuf,
    },
    /// Activations let hosts register.
    Activation {
        #[command(subcommand)]
        cmd: ActivationCmd,
    },
    /// API tokens for operators.
    Token {
        #[command(subcommand)]
        cmd: TokenCmd,
    },
    /// Registered nodes.
    Nodes {
        #[command(subcommand)]
        cmd: NodesCmd,
    },
    /// One node.
    Node {
        #[command(subcommand)]
        cmd: NodeCmd,
    },
    /// The audit log, newest first.
    Audit,
    /// Recipes: validated exactly as the agent does, stored as immutable versions.
    Recipe {
        #[command(subcommand)]
        cmd: recipes::RecipeCmd,
    },
    /// Run a command document, or shell text, on nodes now.
    Run(run::RunArgs),
    /// Automation documents (multi-step runbooks): start, follow, approve, cancel.
    Automation {
        #[command(subcommand)]
        cmd: automation::AutomationCmd,
    },
    /// Associations: run a document or apply a recipe on nodes on a schedule.
    Association {
        #[command(subcommand)]
        cmd: associations::AssociationCmd,
    },
    /// Each association's status (Compliant, NonCompliant) on each node.
    Compliance(associations::ComplianceArgs),
    /// Command documents (what `tend run` runs): validated, stored as immutable versions.
    Document {
        #[command(subcommand)]
        cmd: documents::DocumentCmd,
    },
    /// Commands sent with `tend run`: their progress, results and output.
    #[command(name = "command")]
    Commands {
        #[command(subcommand)]
        cmd: commands::CommandCmd,
    },
    /// What a recipe version would change on each target host (a change set), changing nothing.
    Plan(rollouts::PlanArgs),
    /// Progressive rollouts of recipe versions: canary, batches, health gates, automatic rollback.
    Rollout {
        #[command(subcommand)]
        cmd: rollouts::RolloutCmd,
    },
    /// Assign a recipe to nodes (by tag:key=value or node id).
    Assign {
        /// NAME or NAME@VERSION (NAME follows the newest version).
        recipe: String,
        #[arg(long, num_args = 1.., required = true)]
        targets: Vec<String>,
        /// Parameter values (YAML or JSON mapping).
        #[arg(long)]
        params: Option<PathBuf>,
    },
    /// Remove an assignment.
    Unassign { id: String },
    /// List assignments.
    Assignments,
    /// Run reports, newest first.
    Reports {
        #[arg(long)]
        node: Option<String>,
        /// Only runs with failures.
        #[arg(long)]
        failed: bool,
    },
}

#[derive(Subcommand)]
enum ActivationCmd {
    Create {
        /// Tags every node registering with it gets: k=v,k=v
        #[arg(long, value_parser = parse_tags, default_value = "")]
        tags: BTreeMap<String, String>,
        /// How many hosts may register with it.
        #[arg(long, default_value_t = 1)]
        limit: u32,
        /// How long it is valid (e.g. 24h, 30m).
        #[arg(long, default_value = "24h")]
        expires: humantime::Duration,
    },
    List,
}

#[derive(Subcommand)]
enum TokenCmd {
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: Role,
        /// Limit the token to nodes with a tag: tag:key=value
        #[arg(long)]
        scope: Option<String>,
    },
    List,
    Revoke {
        id: String,
    },
}

#[derive(Subcommand)]
enum NodesCmd {
    List,
}

#[derive(Subcommand)]
enum NodeCmd {
    Show { id: String },
    Deregister { id: String },
}

/// Reads a YAML or JSON mapping of parameter values.
fn read_params(path: &std::path::Path) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_yaml::from_str::<serde_json::Value>(&text).with_context(|| format!("parsing {}", path.display()))? {
        serde_json::Value::Object(m) => Ok(m),
        _ => bail!("{} must be a mapping of parameter names to values", path.display()),
    }
}

fn parse_tags(s: &str) -> Result<BTreeMap<String, String>, String> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or(format!("{p:?} is not key=value"))
        })
        .collect()
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Assets { out } = &cli.command {
        use clap::CommandFactory;
        tend_model::cli_assets::write(Cli::command(), out).context("writing man pages and completions")?;
        return Ok(ExitCode::SUCCESS);
    }
    let c = Client::new(&cli)?;
    let out = cli.output;
    let done = match cli.command {
        Command::Run(args) => return run::run(&c, out, args).await,
        Command::Automation { cmd } => return automation::run(&c, out, cmd).await,
        Command::Plan(args) => return rollouts::plan(&c, out, args).await,
        Command::Rollout { cmd } => return rollouts::rollout(&c, out, cmd).await,
        Command::Document { cmd } => documents::run(&c, out, cmd).await,
        Command::Commands { cmd } => commands::run(&c, out, cmd).await,
        Command::Recipe { cmd } => recipes::run(&c, out, cmd).await,
        Command::Association { cmd } => associations::run(&c, out, cmd).await,
        Command::Compliance(args) => associations::compliance(&c, out, args).await,
        other => fleet(&c, out, other).await,
    };
    done.map(|()| ExitCode::SUCCESS)
}

/// Registration, tokens, nodes, assignments, reports and the audit log.
async fn fleet(c: &Client, out: Output, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Activation { cmd: ActivationCmd::Create { tags, limit, expires } } => {
            let req = ActivationCreate { tags, limit, expires_in: expires.as_secs() };
            let a: Activation = c.post("/v1/activations", &req).await?;
            show(out, &a, &["id", "code", "tags", "limit", "expires_at"])
        }
        Command::Activation { cmd: ActivationCmd::List } => {
            let a: Vec<Activation> = c.get("/v1/activations").await?;
            show(out, &a, &["id", "tags", "used", "limit", "expires_at"])
        }
        Command::Token { cmd: TokenCmd::Create { name, role, scope } } => {
            let t: Token = c.post("/v1/tokens", &TokenCreate { name, role, scope }).await?;
            show(out, &t, &["id", "name", "role", "scope", "token"])
        }
        Command::Token { cmd: TokenCmd::List } => {
            let t: Vec<Token> = c.get("/v1/tokens").await?;
            show(out, &t, &["id", "name", "role", "scope", "created_at", "revoked_at"])
        }
        Command::Token { cmd: TokenCmd::Revoke { id } } => {
            c.delete(&format!("/v1/tokens/{id}")).await?;
            println!("revoked {id}");
            Ok(())
        }
        Command::Nodes { cmd: NodesCmd::List } => {
            let n: Vec<Node> = c.get("/v1/nodes").await?;
            show(
                out,
                &n,
                &[
                    "id",
                    "hostname",
                    "tags",
                    "last_seen",
                    "last_run.status",
                    "last_run.changed",
                    "last_run.failed",
                    "last_run.cached",
                    "pending",
                ],
            )
        }
        Command::Node { cmd: NodeCmd::Show { id } } => {
            let n: Node = c.get(&format!("/v1/nodes/{id}")).await?;
            show(out, &n, &["id", "hostname", "tags", "registered_at", "last_seen", "last_run.status"])
        }
        Command::Node { cmd: NodeCmd::Deregister { id } } => {
            c.delete(&format!("/v1/nodes/{id}")).await?;
            println!("deregistered {id}");
            Ok(())
        }
        Command::Assign { recipe, targets, params } => {
            let params = params.as_deref().map(read_params).transpose()?.unwrap_or_default();
            let a: tend_model::wire::Assignment =
                c.post("/v1/assignments", &tend_model::wire::AssignmentCreate { recipe, targets, params }).await?;
            show(out, &a, &["id", "recipe", "version", "targets"])
        }
        Command::Unassign { id } => {
            c.delete(&format!("/v1/assignments/{id}")).await?;
            println!("removed {id}");
            Ok(())
        }
        Command::Assignments => {
            let a: Vec<tend_model::wire::Assignment> = c.get("/v1/assignments").await?;
            show(out, &a, &["id", "recipe", "version", "targets"])
        }
        Command::Reports { node, failed } => {
            let mut q = Vec::new();
            if let Some(n) = node {
                q.push(format!("node={n}"));
            }
            if failed {
                q.push("failed=true".into());
            }
            let r: Vec<serde_json::Value> = c.get(&format!("/v1/reports?{}", q.join("&"))).await?;
            show(out, &r, &["node", "at", "summary.changed", "summary.failed", "summary.total", "cached"])
        }
        Command::Audit => {
            let a: Vec<AuditEntry> = c.get("/v1/audit").await?;
            show(out, &a, &["at", "actor", "action", "detail"])
        }
        Command::Run(_)
        | Command::Plan(_)
        | Command::Rollout { .. }
        | Command::Automation { .. }
        | Command::Document { .. }
        | Command::Commands { .. }
        | Command::Recipe { .. }
        | Command::Association { .. }
        | Command::Compliance(_)
        | Command::Assets { .. } => {
            unreachable!("dispatched in run()")
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        // Located problems print one per line, as the agent prints them.
        Err(e) if e.downcast_ref::<Diagnostics>().is_some() => {
            eprintln!("{}", output::inert_lines(&e.to_string()));
            ExitCode::FAILURE
        }
        Err(e) => {
            // Errors can quote what the server was sent: inert, one message.
            eprintln!("error: {}", output::inert_lines(&format!("{e:#}")));
            ExitCode::FAILURE
        }
    }
}
