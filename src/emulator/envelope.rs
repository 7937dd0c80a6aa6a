//! The Cloudflare v4 response envelope, the emulator's error type, and the small request
//! helpers (JSON bodies, query parameters, page pagination) every service module shares.
//!
//! Success: `{"success":true,"errors":[],"messages":[],"result":…[,"result_info":…]}`.
//! Failure: `{"success":false,"errors":[{"code","message"[,"error_chain"]}],"messages":[],"result":null}`
//! with a 4xx/5xx status. Codes live next to the service that raises them.

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

/// A Cloudflare-style API error: HTTP status, numeric code, message, optional chain.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
    pub chain: Vec<(u32, String)>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: u32, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            chain: Vec::new(),
        }
    }

    pub fn with_chain(mut self, code: u32, message: impl Into<String>) -> Self {
        self.chain.push((code, message.into()));
        self
    }

    /// `400` with the given service's validation code.
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A failure of the emulator itself (SQLite, I/O): `500`.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "emulator internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            INTERNAL_ERROR_CODE,
            format!("internal error in the flareops emulator: {detail}"),
        )
    }

    /// Cloudflare's catch-all for an unknown route: `404`, code 7003.
    pub fn no_route() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, 7003, "No route for the URI")
    }

    pub fn body(&self) -> Value {
        let mut error = json!({ "code": self.code, "message": self.message });
        if !self.chain.is_empty() {
            let chain: Vec<Value> = self
                .chain
                .iter()
                .map(|(code, message)| json!({ "code": code, "message": message }))
                .collect();
            error["error_chain"] = Value::Array(chain);
        }
        json!({ "success": false, "errors": [error], "messages": [], "result": null })
    }
}

/// Code used for the emulator's own failures (not a Cloudflare code worth imitating).
pub(crate) const INTERNAL_ERROR_CODE: u32 = 1101;

impl From<rusqlite::Error> for ApiError {
    fn from(error: rusqlite::Error) -> Self {
        ApiError::internal(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body())).into_response()
    }
}

pub(crate) type ApiResult<T = Response> = Result<T, ApiError>;

/// A `200` success envelope around `result`.
pub(crate) fn success(result: Value) -> Response {
    axum::Json(json!({ "success": true, "errors": [], "messages": [], "result": result }))
        .into_response()
}

/// A `200` success envelope with `result_info`.
pub(crate) fn success_with_info(result: Value, result_info: Value) -> Response {
    axum::Json(json!({
        "success": true,
        "errors": [],
        "messages": [],
        "result": result,
        "result_info": result_info,
    }))
    .into_response()
}

/// Parses a JSON request body, mapping any failure to a `400` with `code`.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &[u8], code: u32, what: &str) -> ApiResult<T> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            code,
            format!("{what}: request body is empty; a JSON body is required"),
        ));
    }
    serde_json::from_slice(body).map_err(|error| {
        ApiError::bad_request(code, format!("{what}: malformed JSON body: {error}"))
    })
}

/// Query parameters as a map (the last occurrence of a name wins).
pub(crate) type QueryMap = HashMap<String, String>;

/// Extracts the query string leniently: an unparsable query is a `400` in Cloudflare's format.
pub(crate) fn query_map(
    query: Result<axum::extract::Query<QueryMap>, axum::extract::rejection::QueryRejection>,
    code: u32,
) -> ApiResult<QueryMap> {
    match query {
        Ok(axum::extract::Query(map)) => Ok(map),
        Err(rejection) => Err(ApiError::bad_request(
            code,
            format!("malformed query string: {rejection}"),
        )),
    }
}

