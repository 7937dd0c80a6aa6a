//! The files a manifest points at besides itself: worker modules (`main`,
//! `modules` globs) and secret files (`from_file`). Every path is relative
//! to the project root and must stay inside it, lexically (no absolute
//! paths, no `..`) and physically (the canonical path, symlinks resolved, is
//! under the canonical root).
//!
//! This and reading the manifests are the only I/O of `manifest::load`.

use std::path::{Component, Path, PathBuf};

/// The largest file flareops reads as a module or a secret: 10 MiB, as no
/// file can be larger than a whole Worker may be (10 MB compressed on
/// Workers Paid, 3 MB on Free, per Cloudflare's Workers limits page).
pub(crate) const MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;
/// A `modules` glob may match at most this many files (a guard against a
/// glob such as `**` over a large tree; not a Cloudflare limit).
pub(crate) const MAX_GLOB_MATCHES: usize = 10_000;

/// A problem with a path: what and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathProblem {
    pub message: String,
    pub hint: String,
}

impl PathProblem {
    fn new(message: impl Into<String>, hint: impl Into<String>) -> PathProblem {
        PathProblem {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// The project root, as given and canonical.
#[derive(Debug)]
pub(crate) struct Project {
    root: PathBuf,
    /// `None` when the root cannot be resolved (then every file is refused).
    canonical_root: Option<PathBuf>,
}

impl Project {
    pub fn new(root: &Path) -> Project {
        Project {
            root: root.to_path_buf(),
            canonical_root: root.canonicalize().ok(),
        }
    }

    /// The project root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether the normalized relative path names a regular file.
    pub fn is_file(&self, relative: &str) -> bool {
        self.root.join(relative).is_file()
    }

    /// Whether the normalized relative path names a directory.
    pub fn is_dir(&self, relative: &str) -> bool {
        self.root.join(relative).is_dir()
    }

    /// Checks a path as written in a manifest (`what` names it in messages)
    /// and returns it normalized (`./a//b` -> `a/b`).
    pub fn relative(&self, written: &str, what: &str) -> Result<String, PathProblem> {
        let hint = "paths in manifests are relative to the project root (the directory holding infra/), written with `/`, without `..`";
        if written.is_empty() {
            return Err(PathProblem::new(format!("empty {what} path"), hint));
        }
        if written.contains('\\') {
            return Err(PathProblem::new(
                format!("the {what} path `{written}` contains `\\`"),
                "write paths with `/`, on every platform",
            ));
        }
        let path = Path::new(written);
        let mut parts: Vec<String> = Vec::new();
        for component in path.components() {
            match component {
                Component::Normal(part) => parts.push(part.to_string_lossy().into_owned()),
                Component::CurDir => {}
                Component::ParentDir => {
                    return Err(PathProblem::new(
                        format!(
                            "the {what} path `{written}` uses `..`: it must stay inside the project root"
                        ),
                        hint,
                    ));
                }
                Component::RootDir | Component::Prefix(_) => {
                    return Err(PathProblem::new(
                        format!("the {what} path `{written}` is absolute"),
                        hint,
                    ));
                }
            }
        }
        if parts.is_empty() {
            return Err(PathProblem::new(
                format!("the {what} path `{written}` names the project root, not a file"),
                hint,
            ));
        }
        Ok(parts.join("/"))
    }

    /// Reads a file given by its normalized relative path: it must exist,
    /// be a regular file (after symlinks), resolve inside the root, and be at
    /// most [`MAX_FILE_BYTES`]. Messages name the file, never its content.
    pub fn read(&self, relative: &str, what: &str) -> Result<Vec<u8>, PathProblem> {
        self.read_capped(
            relative,
            what,
            "a whole Worker is at most 10 MB compressed (Workers Paid; 3 MB on Free): check that this is the file you meant",
        )
    }

    /// [`Project::read`] with the hint given when the file is too large.
    pub fn read_capped(
        &self,
        relative: &str,
        what: &str,
        too_large_hint: &str,
    ) -> Result<Vec<u8>, PathProblem> {
        let full = self.root.join(relative);
        let canonical = match full.canonicalize() {
            Ok(path) => path,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let hint = if std::fs::symlink_metadata(&full).is_ok() {
                    "it is a symlink whose target does not exist".to_string()
                } else {
                    "check the path (relative to the project root) and that the file is committed or built before flareops runs".to_string()
                };
                return Err(PathProblem::new(
                    format!("the {what} `{relative}` does not exist"),
                    hint,
                ));
            }
            Err(error) => {
                return Err(PathProblem::new(
                    format!("cannot read the {what} `{relative}`: {error}"),
                    "check the file's permissions",
                ));
            }
        };
        let inside = self
            .canonical_root
            .as_ref()
            .is_some_and(|root| canonical.starts_with(root));
        if !inside {
            return Err(PathProblem::new(
                format!("the {what} `{relative}` leaves the project root through a symlink"),
                "files that flareops reads must be inside the project: copy the file into the project instead of linking to it",
            ));
        }
        let metadata = std::fs::metadata(&canonical).map_err(|error| {
            PathProblem::new(
                format!("cannot read the {what} `{relative}`: {error}"),
                "check the file's permissions",
            )
        })?;
        if !metadata.is_file() {
            return Err(PathProblem::new(
                format!("the {what} `{relative}` is not a file"),
                "point at a file, not a directory",
            ));
        }
        if metadata.len() > MAX_FILE_BYTES {
            return Err(PathProblem::new(
                format!(
                    "the {what} `{relative}` is {:.1} MiB, larger than the 10 MiB limit",
                    metadata.len() as f64 / (1024.0 * 1024.0)
                ),
                too_large_hint,
            ));
        }
        std::fs::read(&canonical).map_err(|error| {
            PathProblem::new(
                format!("cannot read the {what} `{relative}`: {error}"),
                "check the file's permissions",
            )
        })
    }

    /// The entries of a directory given by its normalized relative path (it
    /// must exist, be a directory after symlinks, and resolve inside the
    /// root): each name with its own type (a symlink is a symlink, not what
    /// it points at), in no particular order.
    pub fn list_dir(
        &self,
        relative: &str,
        what: &str,
    ) -> Result<Vec<(std::ffi::OsString, std::fs::FileType)>, PathProblem> {
        let full = self.root.join(relative);
        let canonical = match full.canonicalize() {
            Ok(path) => path,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let hint = if std::fs::symlink_metadata(&full).is_ok() {
                    "it is a symlink whose target does not exist".to_string()
                } else {
                    "check the path (relative to the project root) and that the directory is committed".to_string()
                };
                return Err(PathProblem::new(
                    format!("the {what} `{relative}` does not exist"),
                    hint,
                ));
            }
            Err(error) => {
                return Err(PathProblem::new(
                    format!("cannot read the {what} `{relative}`: {error}"),
                    "check the directory's permissions",
                ));
            }
        };
        let inside = self
            .canonical_root
            .as_ref()
            .is_some_and(|root| canonical.starts_with(root));
        if !inside {
            return Err(PathProblem::new(
                format!("the {what} `{relative}` leaves the project root through a symlink"),
                "directories that flareops reads must be inside the project: move the directory into the project instead of linking to it",
            ));
        }
        if !canonical.is_dir() {
            return Err(PathProblem::new(
                format!("the {what} `{relative}` is not a directory"),
                "point at the directory holding the files, not at a file",
            ));
        }
        let cannot = |error: std::io::Error| {
            PathProblem::new(
                format!("cannot list the {what} `{relative}`: {error}"),
                "check the directory's permissions",
            )
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&canonical).map_err(cannot)? {
            let entry = entry.map_err(cannot)?;
            let kind = entry.file_type().map_err(cannot)?;
            out.push((entry.file_name(), kind));
            if out.len() > MAX_GLOB_MATCHES {
                return Err(PathProblem::new(
                    format!("the {what} `{relative}` holds more than {MAX_GLOB_MATCHES} entries"),
                    "point at a directory holding only the files meant for flareops",
                ));
            }
        }
        Ok(out)
    }

    /// The files (not directories) matching a glob relative to the root,
    /// sorted, as normalized relative paths. `*` does not cross `/` nor match
    /// a leading `.`; `**` matches any number of directories.
    pub fn glob(&self, pattern: &str) -> Result<Vec<String>, PathProblem> {
        let hint = "globs are relative to the project root, e.g. `workers/api/src/lib/*.js` or `workers/api/src/**/*.js`";
        if pattern.is_empty() {
            return Err(PathProblem::new("empty glob", hint));
        }
        if pattern.starts_with('/') || pattern.contains('\\') {
            return Err(PathProblem::new(
                format!("the glob `{pattern}` is not a relative `/`-separated path"),
                hint,
            ));
        }
        if pattern.split('/').any(|part| part == "..") {
            return Err(PathProblem::new(
                format!("the glob `{pattern}` uses `..`: it must stay inside the project root"),
                hint,
            ));
        }
        if let Err(error) = glob::Pattern::new(pattern) {
            return Err(PathProblem::new(
                format!(
                    "invalid glob `{pattern}`: {} (at character {})",
                    error.msg,
                    error.pos + 1
                ),
                "`*` matches within a directory, `**` across directories, `?` one character, `[abc]` one of a set",
            ));
        }
        let Some(root) = self.root.to_str() else {
            return Err(PathProblem::new(
                "the project root's path is not valid UTF-8",
                "run flareops from a directory whose path is UTF-8",
            ));
        };
        let full = format!(
            "{}/{}",
            glob::Pattern::escape(root.trim_end_matches('/')),
            pattern
        );
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths = glob::glob_with(&full, options).map_err(|error| {
            PathProblem::new(format!("invalid glob `{pattern}`: {}", error.msg), hint)
        })?;
        let mut out = Vec::new();
        for entry in paths {
            let path = entry.map_err(|error| {
                PathProblem::new(
                    format!(
                        "cannot list `{}` while matching `{pattern}`: {}",
                        self.display(error.path()),
                        error.error()
                    ),
                    "check the directory's permissions, or narrow the glob",
                )
            })?;
            if path.is_dir() {
                continue;
            }
            out.push(self.display(&path));
            if out.len() > MAX_GLOB_MATCHES {
                return Err(PathProblem::new(
                    format!("the glob `{pattern}` matches more than {MAX_GLOB_MATCHES} files"),
                    "narrow the glob to the worker's own source files",
                ));
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// `path` relative to the root, `/`-separated.
    fn display(&self, path: &Path) -> String {
        let relative = path.strip_prefix(&self.root).unwrap_or(path);
        relative
            .components()
            .filter_map(|component| match component {
                Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_stay_inside() {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = Project::new(dir.path());
        assert_eq!(
            project.relative("./workers//api/index.js", "main"),
            Ok("workers/api/index.js".to_string())
        );
        assert!(project.relative("../x.js", "main").is_err());
        assert!(project.relative("a/../../x.js", "main").is_err());
        assert!(project.relative("/etc/passwd", "main").is_err());
        assert!(project.relative(".", "main").is_err());
        assert!(project.relative("a\\b.js", "main").is_err());
    }

    #[test]
    fn globs_match_files_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        for file in [
            "src/a.js",
            "src/lib/b.js",
            "src/lib/c.txt",
            "src/.hidden.js",
        ] {
            let path = dir.path().join(file);
            std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            std::fs::write(path, "x").expect("write");
        }
        let project = Project::new(dir.path());
        assert_eq!(project.glob("src/*.js"), Ok(vec!["src/a.js".to_string()]));
        assert_eq!(
            project.glob("src/**/*.js"),
            Ok(vec!["src/a.js".to_string(), "src/lib/b.js".to_string()])
        );
        assert_eq!(
            project.glob("src/lib/*"),
            Ok(vec![
                "src/lib/b.js".to_string(),
                "src/lib/c.txt".to_string()
            ])
        );
        assert_eq!(project.glob("nothing/*.js"), Ok(vec![]));
        assert!(project.glob("src/[a.js").is_err());
        assert!(project.glob("../*.js").is_err());
    }
}
