//! The Cloudflare REST API v4 client: the only module that knows the API's
//! JSON and HTTP. It speaks the v4 envelope, both pagination styles, maps
//! failures to typed errors carrying Cloudflare's codes, bounds concurrency
//! and retries what is safe to retry.
//!
//! Endpoint calls live in one file per service (`kv`, `d1`, `r2`); this file
//! holds the transport: configuration, the envelope, errors and retries.

mod d1;
mod kv;
mod r2;
mod retry;
mod workers;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;

pub use d1::{D1Database, QueryResult};
pub use kv::KvNamespace;
pub use r2::R2Bucket;
pub use retry::RetryPolicy;
pub use workers::{
    CustomDomain, Deployment, DeploymentShare, DurableObjectNamespace, Migration, Route,
    ScriptSummary, UploadedModule, Version, WorkerUpload,
};

/// The production API base URL; `CLOUDFLARE_API_BASE_URL` overrides it.
pub const DEFAULT_BASE_URL: &str = "https://api.cloudflare.com/client/v4";

/// An API token. It is only ever sent in the `Authorization` header: `Debug`
/// and `Display` print a placeholder, so it cannot leak through formatting.
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
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Everything needed to talk to one account.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub base_url: String,
    pub token: Token,
    pub account_id: String,
    /// Requests in flight at once.
    pub max_concurrency: usize,
    pub retry: RetryPolicy,
    /// Per-request timeout.
    pub request_timeout: Duration,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, token: Token, account_id: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            token,
            account_id: account_id.into(),
            max_concurrency: 8,
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(60),
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

/// Errors of the client. Every variant says which request failed.
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
    #[error("{method} {path}: request failed: {source}")]
    Transport {
        method: Method,
        path: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {path}: unexpected response (HTTP {status}): {reason}")]
    Decode {
        method: Method,
        path: String,
        status: u16,
        reason: String,
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
            _ => None,
        }
    }

    /// Whether Cloudflare reported this error code.
    pub fn has_code(&self, code: i64) -> bool {
        matches!(self, ClientError::Api { errors, .. } if errors.iter().any(|e| e.code == code))
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
            _ => None,
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

/// The client for one account.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    account_id: String,
    limiter: Arc<Semaphore>,
    retry: RetryPolicy,
}

/// The body of a request. A multipart body is built anew for each attempt.
enum Body<'a> {
    None,
    Json(&'a serde_json::Value),
    Multipart(&'a (dyn Fn() -> reqwest::multipart::Form + Send + Sync)),
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ClientError> {
        let base_url = config.base_url.trim_end_matches('/').to_string();
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(ClientError::InvalidBaseUrl {
                url: base_url,
                reason: "it must start with http:// or https://".into(),
            });
        }
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, config.token.header_value()?);
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("flareops/", env!("CARGO_PKG_VERSION")))
            .timeout(config.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Client {
            http,
            base_url,
            account_id: config.account_id,
            limiter: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
            retry: config.retry,
        })
    }

    pub fn account_id(&self) -> &str {
        &self.account_id
    }

    /// `/accounts/{account_id}` + `rest`.
    fn account_path(&self, rest: &str) -> String {
        format!("/accounts/{}{}", self.account_id, rest)
    }

    /// Sends one request, retrying what the policy allows, and returns the
    /// final status, headers and body (whatever the status).
    async fn send(
        &self,
        method: &Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        body: &Body<'_>,
    ) -> Result<(StatusCode, HeaderMap, bytes::Bytes), ClientError> {
        let url = format!("{}{}", self.base_url, path);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let outcome = {
                let _permit = self.limiter.acquire().await.ok();
                let mut request = self.http.request(method.clone(), &url).query(query);
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                match body {
                    Body::None => {}
                    Body::Json(value) => request = request.json(value),
                    Body::Multipart(build) => request = request.multipart(build()),
                }
                tracing::debug!(%method, path, attempt, "cloudflare request");
                match request.send().await {
                    Ok(response) => {
                        let status = response.status();
                        let headers = response.headers().clone();
                        response.bytes().await.map(|bytes| (status, headers, bytes))
                    }
                    Err(error) => Err(error),
                }
            };
            let (status, response_headers, bytes) = match outcome {
                Ok(parts) => parts,
                Err(source) => {
                    let error = ClientError::Transport {
                        method: method.clone(),
                        path: path.to_string(),
                        source,
                    };
                    match self.retry.delay_for_transport(method, attempt) {
                        Some(delay) => {
                            tracing::warn!(%method, path, attempt, ?delay, "request failed, retrying: {error}");
                            tokio::time::sleep(delay).await;
                            continue;
                        }
                        None => return Err(error),
                    }
                }
            };
            let header = |name: &str| {
                response_headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_string)
            };
            tracing::debug!(
                %method,
                path,
                status = status.as_u16(),
                ray = header("cf-ray").as_deref().unwrap_or("-"),
                "cloudflare response"
            );
            let retry_after = header("retry-after");
            if let Some(delay) = self.retry.delay_for_status(
                method,
                status.as_u16(),
                retry_after.as_deref(),
                attempt,
            ) {
                tracing::warn!(%method, path, status = status.as_u16(), ?delay, "retrying");
                tokio::time::sleep(delay).await;
                continue;
            }
            return Ok((status, response_headers, bytes));
        }
    }

    /// Sends one request (with retries) and decodes the envelope's `result`.
    /// Returns the result and `result_info`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        headers: &[(&'static str, String)],
        body: Body<'_>,
    ) -> Result<(Option<T>, ResultInfo), ClientError> {
        let (status, _, bytes) = self.send(&method, path, query, headers, &body).await?;
        decode(&method, path, status, &bytes)
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
        let (result, _) = self
            .call::<T>(method.clone(), path, query, headers, body)
            .await?;
        result.ok_or_else(|| ClientError::Decode {
            method,
            path: path.to_string(),
            status: 200,
            reason: "the envelope has no `result`".into(),
        })
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
mod tests {
    use super::*;

    #[test]
    fn token_never_formats() {
        let token = Token::new("canary-secret-value");
        assert!(!format!("{token:?}").contains("canary"));
        assert!(!format!("{token}").contains("canary"));
        let config = ClientConfig::new("http://127.0.0.1:1/client/v4", token, "acc");
        assert!(!format!("{config:?}").contains("canary"));
    }

    #[test]
    fn decode_reads_errors_and_results() {
        let body = br#"{"success":false,"errors":[{"code":10014,"message":"dup"}],"messages":[],"result":null}"#;
        let error = decode::<serde_json::Value>(&Method::POST, "/x", StatusCode::BAD_REQUEST, body)
            .expect_err("an error envelope");
        assert!(error.has_code(10014));
        assert_eq!(error.status(), Some(400));
        let ok = br#"{"success":true,"errors":[],"messages":[],"result":[1,2],"result_info":{"total_count":2}}"#;
        let (result, info) = decode::<Vec<u8>>(&Method::GET, "/x", StatusCode::OK, ok).expect("ok");
        assert_eq!(result, Some(vec![1, 2]));
        assert_eq!(info.total_count, Some(2));
    }

    #[test]
    fn non_envelope_error_body_is_an_api_error_with_status() {
        let error =
            decode::<serde_json::Value>(&Method::GET, "/x", StatusCode::BAD_GATEWAY, b"<html>")
                .expect_err("an error");
        assert_eq!(error.status(), Some(502));
    }
}

#[cfg(test)]
mod wire_tests;
