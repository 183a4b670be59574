//! `herald serve` and an unusable history file, through the binary: an
//! empty or damaged `history.redb` stops the hub with what is wrong and
//! how to proceed; `--reset-history` (flag, variable or file key) moves
//! such a file aside, bytes intact, and starts with an empty history; on a
//! healthy file it changes nothing.

mod support;

use std::path::{Path, PathBuf};

use support::http::{publish, publisher_token, replay};
use support::{output, serve_command, sigterm, start, Serving, TempDir};

const KEY: &str = "serve-history-test-secret";
const FILE_NAME: &str = "history.redb";

/// `herald serve` on a free loopback port with the durable history in
/// `data_dir`, plus `extra`.
fn serve_in(data_dir: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = serve_command(&["--listen", "127.0.0.1:0", "--jwt-key", KEY, "--anonymous"]);
    cmd.arg("--data-dir").arg(data_dir).args(extra);
    cmd
}

/// Ends `hub` with SIGTERM and requires a clean exit, so its history is
/// closed before the test touches the file.
fn stop(hub: Serving) {
    sigterm(hub.child.id());
    let status = hub.wait();
    assert!(status.success(), "{status}");
}

/// Runs a hub on `data_dir` that stores one event with data `data` and
/// stops; returns the event's id.
fn history_with_one_event(data_dir: &Path, data: &str) -> String {
    let hub = start(serve_in(data_dir, &[]));
    let id = publish(
        &hub.addr,
        &publisher_token(KEY),
        &format!("topic=t&data={data}"),
    );
    stop(hub);
    id
}

/// The data of the events replayed from the earliest on topic `t`, up to a
/// marker published now (so everything held before it has arrived).
fn replayed_data(hub: &Serving) -> Vec<String> {
    let addr = hub.addr.clone();
    let reader = std::thread::spawn(move || replay(&addr, "t", "earliest", "marker").0);
    // Whether the marker is replayed or arrives live, the reader stops at
    // it, and everything stored before it came first.
    publish(&hub.addr, &publisher_token(KEY), "topic=t&data=marker");
    reader
        .join()
        .unwrap()
        .into_iter()
        .map(|(data, _)| data)
        .collect()
}

/// The files in `dir` named `history.redb.unusable-*`.
fn set_aside_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("history.redb.unusable-"))
        })
        .collect()
}

/// Asserts that `herald serve` on `data_dir` refuses to start, saying
/// `expected` about its history file, which it leaves as it was.
fn assert_refused_untouched(data_dir: &Path, expected: &str) {
    let file = data_dir.join(FILE_NAME);
    let before = std::fs::read(&file).unwrap();
    let out = output(&mut serve_in(data_dir, &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "exited 0: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&format!("the history file {} {expected}", file.display())),
        "{expected:?} not in: {stderr}"
    );
    assert!(
        stderr.contains("restore it from a backup") && stderr.contains("--reset-history"),
        "no way to proceed in: {stderr}"
    );
    assert!(!stderr.contains("Herald hub listening"), "{stderr}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        before,
        "the file is untouched"
    );
    assert!(
        set_aside_files(data_dir).is_empty(),
        "nothing is moved aside"
    );
}

#[test]
fn an_empty_history_file_stops_the_hub_with_what_is_wrong() {
    let dir = TempDir::new("serve-history-empty");
    std::fs::write(dir.join(FILE_NAME), b"").unwrap();
    assert_refused_untouched(&dir.0, "is empty (0 bytes): it is not a Herald history");
}

#[test]
fn a_truncated_history_file_stops_the_hub_as_damaged() {
    let dir = TempDir::new("serve-history-truncated");
    history_with_one_event(&dir.0, "old");
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(dir.join(FILE_NAME))
        .unwrap();
    file.set_len(100).unwrap();
    drop(file);
    assert_refused_untouched(&dir.0, "is not a redb database or is damaged: ");
}

#[test]
fn reset_history_moves_a_damaged_file_aside_intact_and_starts_empty() {
    let dir = TempDir::new("serve-history-reset-damaged");
    history_with_one_event(&dir.0, "old");
    let file = dir.join(FILE_NAME);
    std::fs::OpenOptions::new()
        .write(true)
        .open(&file)
        .unwrap()
        .set_len(100)
        .unwrap();
    let damaged = std::fs::read(&file).unwrap();

    let hub = start(serve_in(&dir.0, &["--reset-history"]));
    let aside = set_aside_files(&dir.0);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), damaged, "kept intact");
    let aside_name = aside[0].display().to_string();
    assert!(
        hub.printed
            .stderr
            .iter()
            .any(|line| line.contains(&aside_name)),
        "the log does not say where the file went: {:?}",
        hub.printed.stderr
    );
    publish(&hub.addr, &publisher_token(KEY), "topic=t&data=new");
    assert_eq!(replayed_data(&hub), ["new"], "the history starts empty");
}

#[test]
fn reset_history_from_the_config_file_moves_an_empty_file_aside() {
    let dir = TempDir::new("serve-history-reset-empty");
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    std::fs::write(data_dir.join(FILE_NAME), b"").unwrap();
    let config = dir.join("herald.toml");
    std::fs::write(&config, "reset-history = true\n").unwrap();

    let hub = start(serve_in(&data_dir, &["--config", config.to_str().unwrap()]));
    let aside = set_aside_files(&data_dir);
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), b"", "kept intact");
    publish(&hub.addr, &publisher_token(KEY), "topic=t&data=new");
    assert_eq!(replayed_data(&hub), ["new"]);
}

#[test]
fn reset_history_on_a_healthy_file_keeps_its_events() {
    let dir = TempDir::new("serve-history-reset-healthy");
    history_with_one_event(&dir.0, "kept");
    let mut cmd = serve_in(&dir.0, &[]);
    cmd.env("HERALD_RESET_HISTORY", "true");
    let hub = start(cmd);
    assert_eq!(replayed_data(&hub), ["kept"]);
    assert!(set_aside_files(&dir.0).is_empty(), "nothing is moved aside");
}
