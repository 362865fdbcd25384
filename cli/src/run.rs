//! `tend run`: send a command to nodes, and optionally follow it to its end.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tend_model::command::{CommandCreate, CommandView, InvocationStatus, Limit};

use crate::client::{Client, HttpError};
use crate::commands::{count_invocations, counts_summary, is_finished, result_table};
use crate::output::{self, Output};

/// How often `--wait` asks for the command's state.
const POLL: Duration = Duration::from_millis(100);
/// How long `--wait` keeps trying while the server cannot be reached.
const UNREACHABLE_FOR: Duration = Duration::from_secs(120);

#[derive(clap::Args)]
#[command(after_help = "Examples:
  tend run --targets tag:role=web,env=prod -- 'systemctl is-active nginx'
  tend run --targets node-1 node-2 --document RestartApp --param service=nginx --wait

Exit status: 0 when the command was sent (with --wait: when every invocation
ended in Success), 2 with --wait when any invocation ended otherwise (Failed,
TimedOut, Cancelled, DeliveryTimedOut, Undeliverable), 1 on any other error.
Interrupting --wait leaves the command running on the server.

Everything after `--` is shell text: put --output and the other flags before it.")]
pub struct RunArgs {
    /// Where to run: `tag:KEY=VALUE` (tags joined with `,` must all match:
    /// `tag:role=web,env=prod`) or node ids. Several may follow the flag,
    /// and the flag may be repeated; a node matching any of them runs it.
    #[arg(long, num_args = 1.., required = true, value_name = "TARGET")]
    targets: Vec<String>,
    /// The document to run: NAME (its newest version) or NAME@VERSION.
    #[arg(long, value_name = "NAME[@VERSION]")]
    document: Option<String>,
    /// A parameter value, as text: the server converts it to the parameter's
    /// declared type and checks it. Repeat for several.
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_param)]
    param: Vec<(String, String)>,
    /// Parameter values from a YAML or JSON mapping (typed values).
    #[arg(long = "params", value_name = "FILE")]
    params_file: Option<PathBuf>,
    /// How many nodes run it at once: a count or a percentage of the targets (default 50).
    #[arg(long, value_name = "N|N%", value_parser = parse_limit)]
    max_concurrency: Option<String>,
    /// How many failures (Failed, TimedOut) are tolerated before no further
    /// node is started: a count or a percentage (default 0).
    #[arg(long, value_name = "N|N%", value_parser = parse_limit)]
    max_errors: Option<String>,
    /// Seconds each step may run (overrides the document's timeouts); the
    /// whole process group is killed then.
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// Seconds an offline node has to take the command before it becomes
    /// DeliveryTimedOut (default 600).
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    delivery_timeout: Option<u64>,
    /// A note kept with the command (and in the audit log).
    #[arg(long)]
    comment: Option<String>,
    /// Follow the command to its end (a progress bar on a terminal), then
    /// print each node's result; exit 2 unless every invocation succeeded.
    #[arg(long)]
    wait: bool,
    /// Shell text to run with the built-in RunShellScript document, after
    /// `--`; its words are joined with spaces.
    #[arg(last = true, value_name = "SHELL TEXT")]
    script: Vec<String>,
}

