//! The ledger's inventory: resources removed from git are deleted (only
//! with `--allow-delete`), renamed KV namespaces keep their id and data,
//! and what flareops never applied is left alone.

use predicates::prelude::*;
use predicates::str::contains;
use serde_json::json;

use crate::support::{TestEmulator, flareops, project, write};

/// Runs `sql` in the D1 database named `name`; the first statement's rows.
fn d1_rows(emulator: &TestEmulator, name: &str, sql: &str) -> Vec<serde_json::Value> {
    crate::support::d1_rows(emulator, name, sql, json!([]))
}

fn infra(reviews_title: &str, with_users: bool) -> String {
    let mut text = format!("kv_namespaces:\n  reviews:\n    title: {reviews_title}\n");
    if with_users {
        text.push_str("  users:\n    title: kk-users-${env}\nd1_databases:\n  main:\n    name: kk-db-${env}\n");
    }
    text
}

fn namespaces(emulator: &TestEmulator) -> Vec<(String, String)> {
    let list = emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"));
    let mut all: Vec<(String, String)> = list["result"]
        .as_array()
        .expect("kv list")
        .iter()
        .map(|ns| {
            (
                ns["title"].as_str().unwrap().to_string(),
                ns["id"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    all.sort();
    all
}

#[test]
fn removed_resources_are_deleted_only_with_permission_and_renames_keep_data() {
    let emulator = TestEmulator::start();
    let root = project(&[
        ("infra/storage.yaml", &infra("kk-reviews-${env}", true)),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
    ]);
    let apply = |extra: &[&str]| {
        let mut command = flareops(root.path(), &emulator);
        command
            .args(["apply", "--env", "staging", "--yes"])
            .args(extra);
        command.assert()
    };
    let plan = || {
        flareops(root.path(), &emulator)
            .args(["plan", "--env", "staging"])
            .assert()
    };
    apply(&[]).success();
    plan()
        .success()
        .stdout(contains("No changes."))
        .stdout(contains("no ledger yet").not());

    // A look-alike made outside flareops is never flareops' to delete.
    let made = emulator.send(
        "POST",
        &emulator.account_path("/storage/kv/namespaces"),
        Some(json!({"title": "kk-other-staging"})),
        &[],
    );
    assert_eq!(made["success"], true);

    // A rename keeps the id and the data.
    let reviews_id = namespaces(&emulator)
        .into_iter()
        .find(|(title, _)| title == "kk-reviews-staging")
        .map(|(_, id)| id)
        .expect("reviews namespace");
    let key_path = emulator.account_path(&format!("/storage/kv/namespaces/{reviews_id}/bulk"));
    let put = emulator.send(
        "PUT",
        &key_path,
        Some(json!([{"key": "r1", "value": "five stars"}])),
        &[],
    );
    assert_eq!(put["success"], true, "{put}");
    write(
        root.path(),
        "infra/storage.yaml",
        &infra("kk-ratings-${env}", true),
    );
    plan()
        .success()
        .stdout(contains("~ update kv_namespaces.reviews"))
        .stdout(contains(
            r#"title: "kk-reviews-staging" -> "kk-ratings-staging""#,
        ))
        .stdout(contains("+ create").not());
    apply(&[]).success().stdout(contains("same id, data kept"));
    let after = namespaces(&emulator);
    assert!(
        after.contains(&("kk-ratings-staging".to_string(), reviews_id.clone())),
        "{after:?}"
    );
    let keys =
        emulator.get(&emulator.account_path(&format!("/storage/kv/namespaces/{reviews_id}/keys")));
    assert_eq!(keys["result"][0]["name"], "r1", "{keys}");

    // Removed from git: a delete, with a data-loss warning, only with permission.
    let users_id = namespaces(&emulator)
        .into_iter()
        .find(|(title, _)| title == "kk-users-staging")
        .map(|(_, id)| id)
        .expect("users namespace");
    let put = emulator.send(
        "PUT",
        &emulator.account_path(&format!("/storage/kv/namespaces/{users_id}/bulk")),
        Some(json!([{"key": "u1", "value": "ada"}])),
        &[],
    );
    assert_eq!(put["success"], true, "{put}");
    write(
        root.path(),
        "infra/storage.yaml",
        &infra("kk-ratings-${env}", false),
    );
    plan()
        .success()
        .stdout(contains("- delete kv_namespaces.users"))
        .stdout(contains("- delete d1_databases.main"))
        .stdout(contains("(destructive: the data it holds is lost)"))
        .stdout(contains("kk-other-staging").not());
    apply(&[])
        .code(1)
        .stderr(contains("refusing to apply"))
        .stderr(contains("--allow-delete"));
    assert!(
        namespaces(&emulator)
            .iter()
            .any(|(t, _)| t == "kk-users-staging")
    );
    apply(&["--allow-delete"]).success();
    let left: Vec<String> = namespaces(&emulator).into_iter().map(|(t, _)| t).collect();
    assert_eq!(left, ["kk-other-staging", "kk-ratings-staging"]);
    let databases = emulator.get(&emulator.account_path("/d1/database"));
    let names: Vec<&str> = databases["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|db| db["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["flareops-state"], "only the ledger is left");
    plan().success().stdout(contains("No changes."));
}

#[test]
fn protect_still_guards_a_resource_removed_from_git() {
    let emulator = TestEmulator::start();
    let root = project(&[
        (
            "infra/storage.yaml",
            "kv_namespaces:\n  users:\n    title: kk-users-${env}\n    protect: true\n  reviews:\n    title: kk-reviews-${env}\n",
        ),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
    ]);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    write(
        root.path(),
        "infra/storage.yaml",
        "kv_namespaces:\n  reviews:\n    title: kk-reviews-${env}\n",
    );
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .assert()
        .success()
        .stdout(contains("- delete kv_namespaces.users"))
        .stdout(contains("! protect: true: apply refuses this change"));
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes", "--allow-delete"])
        .assert()
        .code(1)
        .stderr(contains("`kv_namespaces.users` is protected"));
    assert!(
        namespaces(&emulator)
            .iter()
            .any(|(t, _)| t == "kk-users-staging")
    );
}

#[test]
fn an_applied_migration_edited_afterwards_is_refused_with_its_file_named() {
    let emulator = TestEmulator::start();
    let root = project(&[
        (
            "infra/db.yaml",
            "d1_databases:\n  main:\n    name: kk-db-${env}\n    migrations: migrations\n",
        ),
        (
            "migrations/0001_init.sql",
            "CREATE TABLE users (id INTEGER);\n",
        ),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
    ]);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    write(
        root.path(),
        "migrations/0001_init.sql",
        "CREATE TABLE users (id INTEGER, email TEXT);\n",
    );
    write(
        root.path(),
        "migrations/0002_next.sql",
        "CREATE TABLE posts (id INTEGER);\n",
    );
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .assert()
        .success()
        .stdout(contains(
            "migrations/0001_init.sql changed after it was applied",
        ));
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .code(1)
        .stderr(contains("refusing to apply: `d1_databases.main`"));
    // Restored, the pending migration runs.
    write(
        root.path(),
        "migrations/0001_init.sql",
        "CREATE TABLE users (id INTEGER);\n",
    );
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success()
        .stdout(contains("applied migrations 0002_next.sql"));
}

#[test]
fn a_migration_removed_from_git_is_undone_by_restoring_the_bookmark_before_it() {
    let emulator = TestEmulator::start();
    let root = project(&[
        (
            "infra/db.yaml",
            "d1_databases:\n  main:\n    name: kk-db-${env}\n    migrations: migrations\n",
        ),
        (
            "migrations/0001_init.sql",
            "CREATE TABLE users (id INTEGER);\n",
        ),
        (
            "migrations/0002_posts.sql",
            "CREATE TABLE posts (id INTEGER);\n",
        ),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
    ]);
    let run = |args: &[&str]| {
        flareops(root.path(), &emulator)
            .args(args)
            .args(["--env", "staging"])
            .assert()
    };
    run(&["apply", "--yes"])
        .success()
        .stdout(contains("applied migrations 0001_init.sql, 0002_posts.sql"));
    // A write after the migrations, in a table that stays.
    d1_rows(
        &emulator,
        "kk-db-staging",
        "INSERT INTO users (id) VALUES (7);",
    );
    // The commit that added 0002 is reverted.
    std::fs::remove_file(root.path().join("migrations/0002_posts.sql")).expect("remove 0002");

    run(&["plan"])
        .success()
        .stdout(contains("~ update d1_databases.main"))
        .stdout(contains(
            r#"["0001_init.sql", "0002_posts.sql"] -> ["- 0002_posts.sql"]"#,
        ))
        .stdout(contains("data_loss: (none) -> writes since "))
        .stdout(contains(" are lost\n"))
        .stdout(contains("apply refuses this change without --allow-delete"));
    run(&["apply", "--yes"])
        .code(1)
        .stderr(contains("destroys data in `d1_databases.main`"));
    assert_eq!(
        d1_rows(&emulator, "kk-db-staging", "SELECT id FROM users;"),
        vec![json!({"id": 7})],
        "the refused apply changed nothing"
    );

    run(&["apply", "--yes", "--allow-delete"])
        .success()
        .stdout(contains(
            "restored D1 database \"kk-db-staging\" to bookmark",
        ))
        .stdout(contains("undoing migrations 0002_posts.sql"));
    assert!(
        d1_rows(
            &emulator,
            "kk-db-staging",
            "SELECT name FROM sqlite_master WHERE name = 'posts';"
        )
        .is_empty(),
        "the table of 0002 is gone"
    );
    assert!(
        d1_rows(&emulator, "kk-db-staging", "SELECT id FROM users;").is_empty(),
        "the write since the bookmark is gone"
    );
    assert_eq!(
        d1_rows(
            &emulator,
            "kk-db-staging",
            "SELECT name FROM d1_migrations ORDER BY id;"
        ),
        vec![json!({"name": "0001_init.sql"})]
    );
    // The ledger forgot the undone file.
    assert_eq!(
        d1_rows(
            &emulator,
            "flareops-state",
            "SELECT name FROM migrations ORDER BY name;"
        ),
        vec![json!({"name": "0001_init.sql"})]
    );
    run(&["plan"]).success().stdout(contains("No changes."));
}

#[test]
fn an_environment_can_name_its_ledger_database() {
    let emulator = TestEmulator::start();
    let root = project(&[
        (
            "infra/storage.yaml",
            "kv_namespaces:\n  users:\n    title: kk-users-${env}\n",
        ),
        (
            "environments/staging.yaml",
            &format!(
                "account_id: {}\nledger:\n  database: kk-ledger-staging\n",
                emulator.account_id
            ),
        ),
    ]);
    flareops(root.path(), &emulator)
        .args(["apply", "--env", "staging", "--yes"])
        .assert()
        .success();
    let databases = emulator.get(&emulator.account_path("/d1/database"));
    let names: Vec<&str> = databases["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|db| db["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["kk-ledger-staging"]);
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .assert()
        .success()
        .stdout(contains("No changes."))
        .stdout(contains("no ledger yet").not());
    write(
        root.path(),
        "environments/staging.yaml",
        &format!(
            "account_id: {}\nledger:\n  database: Bad_Name\n",
            emulator.account_id
        ),
    );
    flareops(root.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .assert()
        .code(1)
        .stderr(contains("environments/staging.yaml:3:13"))
        .stderr(contains("ledger.database"));
}
