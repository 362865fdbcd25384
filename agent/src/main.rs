//! The `tend-agent` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use tend_agent::facts::{self, Ec2Mode, FactOptions};
use tend_agent::state::StateDir;
use tend_agent::subcommands::apply::{self, ApplyArgs, OutputFormat};
use tend_model::params::Overrides;

#[derive(Parser)]
#[command(name = "tend-agent", version, about = "Converges this host to its tend recipes")]
struct Cli {
    /// Log level for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, default_value = "warn", env = "TEND_LOG")]
    log: tracing::Level,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct FactArgs {
    /// Directory of custom facts (*.yaml and executables, merged under facts.custom).
    #[arg(long, default_value = "/etc/tend/facts.d", env = "TEND_FACTS_DIR")]
    facts_dir: PathBuf,
    /// How long an executable in the facts directory may run (`10s`).
    #[arg(long, default_value = "10s", env = "TEND_FACT_TIMEOUT", value_parser = humantime::parse_duration)]
    fact_timeout: std::time::Duration,
    /// How long an executable's output is reused from the state directory (`5m`; `0s`: never).
    #[arg(long, default_value = "5m", env = "TEND_FACT_CACHE", value_parser = humantime::parse_duration)]
    fact_cache: std::time::Duration,
    /// Probe EC2 instance metadata: auto (only on EC2 hardware), on, off.
    #[arg(long, default_value = "auto", env = "TEND_EC2")]
    ec2: Ec2Mode,
    /// Instance metadata endpoint.
    #[arg(long, default_value = facts::ec2::DEFAULT_ENDPOINT, env = "TEND_IMDS_ENDPOINT", hide = true)]
    imds_endpoint: String,
}

impl FactArgs {
    fn options(&self, cache: Option<PathBuf>) -> FactOptions {
        FactOptions {
            facts_dir: self.facts_dir.clone(),
            ec2: self.ec2,
            imds_endpoint: self.imds_endpoint.clone(),
            cache_dir: cache,
            exec_timeout: self.fact_timeout,
            exec_cache: self.fact_cache,
        }
    }
}

#[derive(clap::Args, Clone)]
struct ParamArgs {
    /// Set a parameter: --param name=value (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_kv)]
    params: Vec<(String, String)>,
    /// A YAML or JSON file of parameter values.
    #[arg(long = "params", value_name = "FILE")]
    params_file: Option<PathBuf>,
}

impl ParamArgs {
    fn overrides(&self) -> anyhow::Result<Overrides> {
        let typed = match &self.params_file {
            Some(p) => apply::read_params_file(p)?,
            None => Default::default(),
        };
        Ok(Overrides { raw: self.params.clone(), typed, placeholders: false })
    }
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Converge this host to the given recipes.
    Apply {
        /// Recipe files.
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
        /// Report what would change, with diffs, and change nothing.
        #[arg(long, visible_alias = "noop")]
        dry_run: bool,
        #[command(flatten)]
        params: ParamArgs,
        /// Also write the JSON report to FILE.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
        /// Show content diffs for changes (always shown in dry-run).
        #[arg(long)]
        diff: bool,
        /// Holds the run lock, the disable switch and the last report.
        #[arg(long, default_value = "/var/lib/tend", env = "TEND_STATE_DIR")]
        state_dir: PathBuf,
        #[command(flatten)]
        facts: FactArgs,
    },
    /// Check recipes without looking at this host; report every problem.
    Validate {
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
        #[command(flatten)]
        params: ParamArgs,
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
    },
    /// Show each parameter's value on this host and where it came from
    /// (--param, a params file, a data level, the default).
    Explain {
        /// The parameter, or `'*'` for all of them.
        #[arg(value_name = "PARAM")]
        name: String,
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
        #[command(flatten)]
        params: ParamArgs,
        #[arg(long, default_value = "/var/lib/tend", env = "TEND_STATE_DIR")]
        state_dir: PathBuf,
        #[command(flatten)]
        facts: FactArgs,
    },
    /// Print this host's facts as JSON.
    Facts {
        #[command(flatten)]
        facts: FactArgs,
        #[arg(long, default_value = "/var/lib/tend", env = "TEND_STATE_DIR")]
        state_dir: PathBuf,
    },
    /// Stop converges until `enable`; apply refuses and prints the reason.
    Disable {
        #[arg(long)]
        reason: String,
        #[arg(long, default_value = "/var/lib/tend", env = "TEND_STATE_DIR")]
        state_dir: PathBuf,
    },
    /// Resume converges.
    Enable {
        #[arg(long, default_value = "/var/lib/tend", env = "TEND_STATE_DIR")]
        state_dir: PathBuf,
    },
    /// Print the JSON Schema of the recipe format.
    Schema,
    /// Write man pages and shell completions under DIR (for the packages).
    #[command(hide = true)]
    Assets {
        #[arg(long)]
        out: PathBuf,
    },
    /// Register this host with a tend-server, using an activation.
    Register {
        #[arg(long, env = "TEND_SERVER")]
        server: String,
        /// The server's CA certificate.
        #[arg(long)]
        ca: PathBuf,
        #[arg(long)]
        activation_id: String,
        #[arg(long, env = "TEND_ACTIVATION_CODE", hide_env_values = true)]
        activation_code: String,
        /// Extra tags for this node: k=v,k=v
        #[arg(long, default_value = "")]
        tags: String,
        /// The agent configuration (its state_dir is where the identity goes).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides the configuration's state_dir.
        #[arg(long, env = "TEND_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Fetch this node's recipes from the server, converge, and report.
    Run {
        /// One run, then exit; without it, run every interval until SIGTERM.
        #[arg(long)]
        once: bool,
        /// The agent configuration (default /etc/tend/agent.yaml, if present).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides the configuration's state_dir.
        #[arg(long, env = "TEND_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Overrides the configuration's facts_dir.
        #[arg(long, env = "TEND_FACTS_DIR")]
        facts_dir: Option<PathBuf>,
        /// Overrides the configuration's ec2 (auto, on, off).
        #[arg(long, env = "TEND_EC2")]
        ec2: Option<String>,
        #[arg(long, env = "TEND_IMDS_ENDPOINT", hide = true)]
        imds_endpoint: Option<String>,
    },
    /// Forget this host's identity, caches, queued reports and command
    /// records, so that it registers as a new node (run before baking an image).
    ResetIdentity {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, env = "TEND_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Exit 0 if the agent can run here (registered, an S3 source, or a
    /// `register:` section is configured), 1 if not. The systemd unit starts only then.
    Configured {
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long, env = "TEND_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
    /// Ask the server who this node is (checks the registration and mTLS).
    Whoami {
        /// The agent configuration (its state_dir holds the identity).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Overrides the configuration's state_dir.
        #[arg(long, env = "TEND_STATE_DIR")]
        state_dir: Option<PathBuf>,
    },
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.to_string()))
        .ok_or_else(|| format!("expected NAME=VALUE, got {s:?}"))
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // Usage errors exit 1 (invalid input), not clap's 2, which means "changed".
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { apply::EXIT_INVALID as u8 } else { 0 });
        }
    };
    tracing_subscriber::fmt().with_max_level(cli.log).with_writer(std::io::stderr).with_target(false).init();
    match run(cli.command) {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(apply::EXIT_INVALID as u8)
        }
    }
}

