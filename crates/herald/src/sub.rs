//! `herald sub`: follows an event stream from a terminal.
//!
//! The end of the path subscribe → replay → live, for a person: it opens an
//! `herald_client::EventSource` on any SSE URL (or on a Mercure hub for a set
//! of topics), prints each event on stdout (readable, coloured on a
//! terminal, or JSON lines with `--json`) and reports the connection's state
//! on stderr. Reconnections carry the last event id, so nothing is missed.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use futures_util::StreamExt;
use herald_client::{Error, Event, EventSource, Item, ReconnectPolicy};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::publish::hub_endpoint;

const EXAMPLES: &str = "Examples:
  # Follow any SSE stream:
  herald sub https://example.com/events

  # Follow topics on a Mercure hub (base URL or full endpoint):
  herald sub --hub http://localhost:8080 --topic 'https://example.com/books/{id}' --topic news

  # The same on a Mercure 1.0 (draft-08) hub:
  herald sub --hub http://localhost:8080 --match-urlpattern 'https://example.com/books/:id' --match news

  # Private updates need a subscriber token; resume after id 42; stop after 10 events:
  herald sub --hub http://localhost:8080 --topic news --token \"$TOKEN\" --last-event-id 42 --count 10

  # The same with a draft-08 access token, from an issuer the hub trusts (--issuer):
  herald sub --hub http://localhost:8080 --match news --last-event-id 42 --token \
      \"$(herald token --draft 08 --key \"$SECRET\" --issuer https://app.example \
          --audience http://localhost:8080/.well-known/mercure --subscribe news)\"

  # HTTPS with a private CA, or (-k) a development hub's self-signed certificate:
  herald sub --cacert ca.pem --hub https://hub.internal --topic news
  herald sub -k --hub https://localhost:8080 --topic news

  # JSON lines, for jq:
  herald sub --json http://localhost:8080/.well-known/mercure?topic=news | jq .data

  # Resume after id 42 and be told in the stream if the hub no longer holds it:
  herald sub --json --hub http://localhost:8080 --match news --last-event-id 42 --lost-events

Events go to stdout; connection state goes to stderr.";

/// Options of `herald sub`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct SubArgs {
    /// The event stream to follow (or use --hub with --topic).
    #[arg(value_name = "URL", required_unless_present = "hub")]
    url: Option<String>,
    /// A Mercure hub: its endpoint or base URL. Needs --topic (draft-07),
    /// or --match / --match-urlpattern (draft-08). A stream URL given as
    /// well takes the place of HERALD_HUB, not of this flag.
    #[arg(long, env = "HERALD_HUB", value_name = "URL")]
    hub: Option<String>,
    /// `hub` came from HERALD_HUB, not the command line (set by `main`,
    /// which sees where clap found it).
    #[arg(skip)]
    pub(crate) hub_from_env: bool,
    /// A draft-07 topic selector (an exact topic, a URI template or `*`) to
    /// subscribe to on --hub; repeat for several.
    #[arg(long = "topic", value_name = "SELECTOR")]
    topics: Vec<String>,
    /// A draft-08 exact topic to subscribe to on --hub (`match`); repeat
    /// for several.
    #[arg(long = "match", value_name = "TOPIC")]
    matches: Vec<String>,
    /// A draft-08 URL pattern to subscribe to on --hub
    /// (`match_urlpattern`), e.g. 'https://example.com/books/:id'; repeat
    /// for several.
    #[arg(long = "match-urlpattern", value_name = "PATTERN")]
    url_patterns: Vec<String>,
    /// Ask the hub (`lost_events=1`) to send an event of type `mercure`,
    /// {"type":"events_lost","requested","earliest"}, before its replay when
    /// it no longer holds the id resumed from: printed with the events, so
    /// that a --json pipeline sees it too (the warning on stderr needs no
    /// flag).
    #[arg(long)]
    lost_events: bool,
    /// Print each event as one JSON object per line: {"id","type","data"}.
    #[arg(long)]
    json: bool,
    /// Start after this event id (sent as Last-Event-ID, which both
    /// revisions read; `earliest` asks a hub for all the history it holds).
    #[arg(long, value_name = "ID")]
    last_event_id: Option<String>,
    /// An extra request header; repeat for several.
    #[arg(long = "header", short = 'H', value_name = "NAME: VALUE")]
    headers: Vec<String>,
    /// A subscriber token, sent as `Authorization: Bearer`: a draft-07 JWT
    /// or a draft-08 access token (`herald token [--draft 08] --subscribe`
    /// mints either).
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// Exit after this many events.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Reconnect when nothing (not even a heartbeat) arrives for this long,
    /// e.g. 90s.
    #[arg(long, value_name = "DURATION")]
    read_timeout: Option<String>,
    /// Give up after this many reconnection attempts in a row.
    #[arg(long, value_name = "N")]
    max_attempts: Option<u32>,
    /// Trust only the certificates in this PEM file for HTTPS, like
    /// `curl --cacert` (e.g. a private CA, or the hub's own certificate).
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Accept any HTTPS certificate, like `curl -k`: for a development hub
    /// started with --tls-self-signed. Never use it across a network.
    #[arg(long, short = 'k')]
    insecure: bool,
}

