//! The accept loop: the socket end of both paths, for plain HTTP and HTTPS.
//!
//! [`Server`] takes a bound `TcpListener` and serves the hub's router on every
//! connection, HTTP/1.1 and HTTP/2 on one listener. An HTTP/1.1
//! subscription (or form publish) is served by this module itself (`plain`,
//! `http1`), plain or over TLS, so that an idle subscriber costs about
//! 2 KiB (plain; under 10 KiB over TLS) instead of hyper's ~22 KiB of
//! connection buffers; every other request, and every connection once it
//! asks for something else, goes to hyper's automatic connection builder
//! with the bytes already read replayed. With a [`TlsConfig`] each
//! connection first completes a TLS handshake (`tls`, rustls's unbuffered
//! API, no buffer kept while idle) offering ALPN `h2` and `http/1.1`; browsers only
//! use HTTP/2 over TLS, and over HTTP/2 one connection carries up to
//! [`Server::h2_max_concurrent_streams`] event streams instead of the six
//! connections per origin a browser allows over HTTP/1.1. Each stream has
//! its own HTTP/2 flow-control window, so a subscriber that stops reading
//! holds only its own window; the others keep flowing (and the stalled one
//! is closed as slow once its queue fills).
//!
//! When the shutdown future completes the server stops accepting, calls
//! [`Hub::shutdown`] so every event stream ends, and waits (boundedly) for
//! the open connections to finish.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use herald_hub::server::{Server, TlsConfig};
//! use herald_hub::{Hub, HubConfig};
//!
//! let hub = Hub::new(HubConfig { anonymous: true, ..HubConfig::default() })?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8443").await?;
//! let tls = TlsConfig::self_signed(&["localhost".into(), "127.0.0.1".into()])?;
//! Server::new(&hub)
//!     .tls(&tls)?
//!     .serve(listener, async {
//!         let _ = tokio::signal::ctrl_c().await;
//!     })
//!     .await?;
//! # Ok(()) }
//! ```

// `pub(crate)` for the `fuzzing` module's head parser target.
pub(crate) mod http1;
mod plain;
mod publish;
mod rewind;
mod sockets;
mod stall;
#[cfg(feature = "tls")]
mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::fanout::StallFlag;
use crate::http::PublishEndpoint;
use crate::{Hub, HUB_PATH};
use sockets::{Counted, Sockets};

#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsError};

/// The default limit of concurrent HTTP/2 streams per connection.
pub const DEFAULT_H2_MAX_STREAMS: u32 = 256;

/// The default of [`Server::write_stall_limit`].
pub const DEFAULT_WRITE_STALL_LIMIT: Duration = Duration::from_secs(60);

/// How long a client may take to send a request head, and how long an idle
/// keep-alive connection is kept: on hyper's connections and on the
/// server's own HTTP/1.1 path alike.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a client may take to complete the TLS handshake.
#[cfg(feature = "tls")]
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for open connections once every stream is told
/// to end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Serves a hub over plain HTTP or HTTPS (HTTP/1.1 and HTTP/2 on one
/// listener) until a shutdown future completes.
pub struct Server {
    hub: Hub,
    router: Router,
    /// `None` for plain HTTP.
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    h2_max_streams: u32,
    write_stall_limit: Duration,
    stream_path: String,
    for_http1_streams: usize,
    /// Answers the lean path's publishes without the router, while the
    /// router is the hub's own.
    publish_endpoint: Option<PublishEndpoint>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut f = f.debug_struct("Server");
        #[cfg(feature = "tls")]
        f.field("tls", &self.tls.is_some());
        f.field("h2_max_streams", &self.h2_max_streams)
            .field("write_stall_limit", &self.write_stall_limit)
            .field("stream_path", &self.stream_path)
            .field("http1_stream_connections", &self.for_http1_streams)
            .finish_non_exhaustive()
    }
}

impl Server {
    /// A plain-HTTP server for `hub`'s routes.
    pub fn new(hub: &Hub) -> Server {
        Server {
            hub: hub.clone(),
            router: hub.router(),
            #[cfg(feature = "tls")]
            tls: None,
            h2_max_streams: DEFAULT_H2_MAX_STREAMS,
            write_stall_limit: DEFAULT_WRITE_STALL_LIMIT,
            stream_path: HUB_PATH.to_owned(),
            for_http1_streams: sockets::default_for_http1_streams(),
            publish_endpoint: Some(PublishEndpoint::new(hub)),
        }
    }

    /// Serves `router` instead of the hub's own routes (e.g. an application
    /// router with the hub's nested in it). Shutdown still ends the hub's
    /// streams. When the hub's routes are nested under a prefix, say where
    /// its stream now is with [`Server::stream_path`].
    pub fn router(mut self, router: Router) -> Server {
        self.router = router;
        // Its layers and routes now decide every answer.
        self.publish_endpoint = None;
        self
    }

    /// The path of the hub's subscription endpoint in the served router
    /// (default [`HUB_PATH`]; `"/hub/.well-known/mercure"` for a hub nested
    /// under `/hub`). HTTP/1.1 requests for it, plain or over TLS, take
    /// the lean path (~2 KiB per idle subscriber instead of ~22 KiB); any other path is
    /// still served, by hyper, with the same router.
    pub fn stream_path(mut self, path: impl Into<String>) -> Server {
        self.stream_path = path.into();
        self
    }

