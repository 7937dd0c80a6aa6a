//! `flareops render` and `flareops diff-env` on the example: the effective
//! manifests with names interpolated and secrets as references, and what
//! differs between staging and production; no request is made.

use crate::requests::example;
use crate::support::{TestEmulator, flareops, project};

#[test]
fn render_shows_the_effective_manifests_with_secrets_as_references() {
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let root = example(&emulator);
    let before = emulator.stats_total();
    let output = flareops(root.path(), &emulator)
        .args(["render", "--env", "staging"])
        .env("KLEAR_KARMA_JWT_SECRET", "render-canary-jwt")
        .output()
        .expect("run flareops");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for expected in [
        r#"name: "klear-karma-api-staging""#,
        r#"title: "klear-karma-users-staging""#,
        r#"USERS_KV: {kv_namespace: "users"}"#,
        r#"JWT_SECRET: {from_env: "KLEAR_KARMA_JWT_SECRET"}"#,
        r#"routes: ["api-staging.klearkarma.com/*"]"#,
        "index.js.map (sha256 ",
        // Every kind of the example, queues, records and the site included.
        r#"notifications: {name: "klear-karma-notifications-staging""#,
        r#"name: "api-staging.klearkarma.com""#,
        r#"name: "klear-karma-web-staging""#,
        "files: {count: 4, digest: ",
    ] {
        assert!(text.contains(expected), "`{expected}` in:\n{text}");
    }
    assert!(
        !text.contains("render-canary-jwt"),
        "a secret value:\n{text}"
    );
    assert!(!text.contains("${env}"), "interpolated:\n{text}");
    assert_eq!(emulator.stats_total(), before, "no request");
}

#[test]
fn diff_env_shows_overrides_and_bindings_one_environment_lacks() {
    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let root = example(&emulator);
    let output = flareops(root.path(), &emulator)
        .args(["diff-env", "staging", "production"])
        .output()
        .expect("run flareops");
    assert_eq!(output.status.code(), Some(2));
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains(
            r#"~ r2_buckets.assets.storage_class: staging "Standard" | production "InfrequentAccess""#
        ),
        "{text}"
    );
    // Names differ only by the environment: not a difference.
    assert!(!text.contains("klear-karma-users"), "{text}");

    // A binding only one environment has (wrangler's non-inherited trap).
    let root = project(&[
        (
            "environments/staging.yaml",
            "overrides:\n  workers.api:\n    bindings:\n      DEBUG: {text: \"1\"}\n",
        ),
        ("environments/production.yaml", "{}\n"),
        (
            "infra/workers.yaml",
            "workers:\n  api:\n    name: api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n    bindings:\n      MODE: {text: \"live\"}\n",
        ),
        ("workers/api/index.js", "export default {};\n"),
    ]);
    let output = flareops(root.path(), &emulator)
        .args(["diff-env", "staging", "production"])
        .output()
        .expect("run flareops");
    let text = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{text}");
    assert!(
        text.contains("- workers.api.bindings.DEBUG: only in staging"),
        "{text}"
    );
    assert!(!text.contains("MODE"), "{text}");
    let same = flareops(root.path(), &emulator)
        .args(["diff-env", "production", "production"])
        .output()
        .expect("run flareops");
    assert_eq!(same.status.code(), Some(0));
}
