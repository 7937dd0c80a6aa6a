//! The health check of a gradual rollout: one `GET` of a URL the worker
//! serves, pinned to the version being rolled out with Cloudflare's
//! `Cloudflare-Workers-Version-Overrides` header (`script="version"`), so
//! the check does not mostly reach the previous version.
//!
//! It talks to the deployed worker, not to the API: its HTTP client carries
//! no API token and has its own timeout (the whole exchange, connecting
//! included). A failure says which of the three ways it failed
//! ([`HealthFailure`]); nothing is retried, a failed check is the answer.

use std::time::Duration;

use super::ClientError;

/// The header that routes a request to one version of a worker.
const VERSION_OVERRIDES: &str = "Cloudflare-Workers-Version-Overrides";

/// A client for health checks, with its timeout.
#[derive(Debug, Clone)]
pub struct HealthCheck {
    http: reqwest::Client,
    timeout: Duration,
}

/// Why a health check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HealthFailure {
    /// The worker answered with a status other than 2xx.
    #[error("HTTP {status}")]
    Status { status: u16 },
    /// No answer within the timeout.
    #[error("no answer within {}", crate::duration::format(*after))]
    Timeout { after: Duration },
    /// The connection could not be opened (refused, unreachable, DNS, TLS).
    #[error("could not connect: {detail}")]
    Connection { detail: String },
    /// Any other failure: an invalid URL or header, a broken answer.
    #[error("request failed: {detail}")]
    Request { detail: String },
}

impl HealthCheck {
    /// A health-check client whose every check gives up after `timeout`.
    pub fn new(timeout: Duration) -> Result<HealthCheck, ClientError> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("flareops/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout)
            .build()
            .map_err(ClientError::Build)?;
        Ok(HealthCheck { http, timeout })
    }

    /// The timeout of every check.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET url` on version `version` of worker `script`: `Ok` on a 2xx
    /// answer (redirects followed).
    pub async fn check(&self, url: &str, script: &str, version: &str) -> Result<(), HealthFailure> {
        let request = self
            .http
            .get(url)
            .header(VERSION_OVERRIDES, format!("{script}=\"{version}\""));
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(HealthFailure::Status {
                status: response.status().as_u16(),
            }),
            Err(error) if error.is_timeout() => Err(HealthFailure::Timeout {
                after: self.timeout,
            }),
            Err(error) if error.is_connect() => Err(HealthFailure::Connection {
                detail: chain(&error),
            }),
            Err(error) => Err(HealthFailure::Request {
                detail: chain(&error),
            }),
        }
    }
}

/// An error and its causes, in one line.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::get;

    use super::*;

    type Seen = Arc<Mutex<Vec<HeaderMap>>>;

    /// A local server: `/ok` answers 200, `/broken` 503, `/slow` never
    /// answers. Every request's headers are kept.
    async fn serve() -> (String, Seen) {
        async fn ok(State(seen): State<Seen>, headers: HeaderMap) -> StatusCode {
            seen.lock().unwrap().push(headers);
            StatusCode::OK
        }
        async fn broken(State(seen): State<Seen>, headers: HeaderMap) -> StatusCode {
            seen.lock().unwrap().push(headers);
            StatusCode::SERVICE_UNAVAILABLE
        }
        async fn slow(State(seen): State<Seen>, headers: HeaderMap) -> StatusCode {
            seen.lock().unwrap().push(headers);
            std::future::pending().await
        }
        let seen = Seen::default();
        let router = Router::new()
            .route("/ok", get(ok))
            .route("/broken", get(broken))
            .route("/slow", get(slow))
            .with_state(seen.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        (format!("http://{address}"), seen)
    }

    #[tokio::test]
    async fn a_2xx_passes_and_the_check_is_pinned_to_the_version_without_a_token() {
        let (base, seen) = serve().await;
        let check = HealthCheck::new(Duration::from_secs(30)).unwrap();
        check
            .check(&format!("{base}/ok"), "api", "0b4c-v2")
            .await
            .expect("healthy");
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].get(VERSION_OVERRIDES).unwrap(),
            "api=\"0b4c-v2\"",
            "pinned to the new version"
        );
        assert!(seen[0].get("authorization").is_none(), "no API token");
    }

    #[tokio::test]
    async fn a_non_2xx_answer_is_a_status_failure() {
        let (base, _) = serve().await;
        let check = HealthCheck::new(Duration::from_secs(30)).unwrap();
        let failure = check
            .check(&format!("{base}/broken"), "api", "v")
            .await
            .unwrap_err();
        assert_eq!(failure, HealthFailure::Status { status: 503 });
        assert_eq!(failure.to_string(), "HTTP 503");
    }

    #[tokio::test]
    async fn no_answer_within_the_timeout_is_a_timeout() {
        let (base, seen) = serve().await;
        let check = HealthCheck::new(Duration::from_millis(200)).unwrap();
        let failure = check
            .check(&format!("{base}/slow"), "api", "v")
            .await
            .unwrap_err();
        assert_eq!(
            failure,
            HealthFailure::Timeout {
                after: Duration::from_millis(200)
            }
        );
        assert_eq!(
            seen.lock().unwrap().len(),
            1,
            "the request reached the server"
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connection_failure() {
        // A port that was just free: nothing listens on it.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        let check = HealthCheck::new(Duration::from_secs(30)).unwrap();
        let failure = check
            .check(&format!("http://{address}/"), "api", "v")
            .await
            .unwrap_err();
        assert!(
            matches!(failure, HealthFailure::Connection { .. }),
            "{failure:?}"
        );
    }

    #[tokio::test]
    async fn an_invalid_url_is_a_request_failure() {
        let check = HealthCheck::new(Duration::from_secs(30)).unwrap();
        let failure = check.check("not a url", "api", "v").await.unwrap_err();
        assert!(
            matches!(failure, HealthFailure::Request { .. }),
            "{failure:?}"
        );
    }
}
