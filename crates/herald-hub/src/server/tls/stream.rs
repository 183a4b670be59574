//! TLS over a socket, holding buffers only while bytes are in them.
//!
//! rustls's buffered connection (what tokio-rustls wraps) keeps a 4 KiB
//! buffer of incoming records for as long as a connection is open, and an
//! idle HTTPS subscriber is nothing but an open connection. [`TlsStream`]
//! drives rustls's unbuffered API instead and owns the three buffers
//! itself: records read from the socket, decrypted bytes not yet read, and
//! encrypted bytes not yet written. Each is freed once it is empty and the
//! stream waits for the socket, so an idle stream holds rustls's session
//! state (keys, the handshake's outcome) and no buffer.
//!
//! Writes are encrypted as they come and sent at once; what the socket
//! does not take waits in the outgoing buffer, and the next write waits
//! for it (backpressure, seen by the write stall limit above this layer).

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::server::UnbufferedServerConnection;
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncryptError, InsufficientSizeError, UnbufferedStatus,
};
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Most bytes of records read ahead: a handshake message may take up to
/// 64 KiB (rustls's own limit), an application record 16 KiB and change.
const MAX_INCOMING: usize = 64 * 1024 + 5 + 4096;

/// How much room a read of the socket asks for.
const READ_SIZE: usize = 4096;

/// Most plaintext taken by one write: four full records.
const MAX_WRITE: usize = 4 * 16 * 1024;

/// A server's TLS connection over TCP, after its handshake.
pub(crate) struct TlsStream {
    tcp: TcpStream,
    conn: UnbufferedServerConnection,
    /// Records read from the socket, not yet decrypted.
    incoming: Vec<u8>,
    /// Decrypted application data, from `plaintext_read` on.
    plaintext: Vec<u8>,
    plaintext_read: usize,
    /// Records to send, from `sent` on.
    outgoing: Vec<u8>,
    sent: usize,
    /// The client sent close_notify, or closed its side of the socket.
    read_closed: bool,
    /// close_notify is queued (or sent).
    write_closed: bool,
}

/// Where [`TlsStream::process`] left the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// The handshake needs more records from the client.
    NeedsRecords,
    /// Application data may be sent (and what was read is processed).
    Open,
    /// Both sides sent close_notify.
    Closed,
}

impl TlsStream {
    /// Completes a TLS handshake with the client on `tcp`. The caller
    /// bounds it in time.
    pub(crate) async fn accept(tcp: TcpStream, config: Arc<ServerConfig>) -> io::Result<TlsStream> {
        let conn = UnbufferedServerConnection::new(config).map_err(io::Error::other)?;
        let mut stream = TlsStream {
            tcp,
            conn,
            incoming: Vec::new(),
            plaintext: Vec::new(),
            plaintext_read: 0,
            outgoing: Vec::new(),
            sent: 0,
            read_closed: false,
            write_closed: false,
        };
        poll_fn(|cx| stream.poll_handshake(cx)).await?;
        Ok(stream)
    }

