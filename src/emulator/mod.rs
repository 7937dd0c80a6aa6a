//! A local Cloudflare REST API v4 emulator.
//!
//! It speaks the real wire format (envelope, error codes, pagination quirks) so that both our own
//! client and the real `wrangler` CLI work against it. It shares no types with
//! `crate::cloudflare`: this module has its own wire code on purpose, so a mistake in one side
//! cannot hide the same mistake in the other.
//!
//! Served under `/client/v4`: accounts, memberships, user and token verification
//! (`accounts`), Workers KV (`kv`), D1 backed by real SQLite files (`d1`), R2 bucket
//! management (`r2`), the one GraphQL analytics query `wrangler d1 info` sends
//! (`graphql`), and Workers with their versions, deployments, secrets, cron triggers, routes,
//! custom domains, workers.dev settings, Durable Object namespaces and the zones routes live on
//! (`workers`). Every response under `/client/v4` carries a `cf-ray` header (16 lowercase hex
//! digits and `-SJC`, unique per request), as Cloudflare's do.
//!
//! The emulator's own endpoints live under `/__emulator/` (never faulted, never rate-limited):
//! `GET /__emulator/stats` reports request counts (`stats`) and the faults injected;
//! `/__emulator/faults` controls fault injection at run time (`GET` shows the configuration, with
//! its seed, and the counts per kind; `PUT` or `POST` installs a configuration, `DELETE` turns
//! every fault off; a malformed body is a 400 with code 1102 and a message naming the field);
//! `/__emulator/clock` moves the emulator's [`Clock`] (`GET` shows it, `PUT {"now"}` pins it,
//! `POST {"advance_ms"}` moves it forward, `DELETE` gives it back to the machine), so tests
//! against an emulator process move time instead of sleeping.
//!
//! Presigned links (D1 import uploads and export downloads) are served under `/presigned/`,
//! outside `/client/v4` and without a token, as Cloudflare's are R2 links that carry their own
//! signature (`d1`).
//!
//! **Faults** ([`faults`]), off by default: added latency and jitter, 5xx answers, 429 answers
//! with `Retry-After`, connection resets before any response, responses lost after the request
//! was processed, and Cloudflare's per-token rate limit; globally or per endpoint, driven by one
//! seeded generator so a run can be replayed. Set them with [`start_with_faults`],
//! [`Emulator::set_faults`], `flareops emulator --fault-*` flags or `PUT /__emulator/faults`.
//! [`start`] keeps its signature so every existing caller gets an emulator without faults.
//!
//! Every request, to the API or to `/__emulator/`, needs `Authorization: Bearer <token>`; the
//! token is compared in constant time and never logged. A request refused for its credentials is
//! answered before any fault is considered. The server binds the configured address (loopback
//! unless told otherwise, with a warning when it is not). State lives in `state_dir` (`store`)
//! and survives restarts.

mod accounts;
mod clock;
mod d1;
mod dns;
mod envelope;
pub mod faults;
mod graphql;
mod kv;
mod pages;
mod queues;
mod r2;
mod stats;
mod store;
mod workers;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use clock::Clock;
use envelope::ApiError;
use faults::{ConnectionHandle, FaultListener, Faults, Outcome, RayIds};
pub use faults::{FaultConfig, FaultConfigError, FaultCounts, FaultRule, FaultSettings, RateLimit};
use stats::Stats;
use store::{D1Files, Store};
pub use workers::zone_id;

/// The account id used when none is configured (32 lowercase hex characters, like Cloudflare's).
pub const DEFAULT_ACCOUNT_ID: &str = "f1a7e0c5d4b3a2918f7e6d5c4b3a2910";

/// Path prefix of every Cloudflare API route.
pub(crate) const API_PREFIX: &str = "/client/v4";

/// Prefix of the emulator's own endpoints (outside the Cloudflare API, never faulted).
const EMULATOR_PREFIX: &str = "/__emulator/";

/// Path of the emulator's own statistics endpoint.
const STATS_PATH: &str = "/__emulator/stats";

/// Path of the fault-injection control endpoint ([`faults`]).
const FAULTS_PATH: &str = "/__emulator/faults";

