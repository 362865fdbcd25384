//! `tend automation …`: start automation documents (multi-step runbooks),
//! follow their executions, and approve, reject, resume or cancel them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Subcommand;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::client::Client;
use crate::output::{self, Output, cell_text, or_dash};
use crate::run::{parse_param, retryable};

/// How often `start --wait` asks for the execution's state.
const POLL: Duration = Duration::from_millis(200);
/// How long `start --wait` keeps trying while the server cannot be reached.
const UNREACHABLE_FOR: Duration = Duration::from_secs(120);
/// Characters of a step's outputs (compact JSON) in a table cell.
const OUTPUTS_CELL: usize = 60;
/// Characters of a step's error in a table cell.
const ERROR_CELL: usize = 80;

#[derive(Subcommand)]
pub enum AutomationCmd {
    /// Start an automation document; with --wait, follow it to its end.
    Start(StartArgs),
    /// Executions, newest first.
    List,
    /// An execution: its document, status, parameters and what it waits
    /// for, then the timeline of its steps (attempts, times, outputs, errors).
    Show { id: String },
    /// Cancel an execution: no further step starts, a running command is cancelled.
    Cancel { id: String },
    /// Approve the approval step an execution waits on (as this token's name).
    Approve {
        id: String,
        /// A note kept with the approval.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Reject the approval step an execution waits on: the step fails.
    Reject {
        id: String,
        /// A note kept with the rejection.
        #[arg(long)]
        comment: Option<String>,
    },
    /// Resume an execution waiting on a `pause` step.
    Resume { id: String },
}

#[derive(clap::Args)]
#[command(after_help = "Examples:
  tend automation start RollingRestart --param service=nginx --wait
  tend automation start PatchRun@3 --params patch.yaml --wait --output json

Exit status: 0 when the execution was started (with --wait: when it ended in
Success), 2 with --wait when it ended otherwise (Failed, Cancelled, TimedOut),
1 on any other error. --wait keeps waiting while the execution waits for an
approval or a resume; interrupting it leaves the execution running on the server.")]
pub struct StartArgs {
    /// The automation document: NAME (its newest version) or NAME@VERSION.
    #[arg(value_name = "NAME[@VERSION]")]
    document: String,
    /// A parameter value, as text: the server converts it to the parameter's
    /// declared type and checks it. Repeat for several.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    param: Vec<(String, String)>,
    /// Parameter values from a YAML or JSON mapping (typed values).
    #[arg(long = "params", value_name = "FILE")]
    params_file: Option<PathBuf>,
    /// Follow the execution to its end (its step changes on stderr), then
    /// print the step timeline; exit 2 unless it ended in Success.
    #[arg(long)]
    wait: bool,
}

/// `POST /v1/automations`.
#[derive(Serialize)]
struct StartRequest {
    document: String,
    params: serde_json::Map<String, Value>,
    raw_params: Vec<(String, String)>,
}

/// The body of cancel, approve, reject and resume.
#[derive(Serialize)]
struct ActionRequest {
    comment: Option<String>,
}

/// An execution as the server shows it (only what the tables need; JSON
/// output prints the server's answer as it is).
#[derive(Deserialize, Default)]
#[serde(default)]
struct ExecutionView {
    id: String,
    document: String,
    status: String,
    params: serde_json::Map<String, Value>,
    created_at: Option<String>,
    created_by: Option<String>,
    finished_at: Option<String>,
    error: Option<String>,
    current: Option<String>,
    waiting: Option<String>,
    steps: Vec<StepView>,
}

#[derive(Deserialize)]
struct StepView {
    name: String,
    #[serde(default = "first_attempt")]
    attempt: u32,
    #[serde(default)]
    status: String,
    #[serde(default)]
    started_at: Option<String>,
    #[serde(default)]
    ended_at: Option<String>,
    #[serde(default)]
    outputs: Value,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    command_id: Option<String>,
}

fn first_attempt() -> u32 {
    1
}

/// The server's answer, and the view read from it.
struct Answer {
    raw: Value,
    view: ExecutionView,
}

impl Answer {
    fn read(raw: Value) -> anyhow::Result<Answer> {
        let view =
            serde_json::from_value(raw.clone()).map_err(|e| anyhow::anyhow!("reading the server's answer: {e}"))?;
        Ok(Answer { raw, view })
    }
}

async fn get(c: &Client, id: &str) -> anyhow::Result<Answer> {
    Answer::read(c.get(&format!("/v1/automations/{id}")).await?)
}

/// Whether an execution's status is final.
fn is_finished(status: &str) -> bool {
    matches!(status, "Success" | "Failed" | "Cancelled" | "TimedOut")
}

pub async fn run(c: &Client, out: Output, cmd: AutomationCmd) -> anyhow::Result<ExitCode> {
    let (id, action, comment) = match cmd {
        AutomationCmd::Start(args) => return start(c, out, args).await,
        AutomationCmd::List => {
            let raw: Value = c.get("/v1/automations").await?;
            if out == Output::Json {
                output::json(&raw)?;
            } else {
                let v: Vec<ExecutionView> =
                    serde_json::from_value(raw).map_err(|e| anyhow::anyhow!("reading the server's answer: {e}"))?;
                list_table(&v)?;
            }
            return Ok(ExitCode::SUCCESS);
        }
        AutomationCmd::Show { id } => {
            let a = get(c, &id).await?;
            match out {
                Output::Json => output::json(&a.raw)?,
                Output::Table => {
                    output::emit(&(header(&a.view) + "\n"))?;
                    timeline(&a.view)?;
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        AutomationCmd::Cancel { id } => (id, "cancel", None),
        AutomationCmd::Approve { id, comment } => (id, "approve", comment),
        AutomationCmd::Reject { id, comment } => (id, "reject", comment),
        AutomationCmd::Resume { id } => (id, "resume", None),
    };
    let raw: Value = c.post(&format!("/v1/automations/{id}/{action}"), &ActionRequest { comment }).await?;
    let a = Answer::read(raw)?;
    match out {
        Output::Json => output::json(&a.raw)?,
        Output::Table => output::emit(&format!("{}\n", status_line(&a.view)))?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn start(c: &Client, out: Output, args: StartArgs) -> anyhow::Result<ExitCode> {
    let params = args.params_file.as_deref().map(crate::read_params).transpose()?.unwrap_or_default();
    let req = StartRequest { document: args.document, params, raw_params: args.param };
    let started = Answer::read(c.post("/v1/automations", &req).await?)?;
    if !args.wait {
        match out {
            Output::Json => output::json(&started.raw)?,
            Output::Table => output::emit(&format!("{}\n", started.view.id))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if out == Output::Table {
        eprintln!("automation {} started ({})", started.view.id, started.view.document);
    }
    let done = follow(c, out, started).await?;
    match out {
        Output::Json => output::json(&done.raw)?,
        Output::Table => {
            timeline(&done.view)?;
            eprintln!("{}", status_line(&done.view));
        }
    }
    Ok(if done.view.status == "Success" { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// Polls the execution until it is finished, printing its changes on
/// stderr (table output only). Keeps trying while the server is away.
async fn follow(c: &Client, out: Output, mut a: Answer) -> anyhow::Result<Answer> {
    let mut seen = Seen::default();
    let report = |v: &ExecutionView, seen: &mut Seen| {
        if out == Output::Table {
            for line in seen.changes(v) {
                eprintln!("{line}");
            }
        }
    };
    report(&a.view, &mut seen);
    let id = a.view.id.clone();
    let mut unreachable_since: Option<Instant> = None;
    let mut warned = false;
    while !is_finished(&a.view.status) {
        tokio::time::sleep(POLL).await;
        match get(c, &id).await {
            Ok(next) => {
                a = next;
                if unreachable_since.take().is_some() && warned && out == Output::Table {
                    eprintln!("the server answers again");
                }
                warned = false;
                report(&a.view, &mut seen);
            }
            Err(e) if retryable(&e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_FOR {
                    return Err(e.context(format!("following {id} (it goes on on the server)")));
                }
                if !warned && out == Output::Table {
                    eprintln!("{e:#}; retrying");
                    warned = true;
                }
            }
            Err(e) => return Err(e.context(format!("following {id}"))),
        }
    }
    Ok(a)
}

/// What `--wait` has already reported.
#[derive(Default)]
struct Seen {
    steps: BTreeMap<(String, u32), String>,
    status: Option<String>,
    waiting: Option<String>,
}

impl Seen {
    /// The lines for what changed since the last view: steps (in the
    /// order the server lists them), then the status, then what it waits for.
    fn changes(&mut self, v: &ExecutionView) -> Vec<String> {
        let mut lines = Vec::new();
        for s in &v.steps {
            let key = (s.name.clone(), s.attempt);
            if self.steps.get(&key) == Some(&s.status) {
                continue;
            }
            self.steps.insert(key, s.status.clone());
            if s.status == "Pending" {
                continue;
            }
            let mut line = format!("step {}: {}", s.name, s.status);
            if s.attempt > 1 {
                line += &format!(" (attempt {})", s.attempt);
            }
            if let Some(e) = &s.error {
                line += &format!(": {}", cell_text(e, ERROR_CELL));
            }
            lines.push(line);
        }
        if self.status.as_deref() != Some(v.status.as_str()) {
            if self.status.is_some() && !is_finished(&v.status) {
                lines.push(format!("status: {}", v.status));
            }
            self.status = Some(v.status.clone());
        }
        if self.waiting != v.waiting {
            if let Some(w) = &v.waiting {
                lines.push(format!("waiting: {w}"));
            }
            self.waiting = v.waiting.clone();
        }
        lines
    }
}

/// `ID: Status`, with what it waits for or its error.
fn status_line(v: &ExecutionView) -> String {
    let mut s = format!("{}: {}", v.id, v.status);
    if let Some(w) = &v.waiting {
        s += &format!(" (waiting: {w})");
    }
    if let Some(e) = &v.error {
        s += &format!(": {}", cell_text(e, ERROR_CELL * 2));
    }
    s
}

fn list_table(v: &[ExecutionView]) -> anyhow::Result<()> {
    let rows = v
        .iter()
        .map(|e| {
            vec![
                e.id.clone(),
                e.document.clone(),
                e.status.clone(),
                or_dash(e.current.as_deref()),
                or_dash(e.created_at.as_deref()),
                or_dash(e.created_by.as_deref()),
            ]
        })
        .collect();
    output::table(&["ID", "DOCUMENT", "STATUS", "CURRENT", "CREATED", "BY"], rows)
}

/// `key value` lines: the execution's document, status, parameters and
/// what it waits for (or why it failed).
fn header(v: &ExecutionView) -> String {
    let params = output::params_line(&v.params);
    let mut lines = vec![
        ("automation", v.id.clone()),
        ("document", v.document.clone()),
        ("status", v.status.clone()),
        (
            "created",
            match &v.created_by {
                Some(by) => format!("{} by {by}", or_dash(v.created_at.as_deref())),
                None => or_dash(v.created_at.as_deref()),
            },
        ),
    ];
    if let Some(f) = &v.finished_at {
        lines.push(("finished", f.clone()));
    }
    lines.push(("params", if params.is_empty() { "-".into() } else { params }));
    if let Some(c) = v.current.as_ref().filter(|_| !is_finished(&v.status)) {
        lines.push(("current", c.clone()));
    }
    if let Some(w) = &v.waiting {
        lines.push(("waiting", w.clone()));
    }
    if let Some(e) = &v.error {
        lines.push(("error", e.clone()));
    }
    lines.iter().map(|(k, val)| format!("{k:<12} {val}\n")).collect()
}

/// The steps' table: one row per attempt, in the server's order.
fn timeline(v: &ExecutionView) -> anyhow::Result<()> {
    let rows = v
        .steps
        .iter()
        .map(|s| {
            let error = match (&s.error, &s.command_id) {
                (Some(e), Some(cmd)) => format!("{} (command {cmd})", cell_text(e, ERROR_CELL)),
                (Some(e), None) => cell_text(e, ERROR_CELL),
                (None, _) => "-".into(),
            };
            vec![
                s.name.clone(),
                s.attempt.to_string(),
                s.status.clone(),
                or_dash(s.started_at.as_deref()),
                or_dash(s.ended_at.as_deref()),
                outputs_cell(&s.outputs),
                error,
            ]
        })
        .collect();
    output::table(&["STEP", "ATTEMPT", "STATUS", "STARTED", "ENDED", "OUTPUTS", "ERROR"], rows)
}

/// A step's outputs as compact JSON, shortened; `-` when there are none.
fn outputs_cell(outputs: &Value) -> String {
    match outputs {
        Value::Null => "-".into(),
        Value::Object(m) if m.is_empty() => "-".into(),
        other => cell_text(&other.to_string(), OUTPUTS_CELL),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        cmd: AutomationCmd,
    }

    fn parse(args: &[&str]) -> Result<AutomationCmd, clap::Error> {
        T::try_parse_from([&["tend"], args].concat()).map(|t| t.cmd)
    }

    #[test]
    fn arguments() {
        let Ok(AutomationCmd::Start(a)) = parse(&["start", "Patch@2", "--param", "a=b=c", "--param", "n=1", "--wait"])
        else {
            panic!("start does not parse");
        };
        assert_eq!(a.document, "Patch@2");
        assert_eq!(a.param, [("a".to_string(), "b=c".to_string()), ("n".to_string(), "1".to_string())]);
        assert!(a.wait);
        assert!(parse(&["start", "D", "--param", "nokey"]).is_err());
        assert!(parse(&["start"]).is_err());
        let Ok(AutomationCmd::Approve { id, comment }) = parse(&["approve", "e1", "--comment", "ok"]) else {
            panic!("approve does not parse");
        };
        assert_eq!((id.as_str(), comment.as_deref()), ("e1", Some("ok")));
        assert!(matches!(parse(&["reject", "e1"]), Ok(AutomationCmd::Reject { comment: None, .. })));
        assert!(matches!(parse(&["resume", "e1"]), Ok(AutomationCmd::Resume { .. })));
    }

    fn view(status: &str, waiting: Option<&str>, steps: Value) -> ExecutionView {
        serde_json::from_value(serde_json::json!({
            "id": "e1", "document": "D", "status": status, "params": {}, "created_at": "t0", "created_by": "admin",
            "finished_at": null, "error": null, "current": null, "waiting": waiting, "steps": steps,
        }))
        .unwrap()
    }

    #[test]
    fn changes_are_reported_once() {
        let mut seen = Seen::default();
        let steps = serde_json::json!([{"name": "check", "attempt": 1, "status": "InProgress", "started_at": "t1",
            "ended_at": null, "outputs": {}, "error": null, "command_id": "c1"}]);
        let v = view("InProgress", None, steps);
        assert_eq!(seen.changes(&v), ["step check: InProgress"]);
        assert!(seen.changes(&v).is_empty());
        let steps = serde_json::json!([
            {"name": "check", "attempt": 1, "status": "Success", "outputs": {"ok": true}},
            {"name": "gate", "attempt": 1, "status": "Waiting"},
        ]);
        let v = view("Waiting", Some("approval by alice (0 of 1)"), steps);
        assert_eq!(
            seen.changes(&v),
            ["step check: Success", "step gate: Waiting", "status: Waiting", "waiting: approval by alice (0 of 1)"]
        );
        let v = view("Success", None, serde_json::json!([{"name": "gate", "attempt": 2, "status": "Success"}]));
        assert_eq!(seen.changes(&v), ["step gate: Success (attempt 2)"]);
    }

    #[test]
    fn cells() {
        assert_eq!(outputs_cell(&serde_json::json!({})), "-");
        assert_eq!(outputs_cell(&serde_json::json!({"a": 1})), r#"{"a":1}"#);
        assert!(outputs_cell(&serde_json::json!({"a": "x".repeat(100)})).ends_with('…'));
        assert!(is_finished("TimedOut") && !is_finished("Waiting") && !is_finished("InProgress"));
    }
}
