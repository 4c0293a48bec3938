//! The member registry and the cluster id (see `fsm::members`).

use super::staged::Staged;
use crate::error::GroveError;
use crate::fsm::command::{CommandResult, Outcome};
use crate::fsm::members::MemberRecord;
use crate::storage::access::{StateTables, Table};
use crate::storage::keys;
use crate::storage::write::WriteTables;

impl Staged {
    /// Records that `incarnation` runs as member `id`, at its start number `boot`; the
    /// first registration of a cluster also fixes the cluster's id.
    pub(super) fn register_member(
        &mut self,
        t: &WriteTables<'_>,
        id: u64,
        incarnation: u64,
        boot: u64,
        cluster_id: u64,
    ) -> CommandResult {
        // A registration proposed by a server being removed can commit after the removal;
        // recorded, it would refuse that id's fresh replacement (`--join`) as amnesiac.
        if let Some(members) = t.membership()?
            && !members.contains(&id)
        {
            return Ok(Outcome::Done);
        }
        if t.cluster_id()? == 0 && cluster_id != 0 {
            self.cluster.push((keys::cluster_key().to_vec(), Some(cluster_id.to_le_bytes().to_vec())));
        }
        let record = MemberRecord { incarnation, boot };
        self.cluster.push((keys::member_key(id), Some(record.encode())));
        Ok(Outcome::Done)
    }
}

/// Forgets the registrations of servers no longer in the membership (`members`): once
/// removed, a server may come back with a new data directory (`--join`). Remembers the
/// membership, so that later registrations of removed servers are ignored.
pub fn forget_members(t: &mut WriteTables<'_>, members: &[u64]) -> Result<(), GroveError> {
    let list = postcard::to_allocvec(members).map_err(GroveError::internal)?;
    t.put(Table::Cluster, keys::membership_key(), Some(&list))?;
    for (id, _) in t.members()? {
        if !members.contains(&id) {
            t.put(Table::Cluster, &keys::member_key(id), None)?;
        }
    }
    Ok(())
}
