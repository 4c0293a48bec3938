//! Session liveness.
//!
//! Every server tracks the live sessions (from applied entries) with their secrets, so any
//! server can authenticate a request or a resume. Only the leader's deadlines matter: it
//! expires a session by proposing `ExpireSessions` once it has heard nothing from it for
//! its timeout. Keepalives that reach a follower are relayed to the leader in batches.
//!
//! Deadlines are in-memory. A server that becomes leader therefore starts every session
//! with a full timeout (it cannot know when others last heard from a client): no session
//! is expired early because leadership moved.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::error::GroveError;
use crate::fsm::command::{Applied, SessionChange};
use crate::fsm::session::SessionRecord;

struct Tracked {
    timeout: Duration,
    secret: [u8; 16],
    deadline: Instant,
    /// An expiry for it is being proposed.
    expiring: bool,
}

/// A session as the leader's tracker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Live,
    /// An expiry for it is being proposed.
    Expiring,
    /// Not live here: ended, or never opened (or not applied here yet).
    Unknown,
}

pub struct SessionTracker {
    inner: Mutex<Inner>,
}

struct Inner {
    sessions: HashMap<u64, Tracked>,
    /// Sessions touched here since the last relay to the leader.
    touched: HashSet<u64>,
}

impl SessionTracker {
    pub fn new(live: Vec<(u64, SessionRecord)>) -> Self {
        let t = SessionTracker { inner: Mutex::new(Inner { sessions: HashMap::new(), touched: HashSet::new() }) };
        t.load(live);
        t
    }

    /// Replaces the tracked sessions (at start and after a snapshot install), each with a
    /// fresh timeout.
    pub fn load(&self, live: Vec<(u64, SessionRecord)>) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        inner.sessions = live
            .into_iter()
            .map(|(id, rec)| {
                let timeout = Duration::from_millis(rec.timeout_ms.max(0) as u64);
                (id, Tracked { timeout, secret: rec.secret, deadline: now + timeout, expiring: false })
            })
            .collect();
    }

    pub fn apply(&self, batch: &[Applied]) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        for change in batch.iter().flat_map(|a| &a.sessions) {
            match change {
                SessionChange::Opened { id, timeout_ms, secret } => {
                    let timeout = Duration::from_millis(*timeout_ms as u64);
                    inner
                        .sessions
                        .insert(*id, Tracked { timeout, secret: *secret, deadline: now + timeout, expiring: false });
                }
                SessionChange::Ended { id } => {
                    inner.sessions.remove(id);
                    inner.touched.remove(id);
                }
            }
        }
    }

    /// Whether the session is live (as this server has applied).
    pub fn is_live(&self, id: u64) -> bool {
        self.inner.lock().unwrap().sessions.contains_key(&id)
    }

    /// Checks that a session is live and the secret is its own.
    pub fn authenticate(&self, id: u64, secret: &[u8]) -> Result<Duration, SessionCheck> {
        let inner = self.inner.lock().unwrap();
        match inner.sessions.get(&id) {
            Some(t) if constant_time_eq(&t.secret, secret) => Ok(t.timeout),
            Some(_) => Err(SessionCheck::WrongSecret),
            None => Err(SessionCheck::NotLive),
        }
    }

    /// Renews a session's deadline; remembers to relay it if this server is not the leader.
    pub fn touch(&self, id: u64) -> bool {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        let Some(t) = inner.sessions.get_mut(&id) else { return false };
        t.deadline = now + t.timeout;
        inner.touched.insert(id);
        true
    }

    /// The leader renews a session it is asked to vouch for: its deadline moves, unless an
    /// expiry for it is already being proposed (that expiry may still commit, so the
    /// renewal cannot be promised).
    pub fn renew(&self, id: u64) -> Standing {
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        match inner.sessions.get_mut(&id) {
            None => Standing::Unknown,
            Some(t) if t.expiring => Standing::Expiring,
            Some(t) => {
                t.deadline = now + t.timeout;
                Standing::Live
            }
        }
    }

    /// Where a session stands, without renewing it.
    pub fn standing(&self, id: u64) -> Standing {
        match self.inner.lock().unwrap().sessions.get(&id) {
            None => Standing::Unknown,
            Some(t) if t.expiring => Standing::Expiring,
            Some(_) => Standing::Live,
        }
    }

    /// Puts back touches whose relay to the leader failed, for the next one.
    pub fn retouch(&self, ids: Vec<u64>) {
        let mut inner = self.inner.lock().unwrap();
        let live: Vec<u64> = ids.into_iter().filter(|id| inner.sessions.contains_key(id)).collect();
        inner.touched.extend(live);
    }

    /// Sessions touched since the last call, to relay to the leader.
    pub fn take_touched(&self) -> Vec<u64> {
        self.inner.lock().unwrap().touched.drain().collect()
    }

    /// Gives every session a full timeout from now (this server just became leader).
    pub fn reset_deadlines(&self) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        for t in inner.sessions.values_mut() {
            t.deadline = now + t.timeout;
            t.expiring = false;
        }
    }

    /// Sessions past their deadline and not already being expired; marks them expiring.
    pub fn take_expired(&self) -> Vec<u64> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap();
        let mut out = Vec::new();
        for (id, t) in inner.sessions.iter_mut() {
            if !t.expiring && t.deadline <= now {
                t.expiring = true;
                out.push(*id);
            }
        }
        out.sort_unstable();
        out
    }

    /// An expiry proposal failed: let the next round try again.
    pub fn unmark_expiring(&self, ids: &[u64]) {
        let mut inner = self.inner.lock().unwrap();
        for id in ids {
            if let Some(t) = inner.sessions.get_mut(id) {
                t.expiring = false;
            }
        }
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().sessions.len()
    }
}

