//! Publishes on plain HTTP/1.1 connections, served without hyper: the
//! socket end of the publish path (POST → endpoint → history → fan-out).
//!
//! A publisher sends many small form POSTs on one keep-alive connection.
//! Handing each of them to hyper costs its per-connection buffers and its
//! body channel, and a publish on a connection [`super::plain`] was
//! reading would move the whole connection to hyper for good. So a `POST`
//! of the stream path whose body has a `Content-Length` within the hub's
//! body limit is read here ([`read_body`]), into the buffer that holds its
//! head. When the server serves the hub's own router, the hub's publish
//! endpoint (`http::PublishEndpoint`) answers it from that buffer, with
//! the router's checks and answers but none of its structures; otherwise
//! (an application's router) it goes through the router. Either way the
//! connection stays on the lean path for its next request, and the buffer
//! with it ([`rest`]).
//!
//! Everything else about a publish stays with hyper, with the same
//! answers as before: chunked bodies, `Expect: 100-continue`, a missing or
//! repeated `Content-Length`, and bodies longer than the limit (which the
//! handler answers with 413, after reading what it may).

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt as _};

/// Most room made for a body beyond the bytes that arrived.
const READ_AHEAD: usize = 64 * 1024;

/// Most capacity a connection's buffer keeps between requests: a long
/// body's room is given back.
const KEPT: usize = 8 * 1024;

/// Whether a publish whose body is `body_len` bytes is served here, with
/// the hub's body limit `limit`: a longer one goes to hyper, whose answer
/// (413, after draining up to `http::form::DRAIN_BEYOND_LIMIT`) is the
/// handler's as ever.
pub(super) fn served_here(body_len: u64, limit: usize) -> bool {
    body_len <= limit as u64
}

/// Reads until `buf` holds at least `end` bytes (the head, then the whole
/// body); `false` when the client closed the connection first.
pub(super) async fn read_body<R>(io: &mut R, buf: &mut Vec<u8>, end: usize) -> io::Result<bool>
where
    R: AsyncRead + Unpin,
{
    while buf.len() < end {
        // Room for the rest of the body, but no more than a read's worth
        // ahead of what arrived: a declared length is only a promise.
        buf.reserve((end - buf.len()).min(READ_AHEAD));
        if io.read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The connection's buffer once the request in its first `end` bytes is
/// answered: the bytes after it (a pipelined next request) at its start.
pub(super) fn rest(mut buf: Vec<u8>, end: usize) -> Vec<u8> {
    buf.drain(..end);
    if buf.capacity() > KEPT {
        buf.shrink_to(KEPT.max(buf.len()));
    }
    buf
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
        let mut buf = b"HEADda".to_vec();
        assert!(read_body(&mut server, &mut buf, 14).await.unwrap());
        assert_eq!(&buf[4..14], b"data=b&c=d");
        // What was read past the body is kept for the next request; the
        // rest of it is still in the pipe.
        let rest = rest(buf, 14);
        assert!(b"NEXT".starts_with(&rest));
        drop(writer.await.unwrap());
    }

    #[tokio::test]
    async fn a_body_already_read_with_the_head_needs_no_read() {
        let (_client, mut server) = tokio::io::duplex(4);
        let mut buf = b"HEADa=bGET /".to_vec();
        assert!(read_body(&mut server, &mut buf, 7).await.unwrap());
        assert_eq!(rest(buf, 7), b"GET /");
        let mut buf = b"HEAD".to_vec();
        assert!(read_body(&mut server, &mut buf, 4).await.unwrap());
        assert!(rest(buf, 4).is_empty());
    }

    #[tokio::test]
    async fn a_client_that_hangs_up_mid_body_ends_the_connection() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        let mut buf = b"HEADa=".to_vec();
        assert!(!read_body(&mut server, &mut buf, 14).await.unwrap());
    }

    #[test]
    fn the_buffer_is_kept_but_a_long_body_s_room_is_given_back() {
        let mut buf = Vec::with_capacity(4096);
        buf.extend_from_slice(b"HEADBODY");
        let kept = rest(buf, 8);
        assert!(kept.is_empty());
        assert_eq!(kept.capacity(), 4096, "the buffer is reused");
        let long = vec![b'x'; 100 * 1024];
        let kept = rest(long, 100 * 1024 - 3);
        assert_eq!(kept, b"xxx");
        assert!(kept.capacity() <= KEPT, "{}", kept.capacity());
    }

    #[test]
    fn a_body_past_the_limit_is_left_to_hyper() {
        assert!(served_here(1024, 1024));
        assert!(!served_here(1025, 1024));
    }
}