/// Characters left as they are in a query value.
const QUERY: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Runs `herald sub` until `--count` events, a fatal error or Ctrl-C.
pub(crate) fn run(args: SubArgs) -> anyhow::Result<ExitCode> {
    let url = stream_url(&args)?;
    let mut builder = EventSource::builder(&url);
    for header in &args.headers {
        let Some((name, value)) = header.split_once(':') else {
            bail!("invalid --header {header:?}: write it as 'Name: value'");
        };
        builder = builder.header(name.trim(), value.trim());
    }
    if let Some(token) = &args.token {
        builder = builder.bearer_token(token);
    }
    if let Some(id) = &args.last_event_id {
        builder = builder.last_event_id(id);
    }
    if let Some(timeout) = &args.read_timeout {
        let timeout = humantime::parse_duration(timeout)
            .with_context(|| format!("invalid --read-timeout {timeout:?}: use e.g. 90s"))?;
        builder = builder.read_timeout(timeout);
    }
    builder = builder.reconnect(ReconnectPolicy::default().max_attempts(args.max_attempts));
    if let Some(tls) = tls_config(args.cacert.as_deref(), args.insecure)? {
        builder = builder.tls_config(tls);
    }
    let source = builder
        .build()
        .map_err(|e| anyhow::anyhow!("{e}{}", hint(&e)))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let printer = Printer {
        json: args.json,
        color: !args.json
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none(),
    };
    runtime.block_on(follow(source, &url, printer, args.count))
}

