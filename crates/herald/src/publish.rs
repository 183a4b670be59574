//! `herald pub`: publishes one update to a Mercure hub.
//!
//! The start of the path publish → history → fan-out → socket: a form POST
//! (`topic`, `data`, `id`, `type`, `retry`, `private`) to the hub endpoint,
//! authorised by a publisher token given with `--token` or signed on the
//! spot from `--key`: a draft-07 JWT, or with `--draft 08` a draft-08
//! access token (as `herald token` makes them). The form is the same in
//! both revisions. The hub answers with the update's id, which is printed.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use bytes::Bytes;
use herald_hub::HUB_PATH;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use crate::token;

const EXAMPLES: &str = "Examples:
  # Publish to one topic with a token:
  herald pub --hub http://localhost:8080 --topic https://example.com/books/1 \\
      --data '{\"title\":\"Dune\"}' --token \"$TOKEN\"

  # Sign the token from the hub's key, set id and type, read data from stdin:
  echo 'price: 3' | herald pub --hub http://localhost:8080/.well-known/mercure \\
      --topic prices --topic prices/eur --id 42 --type price --key \"$SECRET\"

  # Sign a draft-08 access token instead, for a hub started with
  # --issuer https://app.example=secret:$SECRET --access-token-alg HS256
  # (its audience: the endpoint published to, unless --audience):
  herald pub --hub http://localhost:8080 --topic news --data hi \\
      --draft 08 --issuer https://app.example --key \"$SECRET\"

  # Or with an issuer's ES256 private key, the hub started with
  # --issuer https://app.example=issuer-public.pem:
  herald pub --hub http://localhost:8080 --topic news --data hi \\
      --draft 08 --issuer https://app.example --alg ES256 --key-file issuer-private.pem

  # A private update, only for subscribers whose token allows the topic:
  herald pub --hub http://localhost:8080 --topic users/7 --private --data hi --key \"$SECRET\"

  # HTTPS with a private CA (--cacert) or a self-signed development hub (-k):
  herald pub -k --hub https://localhost:8080 --topic news --data hi --key \"$SECRET\"

--hub takes the full endpoint or just the hub's base URL (then
/.well-known/mercure is appended). The key may also come from HERALD_JWT_KEY.";

/// Options of `herald pub`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct PubArgs {
    /// The hub: its endpoint (http://host/.well-known/mercure) or base URL
    /// (http://host).
    #[arg(long, env = "HERALD_HUB", value_name = "URL")]
    hub: String,
    /// Topic of the update; the first is canonical, the others alternates.
    #[arg(long = "topic", value_name = "TOPIC", required = true)]
    topics: Vec<String>,
    /// The data; read from stdin when absent or `-` (then one final newline
    /// is removed, as `echo` adds one).
    #[arg(long, value_name = "DATA")]
    data: Option<String>,
    /// The update's id (the hub generates one when absent).
    #[arg(long, value_name = "ID")]
    id: Option<String>,
    /// The SSE event type.
    #[arg(long = "type", value_name = "TYPE")]
    event_type: Option<String>,
    /// The SSE reconnection time for subscribers, in milliseconds.
    #[arg(long, value_name = "MS")]
    retry: Option<u64>,
    /// Only subscribers authorised for one of the topics receive it.
    #[arg(long)]
    private: bool,
    /// A publisher token: a draft-07 JWT, or a draft-08 access token (the
    /// form is the same in both revisions; `herald token --draft 08` mints
    /// one).
    #[arg(long, value_name = "JWT")]
    token: Option<String>,
    /// Or sign a publisher token for the --topic values, valid five
    /// minutes, with this key (--key, --key-file or HERALD_JWT_KEY; a key
    /// in the environment gives way to --token).
    #[command(flatten)]
    signing: token::SigningKeyArgs,
    /// The signed token's format: a draft-07 JWT, or with --draft 08 an
    /// access token, as `herald token` makes them.
    #[command(flatten)]
    access: token::AccessTokenArgs,
    /// Trust only the certificates in this PEM file for HTTPS, like
    /// `curl --cacert`.
    #[arg(long, value_name = "FILE")]
    cacert: Option<PathBuf>,
    /// Accept any HTTPS certificate, like `curl -k` (development hubs only).
    #[arg(long, short = 'k')]
    insecure: bool,
}

/// Characters left as they are in a form value; everything else is
/// percent-encoded.
const FORM: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'*')
    .remove(b'-')
    .remove(b'.')
    .remove(b'_');

