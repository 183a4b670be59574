//! `herald token`: mints a token for the hub, in either revision's form.
//!
//! Publishers need a token that allows every topic they publish to;
//! subscribers need one to receive private updates. A draft-07 token
//! carries `mercure.publish` / `mercure.subscribe` selectors and is signed
//! with `herald_hub::auth::mint`; a draft-08 one (`--draft 08`) is an RFC
//! 9068 access token (`typ: at+jwt`) carrying Mercure authorization
//! details, signed with `herald_hub::access_token::mint`: the same crate
//! the hub verifies them with. `herald pub --key` signs its own publisher
//! token through the same functions ([`sign_publisher`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use herald_hub::access_token::{mint as mint_access_token, MERCURE_DETAIL_TYPE};
use herald_hub::auth::{mint, Claims};
use herald_hub::MatchType;
use jsonwebtoken::Algorithm;

const EXAMPLES: &str = "Examples:
  # A publisher token for every topic, valid one hour:
  herald token --key \"$SECRET\" --publish '*'

  # A subscriber token for one book and its reviews, valid a day:
  herald token --key \"$SECRET\" --subscribe 'https://example.com/books/{id}' --exp 24h

  # RS256 with a PEM private key, for one user, with a payload:
  herald token --alg RS256 --key-file private.pem --subscribe '*' --subject user-42 --payload '{\"user\":42}'

  # A draft-08 access token for a hub started with
  # --issuer https://app.example=secret:$SECRET --access-token-alg HS256:
  herald token --draft 08 --key \"$SECRET\" --issuer https://app.example \\
    --audience http://localhost:8080/.well-known/mercure \\
    --subscribe 'https://example.com/books/:id' --match-type urlpattern

  # A publisher access token signed with the issuer's ES256 private key, for
  # a hub started with --issuer https://app.example=issuer-public.pem (or
  # the issuer's JWKS URL):
  herald token --draft 08 --alg ES256 --key-file issuer-private.pem --kid key-1 \\
    --issuer https://app.example --audience https://hub.example.com/.well-known/mercure \\
    --publish '*'

  # Use it:
  herald pub --hub http://localhost:8080 --topic news --data hi --token \"$(herald token --publish '*')\"

The key may also come from HERALD_JWT_KEY.";

/// Options of `herald token`.
#[derive(Debug, clap::Args)]
#[command(after_help = EXAMPLES)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    signing: SigningKeyArgs,
    /// Topic selectors the token may publish to (`mercure.publish`; with
    /// --draft 08, the topics of the publish authorization detail, of
    /// --match-type); repeat or list several.
    #[arg(long, value_name = "SELECTOR", num_args = 1..)]
    publish: Vec<String>,
    /// Topic selectors unlocking private updates (`mercure.subscribe`;
    /// with --draft 08, the topics of the subscribe authorization detail,
    /// of --match-type); repeat or list several.
    #[arg(long, value_name = "SELECTOR", num_args = 1..)]
    subscribe: Vec<String>,
    /// Lifetime: e.g. 30m, 1h, 7d; `none` for a token that never expires.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    exp: String,
    /// JSON attached to the subscription (`mercure.payload`; with --draft
    /// 08, the `payload` of the subscribe authorization detail).
    #[arg(long, value_name = "JSON")]
    payload: Option<String>,
    #[command(flatten)]
    access: AccessTokenArgs,
}

/// The token format: which Mercure revision it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Draft {
    /// A JWT with the `mercure` claim (Mercure 0.x, draft-07).
    #[value(name = "07")]
    Draft07,
    /// An RFC 9068 access token (`typ: at+jwt`) with Mercure
    /// authorization details (Mercure 1.0, draft-08).
    #[value(name = "08")]
    Draft08,
}

