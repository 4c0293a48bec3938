//! Key encodings of the state tables.
//!
//! A node's key is `parent ++ 0x00 ++ name` (the root's key is empty). Paths cannot contain
//! NUL, so the direct children of `P` are exactly the keys in `[P\0, P\x01)`, already in
//! byte order: a child listing is one range scan with no filtering. The descendants of `P`
//! are those children plus every key whose parent starts with `P/`, i.e. `[P/, P0)`.

/// The key of the cluster id in the `cluster` table.
pub fn cluster_key() -> &'static [u8] {
    b"\x00id"
}

/// The key of the entry clock in the `cluster` table.
pub fn clock_key() -> &'static [u8] {
    b"\x00clock"
}

/// The key of the current membership's ids (as the state machine last applied it) in the
/// `cluster` table.
pub fn membership_key() -> &'static [u8] {
    b"\x00membership"
}

/// The key in the `cluster` table of the backup a restored cluster was made from.
pub fn restored_key() -> &'static [u8] {
    b"\x00restored"
}

/// The key of a member's record in the `cluster` table.
pub fn member_key(id: u64) -> Vec<u8> {
    let mut k = vec![1u8];
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The key of the node at a valid path.
pub fn node_key(path: &str) -> Vec<u8> {
    if path == "/" {
        return Vec::new();
    }
    let i = path.rfind('/').expect("valid paths start with '/'");
    let (parent, name) = if i == 0 { ("/", &path[1..]) } else { (&path[..i], &path[i + 1..]) };
    let mut key = Vec::with_capacity(path.len() + 1);
    key.extend_from_slice(parent.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

/// The path of a node key.
pub fn key_path(key: &[u8]) -> String {
    if key.is_empty() {
        return "/".to_string();
    }
    let i = key.iter().position(|&b| b == 0).expect("node keys hold one NUL");
    let parent = String::from_utf8_lossy(&key[..i]);
    let name = String::from_utf8_lossy(&key[i + 1..]);
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

/// The child name within a node key.
pub fn key_name(key: &[u8]) -> &[u8] {
    match key.iter().position(|&b| b == 0) {
        Some(i) => &key[i + 1..],
        None => b"",
    }
}

/// `[start, end)` covering the direct children of `path`.
pub fn children_range(path: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = path.as_bytes().to_vec();
    let mut end = start.clone();
    start.push(0);
    end.push(1);
    (start, end)
}

/// `[start, end)` covering keys of nodes whose parent lies strictly below `path`
/// (grandchildren and deeper). Empty for the root, whose descendants are every key.
pub fn deep_descendants_range(path: &str) -> (Vec<u8>, Vec<u8>) {
    let mut start = path.as_bytes().to_vec();
    let mut end = start.clone();
    start.push(b'/');
    end.push(b'/' + 1);
    (start, end)
}

/// Key of an ephemeral index entry: owner session, then path, so one session's ephemerals
/// are one range.
pub fn ephemeral_key(session_id: u64, path: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(8 + path.len());
    key.extend_from_slice(&session_id.to_be_bytes());
    key.extend_from_slice(path.as_bytes());
    key
}

/// `[start, end)` covering every ephemeral of a session.
pub fn session_ephemerals_range(session_id: u64) -> (Vec<u8>, Vec<u8>) {
    let start = session_id.to_be_bytes().to_vec();
    let end = match session_id.checked_add(1) {
        Some(next) => next.to_be_bytes().to_vec(),
        None => vec![0xff; 9],
    };
    (start, end)
}

/// The path within an ephemeral index key.
pub fn ephemeral_key_path(key: &[u8]) -> &str {
    std::str::from_utf8(&key[8..]).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_keys_round_trip() {
        for p in ["/", "/a", "/a/b", "/app/seq-0000000001", "/名前/x"] {
            assert_eq!(key_path(&node_key(p)), p);
        }
        assert_eq!(node_key("/a/b"), b"/a\0b");
        assert_eq!(node_key("/a"), b"/\0a");
        assert_eq!(key_name(&node_key("/a/bc")), b"bc");
    }

    #[test]
    fn children_range_holds_exactly_the_children() {
        let (start, end) = children_range("/a");
        let inside = |p: &str| {
            let k = node_key(p);
            k >= start && k < end
        };
        assert!(inside("/a/x"));
        assert!(inside("/a/y"));
        assert!(!inside("/a"));
        assert!(!inside("/a/x/deep"));
        assert!(!inside("/ab/z"));
        assert!(!inside("/b"));
        let (start, end) = children_range("/");
        let k = node_key("/top");
        assert!(k >= start && k < end);
        let k = node_key("/top/x");
        assert!(!(k >= start && k < end));
    }

    #[test]
    fn deep_range_holds_grandchildren_and_deeper() {
        let (start, end) = deep_descendants_range("/a");
        let inside = |p: &str| {
            let k = node_key(p);
            k >= start && k < end
        };
        assert!(inside("/a/x/y"));
        assert!(inside("/a/x/y/z"));
        assert!(!inside("/a/x"));
        assert!(!inside("/ab/x/y"));
        assert!(!inside("/b/x/y"));
    }

    #[test]
    fn ephemeral_ranges_are_per_session() {
        let (start, end) = session_ephemerals_range(7);
        let k = ephemeral_key(7, "/e");
        assert!(k >= start && k < end);
        assert!(ephemeral_key(8, "/e") >= end);
        assert!(ephemeral_key(6, "/zzzz") < start);
        assert_eq!(ephemeral_key_path(&k), "/e");
        let (start, end) = session_ephemerals_range(u64::MAX);
        let k = ephemeral_key(u64::MAX, "/e");
        assert!(k >= start && k < end);
    }
}
