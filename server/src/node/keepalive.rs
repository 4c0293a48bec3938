//! Vouching for sessions: a keepalive or a resume is confirmed only by a server in contact
//! with a current leader that has a quorum.
//!
//! The leader expires a session once it has heard nothing from it for its timeout, and a
//! new leader first gives every session a full timeout. So a renewal is safe to confirm
//! only once the leader has recorded it (its deadline moved) *and* that leader is still
//! the leader: a quorum acknowledged it after the renewal was recorded. A leader that has
//! lost its quorum, or a follower cut off from the leader, keeps answering nothing but
//! UNAVAILABLE, and the client moves to another server; had it been answered from the local
//! session table, as ZooKeeper answers pings, it would keep believing in a session the
//! majority is about to expire (and in the locks it holds).
//!
//! On the leader: renew, then one leadership round (batched across callers). On a
//! follower or observer: the renewals that arrive while one relay is in flight go to the
//! leader together in the next, which answers after its own renewal and round.
//!
//! The client counts its session's life from when it *sent* a confirmed keepalive: the
//! leader recorded it later than that, and will not expire the session before a timeout
//! has passed since.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use grove_proto::peer::TouchSessionsRequest;
use tokio::sync::oneshot;

use super::Node;
use super::sessions::{SessionCheck, Standing};
use crate::error::GroveError;
use crate::raft::Role;
use crate::raft::peer_service::RenewalReport;

/// What the leader said of one relayed renewal.
type Verdict = Result<(), GroveError>;

/// Renewals waiting for the next relay to the leader.
#[derive(Default)]
pub(super) struct SessionRelay {
    state: Arc<Mutex<RelayState>>,
}

#[derive(Default)]
struct RelayState {
    running: bool,
    waiting: Vec<(u64, oneshot::Sender<Verdict>)>,
}

impl Node {
    /// Checks a session's secret and renews it, answering only once the renewal holds:
    /// recorded by a leader that a quorum confirmed afterwards. Returns the session's
    /// timeout. Fails with UNAVAILABLE (NOT_READY or NO_QUORUM) when this server cannot
    /// vouch for it, so the client tries another.
    pub async fn vouch(self: &Arc<Self>, id: u64, secret: &[u8]) -> Result<Duration, GroveError> {
        let timeout = match self.sessions.authenticate(id, secret) {
            Ok(t) => t,
            Err(SessionCheck::WrongSecret) => return Err(SessionCheck::WrongSecret.into_error(id)),
            Err(SessionCheck::NotLive) => {
                // This server may lag the one that opened the session: catch up, then look
                // again (a linearizable read's wait) before calling it unknown.
                self.read(super::Consistency::Linearizable, 0).await?;
                match self.sessions.authenticate(id, secret) {
                    Ok(t) => t,
                    Err(check) => return Err(self.session_error(id, check)),
                }
            }
        };
        let st = self.consensus.status();
        match st.role {
            Role::Leader => {
                self.standing_error(id, self.sessions.renew(id))?;
                let index = self.leadership.read_index(self).await?;
                // An expiry or close committed before the round (a previous leader's
                // included) is applied by now: the session must still be live after it.
                self.wait_applied(index, Instant::now() + self.vouch_bound()).await?;
                self.standing_error(id, self.sessions.standing(id))?;
                Ok(timeout)
            }
            Role::Follower | Role::Learner if st.leader.is_some_and(|l| l != self.id) => {
                self.relay_renewal(id).await?;
                Ok(timeout)
            }
            _ => Err(GroveError::NotReady {
                message: "this server knows no leader, so it cannot vouch for the session: try another".into(),
                leader: None,
            }),
        }
    }

    /// A renewal that cannot be vouched for: the session ended, or is being expired (the
    /// client asks again, elsewhere, and learns which way the expiry went).
    fn standing_error(&self, id: u64, standing: Standing) -> Result<(), GroveError> {
        match standing {
            Standing::Live => Ok(()),
            Standing::Expiring => Err(being_expired(id)),
            Standing::Unknown => Err(self.session_error(id, SessionCheck::NotLive)),
        }
    }

    pub(super) fn session_error(&self, id: u64, check: SessionCheck) -> GroveError {
        match check {
            SessionCheck::NotLive if self.session_ended(id) => GroveError::SessionExpired { id },
            check => check.into_error(id),
        }
    }