pub fn parse_param(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

pub fn parse_limit(s: &str) -> Result<String, String> {
    Limit::parse(s).map(|_| s.trim().to_string())
}

pub async fn run(c: &Client, out: Output, args: RunArgs) -> anyhow::Result<ExitCode> {
    let wait = args.wait;
    let req = request(args)?;
    let sent: CommandView = c.post("/v1/commands", &req).await?;
    if sent.invocations.is_empty() {
        eprintln!("warning: no node matches the targets {}", sent.targets.join(" "));
    }
    if !wait {
        match out {
            Output::Json => output::json(&sent)?,
            Output::Table => output::emit(&format!("{}\n", sent.id))?,
        }
        return Ok(ExitCode::SUCCESS);
    }
    if out == Output::Table {
        eprintln!("command {} sent to {} node(s)", sent.id, sent.invocations.len());
    }
    let done = follow(c, out, sent).await?;
    match out {
        Output::Json => output::json(&done)?,
        Output::Table => result_table(&done)?,
    }
    let all_good = done.invocations.iter().all(|i| i.result.status == InvocationStatus::Success);
    Ok(if all_good { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

/// The request: a document and its parameters, or inline shell text.
fn request(a: RunArgs) -> anyhow::Result<CommandCreate> {
    let params = a.params_file.as_deref().map(crate::read_params).transpose()?.unwrap_or_default();
    let mut raw_params = a.param;
    let document = match (a.document, a.script.is_empty()) {
        (Some(_), false) => bail!("give either --document or shell text after `--`, not both"),
        (None, true) => bail!("nothing to run: give --document NAME, or shell text after `--` (-- 'uptime')"),
        (Some(d), true) => d,
        (None, false) => {
            let text = a.script.join(" ");
            if text.trim().is_empty() {
                bail!("the shell text after `--` is empty");
            }
            if params.contains_key("commands") || raw_params.iter().any(|(k, _)| k == "commands") {
                bail!("the shell text after `--` is the `commands` parameter: do not give it as well");
            }
            raw_params.push(("commands".into(), text));
            "RunShellScript".into()
        }
    };
    Ok(CommandCreate {
        document,
        params,
        raw_params,
        targets: a.targets,
        max_concurrency: a.max_concurrency,
        max_errors: a.max_errors,
        timeout: a.timeout,
        delivery_timeout: a.delivery_timeout,
        comment: a.comment,
    })
}

/// Polls the command until it is finished, with a progress bar on a
/// terminal (table output only). Keeps trying while the server is away.
async fn follow(c: &Client, out: Output, mut v: CommandView) -> anyhow::Result<CommandView> {
    let bar = progress_bar(out, v.invocations.len())?;
    draw(&bar, &v);
    let path = format!("/v1/commands/{}", v.id);
    let mut unreachable_since: Option<Instant> = None;
    while !is_finished(&v.status) {
        tokio::time::sleep(POLL).await;
        match c.get::<CommandView>(&path).await {
            Ok(next) => {
                v = next;
                unreachable_since = None;
                draw(&bar, &v);
            }
            Err(e) if retryable(&e) => {
                let since = *unreachable_since.get_or_insert_with(Instant::now);
                if since.elapsed() > UNREACHABLE_FOR {
                    bar.abandon();
                    return Err(e.context(format!("following {} (it goes on on the server)", v.id)));
                }
                bar.set_message(format!("{e:#}; retrying"));
            }
            Err(e) => {
                bar.abandon();
                return Err(e.context(format!("following {}", v.id)));
            }
        }
    }
    bar.finish_and_clear();
    Ok(v)
}

/// A refusal (4xx) is final; anything else (the server restarting, a
/// network problem) may pass.
pub fn retryable(e: &anyhow::Error) -> bool {
    !e.downcast_ref::<HttpError>().is_some_and(|h| h.status.is_client_error())
}

fn progress_bar(out: Output, len: usize) -> anyhow::Result<ProgressBar> {
    if out != Output::Table || !std::io::stderr().is_terminal() {
        return Ok(ProgressBar::hidden());
    }
    let style = ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {wide_msg}")
        .context("the progress bar's template")?
        .progress_chars("=> ");
    Ok(ProgressBar::with_draw_target(Some(len as u64), ProgressDrawTarget::stderr()).with_style(style))
}

/// Length: the invocations; position: those finished; message: the counts.
fn draw(bar: &ProgressBar, v: &CommandView) {
    let done = v.invocations.iter().filter(|i| i.result.status.is_terminal()).count();
    bar.set_message(counts_summary(&count_invocations(&v.invocations)));
    bar.set_length(v.invocations.len() as u64);
    bar.set_position(done as u64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        run: RunArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<CommandCreate> {
        request(T::try_parse_from([&["tend"], args].concat())?.run)
    }

    #[test]
    fn inline_text_targets_and_params() {
        let r = parse(&["--targets", "tag:role=web,env=prod", "n1", "--targets", "n2", "--", "echo", "a;b"]).unwrap();
        assert_eq!(r.document, "RunShellScript");
        assert_eq!(r.targets, ["tag:role=web,env=prod", "n1", "n2"]);
        assert_eq!(r.raw_params, [("commands".to_string(), "echo a;b".to_string())]);
        let r = parse(&["--targets", "n1", "--document", "D@v1", "--param", "a=b=c", "--max-errors", "5%"]).unwrap();
        assert_eq!((r.document.as_str(), r.max_errors.as_deref()), ("D@v1", Some("5%")));
        assert_eq!(r.raw_params, [("a".to_string(), "b=c".to_string())]);
    }

    #[test]
    fn refusals() {
        assert!(parse(&["--targets", "n1"]).is_err());
        assert!(parse(&["--targets", "n1", "--document", "D", "--", "ls"]).is_err());
        assert!(parse(&["--targets", "n1", "--param", "commands=x", "--", "ls"]).is_err());
        assert!(parse(&["--targets", "n1", "--max-concurrency", "101%", "--", "ls"]).is_err());
        assert!(parse(&["--targets", "n1", "--param", "nokey", "--", "ls"]).is_err());
    }
}
