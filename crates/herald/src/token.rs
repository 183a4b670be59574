//! `herald token`: mints a JWT for the hub.
//!
//! Publishers need a token whose `mercure.publish` selectors match every
//! topic they publish to; subscribers need `mercure.subscribe` selectors to
//! receive private updates. This command signs one with
//! `herald_hub::auth::mint`, the same code the hub verifies with.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use herald_hub::auth::{mint, Claims};
use jsonwebtoken::Algorithm;

const EXAMPLES: &str = "Examples:
  # A publisher token for every topic, valid one hour:
  herald token --key \"$SECRET\" --publish '*'

  # A subscriber token for one book and its reviews, valid a day:
  herald token --key \"$SECRET\" --subscribe 'https://example.com/books/{id}' --exp 24h

  # RS256 with a PEM private key, with a payload:
  herald token --alg RS256 --key-file private.pem --subscribe '*' --payload '{\"user\":42}'

  # Use it:
  herald pub --hub http://localhost:8080 --topic news --data hi --token \"$(herald token --publish '*')\"

The key may also come from HERALD_JWT_KEY.";

/// Options of `herald token`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    signing: SigningKeyArgs,
    /// Topic selectors the token may publish to (`mercure.publish`);
    /// repeat or list several.
    #[arg(long, value_name = "SELECTOR", num_args = 1..)]
    publish: Vec<String>,
    /// Topic selectors unlocking private updates (`mercure.subscribe`);
    /// repeat or list several.
    #[arg(long, value_name = "SELECTOR", num_args = 1..)]
    subscribe: Vec<String>,
    /// Lifetime: e.g. 30m, 1h, 7d; `none` for a token that never expires.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    exp: String,
    /// JSON attached to the subscription (`mercure.payload`).
    #[arg(long, value_name = "JSON")]
    payload: Option<String>,
}

/// The key a token is signed with, shared by `herald token` and `herald pub`.
#[derive(Debug, clap::Args)]
pub(crate) struct SigningKeyArgs {
    /// Signing key: the shared secret for HS256/384/512, or a PEM private key
    /// for RS*/PS*/ES* (better given with --key-file).
    #[arg(
        long,
        env = "HERALD_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    key: Option<String>,
    /// File holding the signing key (e.g. a PEM private key). Wins over --key.
    #[arg(long, value_name = "FILE")]
    key_file: Option<PathBuf>,
    /// Signing algorithm: HS256, HS384, HS512, RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384.
    #[arg(long, value_name = "ALG", default_value = "HS256")]
    alg: String,
}

impl SigningKeyArgs {
    /// Whether a key was given at all (flag, file or environment).
    pub(crate) fn is_given(&self) -> bool {
        self.key.is_some() || self.key_file.is_some()
    }

    /// The algorithm and the key bytes.
    pub(crate) fn load(&self) -> anyhow::Result<(Algorithm, Vec<u8>)> {
        let alg = parse_alg(&self.alg)?;
        let key = read_key(
            self.key.as_deref(),
            self.key_file.as_deref(),
            "--key (or HERALD_JWT_KEY)",
        )?
        .context("no signing key: pass --key SECRET, --key-file FILE or set HERALD_JWT_KEY")?;
        Ok((alg, key))
    }
}

/// Runs `herald token`: prints the token on stdout.
pub(crate) fn run(args: TokenArgs) -> anyhow::Result<ExitCode> {
    let (alg, key) = args.signing.load()?;
    let token = sign(
        alg,
        &key,
        &args.publish,
        &args.subscribe,
        &args.exp,
        args.payload.as_deref(),
    )?;
    println!("{token}");
    Ok(ExitCode::SUCCESS)
}

