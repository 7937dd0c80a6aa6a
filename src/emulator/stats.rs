//! Request counters served at `GET /__emulator/stats`.
//!
//! Every request that reaches a Cloudflare path (`/client/v4/…`) is counted, whatever its
//! outcome (401s and 404s included), under `"METHOD /route/{template}"`; requests matching no
//! route are counted under `"METHOD (no route)"`. The stats request itself is not counted.
//! The same counts per client are under `clients` (`wrangler`, `python_sdk`, `flareops` or
//! `other`, told by the `User-Agent` each sends), so coverage says which client reached what.
//! The answer also carries `faults`: the faults injected so far per kind (see `super::faults`).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use serde_json::{Value, json};

/// Key used for requests under `/client/v4` that match no route.
pub(crate) const NO_ROUTE: &str = "(no route)";

#[derive(Default)]
pub(crate) struct Stats {
    inner: Mutex<Counters>,
}

#[derive(Default)]
struct Counters {
    total: u64,
    endpoints: BTreeMap<String, u64>,
    clients: BTreeMap<&'static str, BTreeMap<String, u64>>,
}

/// Which client sent a request, by its `User-Agent`.
pub(crate) fn client_of(user_agent: &str) -> &'static str {
    let agent = user_agent.to_ascii_lowercase();
    if agent.starts_with("wrangler") {
        "wrangler"
    } else if agent.contains("python") {
        "python_sdk"
    } else if agent.starts_with("flareops") {
        "flareops"
    } else {
        "other"
    }
}

impl Stats {
    pub fn record(&self, method: &str, template: &str, client: &'static str) {
        let mut counters = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        counters.total += 1;
        let key = format!("{method} {template}");
        *counters
            .clients
            .entry(client)
            .or_default()
            .entry(key.clone())
            .or_insert(0) += 1;
        *counters.endpoints.entry(key).or_insert(0) += 1;
    }

    pub fn snapshot(&self) -> Value {
        let counters = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        json!({
            "total": counters.total,
            "endpoints": counters.endpoints,
            "clients": counters.clients,
        })
    }
}

/// Turns axum's matched path (`/client/v4/accounts/{account_id}/…/values/{*key_name}`) into the
/// template reported in stats (`/accounts/{account_id}/…/values/{key_name}`).
pub(crate) fn template(matched: &str) -> String {
    matched
        .strip_prefix(super::API_PREFIX)
        .unwrap_or(matched)
        .replace("{*", "{")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_method_and_template() {
        let stats = Stats::default();
        stats.record("GET", "/accounts", client_of("wrangler/4.86.0"));
        stats.record("GET", "/accounts", client_of("flareops/0.1.0"));
        stats.record("POST", NO_ROUTE, client_of("Cloudflare/Python 5.9.0"));
        assert_eq!(
            stats.snapshot(),
            json!({
                "total": 3,
                "endpoints": {"GET /accounts": 2, "POST (no route)": 1},
                "clients": {
                    "flareops": {"GET /accounts": 1},
                    "python_sdk": {"POST (no route)": 1},
                    "wrangler": {"GET /accounts": 1},
                },
            })
        );
    }

    #[test]
    fn template_strips_prefix_and_wildcards() {
        assert_eq!(
            template(
                "/client/v4/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{*key_name}"
            ),
            "/accounts/{account_id}/storage/kv/namespaces/{namespace_id}/values/{key_name}"
        );
    }
}
