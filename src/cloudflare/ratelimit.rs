//! The request rate limit of a run: one token bucket shared by every
//! request (retries and lookups included) of every clone of a
//! [`super::Client`], so a run stays under Cloudflare's 1200 requests per
//! five minutes per token however its requests are spread.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` of them each
//! second; each attempt takes one. In any window of `T` seconds a bucket
//! lets through at most `burst + per_second * T` requests: the default,
//! 100 and 3/s, allows 1000 in five minutes.
//!
//! Waiting is by reservation: a request takes its token at once (the
//! bucket may go into debt) and sleeps until the token would have been
//! there, so waiters are served in arrival order. A request that would have
//! to wait past the run's deadline takes nothing and is refused at once.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::time::{Duration, Instant};

/// A token-bucket rate: bursts of up to `burst` requests, then `per_second`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Tokens the bucket holds when full (at least 1).
    pub burst: u32,
    /// Tokens added per second (more than 0).
    pub per_second: f64,
}

impl RateLimit {
    /// The default: at most 1000 requests in any five minutes, well under
    /// Cloudflare's 1200.
    pub const DEFAULT: RateLimit = RateLimit {
        burst: 100,
        per_second: 3.0,
    };

    /// At most `requests` in any `window`: a tenth of them as the burst
    /// (at least one) and the rest spread over the window.
    pub fn per_window(requests: u32, window: Duration) -> Option<RateLimit> {
        RateLimit::per_window_with_burst(requests, window, (requests / 10).max(1))
    }

    /// At most `requests` in any `window`, `burst` of them at once.
    pub fn per_window_with_burst(requests: u32, window: Duration, burst: u32) -> Option<RateLimit> {
        if requests == 0 || burst == 0 || burst > requests || window.is_zero() {
            return None;
        }
        // One request may refill even when the burst is all of them.
        let refilled = f64::from((requests - burst).max(1));
        Some(RateLimit {
            burst,
            per_second: refilled / window.as_secs_f64(),
        })
    }

    /// The most requests this rate lets through in any `window`.
    pub fn max_in(&self, window: Duration) -> f64 {
        f64::from(self.burst) + self.per_second * window.as_secs_f64()
    }

    /// Parses `off` (no limit), or `N/PERIOD` with an optional
    /// `,burst=B`: `1000/300s`, `1000/5m`, `10/s`, `600/5m,burst=50`.
    pub fn parse(text: &str) -> Result<Option<RateLimit>, String> {
        let text = text.trim();
        if matches!(
            text.to_ascii_lowercase().as_str(),
            "off" | "none" | "unlimited"
        ) {
            return Ok(None);
        }
        let expected = "expected `N/PERIOD` (like `1000/300s` or `10/s`), optionally with `,burst=B`, or `off`";
        let (rate, burst) = match text.split_once(',') {
            Some((rate, option)) => {
                let burst = option
                    .trim()
                    .strip_prefix("burst=")
                    .and_then(|b| b.trim().parse::<u32>().ok())
                    .ok_or_else(|| expected.to_string())?;
                (rate.trim(), Some(burst))
            }
            None => (text, None),
        };
        let (requests, period) = rate.split_once('/').ok_or_else(|| expected.to_string())?;
        let requests: u32 = requests
            .trim()
            .parse()
            .map_err(|_| format!("`{}` is not a whole number; {expected}", requests.trim()))?;
        let period = period.trim();
        let window = match period {
            "s" => Duration::from_secs(1),
            "m" => Duration::from_secs(60),
            "h" => Duration::from_secs(3600),
            _ => crate::duration::parse(period).map_err(|e| format!("{e}; {expected}"))?,
        };
        let limit = match burst {
            Some(burst) => RateLimit::per_window_with_burst(requests, window, burst),
            None => RateLimit::per_window(requests, window),
        };
        limit.map(Some).ok_or_else(|| {
            "the count and the period must be more than 0, and the burst from 1 to the count"
                .to_string()
        })
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "bursts of {} then {}/s (at most {:.0} per 5 minutes)",
            self.burst,
            self.per_second,
            self.max_in(Duration::from_secs(300)).floor()
        )
    }
}