    /// The protocol the client and server agreed on with ALPN, if any.
    pub(crate) fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.alpn_protocol()
    }

    fn poll_handshake(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            ready!(self.poll_send(cx))?;
            match self.process(None)? {
                Status::Open if self.outgoing.is_empty() => return Poll::Ready(Ok(())),
                Status::Open => {}
                Status::NeedsRecords if !self.outgoing.is_empty() => {}
                Status::NeedsRecords => {
                    if ready!(self.poll_fill(cx))? == 0 {
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the client closed the connection during the TLS handshake",
                        )));
                    }
                }
                Status::Closed => {
                    return Poll::Ready(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the client closed the TLS session during its handshake",
                    )))
                }
            }
        }
    }

    /// Runs rustls over the records read so far until it needs more of
    /// them or application data may be sent: decrypted data goes to
    /// `plaintext`, handshake records and alerts to `outgoing`, and
    /// `to_send` (when given, once sending is allowed) is encrypted into
    /// `outgoing`.
    fn process(&mut self, mut to_send: Option<&[u8]>) -> io::Result<Status> {
        let result = self.process_records(&mut to_send);
        if result.is_err() {
            // rustls queues an alert saying why: let the client know, if
            // the socket takes it now.
            self.collect_alert();
            let _ = self.tcp.try_write(&self.outgoing[self.sent..]);
        }
        result
    }

    fn process_records(&mut self, to_send: &mut Option<&[u8]>) -> io::Result<Status> {
        loop {
            let UnbufferedStatus { mut discard, state } =
                self.conn.process_tls_records(&mut self.incoming);
            let status = match state.map_err(tls_error)? {
                ConnectionState::ReadTraffic(mut traffic) => {
                    while let Some(record) = traffic.next_record() {
                        let record = record.map_err(tls_error)?;
                        discard += record.discard;
                        self.plaintext.extend_from_slice(record.payload);
                    }
                    None
                }
                ConnectionState::EncodeTlsData(mut encode) => {
                    let start = self.outgoing.len();
                    let mut room = 1024;
                    loop {
                        self.outgoing.resize(start + room, 0);
                        match encode.encode(&mut self.outgoing[start..]) {
                            Ok(written) => {
                                self.outgoing.truncate(start + written);
                                break;
                            }
                            Err(EncodeError::InsufficientSize(InsufficientSizeError {
                                required_size,
                            })) => room = required_size,
                            Err(e) => {
                                self.outgoing.truncate(start);
                                return Err(io::Error::other(e.to_string()));
                            }
                        }
                    }
                    None
                }
                // What was encoded is in `outgoing`, which goes out in
                // order before anything queued after it.
                ConnectionState::TransmitTlsData(transmit) => {
                    transmit.done();
                    None
                }
                ConnectionState::BlockedHandshake => Some(Status::NeedsRecords),
                ConnectionState::WriteTraffic(mut traffic) => {
                    if let Some(data) = to_send.take() {
                        encrypt_into(&mut self.outgoing, data, |data, out| {
                            traffic.encrypt(data, out)
                        })?;
                    }
                    Some(Status::Open)
                }
                ConnectionState::PeerClosed => {
                    self.read_closed = true;
                    None
                }
                ConnectionState::Closed => Some(Status::Closed),
                // Early data is not enabled, so nothing else is expected.
                _ => return Err(io::Error::other("unexpected TLS connection state")),
            };
            self.incoming.drain(..discard);
            if let Some(status) = status {
                return Ok(status);
            }
        }
    }

    /// Moves whatever rustls queued after an error (its alert) into
    /// `outgoing`.
    fn collect_alert(&mut self) {
        for _ in 0..4 {
            let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
            let Ok(ConnectionState::EncodeTlsData(mut encode)) = state else {
                return;
            };
            let mut alert = [0; 64];
            if let Ok(written) = encode.encode(&mut alert) {
                self.outgoing.extend_from_slice(&alert[..written]);
            }
        }
    }

    /// Writes `outgoing` to the socket; ready once all of it is written.
    fn poll_send(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.outgoing.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.outgoing[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.outgoing.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Reads more records from the socket; `Ok(0)` at its end. An idle
    /// stream waits for the socket before it allocates a buffer.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        loop {
            if self.incoming.capacity() == 0 {
                // Waiting: let go of what the last write or read used.
                self.release_idle_buffers();
                ready!(self.tcp.poll_read_ready(cx))?;
            }
            if self.incoming.len() >= MAX_INCOMING {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a TLS record too large to buffer",
                )));
            }
            self.incoming
                .reserve(READ_SIZE.min(MAX_INCOMING - self.incoming.len()));
            match self.tcp.try_read_buf(&mut self.incoming) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.release_idle_buffers();
                    ready!(self.tcp.poll_read_ready(cx))?;
                }
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// Frees the buffers that hold nothing: called before waiting on the
    /// socket, so that a stream that waits holds no buffer.
    fn release_idle_buffers(&mut self) {
        if self.incoming.is_empty() {
            self.incoming = Vec::new();
        }
        if self.plaintext_read == self.plaintext.len() {
            self.plaintext = Vec::new();
            self.plaintext_read = 0;
        }
        if self.sent == self.outgoing.len() {
            self.outgoing = Vec::new();
            self.sent = 0;
        }
    }
}

