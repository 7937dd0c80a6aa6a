//! The health check of a gradual rollout: a `GET` of the worker's health
//! URL pinned to the new version with Cloudflare's
//! `Cloudflare-Workers-Version-Overrides` header, so the check does not
//! mostly reach the previous version.

use std::time::Duration;

use super::ClientError;

/// An HTTP client for health checks, with its timeout.
pub struct HealthCheck {
    http: reqwest::Client,
    timeout: Duration,
}

/// Why a health check failed.
#[derive(Debug, thiserror::Error)]
pub enum HealthFailure {
    #[error("HTTP {0}")]
    Status(u16),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("{0}")]
    Connection(String),
}

impl HealthCheck {
    pub fn new(timeout: Duration) -> Result<HealthCheck, ClientError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(ClientError::Build)?;
        Ok(HealthCheck { http, timeout })
    }

    /// Checks `url` against `version` of `script`: 2xx passes.
    pub async fn check(&self, url: &str, script: &str, version: &str) -> Result<(), HealthFailure> {
        let request = self.http.get(url).header(
            "Cloudflare-Workers-Version-Overrides",
            format!("{script}=\"{version}\""),
        );
        match request.send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(HealthFailure::Status(response.status().as_u16())),
            Err(error) if error.is_timeout() => Err(HealthFailure::Timeout(self.timeout)),
            Err(error) => Err(HealthFailure::Connection(error.to_string())),
        }
    }
}
