//! The write stall limit on connections that hyper serves (HTTPS, HTTP/2,
//! and the plain-HTTP requests [`super::plain`] hands over).
//!
//! A client that stops reading leaves the server's writes pending for as
//! long as it keeps the connection open: its subscriptions are closed by
//! fan-out once their queues fill, but the connection and whatever was
//! already queued for it would stay. [`StallGuard`] fails the connection's
//! writes once none has made progress for the limit, so hyper closes it,
//! and raises the connection's [`StallFlag`] first so that the
//! subscriptions it carried count themselves as slow. The server's own
//! HTTP/1.1 path does the same in its stream writer.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{Request, Version};
use hyper::service::Service;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Sleep;

use super::sockets::Sockets;
use crate::fanout::StallFlag;
use crate::http::peer::PeerAddr;

/// `inner`, whose writes fail once they have made no progress for `limit`.
pub(super) struct StallGuard<I> {
    inner: I,
    limit: Duration,
    flag: StallFlag,
    /// Since a write found the connection full: the deadline for progress.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl<I> StallGuard<I> {
    pub(super) fn new(inner: I, limit: Duration, flag: StallFlag) -> StallGuard<I> {
        StallGuard {
            inner,
            limit,
            flag,
            stalled: None,
        }
    }

    /// Passes on a write's outcome, timing how long writes stay pending.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
        progressed: impl FnOnce(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match polled {
            Poll::Ready(Ok(done)) => {
                if progressed(&done) {
                    self.stalled = None;
                }
                Poll::Ready(Ok(done))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let limit = self.limit;
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if stalled.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.flag.raise();
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client stopped reading",
                )))
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for StallGuard<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for StallGuard<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, polled, |n| *n > 0)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, polled, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, polled, |()| true)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Closing is bounded by the shutdown grace period, not by this.
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// A connection's service: the server's, with the connection's
/// [`StallFlag`] on every request for the subscriptions to pick up, and
/// its peer's address ([`PeerAddr`]) for the limit of streams per client.
#[derive(Clone)]
pub(super) struct Flagged<S> {
    pub(super) inner: S,
    pub(super) flag: StallFlag,
    pub(super) peer: SocketAddr,
    /// For marking HTTP/1.x requests that come once the open connections
    /// are past the budget for HTTP/1.1 streams.
    pub(super) sockets: Arc<Sockets>,
}

impl<S, B> Service<Request<B>> for Flagged<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    /// Boxed: hyper keeps a request's service future inline in what it
    /// holds for the request's whole life. Over HTTP/2 that is the task it
    /// spawns per stream (`H2Stream`, an enum of the service future and
    /// the response body's pipe): the router's future (~320 bytes, the
    /// request inside it) sized every idle event stream's task, although
    /// it is done once the response head is out. Boxed, it is freed then,
    /// and the task shrinks from 512 to 256 bytes (bench/RESULTS.md, "Idle
    /// HTTP/2 streams"). HTTP/1.1 under hyper already boxes it; there
    /// the box inside hyper's shrinks to a pointer too.
    type Future = Pin<Box<S::Future>>;

    fn call(&self, mut request: Request<B>) -> Self::Future {
        let extensions = request.extensions_mut();
        extensions.insert(self.flag.clone());
        extensions.insert(PeerAddr(self.peer));
        if request.version() < Version::HTTP_2 {
            if let Some(short) = self.sockets.short() {
                request.extensions_mut().insert(short);
            }
        }
        Box::pin(self.inner.call(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn writes_fail_and_the_flag_rises_once_the_peer_stops_reading() {
        let (near, mut far) = tokio::io::duplex(1024);
        let flag = StallFlag::default();
        let mut guarded = StallGuard::new(near, Duration::from_secs(5), flag.clone());
        // Progress: the peer reads as fast as it is written to.
        let reader = tokio::spawn(async move {
            let mut buf = vec![0; 4096];
            let mut total = 0;
            while total < 64 * 1024 {
                total += far.read(&mut buf).await.unwrap();
            }
            far
        });
        for _ in 0..64 {
            guarded.write_all(&[0; 1024]).await.unwrap();
        }
        let far = reader.await.unwrap();
        assert!(!flag.is_raised());

        // The peer stops reading: the pipe fills, and the write fails only
        // once the limit has passed with no progress.
        let started = tokio::time::Instant::now();
        let err = guarded.write_all(&[0; 4096]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_secs(5));
        assert!(flag.is_raised());
        drop(far);
    }
}
