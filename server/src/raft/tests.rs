//! openraft's storage conformance suite on the redb log store and state machine.

use std::sync::Arc;

use openraft::testing::{StoreBuilder, Suite};

use super::log_store::LogStore;
use super::open_database;
use super::state_machine::StateMachineStore;
use super::types::{StorageError, TypeConfig};
use crate::fsm::{Applied, ApplyObserver};

struct Quiet;

impl ApplyObserver for Quiet {
    fn applied(&self, _: &[Applied]) {}
    fn reset(&self, _: u64) {}
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for Builder {
    async fn build(&self) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = LogStore::open(open_database(&dir.path().join("raft-log.redb"), 1 << 20).unwrap())?;
        let db = Arc::new(open_database(&dir.path().join("state.redb"), 1 << 20).unwrap());
        let sm = StateMachineStore::open(db, dir.path().join("snapshots"), Arc::new(Quiet))?;
        Ok((dir, log, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(Builder).unwrap();
}
