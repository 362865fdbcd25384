//! The one-line install: `GET /install.sh` (packaging/install.sh with this
//! server's URL and CA filled in) and the agent packages it installs,
//! `GET /packages/MANIFEST` and `GET /packages/FILE`, from `--packages-dir`.
//! No authentication: none of it is secret, and install.sh checks every
//! package against the manifest's sha256 over TLS pinned to this CA.

use std::path::PathBuf;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;

use crate::error::{Error, Result};
use crate::pki::Pki;

/// What install.sh and the packages come from.
#[derive(Clone)]
pub struct Service {
    pub pki: std::sync::Arc<Pki>,
    /// Agent packages and their MANIFEST (`--packages-dir`).
    pub packages_dir: Option<PathBuf>,
}

const SCRIPT: &str = include_str!("../../packaging/install.sh");

pub fn routes() -> Router<Service> {
    use axum::routing::get;
    Router::new().route("/install.sh", get(install_script)).route("/packages/{file}", get(package))
}

/// The URL the client used to reach this server (its `Host` header).
fn own_url(headers: &HeaderMap) -> Result<String> {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    let valid = !host.is_empty() && host.chars().all(|c| c.is_ascii_alphanumeric() || "-.:[]_".contains(c));
    if !valid {
        return Err(Error::bad_request("a Host header naming this server is required"));
    }
    Ok(format!("https://{host}"))
}

async fn install_script(State(s): State<Service>, headers: HeaderMap) -> Result<Response> {
    let url = own_url(&headers)?;
    let ca = base64::engine::general_purpose::STANDARD.encode(s.pki.ca_pem.as_bytes());
    let text = SCRIPT.replacen("@@TEND_SERVER@@", &url, 1).replacen("@@TEND_CA_PEM_BASE64@@", &ca, 1);
    Ok(([(header::CONTENT_TYPE, "text/x-shellscript; charset=utf-8")], text).into_response())
}

/// A file of the packages directory: MANIFEST, or a package it lists.
async fn package(State(s): State<Service>, Path(file): Path<String>) -> Result<Response> {
    let Some(dir) = s.packages_dir.clone() else {
        return Err(Error::not_found("this server serves no packages (tend-server serve --packages-dir)"));
    };
    let manifest = read(dir.join("MANIFEST")).await?;
    let listed = String::from_utf8_lossy(&manifest).lines().any(|l| l.split_whitespace().nth(1) == Some(&file));
    if file != "MANIFEST" && !listed {
        return Err(Error::not_found(format!("no package {file:?} in MANIFEST")));
    }
    let body = if file == "MANIFEST" { manifest } else { read(dir.join(&file)).await? };
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], body).into_response())
}

async fn read(path: PathBuf) -> Result<Vec<u8>> {
    match tokio::fs::read(&path).await {
        Ok(b) => Ok(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::not_found(format!("{} is missing", path.display())))
        }
        Err(e) => Err(Error::internal(format!("{}: {e}", path.display()))),
    }
}