/// The URL to open: the positional URL, or the hub endpoint with one
/// parameter per selector (`topic`) or matcher (`match`,
/// `match_urlpattern`).
fn stream_url(args: &SubArgs) -> anyhow::Result<String> {
    match (&args.url, &args.hub) {
        // Say where the parameter goes rather than drop the flag silently.
        (Some(_), _) if args.lost_events => {
            bail!("--lost-events goes with --hub; with a URL of your own, add lost_events=1 to it")
        }
        // Selectors go with a hub; beside a URL of one's own a flag must
        // not be dropped silently. (Not clap's `requires = "hub"`: a hub
        // from HERALD_HUB would satisfy it.)
        (Some(_), _)
            if !(args.topics.is_empty()
                && args.matches.is_empty()
                && args.url_patterns.is_empty()) =>
        {
            bail!("--topic, --match and --match-urlpattern go with --hub; with a URL of your own, put them in its query string")
        }
        // Not clap's `conflicts_with`: a hub from HERALD_HUB, set for
        // `herald pub` as well, must not stand in the way of a URL.
        (Some(_), Some(_)) if !args.hub_from_env => {
            bail!("give the stream's URL or --hub, not both")
        }
        (Some(url), _) => Ok(url.clone()),
        (None, Some(hub)) => {
            let draft08 = !args.matches.is_empty() || !args.url_patterns.is_empty();
            if draft08 && !args.topics.is_empty() {
                bail!("use --topic (draft-07) or --match/--match-urlpattern (draft-08), not both: a hub refuses the mix");
            }
            if !draft08 && args.topics.is_empty() {
                bail!("--hub needs what to follow: --topic, --match or --match-urlpattern");
            }
            let mut url = hub_endpoint(hub)?;
            let on = "1".to_owned();
            let parameters = args
                .topics
                .iter()
                .map(|t| ("topic", t))
                .chain(args.matches.iter().map(|m| ("match", m)))
                .chain(args.url_patterns.iter().map(|p| ("match_urlpattern", p)))
                .chain(args.lost_events.then_some(("lost_events", &on)));
            for (i, (name, value)) in parameters.enumerate() {
                let sep = if i == 0 && !url.contains('?') {
                    '?'
                } else {
                    '&'
                };
                url.push(sep);
                url.push_str(name);
                url.push('=');
                url.extend(utf8_percent_encode(value, QUERY));
            }
            Ok(url)
        }
        (None, None) => {
            bail!("give a URL, or --hub URL with --topic, --match or --match-urlpattern")
        }
    }
}

async fn follow(
    mut source: EventSource,
    url: &str,
    printer: Printer,
    count: Option<u64>,
) -> anyhow::Result<ExitCode> {
    if count == Some(0) {
        return Ok(ExitCode::SUCCESS);
    }
    let mut seen = 0u64;
    let mut tls_hint_given = false;
    let mut stdout = std::io::stdout();
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        let item = tokio::select! {
            item = source.next() => item,
            _ = &mut ctrl_c => {
                source.close();
                eprintln!("herald: closed");
                return Ok(ExitCode::SUCCESS);
            }
        };
        let Some(item) = item else {
            return Ok(ExitCode::SUCCESS);
        };
        match item {
            Ok(Item::Open(opened)) => {
                eprintln!("herald: connected to {url}");
                if opened.resume_lost() {
                    eprintln!(
                        "herald: warning: the server no longer knows id {}: it replays all the history it holds, \
                         and events older than that were missed",
                        opened.sent_last_event_id
                    );
                }
            }
            Ok(Item::Event(event)) => {
                if printer.print(&mut stdout, &event).is_err() {
                    // stdout is gone (e.g. `| head`): stop quietly.
                    return Ok(ExitCode::SUCCESS);
                }
                seen += 1;
                if count.is_some_and(|n| seen >= n) {
                    source.close();
                    return Ok(ExitCode::SUCCESS);
                }
            }
            Ok(Item::Reconnecting { error, delay }) => {
                let last = source.last_event_id();
                let resume = if last.is_empty() {
                    String::new()
                } else {
                    format!(", resuming after id {last}")
                };
                // The client's errors spell out their innermost cause.
                let text = error.to_string();
                let delay = std::time::Duration::from_millis(
                    u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                );
                eprintln!(
                    "herald: {text}; reconnecting in {}{resume}",
                    humantime::format_duration(delay)
                );
                if !tls_hint_given && text.contains("certificate") {
                    eprintln!("{}", TLS_HINT.trim_start());
                    tls_hint_given = true;
                }
            }
            Ok(Item::Dropped(e)) => eprintln!("herald: warning: {e}"),
            Ok(_) => {}
            Err(e) => {
                let text = e.to_string();
                let hint = if text.contains("certificate") {
                    TLS_HINT
                } else {
                    hint(&e)
                };
                bail!("{text}{hint}")
            }
        }
    }
}

