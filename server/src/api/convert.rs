//! Conversions between wire messages and Grove's domain types.

use grove_proto::v1 as pb;

use crate::error::GroveError;
use crate::fsm::command::{Event, EventKind};
use crate::fsm::znode::{CreateMode, Stat};
use crate::node::{Consistency, Header};

pub fn header(h: Header) -> Option<pb::ResponseHeader> {
    Some(pb::ResponseHeader { zxid: h.zxid, server_id: h.server_id, leader_id: h.leader_id, term: h.term })
}

pub fn stat(s: &Stat) -> pb::Stat {
    pb::Stat {
        czxid: s.czxid,
        mzxid: s.mzxid,
        pzxid: s.pzxid,
        ctime: s.ctime,
        mtime: s.mtime,
        version: s.version,
        cversion: s.cversion,
        aversion: s.aversion,
        ephemeral_owner: s.ephemeral_owner,
        data_length: s.data_length,
        num_children: s.num_children,
        mode: s.mode as i32,
        ttl_ms: s.ttl_ms,
    }
}

pub fn create_mode(v: i32, path: &str) -> Result<CreateMode, GroveError> {
    CreateMode::from_i32(v).ok_or_else(|| GroveError::bad_args(path, format!("unknown create mode {v} for {path}")))
}

pub fn consistency(v: i32) -> Result<Consistency, GroveError> {
    match pb::Consistency::try_from(v) {
        Ok(pb::Consistency::Linearizable) => Ok(Consistency::Linearizable),
        Ok(pb::Consistency::Sequential) => Ok(Consistency::Sequential),
        Err(_) => Err(GroveError::bad_args("", format!("unknown consistency level {v}"))),
    }
}

/// A version for compare-and-set: absent means any; negative is an error.
pub fn version(path: &str, v: Option<i32>) -> Result<Option<i32>, GroveError> {
    match v {
        Some(v) if v < 0 => {
            Err(GroveError::bad_args(path, format!("version {v} is negative; omit the version to match any")))
        }
        v => Ok(v),
    }
}

pub fn event_type(k: EventKind) -> pb::EventType {
    match k {
        EventKind::Created => pb::EventType::NodeCreated,
        EventKind::Deleted => pb::EventType::NodeDeleted,
        EventKind::DataChanged => pb::EventType::NodeDataChanged,
        EventKind::ChildrenChanged => pb::EventType::NodeChildrenChanged,
    }
}

pub fn event(e: &Event, zxid: u64, include_data: bool) -> pb::WatchEvent {
    pb::WatchEvent {
        r#type: event_type(e.kind) as i32,
        path: e.path.clone(),
        zxid,
        stat: Some(stat(&e.stat)),
        data: if include_data { e.data.clone() } else { Default::default() },
    }
}

/// ACL entries from a request.
pub fn acl_in(acl: Vec<pb::Acl>) -> crate::fsm::acl::Acl {
    acl.into_iter().map(|a| crate::fsm::acl::AclEntry { perms: a.perms, scheme: a.scheme, id: a.id }).collect()
}

pub fn acl_out(acl: &[crate::fsm::acl::AclEntry]) -> Vec<pb::Acl> {
    acl.iter().map(|a| pb::Acl { perms: a.perms, scheme: a.scheme.clone(), id: a.id.clone() }).collect()
}
