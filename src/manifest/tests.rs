//! Loader tests, data-driven through [`check`]: files in, and either the
//! loaded state or the diagnostics (their `Display` form) out.

use std::fmt::Write as _;
use std::path::Path;

use super::*;

/// Writes `files` into a temporary project, loads `environment` and compares
/// a text summary of the result with `expected` (indentation-insensitive).
#[track_caller]
fn check(files: &[(&str, &str)], environment: &str, expected: &str) {
    let project = project(files);
    let actual = summary(load(project.path(), environment));
    let expected = dedent(expected);
    assert!(
        actual.trim_end() == expected.trim_end(),
        "\n--- expected\n{}\n--- actual\n{}\n",
        expected.trim_end(),
        actual.trim_end()
    );
}

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    project_bytes(
        &files
            .iter()
            .map(|(path, text)| (*path, text.as_bytes()))
            .collect::<Vec<_>>(),
    )
}

fn project_bytes(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    for sub in [INFRA_DIR, ENVIRONMENTS_DIR] {
        std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
    }
    for (path, bytes) in files {
        let full = dir.path().join(path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(full, bytes).expect("write");
    }
    dir
}

fn summary(result: Result<DesiredState, Diagnostics>) -> String {
    let mut out = String::new();
    match result {
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty());
            let _ = write!(out, "{diagnostics}");
        }
        Ok(state) => {
            let _ = writeln!(out, "ok {} {:?}", state.environment, state.account);
            for (key, kv) in &state.kv_namespaces {
                let _ = writeln!(
                    out,
                    "kv_namespaces.{key} title={:?} protect={}",
                    kv.spec.title, kv.protect
                );
            }
            for (key, d1) in &state.d1_databases {
                let _ = writeln!(
                    out,
                    "d1_databases.{key} name={:?} location_hint={:?} jurisdiction={:?} protect={}",
                    d1.spec.name, d1.spec.location_hint, d1.spec.jurisdiction, d1.protect
                );
            }
            for (key, r2) in &state.r2_buckets {
                let _ = writeln!(
                    out,
                    "r2_buckets.{key} name={:?} location_hint={:?} storage_class={:?} jurisdiction={:?} protect={}",
                    r2.spec.name,
                    r2.spec.location_hint,
                    r2.spec.storage_class,
                    r2.spec.jurisdiction,
                    r2.protect
                );
            }
        }
    }
    out
}

/// Removes the common indentation and the first line if blank.
fn dedent(text: &str) -> String {
    let text = text.strip_prefix('\n').unwrap_or(text);
    let indent = text
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| line.len() - line.trim_start().len())
        .min()
        .unwrap_or(0);
    text.lines()
        .map(|line| line.get(indent..).unwrap_or("").trim_end())
        .collect::<Vec<_>>()
        .join("\n")
}

const STORAGE: &str = "\
kv_namespaces:
  users:
    title: klear-karma-users-${env}
    protect: true
d1_databases:
  main:
    name: klear-karma-${env}
    location_hint: weur
    jurisdiction: eu
r2_buckets:
  assets:
    name: klear-karma-assets-${suffix}
    location_hint: weur
    storage_class: Standard
    jurisdiction: eu
";

const STAGING: &str = "\
account_id: 0123456789abcdef0123456789abcdef
vars:
  suffix: stg
overrides:
  r2_buckets.assets:
    storage_class: InfrequentAccess
";

#[test]
fn loads_a_valid_project() {
    check(
        &[
            ("infra/storage.yaml", STORAGE),
            ("environments/staging.yaml", STAGING),
        ],
        "staging",
        r#"
        ok staging Id("0123456789abcdef0123456789abcdef")
        kv_namespaces.users title="klear-karma-users-staging" protect=true
        d1_databases.main name="klear-karma-staging" location_hint=Some(Weur) jurisdiction=Some(Eu) protect=false
        r2_buckets.assets name="klear-karma-assets-stg" location_hint=Some(Weur) storage_class=Some(InfrequentAccess) jurisdiction=Some(Eu) protect=false
        "#,
    );
}

