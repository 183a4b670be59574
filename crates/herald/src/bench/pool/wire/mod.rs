//! How a subscriber reaches its hub and reads its stream, per transport:
//! the connection (TCP from a 127.0.0.x source address, then TLS for
//! `https://`) and the wire protocol (`http1`: one GET per connection;
//! `h2`: one stream of a connection shared by `--streams-per-connection`
//! subscribers). Whatever the transport, a subscription ends up as a
//! [`Body`] whose bytes feed the subscriber's `herald_sse::Parser`; the
//! accounting after that is one for all (`pool::state`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::bench::transport::TlsClient;
use anyhow::{bail, Context};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio_rustls::client::TlsStream;

use super::PoolConfig;
use crate::bench::http::{self, Url};
use crate::bench::transport::Transport;

mod h2;
mod http1;

/// Opens subscriptions for the subscribers of one thread.
pub(super) enum Dialer {
    /// HTTP/1.1, one connection per subscriber; over TLS with a connector.
    Http1 {
        source_ips: usize,
        tls: Option<TlsClient>,
    },
    /// HTTP/2, subscribers sharing connections.
    H2(h2::Connections),
}

impl Dialer {
    /// The dialer `config` asks for, over TLS with `tls` (see
    /// [`alpn`]); `storm` is bumped when every connection must drop.
    pub(super) fn new(
        config: &PoolConfig,
        tls: Option<TlsClient>,
        storm: watch::Receiver<u64>,
    ) -> Dialer {
        if config.transport.http2() {
            Dialer::H2(h2::Connections::new(config, tls, storm))
        } else {
            Dialer::Http1 {
                source_ips: config.source_ips,
                tls,
            }
        }
    }

    /// Subscribes subscriber `global` (of the run) at `url`, resuming after
    /// `last_id`.
    pub(super) async fn open(
        &self,
        url: &Url,
        last_id: Option<&str>,
        global: usize,
    ) -> anyhow::Result<Body> {
        match self {
            Dialer::Http1 { source_ips, tls } => {
                let tcp = connect(url, *source_ips, global).await?;
                match tls {
                    None => Ok(Body::Plain(http1::subscribe(tcp, url, last_id).await?)),
                    Some(connector) => {
                        let tls = connector.handshake(tcp, url).await?;
                        let body = http1::subscribe(tls, url, last_id).await?;
                        Ok(Body::Tls(Box::new(body)))
                    }
                }
            }
            Dialer::H2(connections) => Ok(Body::H2(connections.open(url, last_id, global).await?)),
        }
    }

    /// Connections opened so far, when they are not one per subscriber.
    pub(super) fn shared_connections(&self) -> Option<u64> {
        match self {
            Dialer::Http1 { .. } => None,
            Dialer::H2(connections) => Some(connections.opened()),
        }
    }
}

/// The ALPN protocol a TLS connection of `transport` offers.
pub(super) fn alpn(transport: Transport) -> &'static [u8] {
    if transport.http2() {
        b"h2"
    } else {
        b"http/1.1"
    }
}

/// Which subscriber thread (of `threads`) subscriber `index` runs on: the
/// subscribers of one HTTP/2 connection share a thread, since they share
/// its state.
pub(super) fn thread_of(config: &PoolConfig, index: usize, threads: usize) -> usize {
    let group = if config.transport.http2() {
        h2::group_of(config, index)
    } else {
        index
    };
    group % threads.max(1)
}

/// An open event stream, whatever carries it.
pub(super) enum Body {
    Plain(http1::Body<TcpStream>),
    Tls(Box<http1::Body<TlsStream<TcpStream>>>),
    H2(h2::Stream),
}

impl Body {
    /// Reads what comes next into `parser`; `Ok(false)` once the stream
    /// ended. Cancel-safe.
    pub(super) async fn read_into(
        &mut self,
        parser: &mut herald_sse::Parser,
    ) -> anyhow::Result<bool> {
        match self {
            Body::Plain(body) => body.read_into(parser).await,
            Body::Tls(body) => body.read_into(parser).await,
            Body::H2(stream) => stream.read_into(parser).await,
        }
    }
}

/// Connects to `url` from source address 127.0.0.(1 + `index` mod
/// `source_ips`), so no one address runs out of ephemeral ports.
async fn connect(url: &Url, source_ips: usize, index: usize) -> anyhow::Result<TcpStream> {
    let socket = match url.addr {
        SocketAddr::V4(_) => {
            let socket = TcpSocket::new_v4()?;
            let n = source_ips.clamp(1, 250);
            let ip = Ipv4Addr::new(127, 0, 0, 1 + (index % n) as u8);
            socket
                .bind(SocketAddr::new(IpAddr::V4(ip), 0))
                .with_context(|| format!("cannot bind to {ip}"))?;
            socket
        }
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    let stream = socket
        .connect(url.addr)
        .await
        .with_context(|| format!("cannot connect to {}", url.addr))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Whether a subscription's answer (`status`, `content_type`) opens an
/// event stream; if not, why, and what to do.
fn check_subscription(status: u16, content_type: Option<&str>) -> anyhow::Result<()> {
    match status {
        200 => {}
        401 => bail!(
            "the server answered 401 to the subscription: herald bench subscribes without a token (start the hub with --anonymous)"
        ),
        404 => bail!(
            "the server answered 404 to the subscription: check --hub (the hub's endpoint is http://HOST/.well-known/mercure) or --sub-url"
        ),
        429 => bail!(
            "the server answered 429 to the subscription: every subscriber of herald bench comes from a few addresses (start the hub with --max-streams-per-client 0)"
        ),
        status => bail!("the server answered {status} to the subscription"),
    }
    if !http::is_event_stream(content_type) {
        bail!(
            "the subscription was answered with {}, not text/event-stream: check --hub (the hub's endpoint is http://HOST/.well-known/mercure) or --sub-url",
            match content_type {
                Some(t) => format!("Content-Type {t}"),
                None => "no Content-Type".to_owned(),
            }
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_event_stream_opens_a_subscription_and_failures_say_what_to_do() {
        let check = |head: &str| {
            let text = format!("{head}\r\n\r\n");
            let head = http::parse_head(text.as_bytes()).unwrap().unwrap();
            check_subscription(head.status, head.content_type.as_deref()).map_err(|e| e.to_string())
        };
        assert!(check("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream").is_ok());
        // The web UI at / of a hub given by its base URL.
        let err = check("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8").unwrap_err();
        assert!(
            err.contains("text/html") && err.contains("--hub") && err.contains("--sub-url"),
            "{err}"
        );
        let err = check("HTTP/1.1 200 OK\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("no Content-Type"), "{err}");
        let err = check("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("(start the hub with --anonymous)"), "{err}");
        let err = check("HTTP/1.1 404 Not Found\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("--hub"), "{err}");
        let err = check("HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("--max-streams-per-client 0"), "{err}");
        let err = check("HTTP/1.1 503 Unavailable\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("503"), "{err}");
    }
}
