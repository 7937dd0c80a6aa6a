//! Fuzzing the loader with proptest. Five generators feed [`load_with`]:
//!
//! - `mutated_projects_fail_cleanly`: a project that loads (every kind of
//!   resource, most fields, overrides and variables) with one to three
//!   faults: tree mutations (replace a value with one from the pools below,
//!   delete, rename, duplicate, nest 40 deep) and text mutations (insert YAML
//!   tokens, tabs, BOMs, NULs, CRs; delete; duplicate, swap or indent lines;
//!   truncate), written in block or flow style;
//! - `generated_projects_fail_cleanly`: projects built field by field from
//!   pools of good and bad values (names, crons, routes, paths, ...), then
//!   mutated the same way;
//! - `token_soup_fails_cleanly`: YAML tokens and words in any order;
//! - `long_inputs_fail_within_the_bound`: a few tokens repeated up to about
//!   300 KB, to catch work that grows faster than the input;
//! - `arbitrary_bytes_fail_cleanly`: any bytes, alone or after a valid
//!   start.
//!
//! Whatever the input, the loader must not panic; its work must stay within
//! its bounds (interpolation walks each scalar once, expansions stay under
//! [`ExpansionLimits`]: work is counted, not timed); every diagnostic must
//! carry a location that matches its file (line and column of the span's
//! start, in a file of the project); the rendering has one `error:` line per
//! diagnostic; secret values never appear in the output.
//!
//! Deterministic by default: a fixed seed, 256 cases per generator (32 for
//! the long inputs), no failure files. To fuzz longer or with other cases,
//! set the usual proptest variables: `PROPTEST_CASES=20000
//! PROPTEST_RNG_SEED=7 cargo test --lib manifest::fuzz_tests`.

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::{Config, RngSeed};

use super::*;

/// The default seed: the same cases on every run unless
/// `PROPTEST_RNG_SEED` says otherwise.
const SEED: u64 = 0x666c_6172_656f_7073;
/// Cases per generator unless `PROPTEST_CASES` says otherwise.
const CASES: u32 = 256;
/// What every `from_env` secret resolves to, and what `secrets/api-key.txt`
/// holds: neither may appear in a diagnostic.
const SECRET_ENV_VALUE: &str = "fuzz-env-secret-4b1d9e";
const SECRET_FILE_VALUE: &str = "fuzz-file-secret-77c0a3";

fn config() -> Config {
    // `Config::default()` reads `PROPTEST_CASES` and `PROPTEST_RNG_SEED`.
    let defaults = Config::default();
    Config {
        cases: if std::env::var_os("PROPTEST_CASES").is_some() {
            defaults.cases
        } else {
            CASES
        },
        rng_seed: match defaults.rng_seed {
            RngSeed::Random => RngSeed::Fixed(SEED),
            fixed => fixed,
        },
        failure_persistence: None,
        max_shrink_time: 60_000,
        ..defaults
    }
}

// ---------------------------------------------------------------------------
// A YAML model, written out in block or flow style.

#[derive(Debug, Clone)]
enum Y {
    Null,
    Bool(bool),
    Int(i64),
    /// Written as is (may well be invalid YAML).
    Plain(String),
    /// Written double-quoted, escaped.
    Quoted(String),
    Seq(Vec<Y>),
    Map(Vec<(String, Y)>),
}

fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}

/// A key as written: plain when it is a simple name, quoted otherwise.
fn key_text(key: &str) -> String {
    let simple = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.$".contains(c));
    if simple { key.to_string() } else { quoted(key) }
}

fn scalar_text(value: &Y) -> Option<String> {
    Some(match value {
        Y::Null => "null".to_string(),
        Y::Bool(value) => value.to_string(),
        Y::Int(value) => value.to_string(),
        Y::Plain(text) => text.clone(),
        Y::Quoted(text) => quoted(text),
        Y::Seq(_) | Y::Map(_) => return None,
    })
}

fn flow(value: &Y, out: &mut String) {
    match value {
        Y::Seq(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                flow(item, out);
            }
            out.push(']');
        }
        Y::Map(entries) => {
            out.push('{');
            for (index, (key, item)) in entries.iter().enumerate() {
                if index > 0 {
                    out.push_str(", ");
                }
                out.push_str(&key_text(key));
                out.push_str(": ");
                flow(item, out);
            }
            out.push('}');
        }
        Y::Plain(text) if text.contains([',', '[', ']', '{', '}', ':', '#']) => {
            out.push_str(&quoted(text));
        }
        scalar => out.push_str(&scalar_text(scalar).unwrap_or_default()),
    }
}

/// Block style down to `flow_depth`, flow style below it.
fn block(value: &Y, indent: usize, flow_depth: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Y::Map(entries) if !entries.is_empty() && flow_depth > 0 => {
            for (key, item) in entries {
                out.push_str(&pad);
                out.push_str(&key_text(key));
                out.push(':');
                child(item, indent, flow_depth, out);
            }
        }
        Y::Seq(items) if !items.is_empty() && flow_depth > 0 => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                child(item, indent, flow_depth, out);
            }
        }
        other => {
            out.push_str(&pad);
            flow(other, out);
            out.push('\n');
        }
    }
}

fn child(item: &Y, indent: usize, flow_depth: usize, out: &mut String) {
    match item {
        Y::Map(entries) if !entries.is_empty() && flow_depth > 1 => {
            out.push('\n');
            block(item, indent + 2, flow_depth - 1, out);
        }
        Y::Seq(items) if !items.is_empty() && flow_depth > 1 => {
            out.push('\n');
            block(item, indent + 2, flow_depth - 1, out);
        }
        other => {
            out.push(' ');
            flow(other, out);
            out.push('\n');
        }
    }
}

fn write_yaml(value: &Y, flow_depth: usize) -> String {
    let mut out = String::new();
    block(value, 0, flow_depth, &mut out);
    out
}

// ---------------------------------------------------------------------------
// Near-valid manifests.

/// Values that are wrong in some way for most fields.
const HOSTILE: &[&str] = &[
    "",
    " ",
    "${",
    "${}",
    "${ env }",
    "${sufix}",
    "$${env}",
    "${env",
    "${1x}",
    "${suffix}${suffix}",
    "\u{0}",
    "\t",
    "a\nb",
    "\u{feff}",
    "\u{202e}",
    "é",
    "2024",
    "007",
    "0x1f",
    "1e400",
    ".nan",
    "true",
    "yes",
    "null",
    "~",
    "-",
    "*",
    "../outside",
    "/etc/passwd",
    "a\\b",
    "UPPER",
];

