//! The hub's configuration from the options: keys, limits, CORS, and
//! whether to start in development mode.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use herald_hub::protocol::ProtocolLimits;
use herald_hub::{HubConfig, JwtKey};

use super::args::{ServeArgs, Switch};
use super::dev::{dev_mode, DevMode};
use crate::token::parse_alg;

/// The hub configuration from the options; `Some(DevMode)` when no key is
/// configured and the hub listens on loopback only.
pub(super) fn hub_config(
    args: &ServeArgs,
    listen: SocketAddr,
) -> anyhow::Result<(HubConfig, Option<DevMode>)> {
    let alg = parse_alg(args.jwt_alg.as_deref().unwrap_or("HS256"))?;
    let shared_key = read_key(args.jwt_key.as_deref(), args.jwt_key_file.as_deref())?;
    let role_key = |key: &Option<String>,
                    file: &Option<PathBuf>,
                    role_alg: &Option<String>|
     -> anyhow::Result<Option<JwtKey>> {
        let key = read_key(key.as_deref(), file.as_deref())?.or_else(|| shared_key.clone());
        let algorithm = match role_alg {
            Some(a) => parse_alg(a)?,
            None => alg,
        };
        Ok(key.map(|key| JwtKey { algorithm, key }))
    };
    let publisher_key = role_key(
        &args.publisher_jwt_key,
        &args.publisher_jwt_key_file,
        &args.publisher_jwt_alg,
    )?;
    let subscriber_key = role_key(
        &args.subscriber_jwt_key,
        &args.subscriber_jwt_key_file,
        &args.subscriber_jwt_alg,
    )?;

    let heartbeat = match args.heartbeat.as_deref() {
        None => Duration::from_secs(40),
        Some("0") => Duration::ZERO,
        Some(text) => humantime::parse_duration(text)
            .with_context(|| format!("invalid --heartbeat {text:?}: use e.g. 40s, 500ms or 0"))?,
    };
    let defaults = HubConfig::default();
    let config = HubConfig {
        publisher_key,
        subscriber_key,
        anonymous: args.anonymous.unwrap_or(false),
        cors_origins: args.cors_origin.clone().unwrap_or_default(),
        publish_origins: args.publish_origin.clone().unwrap_or_default(),
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
        ui: args.ui != Some(Switch::Off),
        ..defaults
    };

    if config.publisher_key.is_some() || config.subscriber_key.is_some() {
        return Ok((config, None));
    }
    if !listen.ip().is_loopback() {
        bail!(
            "no JWT key configured: set --jwt-key (or HERALD_JWT_KEY, or jwt-key in --config). \
             Without a key the hub only runs in development mode, which listens on loopback addresses only."
        );
    }
    Ok((config, Some(dev_mode()?)))
}

fn read_key(key: Option<&str>, file: Option<&Path>) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(key) = key {
        if key.is_empty() {
            bail!("the JWT key is empty");
        }
        return Ok(Some(key.as_bytes().to_vec()));
    }
    match file {
        Some(path) => {
            let bytes = std::fs::read(path)
                .with_context(|| format!("cannot read the JWT key file {}", path.display()))?;
            Ok(Some(bytes))
        }
        None => Ok(None),
    }
}
