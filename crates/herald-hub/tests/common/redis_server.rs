//! A real `redis-server` for one test: its own loopback port, its own
//! directory (append-only file on, fsynced on every write), stopped when
//! dropped. Shared by the herald-hub and herald test suites (herald's
//! includes this file by path).
//!
//! `./test.sh` installs Debian's redis-server when it is missing; without
//! it these tests fail, saying so, rather than skip.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long redis-server may take to say it is ready.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A running redis-server.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    /// Served over TLS only (`rediss://`).
    tls: bool,
    /// Options given on top of the defaults.
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts a server in a fresh directory named after `name` (unique
    /// within one test binary).
    pub fn start(name: &str) -> RedisServer {
        RedisServer::start_with(name, false, &[])
    }

    /// Starts a server with `extra` redis-server options, serving TLS
    /// only when `tls` (the options must then name its certificate).
    pub fn start_with(name: &str, tls: bool, extra: &[&str]) -> RedisServer {
        let dir = std::env::temp_dir().join(format!("herald-redis-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        // A free port can be taken by someone else before redis binds it:
        // then redis says so and exits, and another port is tried.
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let mut server = RedisServer {
                child: None,
                port,
                dir: dir.clone(),
                tls,
                extra: extra.iter().map(|s| s.to_string()).collect(),
            };
            if server.launch().is_ok() {
                return server;
            }
        }
        panic!("redis-server could not bind a free port in 20 tries");
    }

    /// `redis://127.0.0.1:PORT/0` (`rediss://localhost:PORT/0` over TLS).
    pub fn url(&self) -> String {
        if self.tls {
            format!("rediss://localhost:{}/0", self.port)
        } else {
            format!("redis://127.0.0.1:{}/0", self.port)
        }
    }

    /// Starts redis-server on `self.port` and waits for it to accept
    /// connections; `Err` when the port was taken.
    fn launch(&mut self) -> Result<(), String> {
        // Made here, not once in `start_with`: a try that found its port
        // taken drops its `RedisServer`, and the drop removes the
        // directory the next try is given.
        std::fs::create_dir_all(&self.dir).unwrap();
        let port = self.port.to_string();
        let listen: [&str; 4] = if self.tls {
            ["--port", "0", "--tls-port", &port]
        } else {
            ["--port", &port, "--tls-port", "0"]
        };
        let mut child = Command::new("redis-server")
            .args(["--bind", "127.0.0.1"])
            .args(listen)
            .arg("--dir")
            .arg(&self.dir)
            .args(["--appendonly", "yes", "--appendfsync", "always", "--save", ""])
            .args(["--daemonize", "no", "--protected-mode", "no"])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): install Debian's redis-server package (./test.sh does)")
            });
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // What redis-server says before its log starts (a bad option, a
        // directory it cannot enter) goes to stderr: every line of it.
        let errors = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = errors.send(line);
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // Only the lines that matter go to the waiting test; the
                // rest of the log is drained so the server never blocks.
                if line.contains("Ready to accept connections") || line.contains("# ") {
                    let _ = tx.send(line);
                }
            }
        });
        let deadline = std::time::Instant::now() + READY_WITHIN;
        let mut said = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("Ready to accept connections") => {
                    self.child = Some(child);
                    return Ok(());
                }
                Ok(line) => said.push(line),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = child.wait().unwrap();
                    if said.iter().any(|l| l.contains("Address already in use")) {
                        return Err(format!("port {} is taken", self.port));
                    }
                    panic!(
                        "redis-server exited ({status}) before it was ready:\n{}",
                        said.join("\n")
                    );
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "redis-server was not ready within {READY_WITHIN:?}:\n{}",
                        said.join("\n")
                    );
                }
            }
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("redis-server is running").id()
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the server.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Stops the server the hard way (SIGKILL): only what its append-only
    /// file holds survives.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills the server and starts it again on the same port and
    /// directory, reading back its append-only file.
    pub fn restart(&mut self) {
        self.kill();
        // The port was just ours; a stranger taking it in between would
        // make this fail loudly, never silently.
        self.launch()
            .unwrap_or_else(|e| panic!("redis-server did not restart on port {}: {e}", self.port));
    }

    /// Runs a `redis-cli` command against the server and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("cannot run redis-cli (Debian's redis-tools package)");
        assert!(out.status.success(), "redis-cli {args:?} failed");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