#[test]
fn account_targets() {
    let infra = (
        "infra/a.yaml",
        "kv_namespaces:\n  users:\n    title: users-${env}\n",
    );
    check(
        &[infra, ("environments/dev.yaml", "account: local\n")],
        "dev",
        r#"
        ok dev Local
        kv_namespaces.users title="users-dev" protect=false
        "#,
    );
    check(
        &[infra, ("environments/ci.yaml", "{}\n")],
        "ci",
        r#"
        ok ci FromEnvironment
        kv_namespaces.users title="users-ci" protect=false
        "#,
    );
    check(
        &[infra, ("environments/ci.yaml", "vars: {}\n")],
        "ci",
        r#"
        ok ci FromEnvironment
        kv_namespaces.users title="users-ci" protect=false
        "#,
    );
}

#[test]
fn overrides_deep_merge() {
    let infra = "\
r2_buckets:
  assets:
    name: assets-${env}
    location_hint: weur
    jurisdiction: eu
  logs:
    name: logs-${env}
kv_namespaces:
  cache:
    title: cache
";
    let environment = "\
overrides:
  r2_buckets.assets:
    location_hint: null      # removes the field
    storage_class: InfrequentAccess
  r2_buckets.logs:
    name: other-logs
  kv_namespaces.cache:
    protect: true
";
    check(
        &[
            ("infra/a.yaml", infra),
            ("environments/prod.yaml", environment),
        ],
        "prod",
        r#"
        ok prod FromEnvironment
        kv_namespaces.cache title="cache" protect=true
        r2_buckets.assets name="assets-prod" location_hint=None storage_class=Some(InfrequentAccess) jurisdiction=Some(Eu) protect=false
        r2_buckets.logs name="other-logs" location_hint=None storage_class=None jurisdiction=None protect=false
        "#,
    );
}

#[test]
fn interpolation() {
    let infra = "\
kv_namespaces:
  a:
    title: ${prefix}-$${literal}-${env}
  b:
    title: \"${n}\"
  c:
    title: 2024
  d:
    title: 007
  e:
    title: true
";
    let environment = "\
vars:
  prefix: app-${env}
  n: 7
";
    check(
        &[
            ("infra/a.yaml", infra),
            ("environments/qa.yaml", environment),
        ],
        "qa",
        r#"
        ok qa FromEnvironment
        kv_namespaces.a title="app-qa-${literal}-qa" protect=false
        kv_namespaces.b title="7" protect=false
        kv_namespaces.c title="2024" protect=false
        kv_namespaces.d title="007" protect=false
        kv_namespaces.e title="true" protect=false
        "#,
    );
}

#[test]
fn yaml_syntax_error() {
    check(
        &[
            ("infra/a.yaml", "kv_namespaces:\n  users:\n    title: [a, b\n    protect: true\n"),
            ("environments/dev.yaml", "{}\n"),
        ],
        "dev",
        "
        error: infra/a.yaml:4:12: invalid YAML: illegal placement of ':' indicator
        hint: fix the YAML syntax here; values holding `: `, ` #` or starting with `{`, `[`, `*`, `&`, `!`, `%`, `@` need quotes
        ",
    );
}

#[test]
fn unknown_fields_and_sections() {
    check(
        &[
            ("infra/a.yaml", "kv_namespace:\n  users:\n    title: x\nr2_buckets:\n  b:\n    name: bucket\n    storage: Standard\n"),
            ("environments/dev.yaml", "acount_id: 0123\n"),
        ],
        "dev",
        "
        error: environments/dev.yaml:1:1: acount_id: unknown field `acount_id`
        hint: did you mean `account_id`? environment fields: `account_id`, `account`, `vars`, `overrides`
        error: infra/a.yaml:1:1: kv_namespace: unknown section `kv_namespace`
        hint: did you mean `kv_namespaces`? sections: `kv_namespaces`, `d1_databases`, `r2_buckets`, `workers`
        error: infra/a.yaml:7:5: r2_buckets.b.storage: unknown field `storage`
        hint: did you mean `storage_class`? R2 bucket fields: `protect`, `name`, `location_hint`, `storage_class`, `jurisdiction`
        ",
    );
}

