//! Handing leadership to another voter.
//!
//! openraft 0.9 has no transfer API, so the hand-over is built from what it has: the leader
//! holds new entries (client writes and read indexes would renew the followers' leader
//! leases), waits until the target has the whole log, suspends the election timers of the
//! other voters and of itself, stops heartbeating, and once the leases have lapsed tells the
//! target to campaign. The target has the longest log and is the only candidate, so it wins;
//! the old leader steps down on seeing its higher term. Writes held meanwhile then flow to
//! the new leader. The whole hand-over takes about one leader lease (the maximum election
//! timeout).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use grove_proto::peer::ElectionRequest;

use super::Node;
use crate::error::GroveError;
use crate::raft::Role;

/// Resumes writes and heartbeats however the hand-over ends.
struct Resume<'a>(&'a Node);

impl Drop for Resume<'_> {
    fn drop(&mut self) {
        self.0.consensus.set_heartbeat(true);
        self.0.holding.store(false, Ordering::Relaxed);
    }
}

impl Node {
    /// Suspends this server's election timer for a while.
    pub(crate) fn suspend_elections(self: &Arc<Self>, duration: Duration) {
        self.consensus.set_elect(false);
        let node = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(duration).await;
            node.consensus.set_elect(true);
        });
    }

    /// Makes `to` (or, with 0, the most up-to-date other voter) the leader. Returns the new
    /// leader's id.
    pub async fn transfer_leadership(self: &Arc<Self>, to: u64) -> Result<u64, GroveError> {
        let st = self.consensus.status();
        if st.role != Role::Leader {
            return Err(GroveError::not_leader(self.leader_hint_resolved().await));
        }
        let others: Vec<_> = st.members.iter().filter(|m| m.voter && m.id != self.id).cloned().collect();
        let target = match to {
            0 => others
                .iter()
                .max_by_key(|m| m.matched.unwrap_or(0))
                .ok_or_else(|| GroveError::bad_args("", "there is no other voter to hand leadership to"))?
                .clone(),
            id if id == self.id => return Ok(self.id),
            id => others
                .iter()
                .find(|m| m.id == id)
                .ok_or_else(|| GroveError::bad_args("", format!("server {id} is not a voter")))?
                .clone(),
        };
        let lease = self.consensus.leader_lease();
        let deadline = Instant::now() + self.config.request_timeout + 3 * lease;

        self.holding.store(true, Ordering::Relaxed);
        let _resume = Resume(self);
        // The target must hold the whole log to win the election.
        loop {
            let st = self.consensus.status();
            let matched = st.members.iter().find(|m| m.id == target.id).and_then(|m| m.matched).unwrap_or(0);
            if matched >= st.last_log_index {
                break;
            }
            if Instant::now() > deadline {
                return Err(GroveError::NoQuorum {
                    message: format!("server {} did not catch up with the log in time", target.id),
                    leader: self.leader_hint(),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let suspend = 3 * lease;
        for m in others.iter().filter(|m| m.id != target.id) {
            let addr = self.peer_address_of(m.id, &m.node);
            if let Ok(mut c) = self.channels.client(&addr) {
                let _ = c.election(ElectionRequest { suspend_ms: suspend.as_millis() as u64, campaign: false }).await;
            }
        }
        self.suspend_elections(suspend);
        self.consensus.set_heartbeat(false);
        // Followers refuse to vote for a lease after they last heard from us.
        tokio::time::sleep(lease + Duration::from_millis(100)).await;
        let addr = self.peer_address_of(target.id, &target.node);
        let mut c = self.channels.client(&addr).map_err(GroveError::internal)?;
        c.election(ElectionRequest { suspend_ms: 0, campaign: true })
            .await
            .map_err(|s| GroveError::internal(format!("asking server {} to campaign: {}", target.id, s.message())))?;
        while Instant::now() < deadline {
            if self.consensus.status().leader == Some(target.id) {
                tracing::info!(to = target.id, "handed leadership over");
                return Ok(target.id);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err(GroveError::NoQuorum {
            message: format!("server {} did not become leader in time", target.id),
            leader: self.leader_hint(),
        })
    }
}
