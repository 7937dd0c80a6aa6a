//! The Cloudflare REST API v4 client: the only module that knows the API's
//! JSON and HTTP. It speaks the v4 envelope, both pagination styles, maps
//! failures to typed errors carrying Cloudflare's codes, and stays reliable
//! under faults:
//!
//! - **Retries** (`retry.rs`): exponential backoff with full jitter on 429,
//!   5xx and connection errors, honouring `Retry-After` (seconds or an HTTP
//!   date). Reads and replacements retry any of them; a create (`POST`, and
//!   the script upload `PUT`) retries only what provably did nothing (a
//!   429, a connection that never opened).
//! - **Lost answers on creates** (`transport.rs`): when a create's answer is
//!   lost (a dropped connection, a timeout, a body cut short, a 5xx), the
//!   resource is looked up by its name first, and the create is sent again
//!   only when the lookup shows it does not exist. When nothing can tell,
//!   the error is [`ClientError::OutcomeUnknown`].
//! - **Rate limit** (`ratelimit.rs`): one token bucket shared by every
//!   request of a run, retries and lookups included.
//! - **Timeouts**: one per attempt, and an overall [`Deadline`] after which
//!   every request fails at once with [`ClientError::Deadline`]; no retry
//!   wait sleeps past it.
//! - **Secrets**: the token is only ever sent in the `Authorization`
//!   header (marked sensitive); `Debug`, `Display`, errors and logs never
//!   show it, and it is scrubbed from error texts a server echoes back.
//!
//! Every attempt is logged at `debug` with its method, path, attempt
//! number, status, elapsed time and Cloudflare's request id (`cf-ray`).
//! Settings come from [`ClientConfig`], and from `FLAREOPS_*` environment
//! variables through [`env::Settings`].
//!
//! Endpoint calls live in one file per service (`kv`, `d1`, `r2`,
//! `workers`); this file holds configuration, the envelope and errors;
//! `transport` sends requests. `health` is the one HTTP client that talks
//! to a deployed worker rather than to the API (the rollout's health
//! check).

mod d1;
mod dns;
pub mod env;
mod health;
mod kv;
mod pages;
mod queues;
mod r2;
mod ratelimit;
mod retry;
mod transport;
mod workers;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

pub use d1::{
    D1_SQL_ERROR, D1Database, D1LimitError, D1Limits, D1Value, QueryResult, RowTemplate, Statement,
    group_requests, row_statements,
};
pub use dns::{BATCH_LIMIT as DNS_BATCH_LIMIT, DnsBatch, DnsBatchResult, DnsRecord};
pub use env::{SettingError, Settings};
pub use health::{HealthCheck, HealthFailure};
pub use kv::KvNamespace;
pub use pages::{
    DeploymentSource, PagesDeployment, PagesDomain, PagesProject, UPLOAD_BUCKET_BYTES,
    UPLOAD_BUCKET_FILES, UploadToken,
};
pub use queues::{ConsumerRequest, ConsumerSettings, Queue, QueueConsumer, QueueSettings};
pub use r2::R2Bucket;
pub use ratelimit::{RateLimit, RateLimiter};
pub use retry::{RetryPolicy, parse_retry_after};
pub use workers::{
    CustomDomain, Deployment, DeploymentShare, DurableObjectNamespace, Migration, Route,
    ScriptSummary, UploadedModule, Version, WorkerUpload,
};

use retry::Repeat;
use transport::Exchange;

/// A token as `GET /user/tokens/verify` describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TokenStatus {
    pub id: String,
    /// `active`, `disabled` or `expired`.
    pub status: String,
    /// When it expires (RFC 3339), if it does.
    #[serde(default)]
    pub expires_on: Option<String>,
    /// When it becomes valid (RFC 3339), if it is not yet.
    #[serde(default)]
    pub not_before: Option<String>,
}

/// Why `base_url` must not carry the token, if it must not: plain `http`
/// to anything but a loopback address (the emulator) would send the token
/// in clear text.
fn clear_text(base_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(base_url).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| {
        "plain http would send the API token in clear text; use https (http is only for a loopback address, such as the local emulator)".to_string()
    })
}