#[test]
fn wrong_types() {
    check(
        &[
            (
                "infra/a.yaml",
                "kv_namespaces:\n  users:\n    title: [a]\n    protect: \"yes\"\n  other:\n    title:\n  third: just-a-string\nd1_databases: [x]\n",
            ),
            ("environments/dev.yaml", "vars:\n  suffix: {a: 1}\n"),
        ],
        "dev",
        "
        error: environments/dev.yaml:2:11: vars.suffix: expected a string, found a mapping
        hint: write a single string here; quote it if it holds `[`, `{` or `: `
        error: infra/a.yaml:3:12: kv_namespaces.users.title: expected a string, found a sequence
        hint: write a single string here; quote it if it holds `[`, `{` or `: `
        error: infra/a.yaml:4:14: kv_namespaces.users.protect: expected `true` or `false`, found the string \"yes\"
        hint: write `protect: true`
        error: infra/a.yaml:5:3: kv_namespaces.other.title: missing field `title` for KV namespace `other`
        hint: add `title: ...` under `other`
        error: infra/a.yaml:7:10: kv_namespaces.third: expected a mapping of KV namespace fields, found the string \"just-a-string\"
        hint: write the fields indented under the key, one `name: value` per line
        error: infra/a.yaml:8:15: d1_databases: expected a mapping of keys to D1 databases, found a sequence
        hint: write each D1 database under a key: `d1_databases:` then `  my_key:` then its fields
        ",
    );
}

#[test]
fn duplicate_keys_and_addresses() {
    check(
        &[
            (
                "infra/a.yaml",
                "kv_namespaces:\n  users:\n    title: a\n    title: b\n",
            ),
            ("infra/b.yaml", "kv_namespaces:\n  users:\n    title: c\n"),
            ("environments/dev.yaml", "{}\n"),
        ],
        "dev",
        "
        error: infra/a.yaml:4:5: kv_namespaces.users.title: duplicate key `title`
        hint: a key may appear once in a mapping; remove or rename one of them
        note: infra/a.yaml:3:5: first defined here
        error: infra/b.yaml:2:3: kv_namespaces.users: `kv_namespaces.users` is declared twice
        hint: an address names one resource: rename one of the keys or remove one declaration
        note: infra/a.yaml:2:3: first declared here
        ",
    );
}

#[test]
fn undefined_variables() {
    check(
        &[
            ("infra/a.yaml", "kv_namespaces:\n  users:\n    title: users-${sufix}\n  b:\n    title: \"${}\"\n  c:\n    title: x-${env\n"),
            ("environments/dev.yaml", "vars:\n  suffix: x\n  other: ${suffix}\n"),
        ],
        "dev",
        "
        error: environments/dev.yaml:3:10: vars.other: undefined variable `${suffix}`
        hint: define it under `vars:` in the environment file; defined variables: `env`
        error: infra/a.yaml:3:18: kv_namespaces.users.title: undefined variable `${sufix}`
        hint: did you mean `${suffix}`? defined variables: `env`, `other`, `suffix`
        error: infra/a.yaml:5:13: kv_namespaces.b.title: invalid variable reference `${}`
        hint: variable names are letters, digits and `_`, not starting with a digit
        error: infra/a.yaml:7:14: kv_namespaces.c.title: unterminated `${`: a variable reference ends with `}`
        hint: write `${name}`, or `$${` for a literal `${`
        ",
    );
}

#[test]
fn cloudflare_name_rules() {
    let long_title = "t".repeat(513);
    let infra = format!(
        "kv_namespaces:\n  users:\n    title: {long_title}\nd1_databases:\n  main:\n    name: Klear_db\nr2_buckets:\n  assets:\n    name: assets-${{suffix}}\n  short:\n    name: ab\n  dash:\n    name: assets-\n"
    );
    check(
        &[("infra/a.yaml", &infra), ("environments/dev.yaml", "vars:\n  suffix: Stg\n")],
        "dev",
        "
        error: environments/dev.yaml:2:11: r2_buckets.assets.name: invalid R2 bucket name `assets-Stg`: the uppercase letter `S` is not allowed (from `${suffix}`)
        hint: R2 bucket names are 3-63 lowercase letters, digits and `-`, starting and ending with a letter or digit; for example `assets-stg`
        note: infra/a.yaml:9:11: the value is written here
        error: infra/a.yaml:3:12: kv_namespaces.users.title: the KV namespace title is 513 bytes long, more than the 512 Cloudflare accepts
        hint: shorten the title (or the variables it uses)
        error: infra/a.yaml:6:11: d1_databases.main.name: invalid D1 database name `Klear_db`: the uppercase letter `K` is not allowed at the start
        hint: D1 names are lowercase letters, digits, `-` and `_`, starting with a letter or digit; for example `klear_db`
        error: infra/a.yaml:11:11: r2_buckets.short.name: the R2 bucket name `ab` is 2 characters long; Cloudflare accepts 3 to 63
        hint: R2 bucket names are 3-63 lowercase letters, digits and `-`, starting and ending with a letter or digit
        error: infra/a.yaml:13:17: r2_buckets.dash.name: invalid R2 bucket name `assets-`: it ends with `-`
        hint: R2 bucket names are 3-63 lowercase letters, digits and `-`, starting and ending with a letter or digit; for example `assets`
        ",
    );
}

