//! `herald serve` as a user runs it: the real binary, over real sockets.
//! The lifecycle: readiness, signals, shutdown with work in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use support::http::{
    connect, exchange, id_in, open_stream, publish, publish_head, publisher_token, read_head,
    read_stream, read_until, replay, Until,
};
use support::{serve_command, signal, start, Serving, Stream, TempDir, BIN};

const KEY: &str = "a-production-secret-of-enough-length";

fn serve(args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = serve_command(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A hub with `KEY` (not development mode), anonymous subscribers and
/// memory history, plus `extra`, once it says it is listening.
fn start_hub(extra: &[&str]) -> Serving {
    let mut args = vec![
        "--listen",
        "127.0.0.1:0",
        "--anonymous",
        "--history",
        "memory",
    ];
    args.extend_from_slice(extra);
    start(serve(&args, &[("HERALD_JWT_KEY", KEY)]))
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
    let mut server = start(serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &[],
    ));
    // Development mode says it is ready with its banner, on stdout.
    assert!(
        server.printed.stdout.len() == 1
            && server.printed.stdout[0] == format!("Herald hub running at {}", server.url),
        "{:?}",
        server.printed
    );
    server
        .printed
        .until(Stream::Stdout, |l| l.contains("Publisher token:"));
    let addr = server.addr.clone();
    assert_eq!(server.url, format!("http://{addr}/.well-known/mercure"));
    let stdout = &server.printed.stdout;
    let token = field(stdout, "Publisher token:").to_string();
    assert!(stdout.iter().any(|l| l.contains("DEVELOPMENT MODE")));

    // Anonymous subscribers are admitted; the printed token publishes.
    let mut stream = open_stream(&addr, "topic=https%3A%2F%2Fexample.com%2Fhello");
    let id = publish(
        &addr,
        &token,
        "topic=https%3A%2F%2Fexample.com%2Fhello&data=Hello",
    );
    assert!(id.starts_with("urn:uuid:"), "{id}");
    let (found, seen) = read_until(&mut stream, "data: Hello");
    assert!(found, "{seen}");
    assert!(seen.contains(&format!("id: {id}")), "{seen}");
    assert!(
        data_dir.join("history.redb").exists(),
        "history is durable by default"
    );
}

#[test]
fn without_a_key_on_a_public_address_it_refuses_to_start_and_says_what_to_do() {
    let output = support::output(&mut serve(&["--listen", "0.0.0.0:0"], &[]));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--jwt-key") && stderr.contains("HERALD_JWT_KEY"),
        "{stderr}"
    );
}

/// Starts a hub, opens a stream, sends `sig` and checks that the stream
/// ends (the read sees the end of the connection, not its read timeout)
/// and the hub exits with status 0.
fn signal_ends_streams_and_exits_zero(sig: &str) {
    let server = start_hub(&[]);
    // Outside development mode the readiness line is the log's, on stderr.
    assert!(
        server.printed.stderr.last().unwrap().contains(&format!(
            "Herald hub listening on http://{}/.well-known/mercure",
            server.addr
        )),
        "{:?}",
        server.printed
    );
    let mut stream = open_stream(&server.addr, "topic=a");
    signal(server.child.id(), sig);
    let (until, seen) = read_stream(&mut stream, "never-sent");
    assert_eq!(until, Until::Eof, "the stream did not end; read: {seen:?}");
    let status = server.wait();
    assert!(status.success(), "SIG{sig}: {status:?}");
}

#[test]
fn sigterm_ends_streams_and_exits_zero() {
    signal_ends_streams_and_exits_zero("TERM");
}

#[test]
fn sigint_ends_streams_and_exits_zero() {
    signal_ends_streams_and_exits_zero("INT");
}

#[test]
fn a_signal_right_after_the_readiness_line_is_a_graceful_exit() {
    // Both modes: the log line (with a key) and the banner (without one).
    // The signal follows the line at once: the handlers must be in place
    // by then, or the default action kills the hub (status: signal 15).
    let with_key = start_hub(&[]);
    signal(with_key.child.id(), "TERM");
    let status = with_key.wait();
    assert!(status.success(), "with a key: {status:?}");

    let dev = start(serve(
        &["--listen", "127.0.0.1:0", "--history", "memory"],
        &[],
    ));
    assert!(dev.printed.stdout[0].starts_with("Herald hub running at "));
    signal(dev.child.id(), "TERM");
    let status = dev.wait();
    assert!(status.success(), "development mode: {status:?}");
}