const KEYS: &[&str] = &[
    "users", "sessions", "main", "assets", "api", "auth", "Users", "a.b", "-x", "_x", "1",
];
const TITLES: &[&str] = &[
    "kk-users-${env}",
    "kk-${suffix}",
    "users",
    "kk users",
    "kk-users-staging",
];
const NAMES: &[&str] = &[
    "kk-${env}",
    "kk-db-${suffix}",
    "kk.db",
    "kk_db",
    "ab",
    "kk-assets-${env}",
    "-kk",
    "kk-",
    "Kk",
];
const LOCATION_HINTS: &[&str] = &["weur", "wnam", "apac", "WEUR", "mars", "${region}"];
const JURISDICTIONS: &[&str] = &["eu", "us", "fedramp", "EU", "moon"];
const STORAGE_CLASSES: &[&str] = &["Standard", "InfrequentAccess", "standard", "Cold"];
const MIGRATIONS: &[&str] = &[
    "migrations/main",
    "migrations/dup",
    "migrations/${env}",
    "migrations/none",
    "migrations/linked",
    "migrations/main/0001_init.sql",
    "../migrations",
    "/migrations",
    ".",
];
const MAINS: &[&str] = &[
    "workers/api/index.js",
    "workers/api/index.mjs",
    "workers/api/index.ts",
    "workers/api/missing.js",
    "workers/api/link.js",
    "workers/api",
    "../outside/index.js",
    "./workers//api/index.js",
];
const GLOBS: &[&str] = &[
    "workers/api/lib/*.js",
    "workers/api/lib/*",
    "workers/api/**/*",
    "workers/**",
    "**/*.js",
    "workers/api/[x",
    "workers/none/*.js",
    "../*.js",
];
const DATES: &[&str] = &[
    "2025-01-15",
    "2025-02-30",
    "2025-1-5",
    "1999-12-31",
    "9999-99-99",
];
const FLAGS: &[&str] = &["nodejs_compat", "nodejs-compat", "NODEJS"];
const CRONS: &[&str] = &[
    "0 * * * *",
    "*/15 * * * *",
    "0 9 * * MON-FRI",
    "0 0 L * *",
    "0 0 LW * *",
    "0 0 L-3W * *",
    "0 0 15W * *",
    "0 9 * * MON#2",
    "0 9 * * 6L",
    "0 0 * * 0",
    "0 0 31 2 *",
    "@daily",
    "0 0 0 * * *",
    "*/0 * * * *",
    "60 * * * *",
    "5,* * * * *",
    "*-5 * * * *",
    "0 0 * * FRI-MON",
    "0 0 ? * *",
    "0 0 L-31 * *",
    "0 0 * * MON#9",
    "59-0/99 * * * *",
];
const ROUTES: &[&str] = &[
    "api-${env}.example.com/*",
    "*example.com/*",
    "*.example.com/*",
    "https://api.example.com/*",
    "api.example.org/*",
    "api.example.com",
    "api.example.com/*.jpg",
    "api.example.com/?q=*",
    "a*.example.com/*",
    "API.example.com/*",
    "example.com/",
    "xn--bcher-kva.example.com/*",
];
const DOMAINS: &[&str] = &[
    "api.example.com",
    "example.com",
    "*.example.com",
    "api.example.com/v1",
    "notexample.com",
];
const BINDING_NAMES: &[&str] = &["USERS", "DB", "AUTH", "default", "my-binding", "$x", "1X"];
const BINDING_KINDS: &[&str] = &[
    "kv_namespace",
    "d1",
    "r2_bucket",
    "service",
    "durable_object",
    "text",
    "json",
    "kv",
];
const TARGETS: &[&str] = &[
    "users", "main", "assets", "api", "auth", "ChatRoom", "userz",
];
const ENV_VARS: &[&str] = &["API_KEY", "UNSET_SECRET", "", "lower"];
const SECRET_FILES: &[&str] = &[
    "secrets/api-key.txt",
    "secrets/missing.txt",
    "../outside/secret.txt",
    "secrets",
];
const DURATIONS: &[&str] = &["5m", "30s", "1h30m", "0s", "5", "1d", "-5m"];
const URLS: &[&str] = &[
    "https://api.example.com/health",
    "ftp://x",
    "not a url",
    "http://",
];
const ACCOUNT_IDS: &[&str] = &[
    "0123456789abcdef0123456789abcdef",
    "0123456789ABCDEF0123456789ABCDEF",
    "nope",
];
const ZONES: &[&str] = &["example.com", "localhost", "Example.com", "example.com."];
const ADDRESSES: &[&str] = &[
    "kv_namespaces.users",
    "d1_databases.main",
    "r2_buckets.assets",
    "workers.api",
    "workers.auth",
    "r2_buckets.asets",
    "nope",
    "a.b.c",
];
const FIELDS: &[&str] = &[
    "title",
    "name",
    "protect",
    "location_hint",
    "storage_class",
    "jurisdiction",
    "migrations",
    "main",
    "bindings",
    "secrets",
    "crons",
    "routes",
    "rollout",
    "titel",
];

fn text_from(pool: &'static [&'static str]) -> BoxedStrategy<String> {
    prop_oneof![
        8 => select(pool).prop_map(str::to_string),
        1 => select(HOSTILE).prop_map(str::to_string),
        1 => "[ -~]{0,12}",
    ]
    .boxed()
}

/// A scalar from `pool` (mostly), written plain or quoted, or now and then
/// a value of another type.
fn scalar(pool: &'static [&'static str]) -> BoxedStrategy<Y> {
    prop_oneof![
        6 => text_from(pool).prop_map(Y::Quoted),
        3 => text_from(pool).prop_map(Y::Plain),
        1 => other_value(),
    ]
    .boxed()
}

fn other_value() -> BoxedStrategy<Y> {
    prop_oneof![
        Just(Y::Null),
        any::<bool>().prop_map(Y::Bool),
        any::<i64>().prop_map(Y::Int),
        Just(Y::Seq(vec![Y::Plain("a".into())])),
        Just(Y::Map(vec![("a".into(), Y::Int(1))])),
    ]
    .boxed()
}

fn boolean() -> BoxedStrategy<Y> {
    prop_oneof![
        8 => any::<bool>().prop_map(Y::Bool),
        1 => Just(Y::Quoted("true".into())),
        1 => other_value(),
    ]
    .boxed()
}

fn list(pool: &'static [&'static str], max: usize) -> BoxedStrategy<Y> {
    prop_oneof![
        9 => proptest::collection::vec(scalar(pool), 0..=max).prop_map(Y::Seq),
        1 => scalar(pool),
    ]
    .boxed()
}

/// An optional field of a mapping.
fn field(name: &'static str, value: BoxedStrategy<Y>) -> BoxedStrategy<Option<(String, Y)>> {
    proptest::option::weighted(0.7, value.prop_map(move |v| (name.to_string(), v))).boxed()
}

fn mapping(fields: Vec<BoxedStrategy<Option<(String, Y)>>>) -> BoxedStrategy<Y> {
    fields
        .prop_map(|entries| Y::Map(entries.into_iter().flatten().collect()))
        .boxed()
}

/// `key: resource` entries of one section.
fn section(resource: BoxedStrategy<Y>) -> BoxedStrategy<Y> {
    proptest::collection::vec((select(KEYS).prop_map(str::to_string), resource), 0..3)
        .prop_map(Y::Map)
        .boxed()
}

fn kv() -> BoxedStrategy<Y> {
    mapping(vec![
        field("title", scalar(TITLES)),
        field("protect", boolean()),
    ])
}

