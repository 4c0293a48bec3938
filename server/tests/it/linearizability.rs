//! A linearizability checker for per-key histories (Wing & Gong's search with Lowe's
//! memoization, as in Porcupine), for a versioned register: ZooKeeper's node with data and
//! a data version.
//!
//! Histories are checked per key (linearizability is compositional). An operation whose
//! outcome is unknown (the client lost the connection, or the server said the outcome is
//! unknown) has no return time: it may take effect at any point after its call, or never.

use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Op {
    Create(u64),
    Set(u64),
    /// Set if the node's version is the given one.
    Cas(i32, u64),
    Get,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Ret {
    /// Create/Set/Cas succeeded; the node's new version.
    Written(i32),
    Exists,
    NoNode,
    BadVersion,
    /// Get: the value and version, or absent.
    Read(Option<(u64, i32)>),
}

#[derive(Debug, Clone)]
pub struct Event {
    pub call: u64,
    /// `None`: the outcome is unknown.
    pub ret: Option<(u64, Ret)>,
    pub op: Op,
}

type State = Option<(u64, i32)>;

fn step(state: State, op: &Op) -> (State, Ret) {
    match (op, state) {
        (Op::Create(v), None) => (Some((*v, 0)), Ret::Written(0)),
        (Op::Create(_), s) => (s, Ret::Exists),
        (Op::Set(_), None) | (Op::Cas(..), None) => (None, Ret::NoNode),
        (Op::Set(v), Some((_, ver))) => (Some((*v, ver + 1)), Ret::Written(ver + 1)),
        (Op::Cas(expected, v), Some((_, ver))) if *expected == ver => (Some((*v, ver + 1)), Ret::Written(ver + 1)),
        (Op::Cas(..), s) => (s, Ret::BadVersion),
        (Op::Get, s) => (s, Ret::Read(s)),
    }
}

/// True if the history has a linearization. Operations that are reads with unknown outcomes
/// should be left out by the caller (they change nothing).
pub fn check(history: &[Event]) -> Result<(), String> {
    let n = history.len();
    if n == 0 {
        return Ok(());
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| history[i].call);
    let words = n.div_ceil(64);
    let mut done = vec![0u64; words];
    let mut seen: HashSet<(Vec<u64>, State)> = HashSet::new();
    let mut budget: u64 = 20_000_000;
    // The search recurses once per operation linearized: a soak's histories (thousands of
    // operations per key) need more stack than a test thread has. Only what is used of it
    // is ever committed.
    let found = std::thread::scope(|s| {
        std::thread::Builder::new()
            .stack_size(1 << 30)
            .spawn_scoped(s, || search(history, &order, &mut done, None, &mut seen, &mut budget))
            .expect("a thread for the search")
            .join()
            .expect("the search")
    });
    if found {
        Ok(())
    } else if budget == 0 {
        Err("the search gave up (history too large to decide)".into())
    } else {
        Err(format!("no linearization of {n} operations: {history:#?}"))
    }
}

fn is_done(done: &[u64], i: usize) -> bool {
    done[i / 64] & (1 << (i % 64)) != 0
}

fn search(
    h: &[Event],
    order: &[usize],
    done: &mut Vec<u64>,
    state: State,
    seen: &mut HashSet<(Vec<u64>, State)>,
    budget: &mut u64,
) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    // Finished when every operation with a known outcome is linearized; the unknown ones
    // left may simply never have taken effect.
    let known_left = order.iter().any(|&i| !is_done(done, i) && h[i].ret.is_some());
    if !known_left {
        return true;
    }
    if !seen.insert((done.clone(), state)) {
        return false;
    }
    // The next operation must be called before any pending operation returned.
    let horizon = order
        .iter()
        .filter(|&&i| !is_done(done, i))
        .filter_map(|&i| h[i].ret.as_ref().map(|(t, _)| *t))
        .min()
        .unwrap_or(u64::MAX);
    for &i in order {
        if is_done(done, i) {
            continue;
        }
        if h[i].call > horizon {
            break;
        }
        let (next, ret) = step(state, &h[i].op);
        let matches = match &h[i].ret {
            Some((_, expected)) => *expected == ret,
            None => true,
        };
        if matches {
            done[i / 64] |= 1 << (i % 64);
            if search(h, order, done, next, seen, budget) {
                return true;
            }
            done[i / 64] &= !(1 << (i % 64));
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(call: u64, ret: Option<(u64, Ret)>, op: Op) -> Event {
        Event { call, ret, op }
    }

    #[test]
    fn accepts_a_concurrent_read_of_either_value() {
        let h = vec![
            ev(0, Some((1, Ret::Written(0))), Op::Create(1)),
            ev(2, Some((6, Ret::Written(1))), Op::Set(2)),
            ev(3, Some((4, Ret::Read(Some((1, 0))))), Op::Get),
            ev(5, Some((7, Ret::Read(Some((2, 1))))), Op::Get),
        ];
        assert!(check(&h).is_ok());
    }

    #[test]
    fn rejects_a_stale_read_after_a_completed_write() {
        let h = vec![
            ev(0, Some((1, Ret::Written(0))), Op::Create(1)),
            ev(2, Some((3, Ret::Written(1))), Op::Set(2)),
            ev(4, Some((5, Ret::Read(Some((1, 0))))), Op::Get),
        ];
        assert!(check(&h).is_err());
    }

    #[test]
    fn an_unknown_write_may_or_may_not_have_happened() {
        let base = vec![ev(0, Some((1, Ret::Written(0))), Op::Create(1)), ev(2, None, Op::Set(2))];
        let mut saw_it = base.clone();
        saw_it.push(ev(10, Some((11, Ret::Read(Some((2, 1))))), Op::Get));
        assert!(check(&saw_it).is_ok());
        let mut missed_it = base.clone();
        missed_it.push(ev(10, Some((11, Ret::Read(Some((1, 0))))), Op::Get));
        assert!(check(&missed_it).is_ok());
        // But a value nobody wrote is never read.
        let mut invented = base;
        invented.push(ev(10, Some((11, Ret::Read(Some((3, 1))))), Op::Get));
        assert!(check(&invented).is_err());
    }

    #[test]
    fn compare_and_set_follows_versions() {
        let h = vec![
            ev(0, Some((1, Ret::Written(0))), Op::Create(1)),
            ev(2, Some((5, Ret::Written(1))), Op::Cas(0, 2)),
            ev(3, Some((6, Ret::BadVersion)), Op::Cas(0, 3)),
        ];
        assert!(check(&h).is_ok());
        let both_won = vec![
            ev(0, Some((1, Ret::Written(0))), Op::Create(1)),
            ev(2, Some((5, Ret::Written(1))), Op::Cas(0, 2)),
            ev(3, Some((6, Ret::Written(1))), Op::Cas(0, 3)),
        ];
        assert!(check(&both_won).is_err());
    }
}
