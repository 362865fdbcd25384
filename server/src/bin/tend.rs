//! `tend`: the operator CLI over tend-server's API.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand, ValueEnum};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tend_model::wire::{Activation, ActivationCreate, ApiError, AuditEntry, Node, Role, Token, TokenCreate};

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
    #[arg(long, global = true, value_enum, default_value = "table")]
    output: Output,
    #[command(subcommand)]
    command: Command,
}

/// `~/.config/tend/cli.yaml`.
#[derive(Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CliConfig {
    server: Option<String>,
    ca: Option<PathBuf>,
    token: Option<String>,
    /// A file holding the token (e.g. the server's admin.token).
    token_file: Option<PathBuf>,
}

impl CliConfig {
    fn load(path: Option<&std::path::Path>) -> anyhow::Result<CliConfig> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => match std::env::var_os("HOME") {
                Some(h) => (PathBuf::from(h).join(".config/tend/cli.yaml"), false),
                None => return Ok(CliConfig::default()),
            },
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_yaml::from_str(&text).with_context(|| format!("reading {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(CliConfig::default()),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }
}

#[derive(Clone, Copy, ValueEnum, PartialEq)]
enum Output {
    Table,
    Json,
}

#[derive(Subcommand)]
enum Command {
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
        cmd: RecipeCmd,
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
enum RecipeCmd {
    /// Push a recipe file, or every recipe file in a directory.
    Push {
        path: PathBuf,
        /// Sign with this ed25519 key (from `tend recipe keygen`).
        #[arg(long)]
        sign: Option<PathBuf>,
    },
    /// Write a recipe set file (for an S3 source): the recipes, with these
    /// parameters, signed. Upload it as s3://BUCKET/PREFIX/recipes.json.
    Bundle {
        #[arg(required = true)]
        recipes: Vec<PathBuf>,
        #[arg(long)]
        sign: Option<PathBuf>,
        /// Parameter values (YAML or JSON mapping), for every recipe.
        #[arg(long)]
        params: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Make an ed25519 signing key: the private key goes to FILE (0600), the
    /// public key (for agents' trusted_keys) is printed.
    Keygen {
        #[arg(long)]
        out: PathBuf,
    },
    List,
    /// NAME or NAME@VERSION.
    Show {
        spec: String,
    },
    /// The differences between two versions: NAME@A NAME@B.
    Diff {
        a: String,
        b: String,
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

/// Loads a signing key written by `tend recipe keygen`.
fn load_signer(path: &std::path::Path) -> anyhow::Result<aws_lc_rs::signature::Ed25519KeyPair> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading the signing key {}", path.display()))?;
    let der =
        unhex(text.trim()).with_context(|| format!("{} is not a key from `tend recipe keygen`", path.display()))?;
    aws_lc_rs::signature::Ed25519KeyPair::from_pkcs8(&der)
        .map_err(|_| anyhow::anyhow!("{} is not an ed25519 key", path.display()))
}

fn sign_bundle(bundle: &mut tend_model::bundle::Bundle, kp: &aws_lc_rs::signature::Ed25519KeyPair) {
    use aws_lc_rs::signature::KeyPair;
    bundle.signature = Some(tend_model::bundle::BundleSignature {
        public_key: hex(kp.public_key().as_ref()),
        signature: hex(kp.sign(&bundle.canonical()).as_ref()),
    });
}

/// Reads a YAML or JSON mapping of parameter values.
fn read_params(path: &std::path::Path) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    match serde_yaml::from_str::<serde_json::Value>(&text).with_context(|| format!("parsing {}", path.display()))? {
        serde_json::Value::Object(m) => Ok(m),
        _ => bail!("{} must be a mapping of parameter names to values", path.display()),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok()).collect()
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

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(cli: &Cli) -> anyhow::Result<Client> {
        let cfg = CliConfig::load(cli.config.as_deref())?;
        let server = cli.server.clone().or(cfg.server).unwrap_or_else(|| "https://127.0.0.1:8443".into());
        let ca = cli.ca.clone().or(cfg.ca);
        let token = match (cli.token.clone().or(cfg.token), cfg.token_file) {
            (Some(t), _) => Some(t),
            (None, Some(f)) => {
                Some(std::fs::read_to_string(&f).with_context(|| format!("reading the token file {}", f.display()))?)
            }
            (None, None) => None,
        };
        let mut b = reqwest::Client::builder().no_proxy().timeout(std::time::Duration::from_secs(60));
        if let Some(ca) = &ca {
            let pem = std::fs::read(ca).with_context(|| format!("reading the CA certificate {}", ca.display()))?;
            b = b.tls_certs_only([reqwest::Certificate::from_pem(&pem).context("parsing the CA certificate")?]);
        }
        Ok(Client { http: b.build()?, base: server.trim_end_matches('/').to_string(), token })
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<Option<T>> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t.trim()),
            None => req,
        };
        let resp = req.send().await.with_context(|| format!("contacting {}", self.base))?;
        let status = resp.status();
        let body = resp.bytes().await?;
        if !status.is_success() {
            let msg = ApiError::message_of(&body);
            bail!("{msg} ({status})");
        }
        if body.is_empty() {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&body).context("reading the server's answer")?))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base))).await?.context("empty answer")
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body)).await?.context("empty answer")
    }

    async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.send::<serde_json::Value>(self.http.delete(format!("{}{path}", self.base))).await.map(|_| ())
    }
}

