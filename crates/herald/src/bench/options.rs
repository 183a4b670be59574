//! The options of `herald bench`; `plan` makes of them the plan of a run
//! and the publisher's configuration.

use std::path::PathBuf;

use super::transport::{TlsOptions, Transport};

/// A ready-made scenario; its defaults apply to every flag not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Scenario {
    /// Only the flags given (1,000 subscribers, 10 events/s for 10 s).
    Custom,
    /// As many idle subscribers as one hub process can hold: memory.
    Idle,
    /// 10,000 subscribers on one topic; rate ramped to saturation.
    Fanout,
    /// 10,000 subscribers each on its own topic; random publishes.
    ManyTopics,
    /// 10,000 subscribers drop and resume with Last-Event-ID at once.
    Storm,
    /// Concurrent publishers as fast as acknowledged.
    Publish,
    /// An hour of mixed load with churn (idle, one-topic, several-topic
    /// and URI-template subscribers; connections that resume with
    /// Last-Event-ID or leave for new ones): are the hub's RSS and open
    /// files flat? Needs --hub-pid.
    Soak,
}

/// Options of `herald bench`.
#[derive(Debug, Clone, clap::Args)]
#[command(after_help = BENCH_EXAMPLES)]
pub(crate) struct BenchArgs {
    /// Scenario whose defaults to use.
    #[arg(long, value_enum, default_value = "custom")]
    pub(super) scenario: Scenario,
    /// Mercure hub: its endpoint or base URL, as for `herald pub` (used
    /// unless --sub-url/--pub-url are given). Repeat the flag for the nodes
    /// of a cluster, `--hub URL1 --hub URL2 …` (not a comma-separated list:
    /// a comma may be part of a URL): subscriber i subscribes on hub i mod
    /// N, publishing connection j publishes to hub j mod N.
    #[arg(
        long = "hub",
        value_name = "URL",
        default_value = "http://127.0.0.1:8080/.well-known/mercure"
    )]
    pub(super) hubs: Vec<String>,
    /// Subscribe URL template for other SSE servers, e.g.
    /// `http://127.0.0.1:9000/sub/{topic}` (one server: not with several
    /// --hub).
    #[arg(long, value_name = "TEMPLATE")]
    pub(super) sub_url: Option<String>,
    /// Publish URL template for other servers, e.g.
    /// `http://127.0.0.1:9000/pub/{topic}` (one server: not with several
    /// --hub).
    #[arg(long, value_name = "TEMPLATE")]
    pub(super) pub_url: Option<String>,
    /// Publish method.
    #[arg(long, default_value = "POST")]
    pub(super) pub_method: String,
    /// Publish body template: `{topic}` and `{data}` [default: Mercure's
    /// form, or `{data}` with --pub-url].
    #[arg(long, value_name = "TEMPLATE")]
    pub(super) pub_body: Option<String>,
    /// Publish Content-Type [default: the form type, or text/plain with
    /// --pub-url].
    #[arg(long)]
    pub(super) pub_content_type: Option<String>,
    /// Publisher JWT for the hub.
    #[arg(long, env = "HERALD_BENCH_TOKEN", hide_env_values = true)]
    pub(super) token: Option<String>,
    /// HS256 key to mint a publisher JWT with (instead of --token).
    #[arg(long, env = "HERALD_JWT_KEY", hide_env_values = true)]
    pub(super) jwt_key: Option<String>,
    /// Topic names are this prefix and a number.
    #[arg(long, default_value = "bench-")]
    pub(super) topic_prefix: String,

    /// Subscribers.
    #[arg(long, short = 'n')]
    pub(super) subscribers: Option<usize>,
    /// Topics (subscriber i follows topic i mod topics).
    #[arg(long)]
    pub(super) topics: Option<usize>,
    /// Events per second in total; 0 publishes nothing, `max` as fast as
    /// acknowledged.
    #[arg(long)]
    pub(super) rate: Option<String>,
    /// Rates to step through, e.g. `10,100,1000`; the ramp stops at
    /// saturation.
    #[arg(long, value_delimiter = ',')]
    pub(super) ramp: Option<Vec<f64>>,
    /// Duration of the run, or of each ramp step, e.g. 10s [default: the
    /// scenario's; the soak's is 1h].
    #[arg(long)]
    pub(super) duration: Option<humantime::Duration>,
    /// Stop after this many events in total (fixed-rate runs).
    #[arg(long)]
    pub(super) events: Option<u64>,
    /// Publishing connections [default: the scenario's, and at least one
    /// per --hub].
    #[arg(long)]
    pub(super) publishers: Option<usize>,
    /// Publish requests in flight per connection (HTTP/1.1 pipelining;
    /// 1: each connection waits for its answer, as a publisher does).
    #[arg(long)]
    pub(super) window: Option<usize>,
    /// Minimum bytes of data per event.
    #[arg(long, default_value_t = 0)]
    pub(super) payload: usize,
    /// Gap of the reconnect storm (scenario storm).
    #[arg(long)]
    pub(super) storm_gap: Option<humantime::Duration>,
    /// With several --hub, a storm's subscribers resume on their own hub
    /// (by default subscriber i, on hub i mod N, resumes on the next one,
    /// (i + 1) mod N, with the Last-Event-ID the first one gave).
    #[arg(long)]
    pub(super) resume_same_hub: bool,
    /// How long to wait at the end for late events.
    #[arg(long, default_value = "15s")]
    pub(super) drain: humantime::Duration,

    /// Soak: how often to read the hub's RSS and open files.
    #[arg(long, default_value = "10s")]
    pub(super) sample_every: humantime::Duration,
    /// Soak: the start left out of the flatness verdict [default: a tenth
    /// of --duration].
    #[arg(long)]
    pub(super) warm_up: Option<humantime::Duration>,
    /// Soak: mean lifetime of a subscriber's connection before it resumes
    /// or a new subscriber takes its place.
    #[arg(long, default_value = "60s")]
    pub(super) lifetime: humantime::Duration,
    /// Soak: the drift (median of the last quarter of the samples after
    /// warm-up against the first quarter's) still called flat, in %.
    #[arg(long, default_value_t = 5.0)]
    pub(super) tolerance: f64,

    /// Source addresses 127.0.0.1 ..= 127.0.0.N to spread connections over.
    #[arg(long, default_value_t = 16)]
    pub(super) source_ips: usize,
    /// Threads reading subscriptions (per process).
    #[arg(long, default_value_t = 2)]
    pub(super) threads: usize,
    /// Most subscribers per process; more start worker processes.
    #[arg(long, default_value_t = 19_000)]
    pub(super) per_process: usize,
    /// Connections opened at once.
    #[arg(long, default_value_t = 256)]
    pub(super) connect_concurrency: usize,
    /// Do not reconnect streams that end.
    #[arg(long)]
    pub(super) no_reconnect: bool,
    /// Protocol of the subscribers: http1 (HTTP/1.1, a connection each),
    /// https (HTTP/1.1 over TLS), h2 (HTTP/2 over TLS, ALPN h2) or h2c
    /// (HTTP/2 over TCP, prior knowledge); HTTP/2 subscribers share
    /// connections, --streams-per-connection each [default: http1, or
    /// https for an https:// hub]. Publishers speak HTTP/1.1 (over TLS to
    /// an https:// hub) whatever this says.
    #[arg(long, value_enum, value_name = "PROTOCOL")]
    pub(super) transport: Option<Transport>,
    /// HTTP/2 subscribers (h2, h2c) sharing one connection: at most the
    /// hub's --h2-max-streams (Herald's default: 256), or the streams past
    /// it wait for a free one and never connect.
    #[arg(long, value_name = "N", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub(super) streams_per_connection: u32,
    /// Trust only the certificates in this PEM file for an https:// hub
    /// (its certificate, or the CA that signed it), as `herald sub
    /// --cacert`.
    #[arg(long, value_name = "FILE")]
    pub(super) cacert: Option<PathBuf>,
    /// Accept any certificate from an https:// hub (a development hub's
    /// --tls-self-signed one), as `herald sub --insecure`.
    #[arg(long, short = 'k')]
    pub(super) insecure: bool,

    /// PID of the hub, to read its memory and CPU from /proc. With several
    /// --hub, repeat it, one per hub in the same order: the report gives
    /// the total and each node's.
    #[arg(long = "hub-pid", value_name = "PID")]
    pub(super) hub_pids: Vec<u32>,
    /// Name of what is measured, for the report.
    #[arg(long, default_value = "hub")]
    pub(super) name: String,
    /// Write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub(super) json: Option<PathBuf>,
    /// No progress line.
    #[arg(long, short = 'q')]
    pub(super) quiet: bool,
    /// Internal: run as a worker process of another `herald bench`.
    #[arg(long, hide = true)]
    pub(super) worker: bool,
}