fn d1() -> BoxedStrategy<Y> {
    mapping(vec![
        field("name", scalar(NAMES)),
        field("location_hint", scalar(LOCATION_HINTS)),
        field("jurisdiction", scalar(JURISDICTIONS)),
        field("migrations", scalar(MIGRATIONS)),
        field("protect", boolean()),
    ])
}

fn r2() -> BoxedStrategy<Y> {
    mapping(vec![
        field("name", scalar(NAMES)),
        field("location_hint", scalar(LOCATION_HINTS)),
        field("storage_class", scalar(STORAGE_CLASSES)),
        field("jurisdiction", scalar(JURISDICTIONS)),
    ])
}

fn binding() -> BoxedStrategy<Y> {
    prop_oneof![
        4 => (select(BINDING_KINDS), scalar(TARGETS))
            .prop_map(|(kind, target)| Y::Map(vec![(kind.to_string(), target)])),
        1 => Just(Y::Map(vec![(
            "json".into(),
            Y::Map(vec![("beta".into(), Y::Bool(true)), ("n".into(), Y::Plain("0x1f".into()))]),
        )])),
        1 => (select(BINDING_KINDS), select(BINDING_KINDS)).prop_map(|(a, b)| {
            Y::Map(vec![(a.to_string(), Y::Plain("users".into())), (b.to_string(), Y::Plain("main".into()))])
        }),
        1 => other_value(),
    ]
    .boxed()
}

fn secret() -> BoxedStrategy<Y> {
    mapping(vec![
        field("from_env", scalar(ENV_VARS)),
        proptest::option::weighted(
            0.3,
            scalar(SECRET_FILES).prop_map(|v| ("from_file".to_string(), v)),
        )
        .boxed(),
        proptest::option::weighted(
            0.3,
            scalar(TITLES).prop_map(|v| ("local_default".to_string(), v)),
        )
        .boxed(),
    ])
}

fn named<S: Strategy<Value = Y> + 'static>(
    names: &'static [&'static str],
    value: S,
) -> BoxedStrategy<Y> {
    proptest::collection::vec((select(names).prop_map(str::to_string), value), 0..4)
        .prop_map(Y::Map)
        .boxed()
}

fn rollout() -> BoxedStrategy<Y> {
    let steps = prop_oneof![
        4 => proptest::collection::vec((-5i64..120).prop_map(Y::Int), 0..5).prop_map(Y::Seq),
        1 => Just(Y::Seq(vec![Y::Int(10), Y::Int(50), Y::Int(100)])),
        1 => other_value(),
    ];
    mapping(vec![
        field("strategy", scalar(&["gradual", "immediate", "canary"])),
        field("steps", steps.boxed()),
        field("wait", scalar(DURATIONS)),
        field("health_url", scalar(URLS)),
    ])
}

fn worker() -> BoxedStrategy<Y> {
    mapping(vec![
        field("name", scalar(NAMES)),
        field("main", scalar(MAINS)),
        field("modules", list(GLOBS, 2)),
        field("compatibility_date", scalar(DATES)),
        field("compatibility_flags", list(FLAGS, 2)),
        field("bindings", named(BINDING_NAMES, binding())),
        field(
            "secrets",
            named(&["API_KEY", "JWT", "USERS", "bad-name"], secret()),
        ),
        field("crons", list(CRONS, 3)),
        field("routes", list(ROUTES, 3)),
        field("custom_domains", list(DOMAINS, 2)),
        field("rollout", rollout()),
        field("protect", boolean()),
    ])
}

fn infra() -> BoxedStrategy<Y> {
    mapping(vec![
        field("kv_namespaces", section(kv())),
        field("d1_databases", section(d1())),
        field("r2_buckets", section(r2())),
        field("workers", section(worker())),
    ])
}

fn override_body() -> BoxedStrategy<Y> {
    let value = prop_oneof![
        3 => scalar(TITLES),
        1 => Just(Y::Null),
        1 => named(BINDING_NAMES, binding()),
        1 => rollout(),
    ];
    prop_oneof![
        6 => proptest::collection::vec((select(FIELDS).prop_map(str::to_string), value), 0..3).prop_map(Y::Map),
        1 => other_value(),
    ]
    .boxed()
}

fn environment() -> BoxedStrategy<Y> {
    let zone = prop_oneof![
        3 => scalar(ZONES),
        1 => (scalar(ZONES), scalar(&["023e105f4ecef8ad9ca31a8372d0c353", "12345"]))
            .prop_map(|(name, id)| Y::Map(vec![("name".into(), name), ("id".into(), id)])),
    ];
    mapping(vec![
        proptest::option::weighted(
            0.3,
            scalar(ACCOUNT_IDS).prop_map(|v| ("account_id".to_string(), v)),
        )
        .boxed(),
        proptest::option::weighted(
            0.2,
            scalar(&["local", "remote"]).prop_map(|v| ("account".to_string(), v)),
        )
        .boxed(),
        field("zone", zone.boxed()),
        field(
            "vars",
            named(
                &["suffix", "region", "env", "my-var", "other"],
                scalar(&["stg", "weur", "${env}", "${suffix}"]),
            ),
        ),
        field("overrides", named(ADDRESSES, override_body())),
        proptest::option::weighted(
            0.1,
            scalar(NAMES)
                .prop_map(|v| ("ledger".to_string(), Y::Map(vec![("database".into(), v)]))),
        )
        .boxed(),
    ])
}

// ---------------------------------------------------------------------------
// Mutations.

#[derive(Debug, Clone)]
enum TreeMutation {
    Replace(usize, Y),
    Delete(usize),
    RenameKey(usize, String),
    Duplicate(usize),
    /// Wraps the node in this many single-key mappings.
    Nest(usize, usize),
}

fn tree_mutation() -> impl Strategy<Value = TreeMutation> {
    prop_oneof![
        (any::<usize>(), replacement()).prop_map(|(at, y)| TreeMutation::Replace(at, y)),
        any::<usize>().prop_map(TreeMutation::Delete),
        (
            any::<usize>(),
            prop_oneof![
                select(KEYS).prop_map(str::to_string),
                select(FIELDS).prop_map(str::to_string),
                "[a-z_]{0,8}"
            ]
        )
            .prop_map(|(at, key)| TreeMutation::RenameKey(at, key)),
        any::<usize>().prop_map(TreeMutation::Duplicate),
        (any::<usize>(), 1usize..40).prop_map(|(at, depth)| TreeMutation::Nest(at, depth)),
    ]
}

