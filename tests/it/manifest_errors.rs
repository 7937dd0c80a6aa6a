//! Manifest errors through the real binary: `flareops plan` on a project with
//! one bad manifest exits 1, names the file and line of the offending text
//! on stderr, and makes no request at all (validation ends before the first
//! API call).

use std::path::Path;

use crate::support::{TestEmulator, flareops, project};

/// One bad project: its files (the environment file is added when absent),
/// the environment to plan, and what stderr must contain.
struct Case {
    name: &'static str,
    files: Vec<(&'static str, String)>,
    environment: &'static str,
    /// `<file>:<line>` of the offending text, exactly as printed.
    location: &'static str,
    /// A piece of the message.
    message: &'static str,
}

fn case(
    name: &'static str,
    files: &[(&'static str, &str)],
    location: &'static str,
    message: &'static str,
) -> Case {
    Case {
        name,
        files: files
            .iter()
            .map(|(path, text)| (*path, text.to_string()))
            .collect(),
        environment: "staging",
        location,
        message,
    }
}

const STORAGE: &str = "\
kv_namespaces:
  users:
    title: kk-users-${env}
    protect: true
d1_databases:
  main:
    name: kk-db-${env}
r2_buckets:
  assets:
    name: kk-assets-${suffix}
    location_hint: weur
";

/// One worker (`workers.api`) with `fields` appended (4-space indented,
/// from line 6 on), beside the storage of [`STORAGE`] (line 12 on).
fn worker(fields: &str) -> String {
    let mut out = String::from(
        "workers:\n  api:\n    name: kk-api-${env}\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n",
    );
    for line in fields.lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(STORAGE);
    out
}

/// `d1_databases.main` with `migrations: <dir>` (the value at line 4,
/// column 17).
fn d1_migrations(dir: &str) -> String {
    format!("d1_databases:\n  main:\n    name: kk-db-${{env}}\n    migrations: {dir}\n")
}

/// The module every worker case uses.
const MAIN_MODULE: (&str, &str) = ("workers/api/index.js", "export default {};\n");

fn cases(account_id: &str) -> Vec<Case> {
    let env = format!("account_id: {account_id}\nvars:\n  suffix: stg\n");
    let env = env.as_str();
    let deep: String = (0..200)
        .map(|depth| format!("{}k{depth}:\n", "  ".repeat(depth)))
        .collect();
    let big = format!(
        "kv_namespaces:\n  big:\n    title: {}\n",
        "x".repeat(10 * 1024 * 1024)
    );
    let long_title = format!("kv_namespaces:\n  users:\n    title: {}\n", "t".repeat(513));
    vec![
        case(
            "yaml syntax error",
            &[
                (
                    "infra/storage.yaml",
                    "kv_namespaces:\n  users:\n    title: [a, b\n    protect: true\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:12",
            "invalid YAML",
        ),
        case(
            "unknown field",
            &[
                (
                    "infra/storage.yaml",
                    "kv_namespaces:\n  users:\n    titel: kk-users\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:3:5",
            "unknown field `titel`",
        ),
        case(
            "sequence where a string is due",
            &[
                (
                    "infra/storage.yaml",
                    "kv_namespaces:\n  users:\n    title: [a]\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:3:12",
            "expected a string, found a sequence",
        ),
        case(
            "quoted boolean",
            &[
                (
                    "infra/storage.yaml",
                    "kv_namespaces:\n  users:\n    title: kk-users\n    protect: \"yes\"\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:14",
            "expected `true` or `false`",
        ),
        case(
            "duplicate key",
            &[
                (
                    "infra/storage.yaml",
                    "kv_namespaces:\n  users:\n    title: a\n    title: b\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:5",
            "duplicate key `title`",
        ),
        case(
            "address declared in two files",
            &[
                ("infra/a.yaml", "kv_namespaces:\n  users:\n    title: a\n"),
                ("infra/b.yaml", "kv_namespaces:\n  users:\n    title: b\n"),
                ("environments/staging.yaml", env),
            ],
            "infra/b.yaml:2:3",
            "`kv_namespaces.users` is declared twice",
        ),
        case(
            "undefined variable",
            &[
                (
                    "infra/storage.yaml",
                    "kv_namespaces:\n  users:\n    title: kk-${sufix}\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:3:15",
            "undefined variable `${sufix}`",
        ),
        case(
            "kv title too long",
            &[
                ("infra/storage.yaml", &long_title),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:3:12",
            "more than the 512 Cloudflare accepts",
        ),
        case(
            "invalid d1 name",
            &[
                (
                    "infra/storage.yaml",
                    "d1_databases:\n  main:\n    name: kk.db\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:3:13",
            "invalid D1 database name `kk.db`",
        ),
        case(
            "invalid r2 name from a variable",
            &[
                ("infra/storage.yaml", STORAGE),
                (
                    "environments/staging.yaml",
                    &format!("account_id: {account_id}\nvars:\n  suffix: Stg\n"),
                ),
            ],
            "environments/staging.yaml:3:11",
            "invalid R2 bucket name `kk-assets-Stg`",
        ),
        case(
            "value not allowed",
            &[
                (
                    "infra/storage.yaml",
                    "r2_buckets:\n  assets:\n    name: kk-assets\n    storage_class: Cold\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:20",
            "invalid storage_class \"Cold\"",
        ),
        case(
            "override for an undeclared address",
            &[
                ("infra/storage.yaml", STORAGE),
                (
                    "environments/staging.yaml",
                    &format!(
                        "{env}overrides:\n  r2_buckets.asets:\n    storage_class: InfrequentAccess\n"
                    ),
                ),
            ],
            "environments/staging.yaml:5:3",
            "did you mean `r2_buckets.assets`?",
        ),
        case(
            "invalid overridden value",
            &[
                ("infra/storage.yaml", STORAGE),
                (
                    "environments/staging.yaml",
                    &format!("{env}overrides:\n  r2_buckets.assets:\n    location_hint: mars\n"),
                ),
            ],
            "environments/staging.yaml:6:20",
            "invalid location_hint \"mars\"",
        ),
        case(
            "two resources with one name",
            &[
                (
                    "infra/a.yaml",
                    "kv_namespaces:\n  users:\n    title: shared-${env}\n",
                ),
                (
                    "infra/b.yaml",
                    "kv_namespaces:\n  sessions:\n    title: shared-staging\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/b.yaml:3:12",
            "both resolve to the KV namespace title",
        ),
        case(
            "bad account id",
            &[
                ("infra/storage.yaml", STORAGE),
                (
                    "environments/staging.yaml",
                    "account_id: not-an-id\nvars:\n  suffix: stg\n",
                ),
            ],
            "environments/staging.yaml:1:13",
            "invalid account id",
        ),
        case(
            "account and account_id",
            &[
                ("infra/storage.yaml", STORAGE),
                (
                    "environments/staging.yaml",
                    &format!("{env}account: local\n"),
                ),
            ],
            "environments/staging.yaml:4:10",
            "`account` and `account_id` are both set",
        ),
        case(
            "empty file",
            &[
                ("infra/storage.yaml", STORAGE),
                ("infra/empty.yaml", "# todo\n"),
                ("environments/staging.yaml", env),
            ],
            "infra/empty.yaml:1:1",
            "the file is empty",
        ),
        case(
            "file that is not a mapping",
            &[
                ("infra/storage.yaml", "- kv_namespaces\n"),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:1:1",
            "expected a mapping at the top of the file",
        ),
        case(
            "nesting 200 deep",
            &[
                ("infra/storage.yaml", STORAGE),
                ("infra/deep.yaml", &deep),
                ("environments/staging.yaml", env),
            ],
            "infra/deep.yaml:33:65",
            "nesting is deeper than 32 levels",
        ),
        case(
            "10 MB file",
            &[
                ("infra/storage.yaml", STORAGE),
                ("infra/big.yaml", &big),
                ("environments/staging.yaml", env),
            ],
            "infra/big.yaml:1:1",
            "larger than the 1.0 MiB limit",
        ),
        case(
            "unknown section",
            &[
                (
                    "infra/storage.yaml",
                    "kv_namespace:\n  users:\n    title: kk-users\n",
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:1:1",
            "did you mean `kv_namespaces`?",
        ),
        case(
            "worker binding to an undeclared namespace",
            &[
                (
                    "infra/w.yaml",
                    &worker("bindings:\n  USERS: {kv_namespace: userz}"),
                ),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:7:29",
            "`kv_namespaces.userz` is not declared",
        ),
        case(
            "worker binding named with a reserved word",
            &[
                ("infra/w.yaml", &worker("bindings:\n  default: {text: x}")),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:7:7",
            "it is a reserved word in JavaScript",
        ),
        case(
            "cron with a Unix day of the week",
            &[
                ("infra/w.yaml", &worker("crons: [\"0 0 * * 0\"]")),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:6:22",
            "`0` is out of range for the day of the week",
        ),
        case(
            "route outside the zone",
            &[
                ("infra/w.yaml", &worker("routes: [\"api.example.org/*\"]")),
                MAIN_MODULE,
                (
                    "environments/staging.yaml",
                    &format!("{env}zone: example.com\n"),
                ),
            ],
            "infra/w.yaml:6:15",
            "is not in the zone `example.com`",
        ),
        case(
            "route without a zone",
            &[
                ("infra/w.yaml", &worker("routes: [\"api.example.com/*\"]")),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:6:14",
            "the environment has no `zone:`",
        ),
        case(
            "service binding cycle",
            &[
                (
                    "infra/w.yaml",
                    &format!(
                        "{}  auth:\n    name: kk-auth\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n    bindings:\n      API: {{service: api}}\n",
                        worker("bindings:\n  AUTH: {service: auth}").replace(STORAGE, "")
                    ),
                ),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:13:22",
            "service bindings form a cycle: workers.api -> workers.auth -> workers.api",
        ),
        case(
            "missing main module",
            &[
                ("infra/w.yaml", &worker("")),
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:4:11",
            "the main module `workers/api/index.js` does not exist",
        ),
        case(
            "main module outside the project",
            &[
                (
                    "infra/w.yaml",
                    &worker("").replace("workers/api/index.js", "../index.js"),
                ),
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:4:11",
            "uses `..`: it must stay inside the project root",
        ),
        case(
            "secret from an unset variable",
            &[
                (
                    "infra/w.yaml",
                    &worker("secrets:\n  JWT: {from_env: FLAREOPS_TEST_UNSET_SECRET_7F3A}"),
                ),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:7:23",
            "the environment variable `FLAREOPS_TEST_UNSET_SECRET_7F3A` (secret `JWT`) is not set",
        ),
        case(
            "gradual rollout not ending at 100",
            &[
                (
                    "infra/w.yaml",
                    &worker("rollout: {strategy: gradual, steps: [10, 50], wait: 5m}"),
                ),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:6:46",
            "the last step is not 100%",
        ),
        case(
            "two workers with one script name",
            &[
                (
                    "infra/w.yaml",
                    &format!(
                        "{}  web:\n    name: kk-api-staging\n    main: workers/api/index.js\n    compatibility_date: \"2025-01-15\"\n",
                        worker("").replace(STORAGE, "")
                    ),
                ),
                MAIN_MODULE,
                ("environments/staging.yaml", env),
            ],
            "infra/w.yaml:7:11",
            "both resolve to the Worker name \"kk-api-staging\"",
        ),
        case(
            "invalid zone id",
            &[
                ("infra/storage.yaml", STORAGE),
                (
                    "environments/staging.yaml",
                    &format!("{env}zone: {{name: example.com, id: 12345}}\n"),
                ),
            ],
            "environments/staging.yaml:4:31",
            "invalid zone id `12345`",
        ),
        case(
            "d1 migrations directory missing",
            &[
                ("infra/storage.yaml", &d1_migrations("db/${env}")),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:17",
            "the migrations directory `db/staging` does not exist",
        ),
        case(
            "d1 migrations directory outside the project",
            &[
                ("infra/storage.yaml", &d1_migrations("../db")),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:17",
            "the migrations directory path `../db` uses `..`",
        ),
        case(
            "d1 migrations path is a file",
            &[
                ("infra/storage.yaml", &d1_migrations("db/0001_init.sql")),
                ("db/0001_init.sql", "SELECT 1;\n"),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:17",
            "the migrations directory `db/0001_init.sql` is not a directory",
        ),
        case(
            "two d1 migrations with one number",
            &[
                ("infra/storage.yaml", &d1_migrations("db")),
                ("db/0001_init.sql", "CREATE TABLE t (x);\n"),
                ("db/1_again.sql", "SELECT 1;\n"),
                ("environments/staging.yaml", env),
            ],
            "infra/storage.yaml:4:17",
            "the migrations `db/0001_init.sql` and `db/1_again.sql` have the same number 1",
        ),
        Case {
            environment: "stagin",
            ..case(
                "unknown environment",
                &[
                    ("infra/storage.yaml", STORAGE),
                    ("environments/staging.yaml", env),
                ],
                "environments/stagin.yaml",
                "did you mean `staging`?",
            )
        },
    ]
}

/// Runs `flareops plan` on one case; `Err` says what was wrong.
fn run(case: &Case, emulator: &TestEmulator) -> Result<(), String> {
    let files: Vec<(&str, &str)> = case
        .files
        .iter()
        .map(|(path, text)| (*path, text.as_str()))
        .collect();
    let root = project(&files);
    run_in(
        root.path(),
        case.environment,
        case.location,
        case.message,
        emulator,
    )
}

fn run_in(
    root: &Path,
    environment: &str,
    location: &str,
    message: &str,
    emulator: &TestEmulator,
) -> Result<(), String> {
    let output = flareops(root, emulator)
        .args(["apply", "--env", environment, "--yes"])
        .output()
        .map_err(|error| format!("could not run flareops: {error}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems = Vec::new();
    if output.status.code() != Some(1) {
        problems.push(format!("exit code {:?}, not 1", output.status.code()));
    }
    // `<file>:<line>:` or `<file>:<line>:<column>:` exactly (not a longer line number).
    let located =
        stderr.contains(&format!("{location}:")) || stderr.contains(&format!("{location}\n"));
    if !located {
        problems.push(format!("stderr does not name `{location}`"));
    }
    if !stderr.contains(message) {
        problems.push(format!("stderr does not say `{message}`"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{}\n--- stderr\n{stderr}", problems.join("; ")))
    }
}

#[test]
fn manifest_errors_exit_1_with_a_location_and_zero_requests() {
    let emulator = TestEmulator::start();
    let mut failures = Vec::new();
    let cases = cases(&emulator.account_id);
    assert!(cases.len() >= 15);
    for case in &cases {
        if let Err(problem) = run(case, &emulator) {
            failures.push(format!("[{}] {problem}", case.name));
        }
        let requests = emulator.stats_total();
        if requests != 0 {
            failures.push(format!(
                "[{}] the emulator saw {requests} requests",
                case.name
            ));
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn non_utf8_manifest() {
    let emulator = TestEmulator::start();
    let root = project(&[(
        "environments/staging.yaml",
        &format!("account_id: {}\n", emulator.account_id),
    )]);
    std::fs::create_dir_all(root.path().join("infra")).expect("mkdir infra");
    std::fs::write(
        root.path().join("infra/storage.yaml"),
        b"kv_namespaces:\n  users:\n    title: caf\xe9\n",
    )
    .expect("write");
    let result = run_in(
        root.path(),
        "staging",
        "infra/storage.yaml:3:15",
        "not valid UTF-8",
        &emulator,
    );
    assert_eq!(emulator.stats_total(), 0);
    if let Err(problem) = result {
        panic!("{problem}");
    }
}

#[test]
fn every_problem_is_reported_at_once_in_file_order() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/a.yaml", "kv_namespaces:\n  users:\n    titel: x\n"),
        ("infra/b.yaml", "r2_buckets:\n  assets:\n    name: A\n"),
        ("environments/staging.yaml", "account_id: nope\n"),
    ]);
    let output = flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .output()
        .expect("run flareops");
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|line| line.starts_with("error: "))
        .collect();
    assert_eq!(
        lines,
        [
            "error: environments/staging.yaml:1:13: account_id: invalid account id `nope`: `n` is not a hexadecimal digit at the start",
            "error: infra/a.yaml:2:3: kv_namespaces.users.title: missing field `title` for KV namespace `users`",
            "error: infra/a.yaml:3:5: kv_namespaces.users.titel: unknown field `titel`",
            "error: infra/b.yaml:3:11: r2_buckets.assets.name: invalid R2 bucket name `A`: the uppercase letter `A` is not allowed at the start",
        ],
        "{stderr}"
    );
    assert!(stderr.contains("hint: did you mean `title`?"), "{stderr}");
    assert!(!stderr.contains('\u{1b}'), "NO_COLOR is set: {stderr}");
    assert_eq!(emulator.stats_total(), 0);
}
