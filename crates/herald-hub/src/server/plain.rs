//! HTTP/1.1 connections, plain or over TLS, with subscriptions served
//! without hyper.
//!
//! hyper keeps a 16 KiB read buffer and an 8 KiB header buffer alive for as
//! long as an HTTP/1 connection is open: ~22 KiB of memory per idle
//! subscriber (bench/RESULTS.md). An event stream reads nothing after its
//! request and writes a few small frames, so for subscriptions this module
//! speaks HTTP/1.1 itself ([`super::http1`]): it reads the request head into
//! a buffer that is dropped once parsed, runs the request through the same
//! router as every other request, and writes the response's frames as
//! chunks, allocating a write buffer only while there is something to
//! write.
//!
//! A publish (a `POST` of the same path with a `Content-Length` body
//! within the hub's limit) is served here too ([`super::publish`]), so a
//! publisher's keep-alive connection stays off hyper. When the server
//! serves the hub's own router, the hub's publish endpoint answers it
//! without the router, from the bytes of the head and the body in one
//! buffer kept across the connection's requests.
//!
//! Everything else (other paths and methods, other request bodies,
//! upgrades, HTTP/1.0, HTTP/2 with prior knowledge, heads that do not parse
//! or are very long) goes to hyper with the bytes already read replayed
//! first ([`Rewind`]), so hyper answers exactly as if it had read the
//! connection from its start. A connection stays here across keep-alive
//! requests until one of them is neither a subscription nor a publish.
//!
//! The connection is a socket or a [`super::tls`] stream (one path, a
//! type parameter); neither holds a buffer while its stream idles.
//!
//! Memory is the point, so the shapes matter: a connection task is as
//! large as its largest state and a subscriber holds its task for as long
//! as it is connected. [`Connection`] is a hand-written future whose
//! streaming state is the socket, the body and two vectors; reading a
//! request and starting its response happen in a boxed future that is
//! freed before the stream starts.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, StatusCode};
use bytes::Bytes;
use http_body::Body as _;
use http_body_util::BodyExt as _;
use hyper::service::Service as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::watch;
use tokio::time::Sleep;

use super::http1::{
    field, parse, published, push_chunk, query, response_head, FieldAt, Parsed, PublishHead,
    RawHead,
};
use super::publish;
use super::rewind::Rewind;
use super::sockets::Counted;
use super::{serve_hyper, ConnectionError, Shared, HEAD_TIMEOUT};
use crate::fanout::StallFlag;
use crate::http::peer::PeerAddr;
use crate::http::PublishEndpoint;

/// The longest request head read here; a longer one (a subscription with
/// very many selectors) is left to hyper, whose limit is higher.
const MAX_HEAD: usize = 64 * 1024;

/// Most bytes a client may send while its event stream is open: only its
/// next, pipelined request head can be legitimate there.
const MAX_PIPELINED: usize = 16 * 1024;

/// Most bytes of ready frames gathered into one write.
const MAX_WRITE: usize = 64 * 1024;

/// What a connection runs over: a TCP socket, or TLS over one.
pub(super) trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// One HTTP/1.1 connection, served until it closes; a connection that
/// ends with an error is logged (at debug level: clients hang up).
pub(super) struct Connection<S> {
    peer: SocketAddr,
    /// Counted among the open connections for as long as this lives.
    shared: Counted,
    shutdown: watch::Receiver<bool>,
    state: State<S>,
}

enum State<S> {
    /// Reading requests and answering the ones that are not streams, or
    /// serving the connection with hyper. Owns the socket meanwhile.
    Requests(Pin<Box<dyn Future<Output = Step<S>> + Send>>),
    /// Writing an event stream.
    Streaming(Streaming<S>),
    Done,
}

/// What [`requests`] ended with.
enum Step<S> {
    /// The connection is over.
    Done(Result<(), ConnectionError>),
    /// A stream's head is written; its body goes next.
    Stream(Streaming<S>),
}

