//! One agent run against the server: fetch the resolved recipe set (ETag;
//! an unchanged set costs a 304), keep the last good set on disk, converge
//! it (from the cache when the server is unreachable, marked `cached`),
//! and post the report, queueing reports on disk while the server is away.

use std::path::PathBuf;

use anyhow::Context;
use reqwest::StatusCode;
use tend_model::params::Overrides;
use tend_model::wire::{AgentRecipes, AssignedRecipe};

use crate::config::AgentConfig;
use crate::engine::{self, RunOptions};
use crate::facts::{self, FactOptions};
use crate::identity::Identity;
use crate::report::Report;
use crate::state::{StateDir, write_atomic};

/// Reports kept on disk while the server cannot be reached (oldest dropped).
pub const QUEUE_LIMIT: usize = 100;

/// Where the recipe set came from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    Fresh,
    NotModified,
    /// The server could not be reached: the cached set, with the reason.
    Cached(String),
}

fn cache_dir(state: &StateDir) -> PathBuf {
    state.path("cache")
}

fn queue_dir(state: &StateDir) -> PathBuf {
    state.path("queue")
}

/// The last good recipe set on disk (`STATE/cache/recipes.json`) and the
/// ETag it came with, shared by the server and S3 sources.
pub struct RecipeCache {
    body: PathBuf,
    etag: PathBuf,
}

impl RecipeCache {
    /// `etag_name` keeps the server's and S3's ETags apart.
    pub fn new(state: &StateDir, etag_name: &str) -> RecipeCache {
        RecipeCache { body: cache_dir(state).join("recipes.json"), etag: cache_dir(state).join(etag_name) }
    }

    /// The ETag to send, when there is a cached set it describes.
    pub fn etag(&self) -> Option<String> {
        if !self.body.exists() {
            return None;
        }
        std::fs::read_to_string(&self.etag).ok().map(|t| t.trim().to_string())
    }

    pub fn exists(&self) -> bool {
        self.body.exists()
    }

    pub fn load(&self) -> anyhow::Result<AgentRecipes> {
        let bytes = std::fs::read(&self.body).context("no cached recipe set (the source was never reached)")?;
        serde_json::from_slice(&bytes).context("the cached recipe set is corrupt")
    }

    /// Parses a fetched set and keeps it (with its ETag) as the last good one.
    pub fn store(&self, body: &[u8], etag: Option<&str>) -> anyhow::Result<AgentRecipes> {
        let set: AgentRecipes = serde_json::from_slice(body).context("reading the recipe set")?;
        if let Some(dir) = self.body.parent() {
            std::fs::create_dir_all(dir)?;
        }
        write_atomic(&self.body, body, 0o600)?;
        if let Some(t) = etag {
            write_atomic(&self.etag, t.as_bytes(), 0o600)?;
        }
        Ok(set)
    }
}

/// Fetches the recipe set from the first server that answers, or falls
/// back to the cache when none does. Returns the server that answered.
async fn fetch(
    id: &Identity,
    servers: &[String],
    state: &StateDir,
) -> anyhow::Result<(AgentRecipes, Source, Option<String>)> {
    let cache = RecipeCache::new(state, "recipes.etag");
    let client = id.client()?;
    let mut unreachable = Vec::new();
    for server in servers {
        let mut req = client.get(format!("{server}/v1/agent/recipes")).timeout(std::time::Duration::from_secs(60));
        if let Some(tag) = cache.etag() {
            req = req.header(reqwest::header::IF_NONE_MATCH, tag);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(server, error = %e, "server unreachable");
                unreachable.push(format!("{server}: {e}"));
                continue;
            }
        };
        let answered = Some(server.clone());
        return match resp.status() {
            StatusCode::NOT_MODIFIED => Ok((cache.load()?, Source::NotModified, answered)),
            s if s.is_success() => {
                let etag = resp.headers().get(reqwest::header::ETAG).and_then(|v| v.to_str().ok()).map(str::to_string);
                let body = resp.bytes().await?;
                Ok((cache.store(&body, etag.as_deref())?, Source::Fresh, answered))
            }
            s if s.is_server_error() => {
                unreachable.push(format!("{server} answered {s}"));
                continue;
            }
            s => {
                let msg = resp.text().await.unwrap_or_default();
                anyhow::bail!("the server refused the recipe fetch ({s}): {msg}")
            }
        };
    }
    Ok((cache.load()?, Source::Cached(unreachable.join("; ")), None))
}

