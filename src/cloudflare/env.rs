//! Client settings from environment variables (for CI, tests and fault
//! trials), read once per run by the CLI and applied on top of
//! [`ClientConfig::new`]'s defaults:
//!
//! | variable | meaning | default |
//! |---|---|---|
//! | `FLAREOPS_RETRY_ATTEMPTS` | attempts per request, the first included (1-100) | 5 |
//! | `FLAREOPS_RETRY_BASE_MS` | ceiling of the first backoff, in ms | 250 |
//! | `FLAREOPS_RETRY_MAX_MS` | highest backoff ceiling, in ms | 20000 |
//! | `FLAREOPS_RATE_LIMIT` | `N/PERIOD[,burst=B]` or `off` | `1000/300s` (burst 100, 3/s) |
//! | `FLAREOPS_TIMEOUT` | overall time for the run's requests, or `off` | off |
//! | `FLAREOPS_REQUEST_TIMEOUT` | time for one attempt | `60s` |
//!
//! Durations are written like `15m`, `90s`, `1h30m` or `500ms` (a bare
//! number is seconds; see [`crate::duration`]). An empty variable counts as unset; an invalid one is
//! an error naming it.

use std::time::Duration;

use super::ratelimit::RateLimit;
use super::{ClientConfig, Deadline};

pub const RETRY_ATTEMPTS: &str = "FLAREOPS_RETRY_ATTEMPTS";
pub const RETRY_BASE_MS: &str = "FLAREOPS_RETRY_BASE_MS";
pub const RETRY_MAX_MS: &str = "FLAREOPS_RETRY_MAX_MS";
pub const RATE_LIMIT: &str = "FLAREOPS_RATE_LIMIT";
pub const TIMEOUT: &str = "FLAREOPS_TIMEOUT";
pub const REQUEST_TIMEOUT: &str = "FLAREOPS_REQUEST_TIMEOUT";

/// Most attempts a request may be given.
const MAX_ATTEMPTS: u32 = 100;
/// Longest backoff ceiling accepted (one hour).
const MAX_BACKOFF_MS: u64 = 3_600_000;

/// An environment variable with a value the client cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {variable}={value:?}: {reason}")]
pub struct SettingError {
    pub variable: &'static str,
    pub value: String,
    pub reason: String,
}

/// The settings found in the environment; `None`: not set, keep the default.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub retry_attempts: Option<u32>,
    pub retry_base: Option<Duration>,
    pub retry_max: Option<Duration>,
    /// `Some(None)`: no rate limit.
    pub rate_limit: Option<Option<RateLimit>>,
    /// `Some(None)`: no overall timeout.
    pub timeout: Option<Option<Duration>>,
    pub request_timeout: Option<Duration>,
}

