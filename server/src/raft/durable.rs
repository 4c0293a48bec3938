//! How far this server's Raft log is durable, for the state machine, which never makes
//! applied state durable ahead of it (see `log_store` and `state_machine`).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Longest wait for the log to hold what a durable commit of the state covers. The log lags
/// by one flush (milliseconds); past this the disk is stuck.
pub const LOG_CATCH_UP: Duration = Duration::from_secs(10);

/// The last index this log holds durably, as the writer thread advances it.
#[derive(Debug, Clone, Default)]
pub struct DurableIndex(Arc<(Mutex<u64>, Condvar)>);

impl DurableIndex {
    pub(super) fn set(&self, index: u64) {
        let (value, changed) = &*self.0;
        *value.lock().unwrap() = index;
        changed.notify_all();
    }

    /// A log durable up to `index` (for tests of the state machine alone).
    #[cfg(test)]
    pub fn at(index: u64) -> Self {
        let d = DurableIndex::default();
        d.set(index);
        d
    }

    pub fn get(&self) -> u64 {
        *self.0.0.lock().unwrap()
    }

    /// Blocks until the log holds `index` durably, at most `timeout`; whether it does.
    pub fn wait_for(&self, index: u64, timeout: Duration) -> bool {
        let (value, changed) = &*self.0;
        let guard = value.lock().unwrap();
        let (guard, _) = changed.wait_timeout_while(guard, timeout, |durable| *durable < index).unwrap();
        *guard >= index
    }
}