/// Sends queued reports (oldest first), then this one; what cannot be sent
/// is queued. Returns how many are still queued.
async fn send_reports(id: &Identity, server: &str, state: &StateDir, report: &Report) -> anyhow::Result<usize> {
    let qdir = queue_dir(state);
    std::fs::create_dir_all(&qdir)?;
    let name = format!("{}-{:06}.json", report.started_at.replace(':', ""), std::process::id());
    write_atomic(&qdir.join(name), &serde_json::to_vec(report)?, 0o600)?;
    let mut queued: Vec<PathBuf> = std::fs::read_dir(&qdir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    queued.sort();
    while queued.len() > QUEUE_LIMIT {
        let _ = std::fs::remove_file(queued.remove(0));
    }
    let client = id.client()?;
    let mut left = queued.len();
    for path in queued {
        let body = std::fs::read(&path)?;
        let sent = client
            .post(format!("{server}/v1/agent/reports"))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .timeout(std::time::Duration::from_secs(30))
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() || r.status().is_client_error() => {
                // Sent, or refused for good (a bad report must not block the queue).
                let _ = std::fs::remove_file(&path);
                left -= 1;
            }
            _ => break,
        }
    }
    Ok(left)
}

/// Facts that change all the time and say nothing about the host's state.
const VOLATILE: &[(&str, &str)] = &[("memory", "available_bytes"), ("ntp", "max_error_us"), ("ntp", "est_error_us")];

/// Uploads the facts if they changed since the last upload.
async fn upload_facts(
    id: &Identity,
    server: &str,
    state: &StateDir,
    facts: &serde_json::Value,
) -> anyhow::Result<bool> {
    let mut stable = facts.clone();
    for (a, b) in VOLATILE {
        if let Some(m) = stable.get_mut(*a).and_then(|v| v.as_object_mut()) {
            m.remove(*b);
        }
    }
    let body = serde_json::to_vec(&stable)?;
    let hash = format!("{:x}", tend_model::compile::stable_hash(&[&body]));
    let hash_path = cache_dir(state).join("facts.sent");
    if std::fs::read_to_string(&hash_path).is_ok_and(|h| h.trim() == hash) {
        return Ok(false);
    }
    let resp = id
        .client()?
        .post(format!("{server}/v1/agent/facts"))
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(facts)?)
        .timeout(std::time::Duration::from_secs(30))
        .send()
        .await?;
    anyhow::ensure!(resp.status().is_success(), "the server refused the facts ({})", resp.status());
    std::fs::create_dir_all(cache_dir(state))?;
    write_atomic(&hash_path, hash.as_bytes(), 0o600)?;
    Ok(true)
}

/// How a run went.
pub struct Outcome {
    /// The exit code, as `apply`'s.
    pub code: i32,
    /// False when the server could not be reached (the daemon backs off).
    pub reachable: bool,
}

/// `tend-agent run --once`: returns the exit code (as `apply`).
pub fn run_once(cfg: &AgentConfig, fopts: &FactOptions) -> anyhow::Result<i32> {
    run_once_with(cfg, fopts).map(|o| o.code)
}

/// One run. With an S3 `source`, recipes come from S3 and nothing is sent
/// anywhere: no registration, reports stay on the host.
pub fn run_once_with(cfg: &AgentConfig, fopts: &FactOptions) -> anyhow::Result<Outcome> {
    let state = &StateDir::new(&cfg.state_dir);
    if crate::state::refused_while_disabled(state) {
        return Ok(Outcome { code: crate::report::EXIT_INVALID, reachable: true });
    }
    let _lock = state.lock()?;
    let (report, code) = run_locked(cfg, fopts, state, None, false)?;
    let stdout = std::io::stdout();
    crate::output::print(&report, crate::output::Style { color: false, diffs: false }, &mut stdout.lock())?;
    Ok(Outcome { code, reachable: !report.cached })
}

