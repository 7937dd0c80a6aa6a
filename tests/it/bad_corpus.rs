//! The bad-input corpus: every directory under `tests/fixtures/bad/` is a
//! small project with one problem, and its `expect.txt` says what flareops
//! must report. For each case the real binary runs `flareops apply --env ENV --yes`
//! (not `--local`) and `flareops validate --env ENV` against one emulator,
//! and each run must: exit 1; print an `error:` line with the expected
//! location, field and message (and the expected hints and notes under it);
//! not panic; make zero requests (the emulator counts them: the loader
//! refuses before any client exists). Each run's time is printed, not
//! asserted. Failures of all cases are gathered and reported together.
//!
//! `expect.txt`, one `key: value` per line (`#` starts a comment line):
//!
//! - `env: NAME`: the environment to load (required);
//! - `error: FILE:LINE:COLUMN[: FIELD]`: an `error:` line must start with
//!   this followed by `: ` (required, repeatable); `position: none` allows a
//!   location without line and column (an unknown environment, a `.yml`);
//! - `message: TEXT`, `hint: TEXT`, `note: TEXT`: about the `error:` above:
//!   TEXT is in its line, or in a `hint:` / `note:` line under it;
//! - `stderr: TEXT`: TEXT is anywhere in stderr;
//! - `generate: big PATH BYTES` (a manifest of that size), `generate: deep
//!   PATH LEVELS` (mappings nested that deep), `generate: wide PATH CHARS`
//!   (one line: a KV namespace whose title is CHARS long, then an unknown
//!   field `titel` at column CHARS + 35): files written when the test runs,
//!   so the repository holds no large files;
//! - `symlink: LINK -> TARGET`: a symlink made when the test runs (Unix
//!   only; the case is skipped elsewhere). The project is copied to
//!   `<tmp>/project`, beside `<tmp>/outside/` holding `index.js`,
//!   `secret.txt` and `migrations/0001_outside.sql`, so a relative TARGET
//!   can leave the project;
//! - `unset: VARIABLE`: removed from flareops' environment.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::support::{TestEmulator, flareops};

/// What one case expects.
#[derive(Debug, Default)]
struct Expect {
    environment: String,
    /// `false` with `position: none`.
    positioned: bool,
    errors: Vec<ExpectedError>,
    stderr: Vec<String>,
    generate: Vec<String>,
    symlinks: Vec<(String, String)>,
    unset: Vec<String>,
}

#[derive(Debug, Default)]
struct ExpectedError {
    /// `FILE:LINE:COLUMN[: FIELD]`.
    start: String,
    messages: Vec<String>,
    hints: Vec<String>,
    notes: Vec<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bad")
}

fn parse_expect(text: &str) -> Result<Expect, String> {
    let mut expect = Expect {
        positioned: true,
        ..Expect::default()
    };
    for (index, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line
            .split_once(": ")
            .ok_or_else(|| format!("expect.txt:{}: not `key: value`", index + 1))?;
        let value = value.to_string();
        let last = expect.errors.last_mut();
        match (key, last) {
            ("env", _) => expect.environment = value,
            ("position", _) if value == "none" => expect.positioned = false,
            ("error", _) => expect.errors.push(ExpectedError {
                start: value,
                ..ExpectedError::default()
            }),
            ("message", Some(error)) => error.messages.push(value),
            ("hint", Some(error)) => error.hints.push(value),
            ("note", Some(error)) => error.notes.push(value),
            ("stderr", _) => expect.stderr.push(value),
            ("generate", _) => expect.generate.push(value),
            ("symlink", _) => {
                let (link, target) = value.split_once(" -> ").ok_or_else(|| {
                    format!("expect.txt:{}: `symlink: LINK -> TARGET`", index + 1)
                })?;
                expect.symlinks.push((link.to_string(), target.to_string()));
            }
            ("unset", _) => expect.unset.push(value),
            _ => return Err(format!("expect.txt:{}: unexpected `{key}`", index + 1)),
        }
    }
    if expect.environment.is_empty() {
        return Err("expect.txt: no `env:`".to_string());
    }
    if expect.errors.is_empty() {
        return Err("expect.txt: no `error:`".to_string());
    }
    for error in &expect.errors {
        if expect.positioned && !has_position(&error.start) {
            return Err(format!(
                "expect.txt: `error: {}` has no FILE:LINE:COLUMN (write `position: none` if there is none)",
                error.start
            ));
        }
    }
    Ok(expect)
}