#[test]
fn allowed_values() {
    check(
        &[
            ("infra/a.yaml", "r2_buckets:\n  b:\n    name: bucket\n    location_hint: weu\n    storage_class: standard\n    jurisdiction: ${j}\n"),
            ("environments/dev.yaml", "vars:\n  j: europe\n"),
        ],
        "dev",
        "
        error: environments/dev.yaml:2:6: r2_buckets.b.jurisdiction: invalid jurisdiction \"europe\" (from `${j}`)
        hint: did you mean `eu`? allowed values: `eu`, `us`, `fedramp`
        note: infra/a.yaml:6:19: `jurisdiction` is set here
        error: infra/a.yaml:4:20: r2_buckets.b.location_hint: invalid location_hint \"weu\"
        hint: did you mean `weur`? allowed values: `wnam`, `enam`, `weur`, `eeur`, `apac`, `oc`
        error: infra/a.yaml:5:20: r2_buckets.b.storage_class: invalid storage_class \"standard\"
        hint: did you mean `Standard`? allowed values: `Standard`, `InfrequentAccess`
        ",
    );
}

#[test]
fn unknown_environment() {
    let infra = (
        "infra/a.yaml",
        "kv_namespaces:\n  users:\n    title: users-${suffix}\n",
    );
    check(
        &[
            infra,
            ("environments/staging.yaml", "{}\n"),
            ("environments/production.yaml", "{}\n"),
        ],
        "stagin",
        "
        error: environments/stagin.yaml: environment: unknown environment `stagin`
        hint: did you mean `staging`? known environments: `production`, `staging`
        ",
    );
    check(
        &[infra, ("environments/staging.yaml", "{}\n")],
        "qa",
        "
        error: environments/qa.yaml: environment: unknown environment `qa`
        hint: known environments: `staging`
        ",
    );
    check(
        &[infra, ("environments/qa.yml", "{}\n")],
        "qa",
        "
        error: environments/qa.yaml: environment: unknown environment `qa`
        hint: rename `environments/qa.yml` to `qa.yaml`
        ",
    );
}

#[test]
fn overrides_for_unknown_addresses() {
    check(
        &[
            ("infra/a.yaml", "r2_buckets:\n  assets:\n    name: assets\n"),
            (
                "environments/dev.yaml",
                "overrides:\n  r2_buckets.asets:\n    name: x\n  r2_buckets:\n    assets: {}\n  queues.jobs: {}\n  r2_buckets.assets: nope\n  r2_buckets.assets.name: x\n",
            ),
        ],
        "dev",
        "
        error: environments/dev.yaml:2:3: overrides.r2_buckets.asets: override for `r2_buckets.asets`, which is not declared in infra/
        hint: did you mean `r2_buckets.assets`?
        error: environments/dev.yaml:4:3: overrides.r2_buckets: `r2_buckets` is a section, not an address
        hint: override keys are addresses: write `r2_buckets.<key>:` (e.g. `r2_buckets.assets`)
        error: environments/dev.yaml:6:3: overrides.queues.jobs: `queues.jobs` is not an address
        hint: declared addresses: `r2_buckets.assets`
        error: environments/dev.yaml:7:22: overrides.r2_buckets.assets: expected a mapping of fields to change, found the string \"nope\"
        hint: write the fields to change indented under `r2_buckets.assets:`
        error: environments/dev.yaml:8:3: overrides.r2_buckets.assets.name: override for `r2_buckets.assets.name`, which is not declared in infra/
        hint: did you mean `r2_buckets.assets`?
        ",
    );
}

