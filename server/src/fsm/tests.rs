//! State machine tests: ZooKeeper's rules, applied to a real (in-memory) redb database, and
//! a property test against a simple model.

use std::collections::BTreeMap;

use bytes::Bytes;
use proptest::prelude::*;
use redb::{Database, ReadableDatabase, ReadableTable};

use super::*;
use crate::error::GroveError;
use crate::fsm::acl::Caller;
use crate::fsm::command::{
    self, Applied, Command, CommandResult, CreateOp, DeleteOp, Event, EventKind, MultiOp, MultiOutcome, Op, Outcome,
    SessionChange, SetOp, Write,
};
use crate::fsm::znode::{CreateMode, Stat};
use crate::storage::access::StateTables;
use crate::storage::read::ReadTables;
use crate::storage::write::WriteTables;

/// A write in a test: an operation as an anonymous caller without a session, or a `Write`.
trait IntoWrite {
    fn into_write(self) -> Write;
}

impl IntoWrite for Op {
    fn into_write(self) -> Write {
        Write::new(Caller::default(), 0, self)
    }
}

impl IntoWrite for Write {
    fn into_write(self) -> Write {
        self
    }
}

/// An operation for a session.
fn by(session: u64, op: Op) -> Write {
    Write::new(Caller { session, ..Caller::default() }, 0, op)
}

/// What applying a one-operation entry produced.
struct One {
    result: CommandResult,
    events: Vec<Event>,
    sessions: Vec<SessionChange>,
}

/// A state database in memory and the next zxid to apply at.
struct Sm {
    db: Database,
    zxid: u64,
    time: i64,
}

impl Sm {
    fn new() -> Sm {
        let db = redb::Builder::new().create_with_backend(redb::backends::InMemoryBackend::new()).unwrap();
        let txn = db.begin_write().unwrap();
        WriteTables::open(&txn).unwrap().ensure_root().unwrap();
        txn.commit().unwrap();
        Sm { db, zxid: 1, time: 1_000_000 }
    }

    /// Applies an entry of several operations.
    fn apply_batch(&mut self, writes: Vec<Write>) -> Applied {
        self.zxid += 1;
        let txn = self.db.begin_write().unwrap();
        let applied = {
            let mut t = WriteTables::open(&txn).unwrap();
            let cmd = Command::new(self.time, writes.into_iter().map(std::sync::Arc::new).collect());
            apply::apply(&mut t, self.zxid, &cmd).unwrap()
        };
        txn.commit().unwrap();
        applied
    }

    /// Applies an entry of one operation.
    fn apply(&mut self, op: impl IntoWrite) -> One {
        let mut a = self.apply_batch(vec![op.into_write()]);
        One { result: a.results.pop().unwrap(), events: a.events, sessions: a.sessions }
    }

    fn ok(&mut self, op: impl IntoWrite) -> Outcome {
        let a = self.apply(op);
        a.result.unwrap_or_else(|e| panic!("unexpected error: {e}"))
    }

    fn err(&mut self, op: impl IntoWrite) -> GroveError {
        let before = self.dump();
        let a = self.apply(op);
        assert!(a.events.is_empty(), "a failed command produced events");
        assert_eq!(self.dump(), before, "a failed command changed the tree");
        a.result.expect_err("expected an error")
    }

    fn read(&self) -> ReadTables {
        ReadTables::open(self.db.begin_read().unwrap()).unwrap()
    }

    fn stat(&self, path: &str) -> Option<Stat> {
        self.read().stat(path).unwrap()
    }

    /// Every node: path → (data, stat).
    fn dump(&self) -> BTreeMap<String, (Bytes, Stat)> {
        let mut out = BTreeMap::new();
        let r = self.read();
        let mut stack = vec!["/".to_string()];
        while let Some(p) = stack.pop() {
            let rec = r.node(&p).unwrap().unwrap();
            for name in r.children(&p, "", usize::MAX, None).unwrap().names {
                stack.push(path::join(&p, &name));
            }
            out.insert(p, (rec.data, rec.stat));
        }
        out
    }
}

fn create(path: &str, data: &str) -> Write {
    create_mode(path, data, CreateMode::Persistent, 0)
}

fn create_mode(path: &str, data: &str, mode: CreateMode, session: u64) -> Write {
    let ttl_ms = if mode.is_ttl() { 1000 } else { 0 };
    by(
        session,
        Op::Create(CreateOp {
            acl: Vec::new(),
            path: path.into(),
            data: Bytes::copy_from_slice(data.as_bytes()),
            mode,
            ttl_ms,
            create_parents: false,
        }),
    )
}

fn set(path: &str, data: &str, version: Option<i32>) -> Write {
    Op::Set(SetOp { path: path.into(), data: Bytes::copy_from_slice(data.as_bytes()), version }).into_write()
}

fn delete(path: &str, version: Option<i32>) -> Write {
    Op::Delete(DeleteOp { path: path.into(), version }).into_write()
}

fn open_session(sm: &mut Sm) -> u64 {
    match sm.ok(Op::OpenSession { timeout_ms: 10_000, secret: [7; 16] }) {
        Outcome::SessionOpened { session_id, .. } => session_id,
        o => panic!("{o:?}"),
    }
}

#[test]
fn create_sets_zookeepers_stat_and_updates_the_parent() {
    let mut sm = Sm::new();
    sm.ok(create("/app", "v"));
    let z = sm.zxid;
    let s = sm.stat("/app").unwrap();
    assert_eq!((s.czxid, s.mzxid, s.pzxid), (z, z, z));
    assert_eq!((s.version, s.cversion, s.aversion, s.num_children, s.data_length), (0, 0, 0, 0, 1));
    assert_eq!(s.ctime, sm.time);
    let root = sm.stat("/").unwrap();
    assert_eq!((root.cversion, root.num_children, root.pzxid), (1, 1, z));

    sm.time += 5;
    sm.ok(set("/app", "vv", Some(0)));
    let s2 = sm.stat("/app").unwrap();
    assert_eq!((s2.version, s2.mzxid, s2.czxid, s2.data_length), (1, sm.zxid, z, 2));
    assert_eq!(s2.mtime, sm.time);
    assert_eq!(s2.ctime, s.ctime);
}

#[test]
fn create_emits_created_then_children_changed() {
    let mut sm = Sm::new();
    let a = sm.apply(create("/app", "v"));
    let kinds: Vec<_> = a.events.iter().map(|e| (e.kind, e.path.as_str())).collect();
    assert_eq!(kinds, vec![(EventKind::Created, "/app"), (EventKind::ChildrenChanged, "/")]);
    assert_eq!(&a.events[0].data[..], b"v");
}