impl<S: Io> Connection<S> {
    pub(super) fn new(
        tcp: S,
        peer: SocketAddr,
        shared: Counted,
        shutdown: watch::Receiver<bool>,
    ) -> Connection<S> {
        let requests = requests(tcp, peer, Vec::new(), Arc::clone(&shared), shutdown.clone());
        Connection {
            peer,
            shared,
            shutdown,
            state: State::Requests(Box::pin(requests)),
        }
    }
}

impl<S: Io> Future for Connection<S> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let result = loop {
            match std::mem::replace(&mut this.state, State::Done) {
                State::Requests(mut requests) => match requests.as_mut().poll(cx) {
                    Poll::Pending => {
                        this.state = State::Requests(requests);
                        return Poll::Pending;
                    }
                    Poll::Ready(Step::Done(result)) => break result,
                    Poll::Ready(Step::Stream(streaming)) => {
                        this.state = State::Streaming(streaming);
                    }
                },
                State::Streaming(mut streaming) => {
                    match streaming.poll_stream(cx, this.shared.write_stall_limit) {
                        Poll::Pending => {
                            this.state = State::Streaming(streaming);
                            return Poll::Pending;
                        }
                        Poll::Ready(Ok(true)) if streaming.keep_alive => {
                            let requests = requests(
                                streaming.tcp,
                                this.peer,
                                streaming.carried,
                                Arc::clone(&this.shared),
                                this.shutdown.clone(),
                            );
                            this.state = State::Requests(Box::pin(requests));
                        }
                        Poll::Ready(Ok(_)) => break Ok(()),
                        Poll::Ready(Err(e)) => break Err(e.into()),
                    }
                }
                State::Done => return Poll::Ready(()),
            }
        };
        if let Err(e) = result {
            tracing::debug!(peer = %this.peer, error = %e, "connection ended with an error");
        }
        Poll::Ready(())
    }
}

