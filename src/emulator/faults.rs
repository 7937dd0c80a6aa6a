//! Fault injection: latency, 5xx, 429, connection resets, lost responses and Cloudflare's
//! per-token rate limit, all off by default.
//!
//! **Where it applies.** Only to Cloudflare paths (`/client/v4/…`) whose request passed the token
//! and account checks: a request refused for its credentials is answered normally, and the
//! emulator's own endpoints (`/__emulator/…`) are never faulted.
//!
//! **Configuration** ([`FaultConfig`], the JSON body of `PUT /__emulator/faults`, the file of
//! `flareops emulator --faults FILE`, or [`super::start_with_faults`] / [`super::Emulator::set_faults`]
//! in process):
//!
//! ```json
//! {
//!   "seed": 42,
//!   "default": {"latency_ms": 20, "jitter_ms": 10, "5xx_rate": 0.05, "429_rate": 0.05,
//!               "retry_after": 1, "reset_rate": 0.05, "lost_response_rate": 0.05},
//!   "rules": [{"method": "POST", "path": "/accounts/*/d1/database/*/query",
//!              "faults": {"5xx_rate": 1.0}}],
//!   "rate_limit": {"requests": 1200, "window_secs": 300}
//! }
//! ```
//!
//! Every field is optional; unknown fields are refused. A request takes the `faults` of the first
//! rule that matches it, else `default` (a rule's missing fields are zero, not inherited). A rule
//! matches when its `method` (any when absent, case-insensitive) is the request's and its `path`
//! matches the path after `/client/v4` (still percent-encoded), or a parent of it: `path` is a
//! glob where `*` matches within one segment and `**` any number of whole segments, so
//! `/accounts/*/storage/kv` matches every KV request. The four exclusive rates (5xx, 429, reset,
//! lost response) are each in `0.0..=1.0` and must not add up to more than 1.
//!
//! **Determinism.** One seeded generator ([`StdRng`]) drives every draw; it is reseeded whenever
//! a configuration is installed. A faulted request draws the jitter (when `jitter_ms > 0`), then
//! one number deciding the outcome, then (for a 5xx) one more choosing the status; a request
//! whose settings inject nothing draws nothing. So the same seed and the same sequence of requests
//! give the same faults. Concurrent requests draw in arrival order, which the OS decides. Without
//! a `seed`, one is picked at random and reported by `GET /__emulator/faults`.
//!
//! **Kinds, on the wire** (an injected outcome replaces the handler unless said otherwise):
//! - *latency*: `latency_ms` plus a uniform `0..=jitter_ms` is slept before anything else.
//! - *5xx*: 500, 502, 503 or 504 (equally likely) with a v4 error envelope, code 10002; the
//!   request is not processed.
//! - *429*: status 429, `Retry-After: <retry_after>` (seconds, default 1) and Cloudflare's
//!   rate-limit envelope (code 971, "Please wait and consider throttling your request speed");
//!   the request is not processed.
//! - *reset*: the connection is closed with a TCP reset before any byte of a response is sent;
//!   the request is not processed.
//! - *lost response*: the handler runs to completion (its write is committed), then the
//!   connection is reset the same way, so the client never sees the answer.
//! - *rate limit*: at most `requests` requests in any `window_secs` window (a sliding log,
//!   checked before the draws above, so a refused request draws nothing); beyond it, 429 with
//!   `Retry-After` = the seconds until the oldest request leaves the window, and the same
//!   envelope. Cloudflare counts per token; the emulator accepts one token, so one log.
//!
//! **How a connection is dropped.** The server's listener wraps every accepted socket
//! (`FaultListener`) with a shared flag, reachable from the request as connect info
//! (`ConnectionHandle`). To drop a connection, the gate sets the flag and answers with a body
//! that fails on its first poll: hyper aborts the connection before flushing anything (not even
//! the status line), and the flag makes any read, write or flush of the socket fail, so no byte
//! can slip out. When hyper drops the socket, the flag sets `SO_LINGER` to zero first, so the
//! close is a TCP RST. reqwest reports it from `send()`: an error with `is_request()` true, no
//! status, not a timeout, whose source chain ends in "connection error: Connection reset by peer
//! (os error 104)" (an HTTP/1 client reading a FIN instead would say "connection closed before
//! message completed"). On HTTP/2 every stream of the connection goes with it. A server built
//! without that listener (no connect info) still aborts the connection through the failing body,
//! closing it with a FIN.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Cloudflare's default API rate limit: 1200 requests per 5 minutes per token.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    requests: 1200,
    window_secs: 300,
};

/// Longest latency or jitter accepted (one minute), so a typo cannot hang a test for hours.
const MAX_DELAY_MS: u64 = 60_000;
/// Longest `Retry-After` accepted.
const MAX_RETRY_AFTER_SECS: u64 = 3600;
/// Longest rate-limit window accepted (one day).
const MAX_WINDOW_SECS: u64 = 86_400;
/// Most requests a rate-limit window may allow (the sliding log keeps one instant each).
const MAX_WINDOW_REQUESTS: u32 = 1_000_000;

