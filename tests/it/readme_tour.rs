//! Every command of the README's tour runs here, in order, with the exit
//! code it documents (or, for a command that asks for confirmation, the one
//! a run without a terminal gets). The test reads the tour from README.md
//! and fails when a line is added, removed or changed without being added
//! here: the tour cannot go stale.

use std::path::Path;

use serde_json::json;

use crate::requests::example;
use crate::support::{TestEmulator, flareops, git, write};

/// Where a tour command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The example project, in a git repository, staging and production
    /// pointed at the test's account; the commands run one after another.
    Example,
    /// A new project whose account holds a KV namespace made by hand.
    FreshAccount,
    /// A new directory holding a wrangler project.
    WranglerProject,
    /// An empty directory.
    Empty,
}

/// The tour, line by line: the command as the README writes it, the exit
/// code, where it runs.
const TOUR: &[(&str, i32, Place)] = &[
    ("flareops init --example", 0, Place::Empty),
    ("flareops validate --local", 0, Place::Example),
    ("flareops validate --env production", 0, Place::Example),
    ("flareops plan --env staging --local", 0, Place::Example),
    (
        "flareops plan --env staging --local --format json",
        0,
        Place::Example,
    ),
    (
        "flareops plan --env staging --detailed-exitcode",
        2,
        Place::Example,
    ),
    // Asks for `yes`; without a terminal it refuses (exit 1).
    ("flareops apply --env staging --local", 1, Place::Example),
    (
        "flareops apply --env production --allow-delete",
        1,
        Place::Example,
    ),
    (
        "flareops plan --env staging --out plan.json",
        0,
        Place::Example,
    ),
    ("flareops apply plan.json --yes", 0, Place::Example),
    ("flareops history --env staging", 0, Place::Example),
    (
        "flareops revert --env staging --yes --allow-delete",
        0,
        Place::Example,
    ),
    ("flareops unlock --env staging", 0, Place::Example),
    (
        "flareops plan --env staging --env production --format markdown",
        0,
        Place::Example,
    ),
    // After the revert, git is ahead of the account: pending changes.
    ("flareops drift --env staging", 2, Place::Example),
    (
        "flareops drift --env staging --heal --yes",
        0,
        Place::Example,
    ),
    (
        "flareops validate --env staging --check-token",
        0,
        Place::Example,
    ),
    (
        "flareops completions bash > ~/.local/share/bash-completion/completions/flareops",
        0,
        Place::Example,
    ),
    ("flareops man > flareops.1", 0, Place::Example),
    (
        "flareops schema infra > schemas/infra.schema.json",
        0,
        Place::Example,
    ),
    ("flareops render --env production", 0, Place::Example),
    // The example's production overrides staging: they differ.
    ("flareops diff-env staging production", 2, Place::Example),
    ("flareops import --env staging", 0, Place::FreshAccount),
    (
        "flareops import --from-wrangler wrangler.toml",
        0,
        Place::WranglerProject,
    ),
    (
        "flareops -q apply --env staging --local --yes",
        0,
        Place::Example,
    ),
];

