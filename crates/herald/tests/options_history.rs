//! History options through the binary: `--history-max-bytes` with its
//! size suffixes (and values too large), the `herald_history_bytes` and
//! `herald_history_last_sequence` metrics, for memory and redb history.

mod support;
mod support_options;
use support::{AsyncHub, TempDir};
use support_options::{
    assert_refused, metric, publish_ok, run_to_exit, serve, serve_keyed, start, subscribe, Stream,
    KEY,
};

/// What the hub counts for an event in history (documented with
/// `herald_history_bytes`): its SSE frame, its id and its topics, plus 64
/// bytes of bookkeeping.
fn held_size(frame: &str, id: &str, topics: &[&str]) -> u64 {
    (frame.len() + id.len() + topics.iter().map(|t| t.len()).sum::<usize>() + 64) as u64
}

/// Publishes events `e1`…`e{count}` to topic `t`, each with `data_len`
/// bytes of data, and returns their held sizes as a live subscriber
/// receives their frames.
async fn publish_sized(hub: &AsyncHub, count: usize, data_len: usize) -> Vec<u64> {
    let mut live = subscribe(hub, "topic=t", &[]).await;
    assert_eq!(live.next_block().await.as_deref(), Some(":\n\n"));
    let data = "x".repeat(data_len);
    let mut sizes = Vec::new();
    for i in 1..=count {
        let id = format!("e{i}");
        assert_eq!(
            publish_ok(hub, &format!("topic=t&id={id}&data={data}")).await,
            id
        );
        let frame = live.next_block().await.expect("the live stream ended");
        assert!(frame.starts_with(&format!("id: {id}\n")), "{frame:?}");
        sizes.push(held_size(&frame, &id, &["t"]));
    }
    sizes
}

/// The ids of the newest events whose sizes add up to at most `limit`
/// (always at least the newest one): what history must still hold.
fn newest_that_fit(sizes: &[u64], limit: u64) -> Vec<String> {
    let mut total = 0;
    let mut kept = Vec::new();
    for (i, size) in sizes.iter().enumerate().rev() {
        total += size;
        if total > limit && !kept.is_empty() {
            break;
        }
        kept.insert(0, format!("e{}", i + 1));
    }
    kept
}

/// What a subscriber replaying from `earliest` receives: the ids held,
/// read up to a marker published after the subscription opened.
async fn replayed_ids(hub: &AsyncHub) -> Vec<String> {
    let mut replay: Stream = subscribe(hub, "topic=t", &[("last-event-id", "earliest")]).await;
    publish_ok(hub, "topic=t&id=marker").await;
    let mut ids = replay.ids_until("marker").await;
    assert_eq!(ids.pop().as_deref(), Some("marker"));
    ids
}

#[tokio::test]
async fn history_max_bytes_flag_with_kib_evicts_the_oldest_events() {
    let hub = start(serve_keyed(&["--history-max-bytes", "1KiB"])).await;
    // 259 bytes of data make a 341-byte event: three fit in 1 KiB (1024),
    // which they would not in 1000 bytes.
    let sizes = publish_sized(&hub, 5, 259).await;
    let kept = newest_that_fit(&sizes, 1024);
    assert_eq!(kept, ["e3", "e4", "e5"]);
    assert_eq!(replayed_ids(&hub).await, kept);
}

#[tokio::test]
async fn history_max_bytes_from_the_environment_with_m_is_a_mebibyte_in_redb() {
    let dir = TempDir::new("options-max-bytes-env");
    let mut cmd = serve(&["--jwt-key", KEY, "--anonymous"]);
    cmd.arg("--data-dir").arg(&dir.0);
    cmd.env("HERALD_HISTORY_MAX_BYTES", "1m");
    let hub = start(cmd).await;
    // Three 340,082-byte events fit in 1 MiB (1,048,576), not in 10^6.
    let sizes = publish_sized(&hub, 5, 340_000).await;
    let kept = newest_that_fit(&sizes, 1 << 20);
    assert_eq!(kept, ["e3", "e4", "e5"]);
    assert_eq!(replayed_ids(&hub).await, kept);
}

