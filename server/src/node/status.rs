//! How this server sees itself: in touch with a quorum, ready, and the figures of
//! `Cluster.Status`, `grove status` and `/status`.

use std::sync::atomic::Ordering;

use super::Node;
use crate::raft::{RaftStatus, Role};
use crate::storage::access::StateTables;

/// How this server sees itself, for `Cluster.Status`, `grove status` and `/status`.
#[derive(Debug, Clone)]
pub struct NodeStatus {
    pub raft: RaftStatus,
    pub standalone: bool,
    pub ready: bool,
    pub quorum: bool,
    pub zxid: u64,
    pub leader_client_address: String,
    pub node_count: u64,
    pub session_count: usize,
    pub watch_count: usize,
    pub fsyncs: u64,
    pub entries_synced: u64,
    /// The cluster's id (0 until it formed).
    pub cluster_id: u64,
    /// Results of identified writes remembered for their retries (bounded).
    pub request_records: u64,
}

impl Node {
    /// Whether this server is in touch with a quorum: a leader that heard from one within
    /// a lease, or a follower or observer that knows a leader. (An openraft 0.9 leader that
    /// loses its quorum keeps its role until it hears of a higher term.)
    pub fn has_quorum(&self) -> bool {
        let st = self.consensus.status();
        match st.role {
            Role::Leader => {
                st.members.iter().filter(|m| m.voter).count() <= 1
                    || st
                        .millis_since_quorum_ack
                        .is_some_and(|ms| ms < self.consensus.leader_lease().as_millis() as u64)
            }
            Role::Follower | Role::Learner => st.leader.is_some() && st.leader != Some(self.id),
            Role::Candidate | Role::Shutdown => false,
        }
    }

    /// Ready: knows a leader, is in touch with a quorum, and has caught up in this term:
    /// applied everything it knew to be committed, once. Latched per term, because under a
    /// steady write load the commit index is always an entry or two ahead of the applied
    /// one: comparing them at every probe would flap readiness exactly when the server is
    /// busiest serving.
    pub fn ready(&self) -> bool {
        let st = self.consensus.status();
        if st.leader.is_none() || !self.has_quorum() {
            return false;
        }
        if self.caught_up_in_term.load(Ordering::Relaxed) == st.term {
            return true;
        }
        let caught_up = self.applied_zxid() >= st.committed_index;
        if caught_up {
            self.caught_up_in_term.store(st.term, Ordering::Relaxed);
        }
        caught_up
    }

    pub fn status(&self) -> NodeStatus {
        let raft = self.consensus.status();
        let view = self.view();
        let node_count = view.as_ref().ok().and_then(|v| v.tables.node_count().ok()).unwrap_or(0);
        let cluster_id = view.as_ref().ok().and_then(|v| v.tables.cluster_id().ok()).unwrap_or(0);
        let request_records = view.as_ref().ok().and_then(|v| v.tables.request_records().ok()).unwrap_or(0);
        metrics::gauge!("grove_request_records").set(request_records as f64);
        let (fsyncs, entries_synced, _) = crate::raft::fsync_figures(&self.log_stats);
        NodeStatus {
            standalone: raft.members.len() == 1 && raft.is_voter(self.id),
            ready: self.ready(),
            quorum: self.has_quorum(),
            zxid: self.applied_zxid(),
            leader_client_address: self.leader_hint().map(|h| h.address).unwrap_or_default(),
            node_count,
            session_count: self.sessions.count(),
            watch_count: self.hub.watch_count(),
            fsyncs,
            entries_synced,
            cluster_id,
            request_records,
            raft,
        }
    }
}
