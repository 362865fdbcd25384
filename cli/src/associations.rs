//! `tend association …`: schedules that run a command document or apply a
//! recipe on nodes; and `tend compliance`: what they found on each node.

use std::path::PathBuf;

use clap::Subcommand;
use serde::Serialize;
use serde_json::Value;
use tend_model::association::{AssociationView, ComplianceView, RunView};

use crate::client::Client;
use crate::output::{self, Output, cell_text, or_dash};
use crate::run::{parse_limit, parse_param};

/// Characters of a compliance reason in a table cell.
const REASON_CELL: usize = 60;
/// Characters of the first corrective change in a table cell.
const CHANGE_CELL: usize = 40;

#[derive(Subcommand)]
pub enum AssociationCmd {
    /// Create an association: run a document, or apply a recipe, on the
    /// targets on a schedule (and at once, unless --apply-only-at-cron-interval).
    Create(Box<CreateArgs>),
    /// Associations: what each runs, when, where, and how its last run went.
    List,
    /// An association: its settings, next run and last run, then its latest runs.
    Show { id: String },
    /// Every kept run of an association, newest first.
    History { id: String },
    /// Delete an association: it runs no more (a run under way goes on).
    Delete { id: String },
    /// Run an association now, outside its schedule (never over a run still going).
    RunNow { id: String },
}

#[derive(clap::Args)]
#[command(
    group(clap::ArgGroup::new("what").required(true).args(["document", "recipe"])),
    after_help = "Examples:
  tend association create --recipe base --targets tag:role=web --schedule 'rate(30 minutes)'
  tend association create --document PatchRun --targets tag:env=prod \\
      --schedule 'cron(0 2 ? * SUN *)' --timezone Europe/Paris --max-concurrency 10% --max-errors 1

Schedules: cron(MIN HOUR DAY-OF-MONTH MONTH DAY-OF-WEEK YEAR) as AWS writes it
(`?` in one of the day fields), a plain 5-field cron expression, rate(N minutes|hours|days)
(no less than the server's minimum rate), or at(TIME) for one run. Cron, and an at() time
without an offset, follow --timezone (default UTC). Missed runs (the server was down) make
one catch-up run; an association never overlaps itself."
)]
pub struct CreateArgs {
    /// The command document to run.
    #[arg(long, value_name = "NAME")]
    document: Option<String>,
    /// The recipe to apply (converged through the agents).
    #[arg(long, value_name = "NAME")]
    recipe: Option<String>,
    /// Where: `tag:KEY=VALUE` (tags joined with `,` must all match) or node
    /// ids. Several may follow the flag, and the flag may be repeated.
    #[arg(long, num_args = 1.., required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// When: cron(…) (AWS, 6 fields), a 5-field cron expression, rate(…) or at(…).
    #[arg(long, value_name = "EXPR")]
    schedule: String,
    /// The time zone of a cron or at() schedule, e.g. Europe/Paris (default UTC).
    #[arg(long, value_name = "TZ")]
    timezone: Option<String>,
    /// How many nodes run it at once: a count or a percentage of the targets.
    #[arg(long, value_name = "N|N%", value_parser = parse_limit)]
    max_concurrency: Option<String>,
    /// How many failures are tolerated before no further node is started: a
    /// count or a percentage.
    #[arg(long, value_name = "N|N%", value_parser = parse_limit)]
    max_errors: Option<String>,
    /// Do not run at creation: wait for the schedule's first slot.
    #[arg(long)]
    apply_only_at_cron_interval: bool,
    /// With --recipe: `apply` converges (the default); `audit` only checks,
    /// on schedule, and reports drift as NonCompliant without repairing it.
    #[arg(long, value_parser = ["apply", "audit"])]
    mode: Option<String>,
    /// A parameter value, as text: the server converts it to the parameter's
    /// declared type and checks it. Repeat for several.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    param: Vec<(String, String)>,
    /// Parameter values from a YAML or JSON mapping (typed values).
    #[arg(long = "params", value_name = "FILE")]
    params_file: Option<PathBuf>,
}

