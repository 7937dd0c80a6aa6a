//! Records the commit flareops is built from, for `flareops --version`.
//!
//! `FLAREOPS_COMMIT` set in the build's environment wins (the release workflow
//! sets it); otherwise `git rev-parse` in the source tree; a source tarball
//! without `.git` (or a machine without git) gives "unknown".
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=FLAREOPS_COMMIT");
    println!("cargo:rerun-if-changed=build.rs");
    // Only a real `.git` directory: a path that does not exist would rerun
    // this script (and rebuild the crate) on every build.
    if std::path::Path::new(".git").is_dir() {
        println!("cargo:rerun-if-changed=.git/HEAD");
        println!("cargo:rerun-if-changed=.git/refs/heads");
    }
    let commit = std::env::var("FLAREOPS_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            if !out.status.success() {
                return None;
            }
            let text = String::from_utf8(out.stdout).ok()?;
            let text = text.trim();
            (!text.is_empty()).then(|| text.to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=FLAREOPS_COMMIT={}", commit.trim());
}
