//! `tend command …`: commands sent with `tend run`, and their invocations.

use std::collections::BTreeMap;

use clap::Subcommand;
use tend_model::command::{CommandView, InvocationStatus, InvocationView};

use crate::client::Client;
use crate::output::{self, Output, cell_text, duration_ms, or_dash};

/// Lines of each output stream `command show` prints.
const TAIL_LINES: usize = 5;
/// Characters of output `tend run --wait` shows per node.
const OUTPUT_CELL: usize = 60;

#[derive(Subcommand)]
pub enum CommandCmd {
    /// Commands, newest first.
    List,
    /// A command: its settings, then each node's status, exit code,
    /// duration and the last lines of its output.
    Show { id: String },
    /// One node's full output, exactly as stored (stdout unless --stderr).
    Output {
        id: String,
        node: String,
        /// The standard error instead.
        #[arg(long)]
        stderr: bool,
    },
    /// Cancel a command: nothing more starts, running invocations are killed.
    Cancel { id: String },
}

pub async fn run(c: &Client, out: Output, cmd: CommandCmd) -> anyhow::Result<()> {
    match cmd {
        CommandCmd::List => {
            let v: Vec<CommandView> = c.get("/v1/commands").await?;
            match out {
                Output::Json => output::json(&v),
                Output::Table => list_table(&v),
            }
        }
        CommandCmd::Show { id } => {
            let v: CommandView = c.get(&format!("/v1/commands/{id}")).await?;
            match out {
                Output::Json => output::json(&v),
                Output::Table => show_command(&v),
            }
        }
        CommandCmd::Output { id, node, stderr } => {
            let stream = if stderr { "stderr" } else { "stdout" };
            let bytes = c.get_raw(&format!("/v1/commands/{id}/output/{node}?stream={stream}")).await?;
            if out == Output::Json {
                let text = String::from_utf8_lossy(&bytes);
                return output::json(&serde_json::json!({ "id": id, "node": node, "stream": stream, "output": text }));
            }
            output::emit_bytes(&bytes)
        }
        CommandCmd::Cancel { id } => {
            let v: CommandView = c.post(&format!("/v1/commands/{id}/cancel"), &serde_json::json!({})).await?;
            match out {
                Output::Json => output::json(&v),
                Output::Table => output::emit(&format!("{}: {}\n", v.id, v.status)),
            }
        }
    }
}

/// Whether a command's status is final.
pub fn is_finished(status: &str) -> bool {
    !matches!(status, "Pending" | "InProgress" | "Cancelling")
}

/// `Success 3 · InProgress 2 · Pending 1`: the final statuses first, then
/// those still under way, the latest first; zero counts left out.
pub fn counts_summary(counts: &BTreeMap<String, usize>) -> String {
    let rank = |s: &str| match InvocationStatus::parse(s) {
        Some(x) if x.is_terminal() => x as usize,
        Some(x) => 100 - x as usize,
        None => usize::MAX,
    };
    let mut v: Vec<(&String, &usize)> = counts.iter().filter(|(_, n)| **n > 0).collect();
    v.sort_by_key(|(s, _)| (rank(s), s.as_str()));
    v.iter().map(|(s, n)| format!("{s} {n}")).collect::<Vec<_>>().join(" · ")
}

/// The counts of the invocations' statuses.
pub fn count_invocations(invocations: &[InvocationView]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for i in invocations {
        *m.entry(i.result.status.to_string()).or_insert(0) += 1;
    }
    m
}

fn list_table(v: &[CommandView]) -> anyhow::Result<()> {
    let rows = v
        .iter()
        .map(|c| {
            vec![
                c.id.clone(),
                c.document.clone(),
                c.status.clone(),
                c.created_at.clone(),
                c.created_by.clone(),
                c.targets.join(" "),
                counts_summary(&c.counts),
            ]
        })
        .collect();
    output::table(&["ID", "DOCUMENT", "STATUS", "CREATED", "BY", "TARGETS", "INVOCATIONS"], rows)
}

