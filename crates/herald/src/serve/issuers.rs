//! `--issuer`, `--access-token-alg` and `--resource`: the trusted issuers
//! of draft-08 access tokens and their keys.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context};
use herald_hub::access_token::{AccessTokenConfig, IssuerConfig, KeySource};
use jsonwebtoken::Algorithm;

use super::args::ServeArgs;

/// The access-token configuration the options ask for, `None` without
/// `--issuer`. `resource` is the default resource identifier (the hub URL).
pub(super) fn access_tokens(
    args: &ServeArgs,
    resource: &str,
) -> anyhow::Result<Option<AccessTokenConfig>> {
    let specs = args.issuer.as_deref().unwrap_or_default();
    if specs.is_empty() {
        if args.access_token_alg.is_some() || args.resource.is_some() {
            bail!("--access-token-alg and --resource configure access tokens: give the issuers too (--issuer ISSUER=KEYS)");
        }
        return Ok(None);
    }
    // One issuer may be given several times, once per key source.
    let mut issuers: BTreeMap<String, Vec<KeySource>> = BTreeMap::new();
    for spec in specs {
        let (issuer, keys) = spec
            .split_once('=')
            .filter(|(issuer, keys)| !issuer.trim().is_empty() && !keys.trim().is_empty())
            .with_context(|| format!("invalid --issuer {spec:?}: use ISSUER=KEYS, e.g. https://auth.example=https://auth.example/jwks.json"))?;
        issuers
            .entry(issuer.trim().to_owned())
            .or_default()
            .push(key_source(keys.trim())?);
    }
    let mut config = AccessTokenConfig::new(
        args.resource.clone().unwrap_or_else(|| resource.to_owned()),
        issuers
            .into_iter()
            .map(|(issuer, keys)| IssuerConfig { issuer, keys })
            .collect(),
    );
    if let Some(algs) = &args.access_token_alg {
        config.algorithms = algs
            .iter()
            .map(|a| {
                a.trim().parse::<Algorithm>().map_err(|_| {
                    anyhow::anyhow!("invalid --access-token-alg {a:?}: use EdDSA, ES256, ES384, RS256, RS384, RS512, PS256, PS384, PS512, HS256, HS384 or HS512")
                })
            })
            .collect::<anyhow::Result<_>>()?;
    }
    Ok(Some(config))
}

/// `https://…` or `http://…`: a JWKS URL; `secret:VALUE` or
/// `secret-file:PATH`: an HMAC secret; any other value: a file, a JWKS
/// document when it holds JSON, else a PEM public key.
fn key_source(keys: &str) -> anyhow::Result<KeySource> {
    if keys.starts_with("https://") || keys.starts_with("http://") {
        return Ok(KeySource::JwksUrl(keys.to_owned()));
    }
    if let Some(secret) = keys.strip_prefix("secret:") {
        return Ok(KeySource::Secret(secret.as_bytes().to_vec()));
    }
    if let Some(path) = keys.strip_prefix("secret-file:") {
        let secret =
            std::fs::read(path).with_context(|| format!("cannot read the secret file {path}"))?;
        return Ok(KeySource::Secret(secret.trim_ascii().to_vec()));
    }
    let path = PathBuf::from(keys);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read the issuer's key file {}", path.display()))?;
    Ok(if text.trim_start().starts_with('{') {
        KeySource::JwksFile(path)
    } else {
        KeySource::PemFile(path)
    })
}