/// Runs `herald pub`.
pub(crate) fn run(args: PubArgs) -> anyhow::Result<ExitCode> {
    let endpoint = hub_endpoint(&args.hub)?;
    let data = match args.data.as_deref() {
        Some("-") | None => read_stdin()?,
        Some(data) => data.to_owned(),
    };
    let token = publisher_token(&args, &endpoint)?;
    let access_token = token
        .as_deref()
        .is_some_and(herald_hub::access_token::is_access_token);
    let tls = crate::sub::tls_config(args.cacert.as_deref(), args.insecure)?;
    let body = form_body(&args, &data);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let (status, text) = match runtime.block_on(post(&endpoint, body, token.as_deref(), tls)) {
        Ok(answer) => answer,
        Err(e) => {
            let text = format!("{e:#}");
            eprintln!("herald: error: {text}");
            if text.contains("certificate") {
                eprintln!("{}", crate::sub::TLS_HINT.trim_start());
            } else if text.contains("cannot reach the hub") {
                eprintln!(
                    "hint: is the hub running at that address? (start one with `herald serve`)"
                );
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if status == StatusCode::OK {
        println!("{}", text.trim_end());
        return Ok(ExitCode::SUCCESS);
    }
    let message = text.trim();
    eprintln!(
        "herald: error: the hub answered {status}{}{message}",
        if message.is_empty() { "" } else { ": " }
    );
    let hint = refusal_hint(status, message, token.is_some(), access_token);
    if !hint.is_empty() {
        eprintln!("hint: {hint}");
    }
    Ok(ExitCode::FAILURE)
}

/// The token to send: `--token` as given, or one signed from the key
/// (`--draft 08`: an access token whose audience is `endpoint` unless
/// `--audience` says otherwise), or none. Mixes that would leave an option
/// without effect are refused.
fn publisher_token(args: &PubArgs, endpoint: &str) -> anyhow::Result<Option<String>> {
    let signing_flags = args.access.signing_flags();
    if let Some(token) = &args.token {
        if args.signing.is_given_as_flag() {
            bail!("give either --token (a token made elsewhere) or --key/--key-file (herald pub signs one), not both");
        }
        if !signing_flags.is_empty() {
            bail!(
                "{} for the token herald pub signs with --key, and cannot change a --token (`herald token` takes the same options)",
                token::flags_are(&signing_flags)
            );
        }
        return Ok(Some(token.clone()));
    }
    if !args.signing.is_given() {
        if !signing_flags.is_empty() {
            let whose = if args.access.is_draft08() {
                "the issuer's key (its private key, or the secret the hub's --issuer names)"
            } else {
                "the hub's key"
            };
            bail!(
                "{} for the token herald pub signs: give {whose} with --key or --key-file (or HERALD_JWT_KEY), or a token with --token",
                token::flags_are(&signing_flags)
            );
        }
        return Ok(None);
    }
    token::sign_publisher(&args.signing, &args.access, endpoint, &args.topics).map(Some)
}

/// What to do about a refused publish, from the status, the hub's
/// message and the token sent (none, draft-07, or an access token).
fn refusal_hint(
    status: StatusCode,
    message: &str,
    token_sent: bool,
    access_token: bool,
) -> &'static str {
    match status.as_u16() {
        401 if message.contains("draft-08 only") => {
            "this hub takes draft-08 access tokens only: sign one with --draft 08 --issuer ISSUER --key KEY (an issuer the hub trusts, and its key), or pass one from `herald token --draft 08` with --token"
        }
        401 if message.contains("draft-07 only") => {
            "this hub takes draft-07 tokens only: sign one with --key (the hub's --jwt-key) without --draft 08"
        }
        401 if message.contains("trusts no access-token issuer") => {
            "start the hub with --issuer ISSUER=KEYS to accept access tokens, or sign a draft-07 token with --key (without --draft 08)"
        }
        401 if access_token => {
            "the hub must trust the token's issuer (its --issuer, with the key the token is signed with and --access-token-alg allowing the algorithm), and --audience must be the hub's resource identifier (by default the endpoint published to)"
        }
        401 if token_sent => {
            "the token must be signed with the hub's key (--key: the hub's --jwt-key or --publisher-jwt-key)"
        }
        401 => "pass a publisher token with --token, or sign one with --key (the hub's key; with --draft 08 --issuer, an issuer's key)",
        403 if access_token => {
            "the token's publish authorization detail must match every --topic (see `herald token --draft 08 --publish`, or let `herald pub --draft 08` sign one for its topics)"
        }
        403 => "the token's mercure.publish selectors must match every --topic (see `herald token --publish`)",
        404 => "check --hub: the endpoint is http://HOST/.well-known/mercure",
        413 => "the update is larger than the hub accepts",
        _ => "",
    }
}

/// The hub endpoint: the URL as given, or with [`HUB_PATH`]
/// (`/.well-known/mercure`) appended when its path is empty or `/`.
/// Shared by `herald pub`, `herald sub` and `herald bench`.
pub(crate) fn hub_endpoint(hub: &str) -> anyhow::Result<String> {
    let uri: Uri = hub
        .parse()
        .with_context(|| format!("invalid --hub {hub:?}: expected e.g. http://localhost:8080"))?;
    if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.authority().is_none() {
        bail!("invalid --hub {hub:?}: expected an http:// or https:// URL, e.g. http://localhost:8080");
    }
    if uri.path() == "/" {
        if uri.query().is_some() {
            bail!("invalid --hub {hub:?}: give the base URL without a query");
        }
        return Ok(format!("{}{HUB_PATH}", hub.trim_end_matches('/')));
    }
    Ok(hub.to_owned())
}

/// `application/x-www-form-urlencoded` pairs.
fn form_body(args: &PubArgs, data: &str) -> String {
    let mut pairs: Vec<(&str, String)> = args.topics.iter().map(|t| ("topic", t.clone())).collect();
    pairs.push(("data", data.to_owned()));
    if let Some(id) = &args.id {
        pairs.push(("id", id.clone()));
    }
    if let Some(t) = &args.event_type {
        pairs.push(("type", t.clone()));
    }
    if let Some(retry) = args.retry {
        pairs.push(("retry", retry.to_string()));
    }
    if args.private {
        pairs.push(("private", "on".to_owned()));
    }
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={}", utf8_percent_encode(v, FORM)))
        .collect::<Vec<_>>()
        .join("&")
}

fn read_stdin() -> anyhow::Result<String> {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!("herald: reading the data from stdin (end with Ctrl-D; or pass --data)");
    }
    let mut data = String::new();
    stdin
        .read_to_string(&mut data)
        .context("cannot read the data from stdin (it must be UTF-8)")?;
    if data.ends_with('\n') {
        data.pop();
        if data.ends_with('\r') {
            data.pop();
        }
    }
    Ok(data)
}

/// POSTs the form and returns the status and body text.
async fn post(
    endpoint: &str,
    body: String,
    token: Option<&str>,
    tls: Option<rustls::ClientConfig>,
) -> anyhow::Result<(StatusCode, String)> {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match tls {
        Some(config) => builder.with_tls_config(config),
        None => builder
            .with_provider_and_webpki_roots(Arc::new(rustls::crypto::ring::default_provider()))
            .context("cannot set up TLS")?,
    };
    let connector = builder
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build(connector);
    let mut request = Request::post(endpoint)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body)))
        .context("cannot build the request")?;
    if let Some(token) = token {
        let value = format!("Bearer {token}")
            .parse()
            .context("the token contains characters not allowed in a header")?;
        request.headers_mut().insert(AUTHORIZATION, value);
    }
    let exchange = async {
        let response = client
            .request(request)
            .await
            .with_context(|| format!("cannot reach the hub at {endpoint}"))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .context("the hub's answer broke off")?
            .to_bytes();
        anyhow::Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    };
    tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .with_context(|| format!("the hub at {endpoint} did not answer within 30 s"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_base_urls_get_the_well_known_path() {
        for (given, want) in [
            ("http://h:8080", "http://h:8080/.well-known/mercure"),
            ("http://h:8080/", "http://h:8080/.well-known/mercure"),
            (
                "https://h/.well-known/mercure",
                "https://h/.well-known/mercure",
            ),
            ("http://h/custom/hub", "http://h/custom/hub"),
        ] {
            assert_eq!(hub_endpoint(given).unwrap(), want);
        }
        assert!(hub_endpoint("localhost:8080").is_err());
        assert!(hub_endpoint("ftp://h").is_err());
    }

    #[test]
    fn form_values_are_percent_encoded() {
        let encoded: String = utf8_percent_encode("a b&c=d/é", FORM).to_string();
        assert_eq!(encoded, "a%20b%26c%3Dd%2F%C3%A9");
    }
}