#[test]
fn overridden_values_are_checked_where_written() {
    check(
        &[
            ("infra/a.yaml", "r2_buckets:\n  assets:\n    name: assets\n"),
            ("environments/dev.yaml", "overrides:\n  r2_buckets.assets:\n    name: Assets\n    storage_clas: Standard\n"),
        ],
        "dev",
        "
        error: environments/dev.yaml:3:11: r2_buckets.assets.name: invalid R2 bucket name `Assets`: the uppercase letter `A` is not allowed at the start
        hint: R2 bucket names are 3-63 lowercase letters, digits and `-`, starting and ending with a letter or digit; for example `assets`
        error: environments/dev.yaml:4:5: r2_buckets.assets.storage_clas: unknown field `storage_clas`
        hint: did you mean `storage_class`? R2 bucket fields: `protect`, `name`, `location_hint`, `storage_class`, `jurisdiction`
        ",
    );
}

#[test]
fn name_collisions() {
    check(
        &[
            ("infra/a.yaml", "kv_namespaces:\n  users:\n    title: shared-${env}\nr2_buckets:\n  eu:\n    name: bucket\n    jurisdiction: eu\n"),
            ("infra/b.yaml", "kv_namespaces:\n  sessions:\n    title: shared-dev\nr2_buckets:\n  plain:\n    name: bucket\n"),
            ("environments/dev.yaml", "{}\n"),
        ],
        "dev",
        "
        error: infra/b.yaml:3:12: kv_namespaces.sessions.title: `kv_namespaces.users` and `kv_namespaces.sessions` both resolve to the KV namespace title \"shared-dev\" in environment `dev`
        hint: they would be the same KV namespace: give one of them another title
        note: infra/a.yaml:3:12: `kv_namespaces.users` resolves to the same title here
        ",
    );
}

#[test]
fn account_settings() {
    let infra = ("infra/a.yaml", "kv_namespaces: {}\n");
    check(
        &[infra, ("environments/a.yaml", "account_id: 0123456789ABCDEF0123456789ABCDEF\n")],
        "a",
        "
        error: environments/a.yaml:1:13: account_id: invalid account id `0123456789ABCDEF0123456789ABCDEF`: account ids are lowercase
        hint: write `0123456789abcdef0123456789abcdef`
        ",
    );
    check(
        &[infra, ("environments/a.yaml", "account_id: abc\n")],
        "a",
        "
        error: environments/a.yaml:1:13: account_id: invalid account id `abc`: it has 3 characters, not 32
        hint: the account id is the 32-character hex string in the dashboard URL (or under Account details)
        ",
    );
    check(
        &[infra, ("environments/a.yaml", "account: local\naccount_id: 0123456789abcdef0123456789abcdef\n")],
        "a",
        "
        error: environments/a.yaml:2:13: account_id: `account` and `account_id` are both set
        hint: keep `account_id: <id>` for a Cloudflare account or `account: local` for the local emulator, not both
        note: environments/a.yaml:1:10: the other one is set here
        ",
    );
    check(
        &[infra, ("environments/a.yaml", "account: remote\n")],
        "a",
        "
        error: environments/a.yaml:1:10: account: invalid account \"remote\": the only value is `local`
        hint: write `account: local` for the local emulator, or `account_id: <32 hex characters>` for a Cloudflare account
        ",
    );
}

#[test]
fn vars_rules() {
    check(
        &[
            (
                "infra/a.yaml",
                "kv_namespaces:\n  users:\n    title: users-${env}\n",
            ),
            (
                "environments/dev.yaml",
                "vars:\n  env: prod\n  bad-name: x\n",
            ),
        ],
        "dev",
        "
        error: environments/dev.yaml:2:3: vars.env: `env` is built in and cannot be redefined
        hint: `${env}` is always the environment's name (`dev`); pick another name for this variable
        error: environments/dev.yaml:3:3: vars.bad-name: invalid variable name `bad-name`
        hint: variable names are letters, digits and `_`, not starting with a digit
        ",
    );
}

