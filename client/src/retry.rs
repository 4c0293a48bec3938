//! Retry policies: how long the client keeps trying a request through connection losses,
//! leader changes and lost quorums (Curator's `RetryPolicy`).
//!
//! Only requests that are safe to repeat are retried: reads, and writes, which always carry
//! a request id the servers apply once. A request error (NO_NODE, BAD_VERSION, ...) is
//! never retried.

use std::time::Duration;

/// Decides whether, and after how long a pause, a failed attempt is tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetryPolicy {
    /// Sleeps `base * 2^retries` (with jitter), at most `max_sleep`, up to `max_retries`
    /// times (Curator's ExponentialBackoffRetry / BoundedExponentialBackoffRetry).
    ExponentialBackoff { base: Duration, max_sleep: Duration, max_retries: u32 },
    /// `n` retries, `sleep` apart (RetryNTimes).
    NTimes { n: u32, sleep: Duration },
    /// Retries forever, `sleep` apart (RetryForever).
    Forever { sleep: Duration },
    /// Retries with exponential backoff (50 ms up to 1 s) until `max_elapsed` has passed
    /// since the first attempt (RetryUntilElapsed). The default, with the request timeout.
    UntilElapsed { max_elapsed: Duration },
    /// One attempt per server, no pause (RetryOneTime without the sleep).
    Never,
}

impl RetryPolicy {
    pub fn exponential_backoff(base: Duration, max_sleep: Duration, max_retries: u32) -> RetryPolicy {
        RetryPolicy::ExponentialBackoff { base, max_sleep, max_retries }
    }

    pub fn n_times(n: u32, sleep: Duration) -> RetryPolicy {
        RetryPolicy::NTimes { n, sleep }
    }

    pub fn forever(sleep: Duration) -> RetryPolicy {
        RetryPolicy::Forever { sleep }
    }

    pub fn until_elapsed(max_elapsed: Duration) -> RetryPolicy {
        RetryPolicy::UntilElapsed { max_elapsed }
    }

    /// The pause before retry number `retries + 1`, or `None` to give up. `elapsed` is the
    /// time since the first attempt.
    pub fn next_sleep(&self, retries: u32, elapsed: Duration) -> Option<Duration> {
        match *self {
            RetryPolicy::ExponentialBackoff { base, max_sleep, max_retries } => {
                (retries < max_retries).then(|| backoff(base, max_sleep, retries))
            }
            RetryPolicy::NTimes { n, sleep } => (retries < n).then_some(sleep),
            RetryPolicy::Forever { sleep } => Some(sleep),
            RetryPolicy::UntilElapsed { max_elapsed } => {
                let sleep = backoff(Duration::from_millis(50), Duration::from_secs(1), retries);
                // Give up rather than sleep past the bound.
                (elapsed + sleep < max_elapsed).then_some(sleep)
            }
            RetryPolicy::Never => None,
        }
    }
}

/// `base * 2^retries`, capped, with up to 25% random jitter so clients that lost the same
/// server do not all come back at the same instant.
fn backoff(base: Duration, max: Duration, retries: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << retries.min(16)).min(max);
    let jitter = exp.as_millis() as u64 / 4;
    let jitter = if jitter > 0 { rand::random::<u64>() % jitter } else { 0 };
    (exp + Duration::from_millis(jitter)).min(max.max(base))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn policies_bound_their_retries() {
        let p = RetryPolicy::n_times(2, 5 * MS);
        assert_eq!(p.next_sleep(0, Duration::ZERO), Some(5 * MS));
        assert_eq!(p.next_sleep(1, Duration::ZERO), Some(5 * MS));
        assert_eq!(p.next_sleep(2, Duration::ZERO), None);

        let p = RetryPolicy::exponential_backoff(10 * MS, 100 * MS, 5);
        let sleeps: Vec<_> = (0..5).map(|i| p.next_sleep(i, Duration::ZERO).unwrap()).collect();
        assert!(sleeps[0] >= 10 * MS && sleeps[0] < 13 * MS, "{sleeps:?}");
        assert!(sleeps[2] >= 40 * MS && sleeps[2] < 51 * MS, "{sleeps:?}");
        assert!(sleeps.iter().all(|s| *s <= 100 * MS), "{sleeps:?}");
        assert_eq!(p.next_sleep(5, Duration::ZERO), None);

        let p = RetryPolicy::until_elapsed(Duration::from_secs(2));
        assert!(p.next_sleep(0, Duration::ZERO).is_some());
        assert!(p.next_sleep(30, Duration::from_millis(1500)).is_none(), "a 1 s pause would pass the bound");
        assert_eq!(RetryPolicy::forever(MS).next_sleep(1_000_000, Duration::from_secs(1 << 20)), Some(MS));
        assert_eq!(RetryPolicy::Never.next_sleep(0, Duration::ZERO), None);
    }
}
