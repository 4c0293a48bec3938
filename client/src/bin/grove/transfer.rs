//! Moving trees into Grove: from a live ZooKeeper (`import zookeeper`) or from Grove's own
//! JSON lines (`export`, `import FILE`).
//!
//! An import is planned before it writes: every node of the source is compared with what
//! the target already holds. A node that exists with the same data is left as it is (so a
//! re-run changes nothing), one that exists with other data is a conflict, and any conflict
//! refuses the whole import before anything is written. Nodes are created parents first
//! with an open ACL (a restrictive ACL on a parent would refuse its children), then each
//! node's own ACL is set. A parent's sequence counter (ZooKeeper's and
//! Grove's: its `cversion`) is advanced to at least the source's, so the next sequential
//! name continues after the imported ones: only creating and deleting a child advances it,
//! so a marker child is created and deleted in one transaction as many times as needed.

use std::time::Duration;

use base64::Engine;
use grove_client::acl::{self, Acl};
use grove_client::{Client, CreateMode, CreateOptions, Error, Op};
use serde::{Deserialize, Serialize};

/// How a node lives, as far as an import can carry it (ephemerals never move: their
/// sessions stay behind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Persistent,
    Container,
    Ttl,
}

/// One node of a tree being moved: a line of `grove export`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Its path relative to the exported root ("/" for the root itself).
    pub path: String,
    /// Base64.
    pub data: String,
    /// zkCli's notation: `scheme:id:perms`.
    pub acl: Vec<String>,
    pub mode: Mode,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<i64>,
    /// The sequence counter (children created and deleted so far).
    pub cversion: i32,
}

impl Record {
    pub fn new(path: String, data: &[u8], acl: &[Acl], mode: Mode, ttl_ms: Option<i64>, cversion: i32) -> Record {
        Record {
            path,
            data: base64::engine::general_purpose::STANDARD.encode(data),
            acl: acl.iter().map(acl_text).collect(),
            mode,
            ttl_ms,
            cversion,
        }
    }

    fn bytes(&self) -> Result<Vec<u8>, Error> {
        base64::engine::general_purpose::STANDARD
            .decode(&self.data)
            .map_err(|e| Error::Client(format!("{}: data is not base64: {e}", self.path)))
    }

    fn acl(&self) -> Result<Vec<Acl>, Error> {
        let mut out = Vec::new();
        for text in &self.acl {
            out.extend(acl::parse(text).map_err(|e| Error::Client(format!("{}: ACL {text:?}: {e}", self.path)))?);
        }
        Ok(out)
    }
}

fn acl_text(a: &Acl) -> String {
    format!("{}:{}:{}", a.scheme, a.id, acl::perms_text(a.perms))
}

/// Where a source path lands: `to` joined with the path relative to the source's root.
pub fn target(to: &str, relative: &str) -> String {
    match (to.trim_end_matches('/'), relative) {
        ("", r) => r.to_string(),
        (t, "/") => t.to_string(),
        (t, r) => format!("{t}{r}"),
    }
}

/// What an import will do with one node.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Create,
    Unchanged,
    /// There with the same data and mode, but still the open ACL an import that stopped
    /// part-way created it with: the source's ACL is set.
    SetAcl,
    Conflict(String),
}

/// An import, planned.
pub struct Plan {
    to: String,
    records: Vec<(Record, Step)>,
    /// Skipped, with why (ephemerals, ZooKeeper's own /zookeeper).
    pub skipped: Vec<(String, String)>,
}

/// What an import did.
pub struct Done {
    pub created: usize,
    pub unchanged: usize,
    pub counters_advanced: usize,
    pub acls_set: usize,
    pub took: Duration,
}

/// ACL schemes Grove checks (others would be refused when set, after the nodes exist).
const SCHEMES: &[&str] = &["world", "digest", "ip", "x509"];

