//! The member registry: which data directory ran as each member, and how often it started.
//!
//! Replicated like the tree, so any member can tell a server that comes back with an empty
//! or older data directory from one that never ran: the first has lost votes and log
//! entries it acknowledged, and must not take part again under its old identity (see
//! `node::identity`).

use serde::{Deserialize, Serialize};

use crate::error::GroveError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberRecord {
    /// Random, chosen when the member's data directory was created.
    pub incarnation: u64,
    /// How many times that data directory has started, as of its last registration.
    pub boot: u64,
}

impl MemberRecord {
    pub fn encode(&self) -> Vec<u8> {
        postcard::to_allocvec(self).expect("member records encode")
    }

    pub fn decode(raw: &[u8]) -> Result<MemberRecord, GroveError> {
        postcard::from_bytes(raw).map_err(|e| GroveError::internal(format!("corrupt member record: {e}")))
    }
}
