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
use crate::fsm::command::{Command, CommandResult, MAX_BATCH, Op, Write};
use crate::raft::NotHere;

/// Entries proposed and not yet applied at any time. One at a time makes the largest
/// batches, and per-entry work (two redb commits and an fsync on every server) dominates:
/// measured on two cores, more entries in flight gave smaller batches and fewer writes per
/// second, alone and with followers alike (docs/benchmarks.md).
const IN_FLIGHT: usize = 1;
/// Largest batch, in (approximate) bytes of operation data.
const MAX_BATCH_BYTES: usize = 8 << 20;

type Reply = oneshot::Sender<Result<(u64, CommandResult), NotHere>>;

/// A queued write and where to answer.
type Queued = (Arc<Write>, Reply);

pub(super) struct Proposer {
    tx: mpsc::UnboundedSender<Queued>,
}

/// About how many bytes a write adds to an entry: what the batch limit counts.
fn write_bytes(w: &Write) -> usize {
    w.caller.ids.iter().map(|(s, id)| s.len() + id.len()).sum::<usize>() + op_bytes(&w.op)
}

fn op_bytes(op: &Op) -> usize {
    use crate::fsm::command::{CreateOp, MultiOp, SetOp};
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
    pub(super) async fn submit(&self, write: Arc<Write>) -> Result<(u64, CommandResult), NotHere> {
        let (reply, rx) = oneshot::channel();
        if self.tx.send((write, reply)).is_err() {
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
        let mut bytes = write_bytes(&first.0);
        let mut writes = vec![first.0];
        let mut replies = vec![first.1];
        while writes.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok((write, reply)) => {
                    let b = write_bytes(&write);
                    if bytes + b > MAX_BATCH_BYTES {
                        carry = Some((write, reply));
                        break;
                    }
                    bytes += b;
                    writes.push(write);
                    replies.push(reply);
                }
                Err(_) => break,
            }
        }
        metrics::histogram!("grove_batch_operations").record(writes.len() as f64);
        let cmd = Command::new(now_ms(), writes);
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
    use crate::fsm::command::CreateOp;
    use crate::fsm::znode::CreateMode;

    #[test]
    fn a_write_counts_its_data_and_its_caller() {
        let big = Op::Create(CreateOp {
            path: "/big".into(),
            data: bytes::Bytes::from(vec![0u8; 1 << 20]),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
            create_parents: false,
            acl: vec![AclEntry::new(1, "x509", &"x".repeat(500))],
        });
        let plain = op_bytes(&big);
        assert!(plain > (1 << 20) + 500, "{plain}");
        let caller = Caller { session: 7, ids: vec![("x509".into(), "y".repeat(300))], superuser: false };
        assert_eq!(write_bytes(&Write::new(caller, 0, big)), plain + 4 + 300, "the batch limit sees the caller too");
    }
}
