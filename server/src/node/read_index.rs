//! Batching linearizable reads: one ReadIndex round answers every read that arrived
//! before the round started.
//!
//! A read may only use a read index obtained after it arrived (otherwise a write
//! acknowledged before the read could be missed), so a read that arrives while a round is in
//! flight waits for the next one. Under load that turns N quorum round trips into about one
//! per round-trip time.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::Node;
use crate::error::GroveError;

type Waiter = oneshot::Sender<Result<u64, GroveError>>;

#[derive(Default)]
pub(super) struct ReadIndexBatcher {
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    running: bool,
    waiting: Vec<Waiter>,
}

impl ReadIndexBatcher {
    pub(super) async fn read_index(&self, node: &Arc<Node>) -> Result<u64, GroveError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut st = self.state.lock().unwrap();
            st.waiting.push(tx);
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            let state = self.state.clone();
            let node = node.clone();
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut st = state.lock().unwrap();
                        if st.waiting.is_empty() {
                            st.running = false;
                            return;
                        }
                        std::mem::take(&mut st.waiting)
                    };
                    let result = node.read_index_once().await;
                    for w in batch {
                        let _ = w.send(result.clone());
                    }
                }
            });
        }
        rx.await.unwrap_or_else(|_| Err(GroveError::internal("read index task stopped")))
    }
}