/// The production API base URL; `CLOUDFLARE_API_BASE_URL` overrides it.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// What replaces a secret in any text the client produces.
const REDACTED: &str = "<redacted>";

/// Tokens shorter than this are not scrubbed out of texts (a real token is
/// 40 characters; scrubbing a one-letter test token would mangle every
/// message).
const MIN_SCRUBBED_TOKEN: usize = 8;

/// An API token. It is only ever sent in the `Authorization` header
/// (marked sensitive): `Debug` and `Display` print a placeholder, so it
/// cannot leak through formatting or logs.
#[derive(Clone)]
pub struct Token(String);

impl Token {
    pub fn new(value: impl Into<String>) -> Token {
        Token(value.into())
    }

    fn header_value(&self) -> Result<HeaderValue, ClientError> {
        let mut value = HeaderValue::from_str(&format!("Bearer {}", self.0))
            .map_err(|_| ClientError::InvalidToken)?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// `text` with every occurrence of the token replaced.
    fn scrub(&self, text: &str) -> String {
        if self.0.len() >= MIN_SCRUBBED_TOKEN && text.contains(&self.0) {
            text.replace(&self.0, REDACTED)
        } else {
            text.to_string()
        }
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({REDACTED})")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The moment a run's requests must be done by, and the timeout it came
/// from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    pub at: tokio::time::Instant,
    pub timeout: Duration,
}

impl Deadline {
    /// `timeout` from now.
    pub fn after(timeout: Duration) -> Deadline {
        let now = tokio::time::Instant::now();
        Deadline {
            // A timeout too long for the clock is as good as none.
            at: now
                .checked_add(timeout)
                .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400)),
            timeout,
        }
    }

    fn passed(&self) -> bool {
        tokio::time::Instant::now() >= self.at
    }

    /// Whether a wait of `wait` from now would reach the deadline.
    fn ends_within(&self, wait: Duration) -> bool {
        tokio::time::Instant::now()
            .checked_add(wait)
            .is_none_or(|end| end >= self.at)
    }

    fn remaining(&self) -> Duration {
        self.at
            .saturating_duration_since(tokio::time::Instant::now())
    }
}

/// Everything needed to talk to one account. `Debug` redacts the token.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub token: Token,
    pub account_id: String,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
    /// Timeout of one attempt (connecting, sending and reading the answer).
    pub request_timeout: Duration,
    /// The request rate of the run (shared by the clones of the client);
    /// `None`: unlimited.
    pub rate_limit: Option<RateLimit>,
    /// When every request must be done by; `None`: no overall timeout.
    pub deadline: Option<Deadline>,
}

impl ClientConfig {
    /// The defaults: 8 requests in flight, [`RetryPolicy::default`], 60 s
    /// per attempt, [`RateLimit::DEFAULT`], no overall timeout.
    pub fn new(base_url: impl Into<String>, token: Token, account_id: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            token,
            account_id: account_id.into(),
            max_concurrency: 8,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(60),
            rate_limit: Some(RateLimit::DEFAULT),
            deadline: None,
        }
    }
}

/// One error entry of the v4 envelope.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiMessage {
    pub code: i64,
    #[serde(default)]
    pub message: String,
}

