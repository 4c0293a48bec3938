//! The deterministic state machine: ZooKeeper's tree, stats, sessions and ephemerals,
//! locks and quotas.
//!
//! Nothing here knows about tonic or openraft. The records (`znode`, `session`, `locks`,
//! `quota`, `acl`) say what is stored; `command` says what the log carries; `apply` turns
//! a committed entry into changes of the state tables plus the events, session changes and
//! grants they produce. The Raft adapter in `raft/` decides when to apply and what to
//! persist alongside (the applied log id); `storage/` owns the tables.

pub mod acl;
pub mod apply;
pub mod command;
pub mod locks;
pub mod members;
pub mod path;
pub mod quota;
pub mod session;
pub mod znode;

#[cfg(test)]
mod tests;

use command::Applied;

/// Receives what each applied batch produced, in log order, after the batch is committed
/// to the state database and before openraft hears it was applied: a client never sees its
/// write acknowledged before the watch events it caused are queued.
pub trait ApplyObserver: Send + Sync + 'static {
    fn applied(&self, batch: &[Applied]);

    /// The state was replaced by a snapshot whose last entry is `zxid`: everything derived
    /// from earlier applies (watch history, session deadlines) is void.
    fn reset(&self, zxid: u64);
}
