//! Which protocol the subscribers speak (`--transport`), and the TLS client
//! both subscribers and publishers use for `https://` hubs.
//!
//! HTTP/1.1 subscribers (plain or over TLS) hold one connection each; HTTP/2
//! ones (over TLS with ALPN `h2`, or h2c with prior knowledge) share a
//! connection per `--streams-per-connection` subscribers, which is how one
//! hub process serves more subscribers than it has sockets. Publishers
//! always speak HTTP/1.1 (pipelined), over TLS when the hub is `https://`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::http::Url;

/// The protocol subscribers speak to the hub.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Transport {
    /// HTTP/1.1 over TCP, one connection per subscriber.
    #[default]
    Http1,
    /// HTTP/1.1 over TLS, one connection per subscriber (https:// hubs).
    Https,
    /// HTTP/2 over TLS (ALPN h2), --streams-per-connection subscribers on
    /// each connection (https:// hubs).
    H2,
    /// HTTP/2 over TCP with prior knowledge (h2c), --streams-per-connection
    /// subscribers on each connection (http:// hubs).
    H2c,
}

impl Transport {
    /// Whether connections start with a TLS handshake.
    pub(crate) fn tls(self) -> bool {
        matches!(self, Transport::Https | Transport::H2)
    }

    /// Whether subscribers share connections as HTTP/2 streams.
    pub(crate) fn http2(self) -> bool {
        matches!(self, Transport::H2 | Transport::H2c)
    }

    /// Its `--transport` name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Transport::Http1 => "http1",
            Transport::Https => "https",
            Transport::H2 => "h2",
            Transport::H2c => "h2c",
        }
    }

    /// What the report calls it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Transport::Http1 => "HTTP/1.1",
            Transport::Https => "HTTP/1.1 (TLS)",
            Transport::H2 => "HTTP/2 (TLS)",
            Transport::H2c => "HTTP/2 (h2c, prior knowledge)",
        }
    }

    /// The transport of a run whose subscribe URLs are `urls`: the one
    /// given, which must agree with their scheme, or else the scheme's
    /// HTTP/1.1 (`http1` or `https`).
    pub(crate) fn resolve(given: Option<Transport>, urls: &[String]) -> anyhow::Result<Transport> {
        let tls = urls.iter().any(|u| u.starts_with("https://"));
        if tls && urls.iter().any(|u| !u.starts_with("https://")) {
            bail!("the hubs mix http:// and https://: give them all the same scheme");
        }
        let transport = given.unwrap_or(if tls {
            Transport::Https
        } else {
            Transport::Http1
        });
        if transport.tls() != tls {
            let (wanted, instead) = if transport.tls() {
                ("an https:// hub", "--transport http1 or h2c")
            } else {
                ("an http:// hub", "--transport https or h2")
            };
            bail!(
                "--transport {} needs {wanted} (or use {instead})",
                transport.name()
            );
        }
        Ok(transport)
    }
}

/// How to trust an `https://` hub's certificate: `--cacert` and
/// `--insecure`, as for `herald sub` and `herald pub`. Sent to worker
/// processes, which build their own connector from it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct TlsOptions {
    /// Trust only the certificates in this PEM file.
    pub(crate) cacert: Option<PathBuf>,
    /// Accept any certificate (a development hub's self-signed one).
    pub(crate) insecure: bool,
}

impl TlsOptions {
    /// A client offering `alpn` (e.g. `h2`, or `http/1.1`).
    pub(crate) fn connector(&self, alpn: &[&[u8]]) -> anyhow::Result<TlsClient> {
        // A loopback hub's certificate is never one a public CA signed
        // (none signs `localhost` or 127.0.0.1), so there is no default
        // trust to fall back on.
        let Some(mut config) = crate::sub::tls_config(self.cacert.as_deref(), self.insecure)?
        else {
            bail!(
                "an https:// hub needs --cacert FILE (its certificate, or the CA that signed it) or --insecure (a development hub's self-signed certificate)"
            );
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(TlsClient(TlsConnector::from(Arc::new(config))))
    }
}

/// The TLS client of a run's connections to `https://` hubs (one
/// configuration, shared by every connection).
#[derive(Clone)]
pub(crate) struct TlsClient(TlsConnector);

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

impl TlsClient {
    /// Completes a TLS handshake with the hub of `url` over `tcp`.
    pub(crate) async fn handshake(
        &self,
        tcp: TcpStream,
        url: &Url,
    ) -> anyhow::Result<TlsStream<TcpStream>> {
        let name = ServerName::try_from(url.server_name().to_owned())
            .with_context(|| format!("{:?} is not a name TLS can check", url.server_name()))?;
        self.0
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {} failed", url.addr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transport_follows_the_scheme_unless_given_and_must_agree_with_it() {
        let http = ["http://127.0.0.1:1/.well-known/mercure".to_owned()];
        let https = ["https://127.0.0.1:1/.well-known/mercure".to_owned()];
        let resolve = |given, urls: &[String]| Transport::resolve(given, urls);
        assert_eq!(resolve(None, &http).unwrap(), Transport::Http1);
        assert_eq!(resolve(None, &https).unwrap(), Transport::Https);
        assert_eq!(
            resolve(Some(Transport::H2c), &http).unwrap(),
            Transport::H2c
        );
        assert_eq!(resolve(Some(Transport::H2), &https).unwrap(), Transport::H2);
        let err = resolve(Some(Transport::H2), &http).unwrap_err().to_string();
        assert!(
            err.contains("--transport h2 needs an https:// hub"),
            "{err}"
        );
        let err = resolve(Some(Transport::Http1), &https)
            .unwrap_err()
            .to_string();
        assert!(err.contains("https or h2"), "{err}");
        let mixed = [http[0].clone(), https[0].clone()];
        assert!(resolve(None, &mixed).is_err());
    }

    #[test]
    fn https_needs_a_way_to_trust_the_hub() {
        let err = TlsOptions::default()
            .connector(&[b"h2"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.contains("--cacert") && err.contains("--insecure"),
            "{err}"
        );
        let insecure = TlsOptions {
            cacert: None,
            insecure: true,
        };
        assert!(insecure.connector(&[b"h2"]).is_ok());
    }
}
