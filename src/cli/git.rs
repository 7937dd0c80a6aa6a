//! Git: the commit a run deploys (for version messages and the journal),
//! and the manifests at an earlier commit (for revert and drift).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

/// `flareops <short commit>`, with `+dirty` when a file flareops reads
/// (`paths`, git pathspecs: [`crate::model::DesiredState::source_paths`])
/// differs from the commit, or `flareops (not a git checkout)`. Other
/// changed or untracked files (a saved plan, a log) do not count. Empty
/// `paths`: the whole work tree (but the local account's state).
pub fn describe(root: &Path, paths: &[String]) -> String {
    let run = |args: &[&str]| {
        output(root, args).map(|out| String::from_utf8_lossy(&out).trim().to_string())
    };
    match run(&["rev-parse", "--short=12", "HEAD"]) {
        Some(commit) => {
            // The local account's state (`.flareops/`) is not a manifest.
            let mut args: Vec<&str> = vec!["status", "--porcelain", "--"];
            if paths.is_empty() {
                args.push(".");
            } else {
                args.extend(paths.iter().map(String::as_str));
            }
            args.push(":(exclude).flareops");
            let dirty = run(&args).is_some_and(|s| !s.is_empty());
            format!("flareops {commit}{}", if dirty { "+dirty" } else { "" })
        }
        None => "flareops (not a git checkout)".to_string(),
    }
}

/// What `git args` in `root` prints, when it succeeds.
fn output(root: &Path, args: &[&str]) -> Option<Vec<u8>> {
    crate::process::command("git")
        .args(args)
        .current_dir(root)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| o.stdout)
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

/// For each built worker whose serving version is not what git declares
/// (its modules were downloaded for a diff), reads the build's input files
/// as git holds them at the commit recorded on that version, so the plan
/// shows the change in the sources. A commit git does not have (a shallow
/// clone, a hand deploy) leaves the bundle's diff.
pub(super) fn attach_deployed_sources(
    root: &Path,
    desired: &crate::model::DesiredState,
    live: &mut crate::model::LiveState,
) {
    for declared in desired.workers.values() {
        let Some(build) = &declared.spec.build else {
            continue;
        };
        let Some(worker) = live
            .workers
            .iter_mut()
            .find(|w| w.name == declared.spec.name)
        else {
            continue;
        };
        if worker.content.is_none() {
            continue;
        }
        let Some(commit) = worker
            .current_version()
            .and_then(|v| v.message.as_deref())
            .and_then(committed)
            .map(str::to_owned)
        else {
            continue;
        };
        worker.deployed_sources =
            sources_at(root, &commit, &build.spec).map(|files| crate::model::DeployedSources {
                commit: commit.clone(),
                files,
            });
    }
}

/// For each declared Pages project whose serving deployment flareops made
/// from a commit git has, with other files than git declares now: the
/// files of its folder at that commit (site path -> hash), so the plan
/// lists the files a deployment adds, changes and removes.
pub(super) fn attach_deployed_pages_files(
    root: &Path,
    desired: &crate::model::DesiredState,
    live: &mut crate::model::LiveState,
) {
    for declared in desired.pages_projects.values() {
        let spec = &declared.spec;
        let Some(project) = live.pages_projects.iter_mut().find(|p| p.name == spec.name) else {
            continue;
        };
        let Some(deployment) = &project.canonical else {
            continue;
        };
        if deployment.digest.is_none() || deployment.digest.as_deref() == Some(&spec.digest()) {
            continue;
        }
        let Some(commit) = committed(&deployment.commit).map(str::to_owned) else {
            continue;
        };
        project.deployed_files = site_files_at(root, &commit, &spec.dir)
            // Only when git's files are the ones deployed.
            .filter(|files| {
                crate::model::manifest_digest(files.iter().map(|(p, h)| (p.as_str(), h.as_str())))
                    == *deployment.digest.as_deref().unwrap_or_default()
            });
    }
}

/// The site folder `dir` at `commit`: site path -> asset hash.
fn site_files_at(
    root: &Path,
    commit: &str,
    dir: &str,
) -> Option<std::collections::BTreeMap<String, String>> {
    let git = |args: &[&str]| output(root, args);
    let listing = git(&["ls-tree", "-r", "-z", "--name-only", commit, "--", dir])?;
    let mut files = std::collections::BTreeMap::new();
    for path in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).into_owned();
        let Some(site_path) = path.strip_prefix(dir).filter(|p| p.starts_with('/')) else {
            continue;
        };
        if crate::model::site_path_ignored(site_path) {
            continue;
        }
        let content = git(&["show", &format!("{commit}:./{path}")])?;
        files.insert(
            site_path.to_string(),
            crate::model::asset_hash(&content, site_path),
        );
    }
    Some(files)
}

/// The build's input files at `commit` (path -> content), `None` when git
/// cannot read them.
fn sources_at(
    root: &Path,
    commit: &str,
    spec: &crate::build::BuildSpec,
) -> Option<std::collections::BTreeMap<String, Vec<u8>>> {
    let git = |args: &[&str]| output(root, args);
    // Paths relative to the project root (ls-tree's default from a subdirectory).
    let listing = git(&[
        "ls-tree",
        "-r",
        "-z",
        "--name-only",
        commit,
        "--",
        &spec.dir,
    ])?;
    let mut files = std::collections::BTreeMap::new();
    for path in listing.split(|b| *b == 0).filter(|p| !p.is_empty()) {
        let path = String::from_utf8_lossy(path).into_owned();
        if !crate::build::is_input(spec, &path) {
            continue;
        }
        let content = git(&["show", &format!("{commit}:./{path}")])?;
        files.insert(path, content);
    }
    Some(files)
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