impl Settings {
    /// Reads the settings through `var` (normally `std::env::var(name).ok()`).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Settings, SettingError> {
        let read = |name: &'static str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .map(|v| (name, v))
        };
        let error = |variable: &'static str, value: &str, reason: String| SettingError {
            variable,
            value: value.to_string(),
            reason,
        };
        let whole = |(name, value): (&'static str, String), max: u64| {
            value
                .parse::<u64>()
                .ok()
                .filter(|n| *n <= max)
                .ok_or_else(|| {
                    error(
                        name,
                        &value,
                        format!("expected a whole number from 0 to {max}"),
                    )
                })
        };
        let mut settings = Settings::default();
        if let Some((name, value)) = read(RETRY_ATTEMPTS) {
            let attempts = value
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=MAX_ATTEMPTS).contains(n))
                .ok_or_else(|| {
                    error(
                        name,
                        &value,
                        format!("expected a whole number of attempts from 1 to {MAX_ATTEMPTS}"),
                    )
                })?;
            settings.retry_attempts = Some(attempts);
        }
        if let Some(found) = read(RETRY_BASE_MS) {
            settings.retry_base = Some(Duration::from_millis(whole(found, MAX_BACKOFF_MS)?));
        }
        if let Some(found) = read(RETRY_MAX_MS) {
            settings.retry_max = Some(Duration::from_millis(whole(found, MAX_BACKOFF_MS)?));
        }
        // Only both set and contradicting is an error: a base above the
        // default ceiling raises the ceiling (see `with_settings`).
        if let (Some(base), Some(max)) = (settings.retry_base, settings.retry_max)
            && max < base
        {
            let value = read(RETRY_MAX_MS).map(|(_, v)| v).unwrap_or_default();
            return Err(error(
                RETRY_MAX_MS,
                &value,
                format!(
                    "the backoff ceiling must not be less than {RETRY_BASE_MS} ({} ms)",
                    base.as_millis()
                ),
            ));
        }
        if let Some((name, value)) = read(RATE_LIMIT) {
            settings.rate_limit =
                Some(RateLimit::parse(&value).map_err(|reason| error(name, &value, reason))?);
        }
        if let Some((name, value)) = read(TIMEOUT) {
            settings.timeout = Some(if is_off(&value) {
                None
            } else {
                Some(positive_duration(&value).map_err(|reason| {
                    error(name, &value, format!("{reason} (or `off` for none)"))
                })?)
            });
        }
        if let Some((name, value)) = read(REQUEST_TIMEOUT) {
            settings.request_timeout =
                Some(positive_duration(&value).map_err(|reason| error(name, &value, reason))?);
        }
        Ok(settings)
    }
}

impl ClientConfig {
    /// This configuration with `settings` applied; an overall timeout
    /// starts counting now.
    pub fn with_settings(mut self, settings: &Settings) -> ClientConfig {
        if let Some(attempts) = settings.retry_attempts {
            self.retry.max_attempts = attempts;
        }
        if let Some(base) = settings.retry_base {
            self.retry.base_delay = base;
        }
        if let Some(max) = settings.retry_max {
            self.retry.max_delay = max;
        }
        self.retry.max_delay = self.retry.max_delay.max(self.retry.base_delay);
        if let Some(limit) = settings.rate_limit {
            self.rate_limit = limit;
        }
        if let Some(timeout) = settings.timeout {
            self.deadline = timeout.map(Deadline::after);
        }
        if let Some(timeout) = settings.request_timeout {
            self.request_timeout = timeout;
        }
        self
    }
}

fn is_off(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().as_str(),
        "off" | "none" | "never"
    )
}