#[test]
fn sequential_names_come_from_the_parents_cversion() {
    let mut sm = Sm::new();
    sm.ok(create("/app", ""));
    sm.ok(create("/app/a", ""));
    sm.ok(create("/app/b", ""));
    match sm.ok(create_mode("/app/seq-", "", CreateMode::PersistentSequential, 0)) {
        Outcome::Created { path, .. } => assert_eq!(path, "/app/seq-0000000002"),
        o => panic!("{o:?}"),
    }
    sm.ok(delete("/app/a", None));
    match sm.ok(create_mode("/app/", "", CreateMode::PersistentSequential, 0)) {
        Outcome::Created { path, .. } => assert_eq!(path, "/app/0000000004"),
        o => panic!("{o:?}"),
    }
}

#[test]
fn sequence_overflow_is_an_error_that_changes_nothing() {
    let mut sm = Sm::new();
    sm.ok(create("/app", ""));
    // Put the parent's counter at the limit, as 2^31 child creates would.
    let txn = sm.db.begin_write().unwrap();
    {
        let mut t = WriteTables::open(&txn).unwrap();
        let mut rec = t.node("/app").unwrap().unwrap();
        rec.stat.cversion = i32::MAX;
        t.nodes.insert(&crate::storage::keys::node_key("/app")[..], &rec.encode()[..]).unwrap();
    }
    txn.commit().unwrap();
    let e = sm.err(create_mode("/app/s-", "", CreateMode::PersistentSequential, 0));
    assert!(matches!(e, GroveError::SequenceOverflow { .. }), "{e}");
    // A plain child is still fine.
    sm.ok(create("/app/plain", ""));
}

#[test]
fn an_entry_applies_its_operations_independently_at_one_zxid() {
    let mut sm = Sm::new();
    let a = sm.apply_batch(vec![
        create("/x", "1"),
        create("/x", "dup"),
        Op::OpenSession { timeout_ms: 1000, secret: [1; 16] }.into_write(),
        Op::OpenSession { timeout_ms: 1000, secret: [2; 16] }.into_write(),
        set("/x", "2", Some(0)),
    ]);
    let z = sm.zxid;
    assert_eq!(a.results.len(), 5);
    assert!(a.results[0].is_ok());
    assert!(matches!(a.results[1], Err(GroveError::NodeExists { .. })), "a failed operation fails alone");
    let ids: Vec<u64> = a.results[2..4]
        .iter()
        .map(|r| match r {
            Ok(Outcome::SessionOpened { session_id, .. }) => *session_id,
            r => panic!("{r:?}"),
        })
        .collect();
    assert_ne!(ids[0], ids[1], "sessions opened in one entry get distinct ids");
    assert!(a.results[4].is_ok(), "later operations see earlier ones");
    let s = sm.stat("/x").unwrap();
    assert_eq!((s.czxid, s.mzxid, s.version), (z, z, 1));
    let kinds: Vec<_> = a.events.iter().map(|e| e.kind).collect();
    assert_eq!(kinds, vec![EventKind::Created, EventKind::ChildrenChanged, EventKind::DataChanged]);
}

#[test]
fn a_retried_request_is_applied_once_and_answered_like_the_first_time() {
    let mut sm = Sm::new();
    let id = command::new_request_id(sm.time, 42);
    let once = |sm: &mut Sm, mut w: Write| {
        sm.zxid += 1;
        w.request_id = id;
        let txn = sm.db.begin_write().unwrap();
        let a = {
            let mut t = WriteTables::open(&txn).unwrap();
            apply::apply(&mut t, sm.zxid, &Command::single(sm.time, w)).unwrap()
        };
        txn.commit().unwrap();
        a
    };
    let first = once(&mut sm, create_mode("/s-", "x", CreateMode::PersistentSequential, 0));
    let again = once(&mut sm, create_mode("/s-", "x", CreateMode::PersistentSequential, 0));
    assert_eq!(first.results, again.results, "the retry gets the first result");
    assert!(again.events.is_empty(), "and changes nothing");
    assert_eq!(sm.read().children("/", "", 10, None).unwrap().names, vec!["s-0000000000"]);
    // Results are forgotten after the retention.
    sm.time += command::REQUEST_RETENTION_MS + 1;
    sm.ok(Op::Noop);
    let txn = sm.db.begin_write().unwrap();
    {
        let mut t = WriteTables::open(&txn).unwrap();
        let noop = Write::new(Caller::default(), command::new_request_id(sm.time, 7), Op::Noop);
        apply::apply(&mut t, sm.zxid + 1, &Command::single(sm.time, noop)).unwrap();
        assert!(t.requests.get(&id.to_be_bytes()[..]).unwrap().is_none(), "pruned");
    }
    txn.commit().unwrap();
}

#[test]
fn versions_are_compare_and_set() {
    let mut sm = Sm::new();
    sm.ok(create("/a", "1"));
    let e = sm.err(set("/a", "2", Some(3)));
    assert_eq!(e, GroveError::BadVersion { path: "/a".into(), expected: 3, actual: 0 });
    sm.ok(set("/a", "2", Some(0)));
    sm.ok(set("/a", "3", None));
    assert!(matches!(sm.err(delete("/a", Some(0))), GroveError::BadVersion { actual: 2, .. }));
    sm.ok(delete("/a", Some(2)));
    assert!(matches!(sm.err(delete("/a", None)), GroveError::NoNode { .. }));
    assert!(matches!(sm.err(set("/a", "x", None)), GroveError::NoNode { .. }));
}

#[test]
fn structural_errors() {
    let mut sm = Sm::new();
    sm.ok(create("/a", ""));
    sm.ok(create("/a/b", ""));
    assert!(matches!(sm.err(create("/a", "")), GroveError::NodeExists { .. }));
    assert!(matches!(sm.err(create("/x/y", "")), GroveError::NoNode { path } if path == "/x/y"));
    assert!(matches!(sm.err(delete("/a", None)), GroveError::NotEmpty { .. }));
    assert!(matches!(sm.err(delete("/", None)), GroveError::BadArguments { .. }));
    assert!(matches!(sm.err(create("/", "")), GroveError::NodeExists { .. }));
    assert!(matches!(sm.err(create("a/b", "")), GroveError::BadArguments { .. }));
    assert!(matches!(sm.err(create("/a/../b", "")), GroveError::BadArguments { .. }));
    let bad_ttl = Op::Create(CreateOp {
        acl: Vec::new(),
        path: "/t".into(),
        data: Bytes::new(),
        mode: CreateMode::PersistentWithTtl,
        ttl_ms: 0,
        create_parents: false,
    });
    assert!(matches!(sm.err(bad_ttl), GroveError::BadArguments { .. }));
}