/// One run under the caller's run lock: fetch, converge, report. With
/// `preview` (`RECIPE@VERSION`, what a plan asks), a dry-run of the set the
/// server resolves with that version in place of the assigned one: nothing
/// is cached, changed, saved or reported, and an unreachable server is an
/// error (the cached set would answer another question). With `fresh`, so
/// is an unreachable server for a real run ([`Unreachable`]): a wake-up
/// asks for the server's set of now, not the last one cached.
pub fn run_locked(
    cfg: &AgentConfig,
    fopts: &FactOptions,
    state: &StateDir,
    preview: Option<&str>,
    fresh: bool,
) -> anyhow::Result<(Report, i32)> {
    let trusted = &cfg.trusted_keys;
    let s3 = cfg.source.as_deref();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let id = Identity::at(&state.root);
    let node = match s3 {
        Some(_) => None,
        None => Some(id.node().context("this host is not registered (run `tend-agent register`)")?),
    };
    let (set, source, server) = match (s3, &node, preview) {
        (Some(_), _, Some(_)) => anyhow::bail!("a preview of another version needs the server as the recipe source"),
        (Some(url), _, None) => {
            let (set, source) = rt.block_on(crate::sources::s3::fetch(url, state))?;
            (set, source, None)
        }
        (None, Some(n), Some(spec)) => {
            let (set, server) = rt.block_on(fetch_preview(&id, &cfg.server_urls(&n.server), spec))?;
            (set, Source::Fresh, Some(server))
        }
        (None, Some(n), None) => rt.block_on(fetch(&id, &cfg.server_urls(&n.server), state))?,
        (None, None, _) => anyhow::bail!("no recipe source"),
    };
    match &source {
        Source::Fresh => tracing::info!(recipes = set.recipes.len(), "fetched the recipe set"),
        Source::NotModified => tracing::info!("recipe set unchanged (304)"),
        Source::Cached(why) if fresh => return Err(Unreachable(why.clone()).into()),
        Source::Cached(why) => {
            eprintln!("warning: recipe source unreachable ({why}); converging from the cached recipe set")
        }
    }
    let facts::Gathered { facts, warnings } = facts::gather_with_warnings(fopts);
    if let (Some(server), None) = (&server, preview) {
        match rt.block_on(upload_facts(&id, server, state, &facts)) {
            Ok(sent) => tracing::info!(sent, "inventory"),
            Err(e) => eprintln!("warning: facts not uploaded: {e:#}"),
        }
    }
    let cached = matches!(source, Source::Cached(_));
    let mode = if preview.is_some() { Mode::DryRun } else { Mode::Apply };
    let (report, code) = converge(state, trusted, &facts, warnings, &set.recipes, cached, mode);
    if preview.is_some() {
        return Ok((report, code));
    }
    let report_to = server.or_else(|| node.as_ref().map(|n| n.server.clone()));
    if let Some(server) = &report_to {
        match rt.block_on(send_reports(&id, server, state, &report)) {
            Ok(0) => {}
            Ok(n) => eprintln!("warning: {n} report(s) queued until the server can be reached"),
            Err(e) => eprintln!("warning: reports not sent: {e:#}"),
        }
    }
    Ok((report, code))
}