#[derive(clap::Args)]
#[command(after_help = "In table output a summary (N compliant, M non-compliant) follows on stderr.
--output json prints an array of {association, node, hostname, status, at, reason, changes}.")]
pub struct ComplianceArgs {
    /// Only this association.
    #[arg(long, value_name = "ID")]
    association: Option<String>,
    /// Only this node.
    #[arg(long, value_name = "ID")]
    node: Option<String>,
    /// Every recorded status (each run on each node), newest first, instead of
    /// the current status.
    #[arg(long)]
    history: bool,
}

/// `POST /v1/associations`.
#[derive(Serialize)]
struct CreateRequest {
    document: Option<String>,
    recipe: Option<String>,
    targets: Vec<String>,
    schedule: String,
    timezone: Option<String>,
    params: serde_json::Map<String, Value>,
    raw_params: Vec<(String, String)>,
    max_concurrency: Option<String>,
    max_errors: Option<String>,
    apply_only_at_cron_interval: bool,
    mode: Option<String>,
}

/// Reads a value of the server's answer as `T`.
fn read<T: serde::de::DeserializeOwned>(raw: Value) -> anyhow::Result<T> {
    serde_json::from_value(raw).map_err(|e| anyhow::anyhow!("reading the server's answer: {e}"))
}

pub async fn run(c: &Client, out: Output, cmd: AssociationCmd) -> anyhow::Result<()> {
    match cmd {
        AssociationCmd::Create(args) => {
            let args = *args;
            let params = args.params_file.as_deref().map(crate::read_params).transpose()?.unwrap_or_default();
            let req = CreateRequest {
                document: args.document,
                recipe: args.recipe,
                targets: args.targets,
                schedule: args.schedule,
                timezone: args.timezone,
                params,
                raw_params: args.param,
                max_concurrency: args.max_concurrency,
                max_errors: args.max_errors,
                apply_only_at_cron_interval: args.apply_only_at_cron_interval,
                mode: args.mode,
            };
            let raw: Value = c.post("/v1/associations", &req).await?;
            match out {
                Output::Json => output::json(&raw),
                Output::Table => output::emit(&format!("{}\n", read::<AssociationView>(raw)?.id)),
            }
        }
        AssociationCmd::List => {
            let raw: Value = c.get("/v1/associations").await?;
            match out {
                Output::Json => output::json(&raw),
                Output::Table => list_table(&read::<Vec<AssociationView>>(raw)?),
            }
        }
        AssociationCmd::Show { id } => {
            let raw: Value = c.get(&format!("/v1/associations/{id}")).await?;
            if out == Output::Json {
                return output::json(&raw);
            }
            let v: AssociationView = read(raw)?;
            output::emit(&(header(&v) + "\n"))?;
            runs_table(&v.runs)
        }
        AssociationCmd::History { id } => {
            let raw: Value = c.get(&format!("/v1/associations/{id}/history")).await?;
            match out {
                Output::Json => output::json(&raw),
                Output::Table => runs_table(&read::<Vec<RunView>>(raw)?),
            }
        }
        AssociationCmd::Delete { id } => {
            c.delete(&format!("/v1/associations/{id}")).await?;
            match out {
                Output::Json => output::json(&serde_json::json!({ "id": id, "deleted": true })),
                Output::Table => output::emit(&format!("deleted {id}\n")),
            }
        }
        AssociationCmd::RunNow { id } => {
            let raw: Value = c.post(&format!("/v1/associations/{id}/run-now"), &serde_json::json!({})).await?;
            if out == Output::Json {
                return output::json(&raw);
            }
            let v: AssociationView = read(raw)?;
            let last = v.last_run.as_ref().map_or_else(|| "no run yet".to_string(), run_line);
            output::emit(&format!("{id}: {last}\n"))
        }
    }
}