/// What only a draft-08 access token has. Shared by `herald token` and
/// `herald pub`.
#[derive(Debug, clap::Args)]
pub(crate) struct AccessTokenArgs {
    /// Token format: 07 (a `mercure` claim) or 08 (an access token with
    /// authorization details, for a hub started with --issuer).
    #[arg(long, value_name = "07|08", default_value = "07")]
    draft: Draft,
    /// --draft 08: the issuer (`iss`), as the hub's --issuer names it.
    #[arg(long, value_name = "ISSUER")]
    issuer: Option<String>,
    /// --draft 08: the hub's resource identifier (`aud`): its URL, e.g.
    /// https://hub.example.com/.well-known/mercure [herald pub: default,
    /// the endpoint it publishes to].
    #[arg(long, value_name = "URI")]
    audience: Option<String>,
    /// The subject (`sub`): who the token is for. The hub counts a
    /// client's event streams by it (--max-streams-per-client), so give
    /// each user their own [default: none; `herald-cli` with --draft 08,
    /// where it is required].
    #[arg(long, value_name = "SUBJECT")]
    subject: Option<String>,
    /// --draft 08: the `kid` header, naming the key among the issuer's.
    #[arg(long, value_name = "KID")]
    kid: Option<String>,
    /// --draft 08: the type of the token's topic matchers (herald token's
    /// --publish and --subscribe, herald pub's --topic): exact or
    /// urlpattern (`*` matches every topic either way) [default: exact].
    #[arg(long, value_name = "TYPE")]
    match_type: Option<String>,
}

/// The key a token is signed with, shared by `herald token` and `herald pub`.
#[derive(Debug, clap::Args)]
pub(crate) struct SigningKeyArgs {
    /// Signing key: the shared secret for HS256/384/512, or a PEM private key
    /// for RS*/PS*/ES*/EdDSA (better given with --key-file). For --draft
    /// 08, the issuer's key, not the hub's.
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
    /// PS384, PS512, ES256, ES384; with --draft 08, EdDSA too (an Ed25519
    /// PEM private key). A hub accepts EdDSA, ES256 and RS256 access tokens
    /// unless its --access-token-alg says otherwise.
    #[arg(long, value_name = "ALG", default_value = "HS256")]
    alg: String,
}

impl SigningKeyArgs {
    /// Whether a key was given at all (flag, file or environment).
    pub(crate) fn is_given(&self) -> bool {
        self.key.is_some() || self.key_file.is_some()
    }

    /// Whether a key was given on the command line (`--key-file`, or a
    /// `--key` other than `HERALD_JWT_KEY`'s value): `herald pub` lets
    /// `--token` win over a key in the environment, not over a flag.
    pub(crate) fn is_given_as_flag(&self) -> bool {
        let from_env = std::env::var("HERALD_JWT_KEY").ok();
        self.key_file.is_some() || (self.key.is_some() && self.key != from_env)
    }

    /// The algorithm and the key bytes of a draft-07 token.
    pub(crate) fn load(&self) -> anyhow::Result<(Algorithm, Vec<u8>)> {
        if self.alg.eq_ignore_ascii_case("eddsa") {
            bail!("EdDSA signs draft-08 access tokens only: add --draft 08, or use HS256, RS256 or ES256 for a draft-07 token");
        }
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
    if args.access.draft == Draft::Draft08 {
        let token = access_token(
            &args.signing,
            &args.access,
            None,
            &args.publish,
            &args.subscribe,
            &args.exp,
            args.payload.as_deref(),
        )?;
        println!("{token}");
        return Ok(ExitCode::SUCCESS);
    }
    args.access.refuse_without_draft08()?;
    let (alg, key) = args.signing.load()?;
    let mut claims = claims(
        &args.publish,
        &args.subscribe,
        &args.exp,
        args.payload.as_deref(),
    )?;
    claims.sub = args.access.subject.clone();
    println!("{}", mint_with(alg, &key, &claims)?);
    Ok(ExitCode::SUCCESS)
}

/// Signs a draft-07 token with these claims. Shared with `herald pub`,
/// `herald bench` and development mode.
pub(crate) fn sign(
    alg: Algorithm,
    key: &[u8],
    publish: &[String],
    subscribe: &[String],
    exp: &str,
    payload: Option<&str>,
) -> anyhow::Result<String> {
    mint_with(alg, key, &claims(publish, subscribe, exp, payload)?)
}

impl AccessTokenArgs {
    /// Refuses the access-token options without `--draft 08`.
    fn refuse_without_draft08(&self) -> anyhow::Result<()> {
        let given = self.access_only_flags();
        if !given.is_empty() {
            bail!(
                "{} for draft-08 access tokens: add --draft 08",
                flags_are(&given)
            );
        }
        Ok(())
    }

