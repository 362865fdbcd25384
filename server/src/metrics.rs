//! Prometheus metrics at `/metrics`: requests by route and status, request
//! latency by route, and nodes by the status of their last run.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::Store;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LimitLabels {
    limit: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabels {
    last_run: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    nodes: Family<NodeLabels, Gauge>,
    refused: Family<LimitLabels, Counter>,
    /// Open client connections.
    pub connections: Gauge,
    /// 1 while the last write to the store failed (disk full, I/O error,
    /// connection lost); back to 0 at the next write that succeeds.
    pub store_write_failing: Gauge,
    /// When the node gauge was last counted: `/metrics` is anonymous, so a
    /// scrape lists the nodes at most every [`NODES_EVERY`].
    nodes_counted: std::sync::Mutex<Option<Instant>>,
}

/// How stale the `tend_nodes` gauge may be.
pub const NODES_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl Metrics {
    /// Counts a request or connection refused by a limit (docs/limits.md).
    pub fn refused(&self, limit: &str) {
        self.refused.get_or_create(&LimitLabels { limit: limit.to_string() }).inc();
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tend");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 16))
        });
        let nodes = Family::<NodeLabels, Gauge>::default();
        registry.register("http_requests", "HTTP requests by route and status", requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", latency.clone());
        registry.register("nodes", "Registered nodes by the status of their last run", nodes.clone());
        let refused = Family::<LimitLabels, Counter>::default();
        registry.register("limit_refusals", "Requests and connections refused by a limit", refused.clone());
        let connections = Gauge::default();
        registry.register("connections", "Open client connections", connections.clone());
        let store_write_failing = Gauge::default();
        registry.register(
            "store_write_failing",
            "1 while writes to the store fail (disk full, I/O error, lost connection)",
            store_write_failing.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            nodes,
            refused,
            connections,
            store_write_failing,
            nodes_counted: Default::default(),
        }
    }
}

/// Counts and times every request.
pub async fn track(State(m): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let start = Instant::now();
    let resp = next.run(req).await;
    m.latency.get_or_create(&RouteLabels { route: route.clone() }).observe(start.elapsed().as_secs_f64());
    m.requests.get_or_create(&RequestLabels { route, status: resp.status().as_u16() }).inc();
    resp
}

/// `/metrics`: the registry, with the node gauge recounted when stale.
pub async fn render(State((store, m)): State<(Store, Arc<Metrics>)>) -> Response {
    let stale = m.nodes_counted.lock().map(|t| t.is_none_or(|t| t.elapsed() >= NODES_EVERY)).unwrap_or(true);
    if stale {
        let Ok(nodes) = store.list_nodes().await else {
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
        };
        m.nodes.clear();
        for n in &nodes {
            let status = n.last_run.as_ref().map(|r| r.status.clone()).unwrap_or_else(|| "never".into());
            m.nodes.get_or_create(&NodeLabels { last_run: status }).inc();
        }
        if let Ok(mut t) = m.nodes_counted.lock() {
            *t = Some(Instant::now());
        }
    }
    let mut out = String::new();
    if prometheus_client::encoding::text::encode(&mut out, &m.registry).is_err() {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response();
    }
    ([(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], out)
        .into_response()
}