#[test]
fn a_publish_under_way_at_sigterm_is_answered_and_stored() {
    let dir = TempDir::new("in-flight");
    let data_dir = dir.0.to_str().unwrap();
    let server = start(serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--anonymous",
            "--data-dir",
            data_dir,
        ],
        &[("HERALD_JWT_KEY", KEY)],
    ));
    let addr = server.addr.clone();
    let token = publisher_token(KEY);
    let mut stream = open_stream(&addr, "topic=a");
    // A keep-alive connection left idle after one answer: the server
    // closes it when it tells its connections to stop.
    let mut idle = connect(&addr).unwrap();
    write!(idle, "GET /healthz HTTP/1.1\r\nhost: {addr}\r\n\r\n").unwrap();
    let head = read_head(&mut idle);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(read_stream(&mut idle, "ok\n").0, Until::Found);

    // The publish is under way: its head is read and its handler waits for
    // the body (the 100 Continue says so), half of which has been sent.
    let body = "topic=a&id=in-flight&data=finished";
    let (first, rest) = body.split_at(body.len() / 2);
    let mut publishing = connect(&addr).unwrap();
    let head = publish_head(&addr, &token, body.len())
        .replace("\r\n\r\n", "\r\nexpect: 100-continue\r\n\r\n");
    publishing.write_all(head.as_bytes()).unwrap();
    let continued = read_head(&mut publishing);
    assert!(continued.starts_with("HTTP/1.1 100"), "{continued}");
    publishing.write_all(first.as_bytes()).unwrap();

    signal(server.child.id(), "TERM");
    // The hub is stopping: streams have ended and idle connections closed.
    let (until, seen) = read_stream(&mut stream, "never-sent");
    assert_eq!(until, Until::Eof, "the stream did not end; read: {seen:?}");
    let (until, seen) = read_stream(&mut idle, "never-sent");
    assert_eq!(
        until,
        Until::Eof,
        "the idle connection stayed open: {seen:?}"
    );

    publishing.write_all(rest.as_bytes()).unwrap();
    let (until, answer) = read_stream(&mut publishing, "never-sent");
    assert_eq!(until, Until::Eof, "{answer}");
    assert_eq!(id_in(&answer).as_deref(), Some("in-flight"), "{answer}");
    let status = server.wait();
    assert!(status.success(), "{status:?}");

    // The event is in the history the next run opens.
    let server = start(serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--anonymous",
            "--data-dir",
            data_dir,
        ],
        &[("HERALD_JWT_KEY", KEY)],
    ));
    publish(&server.addr, &token, "topic=a&data=end");
    let (events, _) = replay(&server.addr, "a", "earliest", "end");
    assert_eq!(
        events,
        vec![("finished".to_string(), "in-flight".to_string())]
    );
}

// With --subscriptions on, the streams a SIGTERM ends are announced as
// ended before the hub exits: the `active: false` events are in the
// history the next run opens (draft-08 §Subscription Events: an update
// every time a subscription is terminated).
#[test]
fn the_subscriptions_a_sigterm_ends_are_announced_before_the_exit() {
    const STREAMS: usize = 200;
    let dir = TempDir::new("settle");
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--anonymous",
        "--subscriptions",
        "on",
        "--data-dir",
        dir.0.to_str().unwrap(),
    ];
    let server = start(serve(&args, &[("HERALD_JWT_KEY", KEY)]));
    // Each head comes once its start is announced. Many streams, so that
    // their ends take the hub a while to store.
    let mut streams: Vec<_> = (0..STREAMS)
        .map(|_| open_stream(&server.addr, "match=books"))
        .collect();
    signal(server.child.id(), "TERM");
    for stream in &mut streams {
        assert_eq!(read_stream(stream, "never-sent").0, Until::Eof);
    }
    let status = server.wait();
    assert!(status.success(), "{status:?}");

    let server = start(serve(&args, &[("HERALD_JWT_KEY", KEY)]));
    let claims = herald_hub::auth::Claims {
        subscribe: Some(vec!["*".into()]),
        ..Default::default()
    };
    let token =
        herald_hub::auth::mint(jsonwebtoken::Algorithm::HS256, KEY.as_bytes(), &claims).unwrap();
    let mut watcher = open_stream(
        &server.addr,
        &format!("match_urlpattern=%2F.well-known%2Fmercure%2Fsubscriptions%2Fexact%2Fbooks%2F*&match=marker&last_event_id=earliest&authorization={token}"),
    );
    publish(&server.addr, &publisher_token(KEY), "topic=marker&data=end");
    let (found, seen) = read_until(&mut watcher, "data: end");
    assert!(found, "{seen}");
    let books = "\"id\":\"/.well-known/mercure/subscriptions/exact/books/";
    assert!(seen.contains(&format!("\"active\":true,{books}")), "{seen}");
    assert!(
        seen.contains(&format!("\"active\":false,{books}")),
        "{seen}"
    );
}

