//! `herald serve`'s HTTPS and UI options through the real binary:
//! `--tls-cert`/`--tls-key` and `--tls-self-signed` serve HTTP/2 and
//! HTTP/1.1 by ALPN, the self-signed certificate is the one whose
//! fingerprint is printed and names the loopback addresses,
//! `--h2-max-streams` is the limit the server advertises, `--ui
//! off` removes the page, bad combinations fail at start with a clear
//! message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::future::poll_fn;
use std::net::IpAddr;
use std::process::Command;
use std::task::Poll;

use futures_util::FutureExt as _;
use herald_hub::server::{TlsConfig, DEFAULT_H2_MAX_STREAMS};
use support::http::exchange;
use support::tls::{
    accepting_any, connect, fingerprint, h2_client, h2_get, h2_read_until, http1_get, served_chain,
    trusting, try_connect,
};
use support::{serve_command, start, Serving, Stream, TempDir};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

fn command(args: &[&str]) -> Command {
    let mut cmd = serve_command(&["--listen", "127.0.0.1:0", "--history", "memory"]);
    cmd.args(args);
    cmd
}

/// Starts a development hub and reads its banner through `Stop with`.
fn serve(args: &[&str]) -> Serving {
    let mut served = start(command(args));
    served
        .printed
        .until(Stream::Stdout, |l| l.starts_with("Stop with"));
    served
}

fn plain_get(addr: &str, path: &str) -> String {
    exchange(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
    )
}

#[tokio::test]
async fn tls_cert_and_key_files_serve_h2_and_http1_by_alpn() {
    let tls = TlsConfig::self_signed(&["localhost".into()]).unwrap();
    let dir = TempDir::new("serve-tls-files");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, tls.certificate_pem()).unwrap();
    std::fs::write(&key, tls.private_key_pem()).unwrap();
    let served = serve(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let addr = &served.addr;
    assert!(served.url.starts_with("https://"), "{}", served.url);
    assert!(served
        .printed
        .stdout
        .iter()
        .any(|l| l.contains(&format!("Web UI at https://{addr}/"))));

    // A browser's offer: HTTP/2 is chosen, and spoken.
    let both = trusting(tls.certificates(), &[b"h2", b"http/1.1"]);
    let mut h2 = h2_client(connect(addr, both, "localhost").await).await;
    let mut page = h2_get(&mut h2, addr, "/").await;
    assert_eq!(page.version(), http::Version::HTTP_2);
    assert_eq!(page.status(), 200);
    let html = h2_read_until(page.body_mut(), "</html>").await;
    assert!(html.contains("<title>Herald</title>"), "{html}");

    // A client that only speaks HTTP/1.1 gets it.
    let http1 = trusting(tls.certificates(), &[b"http/1.1"]);
    let answer = http1_get(connect(addr, http1, "localhost").await, "/").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<title>Herald</title>"), "{answer}");
}

#[tokio::test]
async fn tls_self_signed_serves_the_printed_certificate_for_the_loopback_names_over_h2() {
    let mut served = start(command(&["--tls-self-signed"]));
    assert!(served.url.starts_with("https://"), "{}", served.url);
    let line = served
        .printed
        .until(Stream::Stdout, |l| l.starts_with("Self-signed certificate"));
    let printed = line
        .strip_prefix("Self-signed certificate (SHA-256 ")
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("{line}"));
    let addr = &served.addr;

    // The certificate is made at start: the client takes what is served
    // (its signatures still checked) and compares it with the print.
    let tls = connect(addr, accepting_any(&[b"h2", b"http/1.1"]), "localhost").await;
    let chain = served_chain(&tls);
    assert_eq!(chain.len(), 1, "one self-signed certificate");
    assert_eq!(fingerprint(&chain[0]), printed);
    let mut h2 = h2_client(tls).await;
    let health = h2_get(&mut h2, addr, "/healthz").await;
    assert_eq!(health.version(), http::Version::HTTP_2);
    assert_eq!(health.status(), 200);
    // Without --h2-max-streams, the default is what is advertised.
    assert_eq!(
        h2.current_max_send_streams(),
        DEFAULT_H2_MAX_STREAMS as usize
    );

    // Its names are exactly the loopback ones a browser or curl may use...
    let (_, cert) = X509Certificate::from_der(&chain[0]).unwrap();
    let san = cert.subject_alternative_name().unwrap().expect("a SAN");
    let names: Vec<String> = san
        .value
        .general_names
        .iter()
        .map(|name| match name {
            GeneralName::DNSName(dns) => dns.to_string(),
            GeneralName::IPAddress(&[a, b, c, d]) => IpAddr::from([a, b, c, d]).to_string(),
            GeneralName::IPAddress(octets) => {
                let octets: [u8; 16] = (*octets).try_into().unwrap();
                IpAddr::from(octets).to_string()
            }
            other => panic!("unexpected name {other:?}"),
        })
        .collect();
    assert_eq!(names, ["localhost", "127.0.0.1", "::1"]);
    // ...and a client that trusts it verifies it under each of them, and
    // under no other.
    for name in ["localhost", "127.0.0.1", "::1"] {
        let trusted = trusting(&chain, &[b"h2"]);
        connect(addr, trusted, name).await;
    }
    let other = try_connect(addr, trusting(&chain, &[b"h2"]), "example.com").await;
    assert!(other.is_err(), "the certificate is valid for example.com");
}

