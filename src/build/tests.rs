use std::fs;
use std::path::Path;
use std::time::Duration;

use super::*;

fn write(root: &Path, path: &str, content: &str) {
    let full = root.join(path);
    fs::create_dir_all(full.parent().unwrap()).unwrap();
    fs::write(full, content).unwrap();
}

/// A build that copies `src/` to `dist/` and counts its runs in `runs`.
fn copying(timeout: Duration) -> BuildSpec {
    BuildSpec {
        command:
            "echo run >> ../runs && mkdir -p dist && cp src/index.js dist/index.js && echo built"
                .into(),
        dir: "app".into(),
        inputs: vec!["src/**/*.js".into()],
        output: "app/dist".into(),
        timeout,
    }
}

fn runs(root: &Path) -> usize {
    fs::read_to_string(root.join("runs"))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

#[test]
fn inputs_are_the_globs_plus_the_lockfile_never_the_output_or_node_modules() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    for path in [
        "app/src/index.js",
        "app/src/lib/util.js",
        "app/src/notes.txt",
        "app/package.json",
        "app/package-lock.json",
        "app/node_modules/dep/index.js",
        "app/dist/index.js",
    ] {
        write(root, path, "x");
    }
    let mut spec = copying(DEFAULT_TIMEOUT);
    spec.inputs = vec!["src/**/*.js".into(), "**/*.js".into()];
    assert_eq!(
        input_files(root, &spec).unwrap(),
        [
            "app/package-lock.json",
            "app/package.json",
            "app/src/index.js",
            "app/src/lib/util.js",
        ]
    );
}

#[test]
fn a_build_runs_once_per_set_of_inputs_and_is_restored_from_the_cache() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    write(root, "app/src/index.js", "export default {};\n");
    let builder = Builder::new(root.join(".cache"));
    let spec = copying(DEFAULT_TIMEOUT);
    builder.ensure(root, "workers.app", &spec).unwrap();
    assert_eq!(runs(root), 1);
    // Unchanged inputs: not run again, even with the output gone.
    fs::remove_dir_all(root.join("app/dist")).unwrap();
    builder.ensure(root, "workers.app", &spec).unwrap();
    assert_eq!(runs(root), 1);
    assert_eq!(
        fs::read_to_string(root.join("app/dist/index.js")).unwrap(),
        "export default {};\n"
    );
    // A changed input runs it; a file outside the inputs does not.
    write(root, "app/README.md", "not an input");
    builder.ensure(root, "workers.app", &spec).unwrap();
    assert_eq!(runs(root), 1);
    write(root, "app/src/index.js", "export default { v: 2 };\n");
    builder.ensure(root, "workers.app", &spec).unwrap();
    assert_eq!(runs(root), 2);
    // So does another command.
    let mut other = spec.clone();
    other.command.push_str(" && true");
    builder.ensure(root, "workers.app", &other).unwrap();
    assert_eq!(runs(root), 3);
    let outcomes: Vec<bool> = builder
        .events()
        .iter()
        .map(|e| matches!(e.outcome, Outcome::Cached))
        .collect();
    assert_eq!(outcomes, [false, true, true, false, false]);
}

#[test]
fn a_failed_build_reports_its_last_lines_and_keeps_nothing() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    write(root, "app/src/index.js", "x");
    let builder = Builder::new(root.join(".cache"));
    let mut spec = copying(DEFAULT_TIMEOUT);
    spec.command =
        "for i in $(seq 1 40); do echo line $i; done; echo 'error: no such module' >&2; exit 3"
            .into();
    let error = builder.ensure(root, "workers.app", &spec).unwrap_err();
    let BuildError::Failed { status, tail } = &error else {
        panic!("{error:?}");
    };
    assert!(status.contains('3'), "{status}");
    assert_eq!(tail.lines().count(), TAIL_LINES);
    assert_eq!(tail.lines().last(), Some("error: no such module"));
    assert!(!tail.contains("line 15\n"), "only the last lines: {tail}");
    // Nothing was cached: the next run builds again.
    assert!(
        fs::read_dir(root.join(".cache"))
            .map(|d| d.count() == 0)
            .unwrap_or(true)
    );
}

#[test]
fn a_build_past_its_timeout_is_killed_with_what_it_started() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    write(root, "app/src/index.js", "x");
    let builder = Builder::new(root.join(".cache"));
    let mut spec = copying(Duration::from_millis(300));
    // A child of the shell that would outlive it, writing a file later.
    spec.command = "(sleep 3; echo late > ../late) & echo started; wait".into();
    let error = builder.ensure(root, "workers.app", &spec).unwrap_err();
    assert!(matches!(error, BuildError::TimedOut { .. }), "{error:?}");
    assert_eq!(error.tail(), Some("started"));
    std::thread::sleep(Duration::from_millis(3500));
    assert!(!root.join("late").exists(), "the build's child outlived it");
}

#[test]
fn inputs_under_a_relative_root() {
    let files = input_files(
        Path::new("."),
        &BuildSpec {
            command: String::new(),
            dir: "workers/api".into(),
            inputs: vec!["src/**/*.ts".into()],
            output: "workers/api/dist".into(),
            timeout: DEFAULT_TIMEOUT,
        },
    )
    .unwrap();
    assert!(
        files.contains(&"workers/api/src/index.ts".to_string()),
        "{files:?}"
    );
}
