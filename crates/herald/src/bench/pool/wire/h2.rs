//! Subscriptions over HTTP/2: each is one stream of a connection that
//! `--streams-per-connection` subscribers share, over TLS (ALPN `h2`) or
//! over TCP with prior knowledge (h2c). Uses the `h2` crate directly: it
//! needs no executor, so connections live on the subscriber threads'
//! single-threaded runtimes like everything else there.
//!
//! The subscribers of one connection are those of one group (their rank on
//! their hub divided by the streams per connection), all on one thread. The
//! first of them to subscribe opens the connection and the others wait for
//! it; a connection that failed, or that a storm dropped, is opened again by
//! the first subscriber to come back. A storm drops the connections
//! themselves, not only their streams: a reconnect storm over HTTP/2 is
//! every connection's handshake again.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use crate::bench::transport::TlsClient;
use anyhow::{bail, Context};
use bytes::Bytes;
use h2::client::SendRequest;
use h2::RecvStream;
use http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{watch, Mutex};

use super::check_subscription;
use crate::bench::http::Url;
use crate::bench::pool::PoolConfig;

/// Each stream's receive window, h2's default: what the hub may send ahead
/// of the subscriber's reading.
const STREAM_WINDOW: u32 = 65_535;

/// How long a stream may take to be answered.
const OPEN_TIMEOUT: Duration = Duration::from_secs(60);

/// The group (and so the connection) of subscriber `index`: its rank among
/// the subscribers of its hub (subscriber i is on hub i mod N) divided by
/// the streams per connection. After a storm that resumes elsewhere, a
/// whole group moves to the next hub together.
pub(super) fn group_of(config: &PoolConfig, index: usize) -> usize {
    (index / config.sub_urls.len().max(1)) / config.streams_per_connection.max(1)
}

/// One thread's HTTP/2 connections, by hub and group.
pub(in crate::bench::pool) struct Connections {
    hubs: usize,
    streams: usize,
    source_ips: usize,
    /// Present over TLS, offering ALPN `h2` only.
    tls: Option<TlsClient>,
    /// Bumped at each storm: every connection drops.
    storm: watch::Receiver<u64>,
    slots: RefCell<HashMap<(SocketAddr, usize), Rc<Slot>>>,
    /// Connections that opened at least once.
    opened: Cell<u64>,
}

/// A connection's place: open, being opened (its lock held), or closed.
#[derive(Default)]
struct Slot {
    /// Held while the connection is being opened, so its other
    /// subscribers wait for it rather than open connections of their own.
    live: Mutex<Option<Live>>,
    opened_once: Cell<bool>,
}

/// An open connection.
struct Live {
    send: SendRequest<Bytes>,
    /// The storm count when it opened: an older one was dropped.
    storm: u64,
    /// Its driver ended: the connection is gone.
    closed: Rc<Cell<bool>>,
}

impl Connections {
    /// The connections of `config`'s subscribers; over TLS with `tls`.
    pub(super) fn new(
        config: &PoolConfig,
        tls: Option<TlsClient>,
        storm: watch::Receiver<u64>,
    ) -> Connections {
        Connections {
            hubs: config.sub_urls.len().max(1),
            streams: config.streams_per_connection.max(1),
            source_ips: config.source_ips,
            tls,
            storm,
            slots: RefCell::default(),
            opened: Cell::new(0),
        }
    }

    /// Connections that opened at least once.
    pub(super) fn opened(&self) -> u64 {
        self.opened.get()
    }