/// The TLS configuration for `--cacert` and `--insecure`, or `None` for
/// the default (Mozilla roots). Shared with `herald pub`.
pub(crate) fn tls_config(
    cacert: Option<&Path>,
    insecure: bool,
) -> anyhow::Result<Option<rustls::ClientConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    if cacert.is_none() && !insecure {
        return Ok(None);
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?;
    if insecure {
        let config = builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AcceptAnyCertificate(provider)))
            .with_no_client_auth();
        return Ok(Some(config));
    }
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = cacert {
        let mut added = 0;
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("cannot read --cacert {}", path.display()))?
        {
            let cert = cert.with_context(|| {
                format!("--cacert {} holds a malformed certificate", path.display())
            })?;
            roots.add(cert).with_context(|| {
                format!(
                    "--cacert {}: a certificate cannot be used as a root",
                    path.display()
                )
            })?;
            added += 1;
        }
        if added == 0 {
            bail!(
                "--cacert {} holds no PEM certificate (BEGIN CERTIFICATE)",
                path.display()
            );
        }
    }
    Ok(Some(
        builder.with_root_certificates(roots).with_no_client_auth(),
    ))
}

/// `--insecure`: a verifier that accepts any certificate but still checks
/// the handshake signatures, so the connection is encrypted, just not
/// authenticated.
mod insecure {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub(super) struct AcceptAnyCertificate(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AcceptAnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            rustls::crypto::verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}

/// What to do when the server's certificate is not trusted.
pub(crate) const TLS_HINT: &str =
    "\nhint: the server's certificate is not trusted: pass --cacert FILE (its certificate or CA), \
     or --insecure for a development hub";

/// What to do about a fatal error, as a suffix for its message.
fn hint(error: &Error) -> &'static str {
    match error {
        Error::Status { status, body } if status.as_u16() == 400 && body.contains("draft-08 only") => {
            "\nhint: this hub speaks draft-08 only: subscribe with --match or --match-urlpattern instead of --topic"
        }
        Error::Status { status, body } if status.as_u16() == 400 && body.contains("draft-07 only") => {
            "\nhint: this hub speaks draft-07 only: subscribe with --topic instead of --match or --match-urlpattern"
        }
        Error::Status { status, body } if status.as_u16() == 401 && body.contains("draft-08 only") => {
            "\nhint: this hub takes draft-08 access tokens only: mint one with `herald token --draft 08 --issuer ISSUER --audience HUB_URL --subscribe …`"
        }
        Error::Status { status, body } if status.as_u16() == 401 && body.contains("draft-07 only") => {
            "\nhint: this hub takes draft-07 tokens only: mint one with `herald token --subscribe …` (without --draft 08)"
        }
        Error::Status { status, .. } if status.as_u16() == 401 || status.as_u16() == 403 => {
            "\nhint: pass a subscriber token with --token (see `herald token --subscribe`; for an access token, `herald token --draft 08 --subscribe`)"
        }
        Error::Status { status, .. } if status.as_u16() == 404 => {
            "\nhint: check the URL; a Mercure hub's endpoint is /.well-known/mercure (or use --hub URL --topic T)"
        }
        Error::Status { status, .. } if status.as_u16() == 204 => "\nhint: the server asked the client to stop",
        Error::ContentType { .. } => "\nhint: this URL does not serve an event stream (text/event-stream)",
        Error::AttemptsExhausted { .. } => "\nhint: check that the server is up, or raise --max-attempts",
        Error::InvalidUrl { .. } => "\nhint: give a full URL such as http://localhost:8080/events",
        Error::InvalidHeader { .. } => "\nhint: write headers as --header 'Name: value'",
        _ => "",
    }
}

/// How events are written on stdout.
struct Printer {
    json: bool,
    color: bool,
}