#[test]
fn invalid_keys() {
    check(
        &[("infra/a.yaml", "kv_namespaces:\n  Users:\n    title: users\n  my.cache:\n    title: cache\n"), ("environments/dev.yaml", "{}\n")],
        "dev",
        "
        error: infra/a.yaml:2:3: kv_namespaces.Users: invalid key `Users`: the uppercase letter `U` is not allowed at the start
        hint: keys are lowercase letters, digits, `_` and `-`, not starting with `-`; for example `users`
        error: infra/a.yaml:4:3: kv_namespaces.my.cache: invalid key `my.cache`: `.` is not allowed
        hint: keys are lowercase letters, digits, `_` and `-`, not starting with `-`; for example `my_cache`
        ",
    );
}

#[test]
fn empty_and_non_mapping_files() {
    check(
        &[
            ("infra/a.yaml", "# nothing yet\n"),
            ("infra/b.yaml", "- kv_namespaces\n"),
            ("infra/c.yaml", "just text\n"),
            ("environments/dev.yaml", ""),
        ],
        "dev",
        "
        error: environments/dev.yaml:1:1: the file is empty
        hint: write `{}` for an environment with no settings, or delete the file
        error: infra/a.yaml:1:1: the file is empty
        hint: declare resources in it (e.g. `kv_namespaces:`), or delete the file
        error: infra/b.yaml:1:1: expected a mapping at the top of the file, found a sequence
        hint: an infra file is a mapping of sections such as `kv_namespaces:`
        error: infra/c.yaml:1:1: expected a mapping at the top of the file, found the string \"just text\"
        hint: an infra file is a mapping of sections such as `kv_namespaces:`
        ",
    );
}

#[test]
fn yml_files_and_missing_directories() {
    check(
        &[
            ("infra/a.yml", "kv_namespaces: {}\n"),
            ("environments/dev.yaml", "{}\n"),
        ],
        "dev",
        "
        error: infra/a.yml: manifest files end in `.yaml`; this `.yml` file would be ignored
        hint: rename it to `a.yaml`
        ",
    );
    let empty = tempfile::tempdir().expect("temp dir");
    let result = summary(load(empty.path(), "dev"));
    assert!(
        result.contains("error: environments/dev.yaml: environment: unknown environment `dev`"),
        "{result}"
    );
    assert!(
        result.contains("error: infra: no `infra/` directory in"),
        "{result}"
    );
}

#[test]
fn non_utf8_file() {
    let project = project_bytes(&[
        (
            "infra/a.yaml",
            b"kv_namespaces:\n  users:\n    title: caf\xe9\n",
        ),
        ("environments/dev.yaml", b"{}\n"),
    ]);
    let actual = summary(load(project.path(), "dev"));
    assert_eq!(
        actual,
        "error: infra/a.yaml:3:15: the file is not valid UTF-8 (byte 0xe9 at offset 38)\nhint: save the file as UTF-8"
    );
}

#[test]
fn hostile_files_fail_fast_with_a_location() {
    let deep: String = (0..200)
        .map(|depth| format!("{}k{depth}:\n", "  ".repeat(depth)))
        .collect();
    let flow = format!("a: {}{}\n", "[".repeat(200), "]".repeat(200));
    let mut bomb = String::from(
        "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
    );
    for level in 1..10u8 {
        let (this, prev) = ((b'a' + level) as char, (b'a' + level - 1) as char);
        bomb.push_str(&format!(
            "{this}: &{this} [{}]\n",
            vec![format!("*{prev}"); 9].join(",")
        ));
    }
    let big = format!(
        "kv_namespaces:\n  big:\n    title: {}\n",
        "x".repeat(10 * 1024 * 1024)
    );
    let many = format!("a: [{}]\n", vec!["1"; 300_000].join(","));
    let project = project(&[
        ("infra/big.yaml", &big),
        ("infra/bomb.yaml", &bomb),
        ("infra/deep.yaml", &deep),
        ("infra/flow.yaml", &flow),
        ("infra/many.yaml", &many),
        ("environments/dev.yaml", "{}\n"),
    ]);
    let started = std::time::Instant::now();
    let actual = summary(load(project.path(), "dev"));
    let elapsed = started.elapsed();
    assert!(
        elapsed < std::time::Duration::from_secs(5),
        "took {elapsed:?}"
    );
    let expected = dedent(
        "
        error: infra/big.yaml:1:1: the file is 10.0 MiB, larger than the 1.0 MiB limit for a manifest file
        hint: split the resources over several files under infra/, or check that this is the file you meant
        error: infra/bomb.yaml:6:8: invalid YAML: too many anchors, aliases or merge keys
        hint: anchors (`&a`) and aliases (`*a`) expand to too much data; write the values out
        error: infra/deep.yaml:33:65: invalid YAML: nesting is deeper than 32 levels
        hint: manifests nest a few levels at most; check the indentation
        error: infra/flow.yaml:1:35: invalid YAML: nesting is deeper than 32 levels
        hint: manifests nest a few levels at most; check the indentation
        error: infra/many.yaml:1:399999: invalid YAML: the file holds more than 200000 values
        hint: split the resources over several files under infra/
        ",
    );
    assert_eq!(actual.trim_end(), expected.trim_end());
}