/// The whole fault configuration. The default injects nothing.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultConfig {
    /// Seed of the generator behind every draw; random when absent.
    pub seed: Option<u64>,
    /// Faults for requests no rule matches.
    pub default: FaultSettings,
    /// Per-endpoint faults; the first matching rule wins.
    pub rules: Vec<FaultRule>,
    /// Cloudflare's per-token rate limit; off when absent.
    pub rate_limit: Option<RateLimit>,
}

/// What to inject into the requests one setting applies to. The default injects nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FaultSettings {
    /// Fixed latency added to every request, in milliseconds.
    pub latency_ms: u64,
    /// Extra latency drawn uniformly from `0..=jitter_ms`.
    pub jitter_ms: u64,
    /// Share of requests answered 500/502/503/504 without being processed.
    #[serde(rename = "5xx_rate")]
    pub server_error_rate: f64,
    /// Share of requests answered 429 without being processed.
    #[serde(rename = "429_rate")]
    pub too_many_requests_rate: f64,
    /// `Retry-After` of the injected 429s, in seconds.
    pub retry_after: u64,
    /// Share of requests whose connection is reset before any response byte (not processed).
    pub reset_rate: f64,
    /// Share of requests processed whose response is then lost (connection reset).
    pub lost_response_rate: f64,
}

impl Default for FaultSettings {
    fn default() -> Self {
        FaultSettings {
            latency_ms: 0,
            jitter_ms: 0,
            server_error_rate: 0.0,
            too_many_requests_rate: 0.0,
            retry_after: 1,
            reset_rate: 0.0,
            lost_response_rate: 0.0,
        }
    }
}

/// Faults for the requests matching `method` and `path`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultRule {
    /// The HTTP method (any when absent).
    #[serde(default)]
    pub method: Option<String>,
    /// A glob over the path after `/client/v4`; also matches everything below it.
    pub path: String,
    /// What to inject (missing fields are zero).
    #[serde(default)]
    pub faults: FaultSettings,
}

/// At most `requests` requests in any window of `window_secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    pub requests: u32,
    pub window_secs: u64,
}

impl Default for RateLimit {
    fn default() -> Self {
        DEFAULT_RATE_LIMIT
    }
}

/// Why a fault configuration was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FaultConfigError {
    #[error("malformed fault configuration: {0}")]
    Malformed(String),
    #[error("{place}: {field} must be between 0.0 and 1.0, got {value}")]
    RateOutOfRange {
        place: String,
        field: &'static str,
        value: f64,
    },
    #[error(
        "{place}: 5xx_rate + 429_rate + reset_rate + lost_response_rate must not exceed 1.0, got {sum}"
    )]
    RatesExceedOne { place: String, sum: f64 },
    #[error("{place}: {field} must be at most {max}, got {value}")]
    TooLarge {
        place: String,
        field: &'static str,
        value: u64,
        max: u64,
    },
    #[error("rules[{index}].method: {method:?} is not an HTTP method")]
    BadMethod { index: usize, method: String },
    #[error("rules[{index}].path: {reason}")]
    BadPath { index: usize, reason: String },
    #[error("rate_limit: {0}")]
    BadRateLimit(String),
}

impl FaultSettings {
    /// True when these settings inject nothing (no draw is made for such a request).
    pub fn is_noop(&self) -> bool {
        self.latency_ms == 0
            && self.jitter_ms == 0
            && self.server_error_rate == 0.0
            && self.too_many_requests_rate == 0.0
            && self.reset_rate == 0.0
            && self.lost_response_rate == 0.0
    }

    /// Sets the 5xx, 429, reset and lost-response rates to a quarter of `rate` each.
    pub fn split_rate(&mut self, rate: f64) {
        let share = rate / 4.0;
        self.server_error_rate = share;
        self.too_many_requests_rate = share;
        self.reset_rate = share;
        self.lost_response_rate = share;
    }

    fn validate(&self, place: &str) -> Result<(), FaultConfigError> {
        let rates = [
            ("5xx_rate", self.server_error_rate),
            ("429_rate", self.too_many_requests_rate),
            ("reset_rate", self.reset_rate),
            ("lost_response_rate", self.lost_response_rate),
        ];
        for (field, value) in rates {
            if !(0.0..=1.0).contains(&value) {
                return Err(FaultConfigError::RateOutOfRange {
                    place: place.to_owned(),
                    field,
                    value,
                });
            }
        }
        let sum: f64 = rates.iter().map(|(_, value)| value).sum();
        // Allow for rounding: four shares of a rate of 1.0 may add up to 1.0000000000000002.
        if sum > 1.0 + 1e-9 {
            return Err(FaultConfigError::RatesExceedOne {
                place: place.to_owned(),
                sum,
            });
        }
        for (field, value, max) in [
            ("latency_ms", self.latency_ms, MAX_DELAY_MS),
            ("jitter_ms", self.jitter_ms, MAX_DELAY_MS),
            ("retry_after", self.retry_after, MAX_RETRY_AFTER_SECS),
        ] {
            if value > max {
                return Err(FaultConfigError::TooLarge {
                    place: place.to_owned(),
                    field,
                    value,
                    max,
                });
            }
        }
        Ok(())
    }
}