/// Encrypts `data` at the end of `outgoing` with `encrypt`, growing it to
/// what the records need.
fn encrypt_into(
    outgoing: &mut Vec<u8>,
    data: &[u8],
    mut encrypt: impl FnMut(&[u8], &mut [u8]) -> Result<usize, EncryptError>,
) -> io::Result<()> {
    let start = outgoing.len();
    // A record's header, tag and content type, for each 16 KiB.
    let mut room = data.len() + (data.len() / 16384 + 1) * 64;
    loop {
        outgoing.resize(start + room, 0);
        match encrypt(data, &mut outgoing[start..]) {
            Ok(written) => {
                outgoing.truncate(start + written);
                return Ok(());
            }
            Err(EncryptError::InsufficientSize(InsufficientSizeError { required_size }))
                if required_size > room =>
            {
                room = required_size;
            }
            Err(e) => {
                outgoing.truncate(start);
                return Err(io::Error::other(e.to_string()));
            }
        }
    }
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.plaintext_read < this.plaintext.len() {
                let ready = &this.plaintext[this.plaintext_read..];
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.plaintext_read += n;
                if this.plaintext_read == this.plaintext.len() {
                    this.plaintext.clear();
                    this.plaintext_read = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if this.read_closed {
                return Poll::Ready(Ok(()));
            }
            if this.process(None)? == Status::Closed {
                this.read_closed = true;
            }
            // Records that reading produced (session tickets after the
            // handshake, a key update) go out now if the socket takes
            // them, else with the next write.
            if let Poll::Ready(Err(e)) = this.poll_send(cx) {
                return Poll::Ready(Err(e));
            }
            if !this.plaintext.is_empty() || this.read_closed {
                continue;
            }
            if ready!(this.poll_fill(cx))? == 0 {
                this.read_closed = true;
            }
        }
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        // Take nothing more while earlier records wait for the socket.
        ready!(this.poll_send(cx))?;
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if this.write_closed {
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let data = &buf[..buf.len().min(MAX_WRITE)];
        match this.process(Some(data))? {
            Status::Open => {}
            Status::NeedsRecords => {
                return Poll::Ready(Err(io::Error::other("the TLS handshake is not complete")))
            }
            Status::Closed => return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into())),
        }
        // Sent now if the socket takes it; a flush or the next write sends
        // the rest.
        if let Poll::Ready(Err(e)) = this.poll_send(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if !this.write_closed {
            this.write_closed = true;
            this.queue_close_notify();
        }
        ready!(this.poll_send(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

impl TlsStream {
    /// Queues a close_notify alert, telling the client no more data
    /// follows (so that it can tell a whole response from a cut one).
    fn queue_close_notify(&mut self) {
        let UnbufferedStatus { state, .. } = self.conn.process_tls_records(&mut []);
        if let Ok(ConnectionState::WriteTraffic(mut traffic)) = state {
            let _ = encrypt_into(&mut self.outgoing, &[], |_, out| {
                traffic.queue_close_notify(out)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use crate::server::TlsConfig;

    /// A server stream and a tokio-rustls client connected to it.
    async fn pair() -> (TlsStream, tokio_rustls::client::TlsStream<TcpStream>) {
        let tls = TlsConfig::self_signed(&["localhost".into()]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(tls.certificates()[0].clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut client_config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
        let client = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            connector.connect(name, tcp).await.unwrap()
        };
        let server = async {
            let (tcp, _) = listener.accept().await.unwrap();
            TlsStream::accept(tcp, tls.rustls_config().unwrap())
                .await
                .unwrap()
        };
        let (server, client) = tokio::join!(server, client);
        (server, client)
    }

    #[tokio::test]
    async fn bytes_cross_both_ways_and_alpn_is_known() {
        let (mut server, mut client) = pair().await;
        assert_eq!(server.alpn_protocol(), Some(&b"http/1.1"[..]));
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut got = [0; 18];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"GET / HTTP/1.1\r\n\r\n");

        // More than one write takes, and more than one record.
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let sent = big.clone();
        let writer = tokio::spawn(async move {
            server.write_all(&sent).await.unwrap();
            server.flush().await.unwrap();
            server
        });
        let mut received = vec![0; big.len()];
        client.read_exact(&mut received).await.unwrap();
        assert!(received == big, "the bytes arrive whole and in order");
        let _server = writer.await.unwrap();
    }

    #[tokio::test]
    async fn an_idle_stream_holds_no_buffer() {
        let (mut server, mut client) = pair().await;
        client.write_all(b"ping").await.unwrap();
        let mut got = [0; 4];
        server.read_exact(&mut got).await.unwrap();
        server.write_all(&[7; 10_000]).await.unwrap();
        server.flush().await.unwrap();
        let mut echoed = vec![0; 10_000];
        client.read_exact(&mut echoed).await.unwrap();

        // A read that finds nothing waits on the socket, buffer-less:
        // after a read, and again after a write alone (an idle subscriber
        // that was sent an event).
        for round in 0..2 {
            if round == 1 {
                server.write_all(&[8; 3_000]).await.unwrap();
                server.flush().await.unwrap();
                client.read_exact(&mut echoed[..3_000]).await.unwrap();
            }
            let mut one = [0; 1];
            let polled = poll_fn(|cx| {
                let mut buf = ReadBuf::new(&mut one);
                Poll::Ready(Pin::new(&mut server).poll_read(cx, &mut buf).is_pending())
            })
            .await;
            assert!(polled, "nothing to read yet");
            assert_eq!(server.incoming.capacity(), 0, "round {round}");
            assert_eq!(server.plaintext.capacity(), 0, "round {round}");
            assert_eq!(server.outgoing.capacity(), 0, "round {round}");
        }
    }

    #[tokio::test]
    async fn the_client_closing_is_the_end_of_the_stream() {
        let (mut server, mut client) = pair().await;
        client.write_all(b"last").await.unwrap();
        client.shutdown().await.unwrap();
        let mut all = Vec::new();
        server.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"last");
    }

    #[tokio::test]
    async fn shutting_down_sends_close_notify() {
        let (mut server, mut client) = pair().await;
        server.write_all(b"bye").await.unwrap();
        server.shutdown().await.unwrap();
        let mut all = Vec::new();
        // tokio-rustls reports a close without close_notify as an error.
        client.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"bye");
    }

    #[tokio::test]
    async fn a_client_that_is_not_speaking_tls_is_refused() {
        let tls = TlsConfig::self_signed(&["localhost".into()]).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut client = TcpStream::connect(addr).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let (tcp, _) = listener.accept().await.unwrap();
        let err = TlsStream::accept(tcp, tls.rustls_config().unwrap())
            .await
            .err()
            .expect("not TLS");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        // The client is told why: a TLS alert record (content type 21).
        let mut answer = Vec::new();
        client.read_to_end(&mut answer).await.unwrap();
        assert_eq!(answer.first(), Some(&21), "{answer:?}");
    }
}
