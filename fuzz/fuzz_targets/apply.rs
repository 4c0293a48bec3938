//! The state machine's apply, driven by arbitrary entries of arbitrary operations (nodes,
//! sessions, locks, ACLs, quotas, reaping, and raw decoded commands) over a small set of
//! paths, so that they collide. After every entry the tables must be consistent:
//! every record decodes, every node's parent exists and its child count is right, every
//! ephemeral's session is alive and indexed, every lock record has its node, every quota's
//! usage is its subtree's; an entry whose operations all failed changed nothing; applying
//! never fails with a storage or internal error.

#![no_main]

use std::collections::{BTreeMap, HashMap};

use arbitrary::Arbitrary;
use bytes::Bytes;
use grove_server::fsm::acl::{self, AclEntry, Caller};
use grove_server::fsm::apply::apply;
use grove_server::fsm::command::{Command, CreateOp, DeleteOp, LockOp, MultiOp, Op, Outcome, SetOp, Write};
use grove_server::fsm::locks::{LockKind, LockRecord};
use grove_server::fsm::path;
use grove_server::fsm::quota::{LimitsChange, QuotaRecord};
use grove_server::fsm::session::SessionRecord;
use grove_server::fsm::znode::{CreateMode, Znode};
use grove_server::storage::keys;
use grove_server::storage::tables::{EPHEMERALS, LOCKS, NODES, QUOTAS, SESSIONS};
use grove_server::storage::write::WriteTables;
use libfuzzer_sys::fuzz_target;
use redb::{Database, ReadableDatabase, ReadableTable};

const PATHS: [&str; 12] =
    ["/", "/a", "/b", "/a/b", "/a/b/c", "/a/", "/l", "/l/x", "/q", "/q/r", "/q/r/s", "/elections/e"];