/// Path of the clock control endpoint ([`clock`]).
const CLOCK_PATH: &str = "/__emulator/clock";

/// Code of the 400 answering a malformed fault configuration (the emulator's own, like 1101).
const FAULT_CONFIG_INVALID: u32 = 1102;

/// Code and message of Cloudflare's rate-limit answer (429).
const RATE_LIMITED_CODE: u32 = 971;
const RATE_LIMITED_MESSAGE: &str = "Please wait and consider throttling your request speed";

/// Code of the injected 5xx answers (the Workers API's "Unexpected internal server error").
const INJECTED_SERVER_ERROR_CODE: u32 = 10002;

/// Largest request body accepted: KV bulk writes may be up to 100 MB.
const MAX_BODY_BYTES: usize = 110 * 1024 * 1024;

/// How to run the emulator.
#[derive(Clone)]
pub struct Config {
    /// Address to bind; port 0 picks an ephemeral port.
    pub listen: SocketAddr,
    /// Directory holding the emulator's state (created if missing).
    pub state_dir: PathBuf,
    /// The one API token accepted (`Authorization: Bearer <token>`). Never logged.
    pub token: String,
    /// The one account served.
    pub account_id: String,
    /// Zones (domain names such as `example.com`) that exist in the account, created at start
    /// when missing. Their ids are derived from the name, so they are stable across runs.
    pub zones: Vec<String>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Config")
            .field("listen", &self.listen)
            .field("state_dir", &self.state_dir)
            .field("token", &"<redacted>")
            .field("account_id", &self.account_id)
            .field("zones", &self.zones)
            .finish()
    }
}

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum EmulatorError {
    #[error("invalid emulator configuration: {message}")]
    InvalidConfig { message: String },
    #[error("cannot create state directory {}", path.display())]
    CreateStateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open state database {}", path.display())]
    OpenDatabase {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "state database {} has schema version {found}, this emulator expects {expected}",
        path.display()
    )]
    IncompatibleState {
        path: PathBuf,
        found: String,
        expected: i64,
    },
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the address the emulator listens on")]
    LocalAddr {
        #[source]
        source: std::io::Error,
    },
    #[error("invalid fault configuration: {0}")]
    InvalidFaults(FaultConfigError),
}

/// Shared state of the running server.
pub(crate) struct AppState {
    token: String,
    pub account_id: String,
    pub store: Store,
    pub d1: D1Files,
    pub stats: Stats,
    faults: Faults,
    rays: RayIds,
    pub clock: Clock,
    /// The state directory: R2 object bodies and D1 transfer files live under it.
    pub state_dir: PathBuf,
    /// When the token expires, if it does: token verification answers
    /// `expired` from then on (by the emulator's clock).
    pub token_expires_on: std::sync::Mutex<Option<time::OffsetDateTime>>,
}

impl AppState {
    /// The secret Pages upload tokens are signed with (never sent).
    pub(crate) fn token_secret(&self) -> String {
        format!("pages-upload/{}", self.token)
    }
}

pub(crate) type SharedState = Arc<AppState>;

/// A running emulator. Dropping it stops the server without waiting; prefer [`Emulator::shutdown`].
pub struct Emulator {
    addr: SocketAddr,
    shutdown_tx: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
    state: SharedState,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Emulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// The address the server listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://HOST:PORT/client/v4`, the value for `CLOUDFLARE_API_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}{API_PREFIX}", self.addr)
    }

    /// Replaces the fault configuration at run time, like `PUT /__emulator/faults`.
    pub fn set_faults(&self, config: FaultConfig) -> Result<(), FaultConfigError> {
        self.state.faults.install(config)
    }

    /// The installed fault configuration, with its seed.
    pub fn fault_config(&self) -> FaultConfig {
        self.state.faults.config()
    }

    /// Faults injected so far, per kind.
    pub fn fault_counts(&self) -> FaultCounts {
        self.state.faults.counts()
    }

    /// Makes the token expire at `at` (`None`: never), as token
    /// verification reports it.
    pub fn set_token_expiry(&self, at: Option<time::OffsetDateTime>) {
        *self
            .state
            .token_expires_on
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = at;
    }

    /// The emulator's clock (a handle: moving it moves the running emulator's time).
    pub fn clock(&self) -> Clock {
        self.state.clock.clone()
    }

    /// Stops accepting connections, lets requests in flight finish, and flushes state to disk.
    pub async fn shutdown(mut self) {
        if let Some(shutdown_tx) = self.shutdown_tx.take() {
            let _ = shutdown_tx.send(());
        }
        if let Some(task) = self.task.take()
            && let Err(error) = task.await
        {
            tracing::warn!(%error, "emulator server task ended abnormally");
        }
        let state = Arc::clone(&self.state);
        let flushed = tokio::task::spawn_blocking(move || {
            state.d1.close_all();
            state.store.flush()
        })
        .await;
        match flushed {
            Ok(Ok(())) => tracing::debug!("emulator state flushed"),
            Ok(Err(error)) => tracing::warn!(%error, "flushing emulator state failed"),
            Err(error) => tracing::warn!(%error, "flushing emulator state failed"),
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown_tx) = self.shutdown_tx.take() {
            let _ = shutdown_tx.send(());
        }
    }
}

