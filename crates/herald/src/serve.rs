//! `herald serve`: runs the hub.
//!
//! Options come from flags, `HERALD_*` environment variables and an
//! optional TOML file, in that order of precedence; every option has a
//! default that gives a working hub. With no JWT key on a loopback address
//! the hub starts in development mode: it makes a key for the run, prints a
//! publisher token and examples, and admits anonymous subscribers.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use herald_hub::auth::{mint, Claims};
use herald_hub::history::redb::{Durability, RedbOptions, Retention};
use herald_hub::history::{History, MemoryHistory, RedbHistory};
use herald_hub::protocol::ProtocolLimits;
use herald_hub::server::{Server, TlsConfig, DEFAULT_H2_MAX_STREAMS};
use herald_hub::{Hub, HubConfig, JwtKey, HUB_PATH};
use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Options of `herald serve`. Each is also read from the environment
/// variable named in its help, and from the `--config` file under the
/// flag's name (e.g. `jwt-key = "..."`).
#[derive(Debug, Default, clap::Args, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
#[command(after_help = SERVE_EXAMPLES)]
pub(crate) struct ServeArgs {
    /// TOML file with any of these options, by long flag name.
    #[arg(long, env = "HERALD_CONFIG", value_name = "FILE")]
    #[serde(skip)]
    config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HERALD_LISTEN", value_name = "ADDR")]
    listen: Option<SocketAddr>,

