//! `tend plan` (change sets: what a recipe version would do on each host)
//! and `tend rollout …` (progressive rollouts with health gates and
//! automatic rollback).

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tend_model::rollout::{ChangeSet, Effect, PlanCreate, RolloutCreate, RolloutView, Strategy};

use crate::client::Client;
use crate::output::{self, Output, cell_text, or_dash};
use crate::run::{parse_param, retryable};

const POLL: Duration = Duration::from_millis(300);

#[derive(Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_help = "Examples:
  tend plan web@3f2a9c0d1e2b4a5f --targets tag:role=web
  tend plan show cs-1a2b3c --diff
  tend plan list

The nodes check the version against their real facts and state (a dry-run
through the command channel) and change nothing. The change set is stored:
`tend rollout start … --from-plan cs-…` refers to it."
)]
pub struct PlanArgs {
    #[command(subcommand)]
    cmd: Option<PlanCmd>,
    /// The recipe version to check: NAME@VERSION (NAME alone: its newest version).
    #[arg(value_name = "RECIPE[@VERSION]", required = true)]
    recipe: Option<String>,
    /// Nodes to ask (tag:key=value or node ids); only those with an assignment of the recipe answer.
    #[arg(long, num_args = 1.., required = true)]
    targets: Vec<String>,
    /// Seconds each node has to answer.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// Print each group's unified diff.
    #[arg(long)]
    diff: bool,
}

#[derive(Subcommand)]
enum PlanCmd {
    /// A change set: per resource, how many hosts would add, modify, remove
    /// or fail, the hosts of each identical change (outliers first), and the
    /// hosts that did not answer.
    Show {
        id: String,
        /// Print each group's unified diff.
        #[arg(long)]
        diff: bool,
    },
    /// Change sets, newest first.
    List,
}