#[test]
fn create_parents_builds_the_chain() {
    let mut sm = Sm::new();
    let op = Op::Create(CreateOp {
        acl: Vec::new(),
        path: "/a/b/c".into(),
        data: Bytes::from_static(b"x"),
        mode: CreateMode::Persistent,
        ttl_ms: 0,
        create_parents: true,
    });
    let a = sm.apply(op);
    a.result.unwrap();
    assert!(sm.stat("/a").is_some() && sm.stat("/a/b").is_some());
    assert_eq!(sm.stat("/a/b").unwrap().num_children, 1);
    let created: Vec<_> = a.events.iter().filter(|e| e.kind == EventKind::Created).map(|e| e.path.clone()).collect();
    assert_eq!(created, vec!["/a", "/a/b", "/a/b/c"]);
}

#[test]
fn ephemerals_belong_to_their_session() {
    let mut sm = Sm::new();
    let sid = open_session(&mut sm);
    assert_eq!(sid, command::session_id(sm.zxid, 0), "a session's id comes from the zxid that opened it");
    sm.ok(create("/app", ""));
    sm.ok(create_mode("/app/e", "", CreateMode::Ephemeral, sid));
    sm.ok(create_mode("/app/q-", "", CreateMode::EphemeralSequential, sid));
    assert_eq!(sm.stat("/app/e").unwrap().ephemeral_owner, sid);
    assert_eq!(sm.read().ephemerals(sid, "/app").unwrap(), vec!["/app/e", "/app/q-0000000001"]);
    assert!(matches!(sm.err(create("/app/e/child", "")), GroveError::NoChildrenForEphemerals { .. }));
    assert!(matches!(
        sm.err(create_mode("/app/x", "", CreateMode::Ephemeral, 999)),
        GroveError::SessionExpired { id: 999 }
    ));
    let closed = sm.apply(by(sid, Op::CloseSession));
    closed.result.unwrap();
    assert_eq!(closed.sessions, vec![SessionChange::Ended { id: sid }]);
    let deleted: Vec<_> =
        closed.events.iter().filter(|e| e.kind == EventKind::Deleted).map(|e| e.path.as_str()).collect();
    assert_eq!(deleted, vec!["/app/e", "/app/q-0000000001"]);
    assert!(sm.stat("/app/e").is_none());
    assert_eq!(sm.stat("/app").unwrap().num_children, 0);
    // Closing again: the session is known to have ended.
    assert!(matches!(sm.err(by(sid, Op::CloseSession)), GroveError::SessionExpired { .. }));
    assert!(matches!(sm.err(by(12345, Op::CloseSession)), GroveError::UnknownSession { .. }));
    assert!(matches!(sm.err(create_mode("/app/y", "", CreateMode::Ephemeral, sid)), GroveError::SessionExpired { .. }));
}

#[test]
fn expiry_deletes_ephemerals_of_listed_live_sessions_only() {
    let mut sm = Sm::new();
    let s1 = open_session(&mut sm);
    let s2 = open_session(&mut sm);
    sm.ok(create_mode("/e1", "", CreateMode::Ephemeral, s1));
    sm.ok(create_mode("/e2", "", CreateMode::Ephemeral, s2));
    let a = sm.apply(Op::ExpireSessions { session_ids: vec![s1, 424242] });
    a.result.unwrap();
    assert_eq!(a.sessions, vec![SessionChange::Ended { id: s1 }]);
    assert!(sm.stat("/e1").is_none());
    assert!(sm.stat("/e2").is_some());
}

#[test]
fn multi_is_all_or_nothing() {
    let mut sm = Sm::new();
    sm.ok(create("/a", "0"));
    let ops = vec![
        MultiOp::Create(CreateOp {
            acl: Vec::new(),
            path: "/a/new".into(),
            data: Bytes::new(),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
            create_parents: false,
        }),
        MultiOp::Set(SetOp { path: "/a".into(), data: Bytes::from_static(b"1"), version: Some(0) }),
        MultiOp::Check { path: "/a".into(), version: Some(0) },
    ];
    // The check sees the set made earlier in the same multi: version is 1, not 0.
    let e = sm.err(Op::Multi(ops.clone()));
    match e {
        GroveError::MultiFailed { index, error } => {
            assert_eq!(index, 2);
            assert!(matches!(*error, GroveError::BadVersion { actual: 1, .. }));
        }
        e => panic!("{e}"),
    }
    assert!(sm.stat("/a/new").is_none());
    let mut ok_ops = ops;
    ok_ops[2] = MultiOp::Check { path: "/a".into(), version: Some(1) };
    match sm.ok(Op::Multi(ok_ops)) {
        Outcome::Multi(r) => {
            assert!(matches!(&r[0], MultiOutcome::Created { path, .. } if path == "/a/new"));
            assert!(matches!(&r[1], MultiOutcome::Set { stat } if stat.version == 1));
            assert_eq!(r[2], MultiOutcome::Checked);
        }
        o => panic!("{o:?}"),
    }
    // All of a multi's changes share its zxid.
    let z = sm.zxid;
    assert_eq!(sm.stat("/a/new").unwrap().czxid, z);
    assert_eq!(sm.stat("/a").unwrap().mzxid, z);
}

#[test]
fn containers_and_ttl_nodes_are_reaped_only_when_they_qualify() {
    let mut sm = Sm::new();
    sm.ok(create_mode("/c", "", CreateMode::Container, 0));
    sm.ok(create_mode("/t", "", CreateMode::PersistentWithTtl, 0));
    let now = sm.time;
    // A container that never had children is not reaped; a fresh TTL node neither.
    assert!(sm.read().reapable(now, 10).unwrap().is_empty());
    sm.ok(create("/c/child", ""));
    sm.ok(delete("/c/child", None));
    assert_eq!(sm.read().reapable(now, 10).unwrap(), vec!["/c"]);
    assert_eq!(sm.read().reapable(now + 1000, 10).unwrap(), vec!["/c", "/t"]);
    // Apply re-checks: at `now` the TTL node does not qualify yet.
    sm.ok(Op::Reap { paths: vec!["/c".into(), "/t".into(), "/missing".into()] });
    assert!(sm.stat("/c").is_none());
    assert!(sm.stat("/t").is_some());
    sm.time += 1000;
    sm.ok(Op::Reap { paths: vec!["/t".into()] });
    assert!(sm.stat("/t").is_none());
}

#[test]
fn children_pages_and_descendant_counts() {
    let mut sm = Sm::new();
    sm.ok(create("/p", ""));
    for i in 0..5 {
        sm.ok(create(&format!("/p/c{i}"), ""));
    }
    sm.ok(create("/p/c1/deep", ""));
    sm.ok(create("/pz", ""));
    let r = sm.read();
    let page = r.children("/p", "", 2, Some(&crate::fsm::acl::Caller::default())).unwrap();
    assert_eq!(page.names, vec!["c0", "c1"]);
    assert_eq!(page.stats.len(), 2);
    assert_eq!(page.next.as_deref(), Some("c1"));
    let page = r.children("/p", "c1", 10, None).unwrap();
    assert_eq!(page.names, vec!["c2", "c3", "c4"]);
    assert_eq!(page.next, None);
    assert_eq!(r.count_descendants("/p").unwrap(), 6);
    assert_eq!(r.count_descendants("/").unwrap(), 8);
}