/// The bucket's arithmetic, over explicit instants (tested without time).
#[derive(Debug)]
struct Bucket {
    capacity: f64,
    per_second: f64,
    /// May go below zero: the debt of reservations not yet due.
    tokens: f64,
    updated: Instant,
}

impl Bucket {
    fn new(limit: RateLimit, now: Instant) -> Bucket {
        let capacity = f64::from(limit.burst.max(1));
        Bucket {
            capacity,
            per_second: limit.per_second.max(f64::MIN_POSITIVE),
            tokens: capacity,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        if now > self.updated {
            let gained = (now - self.updated).as_secs_f64() * self.per_second;
            self.tokens = (self.tokens + gained).min(self.capacity);
            self.updated = now;
        }
    }

    /// How long a request arriving at `now` waits for its token.
    fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.per_second)
        }
    }

    /// Takes a token at `now`; returns how long to wait before using it.
    fn reserve(&mut self, now: Instant) -> Duration {
        let wait = self.wait(now);
        self.tokens -= 1.0;
        wait
    }
}

/// A rate limiter; clones share one bucket. `Debug` shows the rate.
#[derive(Clone)]
pub struct RateLimiter {
    limit: Option<RateLimit>,
    bucket: Option<Arc<Mutex<Bucket>>>,
}

/// A token would only be there after the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PastDeadline {
    /// How long the request would have waited.
    pub wait: Duration,
}

impl RateLimiter {
    /// A limiter for `limit`; `None` lets everything through.
    pub fn new(limit: Option<RateLimit>) -> RateLimiter {
        RateLimiter {
            limit,
            bucket: limit.map(|l| Arc::new(Mutex::new(Bucket::new(l, Instant::now())))),
        }
    }

    pub fn limit(&self) -> Option<RateLimit> {
        self.limit
    }

    /// Takes one token, sleeping until it is due. When it would be due
    /// after `deadline`, takes nothing and returns at once.
    pub async fn acquire(&self, deadline: Option<Instant>) -> Result<(), PastDeadline> {
        let Some(bucket) = &self.bucket else {
            return Ok(());
        };
        let wait = {
            let mut bucket = bucket.lock().unwrap_or_else(PoisonError::into_inner);
            let now = Instant::now();
            let wait = bucket.wait(now);
            if deadline.is_some_and(|d| now + wait > d) {
                return Err(PastDeadline { wait });
            }
            bucket.reserve(now)
        };
        if !wait.is_zero() {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "rate limit: waiting for a token"
            );
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.limit {
            Some(limit) => write!(f, "RateLimiter({limit})"),
            None => f.write_str("RateLimiter(unlimited)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends greedily (each request as soon as its token is due) from `t0`
    /// and counts the requests that start before `t0 + window`.
    fn greedy_count(limit: RateLimit, window: Duration) -> usize {
        let t0 = Instant::now();
        let mut bucket = Bucket::new(limit, t0);
        let mut now = t0;
        let mut sent = 0;
        loop {
            now += bucket.reserve(now);
            if now >= t0 + window {
                return sent;
            }
            sent += 1;
        }
    }

    #[test]
    fn the_default_stays_under_cloudflares_limit() {
        let five_minutes = Duration::from_secs(300);
        let sent = greedy_count(RateLimit::DEFAULT, five_minutes);
        assert!(sent <= 1000, "{sent} requests in five minutes");
        assert!(sent >= 999, "{sent} requests in five minutes");
        assert!(sent < 1200);
        assert_eq!(RateLimit::DEFAULT.max_in(five_minutes), 1000.0);
        assert_eq!(
            RateLimit::per_window(1000, five_minutes),
            Some(RateLimit::DEFAULT)
        );
    }

    #[test]
    fn a_full_bucket_lets_the_burst_through_then_paces() {
        let t0 = Instant::now();
        let limit = RateLimit {
            burst: 3,
            per_second: 2.0,
        };
        let mut bucket = Bucket::new(limit, t0);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(t0), Duration::ZERO);
        }
        // Then one every half second, in arrival order.
        assert_eq!(bucket.reserve(t0), Duration::from_millis(500));
        assert_eq!(bucket.reserve(t0), Duration::from_millis(1000));
        // After a long pause the bucket is full again, not fuller.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(bucket.reserve(later), Duration::ZERO);
        }
        assert_eq!(bucket.wait(later), Duration::from_millis(500));
    }