/// A value from any pool, or of another type: what a replacing mutation
/// puts in.
fn replacement() -> BoxedStrategy<Y> {
    let pools: &[&'static [&'static str]] = &[
        HOSTILE,
        KEYS,
        TITLES,
        NAMES,
        LOCATION_HINTS,
        JURISDICTIONS,
        STORAGE_CLASSES,
        MIGRATIONS,
        MAINS,
        GLOBS,
        DATES,
        FLAGS,
        CRONS,
        ROUTES,
        DOMAINS,
        BINDING_NAMES,
        BINDING_KINDS,
        TARGETS,
        ENV_VARS,
        SECRET_FILES,
        DURATIONS,
        URLS,
        ACCOUNT_IDS,
        ZONES,
        ADDRESSES,
        FIELDS,
    ];
    let text = select(pools.to_vec()).prop_flat_map(select);
    prop_oneof![
        3 => text.clone().prop_map(|t| Y::Quoted(t.to_string())),
        2 => text.prop_map(|t| Y::Plain(t.to_string())),
        1 => other_value(),
        1 => binding(),
        1 => rollout(),
    ]
    .boxed()
}

/// A project that loads (checked by `the_fuzz_base_project_loads`), using
/// every kind of resource and most fields: mutated once or twice, it gives
/// projects with one or two faults.
const BASE_INFRA: &str = r#"
kv_namespaces:
  users: {title: "kk-users-${env}", protect: true}
  sessions: {title: "kk-sessions-${suffix}"}
d1_databases:
  main: {name: "kk-db-${env}", location_hint: weur, jurisdiction: eu, migrations: migrations/main}
r2_buckets:
  assets: {name: "kk-assets-${env}", location_hint: "${region}", storage_class: Standard}
workers:
  api:
    name: "kk-api-${env}"
    main: workers/api/index.js
    modules: ["workers/api/lib/*.js"]
    compatibility_date: "2025-01-15"
    compatibility_flags: [nodejs_compat]
    bindings:
      USERS: {kv_namespace: users}
      DB: {d1: main}
      ASSETS: {r2_bucket: assets}
      AUTH: {service: auth}
      ROOM: {durable_object: ChatRoom}
      VERSION: {text: "v1-${suffix}"}
      FEATURES: {json: {beta: true, n: 0x1f}}
    secrets:
      API_KEY: {from_env: API_KEY}
      FILE_KEY: {from_file: secrets/api-key.txt}
      LOCAL_KEY: {from_env: API_KEY, local_default: dev-only}
    crons: ["0 * * * *", "0 9 * * MON#2", "0 0 L * *"]
    routes: ["api-${env}.example.com/*"]
    custom_domains: ["api-${env}.example.com"]
    rollout: {strategy: gradual, steps: [10, 50, 100], wait: 5m, health_url: "https://api-${env}.example.com/health"}
  auth:
    name: "kk-auth-${env}"
    main: workers/api/index.mjs
    compatibility_date: "2025-01-15"
"#;

const BASE_ENVIRONMENT: &str = r#"
zone: example.com
vars: {suffix: stg, region: weur}
overrides:
  r2_buckets.assets: {storage_class: InfrequentAccess, location_hint: null}
  workers.api:
    bindings: {VERSION: {text: v2}}
    rollout: {strategy: immediate}
"#;

fn to_y(value: serde_json::Value) -> Y {
    match value {
        serde_json::Value::Null => Y::Null,
        serde_json::Value::Bool(value) => Y::Bool(value),
        serde_json::Value::Number(number) => match number.as_i64() {
            Some(value) => Y::Int(value),
            None => Y::Plain(number.to_string()),
        },
        serde_json::Value::String(text) => Y::Quoted(text),
        serde_json::Value::Array(items) => Y::Seq(items.into_iter().map(to_y).collect()),
        serde_json::Value::Object(entries) => Y::Map(
            entries
                .into_iter()
                .map(|(key, value)| (key, to_y(value)))
                .collect(),
        ),
    }
}

fn base(text: &str) -> Y {
    to_y(serde_saphyr::from_str(text).expect("the base project is YAML"))
}

fn count(value: &Y) -> usize {
    1 + match value {
        Y::Seq(items) => items.iter().map(count).sum(),
        Y::Map(entries) => entries.iter().map(|(_, item)| count(item)).sum(),
        _ => 0,
    }
}

/// Applies `mutation` to the node numbered `*target` in pre-order (the root
/// is 0). Delete, rename and duplicate act on the entry holding the node.
fn mutate(value: &mut Y, target: &mut usize, mutation: &TreeMutation) -> bool {
    if *target == 0 {
        match mutation {
            TreeMutation::Replace(_, y) => *value = y.clone(),
            TreeMutation::Nest(_, depth) => {
                for level in 0..*depth {
                    let inner = std::mem::replace(value, Y::Null);
                    *value = Y::Map(vec![(format!("n{level}"), inner)]);
                }
            }
            _ => return false,
        }
        return true;
    }
    *target -= 1;
    match value {
        Y::Seq(items) => {
            for index in 0..items.len() {
                if *target == 0 && matches!(mutation, TreeMutation::Delete(_)) {
                    items.remove(index);
                    return true;
                }
                if *target == 0 && matches!(mutation, TreeMutation::Duplicate(_)) {
                    let copy = items[index].clone();
                    items.insert(index, copy);
                    return true;
                }
                if *target < count(&items[index]) {
                    return mutate(&mut items[index], target, mutation);
                }
                *target -= count(&items[index]);
            }
            false
        }
        Y::Map(entries) => {
            for index in 0..entries.len() {
                if *target == 0 {
                    match mutation {
                        TreeMutation::Delete(_) => {
                            entries.remove(index);
                            return true;
                        }
                        TreeMutation::Duplicate(_) => {
                            let copy = entries[index].clone();
                            entries.insert(index, copy);
                            return true;
                        }
                        TreeMutation::RenameKey(_, key) => {
                            entries[index].0 = key.clone();
                            return true;
                        }
                        _ => {}
                    }
                }
                if *target < count(&entries[index].1) {
                    return mutate(&mut entries[index].1, target, mutation);
                }
                *target -= count(&entries[index].1);
            }
            false
        }
        _ => false,
    }
}

fn apply_tree(mut value: Y, mutations: &[TreeMutation]) -> Y {
    for mutation in mutations {
        let at = match mutation {
            TreeMutation::Replace(at, _)
            | TreeMutation::Delete(at)
            | TreeMutation::RenameKey(at, _)
            | TreeMutation::Duplicate(at)
            | TreeMutation::Nest(at, _) => *at,
        };
        let mut target = at % count(&value);
        mutate(&mut value, &mut target, mutation);
    }
    value
}

/// Pieces of YAML syntax and troublesome characters.
const TOKENS: &[&str] = &[
    ": ",
    ":",
    "- ",
    "-",
    "? ",
    "\t",
    "\n",
    "\r\n",
    "\r",
    "  ",
    "    ",
    "[",
    "]",
    "{",
    "}",
    ",",
    "&a ",
    "*a",
    "&b ",
    "*b",
    "<<: *a",
    "<<: ",
    "!!binary ",
    "!!str ",
    "!!int ",
    "!tag ",
    "!include ",
    "|",
    "|-",
    ">",
    ">+",
    "#",
    " #",
    "'",
    "\"",
    "\\",
    "---\n",
    "...\n",
    "%YAML 1.2\n",
    "%TAG ! tag:x:\n",
    "\u{feff}",
    "\u{0}",
    "\u{7}",
    "é",
    "\u{202e}",
    "\u{10ffff}",
    "\u{85}",
    "\u{2028}",
    "\u{2029}",
    "${",
    "}",
    "${env}",
    "$${",
    "~",
    "null",
    "true",
    "yes",
    "0x1f",
    "1e400",
    ".nan",
    "@",
    "`",
    "%",
    "kv_namespaces",
    "workers",
    "title",
    "name",
    "main",
    "bindings",
    "overrides",
];