/// Serves requests until one starts an event stream or the connection is
/// over (closed, timed out, the server stopping, or handed to hyper).
/// `carried` holds bytes already read past the previous request; `peer` is
/// the client's address, which every request carries.
async fn requests<S: Io>(
    mut tcp: S,
    peer: SocketAddr,
    mut carried: Vec<u8>,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> Step<S> {
    // One deadline for all the heads of the connection, pushed back before
    // each: moving a timer later does not touch tokio's timer wheel, where
    // a timeout per request (a publisher's connection carries thousands)
    // is registered and removed each time.
    let idle = tokio::time::sleep(HEAD_TIMEOUT);
    tokio::pin!(idle);
    // Where the fields of the head being read are, and the answer to a
    // publish: kept across requests, like the read buffer.
    let mut fields = Vec::new();
    let mut answer = Vec::new();
    loop {
        if *shutdown.borrow() {
            return Step::Done(Ok(()));
        }
        idle.as_mut()
            .reset(tokio::time::Instant::now() + HEAD_TIMEOUT);
        let head = tokio::select! {
            head = read_head(&mut tcp, carried, &shared, &mut fields) => head,
            // No request in time: close, as hyper does.
            () = &mut idle => return Step::Done(Ok(())),
            // Between requests a connection closes as soon as the server stops.
            _ = shutdown.changed() => return Step::Done(Ok(())),
        };
        let (request, keep_alive, rest) = match head {
            Err(e) => return Step::Done(Err(e.into())),
            Ok(Head::Closed) => return Step::Done(Ok(())),
            Ok(Head::ForHyper(read)) => {
                let io = Rewind::new(read, tcp);
                return Step::Done(serve_hyper(&shared, io, peer, shutdown).await);
            }
            Ok(Head::Subscription {
                request,
                keep_alive,
                rest,
            }) => (request, keep_alive, rest),
            Ok(Head::Publish { mut buf, head }) => {
                let end = head.body().end;
                match publish::read_body(&mut tcp, &mut buf, end).await {
                    Err(e) => return Step::Done(Err(e.into())),
                    Ok(false) => return Step::Done(Ok(())),
                    Ok(true) => {}
                }
                let raw = RawHead {
                    buf: &buf,
                    fields: &fields,
                };
                if let Some(endpoint) = shared.publish_endpoint.as_ref().filter(|e| e.answers(&raw))
                {
                    let answered =
                        answer_publish(&mut tcp, &shared, endpoint, &raw, &head, &mut answer);
                    if let Err(e) = answered.await {
                        return Step::Done(Err(e));
                    }
                    if !head.keep_alive {
                        return Step::Done(Ok(()));
                    }
                    carried = publish::rest(buf, end);
                    continue;
                }
                match publish_request(&raw, &head) {
                    Some(request) => (request, head.keep_alive, publish::rest(buf, end)),
                    None => {
                        let io = Rewind::new(buf.into(), tcp);
                        return Step::Done(serve_hyper(&shared, io, peer, shutdown).await);
                    }
                }
            }
        };
        carried = rest;
        let mut request = *request;
        let stall = StallFlag::default();
        request.extensions_mut().insert(stall.clone());
        request.extensions_mut().insert(PeerAddr(peer));
        if let Some(short) = shared.sockets.short() {
            request.extensions_mut().insert(short);
        }
        let response = match shared.service.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let started = start_response(&mut tcp, response, keep_alive);
        match within_stall_limit(&shared, started).await {
            Err(e) => return Step::Done(Err(e)),
            Ok(Some(body)) => {
                return Step::Stream(Streaming {
                    tcp,
                    carried,
                    body,
                    out: Vec::new(),
                    written: 0,
                    ended: false,
                    keep_alive,
                    stalled: None,
                    stall,
                })
            }
            Ok(None) if keep_alive => {}
            Ok(None) => return Step::Done(Ok(())),
        }
    }
}

/// Has the hub's publish endpoint answer a publish read whole in
/// `raw.buf`, and writes its answer (built in `answer`).
async fn answer_publish<S: Io>(
    tcp: &mut S,
    shared: &Shared,
    endpoint: &PublishEndpoint,
    raw: &RawHead<'_>,
    head: &PublishHead,
    answer: &mut Vec<u8>,
) -> Result<(), ConnectionError> {
    // httparse's target is a `str` already.
    let target = std::str::from_utf8(&raw.buf[head.target.clone()]).unwrap_or("");
    let body = &raw.buf[head.body()];
    match endpoint.publish(query(target), raw, body).await {
        Ok(id) => {
            answer.clear();
            let vary = endpoint.varies_by_origin();
            published(answer, &id, vary, head.keep_alive);
            within_stall_limit(shared, write_whole(tcp, answer)).await
        }
        Err(refusal) => {
            let started = start_response(tcp, refusal, head.keep_alive);
            // A refusal's body is a message, always whole.
            let whole = async {
                match started.await? {
                    None => Ok(()),
                    Some(_) => Err(io::Error::other("a refusal is not whole")),
                }
            };
            // Boxed: a refusal's answer is the largest state here, and
            // would size every connection's request loop otherwise (all
            // are allocated at that size while they read their head).
            Box::pin(within_stall_limit(shared, whole)).await
        }
    }
}

/// A publish for the router: the request, its body the one read.
fn publish_request(
    raw: &RawHead<'_>,
    head: &PublishHead,
) -> Option<Box<axum::http::Request<Body>>> {
    let mut request = raw.request(Method::POST, head.target.clone())?;
    let body = &raw.buf[head.body()];
    *request.body_mut() = Body::from(Bytes::copy_from_slice(body));
    Some(Box::new(request))
}

/// Runs a write of an answer. A client that pipelines requests and never
/// reads the answers fills the socket: let it go after the stall limit, as
/// hyper's connections do (the timer is only armed if the write waits).
async fn within_stall_limit<T>(
    shared: &Shared,
    write: impl Future<Output = io::Result<T>>,
) -> Result<T, ConnectionError> {
    match tokio::time::timeout(shared.write_stall_limit, write).await {
        Ok(written) => Ok(written?),
        Err(_) => Err("the client stopped reading its answers".into()),
    }
}

/// Writes `bytes` and flushes them (over TLS, that is when they are sent).
async fn write_whole<S: Io>(tcp: &mut S, bytes: &[u8]) -> io::Result<()> {
    tcp.write_all(bytes).await?;
    tcp.flush().await
}

/// Writes a response's head, and its body when that is whole; returns the
/// body when it is a stream to write chunk by chunk.
async fn start_response<S: Io>(
    tcp: &mut S,
    response: axum::response::Response,
    keep_alive: bool,
) -> io::Result<Option<Body>> {
    let (parts, body) = response.into_parts();
    let mut out = response_head(&parts, keep_alive);
    let bodiless = parts.status.is_informational()
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED;
    if bodiless {
        out.extend_from_slice(b"\r\n");
        tcp.write_all(&out).await?;
        tcp.flush().await?;
        return Ok(None);
    }
    if body.size_hint().exact().is_some() {
        // A whole answer (a rejection): send it with its length.
        let bytes = body.collect().await.map_err(io::Error::other)?.to_bytes();
        field(
            &mut out,
            "content-length",
            bytes.len().to_string().as_bytes(),
        );
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&bytes);
        tcp.write_all(&out).await?;
        tcp.flush().await?;
        return Ok(None);
    }
    field(&mut out, "transfer-encoding", b"chunked");
    out.extend_from_slice(b"\r\n");
    tcp.write_all(&out).await?;
    tcp.flush().await?;
    Ok(Some(body))
}

