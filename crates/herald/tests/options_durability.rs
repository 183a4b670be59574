//! `--durability` through the binary: `periodic` acknowledges publishes
//! and keeps them across a graceful restart on the same data directory
//! (history metrics included); a wrong value is refused clearly from each
//! source.

mod support;
mod support_options;
use support::{sigterm, AsyncHub, TempDir};
use support_options::{
    assert_refused, metric, publish_ok, run_to_exit, serve, start, subscribe, DEADLINE, KEY,
};

/// The history metrics, in the order events, bytes, last sequence.
async fn history_metrics(hub: &AsyncHub) -> [u64; 3] {
    [
        metric(hub, "herald_history_events").await,
        metric(hub, "herald_history_bytes").await,
        metric(hub, "herald_history_last_sequence").await,
    ]
}

/// Ends the hub with SIGTERM, as an operator does, and requires a clean
/// exit.
async fn stop_gracefully(mut hub: AsyncHub) {
    sigterm(hub.child.id().expect("the hub is running"));
    let status = tokio::time::timeout(DEADLINE, hub.child.wait())
        .await
        .expect("the hub did not stop in time")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn periodic_durability_acknowledges_and_keeps_events_across_a_graceful_restart() {
    let dir = TempDir::new("options-durability-periodic");
    let mut cmd = serve(&["--jwt-key", KEY, "--anonymous", "--durability", "periodic"]);
    cmd.arg("--data-dir").arg(&dir.0);
    let hub = start(cmd).await;
    let published: Vec<String> = {
        let mut ids = Vec::new();
        for i in 1..=30 {
            ids.push(publish_ok(&hub, &format!("topic=t&id=p{i}&data=event-{i}")).await);
        }
        ids
    };
    let before = history_metrics(&hub).await;
    assert_eq!(before[0], 30);
    assert_eq!(before[2], 30);
    // Stopped right after the last acknowledgement: a graceful stop must
    // not lose what the periodic fsync had not reached yet.
    stop_gracefully(hub).await;

    let mut cmd = serve(&["--jwt-key", KEY, "--anonymous"]);
    cmd.arg("--data-dir").arg(&dir.0);
    cmd.env("HERALD_DURABILITY", "periodic");
    let hub = start(cmd).await;
    assert_eq!(history_metrics(&hub).await, before, "metrics after restart");
    let mut replay = subscribe(&hub, "topic=t", &[("last-event-id", "earliest")]).await;
    publish_ok(&hub, "topic=t&id=marker").await;
    let mut replayed = replay.ids_until("marker").await;
    replayed.pop();
    assert_eq!(replayed, published);
    // The restarted hub goes on from where the first one stopped.
    assert_eq!(metric(&hub, "herald_history_last_sequence").await, 31);
}

#[tokio::test]
async fn periodic_durability_from_the_config_file_keeps_acknowledged_events() {
    let dir = TempDir::new("options-durability-file");
    let file = dir.join("herald.toml");
    std::fs::write(
        &file,
        format!(
            "durability = \"periodic\"\ndata-dir = {:?}\n",
            dir.join("data").to_str().unwrap()
        ),
    )
    .unwrap();
    let config = file.to_str().unwrap();
    // The same hub twice: everything but the key comes from the file.
    let from_file = || serve(&["--jwt-key", KEY, "--anonymous", "--config", config]);
    let hub = start(from_file()).await;
    let id = publish_ok(&hub, "topic=t&data=kept").await;
    stop_gracefully(hub).await;

    let hub = start(from_file()).await;
    let mut replay = subscribe(&hub, "topic=t", &[("last-event-id", "earliest")]).await;
    publish_ok(&hub, "topic=t&id=marker").await;
    assert_eq!(replay.ids_until("marker").await, [id.as_str(), "marker"]);
}

#[tokio::test]
async fn a_wrong_durability_is_refused_clearly_from_every_source() {
    let dir = TempDir::new("options-durability-bad");
    let data_dir = dir.join("data");
    let data = data_dir.to_str().unwrap();

    let flag = run_to_exit(serve(&[
        "--jwt-key",
        KEY,
        "--data-dir",
        data,
        "--durability",
        "sometimes",
    ]))
    .await;
    assert_refused(&flag, "invalid value 'sometimes' for '--durability <MODE>'");
    assert_refused(&flag, "[possible values: full, periodic]");

    let mut cmd = serve(&["--jwt-key", KEY, "--data-dir", data]);
    cmd.env("HERALD_DURABILITY", "Sometimes");
    let env = run_to_exit(cmd).await;
    assert_refused(&env, "invalid value 'Sometimes' for '--durability <MODE>'");

    let file = dir.join("herald.toml");
    std::fs::write(&file, "durability = \"sometimes\"\n").unwrap();
    let cmd = serve(&[
        "--jwt-key",
        KEY,
        "--data-dir",
        data,
        "--config",
        file.to_str().unwrap(),
    ]);
    let out = run_to_exit(cmd).await;
    let stderr = assert_refused(&out, "invalid config file");
    assert!(
        stderr.contains("unknown variant `sometimes`, expected `full` or `periodic`"),
        "{stderr}"
    );
    assert!(
        !data_dir.exists(),
        "a refused option created the data directory"
    );
}

#[tokio::test]
async fn durability_with_memory_history_is_refused_not_ignored() {
    let flag = run_to_exit(serve(&[
        "--jwt-key",
        KEY,
        "--history",
        "memory",
        "--durability",
        "periodic",
    ]))
    .await;
    assert_refused(&flag, "--durability applies to durable history only");

    let mut cmd = serve(&["--jwt-key", KEY]);
    cmd.env("HERALD_HISTORY", "memory")
        .env("HERALD_DURABILITY", "full");
    assert_refused(
        &run_to_exit(cmd).await,
        "--durability applies to durable history only",
    );
}