/// Binds `config.listen`, opens or creates the state in `config.state_dir`, spawns the server
/// and returns once it is listening. No fault is injected (see [`start_with_faults`]).
pub async fn start(config: Config) -> Result<Emulator, EmulatorError> {
    start_with_faults(config, FaultConfig::default()).await
}

/// Like [`start`], injecting the faults `faults` describes from the first request on.
pub async fn start_with_faults(
    config: Config,
    faults: FaultConfig,
) -> Result<Emulator, EmulatorError> {
    start_with(config, faults, Clock::system()).await
}

/// Like [`start_with_faults`], reading every timestamp from `clock` (a [`Clock::manual`] lets a
/// test move time instead of sleeping).
pub async fn start_with(
    config: Config,
    faults: FaultConfig,
    clock: Clock,
) -> Result<Emulator, EmulatorError> {
    validate_config(&config)?;
    let faults = Faults::new(faults).map_err(EmulatorError::InvalidFaults)?;
    let state_dir = config.state_dir.clone();
    private_dir(&state_dir).map_err(|source| EmulatorError::CreateStateDir {
        path: state_dir.clone(),
        source,
    })?;
    let d1_clock = clock.clone();
    let (store, d1) = tokio::task::spawn_blocking(move || {
        let store = Store::open(&state_dir)?;
        let d1 = D1Files::new(&state_dir, d1_clock)?;
        Ok::<_, EmulatorError>((store, d1))
    })
    .await
    .map_err(|error| EmulatorError::InvalidConfig {
        message: format!("opening state panicked: {error}"),
    })??;
    let zones = config.zones.clone();
    let created_on = clock.timestamp();
    store
        .call(move |conn| workers::create_zones(conn, &zones, &created_on))
        .await
        .map_err(|error| EmulatorError::InvalidConfig {
            message: format!("cannot create the configured zones: {}", error.message),
        })?;

    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| EmulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| EmulatorError::LocalAddr { source })?;
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "the emulator listens on a non-loopback address");
    }

    let state = Arc::new(AppState {
        token: config.token,
        account_id: config.account_id,
        store,
        d1,
        stats: Stats::default(),
        faults,
        rays: RayIds::new(),
        clock,
        state_dir: config.state_dir.clone(),
        token_expires_on: std::sync::Mutex::new(None),
    });
    let app = router(Arc::clone(&state)).into_make_service_with_connect_info::<ConnectionHandle>();
    let listener = FaultListener::new(listener);
    let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = shutdown_rx.await;
        });
        if let Err(error) = server.await {
            tracing::error!(%error, "emulator server failed");
        }
    });
    tracing::info!(%addr, state_dir = %config.state_dir.display(), "emulator listening");
    Ok(Emulator {
        addr,
        shutdown_tx: Some(shutdown_tx),
        task: Some(task),
        state,
    })
}