    /// Confirms, with a bounded quorum round, that this server still leads.
    pub(super) async fn confirm_leadership_once(self: &Arc<Self>) -> Result<u64, GroveError> {
        if self.holding.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(GroveError::NotReady { message: "leadership is being handed over".into(), leader: None });
        }
        let bound = self.vouch_bound();
        match tokio::time::timeout(bound, self.consensus.read_index()).await {
            Ok(Ok(index)) => Ok(index),
            Ok(Err(crate::raft::NotHere::NotLeader(_))) => Err(GroveError::not_leader(self.leader_hint())),
            Ok(Err(crate::raft::NotHere::Failed(e))) => Err(e),
            Err(_) => Err(GroveError::NoQuorum {
                message: format!(
                    "this server's leadership was not confirmed by a quorum within {} ms",
                    bound.as_millis()
                ),
                leader: None,
            }),
        }
    }

    /// How long a renewal may take to be vouched for before the client is told to go
    /// elsewhere.
    fn vouch_bound(&self) -> Duration {
        self.config.election_timeout_max * 2
    }

    /// Sends the renewal to the leader with whatever else is waiting, and waits for its verdict.
    async fn relay_renewal(self: &Arc<Self>, id: u64) -> Result<(), GroveError> {
        let (tx, rx) = oneshot::channel();
        let start = {
            let mut st = self.relay.state.lock().unwrap();
            st.waiting.push((id, tx));
            !std::mem::replace(&mut st.running, true)
        };
        if start {
            let node = self.clone();
            tokio::spawn(async move {
                loop {
                    let batch = {
                        let mut st = node.relay.state.lock().unwrap();
                        if st.waiting.is_empty() {
                            st.running = false;
                            return;
                        }
                        std::mem::take(&mut st.waiting)
                    };
                    let ids: Vec<u64> = batch.iter().map(|(id, _)| *id).collect::<HashSet<_>>().into_iter().collect();
                    let answer = node.relay_to_leader(ids).await;
                    for (id, tx) in batch {
                        let verdict = match &answer {
                            Ok(r) if r.ended.contains(&id) => Err(GroveError::SessionExpired { id }),
                            Ok(r) if r.unknown.contains(&id) => Err(GroveError::UnknownSession { id }),
                            Ok(r) if r.expiring.contains(&id) => Err(being_expired(id)),
                            Ok(_) => Ok(()),
                            Err(e) => Err(e.clone()),
                        };
                        let _ = tx.send(verdict);
                    }
                }
            });
        }
        rx.await.unwrap_or_else(|_| Err(GroveError::internal("the session relay stopped")))
    }

    /// One confirmed relay: what the leader said of the sessions it did not renew.
    async fn relay_to_leader(&self, ids: Vec<u64>) -> Result<Relayed, GroveError> {
        let st = self.consensus.status();
        let Some((leader_id, leader)) = st.leader_node().filter(|(l, _)| *l != self.id) else {
            return Err(GroveError::NotReady {
                message: "no leader is known to vouch for the session".into(),
                leader: None,
            });
        };
        let mut client =
            self.channels.client(&self.peer_address_of(leader_id, &leader)).map_err(GroveError::internal)?;
        let bound = self.vouch_bound();
        let call = client.touch_sessions(TouchSessionsRequest { session_ids: ids, confirm: true });
        let reply = match tokio::time::timeout(bound, call).await {
            Ok(Ok(r)) => r.into_inner(),
            Ok(Err(status)) => {
                return Err(GroveError::NotReady {
                    message: format!("the leader could not be reached to vouch for the session: {}", status.message()),
                    leader: self.leader_hint(),
                });
            }
            Err(_) => {
                return Err(GroveError::NoQuorum {
                    message: format!("the leader did not vouch for the session within {} ms", bound.as_millis()),
                    leader: self.leader_hint(),
                });
            }
        };
        if !reply.confirmed {
            return Err(if reply.error.is_empty() {
                GroveError::NotReady { message: "the leader did not confirm the renewal".into(), leader: None }
            } else {
                postcard::from_bytes(&reply.error).map_err(GroveError::internal)?
            });
        }
        Ok(Relayed {
            unknown: reply.unknown.into_iter().collect(),
            ended: reply.ended.into_iter().collect(),
            expiring: reply.expiring.into_iter().collect(),
        })
    }

    /// The leader's side of a relay: renew what it knows, then, if asked, confirm its
    /// leadership with a quorum round begun after the renewals were recorded, and look
    /// again once what the round covers is applied (as `vouch` does).
    pub(super) async fn renew_relayed(self: &Arc<Self>, ids: &[u64], confirm: bool) -> RenewalReport {
        let renewed: Vec<(u64, Standing)> = ids.iter().map(|id| (*id, self.sessions.renew(*id))).collect();
        if !confirm {
            return self.report(renewed, Ok(()));
        }
        if self.consensus.status().role != Role::Leader {
            return self.report(renewed, Err(GroveError::not_leader(self.leader_hint())));
        }
        let verdict = match self.leadership.read_index(self).await {
            Ok(index) => self.wait_applied(index, Instant::now() + self.vouch_bound()).await,
            Err(e) => Err(e),
        };
        let now: Vec<(u64, Standing)> = renewed
            .into_iter()
            .map(|(id, was)| (id, if was == Standing::Live { self.sessions.standing(id) } else { was }))
            .collect();
        self.report(now, verdict)
    }

    fn report(&self, standings: Vec<(u64, Standing)>, verdict: Result<(), GroveError>) -> RenewalReport {
        let mut r = RenewalReport { unknown: Vec::new(), ended: Vec::new(), expiring: Vec::new(), verdict };
        for (id, standing) in standings {
            match standing {
                Standing::Live => {}
                Standing::Expiring => r.expiring.push(id),
                Standing::Unknown => {
                    r.unknown.push(id);
                    if self.session_ended(id) {
                        r.ended.push(id);
                    }
                }
            }
        }
        r
    }
}

/// The sessions a relay's leader did not renew.
struct Relayed {
    unknown: HashSet<u64>,
    ended: HashSet<u64>,
    expiring: HashSet<u64>,
}

fn being_expired(id: u64) -> GroveError {
    GroveError::NotReady {
        message: format!("session 0x{id:x} is being expired by the leader; ask again to learn whether it was"),
        leader: None,
    }
}
