//! Per-server limits on what one client can take: requests per second per session, and
//! lock waiters per session and in all. Each refuses with RESOURCE_EXHAUSTED and a time to
//! wait, so an abusive or runaway client gets told, not queued without bound.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{GroveError, Limit};

/// Independent locks, so sessions on different shards never contend.
const SHARDS: usize = 16;
/// Buckets kept per shard before idle (full) ones are forgotten.
const SHARD_SOFT_CAP: usize = 4096;

/// A token bucket: `rate` tokens a second, holding at most one second's worth.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Requests per second per session.
pub struct RateLimiter {
    rate: f64,
    shards: Vec<Mutex<HashMap<u64, Bucket>>>,
}

impl RateLimiter {
    /// `rate` requests a second per session; 0: no limit.
    pub fn new(rate: u64) -> RateLimiter {
        RateLimiter { rate: rate as f64, shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect() }
    }

    /// Takes one request's token for `session`, or says how long until one is free.
    pub fn admit(&self, session: u64, now: Instant) -> Result<(), GroveError> {
        if self.rate == 0.0 || session == 0 {
            return Ok(());
        }
        let mut shard = self.shards[(session as usize) % SHARDS].lock().unwrap();
        if shard.len() >= SHARD_SOFT_CAP && !shard.contains_key(&session) {
            // Sessions idle for a second have full buckets: nothing is lost by forgetting them.
            let rate = self.rate;
            shard.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < rate);
        }
        let bucket = shard.entry(session).or_insert(Bucket { tokens: self.rate, at: now });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * self.rate).min(self.rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        let wait = Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate);
        Err(GroveError::too_many(
            Limit::Requests,
            format!(
                "session 0x{session:x} is over {} requests a second (--max-session-request-rate); retry in {} ms",
                self.rate,
                wait.as_millis().max(1)
            ),
            wait.as_millis().max(1) as u64,
        ))
    }
}

/// Lock, semaphore and election requests waiting on this server.
pub struct WaiterSlots {
    max_total: usize,
    max_per_session: usize,
    counts: Mutex<(usize, HashMap<u64, usize>)>,
}

/// A taken slot, given back when dropped.
pub struct WaiterSlot {
    slots: Arc<WaiterSlots>,
    session: u64,
}

impl WaiterSlots {
    /// 0: no limit.
    pub fn new(max_total: usize, max_per_session: usize) -> Arc<WaiterSlots> {
        let or_max = |n: usize| if n == 0 { usize::MAX } else { n };
        Arc::new(WaiterSlots {
            max_total: or_max(max_total),
            max_per_session: or_max(max_per_session),
            counts: Mutex::new((0, HashMap::new())),
        })
    }

    pub fn take(self: &Arc<Self>, session: u64) -> Result<WaiterSlot, GroveError> {
        let mut counts = self.counts.lock().unwrap();
        let (total, per) = &mut *counts;
        let mine = per.get(&session).copied().unwrap_or(0);
        if *total >= self.max_total {
            return Err(GroveError::too_many(
                Limit::LockWaiters,
                format!("{total} lock requests wait on this server, its limit (--max-lock-waiters)"),
                1_000,
            ));
        }
        if mine >= self.max_per_session {
            return Err(GroveError::too_many(
                Limit::LockWaiters,
                format!(
                    "session 0x{session:x} has {mine} lock requests waiting, its limit (--max-lock-waiters-per-session)"
                ),
                1_000,
            ));
        }
        *total += 1;
        per.insert(session, mine + 1);
        Ok(WaiterSlot { slots: self.clone(), session })
    }

    pub fn waiting(&self) -> usize {
        self.counts.lock().unwrap().0
    }
}

impl Drop for WaiterSlot {
    fn drop(&mut self) {
        let mut counts = self.slots.counts.lock().unwrap();
        let (total, per) = &mut *counts;
        *total -= 1;
        if let Some(n) = per.get_mut(&self.session) {
            *n -= 1;
            if *n == 0 {
                per.remove(&self.session);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_gets_its_rate_and_is_told_how_long_to_wait() {
        let limiter = RateLimiter::new(10);
        let t0 = Instant::now();
        for _ in 0..10 {
            limiter.admit(7, t0).unwrap();
        }
        let Err(GroveError::TooMany { retry_after_ms, limit: Limit::Requests, .. }) = limiter.admit(7, t0) else {
            panic!("the 11th request in the same instant is refused");
        };
        assert!((1..=100).contains(&retry_after_ms), "{retry_after_ms}");
        // Other sessions and session-less requests are unaffected.
        limiter.admit(8, t0).unwrap();
        limiter.admit(0, t0).unwrap();
        // A tenth of a second later, one more token.
        limiter.admit(7, t0 + Duration::from_millis(100)).unwrap();
        assert!(limiter.admit(7, t0 + Duration::from_millis(100)).is_err());
        // Idle sessions refill to a burst of one second, no more.
        for _ in 0..10 {
            limiter.admit(7, t0 + Duration::from_secs(60)).unwrap();
        }
        assert!(limiter.admit(7, t0 + Duration::from_secs(60)).is_err());
        RateLimiter::new(0).admit(7, t0).unwrap();
    }

    #[test]
    fn idle_buckets_are_forgotten_when_a_shard_fills() {
        let limiter = RateLimiter::new(5);
        let t0 = Instant::now();
        // Sessions that all land in shard 0, busy at t0: none can be forgotten yet.
        let in_shard = |i: usize| (i * SHARDS) as u64 + SHARDS as u64;
        for i in 0..SHARD_SOFT_CAP + 10 {
            limiter.admit(in_shard(i), t0).unwrap();
        }
        assert_eq!(limiter.shards[0].lock().unwrap().len(), SHARD_SOFT_CAP + 10);
        // Two seconds on, they are idle (full again): a newcomer sweeps them out.
        limiter.admit(in_shard(SHARD_SOFT_CAP + 10), t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(limiter.shards[0].lock().unwrap().len(), 1);
    }

    #[test]
    fn waiter_slots_bound_each_session_and_the_server() {
        let slots = WaiterSlots::new(3, 2);
        let a1 = slots.take(1).unwrap();
        let _a2 = slots.take(1).unwrap();
        assert!(matches!(slots.take(1), Err(GroveError::TooMany { limit: Limit::LockWaiters, .. })));
        let _b1 = slots.take(2).unwrap();
        assert!(slots.take(3).is_err(), "the server's limit");
        drop(a1);
        assert_eq!(slots.waiting(), 2);
        slots.take(3).unwrap();
        assert_eq!(slots.waiting(), 2, "dropped slots are given back");
    }
}
