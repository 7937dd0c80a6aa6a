//! The git commit a run deploys, for version messages.

use std::path::Path;
use std::process::Command;

/// `flareops <short commit>`, with `+dirty` when the work tree has
/// changes, or `flareops (not a git checkout)`.
pub fn describe(root: &Path) -> String {
    let run = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            let dirty = run(&["status", "--porcelain"]).is_some_and(|s| !s.is_empty());
            format!("flareops {commit}{}", if dirty { "+dirty" } else { "" })
        }
        None => "flareops (not a git checkout)".to_string(),
    }
}
