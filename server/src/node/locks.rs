//! Waiting for lock grants, and following an election.
//!
//! The state machine decides grants; this is where an `Acquire` call waits for its node's,
//! and where an election's observers learn of each change of leader. Both register before
//! they look at the current state, and grants, deletions and data changes are delivered
//! from the apply path in zxid order, so nothing is missed between the look and the
//! delivery. A call that times out or is cancelled withdraws its node, so a waiter that
//! gives up leaves nothing behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{Consistency, Node, ReadView};
use crate::error::GroveError;
use crate::fsm::acl::Caller;
use crate::fsm::command::{Applied, Event, EventKind, LockOp, Op, Outcome, RequestId, Write};
use crate::fsm::path;
use crate::storage::access::StateTables;
use crate::storage::read::ReadTables;

type Waiter = oneshot::Sender<Result<u64, GroveError>>;

/// Changes an observer buffers before it is dropped as too slow.
const OBSERVER_QUEUE: usize = 4096;

/// What one applied entry changed in an observed lock queue.
#[derive(Debug)]
pub enum QueueChange {
    Applied {
        zxid: u64,
        events: Vec<Event>,
        grants: Vec<(String, u64)>,
    },
    /// The state was replaced by a snapshot: read it again.
    Reset,
}

struct QueueObserver {
    dir: String,
    tx: mpsc::Sender<QueueChange>,
}

/// Calls waiting for lock nodes: several may wait for one node (reentrant acquires of a
/// node still queued), each under its own ticket.
#[derive(Default)]
pub struct LockWaiters {
    waiting: Mutex<HashMap<String, Vec<(u64, Waiter)>>>,
    next_ticket: std::sync::atomic::AtomicU64,
    observers: Mutex<Vec<QueueObserver>>,
}

impl LockWaiters {
    fn register(&self, node: &str) -> (u64, oneshot::Receiver<Result<u64, GroveError>>) {
        let (tx, rx) = oneshot::channel();
        let ticket = self.next_ticket.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.waiting.lock().unwrap().entry(node.to_string()).or_default().push((ticket, tx));
        (ticket, rx)
    }

    /// Forgets one waiter, leaving others waiting for the same node.
    fn forget(&self, node: &str, ticket: u64) {
        let mut waiting = self.waiting.lock().unwrap();
        if let Some(list) = waiting.get_mut(node) {
            list.retain(|(t, _)| *t != ticket);
            if list.is_empty() {
                waiting.remove(node);
            }
        }
    }

    /// Answers every waiter of a node.
    fn settle(waiting: &mut HashMap<String, Vec<(u64, Waiter)>>, node: &str, outcome: Result<u64, GroveError>) {
        for (_, tx) in waiting.remove(node).unwrap_or_default() {
            let _ = tx.send(outcome.clone());
        }
    }

    fn observe(&self, dir: String) -> mpsc::Receiver<QueueChange> {
        let (tx, rx) = mpsc::channel(OBSERVER_QUEUE);
        self.observers.lock().unwrap().push(QueueObserver { dir, tx });
        rx
    }

    /// Wakes the waiters whose nodes were granted, or deleted (released elsewhere, or their
    /// session ended), and tells observers what changed in their queues.
    pub fn applied(&self, batch: &[Applied]) {
        self.wake(batch);
        let mut observers = self.observers.lock().unwrap();
        if observers.is_empty() {
            return;
        }
        for a in batch {
            observers.retain(|o| {
                let events: Vec<Event> =
                    a.events.iter().filter(|e| e.path != "/" && path::parent(&e.path) == o.dir).cloned().collect();
                let grants: Vec<(String, u64)> =
                    a.grants.iter().filter(|(n, _)| path::parent(n) == o.dir).cloned().collect();
                if events.is_empty() && grants.is_empty() {
                    return !o.tx.is_closed();
                }
                // A full queue drops the observer: its stream ends and the client observes
                // again, rather than the apply path waiting for a slow reader.
                o.tx.try_send(QueueChange::Applied { zxid: a.zxid, events, grants }).is_ok()
            });
        }
    }

