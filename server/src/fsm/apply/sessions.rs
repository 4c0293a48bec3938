//! Sessions: opened and closed by their clients, expired by the leader's decision; an
//! ended session takes its ephemerals (and so its locks) with it.

use redb::ReadableTable;

use super::staged::Staged;
use crate::error::GroveError;
use crate::fsm::command::{CommandResult, Outcome, SessionChange};
use crate::fsm::session::SessionRecord;
use crate::storage::access::{StateTables, Table};
use crate::storage::write::WriteTables;

/// How long ended sessions are remembered, so late resumes learn they expired.
const ENDED_SESSION_RETENTION_MS: i64 = 60 * 60 * 1000;
/// Ended sessions forgotten per applied session command, bounding the work of one entry.
const ENDED_SESSION_PRUNE_BATCH: usize = 64;

impl Staged {
    pub(super) fn open_session(&mut self, id: u64, timeout_ms: i64, secret: [u8; 16]) -> CommandResult {
        if timeout_ms <= 0 {
            return Err(GroveError::bad_args("", "session timeout must be positive"));
        }
        self.opened_sessions.push((id, SessionRecord { timeout_ms, secret }));
        self.session_changes.push(SessionChange::Opened { id, timeout_ms, secret });
        Ok(Outcome::SessionOpened { session_id: id, timeout_ms, secret })
    }

    /// Closes the caller's own session.
    pub(super) fn close_session(&mut self, t: &WriteTables<'_>) -> CommandResult {
        let id = self.caller.session;
        if t.session(id)?.is_none() {
            return Err(if t.session_ended(id)? {
                GroveError::SessionExpired { id }
            } else {
                GroveError::UnknownSession { id }
            });
        }
        self.end_session(t, id)?;
        Ok(Outcome::SessionClosed)
    }

    /// Ends the sessions the leader found silent for their timeout (those still live).
    pub(super) fn expire_sessions(&mut self, t: &WriteTables<'_>, ids: &[u64]) -> CommandResult {
        for &id in ids {
            if t.session(id)?.is_some() {
                self.end_session(t, id)?;
            }
        }
        Ok(Outcome::Done)
    }

    /// Deletes a session's ephemerals (firing their watches) and forgets the session.
    pub(super) fn end_session(&mut self, t: &WriteTables<'_>, id: u64) -> Result<(), GroveError> {
        for p in t.session_ephemerals(id)? {
            if let Some(rec) = self.get(t, &p)? {
                self.remove_node(t, &p, rec)?;
            }
        }
        self.ended_sessions.push(id);
        self.session_changes.push(SessionChange::Ended { id });
        Ok(())
    }
}

/// Forgets ended sessions past their retention, a bounded number per entry. Session ids
/// grow with the zxid, so the table is ordered by age: scanning from the start finds the
/// oldest first.
pub(super) fn prune_ended_sessions(t: &mut WriteTables<'_>, now_ms: i64) -> Result<(), GroveError> {
    let mut expired = Vec::new();
    for item in t.ended.iter().map_err(GroveError::storage)?.take(ENDED_SESSION_PRUNE_BATCH) {
        let (k, v) = item.map_err(GroveError::storage)?;
        let ended_at = i64::from_le_bytes(v.value().try_into().unwrap_or([0; 8]));
        if ended_at + ENDED_SESSION_RETENTION_MS < now_ms {
            expired.push(k.value().to_vec());
        }
    }
    for k in expired {
        t.put(Table::Ended, &k, None)?;
    }
    Ok(())
}