#[test]
fn anchors_and_merge_keys_work() {
    let infra = "\
r2_buckets:
  a: &bucket
    name: a-${env}
    location_hint: weur
  b:
    <<: *bucket
    name: b-${env}
";
    check(
        &[("infra/a.yaml", infra), ("environments/dev.yaml", "{}\n")],
        "dev",
        r#"
        ok dev FromEnvironment
        r2_buckets.a name="a-dev" location_hint=Some(Weur) storage_class=None jurisdiction=None protect=false
        r2_buckets.b name="b-dev" location_hint=Some(Weur) storage_class=None jurisdiction=None protect=false
        "#,
    );
}

#[test]
fn multiple_documents() {
    check(
        &[("infra/a.yaml", "kv_namespaces: {}\n---\nd1_databases: {}\n"), ("environments/dev.yaml", "{}\n")],
        "dev",
        "
        error: infra/a.yaml:2:1: invalid YAML: the file holds more than one YAML document
        hint: a manifest file is one document: remove the `---` separator or move the rest to another file
        ",
    );
}

#[test]
fn render_puts_a_plain_located_line_first() {
    let project = project(&[
        (
            "infra/a.yaml",
            "kv_namespaces:\n  users:\n    titel: users\n",
        ),
        (
            "infra/b.yaml",
            "kv_namespaces:\n  users:\n    title: users\n",
        ),
        ("environments/dev.yaml", "{}\n"),
    ]);
    let diagnostics = load(project.path(), "dev").expect_err("invalid");
    assert_eq!(diagnostics.len(), 3);
    let plain = diagnostics.render(false);
    assert!(!plain.contains('\u{1b}'), "{plain}");
    let first = plain.lines().next().unwrap_or_default();
    assert_eq!(
        first,
        "error: infra/a.yaml:2:3: kv_namespaces.users.title: missing field `title` for KV namespace `users`"
    );
    assert!(
        plain.contains("\nhint: add `title: ...` under `users`\n"),
        "{plain}"
    );
    assert!(
        plain.contains(
            "error: infra/a.yaml:3:5: kv_namespaces.users.titel: unknown field `titel`\n"
        ),
        "{plain}"
    );
    assert!(plain.contains("hint: did you mean `title`?"), "{plain}");
    assert!(
        plain.contains("note: infra/a.yaml:2:3: first declared here"),
        "{plain}"
    );
    // The snippet shows the offending line.
    assert!(plain.contains("3 │     titel: users"), "{plain}");
    assert!(
        plain.ends_with("manifest check failed: 3 errors\n"),
        "{plain}"
    );
    let colored = diagnostics.render(true);
    assert!(colored.contains('\u{1b}'));
    assert!(colored.contains("infra/a.yaml:3:5: kv_namespaces.users.titel: unknown field `titel`"));
}

#[test]
fn lists_environments() {
    let project = project(&[
        ("environments/staging.yaml", "{}\n"),
        ("environments/production.yaml", "{}\n"),
        ("environments/README.md", "not a manifest"),
    ]);
    assert_eq!(
        environments(project.path()).expect("valid"),
        vec!["production", "staging"]
    );
    let bad = self::project(&[
        ("environments/Prod.yaml", "{}\n"),
        ("environments/dev.yml", "{}\n"),
    ]);
    let diagnostics = environments(bad.path()).expect_err("invalid");
    assert_eq!(
        diagnostics.to_string(),
        "error: environments/Prod.yaml: environment: invalid environment name `Prod`: the uppercase letter `P` is not allowed at the start\n\
         hint: environment names are lowercase letters, digits, `_` and `-`, not starting with `-`; for example `prod`\n\
         error: environments/dev.yml: manifest files end in `.yaml`; this `.yml` file would be ignored\n\
         hint: rename it to `dev.yaml`"
    );
}

