//! Sending one request: the overall deadline, the rate limit, the
//! concurrency bound, the per-attempt timeout, the retries the policy
//! allows, and the log line of every attempt; and, for creates, looking the
//! resource up after a lost answer before sending anything again.
//!
//! **What counts as a lost answer.** reqwest reports a connection that
//! dropped after the request may have been written, a timeout, or a reset
//! as an error from `send()`; a body cut short (or a timeout while reading
//! it) as an error from `bytes()`. Both may follow a request the server
//! processed, so both are [`Outcome::Lost`]: retried for requests that are
//! harmless to repeat, looked up for creates. Only a connection that never
//! opened (`is_connect()`: refused, DNS, TLS, connect timeout) provably
//! sent nothing ([`Outcome::NotSent`]) and is retried for every request.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use tokio::time::Instant;

use super::retry::{Decision, Outcome, parse_retry_after};
use super::{Body, Client, ClientError, Request, decode};

/// A complete answer: status, headers and the whole body.
pub(super) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
}

/// What the attempts of one logical request have seen; shared by the
/// attempts of a create and its retries after lookups, so they all count
/// against one budget.
#[derive(Debug, Default)]
pub(super) struct Exchange {
    /// Attempts made so far.
    pub attempts: u32,
    /// The last attempt may have been processed, but its answer was lost
    /// or was a 5xx.
    pub last_ambiguous: bool,
    /// Some attempt may have been processed without a usable answer.
    pub ever_ambiguous: bool,
    /// The last answer's `Retry-After`.
    pub retry_after: Option<Duration>,
}

