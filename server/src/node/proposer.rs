//! Gathering client writes into log entries, and seeing each one answered.
//!
//! openraft 0.9 writes one entry at a time and waits for its fsync before the next, so one
//! entry per client write would cost one fsync per write. Instead, writes queue here; a
//! single task takes everything queued into one entry (bounded by count and bytes) and hands
//! it to Raft, keeping up to `IN_FLIGHT` entries on their way through replication and apply.
//! While those are busy, new writes pile up and form the next, larger entry: batches grow
//! with load and a lone write is not delayed.
//!
//! The pipeline never waits on what may not come. Entries are proposed only while this
//! server leads (otherwise the queue is answered at once, and the writes go to the leader).
//! An entry in flight is answered, and its place in the pipeline freed, when it is applied,
//! when this server stops leading that term, or when the request timeout passes, whichever
//! comes first: openraft never answers an entry of a former leader that a snapshot from the
//! new one covered, and such an entry must not hold every later write. Those writes learn
//! that their outcome is unknown (`Refused::Unknown`): one with a request id is sent again,
//! to whoever leads, and applied at most once.
//!
//! The queue is bounded (writes and bytes): past it, a write is refused with
//! RESOURCE_EXHAUSTED rather than queued without end; and a write whose caller gave up
//! before its entry was formed is dropped, never proposed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore, oneshot};

use super::Node;
use crate::error::{GroveError, Limit};
use crate::fsm::command::{Command, CommandResult, MAX_BATCH, Op, Write};
use crate::raft::{NodeId, NotHere, PeerNode, Role};

/// Entries proposed and not yet applied at any time. One at a time makes the largest
/// batches, and per-entry work (two redb commits and an fsync on every server) dominates:
/// measured on two cores, more entries in flight gave smaller batches and fewer writes per
/// second, alone and with followers alike (docs/benchmarks.md).
const IN_FLIGHT: usize = 1;
/// Largest batch, in (approximate) bytes of operation data.
const MAX_BATCH_BYTES: usize = 8 << 20;
/// Most writes waiting to be proposed.
const MAX_QUEUED_WRITES: usize = 20_000;
/// Most bytes of writes waiting to be proposed.
const MAX_QUEUED_BYTES: usize = 64 << 20;

/// Why a write was not applied here.
#[derive(Debug)]
pub(super) enum Refused {
    /// Never proposed: this server does not lead (the leader, if known).
    NotLeader(Option<(NodeId, PeerNode)>),
    /// Proposed, and not answered: leadership moved or the request timeout passed. It may
    /// still be applied.
    Unknown(GroveError),
    /// Refused or failed for good.
    Failed(GroveError),
}

type Reply = oneshot::Sender<Result<(u64, CommandResult), Refused>>;

struct Queued {
    write: Arc<Write>,
    bytes: usize,
    reply: Reply,
    at: std::time::Instant,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<Queued>,
    bytes: usize,
}

pub(super) struct Proposer {
    queue: Mutex<Queue>,
    ready: Notify,
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
    pub(super) fn new() -> Arc<Proposer> {
        Arc::new(Proposer { queue: Mutex::new(Queue::default()), ready: Notify::new() })
    }

    /// Queues a write; resolves once its entry is applied, or it is refused.
    pub(super) async fn submit(&self, write: Arc<Write>) -> Result<(u64, CommandResult), Refused> {
        let bytes = write_bytes(&write);
        let (reply, rx) = oneshot::channel();
        {
            let mut q = self.queue.lock().unwrap();
            if q.items.len() >= MAX_QUEUED_WRITES || q.bytes + bytes > MAX_QUEUED_BYTES {
                return Err(Refused::Failed(GroveError::too_many(
                    Limit::Requests,
                    format!(
                        "this server's write queue is full ({} writes, {} bytes waiting for the log)",
                        q.items.len(),
                        q.bytes
                    ),
                    100,
                )));
            }
            q.bytes += bytes;
            q.items.push_back(Queued { write, bytes, reply, at: std::time::Instant::now() });
        }
        self.ready.notify_one();
        rx.await.unwrap_or_else(|_| Err(Refused::Failed(GroveError::internal("the server is shutting down"))))
    }

    /// Takes the next batch: everything queued, within the entry's bounds; writes whose
    /// callers went away are dropped.
    fn take_batch(&self) -> (Vec<Arc<Write>>, Vec<Reply>) {
        let mut q = self.queue.lock().unwrap();
        let (mut writes, mut replies, mut bytes) = (Vec::new(), Vec::new(), 0);
        while writes.len() < MAX_BATCH {
            let Some(next) = q.items.front() else { break };
            if !writes.is_empty() && bytes + next.bytes > MAX_BATCH_BYTES {
                break;
            }
            let item = q.items.pop_front().expect("just looked");
            q.bytes -= item.bytes;
            if item.reply.is_closed() {
                continue;
            }
            bytes += item.bytes;
            metrics::histogram!("grove_write_stage_seconds", "stage" => "queued")
                .record(item.at.elapsed().as_secs_f64());
            writes.push(item.write);
            replies.push(item.reply);
        }
        (writes, replies)
    }

