//! TLS clients for the HTTPS tests: rustls configurations that trust given
//! certificates (or pin none, to read what is served), handshakes that
//! report the negotiated ALPN protocol and the served chain, and HTTP/2
//! (the `h2` crate, as a browser speaks it) or HTTP/1.1 over them.

use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::DEADLINE;

/// A client configuration offering `alpn`, trusting only `roots`.
pub fn trusting(roots: &[CertificateDer<'static>], alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for cert in roots {
        store.add(cert.clone()).unwrap();
    }
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A client configuration offering `alpn` that accepts any certificate:
/// for a test that then checks what was served against what it expects
/// (a fingerprint, say), as certificate pinning does.
pub fn accepting_any(alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Connects to `addr` and completes a TLS handshake for `server_name`;
/// the error is the handshake's (an untrusted chain, say).
pub async fn try_connect(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(server_name.to_string()).unwrap();
    let connector = tokio_rustls::TlsConnector::from(config);
    tokio::time::timeout(DEADLINE, async {
        let tcp = TcpStream::connect(addr).await?;
        connector.connect(name, tcp).await
    })
    .await
    .expect("the TLS handshake hung")
}

/// [`try_connect`], failing the test if the handshake fails.
pub async fn connect(
    addr: &str,
    config: Arc<rustls::ClientConfig>,
    server_name: &str,
) -> TlsStream<TcpStream> {
    try_connect(addr, config, server_name)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with {addr} failed: {e}"))
}

/// The ALPN protocol the handshake settled on (empty for none).
pub fn alpn(tls: &TlsStream<TcpStream>) -> Vec<u8> {
    tls.get_ref().1.alpn_protocol().unwrap_or_default().to_vec()
}

/// The certificate chain the server presented, leaf first.
pub fn served_chain(tls: &TlsStream<TcpStream>) -> Vec<CertificateDer<'static>> {
    tls.get_ref()
        .1
        .peer_certificates()
        .expect("the server sent certificates")
        .to_vec()
}

/// A certificate's SHA-256 fingerprint as colon-separated upper-case hex,
/// the form `herald serve --tls-self-signed` prints and browsers show.
pub fn fingerprint(der: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Starts HTTP/2 on a connection that negotiated `h2`; the connection is
/// driven by a task of its own until it ends.
pub async fn h2_client(tls: TlsStream<TcpStream>) -> h2::client::SendRequest<Bytes> {
    assert_eq!(alpn(&tls), b"h2", "the server did not choose HTTP/2");
    let (send, connection) = tokio::time::timeout(DEADLINE, h2::client::handshake(tls))
        .await
        .expect("the HTTP/2 handshake hung")
        .expect("the HTTP/2 handshake failed");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    send
}

/// Sends `GET path` on a new HTTP/2 stream and returns the response head
/// and the body's receiving half, once the head arrived.
pub async fn h2_get(
    send: &mut h2::client::SendRequest<Bytes>,
    authority: &str,
    path: &str,
) -> http::Response<h2::RecvStream> {
    let request = http::Request::get(format!("https://{authority}{path}"))
        .body(())
        .unwrap();
    let ready = tokio::time::timeout(DEADLINE, send.clone().ready())
        .await
        .expect("no HTTP/2 stream became free")
        .unwrap();
    *send = ready;
    let (response, _) = send.send_request(request, true).unwrap();
    tokio::time::timeout(DEADLINE, response)
        .await
        .expect("no HTTP/2 response head")
        .unwrap()
}

/// Reads an HTTP/2 body until `needle` appears in it or it ends; returns
/// everything read.
pub async fn h2_read_until(body: &mut h2::RecvStream, needle: &str) -> String {
    let mut seen = Vec::new();
    while !String::from_utf8_lossy(&seen).contains(needle) {
        let Some(chunk) = tokio::time::timeout(DEADLINE, body.data())
            .await
            .expect("the HTTP/2 body stalled")
        else {
            break;
        };
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        seen.extend_from_slice(&chunk);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// `GET path` over HTTP/1.1 on a connection that negotiated it; returns
/// the whole answer.
pub async fn http1_get(mut tls: TlsStream<TcpStream>, path: &str) -> String {
    assert_eq!(alpn(&tls), b"http/1.1");
    tls.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(DEADLINE, tls.read_to_end(&mut answer))
        .await
        .expect("the answer never ended");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Accepts any server certificate (see [`accepting_any`]).
#[derive(Debug)]
struct AcceptAny;

impl rustls::client::danger::ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}
