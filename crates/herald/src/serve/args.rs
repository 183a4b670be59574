//! The options of `herald serve`: flags, `HERALD_*` variables, and the
//! TOML file under them.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use serde::{Deserialize, Serialize};

pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Large enough that connection bursts are queued, not dropped (the
/// kernel's usual 128 stalled about one connect in 200 for a second).
pub(super) const DEFAULT_LISTEN_BACKLOG: u32 = 4096;
/// The most a listen backlog can be on Linux (it is kept in 16 bits).
pub(super) const MAX_LISTEN_BACKLOG: u32 = 65_535;

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
    pub(super) config: Option<PathBuf>,

    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, env = "HERALD_LISTEN", value_name = "ADDR")]
    pub(super) listen: Option<SocketAddr>,
    /// Connections the kernel queues for the hub before it accepts them,
    /// 1 to 65535; a burst beyond it waits for the client's SYN retry
    /// (a second or more). The kernel caps it at net.core.somaxconn
    /// [default: 4096].
    #[arg(long, env = "HERALD_LISTEN_BACKLOG", value_name = "N")]
    pub(super) listen_backlog: Option<u32>,

    /// JWT key for publishers and subscribers: the secret for HS*, a PEM
    /// public key for RS*/ES*.
    #[arg(
        long,
        env = "HERALD_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub(super) jwt_key: Option<String>,
    /// File holding the JWT key (e.g. a PEM public key).
    #[arg(
        long,
        env = "HERALD_JWT_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "jwt_key"
    )]
    pub(super) jwt_key_file: Option<PathBuf>,
    /// JWT algorithm: HS256, HS384, HS512, RS256, RS384, RS512, PS256,
    /// PS384, PS512, ES256, ES384 [default: HS256].
    #[arg(long, env = "HERALD_JWT_ALG", value_name = "ALG")]
    pub(super) jwt_alg: Option<String>,

    /// Publishers' key, when it differs from --jwt-key.
    #[arg(
        long,
        env = "HERALD_PUBLISHER_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub(super) publisher_jwt_key: Option<String>,
    /// File holding the publishers' key.
    #[arg(
        long,
        env = "HERALD_PUBLISHER_JWT_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "publisher_jwt_key"
    )]
    pub(super) publisher_jwt_key_file: Option<PathBuf>,
    /// Publishers' algorithm [default: --jwt-alg].
    #[arg(long, env = "HERALD_PUBLISHER_JWT_ALG", value_name = "ALG")]
    pub(super) publisher_jwt_alg: Option<String>,

    /// Subscribers' key, when it differs from --jwt-key.
    #[arg(
        long,
        env = "HERALD_SUBSCRIBER_JWT_KEY",
        value_name = "KEY",
        hide_env_values = true
    )]
    pub(super) subscriber_jwt_key: Option<String>,
    /// File holding the subscribers' key.
    #[arg(
        long,
        env = "HERALD_SUBSCRIBER_JWT_KEY_FILE",
        value_name = "FILE",
        conflicts_with = "subscriber_jwt_key"
    )]
    pub(super) subscriber_jwt_key_file: Option<PathBuf>,
    /// Subscribers' algorithm [default: --jwt-alg].
    #[arg(long, env = "HERALD_SUBSCRIBER_JWT_ALG", value_name = "ALG")]
    pub(super) subscriber_jwt_alg: Option<String>,

    /// Let subscribers without a token receive public updates
    /// [default: false; true in development mode].
    #[arg(long, env = "HERALD_ANONYMOUS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(super) anonymous: Option<bool>,

    /// Mercure revisions to speak: 08 (Mercure 1.0, `match` parameters),
    /// 07 (Mercure 0.x, `topic` parameters) or both, each request answered
    /// in the revision it speaks [default: both].
    #[arg(long, env = "HERALD_PROTOCOL", value_name = "08|07|both")]
    pub(super) protocol: Option<ProtocolRevisions>,

    /// The hub's public URL, e.g. https://hub.example.com/.well-known/mercure:
    /// relative URL patterns and topics are resolved against it, and its
    /// path is reserved for the hub's own events
    /// [default: http(s)://<--listen>/.well-known/mercure].
    #[arg(long, env = "HERALD_HUB_URL", value_name = "URL")]
    pub(super) hub_url: Option<String>,

    /// A trusted issuer of draft-08 access tokens (`at+jwt`) and where its
    /// keys are, as ISSUER=KEYS: KEYS is the issuer's JWKS URL
    /// (https://…), a file (a JWKS document, read again like the URL so
    /// its keys rotate without a restart, or a PEM public key), or
    /// `secret:VALUE` / `secret-file:PATH` for HS256 (which must then be in
    /// --access-token-alg). Repeat for more issuers or more keys.
    #[arg(
        long,
        env = "HERALD_ISSUERS",
        value_name = "ISSUER=KEYS",
        value_delimiter = ','
    )]
    #[serde(default, deserialize_with = "list_or_text")]
    pub(super) issuer: Option<Vec<String>>,

    /// Signature algorithms accepted on access tokens; repeat or separate
    /// with commas [default: EdDSA,ES256,RS256].
    #[arg(
        long,
        env = "HERALD_ACCESS_TOKEN_ALGS",
        value_name = "ALG",
        value_delimiter = ','
    )]
    #[serde(default, deserialize_with = "list_or_text")]
    pub(super) access_token_alg: Option<Vec<String>>,

    /// The hub's resource identifier, which access tokens' `aud` must
    /// contain [default: the hub URL].
    #[arg(long, env = "HERALD_RESOURCE", value_name = "URI")]
    pub(super) resource: Option<String>,

    /// Active subscriptions: publish a private event when a subscription
    /// starts and ends (on /.well-known/mercure/subscriptions/…) and serve
    /// the subscription API there, for presence lists; on or off. Each
    /// subscription then costs two updates in history [default: off].
    #[arg(long, env = "HERALD_SUBSCRIPTIONS", value_name = "on|off")]
    pub(super) subscriptions: Option<Switch>,

    /// Origin whose pages may read the hub from a browser on another
    /// origin, with cookies; repeat or separate with commas. `*` lets any
    /// other origin read anonymously, never with cookies: list each origin
    /// that needs them [default: none; `*` in development mode].
    #[arg(
        long = "cors-origin",
        env = "HERALD_CORS_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    #[serde(default, deserialize_with = "list_or_text")]
    pub(super) cors_origin: Option<Vec<String>>,

    /// Origin allowed to publish with the mercureAuthorization cookie (the
    /// CSRF guard); repeat or separate with commas [default: none].
    #[arg(
        long = "publish-origin",
        env = "HERALD_PUBLISH_ORIGINS",
        value_name = "ORIGIN",
        value_delimiter = ','
    )]
    #[serde(default, deserialize_with = "list_or_text")]
    pub(super) publish_origin: Option<Vec<String>>,

    /// Interval between heartbeat comments on idle streams, e.g. 40s or
    /// 500ms; 0 disables them [default: 40s].
    #[arg(long, env = "HERALD_HEARTBEAT", value_name = "DURATION")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) heartbeat: Option<String>,
    /// On SIGTERM or SIGINT: the window over which open streams are ended,
    /// a share at a time, so clients reconnect to other nodes spread out;
    /// new streams are refused at once; a second signal ends the rest
    /// now; 0 ends them all at once [default: 5s].
    #[arg(long, env = "HERALD_DRAIN", value_name = "DURATION")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) drain: Option<String>,
    /// The longest a stream lives, e.g. 1h: it then ends (each stream a
    /// random 0-20% sooner, so reconnections spread out) and the client
    /// reconnects with its token checked again; 0 or absent: no limit
    /// [default: none].
    #[arg(long, env = "HERALD_MAX_STREAM_LIFETIME", value_name = "DURATION")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) max_stream_lifetime: Option<String>,

    /// Where history is kept: `redb` (durable, in --data-dir), `memory`
    /// (lost on restart) or `redis` (a Redis stream that many hub nodes
    /// share, at --redis-url) [default: redb].
    #[arg(long, env = "HERALD_HISTORY", value_name = "BACKEND")]
    pub(super) history: Option<HistoryBackend>,
    /// Directory of the durable history [default: ./herald-data].
    #[arg(long, env = "HERALD_DATA_DIR", value_name = "DIR")]
    pub(super) data_dir: Option<PathBuf>,
    /// The Redis server of `--history redis`: redis://[USER:PASSWORD@]HOST:PORT/DB,
    /// rediss://… for TLS, or redis+unix:///PATH. Every hub node given the
    /// same server and --redis-key shares one log.
    #[arg(long, env = "HERALD_REDIS_URL", value_name = "URL")]
    pub(super) redis_url: Option<String>,
    /// The name the shared log's keys are grouped under in Redis (keys
    /// `{NAME}:log`, `{NAME}:seq`, …) [default: herald].
    #[arg(long, env = "HERALD_REDIS_KEY", value_name = "NAME")]
    pub(super) redis_key: Option<String>,
    /// For a rediss:// URL whose server certificate a private CA signed:
    /// a PEM file of the certificates to trust instead of the system's
    /// roots.
    #[arg(long, env = "HERALD_REDIS_TLS_CA", value_name = "FILE")]
    pub(super) redis_tls_ca: Option<PathBuf>,
    /// How long a Redis command may take before it fails: a publish gets
    /// a 503 after this long when Redis does not answer [default: 3s].
    #[arg(long, env = "HERALD_REDIS_TIMEOUT", value_name = "DURATION")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) redis_timeout: Option<String>,
    /// With --subscriptions on: how long this node's active subscriptions
    /// stay listed after it stops answering (killed, host lost); then
    /// another node announces their end [default: 15s].
    #[arg(long, env = "HERALD_REDIS_NODE_LEASE", value_name = "DURATION")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) redis_node_lease: Option<String>,
    /// Most events kept in history for replay [default: 100000].
    #[arg(long, env = "HERALD_HISTORY_SIZE", value_name = "EVENTS")]
    pub(super) history_size: Option<u64>,
    /// Oldest event kept in history, e.g. 24h or 30m [default: no age
    /// limit].
    #[arg(long, env = "HERALD_HISTORY_MAX_AGE", value_name = "DURATION")]
    pub(super) history_max_age: Option<String>,
    /// Most bytes of events kept in history, e.g. 512MiB or 2GiB
    /// [default: 1GiB]. The redb file grows to about twice this (it
    /// reuses freed pages rather than shrinking).
    #[arg(long, env = "HERALD_HISTORY_MAX_BYTES", value_name = "SIZE")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) history_max_bytes: Option<String>,
    /// Memory the history may use as a cache, e.g. 256MiB: the newest
    /// events, kept for replays, and with redb the file's pages, half
    /// each. Replays past it read the file or Redis; memory history is
    /// all in memory and ignores it [default: 64MiB].
    #[arg(long, env = "HERALD_HISTORY_CACHE_SIZE", value_name = "SIZE")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) history_cache_size: Option<String>,
    /// When a publish is acknowledged (redb only): `full` fsyncs before
    /// every 200; `periodic` fsyncs every 200 ms, faster, but a crash can
    /// lose the last 200 ms of acknowledged events [default: full].
    #[arg(long, env = "HERALD_DURABILITY", value_name = "MODE")]
    pub(super) durability: Option<DurabilityMode>,
    /// When the history file is empty or damaged, move it aside (renamed
    /// `history.redb.unusable-SECONDS`, never deleted) and start with an
    /// empty history, instead of refusing to start. A healthy file is
    /// always kept, so the option is safe to leave set [default: false].
    #[arg(long, env = "HERALD_RESET_HISTORY", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(super) reset_history: Option<bool>,

    /// Largest publish body, in bytes [default: 1048576].
    #[arg(long, env = "HERALD_MAX_BODY", value_name = "BYTES")]
    pub(super) max_body: Option<usize>,
    /// Most topics in one publish [default: 1000].
    #[arg(long, env = "HERALD_MAX_TOPICS", value_name = "N")]
    pub(super) max_topics: Option<usize>,
    /// Most selectors in one subscription [default: 100].
    #[arg(long, env = "HERALD_MAX_SELECTORS", value_name = "N")]
    pub(super) max_selectors: Option<usize>,
    /// Most distinct URI templates and URL patterns all subscribers may
    /// hold at once; a subscription that would pass it gets a 429
    /// [default: 10000].
    #[arg(long, env = "HERALD_MAX_PATTERNS", value_name = "N")]
    pub(super) max_patterns: Option<usize>,
    /// Most event streams at once, over HTTP/1.1 and HTTP/2; past it, a
    /// subscription gets a 503 with Retry-After. It bounds memory (about
    /// 2 KiB per idle stream). Open files are guarded on their own: once
    /// the hub's open connections reach the open-file limit less 256, a
    /// new HTTP/1.1 subscription (which holds a connection) gets a 503,
    /// so that publishers and health checks still get in, while HTTP/2
    /// streams, which share their connection, are still admitted. Raise
    /// the file limit (ulimit -n, systemd's LimitNOFILE) for more HTTP/1.1
    /// streams [default: no limit].
    #[arg(long, env = "HERALD_MAX_SUBSCRIBERS", value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub(super) max_subscribers: Option<u64>,
    /// Most event streams one client may hold at once; past it, a
    /// subscription gets a 429 with Retry-After. A client is its token's
    /// subject (`sub`), or without one its address (an IPv6 address by its
    /// /64); behind a reverse proxy, see --trusted-proxy. The default is
    /// above what a browser opens (6 over HTTP/1.1, one HTTP/2 connection's
    /// --h2-max-streams) and what an office or carrier NAT usually puts
    /// behind one address, yet one client cannot fill the hub; 0: no limit
    /// [default: 1000].
    #[arg(long, env = "HERALD_MAX_STREAMS_PER_CLIENT", value_name = "N")]
    pub(super) max_streams_per_client: Option<usize>,
    /// A reverse proxy whose X-Forwarded-For the hub believes, as an
    /// address or a network (127.0.0.1, 10.0.0.0/8, ::1); repeat or
    /// separate with commas. A request from one of them counts against the
    /// right-most address of X-Forwarded-For that is not one of them, for
    /// --max-streams-per-client [default: none: the peer is the client].
    #[arg(
        long = "trusted-proxy",
        env = "HERALD_TRUSTED_PROXIES",
        value_name = "ADDR|CIDR",
        value_delimiter = ','
    )]
    #[serde(default, deserialize_with = "list_or_text")]
    pub(super) trusted_proxy: Option<Vec<String>>,
    /// Publishes per second one publisher token may make (in bursts of as
    /// many); past it, 429 with Retry-After [default: no limit].
    #[arg(long, env = "HERALD_PUBLISH_RATE", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) publish_rate: Option<u32>,
    /// Longest topic or selector, in characters [default: 4096].
    #[arg(long, env = "HERALD_MAX_SELECTOR_LENGTH", value_name = "CHARS")]
    pub(super) max_selector_length: Option<usize>,
    /// Events a subscriber may have waiting before it is closed as slow
    /// (it then resumes from history) [default: 1024].
    #[arg(long, env = "HERALD_QUEUE_SIZE", value_name = "EVENTS")]
    pub(super) queue_size: Option<usize>,
    /// Bytes of events a subscriber may have waiting before it is closed
    /// as slow (it then resumes from history), e.g. 1048576, 512KiB or
    /// 16MiB; one event larger than this still reaches a subscriber with
    /// nothing waiting [default: 4MiB].
    #[arg(long, env = "HERALD_QUEUE_BYTES", value_name = "SIZE")]
    #[serde(default, deserialize_with = "text_or_number")]
    pub(super) queue_bytes: Option<String>,

    /// Serve the web UI at / and its live stats stream: on or off
    /// [default: on].
    #[arg(long, env = "HERALD_UI", value_name = "on|off")]
    pub(super) ui: Option<Switch>,
    /// PEM certificate chain for HTTPS (leaf first); needs --tls-key.
    /// HTTP/1.1 and HTTP/2 (ALPN h2) are then served on --listen.
    #[arg(long, env = "HERALD_TLS_CERT", value_name = "FILE")]
    pub(super) tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "HERALD_TLS_KEY", value_name = "FILE")]
    pub(super) tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate generated at start, for development
    /// (browsers warn about it; its fingerprint is printed).
    #[arg(long, env = "HERALD_TLS_SELF_SIGNED", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub(super) tls_self_signed: Option<bool>,
    /// Most concurrent HTTP/2 streams (event streams) on one connection
    /// [default: 256].
    #[arg(long, env = "HERALD_H2_MAX_STREAMS", value_name = "N")]
    pub(super) h2_max_streams: Option<u32>,

    /// Log filter, e.g. `info`, `debug` (per request), or
    /// `herald_hub=debug,warn` [default: info].
    #[arg(long, env = "HERALD_LOG", value_name = "FILTER")]
    pub(super) log: Option<String>,
}

