//! When to retry a request, and how long to wait: a pure policy over what
//! one attempt came to (an answer with a status, a connection that never
//! opened, or an answer that was lost), whether sending the request again is
//! harmless, the attempt number and `Retry-After`.
//!
//! - 429 means "not processed": every request retries, after `Retry-After`
//!   when the server sent one, else after the backoff.
//! - A connection that could not be opened sent nothing: every request
//!   retries after the backoff.
//! - A 5xx or a lost answer (the connection dropped after the request may
//!   have been sent, a timeout, a body cut short) may have been processed:
//!   only requests that are harmless to repeat ([`Repeat::Safe`]) retry; for
//!   the others the decision is [`Decision::Ambiguous`] and the caller looks
//!   the resource up before sending anything again.
//!
//! The backoff is exponential with full jitter: a uniform draw from zero to
//! `min(max_delay, base_delay * 2^(attempt-1))`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::Rng;
use reqwest::Method;

/// How many times to try, and how long to wait in between.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub max_attempts: u32,
    /// The ceiling of the first backoff; each later one doubles it.
    pub base_delay: Duration,
    /// The highest ceiling of a backoff.
    pub max_delay: Duration,
    /// A `Retry-After` longer than this is not waited for: the error is returned.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

/// Whether sending a request twice does no more than sending it once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Reads, replacements (`PUT`), settings (`PATCH`), deletes, and the
    /// `POST`s known to be harmless to repeat (read-only D1 queries, a
    /// time-travel restore).
    Safe,
    /// Creates: after a lost answer the resource may exist already, so the
    /// caller looks it up before sending the request again.
    Unsafe,
}

impl Repeat {
    /// The default for a method: `POST` creates, everything else repeats.
    pub fn of(method: &Method) -> Repeat {
        if method == Method::POST {
            Repeat::Unsafe
        } else {
            Repeat::Safe
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer with this status, read to its end.
    Status(u16),
    /// The connection could not be opened (refused, DNS, TLS handshake,
    /// connect timeout): nothing was sent.
    NotSent,
    /// The request may have reached the server, but no complete answer
    /// came back (reset, closed, timed out, body cut short).
    Lost,
}

impl Outcome {
    /// Whether the server may have done the work without the client
    /// learning the result.
    pub fn maybe_processed(self) -> bool {
        match self {
            Outcome::Status(status) => status >= 500,
            Outcome::NotSent => false,
            Outcome::Lost => true,
        }
    }
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The attempt's result is final: a success, or an error that
    /// retrying cannot fix.
    Accept,
    /// Send the request again after this wait.
    Retry(Duration),
    /// Worth retrying, but the attempts are used up, or the server asks for
    /// a longer wait than [`RetryPolicy::max_retry_after`].
    GiveUp,
    /// The request may have taken effect and must not be sent again
    /// blindly: the caller looks the resource up first.
    Ambiguous,
}

impl RetryPolicy {
    /// A policy that never retries (for tests of failure paths).
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// Whether another attempt may follow attempt number `attempt`.
    pub fn can_retry(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }

    /// The wait after attempt number `attempt` (1-based), full jitter.
    pub fn backoff(&self, attempt: u32) -> Duration {
        self.backoff_with(attempt, &mut rand::rng())
    }

    /// [`RetryPolicy::backoff`] drawing from `rng` (seeded in tests).
    pub fn backoff_with(&self, attempt: u32, rng: &mut impl Rng) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let micros = u64::try_from(ceiling.as_micros()).unwrap_or(u64::MAX);
        Duration::from_micros(rng.random_range(0..=micros))
    }

    /// What to do after attempt number `attempt` of a request, given what
    /// it came to and the answer's `Retry-After` (already parsed).
    pub fn decide(
        &self,
        repeat: Repeat,
        outcome: Outcome,
        attempt: u32,
        retry_after: Option<Duration>,
    ) -> Decision {
        let retry = |wait: Option<Duration>| match wait {
            Some(wait) if wait > self.max_retry_after => Decision::GiveUp,
            _ if !self.can_retry(attempt) => Decision::GiveUp,
            Some(wait) => Decision::Retry(wait),
            None => Decision::Retry(self.backoff(attempt)),
        };
        match outcome {
            Outcome::Status(429) => retry(retry_after),
            Outcome::Status(status) if status >= 500 => match repeat {
                Repeat::Safe => retry(retry_after),
                Repeat::Unsafe => Decision::Ambiguous,
            },
            Outcome::Status(_) => Decision::Accept,
            Outcome::NotSent => retry(None),
            Outcome::Lost => match repeat {
                Repeat::Safe => retry(None),
                Repeat::Unsafe => Decision::Ambiguous,
            },
        }
    }
}

/// Reads a `Retry-After` value: delay-seconds (`120`) or an HTTP date
/// (`Wed, 21 Oct 2015 07:28:00 GMT`, and the two obsolete forms HTTP
/// recipients must accept). A date in the past means "now".
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Digits only: an overflow is "a very long time", not "no header".
        return Some(Duration::from_secs(
            value.parse::<u64>().unwrap_or(u64::MAX),
        ));
    }
    let date = parse_http_date(value)?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Parses an HTTP date (RFC 9110 section 5.6.7): IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94
