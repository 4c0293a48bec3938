//! A znode's stored form: ZooKeeper's stat plus its ACL and data.
//!
//! Records use a fixed little-endian layout rather than a serde format: the read path
//! decodes a stat without allocating, and the layout is versioned by its first byte.

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::acl::Acl;
use crate::error::GroveError;

/// ZooKeeper's create modes, with ZooKeeper's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[repr(u8)]
pub enum CreateMode {
    #[default]
    Persistent = 0,
    Ephemeral = 1,
    PersistentSequential = 2,
    EphemeralSequential = 3,
    Container = 4,
    PersistentWithTtl = 5,
    PersistentSequentialWithTtl = 6,
}

impl CreateMode {
    pub fn from_i32(v: i32) -> Option<Self> {
        Some(match v {
            0 => CreateMode::Persistent,
            1 => CreateMode::Ephemeral,
            2 => CreateMode::PersistentSequential,
            3 => CreateMode::EphemeralSequential,
            4 => CreateMode::Container,
            5 => CreateMode::PersistentWithTtl,
            6 => CreateMode::PersistentSequentialWithTtl,
            _ => return None,
        })
    }

    pub fn is_ephemeral(self) -> bool {
        matches!(self, CreateMode::Ephemeral | CreateMode::EphemeralSequential)
    }

    pub fn is_sequential(self) -> bool {
        matches!(
            self,
            CreateMode::PersistentSequential
                | CreateMode::EphemeralSequential
                | CreateMode::PersistentSequentialWithTtl
        )
    }

    pub fn is_ttl(self) -> bool {
        matches!(self, CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl)
    }

    pub fn is_container(self) -> bool {
        self == CreateMode::Container
    }

    /// Container and TTL nodes are reaped by the leader.
    pub fn is_expiring(self) -> bool {
        self.is_container() || self.is_ttl()
    }
}

/// ZooKeeper's 11 stat fields, plus how the node was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Stat {
    pub czxid: u64,
    pub mzxid: u64,
    pub pzxid: u64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: u64,
    pub data_length: i32,
    pub num_children: i32,
    pub mode: CreateMode,
    pub ttl_ms: i64,
}

/// True if a container or TTL node with this stat may be deleted at `now_ms`.
pub fn reapable(stat: &Stat, now_ms: i64) -> bool {
    if stat.num_children != 0 {
        return false;
    }
    if stat.mode.is_container() {
        // ZooKeeper reaps containers that have had children and have none left.
        return stat.cversion > 0;
    }
    stat.mode.is_ttl() && stat.mtime.saturating_add(stat.ttl_ms) <= now_ms
}

/// A node as stored: stat, ACL and data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Znode {
    pub stat: Stat,
    /// Empty: open to everyone (`world:anyone:cdrwa`), which costs no bytes.
    pub acl: Acl,
    pub data: Bytes,
}

const NODE_FORMAT: u8 = 1;
// format, czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, owner,
// num_children, mode, ttl, length of the ACL that follows the header (0 = open).
const NODE_HEADER: usize = 1 + 8 * 5 + 4 * 3 + 8 + 4 + 1 + 8 + 4;
/// Most bytes an encoded ACL may take: `acl::resolve` bounds entries (64) and ids (1 KiB),
/// which encode within this.
pub const MAX_ACL_BYTES: usize = 128 * 1024;

impl Znode {
    pub fn encode(&self) -> Vec<u8> {
        let s = &self.stat;
        let mut out = Vec::with_capacity(NODE_HEADER + self.data.len());
        out.push(NODE_FORMAT);
        out.extend_from_slice(&s.czxid.to_le_bytes());
        out.extend_from_slice(&s.mzxid.to_le_bytes());
        out.extend_from_slice(&s.pzxid.to_le_bytes());
        out.extend_from_slice(&s.ctime.to_le_bytes());
        out.extend_from_slice(&s.mtime.to_le_bytes());
        out.extend_from_slice(&s.version.to_le_bytes());
        out.extend_from_slice(&s.cversion.to_le_bytes());
        out.extend_from_slice(&s.aversion.to_le_bytes());
        out.extend_from_slice(&s.ephemeral_owner.to_le_bytes());
        out.extend_from_slice(&s.num_children.to_le_bytes());
        out.push(s.mode as u8);
        out.extend_from_slice(&s.ttl_ms.to_le_bytes());
        let acl = if self.acl.is_empty() { Vec::new() } else { postcard::to_allocvec(&self.acl).expect("ACLs encode") };
        out.extend_from_slice(&(acl.len() as u32).to_le_bytes());
        out.extend_from_slice(&acl);
        out.extend_from_slice(&self.data);
        out
    }

    /// Where the data starts: after the header and the ACL.
    fn data_start(raw: &[u8]) -> Result<usize, GroveError> {
        if raw.len() < NODE_HEADER || raw[0] != NODE_FORMAT {
            return Err(GroveError::internal(format!(
                "corrupt node record ({} bytes, format {:?})",
                raw.len(),
                raw.first()
            )));
        }
        let acl_len = u32::from_le_bytes(raw[NODE_HEADER - 4..NODE_HEADER].try_into().unwrap()) as usize;
        if acl_len > MAX_ACL_BYTES || NODE_HEADER + acl_len > raw.len() {
            return Err(GroveError::internal(format!("corrupt node record: ACL of {acl_len} bytes")));
        }
        Ok(NODE_HEADER + acl_len)
    }

