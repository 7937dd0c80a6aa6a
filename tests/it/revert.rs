//! `flareops revert`: back to the manifests at a git revision, at an
//! earlier apply, or before the last apply.

use predicates::str::contains;

use crate::support::{TestEmulator, flareops, git, project, write};

fn titles(emulator: &TestEmulator) -> Vec<String> {
    let list = emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"));
    let mut titles: Vec<String> = list["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|ns| ns["title"].as_str().unwrap().to_string())
        .collect();
    titles.sort();
    titles
}

#[test]
fn revert_goes_back_to_the_last_apply_an_earlier_one_or_a_git_revision() {
    let emulator = TestEmulator::start();
    let root = project(&[
        (
            "infra/storage.yaml",
            "kv_namespaces:\n  users:\n    title: users-${env}\n",
        ),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        (".gitignore", ".flareops/\n"),
    ]);
    git(root.path(), &["init", "-q"]);
    git(root.path(), &["add", "-A"]);
    git(root.path(), &["commit", "-qm", "v1"]);
    let v1 = git(root.path(), &["rev-parse", "HEAD"]);
    let apply = |extra: &[&str]| {
        let mut command = flareops(root.path(), &emulator);
        command
            .args(["apply", "--env", "staging", "--yes"])
            .args(extra);
        command.assert()
    };
    apply(&[]).success();

    write(
        root.path(),
        "infra/storage.yaml",
        "kv_namespaces:\n  users:\n    title: users-${env}\n  reviews:\n    title: reviews-${env}\n",
    );
    git(root.path(), &["commit", "-qam", "v2"]);
    apply(&[]).success();
    assert_eq!(titles(&emulator), ["reviews-staging", "users-staging"]);

    // Undo the last apply: `reviews` was created by it and now holds data, so
    // it goes only with permission.
    let listed = emulator.get(&emulator.account_path("/storage/kv/namespaces?per_page=100"));
    let reviews = listed["result"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ns| ns["title"] == "reviews-staging")
        .and_then(|ns| ns["id"].as_str())
        .unwrap()
        .to_string();
    let put = emulator.send(
        "PUT",
        &emulator.account_path(&format!("/storage/kv/namespaces/{reviews}/bulk")),
        Some(serde_json::json!([{"key": "k", "value": "v"}])),
        &[],
    );
    assert_eq!(put["success"], true, "{put}");
    let revert = |extra: &[&str]| {
        let mut command = flareops(root.path(), &emulator);
        command
            .args(["revert", "--env", "staging", "--yes"])
            .args(extra);
        command.assert()
    };
    revert(&[])
        .code(1)
        .stderr(contains("back to the manifests at git revision"))
        .stdout(contains("- delete kv_namespaces.reviews"))
        .stderr(contains("--allow-delete"));
    revert(&["--allow-delete"]).success();
    assert_eq!(titles(&emulator), ["users-staging"]);
    // The journal records the commit the revert went back to, not HEAD.
    let newest = flareops(root.path(), &emulator)
        .args([
            "history", "--env", "staging", "--format", "json", "--limit", "1",
        ])
        .output()
        .expect("history");
    let newest: serde_json::Value = serde_json::from_slice(&newest.stdout).expect("json history");
    assert!(
        newest["applies"][0]["git_commit"]
            .as_str()
            .is_some_and(|c| c.contains(&v1[..12])),
        "{newest}"
    );

    // Forward again by git revision, then back to the first apply by its id.
    let head = git(root.path(), &["rev-parse", "HEAD"]);
    flareops(root.path(), &emulator)
        .args(["revert", "--env", "staging", "--yes", "--to-git", &head])
        .assert()
        .success();
    assert_eq!(titles(&emulator), ["reviews-staging", "users-staging"]);
    let history = flareops(root.path(), &emulator)
        .args(["history", "--env", "staging", "--format", "json"])
        .output()
        .expect("history");
    let history: serde_json::Value = serde_json::from_slice(&history.stdout).expect("json history");
    let applies = history["applies"].as_array().expect("applies");
    let first = applies.last().expect("the first apply");
    assert!(
        first["git_commit"].as_str().unwrap().contains(&v1[..12]),
        "{first}"
    );
    let id = first["id"].as_str().unwrap();
    flareops(root.path(), &emulator)
        .args(["revert", "--env", "staging", "--yes", "--to", id])
        .assert()
        .success()
        .stdout(contains("it holds no data: a revert deletes it"));
    // The recreated namespace was empty: the revert deleted it without --allow-delete.
    assert_eq!(titles(&emulator), ["users-staging"]);

    // A revision git does not know is a clear error.
    flareops(root.path(), &emulator)
        .args([
            "revert",
            "--env",
            "staging",
            "--yes",
            "--to-git",
            "no-such-ref",
        ])
        .assert()
        .code(1)
        .stderr(contains("git cannot read revision `no-such-ref`"));
}

fn buckets(emulator: &TestEmulator) -> Vec<String> {
    let list = emulator.get(&emulator.account_path("/r2/buckets"));
    let mut names: Vec<String> = list["result"]["buckets"]
        .as_array()
        .expect("buckets")
        .iter()
        .map(|b| b["name"].as_str().expect("name").to_string())
        .collect();
    names.sort();
    names
}

/// R2 buckets hold data like KV namespaces do: a revert deletes a bucket
/// its apply created while it is empty, and one with objects only with
/// `--allow-delete`.
#[test]
fn revert_deletes_an_empty_bucket_but_one_with_objects_only_with_permission() {
    let emulator = TestEmulator::start();
    let one = "r2_buckets:\n  assets:\n    name: assets-${env}\n";
    let two =
        "r2_buckets:\n  assets:\n    name: assets-${env}\n  uploads:\n    name: uploads-${env}\n";
    let root = project(&[
        ("infra/storage.yaml", one),
        (
            "environments/staging.yaml",
            &format!("account_id: {}\n", emulator.account_id),
        ),
        (".gitignore", ".flareops/\n"),
    ]);
    git(root.path(), &["init", "-q"]);
    git(root.path(), &["add", "-A"]);
    git(root.path(), &["commit", "-qm", "one bucket"]);
    let run = |args: &[&str]| {
        let mut command = flareops(root.path(), &emulator);
        command.args(args);
        command.assert()
    };
    run(&["apply", "--env", "staging", "--yes"]).success();
    write(root.path(), "infra/storage.yaml", two);
    git(root.path(), &["commit", "-qam", "two buckets"]);
    run(&["apply", "--env", "staging", "--yes"]).success();
    assert_eq!(buckets(&emulator), ["assets-staging", "uploads-staging"]);

    // Empty: the revert deletes it without permission.
    run(&["revert", "--env", "staging", "--yes"])
        .success()
        .stdout(contains("it holds no data: a revert deletes it"));
    assert_eq!(buckets(&emulator), ["assets-staging"]);

    // Again, with an object in the new bucket this time.
    run(&["apply", "--env", "staging", "--yes"]).success();
    let put = emulator.send_bytes(
        "PUT",
        &emulator.account_path("/r2/buckets/uploads-staging/objects/avatar.png"),
        b"not really a png".to_vec(),
        "image/png",
    );
    assert_eq!(put["success"], true, "{put}");
    run(&["revert", "--env", "staging", "--yes"])
        .code(1)
        .stdout(contains("- delete r2_buckets.uploads"))
        .stderr(contains("--allow-delete"));
    assert_eq!(buckets(&emulator), ["assets-staging", "uploads-staging"]);
    run(&["revert", "--env", "staging", "--yes", "--allow-delete"]).success();
    assert_eq!(buckets(&emulator), ["assets-staging"]);
}
