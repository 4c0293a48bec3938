//! The redb tables of the two database files.
//!
//! `state.redb` holds the tree, the sessions and their indexes, and the applied log id in
//! `meta`, all written in one transaction per applied batch. `raft-log.redb` holds the Raft
//! log and vote; it lives in its own file so that log appends and applies never queue on
//! redb's single writer lock.

use redb::TableDefinition;

/// Node key (see `keys::node_key`) → encoded `Znode`.
pub const NODES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("nodes");
/// Session id (big-endian) → encoded `SessionRecord`.
pub const SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("sessions");
/// Session id ++ path → (): the ephemerals each session owns.
pub const EPHEMERALS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ephemerals");
/// Path → (): container and TTL nodes, the leader's reaping candidates.
pub const EXPIRING: TableDefinition<&[u8], &[u8]> = TableDefinition::new("expiring");
/// Session id (big-endian) → time it ended (ms): recently closed or expired sessions, so a
/// client resuming one hears SESSION_EXPIRED rather than UNKNOWN_SESSION.
pub const ENDED_SESSIONS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("ended_sessions");
/// Request id (big-endian) → `RequestRecord` (when the leader stored it, for whom, and the
/// postcard-encoded result of the write it named): what answers a retried request without
/// applying it twice.
pub const REQUESTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests");
/// (stored at, big-endian ++ request id) → (): the records oldest first, by the leaders'
/// clocks (never the clients').
pub const REQUESTS_BY_AGE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests_by_age");
/// (caller bucket ++ stored at ++ request id) → (): each caller's records oldest first; the
/// bucket's key `caller bucket` alone holds its record count (u64 LE).
pub const REQUESTS_BY_CALLER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("requests_by_caller");
/// Lock node path → postcard-encoded `LockRecord`: who waits or holds, granted with which token.
pub const LOCKS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("locks");
/// Lock queue directory → postcard-encoded `QueueRecord`: its kind and semaphore size.
pub const LOCK_QUEUES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("lock_queues");
/// Quota root path → postcard-encoded `QuotaRecord`: its limits and its subtree's usage.
pub const QUOTAS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("quotas");
/// The cluster's identity, its member registry and its clock: `cluster_key()` → cluster id
/// (u64 LE); `clock_key()` → the latest entry time applied (i64 LE);
/// `member_key(id)` → encoded `MemberRecord` (which data directory ran as that member, and
/// how many times it started). Replicated, so every member knows who ran before.
pub const CLUSTER: TableDefinition<&[u8], &[u8]> = TableDefinition::new("cluster");
/// Named values: the applied log id, the membership.
pub const STATE_META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

/// Key in `meta` of the last applied zxid as a little-endian u64.
pub const APPLIED_INDEX_KEY: &str = "applied_index";

pub type RawTableDef = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Every state table but `meta`, in snapshot order, with the tag used in snapshot files.
pub const STATE_TABLES: [(u8, RawTableDef); 12] = [
    (1, NODES),
    (2, SESSIONS),
    (3, EPHEMERALS),
    (4, EXPIRING),
    (5, ENDED_SESSIONS),
    (6, REQUESTS),
    (7, LOCKS),
    (8, LOCK_QUEUES),
    (9, QUOTAS),
    (10, CLUSTER),
    (11, REQUESTS_BY_AGE),
    (12, REQUESTS_BY_CALLER),
];

/// Raft log index → postcard-encoded openraft entry.
pub const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// `vote`, `committed`, `last_purged`: postcard-encoded openraft values.
pub const LOG_META: TableDefinition<&str, &[u8]> = TableDefinition::new("log_meta");