    /// JWT key for publishers and subscribers: the secret for HS*, a PEM
    /// public key for RS*/ES*.
    #[arg(
        long,
        env = "HERALD_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    jwt_key: Option<String>,
    /// File holding the JWT key (e.g. a PEM public key).
    #[arg(
        long,
        env = "HERALD_JWT_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "jwt_key"
    )]
    jwt_key_file: Option<PathBuf>,
    /// JWT algorithm: HS256, HS384, HS512, RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384 [default: HS256].
    #[arg(long, env = "HERALD_JWT_ALG", value_name = "ALG")]
    jwt_alg: Option<String>,

    /// Publishers' key, when it differs from --jwt-key.
    #[arg(
        long,
        env = "HERALD_PUBLISHER_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    publisher_jwt_key: Option<String>,
    /// File holding the publishers' key.
    #[arg(
        long,
        env = "HERALD_PUBLISHER_JWT_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "publisher_jwt_key"
    )]
    publisher_jwt_key_file: Option<PathBuf>,
    /// Publishers' algorithm [default: --jwt-alg].
    #[arg(long, env = "HERALD_PUBLISHER_JWT_ALG", value_name = "ALG")]
    publisher_jwt_alg: Option<String>,

    /// Subscribers' key, when it differs from --jwt-key.
    #[arg(
        long,
        env = "HERALD_SUBSCRIBER_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    subscriber_jwt_key: Option<String>,
    /// File holding the subscribers' key.
    #[arg(
        long,
        env = "HERALD_SUBSCRIBER_JWT_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "subscriber_jwt_key"
    )]
    subscriber_jwt_key_file: Option<PathBuf>,
    /// Subscribers' algorithm [default: --jwt-alg].
    #[arg(long, env = "HERALD_SUBSCRIBER_JWT_ALG", value_name = "ALG")]
    subscriber_jwt_alg: Option<String>,

    /// Let subscribers without a token receive public updates
    /// [default: false; true in development mode].
    #[arg(long, env = "HERALD_ANONYMOUS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    anonymous: Option<bool>,

    /// Origin allowed to subscribe and publish from a browser on another
    /// origin, with cookies; repeat or separate with commas; `*` for any
    /// [default: none; `*` in development mode].
    #[arg(
        long = "cors-origin",
        env = "HERALD_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    cors_origin: Option<Vec<String>>,

    /// Origin allowed to publish with the mercureAuthorization cookie (the
    /// CSRF guard); repeat or separate with commas [default: none].
    #[arg(
        long = "publish-origin",
        env = "HERALD_PUBLISH_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    publish_origin: Option<Vec<String>>,

    /// Interval between heartbeat comments on idle streams, e.g. 40s or
    /// 500ms; 0 disables them [default: 40s].
    #[arg(long, env = "HERALD_HEARTBEAT", value_name = "DURATION")]
    heartbeat: Option<String>,

    /// Where history is kept: `redb` (durable, in --data-dir) or `memory`
    /// (lost on restart) [default: redb].
    #[arg(long, env = "HERALD_HISTORY", value_name = "BACKEND")]
    history: Option<HistoryBackend>,
    /// Directory of the durable history [default: ./herald-data].
    #[arg(long, env = "HERALD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Most events kept in history for replay [default: 100000].
    #[arg(long, env = "HERALD_HISTORY_SIZE", value_name = "EVENTS")]
    history_size: Option<u64>,
    /// Oldest event kept in history, e.g. 24h or 30m (redb only)
    /// [default: no age limit].
    #[arg(long, env = "HERALD_HISTORY_MAX_AGE", value_name = "DURATION")]
    history_max_age: Option<String>,
    /// Most bytes of events kept in history, e.g. 512MiB or 2GiB
    /// [default: 1GiB].
    #[arg(long, env = "HERALD_HISTORY_MAX_BYTES", value_name = "SIZE")]
    history_max_bytes: Option<String>,
    /// When a publish is acknowledged (redb only): `full` fsyncs before
    /// every 200; `periodic` fsyncs every 200 ms, faster, but a crash can
    /// lose the last 200 ms of acknowledged events [default: full].
    #[arg(long, env = "HERALD_DURABILITY", value_name = "MODE")]
    durability: Option<DurabilityMode>,

    /// Largest publish body, in bytes [default: 1048576].
    #[arg(long, env = "HERALD_MAX_BODY", value_name = "BYTES")]
    max_body: Option<usize>,
    /// Most topics in one publish [default: 1000].
    #[arg(long, env = "HERALD_MAX_TOPICS", value_name = "N")]
    max_topics: Option<usize>,
    /// Most selectors in one subscription [default: 100].
    #[arg(long, env = "HERALD_MAX_SELECTORS", value_name = "N")]
    max_selectors: Option<usize>,
    /// Longest topic or selector, in characters [default: 4096].
    #[arg(long, env = "HERALD_MAX_SELECTOR_LENGTH", value_name = "CHARS")]
    max_selector_length: Option<usize>,
    /// Events a subscriber may have waiting before it is closed as slow
    /// (it then resumes from history) [default: 1024].
    #[arg(long, env = "HERALD_QUEUE_SIZE", value_name = "EVENTS")]
    queue_size: Option<usize>,

    /// Serve the web UI at / and its live stats stream: on or off
    /// [default: on].
    #[arg(long, env = "HERALD_UI", value_name = "on|off")]
    ui: Option<Switch>,
    /// PEM certificate chain for HTTPS (leaf first); needs --tls-key.
    /// HTTP/1.1 and HTTP/2 (ALPN h2) are then served on --listen.
    #[arg(long, env = "HERALD_TLS_CERT", value_name = "FILE")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HERALD_TLS_KEY", value_name = "FILE")]
    tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate generated at start, for development
    /// (browsers warn about it; its fingerprint is printed).
    #[arg(long, env = "HERALD_TLS_SELF_SIGNED", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    tls_self_signed: Option<bool>,
    /// Most concurrent HTTP/2 streams (event streams) on one connection
    /// [default: 256].
    #[arg(long, env = "HERALD_H2_MAX_STREAMS", value_name = "N")]
    h2_max_streams: Option<u32>,

    /// Log filter, e.g. `info`, `debug` (per request), or
    /// `herald_hub=debug,warn` [default: info].
    #[arg(long, env = "HERALD_LOG", value_name = "FILTER")]
    log: Option<String>,
}

/// A feature switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Where history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum HistoryBackend {
    /// Durable, in a redb file under --data-dir.
    Redb,
    /// In memory, lost on restart.
    Memory,
}

/// When a publish to the durable history is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
enum DurabilityMode {
    /// fsync before every 200.
    Full,
    /// fsync every 200 ms.
    Periodic,
}

const DEFAULT_HISTORY_SIZE: u64 = 100_000;
const DEFAULT_HISTORY_MAX_BYTES: u64 = 1 << 30;

const SERVE_EXAMPLES: &str = "\
Examples:
  # A development hub on 127.0.0.1:8080: prints a token and examples
  herald serve

  # Production: a shared secret, anonymous subscribers, one browser origin
  HERALD_JWT_KEY=$(cat secret) herald serve --listen 0.0.0.0:8080 \\
      --anonymous --cors-origin https://app.example.com

  # Options from a file (keys are the long flag names)
  herald serve --config herald.toml";