/// The set with one recipe's version replaced (`RECIPE@VERSION`), from the
/// first server that answers; never cached.
async fn fetch_preview(id: &Identity, servers: &[String], spec: &str) -> anyhow::Result<(AgentRecipes, String)> {
    anyhow::ensure!(
        spec.chars().all(|c| c.is_ascii_alphanumeric() || "_.@-".contains(c)),
        "{spec:?} is not RECIPE@VERSION"
    );
    let client = id.client()?;
    let mut unreachable = Vec::new();
    for server in servers {
        let req =
            client.get(format!("{server}/v1/agent/recipes?replace={spec}")).timeout(std::time::Duration::from_secs(60));
        match req.send().await {
            Ok(r) if r.status().is_success() => {
                let body = r.bytes().await?;
                let set = serde_json::from_slice(body.as_ref()).context("reading the recipe set")?;
                return Ok((set, server.clone()));
            }
            Ok(r) if r.status().is_server_error() => unreachable.push(format!("{server} answered {}", r.status())),
            Ok(r) => {
                let status = r.status();
                anyhow::bail!(
                    "the server refused the preview of {spec} ({status}): {}",
                    r.text().await.unwrap_or_default()
                )
            }
            Err(e) => unreachable.push(format!("{server}: {e}")),
        }
    }
    anyhow::bail!("no server answered the preview of {spec}: {}", unreachable.join("; "))
}

/// The recipe source could not be reached, and the run needed it.
#[derive(Debug, thiserror::Error)]
#[error("the recipe source could not be reached: {0}")]
pub struct Unreachable(pub String);

/// Whether a converge changes the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Apply,
    /// Checks and diffs only: nothing is changed and no state is saved.
    DryRun,
}

/// Converges a set of recipes (trust checked, compiled, run) and saves the
/// run's state, as `apply` does. The caller holds the run lock. Returns the
/// report and the exit code (as `apply`'s). `warnings` (from gathering the
/// facts) go into the report.
pub fn converge(
    state: &StateDir,
    trusted: &[String],
    facts: &serde_json::Value,
    warnings: Vec<String>,
    recipes: &[AssignedRecipe],
    cached: bool,
    mode: Mode,
) -> (Report, i32) {
    let dry_run = mode == Mode::DryRun;
    let skeleton = facts::skeleton();
    let previous = state.desired_hashes();
    let host = facts["fqdn"].as_str().unwrap_or_default().to_string();
    let started = crate::report::now_rfc3339();
    let t0 = std::time::Instant::now();
    let mut plans = Vec::new();
    let mut errors = Vec::new();
    for a in recipes {
        if let Err(why) = crate::sources::trust::check(&a.bundle, trusted) {
            errors.push(format!("{}@{} ({}): refused: {why}", a.bundle.name, a.version, a.assignment));
            continue;
        }
        let overrides = Overrides { raw: Vec::new(), typed: a.params.clone(), placeholders: false };
        match a.bundle.compile(facts, &skeleton, &overrides) {
            Ok(p) => {
                for w in &p.warnings {
                    tracing::warn!(recipe = %a.bundle.name, "{w}");
                }
                plans.push(p)
            }
            Err(d) => errors.push(format!("{}@{} ({}): {d}", a.bundle.name, a.version, a.assignment)),
        }
    }
    let runner = crate::resources::SystemRunner;
    let opts = RunOptions { dry_run, diffs: dry_run, previous: previous.clone(), host: host.clone() };
    let reports: Vec<Report> =
        plans.iter().map(|p| engine::run(p, &opts, &engine::Host { facts, runner: &runner })).collect();
    let mut report = Report {
        version: 1,
        host,
        started_at: started,
        dry_run,
        cached,
        recipes: plans.iter().flat_map(|p| p.recipes.clone()).collect(),
        versions: recipes.iter().map(|a| (a.bundle.name.clone(), a.version.clone())).collect(),
        errors,
        warnings,
        summary: Default::default(),
        resources: reports.iter().flat_map(|r| r.resources.clone()).collect(),
    };
    report.summarize((t0.elapsed().as_secs_f64() * 1e6).round() / 1e3);
    for e in &report.errors {
        eprintln!("error: {e}");
    }
    let mut code = report.exit_code();
    if dry_run {
        return (report, code);
    }
    let pairs = plans.iter().zip(&reports).flat_map(|(p, r)| p.resources.iter().zip(&r.resources));
    if let Err(e) = crate::state::save_run(pairs, &report, previous, state) {
        eprintln!("error: the run finished but its state was not saved: {e:#}");
        code |= 4;
    }
    (report, code)
}
