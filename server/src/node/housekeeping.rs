//! Background work: following leadership, expiring sessions, relaying keepalives and
//! reaping container and TTL nodes.
//!
//! Expiry and reaping are decided by the leader alone and carried out through committed
//! entries stamped with the leader's time, so every replica deletes the same nodes at the
//! same zxid whatever its own clock says.

use std::sync::Arc;
use std::time::Duration;

use super::Node;
use crate::fsm::command::Op;
use crate::fsm::members::MemberRecord;
use crate::raft::{PeerNode, Role};
use crate::storage::access::StateTables;

/// Most paths reaped by one entry.
const REAP_BATCH: usize = 1000;

pub(super) fn spawn_all(node: &Arc<Node>) {
    tokio::spawn(follow_leadership(node.clone()));
    tokio::spawn(discover_addresses(node.clone()));
    tokio::spawn(add_observers(node.clone()));
    tokio::spawn(ask_to_join(node.clone()));
    tokio::spawn(expire_sessions(node.clone()));
    tokio::spawn(relay_keepalives(node.clone()));
    tokio::spawn(reap(node.clone()));
    tokio::spawn(register(node.clone()));
}

/// Registers this data directory as this member (see `identity`), once per start, as soon
/// as there is a leader to commit it; again if the registration is missing later (after
/// a snapshot from before it, or a removal and re-addition).
async fn register(node: Arc<Node>) {
    let mut ticker = Ticker::new(&node, Duration::from_millis(500));
    while ticker.tick().await {
        let st = node.consensus.status();
        if st.leader.is_none() || !st.members.iter().any(|m| m.id == node.id) {
            continue;
        }
        let me = node.consensus.identity();
        let Ok(view) = node.view() else { continue };
        let known = view.tables.member(node.id).ok().flatten();
        if known == Some(MemberRecord { incarnation: me.incarnation, boot: me.boot }) {
            continue;
        }
        // The first registration fixes the cluster's id; later ones leave it alone.
        let cluster_id = match view.tables.cluster_id() {
            Ok(0) => rand::random::<u64>().max(1),
            Ok(id) => id,
            Err(_) => continue,
        };
        drop(view);
        let op = Op::RegisterMember { id: node.id, incarnation: me.incarnation, boot: me.boot, cluster_id };
        match node.propose(crate::fsm::command::Write::by_server(op)).await {
            Ok(_) => tracing::info!(
                incarnation = format_args!("{:016x}", me.incarnation),
                boot = me.boot,
                "registered as a member"
            ),
            Err(e) => tracing::debug!("registering as a member: {e}"),
        }
    }
}

/// Ticks at a fixed interval until the node stops.
struct Ticker {
    stop: tokio::sync::watch::Receiver<bool>,
    interval: tokio::time::Interval,
}

impl Ticker {
    fn new(node: &Node, every: Duration) -> Self {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        Ticker { stop: node.stopped(), interval }
    }

    /// False once the node stops.
    async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.stop.changed() => false,
            _ = self.interval.tick() => true,
        }
    }
}

