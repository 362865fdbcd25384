//! Whether the store takes writes. A request that fails on a storage fault
//! (disk full, I/O error, a lost database connection; see
//! [`StoreError::is_fault`]) marks the store failing: that is logged once,
//! not once per request, and shown in `/metrics` as
//! `tend_store_write_failing 1`. While failing, a probe write of
//! 64 KiB every [`PROBE_EVERY`] tells when the fault has gone; that
//! is logged once too. Recovery needs nothing else: connections left inside
//! a transaction by the fault are closed by the pool (crate::store).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::metrics::Metrics;
use crate::store::{Store, StoreError};

pub const PROBE_EVERY: Duration = Duration::from_secs(2);

static FAULT: AtomicBool = AtomicBool::new(false);
static WAKE: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Called with every store error a request failed on.
pub fn note(e: &StoreError) {
    if e.is_fault() && !FAULT.swap(true, Ordering::SeqCst) {
        WAKE.notify_one();
    }
}

pub async fn run(store: Store, metrics: Arc<Metrics>, replica: String) {
    loop {
        WAKE.notified().await;
        if !FAULT.load(Ordering::SeqCst) {
            continue;
        }
        metrics.store_write_failing.set(1);
        tracing::error!(
            "the store refuses writes (disk full? I/O error? database down?); requests that write answer 500 until it recovers"
        );
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            if store.probe_write(&replica).await.is_ok() {
                break;
            }
        }
        FAULT.store(false, Ordering::SeqCst);
        metrics.store_write_failing.set(0);
        tracing::warn!("the store takes writes again");
    }
}
