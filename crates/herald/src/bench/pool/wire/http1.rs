//! A subscription over HTTP/1.1, on plain TCP or TLS alike: one GET per
//! connection, its answer's head checked, then its body (chunked, sized or
//! until close) decoded into the subscriber's `herald_sse::Parser`. Generic
//! over the stream, so HTTPS is this same code over a `TlsStream`.

use anyhow::bail;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::check_subscription;
use crate::bench::http::{self, Chunked, Framing, Url};

/// Bytes read from a connection at a time.
const READ_BUF: usize = 4096;

/// An open event stream's body, to be read to its end.
pub(in crate::bench::pool) struct Body<S> {
    stream: S,
    decoder: Decoder,
    /// Body bytes read with the head, fed before the next read.
    rest: Vec<u8>,
    buf: Box<[u8]>,
}

/// How the body's framing is undone.
struct Decoder {
    framing: Framing,
    chunked: Chunked,
    /// Bytes left of a body with a `Content-Length`.
    left: Option<u64>,
}

impl Decoder {
    /// Feeds `input` to `parser`; `Ok(false)` once the body ended.
    fn feed(&mut self, input: &[u8], parser: &mut herald_sse::Parser) -> anyhow::Result<bool> {
        match self.framing {
            Framing::Chunked => {
                self.chunked.decode(input, |piece| parser.feed(piece))?;
            }
            _ => {
                let take = self
                    .left
                    .map_or(input.len(), |l| (l as usize).min(input.len()));
                parser.feed(&input[..take]);
                if let Some(l) = self.left.as_mut() {
                    *l -= take as u64;
                }
            }
        }
        Ok(!(self.chunked.is_done() || self.left == Some(0)))
    }
}

/// Sends the GET for `url` (with `Last-Event-ID` when resuming) on
/// `stream` and reads the answer's head; the body follows.
pub(in crate::bench::pool) async fn subscribe<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    url: &Url,
    last_id: Option<&str>,
) -> anyhow::Result<Body<S>> {
    let mut request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
        url.target, url.host
    );
    if let Some(id) = last_id {
        request.push_str("Last-Event-ID: ");
        request.push_str(id);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    // TLS buffers what it encrypts until flushed; plain TCP ignores this.
    stream.flush().await?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("the server closed the connection before answering");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = http::parse_head(&buf)? {
            check_subscription(head.status, head.content_type.as_deref())?;
            let rest = buf.split_off(head.len);
            return Ok(Body {
                stream,
                decoder: Decoder {
                    framing: head.framing,
                    chunked: Chunked::default(),
                    left: match head.framing {
                        Framing::Length(n) => Some(n),
                        _ => None,
                    },
                },
                rest,
                buf: vec![0u8; READ_BUF].into_boxed_slice(),
            });
        }
    }
}

impl<S: AsyncRead + Unpin> Body<S> {
    /// Reads what comes next into `parser`; `Ok(false)` once the body
    /// ended. Cancel-safe: nothing is taken from the connection unless it
    /// is fed.
    pub(in crate::bench::pool) async fn read_into(
        &mut self,
        parser: &mut herald_sse::Parser,
    ) -> anyhow::Result<bool> {
        if !self.rest.is_empty() {
            let rest = std::mem::take(&mut self.rest);
            return self.decoder.feed(&rest, parser);
        }
        let n = self.stream.read(&mut self.buf).await?;
        if n == 0 {
            bail!("the server closed the stream");
        }
        self.decoder.feed(&self.buf[..n], parser)
    }
}
