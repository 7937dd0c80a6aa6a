//! When to retry a request, and how long to wait: a policy function over the
//! method, the status or transport failure, `Retry-After` and the attempt.

use std::time::Duration;

use rand::Rng;
use reqwest::Method;

/// Exponential backoff with full jitter, honouring `Retry-After`.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base_delay: Duration,
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

/// Whether a request can be sent twice without doing the work twice. A
/// `POST` creates: retrying it blindly after a lost response could create a
/// duplicate, so the caller looks the resource up first instead.
fn idempotent(method: &Method) -> bool {
    method != Method::POST
}

impl RetryPolicy {
    /// A policy that never retries (for tests of failure paths).
    pub fn none() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(16);
        let ceiling = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::rng().random_range(0..=millis.max(1)))
    }

    /// The wait before retrying after an HTTP status, or `None` to give up.
    /// 429 means the request was not processed, so every method may retry;
    /// 5xx may have been processed, so only idempotent methods retry.
    pub fn delay_for_status(
        &self,
        method: &Method,
        status: u16,
        retry_after: Option<&str>,
        attempt: u32,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let retryable = status == 429 || (status >= 500 && idempotent(method));
        if !retryable {
            return None;
        }
        match retry_after.and_then(|v| v.trim().parse::<u64>().ok()) {
            Some(seconds) => {
                let wait = Duration::from_secs(seconds);
                (wait <= self.max_retry_after).then_some(wait)
            }
            None => Some(self.backoff(attempt)),
        }
    }

    /// The wait before retrying after a transport failure, or `None`.
    pub fn delay_for_transport(&self, method: &Method, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts || !idempotent(method) {
            return None;
        }
        Some(self.backoff(attempt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_rate_limits_for_every_method_and_honours_retry_after() {
        let policy = RetryPolicy::default();
        assert_eq!(
            policy.delay_for_status(&Method::POST, 429, Some("3"), 1),
            Some(Duration::from_secs(3))
        );
        assert!(
            policy
                .delay_for_status(&Method::GET, 429, None, 1)
                .is_some()
        );
        assert_eq!(
            policy.delay_for_status(&Method::GET, 429, Some("100000"), 1),
            None
        );
    }

    #[test]
    fn never_retries_a_create_after_a_server_error() {
        let policy = RetryPolicy::default();
        assert!(
            policy
                .delay_for_status(&Method::POST, 503, None, 1)
                .is_none()
        );
        assert!(policy.delay_for_transport(&Method::POST, 1).is_none());
        assert!(
            policy
                .delay_for_status(&Method::GET, 503, None, 1)
                .is_some()
        );
        assert!(
            policy
                .delay_for_status(&Method::DELETE, 500, None, 1)
                .is_some()
        );
    }

    #[test]
    fn gives_up_after_max_attempts_and_on_client_errors() {
        let policy = RetryPolicy::default();
        assert!(
            policy
                .delay_for_status(&Method::GET, 503, None, policy.max_attempts)
                .is_none()
        );
        assert!(
            policy
                .delay_for_status(&Method::GET, 400, None, 1)
                .is_none()
        );
        assert!(
            policy
                .delay_for_status(&Method::GET, 404, None, 1)
                .is_none()
        );
    }

    #[test]
    fn backoff_stays_under_the_cap() {
        let policy = RetryPolicy::default();
        for attempt in 1..30 {
            assert!(policy.backoff(attempt) <= policy.max_delay);
        }
    }
}