// SIGTERM drains: new streams are refused and the node says it is not
// ready at once, the open streams end a share at a time over --drain (not
// all in one instant), and a second signal ends the rest now.
#[test]
fn sigterm_drains_streams_over_the_window_and_a_second_signal_ends_the_rest() {
    const STREAMS: usize = 100;
    // Ten streams (the smallest share) every six seconds: a wide margin
    // for a loaded machine.
    let server = start_hub(&["--drain", "60s"]);
    let addr = server.addr.clone();
    let mut streams: Vec<_> = (0..STREAMS)
        .map(|_| open_stream(&addr, "topic=a"))
        .collect();
    signal(server.child.id(), "TERM");
    let get = |path: &str| {
        exchange(
            &addr,
            &format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"),
        )
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !get("/readyz").starts_with("HTTP/1.1 503") {
        assert!(
            std::time::Instant::now() < deadline,
            "still ready after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let refused = get("/.well-known/mercure?topic=a");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let ended = streams.iter_mut().map(has_ended).filter(|e| *e).count();
    assert!(ended <= 10, "{ended} of {STREAMS} streams ended at once");

    signal(server.child.id(), "TERM");
    for stream in &mut streams {
        let (until, seen) = read_stream(stream, "never-sent");
        assert!(
            matches!(until, Until::Eof | Until::Failed(_)),
            "{until:?} {seen}"
        );
    }
    let status = server.wait();
    assert!(status.success(), "{status:?}");
}

/// Whether the hub has closed `stream`, reading what it has sent so far.
fn has_ended(stream: &mut std::net::TcpStream) -> bool {
    use std::io::Read;
    stream.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 1024];
    let ended = loop {
        match stream.read(&mut buf) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break false,
            Err(_) => break true,
        }
    };
    stream.set_nonblocking(false).unwrap();
    ended
}

// `--publish-origin '*'` turns the CSRF guard into a formality: said at
// start, before the hub says it is listening.
#[test]
fn a_wildcard_publish_origin_is_warned_about_at_start() {
    let server = start_hub(&["--publish-origin", "*"]);
    assert!(
        server
            .printed
            .stderr
            .iter()
            .any(|l| l.contains("publish origin `*` lets any site")),
        "{:?}",
        server.printed.stderr
    );
    let quiet = start_hub(&["--publish-origin", "https://app.example"]);
    assert!(!quiet
        .printed
        .stderr
        .iter()
        .any(|l| l.contains("publish origin")));
}

#[test]
fn memory_history_drops_events_past_the_age_limit() {
    let server = start_hub(&["--history-max-age", "2s"]);
    let addr = &server.addr;
    let token = publisher_token(KEY);

    publish(addr, &token, "topic=a&id=old");
    // Age is what is tested: "old" must be over two seconds old (it only
    // gets older), "new" under (it has two seconds of margin).
    std::thread::sleep(Duration::from_millis(2500));
    publish(addr, &token, "topic=a&id=new");

    // Replay from the start holds only what is younger than two seconds.
    let mut stream = open_stream(addr, "topic=a&lastEventID=earliest");
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
    let output = support::output(&mut serve(
        &["--config", config, "--heartbeat", "soon"],
        &[],
    ));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("--heartbeat"),
        "the flag overrode the file: {stderr}"
    );

    // The file's invalid value is read, and refused, when no flag is given...
    std::fs::write(&file, "jwt-key = \"file-secret-file-secret-file-secret\"\nanonymous = true\nheartbeat = \"soon\"\n").unwrap();
    let output = support::output(&mut serve(
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
    let server = start(serve(
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
    ));
    assert!(
        server.printed.stdout.is_empty(),
        "development mode: {:?}",
        server.printed
    );
    drop(open_stream(&server.addr, "topic=a"));
    drop(server);

    std::fs::write(&file, "jwt-key = \"x\"\nno-such-option = 1\n").unwrap();
    let output = support::output(&mut serve(&["--config", config], &[]));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no-such-option"), "{stderr}");
}

#[test]
fn help_explains_each_option_with_its_default() {
    let output = support::output(Command::new(BIN).args(["serve", "--help"]));
    let help = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "--listen",
        "127.0.0.1:8080",
        "--jwt-key",
        "HERALD_JWT_KEY",
        "--heartbeat",
        "40s",
        "--history-size",
        "--queue-bytes",
        "HERALD_QUEUE_BYTES",
        "4MiB",
        "--cors-origin",
        "Examples:",
    ] {
        assert!(help.contains(needle), "{needle} missing from\n{help}");
    }
}
