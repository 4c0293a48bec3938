//! Forwarded writes, batched per leader. A follower or observer used to send each client
//! write to the leader in a call of its own; under load that is most of a forwarded write's
//! cost (a gRPC call each way, an HTTP/2 stream, a task). Here the writes that arrive while
//! a batch is on its way wait for the next one, as the proposer batches entries: one
//! `ForwardBatch` call carries them all, the leader submits them together (so they usually
//! share an entry), and answers each. At most `IN_FLIGHT` batches are on their way to one
//! leader, so a batch never waits for more than the one ahead of it.
//!
//! Each write keeps its own outcome and request id: a call that fails in an unknown state
//! fails every write it carried the same way a single forward would (`transport_error`),
//! and the caller retries each with its request id, which the leader applies once.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use grove_proto::peer::{ForwardBatchRequest, ForwardRequest};
use tokio::sync::oneshot;

use super::Node;
use crate::error::GroveError;
use crate::fsm::command::{CommandResult, Write};
use crate::raft::decode_forward_reply;

/// Batches on their way to one leader at a time.
const IN_FLIGHT: usize = 2;
/// Most writes, and bytes of them, in one batch (a single larger write goes alone).
const MAX_WRITES: usize = 512;
const MAX_BYTES: usize = 4 << 20;

type Reply = oneshot::Sender<Result<(u64, CommandResult), GroveError>>;

#[derive(Default)]
pub(crate) struct ForwardQueue {
    lanes: Mutex<HashMap<String, Lane>>,
}

#[derive(Default)]
struct Lane {
    waiting: Vec<(Vec<u8>, Reply)>,
    senders: usize,
    /// The leader answers `ForwardBatch` (false: a server of an older version; one write
    /// per `Forward` call then).
    batches: Option<bool>,
}

impl Node {
    /// Sends a write to the leader at `addr` in the next batch, and waits for its answer.
    pub(crate) async fn forward_batched(
        self: &Arc<Self>,
        addr: String,
        write: &Write,
    ) -> Result<(u64, CommandResult), GroveError> {
        let command = postcard::to_allocvec(write).map_err(GroveError::internal)?;
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut lanes = self.forwards.lanes.lock().unwrap();
            let lane = lanes.entry(addr.clone()).or_default();
            lane.waiting.push((command, tx));
            let start = lane.senders < IN_FLIGHT;
            lane.senders += usize::from(start);
            start
        };
        if start {
            tokio::spawn(self.clone().send_batches(addr));
        }
        rx.await.map_err(|_| GroveError::internal("the forwarding task ended without an answer"))?
    }

    /// Sends what waits for `addr` until nothing does.
    async fn send_batches(self: Arc<Self>, addr: String) {
        loop {
            let (batch, batches) = {
                let mut lanes = self.forwards.lanes.lock().unwrap();
                let lane = lanes.get_mut(&addr).expect("a lane with a sender");
                if lane.waiting.is_empty() {
                    lane.senders -= 1;
                    if lane.senders == 0 {
                        lanes.remove(&addr);
                    }
                    return;
                }
                let (mut n, mut bytes) = (0, 0);
                while n < lane.waiting.len()
                    && n < MAX_WRITES
                    && (n == 0 || bytes + lane.waiting[n].0.len() <= MAX_BYTES)
                {
                    bytes += lane.waiting[n].0.len();
                    n += 1;
                }
                (lane.waiting.drain(..n).collect::<Vec<_>>(), lane.batches)
            };
            let (commands, replies): (Vec<Vec<u8>>, Vec<Reply>) = batch.into_iter().unzip();
            let results = match batches {
                Some(false) => self.send_one_by_one(&addr, commands).await,
                _ => self.send_batch(&addr, commands).await,
            };
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
    }

    async fn send_batch(&self, addr: &str, commands: Vec<Vec<u8>>) -> Vec<Result<(u64, CommandResult), GroveError>> {
        let n = commands.len();
        let mut client = match self.channels.client(addr) {
            Ok(c) => c,
            Err(e) => return (0..n).map(|_| Err(GroveError::internal(&e))).collect(),
        };
        metrics::counter!("grove_forward_batches_total").increment(1);
        metrics::counter!("grove_forwarded_writes_total").increment(n as u64);
        let request = ForwardBatchRequest { commands: commands.iter().map(|c| c.clone().into()).collect() };
        match client.forward_batch(request).await {
            Ok(r) => {
                self.set_batches(addr, true);
                let mut replies = r.into_inner().replies;
                replies.resize_with(n, Default::default);
                replies.into_iter().map(decode_forward_reply).collect()
            }
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                self.set_batches(addr, false);
                self.send_one_by_one(addr, commands).await
            }
            Err(s) => {
                let e = super::forward::transport_error(self, s, "forwarding the write");
                (0..n).map(|_| Err(e.clone())).collect()
            }
        }
    }

    /// For a leader that predates `ForwardBatch`: one call per write, all at once.
    async fn send_one_by_one(
        &self,
        addr: &str,
        commands: Vec<Vec<u8>>,
    ) -> Vec<Result<(u64, CommandResult), GroveError>> {
        let calls = commands.into_iter().map(|command| async move {
            let mut client = self.channels.client(addr).map_err(GroveError::internal)?;
            let reply = client
                .forward(ForwardRequest { command: command.into() })
                .await
                .map_err(|s| super::forward::transport_error(self, s, "forwarding the write"))?;
            decode_forward_reply(reply.into_inner())
        });
        futures::future::join_all(calls).await
    }

    fn set_batches(&self, addr: &str, yes: bool) {
        if let Some(lane) = self.forwards.lanes.lock().unwrap().get_mut(addr) {
            lane.batches = Some(yes);
        }
    }
}