#[derive(Debug, Clone)]
enum TextMutation {
    Insert(usize, &'static str),
    Delete(usize, usize),
    DuplicateLine(usize),
    SwapLines(usize, usize),
    Truncate(usize),
    IndentLine(usize, &'static str),
}

fn text_mutation() -> impl Strategy<Value = TextMutation> {
    prop_oneof![
        4 => (any::<usize>(), select(TOKENS)).prop_map(|(at, token)| TextMutation::Insert(at, token)),
        2 => (any::<usize>(), 1usize..8).prop_map(|(at, len)| TextMutation::Delete(at, len)),
        1 => any::<usize>().prop_map(TextMutation::DuplicateLine),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| TextMutation::SwapLines(a, b)),
        1 => any::<usize>().prop_map(TextMutation::Truncate),
        1 => (any::<usize>(), select(&[" ", "\t", "   ", "  \t"][..])).prop_map(|(at, pad)| TextMutation::IndentLine(at, pad)),
    ]
}

fn boundary(text: &str, at: usize) -> usize {
    let mut at = if text.is_empty() {
        0
    } else {
        at % (text.len() + 1)
    };
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn apply_text(mut text: String, mutations: &[TextMutation]) -> String {
    for mutation in mutations {
        match mutation {
            TextMutation::Insert(at, token) => {
                let at = boundary(&text, *at);
                text.insert_str(at, token);
            }
            TextMutation::Delete(at, len) => {
                let start = boundary(&text, *at);
                let end = boundary(&text, (start + len).min(text.len()));
                if start < end {
                    text.replace_range(start..end, "");
                }
            }
            TextMutation::Truncate(at) => {
                let at = boundary(&text, *at);
                text.truncate(at);
            }
            TextMutation::DuplicateLine(at) | TextMutation::IndentLine(at, _) => {
                let mut lines: Vec<String> =
                    text.split_inclusive('\n').map(str::to_string).collect();
                if lines.is_empty() {
                    continue;
                }
                let index = at % lines.len();
                match mutation {
                    TextMutation::IndentLine(_, pad) => lines[index].insert_str(0, pad),
                    _ => {
                        let copy = lines[index].clone();
                        lines.insert(index, copy);
                    }
                }
                text = lines.concat();
            }
            TextMutation::SwapLines(a, b) => {
                let mut lines: Vec<String> =
                    text.split_inclusive('\n').map(str::to_string).collect();
                if lines.len() > 1 {
                    let (a, b) = (a % lines.len(), b % lines.len());
                    lines.swap(a, b);
                    text = lines.concat();
                }
            }
        }
    }
    text
}

// ---------------------------------------------------------------------------
// Running one project.

/// The files every fuzzed project has besides its manifests: modules, a
/// secret file, migrations, and (on Unix) symlinks out of the project.
fn support_files(root: &Path) {
    let files: &[(&str, &str)] = &[
        ("project/workers/api/index.js", "export default {};\n"),
        ("project/workers/api/index.mjs", "export default {};\n"),
        ("project/workers/api/index.ts", "export default {};\n"),
        ("project/workers/api/lib/util.js", "export const x = 1;\n"),
        ("project/workers/api/lib/data.json", "{}\n"),
        ("project/workers/api/lib/notes.xyz", "?\n"),
        ("project/secrets/api-key.txt", SECRET_FILE_VALUE),
        (
            "project/migrations/main/0001_init.sql",
            "CREATE TABLE t (x);\n",
        ),
        ("project/migrations/main/0002_more.sql", "SELECT 1;\n"),
        ("project/migrations/dup/0001_init.sql", "SELECT 1;\n"),
        ("project/migrations/dup/1_again.sql", "SELECT 1;\n"),
        ("outside/index.js", "export default {};\n"),
        ("outside/secret.txt", "outside-secret\n"),
        ("outside/0001_outside.sql", "DROP TABLE t;\n"),
    ];
    for (path, content) in files {
        let full = root.join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, content).expect("write");
    }
    for dir in ["project/infra", "project/environments"] {
        std::fs::create_dir_all(root.join(dir)).expect("mkdir");
    }
    #[cfg(unix)]
    {
        let link = |target: &str, link: &str| {
            std::os::unix::fs::symlink(target, root.join(link)).expect("symlink");
        };
        link("../../../outside/index.js", "project/workers/api/link.js");
        link("../../outside", "project/migrations/linked");
    }
}

thread_local! {
    /// One project per test thread, its support files written once: each
    /// case only rewrites the manifests (creating and deleting a tree of
    /// files per case would take most of the time).
    static PROJECT: tempfile::TempDir = {
        let dir = tempfile::tempdir().expect("temp dir");
        support_files(dir.path());
        dir
    };
}

/// Loads `files` (paths relative to the project root, always the same
/// paths in one test) as environment `dev` and checks what comes back.
/// `Err` says what is wrong.
fn check_project(files: &[(&str, Vec<u8>)], local: bool) -> Result<(), String> {
    let root = PROJECT.with(|dir| dir.path().join("project"));
    for (path, bytes) in files {
        std::fs::write(root.join(path), bytes).map_err(|error| error.to_string())?;
    }
    let env_var = |name: &str| (!name.starts_with("UNSET")).then(|| SECRET_ENV_VALUE.to_string());
    let options = LoadOptions {
        local,
        env_var: &env_var,
        secrets_optional: false,
        builder: None,
    };
    let limits = ExpansionLimits::MANIFEST;
    let (loaded, work) = load_measured(&root, "dev", &options, limits);
    check_work(work, limits)?;
    match &loaded {
        Err(diagnostics) => {
            let rendered = [
                diagnostics.render(false),
                diagnostics.render(true),
                diagnostics.to_string(),
            ];
            check_diagnostics(&root, diagnostics, &rendered)
        }
        Ok(_) => Ok(()),
    }
}

/// The work of one load stayed within its bounds: each interpolated scalar
/// was walked at most once, and the expansions stayed under the limit.
fn check_work(work: ExpansionWork, limits: ExpansionLimits) -> Result<(), String> {
    if work.scanned_bytes > work.scalar_bytes {
        return Err(format!(
            "locating parts walked {} bytes of {} bytes of scalars: not linear",
            work.scanned_bytes, work.scalar_bytes
        ));
    }
    if work.charged > limits.total || work.copied_bytes > work.charged {
        return Err(format!("expansion went over its limit: {work:?}"));
    }
    Ok(())
}

/// Every diagnostic is located (line and column from 1, matching the byte
/// offset of its span in the file), the rendering has one `error:` line per
/// diagnostic, and no secret value shows.
fn check_diagnostics(
    root: &Path,
    diagnostics: &Diagnostics,
    rendered: &[String; 3],
) -> Result<(), String> {
    if diagnostics.is_empty() {
        return Err("an error without diagnostics".to_string());
    }
    let mut files = FileIndexes::default();
    for diagnostic in diagnostics {
        if diagnostic.message.trim().is_empty() {
            return Err(format!("an empty message: {diagnostic}"));
        }
        files
            .check(
                root,
                &diagnostic.file,
                (diagnostic.line, diagnostic.column),
                diagnostic.span.as_ref(),
            )
            .map_err(|problem| format!("{problem}: {diagnostic}"))?;
        for related in &diagnostic.related {
            files
                .check(
                    root,
                    &related.file,
                    (related.line, related.column),
                    related.span.as_ref(),
                )
                .map_err(|problem| format!("note: {problem}: {diagnostic}"))?;
        }
    }
    for text in rendered {
        if text.contains(SECRET_ENV_VALUE) || text.contains(SECRET_FILE_VALUE) {
            return Err(format!("a secret value in the output:\n{text}"));
        }
    }
    let headlines = rendered[0]
        .lines()
        .filter(|line| line.starts_with("error: "))
        .count();
    if headlines != diagnostics.len() {
        return Err(format!(
            "{} diagnostics but {headlines} `error:` lines:\n{}",
            diagnostics.len(),
            rendered[0]
        ));
    }
    Ok(())
}

/// The files diagnostics point at, read once, with their line starts.
#[derive(Default)]
struct FileIndexes {
    files: std::collections::HashMap<std::path::PathBuf, (Vec<u8>, Vec<usize>)>,
}

impl FileIndexes {
    /// `position` (line, column) is a place in `file` and, with a span,
    /// the line and column of the span's start.
    fn check(
        &mut self,
        root: &Path,
        file: &Path,
        position: (usize, usize),
        span: Option<&std::ops::Range<usize>>,
    ) -> Result<(), String> {
        let (line, column) = position;
        if file.as_os_str().is_empty() || file.is_absolute() {
            return Err(format!("not a project path: {}", file.display()));
        }
        if line == 0 || column == 0 {
            return Err("no line and column".to_string());
        }
        if !self.files.contains_key(file) {
            let bytes = std::fs::read(root.join(file))
                .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
            let starts = std::iter::once(0)
                .chain(
                    bytes
                        .iter()
                        .enumerate()
                        .filter(|&(_, &b)| b == b'\n')
                        .map(|(i, _)| i + 1),
                )
                .collect();
            self.files.insert(file.to_path_buf(), (bytes, starts));
        }
        let (bytes, starts) = &self.files[file];
        if line > starts.len() {
            return Err(format!("line {line} of a file of {} lines", starts.len()));
        }
        let Some(span) = span else {
            return Ok(());
        };
        if span.start > span.end || span.end > bytes.len() {
            return Err(format!(
                "span {span:?} outside a file of {} bytes",
                bytes.len()
            ));
        }
        let span_line = starts.partition_point(|&start| start <= span.start);
        let line_text = std::str::from_utf8(&bytes[starts[span_line - 1]..span.start])
            .map_err(|_| format!("span {span:?} does not start on a character boundary"))?;
        let span_column = line_text.chars().count() + 1;
        // YAML does not count a byte-order mark as a column; either way is fine.
        let without_bom = line_text.chars().filter(|&c| c != '\u{feff}').count() + 1;
        if line != span_line || (column != span_column && column != without_bom) {
            return Err(format!(
                "{line}:{column} but the span {span:?} starts at {span_line}:{span_column}"
            ));
        }
        Ok(())
    }
}

fn fail_with(problem: String, files: &[(&str, Vec<u8>)]) -> TestCaseError {
    let shown: Vec<String> = files
        .iter()
        .map(|(path, bytes)| format!("--- {path}\n{}", String::from_utf8_lossy(bytes)))
        .collect();
    TestCaseError::fail(format!("{problem}\n{}", shown.join("\n")))
}

proptest! {
    #![proptest_config(config())]

    /// The base project with one to three faults (tree or text mutations),
    /// written in block or flow style.
    #[test]
    fn mutated_projects_fail_cleanly(
        infra_mutations in proptest::collection::vec(tree_mutation(), 0..3),
        environment_mutations in proptest::collection::vec(tree_mutation(), 0..2),
        text_mutations in proptest::collection::vec(text_mutation(), 0..2),
        mutate_environment_text in any::<bool>(),
        flow_depth in 0usize..7,
        local in any::<bool>(),
    ) {
        let infra = write_yaml(&apply_tree(base(BASE_INFRA), &infra_mutations), flow_depth);
        let environment = write_yaml(&apply_tree(base(BASE_ENVIRONMENT), &environment_mutations), flow_depth);
        let (infra, environment) = if mutate_environment_text {
            (infra, apply_text(environment, &text_mutations))
        } else {
            (apply_text(infra, &text_mutations), environment)
        };
        let files = [
            ("infra/main.yaml", infra.into_bytes()),
            ("environments/dev.yaml", environment.into_bytes()),
        ];
        if let Err(problem) = check_project(&files, local) {
            return Err(fail_with(problem, &files));
        }
    }

    /// Projects generated field by field from pools of good and bad values,
    /// with tree and text mutations.
    #[test]
    fn generated_projects_fail_cleanly(
        infra in infra(),
        environment in environment(),
        infra_mutations in proptest::collection::vec(tree_mutation(), 0..3),
        environment_mutations in proptest::collection::vec(tree_mutation(), 0..2),
        text_mutations in proptest::collection::vec(text_mutation(), 0..3),
        mutate_environment_text in any::<bool>(),
        flow_depth in 0usize..6,
        local in any::<bool>(),
    ) {
        let infra = write_yaml(&apply_tree(infra, &infra_mutations), flow_depth);
        let environment = write_yaml(&apply_tree(environment, &environment_mutations), flow_depth);
        let (infra, environment) = if mutate_environment_text {
            (infra, apply_text(environment, &text_mutations))
        } else {
            (apply_text(infra, &text_mutations), environment)
        };
        let files = [
            ("infra/main.yaml", infra.into_bytes()),
            ("environments/dev.yaml", environment.into_bytes()),
        ];
        if let Err(problem) = check_project(&files, local) {
            return Err(fail_with(problem, &files));
        }
    }

    /// YAML-token soup as an infra or an environment file.
    #[test]
    fn token_soup_fails_cleanly(
        tokens in proptest::collection::vec(prop_oneof![4 => select(TOKENS).prop_map(str::to_string), 1 => "[a-z_${}.]{1,6}"], 0..60),
        as_environment in any::<bool>(),
    ) {
        let text = tokens.concat().into_bytes();
        let files = if as_environment {
            [("environments/dev.yaml", text), ("infra/main.yaml", b"kv_namespaces:\n  users:\n    title: kk-${env}\n".to_vec())]
        } else {
            [("infra/main.yaml", text), ("environments/dev.yaml", b"{}\n".to_vec())]
        };
        if let Err(problem) = check_project(&files, false) {
            return Err(fail_with(problem, &files));
        }
    }

    /// Arbitrary bytes, alone or after a valid start.
    #[test]
    fn arbitrary_bytes_fail_cleanly(
        bytes in proptest::collection::vec(any::<u8>(), 0..400),
        after_valid_start in any::<bool>(),
    ) {
        let mut text = if after_valid_start {
            b"kv_namespaces:\n  users:\n    title: ".to_vec()
        } else {
            Vec::new()
        };
        text.extend_from_slice(&bytes);
        let files = [("infra/main.yaml", text), ("environments/dev.yaml", b"{}\n".to_vec())];
        if let Err(problem) = check_project(&files, false) {
            return Err(fail_with(problem, &files));
        }
    }
}

proptest! {
    // Each case parses up to a few hundred kilobytes: an eighth of the cases.
    #![proptest_config(Config { cases: (config().cases / 8).max(1), ..config() })]

    /// Long inputs: a few tokens repeated thousands of times (up to about
    /// 300 KB), after a valid start, to catch work that grows faster than
    /// the input.
    #[test]
    fn long_inputs_fail_within_the_bound(
        tokens in proptest::collection::vec(select(TOKENS), 1..4),
        repeat in 1usize..40_000,
        as_environment in any::<bool>(),
    ) {
        let mut text = String::from("kv_namespaces:\n  users:\n    title: ");
        text.push_str(&tokens.concat().repeat(repeat));
        let text = text.into_bytes();
        let files = if as_environment {
            [("environments/dev.yaml", text), ("infra/main.yaml", b"kv_namespaces: {}\n".to_vec())]
        } else {
            [("infra/main.yaml", text), ("environments/dev.yaml", b"{}\n".to_vec())]
        };
        if let Err(problem) = check_project(&files, false) {
            let shown = format!("{} bytes of {tokens:?} repeated {repeat} times", files[0].1.len());
            return Err(TestCaseError::fail(format!("{problem}\n{shown}")));
        }
    }
}

/// The base of `mutated_projects_fail_cleanly` loads in every style, so its
/// mutants have the faults the mutations put in, not others.
#[test]
fn the_fuzz_base_project_loads() {
    for flow_depth in 0..7 {
        let files = [
            (
                "infra/main.yaml",
                write_yaml(&base(BASE_INFRA), flow_depth).into_bytes(),
            ),
            (
                "environments/dev.yaml",
                write_yaml(&base(BASE_ENVIRONMENT), flow_depth).into_bytes(),
            ),
        ];
        let root = PROJECT.with(|dir| dir.path().join("project"));
        for (path, bytes) in &files {
            std::fs::write(root.join(path), bytes).expect("write");
        }
        let env_var = |_: &str| Some(SECRET_ENV_VALUE.to_string());
        let options = LoadOptions {
            local: false,
            env_var: &env_var,
            secrets_optional: false,
            builder: None,
        };
        if let Err(diagnostics) = load_with(&root, "dev", &options) {
            panic!("{}", fail_with(diagnostics.to_string(), &files));
        }
    }
}

// ---------------------------------------------------------------------------
// Regressions found by the corpus and the fuzzer.

/// Loads `files` as environment `dev`, returns the diagnostics' `Display`.
fn errors(files: &[(&str, &[u8])]) -> String {
    errors_measured(files, ExpansionLimits::MANIFEST).0
}

/// [`errors`] under `limits`, with the work interpolation did.
fn errors_measured(files: &[(&str, &[u8])], limits: ExpansionLimits) -> (String, ExpansionWork) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, bytes) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
        std::fs::write(full, bytes).expect("write");
    }
    let (loaded, work) = load_measured(dir.path(), "dev", &LoadOptions::process(), limits);
    let actual = match loaded {
        Ok(_) => "ok".to_string(),
        Err(diagnostics) => {
            // Rendering must not panic either.
            let _ = diagnostics.render(false);
            diagnostics.to_string()
        }
    };
    (actual, work)
}