    /// The options given that only an access token has.
    fn access_only_flags(&self) -> Vec<&'static str> {
        [
            ("--issuer", self.issuer.is_some()),
            ("--audience", self.audience.is_some()),
            ("--kid", self.kid.is_some()),
            ("--match-type", self.match_type.is_some()),
        ]
        .into_iter()
        .filter_map(|(flag, given)| given.then_some(flag))
        .collect()
    }

    /// The options given that shape a token `herald pub` signs (`--draft
    /// 08` included): with `--token` they would have nothing to shape.
    pub(crate) fn signing_flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if self.draft == Draft::Draft08 {
            flags.push("--draft 08");
        }
        flags.extend(self.access_only_flags());
        if self.subject.is_some() {
            flags.push("--subject");
        }
        flags
    }

    /// Whether the token is to be a draft-08 access token.
    pub(crate) fn is_draft08(&self) -> bool {
        self.draft == Draft::Draft08
    }
}

/// `herald pub --key`: a token that may publish to `topics` for five
/// minutes, draft-07 or (`--draft 08`) an access token whose audience is
/// `endpoint` unless `--audience` says otherwise.
pub(crate) fn sign_publisher(
    signing: &SigningKeyArgs,
    access: &AccessTokenArgs,
    endpoint: &str,
    topics: &[String],
) -> anyhow::Result<String> {
    if access.draft == Draft::Draft08 {
        return access_token(signing, access, Some(endpoint), topics, &[], "5m", None);
    }
    access.refuse_without_draft08()?;
    let (alg, key) = signing.load()?;
    let mut claims = claims(topics, &[], "5m", None)?;
    claims.sub = access.subject.clone();
    mint_with(alg, &key, &claims)
}

/// `--a is`, `--a and --b are`, `--a, --b and --c are`: the start of a
/// message about the options given.
pub(crate) fn flags_are(flags: &[&str]) -> String {
    match flags {
        [] => String::new(),
        [one] => format!("{one} is"),
        [first @ .., last] => format!("{} and {last} are", first.join(", ")),
    }
}

/// The claims of a draft-07 token, without a subject.
fn claims(
    publish: &[String],
    subscribe: &[String],
    exp: &str,
    payload: Option<&str>,
) -> anyhow::Result<Claims> {
    let payload = payload
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .context("--payload is not valid JSON (example: --payload '{\"user\":42}')")?;
    Ok(Claims {
        publish: (!publish.is_empty()).then(|| publish.to_vec()),
        subscribe: (!subscribe.is_empty()).then(|| subscribe.to_vec()),
        payload,
        exp: expiry(exp)?,
        sub: None,
    })
}

/// Signs `claims`, with a hint when the key cannot sign for `alg`.
fn mint_with(alg: Algorithm, key: &[u8], claims: &Claims) -> anyhow::Result<String> {
    let token = mint(alg, key, claims).map_err(|e| {
        let hint = if matches!(alg, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512) {
            ""
        } else {
            " (RS*, PS* and ES* need a PEM private key: pass it with --key-file)"
        };
        anyhow::anyhow!("cannot sign the token: {e}{hint}")
    })?;
    Ok(token)
}

