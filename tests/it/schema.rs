//! The manifests' JSON Schema (`flareops schema`): the committed copies
//! under `schemas/` are what the command prints; every example manifest
//! validates against it with a maintained validator (the `jsonschema`
//! crate); and every case of the bad-input corpus that the loader refuses
//! for its shape (an unknown field, a value of the wrong type, a missing
//! required field) is refused by the schema too.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::support::flareops_bin;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn printed(kind: &str) -> String {
    let output = std::process::Command::new(flareops_bin())
        .args(["schema", kind])
        .output()
        .expect("run flareops schema");
    assert!(output.status.success());
    String::from_utf8(output.stdout).expect("utf-8")
}

fn validator(kind: &str) -> jsonschema::Validator {
    let schema: Value = serde_json::from_str(&printed(kind)).expect("the schema is JSON");
    jsonschema::validator_for(&schema).expect("a valid JSON Schema")
}

/// A YAML file as JSON (what an editor's YAML language server validates).
fn yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).expect("read YAML");
    serde_saphyr::from_str::<Value>(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

#[test]
fn the_committed_schemas_are_what_flareops_schema_prints() {
    for (kind, file) in [
        ("infra", "schemas/infra.schema.json"),
        ("environment", "schemas/environment.schema.json"),
    ] {
        let committed = std::fs::read_to_string(repo().join(file)).expect(file);
        assert_eq!(
            committed,
            printed(kind),
            "{file} is stale: run `flareops schema {kind} > {file}`"
        );
    }
}

#[test]
fn every_example_manifest_validates_and_names_its_schema() {
    for (kind, dir) in [("infra", "infra"), ("environment", "environments")] {
        let validator = validator(kind);
        let files = yaml_files(&repo().join(dir));
        assert!(!files.is_empty(), "{dir}/ holds manifests");
        for file in files {
            let text = std::fs::read_to_string(&file).expect("read");
            assert!(
                text.starts_with(&format!(
                    "# yaml-language-server: $schema=../schemas/{kind}.schema.json\n"
                )),
                "{} starts with the schema modeline",
                file.display()
            );
            let errors: Vec<String> = validator
                .iter_errors(&yaml(&file))
                .map(|e| format!("{} at {}", e, e.instance_path()))
                .collect();
            assert!(errors.is_empty(), "{}: {errors:?}", file.display());
        }
    }
}

/// Whether a bad case's expected message is about shape (a field unknown,
/// missing or of the wrong type), which a schema can see; other cases
/// (names after interpolation, crons, collisions...) are the loader's.
fn shape_problem(expect: &str) -> bool {
    expect.lines().any(|line| {
        line.starts_with("message:")
            && (line.contains("unknown field")
                || line.contains("missing field")
                || line.contains("expected a ")
                || line.contains("expected `true` or `false`"))
    })
}

#[test]
fn bad_cases_refused_for_their_shape_are_refused_by_the_schema() {
    let infra = validator("infra");
    let environment = validator("environment");
    let corpus = repo().join("tests/fixtures/bad");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .expect("the bad corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    cases.sort();
    let mut checked = Vec::new();
    let mut missed = Vec::new();
    for case in cases {
        let Ok(expect) = std::fs::read_to_string(case.join("expect.txt")) else {
            continue;
        };
        // Files generated when the corpus runs are not in the fixture.
        if !shape_problem(&expect) || expect.lines().any(|l| l.starts_with("generate:")) {
            continue;
        }
        let mut refused = false;
        let mut parsed_any = false;
        for (validator, dir) in [(&infra, "infra"), (&environment, "environments")] {
            for file in yaml_files(&case.join(dir)) {
                let text = std::fs::read_to_string(&file).unwrap_or_default();
                // A file YAML itself refuses is not the schema's to judge.
                let Ok(value) = serde_saphyr::from_str::<Value>(&text) else {
                    continue;
                };
                parsed_any = true;
                refused |= !validator.is_valid(&value);
            }
        }
        if !parsed_any {
            continue;
        }
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        if refused {
            checked.push(name);
        } else {
            missed.push(name);
        }
    }
    assert!(
        missed.is_empty(),
        "shape problems the loader refuses but the schema accepts: {missed:?}"
    );
    assert!(
        checked.len() >= 5,
        "the corpus has shape cases to check: {checked:?}"
    );
}
