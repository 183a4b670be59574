//! `herald serve`'s HTTPS and UI options through the real binary:
//! `--tls-cert`/`--tls-key` and `--tls-self-signed` serve HTTP/2 and
//! HTTP/1.1 by ALPN, `--ui off` removes the page, bad combinations fail at
//! start with a clear message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use herald_hub::server::TlsConfig;
use support::{address_in, lines_until, serve_command, Killed, TempDir};

/// A `herald serve` child, killed when dropped.
struct Served {
    _child: Killed,
    /// `host:port` from the banner.
    addr: String,
    banner: Vec<String>,
}

fn command(args: &[&str]) -> Command {
    let mut cmd = serve_command(&["--listen", "127.0.0.1:0", "--history", "memory"]);
    cmd.args(args);
    cmd
}

/// Starts a development hub and reads its stdout up to a line starting
/// with `until`.
fn serve_until(args: &[&str], until: &str) -> Served {
    let mut child = command(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let banner = lines_until(stdout, |l| l.starts_with(until));
    let first = &banner[0];
    let addr = address_in(first).unwrap_or_else(|| panic!("no address in {first:?}"));
    Served {
        _child: Killed(child),
        addr,
        banner,
    }
}

/// A TLS client trusting `tls`'s certificate and offering `alpn`.
fn tls_client(tls: &TlsConfig, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in tls.certificates() {
        roots.add(cert.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Completes a TLS handshake and returns the negotiated ALPN protocol and,
/// for `http/1.1`, the answer to `GET path`.
/// Starts a development hub and reads its banner.
fn serve(args: &[&str]) -> Served {
    serve_until(args, "Stop with")
}

fn over_tls(addr: &str, config: Arc<rustls::ClientConfig>, path: &str) -> (Vec<u8>, String) {
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut conn = rustls::ClientConnection::new(config, name).unwrap();
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut tcp).unwrap();
    }
    let alpn = conn.alpn_protocol().unwrap_or_default().to_vec();
    let mut answer = String::new();
    if alpn == b"http/1.1" {
        let mut stream = rustls::Stream::new(&mut conn, &mut tcp);
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let _ = stream.read_to_string(&mut answer);
    }
    (alpn, answer)
}

fn plain_get(addr: &str, path: &str) -> String {
    let mut tcp = TcpStream::connect(addr).unwrap();
    write!(
        tcp,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn tls_cert_and_key_files_serve_h2_and_http1_by_alpn() {
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
    assert!(served.banner[0].starts_with("Herald hub running at https://"));
    assert!(served
        .banner
        .iter()
        .any(|l| l.contains(&format!("Web UI at https://{}/", served.addr))));

    let (alpn, _) = over_tls(&served.addr, tls_client(&tls, &[b"h2", b"http/1.1"]), "/");
    assert_eq!(alpn, b"h2");
    let (alpn, answer) = over_tls(&served.addr, tls_client(&tls, &[b"http/1.1"]), "/");
    assert_eq!(alpn, b"http/1.1");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<title>Herald</title>"), "{answer}");
}

#[test]
fn tls_self_signed_prints_its_fingerprint_and_negotiates_h2() {
    let served = serve_until(&["--tls-self-signed"], "Self-signed certificate");
    assert!(served.banner[0].starts_with("Herald hub running at https://"));
    let line = served.banner.last().unwrap();
    let fingerprint = line
        .strip_prefix("Self-signed certificate (SHA-256 ")
        .and_then(|rest| rest.split(')').next())
        .unwrap_or_else(|| panic!("{line}"));
    assert_eq!(fingerprint.len(), 32 * 3 - 1, "{fingerprint}");
    assert!(fingerprint
        .split(':')
        .all(|b| b.len() == 2 && b.chars().all(|c| c.is_ascii_hexdigit())));

    // The certificate is made at start, so the client accepts any (this
    // test is about the protocol, not trust).
    let config = {
        let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(config)
    };
    let (alpn, _) = over_tls(&served.addr, config, "/");
    assert_eq!(alpn, b"h2");
}

#[test]
fn ui_off_removes_the_page_and_the_stats_stream() {
    let on = serve(&[]);
    assert!(plain_get(&on.addr, "/").starts_with("HTTP/1.1 200"));
    assert!(on
        .banner
        .iter()
        .any(|l| l.contains(&format!("Web UI at http://{}/", on.addr))));

    let off = serve(&["--ui", "off"]);
    for path in ["/", "/ui/app.js", "/.well-known/herald/stats"] {
        let answer = plain_get(&off.addr, path);
        assert!(answer.starts_with("HTTP/1.1 404"), "{path}: {answer}");
    }
    assert!(plain_get(&off.addr, "/healthz").starts_with("HTTP/1.1 200"));
    assert!(!off.banner.iter().any(|l| l.contains("Web UI")));
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
        let out = command(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} started");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// Accepts any server certificate (only to observe ALPN in a test).
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        Ok(rustls::client::danger::HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
