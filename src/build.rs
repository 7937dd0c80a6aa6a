//! The build step of a worker (`build:` in its manifest): runs the
//! project's own command (e.g. `npm ci && npm run build`, which bundles
//! TypeScript and npm dependencies with esbuild), and keeps what it made in
//! a cache under `.flareops/build/`, keyed by what the build reads.
//!
//! - **Identity of a build.** The key is the SHA-256 of the flareops
//!   version, the command, the directory, the output directory and every
//!   input file (path and content): the declared `inputs`, plus the
//!   package manifest and lockfile when present. A build whose key is in the
//!   cache is not run again; its output is put back in place from the cache.
//! - **Isolation.** The command runs in its directory through
//!   [`crate::process::command`] (no credential, no secret value in its
//!   environment), with a timeout after which its whole process group is
//!   killed. Its output is kept in a file and shown only when it fails.
//! - **Clean output.** The output directory belongs to the build: it is
//!   emptied before the command runs, so nothing stale is uploaded.
//!
//! Loading manifests calls [`Builder::ensure`] before reading a built
//! worker's modules; a failure becomes a located manifest error, before any
//! request is made.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Where the cache lives by default, under the project root.
pub const CACHE_DIR: &str = ".flareops/build";
/// Overrides the cache's location (e.g. a directory CI keeps between runs).
pub const CACHE_VAR: &str = "FLAREOPS_BUILD_CACHE";
/// A build's time limit when the manifest sets none.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);
/// Lines of a failed build's output shown in its error.
const TAIL_LINES: usize = 25;
/// Cache entries kept; the least recently used beyond it are removed.
const KEEP_ENTRIES: usize = 16;
/// Files that always count as inputs when they are in the build's
/// directory: the package manifest and every lockfile format.
const ALWAYS_INPUTS: [&str; 7] = [
    "package.json",
    "package-lock.json",
    "npm-shrinkwrap.json",
    "yarn.lock",
    "pnpm-lock.yaml",
    "bun.lock",
    "bun.lockb",
];
/// Directories never read as inputs, wherever they are.
const NEVER_INPUTS: [&str; 2] = ["node_modules", ".git"];

/// A worker's `build:` as the manifest declares it (paths checked and
/// normalized, relative to the project root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildSpec {
    /// The shell command, run by `sh -c` in `dir`.
    pub command: String,
    /// The directory it runs in.
    pub dir: String,
    /// Globs of the files it reads, relative to `dir`.
    pub inputs: Vec<String>,
    /// The directory it writes, relative to the project root (under `dir`).
    pub output: String,
    pub timeout: Duration,
}

/// What [`Builder::ensure`] did for one worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The command ran and succeeded.
    Built { elapsed: Duration },
    /// The cache held this build; its output was put in place.
    Cached,
}

/// One build, for the run's report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The worker's address, e.g. `workers.api`.
    pub worker: String,
    pub key: String,
    pub outcome: Outcome,
}

/// Why a build gave nothing to upload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    #[error("the build's inputs cannot be read: {0}")]
    Inputs(String),
    #[error("the build command cannot be started: {0}")]
    Spawn(String),
    #[error("the build failed ({status})")]
    Failed {
        status: String,
        /// The last lines of its output.
        tail: String,
    },
    #[error("the build did not finish within {}", crate::duration::format(*.timeout))]
    TimedOut { timeout: Duration, tail: String },
    #[error("the build's output cannot be kept or restored: {0}")]
    Cache(String),
}

impl BuildError {
    /// The end of the command's output, when it ran.
    pub fn tail(&self) -> Option<&str> {
        match self {
            BuildError::Failed { tail, .. } | BuildError::TimedOut { tail, .. } => {
                Some(tail.as_str())
            }
            _ => None,
        }
    }
}

/// Runs builds for one flareops run, with one cache.
#[derive(Debug)]
pub struct Builder {
    cache: PathBuf,
    /// Part of every key: another flareops may build differently.
    version: String,
    events: Mutex<Vec<Event>>,
}