impl ServeArgs {
    /// Fills every option not given on the command line or in the
    /// environment from the config file.
    fn merge_file(self) -> anyhow::Result<ServeArgs> {
        let Some(path) = self.config.clone() else {
            return Ok(self);
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the config file {}", path.display()))?;
        let file: toml::Table = toml::from_str(&text)
            .with_context(|| format!("invalid config file {}", path.display()))?;
        // Flags and environment variables win over the file: lay what was
        // given on top of the file's table (unset options serialize to
        // nothing), then read the result back, which also rejects unknown
        // keys in the file.
        let given = toml::Table::try_from(&self).context("cannot merge the options")?;
        let mut merged = file;
        merged.extend(given);
        let mut args: ServeArgs = merged
            .try_into()
            .with_context(|| format!("invalid config file {}", path.display()))?;
        args.config = Some(path);
        Ok(args)
    }
}

/// Runs the hub until SIGINT or SIGTERM.
pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let args = args.merge_file()?;
    init_logging(args.log.as_deref().unwrap_or("info"))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(args))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid --log filter {filter:?}"))?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = match args.listen {
        Some(addr) => addr,
        None => DEFAULT_LISTEN.parse()?,
    };
    let (mut config, dev) = hub_config(&args, listen)?;
    if let Some(dev) = &dev {
        config.anonymous = args.anonymous.unwrap_or(true);
        if args.cors_origin.is_none() {
            config.cors_origins = vec!["*".into()];
        }
        config.publisher_key = Some(dev.key.clone());
        config.subscriber_key = Some(dev.key.clone());
    }
    let history = open_history(&args)?;
    let tls = tls_config(&args, listen)?;
    let hub = Hub::with_history(config, history).context("cannot start the hub")?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (is another process using it? choose another with --listen)"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    match &dev {
        Some(dev) => print_dev_banner(scheme, local, dev, hub.config().ui),
        None => tracing::info!("Herald hub listening on {scheme}://{local}{HUB_PATH}"),
    }
    if let Some(tls) = tls.as_ref().filter(|_| args.tls_self_signed == Some(true)) {
        tracing::info!(
            fingerprint = %tls.fingerprint(),
            "serving HTTPS with a self-signed certificate made for this run (development only)"
        );
        if dev.is_some() {
            println!(
                "Self-signed certificate (SHA-256 {}): browsers warn once; use curl -k.\n",
                tls.fingerprint()
            );
        }
    }

    let stop = {
        let hub = hub.clone();
        async move {
            shutdown_signal().await;
            tracing::info!("shutting down: closing streams, finishing in-flight publishes");
            hub.shutdown();
        }
    };
    let mut server = Server::new(&hub)
        .h2_max_concurrent_streams(args.h2_max_streams.unwrap_or(DEFAULT_H2_MAX_STREAMS));
    if let Some(tls) = &tls {
        server = server.tls(tls).context("cannot serve HTTPS")?;
    }
    server
        .serve(listener, stop)
        .await
        .context("the server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// The TLS certificate the options ask for, if any.
fn tls_config(args: &ServeArgs, listen: SocketAddr) -> anyhow::Result<Option<TlsConfig>> {
    let self_signed = args.tls_self_signed == Some(true);
    match (&args.tls_cert, &args.tls_key) {
        (Some(_), Some(_)) | (None, None) => {}
        _ => bail!("--tls-cert and --tls-key go together: give both, or --tls-self-signed"),
    }
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        if self_signed {
            bail!("--tls-self-signed and --tls-cert exclude each other: choose one");
        }
        return TlsConfig::from_pem_files(cert, key)
            .map(Some)
            .context("cannot load the TLS certificate");
    }
    if !self_signed {
        return Ok(None);
    }
    let mut names = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    TlsConfig::self_signed(&names)
        .map(Some)
        .context("cannot make a self-signed certificate")
}