impl Printer {
    fn print(&self, out: &mut impl Write, event: &Event) -> std::io::Result<()> {
        if self.json {
            let line = serde_json::json!({
                "id": event.last_event_id(),
                "type": event.event_type(),
                "data": event.data(),
            });
            writeln!(out, "{line}")?;
        } else {
            let (dim, bold, reset) = if self.color {
                ("\x1b[2m", "\x1b[1;36m", "\x1b[0m")
            } else {
                ("", "", "")
            };
            let id = event.last_event_id();
            if id.is_empty() {
                writeln!(
                    out,
                    "{dim}event:{reset} {bold}{}{reset}",
                    event.event_type()
                )?;
            } else {
                writeln!(
                    out,
                    "{dim}event:{reset} {bold}{}{reset}  {dim}id:{reset} {id}",
                    event.event_type()
                )?;
            }
            writeln!(out, "{}", event.data())?;
            writeln!(out)?;
        }
        out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> Result<SubArgs, clap::Error> {
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            sub: SubArgs,
        }
        use clap::Parser as _;
        Wrapper::try_parse_from(std::iter::once("sub").chain(line.iter().copied())).map(|w| w.sub)
    }

    #[test]
    fn hub_urls_for_either_revision() {
        let draft08 = args(&[
            "--hub",
            "http://h",
            "--match",
            "a b",
            "--match-urlpattern",
            "/books/:id",
        ])
        .unwrap();
        assert_eq!(
            stream_url(&draft08).unwrap(),
            "http://h/.well-known/mercure?match=a%20b&match_urlpattern=%2Fbooks%2F%3Aid"
        );
        let draft07 = args(&["--hub", "http://h", "--topic", "x"]).unwrap();
        assert_eq!(
            stream_url(&draft07).unwrap(),
            "http://h/.well-known/mercure?topic=x"
        );
        let mixed = args(&["--hub", "http://h", "--topic", "x", "--match", "y"]).unwrap();
        assert!(stream_url(&mixed)
            .unwrap_err()
            .to_string()
            .contains("not both"));
        let nothing = args(&["--hub", "http://h"]).unwrap();
        assert!(stream_url(&nothing).is_err());
    }

    #[test]
    fn lost_events_asks_the_hub_in_either_revision() {
        let draft07 = args(&["--hub", "http://h", "--topic", "x", "--lost-events"]).unwrap();
        assert_eq!(
            stream_url(&draft07).unwrap(),
            "http://h/.well-known/mercure?topic=x&lost_events=1"
        );
        let draft08 = args(&["--hub", "http://h", "--match", "x", "--lost-events"]).unwrap();
        assert_eq!(
            stream_url(&draft08).unwrap(),
            "http://h/.well-known/mercure?match=x&lost_events=1"
        );
        // With a URL of one's own, the parameter goes in it.
        let own = args(&["http://h/events", "--lost-events"]).unwrap();
        let err = stream_url(&own).unwrap_err().to_string();
        assert!(err.contains("add lost_events=1"), "{err}");
    }

    #[test]
    fn selectors_beside_a_url_of_ones_own_are_refused_not_dropped() {
        for flag in ["--topic", "--match", "--match-urlpattern"] {
            let own = args(&["http://h/events", flag, "x"]).unwrap();
            let err = stream_url(&own).unwrap_err().to_string();
            assert!(err.contains("go with --hub"), "{flag}: {err}");
        }
    }

    fn event(id: &str, t: Option<&str>, data: &str) -> Event {
        Event::new(t.map(str::to_owned), data.to_owned(), id.into())
    }

    #[test]
    fn plain_output_is_readable_and_uncoloured() {
        let mut out = Vec::new();
        let p = Printer {
            json: false,
            color: false,
        };
        p.print(&mut out, &event("7", Some("price"), "a\nb"))
            .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: price  id: 7\na\nb\n\n"
        );
    }

    #[test]
    fn json_output_is_one_object_per_line() {
        let mut out = Vec::new();
        let p = Printer {
            json: true,
            color: false,
        };
        p.print(&mut out, &event("", None, "x\"y")).unwrap();
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line.lines().count(), 1);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": "", "type": "message", "data": "x\"y"})
        );
    }
}