/// What a connection's next request head turned out to be.
enum Head {
    /// The client closed the connection before sending one.
    Closed,
    /// Anything this module does not serve: the bytes read so far.
    ForHyper(Bytes),
    /// A subscription to serve here.
    Subscription {
        request: Box<axum::http::Request<Body>>,
        keep_alive: bool,
        /// Bytes read past the head.
        rest: Vec<u8>,
    },
    /// A publish to serve here ([`publish`]), once its body is read:
    /// `buf` starts with its head, its fields are in the connection's
    /// list.
    Publish { buf: Vec<u8>, head: PublishHead },
}

/// Reads until `buf` holds a complete request head, or until it is clear
/// that hyper should have the connection.
async fn read_head<S: Io>(
    tcp: &mut S,
    mut buf: Vec<u8>,
    shared: &Shared,
    fields: &mut Vec<FieldAt>,
) -> io::Result<Head> {
    // How much of `buf` was there at the last parse: a head sent a byte at
    // a time must not be parsed again from the start for every byte.
    let mut parsed_len = None;
    loop {
        if !buf.is_empty() && may_complete(&buf, parsed_len) {
            parsed_len = Some(buf.len());
            match parse(&buf, &shared.stream_path, fields) {
                Parsed::Partial => {}
                Parsed::ForHyper => return Ok(Head::ForHyper(buf.into())),
                Parsed::Subscription {
                    request,
                    keep_alive,
                    head_len,
                } => {
                    let rest = buf.split_off(head_len);
                    return Ok(Head::Subscription {
                        request,
                        keep_alive,
                        rest,
                    });
                }
                Parsed::Publish(head) => {
                    if !publish::served_here(head.body_len, shared.publish_body_limit) {
                        return Ok(Head::ForHyper(buf.into()));
                    }
                    return Ok(Head::Publish { buf, head });
                }
            }
        }
        if buf.len() >= MAX_HEAD {
            return Ok(Head::ForHyper(buf.into()));
        }
        if buf.capacity() - buf.len() < 1024 {
            buf.reserve(buf.len().max(2048));
        }
        if tcp.read_buf(&mut buf).await? == 0 {
            return Ok(Head::Closed);
        }
    }
}

/// Whether `buf` is worth parsing: on the first look (to hand anything
/// that is not HTTP/1 to hyper early), then only once the bytes read since
/// the last parse (with the three before them) hold a blank line.
fn may_complete(buf: &[u8], parsed_len: Option<usize>) -> bool {
    let Some(parsed_len) = parsed_len else {
        return true;
    };
    let fresh = &buf[parsed_len.saturating_sub(3)..];
    fresh.windows(2).any(|w| w == b"\n\n") || fresh.windows(3).any(|w| w == b"\n\r\n")
}