fn validate_config(config: &Config) -> Result<(), EmulatorError> {
    if config.token.is_empty() || !config.token.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(EmulatorError::InvalidConfig {
            message: String::from(
                "the token must be non-empty printable ASCII without spaces (it is sent as a Bearer token)",
            ),
        });
    }
    let account = &config.account_id;
    if account.is_empty()
        || account.len() > 32
        || !account.bytes().all(|byte| byte.is_ascii_alphanumeric())
    {
        return Err(EmulatorError::InvalidConfig {
            message: format!(
                "account id {account:?} must be 1 to 32 ASCII letters or digits (Cloudflare uses 32 lowercase hex)"
            ),
        });
    }
    for zone in &config.zones {
        if !workers::valid_zone_name(zone) {
            return Err(EmulatorError::InvalidConfig {
                message: format!(
                    "zone {zone:?} must be a lowercase domain name with at least two labels, like example.com"
                ),
            });
        }
    }
    Ok(())
}

/// The whole HTTP surface.
fn router(state: SharedState) -> Router {
    Router::new()
        .merge(accounts::routes())
        .merge(kv::routes())
        .merge(queues::routes())
        .merge(dns::routes())
        .merge(pages::routes())
        .merge(d1::routes())
        .merge(r2::routes())
        .merge(graphql::routes())
        .merge(workers::routes())
        .route(STATS_PATH, axum::routing::get(stats_handler))
        .route(
            FAULTS_PATH,
            axum::routing::get(get_faults)
                .put(put_faults)
                .post(put_faults)
                .delete(delete_faults),
        )
        .route(
            CLOCK_PATH,
            axum::routing::get(get_clock)
                .put(put_clock)
                .post(advance_clock)
                .delete(delete_clock),
        )
        .fallback(no_route)
        .method_not_allowed_fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            Arc::clone(&state),
            gate,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Creates `dir` (and its missing parents) readable by the owner only: the
/// state holds the account's data (the local account's secrets too).
pub(crate) fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

async fn no_route() -> Response {
    ApiError::no_route().into_response()
}

async fn stats_handler(State(state): State<SharedState>) -> Response {
    let mut snapshot = state.stats.snapshot();
    snapshot["faults"] = serde_json::json!(state.faults.counts());
    axum::Json(snapshot).into_response()
}

/// `GET /__emulator/faults`: `{"config": <installed, with its seed>, "injected": <counts>}`.
async fn get_faults(State(state): State<SharedState>) -> Response {
    faults_report(&state)
}

/// `PUT` (or `POST`) `/__emulator/faults`: installs the body's configuration, answers the report.
async fn put_faults(State(state): State<SharedState>, body: Bytes) -> Response {
    let installed = FaultConfig::from_json(&body).and_then(|config| state.faults.install(config));
    match installed {
        Ok(()) => faults_report(&state),
        Err(error) => {
            ApiError::bad_request(FAULT_CONFIG_INVALID, error.to_string()).into_response()
        }
    }
}

/// `DELETE /__emulator/faults`: injects nothing from now on (the counts are kept).
async fn delete_faults(State(state): State<SharedState>) -> Response {
    match state.faults.install(FaultConfig::default()) {
        Ok(()) => faults_report(&state),
        Err(error) => ApiError::internal(error).into_response(),
    }
}

/// `GET /__emulator/clock`: `{"now": "<RFC 3339>", "manual": bool}`.
async fn get_clock(State(state): State<SharedState>) -> Response {
    clock_report(&state.clock)
}

/// `PUT /__emulator/clock {"now": "<RFC 3339>"}`: pins the clock at that time.
async fn put_clock(State(state): State<SharedState>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Pin {
        now: String,
    }
    let pinned = serde_json::from_slice::<Pin>(&body)
        .map_err(|error| format!("expected {{\"now\": \"<RFC 3339 time>\"}}: {error}"))
        .and_then(|pin| {
            time::OffsetDateTime::parse(&pin.now, &time::format_description::well_known::Rfc3339)
                .map_err(|error| format!("now: {:?} is not an RFC 3339 time: {error}", pin.now))
        });
    match pinned {
        Ok(at) => {
            state.clock.set(at);
            clock_report(&state.clock)
        }
        Err(message) => ApiError::bad_request(FAULT_CONFIG_INVALID, message).into_response(),
    }
}

/// `POST /__emulator/clock {"advance_ms": N}`: moves the clock forward by N milliseconds.
async fn advance_clock(State(state): State<SharedState>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Advance {
        advance_ms: u64,
    }
    match serde_json::from_slice::<Advance>(&body) {
        Ok(advance) => {
            state
                .clock
                .advance(std::time::Duration::from_millis(advance.advance_ms));
            clock_report(&state.clock)
        }
        Err(error) => ApiError::bad_request(
            FAULT_CONFIG_INVALID,
            format!("expected {{\"advance_ms\": <milliseconds>}}: {error}"),
        )
        .into_response(),
    }
}

/// `DELETE /__emulator/clock`: the clock follows the machine's again.
async fn delete_clock(State(state): State<SharedState>) -> Response {
    state.clock.follow_system();
    clock_report(&state.clock)
}

fn clock_report(clock: &Clock) -> Response {
    axum::Json(serde_json::json!({
        "now": clock.timestamp(),
        "manual": clock.is_manual(),
    }))
    .into_response()
}

fn faults_report(state: &AppState) -> Response {
    axum::Json(serde_json::json!({
        "config": state.faults.config(),
        "injected": state.faults.counts(),
    }))
    .into_response()
}

/// Runs before every handler: counts Cloudflare-path requests, logs them (never the token),
/// checks the token and the account id, stamps a `cf-ray` and injects faults.
async fn gate(State(state): State<SharedState>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let is_api = path == API_PREFIX || path.starts_with(&format!("{API_PREFIX}/"));
    let is_emulator = path.starts_with(EMULATOR_PREFIX);
    if !is_api && !is_emulator {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let template = request
        .extensions()
        .get::<MatchedPath>()
        .map(|matched| stats::template(matched.as_str()))
        .unwrap_or_else(|| String::from(stats::NO_ROUTE));
    if is_api {
        let agent = request
            .headers()
            .get(axum::http::header::USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        state
            .stats
            .record(method.as_str(), &template, stats::client_of(agent));
    }
    tracing::debug!(
        method = %method,
        path = %path,
        query = request.uri().query().unwrap_or(""),
        route = %template,
        content_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .unwrap_or(""),
        "request"
    );
    if !is_api {
        if let Err(error) = authenticate(request.headers(), &state.token, &path) {
            tracing::debug!(method = %method, path = %path, status = error.status.as_u16(), code = error.code, "rejected: authentication");
            return error.into_response();
        }
        return next.run(request).await;
    }

    let ray = state.rays.next_ray();
    let mut response = api_request(&state, request, next, &path).await;
    if let Ok(value) = HeaderValue::from_str(&ray) {
        response.headers_mut().insert("cf-ray", value);
    }
    tracing::debug!(
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        cf_ray = %ray,
        "response"
    );
    response
}

/// A Cloudflare-path request: credentials, account, then the fault injector's decision.
async fn api_request(state: &AppState, request: Request, next: Next, path: &str) -> Response {
    let method = request.method().clone();
    // Pages asset uploads carry the project's upload token instead of the
    // API token: their handlers check it.
    let upload_token_path = path
        .strip_prefix(API_PREFIX)
        .is_some_and(|relative| relative.starts_with("/pages/assets/"));
    if !upload_token_path && let Err(error) = authenticate(request.headers(), &state.token, path) {
        tracing::debug!(method = %method, path = %path, status = error.status.as_u16(), code = error.code, "rejected: authentication");
        return error.into_response();
    }
    if let Err(error) = check_account(path, &state.account_id) {
        tracing::debug!(method = %method, path = %path, status = error.status.as_u16(), "rejected: account");
        return error.into_response();
    }
    let relative = path.strip_prefix(API_PREFIX).unwrap_or(path);
    let decision = state.faults.decide(method.as_str(), relative);
    if !decision.delay.is_zero() {
        tokio::time::sleep(decision.delay).await;
    }
    match decision.outcome {
        Outcome::Pass => next.run(request).await,
        Outcome::RateLimited { retry_after } | Outcome::TooManyRequests { retry_after } => {
            let mut response = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                RATE_LIMITED_CODE,
                RATE_LIMITED_MESSAGE,
            )
            .into_response();
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from(retry_after),
            );
            response
        }
        Outcome::ServerError(status) => ApiError::new(
            status,
            INJECTED_SERVER_ERROR_CODE,
            format!(
                "{}: unexpected internal server error (fault injected by the emulator)",
                status.canonical_reason().unwrap_or("Server Error")
            ),
        )
        .into_response(),
        Outcome::Reset => {
            let connection = connection_of(&request);
            drop(request);
            dropped_connection(connection)
        }
        Outcome::LostResponse => {
            let connection = connection_of(&request);
            let response = next.run(request).await;
            tracing::debug!(method = %method, path = %path, status = response.status().as_u16(), "response lost on purpose");
            drop(response);
            dropped_connection(connection)
        }
    }
}

fn connection_of(request: &Request) -> Option<ConnectionHandle> {
    request
        .extensions()
        .get::<ConnectInfo<ConnectionHandle>>()
        .map(|ConnectInfo(handle)| handle.clone())
}

/// Resets the request's connection; the response returned is never written. Without a
/// connection handle (a server not started by [`start`]), its body fails at once, which makes
/// hyper abort the connection.
fn dropped_connection(connection: Option<ConnectionHandle>) -> Response {
    if let Some(connection) = &connection {
        connection.reset();
    }
    let failing = futures::stream::once(async {
        Err::<Bytes, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "response dropped by the emulator's fault injection",
        ))
    });
    Response::new(axum::body::Body::from_stream(failing))
}