/// Puts the records in tree order and checks each one before anything is written: a
/// record that cannot be imported refuses the whole import, naming it.
fn check(records: &mut [Record]) -> Result<(), Error> {
    records.sort_by(|a, b| tree_order(&a.path, &b.path));
    let mut problems = Vec::new();
    for (i, r) in records.iter().enumerate() {
        if i > 0 && records[i - 1].path == r.path {
            problems.push(format!("{} appears twice", r.path));
        }
        if !r.path.starts_with('/') || (r.path.len() > 1 && (r.path.ends_with('/') || r.path.contains("//"))) {
            problems.push(format!("{:?} is not a path", r.path));
        }
        if let Err(e) = r.bytes() {
            problems.push(e.to_string());
        }
        match r.acl() {
            Err(e) => problems.push(e.to_string()),
            Ok(acl) => {
                for a in acl {
                    if !SCHEMES.contains(&a.scheme.as_str()) {
                        problems.push(format!("{}: ACL scheme {:?} is not one Grove checks", r.path, a.scheme));
                    } else if a.scheme == "digest" && a.id.ends_with(":x") {
                        problems.push(format!(
                            "{}: the digest ACL of {:?} was read masked (`:x`): read the source as a user with ADMIN \
                             on it (or the super user)",
                            r.path,
                            a.id.trim_end_matches(":x")
                        ));
                    }
                }
            }
        }
        if r.mode == Mode::Ttl && r.ttl_ms.is_none_or(|t| t <= 0) {
            problems.push(format!("{}: a TTL node needs a positive ttl_ms", r.path));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let shown: Vec<&str> = problems.iter().take(10).map(String::as_str).collect();
    Err(Error::BadArguments {
        message: format!("refusing to import ({} problems, nothing written): {}", problems.len(), shown.join("; ")),
    })
}

/// ACLs as sets (the server keeps one of each entry; an empty one is open to everyone).
fn same_acl(a: &[Acl], b: &[Acl]) -> bool {
    let norm = |acl: &[Acl]| {
        let mut v: Vec<(String, String, u32)> = if acl.is_empty() {
            vec![("world".into(), "anyone".into(), acl::perms::ALL)]
        } else {
            acl.iter().map(|a| (a.scheme.clone(), a.id.clone(), a.perms)).collect()
        };
        v.sort();
        v.dedup();
        v
    };
    norm(a) == norm(b)
}

fn mode_of(stat: &grove_client::Stat) -> Mode {
    match stat.mode() {
        CreateMode::Container => Mode::Container,
        CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl => Mode::Ttl,
        _ => Mode::Persistent,
    }
}

/// Compares the source's records with what the target holds.
pub async fn plan(
    c: &Client,
    to: &str,
    mut records: Vec<Record>,
    skipped: Vec<(String, String)>,
) -> Result<Plan, Error> {
    check(&mut records)?;
    let mut planned = Vec::with_capacity(records.len());
    // Into a path that does not exist yet, everything is new: no node needs comparing.
    let root = target(to, "/");
    let fresh = root != "/" && c.exists(&root).await?.is_none();
    let unreadable = |path: &str| {
        Error::Client(format!(
            "{path} exists and its ACL does not let this client read it (and its ACL) to compare: run the import \
             with `grove --auth USER:PASSWORD` as a user it grants READ and ADMIN (nothing was written)"
        ))
    };
    for r in records {
        let path = target(to, &r.path);
        if fresh {
            planned.push((r, Step::Create));
            continue;
        }
        let step = match c.get(&path).await {
            // The root's data and ACL belong to the target cluster: never changed.
            Ok(_) if path == "/" => Step::Unchanged,
            Ok((data, stat)) if data[..] != r.bytes()?[..] => {
                Step::Conflict(format!("{path} exists with other data (version {})", stat.version))
            }
            Ok((_, stat)) if mode_of(&stat) != r.mode => {
                Step::Conflict(format!("{path} exists as a {:?} node, the source's is {:?}", mode_of(&stat), r.mode))
            }
            Ok(_) => match c.get_acl(&path).await {
                // Without ADMIN on a node, the server shows its digest ACLs masked: they
                // cannot be compared.
                Ok((acl, _)) if acl.iter().any(|a| a.scheme == "digest" && a.id.ends_with(":x")) => {
                    return Err(unreadable(&path));
                }
                Ok((acl, _)) if same_acl(&acl, &r.acl()?) => Step::Unchanged,
                Ok((acl, _)) if same_acl(&acl, &[]) => Step::SetAcl,
                Ok(_) => Step::Conflict(format!("{path} exists with another ACL")),
                Err(Error::NoAuth { .. }) => return Err(unreadable(&path)),
                Err(e) => return Err(e),
            },
            Err(Error::NoNode { .. }) => Step::Create,
            Err(Error::NoAuth { .. }) => return Err(unreadable(&path)),
            Err(e) => return Err(e),
        };
        planned.push((r, step));
    }
    Ok(Plan { to: to.to_string(), records: planned, skipped })
}

impl Plan {
    pub fn conflicts(&self) -> Vec<&str> {
        self.records
            .iter()
            .filter_map(|(_, s)| match s {
                Step::Conflict(why) => Some(why.as_str()),
                _ => None,
            })
            .collect()
    }

    /// One line per node, for a dry run.
    pub fn lines(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .records
            .iter()
            .map(|(r, step)| {
                let path = target(&self.to, &r.path);
                match step {
                    Step::Create => {
                        let mode = match (r.mode, r.ttl_ms) {
                            (Mode::Ttl, Some(t)) => format!("ttl {t} ms"),
                            (m, _) => format!("{m:?}").to_lowercase(),
                        };
                        let bytes = r.bytes().map(|b| b.len()).unwrap_or(0);
                        format!("create {path} ({mode}, {bytes} bytes, acl {})", r.acl.join(" "))
                    }
                    Step::Unchanged => format!("unchanged {path}"),
                    Step::SetAcl => format!("set acl {path} ({})", r.acl.join(" ")),
                    Step::Conflict(why) => format!("conflict {why}"),
                }
            })
            .collect();
        out.extend(self.skipped.iter().map(|(p, why)| format!("skip {p} ({why})")));
        out
    }

    /// (to create, unchanged, ACLs to set).
    pub fn counts(&self) -> (usize, usize, usize) {
        let n = |want: &Step| self.records.iter().filter(|(_, s)| s == want).count();
        (n(&Step::Create), n(&Step::Unchanged), n(&Step::SetAcl))
    }

    /// Writes the plan: creates, then sequence counters, then ACLs. A failure part-way
    /// says what was written; running the same import again finishes it (nodes left with
    /// an open ACL are planned as `SetAcl`).
    pub async fn apply(&self, c: &Client) -> Result<Done, Error> {
        let started = std::time::Instant::now();
        if let Some(first) = self.conflicts().first() {
            return Err(Error::Client(format!("refusing to import: {first}")));
        }
        let mut created = 0;
        let result = self.write(c, &mut created).await;
        match result {
            Ok((counters_advanced, acls_set)) => {
                let (_, unchanged, _) = self.counts();
                Ok(Done { created, unchanged, counters_advanced, acls_set, took: started.elapsed() })
            }
            Err(e) if created > 0 => Err(Error::Client(format!(
                "{e}; {created} nodes were created before this, with an open ACL until the import finishes: run the \
                 same import again to finish it"
            ))),
            Err(e) => Err(e),
        }
    }

    async fn write(&self, c: &Client, created: &mut usize) -> Result<(usize, usize), Error> {
        let open = vec![acl::entry("world", "anyone", acl::perms::ALL)];
        // In tree order, parents come before their children, so creates go in transactions
        // in order (bounded in count and bytes); the first (the import's root, whose parents
        // may not exist yet) on its own with its parents.
        let mut batch = Batch::default();
        for (r, step) in &self.records {
            if *step != Step::Create {
                continue;
            }
            let path = target(&self.to, &r.path);
            let (mode, ttl) = match r.mode {
                Mode::Persistent => (CreateMode::Persistent, None),
                Mode::Container => (CreateMode::Container, None),
                Mode::Ttl => (CreateMode::PersistentWithTtl, r.ttl_ms.map(|t| Duration::from_millis(t as u64))),
            };
            let options = CreateOptions { mode, ttl, create_parents: *created == 0, acl: open.clone() };
            let data = r.bytes()?;
            if *created == 0 {
                c.create(&path, data, &options).await?;
                *created += 1;
            } else {
                batch.push(Op::Create { path, data: data.into(), options });
                if batch.full() {
                    *created += batch.run(c).await?;
                }
            }
        }
        *created += batch.run(c).await?;
        let mut counters_advanced = 0;
        let parents: std::collections::HashSet<&str> =
            self.records.iter().filter_map(|(r, _)| r.path.rsplit_once('/').map(|(p, _)| p)).collect();
        for (r, step) in &self.records {
            // A container none of whose children came along (they were ephemerals) would be
            // reaped once its counter moved: left as it is.
            let parent_key = if r.path == "/" { "" } else { r.path.as_str() };
            let childless = !parents.contains(parent_key);
            if (r.mode == Mode::Container && childless) || matches!(step, Step::Conflict(_)) {
                continue;
            }
            if advance_counter(c, &target(&self.to, &r.path), r.cversion).await? {
                counters_advanced += 1;
            }
        }
        let mut acls_set = 0;
        for (r, step) in &self.records {
            let path = target(&self.to, &r.path);
            let acl = r.acl()?;
            let needed = match step {
                Step::Create => !same_acl(&acl, &open),
                Step::SetAcl => path != "/",
                _ => false,
            };
            if needed {
                c.set_acl(&path, acl, None).await?;
                acls_set += 1;
            }
        }
        Ok((counters_advanced, acls_set))
    }
}

/// Creates per transaction, and bytes of data.
const CREATES_PER_MULTI: usize = 100;
const BYTES_PER_MULTI: usize = 1 << 20;

#[derive(Default)]
struct Batch {
    ops: Vec<Op>,
    bytes: usize,
}

impl Batch {
    fn push(&mut self, op: Op) {
        if let Op::Create { data, path, .. } = &op {
            self.bytes += data.len() + path.len();
        }
        self.ops.push(op);
    }

    fn full(&self) -> bool {
        self.ops.len() >= CREATES_PER_MULTI || self.bytes >= BYTES_PER_MULTI
    }

    /// Runs what is batched as one transaction; how many nodes it created.
    async fn run(&mut self, c: &Client) -> Result<usize, Error> {
        if self.ops.is_empty() {
            return Ok(0);
        }
        let ops = std::mem::take(&mut self.ops);
        self.bytes = 0;
        match c.multi(&ops).await {
            Ok(Ok(_)) => Ok(ops.len()),
            Ok(Err((at, e))) => {
                let path = match &ops[at] {
                    Op::Create { path, .. } => path.as_str(),
                    _ => "",
                };
                Err(Error::Client(format!(
                    "creating {path}: {e} (that transaction of {} creates was not applied)",
                    ops.len()
                )))
            }
            Err(e) => Err(Error::Client(format!("a transaction of {} creates failed: {e}", ops.len()))),
        }
    }
}

/// Most marker create+delete pairs in one transaction.
const PAIRS_PER_MULTI: i32 = 100;
const MARKER: &str = ".grove-import-sequence";

/// Raises `path`'s sequence counter to at least `wanted`; true if it had to.
async fn advance_counter(c: &Client, path: &str, wanted: i32) -> Result<bool, Error> {
    let Some(stat) = c.exists(path).await? else { return Ok(false) };
    if stat.cversion >= wanted {
        return Ok(false);
    }
    let marker = crate::format::join(path, MARKER);
    let mut left = ((i64::from(wanted) - i64::from(stat.cversion) + 1) / 2) as i32;
    while left > 0 {
        let n = left.min(PAIRS_PER_MULTI);
        let mut ops = Vec::with_capacity(2 * n as usize);
        for _ in 0..n {
            ops.push(Op::Create { path: marker.clone(), data: Default::default(), options: CreateOptions::default() });
            ops.push(Op::Delete { path: marker.clone(), version: None });
        }
        if let Err((at, e)) = c.multi(&ops).await? {
            return Err(Error::Client(format!("advancing the sequence counter of {path} (operation {at}): {e}")));
        }
        left -= n;
    }
    Ok(true)
}

/// Reads `grove export` lines.
pub fn parse_lines(text: &str) -> Result<Vec<Record>, Error> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let r: Record = serde_json::from_str(line)
            .map_err(|e| Error::Client(format!("line {}: not an export record: {e}", n + 1)))?;
        if !r.path.starts_with('/') {
            return Err(Error::Client(format!("line {}: path {:?} does not start with /", n + 1, r.path)));
        }
        out.push(r);
    }
    Ok(out)
}