fn run(cmd: Command) -> anyhow::Result<i32> {
    match cmd {
        Command::Apply { recipes, dry_run, params, report, output, diff, state_dir, facts } => {
            let args = ApplyArgs {
                recipes,
                dry_run,
                overrides: params.overrides()?,
                report,
                output: match output {
                    Output::Human => OutputFormat::Human,
                    Output::Json => OutputFormat::Json,
                },
                diff,
                state: StateDir::new(&state_dir),
                facts: facts.options(Some(state_dir)),
            };
            apply::apply(&args)
        }
        Command::Validate { recipes, params, output } => {
            let skeleton = facts::skeleton();
            match apply::compile(&recipes, &skeleton, true, &params.overrides()?) {
                Ok(plan) => {
                    apply::print_warnings(&plan);
                    if matches!(output, Output::Json) {
                        println!("[]");
                    } else {
                        println!("ok: {} resources in {} recipe(s)", plan.resources.len(), plan.recipes.len());
                    }
                    Ok(0)
                }
                Err(d) => {
                    if matches!(output, Output::Json) {
                        println!("{}", serde_json::to_string_pretty(&d)?);
                    } else {
                        eprintln!("{d}");
                    }
                    Ok(apply::EXIT_INVALID)
                }
            }
        }
        Command::Explain { name, recipes, params, state_dir, facts } => {
            let f = facts::gather(&facts.options(Some(state_dir).filter(|d| d.is_dir())));
            match apply::compile(&recipes, &f, false, &params.overrides()?) {
                Ok(plan) => {
                    apply::print_warnings(&plan);
                    apply::explain(&plan, Some(name.as_str()).filter(|n| *n != "*"), &mut std::io::stdout().lock())
                }
                Err(d) => {
                    eprintln!("{d}");
                    Ok(apply::EXIT_INVALID)
                }
            }
        }
        Command::Facts { facts, state_dir } => {
            let f = facts::gather(&facts.options(Some(state_dir).filter(|d| d.is_dir())));
            println!("{}", serde_json::to_string_pretty(&f)?);
            Ok(0)
        }
        Command::Disable { reason, state_dir } => {
            StateDir::new(&state_dir).disable(&reason).context("disabling")?;
            println!("tend-agent disabled: {reason}");
            Ok(0)
        }
        Command::Enable { state_dir } => {
            let was = StateDir::new(&state_dir).enable().context("enabling")?;
            println!("{}", if was { "tend-agent enabled" } else { "tend-agent was not disabled" });
            Ok(0)
        }
        Command::Register { server, ca, activation_id, activation_code, tags, config, state_dir } => {
            let state_dir = state_dir_of(config, state_dir)?;
            let mut t = tend_model::wire::Tags::new();
            for kv in tags.split(',').filter(|s| !s.trim().is_empty()) {
                let (k, v) = kv.split_once('=').with_context(|| format!("tag {kv:?} is not key=value"))?;
                t.insert(k.trim().to_string(), v.trim().to_string());
            }
            let hostname = nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
            let args =
                tend_agent::identity::RegisterArgs { server, ca, activation_id, activation_code, hostname, tags: t };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let node = rt.block_on(tend_agent::identity::register(&state_dir, &args))?;
            println!("registered as {} with {}", node.node_id, node.server);
            Ok(0)
        }
        Command::Run { once, config, state_dir, facts_dir, ec2, imds_endpoint } => {
            let mut cfg = tend_agent::config::AgentConfig::load(config.as_deref())?;
            if let Some(d) = state_dir {
                cfg.state_dir = d;
            }
            if let Some(d) = facts_dir {
                cfg.facts_dir = d;
            }
            if let Some(e) = ec2 {
                cfg.ec2 = e;
            }
            let mut fopts = cfg.fact_options()?;
            if let Some(e) = imds_endpoint {
                fopts.imds_endpoint = e;
            }
            if once {
                tend_agent::sources::server::run_once(&cfg, &fopts)
            } else {
                tend_agent::subcommands::daemon::run(&cfg, &fopts)
            }
        }
        Command::ResetIdentity { config, state_dir } => {
            let state_dir = state_dir_of(config, state_dir)?;
            let removed = StateDir::new(&state_dir).reset_identity().context("resetting the identity")?;
            for p in &removed {
                println!("removed {}", p.display());
            }
            if removed.is_empty() {
                println!("nothing to reset in {}", state_dir.display());
            }
            Ok(0)
        }
        Command::Configured { config, state_dir } => {
            let mut cfg = tend_agent::config::AgentConfig::load(config.as_deref())?;
            if let Some(d) = state_dir {
                cfg.state_dir = d;
            }
            let registered = tend_agent::identity::Identity::at(&cfg.state_dir).node().is_some();
            Ok(if registered || cfg.source.is_some() || cfg.register.is_some() { 0 } else { 1 })
        }
        Command::Whoami { config, state_dir } => {
            let state_dir = state_dir_of(config, state_dir)?;
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            let node = rt.block_on(tend_agent::identity::whoami(&state_dir))?;
            println!("{}", serde_json::to_string_pretty(&node)?);
            Ok(0)
        }
        Command::Schema => {
            print!("{}", tend_model::schema::recipe_schema_text());
            Ok(0)
        }
        Command::Assets { out } => {
            use clap::CommandFactory;
            tend_model::cli_assets::write(Cli::command(), &out).context("writing man pages and completions")?;
            Ok(0)
        }
    }
}

/// `--state-dir`, or the configuration's `state_dir`.
fn state_dir_of(config: Option<PathBuf>, state_dir: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match state_dir {
        Some(d) => Ok(d),
        None => Ok(tend_agent::config::AgentConfig::load(config.as_deref())?.state_dir),
    }
}
