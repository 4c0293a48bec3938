//! Everything on disk but the Raft log's own logic: the state database `state.redb`
//! (opening, its tables, typed accessors), key encodings, and the table definitions of both
//! database files.

pub mod access;
pub mod db;
pub mod keys;
pub mod power_loss;
pub mod read;
pub mod state;
pub mod tables;
pub mod write;
