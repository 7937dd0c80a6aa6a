//! The action's install step (`.github/actions/flareops/install.sh`) run with the runner's
//! environment faked: a loopback file server serves a fake release (an archive holding a fake
//! `flareops` and a `SHA256SUMS`), and each test checks what the script did, not only its exit:
//! the binary it put on `GITHUB_PATH`, the outputs it wrote, the requests the server saw.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

const TAG: &str = "v9.8.7";
const ASSET: &str = "flareops-x86_64-unknown-linux-musl.tar.gz";

/// Serves files under `root` on an ephemeral loopback port; records each path requested.
struct FileServer {
    url: String,
    requests: Arc<Mutex<Vec<String>>>,
}

impl FileServer {
    fn start(root: PathBuf) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a loopback port");
        let url = format!("http://{}", listener.local_addr().expect("local addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().expect("clone stream"));
                let mut line = String::new();
                if reader.read_line(&mut line).is_err() {
                    continue;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
                // Drain the request headers.
                let mut header = String::new();
                while reader.read_line(&mut header).is_ok_and(|n| n > 2) {
                    header.clear();
                }
                seen.lock().expect("lock").push(path.clone());
                let file = root.join(path.trim_start_matches('/'));
                let _ = match std::fs::read(&file) {
                    Ok(body) => stream
                        .write_all(
                            format!(
                                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                                body.len()
                            )
                            .as_bytes(),
                        )
                        .and_then(|()| stream.write_all(&body)),
                    Err(_) => stream.write_all(
                        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    ),
                };
            }
        });
        Self { url, requests }
    }

    fn asset_downloads(&self) -> usize {
        self.requests
            .lock()
            .expect("lock")
            .iter()
            .filter(|p| p.ends_with(ASSET))
            .count()
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".github/actions/flareops/install.sh")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("run a command")
}

/// A fake release under `root/TAG/`: the archive and `SHA256SUMS` (with `checksum`, or the
/// archive's real checksum when `None`).
fn fake_release(root: &Path, checksum: Option<&str>) {
    let rel = root.join(TAG);
    let stage = root.join("stage/flareops-x86_64-unknown-linux-musl");
    std::fs::create_dir_all(&rel).expect("mkdir");
    std::fs::create_dir_all(&stage).expect("mkdir");
    std::fs::write(
        stage.join("flareops"),
        "#!/bin/sh\necho fake-flareops \"$@\"\n",
    )
    .expect("write");
    let out = run(Command::new("chmod").arg("+x").arg(stage.join("flareops")));
    assert!(out.status.success());
    let out = run(Command::new("tar")
        .arg("-czf")
        .arg(rel.join(ASSET))
        .arg("-C")
        .arg(root.join("stage"))
        .arg("flareops-x86_64-unknown-linux-musl"));
    assert!(
        out.status.success(),
        "tar: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sum = match checksum {
        Some(sum) => sum.to_owned(),
        None => {
            let out = run(Command::new("sha256sum").arg(rel.join(ASSET)));
            assert!(out.status.success());
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .expect("a checksum")
                .to_owned()
        }
    };
    std::fs::write(rel.join("SHA256SUMS"), format!("{sum}  {ASSET}\n")).expect("write sums");
}

struct Runner {
    dir: tempfile::TempDir,
}

impl Runner {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        for d in ["temp", "toolcache"] {
            std::fs::create_dir_all(dir.path().join(d)).expect("mkdir");
        }
        Self { dir }
    }

    fn install(&self, base_url: &str) -> Output {
        let p = self.dir.path();
        // Fresh output files per step, as the runner does.
        std::fs::write(p.join("github_path"), "").expect("write");
        std::fs::write(p.join("github_output"), "").expect("write");
        run(Command::new("bash")
            .arg(script())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FLAREOPS_VERSION", TAG)
            .env("FLAREOPS_REPO", "example/flareops")
            .env("FLAREOPS_BASE_URL", base_url)
            .env("RUNNER_OS", "Linux")
            .env("RUNNER_ARCH", "X64")
            .env("RUNNER_TEMP", p.join("temp"))
            .env("RUNNER_TOOL_CACHE", p.join("toolcache"))
            .env("GITHUB_PATH", p.join("github_path"))
            .env("GITHUB_OUTPUT", p.join("github_output")))
    }

    fn outputs(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("github_output")).expect("read outputs")
    }

    fn path_added(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("github_path"))
            .expect("read path")
            .trim()
            .to_owned()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&out.stdout)
}

#[test]
fn action_install_verifies_and_runs_the_release_binary_then_hits_the_cache() {
    let served = tempfile::tempdir().expect("tempdir");
    fake_release(served.path(), None);
    let server = FileServer::start(served.path().to_path_buf());
    let runner = Runner::new();

    let first = runner.install(&server.url);
    assert!(first.status.success(), "first install: {}", stderr(&first));
    assert!(
        runner.outputs().contains("cache-hit=false"),
        "{}",
        runner.outputs()
    );
    assert_eq!(server.asset_downloads(), 1);
    let bin = Path::new(&runner.path_added()).join("flareops");
    let ran = run(Command::new(&bin).arg("--version"));
    assert_eq!(
        String::from_utf8_lossy(&ran.stdout).trim(),
        "fake-flareops --version"
    );

    let second = runner.install(&server.url);
    assert!(
        second.status.success(),
        "second install: {}",
        stderr(&second)
    );
    assert!(
        runner.outputs().contains("cache-hit=true"),
        "{}",
        runner.outputs()
    );
    assert_eq!(
        server.asset_downloads(),
        1,
        "a cache hit downloads no archive"
    );
}

#[test]
fn action_install_refuses_an_archive_whose_checksum_does_not_match() {
    let served = tempfile::tempdir().expect("tempdir");
    fake_release(served.path(), Some(&"0".repeat(64)));
    let server = FileServer::start(served.path().to_path_buf());
    let runner = Runner::new();

    let out = runner.install(&server.url);
    assert!(!out.status.success(), "a wrong checksum must fail");
    assert!(
        stderr(&out).contains("checksum mismatch"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.asset_downloads(), 1);
    assert_eq!(runner.path_added(), "", "nothing is put on the PATH");
    let cached = runner.dir.path().join("toolcache/flareops/9.8.7");
    assert!(!cached.exists(), "nothing is cached: {}", cached.display());
}

#[test]
fn action_install_refuses_a_runner_without_a_release_binary() {
    let runner = Runner::new();
    let p = runner.dir.path();
    std::fs::write(p.join("github_path"), "").expect("write");
    std::fs::write(p.join("github_output"), "").expect("write");
    let out = run(Command::new("bash")
        .arg(script())
        .env("FLAREOPS_VERSION", TAG)
        .env("FLAREOPS_REPO", "example/flareops")
        .env("FLAREOPS_BASE_URL", "http://127.0.0.1:9/unused")
        .env("RUNNER_OS", "Windows")
        .env("RUNNER_ARCH", "ARM64")
        .env("RUNNER_TEMP", p.join("temp"))
        .env("GITHUB_PATH", p.join("github_path"))
        .env("GITHUB_OUTPUT", p.join("github_output")));
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("no flareops release binary for Windows/ARM64"),
        "{}",
        stderr(&out)
    );
}
