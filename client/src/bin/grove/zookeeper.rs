//! Reading a live ZooKeeper tree for `grove import zookeeper`, with a real ZooKeeper client
//! (the `zookeeper-client` crate, ZooKeeper's own wire protocol).
//!
//! ZooKeeper keeps a node's kind in its `ephemeralOwner`, but tells clients 0 for
//! containers and TTL nodes (`DataNode.copyStat` hides extended types), so over the client
//! protocol they look persistent: the operator names them (`--mode PATH=container`,
//! `--mode PATH=ttl:MS`). Any other non-zero owner is a session: an ephemeral. (Decoding
//! the extended encoding instead would misread the sessions of a server with myid 255,
//! whose ids start with the byte that marks TTL nodes.)

use grove_client::Error;
use grove_client::acl::{self, Acl};
use zookeeper_client as zk;

use crate::transfer::{Mode, READ_AHEAD, Record};

/// A node's mode from its stat's owner: None for an ephemeral.
fn kind(owner: i64) -> Option<(Mode, Option<i64>)> {
    (owner == 0).then_some((Mode::Persistent, None))
}

fn zk_err(what: &str, e: zk::Error) -> Error {
    Error::Client(format!("ZooKeeper: {what}: {e}"))
}

/// Modes named on the command line, by ZooKeeper path.
pub type Modes = std::collections::HashMap<String, (Mode, Option<i64>)>;

/// Parses `--mode PATH=container` and `--mode PATH=ttl:MS`.
pub fn parse_modes(given: &[String]) -> Result<Modes, Error> {
    let mut modes = Modes::new();
    for g in given {
        let bad = || Error::BadArguments {
            message: format!("--mode {g:?}: expected PATH=container or PATH=ttl:MILLISECONDS"),
        };
        let (path, mode) = g.rsplit_once('=').ok_or_else(bad)?;
        if !path.starts_with('/') {
            return Err(bad());
        }
        let mode = match mode {
            "container" => (Mode::Container, None),
            m => match m.strip_prefix("ttl:").and_then(|t| t.parse::<i64>().ok()) {
                Some(ms) if ms > 0 => (Mode::Ttl, Some(ms)),
                _ => return Err(bad()),
            },
        };
        modes.insert(path.to_string(), mode);
    }
    Ok(modes)
}

/// `HOST:PORT[,HOST:PORT...][/path]`: the servers and the subtree to read.
pub fn split_source(from: &str) -> (&str, &str) {
    match from.find('/') {
        Some(i) if i > 0 => (&from[..i], &from[i..]),
        _ => (from, "/"),
    }
}

fn grove_acl(acl: &[zk::Acl]) -> Vec<Acl> {
    let bits = |p: zk::Permission| {
        [
            (zk::Permission::READ, acl::perms::READ),
            (zk::Permission::WRITE, acl::perms::WRITE),
            (zk::Permission::CREATE, acl::perms::CREATE),
            (zk::Permission::DELETE, acl::perms::DELETE),
            (zk::Permission::ADMIN, acl::perms::ADMIN),
        ]
        .iter()
        .filter(|(z, _)| p.has(*z))
        .map(|(_, g)| g)
        .sum()
    };
    acl.iter().map(|a| acl::entry(a.scheme(), a.id(), bits(a.permission()))).collect()
}

/// Reads the tree under `from`'s path, parents first; ephemerals (and ZooKeeper's own
/// `/zookeeper`) are returned apart, with why they are skipped. `auth` is a digest
/// `user:password` for ACL-protected nodes.
/// One ZooKeeper node as the walk reads it: None when it went away meanwhile.
type Read = Option<(String, Vec<u8>, zk::Stat, Vec<zk::Acl>, Vec<String>)>;

fn no_auth(path: &str) -> Error {
    Error::Client(format!(
        "ZooKeeper: reading {path}: not authorized; give --zk-auth user:password (ZooKeeper accepts any digest \
         login, so a wrong password shows only here)"
    ))
}

