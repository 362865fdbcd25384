//! `tend-agent apply` and `validate`: load, compile, converge, report.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context;
use tend_model::load::FsSource;
use tend_model::params::Overrides;
use tend_model::{CompileOptions, Diagnostics, Plan};

use crate::engine::{self, RunOptions};
use crate::facts::{self, FactOptions};
use crate::output::{self, Style};
use crate::report::Report;
use crate::state::StateDir;

pub use crate::report::EXIT_INVALID;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Human,
    Json,
}

pub struct ApplyArgs {
    pub recipes: Vec<PathBuf>,
    pub dry_run: bool,
    pub overrides: Overrides,
    pub report: Option<PathBuf>,
    pub output: OutputFormat,
    pub diff: bool,
    pub state: StateDir,
    pub facts: FactOptions,
}

/// Reads `--params FILE` (YAML or JSON mapping).
pub fn read_params_file(path: &std::path::Path) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading params file {}", path.display()))?;
    let v: serde_json::Value = tend_model::yaml::parse(&text, &tend_model::yaml::YamlLimits::CONFIG)
        .map_err(|e| anyhow::anyhow!("{}:{}:{}: {}", path.display(), e.line, e.col, e.message))
        .context("parsing the params file")?;
    match v {
        serde_json::Value::Object(m) => Ok(m),
        serde_json::Value::Null => Ok(Default::default()),
        _ => anyhow::bail!("params file {} must be a mapping of name to value", path.display()),
    }
}

/// Loads and compiles recipes against the given facts.
pub fn compile(
    recipes: &[PathBuf],
    facts: &serde_json::Value,
    placeholder: bool,
    overrides: &Overrides,
) -> Result<Plan, Diagnostics> {
    let set = tend_model::load(&FsSource, recipes);
    let skeleton = facts::skeleton();
    let opts = CompileOptions { facts, fact_skeleton: &skeleton, placeholder_facts: placeholder, overrides };
    tend_model::compile(&set, &FsSource, &opts)
}

/// Prints the plan's warnings (an undeclared key in a data file) to stderr.
pub fn print_warnings(plan: &Plan) {
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
}

/// `explain`: each parameter's value and where it came from, lowest level
/// first when levels were merged. Exit 1 for an unknown name.
pub fn explain(plan: &Plan, name: Option<&str>, out: &mut impl std::io::Write) -> anyhow::Result<i32> {
    if let Some(n) = name {
        if !plan.params.contains_key(n) {
            let hint = tend_model::suggest::did_you_mean(n, plan.params.keys().map(String::as_str));
            eprintln!("error: no parameter `{n}`{}", hint.map(|h| format!(" ({h})")).unwrap_or_default());
            return Ok(EXIT_INVALID);
        }
    }
    for (k, v) in &plan.params {
        if name.is_some_and(|n| n != k) {
            continue;
        }
        let shown = if plan.sensitive_params.contains(k) { "(sensitive)".to_string() } else { v.to_string() };
        writeln!(out, "{k} = {shown}")?;
        for o in plan.param_origins.get(k).into_iter().flatten() {
            writeln!(out, "  from {o}")?;
        }
    }
    Ok(0)
}

/// Runs `apply`; returns the process exit code.
pub fn apply(args: &ApplyArgs) -> anyhow::Result<i32> {
    if crate::state::refused_while_disabled(&args.state) {
        return Ok(EXIT_INVALID);
    }
    let _lock = args.state.lock()?;
    let mut fopts = args.facts.clone();
    fopts.cache_dir.get_or_insert_with(|| args.state.root.clone());
    let t = std::time::Instant::now();
    let facts::Gathered { facts, warnings } = facts::gather_with_warnings(&fopts);
    tracing::debug!(elapsed = ?t.elapsed(), "facts gathered");
    let t = std::time::Instant::now();
    let compiled = compile(&args.recipes, &facts, false, &args.overrides);
    tracing::debug!(elapsed = ?t.elapsed(), "recipes compiled");
    let plan = match compiled {
        Ok(p) => {
            print_warnings(&p);
            p
        }
        Err(d) => {
            eprintln!("{d}");
            return Ok(EXIT_INVALID);
        }
    };
    let previous = args.state.desired_hashes();
    let host = facts["fqdn"].as_str().unwrap_or_default().to_string();
    let opts = RunOptions { dry_run: args.dry_run, diffs: args.diff, previous: previous.clone(), host };
    let mut report =
        engine::run(&plan, &opts, &engine::Host { facts: &facts, runner: &crate::resources::SystemRunner });
    report.warnings = warnings;
    let mut code = report.exit_code();
    // The run happened: record it before anything else can fail, and let a
    // failure to record or print count as a failure, not as invalid input.
    if !args.dry_run {
        if let Err(e) =
            crate::state::save_run(plan.resources.iter().zip(&report.resources), &report, previous, &args.state)
        {
            eprintln!("error: the run finished but its state was not saved: {e:#}");
            code |= 4;
        }
    }
    if let Err(e) = emit(&report, args) {
        eprintln!("error: {e:#}");
        code |= 4;
    }
    Ok(code)
}

fn emit(report: &Report, args: &ApplyArgs) -> anyhow::Result<()> {
    let json = serde_json::to_vec_pretty(report)?;
    if let Some(path) = &args.report {
        crate::state::write_atomic(path, &json, 0o600).with_context(|| format!("writing report {}", path.display()))?;
    }
    let stdout = std::io::stdout();
    let mut lock = stdout.lock();
    match args.output {
        OutputFormat::Json => {
            use std::io::Write;
            lock.write_all(&json)?;
            writeln!(lock)?;
        }
        OutputFormat::Human => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            output::print(report, Style { color, diffs: args.diff }, &mut lock)?;
        }
    }
    Ok(())
}