const BENCH_EXAMPLES: &str = "\
Examples:
  # Fan-out to 10,000 subscribers against a local hub, ramped to saturation
  herald serve --jwt-key secret --anonymous --history memory &
  herald bench --scenario fanout --jwt-key secret --hub-pid $! --json fanout.json

  # Two nodes of a cluster (--history redis, one --redis-url): subscribers and
  # publishers spread over both; the storm resumes each on the other node
  herald bench --scenario storm --jwt-key secret \\
      --hub http://127.0.0.1:9401 --hub http://127.0.0.1:9402

  # An hour of mixed load and churn: is the hub's memory (and open files) flat?
  herald bench --scenario soak --jwt-key secret -n 4000 --hub-pid $HUB_PID

  # 100,000 subscribers over HTTP/2 (TLS): 400 connections of 250 streams
  herald serve --jwt-key secret --anonymous --history memory --tls-self-signed \\
      --max-streams-per-client 0 &
  herald bench --scenario fanout --jwt-key secret --hub https://127.0.0.1:8080 --insecure \\
      -n 100000 --transport h2 --streams-per-connection 250 --hub-pid $!

  # Any SSE server: subscribe and publish URL templates
  herald bench -n 1000 --rate 100 --sub-url 'http://127.0.0.1:9000/sub/{topic}' \\
      --pub-url 'http://127.0.0.1:9000/pub/{topic}'

Scenarios and the peer comparison: bench/scenarios.md, bench/compare.sh.";

impl BenchArgs {
    /// How to trust an `https://` hub.
    pub(super) fn tls(&self) -> TlsOptions {
        TlsOptions {
            cacert: self.cacert.clone(),
            insecure: self.insecure,
        }
    }
}