// ---- property test against a model ----

#[derive(Debug, Clone)]
enum MOp {
    Create(usize, bool, bool),
    Set(usize, Option<i32>),
    Delete(usize, Option<i32>),
    Multi(Vec<(usize, bool)>),
    Open,
    Close(usize),
}

const PATHS: [&str; 6] = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q"];

fn mop() -> impl Strategy<Value = MOp> {
    prop_oneof![
        4 => (0..PATHS.len(), any::<bool>(), any::<bool>()).prop_map(|(p, e, s)| MOp::Create(p, e, s)),
        3 => (0..PATHS.len(), prop::option::of(0..3i32)).prop_map(|(p, v)| MOp::Set(p, v)),
        3 => (0..PATHS.len(), prop::option::of(0..3i32)).prop_map(|(p, v)| MOp::Delete(p, v)),
        2 => prop::collection::vec((0..PATHS.len(), any::<bool>()), 1..4).prop_map(MOp::Multi),
        1 => Just(MOp::Open),
        1 => (0..3usize).prop_map(MOp::Close),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct MNode {
    data: Vec<u8>,
    version: i32,
    cversion: i32,
    owner: u64,
}

/// The model: a map of paths, ZooKeeper's rules written the obvious way.
#[derive(Debug, Clone, Default)]
struct Model {
    nodes: BTreeMap<String, MNode>,
    sessions: Vec<u64>,
}

impl Model {
    fn new() -> Model {
        let mut m = Model::default();
        m.nodes.insert("/".into(), MNode { data: vec![], version: 0, cversion: 0, owner: 0 });
        m
    }

    fn children(&self, p: &str) -> usize {
        self.nodes.keys().filter(|k| k.as_str() != "/" && path::parent(k) == p).count()
    }

    fn create(&mut self, p: &str, data: &[u8], owner: u64, seq: bool) -> Result<String, &'static str> {
        if owner != 0 && !self.sessions.contains(&owner) {
            return Err("SessionExpired");
        }
        let parent = path::parent(p).to_string();
        let Some(pn) = self.nodes.get(&parent) else { return Err("NoNode") };
        if pn.owner != 0 {
            return Err("NoChildrenForEphemerals");
        }
        let name = if seq { path::sequential(p, pn.cversion) } else { p.to_string() };
        if self.nodes.contains_key(&name) {
            return Err("NodeExists");
        }
        self.nodes.get_mut(&parent).unwrap().cversion += 1;
        self.nodes.insert(name.clone(), MNode { data: data.to_vec(), version: 0, cversion: 0, owner });
        Ok(name)
    }

    fn set(&mut self, p: &str, data: &[u8], v: Option<i32>) -> Result<(), &'static str> {
        let n = self.nodes.get_mut(p).ok_or("NoNode")?;
        if v.is_some_and(|v| v != n.version) {
            return Err("BadVersion");
        }
        n.version += 1;
        n.data = data.to_vec();
        Ok(())
    }

    fn delete(&mut self, p: &str, v: Option<i32>) -> Result<(), &'static str> {
        let n = self.nodes.get(p).ok_or("NoNode")?;
        if v.is_some_and(|v| v != n.version) {
            return Err("BadVersion");
        }
        if self.children(p) > 0 {
            return Err("NotEmpty");
        }
        self.nodes.remove(p);
        self.nodes.get_mut(path::parent(p)).unwrap().cversion += 1;
        Ok(())
    }

    fn end_session(&mut self, id: u64) {
        self.sessions.retain(|s| *s != id);
        let eph: Vec<String> = self.nodes.iter().filter(|(_, n)| n.owner == id).map(|(k, _)| k.clone()).collect();
        for p in eph {
            self.delete(&p, None).unwrap();
        }
    }
}

fn code(e: &GroveError) -> &'static str {
    match e {
        GroveError::NoNode { .. } => "NoNode",
        GroveError::NodeExists { .. } => "NodeExists",
        GroveError::BadVersion { .. } => "BadVersion",
        GroveError::NotEmpty { .. } => "NotEmpty",
        GroveError::NoChildrenForEphemerals { .. } => "NoChildrenForEphemerals",
        GroveError::SessionExpired { .. } => "SessionExpired",
        GroveError::MultiFailed { error, .. } => code(error),
        _ => "Other",
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn state_machine_matches_the_model(ops in prop::collection::vec(mop(), 1..40)) {
        let mut sm = Sm::new();
        let mut model = Model::new();
        for (i, op) in ops.iter().enumerate() {
            let data = format!("d{i}");
            let (got, want): (Result<(), &str>, Result<(), &str>) = match op {
                MOp::Create(p, eph, seq) => {
                    let owner = if *eph { model.sessions.last().copied().unwrap_or(77) } else { 0 };
                    let mode = match (eph, seq) {
                        (true, true) => CreateMode::EphemeralSequential,
                        (true, false) => CreateMode::Ephemeral,
                        (false, true) => CreateMode::PersistentSequential,
                        (false, false) => CreateMode::Persistent,
                    };
                    let a = sm.apply(create_mode(PATHS[*p], &data, mode, owner));
                    let want = model.create(PATHS[*p], data.as_bytes(), owner, *seq);
                    if let (Ok(Outcome::Created { path, .. }), Ok(name)) = (&a.result, &want) {
                        prop_assert_eq!(path, name);
                    }
                    (a.result.map(|_| ()).map_err(|e| code(&e)), want.map(|_| ()))
                }
                MOp::Set(p, v) => {
                    let a = sm.apply(set(PATHS[*p], &data, *v));
                    (a.result.map(|_| ()).map_err(|e| code(&e)), model.set(PATHS[*p], data.as_bytes(), *v))
                }
                MOp::Delete(p, v) => {
                    let a = sm.apply(delete(PATHS[*p], *v));
                    (a.result.map(|_| ()).map_err(|e| code(&e)), model.delete(PATHS[*p], *v))
                }
                MOp::Multi(items) => {
                    let ops: Vec<MultiOp> = items.iter().map(|(p, is_create)| if *is_create {
                        MultiOp::Create(CreateOp { acl: Vec::new(), path: PATHS[*p].into(), data: Bytes::copy_from_slice(data.as_bytes()), mode: CreateMode::Persistent, ttl_ms: 0, create_parents: false })
                    } else {
                        MultiOp::Delete(DeleteOp { path: PATHS[*p].into(), version: None })
                    }).collect();
                    let a = sm.apply(Op::Multi(ops));
                    let mut trial = model.clone();
                    let mut want = Ok(());
                    for (p, is_create) in items {
                        let r = if *is_create { trial.create(PATHS[*p], data.as_bytes(), 0, false).map(|_| ()) } else { trial.delete(PATHS[*p], None) };
                        if let Err(e) = r { want = Err(e); break; }
                    }
                    if want.is_ok() { model = trial; }
                    (a.result.map(|_| ()).map_err(|e| code(&e)), want)
                }
                MOp::Open => {
                    let id = open_session(&mut sm);
                    model.sessions.push(id);
                    (Ok(()), Ok(()))
                }
                MOp::Close(i) => {
                    let Some(&id) = model.sessions.get(*i) else { continue };
                    let a = sm.apply(Op::ExpireSessions { session_ids: vec![id] });
                    model.end_session(id);
                    (a.result.map(|_| ()).map_err(|e| code(&e)), Ok(()))
                }
            };
            prop_assert_eq!(got, want, "op {} {:?}", i, op);
        }
        let tree = sm.dump();
        prop_assert_eq!(tree.len(), model.nodes.len());
        for (p, n) in &model.nodes {
            let (data, stat) = tree.get(p).expect("node in the model is missing");
            prop_assert_eq!(&data[..], &n.data[..], "data of {}", p);
            prop_assert_eq!(stat.version, n.version, "version of {}", p);
            prop_assert_eq!(stat.cversion, n.cversion, "cversion of {}", p);
            prop_assert_eq!(stat.ephemeral_owner, n.owner, "owner of {}", p);
            prop_assert_eq!(stat.num_children as usize, model.children(p), "children of {}", p);
        }
    }
}