/// Errors of the client. Every variant says which request failed. None
/// holds the token; texts the server sent are scrubbed of it.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the API token cannot be sent in an HTTP header (it contains invalid characters)")]
    InvalidToken,
    #[error("invalid API base URL `{url}`: {reason}")]
    InvalidBaseUrl { url: String, reason: String },
    #[error("could not build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
    #[error("{method} {path}: Cloudflare answered HTTP {status}: {}", format_api_errors(.errors))]
    Api {
        method: Method,
        path: String,
        status: u16,
        errors: Vec<ApiMessage>,
    },
    /// No complete answer: the connection failed or dropped, the attempt
    /// timed out, or the body was cut short.
    #[error("{method} {path}: request failed: {detail}")]
    Transport {
        method: Method,
        path: String,
        /// Whether the request may have reached the server (`false`: the
        /// connection never opened).
        sent: bool,
        /// The error and its causes, in one line.
        detail: String,
        error: reqwest::Error,
    },
    #[error("{method} {path}: unexpected response (HTTP {status}): {reason}")]
    Decode {
        method: Method,
        path: String,
        status: u16,
        reason: String,
    },
    /// A request that must not be repeated blindly (a create, a D1 write)
    /// lost its answer, and nothing could tell whether it took effect.
    #[error(
        "{error} (the request may or may not have taken effect: its answer was lost{})",
        match lookup { Some(e) => format!(", and looking the result up failed too: {e}"), None => String::new() }
    )]
    OutcomeUnknown {
        error: Box<ClientError>,
        lookup: Option<Box<ClientError>>,
    },
    /// A D1 statement over D1's limits: refused before it was sent.
    #[error("POST {path}: statement {index} of the query was not sent: {exceeded}")]
    D1Limit {
        path: String,
        index: usize,
        exceeded: D1LimitError,
    },
    /// The run's overall timeout passed: the request was not sent again.
    #[error(
        "{method} {path}: gave up: the overall timeout of {} for this run has passed{}",
        crate::duration::format(*timeout),
        match last { Some(e) => format!(" (the last attempt failed: {e})"), None => String::new() }
    )]
    Deadline {
        method: Method,
        path: String,
        timeout: Duration,
        last: Option<Box<ClientError>>,
    },
}

fn format_api_errors(errors: &[ApiMessage]) -> String {
    if errors.is_empty() {
        return "no error details".to_string();
    }
    errors
        .iter()
        .map(|e| format!("[{}] {}", e.code, e.message))
        .collect::<Vec<_>>()
        .join("; ")
}

impl ClientError {
    /// The HTTP status, when Cloudflare answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } | ClientError::Decode { status, .. } => Some(*status),
            ClientError::OutcomeUnknown { error, .. } => error.status(),
            _ => None,
        }
    }

    /// Whether Cloudflare reported this error code.
    pub fn has_code(&self, code: i64) -> bool {
        match self {
            ClientError::Api { errors, .. } => errors.iter().any(|e| e.code == code),
            ClientError::OutcomeUnknown { error, .. } => error.has_code(code),
            _ => false,
        }
    }

    /// Whether D1 answered that a table the query names does not exist (an
    /// SQL error, code [`D1_SQL_ERROR`], whose message is SQLite's `no such
    /// table: NAME`).
    pub fn is_no_such_table(&self) -> bool {
        match self {
            ClientError::Api { errors, .. } => errors
                .iter()
                .any(|e| e.code == D1_SQL_ERROR && e.message.contains("no such table: ")),
            ClientError::OutcomeUnknown { error, .. } => error.is_no_such_table(),
            _ => false,
        }
    }

    /// Whether the request may have taken effect although it failed: a
    /// create or a D1 write whose answer was lost. Look before acting.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self, ClientError::OutcomeUnknown { .. })
    }

    /// Whether the run's overall timeout passed (also when that left the
    /// outcome of a create unknown).
    pub fn is_deadline(&self) -> bool {
        match self {
            ClientError::Deadline { .. } => true,
            ClientError::OutcomeUnknown { error, .. } => error.is_deadline(),
            _ => false,
        }
    }

    /// A rejected or missing credential.
    pub fn is_authentication(&self) -> bool {
        match self {
            ClientError::Api { status, errors, .. } => {
                *status == 401
                    || (*status == 403
                        && errors
                            .iter()
                            .any(|e| matches!(e.code, 10000 | 9109 | 6003 | 6111 | 1000)))
                    || errors.iter().any(|e| matches!(e.code, 6003 | 6111 | 9106))
            }
            ClientError::OutcomeUnknown { error, .. } => error.is_authentication(),
            _ => false,
        }
    }

    /// A hint the user can act on, if there is one.
    pub fn hint(&self) -> Option<&'static str> {
        if self.is_authentication() {
            return Some(
                "check CLOUDFLARE_API_TOKEN (the token must be valid and allowed to use this account) and the account id",
            );
        }
        match self {
            ClientError::Transport { .. } => Some(
                "check CLOUDFLARE_API_BASE_URL and the network; run with --local to use the embedded local account",
            ),
            ClientError::OutcomeUnknown { .. } => Some(
                "the change may have been made; run `flareops plan` to see what the account holds now before applying again",
            ),
            ClientError::Deadline { .. } => Some(
                "the run took longer than FLAREOPS_TIMEOUT allows; raise it, or set it to `off`",
            ),
            _ => None,
        }
    }

    /// This error with `token` scrubbed out of every text a server sent.
    fn scrubbed(self, token: &Token) -> ClientError {
        match self {
            ClientError::Api {
                method,
                path,
                status,
                errors,
            } => ClientError::Api {
                method,
                path: token.scrub(&path),
                status,
                errors: errors
                    .into_iter()
                    .map(|e| ApiMessage {
                        code: e.code,
                        message: token.scrub(&e.message),
                    })
                    .collect(),
            },
            ClientError::Decode {
                method,
                path,
                status,
                reason,
            } => ClientError::Decode {
                method,
                path: token.scrub(&path),
                status,
                reason: token.scrub(&reason),
            },
            ClientError::Transport {
                method,
                path,
                sent,
                detail,
                error,
            } => ClientError::Transport {
                method,
                path: token.scrub(&path),
                sent,
                detail: token.scrub(&detail),
                error,
            },
            other => other,
        }
    }
}