fn positive_duration(value: &str) -> Result<Duration, String> {
    let duration = crate::duration::parse(value).map_err(|error| error.to_string())?;
    if duration.is_zero() {
        return Err("the duration must be more than 0".into());
    }
    Ok(duration)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloudflare::RetryPolicy;
    use std::collections::HashMap;

    fn vars(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    fn config() -> ClientConfig {
        ClientConfig::new(
            "http://127.0.0.1:1/client/v4",
            super::super::Token::new("t"),
            "acc",
        )
    }

    #[test]
    fn nothing_set_keeps_the_defaults() {
        let settings = Settings::from_vars(vars(&[])).expect("empty");
        assert_eq!(settings, Settings::default());
        let applied = config().with_settings(&settings);
        assert_eq!(applied.retry, RetryPolicy::default());
        assert_eq!(applied.rate_limit, Some(RateLimit::DEFAULT));
        assert!(applied.deadline.is_none());
        assert_eq!(applied.request_timeout, Duration::from_secs(60));
        // Empty values count as unset.
        let blank = Settings::from_vars(vars(&[(RETRY_ATTEMPTS, " "), (TIMEOUT, "")]));
        assert_eq!(blank, Ok(Settings::default()));
    }

    #[test]
    fn fast_retries_for_fault_trials() {
        let settings = Settings::from_vars(vars(&[
            (RETRY_ATTEMPTS, "8"),
            (RETRY_BASE_MS, "1"),
            (RETRY_MAX_MS, "20"),
            (RATE_LIMIT, "off"),
            (TIMEOUT, "15m"),
            (REQUEST_TIMEOUT, "5s"),
        ]))
        .expect("valid");
        let before = tokio::time::Instant::now();
        let applied = config().with_settings(&settings);
        assert_eq!(applied.retry.max_attempts, 8);
        assert_eq!(applied.retry.base_delay, Duration::from_millis(1));
        assert_eq!(applied.retry.max_delay, Duration::from_millis(20));
        assert_eq!(applied.rate_limit, None);
        assert_eq!(applied.request_timeout, Duration::from_secs(5));
        let deadline = applied.deadline.expect("a deadline");
        assert_eq!(deadline.timeout, Duration::from_secs(900));
        assert!(deadline.at >= before + Duration::from_secs(900));
        let limited =
            Settings::from_vars(vars(&[(RATE_LIMIT, "600/5m"), (TIMEOUT, "off")])).expect("valid");
        let applied = config().with_settings(&limited);
        assert_eq!(
            applied.rate_limit,
            RateLimit::per_window(600, Duration::from_secs(300))
        );
        assert!(applied.deadline.is_none());
    }

    #[test]
    fn invalid_values_name_their_variable() {
        for (name, value) in [
            (RETRY_ATTEMPTS, "0"),
            (RETRY_ATTEMPTS, "many"),
            (RETRY_ATTEMPTS, "101"),
            (RETRY_BASE_MS, "-5"),
            (RETRY_BASE_MS, "1.5"),
            (RETRY_MAX_MS, "99999999999"),
            (RATE_LIMIT, "fast"),
            (RATE_LIMIT, "0/1s"),
            (TIMEOUT, "0"),
            (TIMEOUT, "15 minutes"),
            (REQUEST_TIMEOUT, "off"),
        ] {
            let error = Settings::from_vars(vars(&[(name, value)])).expect_err(value);
            assert_eq!(error.variable, name);
            let text = error.to_string();
            assert!(text.starts_with(&format!("invalid {name}=")), "{text}");
            assert!(text.contains(value), "{text}");
        }
        // The ceiling below the base: both are named.
        let error = Settings::from_vars(vars(&[(RETRY_BASE_MS, "500"), (RETRY_MAX_MS, "100")]))
            .expect_err("max below base");
        assert_eq!(error.variable, RETRY_MAX_MS);
        assert!(error.to_string().contains(RETRY_BASE_MS), "{error}");
        // A base above the default ceiling raises the ceiling.
        let settings = Settings::from_vars(vars(&[(RETRY_BASE_MS, "30000")])).expect("valid");
        let applied = config().with_settings(&settings);
        assert_eq!(applied.retry.base_delay, Duration::from_secs(30));
        assert_eq!(applied.retry.max_delay, Duration::from_secs(30));
    }

    #[test]
    fn durations_are_read_with_the_shared_grammar() {
        let settings =
            Settings::from_vars(vars(&[(TIMEOUT, "1h30m"), (REQUEST_TIMEOUT, "1s500ms")]))
                .expect("valid");
        assert_eq!(settings.timeout, Some(Some(Duration::from_secs(5400))));
        assert_eq!(settings.request_timeout, Some(Duration::from_millis(1500)));
        let settings = Settings::from_vars(vars(&[(REQUEST_TIMEOUT, "45")])).expect("valid");
        assert_eq!(settings.request_timeout, Some(Duration::from_secs(45)));
        let error = Settings::from_vars(vars(&[(TIMEOUT, "30m1h")])).expect_err("order");
        assert_eq!(
            error.to_string(),
            "invalid FLAREOPS_TIMEOUT=\"30m1h\": `30m1h` is not a duration: write the units from the largest to the smallest, each once (like `1h30m`) (or `off` for none)"
        );
    }
}
