//! `herald serve` as a user runs it: the real binary, over real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{address_in, lines_until, serve_command, sigterm, Killed, TempDir, BIN};

/// A `herald serve` child process and the stdout lines read so far.
struct Server {
    _child: Killed,
    stdout: Vec<String>,
}

fn serve(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = serve_command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Starts the server and reads its stdout until a line containing `until`.
fn start(mut cmd: Command, until: &str) -> Server {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let lines = lines_until(stdout, |l| l.contains(until));
    Server {
        _child: Killed(child),
        stdout: lines,
    }
}

/// Sends a raw HTTP/1.1 request and returns the whole answer (the server
/// closes the connection after it).
fn exchange(addr: &str, request: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    tcp.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = tcp.read_to_string(&mut out);
    out
}

fn publish_request(addr: &str, token: &str, body: &str) -> String {
    format!(
        "POST /.well-known/mercure HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// Opens a subscription and returns the socket once the headers arrived.
/// The head is read a byte at a time, so no event that follows it in the
/// same packet (a replay, say) is consumed with it.
fn open_stream(addr: &str, query: &str) -> TcpStream {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        tcp,
        "GET /.well-known/mercure?{query} HTTP/1.1\r\nhost: {addr}\r\n\r\n"
    )
    .unwrap();
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        let n = tcp.read(&mut byte).unwrap();
        assert!(n > 0, "stream closed before headers");
        seen.push(byte[0]);
    }
    assert!(String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"));
    tcp
}

/// How [`read_stream`] stopped reading.
#[derive(Debug, PartialEq, Eq)]
enum Until {
    /// The needle arrived.
    Found,
    /// The peer closed the connection (a read returned 0 bytes).
    Eof,
    /// A read failed: the socket's read timeout (`WouldBlock` or
    /// `TimedOut`), a reset, ...
    Failed(ErrorKind),
}

/// Reads from a stream until `needle` appears, it ends, or a read fails
/// (e.g. times out), and returns which along with everything read.
fn read_stream(tcp: &mut TcpStream, needle: &str) -> (Until, String) {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let until = loop {
        if String::from_utf8_lossy(&seen).contains(needle) {
            break Until::Found;
        }
        match tcp.read(&mut buf) {
            Ok(0) => break Until::Eof,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => break Until::Failed(e.kind()),
        }
    };
    (until, String::from_utf8_lossy(&seen).into_owned())
}

/// Reads from a stream until `needle` appears (true) or it ends or a read
/// fails (false).
fn read_until(tcp: &mut TcpStream, needle: &str) -> (bool, String) {
    let (until, seen) = read_stream(tcp, needle);
    (until == Until::Found, seen)
}

/// Runs `cmd`, which should fail at start, and returns its output; if it
/// is still running after 20 s (it started after all), it gets SIGTERM and
/// the test fails instead of hanging.
fn output_of_failed_start(mut cmd: Command) -> std::process::Output {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(20)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            sigterm(pid);
            panic!(
                "herald serve {:?} started",
                cmd.get_args().collect::<Vec<_>>()
            );
        }
    }
}