    #[test]
    fn no_window_ever_holds_more_than_the_rate_allows() {
        let limit = RateLimit::per_window(60, Duration::from_secs(10)).expect("valid");
        assert_eq!(limit.burst, 6);
        let t0 = Instant::now();
        let mut bucket = Bucket::new(limit, t0);
        let mut now = t0;
        let mut starts = Vec::new();
        // Bursty arrivals: idle spells, then floods.
        for round in 0..20u64 {
            now += Duration::from_millis(137 * (round % 7));
            for _ in 0..(round % 5) * 9 {
                let wait = bucket.reserve(now);
                starts.push(now + wait);
            }
        }
        starts.sort();
        let window = Duration::from_secs(10);
        for (i, start) in starts.iter().enumerate() {
            let in_window = starts[i..]
                .iter()
                .take_while(|s| **s < *start + window)
                .count();
            assert!(in_window <= 60, "{in_window} requests in one window");
        }
    }

    #[test]
    fn rates_parse_with_defaults_and_explicit_bursts() {
        assert_eq!(RateLimit::parse("off"), Ok(None));
        assert_eq!(RateLimit::parse(" Unlimited "), Ok(None));
        assert_eq!(RateLimit::parse("1000/300s"), Ok(Some(RateLimit::DEFAULT)));
        assert_eq!(RateLimit::parse("1000/5m"), Ok(Some(RateLimit::DEFAULT)));
        assert_eq!(
            RateLimit::parse("10/s"),
            Ok(Some(RateLimit {
                burst: 1,
                per_second: 9.0
            }))
        );
        assert_eq!(
            RateLimit::parse("600/5m, burst=50"),
            Ok(Some(RateLimit {
                burst: 50,
                per_second: 550.0 / 300.0
            }))
        );
        for bad in [
            "",
            "1000",
            "x/300s",
            "1000/",
            "1000/300q",
            "0/1s",
            "10/0s",
            "10/s,burst=11",
            "10/s,burst=0",
            "10/s,bust=2",
        ] {
            let error = RateLimit::parse(bad).expect_err(bad);
            assert!(!error.is_empty());
        }
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_refuses_at_once_what_would_come_after_the_deadline() {
        let limiter = RateLimiter::new(Some(RateLimit {
            burst: 2,
            per_second: 1.0 / 3600.0,
        }));
        let clone = limiter.clone();
        let deadline = Some(Instant::now() + Duration::from_secs(60));
        assert_eq!(limiter.acquire(deadline).await, Ok(()));
        // Clones share the bucket.
        assert_eq!(clone.acquire(deadline).await, Ok(()));
        // The clock is paused: it moves only when something sleeps.
        let started = Instant::now();
        let refused = limiter
            .acquire(deadline)
            .await
            .expect_err("past the deadline");
        assert!(refused.wait > Duration::from_secs(3000));
        assert_eq!(started.elapsed(), Duration::ZERO, "did not sleep");
        // Refusing took nothing: still refused, with the same wait.
        let again = clone.acquire(deadline).await.expect_err("still empty");
        assert_eq!(again.wait, refused.wait);
    }

    #[tokio::test(start_paused = true)]
    async fn acquire_sleeps_until_the_token_is_due() {
        let limiter = RateLimiter::new(Some(RateLimit {
            burst: 1,
            per_second: 50.0,
        }));
        let started = Instant::now();
        limiter.acquire(None).await.expect("no deadline");
        limiter.acquire(None).await.expect("no deadline");
        limiter.acquire(None).await.expect("no deadline");
        // Two tokens at 50/s: 40 ms on the paused clock, which only the
        // limiter's sleeps move.
        assert_eq!(started.elapsed(), Duration::from_millis(40));
        let unlimited = RateLimiter::new(None);
        for _ in 0..10_000 {
            unlimited
                .acquire(Some(Instant::now()))
                .await
                .expect("unlimited");
        }
        assert_eq!(format!("{unlimited:?}"), "RateLimiter(unlimited)");
        assert!(format!("{limiter:?}").contains("50/s"));
    }
}
