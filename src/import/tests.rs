use serde_json::json;

use super::*;

#[test]
fn the_environment_part_of_a_name_becomes_a_variable() {
    assert_eq!(
        templated("klear-karma-api-staging", "staging"),
        "klear-karma-api-${env}"
    );
    assert_eq!(
        templated("api-staging.klearkarma.com/*", "staging"),
        "api-${env}.klearkarma.com/*"
    );
    // Only whole parts: `prod` is not in `production` nor `products`.
    assert_eq!(
        templated("products-production", "prod"),
        "products-production"
    );
    assert_eq!(templated("staging_db", "staging"), "${env}_db");
    assert_eq!(templated("cost-${x}", "staging"), "cost-$${x}");
    assert!(carries("kk-users-production", "production"));
    assert!(!carries("kk-users-production", "staging"));
}

#[test]
fn keys_come_from_names_without_the_environment() {
    let taken = vec!["klear-karma-users".to_string()];
    assert_eq!(
        key_for("klear-karma-api-staging", "staging", &[]),
        "klear-karma-api"
    );
    assert_eq!(key_for("Klear Karma USERS", "", &[]), "klear-karma-users");
    assert_eq!(
        key_for("klear-karma-users-staging", "staging", &taken),
        "klear-karma-users-2"
    );
    assert_eq!(key_for("staging", "staging", &[]), "main");
}

#[test]
fn yaml_output_reads_back_as_the_same_value() {
    let value = json!({
        "workers": {
            "api": {
                "name": "api-${env}",
                "crons": ["0 * * * *"],
                "bindings": {"FEATURES": {"json": {"beta": true, "n": 3}}, "TEXT": {"text": "a \"quoted\": value\n"}},
                "empty": [],
                "list": [{"a": 1, "b": "two"}, {"a": 2}],
                "yes": "no"
            }
        }
    });
    let text = to_yaml(&value);
    let back: serde_json::Value = serde_saphyr::from_str(&text).expect(&text);
    assert_eq!(back, value, "{text}");
}

#[test]
fn jsonc_configuration_with_comments_converts_queues_and_lists_what_it_cannot_carry() {
    let text = r#"{
      // the API
      "name": "kk-api",
      "main": "src/index.ts",
      "compatibility_date": "2025-01-15",
      "observability": { "enabled": true },
      "queues": { "producers": [{ "binding": "JOBS", "queue": "jobs" }] },
      "vars": { "API_VERSION": "v1" }, /* trailing comma next */
    }"#;
    let config = wrangler::parse("wrangler.jsonc", text).expect("jsonc");
    let import = wrangler::convert("wrangler.jsonc", "", &config).expect("converts");
    let paths: Vec<&str> = import.files.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "infra/storage.yaml",
            "infra/workers.yaml",
            "environments/production.yaml"
        ]
    );
    let skipped: Vec<&str> = import.skipped.iter().map(|s| s.what.as_str()).collect();
    assert_eq!(skipped, ["`observability`"]);
    let storage = String::from_utf8(import.files[0].1.clone()).unwrap();
    assert!(storage.contains(r#"jobs: {name: "jobs"}"#), "{storage}");
    let workers = String::from_utf8(import.files[1].1.clone()).unwrap();
    assert!(workers.contains(r#"main: "dist/index.js""#), "{workers}");
    let production = String::from_utf8(import.files[2].1.clone()).unwrap();
    assert!(production.contains(r#"text: "v1""#), "{production}");
    assert!(
        production.contains(r#"JOBS: {queue: "jobs"}"#),
        "{production}"
    );
}

#[test]
fn a_configuration_without_a_name_or_invalid_toml_is_refused() {
    assert!(wrangler::parse("wrangler.toml", "name = ").is_err());
    let config = wrangler::parse("wrangler.toml", "main = \"src/index.js\"\n").unwrap();
    let error = wrangler::convert("wrangler.toml", "", &config).unwrap_err();
    assert!(error.to_string().contains("`name` is missing"), "{error}");
}

#[test]
fn a_service_binding_names_the_target_worker_by_the_key_its_own_import_gives() {
    let text = r#"
name = "kk-api"
main = "src/index.js"
compatibility_date = "2025-01-15"

[env.staging]
services = [{ binding = "AUTH", service = "kk-auth-staging" }]
"#;
    let config = wrangler::parse("wrangler.toml", text).expect("toml");
    let import = wrangler::convert("wrangler.toml", "", &config).expect("converts");
    let staging = import
        .files
        .iter()
        .find(|(p, _)| p == "environments/staging.yaml")
        .map(|(_, c)| String::from_utf8_lossy(c).into_owned())
        .expect("staging.yaml");
    assert!(
        staging.contains(r#"AUTH: {service: "kk-auth"}"#),
        "{staging}"
    );
    assert!(
        import
            .notes
            .iter()
            .any(|n| n.contains("import its wrangler configuration too")
                && n.contains("workers.kk-auth")),
        "{:?}",
        import.notes
    );
}