/// Prints JSON, or a table of the given columns.
fn show<T: Serialize>(output: Output, value: &T, columns: &[&str]) -> anyhow::Result<()> {
    let v = serde_json::to_value(value)?;
    if output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = match v {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    let cell = |row: &serde_json::Value, col: &str| -> String {
        match row.pointer(&format!("/{}", col.replace('.', "/"))) {
            None | Some(serde_json::Value::Null) => "-".into(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(m)) => m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => other.to_string(),
        }
    };
    let table: Vec<Vec<String>> = rows.iter().map(|r| columns.iter().map(|c| cell(r, c)).collect()).collect();
    let widths: Vec<usize> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| table.iter().map(|r| r[i].len()).chain([c.len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: Vec<String>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    println!("{}", line(columns.iter().map(|c| c.to_uppercase()).collect()));
    for r in table {
        println!("{}", line(r));
    }
    Ok(())
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let c = Client::new(&cli)?;
    let out = cli.output;
    match cli.command {
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
        Command::Recipe { cmd: RecipeCmd::Bundle { recipes, sign: key, params, out: path } } => {
            let signer = key.as_deref().map(load_signer).transpose()?;
            let params = params.as_deref().map(read_params).transpose()?.unwrap_or_default();
            let skeleton = tend_model::facts::skeleton();
            let mut set = tend_model::wire::AgentRecipes::default();
            for r in recipes {
                let mut bundle =
                    tend_model::bundle::Bundle::from_file(&r, &skeleton).map_err(|d| anyhow::anyhow!("{d}"))?;
                let overrides =
                    tend_model::params::Overrides { raw: Vec::new(), typed: params.clone(), placeholders: false };
                bundle.validate_with(&skeleton, &overrides).map_err(|d| anyhow::anyhow!("{d}"))?;
                if let Some(kp) = &signer {
                    sign_bundle(&mut bundle, kp);
                }
                let version = tend_server::pki::sha256_hex(&serde_json::to_vec(&bundle)?)[..16].to_string();
                set.recipes.push(tend_model::wire::AssignedRecipe {
                    assignment: "s3".into(),
                    version,
                    params: params.clone(),
                    bundle,
                });
            }
            tend_server::pki::write_secret(&path, &serde_json::to_string_pretty(&set)?, 0o644)?;
            println!("wrote {} recipe(s) to {}", set.recipes.len(), path.display());
            Ok(())
        }
        Command::Recipe { cmd: RecipeCmd::Keygen { out: path } } => {
            use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
            let rng = aws_lc_rs::rand::SystemRandom::new();
            let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(|_| anyhow::anyhow!("key generation failed"))?;
            let kp = Ed25519KeyPair::from_pkcs8(doc.as_ref()).map_err(|_| anyhow::anyhow!("key generation failed"))?;
            tend_server::pki::write_secret(&path, &format!("{}\n", hex(doc.as_ref())), 0o600)?;
            println!("{}", hex(kp.public_key().as_ref()));
            Ok(())
        }
        Command::Recipe { cmd: RecipeCmd::Push { path, sign } } => {
            let signer = sign.as_deref().map(load_signer).transpose()?;
            let files: Vec<PathBuf> = if path.is_dir() {
                let mut v: Vec<PathBuf> = std::fs::read_dir(&path)
                    .with_context(|| format!("reading {}", path.display()))?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
                    .collect();
                v.sort();
                v
            } else {
                vec![path]
            };
            let skeleton = tend_model::facts::skeleton();
            let mut pushed = Vec::new();
            for f in files {
                let mut bundle =
                    tend_model::bundle::Bundle::from_file(&f, &skeleton).map_err(|d| anyhow::anyhow!("{d}"))?;
                if let Some(kp) = &signer {
                    sign_bundle(&mut bundle, kp);
                }
                let v: tend_model::wire::RecipeVersion = c.post("/v1/recipes", &bundle).await?;
                pushed.push(v);
            }
            show(out, &pushed, &["name", "version", "files", "created_at"])
        }
        Command::Recipe { cmd: RecipeCmd::List } => {
            let v: Vec<tend_model::wire::RecipeVersion> = c.get("/v1/recipes").await?;
            show(out, &v, &["name", "version", "files", "created_at"])
        }
        Command::Recipe { cmd: RecipeCmd::Show { spec } } => {
            let v: serde_json::Value = c.get(&format!("/v1/recipes/{spec}")).await?;
            if out == Output::Json {
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "{}@{} ({})",
                    v["name"].as_str().unwrap_or(""),
                    v["version"].as_str().unwrap_or(""),
                    v["created_at"].as_str().unwrap_or("")
                );
                for (path, text) in v["bundle"]["files"].as_object().into_iter().flatten() {
                    println!("--- {path}\n{}", text.as_str().unwrap_or(""));
                }
            }
            Ok(())
        }
        Command::Recipe { cmd: RecipeCmd::Diff { a, b } } => {
            let va: serde_json::Value = c.get(&format!("/v1/recipes/{a}")).await?;
            let vb: serde_json::Value = c.get(&format!("/v1/recipes/{b}")).await?;
            let files = |v: &serde_json::Value| -> BTreeMap<String, String> {
                v["bundle"]["files"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, t)| (k.clone(), t.as_str().unwrap_or("").to_string()))
                    .collect()
            };
            let (fa, fb) = (files(&va), files(&vb));
            let mut names: Vec<&String> = fa.keys().chain(fb.keys()).collect();
            names.sort();
            names.dedup();
            for n in names {
                let (x, y) = (fa.get(n).map(String::as_str).unwrap_or(""), fb.get(n).map(String::as_str).unwrap_or(""));
                if x != y {
                    print!(
                        "{}",
                        similar::TextDiff::from_lines(x, y)
                            .unified_diff()
                            .header(&format!("{a}/{n}"), &format!("{b}/{n}"))
                    );
                }
            }
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
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