    /// Opens subscriber `global`'s stream at `url`, resuming after
    /// `last_id`, on its group's connection (opened if need be).
    pub(super) async fn open(
        &self,
        url: &Url,
        last_id: Option<&str>,
        global: usize,
    ) -> anyhow::Result<Stream> {
        let group = (global / self.hubs) / self.streams;
        let slot = Rc::clone(
            self.slots
                .borrow_mut()
                .entry((url.addr, group))
                .or_default(),
        );
        let send = self.sender(&slot, url, group).await?;
        let mut request = http::Request::get(url.absolute())
            .header(ACCEPT, "text/event-stream")
            .header(CACHE_CONTROL, "no-cache");
        if let Some(id) = last_id {
            request = request.header("last-event-id", id);
        }
        let request = request
            .body(())
            .context("cannot make the subscription request")?;
        let opening = async {
            let mut send = send.ready().await.context("the HTTP/2 connection failed")?;
            let (response, _) = send
                .send_request(request, true)
                .context("cannot open an HTTP/2 stream")?;
            response.await.context("the HTTP/2 stream failed")
        };
        // A stream past the hub's limit of concurrent streams waits for
        // one to close, which an event stream never does: say so rather
        // than wait for ever.
        let Ok(response) = tokio::time::timeout(OPEN_TIMEOUT, opening).await else {
            bail!(
                "no answer on an HTTP/2 stream within {} s: is --streams-per-connection above the hub's limit of streams per connection (--h2-max-streams)?",
                OPEN_TIMEOUT.as_secs()
            );
        };
        let response = response?;
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        check_subscription(response.status().as_u16(), content_type)?;
        Ok(Stream {
            body: response.into_body(),
        })
    }

    /// The slot's connection, opened (again) unless it is up and older
    /// than no storm.
    async fn sender(
        &self,
        slot: &Slot,
        url: &Url,
        group: usize,
    ) -> anyhow::Result<SendRequest<Bytes>> {
        let mut live = slot.live.lock().await;
        let storm = *self.storm.borrow();
        if let Some(l) = live.as_ref() {
            if l.storm == storm && !l.closed.get() {
                return Ok(l.send.clone());
            }
        }
        *live = None;
        let tcp = super::connect(url, self.source_ips, group).await?;
        let (send, closed) = match &self.tls {
            None => self.start(tcp).await?,
            Some(connector) => {
                let tls = connector.handshake(tcp, url).await?;
                if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                    bail!(
                        "the server at {} did not agree to HTTP/2 over TLS (ALPN h2): try --transport https",
                        url.addr
                    );
                }
                self.start(tls).await?
            }
        };
        if !slot.opened_once.replace(true) {
            self.opened.set(self.opened.get() + 1);
        }
        *live = Some(Live {
            send: send.clone(),
            storm,
            closed,
        });
        Ok(send)
    }

    /// Completes the HTTP/2 handshake on `io` and drives the connection in
    /// a task of its own until it fails or a storm drops it.
    async fn start<T>(&self, io: T) -> anyhow::Result<(SendRequest<Bytes>, Rc<Cell<bool>>)>
    where
        T: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        // The connection's window covers every stream's, so one busy
        // stream never holds up the others: windows are credit, not
        // buffers, and each is given back as its bytes are read.
        let connection_window = u32::try_from(self.streams as u64 * u64::from(STREAM_WINDOW))
            .unwrap_or(i32::MAX as u32);
        let (send, connection) = h2::client::Builder::new()
            .initial_window_size(STREAM_WINDOW)
            .initial_connection_window_size(connection_window.min(i32::MAX as u32))
            .handshake::<_, Bytes>(io)
            .await
            .context("the HTTP/2 handshake failed")?;
        let closed = Rc::new(Cell::new(false));
        let flag = Rc::clone(&closed);
        let mut storm = self.storm.clone();
        storm.mark_unchanged();
        tokio::task::spawn_local(async move {
            tokio::select! {
                _ = connection => {}
                // Dropping the connection closes its socket.
                _ = storm.changed() => {}
            }
            flag.set(true);
        });
        Ok((send, closed))
    }
}

/// One subscriber's HTTP/2 stream.
pub(in crate::bench::pool) struct Stream {
    body: RecvStream,
}

impl Stream {
    /// Reads the next DATA frame into `parser`, giving its bytes back to
    /// the flow-control windows; `Ok(false)` once the stream ended.
    /// Cancel-safe.
    pub(super) async fn read_into(
        &mut self,
        parser: &mut herald_sse::Parser,
    ) -> anyhow::Result<bool> {
        match self.body.data().await {
            None => Ok(false),
            Some(Err(e)) => Err(e.into()),
            Some(Ok(data)) => {
                // Only fails once the stream is gone, which the next read
                // reports.
                let _ = self.body.flow_control().release_capacity(data.len());
                parser.feed(&data);
                Ok(true)
            }
        }
    }
}
