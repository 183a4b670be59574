//! Publishes on plain HTTP/1.1 connections, served without hyper: the
//! socket end of the publish path (POST → router → history → fan-out).
//!
//! A publisher sends many small form POSTs on one keep-alive connection.
//! Handing each of them to hyper costs its per-connection buffers and its
//! body channel, and a publish on a connection [`super::plain`] was
//! reading would move the whole connection to hyper for good. So a `POST`
//! of the stream path whose body has a `Content-Length` within the hub's
//! body limit is read here ([`read_body`]): the body becomes one `Bytes`,
//! the request goes through the same router as every other request, and
//! the answer is written as `plain` writes any whole response. The
//! connection stays on the lean path for its next request.
//!
//! Everything else about a publish stays with hyper, with the same
//! answers as before: chunked bodies, `Expect: 100-continue`, a missing or
//! repeated `Content-Length`, and bodies longer than the limit (which the
//! handler answers with 413, after reading what it may).

use std::io;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Most room made for a body beyond the bytes that arrived.
const READ_AHEAD: usize = 64 * 1024;

/// Whether a publish whose body is `body_len` bytes is served here, with
/// the hub's body limit `limit`: a longer one goes to hyper, whose answer
/// (413, after draining up to `http::form::DRAIN_BEYOND_LIMIT`) is the
/// handler's as ever.
pub(super) fn served_here(body_len: u64, limit: usize) -> bool {
    body_len <= limit as u64
}

/// Reads a body of `len` bytes, `read` holding what came after the head
/// already. Returns the body and the bytes read past it (the start of a
/// pipelined next request), or `None` when the client closed the
/// connection before the body was whole.
pub(super) async fn read_body<R>(
    io: &mut R,
    mut read: Vec<u8>,
    len: usize,
) -> io::Result<Option<(Bytes, Vec<u8>)>>
where
    R: AsyncRead + Unpin,
{
    while read.len() < len {
        // Room for the rest of the body, but no more than a read's worth
        // ahead of what arrived: a declared length is only a promise.
        read.reserve((len - read.len()).min(READ_AHEAD));
        if io.read_buf(&mut read).await? == 0 {
            return Ok(None);
        }
    }
    // Usually nothing follows the body, and `split_off` then allocates
    // nothing.
    let rest = read.split_off(len);
    Ok(Some((Bytes::from(read), rest)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_body_split_across_reads_is_read_whole() {
        let (mut client, mut server) = tokio::io::duplex(4);
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt as _;
            client.write_all(b"ta=b&c=dNEXT").await.unwrap();
            client
        });
        let (body, rest) = read_body(&mut server, b"da".to_vec(), 10)
            .await
            .unwrap()
            .expect("a whole body");
        assert_eq!(&body[..], b"data=b&c=d");
        // What was read past the body is kept for the next request; the
        // rest of it is still in the pipe.
        assert!(b"NEXT".starts_with(&rest));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn a_body_already_read_with_the_head_needs_no_read() {
        let (_client, mut server) = tokio::io::duplex(4);
        let (body, rest) = read_body(&mut server, b"a=bGET /".to_vec(), 3)
            .await
            .unwrap()
            .expect("a whole body");
        assert_eq!(&body[..], b"a=b");
        assert_eq!(rest, b"GET /");
        let (body, rest) = read_body(&mut server, Vec::new(), 0)
            .await
            .unwrap()
            .expect("an empty body");
        assert!(body.is_empty() && rest.is_empty());
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_mid_body_ends_the_connection() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let read = read_body(&mut server, b"a=".to_vec(), 10).await.unwrap();
        assert!(read.is_none());
    }

    #[test]
    fn a_body_past_the_limit_is_left_to_hyper() {
        assert!(served_here(1024, 1024));
        assert!(!served_here(1025, 1024));
    }
}