// ---- locks ----

mod lock_rules {
    use super::*;
    use crate::fsm::command::LockOp;
    use crate::fsm::locks::LockKind;

    fn lock(paths: &[&str], kind: LockKind, session: u64) -> Write {
        by(session, Op::Lock(lock_op(paths, kind)))
    }

    fn lock_op(paths: &[&str], kind: LockKind) -> LockOp {
        LockOp {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            kind,
            owner: String::new(),
            reentrant: false,
            permits: 1,
            max_leases: 0,
            data: Bytes::new(),
        }
    }

    /// (nodes, granted, token) of a lock request.
    fn acquire(sm: &mut Sm, w: Write) -> (Vec<String>, bool, u64) {
        match sm.ok(w) {
            Outcome::Locked { nodes, granted, token } => (nodes, granted, token),
            o => panic!("{o:?}"),
        }
    }

    fn granted(sm: &Sm, node: &str) -> Option<u64> {
        sm.read().lock(node).unwrap().filter(|r| r.granted).map(|r| r.token)
    }

    #[test]
    fn a_mutex_is_handed_over_in_fifo_order_with_increasing_tokens() {
        let mut sm = Sm::new();
        let (a, b, c) = (open_session(&mut sm), open_session(&mut sm), open_session(&mut sm));
        let (na, ga, ta) = acquire(&mut sm, lock(&["/l"], LockKind::Mutex, a));
        let (nb, gb, _) = acquire(&mut sm, lock(&["/l"], LockKind::Mutex, b));
        let (nc, gc, _) = acquire(&mut sm, lock(&["/l"], LockKind::Mutex, c));
        assert!(ga && !gb && !gc);
        assert_eq!(na[0], "/l/lock-0000000000");
        assert_eq!(sm.stat(&na[0]).unwrap().ephemeral_owner, a, "holders are the session's ephemeral nodes");
        // Release: the next in line gets it in the same entry.
        let released = sm.apply(by(a, Op::Unlock { node: na[0].clone() }));
        assert_eq!(released.result, Ok(Outcome::Unlocked { released: true }));
        let tb = granted(&sm, &nb[0]).expect("b holds");
        assert!(tb > ta, "tokens increase");
        assert_eq!(granted(&sm, &nc[0]), None);
        // Session expiry releases too.
        sm.ok(Op::ExpireSessions { session_ids: vec![b] });
        let tc = granted(&sm, &nc[0]).expect("c holds after b's session expired");
        assert!(tc > tb);
        // A released node is gone; releasing again says so.
        assert_eq!(
            sm.apply(by(a, Op::Unlock { node: na[0].clone() })).result,
            Ok(Outcome::Unlocked { released: false })
        );
        // The lock path is a container: emptied, it becomes reapable.
        sm.ok(by(c, Op::Unlock { node: nc[0].clone() }));
        assert_eq!(sm.read().reapable(sm.time, 10).unwrap(), vec!["/l"]);
    }

    #[test]
    fn fencing_checks_refuse_stale_holders() {
        let mut sm = Sm::new();
        let (a, b) = (open_session(&mut sm), open_session(&mut sm));
        sm.ok(create("/resource", "v0"));
        let (na, _, ta) = acquire(&mut sm, lock(&["/l"], LockKind::Mutex, a));
        let guarded = |token: u64, v: &str| {
            Op::Multi(vec![
                MultiOp::CheckFence { path: "/l".into(), token },
                MultiOp::Set(SetOp {
                    path: "/resource".into(),
                    data: Bytes::copy_from_slice(v.as_bytes()),
                    version: None,
                }),
            ])
        };
        sm.ok(guarded(ta, "by a"));
        acquire(&mut sm, lock(&["/l"], LockKind::Mutex, b));
        sm.ok(Op::ExpireSessions { session_ids: vec![a] });
        // a paused, lost its session, and comes back with its old token: refused.
        let e = sm.err(guarded(ta, "stale a"));
        assert!(
            matches!(e, GroveError::MultiFailed { index: 0, ref error } if matches!(**error, GroveError::Fenced { .. })),
            "{e}"
        );
        assert_eq!(&sm.read().data("/resource").unwrap().unwrap()[..], b"by a");
        let _ = na;
    }

    #[test]
    fn reentrant_holds_count_and_readers_never_upgrade() {
        let mut sm = Sm::new();
        let a = open_session(&mut sm);
        let op = by(a, Op::Lock(LockOp { reentrant: true, ..lock_op(&["/r"], LockKind::Mutex) }));
        let (n1, g1, t1) = acquire(&mut sm, op.clone());
        let (n2, g2, t2) = acquire(&mut sm, op.clone());
        assert!(g1 && g2);
        assert_eq!((n1.clone(), t1), (n2, t2), "the same hold, counted");
        sm.ok(by(a, Op::Unlock { node: n1[0].clone() }));
        assert!(granted(&sm, &n1[0]).is_some(), "one level released, still held");
        sm.ok(by(a, Op::Unlock { node: n1[0].clone() }));
        assert!(sm.stat(&n1[0]).is_none());
        // Another session's node cannot be released.
        let b = open_session(&mut sm);
        let (nb, _, _) = acquire(&mut sm, lock(&["/r"], LockKind::Mutex, b));
        assert!(matches!(sm.err(by(a, Op::Unlock { node: nb[0].clone() })), GroveError::BadArguments { .. }));

        let (_, gr, _) = acquire(&mut sm, lock(&["/rw"], LockKind::Read, a));
        assert!(gr);
        let e = sm.err(lock(&["/rw"], LockKind::Write, a));
        assert!(e.to_string().contains("cannot be upgraded"), "{e}");
        assert!(
            matches!(sm.err(lock(&["/rw"], LockKind::Mutex, a)), GroveError::BadArguments { .. }),
            "kinds do not mix"
        );
    }