async fn follow_leadership(node: Arc<Node>) {
    let mut stop = node.stopped();
    let mut watch = node.consensus.watch();
    let mut seen: Option<crate::raft::Leadership> = None;
    // Handles registered once: this loop runs on every change of the Raft metrics.
    let (term, leader_id, is_leader) = (
        metrics::gauge!("grove_raft_term"),
        metrics::gauge!("grove_raft_leader_id"),
        metrics::gauge!("grove_raft_is_leader"),
    );
    let (last_log, applied, committed) = (
        metrics::gauge!("grove_raft_last_log_index"),
        metrics::gauge!("grove_raft_applied_index"),
        metrics::gauge!("grove_raft_commit_index"),
    );
    loop {
        let now = watch.leadership();
        if seen != Some(now) {
            let leading = now.role == Role::Leader;
            if leading && seen.is_none_or(|s| s.role != Role::Leader || s.term != now.term) {
                tracing::info!(term = now.term, "became leader");
            }
            if now.leader != Some(node.id)
                && now.leader.is_some()
                && node.header(0).leader_id != now.leader.unwrap_or(0)
            {
                // A new leader elsewhere: learn how clients reach it, for leader hints.
                let n = node.clone();
                tokio::spawn(async move { n.discover_client_addresses().await });
            }
            node.set_leadership(now.leader, now.term);
            term.set(now.term as f64);
            leader_id.set(now.leader.unwrap_or(0) as f64);
            is_leader.set(if leading { 1.0 } else { 0.0 });
            seen = Some(now);
        }
        let (log_index, applied_index) = watch.indexes();
        last_log.set(log_index as f64);
        applied.set(applied_index as f64);
        committed.set(watch.committed_index() as f64);
        tokio::select! {
            _ = stop.changed() => return,
            alive = watch.changed() => if !alive { return },
        }
    }
}

/// Observers given with --observers join as learners: the leader adds any that is missing.
/// Retried, because a new leader cannot change the membership until its first entry commits.
async fn add_observers(node: Arc<Node>) {
    if node.config.observers.is_empty() {
        return;
    }
    let mut ticker = Ticker::new(&node, Duration::from_millis(500));
    while ticker.tick().await {
        let st = node.consensus.status();
        if st.role != Role::Leader {
            continue;
        }
        for (id, addr) in node.config.observers.clone() {
            if st.members.iter().any(|m| m.id == id) {
                continue;
            }
            let peer = PeerNode { peer_addr: addr, client_addr: String::new() };
            match node.consensus.add_member(id, peer, false).await {
                Ok(()) => tracing::info!(observer = id, "added observer"),
                Err(e) => tracing::debug!(observer = id, "adding observer: {e:?}"),
            }
        }
    }
}

/// A server that `--auto-join` found outside an ensemble already formed asks the leader to
/// add it as a voter, until it is one: the leader adds it as a learner, and promotes it once
/// it holds the log (which may take a snapshot's time). Also a learner that restarted
/// before its promotion asks again. Only for a voter of --peers: an observer is added by the
/// leader, and a plain --join waits for `grove member add`.
async fn ask_to_join(node: Arc<Node>) {
    let me = node.id;
    if !(node.config.auto_join && node.config.peers.iter().any(|(id, _)| *id == me)) {
        return;
    }
    if super::forward::unspecified(&node.peer_addr) {
        tracing::error!(
            address = %node.peer_addr,
            "cannot ask to join: this server's peer address names no host; set --advertise-peer"
        );
        return;
    }
    let mut ticker = Ticker::new(&node, Duration::from_secs(1));
    let (mut warned, mut was_member) = (false, false);
    while ticker.tick().await {
        let st = node.consensus.status();
        if st.is_voter(me) {
            if node.config.join {
                tracing::info!("added to the ensemble as a voter");
            }
            return;
        }
        // Fresh and waiting (preflight found the ensemble formed without it), or added as a
        // learner and not promoted yet; a voter whose membership is not known yet waits.
        let member = st.members.iter().any(|m| m.id == me);
        if member {
            was_member = true;
        } else if was_member {
            // Removed (`grove member remove`, the chart's shrink Job): never ask back.
            tracing::info!("removed from the ensemble: not asking to join again");
            return;
        }
        if !node.config.join && !member {
            continue;
        }
        for (_, addr) in node.config.peers.iter().filter(|(id, _)| *id != me) {
            let Ok(mut peer) = node.channels.client(addr) else { continue };
            let ask = grove_proto::peer::JoinRequest {
                id: me,
                peer_address: node.peer_addr.clone(),
                client_address: node.client_addr.clone(),
                incarnation: node.consensus.identity().incarnation,
            };
            match tokio::time::timeout(Duration::from_secs(30), peer.join(ask)).await {
                Ok(Ok(r)) if r.get_ref().error.is_empty() => break,
                Ok(Ok(r)) => match postcard::from_bytes::<crate::error::GroveError>(&r.get_ref().error) {
                    // Not the leader (the next peer may be), or catching up: ask again.
                    Ok(crate::error::GroveError::NotReady { message, .. }) => {
                        tracing::debug!(peer = %addr, "asking to join: {message}")
                    }
                    Ok(e) if !warned => {
                        warned = true;
                        tracing::warn!(peer = %addr, "asking to join: {e} (asking again every second)");
                    }
                    Ok(e) => tracing::debug!(peer = %addr, "asking to join: {e}"),
                    Err(e) => tracing::debug!(peer = %addr, "asking to join: undecodable answer: {e}"),
                },
                Ok(Err(s)) => tracing::debug!(peer = %addr, "asking to join: {}", s.message()),
                Err(_) => tracing::debug!(peer = %addr, "asking to join: no answer in time"),
            }
        }
    }
}

