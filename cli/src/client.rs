//! Talking to tend-server: the configuration file, the token and HTTP.

use std::path::{Path, PathBuf};

use anyhow::Context;
use reqwest::StatusCode;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tend_model::diag::Diagnostics;
use tend_model::wire::ApiError;

use crate::Cli;

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
    fn load(path: Option<&Path>) -> anyhow::Result<CliConfig> {
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

/// The server refused a request: its message and the HTTP status.
#[derive(Debug, thiserror::Error)]
#[error("{message} ({status})")]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    pub fn new(cli: &Cli) -> anyhow::Result<Client> {
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

    /// Sends a request: the status and body of a success, else an
    /// [`HttpError`] (or the [`Diagnostics`] of a 422 that carries them).
    async fn fetch(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, Vec<u8>)> {
        let req = match &self.token {
            Some(t) => req.bearer_auth(t.trim()),
            None => req,
        };
        let resp = req.send().await.with_context(|| format!("contacting {}", self.base))?;
        let status = resp.status();
        let body = resp.bytes().await.with_context(|| format!("reading the answer of {}", self.base))?.to_vec();
        if status.is_success() {
            return Ok((status, body));
        }
        if status == StatusCode::UNPROCESSABLE_ENTITY
            && let Ok(d) = serde_json::from_slice::<Diagnostics>(&body)
            && !d.is_empty()
        {
            return Err(d.into());
        }
        Err(HttpError { status, message: ApiError::message_of(&body) }.into())
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> anyhow::Result<(StatusCode, T)> {
        let (status, body) = self.fetch(req).await?;
        if body.is_empty() {
            anyhow::bail!("empty answer ({status})");
        }
        Ok((status, serde_json::from_slice(&body).context("reading the server's answer")?))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        Ok(self.send(self.http.get(self.url(path))).await?.1)
    }

    /// A plain-text (or any non-JSON) answer, as it is.
    pub async fn get_raw(&self, path: &str) -> anyhow::Result<Vec<u8>> {
        Ok(self.fetch(self.http.get(self.url(path))).await?.1)
    }

    pub async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> anyhow::Result<T> {
        Ok(self.post_status(path, body).await?.1)
    }

    /// A POST whose status says something (201 created, 200 already there).
    pub async fn post_status<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> anyhow::Result<(StatusCode, T)> {
        self.send(self.http.post(self.url(path)).json(body)).await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<()> {
        self.fetch(self.http.delete(self.url(path))).await.map(|_| ())
    }
}