impl Exchange {
    fn saw(&mut self, outcome: Outcome) {
        self.last_ambiguous = outcome.maybe_processed();
        self.ever_ambiguous |= self.last_ambiguous;
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// An error and its causes in one line (reqwest's own text is only the
/// first link: "error sending request").
fn chain(error: &reqwest::Error) -> String {
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

impl Client {
    /// Sends `request` until an attempt's result is final, and returns the
    /// final answer, whatever its status. `state` counts the attempts and
    /// records whether one may have been processed without an answer.
    pub(super) async fn exchange(
        &self,
        request: &Request<'_>,
        state: &mut Exchange,
    ) -> Result<Answer, ClientError> {
        let url = format!("{}{}", self.base_url, request.path);
        let method = &request.method;
        let path = request.path;
        loop {
            if self.deadline.is_some_and(|d| d.passed()) {
                return Err(self.deadline_error(request, None));
            }
            let deadline_at = self.deadline.map(|d| d.at);
            if self.rate.acquire(deadline_at).await.is_err() {
                return Err(self.deadline_error(request, None));
            }
            let permit = match deadline_at {
                Some(at) => tokio::time::timeout_at(at, self.concurrency.acquire())
                    .await
                    .map_err(|_| self.deadline_error(request, None))?,
                None => self.concurrency.acquire().await,
            }
            .ok();
            state.attempts += 1;
            let attempt = state.attempts;
            let timeout = match self.deadline {
                Some(deadline) => self.request_timeout.min(deadline.remaining()),
                None => self.request_timeout,
            };
            let mut builder = self
                .http
                .request(method.clone(), &url)
                .query(request.query)
                .timeout(timeout);
            for (name, value) in request.headers {
                builder = builder.header(*name, value);
            }
            builder = match &request.body {
                Body::None => builder,
                Body::Json(value) => builder.json(value),
                Body::Multipart(build) => builder.multipart(build()),
            };
            let started = Instant::now();
            self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let result = match builder.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    match response.bytes().await {
                        Ok(bytes) => Ok(Answer {
                            status,
                            headers,
                            bytes,
                        }),
                        Err(error) => Err((error, Some((status, headers)))),
                    }
                }
                Err(error) => Err((error, None)),
            };
            drop(permit);
            let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            let answer = match result {
                Ok(answer) => answer,
                Err((error, answered)) => {
                    let error = error.without_url();
                    let outcome = if error.is_connect() {
                        Outcome::NotSent
                    } else {
                        Outcome::Lost
                    };
                    let status = answered.as_ref().map(|(s, _)| s.as_u16());
                    let ray = answered
                        .as_ref()
                        .and_then(|(_, h)| header(h, "cf-ray"))
                        .unwrap_or("-")
                        .to_string();
                    let detail = self.token.scrub(&chain(&error));
                    tracing::debug!(
                        %method,
                        path,
                        attempt,
                        status,
                        elapsed_ms,
                        cf_ray = %ray,
                        ?outcome,
                        error = %detail,
                        "cloudflare request failed"
                    );
                    state.saw(outcome);
                    state.retry_after = None;
                    let timed_out = error.is_timeout();
                    let failure = ClientError::Transport {
                        method: method.clone(),
                        path: path.to_string(),
                        sent: outcome != Outcome::NotSent,
                        detail,
                        error,
                    };
                    if timed_out && self.deadline.is_some_and(|d| d.passed()) {
                        return Err(self.deadline_error(request, Some(failure)));
                    }
                    match self.retry.decide(request.repeat, outcome, attempt, None) {
                        Decision::Retry(wait) => {
                            tracing::info!(%method, path, attempt, wait_ms = wait.as_millis() as u64, "retrying: {failure}");
                            self.pause(wait, request, || failure).await?;
                            continue;
                        }
                        Decision::Accept | Decision::GiveUp | Decision::Ambiguous => {
                            return Err(failure);
                        }
                    }
                }
            };
            let status = answer.status.as_u16();
            let ray = header(&answer.headers, "cf-ray").unwrap_or("-");
            tracing::debug!(
                %method,
                path,
                attempt,
                status,
                elapsed_ms,
                cf_ray = %ray,
                "cloudflare answered"
            );
            let outcome = Outcome::Status(status);
            let retry_after = header(&answer.headers, "retry-after")
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            state.saw(outcome);
            state.retry_after = retry_after;
            match self
                .retry
                .decide(request.repeat, outcome, attempt, retry_after)
            {
                Decision::Retry(wait) => {
                    tracing::info!(
                        %method,
                        path,
                        attempt,
                        status,
                        cf_ray = %ray,
                        wait_ms = wait.as_millis() as u64,
                        "retrying after HTTP {status}"
                    );
                    self.pause(wait, request, || self.answer_error(request, &answer))
                        .await?;
                }
                Decision::Accept | Decision::GiveUp | Decision::Ambiguous => return Ok(answer),
            }
        }
    }

    /// Sleeps `wait` before a retry, unless the wait would end past the
    /// deadline: then fails at once with [`ClientError::Deadline`],
    /// carrying `last`.
    async fn pause(
        &self,
        wait: Duration,
        request: &Request<'_>,
        last: impl FnOnce() -> ClientError,
    ) -> Result<(), ClientError> {
        if self.deadline.is_some_and(|d| d.ends_within(wait)) {
            return Err(self.deadline_error(request, Some(last())));
        }
        tokio::time::sleep(wait).await;
        Ok(())
    }

    /// The error an answer stands for (for messages).
    fn answer_error(&self, request: &Request<'_>, answer: &Answer) -> ClientError {
        decode::<serde_json::Value>(&request.method, request.path, answer.status, &answer.bytes)
            .err()
            .unwrap_or_else(|| ClientError::Api {
                method: request.method.clone(),
                path: request.path.to_string(),
                status: answer.status.as_u16(),
                errors: vec![],
            })
            .scrubbed(&self.token)
    }

    fn deadline_error(&self, request: &Request<'_>, last: Option<ClientError>) -> ClientError {
        ClientError::Deadline {
            method: request.method.clone(),
            path: request.path.to_string(),
            timeout: self.deadline.map(|d| d.timeout).unwrap_or_default(),
            last: last.map(Box::new),
        }
    }

    /// Runs a create that must never be repeated blindly. `attempt` sends
    /// it (its request marked [`super::Repeat::Unsafe`], its attempts
    /// counted in the shared [`Exchange`]); `lookup` finds what it would
    /// have created, by name.
    ///
    /// When an attempt may have been processed without an answer (lost, a
    /// 5xx, a success whose body cannot be read), the resource is looked
    /// up: found, it is the result; absent, the create is sent again after
    /// a backoff (within the same attempt budget). A definite failure after
    /// an earlier lost answer (say a duplicate-name error, because that
    /// earlier attempt did create it) is looked up too. When nothing can
    /// tell, the error is [`ClientError::OutcomeUnknown`].
    pub(super) async fn create_or_find<T>(
        &self,
        what: &str,
        mut attempt: impl AsyncFnMut(&mut Exchange) -> Result<T, ClientError>,
        mut lookup: impl AsyncFnMut() -> Result<Option<T>, ClientError>,
    ) -> Result<T, ClientError> {
        let mut state = Exchange::default();
        loop {
            let error = match attempt(&mut state).await {
                Ok(created) => return Ok(created),
                Err(error) => error,
            };
            if error.is_deadline() {
                // Cut at the deadline: too late to look anything up.
                return Err(if state.last_ambiguous {
                    ClientError::OutcomeUnknown {
                        error: Box::new(error),
                        lookup: None,
                    }
                } else {
                    error
                });
            }
            // A success whose body could not be read: it was created.
            let created_unread = matches!(
                &error,
                ClientError::Decode { status, .. } if (200..300).contains(status)
            );
            let ambiguous_now = state.last_ambiguous || created_unread;
            if !ambiguous_now && !state.ever_ambiguous {
                return Err(error);
            }
            tracing::info!(
                what,
                attempt = state.attempts,
                "a create may have taken effect without an answer; looking it up before anything else: {error}"
            );
            match lookup().await {
                Ok(Some(found)) => {
                    tracing::info!(what, "found after a lost answer; not created again");
                    return Ok(found);
                }
                Ok(None) if !ambiguous_now || created_unread => return Err(error),
                Ok(None) => {
                    if !self.retry.can_retry(state.attempts) {
                        return Err(ClientError::OutcomeUnknown {
                            error: Box::new(error),
                            lookup: None,
                        });
                    }
                    let wait = state
                        .retry_after
                        .filter(|w| *w <= self.retry.max_retry_after)
                        .unwrap_or_else(|| self.retry.backoff(state.attempts));
                    tracing::info!(
                        what,
                        wait_ms = wait.as_millis() as u64,
                        "not there: sending the create again"
                    );
                    if self.deadline.is_some_and(|d| d.ends_within(wait)) {
                        return Err(ClientError::OutcomeUnknown {
                            error: Box::new(error),
                            lookup: None,
                        });
                    }
                    tokio::time::sleep(wait).await;
                }
                Err(lookup_error) => {
                    return Err(ClientError::OutcomeUnknown {
                        error: Box::new(error),
                        lookup: Some(Box::new(lookup_error)),
                    });
                }
            }
        }
    }
}