    #[test]
    fn read_write_lock_rules() {
        let mut sm = Sm::new();
        let (a, b, c) = (open_session(&mut sm), open_session(&mut sm), open_session(&mut sm));
        let (w, gw, _) = acquire(&mut sm, lock(&["/rw"], LockKind::Write, a));
        let (r_own, g_own, _) = acquire(&mut sm, lock(&["/rw"], LockKind::Read, a));
        let (r_b, g_b, _) = acquire(&mut sm, lock(&["/rw"], LockKind::Read, b));
        assert!(gw && g_own, "a writer may take the read lock");
        assert!(!g_b, "others wait for the writer");
        assert!(w[0].contains("__WRIT__") && r_own[0].contains("__READ__"));
        sm.ok(by(a, Op::Unlock { node: w[0].clone() }));
        assert!(granted(&sm, &r_b[0]).is_some(), "readers share");
        // A writer waits for every reader, and later readers queue behind it.
        let (w_c, gwc, _) = acquire(&mut sm, lock(&["/rw"], LockKind::Write, c));
        let (r_late, _, _) = acquire(&mut sm, lock(&["/rw"], LockKind::Read, b));
        assert!(!gwc && granted(&sm, &r_late[0]).is_none());
        sm.ok(by(a, Op::Unlock { node: r_own[0].clone() }));
        sm.ok(by(b, Op::Unlock { node: r_b[0].clone() }));
        assert!(granted(&sm, &w_c[0]).is_some());
        assert!(granted(&sm, &r_late[0]).is_none());
    }

    #[test]
    fn semaphore_leases_and_multi_locks() {
        let mut sm = Sm::new();
        let (a, b, c) = (open_session(&mut sm), open_session(&mut sm), open_session(&mut sm));
        let sem = |s, n, max| {
            by(s, Op::Lock(LockOp { permits: n, max_leases: max, ..lock_op(&["/sem"], LockKind::Semaphore) }))
        };
        let (na, ga, _) = acquire(&mut sm, sem(a, 2, 3));
        assert!(ga);
        assert!(na[0].starts_with("/sem/leases/lease-"));
        let (nb, gb, _) = acquire(&mut sm, sem(b, 2, 3));
        let (_, gc, _) = acquire(&mut sm, sem(c, 1, 3));
        assert!(!gb && !gc, "c does not overtake b, though one lease is free");
        assert!(matches!(sm.err(sem(c, 1, 5)), GroveError::BadArguments { .. }), "sizes must agree");
        assert!(matches!(sm.err(sem(c, 9, 0)), GroveError::BadArguments { .. }));
        sm.ok(by(a, Op::Unlock { node: na[0].clone() }));
        assert!(granted(&sm, &nb[0]).is_some());

        // A multi-lock holds all its locks or none.
        let (x, gx, _) = acquire(&mut sm, lock(&["/m1"], LockKind::Mutex, a));
        let (m, gm, _) = acquire(&mut sm, lock(&["/m1", "/m2"], LockKind::Mutex, b));
        assert!(gx && !gm);
        assert_eq!(granted(&sm, &m[1]), None, "not /m2 alone while /m1 is taken");
        let (y, gy, _) = acquire(&mut sm, lock(&["/m2"], LockKind::Mutex, c));
        assert!(!gy, "queued behind the multi-lock");
        sm.ok(by(a, Op::Unlock { node: x[0].clone() }));
        let (t1, t2) = (granted(&sm, &m[0]).unwrap(), granted(&sm, &m[1]).unwrap());
        assert_eq!(t1, t2, "granted together");
        sm.ok(by(b, Op::Unlock { node: m[1].clone() }));
        assert!(sm.stat(&m[0]).is_none(), "releasing one releases the set");
        assert!(granted(&sm, &y[0]).is_some());
    }

    #[test]
    fn a_dead_session_cannot_queue() {
        let mut sm = Sm::new();
        assert!(matches!(sm.err(lock(&["/l"], LockKind::Mutex, 999)), GroveError::SessionExpired { .. }));
        assert!(matches!(sm.err(lock(&["/l"], LockKind::Mutex, 0)), GroveError::BadArguments { .. }));
        let a = open_session(&mut sm);
        assert!(matches!(sm.err(lock(&["relative"], LockKind::Mutex, a)), GroveError::BadArguments { .. }));
        assert!(matches!(sm.err(lock(&["/a", "/a"], LockKind::Mutex, a)), GroveError::BadArguments { .. }));
    }
}

// ---- quotas ----

mod quota_rules {
    use super::*;
    use crate::fsm::acl::{AclEntry, Caller, digest_id};
    use crate::fsm::quota::{LimitsChange, NONE, QuotaRecord};

    fn set_quota(path: &str, change: LimitsChange) -> Op {
        Op::SetQuota { path: path.into(), change }
    }

    fn hard_count(n: i64) -> LimitsChange {
        LimitsChange { count_hard: Some(n), ..Default::default() }
    }

    fn quota(sm: &Sm, path: &str) -> QuotaRecord {
        sm.read().quota(path).unwrap().unwrap_or_else(|| panic!("no quota on {path}"))
    }

    /// The usage a quota should show: nodes and bytes of the subtree, counted from scratch.
    fn real_usage(sm: &Sm, root: &str) -> (i64, i64) {
        let tree = sm.dump();
        let under: Vec<_> = tree.iter().filter(|(p, _)| path::is_under(p, root)).collect();
        (under.len() as i64, under.iter().map(|(_, (d, _))| d.len() as i64).sum())
    }

    #[test]
    fn a_quota_starts_from_the_subtrees_usage_and_follows_every_change() {
        let mut sm = Sm::new();
        sm.ok(create("/q", "12"));
        sm.ok(create("/q/a", "345"));
        sm.ok(create("/other", "zzzz"));
        let Outcome::Quota { record: Some(q) } = sm.ok(set_quota("/q", hard_count(4))) else { panic!() };
        assert_eq!((q.count, q.bytes), (2, 5));
        sm.ok(create("/q/b", "x"));
        sm.ok(set("/q/a", "3456789", None));
        sm.ok(delete("/q/b", None));
        let s = open_session(&mut sm);
        sm.ok(create_mode("/q/e", "ee", CreateMode::Ephemeral, s));
        assert_eq!(quota(&sm, "/q").count, 3);
        sm.ok(Op::ExpireSessions { session_ids: vec![s] });
        let q = quota(&sm, "/q");
        assert_eq!((q.count, q.bytes), real_usage(&sm, "/q"));
        assert_eq!((q.count, q.bytes), (2, 9));
        // Writes outside the subtree are not charged.
        sm.ok(set("/other", "zzzzzzzz", None));
        assert_eq!(quota(&sm, "/q").bytes, 9);
    }