impl FaultConfig {
    /// Parses the JSON form (the body of `PUT /__emulator/faults`) and validates it.
    pub fn from_json(bytes: &[u8]) -> Result<FaultConfig, FaultConfigError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(FaultConfigError::Malformed(String::from(
                "the body is empty; send a JSON object such as {\"default\": {\"5xx_rate\": 0.1}} (or {} for no faults)",
            )));
        }
        let config: FaultConfig = serde_json::from_slice(bytes)
            .map_err(|error| FaultConfigError::Malformed(error.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// True when nothing would ever be injected.
    pub fn is_noop(&self) -> bool {
        self.rate_limit.is_none()
            && self.default.is_noop()
            && self.rules.iter().all(|rule| rule.faults.is_noop())
    }

    /// Checks every field; the error names the offending one.
    pub fn validate(&self) -> Result<(), FaultConfigError> {
        self.default.validate("default")?;
        for (index, rule) in self.rules.iter().enumerate() {
            rule.faults.validate(&format!("rules[{index}].faults"))?;
            CompiledRule::compile(index, rule)?;
        }
        if let Some(limit) = &self.rate_limit {
            limit.validate()?;
        }
        Ok(())
    }
}

impl RateLimit {
    fn validate(&self) -> Result<(), FaultConfigError> {
        if self.requests == 0 || self.requests > MAX_WINDOW_REQUESTS {
            return Err(FaultConfigError::BadRateLimit(format!(
                "requests must be between 1 and {MAX_WINDOW_REQUESTS}, got {}",
                self.requests
            )));
        }
        if self.window_secs == 0 || self.window_secs > MAX_WINDOW_SECS {
            return Err(FaultConfigError::BadRateLimit(format!(
                "window_secs must be between 1 and {MAX_WINDOW_SECS}, got {}",
                self.window_secs
            )));
        }
        Ok(())
    }
}

impl std::str::FromStr for RateLimit {
    type Err = FaultConfigError;

    /// `N/WINDOW`, e.g. `1200/300s`, `3/2s`, `100/1m` (a bare window is seconds).
    fn from_str(text: &str) -> Result<RateLimit, FaultConfigError> {
        let bad = || {
            FaultConfigError::BadRateLimit(format!(
                "`{text}` is not REQUESTS/WINDOW (examples: 1200/300s, 3/2s, 100/1m)"
            ))
        };
        let (requests, window) = text.trim().split_once('/').ok_or_else(bad)?;
        let requests: u32 = requests.trim().parse().map_err(|_| bad())?;
        let window = window.trim();
        let split = window
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(window.len());
        let (number, unit) = window.split_at(split);
        let number: u64 = number.parse().map_err(|_| bad())?;
        let window_secs = match unit {
            "" | "s" => number,
            "m" => number.saturating_mul(60),
            "h" => number.saturating_mul(3600),
            _ => return Err(bad()),
        };
        let limit = RateLimit {
            requests,
            window_secs,
        };
        limit.validate()?;
        Ok(limit)
    }
}

/// Parses a rate for the command line: a number in `0.0..=1.0`, or a percentage (`20%`).
pub fn parse_rate(text: &str) -> Result<f64, String> {
    let text = text.trim();
    let (number, scale) = match text.strip_suffix('%') {
        Some(number) => (number, 100.0),
        None => (text, 1.0),
    };
    let rate = number
        .trim()
        .parse::<f64>()
        .ok()
        .map(|value| value / scale)
        .filter(|value| (0.0..=1.0).contains(value))
        .ok_or_else(|| format!("`{text}` is not a rate between 0.0 and 1.0 (or 0% and 100%)"))?;
    Ok(rate)
}

/// A rule ready to match paths.
#[derive(Debug)]
struct CompiledRule {
    method: Option<String>,
    pattern: glob::Pattern,
    faults: FaultSettings,
}

const MATCH_OPTIONS: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

impl CompiledRule {
    fn compile(index: usize, rule: &FaultRule) -> Result<CompiledRule, FaultConfigError> {
        let method = match &rule.method {
            None => None,
            Some(method)
                if !method.is_empty()
                    && method.len() <= 16
                    && method.bytes().all(|byte| byte.is_ascii_alphabetic()) =>
            {
                Some(method.to_ascii_uppercase())
            }
            Some(method) => {
                return Err(FaultConfigError::BadMethod {
                    index,
                    method: method.clone(),
                });
            }
        };
        let path = rule.path.trim_end_matches('/');
        if !rule.path.starts_with('/') {
            return Err(FaultConfigError::BadPath {
                index,
                reason: format!(
                    "{:?} must start with `/` (the path after /client/v4, like /accounts/*/storage/kv)",
                    rule.path
                ),
            });
        }
        let pattern =
            glob::Pattern::new(if path.is_empty() { "/**" } else { path }).map_err(|error| {
                FaultConfigError::BadPath {
                    index,
                    reason: format!("{:?} is not a valid glob: {error}", rule.path),
                }
            })?;
        Ok(CompiledRule {
            method,
            pattern,
            faults: rule.faults.clone(),
        })
    }

    /// The method matches and the pattern matches `path` or one of its parents.
    fn matches(&self, method: &str, path: &str) -> bool {
        if let Some(wanted) = &self.method
            && !wanted.eq_ignore_ascii_case(method)
        {
            return false;
        }
        let path = path.trim_end_matches('/');
        if self.pattern.matches_with(path, MATCH_OPTIONS) {
            return true;
        }
        path.match_indices('/')
            .skip(1)
            .any(|(end, _)| self.pattern.matches_with(&path[..end], MATCH_OPTIONS))
    }
}

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Sleep this long first.
    pub delay: Duration,
    pub outcome: Outcome,
}

