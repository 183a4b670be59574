//! `--heartbeat` through the binary: `0` disables heartbeats, whichever
//! source sets it over a shorter interval from another; and heartbeats
//! come only in silences, since every event written restarts the wait
//! (`crates/herald-hub/src/http/subscription.rs`: the next heartbeat is
//! due one interval after the last bytes written).
//!
//! These hubs run in another process, so time cannot be paused: the tests
//! wait for events, and where they must judge time they do so only in the
//! direction load cannot fake (see each test).

use std::time::{Duration, Instant};

mod support;
mod support_options;
use support::{AsyncHub, TempDir};
use support_options::{
    assert_refused, publish_ok, run_to_exit, serve_keyed, start, subscribe, Stream, DEADLINE,
};

const HEARTBEAT: &str = ":\n\n";

/// Opens a stream on topic `t` and reads its opening comment, which is
/// sent at once whatever the heartbeat (it makes proxies flush headers).
async fn open(hub: &AsyncHub) -> Stream {
    let mut stream = subscribe(hub, "topic=t", &[]).await;
    assert_eq!(stream.next_block().await.as_deref(), Some(HEARTBEAT));
    stream
}

/// Asserts that `hub`, whose heartbeat is configured `0` over a `100ms`
/// given by a lower-precedence source, sends no heartbeat: its stream,
/// read up to a marker event, holds nothing else, even though the marker
/// is published only after a control hub heartbeating every 100 ms has
/// sent ten. The control turns "long enough" into an observed fact; should
/// the machine starve this test's hub the whole time, the test gets weaker
/// (less time covered), never flaky.
async fn assert_no_heartbeats(hub: &AsyncHub) {
    let mut silent = open(hub).await;
    let control = start(serve_keyed(&["--heartbeat", "100ms"])).await;
    let mut ticking = open(&control).await;
    for _ in 0..10 {
        assert_eq!(ticking.next_block().await.as_deref(), Some(HEARTBEAT));
    }
    publish_ok(hub, "topic=t&id=marker").await;
    let block = silent.next_block().await.expect("the stream ended");
    assert_eq!(block, "id: marker\ndata: \n\n", "a heartbeat came first");
}

#[tokio::test]
async fn heartbeat_zero_flag_over_the_environment_disables_heartbeats() {
    let mut cmd = serve_keyed(&["--heartbeat", "0"]);
    cmd.env("HERALD_HEARTBEAT", "100ms");
    let hub = start(cmd).await;
    assert_no_heartbeats(&hub).await;
}

#[tokio::test]
async fn heartbeat_zero_from_the_environment_over_the_file_disables_heartbeats() {
    let dir = TempDir::new("options-heartbeat-env");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "heartbeat = \"100ms\"\n").unwrap();
    let mut cmd = serve_keyed(&["--config", file.to_str().unwrap()]);
    cmd.env("HERALD_HEARTBEAT", "0");
    let hub = start(cmd).await;
    assert_no_heartbeats(&hub).await;
}

#[tokio::test]
async fn heartbeat_from_the_config_file_fills_silences() {
    let dir = TempDir::new("options-heartbeat-file");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "heartbeat = \"200ms\"\n").unwrap();
    let hub = start(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    let mut stream = open(&hub).await;
    for _ in 0..3 {
        assert_eq!(stream.next_block().await.as_deref(), Some(HEARTBEAT));
    }
}

/// The interval of the "only in silences" test: long enough that a
/// publish round trip on a loaded machine is far shorter.
const INTERVAL: Duration = Duration::from_secs(2);

#[tokio::test]
async fn heartbeats_come_only_in_silences() {
    let hub = start(serve_keyed(&["--heartbeat", "2s"])).await;
    let mut stream = open(&hub).await;
    // A burst of events back to back, each published as soon as the one
    // before arrives, for well over two intervals. Heartbeats on a fixed
    // clock would fall inside the burst, a few milliseconds after an
    // event; heartbeats that wait for silence come only if the burst
    // itself stalls for an interval. So any heartbeat in the burst must
    // follow at least half an interval without a frame: the slack covers
    // this test being scheduled late, which can only shorten the silence
    // it measures by its own delay.
    let burst = Instant::now();
    let mut last_frame = Instant::now();
    let mut events = 0;
    while burst.elapsed() < INTERVAL * 5 / 2 {
        events += 1;
        let id = format!("e{events}");
        publish_ok(&hub, &format!("topic=t&id={id}")).await;
        loop {
            let block = stream.next_block().await.expect("the stream ended");
            let silence = last_frame.elapsed();
            last_frame = Instant::now();
            if block == HEARTBEAT {
                assert!(
                    silence >= INTERVAL / 2,
                    "a heartbeat {silence:?} after the last frame, mid-burst"
                );
                continue;
            }
            assert_eq!(block, format!("id: {id}\ndata: \n\n"));
            break;
        }
    }
    assert!(events > 1);
    // Then silence: a heartbeat comes, and not before an interval has
    // passed since the last event (server-side it is due exactly then;
    // seen from here it can only be later).
    let quiet = Instant::now();
    let block = tokio::time::timeout(DEADLINE, stream.next_block())
        .await
        .unwrap();
    assert_eq!(block.as_deref(), Some(HEARTBEAT));
    assert!(
        quiet.elapsed() >= INTERVAL / 2,
        "a heartbeat {:?} into a silence",
        quiet.elapsed()
    );
}

#[tokio::test]
async fn a_wrong_heartbeat_is_refused_clearly_from_the_flag_and_the_file() {
    let out = run_to_exit(serve_keyed(&["--heartbeat", "soon"])).await;
    assert_refused(
        &out,
        "invalid --heartbeat \"soon\": use e.g. 40s, 500ms or 0",
    );

    let dir = TempDir::new("options-heartbeat-bad");
    let file = dir.join("herald.toml");
    std::fs::write(&file, "heartbeat = -1\n").unwrap();
    let out = run_to_exit(serve_keyed(&["--config", file.to_str().unwrap()])).await;
    let stderr = assert_refused(&out, "invalid config file");
    assert!(
        stderr.contains("expected a string such as \"40s\" or \"512MiB\", or a whole number"),
        "{stderr}"
    );
}
