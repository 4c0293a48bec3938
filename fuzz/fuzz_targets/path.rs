//! Path parsing and the key encodings built on it: no input panics, and every path that
//! validates behaves like a path (its key round-trips, its parent and ancestors are valid,
//! its key sorts inside its parent's child range).

#![no_main]

use grove_server::fsm::path;
use grove_server::storage::keys;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = path::abbreviated(s);
    if path::validate_sequential_prefix(s).is_ok() && s.len() + path::SEQUENCE_DIGITS <= path::MAX_PATH_LEN {
        let named = path::sequential(s, 42);
        assert!(path::validate(&named).is_ok(), "{named:?} from the valid prefix {s:?}");
    }
    if path::validate(s).is_err() {
        return;
    }
    assert!(path::validate_sequential_prefix(s).is_ok(), "a valid path is a valid prefix: {s:?}");
    let key = keys::node_key(s);
    assert_eq!(keys::key_path(&key), s);
    let eph = keys::ephemeral_key(7, s);
    assert_eq!(keys::ephemeral_key_path(&eph), s);
    let (start, end) = keys::session_ephemerals_range(7);
    assert!(start <= eph && eph < end);
    if s == "/" {
        return;
    }
    let parent = path::parent(s);
    assert!(path::validate(parent).is_ok(), "parent {parent:?} of {s:?}");
    assert!(path::is_under(s, parent) && !path::is_under(parent, s));
    let (dir, name) = path::split(s);
    assert_eq!(dir, parent);
    assert_eq!(path::join(dir, name), s);
    assert_eq!(keys::key_name(&key), name.as_bytes());
    let (lo, hi) = keys::children_range(parent);
    assert!(lo <= key && key < hi, "{s:?} sorts among its parent's children");
    let ancestors: Vec<&str> = path::ancestors(s).collect();
    assert_eq!(ancestors.first().copied(), Some("/"));
    assert_eq!(ancestors.last().copied(), Some(parent));
    for a in &ancestors {
        assert!(path::is_under(s, a));
    }
    // (The root's deep range is empty by definition: every key is its descendant.)
    if let Some(grand) = ancestors.len().checked_sub(2).map(|i| ancestors[i]).filter(|g| *g != "/") {
        let (lo, hi) = keys::deep_descendants_range(grand);
        assert!(lo <= key && key < hi, "{s:?} is a deep descendant of {grand:?}");
    }
});