pub async fn compliance(c: &Client, out: Output, args: ComplianceArgs) -> anyhow::Result<()> {
    let mut q = Vec::new();
    if let Some(a) = &args.association {
        q.push(format!("association={a}"));
    }
    if let Some(n) = &args.node {
        q.push(format!("node={n}"));
    }
    if args.history {
        q.push("history=true".into());
    }
    let path = if q.is_empty() { "/v1/compliance".to_string() } else { format!("/v1/compliance?{}", q.join("&")) };
    let raw: Value = c.get(&path).await?;
    if out == Output::Json {
        return output::json(&raw);
    }
    let v: Vec<ComplianceView> = read(raw)?;
    let rows = v
        .iter()
        .map(|s| {
            vec![
                s.association.clone(),
                s.node.clone(),
                s.hostname.clone(),
                s.status.clone(),
                s.at.clone(),
                s.reason.as_deref().map_or_else(|| "-".into(), |r| cell_text(r, REASON_CELL)),
                changes_cell(&s.changes),
            ]
        })
        .collect();
    output::table(&["ASSOCIATION", "NODE", "HOSTNAME", "STATUS", "AT", "REASON", "CHANGES"], rows)?;
    eprintln!("{}", summary(&v, args.history));
    Ok(())
}

/// `N compliant, M non-compliant` (and any other status), for the current
/// statuses or the recorded events.
fn summary(v: &[ComplianceView], history: bool) -> String {
    let count = |s: &str| v.iter().filter(|c| c.status == s).count();
    let (yes, no) = (count("Compliant"), count("NonCompliant"));
    let mut s = format!("{yes} compliant, {no} non-compliant");
    let other = v.len() - yes - no;
    if other > 0 {
        s += &format!(", {other} other");
    }
    if history { format!("{} events: {s}", v.len()) } else { s }
}

/// `-`, the one change (shortened), or the first one and how many more.
fn changes_cell(changes: &[String]) -> String {
    match changes {
        [] => "-".into(),
        [one] => cell_text(one, CHANGE_CELL),
        [first, rest @ ..] => format!("{} (+{} more)", cell_text(first, CHANGE_CELL), rest.len()),
    }
}

/// `document X` or `recipe Y`.
fn what(v: &AssociationView) -> String {
    match (&v.document, &v.recipe) {
        (Some(d), _) => format!("document {d}"),
        (None, Some(r)) => format!("recipe {r}"),
        (None, None) => "-".into(),
    }
}

/// The schedule, with its time zone when it has one.
fn schedule(v: &AssociationView) -> String {
    match &v.timezone {
        Some(tz) => format!("{} {tz}", v.schedule),
        None => v.schedule.clone(),
    }
}

/// `Success (schedule run for slot T, command C)`.
fn run_line(r: &RunView) -> String {
    format!("{} ({} run for slot {}, command {})", r.status, r.trigger, r.slot, r.command_id)
}

fn list_table(v: &[AssociationView]) -> anyhow::Result<()> {
    let rows = v
        .iter()
        .map(|a| {
            vec![
                a.id.clone(),
                what(a),
                schedule(a),
                a.targets.join(" "),
                or_dash(a.next_run.as_deref()),
                or_dash(a.last_run.as_ref().map(|r| r.status.as_str())),
            ]
        })
        .collect();
    output::table(&["ID", "WHAT", "SCHEDULE", "TARGETS", "NEXT RUN", "LAST STATUS"], rows)
}

/// `key value` lines: what the association runs, where, when, and its
/// next and last runs.
fn header(v: &AssociationView) -> String {
    let params = output::params_line(&v.params);
    let created = format!("{} by {}", v.created_at, v.created_by);
    let lines = [
        ("association", v.id.clone()),
        ("runs", what(v)),
        ("targets", v.targets.join(" ")),
        ("schedule", schedule(v)),
        ("first run", if v.apply_only_at_cron_interval { "at the first slot" } else { "at creation" }.to_string()),
        ("params", if params.is_empty() { "-".into() } else { params }),
        (
            "limits",
            format!(
                "max concurrency {}, max errors {}",
                or_dash(v.max_concurrency.as_deref()),
                or_dash(v.max_errors.as_deref())
            ),
        ),
        ("created", created),
        ("next run", or_dash(v.next_run.as_deref())),
        ("last run", v.last_run.as_ref().map_or_else(|| "-".into(), run_line)),
    ];
    lines.iter().map(|(k, val)| format!("{k:<12} {val}\n")).collect()
}

