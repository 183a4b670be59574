//! HTTPS: a private CA through `Builder::tls_config`, over HTTP/1.1 and
//! HTTP/2 (ALPN), and certificate verification left on by default.

mod fixture;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use herald_client::{Error, EventSource, Item, ReconnectPolicy};
use http_body_util::Full;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A self-signed certificate for `localhost`, and a client config trusting it.
struct Tls {
    acceptor: TlsAcceptor,
    client: rustls::ClientConfig,
}

fn tls(alpn: &[&[u8]]) -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert: CertificateDer<'static> = certified.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        certified.signing_key.serialize_der(),
    ));
    let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key)
        .unwrap();
    server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert).unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Tls {
        acceptor: TlsAcceptor::from(Arc::new(server)),
        client,
    }
}

async fn next(source: &mut EventSource) -> Result<Item, Error> {
    tokio::time::timeout(Duration::from_secs(10), source.next())
        .await
        .expect("no item within 10 s")
        .expect("stream ended")
}

async fn next_event_data(source: &mut EventSource) -> String {
    loop {
        match next(source).await {
            Ok(Item::Event(e)) => return e.data().to_owned(),
            Ok(Item::Open(_)) => {}
            other => panic!("expected an event, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn https_with_a_private_ca_over_http1() {
    let Tls { acceptor, client } = tls(&[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tls.read(&mut buf).await.unwrap();
            assert!(n > 0, "client closed before sending its request");
            head.extend_from_slice(&buf[..n]);
        }
        tls.write_all(fixture::SSE_HEAD.as_bytes()).await.unwrap();
        tls.write_all(b"data: over tls\n\n").await.unwrap();
        tls.flush().await.unwrap();
        // Keep the stream open until the client goes away.
        while let Ok(n) = tls.read(&mut buf).await {
            if n == 0 {
                break;
            }
        }
    });
    let mut source = EventSource::builder(&format!("https://localhost:{port}/"))
        .tls_config(client)
        .build()
        .unwrap();
    assert_eq!(next_event_data(&mut source).await, "over tls");
}

#[tokio::test]
async fn https_negotiates_http2_with_alpn() {
    let Tls { acceptor, client } = tls(&[b"h2"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let saw_h2 = Arc::new(AtomicBool::new(false));
    let flag = saw_h2.clone();
    tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let tls = acceptor.accept(tcp).await.unwrap();
        let service =
            hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                flag.store(req.version() == http::Version::HTTP_2, Ordering::SeqCst);
                async move {
                    http::Response::builder()
                        .header("content-type", "text/event-stream")
                        .body(Full::new(Bytes::from_static(b"data: over h2\n\n")))
                }
            });
        let _ = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
            .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
            .await;
    });
    let mut source = EventSource::builder(&format!("https://localhost:{port}/"))
        .tls_config(client)
        .build()
        .unwrap();
    assert_eq!(next_event_data(&mut source).await, "over h2");
    assert!(
        saw_h2.load(Ordering::SeqCst),
        "the request did not use HTTP/2"
    );
}

#[tokio::test]
async fn an_untrusted_certificate_is_refused_by_default() {
    let Tls { acceptor, .. } = tls(&[b"http/1.1"]);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let _ = acceptor.accept(tcp).await;
        }
    });
    let mut source = EventSource::builder(&format!("https://localhost:{port}/"))
        .reconnect(ReconnectPolicy::default().max_attempts(Some(0)))
        .build()
        .unwrap();
    match next(&mut source).await {
        Err(Error::AttemptsExhausted { last, .. }) => {
            assert!(matches!(*last, Error::Connect(_)), "{last:?}");
            let chain = format!("{:?}", last);
            assert!(
                chain.contains("certificate") || chain.contains("Certificate"),
                "{chain}"
            );
        }
        other => panic!("expected a refused connection, got {other:?}"),
    }
}
