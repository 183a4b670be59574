//! The hub's configuration from the options: keys, limits, CORS, and
//! whether to start in development mode.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use herald_hub::HubUrl;
use herald_hub::{HubConfig, IpRange, JwtKey};
use herald_hub::{Protocol, ProtocolLimits};

use super::args::{ProtocolRevisions, ServeArgs, Switch};
use super::dev::{dev_mode, DevMode};
use super::history::parse_size;
use crate::token::{parse_alg, read_key};

/// The hub configuration from the options, final: `Some(DevMode)` when no
/// key is configured and the hub listens on loopback only, and then the
/// configuration already carries development mode's key, anonymous
/// subscribers and CORS `*`, reads from any origin without cookies (unless
/// the options say otherwise).
pub(super) fn hub_config(
    args: &ServeArgs,
    listen: SocketAddr,
) -> anyhow::Result<(HubConfig, Option<DevMode>)> {
    let alg = parse_alg(args.jwt_alg.as_deref().unwrap_or("HS256"))?;
    let shared_key = serve_key(
        &args.jwt_key,
        &args.jwt_key_file,
        "--jwt-key (or HERALD_JWT_KEY)",
    )?;
    let role_key = |key: &Option<String>,
                    file: &Option<PathBuf>,
                    flag: &str,
                    role_alg: &Option<String>|
     -> anyhow::Result<Option<JwtKey>> {
        let key = serve_key(key, file, flag)?.or_else(|| shared_key.clone());
        let algorithm = match role_alg {
            Some(a) => parse_alg(a)?,
            None => alg,
        };
        Ok(key.map(|key| JwtKey { algorithm, key }))
    };
    let publisher_key = role_key(
        &args.publisher_jwt_key,
        &args.publisher_jwt_key_file,
        "--publisher-jwt-key (or HERALD_PUBLISHER_JWT_KEY)",
        &args.publisher_jwt_alg,
    )?;
    let subscriber_key = role_key(
        &args.subscriber_jwt_key,
        &args.subscriber_jwt_key_file,
        "--subscriber-jwt-key (or HERALD_SUBSCRIBER_JWT_KEY)",
        &args.subscriber_jwt_alg,
    )?;

    let defaults = HubConfig::default();
    // humantime reads a bare "0" as zero, which disables heartbeats.
    let heartbeat = match args.heartbeat.as_deref() {
        None => defaults.heartbeat,
        Some(text) => humantime::parse_duration(text)
            .with_context(|| format!("invalid --heartbeat {text:?}: use e.g. 40s, 500ms or 0"))?,
    };
    let queue_bytes = match args.queue_bytes.as_deref() {
        None => defaults.queue_bytes,
        Some(text) => parse_size(text)
            .and_then(|n| usize::try_from(n).context("the size is too large"))
            .with_context(|| {
                format!("invalid --queue-bytes {text:?}: use e.g. 1048576, 512KiB or 16MiB")
            })?,
    };
    let max_stream_lifetime = match args.max_stream_lifetime.as_deref() {
        None => None,
        Some(text) => Some(humantime::parse_duration(text).with_context(|| {
            format!("invalid --max-stream-lifetime {text:?}: use e.g. 1h, 30m or 0 (no limit)")
        })?)
        .filter(|d| !d.is_zero()),
    };
    let mut config = HubConfig {
        publisher_key,
        subscriber_key,
        anonymous: args.anonymous.unwrap_or(false),
        cors_origins: origins(&args.cors_origin),
        publish_origins: origins(&args.publish_origin),
        heartbeat,
        max_body: args.max_body.unwrap_or(defaults.max_body),
        limits: ProtocolLimits {
            max_topics: args.max_topics.unwrap_or(defaults.limits.max_topics),
            max_selectors: args.max_selectors.unwrap_or(defaults.limits.max_selectors),
            max_selector_len: args
                .max_selector_length
                .unwrap_or(defaults.limits.max_selector_len),
        },
        queue_capacity: args.queue_size.unwrap_or(defaults.queue_capacity),
        queue_bytes,
        max_patterns: args.max_patterns.unwrap_or(defaults.max_patterns),
        max_stream_lifetime,
        max_publish_rate: args.publish_rate,
        max_subscribers: args.max_subscribers.map_or(defaults.max_subscribers, |n| {
            usize::try_from(n).unwrap_or(usize::MAX)
        }),
        max_streams_per_client: match args.max_streams_per_client {
            Some(0) => None,
            Some(n) => Some(n),
            None => Some(DEFAULT_MAX_STREAMS_PER_CLIENT),
        },
        trusted_proxies: trusted_proxies(&args.trusted_proxy)?,
        ui: args.ui != Some(Switch::Off),
        subscriptions: args.subscriptions == Some(Switch::On),
        protocol: match args.protocol {
            None | Some(ProtocolRevisions::Both) => Protocol::Both,
            Some(ProtocolRevisions::Draft07) => Protocol::Draft07,
            Some(ProtocolRevisions::Draft08) => Protocol::Draft08,
        },
        hub_url: hub_url(args, listen)?,
        ..defaults
    };
    config.access_tokens = super::issuers::access_tokens(args, &config.hub_url.to_string())?;

    if config.publisher_key.is_some()
        || config.subscriber_key.is_some()
        || config.access_tokens.is_some()
    {
        return Ok((config, None));
    }
    if !listen.ip().is_loopback() {
        bail!(
            "no JWT key configured: set --jwt-key (or HERALD_JWT_KEY, or jwt-key in --config). \
             Without a key the hub only runs in development mode, which listens on loopback addresses only."
        );
    }
    let dev = dev_mode()?;
    config.anonymous = args.anonymous.unwrap_or(true);
    if args.cors_origin.is_none() {
        config.cors_origins = vec!["*".into()];
    }
    config.publisher_key = Some(dev.key.clone());
    config.subscriber_key = Some(dev.key.clone());
    Ok((config, Some(dev)))
}