const DEV: (&str, &[u8]) = ("environments/dev.yaml", b"{}\n");

/// miette pads underlines with format widths, capped at 65,535: a problem
/// past that column made rendering panic. Such lines get no snippet.
#[test]
fn a_problem_far_along_a_long_line_renders() {
    let line = format!(
        "kv_namespaces: {{users: {{title: \"{}\", titel: x}}}}\n",
        "t".repeat(70_000)
    );
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("infra")).expect("mkdir");
    std::fs::create_dir_all(dir.path().join("environments")).expect("mkdir");
    std::fs::write(dir.path().join("infra/a.yaml"), line).expect("write");
    std::fs::write(dir.path().join("environments/dev.yaml"), "{}\n").expect("write");
    let diagnostics = load(dir.path(), "dev").expect_err("unknown field");
    let rendered = diagnostics.render(false);
    assert!(
        rendered.contains(
            "error: infra/a.yaml:1:70036: kv_namespaces.users.titel: unknown field `titel`"
        ),
        "{rendered}"
    );
    assert!(
        !rendered.contains("╭"),
        "no snippet of a 70,000-character line: {rendered}"
    );
    // A short line still gets its snippet.
    std::fs::write(
        dir.path().join("infra/a.yaml"),
        "kv_namespaces: {users: {titel: x}}\n",
    )
    .expect("write");
    let rendered = load(dir.path(), "dev")
        .expect_err("unknown field")
        .render(false);
    assert!(rendered.contains("╭─[infra/a.yaml:1:25]"), "{rendered}");
}

