//! ZooKeeper's access control: per-node ACLs of (permissions, scheme, id) entries, and the
//! identities a caller holds.
//!
//! Checks that guard writes run when the entry is applied, with the identities the request
//! carried in the log: every replica decides alike, and an ACL changed between proposal and
//! apply is respected. Reads are checked by the server that serves them, against its tree.
//!
//! Schemes:
//! - `world:anyone`: everyone.
//! - `digest:<user>:<base64(sha1("user:password"))>`: callers who sent `user:password`.
//! - `ip:<address>[/<prefix bits>]`: callers connecting from that network.
//! - `x509:<subject>`: callers whose verified TLS client certificate has that subject.
//! - `auth:` (only when setting an ACL): expands to the caller's own digest and x509 ids.
//!
//! An empty stored ACL means `world:anyone:cdrwa` (ZooKeeper's OPEN_ACL_UNSAFE), so nodes
//! written before ACLs existed, and the root, stay open.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::error::GroveError;

pub const READ: u32 = 1;
pub const WRITE: u32 = 2;
pub const CREATE: u32 = 4;
pub const DELETE: u32 = 8;
pub const ADMIN: u32 = 16;
pub const ALL: u32 = READ | WRITE | CREATE | DELETE | ADMIN;

/// Most entries in one ACL.
pub const MAX_ENTRIES: usize = 64;
/// Longest id in an entry, in bytes (an x509 subject, a digest user).
pub const MAX_ID_BYTES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AclEntry {
    pub perms: u32,
    pub scheme: String,
    pub id: String,
}

impl AclEntry {
    pub fn new(perms: u32, scheme: &str, id: &str) -> AclEntry {
        AclEntry { perms, scheme: scheme.into(), id: id.into() }
    }
}

/// A node's ACL; empty = open.
pub type Acl = Vec<AclEntry>;