    fn wake(&self, batch: &[Applied]) {
        let mut waiting = self.waiting.lock().unwrap();
        if waiting.is_empty() {
            return;
        }
        for a in batch {
            for (node, token) in &a.grants {
                Self::settle(&mut waiting, node, Ok(*token));
            }
            for e in a.events.iter().filter(|e| e.kind == EventKind::Deleted) {
                if waiting.contains_key(&e.path) {
                    Self::settle(&mut waiting, &e.path, Err(node_gone(&e.path)));
                }
            }
        }
    }

    /// The state was replaced by a snapshot: settle every waiter against it, and have the
    /// observers read it again.
    pub fn reset(&self, tables: &ReadTables) {
        let mut waiting = self.waiting.lock().unwrap();
        let nodes: Vec<String> = waiting.keys().cloned().collect();
        for node in nodes {
            let outcome = match tables.lock(&node) {
                Ok(Some(rec)) if rec.granted => Some(Ok(rec.token)),
                Ok(Some(_)) => None,
                Ok(None) => Some(Err(node_gone(&node))),
                Err(e) => Some(Err(e)),
            };
            if let Some(outcome) = outcome {
                Self::settle(&mut waiting, &node, outcome);
            }
        }
        drop(waiting);
        self.observers.lock().unwrap().retain(|o| o.tx.try_send(QueueChange::Reset).is_ok());
    }

    /// Server shutdown: waiting calls return, observer streams end.
    pub fn close_all(&self) {
        self.waiting.lock().unwrap().clear();
        self.observers.lock().unwrap().clear();
    }
}

/// NO_NODE tells a client retrying an Acquire (same request id) that its queued node was
/// withdrawn meanwhile: it queues again with a new id.
fn node_gone(node: &str) -> GroveError {
    GroveError::no_node(node)
}

/// Withdraws a lock node unless disarmed: the call waiting for it gave up or went away.
struct Withdraw {
    node: Arc<Node>,
    lock_node: String,
    ticket: u64,
    /// Who queued it: the withdrawal acts for the same session.
    caller: Caller,
    armed: bool,
}

impl Drop for Withdraw {
    fn drop(&mut self) {
        if self.armed {
            self.node.lock_waiters.forget(&self.lock_node, self.ticket);
            withdraw_later(self.node.clone(), self.lock_node.clone(), self.caller.clone());
        }
    }
}

/// Withdraws (releases one hold of) a lock node in the background, retrying until it is
/// done or its session is gone (which takes the node with it): a withdrawal that failed
/// once (no leader for a moment) must not leave a node queued that nobody waits for.
fn withdraw_later(node: Arc<Node>, lock_node: String, caller: Caller) {
    tokio::spawn(async move {
        let id = crate::fsm::command::new_request_id(super::now_ms(), rand::random());
        let mut pause = std::time::Duration::from_millis(100);
        loop {
            // One request id for every attempt: the hold is released once.
            let write = Write::new(caller.clone(), id, Op::Unlock { node: lock_node.clone() });
            match node.propose(write).await {
                Ok(_) => return,
                Err(GroveError::SessionExpired { .. } | GroveError::UnknownSession { .. }) => return,
                Err(e) if *node.stopped().borrow() => {
                    tracing::warn!("withdrawing lock node {lock_node}: {e}");
                    return;
                }
                Err(e) => {
                    if !node.sessions.is_live(caller.session) {
                        return; // the session ended: its nodes went with it
                    }
                    tracing::debug!("withdrawing lock node {lock_node} (will retry): {e}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(std::time::Duration::from_secs(2));
                }
            }
        }
    });
}

/// A lock request still being committed when its caller went away: once it is applied,
/// its node is withdrawn (released, if it was granted: nobody will use the grant).
struct Queueing {
    node: Arc<Node>,
    proposal: Option<tokio::task::JoinHandle<Result<(u64, Outcome), GroveError>>>,
    caller: Caller,
}

impl Drop for Queueing {
    fn drop(&mut self) {
        let Some(proposal) = self.proposal.take() else { return };
        let (node, caller) = (self.node.clone(), self.caller.clone());
        tokio::spawn(async move {
            if let Ok(Ok((_, Outcome::Locked { nodes, .. }))) = proposal.await
                && let Some(first) = nodes.into_iter().next()
            {
                withdraw_later(node, first, caller);
            }
        });
    }
}

/// An election's leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leadership {
    pub node: String,
    pub value: Bytes,
    pub token: u64,
    pub session_id: u64,
}