    /// The ACL of an encoded record (empty: open).
    pub fn acl_of(raw: &[u8]) -> Result<Acl, GroveError> {
        let start = Self::data_start(raw)?;
        if start == NODE_HEADER {
            return Ok(Vec::new());
        }
        postcard::from_bytes(&raw[NODE_HEADER..start])
            .map_err(|e| GroveError::internal(format!("corrupt node ACL: {e}")))
    }

    /// Decodes the stat only, without copying the data.
    pub fn decode_stat(raw: &[u8]) -> Result<Stat, GroveError> {
        let start = Self::data_start(raw)?;
        let mut r = Reader { buf: raw, pos: 1 };
        let czxid = r.u64();
        let mzxid = r.u64();
        let pzxid = r.u64();
        let ctime = r.i64();
        let mtime = r.i64();
        let version = r.i32();
        let cversion = r.i32();
        let aversion = r.i32();
        let ephemeral_owner = r.u64();
        let num_children = r.i32();
        let mode = CreateMode::from_i32(r.u8() as i32)
            .ok_or_else(|| GroveError::internal("corrupt node record: unknown mode"))?;
        let ttl_ms = r.i64();
        Ok(Stat {
            czxid,
            mzxid,
            pzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
            ephemeral_owner,
            data_length: (raw.len() - start) as i32,
            num_children,
            mode,
            ttl_ms,
        })
    }

    pub fn decode(raw: &[u8]) -> Result<Znode, GroveError> {
        let stat = Self::decode_stat(raw)?;
        let start = Self::data_start(raw)?;
        Ok(Znode { stat, acl: Self::acl_of(raw)?, data: Bytes::copy_from_slice(&raw[start..]) })
    }

    /// The data part of an encoded record.
    pub fn data_of(raw: &[u8]) -> Result<&[u8], GroveError> {
        Ok(&raw[Self::data_start(raw)?..])
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let v: [u8; N] = self.buf[self.pos..self.pos + N].try_into().unwrap();
        self.pos += N;
        v
    }
    fn u8(&mut self) -> u8 {
        self.take::<1>()[0]
    }
    fn i32(&mut self) -> i32 {
        i32::from_le_bytes(self.take())
    }
    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_record_round_trips() {
        let rec = Znode {
            stat: Stat {
                czxid: 3,
                mzxid: 11,
                pzxid: 5,
                ctime: 1_700_000_000_000,
                mtime: 1_700_000_000_500,
                version: 1,
                cversion: 2,
                aversion: 0,
                ephemeral_owner: 0xdead,
                data_length: 5,
                num_children: 2,
                mode: CreateMode::PersistentSequentialWithTtl,
                ttl_ms: 30_000,
            },
            acl: Vec::new(),
            data: Bytes::from_static(b"hello"),
        };
        let raw = rec.encode();
        assert_eq!(Znode::decode(&raw).unwrap(), rec);
        assert_eq!(Znode::data_of(&raw).unwrap(), b"hello");
        assert_eq!(Znode::decode_stat(&raw).unwrap().data_length, 5);
        // With an ACL between the header and the data.
        let locked = Znode {
            acl: vec![
                super::super::acl::AclEntry::new(1, "digest", "alice:D/InIHSb7yEEbrWz8b9l71RjZJU="),
                super::super::acl::AclEntry::new(31, "ip", "10.0.0.0/8"),
            ],
            ..rec.clone()
        };
        let raw = locked.encode();
        assert_eq!(Znode::decode(&raw).unwrap(), locked);
        assert_eq!(Znode::data_of(&raw).unwrap(), b"hello");
        assert_eq!(Znode::decode_stat(&raw).unwrap().data_length, 5);
        assert_eq!(Znode::acl_of(&raw).unwrap(), locked.acl);
    }

    #[test]
    fn corrupt_records_are_errors_not_panics() {
        assert!(Znode::decode(&[]).is_err());
        assert!(Znode::decode(&[9; 100]).is_err());
        let mut raw = Znode { stat: Stat::default(), acl: Vec::new(), data: Bytes::new() }.encode();
        raw[NODE_HEADER - 13] = 77; // mode byte
        assert!(Znode::decode(&raw).is_err());
        // An ACL length past the end of the record.
        let mut raw = Znode { stat: Stat::default(), acl: Vec::new(), data: Bytes::from_static(b"abc") }.encode();
        raw[NODE_HEADER - 4] = 9;
        assert!(Znode::decode_stat(&raw).is_err());
        assert!(Znode::data_of(&raw).is_err());
    }

    #[test]
    fn create_mode_numbers_are_zookeepers() {
        for v in 0..7 {
            assert_eq!(CreateMode::from_i32(v).unwrap() as i32, v);
        }
        assert_eq!(CreateMode::from_i32(7), None);
        assert_eq!(CreateMode::from_i32(-1), None);
    }
}
