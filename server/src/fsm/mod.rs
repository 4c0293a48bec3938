//! The deterministic state machine: ZooKeeper's tree, stats, sessions and ephemerals.
//!
//! Nothing here knows about tonic or openraft. `tree::apply` turns a command into changes
//! on redb tables plus the events and session changes they produce; `tables::ReadTables`
//! answers reads from one consistent read transaction. The Raft adapter in `raft/` decides
//! when to apply and what to persist alongside (the applied log id).

pub mod acl;
pub mod command;
pub mod locks;
pub mod node;
pub mod path;
pub mod quota;
pub mod tables;
pub mod tree;

#[cfg(test)]
mod tests;

pub use command::{
    Applied, Command, CommandResult, CreateOp, DeleteOp, Event, EventKind, MultiOp, MultiOutcome, Op, Outcome,
    SessionChange, SetOp,
};
pub use node::{CreateMode, NodeRecord, SessionRecord, Stat};
pub use tables::{ChildrenPage, ReadTables, WriteTables};

/// Receives what each applied batch produced, in log order, after the batch is committed
/// to the state database and before openraft hears it was applied: a client never sees its
/// write acknowledged before the watch events it caused are queued.
pub trait ApplyObserver: Send + Sync + 'static {
    fn applied(&self, batch: &[Applied]);

    /// The state was replaced by a snapshot whose last entry is `zxid`: everything derived
    /// from earlier applies (watch history, session deadlines) is void.
    fn reset(&self, zxid: u64);
}