/// Reads an integer query parameter, enforcing `min..=max`; absent or empty gives `default`.
pub(crate) fn int_param(
    query: &QueryMap,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
    code: u32,
) -> ApiResult<i64> {
    let Some(raw) = query.get(name).filter(|raw| !raw.is_empty()) else {
        return Ok(default);
    };
    // Cloudflare's schemas type these as numbers; accept "20" and "20.0", not "20.5".
    let parsed = raw
        .parse::<i64>()
        .ok()
        .or_else(|| {
            raw.parse::<f64>()
                .ok()
                .filter(|float| float.fract() == 0.0 && float.is_finite())
                .map(|float| float as i64)
        })
        .ok_or_else(|| {
            ApiError::bad_request(code, format!("{name}: expected a number, got {raw:?}"))
        })?;
    if parsed < min || parsed > max {
        return Err(ApiError::bad_request(
            code,
            format!("{name}: must be between {min} and {max}, got {parsed}"),
        ));
    }
    Ok(parsed)
}

/// Reads an enumerated query parameter; absent gives `None`.
pub(crate) fn enum_param<'a>(
    query: &'a QueryMap,
    name: &str,
    allowed: &[&str],
    code: u32,
) -> ApiResult<Option<&'a str>> {
    match query
        .get(name)
        .map(String::as_str)
        .filter(|raw| !raw.is_empty())
    {
        None => Ok(None),
        Some(value) if allowed.contains(&value) => Ok(Some(value)),
        Some(value) => Err(ApiError::bad_request(
            code,
            format!(
                "{name}: must be one of {}, got {value:?}",
                allowed.join(", ")
            ),
        )),
    }
}

/// One page of a page-paginated list, with Cloudflare's `result_info`.
/// A page past the end is `[]` with the true `total_count`.
pub(crate) fn paginate(items: Vec<Value>, page: i64, per_page: i64) -> Response {
    let total = items.len() as i64;
    let start = (page - 1).saturating_mul(per_page);
    let slice: Vec<Value> = items
        .into_iter()
        .skip(usize::try_from(start).unwrap_or(usize::MAX))
        .take(usize::try_from(per_page).unwrap_or(usize::MAX))
        .collect();
    let total_pages = if total == 0 {
        0
    } else {
        (total + per_page - 1) / per_page
    };
    let info = json!({
        "page": page,
        "per_page": per_page,
        "count": slice.len(),
        "total_count": total,
        "total_pages": total_pages,
    });
    success_with_info(Value::Array(slice), info)
}

/// Opaque cursor for cursor-paginated lists: the last name returned, base64url-encoded.
pub(crate) fn encode_cursor(last: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(last.as_bytes())
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is a `400`.
pub(crate) fn decode_cursor(cursor: &str, code: u32) -> ApiResult<String> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.as_bytes())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| ApiError::bad_request(code, "cursor: invalid or expired cursor"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_failure_envelope_and_chain() {
        let error = ApiError::bad_request(6003, "Invalid request headers")
            .with_chain(6111, "Invalid format for Authorization header");
        assert_eq!(
            error.body(),
            json!({
                "success": false,
                "errors": [{
                    "code": 6003,
                    "message": "Invalid request headers",
                    "error_chain": [{"code": 6111, "message": "Invalid format for Authorization header"}],
                }],
                "messages": [],
                "result": null,
            })
        );
    }

    #[test]
    fn int_param_enforces_range_and_default() {
        let mut query = QueryMap::new();
        assert_eq!(int_param(&query, "per_page", 20, 5, 100, 1).unwrap(), 20);
        query.insert("per_page".into(), "100".into());
        assert_eq!(int_param(&query, "per_page", 20, 5, 100, 1).unwrap(), 100);
        query.insert("per_page".into(), "101".into());
        assert_eq!(
            int_param(&query, "per_page", 20, 5, 100, 1)
                .unwrap_err()
                .code,
            1
        );
        query.insert("per_page".into(), "x".into());
        assert!(int_param(&query, "per_page", 20, 5, 100, 1).is_err());
    }

    #[test]
    fn cursor_round_trips() {
        let cursor = encode_cursor("a/b ü");
        assert_eq!(decode_cursor(&cursor, 1).unwrap(), "a/b ü");
        assert!(decode_cursor("!!!", 1).is_err());
    }
}