    /// Serves HTTPS with this certificate, offering ALPN `h2` and
    /// `http/1.1` (the `tls` feature).
    #[cfg(feature = "tls")]
    pub fn tls(mut self, tls: &TlsConfig) -> Result<Server, TlsError> {
        self.tls = Some(tls.rustls_config()?);
        Ok(self)
    }

    /// The most concurrent streams a client may open on one HTTP/2
    /// connection (at least 1; default [`DEFAULT_H2_MAX_STREAMS`]).
    pub fn h2_max_concurrent_streams(mut self, streams: u32) -> Server {
        self.h2_max_streams = streams.max(1);
        self
    }

    /// How long a connection's writes may wait for its client to accept
    /// more bytes before the connection is closed (default
    /// [`DEFAULT_WRITE_STALL_LIMIT`]), on every path: HTTP/1.1 and HTTP/2,
    /// plain and TLS. A client that stops reading is closed as slow by
    /// fan-out once its queue fills; this also frees its connection, which
    /// would otherwise wait on a full socket for as long as the client
    /// keeps it open, and it counts the subscriptions it ends (that fan-out
    /// had not closed already) as slow disconnects.
    pub fn write_stall_limit(mut self, limit: Duration) -> Server {
        self.write_stall_limit = limit;
        self
    }

    /// Most open connections at which a new HTTP/1.1 subscription is
    /// still admitted (its own connection counted); past it, it gets a 503
    /// with `Retry-After`, so that the files left serve publishers, health
    /// checks and HTTP/2 connections instead of failing at `accept`.
    /// HTTP/2 streams share their connection and are not counted. Default:
    /// the process's open-file limit less 256 (Linux; no limit where the
    /// limit cannot be read).
    pub fn http1_stream_connections(mut self, connections: usize) -> Server {
        self.for_http1_streams = connections.max(1);
        self
    }

    /// Accepts connections on `listener` until `shutdown` completes, then
    /// ends every stream and waits up to ten seconds for open connections
    /// to close. Errors on single connections are logged, never fatal.
    pub async fn serve<F>(self, listener: TcpListener, shutdown: F) -> std::io::Result<()>
    where
        F: Future<Output = ()>,
    {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_streams)
            .keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        // The hub's router publishes at `HUB_PATH` only.
        let publish_endpoint = self
            .publish_endpoint
            .filter(|_| self.stream_path == HUB_PATH);
        // One copy for all connections: what a connection task holds while
        // it idles is per-subscriber memory.
        let shared = Arc::new(Shared {
            builder,
            service: TowerToHyperService::new(self.router),
            #[cfg(feature = "tls")]
            tls: self.tls,
            write_stall_limit: self.write_stall_limit,
            stream_path: self.stream_path,
            publish_body_limit: self.hub.shared.config.max_body,
            publish_endpoint,
            sockets: Arc::new(Sockets::new(
                Arc::clone(&self.hub.shared.metrics),
                self.for_http1_streams,
            )),
        });
        // Every connection holds a receiver; shutdown flips the value and
        // then waits for all of them to be dropped.
        let (stop, stopping) = watch::channel(false);
        tokio::pin!(shutdown);

        loop {
            let (tcp, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // E.g. out of file descriptors: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let _ = tcp.set_nodelay(true);
            let shared = Counted::new(Arc::clone(&shared));
            let stopping = stopping.clone();
            #[cfg(feature = "tls")]
            if let Some(config) = shared.tls.clone() {
                tokio::spawn(tls::Connection::new(tcp, peer, config, shared, stopping));
                continue;
            }
            tokio::spawn(plain::Connection::new(tcp, peer, shared, stopping));
        }

        drop(listener);
        drop(stopping);
        self.hub.shutdown();
        let _ = stop.send(true);
        if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
            .await
            .is_err()
        {
            tracing::warn!("some connections were still open after the shutdown grace period");
        }
        Ok(())
    }
}

/// What every connection task shares.
struct Shared {
    builder: auto::Builder<TokioExecutor>,
    service: TowerToHyperService<Router>,
    /// `None` for plain HTTP.
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
    write_stall_limit: Duration,
    /// The path whose HTTP/1.1 (plain or TLS) subscriptions and publishes take the
    /// lean path.
    stream_path: String,
    /// The hub's body limit: a longer publish is left to hyper.
    publish_body_limit: usize,
    /// Answers publishes without the router (`None`: through it).
    publish_endpoint: Option<PublishEndpoint>,
    /// The open connections, for the budget of HTTP/1.1 streams.
    sockets: Arc<Sockets>,
}

/// Why a connection ended early (logged at debug level).
type ConnectionError = Box<dyn std::error::Error + Send + Sync>;

/// Serves a connection with hyper (HTTP/1.1 or HTTP/2, whichever the client
/// speaks), shutting it down gracefully when `stopping` turns true, and
/// closing it when the client stops reading for the write stall limit.
/// `peer` is the client's address, which every request carries.
async fn serve_hyper<I>(
    shared: &Shared,
    io: I,
    peer: SocketAddr,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), ConnectionError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let flag = StallFlag::default();
    let io = stall::StallGuard::new(io, shared.write_stall_limit, flag.clone());
    let service = stall::Flagged {
        inner: shared.service.clone(),
        flag,
        peer,
        sockets: Arc::clone(&shared.sockets),
    };
    let conn = shared.builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        result = conn.as_mut() => return result,
        // A dropped sender (the server future was dropped) also means stop.
        _ = stopping.wait_for(|stop| *stop) => conn.as_mut().graceful_shutdown(),
    }
    conn.await
}