/// Nodes read at once by `export` and the ZooKeeper walk.
pub const READ_AHEAD: usize = 32;

/// One node as `export` reads it.
async fn read_node(
    c: &Client,
    path: String,
) -> Result<(String, bytes::Bytes, grove_client::Stat, Vec<Acl>, Vec<String>), Error> {
    let (data, stat) = c.get(&path).await?;
    let (acl, _) = c.get_acl(&path).await?;
    let children = if stat.num_children > 0 { c.children(&path).await? } else { Vec::new() };
    Ok((path, data, stat, acl, children))
}

/// Path order with parents first: by components, so `/a/b` comes before `/a-b`.
fn tree_order(a: &str, b: &str) -> std::cmp::Ordering {
    a.split('/').cmp(b.split('/'))
}

/// Reads Grove's tree under `root` as records, parents first (`grove export`), a level at
/// a time with `READ_AHEAD` nodes in flight.
pub async fn export(c: &Client, root: &str) -> Result<(Vec<Record>, Vec<(String, String)>), Error> {
    use futures::StreamExt;
    let base = root.trim_end_matches('/');
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    let mut level = vec![root.to_string()];
    while !level.is_empty() {
        let read: Vec<_> =
            futures::stream::iter(level.drain(..).map(|p| read_node(c, p))).buffered(READ_AHEAD).collect().await;
        for node in read {
            let (path, data, stat, acl, children) = match node {
                Ok(n) => n,
                Err(e @ Error::NoNode { .. }) if records.is_empty() && skipped.is_empty() => return Err(e),
                // Deleted while the export ran: not part of the tree any more.
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            };
            if stat.ephemeral_owner != 0 {
                skipped.push((path, format!("ephemeral of session 0x{:x}", stat.ephemeral_owner)));
                continue;
            }
            let relative = match path.strip_prefix(base) {
                Some("") | None => "/".to_string(),
                Some(r) => r.to_string(),
            };
            let (mode, ttl) = match stat.mode() {
                CreateMode::Container => (Mode::Container, None),
                CreateMode::PersistentWithTtl | CreateMode::PersistentSequentialWithTtl => {
                    (Mode::Ttl, Some(stat.ttl_ms))
                }
                _ => (Mode::Persistent, None),
            };
            records.push(Record::new(relative, &data, &acl, mode, ttl, stat.cversion));
            level.extend(children.into_iter().map(|child| crate::format::join(&path, &child)));
        }
    }
    records.sort_by(|a, b| tree_order(&a.path, &b.path));
    Ok((records, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_order_puts_parents_before_children_and_siblings_in_name_order() {
        let mut paths = vec!["/a-b", "/a/b", "/", "/a", "/b", "/a/b/c"];
        paths.sort_by(|a, b| tree_order(a, b));
        assert_eq!(paths, ["/", "/a", "/a/b", "/a/b/c", "/a-b", "/b"]);
    }

    #[test]
    fn targets_join_the_prefix_and_the_relative_path() {
        assert_eq!(target("/", "/a/b"), "/a/b");
        assert_eq!(target("", "/a"), "/a");
        assert_eq!(target("/imported", "/"), "/imported");
        assert_eq!(target("/imported/", "/a"), "/imported/a");
    }

    #[test]
    fn export_lines_round_trip_and_bad_lines_are_named() {
        let acl = [acl::entry("world", "anyone", acl::perms::READ)];
        let r = Record::new("/a".into(), b"\x00bin", &acl, Mode::Ttl, Some(5000), 3);
        let line = serde_json::to_string(&r).unwrap();
        assert_eq!(
            line,
            r#"{"path":"/a","data":"AGJpbg==","acl":["world:anyone:r"],"mode":"ttl","ttl_ms":5000,"cversion":3}"#
        );
        assert_eq!(parse_lines(&format!("{line}\n\n")).unwrap(), vec![r.clone()]);
        assert_eq!(r.bytes().unwrap(), b"\x00bin");
        let err = parse_lines(&format!("{line}\n{{\"path\":1}}\n")).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
        let err = parse_lines(&line.replace("\"/a\"", "\"a\"")).unwrap_err();
        assert!(err.to_string().contains("does not start with /"), "{err}");
    }
}
