//! Git: the commit a run deploys (for version messages and the journal),
//! and the manifests at an earlier commit (for revert and drift).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// `flareops <short commit>`, with `+dirty` when the work tree has
/// changes (other than the local account's state in `.flareops/`), or
/// `flareops (not a git checkout)`.
pub fn describe(root: &Path) -> String {
    let run = |args: &[&str]| {
        crate::process::command("git")
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
    let status = crate::process::command("git")
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
    let status = crate::process::command("tar")
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

/// The bare commit of what [`describe`] names (`flareops 0123abcd` ->
/// `0123abcd`); the journal records it with or without the prefix.
pub fn bare(described: &str) -> &str {
    described.strip_prefix("flareops ").unwrap_or(described)
}

/// The commit whose files git holds, from what [`describe`] named: `None`
/// when the manifests were uncommitted (`+dirty`) or not in git at all.
pub fn committed(described: &str) -> Option<&str> {
    let commit = bare(described);
    let clean = !commit.is_empty() && !commit.contains("+dirty") && !commit.contains(' ');
    clean.then_some(commit)
}

/// `flareops <short commit>` of `reference` (a commit, tag or branch), as
/// [`describe`] names the commit a run deploys.
pub fn describe_revision(root: &Path, reference: &str) -> anyhow::Result<String> {
    let output = crate::process::command("git")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_commits_are_read_with_or_without_the_prefix() {
        assert_eq!(bare("flareops 0123abcd"), "0123abcd");
        assert_eq!(bare("0123abcd"), "0123abcd");
        assert_eq!(committed("flareops 0123abcd"), Some("0123abcd"));
        assert_eq!(committed("0123abcd+dirty"), None);
        assert_eq!(committed("flareops (not a git checkout)"), None);
        assert_eq!(committed(""), None);
    }
}
