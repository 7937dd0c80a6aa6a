//! docs/emulator.md lists every endpoint the emulator serves: each row is
//! routed by a running emulator (not the "no route" answer, not 405), and
//! the table has exactly as many rows as the emulator's router registers
//! handlers under `/client/v4`.

use std::path::{Path, PathBuf};

use crate::support::TestEmulator;

/// The (method, path) rows of the endpoint table.
fn documented() -> Vec<(String, String)> {
    let doc =
        std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/emulator.md"))
            .expect("docs/emulator.md");
    doc.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("| ")?;
            let (method, rest) = rest.split_once(" | `")?;
            let (path, _) = rest.split_once("` |")?;
            ["GET", "POST", "PUT", "PATCH", "DELETE"]
                .contains(&method)
                .then(|| (method.to_string(), path.to_string()))
        })
        .collect()
}

/// Handlers the router registers: `get(...)`, `.post(...)` and the like in
/// the `.route(...)` calls of the emulator's sources, outside `mod.rs`
/// (which holds only the emulator's own `/__emulator/` controls) and the
/// presigned D1 transfer links (outside `/client/v4`).
fn registered(dir: &Path, count: &mut usize) {
    for entry in std::fs::read_dir(dir).expect("src/emulator") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            registered(&path, count);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") || path.ends_with("emulator/mod.rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("source");
        for call in text.split(".route(").skip(1) {
            // The call's arguments: up to the parenthesis that closes it.
            let mut depth = 1;
            let end = call
                .char_indices()
                .find(|&(_, c)| {
                    match c {
                        '(' => depth += 1,
                        ')' => depth -= 1,
                        _ => {}
                    }
                    depth == 0
                })
                .map_or(call.len(), |(i, _)| i);
            let arguments = &call[..end];
            if arguments.contains("_LINK}") {
                continue;
            }
            *count += ["get(", "post(", "put(", "patch(", "delete("]
                .iter()
                .map(|method| {
                    arguments
                        .match_indices(method)
                        .filter(|(i, _)| {
                            // A handler, not a name ending in one (`bulk_get(`).
                            !arguments[..*i]
                                .chars()
                                .last()
                                .is_some_and(|c| c.is_alphanumeric() || c == '_')
                        })
                        .count()
                })
                .sum::<usize>();
        }
    }
}

#[test]
fn the_emulator_doc_lists_every_endpoint_and_each_is_served() {
    let rows = documented();
    let mut handlers = 0;
    registered(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/emulator"),
        &mut handlers,
    );
    assert_eq!(
        rows.len(),
        handlers,
        "docs/emulator.md lists {} endpoints; the router registers {handlers} handlers",
        rows.len()
    );
    let emulator = TestEmulator::start();
    let http = reqwest::blocking::Client::new();
    for (method, path) in &rows {
        let concrete = path
            .replace("{account_id}", &emulator.account_id)
            .replace(['{', '}'], "");
        let url = format!("{}{concrete}", emulator.base_url);
        let request = http
            .request(method.parse().expect("method"), &url)
            .bearer_auth(&emulator.token);
        let response = request.send().expect("request");
        let status = response.status().as_u16();
        let body = response.text().unwrap_or_default();
        assert_ne!(status, 405, "{method} {path} is not served: {body}");
        assert!(
            !body.contains("No route for the URI"),
            "{method} {path} is not routed: {body}"
        );
    }
}