/// The fate of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Processed normally.
    Pass,
    /// Refused by the rate limit: 429 with this `Retry-After`.
    RateLimited { retry_after: u64 },
    /// An injected 5xx with this status.
    ServerError(StatusCode),
    /// An injected 429 with this `Retry-After`.
    TooManyRequests { retry_after: u64 },
    /// The connection is reset before any response.
    Reset,
    /// Processed, then the connection is reset instead of answering.
    LostResponse,
}

const SERVER_ERRORS: [StatusCode; 4] = [
    StatusCode::INTERNAL_SERVER_ERROR,
    StatusCode::BAD_GATEWAY,
    StatusCode::SERVICE_UNAVAILABLE,
    StatusCode::GATEWAY_TIMEOUT,
];

/// Counts of injected faults per kind, since the emulator started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FaultCounts {
    /// Requests the fault injector looked at (authenticated Cloudflare-path requests).
    pub requests: u64,
    /// Requests delayed by a latency or jitter above zero.
    pub latency: u64,
    #[serde(rename = "5xx")]
    pub server_error: u64,
    #[serde(rename = "429")]
    pub too_many_requests: u64,
    pub reset: u64,
    pub lost_response: u64,
    /// Requests refused by the rate limit.
    pub rate_limited: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    latency: AtomicU64,
    server_error: AtomicU64,
    too_many_requests: AtomicU64,
    reset: AtomicU64,
    lost_response: AtomicU64,
    rate_limited: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> FaultCounts {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        FaultCounts {
            requests: load(&self.requests),
            latency: load(&self.latency),
            server_error: load(&self.server_error),
            too_many_requests: load(&self.too_many_requests),
            reset: load(&self.reset),
            lost_response: load(&self.lost_response),
            rate_limited: load(&self.rate_limited),
        }
    }
}

/// The installed configuration with its generator and rate-limit log.
struct Active {
    /// As installed, with the seed resolved.
    config: FaultConfig,
    rules: Vec<CompiledRule>,
    rng: StdRng,
    /// Instants of the requests admitted in the current window, oldest first.
    window: VecDeque<Instant>,
}

impl Active {
    fn install(mut config: FaultConfig) -> Result<Active, FaultConfigError> {
        config.validate()?;
        let rules = config
            .rules
            .iter()
            .enumerate()
            .map(|(index, rule)| CompiledRule::compile(index, rule))
            .collect::<Result<Vec<_>, _>>()?;
        let seed = *config.seed.get_or_insert_with(rand::random);
        Ok(Active {
            config,
            rules,
            rng: StdRng::seed_from_u64(seed),
            window: VecDeque::new(),
        })
    }

    /// Admits the request into the rate-limit window, or says how long to wait.
    fn admit(&mut self, now: Instant) -> Result<(), u64> {
        let Some(limit) = self.config.rate_limit else {
            return Ok(());
        };
        let window = Duration::from_secs(limit.window_secs);
        while let Some(oldest) = self.window.front() {
            if now.duration_since(*oldest) >= window {
                self.window.pop_front();
            } else {
                break;
            }
        }
        if self.window.len() < limit.requests as usize {
            self.window.push_back(now);
            return Ok(());
        }
        let oldest = self.window.front().copied().unwrap_or(now);
        let frees_in = window.saturating_sub(now.duration_since(oldest));
        // Seconds, rounded up, at least 1 (as Cloudflare sends it).
        let seconds = frees_in.as_millis().div_ceil(1000).max(1);
        Err(u64::try_from(seconds).unwrap_or(u64::MAX))
    }