/// The default of --max-streams-per-client. Browsers open at most six
/// HTTP/1.1 connections to a site, and one HTTP/2 connection carries up to
/// --h2-max-streams (256) streams, so no one person's browser comes near;
/// an office or a carrier NAT puts many people behind one address, and a
/// thousand streams of one site from one address is past what they
/// usually hold. Against the hub's capacity (tens of thousands of streams
/// under systemd's usual file limits) one client holds a small share.
const DEFAULT_MAX_STREAMS_PER_CLIENT: usize = 1000;

/// --trusted-proxy: addresses and networks, spaces around them ignored and
/// empty items skipped (as `a, b,` gives them).
fn trusted_proxies(given: &Option<Vec<String>>) -> anyhow::Result<Vec<IpRange>> {
    given
        .iter()
        .flatten()
        .map(|text| text.trim())
        .filter(|text| !text.is_empty())
        .map(|text| text.parse().context("invalid --trusted-proxy"))
        .collect()
}

/// --hub-url, or the URL the hub answers on by its listen address.
fn hub_url(args: &ServeArgs, listen: SocketAddr) -> anyhow::Result<HubUrl> {
    match &args.hub_url {
        Some(url) => HubUrl::parse(url).map_err(|e| anyhow::anyhow!("invalid --hub-url: {e}")),
        None => default_hub_url(args, listen),
    }
}

/// The hub URL when `--hub-url` is not given: the scheme served and the
/// address listened on.
pub(super) fn default_hub_url(args: &ServeArgs, listen: SocketAddr) -> anyhow::Result<HubUrl> {
    let tls = args.tls_cert.is_some() || args.tls_self_signed == Some(true);
    let scheme = if tls { "https" } else { "http" };
    HubUrl::parse(&format!("{scheme}://{listen}{}", herald_hub::HUB_PATH))
        .map_err(|e| anyhow::anyhow!("cannot make the hub URL from {listen}: {e}"))
}

/// Configured origins as the hub compares them with a request's `Origin`,
/// which never has spaces or a trailing slash: `https://app.example/` and
/// ` https://app.example` (as in `a, b`) both mean `https://app.example`.
fn origins(given: &Option<Vec<String>>) -> Vec<String> {
    given
        .iter()
        .flatten()
        .map(|origin| origin.trim().trim_end_matches('/').to_owned())
        .filter(|origin| !origin.is_empty())
        .collect()
}