impl Builder {
    /// A builder keeping its cache in `cache`.
    pub fn new(cache: PathBuf) -> Builder {
        Builder {
            cache,
            version: format!(
                "{} {}",
                env!("CARGO_PKG_VERSION"),
                option_env!("FLAREOPS_COMMIT").unwrap_or("unknown")
            ),
            events: Mutex::new(Vec::new()),
        }
    }

    /// The builder of a project at `root`: the cache is `FLAREOPS_BUILD_CACHE`
    /// when set, else `root/.flareops/build`.
    pub fn for_project(root: &Path) -> Builder {
        let cache = std::env::var_os(CACHE_VAR)
            .filter(|value| !value.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(CACHE_DIR));
        Builder::new(cache)
    }

    /// The builds done so far, in order.
    pub fn events(&self) -> Vec<Event> {
        self.events.lock().map(|e| e.clone()).unwrap_or_default()
    }

    /// Makes `spec`'s output exist under `root`: from the cache when its
    /// key is there, else by running the command (and keeping the result).
    /// Answers the input files read (path relative to `root` -> content).
    pub fn ensure(
        &self,
        root: &Path,
        worker: &str,
        spec: &BuildSpec,
    ) -> Result<BTreeMap<String, Vec<u8>>, BuildError> {
        let files = read_inputs(root, spec)?;
        let key = key(&self.version, spec, &files);
        let entry = self.cache.join(&key);
        let output = root.join(&spec.output);
        let outcome = if entry.join("out").is_dir() {
            restore(&entry.join("out"), &output)?;
            // Recently used: pruning keeps it.
            let _ = fs::write(entry.join("used"), b"");
            Outcome::Cached
        } else {
            let elapsed = run(root, spec)?;
            if !output.is_dir() {
                return Err(BuildError::Failed {
                    status: "exit status 0".into(),
                    tail: format!(
                        "the command succeeded but wrote no `{}` directory",
                        spec.output
                    ),
                });
            }
            self.store(&key, &output)?;
            Outcome::Built { elapsed }
        };
        if let Ok(mut events) = self.events.lock() {
            events.push(Event {
                worker: worker.to_string(),
                key,
                outcome,
            });
        }
        Ok(files)
    }

    /// Copies a fresh output into the cache (atomically: a temporary
    /// directory renamed into place), then prunes old entries.
    fn store(&self, key: &str, output: &Path) -> Result<(), BuildError> {
        let cache_error = |what: &str, path: &Path, error: std::io::Error| {
            BuildError::Cache(format!("{what} `{}`: {error}", path.display()))
        };
        fs::create_dir_all(&self.cache)
            .map_err(|e| cache_error("cannot create", &self.cache, e))?;
        let staging = tempfile::Builder::new()
            .prefix(".partial-")
            .tempdir_in(&self.cache)
            .map_err(|e| cache_error("cannot write in", &self.cache, e))?;
        copy_tree(output, &staging.path().join("out"))
            .map_err(|e| cache_error("cannot copy the output", output, e))?;
        let staged = staging.keep();
        let entry = self.cache.join(key);
        if fs::rename(&staged, &entry).is_err() {
            // Another run stored the same key first: its copy is as good.
            let _ = fs::remove_dir_all(&staged);
        }
        self.prune();
        Ok(())
    }

    /// Removes the least recently used entries beyond [`KEEP_ENTRIES`].
    fn prune(&self) {
        let Ok(listing) = fs::read_dir(&self.cache) else {
            return;
        };
        let mut entries: Vec<(std::time::SystemTime, PathBuf)> = listing
            .filter_map(Result::ok)
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .filter_map(|e| {
                let path = e.path();
                let used = fs::metadata(path.join("used"))
                    .or_else(|_| fs::metadata(&path))
                    .and_then(|m| m.modified())
                    .ok()?;
                Some((used, path))
            })
            .collect();
        if entries.len() <= KEEP_ENTRIES {
            return;
        }
        entries.sort();
        let excess = entries.len() - KEEP_ENTRIES;
        for (_, path) in entries.into_iter().take(excess) {
            let _ = fs::remove_dir_all(path);
        }
    }
}