    fn settings(&self, method: &str, path: &str) -> &FaultSettings {
        self.rules
            .iter()
            .find(|rule| rule.matches(method, path))
            .map_or(&self.config.default, |rule| &rule.faults)
    }

    fn draw(&mut self, method: &str, path: &str) -> Decision {
        let settings = self.settings(method, path).clone();
        if settings.is_noop() {
            return Decision {
                delay: Duration::ZERO,
                outcome: Outcome::Pass,
            };
        }
        let jitter = if settings.jitter_ms > 0 {
            self.rng.random_range(0..=settings.jitter_ms)
        } else {
            0
        };
        let delay = Duration::from_millis(settings.latency_ms + jitter);
        let roll: f64 = self.rng.random();
        let kinds = [
            (settings.server_error_rate, Kind::ServerError),
            (settings.too_many_requests_rate, Kind::TooManyRequests),
            (settings.reset_rate, Kind::Reset),
            (settings.lost_response_rate, Kind::LostResponse),
        ];
        let mut threshold = 0.0;
        let picked = kinds.into_iter().find_map(|(rate, kind)| {
            threshold += rate;
            (roll < threshold).then_some(kind)
        });
        let outcome = match picked {
            None => Outcome::Pass,
            Some(Kind::ServerError) => {
                Outcome::ServerError(SERVER_ERRORS[self.rng.random_range(0..SERVER_ERRORS.len())])
            }
            Some(Kind::TooManyRequests) => Outcome::TooManyRequests {
                retry_after: settings.retry_after,
            },
            Some(Kind::Reset) => Outcome::Reset,
            Some(Kind::LostResponse) => Outcome::LostResponse,
        };
        Decision { delay, outcome }
    }
}

/// The exclusive fault kinds, in the order their rates are laid out on `0.0..1.0`.
#[derive(Clone, Copy)]
enum Kind {
    ServerError,
    TooManyRequests,
    Reset,
    LostResponse,
}

/// The emulator's fault injector: the installed configuration and the counters.
pub(crate) struct Faults {
    /// False when the configuration injects nothing: requests skip the mutex.
    enabled: AtomicBool,
    active: Mutex<Active>,
    counters: Counters,
}

impl Faults {
    pub fn new(config: FaultConfig) -> Result<Faults, FaultConfigError> {
        let enabled = !config.is_noop();
        Ok(Faults {
            enabled: AtomicBool::new(enabled),
            active: Mutex::new(Active::install(config)?),
            counters: Counters::default(),
        })
    }

    /// Replaces the configuration (reseeding the generator and emptying the rate-limit log).
    pub fn install(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        let enabled = !config.is_noop();
        let active = Active::install(config)?;
        let mut guard = self.active.lock().unwrap_or_else(PoisonError::into_inner);
        *guard = active;
        self.enabled.store(enabled, Ordering::Release);
        tracing::info!(
            enabled,
            seed = guard.config.seed,
            "fault configuration installed"
        );
        Ok(())
    }

    /// The installed configuration (with its seed).
    pub fn config(&self) -> FaultConfig {
        self.active
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .config
            .clone()
    }

    pub fn counts(&self) -> FaultCounts {
        self.counters.snapshot()
    }

    /// Decides the fate of one authenticated request to `path` (relative to `/client/v4`) and
    /// counts what it injects.
    pub fn decide(&self, method: &str, path: &str) -> Decision {
        self.counters.requests.fetch_add(1, Ordering::Relaxed);
        let pass = Decision {
            delay: Duration::ZERO,
            outcome: Outcome::Pass,
        };
        if !self.enabled.load(Ordering::Acquire) {
            return pass;
        }
        let decision = {
            let mut active = self.active.lock().unwrap_or_else(PoisonError::into_inner);
            match active.admit(Instant::now()) {
                Err(retry_after) => Decision {
                    delay: Duration::ZERO,
                    outcome: Outcome::RateLimited { retry_after },
                },
                Ok(()) => active.draw(method, path),
            }
        };
        let count = |counter: &AtomicU64| {
            counter.fetch_add(1, Ordering::Relaxed);
        };
        if !decision.delay.is_zero() {
            count(&self.counters.latency);
        }
        match decision.outcome {
            Outcome::Pass => {}
            Outcome::RateLimited { .. } => count(&self.counters.rate_limited),
            Outcome::ServerError(_) => count(&self.counters.server_error),
            Outcome::TooManyRequests { .. } => count(&self.counters.too_many_requests),
            Outcome::Reset => count(&self.counters.reset),
            Outcome::LostResponse => count(&self.counters.lost_response),
        }
        if decision != pass {
            tracing::debug!(method, path, ?decision, "fault injected");
        }
        decision
    }
}