/// A value the file may give as a string or, since a plain number is
/// valid too (`heartbeat = 0`, `history-max-bytes = 1048576`), as a
/// TOML integer; either is read as the flag's text.
fn text_or_number<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(u64),
    }
    Ok(Some(
        match TextOrNumber::deserialize(de).map_err(|_| {
            serde::de::Error::custom(
                "expected a string such as \"40s\" or \"512MiB\", or a whole number",
            )
        })? {
            TextOrNumber::Text(text) => text,
            TextOrNumber::Number(n) => n.to_string(),
        },
    ))
}

/// A list the file may give as a TOML array or, like the flag and the
/// environment variable, as one string separated with commas.
fn list_or_text<'de, D: serde::Deserializer<'de>>(de: D) -> Result<Option<Vec<String>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum ListOrText {
        List(Vec<String>),
        Text(String),
    }
    Ok(Some(
        match ListOrText::deserialize(de).map_err(|_| {
            serde::de::Error::custom(
                "expected a list of strings, or one string separated with commas",
            )
        })? {
            ListOrText::List(list) => list,
            ListOrText::Text(text) => text.split(',').map(str::to_owned).collect(),
        },
    ))
}

/// A feature switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Switch {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// The values of --protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum ProtocolRevisions {
    /// Mercure draft-08 (1.0) only.
    #[value(name = "08")]
    #[serde(rename = "08")]
    Draft08,
    /// Mercure draft-07 (0.x) only.
    #[value(name = "07")]
    #[serde(rename = "07")]
    Draft07,
    /// Both, each request in its own.
    Both,
}