/// `cdrwa` letters for a permission set, in zkCli's order.
pub fn perms_text(perms: u32) -> String {
    [(CREATE, 'c'), (DELETE, 'd'), (READ, 'r'), (WRITE, 'w'), (ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| perms & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

pub fn perm_name(perm: u32) -> &'static str {
    match perm {
        READ => "READ",
        WRITE => "WRITE",
        CREATE => "CREATE",
        DELETE => "DELETE",
        ADMIN => "ADMIN",
        _ => "?",
    }
}

/// Who a request comes from. Built by the server from the connection and the request's
/// metadata; carried in the log with each write.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Caller {
    /// The session the request acts for, authenticated by the server that took it (0:
    /// none). Ephemeral nodes and lock entries belong to it.
    pub session: u64,
    /// (scheme, id) pairs: `digest`, `x509` and `ip` identities. `world:anyone` is implied.
    pub ids: Vec<(String, String)>,
    /// The configured super user: every check passes.
    pub superuser: bool,
}

impl Caller {
    /// The server itself (session expiry, reaping): not subject to ACLs.
    pub fn server() -> Caller {
        Caller { session: 0, ids: Vec::new(), superuser: true }
    }

    /// Whether `acl` grants `perm` to this caller.
    pub fn may(&self, acl: &[AclEntry], perm: u32) -> bool {
        self.superuser || acl.is_empty() || acl.iter().any(|e| e.perms & perm != 0 && self.matches(e))
    }

    fn matches(&self, e: &AclEntry) -> bool {
        match e.scheme.as_str() {
            "world" => e.id == "anyone",
            "ip" => self.ids.iter().any(|(s, id)| s == "ip" && ip_matches(&e.id, id)),
            scheme => self.ids.iter().any(|(s, id)| s == scheme && *id == e.id),
        }
    }

    /// Fails with NO_AUTH unless `acl` grants `perm`.
    pub fn check(&self, acl: &[AclEntry], perm: u32, path: &str) -> Result<(), GroveError> {
        if self.may(acl, perm) {
            Ok(())
        } else {
            Err(GroveError::NoAuth { path: path.to_string(), perm: perm_name(perm).to_string() })
        }
    }
}

/// Whether `addr` (a caller's address) is inside `spec` (`10.0.0.0/8`, `127.0.0.1`).
fn ip_matches(spec: &str, addr: &str) -> bool {
    let Ok(addr) = addr.parse::<IpAddr>() else { return false };
    let Some((net, bits)) = parse_cidr(spec) else { return false };
    match (net, addr) {
        (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
        (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
        (IpAddr::V4(n), IpAddr::V6(a)) => a.to_ipv4_mapped().is_some_and(|a| prefix_eq(&n.octets(), &a.octets(), bits)),
        _ => false,
    }
}

fn parse_cidr(spec: &str) -> Option<(IpAddr, u32)> {
    let (addr, bits) = match spec.split_once('/') {
        Some((a, b)) => (a, Some(b.parse::<u32>().ok()?)),
        None => (spec, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((addr, bits))
}

fn prefix_eq(net: &[u8], addr: &[u8], bits: u32) -> bool {
    let full = (bits / 8) as usize;
    if net[..full] != addr[..full] {
        return false;
    }
    let rest = bits % 8;
    rest == 0 || {
        let mask = 0xffu8 << (8 - rest);
        net[full] & mask == addr[full] & mask
    }
}

/// ZooKeeper's digest of `user:password`: base64(sha1("user:password")), as `user:<digest>`.
pub fn digest_id(user: &str, password: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// Checks an ACL given by a client and resolves `auth` entries to the caller's ids. An
/// empty result is never returned: an empty request ACL means open, stored as empty.
pub fn resolve(acl: &[AclEntry], caller: &Caller, path: &str) -> Result<Acl, GroveError> {
    let invalid = |message: String| GroveError::InvalidAcl { path: path.to_string(), message };
    if acl.len() > MAX_ENTRIES {
        return Err(invalid(format!("{} entries; at most {MAX_ENTRIES}", acl.len())));
    }
    let mut out: Acl = Vec::with_capacity(acl.len());
    for e in acl {
        if e.perms == 0 || e.perms & !ALL != 0 {
            return Err(invalid(format!(
                "permissions {:#x} of {}:{} are not a subset of cdrwa",
                e.perms, e.scheme, e.id
            )));
        }
        match e.scheme.as_str() {
            "world" if e.id == "anyone" => out.push(e.clone()),
            "world" => return Err(invalid(format!("world:{} (the only world id is anyone)", e.id))),
            "digest" => {
                let valid = e.id.split_once(':').is_some_and(|(u, h)| !u.is_empty() && h.len() == 28);
                if !valid {
                    return Err(invalid(format!("digest:{} is not user:base64(sha1(user:password))", e.id)));
                }
                out.push(e.clone());
            }
            "ip" => {
                if parse_cidr(&e.id).is_none() {
                    return Err(invalid(format!("ip:{} is not an address or address/bits", e.id)));
                }
                out.push(e.clone());
            }
            "x509" if !e.id.is_empty() => out.push(e.clone()),
            "auth" => {
                let mine: Vec<_> = caller.ids.iter().filter(|(s, _)| s == "digest" || s == "x509").collect();
                if mine.is_empty() {
                    return Err(invalid("auth: the caller has no digest or x509 identity to grant".into()));
                }
                for (s, id) in mine {
                    out.push(AclEntry { perms: e.perms, scheme: s.clone(), id: id.clone() });
                }
            }
            other => return Err(invalid(format!("unknown scheme {other:?} (world, digest, ip, x509, auth)"))),
        }
    }
    out.dedup();
    // Bounded after `auth` entries expanded into the caller's ids: an ACL the node record
    // cannot hold must be refused here, or every later read of the node would fail.
    if out.len() > MAX_ENTRIES {
        return Err(invalid(format!("{} entries once auth is expanded; at most {MAX_ENTRIES}", out.len())));
    }
    if let Some(e) = out.iter().find(|e| e.id.len() > MAX_ID_BYTES) {
        return Err(invalid(format!("an id of {} bytes ({}:...); at most {MAX_ID_BYTES}", e.id.len(), e.scheme)));
    }
    if out.len() == 1 && out[0].scheme == "world" && out[0].perms == ALL {
        // The default, stored as nothing.
        out.clear();
    }
    Ok(out)
}

/// The ACL as shown to a caller: digest hashes masked unless the caller may administer the
/// node (ZooKeeper 3.9's rule), so READ alone does not hand out password hashes.
pub fn shown(acl: &[AclEntry], caller: &Caller) -> Acl {
    if acl.is_empty() {
        return vec![AclEntry::new(ALL, "world", "anyone")];
    }
    let admin = caller.may(acl, ADMIN);
    acl.iter()
        .map(|e| match (e.scheme.as_str(), admin) {
            ("digest", false) => {
                let user = e.id.split_once(':').map(|(u, _)| u).unwrap_or_default();
                AclEntry { perms: e.perms, scheme: e.scheme.clone(), id: format!("{user}:x") }
            }
            _ => e.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(ids: &[(&str, &str)]) -> Caller {
        Caller { ids: ids.iter().map(|(s, i)| (s.to_string(), i.to_string())).collect(), ..Caller::default() }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // `DigestAuthenticationProvider.generateDigest("super:test")`, from ZooKeeper's docs.
        assert_eq!(digest_id("super", "test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn each_scheme_grants_only_its_callers() {
        let alice = digest_id("alice", "pw");
        let acl = vec![
            AclEntry::new(READ, "digest", &alice),
            AclEntry::new(WRITE, "ip", "10.1.0.0/16"),
            AclEntry::new(DELETE, "x509", "CN=bob,O=Grove"),
        ];
        let a = caller(&[("digest", &alice)]);
        assert!(a.may(&acl, READ) && !a.may(&acl, WRITE));
        assert!(!caller(&[("digest", &digest_id("alice", "wrong"))]).may(&acl, READ));
        assert!(caller(&[("ip", "10.1.200.3")]).may(&acl, WRITE));
        assert!(!caller(&[("ip", "10.2.0.1")]).may(&acl, WRITE));
        assert!(caller(&[("x509", "CN=bob,O=Grove")]).may(&acl, DELETE));
        assert!(!caller(&[("x509", "CN=bob")]).may(&acl, DELETE));
        assert!(!caller(&[]).may(&acl, ADMIN));
        assert!(Caller::server().may(&acl, ADMIN));
        assert!(caller(&[]).may(&[], ADMIN), "an empty ACL is open");
        assert!(caller(&[]).may(&[AclEntry::new(READ, "world", "anyone")], READ));
    }

    #[test]
    fn ip_prefixes() {
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(!ip_matches("127.0.0.1", "127.0.0.2"));
        assert!(ip_matches("192.168.0.0/20", "192.168.15.255"));
        assert!(!ip_matches("192.168.0.0/20", "192.168.16.0"));
        assert!(ip_matches("0.0.0.0/0", "8.8.8.8"));
        assert!(ip_matches("::1", "::1"));
        assert!(ip_matches("127.0.0.0/8", "::ffff:127.0.0.9"));
        assert!(!ip_matches("10.0.0.0/33", "10.0.0.1"));
        assert!(!ip_matches("nonsense", "10.0.0.1"));
    }

    #[test]
    fn resolving_validates_and_expands_auth() {
        let alice = digest_id("alice", "pw");
        let who = caller(&[("digest", &alice), ("ip", "127.0.0.1")]);
        let got = resolve(&[AclEntry::new(ALL, "auth", "")], &who, "/p").unwrap();
        assert_eq!(got, vec![AclEntry::new(ALL, "digest", &alice)]);
        assert!(resolve(&[AclEntry::new(ALL, "auth", "")], &caller(&[("ip", "1.2.3.4")]), "/p").is_err());
        assert_eq!(resolve(&[AclEntry::new(ALL, "world", "anyone")], &who, "/p").unwrap(), vec![]);
        for bad in [
            AclEntry::new(0, "world", "anyone"),
            AclEntry::new(64, "world", "anyone"),
            AclEntry::new(READ, "world", "someone"),
            AclEntry::new(READ, "digest", "alice:short"),
            AclEntry::new(READ, "ip", "300.1.1.1"),
            AclEntry::new(READ, "x509", ""),
            AclEntry::new(READ, "kerberos", "x"),
            AclEntry::new(READ, "x509", &"C".repeat(MAX_ID_BYTES + 1)),
        ] {
            let e = resolve(std::slice::from_ref(&bad), &who, "/p").unwrap_err();
            assert!(matches!(e, GroveError::InvalidAcl { .. }), "{bad:?}: {e}");
        }
    }

    #[test]
    fn the_largest_acl_fits_a_node_record() {
        // 64 entries with the longest ids: within what a node record holds.
        let acl: Acl = (0..MAX_ENTRIES).map(|i| AclEntry::new(ALL, "x509", &format!("{i:0>1024}"))).collect();
        let resolved = resolve(&acl, &caller(&[]), "/p").unwrap();
        assert!(postcard::to_allocvec(&resolved).unwrap().len() <= crate::fsm::znode::MAX_ACL_BYTES);
        // `auth` entries count after they expand into the caller's ids.
        let many_ids: Vec<(String, String)> = (0..10).map(|i| ("x509".to_string(), format!("CN=u{i}"))).collect();
        let who = Caller { ids: many_ids, ..Caller::default() };
        let auths: Acl = (1..=7).map(|p| AclEntry::new(p, "auth", "")).collect();
        let e = resolve(&auths, &who, "/p").unwrap_err();
        assert!(e.to_string().contains("once auth is expanded"), "{e}");
    }

    #[test]
    fn hashes_are_masked_without_admin() {
        let alice = digest_id("alice", "pw");
        let acl = vec![AclEntry::new(READ, "world", "anyone"), AclEntry::new(ALL, "digest", &alice)];
        assert_eq!(shown(&acl, &caller(&[]))[1].id, "alice:x");
        assert_eq!(shown(&acl, &caller(&[("digest", &alice)]))[1].id, alice);
        assert_eq!(perms_text(ALL), "cdrwa");
        assert_eq!(perms_text(READ | ADMIN), "ra");
    }
}
