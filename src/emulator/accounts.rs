//! Identity endpoints: `GET /accounts`, `GET /accounts/{account_id}`, `GET /memberships`,
//! `GET /user`, `GET /user/tokens/verify` and `GET /accounts/{account_id}/tokens/verify`.
//!
//! There is exactly one account (`config.account_id`, named "flareops local account") and one
//! user token. Lists are page-paginated with `total_count` (wrangler's `fetchPagedListResult`
//! needs it). Enough is answered for `wrangler whoami` and wrangler's account discovery.

use axum::Router;
use axum::extract::{Query, State, rejection::QueryRejection};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use sha2::Digest as _;

use super::envelope::{ApiResult, QueryMap, enum_param, int_param, paginate, query_map, success};
use super::{API_PREFIX, AppState, SharedState};

/// Validation code for the identity endpoints (inference: the generic "bad request").
const VALIDATION: u32 = 1001;

pub(crate) const ACCOUNT_NAME: &str = "flareops local account";
const ACCOUNT_CREATED_ON: &str = "2024-01-01T00:00:00.000000Z";
const USER_EMAIL: &str = "local@flareops.invalid";

pub(crate) fn routes() -> Router<SharedState> {
    Router::new()
        .route(&format!("{API_PREFIX}/accounts"), get(list_accounts))
        .route(
            &format!("{API_PREFIX}/accounts/{{account_id}}"),
            get(get_account),
        )
        .route(
            &format!("{API_PREFIX}/accounts/{{account_id}}/tokens/verify"),
            get(verify_token),
        )
        .route(&format!("{API_PREFIX}/memberships"), get(list_memberships))
        .route(&format!("{API_PREFIX}/user"), get(get_user))
        .route(
            &format!("{API_PREFIX}/user/tokens/verify"),
            get(verify_token),
        )
}

/// A stable 32-hex id derived from a label and the account id.
fn derived_id(state: &AppState, label: &str) -> String {
    let digest = sha2::Sha256::digest(format!("flareops-emulator/{label}/{}", state.account_id));
    hex::encode(&digest[..16])
}

fn account(state: &AppState) -> Value {
    json!({
        "id": state.account_id,
        "name": ACCOUNT_NAME,
        "type": "standard",
        "settings": {
            "enforce_twofactor": false,
            "api_access_enabled": null,
            "access_approval_expiry": null,
            "abuse_contact_email": null,
        },
        "created_on": ACCOUNT_CREATED_ON,
    })
}

/// Page parameters of the identity lists: `page` >= 1, `per_page` 5..50, default 20 (OAS24).
fn page_params(query: &QueryMap) -> ApiResult<(i64, i64)> {
    let page = int_param(query, "page", 1, 1, i64::MAX, VALIDATION)?;
    let per_page = int_param(query, "per_page", 20, 5, 50, VALIDATION)?;
    enum_param(query, "direction", &["asc", "desc"], VALIDATION)?;
    Ok((page, per_page))
}

async fn list_accounts(
    State(state): State<SharedState>,
    query: Result<Query<QueryMap>, QueryRejection>,
) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let (page, per_page) = page_params(&query)?;
    let mut items = vec![account(&state)];
    if let Some(name) = query.get("name").filter(|name| !name.is_empty()) {
        items.retain(|item| {
            item["name"]
                .as_str()
                .is_some_and(|candidate| candidate.contains(name.as_str()))
        });
    }
    Ok(paginate(items, page, per_page))
}

async fn get_account(State(state): State<SharedState>) -> Response {
    // The gate already refused any other account id.
    success(account(&state))
}

async fn list_memberships(
    State(state): State<SharedState>,
    query: Result<Query<QueryMap>, QueryRejection>,
) -> ApiResult<Response> {
    let query = query_map(query, VALIDATION)?;
    let (page, per_page) = page_params(&query)?;
    let membership = json!({
        "id": derived_id(&state, "membership"),
        "status": "accepted",
        "account": account(&state),
        "roles": ["Super Administrator - All Privileges"],
        "permissions": {},
    });
    let mut items = vec![membership];
    if let Some(status) = query.get("status").filter(|status| !status.is_empty()) {
        items.retain(|item| item["status"] == status.as_str());
    }
    if let Some(name) = query.get("account.name").filter(|name| !name.is_empty()) {
        items.retain(|item| item["account"]["name"] == name.as_str());
    }
    Ok(paginate(items, page, per_page))
}

async fn get_user(State(state): State<SharedState>) -> Response {
    success(json!({
        "id": derived_id(&state, "user"),
        "email": USER_EMAIL,
        "first_name": "flareops",
        "last_name": "emulator",
        "username": derived_id(&state, "username"),
        "telephone": null,
        "country": null,
        "zipcode": null,
        "two_factor_authentication_enabled": false,
        "two_factor_authentication_locked": false,
        "has_pro_zones": false,
        "has_business_zones": false,
        "has_enterprise_zones": false,
        "suspended": false,
        "created_on": ACCOUNT_CREATED_ON,
        "modified_on": ACCOUNT_CREATED_ON,
    }))
}

async fn verify_token(State(state): State<SharedState>) -> Response {
    let expires_on = *state
        .token_expires_on
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let expired = expires_on.is_some_and(|at| at <= state.clock.now());
    let mut result = json!({ "id": derived_id(&state, "token"), "status": if expired { "expired" } else { "active" } });
    if let Some(at) = expires_on {
        result["expires_on"] = json!(
            at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        );
    }
    let message = if expired {
        "This API Token is expired"
    } else {
        "This API Token is valid and active"
    };
    // Cloudflare adds a message to this success; keep it, clients print it.
    axum::response::IntoResponse::into_response(axum::Json(json!({
        "success": true,
        "errors": [],
        "messages": [{ "code": 10000, "message": message, "type": null }],
        "result": result,
    })))
}
