//! `herald bench` against the real hub (`herald serve --history memory`),
//! small enough for the test suite: 50 subscribers split over two worker
//! processes, 200 events. Asserts the accounting, never the timing.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const KEY: &str = "bench-test-secret";

fn herald() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_herald"));
    for (var, _) in std::env::vars_os() {
        if var.to_string_lossy().starts_with("HERALD_") {
            cmd.env_remove(var);
        }
    }
    cmd.kill_on_drop(true);
    cmd
}

/// Starts a hub on a free port; returns it and its endpoint URL.
async fn start_hub() -> (Child, String) {
    let mut child = herald()
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--jwt-key",
            KEY,
            "--anonymous",
            "--history",
            "memory",
            "--log",
            "info",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run herald serve");
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let url = tokio::time::timeout(Duration::from_secs(20), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(at) = line.find("http://") {
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
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, url)
}

#[tokio::test]
async fn bench_against_the_hub_loses_and_duplicates_nothing_and_writes_json() {
    let (hub, url) = start_hub().await;
    let pid = hub.id().expect("the hub runs").to_string();
    let dir = std::env::temp_dir().join(format!("herald-bench-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("report.json");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        herald()
            .args([
                "bench",
                "--hub",
                &url,
                "--jwt-key",
                KEY,
                "-n",
                "50",
                "--per-process",
                "25",
                "--rate",
                "400",
                "--events",
                "200",
                "--duration",
                "60s",
                "--hub-pid",
                &pid,
                "--name",
                "herald-memory",
                "--quiet",
                "--json",
            ])
            .arg(&json)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("herald bench did not finish within 120 s")
    .expect("cannot run herald bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "herald bench failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("0 lost, 0 duplicated"), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let published = report["published"].as_u64().unwrap();
    assert!(published >= 200, "{report}");
    assert_eq!(report["workers"], 2, "{report}");
    assert_eq!(report["subscribers"], 50);
    assert_eq!(report["connect"]["connected"], 50);
    assert_eq!(report["connect"]["errors"], 0);
    let totals = &report["totals"];
    assert_eq!(totals["lost"], 0, "{report}");
    assert_eq!(totals["duplicates"], 0, "{report}");
    assert_eq!(totals["malformed"], 0, "{report}");
    assert_eq!(
        totals["received"].as_u64().unwrap(),
        50 * published,
        "{report}"
    );
    assert_eq!(report["publish_errors"], 0);
    let step = &report["steps"][0];
    assert_eq!(step["publish"]["acked"].as_u64().unwrap(), published);
    assert!(step["latency"]["count"].as_u64().unwrap() > 0, "{report}");
    assert!(
        step["latency"]["p99_ms"].as_f64().unwrap() >= step["latency"]["p50_ms"].as_f64().unwrap()
    );
    assert!(
        report["memory"]["hub_rss_start_kib"].as_u64().unwrap() > 0,
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
