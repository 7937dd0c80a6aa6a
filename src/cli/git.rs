//! Git: the commit a run deploys (for version messages and the journal),
//! and the manifests at an earlier commit (for revert and drift).

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

/// `flareops <short commit>`, with `+dirty` when the work tree has
/// changes (other than the local account's state in `.flareops/`), or
/// `flareops (not a git checkout)`.
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
            // The local account's state (`.flareops/`) is not a manifest.
            let dirty = run(&["status", "--porcelain", "--", ".", ":(exclude).flareops"])
                .is_some_and(|s| !s.is_empty());
            format!("flareops {commit}{}", if dirty { "+dirty" } else { "" })
        }
        None => "flareops (not a git checkout)".to_string(),
    }
}

/// The repository's files at `reference`, in a temporary directory.
pub(super) fn checkout(root: &Path, reference: &str) -> anyhow::Result<tempfile::TempDir> {
    let snapshot = tempfile::tempdir().context("creating a directory for the revert")?;
    let archive: PathBuf = snapshot.path().join(".revert.tar");
    let status = Command::new("git")
        .args(["archive", "--format=tar", "-o"])
        .arg(&archive)
        .arg(reference)
        .current_dir(root)
        .status()
        .context("running git")?;
    if !status.success() {
        bail!(
            "git cannot read revision `{reference}` of {}\nhint: name a commit, tag or branch of this repository",
            root.display()
        );
    }
    let status = Command::new("tar")
        .arg("-xf")
        .arg(&archive)
        .arg("-C")
        .arg(snapshot.path())
        .status()
        .context("running tar")?;
    if !status.success() {
        bail!("cannot unpack revision `{reference}`");
    }
    std::fs::remove_file(&archive).context("removing the revision archive")?;
    Ok(snapshot)
}

/// `flareops <short commit>` of `reference` (a commit, tag or branch), as
/// [`describe`] names the commit a run deploys.
pub fn describe_revision(root: &Path, reference: &str) -> anyhow::Result<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--short=12", "--verify"])
        .arg(format!("{reference}^{{commit}}"))
        .current_dir(root)
        .output()
        .context("running git")?;
    if !output.status.success() {
        bail!(
            "git cannot read revision `{reference}` of {}\nhint: name a commit, tag or branch of this repository",
            root.display()
        );
    }
    Ok(format!(
        "flareops {}",
        String::from_utf8_lossy(&output.stdout).trim()
    ))
}
