//! `flareops init`: a starter that validates and plans against the
//! embedded local account at once; `--example`: exactly the repository's
//! example; never overwriting.

use std::path::{Path, PathBuf};

use crate::support::{TestEmulator, flareops};

/// Every file under `dir` (relative, sorted), but packages and outputs.
fn files(dir: &Path, base: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        if matches!(name.to_str(), Some("node_modules" | "dist" | ".flareops")) {
            continue;
        }
        if path.is_dir() {
            files(&path, base, out);
        } else {
            out.push(path.strip_prefix(base).expect("under base").to_path_buf());
        }
    }
}

#[test]
fn init_writes_a_starter_that_plans_locally_and_never_overwrites() {
    let emulator = TestEmulator::start();
    let root = tempfile::tempdir().expect("empty dir");
    let root = root.path();
    let output = flareops(root, &emulator)
        .arg("init")
        .output()
        .expect("init");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for file in [
        "infra/main.yaml",
        "environments/staging.yaml",
        "environments/production.yaml",
        ".gitignore",
        ".github/workflows/plan.yml",
        ".github/workflows/apply.yml",
        ".github/workflows/drift.yml",
        "schemas/infra.schema.json",
    ] {
        assert!(root.join(file).is_file(), "{file}");
    }
    flareops(root, &emulator)
        .args(["validate", "--local"])
        .assert()
        .success();
    // Staging is the embedded local account: no setup needed.
    let plan = flareops(root, &emulator)
        .args(["plan", "--env", "staging", "--detailed-exitcode"])
        .output()
        .expect("plan");
    assert_eq!(
        plan.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&plan.stderr)
    );
    assert!(String::from_utf8_lossy(&plan.stdout).contains("+ create kv_namespaces.cache"));

    std::fs::write(root.join("infra/main.yaml"), "kv_namespaces: {}\n").expect("edit");
    let again = flareops(root, &emulator)
        .arg("init")
        .output()
        .expect("init");
    assert_eq!(again.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(
        stderr.contains("nothing was written: these files exist: infra/main.yaml"),
        "{stderr}"
    );
    assert_eq!(
        std::fs::read_to_string(root.join("infra/main.yaml")).unwrap(),
        "kv_namespaces: {}\n",
        "not overwritten"
    );
}

#[test]
fn init_example_writes_the_repository_example_which_validates() {
    let emulator = TestEmulator::start();
    let root = tempfile::tempdir().expect("empty dir");
    let root = root.path();
    flareops(root, &emulator)
        .args(["init", "--example"])
        .assert()
        .success();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut expected = Vec::new();
    for dir in ["infra", "environments", "workers", "migrations", "web"] {
        files(&repo.join(dir), repo, &mut expected);
    }
    for file in &expected {
        assert_eq!(
            std::fs::read(root.join(file)).unwrap_or_default(),
            std::fs::read(repo.join(file)).unwrap(),
            "{} is the repository's",
            file.display()
        );
    }
    let mut written = Vec::new();
    for dir in ["infra", "environments", "workers", "migrations", "web"] {
        files(&root.join(dir), root, &mut written);
    }
    expected.sort();
    written.sort();
    assert_eq!(written, expected, "exactly the example's files");
    flareops(root, &emulator)
        .args(["validate", "--local"])
        .assert()
        .success();
}
