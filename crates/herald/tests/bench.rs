//! `herald bench` against the real hub (`herald serve --history memory`),
//! small enough for the test suite: 50 subscribers split over two worker
//! processes, 200 events; a few hundred subscribers over each of HTTPS,
//! HTTP/2 over TLS and h2c. Asserts the accounting, never the timing.

use std::process::Stdio;
use std::time::Duration;

use herald_hub::server::TlsConfig;

mod support;
use support::{herald_async, start_hub_async, TempDir};

const KEY: &str = "bench-test-secret";

#[tokio::test]
async fn bench_against_the_hub_loses_and_duplicates_nothing_and_writes_json() {
    let hub = start_hub_async(KEY, &[]).await;
    let url = hub.url.clone();
    let pid = hub.child.id().expect("the hub runs").to_string();
    let dir = TempDir::new("bench-test");
    let json = dir.join("report.json");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        herald_async()
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
}

/// The soak, briefly: a few seconds, 40 subscribers of every kind whose
/// connections live about a second each, so that they resume and are
/// replaced several times over. Asserts what the report must hold (samples
/// of the hub, churn done, nothing lost or repeated), never how flat a few
/// seconds are.
#[tokio::test]
async fn the_soak_samples_the_hub_churns_and_loses_nothing() {
    let hub = start_hub_async(KEY, &[]).await;
    let url = hub.url.clone();
    let pid = hub.child.id().expect("the hub runs").to_string();
    let dir = TempDir::new("bench-soak-test");
    let json = dir.join("soak.json");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        herald_async()
            .args([
                "bench",
                "--scenario",
                "soak",
                "--hub",
                &url,
                "--jwt-key",
                KEY,
            ])
            .args(["-n", "40", "--topics", "5", "--rate", "40"])
            .args([
                "--duration",
                "6s",
                "--warm-up",
                "1s",
                "--sample-every",
                "250ms",
            ])
            .args(["--lifetime", "1s", "--hub-pid", &pid, "--quiet", "--json"])
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
    assert!(stdout.contains("scenario soak"), "{stdout}");
    assert!(stdout.contains("0 lost, 0 duplicated"), "{stdout}");
    assert!(stdout.contains("verdict: "), "{stdout}");

    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["scenario"], "soak");
    assert_eq!(report["connect"]["connected"], 40, "{report}");
    let names: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["warm-up", "steady"], "{report}");
    let totals = &report["totals"];
    assert_eq!(totals["lost"], 0, "{report}");
    assert_eq!(totals["duplicates"], 0, "{report}");
    assert_eq!(totals["malformed"], 0, "{report}");
    assert!(totals["received"].as_u64().unwrap() > 0, "{report}");
    // Lifetimes of 0.5 to 1.5 s in a 6 s run: every subscriber churned.
    assert!(totals["churned"].as_u64().unwrap() >= 40, "{report}");
    assert!(totals["reconnects"].as_u64().unwrap() >= 40, "{report}");
    assert!(totals["departed"].as_u64().unwrap() > 0, "{report}");
    assert_eq!(report["publish_errors"], 0, "{report}");

    let soak = &report["soak"];
    // One sample when publishing starts and one at the end at least; the
    // ticks between depend on the machine's load, not on the accounting.
    let samples = soak["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{report}");
    assert!(
        samples
            .iter()
            .all(|s| s["rss_kib"].as_u64().unwrap() > 0 && s["fds"].as_u64().unwrap() > 0),
        "{report}"
    );
    assert!(soak["rss_kib"]["median"].as_u64().unwrap() > 0, "{report}");
    assert!(soak["fds"]["max"].as_u64().unwrap() > 0, "{report}");
    assert!(soak["flat"].is_boolean(), "{report}");
}

