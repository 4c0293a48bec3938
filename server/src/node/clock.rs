//! The leaders' entry clock: the time stamped on every entry (ctime, mtime, TTLs, request
//! retention) and the time the reaper compares TTLs with.
//!
//! Entry times must never go back, whoever leads (the state machine also takes the
//! maximum). Stamping `max(own clock, latest applied)` would freeze time while a leader's
//! clock is behind the latest entry: after a leader whose clock ran an hour ahead, nothing
//! would move for an hour (TTL nodes would outlive their TTL by that hour). So a leader
//! stamps its own clock plus an offset: the offset grows to whatever keeps the stamps
//! ahead of the latest entry applied, and shrinks by 1 ms per 100 ms of real time, so the
//! entry clock always advances at about real speed (at least 0.99 of it) and converges
//! back to the leader's own clock.

use std::sync::Mutex;
use std::time::Instant;

use super::now_ms;

/// How fast an offset is worked off: 1 ms per this many ms.
const SLEW: i64 = 100;

pub struct EntryClock {
    inner: Mutex<State>,
}

struct State {
    /// The latest entry time applied or stamped here.
    last: i64,
    /// Added to this server's clock.
    offset: i64,
    /// When `offset` was last worked off.
    at: Instant,
}

impl EntryClock {
    /// `applied`: the entry clock of the state at hand.
    pub fn new(applied: i64) -> Self {
        EntryClock { inner: Mutex::new(State { last: applied, offset: 0, at: Instant::now() }) }
    }

    /// Takes in the time of an applied entry (any leader's).
    pub fn observe(&self, time: i64) {
        let mut st = self.inner.lock().unwrap();
        st.last = st.last.max(time);
    }

    /// The entry clock now, without stamping anything: what the reaper compares with.
    pub fn now(&self) -> i64 {
        let mut st = self.inner.lock().unwrap();
        Self::advance(&mut st, now_ms())
    }

    /// The time for a new entry: never before one applied or stamped here.
    pub fn stamp(&self) -> i64 {
        let mut st = self.inner.lock().unwrap();
        let t = Self::advance(&mut st, now_ms());
        st.last = t;
        t
    }

    fn advance(st: &mut State, wall: i64) -> i64 {
        let elapsed = st.at.elapsed().as_millis() as i64;
        if elapsed >= SLEW {
            st.offset = (st.offset - elapsed / SLEW).max(0);
            st.at = Instant::now();
        }
        let t = (wall + st.offset).max(st.last);
        st.offset = st.offset.max(t - wall);
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_never_go_back_and_keep_moving_after_a_fast_leader() {
        let clock = EntryClock::new(0);
        let wall = now_ms();
        // A previous leader's clock ran an hour ahead.
        let ahead = wall + 3_600_000;
        clock.observe(ahead);
        let first = clock.stamp();
        assert!(first >= ahead);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let second = clock.stamp();
        assert!(second > first, "time moves on ({first} then {second})");
        assert!(second - first >= 200, "at about real speed: {} ms in 250 ms", second - first);
        assert!(clock.now() >= second);
    }

    #[test]
    fn an_offset_is_worked_off_slowly() {
        let clock = EntryClock::new(0);
        let mut st = clock.inner.lock().unwrap();
        st.offset = 1_000;
        st.at = Instant::now() - std::time::Duration::from_millis(10_000);
        let t = EntryClock::advance(&mut st, 5_000);
        assert_eq!(st.offset, 900, "10 s of real time work off 100 ms");
        assert_eq!(t, 5_900);
        st.last = 0;
        assert_eq!(EntryClock::advance(&mut st, 5_000), 5_900, "never below the wall clock plus the offset");
    }
}