#[test]
fn yaml_errors_say_what_is_wrong() {
    let cases: &[(&str, &[u8], &str)] = &[
        (
            "unknown anchor",
            b"r2_buckets:\n  assets:\n    <<: *base\n    name: a\n",
            "error: infra/a.yaml:3:9: invalid YAML: the alias `*base` has no anchor `&base` before it\n\
             hint: define the anchor (`&base`) before the alias, in the same file: anchors do not reach across files",
        ),
        (
            "recursive alias",
            b"r2_buckets:\n  assets: &assets\n    name: a\n    more: *assets\n",
            "error: infra/a.yaml:4:11: invalid YAML: the alias `*assets` is inside the value of its own anchor\n\
             hint: a value cannot contain itself: move the alias out of the anchored value",
        ),
        (
            "sequence as a key",
            b"kv_namespaces:\n  ? [users]\n  : title: a\n",
            "error: infra/a.yaml:2:5: invalid YAML: a mapping key must be a name such as `users`, not a sequence\n\
             hint: complex keys (`? [a, b]`, `{a: b}: ...`) are not supported in manifests",
        ),
        (
            "tab indentation",
            b"kv_namespaces:\n\tusers:\n\t\ttitle: a\n",
            "error: infra/a.yaml:2:2: invalid YAML: tabs disallowed within this context (block indentation)\n\
             hint: indent with spaces: YAML does not allow tabs in indentation",
        ),
        (
            "NUL byte",
            b"kv_namespaces:\n  users:\n    title: a\x00b\n",
            "error: infra/a.yaml:3:13: invalid YAML: unexpected character U+0000",
        ),
        (
            "unclosed flow sequence",
            b"kv_namespaces:\n  users:\n    title: [kk-users, b\n    protect: true\n",
            "error: infra/a.yaml:4:12: invalid YAML: illegal placement of ':' indicator\n\
             hint: the `[` marked below is never closed: end it with `]`, or quote the value if the `[` is text\n\
             note: infra/a.yaml:3:12: this `[` is never closed",
        ),
        (
            "bad indentation",
            b"kv_namespaces:\n  users:\n    title: a\n   protect: true\n",
            "error: infra/a.yaml:4:4: invalid YAML: while parsing a block mapping, did not find expected key\n\
             hint: check the indentation: the keys of one mapping start in the same column, and a key's fields are indented more than the key",
        ),
        (
            "only a byte-order mark on the second line",
            b"\n\xef\xbb\xbf",
            "error: infra/a.yaml:1:1: the file is empty",
        ),
        (
            "UTF-16",
            b"\xff\xfek\x00v\x00:\x00 \x00{\x00}\x00\n\x00",
            "error: infra/a.yaml:1:1: the file is UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8\n\
             hint: save the file as UTF-8",
        ),
    ];
    let mut failures = Vec::new();
    for (name, infra, expected) in cases {
        let actual = errors(&[("infra/a.yaml", infra), DEV]);
        if !actual.starts_with(expected) {
            failures.push(format!(
                "[{name}]\n--- expected\n{expected}\n--- actual\n{actual}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A flow collection that is closed later is not blamed.
#[test]
fn closed_brackets_are_not_blamed() {
    let actual = errors(&[
        (
            "infra/a.yaml",
            b"workers:\n  api:\n    crons: [\n      \"0 * * * *\",\n      a: b: c\n    ]\n",
        ),
        DEV,
    ]);
    assert!(actual.starts_with("error: infra/a.yaml:5:"), "{actual}");
    assert!(!actual.contains("never closed"), "{actual}");
}

#[test]
fn a_variable_using_another_says_so() {
    let actual = errors(&[
        (
            "infra/a.yaml",
            b"kv_namespaces:\n  users:\n    title: kk-${suffix}\n",
        ),
        (
            "environments/dev.yaml",
            b"vars:\n  region: weur\n  suffix: ${region}-x\n",
        ),
    ]);
    assert_eq!(
        actual,
        "error: environments/dev.yaml:3:11: vars.suffix: `${region}` is another variable: a variable's value may use `${env}` only\n\
         hint: variables do not refer to each other: write the value of `region` out here, or use `${region}` in infra/ instead"
    );
}

/// Locating the parts of a value with many `${...}` or `$${` was quadratic
/// in the value's length (found by `long_inputs_fail_within_the_bound`): the
/// value is walked once.
#[test]
fn interpolation_is_linear() {
    let title = "ab$${cd${env}".repeat(20_000);
    let infra = format!("kv_namespaces:\n  users:\n    title: {title}\n");
    let (actual, work) = errors_measured(
        &[("infra/a.yaml", infra.as_bytes()), DEV],
        ExpansionLimits::MANIFEST,
    );
    assert!(
        actual.starts_with(
            "error: infra/a.yaml:3:12: kv_namespaces.users.title: the KV namespace title is"
        ),
        "{actual}"
    );
    assert!(work.scalar_bytes >= title.len(), "{work:?}");
    // The last part starts 13 bytes before the end.
    assert!(work.scanned_bytes >= title.len() - 13, "{work:?}");
    assert!(work.scanned_bytes <= work.scalar_bytes, "{work:?}");
    assert_eq!(work.copied_bytes, "dev".len() * 20_000, "{work:?}");
}

/// A value whose `${...}` would expand to more than 1 MiB is refused before
/// any of it is copied.
#[test]
fn a_value_over_the_limit_is_refused_unbuilt() {
    let vars = format!("vars:\n  a: {}\n", "x".repeat(1000));
    let one = format!(
        "kv_namespaces:\n  users:\n    title: {}\n",
        "${a}".repeat(2000)
    );
    let (actual, work) = errors_measured(
        &[
            ("infra/a.yaml", one.as_bytes()),
            ("environments/dev.yaml", vars.as_bytes()),
        ],
        ExpansionLimits::MANIFEST,
    );
    // The 1049th `${a}` crosses 1 MiB (1,048 KB fit).
    assert_eq!(
        actual,
        "error: infra/a.yaml:3:4204: kv_namespaces.users.title: the value is longer than 1 MiB after `${...}` interpolation\n\
         hint: no Cloudflare setting takes a string this long: use the variables fewer times, or shorten their values"
    );
    assert_eq!((work.copied_bytes, work.charged, work.refused), (0, 0, 1));
}

/// Variables used many times could expand without bound (a "billion
/// laughs" through `${...}`): once the load's total would go over its
/// limit, every further value is refused unbuilt, and that is reported
/// once. Small limits keep the test light; the rule is the same at 64 MiB.
#[test]
fn variable_expansion_is_bounded() {
    let limits = ExpansionLimits {
        value: 1024 * 1024,
        total: 256 * 1024,
    };
    let vars = format!("vars:\n  a: {}\n", "x".repeat(1000));
    // 100 values of 100 `${a}`: 100,000 bytes each, charged 106,400 (bytes
    // and 64 per part): two fit in 256 KiB, and the third goes over at its
    // 47th `${a}` (column 12 + 46 * 4).
    let many: String = (0..100)
        .map(|i| format!("  k{i:02}:\n    title: {}\n", "${a}".repeat(100)))
        .collect();
    let many = format!("kv_namespaces:\n{many}");
    let (actual, work) = errors_measured(
        &[
            ("infra/a.yaml", many.as_bytes()),
            ("environments/dev.yaml", vars.as_bytes()),
        ],
        limits,
    );
    assert!(
        actual.contains(
            "error: infra/a.yaml:7:196: kv_namespaces.k02.title: `${...}` interpolation expands to more than 256 KiB in all"
        ),
        "{actual}"
    );
    assert_eq!(
        actual.matches("in all").count(),
        1,
        "reported once: {actual}"
    );
    assert_eq!(work.copied_bytes, 2 * 100_000, "{work:?}");
    assert_eq!(work.charged, 2 * 100 * (1000 + 64), "{work:?}");
    assert!(work.charged <= limits.total);
    assert_eq!(work.refused, 98, "{work:?}");
}

/// Limits are named in the largest binary unit that divides them.
#[test]
fn expansion_limits_are_named_in_binary_units() {
    let check = |bytes: usize, expect: &str| assert_eq!(decode::size(bytes), expect, "{bytes}");
    check(ExpansionLimits::MANIFEST.value, "1 MiB");
    check(ExpansionLimits::MANIFEST.total, "64 MiB");
    check(256 * 1024, "256 KiB");
    check(1536, "1536 bytes");
    check(6, "6 bytes");
    check(0, "0 bytes");
}
