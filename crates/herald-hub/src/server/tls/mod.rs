//! TLS for the server: a certificate chain and key, from PEM files or made
//! at start for development, turned into a rustls configuration that offers
//! ALPN `h2` and `http/1.1` (browsers only speak HTTP/2 over TLS), and the
//! connections served with it ([`stream`]: TLS without idle buffers;
//! [`record_keys`]: record keys held as raw bytes, not expanded).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::sockets::Counted;
use super::{plain, HANDSHAKE_TIMEOUT};
use stream::TlsStream;

mod record_keys;
mod stream;

/// A TLS configuration could not be built.
#[derive(Debug)]
#[non_exhaustive]
pub enum TlsError {
    /// A PEM file could not be read.
    Read {
        /// The file.
        path: String,
        /// Why.
        error: std::io::Error,
    },
    /// The certificate PEM holds no usable certificate.
    Certificate(String),
    /// The key PEM holds no usable private key.
    Key(String),
    /// rustls refused the certificate and key together (e.g. they do not
    /// match, or the key type is unsupported).
    Rustls(rustls::Error),
    /// The self-signed certificate could not be generated.
    Generate(String),
}

impl std::fmt::Display for TlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TlsError::Read { path, error } => write!(f, "cannot read {path}: {error}"),
            TlsError::Certificate(m) => write!(f, "invalid TLS certificate: {m}"),
            TlsError::Key(m) => write!(f, "invalid TLS private key: {m}"),
            TlsError::Rustls(e) => write!(f, "unusable TLS certificate and key: {e}"),
            TlsError::Generate(m) => write!(f, "cannot generate a self-signed certificate: {m}"),
        }
    }
}

impl std::error::Error for TlsError {}