/// Where history is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum HistoryBackend {
    /// Durable, in a redb file under --data-dir.
    Redb,
    /// In memory, lost on restart.
    Memory,
    /// A Redis stream shared by every hub node on it (--redis-url).
    Redis,
}

/// When a publish to the durable history is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum DurabilityMode {
    /// fsync before every 200.
    Full,
    /// fsync every 200 ms.
    Periodic,
}

pub(super) const DEFAULT_HISTORY_SIZE: u64 = 100_000;
pub(super) const DEFAULT_HISTORY_MAX_BYTES: u64 = 1 << 30;

const SERVE_EXAMPLES: &str = "\
Examples:
  # A development hub on 127.0.0.1:8080: prints a token and examples
  herald serve

  # Production: a shared secret, anonymous subscribers, one browser origin
  HERALD_JWT_KEY=$(cat secret) herald serve --listen 0.0.0.0:8080 \\
      --anonymous --cors-origin https://app.example.com

  # One node of a cluster: every node on the same Redis shares one log
  herald serve --listen 0.0.0.0:8080 --history redis \\
      --redis-url redis://redis.internal:6379/0

  # Options from a file (keys are the long flag names)
  herald serve --config herald.toml";

/// The options that give one key two ways, inline or as a file.
const KEY_PAIRS: [[&str; 2]; 3] = [
    ["jwt-key", "jwt-key-file"],
    ["publisher-jwt-key", "publisher-jwt-key-file"],
    ["subscriber-jwt-key", "subscriber-jwt-key-file"],
];

impl ServeArgs {
    /// Fills every option not given on the command line or in the
    /// environment from the config file.
    pub(super) fn merge_file(self) -> anyhow::Result<ServeArgs> {
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
        // A key inline and a key file are one option given two ways: a key
        // given by flag or environment replaces the file's either way.
        for pair in KEY_PAIRS {
            if pair.iter().any(|name| given.contains_key(*name)) {
                for name in pair {
                    merged.remove(name);
                }
            }
        }
        merged.extend(given);
        let mut args: ServeArgs = merged
            .try_into()
            .with_context(|| format!("invalid config file {}", path.display()))?;
        args.config = Some(path);
        Ok(args)
    }
}
