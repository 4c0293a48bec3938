//! Batching quorum rounds: one ReadIndex round answers every caller that arrived before
//! the round started.
//!
//! A read may only use a read index obtained after it arrived (otherwise a write
//! acknowledged before the read could be missed), and a session renewal may only be
//! vouched for by a leadership confirmed after the renewal was recorded, so a caller that
//! arrives while a round is in flight waits for the next one. Under load that turns N
//! quorum round trips into about one per round-trip time.
//!
//! Two kinds: linearizable reads (`Rounds::reads`) find the leader wherever it is, asking
//! it through the peer port if need be, and wait out elections; leadership confirmations
//! (`Rounds::leadership`) succeed only on the leader itself, within a bound, or fail.

use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use super::Node;
use crate::error::GroveError;

type Waiter = oneshot::Sender<Result<u64, GroveError>>;

pub(super) struct ReadIndexBatcher {
    state: Arc<Mutex<State>>,
    /// Confirm this server's own leadership, without forwarding or waiting for a leader.
    leadership: bool,
}

#[derive(Default)]
struct State {
    running: bool,
    waiting: Vec<Waiter>,
}

impl ReadIndexBatcher {
    /// Rounds for linearizable reads.
    pub(super) fn reads() -> Self {
        ReadIndexBatcher { state: Default::default(), leadership: false }
    }

    /// Rounds that confirm this server still leads.
    pub(super) fn leadership() -> Self {
        ReadIndexBatcher { state: Default::default(), leadership: true }
    }

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
            let leadership = self.leadership;
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
                    let result =
                        if leadership { node.confirm_leadership_once().await } else { node.read_index_once().await };
                    for w in batch {
                        let _ = w.send(result.clone());
                    }
                }
            });
        }
        rx.await.unwrap_or_else(|_| Err(GroveError::internal("read index task stopped")))
    }
}