    #[test]
    fn hard_limits_refuse_the_whole_write_and_soft_limits_do_not() {
        let mut sm = Sm::new();
        sm.ok(create("/q", ""));
        sm.ok(set_quota("/q", LimitsChange { count_hard: Some(3), bytes_hard: Some(10), ..Default::default() }));
        sm.ok(create("/q/a", "12345"));
        sm.ok(create("/q/b", ""));
        let e = sm.err(create("/q/c", ""));
        assert!(matches!(e, GroveError::QuotaExceeded { ref path, .. } if path == "/q/c"), "{e}");
        assert!(matches!(sm.err(set("/q/b", "123456", None)), GroveError::QuotaExceeded { .. }));
        sm.ok(set("/q/b", "12345", None));
        // A multi that crosses the limit halfway applies nothing.
        let e = sm.err(Op::Multi(vec![
            MultiOp::Delete(DeleteOp { path: "/q/b".into(), version: None }),
            MultiOp::Create(CreateOp { acl: Vec::new(), ..op_create("/q/c") }),
            MultiOp::Create(CreateOp { acl: Vec::new(), ..op_create("/q/d") }),
        ]));
        assert!(matches!(e, GroveError::MultiFailed { index: 2, .. }), "{e}");
        // create_parents charges every node it makes.
        sm.ok(delete("/q/b", None));
        let deep = CreateOp { create_parents: true, ..op_create("/q/x/y") };
        assert!(matches!(sm.err(Op::Create(deep)), GroveError::QuotaExceeded { .. }));
        // Soft limits warn and let writes through.
        sm.ok(set_quota("/q", LimitsChange { count_hard: Some(NONE), count_soft: Some(1), ..Default::default() }));
        sm.ok(create("/q/c", ""));
        sm.ok(create("/q/d", ""));
        assert_eq!(quota(&sm, "/q").count, 4);
    }

    fn op_create(path: &str) -> CreateOp {
        CreateOp {
            acl: Vec::new(),
            path: path.into(),
            data: Bytes::new(),
            mode: CreateMode::Persistent,
            ttl_ms: 0,
            create_parents: false,
        }
    }

    #[test]
    fn quotas_do_not_nest_need_a_node_and_go_with_it() {
        let mut sm = Sm::new();
        sm.ok(create("/a", ""));
        sm.ok(create("/a/b", ""));
        sm.ok(create("/a/b/c", ""));
        assert!(matches!(sm.err(set_quota("/missing", hard_count(1))), GroveError::NoNode { .. }));
        assert!(matches!(sm.err(set_quota("/", hard_count(1))), GroveError::BadArguments { .. }));
        sm.ok(set_quota("/a/b", hard_count(10)));
        let e = sm.err(set_quota("/a", hard_count(10)));
        assert!(e.to_string().contains("/a/b already has a quota"), "{e}");
        assert!(sm.err(set_quota("/a/b/c", hard_count(10))).to_string().contains("/a/b already has a quota"));
        // Changing an existing quota keeps what is not named; clearing the last limit removes it.
        sm.ok(set_quota("/a/b", LimitsChange { bytes_soft: Some(100), ..Default::default() }));
        assert_eq!(quota(&sm, "/a/b").limits.count_hard, 10);
        let Outcome::Quota { record } = sm.ok(set_quota(
            "/a/b",
            LimitsChange { count_hard: Some(NONE), bytes_soft: Some(NONE), ..Default::default() },
        )) else {
            panic!()
        };
        assert_eq!(record, None);
        assert!(sm.read().quota("/a/b").unwrap().is_none());
        assert!(matches!(sm.err(Op::DeleteQuota { path: "/a/b".into() }), GroveError::BadArguments { .. }));
        // Deleting the quota's node deletes the quota.
        sm.ok(set_quota("/a/b", hard_count(10)));
        sm.ok(delete("/a/b/c", None));
        sm.ok(delete("/a/b", None));
        assert!(sm.read().quotas(10).unwrap().is_empty());
        sm.ok(create("/a/b", ""));
        sm.ok(set_quota("/a/b", hard_count(10)));
        sm.ok(Op::DeleteQuota { path: "/a/b".into() });
        assert!(sm.read().quota("/a/b").unwrap().is_none());
    }

    #[test]
    fn changing_a_quota_needs_admin_on_the_root() {
        let mut sm = Sm::new();
        sm.ok(create("/q", ""));
        let admin = digest_id("ops", "pw");
        sm.ok(Write::by_server(Op::SetAcl {
            path: "/".into(),
            acl: vec![AclEntry::new(crate::fsm::acl::ALL, "digest", &admin)],
            version: None,
        }));
        assert!(matches!(sm.err(set_quota("/q", hard_count(1))), GroveError::NoAuth { .. }), "anonymous");
        let ops = Caller { ids: vec![("digest".into(), admin)], ..Caller::default() };
        sm.ok(Write::new(ops.clone(), 0, set_quota("/q", hard_count(1))));
        assert!(matches!(sm.err(Op::DeleteQuota { path: "/q".into() }), GroveError::NoAuth { .. }));
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever happens in the subtree, a quota's usage is the subtree's real size.
        #[test]
        fn usage_always_equals_the_subtree(ops in prop::collection::vec(mop(), 1..40)) {
            let mut sm = Sm::new();
            sm.ok(create("/a", ""));
            let first_life = sm.stat("/a").unwrap().czxid;
            sm.ok(set_quota("/a", LimitsChange { count_soft: Some(3), ..Default::default() }));
            let mut sessions = vec![];
            let mut node_gone = false;
            for (i, op) in ops.iter().enumerate() {
                let data = "x".repeat(i % 5);
                match op {
                    MOp::Create(p, eph, seq) => {
                        let owner = if *eph { sessions.last().copied().unwrap_or(77) } else { 0 };
                        let mode = match (eph, seq) {
                            (true, true) => CreateMode::EphemeralSequential,
                            (true, false) => CreateMode::Ephemeral,
                            (false, true) => CreateMode::PersistentSequential,
                            (false, false) => CreateMode::Persistent,
                        };
                        sm.apply(create_mode(PATHS[*p], &data, mode, owner));
                    }
                    MOp::Set(p, v) => { sm.apply(set(PATHS[*p], &data, *v)); }
                    MOp::Delete(p, v) => { sm.apply(delete(PATHS[*p], *v)); }
                    MOp::Multi(items) => {
                        let ops = items.iter().map(|(p, is_create)| if *is_create {
                            MultiOp::Create(CreateOp { data: Bytes::copy_from_slice(data.as_bytes()), ..op_create(PATHS[*p]) })
                        } else {
                            MultiOp::Delete(DeleteOp { path: PATHS[*p].into(), version: None })
                        }).collect();
                        sm.apply(Op::Multi(ops));
                    }
                    MOp::Open => sessions.push(open_session(&mut sm)),
                    MOp::Close(i) => {
                        if let Some(&id) = sessions.get(*i) {
                            sm.apply(Op::ExpireSessions { session_ids: vec![id] });
                        }
                    }
                }
                // The quota lives exactly as long as its node's first life (a multi may
                // delete and re-create it in one step: a new czxid).
                node_gone |= sm.stat("/a").is_none_or(|st| st.czxid != first_life);
                match sm.read().quota("/a").unwrap() {
                    Some(q) => {
                        prop_assert!(!node_gone, "the quota outlived its node");
                        prop_assert_eq!((q.count, q.bytes), real_usage(&sm, "/a"), "after op {} {:?}", i, op);
                    }
                    None => prop_assert!(node_gone, "the quota went without its node"),
                }
            }
        }
    }
}