/// A key of `herald serve`, inline or from its file. Flags and the
/// environment keep the two apart, and either replaces the file's key
/// whichever way the file gives it (`ServeArgs::merge_file`); should the
/// file alone give both, the inline key wins.
fn serve_key(
    key: &Option<String>,
    file: &Option<PathBuf>,
    flag: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    let file = file.as_deref().filter(|_| key.is_none());
    read_key(key.as_deref(), file, flag)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn loopback() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    fn keyed() -> ServeArgs {
        ServeArgs {
            jwt_key: Some("a-test-secret".into()),
            ..ServeArgs::default()
        }
    }

    #[test]
    fn heartbeat_defaults_to_the_hubs_and_zero_disables_it() {
        let (config, _) = hub_config(&keyed(), loopback()).unwrap();
        assert_eq!(config.heartbeat, HubConfig::default().heartbeat);
        for (text, want) in [("0", Duration::ZERO), ("500ms", Duration::from_millis(500))] {
            let args = ServeArgs {
                heartbeat: Some(text.into()),
                ..keyed()
            };
            assert_eq!(hub_config(&args, loopback()).unwrap().0.heartbeat, want);
        }
        let args = ServeArgs {
            heartbeat: Some("soon".into()),
            ..keyed()
        };
        assert!(hub_config(&args, loopback()).is_err());
    }

    #[test]
    fn queue_bytes_defaults_to_the_hubs_and_takes_a_size() {
        let (config, _) = hub_config(&keyed(), loopback()).unwrap();
        assert_eq!(config.queue_bytes, HubConfig::default().queue_bytes);
        for (text, want) in [
            ("1048576", 1 << 20),
            ("512KiB", 512 << 10),
            ("16MiB", 16 << 20),
        ] {
            let args = ServeArgs {
                queue_bytes: Some(text.into()),
                ..keyed()
            };
            assert_eq!(hub_config(&args, loopback()).unwrap().0.queue_bytes, want);
        }
        let args = ServeArgs {
            queue_bytes: Some("lots".into()),
            ..keyed()
        };
        let Err(err) = hub_config(&args, loopback()) else {
            panic!("--queue-bytes lots was accepted");
        };
        assert!(format!("{err:#}").contains("--queue-bytes"), "{err:#}");
    }

    #[test]
    fn a_configured_key_is_used_as_given() {
        let (config, dev) = hub_config(&keyed(), loopback()).unwrap();
        assert!(dev.is_none());
        assert!(!config.anonymous);
        assert!(config.cors_origins.is_empty());
        assert_eq!(config.publisher_key.unwrap().key, b"a-test-secret");
        let args = ServeArgs {
            jwt_key: Some(String::new()),
            ..ServeArgs::default()
        };
        let Err(err) = hub_config(&args, loopback()) else {
            panic!("an empty --jwt-key was accepted");
        };
        assert!(format!("{err:#}").contains("--jwt-key"), "{err:#}");
    }

    #[test]
    fn origins_lose_spaces_and_trailing_slashes() {
        let args = ServeArgs {
            cors_origin: Some(vec!["https://a.example/".into(), " *".into(), " ".into()]),
            publish_origin: Some(vec![" https://b.example:8443//".into()]),
            ..keyed()
        };
        let (config, _) = hub_config(&args, loopback()).unwrap();
        assert_eq!(config.cors_origins, ["https://a.example", "*"]);
        assert_eq!(config.publish_origins, ["https://b.example:8443"]);
    }

    #[test]
    fn development_mode_comes_out_final() {
        let (config, dev) = hub_config(&ServeArgs::default(), loopback()).unwrap();
        let dev = dev.expect("development mode without a key on loopback");
        assert!(config.anonymous);
        assert_eq!(config.cors_origins, vec!["*".to_owned()]);
        // CORS `*` is for anonymous reads: no origin may publish with the
        // cookie unless --publish-origin names it.
        assert!(config.publish_origins.is_empty());
        assert_eq!(config.publisher_key.unwrap().key, dev.key.key);
        assert_eq!(config.subscriber_key.unwrap().key, dev.key.key);

        let args = ServeArgs {
            anonymous: Some(false),
            cors_origin: Some(vec!["https://app.example".into()]),
            ..ServeArgs::default()
        };
        let (config, dev) = hub_config(&args, loopback()).unwrap();
        assert!(dev.is_some());
        assert!(!config.anonymous);
        assert_eq!(config.cors_origins, vec!["https://app.example".to_owned()]);

        assert!(hub_config(&ServeArgs::default(), "0.0.0.0:0".parse().unwrap()).is_err());
    }

    #[test]
    fn streams_per_client_default_to_a_thousand_and_zero_lifts_the_limit() {
        let (config, _) = hub_config(&keyed(), loopback()).unwrap();
        assert_eq!(config.max_streams_per_client, Some(1000));
        assert!(config.trusted_proxies.is_empty());
        for (given, want) in [(0, None), (3, Some(3))] {
            let args = ServeArgs {
                max_streams_per_client: Some(given),
                ..keyed()
            };
            let (config, _) = hub_config(&args, loopback()).unwrap();
            assert_eq!(config.max_streams_per_client, want);
        }
    }

    #[test]
    fn trusted_proxies_are_addresses_or_networks() {
        let args = ServeArgs {
            trusted_proxy: Some(vec![
                " 127.0.0.1".into(),
                "10.0.0.0/8".into(),
                "".into(),
                "::1".into(),
            ]),
            ..keyed()
        };
        let (config, _) = hub_config(&args, loopback()).unwrap();
        let shown: Vec<String> = config
            .trusted_proxies
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(shown, ["127.0.0.1/32", "10.0.0.0/8", "::1/128"]);
        let args = ServeArgs {
            trusted_proxy: Some(vec!["proxy.internal".into()]),
            ..keyed()
        };
        let Err(err) = hub_config(&args, loopback()) else {
            panic!("a host name was taken for a proxy address");
        };
        let err = format!("{err:#}");
        assert!(
            err.contains("--trusted-proxy") && err.contains("\"proxy.internal\""),
            "{err}"
        );
    }
}