pub async fn plan(c: &Client, out: Output, args: PlanArgs) -> anyhow::Result<ExitCode> {
    match args.cmd {
        Some(PlanCmd::Show { id, diff }) => {
            let cs: ChangeSet = c.get(&format!("/v1/plans/{id}")).await?;
            print_plan(out, &cs, diff)?;
        }
        Some(PlanCmd::List) => {
            let all: Vec<ChangeSet> = c.get("/v1/plans").await?;
            if out == Output::Json {
                output::json(&all)?;
            } else {
                let rows = all
                    .iter()
                    .map(|cs| {
                        vec![
                            cs.id.clone(),
                            format!("{}@{}", cs.recipe, cs.version),
                            cs.status.clone(),
                            format!("{}/{}", cs.answered, cs.hosts),
                            cs.resources.len().to_string(),
                            cs.failed_hosts.len().to_string(),
                            cs.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(&["ID", "RECIPE", "STATUS", "ANSWERED", "CHANGING", "FAILED", "CREATED"], rows)?;
            }
        }
        None => {
            let recipe = args.recipe.context("a recipe to plan")?;
            let req = PlanCreate { recipe, targets: args.targets, timeout: Some(args.timeout) };
            let mut cs: ChangeSet = c.post("/v1/plans", &req).await?;
            let bar = bar(out, cs.hosts)?;
            let end = Instant::now() + Duration::from_secs(args.timeout + 30);
            while cs.status != "Complete" && Instant::now() < end {
                bar.set_position(cs.answered as u64);
                bar.set_message(format!("{} asking", cs.id));
                tokio::time::sleep(POLL).await;
                match c.get(&format!("/v1/plans/{}", cs.id)).await {
                    Ok(next) => cs = next,
                    Err(e) if retryable(&e) => continue,
                    Err(e) => return Err(e),
                }
            }
            bar.finish_and_clear();
            print_plan(out, &cs, args.diff)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn effect_name(e: Effect) -> &'static str {
    match e {
        Effect::Fail => "fail",
        Effect::Add => "add",
        Effect::Modify => "modify",
        Effect::Remove => "remove",
        Effect::Skip => "skip",
        Effect::Unchanged => "unchanged",
    }
}

/// What a group's changes say, in a few words: `content, mode`.
fn change_words(changes: &serde_json::Value) -> String {
    let props: Vec<&str> =
        changes.as_array().map(|a| a.iter().filter_map(|c| c["property"].as_str()).collect()).unwrap_or_default();
    props.join(", ")
}

fn hosts_text(hosts: &[String]) -> String {
    const SHOWN: usize = 8;
    let mut text = hosts.iter().take(SHOWN).cloned().collect::<Vec<_>>().join(", ");
    if hosts.len() > SHOWN {
        text.push_str(&format!(" and {} more", hosts.len() - SHOWN));
    }
    text
}

fn print_plan(out: Output, cs: &ChangeSet, diff: bool) -> anyhow::Result<()> {
    if out == Output::Json {
        return output::json(cs);
    }
    let mut text = format!(
        "change set {}: {}@{} on {} hosts ({}; {} answered, {} failed, {} silent)\n",
        cs.id,
        cs.recipe,
        cs.version,
        cs.hosts,
        cs.status,
        cs.answered,
        cs.failed_hosts.len(),
        cs.silent.len()
    );
    text.push_str(&format!("{} resources unchanged everywhere\n", cs.unchanged));
    output::emit(&text)?;
    let count = |r: &tend_model::rollout::ResourceChange, e: Effect| r.counts.get(&e).copied().unwrap_or(0).to_string();
    let rows = cs
        .resources
        .iter()
        .map(|r| {
            vec![
                r.id.clone(),
                count(r, Effect::Add),
                count(r, Effect::Modify),
                count(r, Effect::Remove),
                count(r, Effect::Fail),
                count(r, Effect::Unchanged),
            ]
        })
        .collect();
    if !cs.resources.is_empty() {
        output::table(&["RESOURCE", "ADD", "MODIFY", "REMOVE", "FAIL", "UNCHANGED"], rows)?;
    }
    let mut text = String::new();
    for r in &cs.resources {
        text.push_str(&format!("\n{} ({})\n", cell_text(&r.id, 120), cell_text(&r.kind, 40)));
        for g in &r.groups {
            let what = match &g.error {
                Some(e) => format!("fails: {}", cell_text(e, 200)),
                None => format!("{} {}", effect_name(g.effect), cell_text(&change_words(&g.changes), 80)),
            };
            let same = if g.hosts.len() > 1 { ", the same change" } else { "" };
            text.push_str(&format!(
                "  {} host{}: {what}{same}: {}\n",
                g.hosts.len(),
                if g.hosts.len() == 1 { "" } else { "s" },
                cell_text(&hosts_text(&g.hosts), 400)
            ));
            if diff {
                for c in g.changes.as_array().map(Vec::as_slice).unwrap_or_default() {
                    if let Some(d) = c["diff"].as_str() {
                        for line in d.lines() {
                            text.push_str(&format!("    {}\n", output::inert(line, 400)));
                        }
                    } else if c["from"].is_string() || c["to"].is_string() {
                        text.push_str(&format!(
                            "    {}: {} -> {}\n",
                            cell_text(c["property"].as_str().unwrap_or("?"), 60),
                            cell_text(c["from"].as_str().unwrap_or("-"), 120),
                            cell_text(c["to"].as_str().unwrap_or("-"), 120)
                        ));
                    }
                }
            }
        }
    }
    if !cs.silent.is_empty() {
        text.push_str("\nno answer:\n");
        for s in &cs.silent {
            text.push_str(&format!(
                "  {} ({}): {}{}\n",
                cell_text(&s.hostname, 80),
                s.node,
                s.status,
                s.reason.as_deref().map(|r| format!(": {}", cell_text(r, 200))).unwrap_or_default()
            ));
        }
    }
    if !cs.not_assigned.is_empty() {
        text.push_str(&format!("\nleft out (no assignment of {}): {}\n", cs.recipe, hosts_text(&cs.not_assigned)));
    }
    output::emit(&text)
}

#[derive(Subcommand)]
pub enum RolloutCmd {
    /// Roll a recipe version out batch by batch: pin, wake, check the
    /// gates, bake; roll back what took it when a gate fails.
    Start(Box<StartArgs>),
    /// Rollouts, newest first.
    List,
    /// A rollout: its batches, each node's state and the gates' results.
    Show {
        id: String,
        /// Follow it to its end with a progress bar; exit 2 unless it Succeeded.
        #[arg(long)]
        wait: bool,
    },
    /// No further batch starts (the one running finishes) until `resume`.
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    /// End the rollout now: no further batch; nodes keep what they have.
    Stop {
        id: String,
    },
    /// Pin every node that took the new version back to the version it had, and wake them.
    Rollback {
        id: String,
    },
}

#[derive(Args)]
#[command(after_help = "Strategies:
  all-at-once          every node in one batch
  one-at-a-time        one node per batch
  batches:N|N%         fixed batches
  canary:P%,bake=D     P% first, bake D, then the rest in batches of --batch
  linear:P%,every=D    P% more every D

Examples:
  tend rollout start web@3f2a9c0d --targets tag:role=web --strategy canary:10%,bake=15m --batch 25% --min-healthy 80%
  tend rollout start web@3f2a9c0d --targets tag:role=web --strategy batches:1 --by-fact ec2.availability_zone --wait

Exit status with --wait: 0 when the rollout Succeeded, 2 when it ended otherwise.")]
pub struct StartArgs {
    /// NAME@VERSION.
    #[arg(value_name = "RECIPE@VERSION")]
    recipe: String,
    #[arg(long, num_args = 1.., required = true)]
    targets: Vec<String>,
    #[arg(long, value_parser = parse_strategy)]
    strategy: String,
    /// The batch size after a canary's first batch (N or N%).
    #[arg(long)]
    batch: Option<String>,
    /// Go one value of this fact at a time (ec2.availability_zone).
    #[arg(long)]
    by_fact: Option<String>,
    /// Nodes (N or N% of the targets) that must stay healthy while a batch converges.
    #[arg(long)]
    min_healthy: Option<String>,
    /// Wait after the last batch before the rollout succeeds (10m).
    #[arg(long)]
    bake: Option<String>,
    /// How long a batch has to converge and report (default 10m).
    #[arg(long)]
    batch_timeout: Option<String>,
    /// A command document run on each batch after it converged; it must succeed.
    #[arg(long)]
    health_document: Option<String>,
    /// A parameter of the health document (KEY=VALUE; repeat for several).
    #[arg(long = "health-param", value_name = "KEY=VALUE", value_parser = parse_param)]
    health_param: Vec<(String, String)>,
    /// A value read from each node's health output: NAME=json:PATH (stdout
    /// read as JSON) or NAME=regex:EXPR (its first group). Repeat for several.
    #[arg(long = "health-output", value_name = "NAME=json:PATH|NAME=regex:EXPR", value_parser = parse_output)]
    health_output: Vec<tend_model::automation::Output>,
    /// A condition each node's outputs must meet, as in automation branches
    /// (YAML or JSON): '{variable: "{{outputs.errors}}", numericLess: 5}'.
    #[arg(long, value_name = "CONDITION", value_parser = parse_condition)]
    health_condition: Option<tend_model::automation::Condition>,
    /// On a failed gate, stop without rolling back.
    #[arg(long)]
    no_rollback: bool,
    /// The change set this rollout was planned with.
    #[arg(long)]
    from_plan: Option<String>,
    /// Follow the rollout to its end; exit 2 unless it Succeeded.
    #[arg(long)]
    wait: bool,
}

fn parse_output(s: &str) -> Result<tend_model::automation::Output, String> {
    let (name, how) = s.split_once('=').ok_or_else(|| format!("{s:?} is not NAME=json:PATH or NAME=regex:EXPR"))?;
    let (json, regex) = match how.split_once(':') {
        Some(("json", p)) => (Some(p.to_string()), None),
        Some(("regex", r)) => (None, Some(r.to_string())),
        _ => return Err(format!("{s:?} is not NAME=json:PATH or NAME=regex:EXPR")),
    };
    let o = tend_model::automation::Output { name: name.trim().to_string(), json, regex };
    match o.problem() {
        Some(why) => Err(why),
        None => Ok(o),
    }
}

fn parse_condition(s: &str) -> Result<tend_model::automation::Condition, String> {
    serde_yaml::from_str(s).map_err(|e| format!("not a condition: {e}"))
}

fn parse_strategy(s: &str) -> Result<String, String> {
    Strategy::parse(s).map(|_| s.trim().to_string())
}

pub async fn rollout(c: &Client, out: Output, cmd: RolloutCmd) -> anyhow::Result<ExitCode> {
    let control = |id: String, action: &'static str| async move {
        let v: RolloutView = c.post(&format!("/v1/rollouts/{id}/{action}"), &serde_json::json!({})).await?;
        anyhow::Ok(v)
    };
    let v = match cmd {
        RolloutCmd::Start(a) => {
            let a = *a;
            let req = RolloutCreate {
                recipe: a.recipe,
                targets: a.targets,
                strategy: a.strategy,
                batch: a.batch,
                by_fact: a.by_fact,
                min_healthy: a.min_healthy,
                bake: a.bake,
                batch_timeout: a.batch_timeout,
                health_document: a.health_document,
                health_params: Default::default(),
                health_raw_params: a.health_param,
                health_outputs: a.health_output,
                health_condition: a.health_condition,
                no_rollback: a.no_rollback,
                from_plan: a.from_plan,
            };
            let v: RolloutView = c.post("/v1/rollouts", &req).await?;
            if a.wait {
                return follow(c, out, v).await;
            }
            v
        }
        RolloutCmd::List => {
            let all: Vec<RolloutView> = c.get("/v1/rollouts").await?;
            if out == Output::Json {
                output::json(&all)?;
            } else {
                let rows = all
                    .iter()
                    .map(|r| {
                        let (done, total) = r.progress();
                        vec![
                            r.id.clone(),
                            format!("{}@{}", r.recipe, r.version),
                            r.strategy.clone(),
                            r.status.clone(),
                            format!("{done}/{total}"),
                            r.created_at.clone(),
                            or_dash(r.reason.as_deref()),
                        ]
                    })
                    .collect();
                output::table(&["ID", "RECIPE", "STRATEGY", "STATUS", "HEALTHY", "CREATED", "REASON"], rows)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCmd::Show { id, wait } => {
            let v: RolloutView = c.get(&format!("/v1/rollouts/{id}")).await?;
            if wait {
                return follow(c, out, v).await;
            }
            v
        }
        RolloutCmd::Pause { id } => control(id, "pause").await?,
        RolloutCmd::Resume { id } => control(id, "resume").await?,
        RolloutCmd::Stop { id } => control(id, "stop").await?,
        RolloutCmd::Rollback { id } => control(id, "rollback").await?,
    };
    print_rollout(out, &v)?;
    Ok(ExitCode::SUCCESS)
}

fn bar(out: Output, len: usize) -> anyhow::Result<ProgressBar> {
    if out != Output::Table || !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
        .context("the progress bar's template")?
        .progress_chars("=> ");
    Ok(ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr()).with_style(style))
}

async fn follow(c: &Client, out: Output, mut v: RolloutView) -> anyhow::Result<ExitCode> {
    let (_, total) = v.progress();
    let bar = bar(out, total)?;
    while !v.finished() {
        let (done, _) = v.progress();
        bar.set_position(done as u64);
        let current = v.batches.iter().find(|b| !["Done", "NotRun"].contains(&b.status.as_str()));
        bar.set_message(match current {
            Some(b) => format!("{} · batch {}/{} {}", v.status, b.index + 1, v.batches.len(), b.status),
            None => v.status.clone(),
        });
        tokio::time::sleep(POLL).await;
        match c.get(&format!("/v1/rollouts/{}", v.id)).await {
            Ok(next) => v = next,
            Err(e) if retryable(&e) => continue,
            Err(e) => return Err(e),
        }
    }
    bar.finish_and_clear();
    print_rollout(out, &v)?;
    Ok(if v.status == "Succeeded" { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

fn print_rollout(out: Output, v: &RolloutView) -> anyhow::Result<()> {
    if out == Output::Json {
        return output::json(v);
    }
    let (done, total) = v.progress();
    let mut text = format!(
        "rollout {}: {}@{} on {} nodes, {} ({done} healthy)\n  strategy {}; started {} by {}\n",
        v.id, v.recipe, v.version, total, v.status, v.strategy, v.created_at, v.created_by
    );
    if let Some(r) = &v.reason {
        text.push_str(&format!("  reason: {}\n", cell_text(r, 400)));
    }
    output::emit(&text)?;
    let mut rows = Vec::new();
    for b in &v.batches {
        let gates: Vec<String> =
            b.gates.iter().map(|g| format!("{} {}", g.gate, if g.passed { "passed" } else { "FAILED" })).collect();
        for n in &b.nodes {
            rows.push(vec![
                format!("{}{}", b.index + 1, b.group.as_deref().map(|g| format!(" ({g})")).unwrap_or_default()),
                b.status.clone(),
                n.hostname.clone(),
                n.state.clone(),
                n.before.clone(),
                gates.join(", "),
                or_dash(n.detail.as_deref()),
            ]);
        }
    }
    output::table(&["BATCH", "BATCH STATUS", "NODE", "STATE", "BEFORE", "GATES", "DETAIL"], rows)
}