/// The commands of the README's tour (comments and comment lines removed).
fn readme_tour() -> Vec<String> {
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    let after = readme
        .split("## A short tour")
        .nth(1)
        .expect("the README has a tour");
    let block = after
        .split("```sh\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("the tour's code block");
    block
        .lines()
        .map(|line| {
            line.split(" #")
                .next()
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

#[test]
fn every_readme_tour_command_runs_with_its_documented_exit_code() {
    let listed: Vec<&str> = TOUR.iter().map(|(command, _, _)| *command).collect();
    assert_eq!(
        readme_tour(),
        listed,
        "the README's tour and this test list the same commands, in order"
    );

    let emulator = TestEmulator::start_with_zones(&["klearkarma.com"]);
    let example_root = example(&emulator);
    let root = example_root.path();
    // Production in the test's account too.
    crate::requests::point_at(root, "production", &emulator);
    write(
        root,
        ".gitignore",
        "/.flareops/\nnode_modules/\n/workers/*/dist/\n",
    );
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "the example"]);
    let home = tempfile::tempdir().expect("HOME");

    // A fresh account with a namespace made by hand, for `import --env`.
    let fresh_emulator = TestEmulator::start();
    let fresh = tempfile::tempdir().expect("fresh project");
    write(
        fresh.path(),
        "environments/staging.yaml",
        &format!("account_id: {}\n", fresh_emulator.account_id),
    );
    let made = fresh_emulator.send(
        "POST",
        &fresh_emulator.account_path("/storage/kv/namespaces"),
        Some(json!({"title": "shop-sessions-staging"})),
        &[],
    );
    assert_eq!(made["success"], true, "{made}");
    // A wrangler project, for `import --from-wrangler`.
    let wrangler_project = tempfile::tempdir().expect("wrangler project");
    write(
        wrangler_project.path(),
        "wrangler.toml",
        "name = \"shop\"\nmain = \"src/index.js\"\ncompatibility_date = \"2025-01-15\"\n\n[vars]\nMODE = \"live\"\n",
    );
    write(
        wrangler_project.path(),
        "src/index.js",
        "export default { fetch() { return new Response('ok'); } };\n",
    );

    let empty = tempfile::tempdir().expect("empty dir");
    for (command, expected, place) in TOUR {
        if command.starts_with("flareops revert") {
            // A second apply to go back from, as a merge would make it.
            let storage = root.join("infra/storage.yaml");
            let mut text = std::fs::read_to_string(&storage).expect("storage.yaml");
            text = text.replacen(
                "kv_namespaces:\n",
                "kv_namespaces:\n  sessions:\n    title: klear-karma-sessions-${env}\n",
                1,
            );
            std::fs::write(&storage, text).expect("write storage.yaml");
            git(root, &["commit", "-q", "-am", "sessions"]);
            flareops(root, &emulator)
                .args(["apply", "--env", "staging", "--yes"])
                .env("KLEAR_KARMA_JWT_SECRET", "tour-jwt-secret")
                .env("KLEAR_KARMA_API_KEY", "tour-api-key")
                .assert()
                .success();
        }
        let (line, redirect) = match command.split_once(" > ") {
            Some((line, target)) => (line, Some(target)),
            None => (*command, None),
        };
        let args: Vec<&str> = line.split_whitespace().skip(1).collect();
        let (dir, account) = match place {
            Place::Example => (root, &emulator),
            Place::FreshAccount => (fresh.path(), &fresh_emulator),
            Place::WranglerProject => (wrangler_project.path(), &emulator),
            Place::Empty => (empty.path(), &emulator),
        };
        let output = flareops(dir, account)
            .args(&args)
            .env("HOME", home.path())
            .env("KLEAR_KARMA_JWT_SECRET", "tour-jwt-secret")
            .env("KLEAR_KARMA_API_KEY", "tour-api-key")
            .output()
            .expect("run flareops");
        let code = output.status.code().unwrap_or(-1);
        assert_eq!(
            code,
            *expected,
            "`{command}` exited {code}\n--- stdout\n{}\n--- stderr\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if let Some(target) = redirect {
            let target = target.replace('~', &home.path().to_string_lossy());
            let target = dir.join(target);
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&target, &output.stdout).expect("write the redirect");
            assert!(!output.stdout.is_empty(), "`{command}` printed nothing");
        }
    }
    // What the commands left behind.
    assert!(root.join("plan.json").is_file());
    assert!(root.join("flareops.1").is_file());
    assert!(fresh.path().join("infra/storage.yaml").is_file());
    assert!(wrangler_project.path().join("infra/workers.yaml").is_file());
    assert!(empty.path().join("workers/api/src/index.ts").is_file());
}