/// Reads one node: data and stat, then (unless ephemeral) its ACL and children.
async fn read_node(client: &zk::Client, path: String) -> Result<Read, Error> {
    let (data, stat) = match client.get_data(&path).await {
        Ok(r) => r,
        // Deleted while we read: not part of the tree any more.
        Err(zk::Error::NoNode) => return Ok(None),
        Err(zk::Error::NoAuth) => return Err(no_auth(&path)),
        Err(e) => return Err(zk_err(&format!("reading {path}"), e)),
    };
    if stat.ephemeral_owner != 0 {
        return Ok(Some((path, data, stat, Vec::new(), Vec::new())));
    }
    let acl = match client.get_acl(&path).await {
        Ok((acl, _)) => acl,
        Err(zk::Error::NoNode) => return Ok(None),
        Err(zk::Error::NoAuth) => return Err(no_auth(&path)),
        Err(e) => return Err(zk_err(&format!("reading the ACL of {path}"), e)),
    };
    let children = if stat.num_children == 0 {
        Vec::new()
    } else {
        match client.list_children(&path).await {
            Ok(c) => c,
            Err(zk::Error::NoNode) => Vec::new(),
            Err(e) => return Err(zk_err(&format!("listing {path}"), e)),
        }
    };
    Ok(Some((path, data, stat, acl, children)))
}

pub async fn read_tree(
    from: &str,
    auth: Option<&str>,
    modes: &Modes,
) -> Result<(Vec<Record>, Vec<(String, String)>), Error> {
    use futures::StreamExt;
    let (servers, root) = split_source(from);
    let mut connector = zk::Client::connector();
    if let Some(a) = auth {
        connector = connector.with_auth("digest", a.as_bytes());
    }
    let client = connector.connect(servers).await.map_err(|e| zk_err(&format!("connecting to {servers}"), e))?;
    let root = if root.len() > 1 { root.trim_end_matches('/') } else { root };
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    // A --mode naming no persistent node read is a mistake (a typo would import a container
    // as a persistent node): refused.
    let mut named: std::collections::HashSet<&str> = modes.keys().map(String::as_str).collect();
    // A level at a time, READ_AHEAD nodes in flight (one round trip each would make a large
    // tree's walk take minutes); the import puts the records in tree order.
    let mut level = vec![root.to_string()];
    while !level.is_empty() {
        let mut reading = Vec::new();
        for path in level.drain(..) {
            if path == "/zookeeper" || path.starts_with("/zookeeper/") {
                skipped.push((path, "ZooKeeper's own".into()));
            } else {
                reading.push(path);
            }
        }
        let read: Vec<Result<Read, Error>> = futures::stream::iter(reading.into_iter().map(|p| read_node(&client, p)))
            .buffered(READ_AHEAD)
            .collect()
            .await;
        for node in read {
            let Some((path, data, stat, acl, children)) = node? else { continue };
            let Some((mode, ttl)) = kind(stat.ephemeral_owner).map(|k| modes.get(&path).copied().unwrap_or(k)) else {
                skipped.push((path, format!("ephemeral of session 0x{:x}", stat.ephemeral_owner)));
                continue;
            };
            // The walk only goes down from `root`, so every path starts with it.
            let relative = match &path[if root == "/" { 0 } else { root.len() }..] {
                "" => "/".to_string(),
                r => r.to_string(),
            };
            records.push(Record::new(relative, &data, &grove_acl(&acl), mode, ttl, stat.cversion));
            named.remove(path.as_str());
            level.extend(children.into_iter().map(|c| crate::format::join(&path, &c)));
        }
    }
    if let Some(missing) = named.iter().next() {
        return Err(Error::BadArguments {
            message: format!("--mode {missing}: no persistent node by that path under {root} in ZooKeeper"),
        });
    }
    Ok((records, skipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_owner_is_an_ephemeral_even_one_that_looks_like_an_extended_type() {
        assert_eq!(kind(0), Some((Mode::Persistent, None)));
        // A session of the server with myid 255, not a TTL node.
        assert_eq!(kind((0xff00_0000_0000_0000u64 | 5000) as i64), None);
        assert_eq!(kind(0x0100_0000_0000_0042), None);
    }

    #[test]
    fn modes_parse_and_bad_ones_are_named() {
        let m = parse_modes(&["/a/box=container".into(), "/t=ttl:5000".into()]).unwrap();
        assert_eq!(m["/a/box"], (Mode::Container, None));
        assert_eq!(m["/t"], (Mode::Ttl, Some(5000)));
        for bad in ["box=container", "/t=ttl:", "/t=ttl:-1", "/t=ephemeral", "/t"] {
            let err = parse_modes(&[bad.into()]).unwrap_err();
            assert!(err.to_string().contains("--mode"), "{bad}: {err}");
        }
    }

    #[test]
    fn sources_split_into_servers_and_a_path() {
        assert_eq!(split_source("zk:2181"), ("zk:2181", "/"));
        assert_eq!(split_source("a:1,b:2/app/x"), ("a:1,b:2", "/app/x"));
    }
}
