//! The agent's identity: a key pair made on this host (the private key never
//! leaves it), the client certificate the server's CA signed for it, the CA
//! itself and the node id. Kept 0600 in `STATE/identity/`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};
use tend_model::wire::{ApiError, RegisterRequest, RegisterResponse, Tags};

use crate::state::write_atomic;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NodeInfo {
    pub node_id: String,
    pub server: String,
}

pub struct Identity {
    pub dir: PathBuf,
}

impl Identity {
    pub fn at(state_dir: &Path) -> Identity {
        Identity { dir: state_dir.join("identity") }
    }

    pub fn node(&self) -> Option<NodeInfo> {
        serde_json::from_slice(&std::fs::read(self.dir.join("node.json")).ok()?).ok()
    }

    /// An HTTPS client that trusts only the server's CA and presents this
    /// node's certificate.
    pub fn client(&self) -> anyhow::Result<reqwest::Client> {
        let read = |n: &str| {
            std::fs::read(self.dir.join(n)).with_context(|| format!("reading {}", self.dir.join(n).display()))
        };
        let ca = reqwest::Certificate::from_pem(&read("ca.pem")?)?;
        let mut pem = read("cert.pem")?;
        pem.extend_from_slice(&read("key.pem")?);
        let id = reqwest::Identity::from_pem(&pem).context("loading the node's certificate and key")?;
        Ok(reqwest::Client::builder().no_proxy().tls_certs_only([ca]).identity(id).build()?)
    }
}

/// The server refused the registration (wrong code, expired, used up…).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

pub struct RegisterArgs {
    pub server: String,
    pub ca: PathBuf,
    pub activation_id: String,
    pub activation_code: String,
    pub hostname: String,
    pub tags: Tags,
}

/// Registers this host: makes a key pair, sends a CSR with the activation,
/// and keeps the signed certificate. Nothing is written unless the server
/// accepted the registration.
pub async fn register(state_dir: &Path, args: &RegisterArgs) -> anyhow::Result<NodeInfo> {
    let id = Identity::at(state_dir);
    if let Some(n) = id.node() {
        bail!(
            "this host is already registered as {} with {}; `tend-agent reset-identity` (or removing {}) lets it register again",
            n.node_id,
            n.server,
            id.dir.display()
        );
    }
    let ca_pem =
        std::fs::read(&args.ca).with_context(|| format!("reading the CA certificate {}", args.ca.display()))?;
    let key = rcgen::KeyPair::generate().context("making the key pair")?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name.push(rcgen::DnType::CommonName, args.hostname.clone());
    let csr = params.serialize_request(&key)?.pem()?;
    let http = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca_pem).context("parsing the CA certificate")?])
        .timeout(std::time::Duration::from_secs(60))
        .build()?;
    let server = args.server.trim_end_matches('/').to_string();
    let req = RegisterRequest {
        activation_id: args.activation_id.clone(),
        activation_code: args.activation_code.clone(),
        csr_pem: csr,
        hostname: args.hostname.clone(),
        tags: args.tags.clone(),
    };
    let resp = http
        .post(format!("{server}/v1/register"))
        .json(&req)
        .send()
        .await
        .with_context(|| format!("contacting {server}"))?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if status.is_client_error() {
        return Err(Refused(ApiError::message_of(&body)).into());
    }
    if !status.is_success() {
        let msg = ApiError::message_of(&body);
        bail!("{msg}");
    }
    let r: RegisterResponse = serde_json::from_slice(&body).context("reading the server's answer")?;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(&id.dir)?;
    let node = NodeInfo { node_id: r.node_id, server };
    write_atomic(&id.dir.join("key.pem"), key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&id.dir.join("cert.pem"), r.cert_pem.as_bytes(), 0o600)?;
    write_atomic(&id.dir.join("ca.pem"), r.ca_pem.as_bytes(), 0o600)?;
    write_atomic(&id.dir.join("node.json"), &serde_json::to_vec_pretty(&node)?, 0o600)?;
    Ok(node)
}

/// Asks the server who this node is, over mTLS.
pub async fn whoami(state_dir: &Path) -> anyhow::Result<serde_json::Value> {
    let id = Identity::at(state_dir);
    let node = id.node().context("this host is not registered (run `tend-agent register`)")?;
    let resp = id
        .client()?
        .get(format!("{}/v1/agent/whoami", node.server))
        .send()
        .await
        .with_context(|| format!("contacting {}", node.server))?;
    let status = resp.status();
    let body = resp.bytes().await?;
    if !status.is_success() {
        let msg = ApiError::message_of(&body);
        bail!("{msg}");
    }
    Ok(serde_json::from_slice(&body)?)
}
