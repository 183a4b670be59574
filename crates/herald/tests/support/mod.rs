//! What the `herald` binary's integration tests share: starting `herald
//! serve`, reading what it prints, and scratch directories.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// `herald serve ARGS`, with no `HERALD_*` variable of the test's own
/// environment leaking in.
pub fn serve_command(args: &[&str]) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("serve").args(args);
    for (key, _) in std::env::vars() {
        if key.starts_with("HERALD_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Sends SIGTERM to process `pid`, as an operator (or systemd) ends the
/// hub. Through the shell's built-in `kill` (dash's and bash's alike), so
/// the tests need no procps `kill` binary, which a minimal system lacks;
/// the pid is passed as `$0`, never spliced into the script.
pub fn sigterm(pid: u32) {
    let status = Command::new("sh")
        .args(["-c", r#"kill -TERM "$0""#, &pid.to_string()])
        .status()
        .expect("cannot run sh");
    assert!(status.success(), "kill -TERM {pid} failed: {status}");
}

/// A child process, killed when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Reads lines from `output` (a child's stdout or stderr) until one
/// satisfies `done`, within 20 s, and returns them all; the rest of the
/// output is drained in the background so the child never blocks on it.
pub fn lines_until(output: impl Read + Send + 'static, done: impl Fn(&str) -> bool) -> Vec<String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lines = Vec::new();
    while !lines.last().is_some_and(|l: &String| done(l)) {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the awaited line never came; output so far: {lines:#?}"));
        lines.push(line);
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    lines
}

/// The `host:port` of the first URL in `line`.
pub fn address_in(line: &str) -> Option<String> {
    let rest = line.split("://").nth(1)?;
    let addr: String = rest
        .chars()
        .take_while(|c| *c != '/' && !c.is_whitespace())
        .collect();
    (!addr.is_empty()).then_some(addr)
}

/// A fresh, empty scratch directory, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// `herald-NAME-PID` in the system's temporary directory, emptied and
    /// created. `name` must be unique among the tests of one test binary.
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("herald-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }

    /// `NAME` inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `herald` as a tokio process, for async tests: no `HERALD_*` variable
/// of the test's environment, no colours, killed when dropped.
pub fn herald_async() -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("HERALD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1").kill_on_drop(true);
    cmd
}

/// A `herald serve` on a free loopback port, started by
/// [`start_hub_async`]; killed when dropped.
pub struct AsyncHub {
    pub child: tokio::process::Child,
    /// The hub endpoint, e.g. `http://127.0.0.1:PORT/.well-known/mercure`.
    pub url: String,
}

/// Starts `herald serve` with memory history, anonymous subscribers and
/// `key` as the JWT key, plus `extra` options, and waits (up to 20 s) for
/// the address it prints. Its log keeps being drained in the background.
pub async fn start_hub_async(key: &str, extra: &[&str]) -> AsyncHub {
    use tokio::io::AsyncBufReadExt;

    let mut child = herald_async()
        .args(["serve", "--listen", "127.0.0.1:0", "--jwt-key", key])
        .args(["--anonymous", "--history", "memory", "--log", "info"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run herald serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(at) = line.find("https://").or_else(|| line.find("http://")) {
                return line[at..]
                    .chars()
                    .take_while(|c| !c.is_whitespace() && *c != '\x1b')
                    .collect::<String>();
            }
        }
        panic!("herald serve exited without printing its address");
    })
    .await
    .expect("herald serve did not start within 20 s");
    // Keep draining the log so the hub never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    AsyncHub { child, url }
}