/// A certificate chain and its private key, for serving HTTPS.
///
/// ```
/// use herald_hub::server::TlsConfig;
///
/// let tls = TlsConfig::self_signed(&["localhost".into(), "127.0.0.1".into()])?;
/// assert_eq!(tls.fingerprint().len(), 32 * 3 - 1); // AA:BB:...
/// # Ok::<(), herald_hub::server::TlsError>(())
/// ```
pub struct TlsConfig {
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("TlsConfig")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl Clone for TlsConfig {
    fn clone(&self) -> Self {
        TlsConfig {
            certs: self.certs.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl TlsConfig {
    /// A chain and key from PEM text: the leaf certificate first, then any
    /// intermediates; the key as PKCS#8, PKCS#1 (RSA) or SEC1 (EC).
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<TlsConfig, TlsError> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        if certs.is_empty() {
            return Err(TlsError::Certificate(
                "no \"BEGIN CERTIFICATE\" block found".into(),
            ));
        }
        let key =
            PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| TlsError::Key(e.to_string()))?;
        let tls = TlsConfig { certs, key };
        // Fail now, at start, rather than on the first handshake.
        tls.rustls_config()?;
        Ok(tls)
    }

    /// A chain and key from PEM files.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<TlsConfig, TlsError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| TlsError::Read {
                path: path.display().to_string(),
                error,
            })
        };
        TlsConfig::from_pem(&read(cert)?, &read(key)?)
    }

    /// A fresh self-signed certificate (ECDSA P-256) for `names` (DNS names
    /// or IP addresses), for development only: browsers warn about it until
    /// told to trust it.
    pub fn self_signed(names: &[String]) -> Result<TlsConfig, TlsError> {
        let made = rcgen::generate_simple_self_signed(names.to_vec())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        let key = PrivateKeyDer::try_from(made.signing_key.serialize_der())
            .map_err(|e| TlsError::Generate(e.to_string()))?;
        Ok(TlsConfig {
            certs: vec![made.cert.der().clone()],
            key,
        })
    }

    /// The certificate chain, leaf first (e.g. for a test client to trust).
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The certificate chain as PEM, leaf first (e.g. to save a
    /// self-signed certificate for a client to trust).
    pub fn certificate_pem(&self) -> String {
        self.certs
            .iter()
            .map(|c| pem_block("CERTIFICATE", c.as_ref()))
            .collect()
    }

    /// The private key as PEM. Keep it secret.
    pub fn private_key_pem(&self) -> String {
        let label = match &self.key {
            PrivateKeyDer::Pkcs1(_) => "RSA PRIVATE KEY",
            PrivateKeyDer::Sec1(_) => "EC PRIVATE KEY",
            _ => "PRIVATE KEY",
        };
        pem_block(label, self.key.secret_der())
    }

    /// The SHA-256 fingerprint of the leaf certificate, as colon-separated
    /// upper-case hex (the form browsers show).
    pub fn fingerprint(&self) -> String {
        let der = self.certs.first().map_or(&[][..], |c| c.as_ref());
        let digest = ring::digest::digest(&ring::digest::SHA256, der);
        digest
            .as_ref()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    /// The rustls server configuration: ALPN `h2` then `http/1.1`.
    pub(crate) fn rustls_config(&self) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let provider = Arc::new(record_keys::provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(TlsError::Rustls)?
            .with_no_client_auth()
            .with_single_cert(self.certs.clone(), self.key.clone_key())
            .map_err(TlsError::Rustls)?;
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

/// One PEM block.
fn pem_block(label: &str, der: &[u8]) -> String {
    let b64 = base64_encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Standard base64 with padding (only for PEM output; no dependency needed).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// One HTTPS connection, served until it closes: the handshake (bounded
/// in time), then HTTP/2 with hyper when ALPN chose `h2`, else the same
/// HTTP/1.1 path as plain connections (lean subscriptions, hyper for the
/// rest). A connection that ends with an error is logged at debug level.
///
/// A hand-written future, because a task is as large as its largest
/// state and an HTTPS/1.1 subscriber holds its task for as long as it is
/// connected: the handshake and hyper's HTTP/2 connection are boxed, so
/// the task is the size of [`plain::Connection`] (rustls's connection
/// inline in it) and no more. As an `async fn` it held the handshake's
/// state too, and the stream a second time beside the connection it had
/// been moved into (a moved-from local keeps its slot in an `async fn`
/// across later awaits): a 3,072-B task per subscriber, now 1,536
/// (bench/RESULTS.md "Idle HTTPS").
pub(super) struct Connection {
    state: State,
}

// The HTTP/1.1 state is inline on purpose: it is what a subscriber's task
// holds for its whole life, and a box of it would round up to a larger
// allocator class than the task it leaves (bench/RESULTS.md "Idle HTTPS").
#[allow(clippy::large_enum_variant)]
enum State {
    Handshake(Handshake),
    Http1(plain::Connection<TlsStream>),
    Http2(Pin<Box<dyn Future<Output = ()> + Send>>),
    Done,
}

/// A handshake in progress, and what serving the connection needs after it.
struct Handshake {
    future: Pin<Box<dyn Future<Output = io::Result<TlsStream>> + Send>>,
    peer: SocketAddr,
    /// Counted among the open connections for as long as this lives.
    shared: Counted,
    stopping: watch::Receiver<bool>,
}

impl Connection {
    pub(super) fn new(
        tcp: TcpStream,
        peer: SocketAddr,
        config: Arc<rustls::ServerConfig>,
        shared: Counted,
        stopping: watch::Receiver<bool>,
    ) -> Connection {
        let future = Box::pin(async move {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsStream::accept(tcp, config)).await {
                Ok(result) => result,
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the TLS handshake timed out",
                )),
            }
        });
        Connection {
            state: State::Handshake(Handshake {
                future,
                peer,
                shared,
                stopping,
            }),
        }
    }
}

impl Future for Connection {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let handshake = match &mut this.state {
            State::Http1(connection) => return Pin::new(connection).poll(cx),
            State::Http2(connection) => return connection.as_mut().poll(cx),
            State::Done => return Poll::Ready(()),
            State::Handshake(handshake) => handshake,
        };
        let outcome = ready!(handshake.future.as_mut().poll(cx));
        let State::Handshake(Handshake {
            peer,
            shared,
            stopping,
            ..
        }) = std::mem::replace(&mut this.state, State::Done)
        else {
            // Not reached: the state is the handshake just polled.
            return Poll::Ready(());
        };
        let stream = match outcome {
            Ok(stream) => stream,
            Err(e) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return Poll::Ready(());
            }
        };
        this.state = if stream.alpn_protocol() == Some(b"h2") {
            State::Http2(Box::pin(async move {
                if let Err(e) = super::serve_hyper(&shared, stream, peer, stopping).await {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
            }))
        } else {
            State::Http1(plain::Connection::new(stream, peer, shared, stopping))
        };
        // Polled now: it registers for the wakeups it needs.
        Pin::new(this).poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_http1_connection_task_holds_no_more_than_its_http1_state() {
        // An idle HTTPS/1.1 subscriber holds its task for as long as it is
        // connected: neither the handshake nor HTTP/2 may size it.
        let task = std::mem::size_of::<Connection>();
        let http1 = std::mem::size_of::<plain::Connection<TlsStream>>();
        assert!(
            task <= http1 + 8,
            "{task} B task for {http1} B of HTTP/1.1 state"
        );
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foo"), "Zm9v");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn self_signed_round_trips_through_pem() {
        let made = TlsConfig::self_signed(&["localhost".into()]).unwrap();
        let key_pem = made.private_key_pem();
        assert!(
            key_pem.starts_with("-----BEGIN PRIVATE KEY-----\n"),
            "{key_pem}"
        );
        let loaded =
            TlsConfig::from_pem(made.certificate_pem().as_bytes(), key_pem.as_bytes()).unwrap();
        assert_eq!(loaded.fingerprint(), made.fingerprint());
        assert_eq!(loaded.certificates(), made.certificates());
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let one = TlsConfig::self_signed(&["localhost".into()]).unwrap();
        let other = TlsConfig::self_signed(&["localhost".into()]).unwrap();
        let err = TlsConfig::from_pem(
            one.certificate_pem().as_bytes(),
            other.private_key_pem().as_bytes(),
        )
        .unwrap_err();
        assert!(matches!(err, TlsError::Rustls(_)), "{err}");
    }

    #[test]
    fn pem_without_a_certificate_is_refused() {
        let err = TlsConfig::from_pem(b"nothing here", b"").unwrap_err();
        assert!(matches!(err, TlsError::Certificate(_)), "{err}");
    }
}