/// The history backend the options ask for.
fn open_history(args: &ServeArgs) -> anyhow::Result<Arc<dyn History>> {
    let max_events = args.history_size.unwrap_or(DEFAULT_HISTORY_SIZE);
    let max_bytes = match args.history_max_bytes.as_deref() {
        Some(text) => parse_size(text).with_context(|| {
            format!("invalid --history-max-bytes {text:?}: use e.g. 1048576, 512MiB or 2GiB")
        })?,
        None => DEFAULT_HISTORY_MAX_BYTES,
    };
    let max_age = args
        .history_max_age
        .as_deref()
        .map(|text| {
            humantime::parse_duration(text)
                .with_context(|| format!("invalid --history-max-age {text:?}: use e.g. 24h or 30m"))
        })
        .transpose()?;
    match args.history.unwrap_or(HistoryBackend::Redb) {
        HistoryBackend::Memory => {
            if max_age.is_some() {
                bail!("--history-max-age needs the durable history (--history redb)");
            }
            let capacity = usize::try_from(max_events).unwrap_or(usize::MAX);
            Ok(Arc::new(MemoryHistory::with_max_bytes(capacity, max_bytes)))
        }
        HistoryBackend::Redb => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("herald-data"));
            let options = RedbOptions {
                retention: Retention {
                    max_events: Some(max_events),
                    max_age,
                    max_bytes: Some(max_bytes),
                },
                durability: match args.durability.unwrap_or(DurabilityMode::Full) {
                    DurabilityMode::Full => Durability::Full,
                    DurabilityMode::Periodic => Durability::Periodic(Duration::from_millis(200)),
                },
                ..RedbOptions::default()
            };
            let history = RedbHistory::open(&dir, options)?;
            tracing::info!(path = %history.path().display(), events = history.stats().events, "durable history opened");
            Ok(Arc::new(history))
        }
    }
}

/// Parses a byte size: a plain number, or one with a KiB, MiB or GiB suffix.
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().context("expected a number")?;
    let factor: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => bail!("unknown unit {other:?}"),
    };
    n.checked_mul(factor).context("the size is too large")
}

/// Development mode: a key made for this run, and the tokens signed with it.
struct DevMode {
    key: JwtKey,
    publisher_token: String,
    subscriber_token: String,
}

/// The hub configuration from the options; `Some(DevMode)` when no key is
/// configured and the hub listens on loopback only.
fn hub_config(
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

fn dev_mode() -> anyhow::Result<DevMode> {
    let secret: String = rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = JwtKey {
        algorithm: Algorithm::HS256,
        key: secret.into_bytes(),
    };
    let everything = Some(vec!["*".to_string()]);
    let publisher_token = mint(
        key.algorithm,
        &key.key,
        &Claims {
            publish: everything.clone(),
            ..Claims::default()
        },
    )
    .context("cannot sign the development publisher token")?;
    let subscriber_token = mint(
        key.algorithm,
        &key.key,
        &Claims {
            subscribe: everything,
            ..Claims::default()
        },
    )
    .context("cannot sign the development subscriber token")?;
    Ok(DevMode {
        key,
        publisher_token,
        subscriber_token,
    })
}

fn print_dev_banner(scheme: &str, local: SocketAddr, dev: &DevMode, ui: bool) {
    let url = format!("{scheme}://{local}{HUB_PATH}");
    let topic = "https://example.com/hello";
    let secret = String::from_utf8_lossy(&dev.key.key);
    let ui = if ui {
        format!("\nWeb UI at {scheme}://{local}/ : paste the tokens below into its forms.\n")
    } else {
        String::new()
    };
    println!(
        "\
Herald hub running at {url}
{ui}
DEVELOPMENT MODE: no JWT key was configured, so this run made one, admits
anonymous subscribers and allows any CORS origin. Set --jwt-key (or
HERALD_JWT_KEY) for anything else.

  Key (HS256):       {secret}
  Publisher token:   {pub_token}
  Subscriber token:  {sub_token}

Subscribe (in another terminal):
  curl -N '{url}?topic={topic}'

Publish:
  curl -d 'topic={topic}' -d 'data=Hello, Herald' \\
       -H 'Authorization: Bearer {pub_token}' {url}

In a browser console:
  new EventSource('{url}?topic={topic}').onmessage = (e) => console.log(e.lastEventId, e.data)

Stop with Ctrl-C.",
        pub_token = dev.publisher_token,
        sub_token = dev.subscriber_token,
    );
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

fn parse_alg(name: &str) -> anyhow::Result<Algorithm> {
    let alg: Algorithm = name
        .to_ascii_uppercase()
        .parse()
        .map_err(|_| anyhow::anyhow!("unknown JWT algorithm {name:?}: use HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384"))?;
    if alg == Algorithm::EdDSA {
        bail!("the EdDSA algorithm is not supported: use HS256, RS256 or ES256");
    }
    Ok(alg)
}

async fn shutdown_signal() {
    let interrupt = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