#[tokio::test]
async fn history_max_bytes_from_the_config_file_takes_a_plain_number() {
    let dir = TempDir::new("options-max-bytes-file");
    let file = dir.join("herald.toml");
    // A TOML integer, as a user writes a number of bytes.
    std::fs::write(&file, "history-max-bytes = 1000\n").unwrap();
    let hub = start(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    let sizes = publish_sized(&hub, 5, 259).await;
    let kept = newest_that_fit(&sizes, 1000);
    assert_eq!(kept, ["e4", "e5"]);
    assert_eq!(replayed_ids(&hub).await, kept);
}

#[tokio::test]
async fn history_max_bytes_accepts_every_documented_spelling() {
    for size in ["1048576", "512MiB", "2GiB", "64KiB", "1 M", "3gb", "10b"] {
        let hub = start(serve_keyed(&["--history-max-bytes", size])).await;
        drop(hub);
    }
}

#[tokio::test]
async fn history_max_bytes_too_large_or_malformed_is_refused_clearly() {
    let dir = TempDir::new("options-max-bytes-bad");
    let data_dir = dir.join("data");
    for (size, reason) in [
        // One more than u64::MAX, as a number and through a suffix.
        ("18446744073709551616", "expected a number"),
        ("17179869184GiB", "the size is too large"),
        ("12TiB", "unknown unit \"tib\""),
        ("1.5GiB", "unknown unit \".5gib\""),
        ("-1", "expected a number"),
    ] {
        let mut cmd = serve(&["--jwt-key", KEY, &format!("--history-max-bytes={size}")]);
        cmd.arg("--data-dir").arg(&data_dir);
        let out = run_to_exit(cmd).await;
        let stderr = assert_refused(
            &out,
            &format!("invalid --history-max-bytes {size:?}: use e.g. 1048576, 512MiB or 2GiB"),
        );
        assert!(stderr.contains(reason), "{size}: {stderr}");
        assert!(!data_dir.exists(), "{size}: the data directory was created");
    }
}

/// Publishes a known sequence and checks the history metrics after each
/// step: events, bytes (the sum of the held sizes) and the last sequence
/// number, which keeps counting when events are evicted.
async fn assert_history_metrics_follow_publishes(hub: &AsyncHub) {
    assert_eq!(metric(hub, "herald_history_events").await, 0);
    assert_eq!(metric(hub, "herald_history_bytes").await, 0);
    assert_eq!(metric(hub, "herald_history_last_sequence").await, 0);

    let mut live = subscribe(hub, "topic=a", &[]).await;
    assert_eq!(live.next_block().await.as_deref(), Some(":\n\n"));
    let updates: [(&str, &[&str], &str); 3] = [
        ("first", &["a"], "topic=a&id=first&data=hello"),
        (
            "2nd",
            &["a", "bb"],
            "topic=a&topic=bb&id=2nd&data=two%0Alines",
        ),
        ("third-one", &["a"], "topic=a&id=third-one&type=note&data="),
    ];
    let mut bytes = 0;
    for (n, (id, topics, form)) in updates.iter().enumerate() {
        assert_eq!(publish_ok(hub, form).await, *id);
        let frame = live.next_block().await.expect("the live stream ended");
        bytes += held_size(&frame, id, topics);
        assert_eq!(metric(hub, "herald_history_events").await, n as u64 + 1);
        assert_eq!(
            metric(hub, "herald_history_bytes").await,
            bytes,
            "after {id}"
        );
        assert_eq!(
            metric(hub, "herald_history_last_sequence").await,
            n as u64 + 1
        );
    }
}

#[tokio::test]
async fn history_metrics_after_known_publishes_in_memory() {
    let hub = start(serve_keyed(&[])).await;
    assert_history_metrics_follow_publishes(&hub).await;
}

#[tokio::test]
async fn history_metrics_after_known_publishes_in_redb() {
    let dir = TempDir::new("options-metrics-redb");
    let mut cmd = serve(&["--jwt-key", KEY, "--anonymous"]);
    cmd.arg("--data-dir").arg(&dir.0);
    let hub = start(cmd).await;
    assert_history_metrics_follow_publishes(&hub).await;
}

#[tokio::test]
async fn the_last_sequence_keeps_counting_when_history_evicts() {
    let hub = start(serve_keyed(&["--history-size", "2"])).await;
    let sizes = publish_sized(&hub, 5, 10).await;
    assert_eq!(metric(&hub, "herald_history_events").await, 2);
    assert_eq!(metric(&hub, "herald_history_last_sequence").await, 5);
    assert_eq!(
        metric(&hub, "herald_history_bytes").await,
        sizes[3] + sizes[4]
    );
}

/// The `VmRSS` of process `pid`, in bytes.
fn resident_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .unwrap_or_else(|| panic!("no VmRSS in {status}"));
    kib.trim().parse::<u64>().unwrap() * 1024
}

/// `--history-cache-size` bounds the memory redb history holds: 80 MiB of
/// events grow the hub by about the cache, not by the events (with redb's
/// own 1 GiB page cache and the newest 10,000 events kept whatever their
/// size, the hub grew by twice what was published). Events past the cache
/// are still replayed, from the file.
#[tokio::test]
async fn the_history_cache_size_bounds_what_redb_history_holds_in_memory() {
    const EVENT: usize = 512 * 1024;
    const EVENTS: usize = 160;
    let dir = TempDir::new("options-cache-size");
    let mut cmd = serve(&[
        "--jwt-key",
        KEY,
        "--anonymous",
        "--history-cache-size",
        "8MiB",
    ]);
    cmd.arg("--data-dir").arg(&dir.0);
    let hub = start(cmd).await;
    let pid = hub.child.id().unwrap();
    publish_ok(&hub, "topic=t&id=warm&data=x").await;
    let before = resident_bytes(pid);
    let data = "x".repeat(EVENT);
    for i in 1..=EVENTS {
        assert_eq!(
            publish_ok(&hub, &format!("topic=t&id=e{i}&data={data}")).await,
            format!("e{i}")
        );
    }
    let grown = resident_bytes(pid).saturating_sub(before);
    let published = (EVENT * EVENTS) as u64;
    assert!(
        grown < published / 2,
        "the hub grew by {grown} bytes for {published} bytes published"
    );
    let mut replay = subscribe(&hub, "topic=t", &[("last-event-id", "e150")]).await;
    publish_ok(&hub, "topic=t&id=marker").await;
    let mut expected: Vec<String> = (151..=EVENTS).map(|i| format!("e{i}")).collect();
    expected.push("marker".into());
    assert_eq!(replay.ids_until("marker").await, expected);
}

#[tokio::test]
async fn a_malformed_history_cache_size_is_refused_clearly() {
    let dir = TempDir::new("options-cache-size-bad");
    let mut cmd = serve(&["--jwt-key", KEY, "--history-cache-size", "lots"]);
    cmd.arg("--data-dir").arg(&dir.0);
    let out = run_to_exit(cmd).await;
    assert_refused(
        &out,
        "invalid --history-cache-size \"lots\": use e.g. 67108864, 64MiB or 1GiB",
    );
}
