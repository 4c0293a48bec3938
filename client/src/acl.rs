//! ACLs in zkCli's notation: `scheme:id:perms`, e.g. `world:anyone:r`,
//! `digest:alice:<base64 sha1>:cdrwa`, `ip:10.0.0.0/8:rw`, `x509:CN=app,O=Example:crwd`,
//! `auth::cdrwa` (the caller's own identities).

use grove_proto::v1 as pb;

use crate::error::{Error, Result};

pub use pb::Acl;

/// Permission bits, ZooKeeper's values.
pub mod perms {
    pub const READ: u32 = 1;
    pub const WRITE: u32 = 2;
    pub const CREATE: u32 = 4;
    pub const DELETE: u32 = 8;
    pub const ADMIN: u32 = 16;
    pub const ALL: u32 = 31;
}

/// zkCli's letters, in its order.
const LETTERS: [(char, u32); 5] =
    [('c', perms::CREATE), ('d', perms::DELETE), ('r', perms::READ), ('w', perms::WRITE), ('a', perms::ADMIN)];

/// ZooKeeper's digest id for a user: `user:base64(sha1("user:password"))`, what a
/// `digest` ACL entry and the server's `--super-digest` hold.
pub fn digest(user: &str, password: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let hash = sha1::Sha1::digest(format!("{user}:{password}").as_bytes());
    format!("{user}:{}", base64::engine::general_purpose::STANDARD.encode(hash))
}

/// One entry.
pub fn entry(scheme: &str, id: &str, perms: u32) -> Acl {
    Acl { perms, scheme: scheme.to_string(), id: id.to_string() }
}

/// `cdrwa` letters to bits.
pub fn parse_perms(text: &str) -> Result<u32> {
    let mut bits = 0;
    for c in text.chars() {
        let (_, bit) = LETTERS
            .iter()
            .find(|(l, _)| *l == c.to_ascii_lowercase())
            .ok_or_else(|| Error::BadArguments { message: format!("permission {c:?} is not one of c, d, r, w, a") })?;
        bits |= bit;
    }
    if bits == 0 {
        return Err(Error::BadArguments { message: "an ACL entry grants at least one permission".into() });
    }
    Ok(bits)
}

pub fn perms_text(bits: u32) -> String {
    LETTERS.iter().filter(|(_, b)| bits & b != 0).map(|(l, _)| *l).collect()
}

/// The schemes an entry can start with.
const SCHEMES: [&str; 5] = ["world", "digest", "ip", "x509", "auth"];

/// Parses a comma-separated list of `scheme:id:perms`. The id may itself hold colons
/// (digest ids, IPv6 addresses): the scheme ends at the first colon, the permissions start
/// after the last. It may hold commas too (x509 subjects: `x509:CN=app,O=Example:r`): a
/// comma starts a new entry only where a scheme follows it.
pub fn parse(text: &str) -> Result<Vec<Acl>> {
    let bad = |part: &str| Error::BadArguments { message: format!("ACL entry {part:?} is not scheme:id:perms") };
    let mut parts: Vec<String> = Vec::new();
    for piece in text.split(',') {
        let starts_entry =
            SCHEMES.iter().any(|s| piece.trim_start().strip_prefix(s).is_some_and(|r| r.starts_with(':')));
        match parts.last_mut() {
            Some(last) if !starts_entry => {
                last.push(',');
                last.push_str(piece);
            }
            _ => parts.push(piece.to_string()),
        }
    }
    parts
        .iter()
        .map(|p| p.trim())
        .filter(|p| !p.is_empty())
        .map(|part| {
            let (scheme, rest) = part.split_once(':').ok_or_else(|| bad(part))?;
            let (id, perms) = rest.rsplit_once(':').ok_or_else(|| bad(part))?;
            if scheme.is_empty() {
                return Err(bad(part));
            }
            Ok(entry(scheme, id, parse_perms(perms)?))
        })
        .collect()
}

/// zkCli's `getAcl` output: `'scheme,'id` then `: perms`, per entry.
pub fn format(acl: &[Acl]) -> String {
    acl.iter().map(|a| format!("'{},'{}\n: {}", a.scheme, a.id, perms_text(a.perms))).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_zookeepers() {
        // ZooKeeper's documented example: DigestAuthenticationProvider.generateDigest("super:test").
        assert_eq!(digest("super", "test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn parses_zkcli_notation() {
        let acl = parse("world:anyone:r, digest:alice:D/InIHSb7yEEbrWz8b9l71RjZJU=:cdrwa,ip:::1:rw,auth::a").unwrap();
        assert_eq!(acl[0], entry("world", "anyone", perms::READ));
        assert_eq!(acl[1], entry("digest", "alice:D/InIHSb7yEEbrWz8b9l71RjZJU=", perms::ALL));
        assert_eq!(acl[2], entry("ip", "::1", perms::READ | perms::WRITE));
        assert_eq!(acl[3], entry("auth", "", perms::ADMIN));
        assert_eq!(format(&acl[..1]), "'world,'anyone\n: r");
        assert_eq!(perms_text(perms::ALL), "cdrwa");
        let x509 = parse("x509:CN=app,O=Example,C=NL:cr,world:anyone:r").unwrap();
        assert_eq!(x509, vec![entry("x509", "CN=app,O=Example,C=NL", 5), entry("world", "anyone", 1)]);
        for bad in ["world", "world:anyone", "world:anyone:x", ":x:r", "world:anyone:"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