/// Cloudflare's answers, in order: no credentials at all (400, 9106); API-key credentials
/// (not supported here: 403, 9103); a malformed `Authorization` header (400, 6003 with 6111 in
/// the chain); a well-formed but unknown token (401: 1000 on token verification, 9109 on the
/// user-level endpoints, 10000 "Authentication error" elsewhere).
fn authenticate(headers: &HeaderMap, token: &str, path: &str) -> Result<(), ApiError> {
    let authorization = headers.get(axum::http::header::AUTHORIZATION);
    let has_key_auth = headers.contains_key("x-auth-key") || headers.contains_key("x-auth-email");
    let Some(authorization) = authorization else {
        if has_key_auth {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                9103,
                "Unknown X-Auth-Key or X-Auth-Email",
            ));
        }
        return Err(ApiError::bad_request(
            9106,
            "Missing X-Auth-Key, X-Auth-Email or Authorization headers",
        ));
    };
    let malformed = || {
        ApiError::bad_request(6003, "Invalid request headers")
            .with_chain(6111, "Invalid format for Authorization header")
    };
    let value = authorization.to_str().map_err(|_| malformed())?;
    let (scheme, presented) = value.split_once(' ').ok_or_else(malformed)?;
    let presented = presented.trim();
    if !scheme.eq_ignore_ascii_case("bearer")
        || presented.is_empty()
        || !presented.bytes().all(|byte| byte.is_ascii_graphic())
    {
        return Err(malformed());
    }
    if constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        return Ok(());
    }
    let relative = path.strip_prefix(API_PREFIX).unwrap_or(path);
    if relative.ends_with("/tokens/verify") {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            1000,
            "Invalid API Token",
        ));
    }
    if relative == "/accounts" || relative == "/memberships" || relative.starts_with("/user") {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            9109,
            "Invalid access token",
        ));
    }
    Err(ApiError::new(
        StatusCode::UNAUTHORIZED,
        10000,
        "Authentication error",
    ))
}

/// A request for `/accounts/{other}/…` with a valid token is refused like a token without access
/// to that account: 403, 10000 "Authentication error".
fn check_account(path: &str, account_id: &str) -> Result<(), ApiError> {
    let relative = path.strip_prefix(API_PREFIX).unwrap_or(path);
    let mut segments = relative.trim_start_matches('/').split('/');
    if segments.next() != Some("accounts") {
        return Ok(());
    }
    match segments.next() {
        Some(account) if !account.is_empty() && account != account_id => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            10000,
            "Authentication error",
        )),
        _ => Ok(()),
    }
}

fn constant_time_eq(left: &[u8], right: &[u8]) -> bool {
    if left.len() != right.len() {
        return false;
    }
    left.iter()
        .zip(right)
        .fold(0u8, |difference, (a, b)| difference | (a ^ b))
        == 0
}