/// 08:49:37 GMT`) or asctime (`Sun Nov  6 08:49:37 1994`).
pub fn parse_http_date(value: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|part| !part.is_empty())
        .collect();
    let (day, month, year, time) = match parts.as_slice() {
        [_, day, month, year, time, "GMT"] => (*day, *month, year.parse::<i64>().ok()?, *time),
        [_, date, time, "GMT"] => {
            let mut fields = date.split('-');
            let (day, month, year) = (fields.next()?, fields.next()?, fields.next()?);
            if fields.next().is_some() || year.len() != 2 {
                return None;
            }
            let year: i64 = year.parse().ok()?;
            // Two-digit years: 70..99 are the 1900s, the rest the 2000s.
            (
                day,
                month,
                if year >= 70 { 1900 + year } else { 2000 + year },
                *time,
            )
        }
        [_, month, day, time, year] => (*day, *month, year.parse::<i64>().ok()?, *time),
        _ => return None,
    };
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS.iter().position(|m| *m == month)? as i64 + 1;
    let day: i64 = day.parse().ok()?;
    let mut clock = time.split(':').map(|t| t.parse::<i64>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some()
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..=60).contains(&second)
        || year < 1970
    {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(seconds).ok()?))
}

/// Days from 1970-01-01 to the given proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SAFE: Repeat = Repeat::Safe;
    const UNSAFE: Repeat = Repeat::Unsafe;

    #[test]
    fn rate_limits_retry_for_every_request_and_honour_retry_after() {
        let policy = RetryPolicy::default();
        let three = Some(Duration::from_secs(3));
        assert_eq!(
            policy.decide(UNSAFE, Outcome::Status(429), 1, three),
            Decision::Retry(Duration::from_secs(3))
        );
        assert!(matches!(
            policy.decide(SAFE, Outcome::Status(429), 1, None),
            Decision::Retry(_)
        ));
        // Longer than the policy allows: give up rather than hang.
        assert_eq!(
            policy.decide(
                SAFE,
                Outcome::Status(429),
                1,
                Some(Duration::from_secs(100_000))
            ),
            Decision::GiveUp
        );
    }

    #[test]
    fn server_errors_and_lost_answers_retry_only_what_is_safe_to_repeat() {
        let policy = RetryPolicy::default();
        for outcome in [Outcome::Status(500), Outcome::Status(503), Outcome::Lost] {
            assert!(outcome.maybe_processed());
            assert!(matches!(
                policy.decide(SAFE, outcome, 1, None),
                Decision::Retry(_)
            ));
            assert_eq!(policy.decide(UNSAFE, outcome, 1, None), Decision::Ambiguous);
        }
        // A 503 asking for a wait gets it.
        assert_eq!(
            policy.decide(SAFE, Outcome::Status(503), 1, Some(Duration::from_secs(2))),
            Decision::Retry(Duration::from_secs(2))
        );
    }

    #[test]
    fn a_connection_that_never_opened_is_retried_even_for_a_create() {
        let policy = RetryPolicy::default();
        assert!(!Outcome::NotSent.maybe_processed());
        assert!(matches!(
            policy.decide(UNSAFE, Outcome::NotSent, 1, None),
            Decision::Retry(_)
        ));
        assert_eq!(
            policy.decide(UNSAFE, Outcome::NotSent, policy.max_attempts, None),
            Decision::GiveUp
        );
    }

    #[test]
    fn gives_up_after_max_attempts_and_accepts_client_errors() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.decide(SAFE, Outcome::Status(503), policy.max_attempts, None),
            Decision::GiveUp
        );
        for status in [200, 201, 400, 403, 404, 409] {
            assert_eq!(
                policy.decide(SAFE, Outcome::Status(status), 1, None),
                Decision::Accept
            );
            assert_eq!(
                policy.decide(UNSAFE, Outcome::Status(status), 1, None),
                Decision::Accept
            );
        }
        assert_eq!(
            RetryPolicy::none().decide(SAFE, Outcome::Lost, 1, None),
            Decision::GiveUp
        );
    }

    #[test]
    fn only_post_is_unsafe_by_default() {
        assert_eq!(Repeat::of(&Method::POST), Repeat::Unsafe);
        for method in [Method::GET, Method::PUT, Method::PATCH, Method::DELETE] {
            assert_eq!(Repeat::of(&method), Repeat::Safe);
        }
    }

    #[test]
    fn backoff_is_full_jitter_under_a_doubling_ceiling() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retry_after: Duration::from_secs(1),
        };
        let mut rng = StdRng::seed_from_u64(7);
        for attempt in 1..40 {
            let ceiling = (Duration::from_millis(100) * 2u32.pow(attempt.min(20) - 1))
                .min(Duration::from_secs(1));
            for _ in 0..50 {
                assert!(policy.backoff_with(attempt, &mut rng) <= ceiling);
            }
        }
        // Full jitter: the draws spread over the whole range.
        let draws: Vec<Duration> = (0..200).map(|_| policy.backoff_with(5, &mut rng)).collect();
        assert!(draws.iter().any(|d| *d < Duration::from_millis(250)));
        assert!(draws.iter().any(|d| *d > Duration::from_millis(750)));
        // Seeded: the same seed gives the same waits.
        let a: Vec<Duration> = {
            let mut rng = StdRng::seed_from_u64(1);
            (1..6).map(|n| policy.backoff_with(n, &mut rng)).collect()
        };
        let b: Vec<Duration> = {
            let mut rng = StdRng::seed_from_u64(1);
            (1..6).map(|n| policy.backoff_with(n, &mut rng)).collect()
        };
        assert_eq!(a, b);
        // A zero base (fast retries in tests) never waits.
        let zero = RetryPolicy {
            base_delay: Duration::ZERO,
            ..policy
        };
        assert_eq!(zero.backoff_with(3, &mut rng), Duration::ZERO);
    }

    #[test]
    fn retry_after_reads_seconds_and_all_three_date_forms() {
        // 1994-11-06 08:49:37 UTC.
        let date = UNIX_EPOCH + Duration::from_secs(784_111_777);
        let before = date - Duration::from_secs(30);
        assert_eq!(
            parse_retry_after(" 120 ", before),
            Some(Duration::from_secs(120))
        );
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(parse_http_date(form), Some(date), "{form}");
            assert_eq!(
                parse_retry_after(form, before),
                Some(Duration::from_secs(30)),
                "{form}"
            );
        }
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after(
                "Sun, 06 Nov 1994 08:49:37 GMT",
                date + Duration::from_secs(5)
            ),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_http_date("Thu, 01 Jan 1970 00:00:00 GMT"),
            Some(UNIX_EPOCH)
        );
        assert_eq!(
            parse_http_date("Tue, 29 Feb 2028 23:59:59 GMT"),
            Some(UNIX_EPOCH + Duration::from_secs(1_835_481_599))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", before),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn malformed_retry_after_values_are_ignored() {
        let now = UNIX_EPOCH;
        for bad in [
            "",
            "-1",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
        ] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }
}