/// `result_info` of a paginated response.
#[derive(Debug, Default, Deserialize)]
struct ResultInfo {
    #[serde(default)]
    total_count: Option<u64>,
    #[serde(default)]
    cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    errors: Vec<ApiMessage>,
    result: Option<T>,
    #[serde(default)]
    result_info: Option<ResultInfo>,
}

/// The client for one account. Clones share the connection pool, the
/// concurrency bound, the rate limiter and the deadline. `Debug` shows the
/// settings, never the token.
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    account_id: String,
    /// Kept only to scrub it out of texts servers echo back.
    token: Token,
    concurrency: Arc<Semaphore>,
    rate: RateLimiter,
    retry: RetryPolicy,
    request_timeout: Duration,
    deadline: Option<Deadline>,
    /// Requests sent by this client and its clones (retries included).
    sent: Arc<std::sync::atomic::AtomicU64>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .field("account_id", &self.account_id)
            .field("token", &self.token)
            .field("rate", &self.rate)
            .field("retry", &self.retry)
            .field("request_timeout", &self.request_timeout)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// The body of a request. A multipart body is built anew for each attempt.
enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    Multipart(&'a (dyn Fn() -> reqwest::multipart::Form + Send + Sync)),
}

/// One request, as sent on every attempt.
struct Request<'a> {
    method: Method,
    path: &'a str,
    query: &'a [(&'a str, String)],
    headers: &'a [(&'static str, String)],
    body: Body<'a>,
    /// Whether a retry after a lost answer is harmless; by default from
    /// the method ([`Repeat::of`]).
    repeat: Repeat,
}

impl<'a> Request<'a> {
    fn new(method: Method, path: &'a str) -> Request<'a> {
        let repeat = Repeat::of(&method);
        Request {
            method,
            path,
            query: &[],
            headers: &[],
            body: Body::None,
            repeat,
        }
    }

    fn query(self, query: &'a [(&'a str, String)]) -> Request<'a> {
        Request { query, ..self }
    }

    fn headers(self, headers: &'a [(&'static str, String)]) -> Request<'a> {
        Request { headers, ..self }
    }

    fn body(self, body: Body<'a>) -> Request<'a> {
        Request { body, ..self }
    }

    fn repeat(self, repeat: Repeat) -> Request<'a> {
        Request { repeat, ..self }
    }
}

