//! `--listen-backlog` through the binary: the backlog the kernel reports
//! for the hub's listening socket is the one asked for (flag, variable or
//! file key), the default is 4096 as capped by net.core.somaxconn, and
//! values the kernel cannot take are refused clearly.
//!
//! The kernel's view comes from `ss` (iproute2), which shows a listening
//! socket's backlog in its Send-Q column.

mod support;

use std::process::Command;

use support::{output, serve_command, start, Serving, TempDir};

/// `herald serve` on a free loopback port with memory history, plus
/// `extra`.
fn serve(extra: &[&str]) -> Command {
    let mut cmd = serve_command(&[
        "--listen",
        "127.0.0.1:0",
        "--jwt-key",
        "backlog-test-secret",
        "--history",
        "memory",
    ]);
    cmd.args(extra);
    cmd
}

/// The backlog of the socket listening on `hub`'s port, as the kernel
/// reports it.
fn kernel_backlog(hub: &Serving) -> u32 {
    let port = hub.addr.rsplit(':').next().expect("a port");
    let out = output(
        Command::new("ss")
            .args(["-Hltn", &format!("sport = :{port}")])
            .env("LC_ALL", "C"),
    );
    assert!(out.status.success(), "ss failed: {out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one listening socket on {port}: {text}");
    // State, Recv-Q (connections waiting), Send-Q (the backlog), ...
    let columns: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(columns[0], "LISTEN", "{text}");
    columns[2]
        .parse()
        .unwrap_or_else(|_| panic!("no Send-Q in {text}"))
}

#[test]
fn the_listening_socket_has_the_backlog_asked_for_from_every_source() {
    let hub = start(serve(&["--listen-backlog", "7"]));
    assert_eq!(kernel_backlog(&hub), 7, "flag");

    let mut cmd = serve(&[]);
    cmd.env("HERALD_LISTEN_BACKLOG", "9");
    assert_eq!(kernel_backlog(&start(cmd)), 9, "environment");

    let dir = TempDir::new("backlog-file");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "listen-backlog = 11\n").unwrap();
    let hub = start(serve(&["--config", file.to_str().unwrap()]));
    assert_eq!(kernel_backlog(&hub), 11, "config file");
}

#[test]
fn the_default_backlog_is_4096_as_capped_by_somaxconn() {
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let hub = start(serve(&[]));
    assert_eq!(kernel_backlog(&hub), somaxconn.min(4096));
}

#[test]
fn a_backlog_the_kernel_cannot_take_is_refused_clearly() {
    for bad in ["0", "65536"] {
        let out = output(&mut serve(&["--listen-backlog", bad]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: exited 0: {stderr}");
        assert!(
            stderr.contains(&format!("invalid --listen-backlog {bad}: use 1 to 65535")),
            "{bad}: {stderr}"
        );
    }
    let dir = TempDir::new("backlog-bad-file");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "listen-backlog = 0\n").unwrap();
    let out = output(&mut serve(&["--config", file.to_str().unwrap()]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited 0: {stderr}");
    assert!(
        stderr.contains("invalid --listen-backlog 0: use 1 to 65535"),
        "{stderr}"
    );
}