// ---------------------------------------------------------------------------------------------
// Dropping connections
// ---------------------------------------------------------------------------------------------

/// The control shared by one accepted connection and the requests it carries.
#[derive(Debug, Default)]
struct ConnectionControl {
    reset: AtomicBool,
}

/// Connect info given to every request: lets the server reset the connection it came on.
#[derive(Debug, Clone)]
pub(crate) struct ConnectionHandle {
    control: Arc<ConnectionControl>,
}

impl ConnectionHandle {
    /// Makes every further I/O on the connection fail, so it is closed (with a RST) before
    /// anything else is written to it.
    pub fn reset(&self) {
        self.control.reset.store(true, Ordering::Release);
    }
}

/// A TCP listener whose connections can be reset by the request they carry.
pub(crate) struct FaultListener {
    inner: TcpListener,
}

impl FaultListener {
    pub fn new(inner: TcpListener) -> FaultListener {
        FaultListener { inner }
    }
}

impl axum::serve::Listener for FaultListener {
    type Io = FaultIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (FaultIo, std::net::SocketAddr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, addr)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::trace!(%error, "cannot set TCP_NODELAY");
                    }
                    let io = FaultIo {
                        stream,
                        control: Arc::default(),
                        lingering: false,
                    };
                    return (io, addr);
                }
                Err(error) => {
                    // Like axum's own listener: connection errors are the peer's problem; others
                    // (out of file descriptors) deserve a pause before retrying.
                    if !matches!(
                        error.kind(),
                        std::io::ErrorKind::ConnectionRefused
                            | std::io::ErrorKind::ConnectionAborted
                            | std::io::ErrorKind::ConnectionReset
                    ) {
                        tracing::error!(%error, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, FaultListener>>
    for ConnectionHandle
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, FaultListener>) -> ConnectionHandle {
        ConnectionHandle {
            control: Arc::clone(&stream.io().control),
        }
    }
}

/// An accepted socket that fails every operation once its connection was reset.
pub(crate) struct FaultIo {
    stream: TcpStream,
    control: Arc<ConnectionControl>,
    lingering: bool,
}

impl FaultIo {
    /// `Some(error)` once the connection was reset (arming `SO_LINGER = 0` the first time).
    fn check(&mut self) -> Option<std::io::Error> {
        if !self.control.reset.load(Ordering::Acquire) {
            return None;
        }
        if !self.lingering {
            self.lingering = true;
            if let Err(error) = self.stream.set_zero_linger() {
                tracing::debug!(%error, "cannot set SO_LINGER to 0; the close will be a FIN");
            }
        }
        Some(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by the emulator's fault injection",
        ))
    }
}

impl Drop for FaultIo {
    /// A connection dropped on purpose closes with a RST, not a FIN (hyper may abandon it
    /// without any further I/O, when the response body fails first).
    fn drop(&mut self) {
        let _ = self.check();
    }
}

impl AsyncRead for FaultIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.check() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Some(error) = this.check() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        if let Some(error) = this.check() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.check() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        if let Some(error) = this.check() {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut this.stream).poll_shutdown(cx)
    }
}

// ---------------------------------------------------------------------------------------------
// Ray ids
// ---------------------------------------------------------------------------------------------

/// The data-center code ending every `cf-ray` (San Jose, as good as any).
const RAY_COLO: &str = "SJC";

/// Makes `cf-ray` values: 16 lowercase hex digits and `-SJC`, unique per request.
pub(crate) struct RayIds {
    base: u64,
    next: AtomicU64,
}

impl RayIds {
    pub fn new() -> RayIds {
        RayIds {
            base: rand::random(),
            next: AtomicU64::new(0),
        }
    }

    /// The next id: a bijective mix of a counter, so no two requests of a run share one.
    pub fn next_ray(&self) -> String {
        let counter = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{RAY_COLO}", mix(self.base.wrapping_add(counter)))
    }
}

