//! Publishing snapshots: the collector hands over each new snapshot; the server builds its
//! engines and swaps them in, then the metrics and the past-failure index follow. After the
//! initial scan's snapshot, the metrics and the index are built before the server says it is
//! ready, so that no route answers from an empty state.

use tokio::sync::mpsc;

use deploylens_store::StoreSnapshot;

use crate::metrics;
use crate::state::{AppState, Engines};

/// The collector's end: send each new snapshot.
#[derive(Clone)]
pub struct Publisher(mpsc::UnboundedSender<(StoreSnapshot, bool)>);

impl Publisher {
    /// Publishes a snapshot. `initial` marks the snapshot of the initial scan: once the server
    /// answers from it (engines, metrics, past failures), it is ready.
    pub fn publish(&self, snapshot: StoreSnapshot, initial: bool) {
        // The server may be gone at shutdown; nothing to do then.
        let _ = self.0.send((snapshot, initial));
    }
}

pub(crate) type Receiver = mpsc::UnboundedReceiver<(StoreSnapshot, bool)>;

pub(crate) fn channel() -> (Publisher, Receiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Publisher(tx), rx)
}

/// Builds the engines of each published snapshot; snapshots published meanwhile are folded
/// into the newest.
pub(crate) async fn publish_loop(state: AppState, mut rx: Receiver) {
    while let Some((mut snapshot, mut initial)) = rx.recv().await {
        while let Ok((newer, newer_initial)) = rx.try_recv() {
            snapshot = newer;
            initial |= newer_initial;
        }
        match Engines::of(snapshot, &state.config).await {
            Ok(engines) => state.set_engines(engines).await,
            Err(e) => tracing::error!("cannot open the new snapshot: {e}"),
        }
        if initial && !state.initial_scan_done() {
            rebuild_index(&state).await;
            metrics::render_now(&state).await;
            state.set_ready();
        }
    }
}

/// Rebuilds the past-failure index from the published snapshot.
pub(crate) async fn rebuild_index(state: &AppState) {
    let engines = state.engines().await;
    match deploylens_query::load_index(&engines.engine).await {
        Ok(index) => *state.knowledge.write().await = std::sync::Arc::new(index),
        Err(e) => tracing::error!("cannot rebuild the past-failure index: {e}"),
    }
}

/// Rebuilds the past-failure index after each published snapshot; snapshots published during
/// a rebuild are folded into the next one.
pub(crate) async fn index_loop(state: AppState) {
    loop {
        state.index_stale.notified().await;
        rebuild_index(&state).await;
    }
}