impl Node {
    /// Queues a lock request and waits until it is granted, or until `wait` passes (then
    /// its nodes are withdrawn and the call fails with LOCK_TIMEOUT). No `wait`: until
    /// granted or the call is dropped. Returns the fencing token and the nodes.
    pub async fn acquire(
        self: &Arc<Self>,
        op: LockOp,
        caller: Caller,
        request: RequestId,
        wait: Option<Duration>,
    ) -> Result<(u64, Vec<String>), GroveError> {
        let lock_path = op.paths.first().cloned().unwrap_or_default();
        // Held until this request is answered: bounds what one client can leave waiting.
        let _slot = self.waiter_slots.take(caller.session)?;
        // The holder node is created with the caller's rights: CREATE on the lock's path.
        let write = Write::new(caller.clone(), request, Op::Lock(op));
        // The request is proposed in a task of its own: a caller that goes away while it is
        // being committed must not leave its node queued with nobody waiting for it.
        let proposal = tokio::spawn({
            let node = self.clone();
            async move { node.propose(write).await }
        });
        let mut queueing = Queueing { node: self.clone(), proposal: Some(proposal), caller: caller.clone() };
        let proposed = queueing.proposal.as_mut().expect("just set").await;
        queueing.proposal = None;
        let (zxid, outcome) =
            proposed.map_err(|e| GroveError::internal(format!("proposing a lock request: {e}")))??;
        let Outcome::Locked { nodes, granted, token } = outcome else {
            return Err(GroveError::internal(format!("unexpected outcome {outcome:?}")));
        };
        if granted {
            return Ok((token, nodes));
        }
        // Register, then look at a state that includes the request: a grant applied in
        // between is seen one way or the other. A multi-lock's nodes are granted together,
        // so its first node stands for all.
        let first = nodes[0].clone();
        let (ticket, rx) = self.lock_waiters.register(&first);
        let mut withdraw =
            Withdraw { node: self.clone(), lock_node: first.clone(), ticket, caller: caller.clone(), armed: true };
        self.wait_applied(zxid, Instant::now() + self.config.request_timeout).await?;
        match self.view()?.tables.lock(&first)? {
            Some(rec) if rec.granted => {
                self.lock_waiters.forget(&first, ticket);
                withdraw.armed = false;
                return Ok((rec.token, nodes));
            }
            Some(_) => {}
            None => {
                self.lock_waiters.forget(&first, ticket);
                withdraw.armed = false;
                return Err(node_gone(&first));
            }
        }
        let granted = match wait {
            Some(wait) => tokio::time::timeout(wait, rx).await,
            None => Ok(rx.await),
        };
        match granted {
            Ok(Ok(result)) => {
                withdraw.armed = false;
                result.map(|token| (token, nodes))
            }
            Ok(Err(_)) => {
                // Shutting down: the node stays queued, so the client's retry elsewhere
                // (same request id) finds its place in line.
                withdraw.armed = false;
                Err(GroveError::NotReady { message: "the server is shutting down".into(), leader: None })
            }
            Err(_) => {
                // Withdraw before answering, so the caller finds nothing left behind. A
                // grant that lands first is released by the same operation.
                withdraw.armed = false;
                self.lock_waiters.forget(&first, ticket);
                let id = crate::fsm::command::new_request_id(super::now_ms(), rand::random());
                if let Err(e) = self.propose(Write::new(caller.clone(), id, Op::Unlock { node: first.clone() })).await {
                    // Not withdrawn yet: keep trying in the background, and tell the caller
                    // that its request may still be queued.
                    withdraw_later(self.clone(), first, caller);
                    return Err(e);
                }
                Err(GroveError::LockTimeout { path: lock_path })
            }
        }
    }

