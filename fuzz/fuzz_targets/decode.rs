//! Decoding what Grove reads back from disk or from peers: log entries and commands, node,
//! session and quota records, and the public API's messages. Bad bytes are errors, never
//! panics; whatever decodes re-encodes to the same value.

#![no_main]

use grove_server::fsm::command::{Command, CommandResult};
use grove_server::fsm::quota::QuotaRecord;
use grove_server::fsm::session::SessionRecord;
use grove_server::fsm::znode::Znode;
use grove_server::raft::types::Entry;
use libfuzzer_sys::fuzz_target;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(cmd) = postcard::from_bytes::<Command>(data) {
        let again = postcard::to_allocvec(&cmd).unwrap();
        assert_eq!(postcard::from_bytes::<Command>(&again).unwrap(), cmd);
    }
    let _ = postcard::from_bytes::<Entry>(data);
    let _ = postcard::from_bytes::<CommandResult>(data);
    if let Ok(rec) = Znode::decode(data) {
        assert_eq!(Znode::decode(&rec.encode()).unwrap(), rec);
        assert_eq!(Znode::data_of(data).unwrap(), &rec.data[..]);
        assert_eq!(Znode::decode_stat(data).unwrap(), rec.stat);
    }
    let _ = Znode::acl_of(data);
    let _ = SessionRecord::decode(data);
    if let Ok(q) = QuotaRecord::decode(data) {
        assert_eq!(QuotaRecord::decode(&q.encode()).unwrap(), q);
    }
    use grove_proto::v1 as pb;
    let _ = pb::MultiRequest::decode(data);
    let _ = pb::WatchRequest::decode(data);
    let _ = pb::AcquireRequest::decode(data);
    let _ = pb::SetAclRequest::decode(data);
});