/// Signs a token with these claims. Shared with `herald pub --key`.
pub(crate) fn sign(
    alg: Algorithm,
    key: &[u8],
    publish: &[String],
    subscribe: &[String],
    exp: &str,
    payload: Option<&str>,
) -> anyhow::Result<String> {
    let payload = payload
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .context("--payload is not valid JSON (example: --payload '{\"user\":42}')")?;
    let claims = Claims {
        publish: (!publish.is_empty()).then(|| publish.to_vec()),
        subscribe: (!subscribe.is_empty()).then(|| subscribe.to_vec()),
        payload,
        exp: expiry(exp)?,
    };
    let token = mint(alg, key, &claims).map_err(|e| {
        let hint = if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            ""
        } else {
            " (RS*, PS* and ES* need a PEM private key: pass it with --key-file)"
        };
        anyhow::anyhow!("cannot sign the token: {e}{hint}")
    })?;
    Ok(token)
}

/// A JWT key given inline or in a file (the file wins when both are
/// given); `None` when neither is. An empty key or key file is an error;
/// `flag` names the inline key in that message. Shared by `herald token`
/// and `herald pub` (signing) and `herald serve` (verifying).
pub(crate) fn read_key(
    key: Option<&str>,
    file: Option<&Path>,
    flag: &str,
) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(path) = file {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the key file {}", path.display()))?;
        if bytes.is_empty() {
            bail!("the key file {} is empty", path.display());
        }
        return Ok(Some(bytes));
    }
    match key {
        Some("") => bail!("the key given with {flag} is empty"),
        Some(key) => Ok(Some(key.as_bytes().to_vec())),
        None => Ok(None),
    }
}

/// Parses an algorithm name, case-insensitively.
pub(crate) fn parse_alg(name: &str) -> anyhow::Result<Algorithm> {
    let alg: Algorithm = name.to_ascii_uppercase().parse().map_err(|_| {
        anyhow::anyhow!(
            "unknown algorithm {name:?}: use HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384"
        )
    })?;
    if alg == Algorithm::EdDSA {
        bail!("EdDSA is not supported: use HS256, RS256 or ES256");
    }
    Ok(alg)
}

/// `exp` for a lifetime such as `1h`, or `None` for `none`.
fn expiry(lifetime: &str) -> anyhow::Result<Option<u64>> {
    if lifetime.eq_ignore_ascii_case("none") || lifetime.eq_ignore_ascii_case("never") {
        return Ok(None);
    }
    let lifetime: Duration = humantime::parse_duration(lifetime)
        .with_context(|| format!("invalid --exp {lifetime:?}: use e.g. 30m, 1h, 7d or none"))?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Ok(Some(now.saturating_add(lifetime).as_secs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_is_now_plus_the_lifetime() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let exp = expiry("1h").unwrap().unwrap();
        assert!(exp >= now + 3600 && exp <= now + 3602);
        assert_eq!(expiry("none").unwrap(), None);
        assert!(expiry("soon").is_err());
    }

    #[test]
    fn keys_come_from_the_file_or_inline_and_are_never_empty() {
        let dir = std::env::temp_dir().join(format!("herald-read-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("key");
        let empty = dir.join("empty");
        std::fs::write(&file, "from-file").unwrap();
        std::fs::write(&empty, "").unwrap();

        assert_eq!(read_key(None, None, "--key").unwrap(), None);
        assert_eq!(
            read_key(Some("inline"), None, "--key").unwrap().unwrap(),
            b"inline"
        );
        assert_eq!(
            read_key(Some("inline"), Some(&file), "--key")
                .unwrap()
                .unwrap(),
            b"from-file"
        );
        let err = read_key(Some(""), None, "--jwt-key").unwrap_err();
        assert!(err.to_string().contains("--jwt-key is empty"), "{err}");
        let err = read_key(None, Some(&empty), "--key").unwrap_err();
        assert!(err.to_string().contains("is empty"), "{err}");
        let err = read_key(None, Some(&dir.join("missing")), "--key").unwrap_err();
        assert!(
            err.to_string().contains("cannot read the key file"),
            "{err}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn algorithms_parse_case_insensitively() {
        assert_eq!(parse_alg("hs256").unwrap(), Algorithm::HS256);
        assert_eq!(parse_alg("ES256").unwrap(), Algorithm::ES256);
        assert!(parse_alg("none").is_err());
    }
}