/// `FILE:LINE:COLUMN` or `FILE:LINE:COLUMN: FIELD`.
fn has_position(start: &str) -> bool {
    let location = start.split(": ").next().unwrap_or_default();
    let mut parts = location.rsplitn(3, ':');
    let column = parts.next().unwrap_or_default();
    let line = parts.next().unwrap_or_default();
    let file = parts.next().unwrap_or_default();
    let number = |text: &str| !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit());
    !file.is_empty() && number(line) && number(column)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_name() != "expect.txt" {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
    }
    std::fs::write(path, bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// A manifest of exactly `bytes` bytes: one long title.
fn big_manifest(bytes: usize) -> Vec<u8> {
    let head = b"kv_namespaces:\n  big:\n    title: ";
    let mut out = head.to_vec();
    out.resize(bytes.saturating_sub(1).max(head.len()), b'x');
    out.push(b'\n');
    out
}

/// Mappings nested `levels` deep, in block style.
fn deep_manifest(levels: usize) -> Vec<u8> {
    (0..levels)
        .map(|depth| format!("{}k{depth}:\n", "  ".repeat(depth)))
        .collect::<String>()
        .into_bytes()
}

/// One line: a title `chars` long, then the unknown field `titel`.
fn wide_manifest(chars: usize) -> Vec<u8> {
    format!(
        "kv_namespaces: {{wide: {{title: \"{}\", titel: x}}}}\n",
        "t".repeat(chars)
    )
    .into_bytes()
}

/// Copies the case to `<tmp>/project` beside `<tmp>/outside`, generates its
/// files and makes its symlinks. `Ok(None)`: skipped on this platform.
fn prepare(case: &Path, expect: &Expect, tmp: &Path) -> Result<Option<PathBuf>, String> {
    let root = tmp.join("project");
    copy_dir(case, &root).map_err(|e| format!("copying the case: {e}"))?;
    let outside = tmp.join("outside");
    write(&outside.join("index.js"), b"export default {};\n")?;
    write(&outside.join("secret.txt"), b"outside-secret-value\n")?;
    write(
        &outside.join("migrations/0001_outside.sql"),
        b"DROP TABLE users;\n",
    )?;
    for directive in &expect.generate {
        let words: Vec<&str> = directive.split_whitespace().collect();
        let (kind, path, size) = match words.as_slice() {
            [kind, path, size] => (*kind, *path, size.parse::<usize>()),
            _ => return Err(format!("`generate: {directive}`: KIND PATH NUMBER")),
        };
        let size = size.map_err(|e| format!("`generate: {directive}`: {e}"))?;
        let bytes = match kind {
            "big" => big_manifest(size),
            "deep" => deep_manifest(size),
            "wide" => wide_manifest(size),
            _ => return Err(format!("`generate: {directive}`: unknown kind `{kind}`")),
        };
        write(&root.join(path), &bytes)?;
    }
    if expect.symlinks.is_empty() {
        return Ok(Some(root));
    }
    #[cfg(unix)]
    {
        for (link, target) in &expect.symlinks {
            let link = root.join(link);
            if let Some(parent) = link.parent() {
                std::fs::create_dir_all(parent).map_err(|e| e.to_string())?;
            }
            std::os::unix::fs::symlink(target, &link)
                .map_err(|e| format!("symlink {}: {e}", link.display()))?;
        }
        Ok(Some(root))
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}

/// What is wrong with one run's stderr (empty: nothing).
fn check_stderr(expect: &Expect, stderr: &str) -> Vec<String> {
    let mut problems = Vec::new();
    if stderr.contains("panicked") {
        problems.push("flareops panicked".to_string());
    }
    let lines: Vec<&str> = stderr.lines().collect();
    for error in &expect.errors {
        let prefix = format!("error: {}: ", error.start);
        let candidates: Vec<usize> = (0..lines.len())
            .filter(|&index| lines[index].starts_with(&prefix))
            .collect();
        if candidates.is_empty() {
            problems.push(format!("no line starts with `{prefix}`"));
            continue;
        }
        // The `hint:` and `note:` lines of the error at `index`.
        let block = |index: usize| {
            lines[index + 1..]
                .iter()
                .take_while(|line| !line.starts_with("error: "))
                .copied()
                .collect::<Vec<&str>>()
        };
        let fits = |index: usize| {
            let below = block(index);
            error
                .messages
                .iter()
                .all(|m| lines[index].contains(m.as_str()))
                && error.hints.iter().all(|h| {
                    below
                        .iter()
                        .any(|line| line.starts_with("hint: ") && line.contains(h.as_str()))
                })
                && error.notes.iter().all(|n| {
                    below
                        .iter()
                        .any(|line| line.starts_with("note: ") && line.contains(n.as_str()))
                })
        };
        if !candidates.iter().any(|&index| fits(index)) {
            problems.push(format!(
                "`{prefix}` lacks message {:?}, hints {:?} or notes {:?}",
                error.messages, error.hints, error.notes
            ));
        }
    }
    for text in &expect.stderr {
        if !stderr.contains(text.as_str()) {
            problems.push(format!("stderr does not say `{text}`"));
        }
    }
    problems
}

/// Runs `flareops <verb> --env ENV` on a prepared case; returns its
/// problems and how long it took (for the printed figures only).
fn run(
    verb: &str,
    root: &Path,
    expect: &Expect,
    emulator: &TestEmulator,
) -> (Vec<String>, Duration) {
    let before = emulator.stats_total();
    let mut command = flareops(root, emulator);
    command.args([verb, "--env", &expect.environment]);
    if verb == "apply" {
        command.arg("--yes");
    }
    for variable in &expect.unset {
        command.env_remove(variable);
    }
    let started = Instant::now();
    let output = command.output();
    let elapsed = started.elapsed();
    let requests = emulator.stats_total() - before;
    let output = match output {
        Ok(output) => output,
        Err(error) => return (vec![format!("could not run flareops: {error}")], elapsed),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut problems = Vec::new();
    if output.status.code() != Some(1) {
        problems.push(format!("exit code {:?}, not 1", output.status.code()));
    }
    if requests != 0 {
        problems.push(format!("{requests} requests reached the emulator"));
    }
    problems.extend(check_stderr(expect, &stderr));
    if !problems.is_empty() {
        problems.push(format!("--- stderr\n{stderr}"));
    }
    (
        problems
            .into_iter()
            .map(|problem| format!("{verb}: {problem}"))
            .collect(),
        elapsed,
    )
}

#[test]
fn every_bad_input_fails_before_any_request() {
    let emulator = TestEmulator::start_with_zones(&["example.com"]);
    let mut cases: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("tests/fixtures/bad/")
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_dir())
        .collect();
    cases.sort();
    assert!(cases.len() >= 40, "only {} cases", cases.len());

    let mut failures = Vec::new();
    let mut skipped = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    let started = Instant::now();
    for case in &cases {
        let name = case
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        let expect = match std::fs::read_to_string(case.join("expect.txt"))
            .map_err(|e| format!("expect.txt: {e}"))
            .and_then(|text| parse_expect(&text))
        {
            Ok(expect) => expect,
            Err(problem) => {
                failures.push(format!("[{name}] {problem}"));
                continue;
            }
        };
        let tmp = tempfile::tempdir().expect("temp dir");
        let root = match prepare(case, &expect, tmp.path()) {
            Ok(Some(root)) => root,
            Ok(None) => {
                skipped.push(name);
                continue;
            }
            Err(problem) => {
                failures.push(format!("[{name}] {problem}"));
                continue;
            }
        };
        // `apply` would make requests (and changes) if the loader let
        // anything through; it also needs every secret value.
        for verb in ["apply", "validate"] {
            let (problems, elapsed) = run(verb, &root, &expect, &emulator);
            if elapsed > slowest.0 {
                slowest = (elapsed, format!("{name} ({verb})"));
            }
            failures.extend(
                problems
                    .into_iter()
                    .map(|problem| format!("[{name}] {problem}")),
            );
        }
    }
    println!(
        "bad corpus: {} cases ({} skipped on this platform: {skipped:?}) in {:?}; slowest run: {} in {:?}",
        cases.len(),
        skipped.len(),
        started.elapsed(),
        slowest.1,
        slowest.0
    );
    assert!(
        failures.is_empty(),
        "{} problems:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );

    // The control: the same kind of project without a fault plans, and its
    // requests are counted, so the zero counts above mean something.
    let control = crate::support::project(&[
        (
            "infra/storage.yaml",
            "kv_namespaces:\n  users:\n    title: kk-users-${env}\n",
        ),
        ("environments/staging.yaml", "zone: example.com\n"),
    ]);
    let before = emulator.stats_total();
    let output = flareops(control.path(), &emulator)
        .args(["plan", "--env", "staging"])
        .output()
        .expect("run flareops");
    assert_eq!(
        output.status.code(),
        Some(0),
        "the control project does not plan: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        emulator.stats_total() > before,
        "the control plan made no request"
    );
}

/// The parser of `expect.txt` refuses what would make a case assert
/// nothing or something else than meant.
#[test]
fn expect_files_are_strict() {
    assert!(parse_expect("env: staging\n").is_err(), "no error");
    assert!(parse_expect("error: infra/a.yaml:1:1\n").is_err(), "no env");
    assert!(
        parse_expect("env: staging\nerror: infra/a.yaml: field\n").is_err(),
        "no position"
    );
    assert!(
        parse_expect("env: staging\nerrors: infra/a.yaml:1:1\n").is_err(),
        "unknown key"
    );
    let expect = parse_expect(
        "# c\nenv: dev\nerror: infra/a.yaml:3:5: kv.x\nmessage: m\nhint: h\nnote: n\n",
    )
    .expect("valid");
    assert_eq!(expect.environment, "dev");
    assert_eq!(expect.errors[0].start, "infra/a.yaml:3:5: kv.x");
    assert_eq!(expect.errors[0].messages, ["m"]);
    assert_eq!(expect.errors[0].hints, ["h"]);
    assert_eq!(expect.errors[0].notes, ["n"]);
    let stderr = "error: infra/a.yaml:3:5: kv.x: m here\nhint: h there\nnote: n\nerror: other\n";
    assert!(check_stderr(&expect, stderr).is_empty());
    let wrong = "error: infra/a.yaml:3:5: kv.x: m here\nerror: other\nhint: h there\nnote: n\n";
    assert!(
        !check_stderr(&expect, wrong).is_empty(),
        "hint under another error"
    );
    assert!(!check_stderr(&expect, "error: infra/a.yaml:3:55: kv.x: m\n").is_empty());
}