    /// The leader of the election whose queue is `dir`, as `view` shows it.
    pub fn leader_in(view: &ReadView, dir: &str) -> Result<Option<Leadership>, GroveError> {
        let queue = view.tables.lock_queue(dir)?;
        let Some((node, rec)) = queue.into_iter().find(|(_, r)| r.granted) else { return Ok(None) };
        let value = view.tables.data(&node)?.unwrap_or_default();
        Ok(Some(Leadership { node, value, token: rec.token, session_id: rec.session }))
    }

    /// The election's leader now, then every change (by zxid) until the receiver is
    /// dropped. The stream ends early if its reader falls far behind.
    pub async fn observe_leader(
        self: &Arc<Self>,
        dir: String,
        consistency: Consistency,
    ) -> Result<mpsc::Receiver<(u64, Option<Leadership>)>, GroveError> {
        let mut changes = self.lock_waiters.observe(dir.clone());
        let view = self.read(consistency, 0).await?;
        let mut model = QueueModel::load(&view, &dir)?;
        let (tx, rx) = mpsc::channel(16);
        let mut shown = model.leader.clone();
        let mut seen = view.zxid;
        let _ = tx.try_send((view.zxid, shown.clone()));
        let node = self.clone();
        tokio::spawn(async move {
            loop {
                let change = tokio::select! {
                    c = changes.recv() => c,
                    _ = tx.closed() => return,
                };
                let zxid = match change {
                    // Dropped as too slow: end the stream; the client observes again.
                    None => return,
                    Some(QueueChange::Reset) => {
                        let Ok(view) = node.view() else { return };
                        let Ok(m) = QueueModel::load(&view, &dir) else { return };
                        model = m;
                        seen = view.zxid;
                        view.zxid
                    }
                    Some(QueueChange::Applied { zxid, .. }) if zxid <= seen => continue,
                    Some(QueueChange::Applied { zxid, events, grants }) => {
                        model.apply(&events, &grants);
                        seen = zxid;
                        zxid
                    }
                };
                if model.leader != shown {
                    shown = model.leader.clone();
                    if tx.send((zxid, shown.clone())).await.is_err() {
                        return;
                    }
                }
            }
        });
        Ok(rx)
    }
}

/// An election queue as seen through its applied changes: each node's value and owner,
/// and who leads.
struct QueueModel {
    nodes: HashMap<String, (Bytes, u64)>,
    leader: Option<Leadership>,
}

impl QueueModel {
    fn load(view: &ReadView, dir: &str) -> Result<QueueModel, GroveError> {
        let mut nodes = HashMap::new();
        for (node, rec) in view.tables.lock_queue(dir)? {
            let data = view.tables.data(&node)?.unwrap_or_default();
            nodes.insert(node, (data, rec.session));
        }
        Ok(QueueModel { nodes, leader: Node::leader_in(view, dir)? })
    }

    fn apply(&mut self, events: &[Event], grants: &[(String, u64)]) {
        for e in events {
            match e.kind {
                EventKind::Created => {
                    self.nodes.insert(e.path.clone(), (e.data.clone(), e.stat.ephemeral_owner));
                }
                EventKind::DataChanged => {
                    if let Some(n) = self.nodes.get_mut(&e.path) {
                        n.0 = e.data.clone();
                    }
                    if let Some(l) = self.leader.as_mut().filter(|l| l.node == e.path) {
                        l.value = e.data.clone();
                    }
                }
                EventKind::Deleted => {
                    self.nodes.remove(&e.path);
                    if self.leader.as_ref().is_some_and(|l| l.node == e.path) {
                        self.leader = None;
                    }
                }
                EventKind::ChildrenChanged => {}
            }
        }
        for (node, token) in grants {
            let (value, session_id) = self.nodes.get(node).cloned().unwrap_or_default();
            self.leader = Some(Leadership { node: node.clone(), value, token: *token, session_id });
        }
    }
}