fn field<'a>(lines: &'a [String], label: &str) -> &'a str {
    lines
        .iter()
        .find_map(|l| l.trim().strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in {lines:#?}"))
        .trim()
}

#[test]
fn with_no_key_on_loopback_it_starts_a_working_development_hub() {
    // The README's command, with the default durable history in a scratch
    // directory instead of ./herald-data (not there yet: the hub makes it).
    let scratch = TempDir::new("dev-test");
    let data_dir = scratch.join("herald-data");
    let server = start(
        serve(
            &[
                "--listen",
                "127.0.0.1:0",
                "--data-dir",
                data_dir.to_str().unwrap(),
            ],
            &[],
        ),
        "Publisher token:",
    );
    let url = server.stdout[0]
        .strip_prefix("Herald hub running at ")
        .expect("the URL first");
    let addr = url
        .strip_prefix("http://")
        .and_then(|u| u.strip_suffix("/.well-known/mercure"))
        .unwrap()
        .to_string();
    let token = field(&server.stdout, "Publisher token:").to_string();
    assert!(server.stdout.iter().any(|l| l.contains("DEVELOPMENT MODE")));

    // Anonymous subscribers are admitted; the printed token publishes.
    let mut stream = open_stream(&addr, "topic=https%3A%2F%2Fexample.com%2Fhello");
    let answer = exchange(
        &addr,
        &publish_request(
            &addr,
            &token,
            "topic=https%3A%2F%2Fexample.com%2Fhello&data=Hello",
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    let id = answer.rsplit("\r\n\r\n").next().unwrap().trim().to_string();
    assert!(id.starts_with("urn:uuid:"), "{id}");
    let (found, seen) = read_until(&mut stream, "data: Hello");
    assert!(found, "{seen}");
    assert!(seen.contains(&format!("id: {id}")), "{seen}");
    assert!(
        data_dir.join("history.redb").exists(),
        "history is durable by default"
    );
    drop(server);
}

#[test]
fn without_a_key_on_a_public_address_it_refuses_to_start_and_says_what_to_do() {
    let output = serve(&["--listen", "0.0.0.0:0"], &[]).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--jwt-key") && stderr.contains("HERALD_JWT_KEY"),
        "{stderr}"
    );
}

#[test]
fn sigterm_ends_streams_and_exits_zero() {
    let mut cmd = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--anonymous",
            "--history",
            "memory",
        ],
        &[("HERALD_JWT_KEY", "a-production-secret-of-enough-length")],
    );
    // Killed if an assertion fails before the hub exits by itself.
    let mut child = Killed(
        cmd.stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The address is logged on stderr outside development mode.
    let stderr = child.0.stderr.take().unwrap();
    let lines = lines_until(stderr, |l| l.contains("listening on http://"));
    let addr = lines.last().and_then(|l| address_in(l)).unwrap();
    let mut stream = open_stream(&addr, "topic=a");
    sigterm(child.0.id());
    // The hub closes the stream: the read sees the end of the connection,
    // not its 10 s read timeout.
    let (until, seen) = read_stream(&mut stream, "never-sent");
    assert_eq!(until, Until::Eof, "the stream did not end; read: {seen:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    let code = loop {
        if let Some(code) = child.0.try_wait().unwrap() {
            break code;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
}

#[test]
fn memory_history_drops_events_past_the_age_limit() {
    let key = "an-age-limit-secret-of-enough-length";
    let mut child = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--anonymous",
            "--history",
            "memory",
            "--history-max-age",
            "2s",
        ],
        &[("HERALD_JWT_KEY", key)],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let stderr = child.stderr.take().unwrap();
    let _child = Killed(child);
    let lines = lines_until(stderr, |l| l.contains("listening on http://"));
    let addr = lines.last().and_then(|l| address_in(l)).unwrap();
    let claims = herald_hub::auth::Claims {
        publish: Some(vec!["*".into()]),
        ..Default::default()
    };
    let token =
        herald_hub::auth::mint(jsonwebtoken::Algorithm::HS256, key.as_bytes(), &claims).unwrap();

    let answer = exchange(&addr, &publish_request(&addr, &token, "topic=a&id=old"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    std::thread::sleep(Duration::from_millis(2500));
    let answer = exchange(&addr, &publish_request(&addr, &token, "topic=a&id=new"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Replay from the start holds only what is younger than two seconds.
    let mut stream = open_stream(&addr, "topic=a&lastEventID=earliest");
    let (found, seen) = read_until(&mut stream, "id: new");
    assert!(found, "{seen}");
    assert!(
        !seen.contains("id: old"),
        "an expired event was replayed: {seen}"
    );
}

#[test]
fn options_come_from_a_toml_file_and_flags_win() {
    let dir = TempDir::new("serve-test");
    let file = dir.join("herald.toml");
    let config = file.to_str().unwrap();

    // A flag's invalid value wins over the file's valid one.
    std::fs::write(&file, "jwt-key = \"file-secret-file-secret-file-secret\"\nanonymous = true\nheartbeat = \"40s\"\n").unwrap();
    let output = output_of_failed_start(serve(&["--config", config, "--heartbeat", "soon"], &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--heartbeat"),
        "the flag overrode the file: {stderr}"
    );

    // The file's invalid value is read, and refused, when no flag is given...
    std::fs::write(&file, "jwt-key = \"file-secret-file-secret-file-secret\"\nanonymous = true\nheartbeat = \"soon\"\n").unwrap();
    let output = output_of_failed_start(serve(
        &[
            "--config",
            config,
            "--listen",
            "127.0.0.1:0",
            "--history",
            "memory",
        ],
        &[],
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "started with heartbeat = \"soon\""
    );
    assert!(
        stderr.contains("--heartbeat") && stderr.contains("soon"),
        "{stderr}"
    );

    // ...and a valid flag wins over it: the hub starts, with the file's key
    // (no development mode: the address is logged on stderr) and its
    // anonymous subscribers.
    let mut child = Killed(
        serve(
            &[
                "--config",
                config,
                "--heartbeat",
                "40s",
                "--listen",
                "127.0.0.1:0",
                "--history",
                "memory",
            ],
            &[],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let lines = lines_until(stderr, |l| l.contains("listening on http://"));
    let addr = lines.last().and_then(|l| address_in(l)).unwrap();
    drop(open_stream(&addr, "topic=a"));
    drop(child);

    std::fs::write(&file, "jwt-key = \"x\"\nno-such-option = 1\n").unwrap();
    let output = output_of_failed_start(serve(&["--config", config], &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no-such-option"), "{stderr}");
}

#[test]
fn help_explains_each_option_with_its_default() {
    let output = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--listen",
        "127.0.0.1:8080",
        "--jwt-key",
        "HERALD_JWT_KEY",
        "--heartbeat",
        "40s",
        "--history-size",
        "--cors-origin",
        "Examples:",
    ] {
        assert!(help.contains(needle), "{needle} missing from\n{help}");
    }
}