/// A fresh self-signed certificate for `localhost` and 127.0.0.1 and its
/// key, written as PEM files to a scratch directory: the directory and the
/// two paths.
fn tls_files(name: &str) -> (TempDir, String, String) {
    let tls = TlsConfig::self_signed(&["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = TempDir::new(name);
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, tls.certificate_pem()).unwrap();
    std::fs::write(&key, tls.private_key_pem()).unwrap();
    let path = |p: std::path::PathBuf| p.to_string_lossy().into_owned();
    (dir, path(cert), path(key))
}

/// Runs `herald bench` against `hub` with `args` (and a JSON report in
/// `dir`), expects it to succeed, and returns its table and report.
async fn bench(hub: &str, dir: &TempDir, args: &[&str]) -> (String, serde_json::Value) {
    let json = dir.join("report.json");
    let out = tokio::time::timeout(
        Duration::from_secs(120),
        herald_async()
            .args(["bench", "--hub", hub, "--jwt-key", KEY, "--quiet"])
            .args(args)
            .arg("--json")
            .arg(&json)
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .expect("herald bench did not finish within 120 s")
    .expect("cannot run herald bench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "herald bench {args:?} failed:\n{stdout}\n{stderr}"
    );
    let report = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    (stdout, report)
}

/// Every subscriber of `report` got every event published, once.
fn assert_complete(report: &serde_json::Value, subscribers: u64) {
    let published = report["published"].as_u64().unwrap();
    assert!(published > 0, "{report}");
    assert_eq!(report["connect"]["connected"], subscribers, "{report}");
    assert_eq!(report["connect"]["errors"], 0, "{report}");
    let totals = &report["totals"];
    assert_eq!(totals["lost"], 0, "{report}");
    assert_eq!(totals["duplicates"], 0, "{report}");
    assert_eq!(totals["malformed"], 0, "{report}");
    assert_eq!(
        totals["received"].as_u64().unwrap(),
        subscribers * published,
        "{report}"
    );
    assert_eq!(report["publish_errors"], 0, "{report}");
}

/// HTTPS: 200 subscribers over HTTP/1.1 over TLS (a connection each,
/// trusting the hub's certificate with --cacert, publishing over TLS too),
/// then the storm over HTTP/2 over TLS, 4 connections of 50 streams
/// (trusting it with --insecure): every connection drops and is opened
/// again, and the subscribers resume with nothing lost or repeated.
#[tokio::test]
async fn bench_over_https_and_http2_over_tls_loses_and_duplicates_nothing() {
    let (dir, cert, key) = tls_files("bench-tls-test");
    let hub = start_hub_async(KEY, &["--tls-cert", &cert, "--tls-key", &key]).await;
    assert!(hub.url.starts_with("https://"), "{}", hub.url);

    let fixed = ["--rate", "200", "--events", "100", "--duration", "60s"];
    let https = [&["-n", "200", "--cacert", &cert][..], &fixed[..]].concat();
    let (table, report) = bench(&hub.url, &dir, &https).await;
    assert!(
        table.contains("subscribers: 200 over HTTP/1.1 (TLS), 200 connection(s)\n"),
        "{table}"
    );
    assert!(table.contains("0 lost, 0 duplicated"), "{table}");
    assert_eq!(report["transport"], "https", "{report}");
    assert_eq!(report["connect"]["connections"], 200, "{report}");
    assert_complete(&report, 200);

    let h2 = [
        "--scenario",
        "storm",
        "-n",
        "200",
        "--duration",
        "2s",
        "--transport",
        "h2",
        "--streams-per-connection",
        "50",
        "--insecure",
    ];
    let (table, report) = bench(&hub.url, &dir, &h2).await;
    assert!(
        table.contains("subscribers: 200 over HTTP/2 (TLS), 4 connection(s) of up to 50 streams\n"),
        "{table}"
    );
    assert_eq!(report["transport"], "h2", "{report}");
    assert_eq!(report["streams_per_connection"], 50, "{report}");
    assert_eq!(report["connect"]["connections"], 4, "{report}");
    assert_complete(&report, 200);
    let storm = &report["storm"];
    assert_eq!(storm["reconnected"], 200, "{report}");
    assert_eq!(storm["caught_up"], 200, "{report}");
}

/// h2c: 300 subscribers over HTTP/2 with prior knowledge on the plain
/// listener, 3 connections of 100 streams (the default), split over two
/// worker processes whose connections never mix subscribers of both.
#[tokio::test]
async fn bench_over_h2c_loses_and_duplicates_nothing() {
    let hub = start_hub_async(KEY, &[]).await;
    let dir = TempDir::new("bench-h2c-test");
    let args = [
        "-n",
        "300",
        "--per-process",
        "200",
        "--transport",
        "h2c",
        "--rate",
        "200",
        "--events",
        "100",
        "--duration",
        "60s",
    ];
    let (table, report) = bench(&hub.url, &dir, &args).await;
    assert!(
        table.contains(
            "subscribers: 300 over HTTP/2 (h2c, prior knowledge), 3 connection(s) of up to 100 streams\n"
        ),
        "{table}"
    );
    assert_eq!(report["transport"], "h2c", "{report}");
    assert_eq!(report["workers"], 2, "{report}");
    assert_complete(&report, 300);
}