#[tokio::test]
async fn h2_max_streams_is_the_concurrent_stream_limit_the_server_advertises() {
    let served = start(command(&["--tls-self-signed", "--h2-max-streams", "3"]));
    let addr = &served.addr;
    let tls = connect(addr, accepting_any(&[b"h2"]), "localhost").await;
    let mut h2 = h2_client(tls).await;
    // A first answer: the server's SETTINGS frame, its first, is in.
    let health = h2_get(&mut h2, addr, "/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(h2.current_max_send_streams(), 3);

    // Three event streams take every slot; they stay open.
    let mut streams = Vec::new();
    for _ in 0..3 {
        let stream = h2_get(&mut h2, addr, "/.well-known/mercure?topic=a").await;
        assert_eq!(stream.status(), 200);
        streams.push(stream);
    }
    // A fourth waits for a slot: the client holds it back, as the
    // server's SETTINGS_MAX_CONCURRENT_STREAMS says, and reports it not
    // sent yet.
    let request = http::Request::get(format!("https://{addr}/healthz"))
        .body(())
        .unwrap();
    let (fourth, _) = h2.send_request(request, true).unwrap();
    let still_pending = poll_fn(|cx| match h2.poll_ready(cx) {
        Poll::Pending => Poll::Ready(true),
        Poll::Ready(result) => {
            result.unwrap();
            Poll::Ready(false)
        }
    })
    .now_or_never()
    .unwrap();
    assert!(still_pending, "a fourth stream was opened at once");
    // Closing one stream lets it through.
    drop(streams.pop());
    let fourth = tokio::time::timeout(support::DEADLINE, fourth)
        .await
        .expect("the fourth stream never opened")
        .unwrap();
    assert_eq!(fourth.status(), 200);
}

#[test]
fn ui_off_removes_the_page_and_the_stats_stream() {
    let on = serve(&[]);
    assert!(plain_get(&on.addr, "/").starts_with("HTTP/1.1 200"));
    assert!(on
        .printed
        .stdout
        .iter()
        .any(|l| l.contains(&format!("Web UI at http://{}/", on.addr))));

    let off = serve(&["--ui", "off"]);
    for path in ["/", "/ui/app.js", "/.well-known/herald/stats"] {
        let answer = plain_get(&off.addr, path);
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
    }
    assert!(plain_get(&off.addr, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(!off.printed.stdout.iter().any(|l| l.contains("Web UI")));
}

#[test]
fn bad_tls_options_fail_at_start_with_a_clear_message() {
    let dir = TempDir::new("serve-tls-bad");
    let missing = dir.join("missing.pem");
    let garbage = dir.join("garbage.pem");
    std::fs::write(&garbage, "not a certificate").unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["--tls-cert", garbage.to_str().unwrap()],
            "--tls-cert and --tls-key go together",
        ),
        (
            vec![
                "--tls-self-signed",
                "--tls-cert",
                garbage.to_str().unwrap(),
                "--tls-key",
                garbage.to_str().unwrap(),
            ],
            "exclude each other",
        ),
        (
            vec![
                "--tls-cert",
                missing.to_str().unwrap(),
                "--tls-key",
                missing.to_str().unwrap(),
            ],
            "cannot read",
        ),
        (
            vec![
                "--tls-cert",
                garbage.to_str().unwrap(),
                "--tls-key",
                garbage.to_str().unwrap(),
            ],
            "invalid TLS certificate",
        ),
    ];
    for (args, message) in cases {
        let out = support::output(&mut command(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}
