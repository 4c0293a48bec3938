//! Gathering client writes into log entries.
//!
//! openraft 0.9 writes one entry at a time and waits for its fsync before the next, so one
//! entry per client write would cost one fsync per write. Instead, writes queue here; a
//! single task takes everything queued into one entry (bounded by count and bytes) and hands
//! it to Raft, keeping up to `IN_FLIGHT` entries on their way through replication and apply.
//! While those are busy, new writes pile up and form the next, larger entry: batches grow
//! with load and a lone write is not delayed.

use std::sync::Arc;

use tokio::sync::{Semaphore, mpsc, oneshot};

use super::{Node, now_ms};
use crate::fsm::command::MAX_BATCH;
use crate::fsm::command::RequestId;
use crate::fsm::{Command, CommandResult, Op};
use crate::raft::NotHere;

/// Entries proposed and not yet applied at any time. One at a time makes the largest
/// batches, and per-entry work (two redb commits and an fsync on every server) dominates:
/// measured on two cores, more entries in flight gave smaller batches and fewer writes per
/// second, alone and with followers alike (docs/benchmarks.md).
const IN_FLIGHT: usize = 1;
/// Largest batch, in (approximate) bytes of operation data.
const MAX_BATCH_BYTES: usize = 8 << 20;

type Reply = oneshot::Sender<Result<(u64, CommandResult), NotHere>>;

/// A queued write: the operation, its request id (0: none), where to answer.
type Queued = (Op, RequestId, Reply);

pub(super) struct Proposer {
    tx: mpsc::UnboundedSender<Queued>,
}

fn op_bytes(op: &Op) -> usize {
    use crate::fsm::{CreateOp, MultiOp, SetOp};
    let create = |c: &CreateOp| c.path.len() + c.data.len();
    let set = |s: &SetOp| s.path.len() + s.data.len();
    64 + match op {
        Op::Create(c) => create(c) + acl_bytes(&c.acl),
        Op::Set(s) => set(s),
        Op::Multi(ops) => ops
            .iter()
            .map(|o| match o {
                MultiOp::Create(c) => create(c) + acl_bytes(&c.acl),
                MultiOp::Set(s) => set(s),
                MultiOp::Delete(d) => d.path.len(),
                MultiOp::Check { path, .. } | MultiOp::CheckFence { path, .. } => path.len(),
            })
            .sum(),
        Op::Delete(d) => d.path.len(),
        Op::ExpireSessions { session_ids } => 8 * session_ids.len(),
        Op::Reap { paths } => paths.iter().map(String::len).sum(),
        Op::Lock(l) => l.paths.iter().map(String::len).sum::<usize>() + l.data.len(),
        Op::Proclaim { node, data, .. } => node.len() + data.len(),
        Op::SetAcl { path, acl, .. } => path.len() + acl_bytes(acl),
        // Every client write comes wrapped with its caller: count what it wraps.
        Op::As { caller, op } => caller.ids.iter().map(|(s, id)| s.len() + id.len()).sum::<usize>() + op_bytes(op),
        _ => 0,
    }
}

fn acl_bytes(acl: &[crate::fsm::acl::AclEntry]) -> usize {
    acl.iter().map(|e| 8 + e.scheme.len() + e.id.len()).sum()
}

impl Proposer {
    pub(super) fn new() -> (Proposer, mpsc::UnboundedReceiver<Queued>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Proposer { tx }, rx)
    }

    /// Queues a write; resolves once its entry is applied (or failed).
    pub(super) async fn submit(&self, op: Op, request: RequestId) -> Result<(u64, CommandResult), NotHere> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send((op, request, reply)).is_err() {
            return Err(NotHere::Failed(crate::error::GroveError::internal("the server is shutting down")));
        }
        rx.await
            .unwrap_or_else(|_| Err(NotHere::Failed(crate::error::GroveError::internal("the server is shutting down"))))
    }
}

/// The batching loop; ends when the node stops.
pub(super) async fn run(node: Arc<Node>, mut rx: mpsc::UnboundedReceiver<Queued>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut stop = node.stopped();
    let mut carry: Option<Queued> = None;
    loop {
        let first = match carry.take() {
            Some(p) => p,
            None => tokio::select! {
                p = rx.recv() => match p { Some(p) => p, None => return },
                _ = stop.changed() => return,
            },
        };
        let Ok(permit) = permits.clone().acquire_owned().await else { return };
        // While leadership is handed over, nothing new may reach the followers.
        while node.holding.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Everything that queued up while the previous entries were busy joins this one.
        let mut bytes = op_bytes(&first.0);
        let mut ops = vec![first.0];
        let mut ids = vec![first.1];
        let mut replies = vec![first.2];
        while ops.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((op, id, reply)) => {
                    let b = op_bytes(&op);
                    if bytes + b > MAX_BATCH_BYTES {
                        carry = Some((op, id, reply));
                        break;
                    }
                    bytes += b;
                    ops.push(op);
                    ids.push(id);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("grove_batch_operations").record(ops.len() as f64);
        // Ids cost a lookup per operation at apply time: send them only if one is set.
        let request_ids = if ids.iter().any(|id| *id != 0) { ids } else { Vec::new() };
        let cmd = Command { time_ms: now_ms(), ops, request_ids };
        match node.consensus.submit(cmd).await {
            Ok(applied) => {
                tokio::spawn(async move {
                    let result = applied.await;
                    drop(permit);
                    match result {
                        Ok((zxid, results)) => {
                            for (reply, r) in replies.into_iter().zip(results) {
                                let _ = reply.send(Ok((zxid, r)));
                            }
                        }
                        Err(e) => {
                            for reply in replies {
                                let _ = reply.send(Err(e.clone()));
                            }
                        }
                    }
                });
            }
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::acl::{AclEntry, Caller};
    use crate::fsm::{CreateMode, CreateOp};

    #[test]
    fn a_wrapped_write_counts_what_it_wraps() {
        let big = Op::Create(CreateOp {
            path: "/big".into(),
            data: bytes::Bytes::from(vec![0u8; 1 << 20]),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
            create_parents: false,
            session_id: 0,
            acl: vec![AclEntry::new(1, "x509", &"x".repeat(500))],
        });
        let plain = op_bytes(&big);
        assert!(plain > (1 << 20) + 500, "{plain}");
        let wrapped = Op::As { caller: Caller::default(), op: Box::new(big) };
        assert_eq!(op_bytes(&wrapped), plain + 64, "the batch limit sees the data inside Op::As");
    }
}