#[derive(Arbitrary, Debug)]
enum FOp {
    Create { path: u8, len: u8, mode: u8, parents: bool, acl: u8, session: u8 },
    Delete { path: u8, version: Option<i8> },
    Set { path: u8, len: u8, version: Option<i8> },
    Multi(Vec<(u8, u8, u8)>),
    OpenSession,
    CloseSession(u8),
    Expire(u8),
    Lock { paths: Vec<u8>, kind: u8, owner: u8, reentrant: bool, permits: u8, max: u8, session: u8 },
    Unlock { node: u8, session: u8 },
    Proclaim { node: u8, session: u8 },
    CheckFence { path: u8, token: u8 },
    SetAcl { path: u8, acl: u8, version: Option<i8> },
    SetQuota { path: u8, count: Option<i8>, bytes: Option<i16>, hard_count: Option<i8>, hard_bytes: Option<i16> },
    DeleteQuota(u8),
    Reap,
    Raw(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
struct Step {
    caller: u8,
    ops: Vec<FOp>,
    time_advance: u16,
}

fn pick<T: Copy>(items: &[T], i: u8) -> Option<T> {
    (!items.is_empty()).then(|| items[i as usize % items.len()])
}

fn p(i: u8) -> String {
    PATHS[i as usize % PATHS.len()].to_string()
}

fn acl_choice(i: u8) -> Vec<AclEntry> {
    let alice = acl::digest_id("alice", "pw");
    match i % 6 {
        0 => vec![],
        1 => vec![AclEntry::new(acl::READ, "world", "anyone")],
        2 => vec![AclEntry::new(acl::ALL, "digest", &alice)],
        3 => vec![AclEntry::new(acl::READ | acl::CREATE, "ip", "10.0.0.0/8")],
        4 => vec![AclEntry::new(acl::ALL, "auth", "")],
        _ => vec![
            AclEntry::new(acl::ADMIN, "x509", "CN=ops"),
            AclEntry::new(acl::CREATE | acl::DELETE, "world", "anyone"),
        ],
    }
}

fn caller(i: u8) -> Caller {
    let id = |s: &str, v: String| (s.to_string(), v);
    match i % 4 {
        0 => Caller::default(),
        1 => Caller { ids: vec![id("digest", acl::digest_id("alice", "pw"))], ..Caller::default() },
        2 => Caller { ids: vec![id("ip", "10.0.0.1".into()), id("x509", "CN=ops".into())], ..Caller::default() },
        _ => Caller::server(),
    }
}

struct World {
    db: Database,
    zxid: u64,
    time: i64,
    sessions: Vec<u64>,
    lock_nodes: Vec<String>,
}

impl World {
    /// The operation and the session it acts for.
    fn op(&self, f: &FOp) -> Option<(Op, u64)> {
        let session = |i: u8| pick(&self.sessions, i).unwrap_or(if i % 7 == 0 { 0 } else { 999 });
        let data = |n: u8| Bytes::from(vec![b'x'; n as usize % 40]);
        let acting = match f {
            FOp::Create { session: s, .. }
            | FOp::Lock { session: s, .. }
            | FOp::Unlock { session: s, .. }
            | FOp::Proclaim { session: s, .. } => session(*s),
            FOp::CloseSession(i) => session(*i),
            _ => 0,
        };
        let op = match f {
            FOp::Create { path, len, mode, parents, acl, .. } => {
                let mode = CreateMode::from_i32((*mode % 7) as i32)?;
                Op::Create(CreateOp {
                    path: p(*path),
                    data: data(*len),
                    mode,
                    ttl_ms: if mode.is_ttl() { 1000 } else { 0 },
                    create_parents: *parents,
                    acl: acl_choice(*acl),
                })
            }
            FOp::Delete { path, version } => Op::Delete(DeleteOp { path: p(*path), version: version.map(i32::from) }),
            FOp::Set { path, len, version } => {
                Op::Set(SetOp { path: p(*path), data: data(*len), version: version.map(i32::from) })
            }
            FOp::Multi(items) => Op::Multi(
                items
                    .iter()
                    .take(8)
                    .map(|(kind, path, arg)| match kind % 4 {
                        0 => MultiOp::Create(CreateOp {
                            path: p(*path),
                            data: data(*arg),
                            mode: CreateMode::Persistent,
                            ttl_ms: 0,
                            create_parents: false,
                            acl: Vec::new(),
                        }),
                        1 => MultiOp::Delete(DeleteOp { path: p(*path), version: None }),
                        2 => MultiOp::Set(SetOp { path: p(*path), data: data(*arg), version: None }),
                        _ => MultiOp::Check { path: p(*path), version: Some(i32::from(*arg % 3)) },
                    })
                    .collect(),
            ),
            FOp::OpenSession => Op::OpenSession { timeout_ms: 5000, secret: [1; 16] },
            FOp::CloseSession(_) => Op::CloseSession,
            FOp::Expire(i) => Op::ExpireSessions { session_ids: vec![session(*i)] },
            FOp::Lock { paths, kind, owner, reentrant, permits, max, .. } => {
                let kind = [LockKind::Mutex, LockKind::Read, LockKind::Write, LockKind::Semaphore][*kind as usize % 4];
                Op::Lock(LockOp {
                    paths: paths
                        .iter()
                        .take(3)
                        .map(|i| ["/l", "/l/x", "/q/r", "/a"][*i as usize % 4].to_string())
                        .collect(),
                    kind,
                    owner: format!("o{}", owner % 3),
                    reentrant: *reentrant,
                    permits: u32::from(*permits % 4),
                    max_leases: u32::from(*max % 4),
                    data: Bytes::from_static(b"holder"),
                })
            }
            FOp::Unlock { node, .. } => {
                Op::Unlock { node: self.lock_nodes.get(*node as usize % self.lock_nodes.len().max(1))?.clone() }
            }
            FOp::Proclaim { node, .. } => Op::Proclaim {
                node: self.lock_nodes.get(*node as usize % self.lock_nodes.len().max(1))?.clone(),
                data: Bytes::from_static(b"leader"),
            },
            FOp::CheckFence { path, token } => Op::Multi(vec![MultiOp::CheckFence {
                path: p(*path),
                token: self.zxid.saturating_sub(u64::from(*token)) << 10,
            }]),
            FOp::SetAcl { path, acl, version } => {
                Op::SetAcl { path: p(*path), acl: acl_choice(*acl), version: version.map(i32::from) }
            }
            FOp::SetQuota { path, count, bytes, hard_count, hard_bytes } => Op::SetQuota {
                path: p(*path),
                change: LimitsChange {
                    count_soft: count.map(i64::from),
                    bytes_soft: bytes.map(i64::from),
                    count_hard: hard_count.map(i64::from),
                    bytes_hard: hard_bytes.map(i64::from),
                },
            },
            FOp::DeleteQuota(i) => Op::DeleteQuota { path: p(*i) },
            FOp::Reap => Op::Reap { paths: PATHS.iter().map(|s| s.to_string()).collect() },
            FOp::Raw(bytes) => postcard::from_bytes(bytes).ok()?,
        };
        Some((op, acting))
    }

    /// Every node as raw bytes: what "changed nothing" compares.
    fn nodes(&self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let txn = self.db.begin_read().unwrap();
        let t = txn.open_table(NODES).unwrap();
        t.iter().unwrap().map(|r| r.unwrap()).map(|(k, v)| (k.value().to_vec(), v.value().to_vec())).collect()
    }

    fn check(&self) {
        let txn = self.db.begin_read().unwrap();
        let nodes = txn.open_table(NODES).unwrap();
        let mut recs: HashMap<String, Znode> = HashMap::new();
        for item in nodes.iter().unwrap() {
            let (k, v) = item.unwrap();
            let path = keys::key_path(k.value());
            let rec = Znode::decode(v.value()).unwrap_or_else(|e| panic!("{path}: {e}"));
            assert!(Znode::acl_of(v.value()).is_ok());
            recs.insert(path, rec);
        }
        assert!(recs.contains_key("/"), "the root exists");
        let mut children: HashMap<&str, i32> = HashMap::new();
        for p in recs.keys().filter(|p| *p != "/") {
            let parent = path::parent(p);
            let prec = recs.get(parent).unwrap_or_else(|| panic!("{p} has no parent"));
            assert!(!prec.stat.mode.is_ephemeral(), "{p} is the child of an ephemeral");
            *children.entry(parent).or_default() += 1;
        }
        for (p, rec) in &recs {
            assert_eq!(rec.stat.num_children, children.get(p.as_str()).copied().unwrap_or(0), "children of {p}");
            assert_eq!(rec.stat.data_length as usize, rec.data.len(), "data length of {p}");
        }
        let sessions = txn.open_table(SESSIONS).unwrap();
        let ephemerals = txn.open_table(EPHEMERALS).unwrap();
        for (p, rec) in &recs {
            if rec.stat.mode.is_ephemeral() {
                let owner = rec.stat.ephemeral_owner;
                let s = sessions.get(&owner.to_be_bytes()[..]).unwrap().expect("an ephemeral's session is alive");
                SessionRecord::decode(s.value()).unwrap();
                assert!(ephemerals.get(&keys::ephemeral_key(owner, p)[..]).unwrap().is_some(), "{p} is indexed");
            }
        }
        for item in ephemerals.iter().unwrap() {
            let (k, _) = item.unwrap();
            let p = keys::ephemeral_key_path(k.value());
            assert!(recs.get(p).is_some_and(|r| r.stat.mode.is_ephemeral()), "index entry {p} has its node");
        }
        let locks = txn.open_table(LOCKS).unwrap();
        for item in locks.iter().unwrap() {
            let (k, v) = item.unwrap();
            let node = std::str::from_utf8(k.value()).unwrap();
            let rec: LockRecord = postcard::from_bytes(v.value()).unwrap();
            assert!(recs.contains_key(node), "lock record {node} has its node");
            assert!(!rec.granted || rec.token > 0, "a grant has a token");
        }
        let quotas = txn.open_table(QUOTAS).unwrap();
        for item in quotas.iter().unwrap() {
            let (k, v) = item.unwrap();
            let root = std::str::from_utf8(k.value()).unwrap();
            let q = QuotaRecord::decode(v.value()).unwrap();
            assert!(recs.contains_key(root), "quota {root} has its node");
            let under: Vec<_> = recs.iter().filter(|(p, _)| path::is_under(p, root)).collect();
            let bytes: i64 = under.iter().map(|(_, r)| r.data.len() as i64).sum();
            assert_eq!((q.count, q.bytes), (under.len() as i64, bytes), "usage of the quota on {root}");
        }
    }
}

fuzz_target!(|steps: Vec<Step>| {
    let db = redb::Builder::new().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
    let txn = db.begin_write().unwrap();
    WriteTables::open(&txn).unwrap().ensure_root().unwrap();
    txn.commit().unwrap();
    let mut w = World { db, zxid: 1, time: 1_000_000, sessions: Vec::new(), lock_nodes: Vec::new() };
    for step in steps.iter().take(64) {
        let writes: Vec<std::sync::Arc<Write>> = step
            .ops
            .iter()
            .take(6)
            .filter_map(|f| w.op(f))
            .map(|(op, session)| {
                let caller = Caller { session, ..caller(step.caller) };
                std::sync::Arc::new(Write::new(caller, 0, op))
            })
            .collect();
        if writes.is_empty() {
            continue;
        }
        w.zxid += 1;
        w.time += i64::from(step.time_advance);
        let before = w.nodes();
        let txn = w.db.begin_write().unwrap();
        let applied = {
            let mut t = WriteTables::open(&txn).unwrap();
            apply(&mut t, w.zxid, &Command::new(w.time, writes))
                .unwrap_or_else(|e| panic!("apply failed outright: {e}"))
        };
        txn.commit().unwrap();
        for r in &applied.results {
            match r {
                Ok(Outcome::SessionOpened { session_id, .. }) => w.sessions.push(*session_id),
                Ok(Outcome::Locked { nodes, .. }) => w.lock_nodes.extend(nodes.iter().cloned()),
                Err(grove_server::error::GroveError::Internal(e)) => panic!("internal error: {e}"),
                _ => {}
            }
        }
        if applied.results.iter().all(|r| r.is_err()) {
            assert_eq!(w.nodes(), before, "an entry whose operations all failed changed the tree");
        }
        w.check();
    }
});
