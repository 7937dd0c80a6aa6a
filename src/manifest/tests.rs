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
    compare(&actual, expected);
}

/// [`check`] with [`LoadOptions`]: `local`, and environment variables.
#[track_caller]
fn check_with(
    files: &[(&str, &str)],
    environment: &str,
    local: bool,
    vars: &[(&str, &str)],
    expected: &str,
) {
    let project = project(files);
    let actual = summary(load_in(project.path(), environment, local, vars));
    compare(&actual, expected);
}

fn load_in(
    root: &Path,
    environment: &str,
    local: bool,
    vars: &[(&str, &str)],
) -> Result<DesiredState, Diagnostics> {
    let env_var = |name: &str| {
        vars.iter()
            .find(|(key, _)| *key == name)
            .map(|(_, value)| value.to_string())
    };
    load_with(
        root,
        environment,
        &LoadOptions {
            local,
            env_var: &env_var,
            secrets_optional: false,
            builder: None,
        },
    )
}

#[track_caller]
fn compare(actual: &str, expected: &str) {
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
            if let Some(zone) = &state.zone {
                let _ = writeln!(out, "zone {} {:?}", zone.name, zone.id);
            }
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
                for migration in &d1.spec.migrations {
                    let _ = writeln!(
                        out,
                        "  migration {} {} {} bytes={}",
                        migration.name,
                        migration.path,
                        migration.sha256,
                        migration.sql.len()
                    );
                }
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
            for (key, worker) in &state.workers {
                let spec = &worker.spec;
                let _ = writeln!(
                    out,
                    "workers.{key} name={:?} main={} date={} flags={:?} protect={}",
                    spec.name,
                    spec.main_module,
                    spec.compatibility_date,
                    spec.compatibility_flags,
                    worker.protect
                );
                let modules: Vec<String> = spec
                    .modules
                    .iter()
                    .map(|m| format!("{}:{:?}:{}", m.name, m.kind, m.content.len()))
                    .collect();
                let _ = writeln!(out, "  modules {}", modules.join(" "));
                for (name, binding) in &spec.bindings {
                    let _ = writeln!(out, "  binding {name} {binding:?}");
                }
                for (name, secret) in &spec.secrets {
                    let _ = writeln!(
                        out,
                        "  secret {name} {:?} {:?}",
                        secret.source,
                        secret.value.expose()
                    );
                }
                for (what, items) in [
                    ("crons", &spec.crons),
                    ("routes", &spec.routes),
                    ("custom_domains", &spec.custom_domains),
                ] {
                    if !items.is_empty() {
                        let _ = writeln!(out, "  {what} {items:?}");
                    }
                }
                let _ = writeln!(out, "  rollout {:?}", spec.rollout);
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
        hint: the `[` marked below is never closed: end it with `]`, or quote the value if the `[` is text
        note: infra/a.yaml:3:12: this `[` is never closed
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
        hint: did you mean `account_id`? environment fields: `account_id`, `account`, `zone`, `ledger`, `vars`, `overrides`
        error: infra/a.yaml:1:1: kv_namespace: unknown section `kv_namespace`
        hint: did you mean `kv_namespaces`? sections: `kv_namespaces`, `d1_databases`, `r2_buckets`, `queues`, `dns_records`, `pages_projects`, `workers`
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
        error: environments/dev.yaml:3:10: vars.other: `${suffix}` is another variable: a variable's value may use `${env}` only
        hint: variables do not refer to each other: write the value of `suffix` out here, or use `${suffix}` in infra/ instead
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
                "overrides:\n  r2_buckets.asets:\n    name: x\n  r2_buckets:\n    assets: {}\n  pages.site: {}\n  r2_buckets.assets: nope\n  r2_buckets.assets.name: x\n",
            ),
        ],
        "dev",
        "
        error: environments/dev.yaml:2:3: overrides.r2_buckets.asets: override for `r2_buckets.asets`, which is not declared in infra/
        hint: did you mean `r2_buckets.assets`?
        error: environments/dev.yaml:4:3: overrides.r2_buckets: `r2_buckets` is a section, not an address
        hint: override keys are addresses: write `r2_buckets.<key>:` (e.g. `r2_buckets.assets`)
        error: environments/dev.yaml:6:3: overrides.pages.site: `pages.site` is not an address
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
fn hostile_files_are_refused_with_a_location() {
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
    // Each budget refuses its file: the errors below are the proof that no
    // file was read past its cap or expanded past its limits.
    let actual = summary(load(project.path(), "dev"));
    let expected = dedent(
        "
        error: infra/big.yaml:1:1: the file is 10.0 MiB, larger than the 1.0 MiB limit for a manifest file
        hint: split the resources over several files under infra/, or check that this is the file you meant
        error: infra/bomb.yaml:5:11: invalid YAML: too many anchors, aliases or merge keys
        hint: anchors (`&a`) and aliases (`*a`) expand to too much data; write the values out
        error: infra/deep.yaml:33:65: invalid YAML: nesting is deeper than 32 levels
        hint: manifests nest a few levels at most; check the indentation
        error: infra/flow.yaml:1:35: invalid YAML: nesting is deeper than 32 levels
        hint: manifests nest a few levels at most; check the indentation
        error: infra/many.yaml:1:99999: invalid YAML: the file holds more than 50000 values
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
    // The example's worker is built (npm and esbuild); its cache is
    // this test's own.
    let cache = tempfile::tempdir().expect("cache dir");
    let builder = crate::build::Builder::new(cache.path().to_path_buf());
    // Secrets come from the CI's environment; any value stands in here.
    let env_var = |_: &str| Some("example-secret-value".to_string());
    for environment in environments(root).expect("example environments") {
        for local in [false, true] {
            let options = LoadOptions {
                local,
                env_var: &env_var,
                secrets_optional: false,
                builder: Some(&builder),
            };
            if let Err(diagnostics) = load_with(root, &environment, &options) {
                panic!("{}", diagnostics.render(false));
            }
        }
        // Locally, the documented defaults stand in for missing secrets.
        let local = LoadOptions {
            local: true,
            env_var: &|_: &str| None,
            secrets_optional: false,
            builder: Some(&builder),
        };
        match load_with(root, &environment, &local) {
            Ok(state) => {
                let api = &state.workers["api"];
                let names: Vec<&str> = api.spec.modules.iter().map(|m| m.name.as_str()).collect();
                assert_eq!(
                    names,
                    ["index.js", "index.js.map"],
                    "the bundle and its map"
                );
            }
            Err(diagnostics) => panic!("{}", diagnostics.render(false)),
        }
    }
    // Built once, then reused for every other load.
    let built = builder
        .events()
        .iter()
        .filter(|e| matches!(e.outcome, crate::build::Outcome::Built { .. }))
        .count();
    assert_eq!(built, 1);
}

#[test]
fn json_schema_matches_the_loader() {
    let schema = json_schema();
    let infra = &schema["infra"];
    let definitions = &infra["$defs"];
    for (section, definition, noun, required) in [
        (
            "kv_namespaces",
            "KvNamespace",
            "KV namespace",
            &["title"][..],
        ),
        ("d1_databases", "D1Database", "D1 database", &["name"][..]),
        ("r2_buckets", "R2Bucket", "R2 bucket", &["name"][..]),
        ("queues", "Queue", "queue", &["name"][..]),
        (
            "workers",
            "Worker",
            "Worker",
            &["compatibility_date", "main", "name"][..],
        ),
    ] {
        assert!(infra["properties"][section].is_object(), "{section}");
        let mut in_schema_required: Vec<&str> = definitions[definition]["required"]
            .as_array()
            .expect("required")
            .iter()
            .filter_map(|v| v.as_str())
            .collect();
        in_schema_required.sort();
        assert_eq!(in_schema_required, required, "{section}");
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
    assert_eq!(
        fields,
        [
            "account",
            "account_id",
            "ledger",
            "overrides",
            "vars",
            "zone"
        ]
    );
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
fn thousands_of_problems_render_with_few_snippets() {
    let fields: String = (0..20_000).map(|i| format!("    zz{i}: x\n")).collect();
    let infra = format!("kv_namespaces:\n  users:\n    title: users\n{fields}");
    let project = project(&[("infra/a.yaml", &infra), ("environments/dev.yaml", "{}\n")]);
    let diagnostics = load(project.path(), "dev").expect_err("unknown fields");
    assert_eq!(diagnostics.len(), 20_000);
    let rendered = diagnostics.render(false);
    // A snippet costs a scan of its file: only the first 50 get one.
    assert_eq!(rendered.matches("╭─[").count(), 50, "snippets drawn");
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

/// The module files of the worker fixtures.
const WORKER_SOURCES: [(&str, &str); 5] = [
    ("workers/api/src/index.js", "export default {};\n"),
    ("workers/api/src/lib/util.js", "export const x = 1;\n"),
    ("workers/api/src/lib/page.html", "<p>hi</p>\n"),
    ("workers/auth/index.mjs", "export default {}\n"),
    ("secrets/api-key.txt", "file-secret-value\n"),
];

const WORKERS: &str = "\
kv_namespaces:
  users:
    title: users-${env}
d1_databases:
  main:
    name: main-${env}
r2_buckets:
  assets:
    name: assets-${env}
workers:
  api:
    name: api-${env}
    main: workers/api/src/index.js
    modules: [\"workers/api/src/lib/*\", \"workers/api/src/*.js\"]
    compatibility_date: \"2025-01-15\"
    compatibility_flags: [nodejs_compat, nodejs_compat]
    bindings:
      USERS_KV: {kv_namespace: users}
      DB: {d1: main}
      ASSETS: {r2_bucket: assets}
      AUTH: {service: auth}
      CHAT_ROOM: {durable_object: ChatRoom}
      API_VERSION: {text: \"v1-${env}\"}
      FEATURES: {json: {beta: true, limit: 10, ratio: 0.5, tags: [a, \"${env}\"], none: null}}
    secrets:
      JWT_SECRET: {from_env: KK_JWT_SECRET}
      API_KEY: {from_file: secrets/api-key.txt, local_default: dev-only}
    crons: [\"0 * * * *\", \"*/30  9-17 * * mon-fri\"]
    routes: [\"api-${env}.example.com/*\", \"*.example.com/api/*\"]
    custom_domains: [\"api-${env}.example.com\"]
    rollout: {strategy: gradual, steps: [10, 50, 100], wait: 5m, health_url: \"https://api-${env}.example.com/health\"}
    protect: true
  auth:
    name: auth-${env}
    main: workers/auth/index.mjs
    compatibility_date: \"2024-09-23\"
";

const ZONE_ENV: &str = "zone: {name: example.com, id: 0123456789abcdef0123456789abcdef}\n";

/// The fixture project plus `extra` files (which replace fixture files of
/// the same path).
fn worker_files<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut files: Vec<(&str, &str)> = WORKER_SOURCES
        .iter()
        .copied()
        .filter(|(path, _)| !extra.iter().any(|(other, _)| other == path))
        .collect();
    files.extend_from_slice(extra);
    files
}

#[test]
fn loads_workers_with_their_modules_and_secrets() {
    check_with(
        &worker_files(&[
            ("infra/workers.yaml", WORKERS),
            ("environments/staging.yaml", ZONE_ENV),
        ]),
        "staging",
        false,
        &[("KK_JWT_SECRET", "env-secret-value")],
        r#"
        ok staging FromEnvironment
        zone example.com Some("0123456789abcdef0123456789abcdef")
        kv_namespaces.users title="users-staging" protect=false
        d1_databases.main name="main-staging" location_hint=None jurisdiction=None protect=false
        r2_buckets.assets name="assets-staging" location_hint=None storage_class=None jurisdiction=None protect=false
        workers.api name="api-staging" main=index.js date=2025-01-15 flags=["nodejs_compat"] protect=true
          modules index.js:EsModule:19 lib/page.html:Text:10 lib/util.js:EsModule:20
          binding API_VERSION Text("v1-staging")
          binding ASSETS R2Bucket("assets")
          binding AUTH Service("auth")
          binding CHAT_ROOM DurableObject("ChatRoom")
          binding DB D1("main")
          binding FEATURES Json(Object {"beta": Bool(true), "limit": Number(10), "ratio": Number(0.5), "tags": Array [String("a"), String("staging")], "none": Null})
          binding USERS_KV KvNamespace("users")
          secret API_KEY FromFile("secrets/api-key.txt") "file-secret-value"
          secret JWT_SECRET FromEnv("KK_JWT_SECRET") "env-secret-value"
          crons ["*/30 9-17 * * mon-fri", "0 * * * *"]
          routes ["*.example.com/api/*", "api-staging.example.com/*"]
          custom_domains ["api-staging.example.com"]
          rollout Gradual { steps: [10, 50, 100], wait_seconds: 300, health_url: Some("https://api-staging.example.com/health") }
        workers.auth name="auth-staging" main=index.mjs date=2024-09-23 flags=[] protect=false
          modules index.mjs:EsModule:18
          rollout Immediate
        "#,
    );
}

#[test]
fn zone_forms() {
    let infra = (
        "infra/a.yaml",
        "kv_namespaces:\n  users:\n    title: users\n",
    );
    check(
        &[infra, ("environments/dev.yaml", "zone: example.com\n")],
        "dev",
        r#"
        ok dev FromEnvironment
        zone example.com None
        kv_namespaces.users title="users" protect=false
        "#,
    );
    check(
        &[
            infra,
            (
                "environments/dev.yaml",
                "zone: Example.com\n",
            ),
        ],
        "dev",
        "
        error: environments/dev.yaml:1:7: zone: invalid zone name `Example.com`: the uppercase letter `E` is not allowed
        hint: hostnames are lowercase: write `example.com`
        ",
    );
    check(
        &[
            infra,
            (
                "environments/dev.yaml",
                "zone: {name: localhost, id: 0123, ttl: 1}\n",
            ),
        ],
        "dev",
        "
        error: environments/dev.yaml:1:14: zone.name: invalid zone name `localhost`: a zone is a domain such as `example.com`
        hint: write the zone's domain name as shown in the Cloudflare dashboard
        error: environments/dev.yaml:1:29: zone.id: invalid zone id `0123`: it has 4 characters, not 32
        hint: the zone id is the 32-character hex string under API on the zone's Overview page
        error: environments/dev.yaml:1:35: zone.ttl: unknown field `ttl`
        hint: zone fields: `name`, `id`
        ",
    );
}

/// One worker named `api` (main `workers/api/src/index.js`) with `fields`
/// appended, in `infra/w.yaml`, with the storage of [`WORKERS`].
fn one_worker(fields: &str) -> String {
    let mut out = String::from(
        "kv_namespaces:\n  users:\n    title: users\nd1_databases:\n  main:\n    name: main\nworkers:\n  api:\n    name: api\n    main: workers/api/src/index.js\n    compatibility_date: \"2025-01-15\"\n",
    );
    for line in fields.lines() {
        out.push_str("    ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[test]
fn worker_fields_are_checked() {
    let infra = "\
workers:
  api:
    name: Klear_API
    main: workers/api/src/index.ts
    modules: [workers/api/src/nothing/*.js, \"workers/api/[x\"]
    compatibility_date: \"2025-02-30\"
    compatibility_flags: [nodejs-compat]
    extra: 1
  other:
    name: other
    main: workers/api/missing.js
    compatibility_date: 2025-1-5
";
    check(
        &worker_files(&[("infra/w.yaml", infra), ("environments/dev.yaml", "{}\n")]),
        "dev",
        "
        error: infra/w.yaml:3:11: workers.api.name: invalid Worker name `Klear_API`: the uppercase letter `K` is not allowed at the start
        hint: Worker names are lowercase letters, digits, `-` and `_`, not starting with `-`; for example `klear_api`
        error: infra/w.yaml:4:11: workers.api.main: the main module `workers/api/src/index.ts` is not JavaScript (`.js` or `.mjs`)
        hint: the main module is an ES module: build TypeScript or other sources first (e.g. with esbuild) and point `main` at the output
        error: infra/w.yaml:5:15: workers.api.modules[0]: the glob `workers/api/src/nothing/*.js` matches no file
        hint: globs are relative to the project root; `*` stays in one directory, `**/` crosses directories; build the files first or remove the glob
        error: infra/w.yaml:5:45: workers.api.modules[1]: invalid glob `workers/api/[x`: invalid range pattern (at character 13)
        hint: `*` matches within a directory, `**` across directories, `?` one character, `[abc]` one of a set
        error: infra/w.yaml:6:25: workers.api.compatibility_date: invalid compatibility date `2025-02-30`: there is no such day
        hint: write the date as `YYYY-MM-DD`, e.g. `2025-01-15`
        error: infra/w.yaml:7:33: workers.api.compatibility_flags[0]: invalid compatibility flag `nodejs-compat`: `-` is not allowed
        hint: compatibility flags are lowercase letters, digits and `_`, e.g. `nodejs_compat`
        error: infra/w.yaml:8:5: workers.api.extra: unknown field `extra`
        hint: Worker fields: `protect`, `name`, `main`, `modules`, `build`, `compatibility_date`, `compatibility_flags`, `bindings`, `secrets`, `crons`, `routes`, `custom_domains`, `rollout`, `consumers`
        error: infra/w.yaml:11:11: workers.other.main: the main module `workers/api/missing.js` does not exist
        hint: check the path (relative to the project root) and that the file is committed or built before flareops runs
        error: infra/w.yaml:12:25: workers.other.compatibility_date: invalid compatibility date \"2025-1-5\": expected `YYYY-MM-DD`
        hint: write the date as `YYYY-MM-DD`, e.g. `2025-01-15`
        ",
    );
}

#[test]
fn modules_must_be_known_and_under_main() {
    let infra = one_worker("modules: [\"workers/api/**/*\", \"workers/auth/*.mjs\"]");
    check(
        &worker_files(&[
            ("infra/w.yaml", &infra),
            ("workers/api/src/notes.rst", "x"),
            ("environments/dev.yaml", "{}\n"),
        ]),
        "dev",
        "
        error: infra/w.yaml:12:15: workers.api.modules[0]: `workers/api/src/notes.rst` (matched by `workers/api/**/*`) is not a known kind of module
        hint: modules end in .js, .mjs (ES modules), .cjs (CommonJS), .wasm, .bin (data), or .txt, .html, .htm, .md, .css, .json, .svg, .csv (text); narrow the glob
        error: infra/w.yaml:12:35: workers.api.modules[1]: `workers/auth/index.mjs` (matched by `workers/auth/*.mjs`) is outside the main module's directory `workers/api/src`
        hint: module names are paths relative to the main module's directory: keep the modules under it, or move `main` up
        ",
    );
}

#[test]
fn files_outside_the_project_are_refused() {
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(outside.path().join("evil.js"), "export default {}").expect("write");
    std::fs::write(outside.path().join("token"), "outside-secret-value").expect("write");
    let infra = "\
workers:
  api:
    name: api
    main: workers/api/src/link.js
    modules: [workers/api/src/lib/*.js]
    compatibility_date: \"2025-01-15\"
    secrets:
      TOKEN: {from_file: secrets/token}
      OTHER: {from_file: ../token}
  up:
    name: up
    main: ../evil.js
    compatibility_date: \"2025-01-15\"
";
    let project = project(&worker_files(&[
        ("infra/w.yaml", infra),
        ("environments/dev.yaml", "{}\n"),
    ]));
    let root = project.path();
    std::os::unix::fs::symlink(
        outside.path().join("evil.js"),
        root.join("workers/api/src/link.js"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(
        outside.path().join("evil.js"),
        root.join("workers/api/src/lib/evil.js"),
    )
    .expect("symlink");
    std::os::unix::fs::symlink(outside.path().join("token"), root.join("secrets/token"))
        .expect("symlink");
    let diagnostics = load(root, "dev").expect_err("escapes");
    compare(
        &diagnostics.to_string(),
        "
        error: infra/w.yaml:4:11: workers.api.main: the main module `workers/api/src/link.js` leaves the project root through a symlink
        hint: files that flareops reads must be inside the project: copy the file into the project instead of linking to it
        error: infra/w.yaml:5:15: workers.api.modules[0]: the module `workers/api/src/lib/evil.js` leaves the project root through a symlink
        hint: files that flareops reads must be inside the project: copy the file into the project instead of linking to it
        error: infra/w.yaml:8:26: workers.api.secrets.TOKEN.from_file: the secret file `secrets/token` leaves the project root through a symlink
        hint: files that flareops reads must be inside the project: copy the file into the project instead of linking to it
        error: infra/w.yaml:9:26: workers.api.secrets.OTHER.from_file: the secret file path `../token` uses `..`: it must stay inside the project root
        hint: paths in manifests are relative to the project root (the directory holding infra/), written with `/`, without `..`
        error: infra/w.yaml:12:11: workers.up.main: the main module path `../evil.js` uses `..`: it must stay inside the project root
        hint: paths in manifests are relative to the project root (the directory holding infra/), written with `/`, without `..`
        ",
    );
    assert!(!diagnostics.render(false).contains("outside-secret-value"));
}

#[test]
fn large_modules_are_refused() {
    let big = "x".repeat(10 * 1024 * 1024 + 1);
    let infra = one_worker("modules: [workers/api/src/lib/*.js]");
    check(
        &worker_files(&[
            ("infra/w.yaml", &infra),
            ("workers/api/src/lib/big.js", &big),
            ("environments/dev.yaml", "{}\n"),
        ]),
        "dev",
        "
        error: infra/w.yaml:12:15: workers.api.modules[0]: the module `workers/api/src/lib/big.js` is 10.0 MiB, larger than the 10 MiB limit
        hint: a whole Worker is at most 10 MB compressed (Workers Paid; 3 MB on Free): check that this is the file you meant
        ",
    );
}

#[test]
fn bindings_are_checked() {
    let infra = one_worker(
        "\
bindings:
  USERS: {kv_namespace: userz}
  DB: {d1: main, kv_namespace: users}
  EMPTY: {}
  class: {text: x}
  my-var: {text: x}
  PLAIN: v1
  R2: {r2_bucket: assets}
  SELF: {service: api}
  DO: {durable_object: chat-room}
  TEXT: {text: [a]}
  KIND: {kv: users}
secrets:
  DB: {from_env: DB_PASSWORD}",
    );
    check_with(
        &worker_files(&[("infra/w.yaml", &infra), ("environments/dev.yaml", "{}\n")]),
        "dev",
        false,
        &[("DB_PASSWORD", "pw")],
        "
        error: infra/w.yaml:13:29: workers.api.bindings.USERS.kv_namespace: `kv_namespaces.userz` is not declared: the binding points at nothing
        hint: did you mean `users`? declared KV namespaces: `users`
        error: infra/w.yaml:14:16: workers.api.bindings.DB: the binding has both `kv_namespace` and `d1`
        hint: a binding has exactly one of `kv_namespace`, `d1`, `r2_bucket`, `queue`, `service`, `durable_object`, `text`, `json`
        error: infra/w.yaml:15:7: workers.api.bindings.EMPTY: the binding has none of `kv_namespace`, `d1`, `r2_bucket`, `queue`, `service`, `durable_object`, `text`, `json`
        hint: write exactly one of them, e.g. `{kv_namespace: users}`
        error: infra/w.yaml:16:7: workers.api.bindings.class: invalid binding name `class`: it is a reserved word in JavaScript
        hint: pick another name, e.g. `CLASS`
        error: infra/w.yaml:17:7: workers.api.bindings.my-var: invalid binding name `my-var`: `-` is not allowed
        hint: binding names are JavaScript identifiers: letters, digits, `_` and `$`, not starting with a digit; for example `my_var`
        error: infra/w.yaml:18:14: workers.api.bindings.PLAIN: expected a binding such as `{kv_namespace: users}`, found the string \"v1\"
        hint: for a plain-text variable write `{text: \"...\"}`; bindings are one of `kv_namespace`, `d1`, `r2_bucket`, `queue`, `service`, `durable_object`, `text`, `json`
        error: infra/w.yaml:19:23: workers.api.bindings.R2.r2_bucket: `r2_buckets.assets` is not declared: the binding points at nothing
        hint: declare it under `r2_buckets:` in infra/ (no R2 bucket is declared)
        error: infra/w.yaml:20:23: workers.api.bindings.SELF.service: service bindings form a cycle: workers.api -> workers.api
        hint: a worker is deployed after the workers it binds to, so a cycle has no order: remove one of these service bindings
        error: infra/w.yaml:21:32: workers.api.bindings.DO.durable_object: invalid Durable Object class name `chat-room`: `-` is not allowed
        hint: Durable Object class names are JavaScript identifiers: letters, digits, `_` and `$`, not starting with a digit; for example `chat_room`
        error: infra/w.yaml:22:20: workers.api.bindings.TEXT.text: expected a string, found a sequence
        hint: write a single string here; quote it if it holds `[`, `{` or `: `
        error: infra/w.yaml:23:7: workers.api.bindings.KIND: the binding has none of `kv_namespace`, `d1`, `r2_bucket`, `queue`, `service`, `durable_object`, `text`, `json`
        hint: write exactly one of them, e.g. `{kv_namespace: users}`
        error: infra/w.yaml:23:14: workers.api.bindings.KIND.kv: unknown field `kv`
        hint: binding fields: `kv_namespace`, `d1`, `r2_bucket`, `queue`, `service`, `durable_object`, `text`, `json`
        error: infra/w.yaml:25:7: workers.api.secrets.DB: `DB` is both a binding and a secret
        hint: bindings and secrets share one namespace (`env.NAME` in the worker): rename one of them
        note: infra/w.yaml:14:7: the binding is declared here
        ",
    );
}

#[test]
fn secrets_come_from_the_environment_files_or_local_defaults() {
    let infra = one_worker(
        "\
secrets:
  JWT: {from_env: KK_JWT}
  KEY: {from_file: secrets/api-key.txt}
  DEV: {from_env: KK_DEV, local_default: \"dev-$${x}\"}",
    );
    let files = worker_files(&[("infra/w.yaml", &infra), ("environments/dev.yaml", "{}\n")]);
    check_with(
        &files,
        "dev",
        true,
        &[("KK_JWT", "jwt-value")],
        r#"
        ok dev FromEnvironment
        kv_namespaces.users title="users" protect=false
        d1_databases.main name="main" location_hint=None jurisdiction=None protect=false
        workers.api name="api" main=index.js date=2025-01-15 flags=[] protect=false
          modules index.js:EsModule:19
          secret DEV LocalDefault "dev-$${x}"
          secret JWT FromEnv("KK_JWT") "jwt-value"
          secret KEY FromFile("secrets/api-key.txt") "file-secret-value"
          rollout Immediate
        "#,
    );
    // `account: local` allows local defaults without `--local`; a real
    // source wins over the default.
    let local = worker_files(&[
        ("infra/w.yaml", &infra),
        ("environments/dev.yaml", "account: local\n"),
    ]);
    let state = load_in(
        project(&local).path(),
        "dev",
        false,
        &[("KK_JWT", "jwt-value"), ("KK_DEV", "real-dev-value")],
    )
    .expect("valid");
    let secrets = &state.workers["api"].spec.secrets;
    assert_eq!(
        secrets["DEV"].source,
        crate::model::SecretSource::FromEnv("KK_DEV".into())
    );
    assert_eq!(secrets["DEV"].value.expose(), "real-dev-value");
    // Not local: no default; an empty variable counts as missing.
    check_with(
        &files,
        "dev",
        false,
        &[("KK_JWT", "")],
        "
        error: infra/w.yaml:13:23: workers.api.secrets.JWT.from_env: the environment variable `KK_JWT` (secret `JWT`) is empty
        hint: set `KK_JWT` in the environment flareops runs in (in CI, from the CI's secret store)
        error: infra/w.yaml:15:23: workers.api.secrets.DEV.from_env: the environment variable `KK_DEV` (secret `DEV`) is not set
        hint: set `KK_DEV` in the environment flareops runs in (in CI, from the CI's secret store)
        ",
    );
    check_with(
        &worker_files(&[("infra/w.yaml", &infra), ("environments/dev.yaml", "{}\n"), ("secrets/api-key.txt", "")]),
        "dev",
        true,
        &[],
        "
        error: infra/w.yaml:13:23: workers.api.secrets.JWT.from_env: the environment variable `KK_JWT` (secret `JWT`) is not set
        hint: set `KK_JWT` in the environment flareops runs in (in CI, from the CI's secret store); or add `local_default: ...` under `JWT` for local runs
        error: infra/w.yaml:14:24: workers.api.secrets.KEY.from_file: the secret file `secrets/api-key.txt` (secret `KEY`) is empty
        hint: write the secret's value into the file; or add `local_default: ...` under `KEY` for local runs
        ",
    );
}

#[test]
fn secret_values_never_appear_in_diagnostics() {
    let infra = one_worker(
        "\
compatibility_flags: [\"${bad}\"]
secrets:
  JWT: {from_env: KK_JWT}
  KEY: {from_file: secrets/api-key.txt}
  BIN: {from_file: secrets/binary}
  Bad-Name: {from_env: KK_JWT}
  PASTED: \"pasted-secret\"
  WRONG: {from_env: \"lower-case\", from_file: secrets/api-key.txt}",
    );
    let project = project_bytes(&[
        ("infra/w.yaml", infra.as_bytes()),
        ("environments/dev.yaml", b"vars:\n  bad: Bad\n"),
        ("workers/api/src/index.js", b"export default {};\n"),
        ("secrets/api-key.txt", b"file-canary-4242\n"),
        ("secrets/binary", b"bin-canary-\xff\xfe"),
    ]);
    let diagnostics = load_in(
        project.path(),
        "dev",
        false,
        &[("KK_JWT", "env-canary-1717")],
    )
    .expect_err("invalid");
    let rendered = format!("{}\n{diagnostics}", diagnostics.render(false));
    for canary in ["env-canary", "file-canary", "bin-canary", "pasted-secret"] {
        // The pasted value is in the manifest, so its line may be shown in a
        // snippet, but never in a message or hint.
        let in_messages = diagnostics.iter().any(|d| {
            d.message.contains(canary) || d.hint.as_deref().unwrap_or("").contains(canary)
        });
        assert!(!in_messages, "{canary} in a message:\n{rendered}");
        if canary != "pasted-secret" {
            assert!(!rendered.contains(canary), "{canary} rendered:\n{rendered}");
        }
    }
    compare(
        &diagnostics.to_string(),
        "
        error: environments/dev.yaml:2:8: workers.api.compatibility_flags[0]: invalid compatibility flag `Bad`: the uppercase letter `B` is not allowed (from `${bad}`)
        hint: compatibility flags are lowercase letters, digits and `_`, e.g. `nodejs_compat`
        note: infra/w.yaml:12:27: the value is written here
        error: infra/w.yaml:16:24: workers.api.secrets.BIN.from_file: the secret file `secrets/binary` (secret `BIN`) is not valid UTF-8
        hint: secret values are text: save the file as UTF-8
        error: infra/w.yaml:17:7: workers.api.secrets.Bad-Name: invalid secret name `Bad-Name`: `-` is not allowed
        hint: secret names are JavaScript identifiers: letters, digits, `_` and `$`, not starting with a digit; for example `Bad_Name`
        error: infra/w.yaml:18:15: workers.api.secrets.PASTED: expected a secret source such as `{from_env: MY_SECRET}`, found a string
        hint: secret values never go in manifests: write `{from_env: VARIABLE}` or `{from_file: path}` (plus `local_default:` for local runs)
        error: infra/w.yaml:19:50: workers.api.secrets.WRONG: the secret has both `from_env` and `from_file`
        hint: a secret has exactly one of `from_env`, `from_file`
        ",
    );
}

#[test]
fn crons_are_checked_in_cloudflare_syntax() {
    let infra = one_worker(
        "crons: [\"0 * * * *\", \"0 0 * * 0\", \"*/5 * * *\", \"0 9 * * MON#2\", \"0 0 31 2 *\"]",
    );
    check(
        &worker_files(&[("infra/w.yaml", &infra), ("environments/dev.yaml", "{}\n")]),
        "dev",
        "
        error: infra/w.yaml:12:35: workers.api.crons[1]: invalid cron expression \"0 0 * * 0\": `0` is out of range for the day of the week
        hint: days of the week are 1-7 with 1 = Sunday (not 0-6 as in Unix cron): write `1` or `SUN`
        error: infra/w.yaml:12:39: workers.api.crons[2]: invalid cron expression \"*/5 * * *\": it has 4 fields, not 5
        hint: a cron expression is five fields: minute hour day-of-month month day-of-week, e.g. `0 * * * *` (every hour)
        error: infra/w.yaml:12:74: workers.api.crons[4]: the cron expression \"0 0 31 2 *\" never runs: none of its months has that day
        hint: check the day of the month and the month (February has at most 29 days; April, June, September and November 30)
        ",
    );
}

#[test]
fn routes_and_custom_domains_are_in_the_zone() {
    let infra = "\
workers:
  api:
    name: api
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    routes:
      - api.example.com/*
      - \"*example.com/*\"
      - https://api.example.com/*
      - api.example.org/*
      - api.example.com
      - api.example.com/*.jpg
      - api.example.com/?q=*
      - a*.example.com/*
      - API.example.com/*
    custom_domains: [example.com, \"*.example.com\", api.example.com/v1, notexample.com]
  web:
    name: web
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    routes: [api.example.com/*]
    custom_domains: [example.com]
";
    check(
        &worker_files(&[("infra/w.yaml", infra), ("environments/dev.yaml", "zone: example.com\n")]),
        "dev",
        "
        error: infra/w.yaml:9:9: workers.api.routes[2]: the route `https://api.example.com/*` has a scheme
        hint: write it without `https://`: a route without a scheme matches both http and https
        error: infra/w.yaml:10:9: workers.api.routes[3]: the route `api.example.org/*` is not in the zone `example.com`
        hint: routes attach to the environment's zone: use a host that is `example.com` or ends in `.example.com`, or change `zone:` in the environment file
        error: infra/w.yaml:11:9: workers.api.routes[4]: the route `api.example.com` has no path
        hint: add the path: `api.example.com/*` for every path, `api.example.com/` for the root only
        error: infra/w.yaml:12:25: workers.api.routes[5]: invalid route `api.example.com/*.jpg`: `*` may only end the path (Cloudflare has no infix wildcards)
        hint: a route is `host/path`: the host may start with `*` or `*.`, the path may end with `*`, e.g. `api.example.com/*`
        error: infra/w.yaml:13:25: workers.api.routes[6]: invalid route `api.example.com/?q=*`: a route cannot hold a query string; end the path with `*` to match any query
        hint: a route is `host/path`: the host may start with `*` or `*.`, the path may end with `*`, e.g. `api.example.com/*`
        error: infra/w.yaml:14:10: workers.api.routes[7]: invalid route `a*.example.com/*`: `*` may only start the host
        hint: a route is `host/path`: the host may start with `*` or `*.`, the path may end with `*`, e.g. `api.example.com/*`
        error: infra/w.yaml:15:9: workers.api.routes[8]: invalid route host `API.example.com`: the uppercase letter `A` is not allowed
        hint: hostnames are lowercase: write `api.example.com`
        error: infra/w.yaml:16:36: workers.api.custom_domains[1]: the custom domain `*.example.com` is a wildcard
        hint: custom domains are single hostnames; use a route (`*.example.com/*`) for a wildcard
        error: infra/w.yaml:16:67: workers.api.custom_domains[2]: the custom domain `api.example.com/v1` has a path
        hint: a custom domain takes the whole hostname; to run the worker on a path only, use `routes:`
        error: infra/w.yaml:16:72: workers.api.custom_domains[3]: the custom domain `notexample.com` is not in the zone `example.com`
        hint: use a hostname that is `example.com` or ends in `.example.com`, or change `zone:` in the environment file
        error: infra/w.yaml:21:14: workers.web.routes: the route `api.example.com/*` is also declared by `workers.api`
        hint: a route sends requests to one worker: keep it in one of them
        note: infra/w.yaml:7:9: `workers.api` declares it here
        error: infra/w.yaml:22:22: workers.web.custom_domains: the custom domain `example.com` is also declared by `workers.api`
        hint: a custom domain sends requests to one worker: keep it in one of them
        note: infra/w.yaml:16:22: `workers.api` declares it here
        ",
    );
    let no_zone = one_worker("routes: [api.example.com/*]\ncustom_domains: [api.example.com]");
    check(
        &worker_files(&[("infra/w.yaml", &no_zone), ("environments/dev.yaml", "{}\n")]),
        "dev",
        "
        error: infra/w.yaml:12:14: workers.api.routes[0]: `routes` need the environment's zone, and the environment has no `zone:`
        hint: add `zone: example.com` (or `zone: {name: example.com, id: <zone id>}`) to the environment file
        error: infra/w.yaml:13:22: workers.api.custom_domains[0]: `custom_domains` need the environment's zone, and the environment has no `zone:`
        hint: add `zone: example.com` (or `zone: {name: example.com, id: <zone id>}`) to the environment file
        ",
    );
}

/// A rollout's `wait` is read by the shared duration grammar, with a unit,
/// in whole seconds.
#[test]
fn rollout_waits_need_a_unit_and_whole_seconds() {
    let rollout = |key: &str, wait: &str| {
        format!(
            "  {key}:\n    name: {key}\n    main: workers/api/src/index.js\n    compatibility_date: \"2025-01-15\"\n    rollout: {{strategy: gradual, steps: [50, 100], wait: {wait}}}\n"
        )
    };
    let infra = format!(
        "workers:\n{}{}{}{}",
        rollout("a", "30"),
        rollout("b", "1s500ms"),
        rollout("c", "30m1h"),
        rollout("d", "1h30m"),
    );
    check(
        &worker_files(&[("infra/w.yaml", &infra), ("environments/dev.yaml", "{}\n")]),
        "dev",
        "
        error: infra/w.yaml:6:58: workers.a.rollout.wait: invalid duration \"30\"
        hint: write a number with a unit: `30s`, `5m`, `1h` (or `1h30m`)
        error: infra/w.yaml:11:58: workers.b.rollout.wait: the wait \"1s500ms\" is not a whole number of seconds
        hint: a rollout waits whole seconds: write `30s`, `5m`, `1h` (or `1h30m`)
        error: infra/w.yaml:16:58: workers.c.rollout.wait: invalid duration \"30m1h\"
        hint: write a number with a unit: `30s`, `5m`, `1h` (or `1h30m`)
        ",
    );
}

#[test]
fn rollouts_are_checked() {
    let infra = "\
workers:
  a:
    name: a
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    rollout: {strategy: gradual, steps: [10, 10, 100], wait: 5 minutes, health_url: \"ftp://x\"}
  b:
    name: b
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    rollout: {strategy: gradual, steps: [0, 50]}
  c:
    name: c
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    rollout: {strategy: immediate, wait: 5m}
  d:
    name: d
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    rollout: {strategy: canary, steps: [50, 90]}
  e:
    name: e
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    rollout: {steps: [100], wait: 1m, health_url: \"https://e.example.com/health\"}
  f:
    name: f
    main: workers/api/src/index.js
    compatibility_date: \"2025-01-15\"
    rollout: {strategy: gradual, steps: [25, 100], wait: 1h30m}
";
    check(
        &worker_files(&[("infra/w.yaml", infra), ("environments/dev.yaml", "{}\n")]),
        "dev",
        "
        error: infra/w.yaml:6:46: workers.a.rollout.steps[1]: step 10% does not increase on the step before it (10%)
        hint: steps are increasing percentages of traffic ending at 100, e.g. `[10, 50, 100]`
        error: infra/w.yaml:6:62: workers.a.rollout.wait: invalid duration \"5 minutes\"
        hint: write a number with a unit: `30s`, `5m`, `1h` (or `1h30m`)
        error: infra/w.yaml:6:85: workers.a.rollout.health_url: the health URL's scheme is `ftp`, not http or https
        hint: write an absolute http(s) URL that answers 2xx when the new version is healthy, e.g. `https://api.example.com/health`
        error: infra/w.yaml:11:14: workers.b.rollout.wait: missing field `wait` for a gradual rollout
        hint: add `wait: 5m`
        error: infra/w.yaml:11:42: workers.b.rollout.steps[0]: expected a percentage from 1 to 100, found the integer `0`
        hint: steps are increasing percentages of traffic ending at 100, e.g. `[10, 50, 100]`
        error: infra/w.yaml:16:42: workers.c.rollout.wait: `wait` applies only to `strategy: gradual`
        hint: remove it, or write `strategy: gradual`
        error: infra/w.yaml:21:25: workers.d.rollout.strategy: invalid strategy \"canary\"
        hint: allowed values: `immediate`, `gradual`
        error: infra/w.yaml:26:14: workers.e.rollout.strategy: missing field `strategy` for the rollout
        hint: write `strategy: immediate`, or `strategy: gradual` with `steps` and `wait`
        ",
    );
}

#[test]
fn service_cycles_and_name_collisions() {
    let worker = |key: &str, name: &str, service: &str| {
        format!(
            "  {key}:\n    name: {name}\n    main: workers/api/src/index.js\n    compatibility_date: \"2025-01-15\"\n    bindings:\n      NEXT: {{service: {service}}}\n"
        )
    };
    let infra = format!(
        "workers:\n{}{}{}{}",
        worker("a", "a-${env}", "b"),
        worker("b", "b", "a"),
        worker("c", "dev-shared", "d"),
        worker("d", "dev-shared", "b"),
    );
    check(
        &worker_files(&[("infra/w.yaml", &infra), ("environments/dev.yaml", "{}\n")]),
        "dev",
        "
        error: infra/w.yaml:13:23: workers.b.bindings.NEXT.service: service bindings form a cycle: workers.a -> workers.b -> workers.a
        hint: a worker is deployed after the workers it binds to, so a cycle has no order: remove one of these service bindings
        error: infra/w.yaml:21:11: workers.d.name: `workers.c` and `workers.d` both resolve to the Worker name \"dev-shared\" in environment `dev`
        hint: they would be the same Worker: give one of them another name
        note: infra/w.yaml:15:11: `workers.c` resolves to the same name here
        ",
    );
}

#[test]
fn worker_overrides_and_interpolation() {
    let infra = one_worker(
        "\
bindings:
  STORE: {kv_namespace: users}
  MODE: {text: normal}
  KEEP: {json: [1, 0x1f, -2.5e3]}
secrets:
  TOKEN: {from_env: \"TOKEN_${env}\", local_default: dev}
crons: [\"0 * * * *\"]
rollout: {strategy: gradual, steps: [50, 100], wait: 1m}",
    );
    let environment = "\
vars:
  mode: fast
overrides:
  workers.api:
    name: api-${mode}
    protect: true
    bindings:
      STORE: {d1: main}            # another kind: replaces the binding
      MODE: {text: \"${mode}\"}
      EXTRA: {text: added}
    secrets:
      TOKEN: {from_file: secrets/api-key.txt}
    crons: [\"30 2 * * *\"]          # lists replace
    rollout: {strategy: immediate} # another strategy: replaces the rollout
";
    check_with(
        &worker_files(&[
            ("infra/w.yaml", &infra),
            ("environments/prod.yaml", environment),
        ]),
        "prod",
        false,
        &[],
        r#"
        ok prod FromEnvironment
        kv_namespaces.users title="users" protect=false
        d1_databases.main name="main" location_hint=None jurisdiction=None protect=false
        workers.api name="api-fast" main=index.js date=2025-01-15 flags=[] protect=true
          modules index.js:EsModule:19
          binding EXTRA Text("added")
          binding KEEP Json(Array [Number(1), Number(31), Number(-2500.0)])
          binding MODE Text("fast")
          binding STORE D1("main")
          secret TOKEN FromFile("secrets/api-key.txt") "file-secret-value"
          crons ["30 2 * * *"]
          rollout Immediate
        "#,
    );
}

/// `d1_databases.main` with `migrations: <dir>` (line 4, column 17).
fn d1_with_migrations(dir: &str) -> String {
    format!("d1_databases:\n  main:\n    name: main\n    migrations: {dir}\n")
}

#[test]
fn d1_migrations_load_in_wranglers_order_with_hashes() {
    let project = project(&[
        ("infra/d1.yaml", &d1_with_migrations("db/${env}")),
        ("environments/dev.yaml", "{}\n"),
        (
            "db/dev/0002_names.sql",
            "ALTER TABLE users ADD name TEXT;\n",
        ),
        (
            "db/dev/0001_init.sql",
            "CREATE TABLE users (id INTEGER PRIMARY KEY);\n",
        ),
        ("db/dev/10_later.sql", "SELECT 1;\n"),
        ("db/dev/seed.sql", "CREATE TABLE t (x);\n"),
        // Not migrations for wrangler (`*.sql` directly in the directory,
        // not hidden, case-sensitive): ignored.
        ("db/dev/README.md", "notes"),
        ("db/dev/.draft.sql", "\u{ff}"),
        ("db/dev/0003_upper.SQL", "x"),
        ("db/dev/nested/0004_deep.sql", "x"),
        ("db/dev/dir.sql/0005_x.sql", "x"),
    ]);
    let actual = summary(load(project.path(), "dev"));
    compare(
        &actual,
        r#"
        ok dev FromEnvironment
        d1_databases.main name="main" location_hint=None jurisdiction=None protect=false
          migration 0001_init.sql db/dev/0001_init.sql 6869107c4910d8df4680ee89aff9924b65ae79c81b5b78478f2b12f90254f6c5 bytes=45
          migration 0002_names.sql db/dev/0002_names.sql 274c50a8abcb76449c0783a008b6692cff43b74ea3bdea027d2a13bafa37f708 bytes=33
          migration 10_later.sql db/dev/10_later.sql b4e0497804e46e0a0b0b8c31975b062152d551bac49c3c2e80932567b4085dcd bytes=10
          migration seed.sql db/dev/seed.sql 145a1dead5679f8b8983a3e6524d031c8f3bc8cd5d10ae7e2ff2b159750d131b bytes=20
        "#,
    );
}

#[test]
fn d1_migrations_follow_overrides_and_may_be_empty() {
    check(
        &[
            ("infra/d1.yaml", &d1_with_migrations("db/main")),
            (
                "environments/dev.yaml",
                "overrides:\n  d1_databases.main:\n    migrations: db/empty\n",
            ),
            ("db/main/0001_init.sql", "SELECT 1;\n"),
            ("db/empty/README.md", "no migrations yet"),
        ],
        "dev",
        r#"
        ok dev FromEnvironment
        d1_databases.main name="main" location_hint=None jurisdiction=None protect=false
        "#,
    );
}

#[test]
fn d1_migration_errors_are_located_at_the_directory() {
    let infra = "\
d1_databases:
  missing:
    name: missing
    migrations: db/nowhere
  file:
    name: file
    migrations: db/file.sql
  up:
    name: up
    migrations: ../db
  twice:
    name: twice
    migrations: db/twice
  list:
    name: list
    migrations: [db/a]
";
    let big = "-".repeat(10 * 1024 * 1024 + 1);
    let project = project_bytes(&[
        ("infra/d1.yaml", infra.as_bytes()),
        ("environments/dev.yaml", b"{}\n"),
        ("db/file.sql", b"SELECT 1;\n"),
        ("db/twice/0001_init.sql", b"SELECT 1;\n"),
        ("db/twice/1_other.sql", b"SELECT 2;\n"),
        ("db/twice/0002_latin1.sql", b"SELECT 'caf\xe9';\n"),
        ("db/twice/0003_big.sql", big.as_bytes()),
    ]);
    let diagnostics = load(project.path(), "dev").expect_err("errors");
    compare(
        &diagnostics.to_string(),
        "
        error: infra/d1.yaml:4:17: d1_databases.missing.migrations: the migrations directory `db/nowhere` does not exist
        hint: check the path (relative to the project root) and that the directory is committed
        error: infra/d1.yaml:7:17: d1_databases.file.migrations: the migrations directory `db/file.sql` is not a directory
        hint: point at the directory holding the files, not at a file
        error: infra/d1.yaml:10:17: d1_databases.up.migrations: the migrations directory path `../db` uses `..`: it must stay inside the project root
        hint: paths in manifests are relative to the project root (the directory holding infra/), written with `/`, without `..`
        error: infra/d1.yaml:13:17: d1_databases.twice.migrations: the migration `db/twice/0002_latin1.sql` is not valid UTF-8
        hint: SQL files are text: save the file as UTF-8
        error: infra/d1.yaml:13:17: d1_databases.twice.migrations: the migration `db/twice/0003_big.sql` is 10.0 MiB, larger than the 10 MiB limit
        hint: a migration is sent to D1 as one query: split it into several migration files
        error: infra/d1.yaml:13:17: d1_databases.twice.migrations: the migrations `db/twice/0001_init.sql` and `db/twice/1_other.sql` have the same number 1
        hint: renumber one of them (e.g. with the next free number): each number names one migration, and migrations run in number order
        error: infra/d1.yaml:16:17: d1_databases.list.migrations: expected a string, found a sequence
        hint: write a single string here; quote it if it holds `[`, `{` or `: `
        ",
    );
}

#[test]
fn d1_migrations_refuse_symlinks() {
    let outside = tempfile::tempdir().expect("temp dir");
    std::fs::write(outside.path().join("0001_evil.sql"), "DROP TABLE users;\n").expect("write");
    let infra = format!(
        "{}  other:\n    name: other\n    migrations: db/linked\n",
        d1_with_migrations("db/escape")
    );
    let project = project(&[
        ("infra/d1.yaml", &infra),
        ("environments/dev.yaml", "{}\n"),
        ("db/linked/0001_init.sql", "SELECT 1;\n"),
    ]);
    let root = project.path();
    std::os::unix::fs::symlink(outside.path(), root.join("db/escape")).expect("symlink");
    std::os::unix::fs::symlink(
        outside.path().join("0001_evil.sql"),
        root.join("db/linked/0002_evil.sql"),
    )
    .expect("symlink");
    let diagnostics = load(root, "dev").expect_err("escapes");
    compare(
        &diagnostics.to_string(),
        "
        error: infra/d1.yaml:4:17: d1_databases.main.migrations: the migrations directory `db/escape` leaves the project root through a symlink
        hint: directories that flareops reads must be inside the project: move the directory into the project instead of linking to it
        error: infra/d1.yaml:7:17: d1_databases.other.migrations: the migration `db/linked/0002_evil.sql` is a symlink
        hint: wrangler skips symlinks in a migrations directory, so it would never run this migration: put the file itself in the directory
        ",
    );
    assert!(!diagnostics.render(false).contains("DROP TABLE"));
}

#[test]
fn dns_records_are_checked_where_they_are_written() {
    check(
        &[
            (
                "environments/staging.yaml",
                "account_id: 0123456789abcdef0123456789abcdef\nzone: example.com\n",
            ),
            (
                "infra/dns.yaml",
                "dns_records:
  a:
    type: A
    name: www-${env}
    content: 192.0.2.300
  txt:
    type: TXT
    name: www-${env}
    content: hello
    proxied: true
  mx:
    type: MX
    name: ${env}
    content: mx.example.net
  cname:
    type: CNAME
    name: shop
    content: target.example.net
  cname-twin:
    type: TXT
    name: shop.example.com
    content: hello
  ttl:
    type: A
    name: ttl
    content: 192.0.2.1
    proxied: true
    ttl: 5m
  kind:
    type: PTR
    name: x
    content: y
  tag:
    type: TXT
    name: tag
    content: t
    tags: [\"nocolon\"]
",
            ),
        ],
        "staging",
        r#"
        error: infra/dns.yaml:5:14: dns_records.a.content: invalid content "192.0.2.300" for type A
        hint: an A record's content is an IPv4 address, like `192.0.2.10`
        error: infra/dns.yaml:10:14: dns_records.txt.proxied: TXT records cannot be proxied
        hint: only A, AAAA and CNAME records are proxied: remove `proxied: true`
        error: infra/dns.yaml:11:3: dns_records.mx.priority: missing field `priority`: MX records have one
        hint: add `priority: 10` (0 to 65535; lower is preferred)
        error: infra/dns.yaml:21:11: dns_records.cname-twin.name: `shop.example.com` has a CNAME record and another record (`dns_records.cname`): a CNAME cannot share its name
        hint: keep one of them, or give them different names
        note: infra/dns.yaml:17:11: `dns_records.cname` is declared here
        error: infra/dns.yaml:28:10: dns_records.ttl.ttl: a proxied record's TTL is automatic
        hint: remove `ttl`, or write `ttl: auto`
        error: infra/dns.yaml:30:11: dns_records.kind.type: invalid type "PTR"
        hint: allowed values: `A`, `AAAA`, `CNAME`, `TXT`, `MX`, `SRV`, `CAA`
        error: infra/dns.yaml:37:12: dns_records.tag.tags[0]: invalid tag "nocolon"
        hint: a tag is `name:value`, like `team:api`
        "#,
    );
}

#[test]
fn dns_records_need_the_environments_zone() {
    check(
        &[
            (
                "environments/staging.yaml",
                "account_id: 0123456789abcdef0123456789abcdef\n",
            ),
            (
                "infra/dns.yaml",
                "dns_records:\n  a:\n    type: A\n    name: www\n    content: 192.0.2.1\n",
            ),
        ],
        "staging",
        r#"
        error: infra/dns.yaml:4:11: dns_records.a.name: DNS records need the environment's zone, and the environment has no `zone:`
        hint: add `zone: example.com` to the environment file
        "#,
    );
}

#[test]
fn pages_projects_are_checked_where_they_are_written() {
    check(
        &[
            (
                "environments/staging.yaml",
                "account_id: 0123456789abcdef0123456789abcdef\n",
            ),
            ("site/_headers", "/*\n  X-Frame-Options: DENY\n"),
            ("site/index.html", "<h1>hi</h1>\n"),
            ("empty/_redirects", "/a /b\n"),
            (
                "infra/pages.yaml",
                "pages_projects:
  bad-name:
    name: Web_Site
    dir: site
  missing:
    name: web-missing
    dir: nowhere
  empty:
    name: web-empty
    dir: empty
  outside:
    name: web-outside
    dir: ../site
  domain:
    name: web-domain
    dir: site
    custom_domains: [\"https://app.example.com\"]
  ok:
    name: web-${env}
    dir: site
",
            ),
        ],
        "staging",
        r#"
        error: infra/pages.yaml:3:11: pages_projects.bad-name.name: invalid Pages project name `Web_Site`
        hint: Pages project names are 1-58 lowercase letters, digits and `-`, not starting or ending with `-` (the name is the `<name>.pages.dev` subdomain)
        error: infra/pages.yaml:7:10: pages_projects.missing.dir: the site folder `nowhere` does not exist
        hint: check the path (relative to the project root) and that the directory is committed
        error: infra/pages.yaml:10:10: pages_projects.empty.dir: the site folder `empty` holds no file to deploy
        hint: point `dir` at the folder of built static files (with an index.html)
        error: infra/pages.yaml:13:10: pages_projects.outside.dir: the site folder path `../site` uses `..`: it must stay inside the project root
        hint: paths in manifests are relative to the project root (the directory holding infra/), written with `/`, without `..`
        error: infra/pages.yaml:17:23: pages_projects.domain.custom_domains[0]: the custom domain `https://app.example.com` has a scheme
        hint: a custom domain is a hostname: write it without `https://`
        "#,
    );
}