/// Why a session could not be authenticated from the tracker alone.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionCheck {
    WrongSecret,
    NotLive,
}

impl SessionCheck {
    pub fn into_error(self, id: u64) -> GroveError {
        match self {
            SessionCheck::WrongSecret => {
                GroveError::AuthFailed { message: format!("wrong secret for session 0x{id:x}") }
            }
            SessionCheck::NotLive => GroveError::UnknownSession { id },
        }
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsm::command::Outcome;

    fn opened(id: u64, timeout_ms: i64) -> Applied {
        Applied {
            time: 0,
            zxid: id,
            results: vec![Ok(Outcome::Done)],
            events: vec![],
            grants: vec![],
            sessions: vec![SessionChange::Opened { id, timeout_ms, secret: [id as u8; 16] }],
        }
    }

    #[test]
    fn sessions_expire_after_their_timeout_unless_touched() {
        let t = SessionTracker::new(vec![]);
        t.apply(&[opened(5, 30), opened(6, 10_000)]);
        assert!(t.authenticate(5, &[5; 16]).is_ok());
        assert_eq!(t.authenticate(5, &[6; 16]), Err(SessionCheck::WrongSecret));
        assert_eq!(t.authenticate(7, &[7; 16]), Err(SessionCheck::NotLive));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(t.take_expired(), vec![5]);
        // Marked: not proposed twice.
        assert!(t.take_expired().is_empty());
        // Its renewal cannot be promised while the expiry may still commit.
        assert_eq!(t.renew(5), Standing::Expiring);
        assert_eq!(t.standing(5), Standing::Expiring);
        t.unmark_expiring(&[5]);
        assert_eq!(t.take_expired(), vec![5]);
    }

    #[test]
    fn new_leader_gives_full_timeouts() {
        let t = SessionTracker::new(vec![]);
        t.apply(&[opened(5, 30)]);
        std::thread::sleep(Duration::from_millis(40));
        t.reset_deadlines();
        assert!(t.take_expired().is_empty());
        assert!(t.touch(5));
        assert_eq!(t.take_touched(), vec![5]);
        assert_eq!(t.renew(5), Standing::Live);
        t.apply(&[Applied {
            time: 0,
            zxid: 9,
            results: vec![Ok(Outcome::Done)],
            events: vec![],
            sessions: vec![SessionChange::Ended { id: 5 }],
            grants: vec![],
        }]);
        assert_eq!(t.count(), 0);
        assert!(!t.touch(5));
        assert_eq!(t.renew(5), Standing::Unknown);
    }
}