/// `url` without a `user:password@` part, for messages.
fn redact_userinfo(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{REDACTED}@{}", &rest[at + 1..]),
        None => url.to_string(),
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::InvalidBaseUrl {
                url: config.token.scrub(&redact_userinfo(&base_url)),
                reason: "it must start with http:// or https://".into(),
            });
        }
        if let Some(reason) = clear_text(&base_url) {
            return Err(ClientError::InvalidBaseUrl {
                url: config.token.scrub(&redact_userinfo(&base_url)),
                reason,
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, config.token.header_value()?);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            // The API answers where it was asked: a redirect is never
            // followed, so the token cannot be carried to another host or
            // down to plain http (a 3xx is an error like any other).
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("flareops/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10).min(config.request_timeout))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Client {
            http,
            base_url,
            account_id: config.account_id,
            token: config.token,
            concurrency: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            rate: RateLimiter::new(config.rate_limit),
            retry: config.retry,
            request_timeout: config.request_timeout,
            deadline: config.deadline,
            sent: Arc::default(),
        })
    }

    /// How many requests this client and its clones sent (each attempt of
    /// a retried request counts).
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// This client with `rate` as its limiter, shared with the other
    /// clients holding it (every client of one run shares one bucket).
    pub fn with_rate_limiter(mut self, rate: RateLimiter) -> Client {
        self.rate = rate;
        self
    }

    /// The limiter this client (and its clones) take tokens from.
    pub fn rate_limiter(&self) -> &RateLimiter {
        &self.rate
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// What Cloudflare says of the token this client sends
    /// (`GET /user/tokens/verify`): its status and expiry.
    pub async fn verify_token(&self) -> Result<TokenStatus, ClientError> {
        let (status, _) = self
            .call::<TokenStatus>(Method::GET, "/user/tokens/verify", &[], &[], Body::None)
            .await?;
        status.ok_or_else(|| ClientError::Decode {
            method: Method::GET,
            path: "/user/tokens/verify".to_string(),
            status: 200,
            reason: "the answer has no result".to_string(),
        })
    }

    /// `/accounts/{account_id}` + `rest`.
    fn account_path(&self, rest: &str) -> String {
        format!("/accounts/{}{}", self.account_id, rest)
    }

    /// Sends one request (with retries) and decodes the envelope's
    /// `result`. Returns the result and `result_info`. A request that must
    /// not be repeated and lost its answer fails with
    /// [`ClientError::OutcomeUnknown`].
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        body: Body<'_>,
    ) -> Result<(Option<T>, ResultInfo), ClientError> {
        let request = Request::new(method, path)
            .query(query)
            .headers(headers)
            .body(body);
        self.fetch(&request).await
    }

    /// [`Client::call`] for a prepared request.
    async fn fetch<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
    ) -> Result<(Option<T>, ResultInfo), ClientError> {
        let mut state = Exchange::default();
        self.fetch_with(request, &mut state)
            .await
            .map_err(|error| match request.repeat {
                Repeat::Unsafe if state.last_ambiguous => ClientError::OutcomeUnknown {
                    error: Box::new(error),
                    lookup: None,
                },
                _ => error,
            })
    }

    /// Sends a request (with retries, counted in `state`) and decodes the
    /// envelope, without interpreting a lost answer.
    async fn fetch_with<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
        state: &mut Exchange,
    ) -> Result<(Option<T>, ResultInfo), ClientError> {
        let answer = self.exchange(request, state).await?;
        decode(&request.method, request.path, answer.status, &answer.bytes)
            .map_err(|error| error.scrubbed(&self.token))
    }

    /// [`Client::fetch_with`] whose `result` must be present.
    async fn fetch_result_with<T: DeserializeOwned>(
        &self,
        request: &Request<'_>,
        state: &mut Exchange,
    ) -> Result<T, ClientError> {
        let (result, _) = self.fetch_with::<T>(request, state).await?;
        result.ok_or_else(|| missing_result(request))
    }

    /// A call whose `result` must be present.
    async fn call_result<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        body: Body<'_>,
    ) -> Result<T, ClientError> {
        let request = Request::new(method, path)
            .query(query)
            .headers(headers)
            .body(body);
        let (result, _) = self.fetch::<T>(&request).await?;
        result.ok_or_else(|| missing_result(&request))
    }

    /// A call whose `result` is ignored (deletes, renames).
    async fn call_unit(
        &self,
        method: Method,
        path: &str,
        headers: &[(&'static str, String)],
        body: Body<'_>,
    ) -> Result<(), ClientError> {
        self.call::<serde_json::Value>(method, path, &[], headers, body)
            .await
            .map(|_| ())
    }

    /// Fetches every page of a page-paginated list (`page`, `per_page`,
    /// `result_info.total_count`). Goes on while fewer items than
    /// `total_count` arrived (a server may cap the page size below what was
    /// asked), and always stops on an empty page.
    async fn get_all_pages<T: DeserializeOwned>(
        &self,
        path: &str,
        per_page: u32,
        extra: &[(&str, String)],
    ) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let mut query: Vec<(&str, String)> = extra.to_vec();
            query.push(("page", page.to_string()));
            query.push(("per_page", per_page.to_string()));
            let (result, info) = self
                .call::<Vec<T>>(Method::GET, path, &query, &[], Body::None)
                .await?;
            let items = result.unwrap_or_default();
            let received = items.len() as u64;
            out.extend(items);
            let more = match info.total_count {
                Some(total) => (out.len() as u64) < total,
                // No total: a full page may have a successor.
                None => received >= u64::from(per_page),
            };
            if received == 0 || !more {
                return Ok(out);
            }
            page += 1;
        }
    }

    /// Fetches every page of a cursor-paginated list. `extract` pulls the
    /// items out of `result` (R2 wraps them in `{buckets}`).
    async fn get_all_cursor<R: DeserializeOwned, T>(
        &self,
        path: &str,
        page_size: (&str, u32),
        headers: &[(&'static str, String)],
        extract: impl Fn(R) -> Vec<T>,
    ) -> Result<Vec<T>, ClientError> {
        let mut out = Vec::new();
        let mut cursor: Option<String> = None;
        // Bounded: a server that keeps sending the same cursor cannot loop us forever.
        for _ in 0..100_000 {
            let mut query = vec![(page_size.0, page_size.1.to_string())];
            if let Some(c) = &cursor {
                query.push(("cursor", c.clone()));
            }
            let (result, info) = self
                .call::<R>(Method::GET, path, &query, headers, Body::None)
                .await?;
            if let Some(result) = result {
                out.extend(extract(result));
            }
            match info.cursor {
                Some(next) if !next.is_empty() && Some(&next) != cursor.as_ref() => {
                    cursor = Some(next)
                }
                _ => return Ok(out),
            }
        }
        Ok(out)
    }
}

fn missing_result(request: &Request<'_>) -> ClientError {
    ClientError::Decode {
        method: request.method.clone(),
        path: request.path.to_string(),
        status: 200,
        reason: "the envelope has no `result`".into(),
    }
}

fn decode<T: DeserializeOwned>(
    method: &Method,
    path: &str,
    status: StatusCode,
    bytes: &[u8],
) -> Result<(Option<T>, ResultInfo), ClientError> {
    let envelope: Envelope<serde_json::Value> = match serde_json::from_slice(bytes) {
        Ok(envelope) => envelope,
        Err(error) => {
            return Err(if status.is_success() {
                ClientError::Decode {
                    method: method.clone(),
                    path: path.to_string(),
                    status: status.as_u16(),
                    reason: format!("the body is not a v4 envelope: {error}"),
                }
            } else {
                ClientError::Api {
                    method: method.clone(),
                    path: path.to_string(),
                    status: status.as_u16(),
                    errors: vec![],
                }
            });
        }
    };
    if !status.is_success() || !envelope.success {
        return Err(ClientError::Api {
            method: method.clone(),
            path: path.to_string(),
            status: status.as_u16(),
            errors: envelope.errors,
        });
    }
    let result = match envelope.result {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => {
            Some(
                serde_json::from_value(value).map_err(|error| ClientError::Decode {
                    method: method.clone(),
                    path: path.to_string(),
                    status: status.as_u16(),
                    reason: format!("unexpected `result`: {error}"),
                })?,
            )
        }
    };
    Ok((result, envelope.result_info.unwrap_or_default()))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod wire_tests;

#[cfg(test)]
mod fault_tests;
