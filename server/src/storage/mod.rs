//! On-disk layout: redb table definitions and key encodings shared by the state machine
//! and the Raft log store.

pub mod keys;
pub mod tables;