/// SplitMix64's finalizer: a bijection of `u64` that scatters consecutive inputs.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: serde_json::Value) -> FaultSettings {
        serde_json::from_value(json).unwrap()
    }

    fn outcomes(config: FaultConfig, method: &str, path: &str, count: usize) -> Vec<Decision> {
        let faults = Faults::new(config).unwrap();
        (0..count).map(|_| faults.decide(method, path)).collect()
    }

    #[test]
    fn default_config_injects_nothing_and_draws_nothing() {
        let faults = Faults::new(FaultConfig::default()).unwrap();
        assert!(!faults.enabled.load(Ordering::Relaxed));
        for _ in 0..100 {
            assert_eq!(faults.decide("GET", "/accounts").outcome, Outcome::Pass);
        }
        let counts = faults.counts();
        assert_eq!(counts.requests, 100);
        assert_eq!(
            FaultCounts {
                requests: 0,
                ..counts
            },
            FaultCounts::default()
        );
        assert!(faults.config().seed.is_some(), "a seed is always reported");
    }

    #[test]
    fn json_shape_round_trips_and_refuses_unknown_fields() {
        let text = r#"{
            "seed": 7,
            "default": {"latency_ms": 5, "jitter_ms": 2, "5xx_rate": 0.1, "429_rate": 0.1,
                        "retry_after": 3, "reset_rate": 0.1, "lost_response_rate": 0.1},
            "rules": [{"method": "post", "path": "/accounts/*/d1", "faults": {"5xx_rate": 1}}],
            "rate_limit": {"requests": 3, "window_secs": 2}
        }"#;
        let config = FaultConfig::from_json(text.as_bytes()).unwrap();
        assert_eq!(config.seed, Some(7));
        assert_eq!(config.default.retry_after, 3);
        assert_eq!(config.rules[0].faults.server_error_rate, 1.0);
        assert_eq!(config.rules[0].faults.retry_after, 1, "defaults apply");
        let again: FaultConfig =
            serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
        assert_eq!(again, config);

        let error = FaultConfig::from_json(br#"{"default": {"5xx": 0.1}}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field `5xx`"), "{error}");
        let error = FaultConfig::from_json(b"").unwrap_err();
        assert!(error.to_string().contains("body is empty"), "{error}");
    }

    #[test]
    fn validation_names_the_field() {
        let cases = [
            (
                r#"{"default": {"reset_rate": 1.5}}"#,
                "default: reset_rate must be between 0.0 and 1.0, got 1.5",
            ),
            (
                r#"{"default": {"5xx_rate": 0.6, "429_rate": 0.6}}"#,
                "must not exceed 1.0",
            ),
            (
                r#"{"rules": [{"path": "accounts"}]}"#,
                "rules[0].path: \"accounts\" must start with `/`",
            ),
            (
                r#"{"rules": [{"path": "/a", "method": "GE T"}]}"#,
                "rules[0].method",
            ),
            (r#"{"rules": [{"path": "/a/[b"}]}"#, "not a valid glob"),
            (
                r#"{"rate_limit": {"requests": 0, "window_secs": 1}}"#,
                "rate_limit: requests must be between 1",
            ),
            (
                r#"{"default": {"latency_ms": 3600000}}"#,
                "latency_ms must be at most 60000",
            ),
        ];
        for (text, expected) in cases {
            let error = FaultConfig::from_json(text.as_bytes()).unwrap_err();
            assert!(error.to_string().contains(expected), "{text}: {error}");
        }
        let mut even = FaultSettings::default();
        even.split_rate(1.0);
        assert!(even.validate("default").is_ok(), "four quarters of 1.0 fit");
    }

    #[test]
    fn rate_limit_and_rate_parse() {
        assert_eq!(
            "1200/300s".parse::<RateLimit>().unwrap(),
            DEFAULT_RATE_LIMIT
        );
        assert_eq!(
            "3/2".parse::<RateLimit>().unwrap(),
            RateLimit {
                requests: 3,
                window_secs: 2
            }
        );
        assert_eq!("100/5m".parse::<RateLimit>().unwrap().window_secs, 300);
        assert!("3".parse::<RateLimit>().is_err());
        assert!("0/2s".parse::<RateLimit>().is_err());
        assert!("3/2x".parse::<RateLimit>().is_err());
        assert_eq!(parse_rate("0.2").unwrap(), 0.2);
        assert_eq!(parse_rate("20%").unwrap(), 0.2);
        assert!(
            parse_rate("1.2")
                .unwrap_err()
                .contains("between 0.0 and 1.0")
        );
        assert!(parse_rate("x").is_err());
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let mut config = FaultConfig {
            seed: Some(1234),
            ..FaultConfig::default()
        };
        config.default.split_rate(0.8);
        config.default.jitter_ms = 50;
        let first = outcomes(config.clone(), "GET", "/accounts", 200);
        let second = outcomes(config.clone(), "GET", "/accounts", 200);
        assert_eq!(first, second);
        config.seed = Some(1235);
        let other = outcomes(config, "GET", "/accounts", 200);
        assert_ne!(first, other, "another seed gives another sequence");
        // Every kind shows up at these rates, and 5xx statuses vary.
        let statuses: std::collections::BTreeSet<u16> = first
            .iter()
            .filter_map(|decision| match decision.outcome {
                Outcome::ServerError(status) => Some(status.as_u16()),
                _ => None,
            })
            .collect();
        assert_eq!(statuses.len(), 4, "{statuses:?}");
        for wanted in [Outcome::Reset, Outcome::LostResponse, Outcome::Pass] {
            assert!(first.iter().any(|decision| decision.outcome == wanted));
        }
        assert!(
            first
                .iter()
                .all(|decision| decision.delay <= Duration::from_millis(50))
        );
    }

    #[test]
    fn rates_are_respected_over_many_draws() {
        let mut config = FaultConfig {
            seed: Some(99),
            ..FaultConfig::default()
        };
        config.default.split_rate(0.2);
        let faults = Faults::new(config).unwrap();
        for _ in 0..20_000 {
            faults.decide("PUT", "/accounts/a/storage/kv/namespaces/n/values/k");
        }
        let counts = faults.counts();
        for (kind, count) in [
            ("5xx", counts.server_error),
            ("429", counts.too_many_requests),
            ("reset", counts.reset),
            ("lost", counts.lost_response),
        ] {
            // 5% of 20,000 = 1000; four standard deviations is about 123.
            assert!((850..=1150).contains(&count), "{kind}: {count}");
        }
        assert_eq!(counts.latency, 0);
    }

    #[test]
    fn first_matching_rule_wins_else_default() {
        let config = FaultConfig {
            seed: Some(1),
            default: settings(serde_json::json!({"429_rate": 1.0, "retry_after": 9})),
            rules: vec![
                FaultRule {
                    method: Some("post".into()),
                    path: "/accounts/*/d1/database/*/query".into(),
                    faults: settings(serde_json::json!({"5xx_rate": 1.0})),
                },
                FaultRule {
                    method: None,
                    path: "/accounts/*/storage/kv".into(),
                    faults: settings(serde_json::json!({"reset_rate": 1.0})),
                },
                FaultRule {
                    method: None,
                    path: "/user/**".into(),
                    faults: FaultSettings::default(),
                },
            ],
            rate_limit: None,
        };
        let faults = Faults::new(config).unwrap();
        let outcome = |method: &str, path: &str| faults.decide(method, path).outcome;
        assert!(matches!(
            outcome("POST", "/accounts/abc/d1/database/db1/query"),
            Outcome::ServerError(_)
        ));
        // Not the rule's method: the KV rule does not match D1 either, so the default applies.
        assert_eq!(
            outcome("GET", "/accounts/abc/d1/database/db1/query"),
            Outcome::TooManyRequests { retry_after: 9 }
        );
        // A parent path matches everything below it, but not a longer segment.
        assert_eq!(
            outcome("PUT", "/accounts/abc/storage/kv/namespaces/n/values/a%2Fb"),
            Outcome::Reset
        );
        assert_eq!(outcome("GET", "/accounts/abc/storage/kv"), Outcome::Reset);
        assert_eq!(
            outcome("GET", "/accounts/abc/storage/kvx"),
            Outcome::TooManyRequests { retry_after: 9 }
        );
        // A rule that injects nothing shields its paths from the default.
        assert_eq!(outcome("GET", "/user/tokens/verify"), Outcome::Pass);
        assert_eq!(
            outcome("GET", "/accounts"),
            Outcome::TooManyRequests { retry_after: 9 }
        );
    }

    #[test]
    fn rate_limit_uses_a_sliding_window() {
        let mut active = Active::install(FaultConfig {
            rate_limit: Some(RateLimit {
                requests: 3,
                window_secs: 2,
            }),
            ..FaultConfig::default()
        })
        .unwrap();
        let start = Instant::now();
        let at = |millis: u64| start + Duration::from_millis(millis);
        assert_eq!(active.admit(at(0)), Ok(()));
        assert_eq!(active.admit(at(500)), Ok(()));
        assert_eq!(active.admit(at(900)), Ok(()));
        assert_eq!(active.admit(at(1000)), Err(1), "the first frees at 2000 ms");
        assert_eq!(active.admit(at(1999)), Err(1));
        assert_eq!(active.admit(at(2000)), Ok(()));
        assert_eq!(active.admit(at(2100)), Err(1), "the second frees at 2500");
        assert_eq!(active.admit(at(2500)), Ok(()));
        let mut slow = Active::install(FaultConfig {
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            ..FaultConfig::default()
        })
        .unwrap();
        for _ in 0..1200 {
            assert_eq!(slow.admit(at(0)), Ok(()));
        }
        assert_eq!(slow.admit(at(1000)), Err(299));
    }

    #[test]
    fn ray_ids_are_unique_and_shaped_like_cloudflare() {
        let rays = RayIds::new();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let ray = rays.next_ray();
            let (hex, colo) = ray.split_once('-').unwrap();
            assert_eq!(hex.len(), 16, "{ray}");
            assert!(
                hex.bytes()
                    .all(|byte| byte.is_ascii_hexdigit() && !byte.is_ascii_uppercase())
            );
            assert_eq!(colo, RAY_COLO);
            assert!(seen.insert(ray));
        }
    }
}