/// Learns the client addresses of members that joined without one, for leader hints.
async fn discover_addresses(node: Arc<Node>) {
    let mut ticker = Ticker::new(&node, Duration::from_secs(2));
    while ticker.tick().await {
        node.discover_client_addresses().await;
    }
}

async fn expire_sessions(node: Arc<Node>) {
    let tick = (node.config.min_session_timeout / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));
    let mut ticker = Ticker::new(&node, tick);
    let mut leading_term = None;
    while ticker.tick().await {
        let st = node.consensus.status();
        if st.role != Role::Leader {
            leading_term = None;
            continue;
        }
        if node.holding.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        // Deadlines on a server that was not leading are stale (keepalives went to the
        // old leader): start every session afresh before expiring any. Done here, in the
        // same task that expires, so no tick can run between winning and resetting.
        if leading_term != Some(st.term) {
            leading_term = Some(st.term);
            node.sessions.reset_deadlines();
            continue;
        }
        let ids = node.sessions.take_expired();
        if ids.is_empty() {
            continue;
        }
        let n = node.clone();
        tokio::spawn(async move {
            match n.propose_as_leader(Op::ExpireSessions { session_ids: ids.clone() }).await {
                Ok(_) => {
                    metrics::counter!("grove_sessions_expired_total").increment(ids.len() as u64);
                    tracing::info!(sessions = ?ids, "expired sessions");
                }
                Err(e) => {
                    tracing::warn!("expiring sessions {ids:?}: {e}");
                    n.sessions.unmark_expiring(&ids);
                }
            }
        });
    }
}

async fn relay_keepalives(node: Arc<Node>) {
    let tick = (node.config.min_session_timeout / 3).max(Duration::from_millis(20));
    let mut ticker = Ticker::new(&node, tick);
    while ticker.tick().await {
        let ids = node.sessions.take_touched();
        if ids.is_empty() {
            continue;
        }
        let st = node.consensus.status();
        if let Some((id, leader)) = st.leader_node()
            && id != node.id
        {
            node.relay_touches(id, &leader, ids).await;
        }
    }
}

async fn reap(node: Arc<Node>) {
    let mut ticker = Ticker::new(&node, node.config.reap_interval);
    while ticker.tick().await {
        if !node.is_leader() || node.holding.load(std::sync::atomic::Ordering::Relaxed) {
            continue;
        }
        let paths = match node.view().and_then(|v| v.tables.reapable(node.clock.now(), REAP_BATCH)) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("looking for nodes to reap: {e}");
                continue;
            }
        };
        if paths.is_empty() {
            continue;
        }
        let count = paths.len();
        match node.propose_as_leader(Op::Reap { paths }).await {
            Ok(_) => {
                metrics::counter!("grove_nodes_reaped_total").increment(count as u64);
                tracing::debug!(count, "reaped container/TTL nodes");
            }
            Err(e) => tracing::warn!("reaping: {e}"),
        }
    }
}