/// The runs' table, in the server's order (newest first).
fn runs_table(runs: &[RunView]) -> anyhow::Result<()> {
    let rows = runs
        .iter()
        .map(|r| {
            vec![
                r.slot.clone(),
                r.trigger.clone(),
                r.command_id.clone(),
                r.status.clone(),
                r.started_at.clone(),
                or_dash(r.finished_at.as_deref()),
                r.skipped.to_string(),
            ]
        })
        .collect();
    output::table(&["SLOT", "TRIGGER", "COMMAND", "STATUS", "STARTED", "FINISHED", "SKIPPED"], rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: AssociationCmd,
    }

    fn parse(args: &[&str]) -> Result<AssociationCmd, clap::Error> {
        T::try_parse_from([&["tend"], args].concat()).map(|t| t.cmd)
    }

    #[test]
    fn arguments() {
        let base = ["create", "--targets", "tag:role=web", "n1", "--schedule", "cron(0 2 ? * SUN *)"];
        let Ok(AssociationCmd::Create(a)) =
            parse(&[&base[..], &["--recipe", "base", "--max-errors", "5%", "--param", "a=b=c"]].concat())
        else {
            panic!("create does not parse");
        };
        assert_eq!((a.recipe.as_deref(), a.document), (Some("base"), None));
        assert_eq!(a.targets, ["tag:role=web", "n1"]);
        assert_eq!(a.max_errors.as_deref(), Some("5%"));
        assert_eq!(a.param, [("a".to_string(), "b=c".to_string())]);
        assert!(!a.apply_only_at_cron_interval);
        // Exactly one of --document and --recipe.
        assert!(parse(&base).is_err());
        assert!(parse(&[&base[..], &["--recipe", "r", "--document", "d"]].concat()).is_err());
        assert!(parse(&[&base[..], &["--document", "d", "--max-concurrency", "101%"]].concat()).is_err());
        assert!(parse(&[&base[..], &["--document", "d", "--max-concurrency", "ten"]].concat()).is_err());
        assert!(parse(&["create", "--document", "d", "--targets", "n1"]).is_err());
        assert!(matches!(parse(&["run-now", "a1"]), Ok(AssociationCmd::RunNow { .. })));
        assert!(matches!(parse(&["history", "a1"]), Ok(AssociationCmd::History { .. })));
    }

    #[test]
    fn views_and_cells() {
        let v: AssociationView = read(serde_json::json!({
            "id": "a1", "document": null, "recipe": "base", "targets": ["tag:role=web"],
            "schedule": "cron(0 2 ? * SUN *)", "timezone": "Europe/Paris", "params": {"n": 1},
            "max_concurrency": "10%", "max_errors": null, "apply_only_at_cron_interval": true,
            "created_at": "t0", "created_by": "admin", "next_run": "t9",
            "last_run": {"slot": "t1", "trigger": "catch-up", "command_id": "c1", "status": "Success",
                "started_at": "t2", "finished_at": "t3", "skipped": 2},
            "runs": [],
        }))
        .unwrap();
        assert_eq!(what(&v), "recipe base");
        assert_eq!(schedule(&v), "cron(0 2 ? * SUN *) Europe/Paris");
        let h = header(&v);
        assert!(h.contains("max concurrency 10%, max errors -"), "{h}");
        assert!(h.contains("last run     Success (catch-up run for slot t1, command c1)"), "{h}");
        assert_eq!(changes_cell(&[]), "-");
        assert_eq!(changes_cell(&["file /etc/motd: content".into()]), "file /etc/motd: content");
        assert_eq!(changes_cell(&["a".into(), "b".into(), "c".into()]), "a (+2 more)");
        let c: Vec<ComplianceView> = read(serde_json::json!([
            {"association": "a1", "node": "n1", "status": "Compliant", "at": "t"},
            {"association": "a1", "node": "n2", "status": "NonCompliant", "at": "t", "reason": "drift"},
            {"association": "a1", "node": "n1", "status": "NonCompliant", "at": "t"},
        ]))
        .unwrap();
        assert_eq!(summary(&c, false), "1 compliant, 2 non-compliant");
        assert_eq!(summary(&c[..1], true), "1 events: 1 compliant, 0 non-compliant");
    }
}
