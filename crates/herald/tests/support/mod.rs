//! What the `herald` binary's integration tests share: starting `herald
//! serve` and waiting for the line that says it serves, waiting for
//! children with a deadline, signals, scratch directories, and (in
//! [`http`] and [`tls`]) talking to the hub over raw HTTP/1.1 and over TLS.
//!
//! Every wait on a child process goes through [`wait_output`] or
//! [`lines_until`]: a child that hangs fails its test after [`DEADLINE`]
//! instead of hanging the suite.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

pub mod http;
pub mod redis_node;
#[path = "../../../herald-hub/tests/common/redis_server.rs"]
pub mod redis_server;
pub mod storm;
pub mod tls;

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_herald");

/// The longest any test waits for a child to print a line or to exit.
/// Generous, so a loaded machine never trips it: it only turns a hang into
/// a failure.
pub const DEADLINE: Duration = Duration::from_secs(60);

/// The start of the line `herald serve` logs on stderr once it serves,
/// outside development mode.
pub const LISTENING: &str = "Herald hub listening on ";

/// The start of the development banner `herald serve` prints on stdout
/// once it serves, in development mode.
pub const RUNNING: &str = "Herald hub running at ";

/// The hub URL in `line` if it is `herald serve`'s readiness line (either
/// mode's), e.g. `http://127.0.0.1:PORT/.well-known/mercure`.
pub fn readiness_url(line: &str) -> Option<String> {
    let at = match line.find(LISTENING) {
        Some(at) => at + LISTENING.len(),
        None => line.strip_prefix(RUNNING).map(|_| RUNNING.len())?,
    };
    let url: String = line[at..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\x1b')
        .collect();
    url.contains("://").then_some(url)
}

/// `herald`, with no `HERALD_*` variable of the test's own environment
/// leaking in and no colours.
pub fn herald_command() -> Command {
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("HERALD_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("NO_COLOR", "1");
    cmd
}

/// `herald serve ARGS`, as [`herald_command`].
pub fn serve_command(args: &[&str]) -> Command {
    let mut cmd = herald_command();
    cmd.arg("serve").args(args);
    cmd
}

/// Sends `signal` (`TERM`, `INT`, `KILL`, ...) to process `pid`, as an
/// operator (or systemd) does. Through the shell's built-in `kill` (dash's
/// and bash's alike), so the tests need no procps `kill` binary, which a
/// minimal system lacks; the pid is passed as `$1`, never spliced into the
/// script.
pub fn signal(pid: u32, signal: &str) {
    let status = Command::new("sh")
        .args(["-c", r#"kill -s "$0" "$1""#, signal, &pid.to_string()])
        .status()
        .expect("cannot run sh");
    assert!(status.success(), "kill -s {signal} {pid} failed: {status}");
}

/// Sends SIGTERM to process `pid`.
pub fn sigterm(pid: u32) {
    signal(pid, "TERM");
}

/// Waits for `child` to exit and collects what it wrote to the pipes still
/// in it. A child still running after [`DEADLINE`] is killed and the test
/// fails.
pub fn wait_output(child: Child) -> Output {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(output) => output.expect("cannot wait for the child"),
        Err(_) => {
            signal(pid, "KILL");
            panic!("child {pid} still running after {DEADLINE:?}; killed it");
        }
    }
}

/// Runs `cmd` to its end, with no input, and returns its output (see
/// [`wait_output`] for the deadline): `Command::output` with no hang.
pub fn output(cmd: &mut Command) -> Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    wait_output(child)
}

/// A child process, killed when dropped.
pub struct Killed(Option<Child>);

impl Killed {
    pub fn new(child: Child) -> Killed {
        Killed(Some(child))
    }

    pub fn child(&mut self) -> &mut Child {
        self.0
            .as_mut()
            .expect("the child is there until waited for")
    }

    pub fn id(&self) -> u32 {
        self.0.as_ref().expect("the child is there").id()
    }

    /// Waits for the child to exit by itself (see [`wait_output`]).
    pub fn wait(mut self) -> ExitStatus {
        let child = self.0.take().expect("the child is there");
        wait_output(child).status
    }

    /// SIGKILL, and waits until the process is gone.
    pub fn kill(mut self) {
        let mut child = self.0.take().expect("the child is there");
        child.kill().expect("cannot kill the child");
        wait_output(child);
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Which of a child's outputs a line came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// A child's stdout and stderr lines, read in the background (so the
/// child never blocks on a full pipe) and handed over as they come.
pub struct Printed {
    rx: Receiver<(Stream, String)>,
    /// The stdout lines handed over so far.
    pub stdout: Vec<String>,
    /// The stderr lines handed over so far.
    pub stderr: Vec<String>,
}

impl Printed {
    /// Reads whichever of `child`'s stdout and stderr are piped (and not
    /// taken yet).
    pub fn new(child: &mut Child) -> Printed {
        let (tx, rx) = mpsc::channel();
        if let Some(out) = child.stdout.take() {
            read_lines(out, Stream::Stdout, tx.clone());
        }
        if let Some(err) = child.stderr.take() {
            read_lines(err, Stream::Stderr, tx);
        }
        Printed {
            rx,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }

    /// The next line on either output, within [`DEADLINE`]; `None` once
    /// both ended.
    pub fn next(&mut self) -> Option<(Stream, &str)> {
        let (stream, line) = match self.rx.recv_timeout(DEADLINE) {
            Ok(next) => next,
            Err(mpsc::RecvTimeoutError::Disconnected) => return None,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                panic!("no line within {DEADLINE:?}; so far:\n{self:?}")
            }
        };
        let lines = match stream {
            Stream::Stdout => &mut self.stdout,
            Stream::Stderr => &mut self.stderr,
        };
        lines.push(line);
        lines.last().map(|l| (stream, l.as_str()))
    }

    /// Reads lines until one on `stream` satisfies `done` and returns it;
    /// the test fails if the outputs end first.
    pub fn until(&mut self, stream: Stream, done: impl Fn(&str) -> bool) -> String {
        loop {
            match self.next() {
                Some((s, line)) if s == stream && done(line) => return line.to_string(),
                Some(_) => {}
                None => panic!("the output ended before the awaited line:\n{self:?}"),
            }
        }
    }
}

impl std::fmt::Debug for Printed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Printed")
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

fn read_lines(
    output: impl Read + Send + 'static,
    stream: Stream,
    tx: mpsc::Sender<(Stream, String)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(output).lines().map_while(Result::ok) {
            if tx.send((stream, line)).is_err() {
                break;
            }
        }
    });
}

/// Reads lines from `output` (a child's stdout or stderr) until one
/// satisfies `done`, within [`DEADLINE`], and returns them all; the rest of
/// the output is drained in the background so the child never blocks on
/// it.
pub fn lines_until(output: impl Read + Send + 'static, done: impl Fn(&str) -> bool) -> Vec<String> {
    let (tx, rx) = mpsc::channel();
    read_lines(output, Stream::Stdout, tx);
    let mut printed = Printed {
        rx,
        stdout: Vec::new(),
        stderr: Vec::new(),
    };
    printed.until(Stream::Stdout, done);
    let Printed { rx, stdout, .. } = printed;
    std::thread::spawn(move || while rx.recv().is_ok() {});
    stdout
}

/// A running `herald serve`, started by [`start`]; killed when dropped.
pub struct Serving {
    pub child: Killed,
    /// The hub endpoint from the readiness line, e.g.
    /// `http://127.0.0.1:PORT/.well-known/mercure`.
    pub url: String,
    /// Its `host:port`.
    pub addr: String,
    /// What it printed through the readiness line; read on with
    /// [`Printed::until`].
    pub printed: Printed,
}

impl Serving {
    /// Waits for the hub to exit by itself (after a signal, say).
    pub fn wait(self) -> ExitStatus {
        self.child.wait()
    }
}

/// Spawns `cmd` (a `herald serve`) and waits for its readiness line: the
/// banner on stdout in development mode, the log line on stderr otherwise.
/// The test fails if the hub exits, or says nothing, first.
pub fn start(mut cmd: Command) -> Serving {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run herald serve");
    let mut printed = Printed::new(&mut child);
    let child = Killed::new(child);
    let url = loop {
        match printed.next() {
            Some((_, line)) => {
                if let Some(url) = readiness_url(line) {
                    break url;
                }
            }
            None => panic!("herald serve exited before it was ready:\n{printed:?}"),
        }
    };
    let addr = address_in(&url).expect("a host:port in the URL");
    Serving {
        child,
        url,
        addr,
        printed,
    }
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
    let mut cmd = tokio::process::Command::from(herald_command());
    cmd.kill_on_drop(true);
    cmd
}

/// Runs `cmd` (an async [`herald_async`] command) to its end with `stdin`
/// as its input and returns its output; a child still running after
/// [`DEADLINE`] fails the test (and is killed, being dropped).
pub async fn run_async(cmd: &mut tokio::process::Command, stdin: &str) -> Output {
    use tokio::io::AsyncWriteExt;

    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot run herald");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).await.unwrap();
    drop(input);
    tokio::time::timeout(DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("herald did not finish within {DEADLINE:?}"))
        .expect("cannot wait for herald")
}

/// A `herald serve` on a free loopback port, started by
/// [`start_hub_async`]; killed when dropped.
pub struct AsyncHub {
    pub child: tokio::process::Child,
    /// The hub endpoint, e.g. `http://127.0.0.1:PORT/.well-known/mercure`.
    pub url: String,
}

/// Starts `herald serve` with memory history, anonymous subscribers and
/// `key` as the JWT key, plus `extra` options, and waits (up to
/// [`DEADLINE`]) for its readiness line. Its log keeps being drained in the
/// background.
pub async fn start_hub_async(key: &str, extra: &[&str]) -> AsyncHub {
    let mut cmd = herald_async();
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--jwt-key", key])
        .args(["--anonymous", "--history", "memory", "--log", "info"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    start_ready(cmd).await
}

/// The draft-08 issuer the CLI tests' hubs trust ([`start_hub_with_issuer`]).
pub const ISSUER: &str = "https://app.example";
/// [`ISSUER`]'s HS256 secret.
pub const ACCESS_SECRET: &str = "access-token-secret-of-the-issuer";

/// [`start_hub_async`] trusting [`ISSUER`]'s HS256 secret for access
/// tokens, speaking `protocol` (`both`, `08` or `07`); its draft-07 key
/// is `draft07-key`.
pub async fn start_hub_with_issuer(protocol: &str) -> AsyncHub {
    start_hub_async(
        "draft07-key",
        &[
            "--issuer",
            &format!("{ISSUER}=secret:{ACCESS_SECRET}"),
            "--access-token-alg",
            "HS256",
            "--protocol",
            protocol,
        ],
    )
    .await
}

/// Spawns `cmd` (a `herald serve` with stderr piped) and waits (up to
/// [`DEADLINE`]) for its readiness line; panics with its log if it exits
/// first. Its log keeps being drained in the background.
pub async fn start_ready(mut cmd: tokio::process::Command) -> AsyncHub {
    use tokio::io::AsyncBufReadExt;

    let mut child = cmd.spawn().expect("cannot run herald serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let url = tokio::time::timeout(DEADLINE, async {
        let mut seen = Vec::new();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(url) = readiness_url(&line) {
                return url;
            }
            seen.push(line);
        }
        panic!("herald serve exited before it was ready: {seen:#?}");
    })
    .await
    .expect("herald serve was not ready within the deadline");
    // Keep draining the log so the hub never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    AsyncHub { child, url }
}