/// The first cells of an invocation's row: node, hostname, status, exit code, duration.
fn invocation_cells(i: &InvocationView) -> Vec<String> {
    vec![
        i.node.clone(),
        i.hostname.clone(),
        if i.result.reboot { format!("{} (reboot)", i.result.status) } else { i.result.status.to_string() },
        or_dash(i.result.exit_code),
        i.result.duration_ms.map(duration_ms).unwrap_or_else(|| "-".into()),
    ]
}

/// The per-node table `tend run --wait` ends with.
pub fn result_table(v: &CommandView) -> anyhow::Result<()> {
    let rows = v
        .invocations
        .iter()
        .map(|i| {
            let mut r = invocation_cells(i);
            r.push(first_output_line(i));
            r
        })
        .collect();
    output::table(&["NODE", "HOSTNAME", "STATUS", "EXIT", "DURATION", "OUTPUT"], rows)
}

/// The first line of the stdout tail (of stderr when stdout is empty; the
/// reason when both are), fit for a table cell.
fn first_output_line(i: &InvocationView) -> String {
    let first = |s: &str| {
        s.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with("[…output truncated…]")).map(str::to_string)
    };
    let line = first(&i.result.stdout).or_else(|| first(&i.result.stderr)).or_else(|| i.result.reason.clone());
    line.map(|l| cell_text(&l, OUTPUT_CELL)).unwrap_or_default()
}

fn show_command(v: &CommandView) -> anyhow::Result<()> {
    output::emit(&(header(v) + "\n"))?;
    let rows = v.invocations.iter().map(invocation_cells).collect();
    output::table(&["NODE", "HOSTNAME", "STATUS", "EXIT", "DURATION"], rows)?;
    output::emit(&v.invocations.iter().map(tails).collect::<String>())
}

/// `key value` lines: the command's settings and counts.
fn header(v: &CommandView) -> String {
    let params = output::params_line(&v.params);
    let mut lines = vec![
        ("command", v.id.clone()),
        ("document", v.document.clone()),
        ("status", v.status.clone()),
        ("created", format!("{} by {}", v.created_at, v.created_by)),
        ("targets", v.targets.join(" ")),
        ("params", if params.is_empty() { "-".into() } else { params }),
        ("limits", format!("max concurrency {}, max errors {}", v.max_concurrency, v.max_errors)),
    ];
    if let Some(c) = &v.comment {
        lines.push(("comment", c.clone()));
    }
    lines.push(("invocations", counts_summary(&v.counts)));
    lines.iter().map(|(k, val)| format!("{k:<12} {val}\n")).collect()
}

/// A node's reason and the last lines of its outputs, indented (nothing
/// when it has neither).
fn tails(i: &InvocationView) -> String {
    if i.result.reason.is_none() && i.result.stdout.trim().is_empty() && i.result.stderr.trim().is_empty() {
        return String::new();
    }
    let mut s = format!("\n{} ({}): {}\n", i.node, i.hostname, i.result.status);
    if let Some(r) = &i.result.reason {
        s += &format!("  reason: {r}\n");
    }
    for (name, text) in [("stdout", &i.result.stdout), ("stderr", &i.result.stderr)] {
        if text.trim().is_empty() {
            continue;
        }
        s += &format!("  {name}:\n");
        let lines: Vec<&str> = text.trim_end().lines().collect();
        for l in &lines[lines.len().saturating_sub(TAIL_LINES)..] {
            s += &format!("    {l}\n");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_follow_the_statuses_order() {
        let m: BTreeMap<String, usize> =
            [("Success", 3), ("Pending", 1), ("InProgress", 2), ("Failed", 0)].map(|(k, v)| (k.into(), v)).into();
        assert_eq!(counts_summary(&m), "Success 3 · InProgress 2 · Pending 1");
        assert!(is_finished("Success") && is_finished("DeliveryTimedOut") && !is_finished("Cancelling"));
    }
}