#[test]
fn example_project_loads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    if !root.join(INFRA_DIR).is_dir() {
        return; // the example project is not there yet
    }
    for environment in environments(root).expect("example environments") {
        if let Err(diagnostics) = load(root, &environment) {
            panic!("{}", diagnostics.render(false));
        }
    }
}

#[test]
fn json_schema_matches_the_loader() {
    let schema = json_schema();
    let infra = &schema["infra"];
    let definitions = &infra["$defs"];
    for (section, definition, noun) in [
        ("kv_namespaces", "KvNamespace", "KV namespace"),
        ("d1_databases", "D1Database", "D1 database"),
        ("r2_buckets", "R2Bucket", "R2 bucket"),
    ] {
        assert!(infra["properties"][section].is_object(), "{section}");
        let required = &definitions[definition]["required"];
        let expected_required = if section == "kv_namespaces" {
            "title"
        } else {
            "name"
        };
        assert_eq!(
            required,
            &serde_json::json!([expected_required]),
            "{section}"
        );
        let mut in_schema: Vec<String> = definitions[definition]["properties"]
            .as_object()
            .expect(definition)
            .keys()
            .cloned()
            .collect();
        in_schema.sort();
        // The loader lists its fields in the hint for an unknown one.
        let project = project(&[
            ("infra/a.yaml", &format!("{section}:\n  x:\n    zzz: 1\n")),
            ("environments/dev.yaml", "{}\n"),
        ]);
        let diagnostics = load(project.path(), "dev").expect_err("unknown field");
        let hint = diagnostics
            .iter()
            .find(|d| d.message == "unknown field `zzz`")
            .and_then(|d| d.hint.clone())
            .expect("hint");
        let listed = hint.split(&format!("{noun} fields: ")).nth(1).expect(&hint);
        let mut in_loader: Vec<String> = listed
            .split(", ")
            .map(|f| f.trim_matches('`').to_string())
            .collect();
        in_loader.sort();
        assert_eq!(in_schema, in_loader, "{section}");
    }
    let environment = schema["environment"]["properties"]
        .as_object()
        .expect("environment");
    let mut fields: Vec<&String> = environment.keys().collect();
    fields.sort();
    assert_eq!(fields, ["account", "account_id", "overrides", "vars"]);
    assert!(schema["environment"].get("required").is_none());
}

#[test]
fn a_broken_infra_file_does_not_make_overrides_undeclared() {
    check(
        &[
            ("infra/a.yaml", "r2_buckets:\n  assets:\n    name: [oops\n"),
            ("environments/dev.yaml", "overrides:\n  r2_buckets.assets:\n    name: x\n"),
        ],
        "dev",
        "
        error: infra/a.yaml:3:11: invalid YAML: unclosed bracket '['
        hint: fix the YAML syntax here; values holding `: `, ` #` or starting with `{`, `[`, `*`, `&`, `!`, `%`, `@` need quotes
        ",
    );
}

#[test]
fn thousands_of_problems_render_quickly() {
    let fields: String = (0..20_000).map(|i| format!("    zz{i}: x\n")).collect();
    let infra = format!("kv_namespaces:\n  users:\n    title: users\n{fields}");
    let project = project(&[("infra/a.yaml", &infra), ("environments/dev.yaml", "{}\n")]);
    let started = std::time::Instant::now();
    let diagnostics = load(project.path(), "dev").expect_err("unknown fields");
    assert_eq!(diagnostics.len(), 20_000);
    let rendered = diagnostics.render(false);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(
        rendered
            .lines()
            .filter(|line| line.starts_with("error: "))
            .count(),
        20_000
    );
    assert!(rendered.ends_with("manifest check failed: 20000 errors\n"));
}

#[test]
fn unreadable_vars_do_not_make_every_use_undefined() {
    check(
        &[
            ("infra/a.yaml", "kv_namespaces:\n  users:\n    title: users-${suffix}\n"),
            ("environments/dev.yaml", "vars: [suffix]\n"),
        ],
        "dev",
        "
        error: environments/dev.yaml:1:7: vars: expected a mapping of variable names to strings, found a sequence
        hint: write one `name: value` per line under `vars:`
        ",
    );
}
