//! ZooKeeper's path rules.
//!
//! A path is absolute, slash-separated, with no empty, `.` or `..` components, no trailing
//! slash (except the root itself), and none of the characters ZooKeeper forbids: NUL, the
//! C0 and C1 control ranges, U+007F..U+009F, the private-use area U+E000..U+F8FF and
//! U+FFF0..U+FFFF. (Rust strings cannot hold surrogates, the rest of ZooKeeper's
//! U+D800..U+F8FF range.) NUL being forbidden is what makes the `parent \0 name` key
//! encoding in `storage::keys` unambiguous.

use crate::error::GroveError;

/// The longest path accepted, in bytes. ZooKeeper bounds paths only by its packet size;
/// a fixed bound keeps keys and events small.
pub const MAX_PATH_LEN: usize = 4096;

/// Width of the sequence suffix of sequential nodes (`%010d`).
pub const SEQUENCE_DIGITS: usize = 10;

fn forbidden(c: char) -> bool {
    matches!(c,
        '\u{0000}'..='\u{001F}'
        | '\u{007F}'..='\u{009F}'
        | '\u{E000}'..='\u{F8FF}'
        | '\u{FFF0}'..='\u{FFFF}')
}

/// A path as error messages quote it: a huge one is cut, so the error stays small.
pub fn abbreviated(path: &str) -> String {
    const KEEP: usize = 200;
    if path.len() <= KEEP {
        return path.to_string();
    }
    let mut end = KEEP;
    while !path.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes)", &path[..end], path.len())
}

/// Validates the path of an existing or new node.
pub fn validate(path: &str) -> Result<(), GroveError> {
    validate_inner(path, false)
}

/// Validates the prefix given to a sequential create: like a path, but it may end with `/`
/// since the sequence number completes the last component.
pub fn validate_sequential_prefix(path: &str) -> Result<(), GroveError> {
    validate_inner(path, true)
}

fn validate_inner(path: &str, sequential: bool) -> Result<(), GroveError> {
    let shown = abbreviated(path);
    let bad = |why: &str| Err(GroveError::bad_args(&shown, format!("invalid path {shown:?}: {why}")));
    if path.is_empty() {
        return bad("path is empty");
    }
    if !path.starts_with('/') {
        return bad("path must start with '/'");
    }
    if path.len() + if sequential { SEQUENCE_DIGITS } else { 0 } > MAX_PATH_LEN {
        return bad(&format!("longer than {MAX_PATH_LEN} bytes"));
    }
    if let Some(c) = path.chars().find(|&c| forbidden(c)) {
        return bad(&format!("contains forbidden character U+{:04X}", c as u32));
    }
    if path == "/" {
        return Ok(());
    }
    let body = &path[1..];
    let mut parts = body.split('/').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        if part.is_empty() {
            if last && sequential {
                // "/app/" + sequence number: the number is the last component.
                break;
            }
            return if last { bad("path must not end with '/'") } else { bad("empty component ('//')") };
        }
        // In a sequential prefix the last component gets digits appended, so "." and ".."
        // there become legal names ("./0000000001" is not a dot component).
        if (part == "." || part == "..") && !(last && sequential) {
            return bad("'.' and '..' components are not allowed");
        }
    }
    Ok(())
}

/// Splits a valid, non-root path into its parent and its last component.
pub fn split(path: &str) -> (&str, &str) {
    debug_assert!(path.len() > 1 && path.starts_with('/'));
    let i = path.rfind('/').unwrap_or(0);
    if i == 0 { ("/", &path[1..]) } else { (&path[..i], &path[i + 1..]) }
}

/// The parent of a valid, non-root path.
pub fn parent(path: &str) -> &str {
    split(path).0
}

/// Joins a parent path and a child name.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

/// The sequential node name for a prefix and a counter value: `%010d`.
pub fn sequential(prefix: &str, counter: i32) -> String {
    format!("{prefix}{counter:010}")
}

/// True if `path` is `ancestor` or lies below it.
pub fn is_under(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return true;
    }
    path == ancestor || (path.starts_with(ancestor) && path.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

/// Ancestors of a valid path from the root down, excluding the path itself.
pub fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    let mut ends: Vec<usize> = path.match_indices('/').map(|(i, _)| i).collect();
    // "/a/b" -> '/' at 0 and 2 -> "/" and "/a".
    if path == "/" {
        ends.clear();
    }
    ends.into_iter().map(move |i| if i == 0 { "/" } else { &path[..i] })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_paths() {
        for p in ["/", "/a", "/a/b", "/app1/cfg-1", "/a.b", "/...", "/ü/名前", "/a b"] {
            assert!(validate(p).is_ok(), "{p} should be valid");
        }
    }

    #[test]
    fn rejects_invalid_paths() {
        let cases = [
            ("", "empty"),
            ("a/b", "start with '/'"),
            ("/a/", "end with '/'"),
            ("//a", "empty component"),
            ("/a//b", "empty component"),
            ("/a/./b", "'.' and '..'"),
            ("/a/..", "'.' and '..'"),
            ("/.", "'.' and '..'"),
            ("/a\u{0}b", "U+0000"),
            ("/a\nb", "U+000A"),
            ("/a\u{7f}", "U+007F"),
            ("/a\u{85}", "U+0085"),
            ("/a\u{e000}", "U+E000"),
            ("/a\u{fff0}", "U+FFF0"),
        ];
        for (p, why) in cases {
            let err = validate(p).expect_err(p);
            assert!(matches!(&err, GroveError::BadArguments { message, .. } if message.contains(why)), "{p:?}: {err}");
        }
        let long = format!("/{}", "x".repeat(MAX_PATH_LEN));
        assert!(validate(&long).is_err());
    }

    #[test]
    fn sequential_prefixes_may_end_with_slash() {
        assert!(validate_sequential_prefix("/app/").is_ok());
        assert!(validate_sequential_prefix("/app/seq-").is_ok());
        assert!(validate_sequential_prefix("/").is_ok());
        assert!(validate_sequential_prefix("/app/.").is_ok());
        assert!(validate_sequential_prefix("/app//").is_err());
        assert!(validate_sequential_prefix("app/").is_err());
        assert!(validate_sequential_prefix("/../x").is_err());
    }

    #[test]
    fn split_join_and_ancestry() {
        assert_eq!(split("/a"), ("/", "a"));
        assert_eq!(split("/a/b/c"), ("/a/b", "c"));
        assert_eq!(join("/", "a"), "/a");
        assert_eq!(join("/a/b", "c"), "/a/b/c");
        assert_eq!(sequential("/app/seq-", 2), "/app/seq-0000000002");
        assert!(is_under("/a/b", "/a"));
        assert!(is_under("/a", "/a"));
        assert!(!is_under("/ab", "/a"));
        assert!(is_under("/ab", "/"));
        assert_eq!(ancestors("/a/b/c").collect::<Vec<_>>(), vec!["/", "/a", "/a/b"]);
        assert_eq!(ancestors("/a").collect::<Vec<_>>(), vec!["/"]);
        assert_eq!(ancestors("/").count(), 0);
    }
}
