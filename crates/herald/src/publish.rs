//! `herald pub`: publishes one update to a Mercure hub.
//!
//! The start of the path publish → history → fan-out → socket: a form POST
//! (`topic`, `data`, `id`, `type`, `retry`, `private`) to the hub endpoint,
//! authorised by a publisher JWT given with `--token` or signed on the spot
//! from `--key`. The hub answers with the update's id, which is printed.

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

  # With a draft-08 access token, for a hub started with
  # --issuer https://app.example=secret:$SECRET --access-token-alg HS256:
  herald pub --hub http://localhost:8080 --topic news --data hi \\
      --draft 08 --issuer https://app.example --key \"$SECRET\"

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
    /// Or sign a publisher token for the given topics with this key.
    #[command(flatten)]
    signing: token::SigningKeyArgs,
    /// The signed token's format (with --key): a draft-07 JWT, or with
    /// --draft 08 an access token, as `herald token` makes them.
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
    let token = match &args.token {
        Some(token) => Some(token.clone()),
        None if args.signing.is_given() => Some(token::sign_publisher(
            &args.signing,
            &args.access,
            &endpoint.to_string(),
            &args.topics,
        )?),
        None => None,
    };
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
    let hint = match status.as_u16() {
        401 => "pass a publisher token with --token, or the hub's key with --key",
        403 => "the token's mercure.publish selectors must match every --topic (see `herald token --publish`)",
        404 => "check --hub: the endpoint is http://HOST/.well-known/mercure",
        413 => "the update is larger than the hub accepts",
        _ => "",
    };
    if !hint.is_empty() {
        eprintln!("hint: {hint}");
    }
    Ok(ExitCode::FAILURE)
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