/// An RFC 9068 access token: `iss`, `aud` (`--audience`, else
/// `default_audience`), `sub`, `client_id`, `iat`, `exp`, `jti`, and one
/// authorization detail per action given.
fn access_token(
    signing: &SigningKeyArgs,
    access: &AccessTokenArgs,
    default_audience: Option<&str>,
    publish: &[String],
    subscribe: &[String],
    exp: &str,
    payload: Option<&str>,
) -> anyhow::Result<String> {
    let alg = if signing.alg.eq_ignore_ascii_case("eddsa") {
        Algorithm::EdDSA
    } else {
        parse_alg(&signing.alg)?
    };
    let key = read_key(
        signing.key.as_deref(),
        signing.key_file.as_deref(),
        "--key (or HERALD_JWT_KEY)",
    )?
    .context("no signing key: pass --key SECRET, --key-file FILE or set HERALD_JWT_KEY")?;
    let issuer = access
        .issuer
        .as_deref()
        .context("--draft 08 needs --issuer (the iss the hub trusts)")?;
    let audience = access
        .audience
        .as_deref()
        .or(default_audience)
        .context("--draft 08 needs --audience (the hub's resource identifier, its URL)")?;
    let match_type = access.match_type.as_deref().unwrap_or("exact");
    let match_type = MatchType::from_name(match_type)
        .with_context(|| format!("invalid --match-type {match_type:?}: use exact or urlpattern"))?;
    let exp = expiry(exp)?.context("an access token must expire (--exp none is for --draft 07)")?;
    let payload = payload
        .map(serde_json::from_str::<serde_json::Value>)
        .transpose()
        .context("--payload is not valid JSON (example: --payload '{\"user\":42}')")?;
    if payload.as_ref().is_some_and(|p| !p.is_object()) {
        bail!("--payload must be a JSON object for --draft 08");
    }
    if payload.is_some() && subscribe.is_empty() {
        bail!(
            "--payload goes in the subscribe authorization detail with --draft 08: add --subscribe"
        );
    }
    let detail = |action: &str, patterns: &[String], payload: Option<&serde_json::Value>| {
        let topics: Vec<serde_json::Value> = patterns
            .iter()
            .map(|p| serde_json::json!({"match": p, "match_type": match_type.name()}))
            .collect();
        let mut detail = serde_json::json!({
            "type": MERCURE_DETAIL_TYPE,
            "actions": [action],
            "topics": topics,
        });
        if let Some(payload) = payload {
            detail["payload"] = payload.clone();
        }
        detail
    };
    let mut details = Vec::new();
    if !publish.is_empty() {
        details.push(detail("publish", publish, None));
    }
    if !subscribe.is_empty() {
        details.push(detail("subscribe", subscribe, payload.as_ref()));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = serde_json::json!({
        "iss": issuer,
        "aud": audience,
        "sub": access.subject.as_deref().unwrap_or("herald-cli"),
        "client_id": "herald-cli",
        "iat": now,
        "exp": exp,
        "jti": uuid::Uuid::new_v4().urn().to_string(),
        "authorization_details": details,
    });
    let claims = claims.as_object().cloned().unwrap_or_default();
    mint_access_token(alg, &key, access.kid.as_deref(), &claims)
        .map_err(|e| anyhow::anyhow!("cannot sign the token: {e}"))
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
    fn flags_are_listed_in_a_sentence() {
        assert_eq!(flags_are(&["--kid"]), "--kid is");
        assert_eq!(flags_are(&["--kid", "--issuer"]), "--kid and --issuer are");
        assert_eq!(
            flags_are(&["--draft 08", "--kid", "--issuer"]),
            "--draft 08, --kid and --issuer are"
        );
    }

    #[test]
    fn algorithms_parse_case_insensitively() {
        assert_eq!(parse_alg("hs256").unwrap(), Algorithm::HS256);
        assert_eq!(parse_alg("ES256").unwrap(), Algorithm::ES256);
        assert!(parse_alg("none").is_err());
    }
}