/// An event stream being written: the state a subscriber holds while it
/// is connected.
struct Streaming<S> {
    tcp: S,
    /// Bytes the client sent past its request (a pipelined next request).
    carried: Vec<u8>,
    body: Body,
    /// Chunks not yet written, from `written` on; empty (unallocated)
    /// while the stream idles.
    out: Vec<u8>,
    written: usize,
    /// The last chunk is in `out`.
    ended: bool,
    keep_alive: bool,
    /// Since a write found the socket full: the deadline for progress.
    stalled: Option<Pin<Box<Sleep>>>,
    /// Raised when the stall limit closes the connection, before the body
    /// (the subscription) is dropped, so that it counts itself as slow.
    stall: StallFlag,
}

impl<S: Io> Streaming<S> {
    /// Writes the body as chunks, each write carrying every frame that is
    /// ready, until it ends (`Ok(true)`) or the client hangs up
    /// (`Ok(false)`).
    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
        stall_limit: Duration,
    ) -> Poll<io::Result<bool>> {
        loop {
            while self.written < self.out.len() {
                let written = Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.written..]);
                let n = ready!(self.watch_stall(cx, written, stall_limit))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.written += n;
                self.stalled = None;
            }
            // Over TLS, written is encrypted, and it is sent here.
            let flushed = Pin::new(&mut self.tcp).poll_flush(cx);
            ready!(self.watch_stall(cx, flushed, stall_limit))?;
            self.stalled = None;
            // Written: keep the buffer for the rest of a burst.
            self.out.clear();
            self.written = 0;
            if self.ended {
                return Poll::Ready(Ok(true));
            }
            while self.out.len() < MAX_WRITE && !self.ended {
                match Pin::new(&mut self.body).poll_frame(cx) {
                    Poll::Ready(frame) => self.ended = push_chunk(&mut self.out, frame)?,
                    Poll::Pending => break,
                }
            }
            if !self.out.is_empty() {
                continue;
            }
            // Nothing to write: free the buffer (an idle stream holds
            // none) and watch the connection for the client hanging up.
            self.out = Vec::new();
            if ready!(self.poll_read_while_streaming(cx))? {
                return Poll::Ready(Ok(false));
            }
        }
    }

    /// Passes on a write's outcome; a write pending for the stall limit
    /// fails the connection, after raising the stall flag.
    fn watch_stall<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        stall_limit: Duration,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            return polled;
        }
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall_limit)));
        ready!(stalled.as_mut().poll(cx));
        self.stall.raise();
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client stopped reading its event stream",
        )))
    }

    /// Reads whatever the client sent into `carried`, until the
    /// connection has nothing more; `Ok(true)` when the client closed it.
    /// Waiting allocates nothing: the bytes pass through the stack.
    fn poll_read_while_streaming(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<bool>> {
        let mut scratch = [0; 512];
        loop {
            let mut read = ReadBuf::new(&mut scratch);
            ready!(Pin::new(&mut self.tcp).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(true));
            }
            if self.carried.len() + read.filled().len() > MAX_PIPELINED {
                return Poll::Ready(Err(io::Error::other(
                    "the client sent too much while its event stream was open",
                )));
            }
            self.carried.extend_from_slice(read.filled());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::may_complete;

    #[test]
    fn a_head_is_parsed_again_only_when_new_bytes_can_end_it() {
        assert!(may_complete(b"GET / HT", None), "the first look parses");
        assert!(!may_complete(b"GET / HTTP/1.1\r\nHost: x\r\n", Some(8)));
        assert!(may_complete(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", Some(24)));
        // The blank line split across reads: "\r\n" before, "\r\n" now.
        assert!(may_complete(b"GET / HTTP/1.1\r\n\r\n", Some(16)));
        assert!(may_complete(b"GET / HTTP/1.1\n\n", Some(15)));
    }
}