mod request_records {
    use super::*;
    use crate::fsm::apply::requests::MAX_PER_CALLER;

    fn with_id(w: Write, id: command::RequestId) -> Write {
        Write { request_id: id, ..w }
    }

    fn records(sm: &Sm) -> u64 {
        sm.read().request_records().unwrap()
    }

    #[test]
    fn refused_writes_leave_no_record_and_their_retry_is_applied() {
        let mut sm = Sm::new();
        let id = command::new_request_id(sm.time + 3_600_000, 1);
        // Far-future ids, missing nodes: nothing to remember.
        for _ in 0..100 {
            sm.err(with_id(set("/missing", "x", None), id));
        }
        assert_eq!(records(&sm), 0);
        // Once the node exists, the same id applies (the first attempts changed nothing).
        sm.ok(create("/missing", ""));
        sm.ok(with_id(set("/missing", "now", None), id));
        assert_eq!(&sm.read().data("/missing").unwrap().unwrap()[..], b"now");
        assert_eq!(records(&sm), 1);
    }

    #[test]
    fn retention_follows_the_entry_clock_not_the_id() {
        let mut sm = Sm::new();
        sm.ok(create("/c", ""));
        // A client whose clock is 20 minutes behind still gets its retry answered.
        let behind = command::new_request_id(sm.time - 20 * 60 * 1000, 2);
        let first = sm.apply(with_id(create("/c/s-", ""), behind)).result;
        let retry = sm.apply(with_id(create("/c/s-", ""), behind)).result;
        assert_eq!(first, retry, "answered as the first time");
        assert_eq!(sm.read().children("/c", "", 10, None).unwrap().names.len(), 1);
        // One whose clock is an hour ahead is forgotten after the retention all the same.
        let ahead = command::new_request_id(sm.time + 3_600_000, 3);
        sm.ok(with_id(set("/c", "1", None), ahead));
        sm.time += command::REQUEST_RETENTION_MS + 1;
        sm.ok(with_id(set("/c", "2", None), command::new_request_id(sm.time, 4)));
        assert_eq!(records(&sm), 1, "both older records were pruned by the next identified write");
        // And entry time never goes back, whichever leader stamps it.
        let mtime = sm.stat("/c").unwrap().mtime;
        sm.time -= 600_000;
        sm.ok(set("/c", "3", None));
        assert_eq!(sm.stat("/c").unwrap().mtime, mtime, "a leader whose clock is behind stamps the latest time");
    }

    #[test]
    fn one_caller_evicts_only_its_own_records_and_the_total_is_bounded() {
        let mut sm = Sm::new();
        sm.ok(create("/p", ""));
        let other = Caller { ids: vec![("ip".into(), "10.0.0.9".into())], ..Caller::default() };
        let theirs = command::new_request_id(sm.time, 77);
        sm.ok(Write::new(other.clone(), theirs, set("/p", "theirs", None).op));
        let hostile = Caller { ids: vec![("ip".into(), "10.0.0.66".into())], ..Caller::default() };
        let mut n = 0u64;
        while n < MAX_PER_CALLER + 500 {
            let batch: Vec<Write> = (0..1000)
                .map(|_| {
                    n += 1;
                    Write::new(hostile.clone(), command::new_request_id(sm.time, n), set("/p", "x", None).op)
                })
                .collect();
            for r in sm.apply_batch(batch).results {
                r.unwrap();
            }
        }
        assert_eq!(records(&sm), MAX_PER_CALLER + 1, "the hostile caller's cap, plus the other's record");
        // The other caller's retry is still answered from its record (no second apply).
        let v = sm.stat("/p").unwrap().version;
        sm.ok(Write::new(other, theirs, set("/p", "theirs", None).op));
        assert_eq!(sm.stat("/p").unwrap().version, v);
    }
}

mod members {
    use super::*;

    fn register(sm: &mut Sm, id: u64, incarnation: u64) {
        sm.ok(Write::by_server(Op::RegisterMember { id, incarnation, boot: 1, cluster_id: 42 }));
    }

    fn membership(sm: &mut Sm, ids: &[u64]) {
        let txn = sm.db.begin_write().unwrap();
        apply::forget_members(&mut WriteTables::open(&txn).unwrap(), ids).unwrap();
        txn.commit().unwrap();
    }

    /// A removed member's registration is forgotten, and one of its registrations that
    /// commits after the removal is ignored: its replacement (`--join`, a new data
    /// directory) must find the id unregistered.
    #[test]
    fn registrations_of_removed_members_are_forgotten_and_ignored() {
        let mut sm = Sm::new();
        register(&mut sm, 1, 0xa); // before any membership is applied: recorded
        membership(&mut sm, &[1, 2]);
        register(&mut sm, 2, 0xb);
        assert_eq!(sm.read().cluster_id().unwrap(), 42);
        assert_eq!(sm.read().member(2).unwrap().map(|m| m.incarnation), Some(0xb));
        membership(&mut sm, &[1]);
        assert_eq!(sm.read().member(2).unwrap(), None, "forgotten with its removal");
        register(&mut sm, 2, 0xb); // proposed before the removal, committed after
        assert_eq!(sm.read().member(2).unwrap(), None, "a removed member does not register");
        membership(&mut sm, &[1, 2]);
        register(&mut sm, 2, 0xc);
        assert_eq!(sm.read().member(2).unwrap().map(|m| m.incarnation), Some(0xc), "added back, it registers anew");
        assert_eq!(sm.read().member(1).unwrap().map(|m| m.incarnation), Some(0xa));
    }
}
