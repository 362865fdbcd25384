//! `tend document …`: command documents on the server.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Subcommand;
use reqwest::StatusCode;
use tend_model::command::DocumentVersion;
use tend_model::diag::Diagnostics;
use tend_model::document::Document;

use crate::client::Client;
use crate::output::{self, Output};

#[derive(Subcommand)]
pub enum DocumentCmd {
    /// Push document files, or every *.yaml/*.yml file in a directory. All
    /// are checked first: when one is invalid, nothing is pushed.
    Push {
        #[arg(required = true, value_name = "FILE|DIR")]
        paths: Vec<PathBuf>,
    },
    /// Every document, built-ins included.
    List,
    /// A document's YAML: NAME (the newest version) or NAME@VERSION.
    Show {
        #[arg(value_name = "NAME[@VERSION]")]
        spec: String,
    },
}

/// `POST /v1/documents`.
#[derive(serde::Serialize)]
struct DocumentPush<'a> {
    file: &'a str,
    text: &'a str,
}

/// `GET /v1/documents/{NAME}[@VERSION]`.
#[derive(serde::Serialize, serde::Deserialize)]
struct DocumentText {
    name: String,
    version: String,
    kind: String,
    created_at: String,
    text: String,
}

pub async fn run(c: &Client, out: Output, cmd: DocumentCmd) -> anyhow::Result<()> {
    match cmd {
        DocumentCmd::Push { paths } => push(c, out, &paths).await,
        DocumentCmd::List => {
            let v: Vec<DocumentVersion> = c.get("/v1/documents").await?;
            output::show(out, &v, &["name", "version", "kind", "created_at", "builtin"])
        }
        DocumentCmd::Show { spec } => {
            let d: DocumentText = c.get(&format!("/v1/documents/{spec}")).await?;
            if out == Output::Json {
                return output::json(&d);
            }
            let nl = if d.text.ends_with('\n') { "" } else { "\n" };
            output::emit(&format!("{}{nl}", d.text))
        }
    }
}

async fn push(c: &Client, out: Output, paths: &[PathBuf]) -> anyhow::Result<()> {
    let mut files = Vec::new();
    for p in paths {
        files.extend(document_files(p)?);
    }
    // Check them all here first, as the server will: every problem at once,
    // and nothing half pushed.
    let mut texts = Vec::new();
    let mut problems = Diagnostics::default();
    for f in &files {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        let name = f.display().to_string();
        let checked = if tend_model::automation::is_automation(&text) {
            tend_model::automation::Automation::parse(&name, &text).map(|_| ())
        } else {
            Document::parse(&name, &text).map(|_| ())
        };
        if let Err(d) = checked {
            problems.extend(d);
        }
        texts.push((name, text));
    }
    problems.into_result()?;
    let mut pushed = Vec::new();
    for (file, text) in &texts {
        match c.post_status::<_, DocumentVersion>("/v1/documents", &DocumentPush { file, text }).await {
            Ok((status, v)) => pushed.push((v, status == StatusCode::CREATED)),
            Err(e) => {
                // Say what did get pushed before the refusal.
                if !pushed.is_empty() {
                    print_pushed(out, pushed)?;
                }
                return Err(e);
            }
        }
    }
    print_pushed(out, pushed)
}

/// The versions pushed, each `(new)` or `(unchanged)`.
fn print_pushed(out: Output, pushed: Vec<(DocumentVersion, bool)>) -> anyhow::Result<()> {
    match out {
        Output::Json => output::json(&pushed.into_iter().map(|(v, _)| v).collect::<Vec<_>>()),
        Output::Table => {
            let state = |new: bool| if new { "(new)" } else { "(unchanged)" }.to_string();
            output::table(
                &["NAME", "VERSION", "PUSHED"],
                pushed.into_iter().map(|(v, new)| vec![v.name, v.version, state(new)]).collect(),
            )
        }
    }
}

/// A file as it is; a directory's *.yaml and *.yml files, sorted.
fn document_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(path)
        .with_context(|| format!("reading {}", path.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    v.sort();
    if v.is_empty() {
        anyhow::bail!("{} holds no *.yaml or *.yml file", path.display());
    }
    Ok(v)
}