/// The files a build reads, as paths relative to the project root, sorted.
pub fn input_files(root: &Path, spec: &BuildSpec) -> Result<Vec<String>, BuildError> {
    // Absolute: a pattern starting with `./` matches nothing.
    let root = &root
        .canonicalize()
        .map_err(|e| BuildError::Inputs(format!("the project root: {e}")))?;
    let base = root.join(&spec.dir);
    let mut files: Vec<String> = Vec::new();
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    let prefix = base
        .to_str()
        .ok_or_else(|| BuildError::Inputs("the project's path is not UTF-8".into()))?;
    let mut patterns: Vec<String> = spec.inputs.clone();
    patterns.extend(ALWAYS_INPUTS.iter().map(|name| name.to_string()));
    for (index, pattern) in patterns.iter().enumerate() {
        let declared = index < spec.inputs.len();
        let found = files.len();
        let full = format!("{}/{}", glob::Pattern::escape(prefix), pattern);
        let paths = glob::glob_with(&full, options)
            .map_err(|e| BuildError::Inputs(format!("invalid glob `{pattern}`: {}", e.msg)))?;
        for path in paths {
            let path = path.map_err(|e| BuildError::Inputs(e.to_string()))?;
            if !path.is_file() {
                continue;
            }
            let Ok(relative) = path.strip_prefix(root) else {
                continue;
            };
            let relative = relative
                .components()
                .map(|c| c.as_os_str().to_string_lossy().into_owned())
                .collect::<Vec<_>>()
                .join("/");
            if !never_read(spec, &relative) {
                files.push(relative);
            }
        }
        if declared && files.len() == found {
            return Err(BuildError::Inputs(format!(
                "the input glob `{pattern}` matches no file in `{}` (globs are relative to the build's `dir`)",
                spec.dir
            )));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// Whether `path` is never an input: under `node_modules`, `.git` or the
/// build's output, whatever the globs say.
fn never_read(spec: &BuildSpec, path: &str) -> bool {
    path.split('/').any(|part| NEVER_INPUTS.contains(&part))
        || path == spec.output
        || path.starts_with(&format!("{}/", spec.output))
}

/// Whether `path` (relative to the project root) is one of the build's
/// inputs: what [`input_files`] would list if the file existed.
pub fn is_input(spec: &BuildSpec, path: &str) -> bool {
    let Some(within) = path
        .strip_prefix(spec.dir.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return false;
    };
    if never_read(spec, path) {
        return false;
    }
    let options = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    spec.inputs
        .iter()
        .map(String::as_str)
        .chain(ALWAYS_INPUTS)
        .filter_map(|pattern| glob::Pattern::new(pattern).ok())
        .any(|pattern| pattern.matches_with(within, options))
}

/// The input files and their contents.
fn read_inputs(root: &Path, spec: &BuildSpec) -> Result<BTreeMap<String, Vec<u8>>, BuildError> {
    input_files(root, spec)?
        .into_iter()
        .map(|file| {
            let content = fs::read(root.join(&file))
                .map_err(|e| BuildError::Inputs(format!("cannot read `{file}`: {e}")))?;
            Ok((file, content))
        })
        .collect()
}

/// The build's key (see the module doc).
fn key(version: &str, spec: &BuildSpec, files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut hasher = Sha256::new();
    let mut line = |text: &str| {
        hasher.update(text.as_bytes());
        hasher.update(b"\n");
    };
    line("flareops build 1");
    line(version);
    line(&spec.command);
    line(&spec.dir);
    line(&spec.output);
    for (file, content) in files {
        line(&format!("{file} {}", hex::encode(Sha256::digest(content))));
    }
    hex::encode(hasher.finalize())
}

/// Runs the command; answers how long it took.
fn run(root: &Path, spec: &BuildSpec) -> Result<Duration, BuildError> {
    let output = root.join(&spec.output);
    if output.exists() {
        fs::remove_dir_all(&output).map_err(|e| {
            BuildError::Spawn(format!(
                "cannot empty the output directory `{}`: {e}",
                spec.output
            ))
        })?;
    }
    let mut log = tempfile::tempfile()
        .map_err(|e| BuildError::Spawn(format!("cannot create a file for its output: {e}")))?;
    let stdout = log
        .try_clone()
        .map_err(|e| BuildError::Spawn(e.to_string()))?;
    let stderr = log
        .try_clone()
        .map_err(|e| BuildError::Spawn(e.to_string()))?;
    let mut command = shell(&spec.command);
    command
        .current_dir(root.join(&spec.dir))
        .stdin(std::process::Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // Its own process group, so a timeout kills what it started too.
        command.process_group(0);
    }
    let started = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| BuildError::Spawn(format!("`{}`: {e}", spec.command)))?;
    let status = wait_timeout::ChildExt::wait_timeout(&mut child, spec.timeout)
        .map_err(|e| BuildError::Spawn(e.to_string()))?;
    let Some(status) = status else {
        kill_group(&mut child);
        return Err(BuildError::TimedOut {
            timeout: spec.timeout,
            tail: tail(&mut log),
        });
    };
    if !status.success() {
        return Err(BuildError::Failed {
            status: status.to_string(),
            tail: tail(&mut log),
        });
    }
    Ok(started.elapsed())
}

/// `sh -c command` (`cmd /C` on Windows), with a scrubbed environment.
fn shell(command_line: &str) -> std::process::Command {
    if cfg!(windows) {
        let mut command = crate::process::command("cmd");
        command.arg("/C").arg(command_line);
        command
    } else {
        let mut command = crate::process::command("sh");
        command.arg("-c").arg(command_line);
        command
    }
}

/// Kills the command and everything in its process group.
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals a process group; it
        // touches no memory of this process.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last [`TAIL_LINES`] lines of the output file.
fn tail(log: &mut fs::File) -> String {
    let mut text = Vec::new();
    if log.seek(SeekFrom::Start(0)).is_err() || log.read_to_end(&mut text).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&text);
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(TAIL_LINES);
    lines[start..].join("\n")
}

/// Copies the regular files of `from` into `to` (created).
fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else if kind.is_file() {
            fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Every regular file under `dir`: relative path -> content.
fn files_of(dir: &Path) -> std::io::Result<BTreeMap<PathBuf, Vec<u8>>> {
    fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) -> std::io::Result<()> {
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            if kind.is_dir() {
                walk(base, &entry.path(), out)?;
            } else if kind.is_file() {
                let path = entry.path();
                let relative = path.strip_prefix(base).unwrap_or(&path).to_path_buf();
                out.insert(relative, fs::read(&path)?);
            }
        }
        Ok(())
    }
    let mut out = BTreeMap::new();
    if dir.is_dir() {
        walk(dir, dir, &mut out)?;
    }
    Ok(out)
}

/// Puts a cached output in place, unless the output already holds exactly it.
fn restore(cached: &Path, output: &Path) -> Result<(), BuildError> {
    let error = |e: std::io::Error| {
        BuildError::Cache(format!(
            "restoring `{}` from the cache: {e}",
            output.display()
        ))
    };
    if files_of(cached).map_err(error)? == files_of(output).map_err(error)? {
        return Ok(());
    }
    if output.exists() {
        fs::remove_dir_all(output).map_err(error)?;
    }
    copy_tree(cached, output).map_err(error)
}

#[cfg(test)]
mod tests;
