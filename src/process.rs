//! The one way flareops starts another program (git, tar, hostname, and
//! the build commands to come): with an environment that holds no
//! credential. flareops runs next to pull-request code in CI, so a child
//! must not be a way to read the API token or a secret value: the child
//! gets only the variables on an allowlist (where programs live, the
//! user's home and locale, temporary directories, git's own settings),
//! never `CLOUDFLARE_*`, `FLAREOPS_*` or a secret's `from_env` variable,
//! whatever its name.

use std::ffi::{OsStr, OsString};
use std::process::Command;

/// Variables a child may see, by exact name.
const ALLOWED: [&str; 30] = [
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "SHELL",
    "LANG",
    "LANGUAGE",
    "TZ",
    "TERM",
    "NO_COLOR",
    "TMPDIR",
    "TMP",
    "TEMP",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    // A build (npm) behind a proxy or a private CA, and the CI marker tools
    // read to stay non-interactive.
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "NODE_EXTRA_CA_CERTS",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CI",
    "NODE_ENV",
    // Windows: where programs, profiles and the system live.
    "SYSTEMROOT",
    "WINDIR",
    "COMSPEC",
    "PATHEXT",
    "USERPROFILE",
    "APPDATA",
    "LOCALAPPDATA",
];

/// Prefixes of variables a child may see: the locale, and git's own
/// settings (which name paths and options, not credentials).
const ALLOWED_PREFIXES: [&str; 2] = ["LC_", "GIT_"];

/// Whether a child may see the variable `name`.
fn allowed(name: &OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    // Credentials git would use to reach a remote are not needed to read
    // the local repository.
    if name.starts_with("GIT_") && (name.contains("TOKEN") || name.contains("ASKPASS")) {
        return false;
    }
    ALLOWED
        .iter()
        .any(|allowed| name.eq_ignore_ascii_case(allowed))
        || ALLOWED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
}

/// The part of `vars` a child may see.
fn scrubbed(vars: impl IntoIterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    vars.into_iter().filter(|(name, _)| allowed(name)).collect()
}

/// `program`, to run with this process's environment scrubbed of every
/// credential (see the module doc). Every child flareops starts is made
/// here.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_clear().envs(scrubbed(std::env::vars_os()));
    command
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn credentials_and_secret_values_never_reach_a_child() {
        let kept = scrubbed(vars(&[
            ("PATH", "/usr/bin"),
            ("HOME", "/home/ci"),
            ("LC_ALL", "C.UTF-8"),
            ("GIT_DIR", "/repo/.git"),
            ("CLOUDFLARE_API_TOKEN", "token-value"),
            ("CLOUDFLARE_API_KEY", "key-value"),
            ("FLAREOPS_LOCK_LEASE_SECONDS", "60"),
            ("KLEAR_KARMA_JWT_SECRET", "secret-value"),
            ("GITHUB_TOKEN", "gh-token"),
            ("GIT_ASKPASS", "/bin/askpass"),
            ("NPM_TOKEN", "npm-token"),
        ]));
        let names: Vec<&str> = kept.iter().map(|(k, _)| k.to_str().unwrap()).collect();
        assert_eq!(names, ["PATH", "HOME", "LC_ALL", "GIT_DIR"]);
    }

    /// A real child, printing its environment, sees none of them.
    #[cfg(unix)]
    #[test]
    fn a_child_that_prints_its_environment_finds_no_credential() {
        let output = command("env").output().expect("run env");
        assert!(output.status.success());
        let printed = String::from_utf8_lossy(&output.stdout);
        for line in printed.lines() {
            let name = line.split('=').next().unwrap_or_default();
            assert!(allowed(OsStr::new(name)), "the child saw {name}");
            assert!(!name.starts_with("CLOUDFLARE_") && !name.starts_with("FLAREOPS_"));
        }
    }
}
