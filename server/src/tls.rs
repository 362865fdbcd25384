//! HTTPS with rustls on one port for operators and agents. Client
//! certificates are optional at the TLS layer (operators use tokens); when
//! one is presented it must chain to the server's CA, and its fingerprint is
//! handed to the handlers, which look the node up in the store on every
//! request (so a deregistered node is refused at once).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::pki::{Pki, sha256_hex};

/// Runs `f` when dropped.
fn scopeguard<F: FnOnce()>(f: F) -> impl Drop {
    struct Guard<F: FnOnce()>(Option<F>);
    impl<F: FnOnce()> Drop for Guard<F> {
        fn drop(&mut self) {
            if let Some(f) = self.0.take() {
                f();
            }
        }
    }
    Guard(Some(f))
}

/// The SHA-256 of the client certificate the connection presented, if any.
#[derive(Debug, Clone, Default)]
pub struct PeerCert(pub Option<String>);

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("PEM: {0}")]
    Pem(#[from] rustls_pki_types::pem::Error),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
    #[error("client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

pub fn server_config(pki: &Pki) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pki.ca_pem.as_bytes())?)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let certs = CertificateDer::pem_slice_iter(pki.server_cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_slice(pki.server_key_pem.as_bytes())?;
    let mut cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)?;
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// How many connections may be open at once, and where that is counted.
pub struct ConnLimits {
    pub max_connections: usize,
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// Accepts TLS connections and serves `app` until `shutdown` completes.
/// Past `max_connections` open connections, a new one is closed at once
/// (counted in `tend_limit_refusals{limit="max_connections"}`, logged at
/// most once a minute).
pub async fn serve(
    listener: TcpListener,
    tls: Arc<ServerConfig>,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(tls);
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max_connections));
    let mut last_warned: Option<std::time::Instant> = None;
    tokio::pin!(shutdown);
    loop {
        let (tcp, _) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            limits.metrics.refused("max_connections");
            if last_warned.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                tracing::warn!(limit = limits.max_connections, "connection limit reached; closing new connections");
                last_warned = Some(std::time::Instant::now());
            }
            drop(tcp);
            continue;
        };
        // Small request/response exchanges must not wait on delayed ACKs (40 ms).
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let app = app.clone();
        let metrics = limits.metrics.clone();
        tokio::spawn(async move {
            let _slot = slot;
            metrics.connections.inc();
            let _open = scopeguard(move || {
                metrics.connections.dec();
            });
            let stream = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let peer = PeerCert(stream.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| sha256_hex(c)));
            let svc = app.map_request(move |mut req: Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(peer.clone());
                req
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc));
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
}