    /// Answers everything queued with `NotLeader`: the writes go to the leader.
    fn refuse_all(&self, leader: Option<(NodeId, PeerNode)>) {
        let items: Vec<Queued> = {
            let mut q = self.queue.lock().unwrap();
            q.bytes = 0;
            q.items.drain(..).collect()
        };
        for item in items {
            let _ = item.reply.send(Err(Refused::NotLeader(leader.clone())));
        }
    }

    /// Answers everything queued with `e` (Raft stopped on a storage failure).
    fn fail_all(&self, e: &GroveError) {
        let items: Vec<Queued> = {
            let mut q = self.queue.lock().unwrap();
            q.bytes = 0;
            q.items.drain(..).collect()
        };
        for item in items {
            let _ = item.reply.send(Err(Refused::Failed(e.clone())));
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.lock().unwrap().items.is_empty()
    }
}

/// The batching loop; ends when the node stops.
pub(super) async fn run(node: Arc<Node>, proposer: Arc<Proposer>) {
    let permits = Arc::new(Semaphore::new(IN_FLIGHT));
    let mut stop = node.stopped();
    let status = node.consensus.watch();
    loop {
        if proposer.is_empty() {
            tokio::select! {
                _ = proposer.ready.notified() => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        if let Some(e) = node.consensus.failure() {
            proposer.fail_all(&e);
            continue;
        }
        let st = status.status();
        if st.role != Role::Leader {
            // Writes go where the leader is; without one, the callers retry shortly.
            proposer.refuse_all(st.leader_node().filter(|(id, _)| *id != node.id));
            continue;
        }
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => return },
            _ = stop.changed() => return,
        };
        // While leadership is handed over, nothing new may reach the followers.
        while node.holding.load(std::sync::atomic::Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let (writes, replies) = proposer.take_batch();
        if writes.is_empty() {
            continue;
        }
        metrics::histogram!("grove_batch_operations").record(writes.len() as f64);
        let cmd = Command::new(node.clock.stamp(), writes);
        let submitted = std::time::Instant::now();
        let applied = match node.consensus.submit(cmd).await {
            Ok(applied) => applied,
            Err(e) => {
                for reply in replies {
                    let _ = reply.send(Err(refused(e.clone())));
                }
                continue;
            }
        };
        let term = st.term;
        let mut leadership = node.consensus.watch();
        let timeout = node.config.request_timeout;
        tokio::spawn(async move {
            let lost = async {
                loop {
                    let st = leadership.leadership();
                    if st.role != Role::Leader || st.term != term {
                        return;
                    }
                    if !leadership.changed().await {
                        return;
                    }
                }
            };
            let outcome = tokio::select! {
                r = applied => r.map_err(refused),
                _ = lost => Err(Refused::Unknown(GroveError::NoQuorum {
                    message: "this server stopped leading before the write was committed; it may still be applied"
                        .into(),
                    leader: None,
                })),
                _ = tokio::time::sleep(timeout) => Err(Refused::Unknown(GroveError::NoQuorum {
                    message: format!(
                        "the write was not committed within {} ms; it may still be applied",
                        timeout.as_millis()
                    ),
                    leader: None,
                })),
            };
            drop(permit);
            match outcome {
                Ok((zxid, results)) => {
                    // Submitted to applied on this leader: append, replication, the
                    // quorum's fsyncs, commit and apply.
                    metrics::histogram!("grove_write_stage_seconds", "stage" => "raft")
                        .record(submitted.elapsed().as_secs_f64());
                    for (reply, r) in replies.into_iter().zip(results) {
                        let _ = reply.send(Ok((zxid, r)));
                    }
                }
                Err(e) => {
                    for reply in replies {
                        let _ = reply.send(Err(e.duplicate()));
                    }
                }
            }
        });
    }
}

/// What a refusal from Raft means for the writes of an entry.
fn refused(e: NotHere) -> Refused {
    match e {
        NotHere::NotLeader(leader) => Refused::NotLeader(leader),
        NotHere::Failed(e) => Refused::Failed(e),
    }
}

impl Refused {
    /// The same refusal, for another write of the entry.
    fn duplicate(&self) -> Refused {
        match self {
            Refused::NotLeader(l) => Refused::NotLeader(l.clone()),
            Refused::Unknown(e) => Refused::Unknown(e.clone()),
            Refused::Failed(e) => Refused::Failed(e.clone()),
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
