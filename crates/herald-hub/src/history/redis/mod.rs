//! The shared backend: one ordered log in a Redis stream, for many hub
//! nodes.
//!
//! Every node appends with one Lua script (`append.lua`) that takes the
//! next number of a counter as the entry's sequence number, adds the entry
//! with the stream id `SEQ-0`, indexes its event id and applies retention,
//! atomically. So sequence numbers are dense and the same on every node,
//! and a `Last-Event-ID` resolves to the same position wherever a client
//! reconnects. Each node follows the stream with `XREAD BLOCK` on a
//! connection of its own ([`History::follow`]); its dispatcher hands what it
//! reads to fan-out, in log order, whoever appended it.
//!
//! Keys, all under one hash tag so they share a slot: `{PREFIX}:log` (the
//! stream), `{PREFIX}:seq` (the counter), `{PREFIX}:ids` (event id →
//! sequence number), `{PREFIX}:bytes` (bytes held), and the roster's
//! (`roster.rs`). Redis 6.2 or later.
//!
//! Every command runs under a time limit, so a Redis that is down or
//! stalled turns a publish into an error (the hub answers 503) instead of
//! a wait; the connections reconnect by themselves when Redis returns.

mod codec;
mod follow;
mod roster;

use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Script, Value};

use super::ring::Ring;
use super::{
    Entry, Follow, History, HistoryError, HistoryStats, NewEntry, Roster, StatsCell,
    DEFAULT_CACHE_BYTES,
};
use roster::RedisRoster;

/// How long a read of the stream blocks on the server waiting for news.
const FOLLOW_BLOCK: Duration = Duration::from_secs(1);
/// Most recent entries each node keeps in memory for replays.
const CACHE_EVENTS: u64 = 10_000;
/// Most entries a follow read takes at once.
const FOLLOW_BATCH: usize = 1024;
/// How often each node refreshes its statistics and applies the age limit
/// when nobody publishes.
const UPKEEP_PERIOD: Duration = Duration::from_secs(1);

/// How long a start keeps asking a Redis that does not answer in time.
const START_WITHIN: Duration = Duration::from_secs(10);

/// Where the shared log is and how much of it to keep.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://[user:password@]host:port/db`, `rediss://…` for TLS, or
    /// `redis+unix:///path/to/socket`.
    pub url: String,
    /// Keys are `{PREFIX}:log` and so on: hubs that share a prefix share
    /// one log.
    pub key_prefix: String,
    /// Most events kept (at least 1: the log is also how nodes reach each
    /// other).
    pub max_events: u64,
    /// Most bytes of events kept.
    pub max_bytes: u64,
    /// Oldest event kept, if limited.
    pub max_age: Option<Duration>,
    /// The longest a command may take before it counts as failed: a
    /// publish fails after this long when Redis does not answer.
    pub timeout: Duration,
    /// For `rediss://`: the certificates (PEM) to trust instead of the
    /// system's roots, for a server whose certificate a private CA signed.
    pub tls_ca: Option<Vec<u8>>,
    /// How long a node's active subscriptions outlive its last sign of
    /// life: after that, another node announces their end (see
    /// [`Roster`]). Each node renews its lease several times within it.
    pub node_lease: Duration,
    /// Most bytes of the newest events each node keeps in memory to serve
    /// replays without asking Redis.
    pub cache_bytes: u64,
}

impl RedisOptions {
    /// Options for the log at `url`, with the key prefix `herald`, 100,000
    /// events, no byte or age limit, a 3 s command timeout and a cache of
    /// [`DEFAULT_CACHE_BYTES`].
    pub fn new(url: impl Into<String>) -> RedisOptions {
        RedisOptions {
            url: url.into(),
            key_prefix: "herald".into(),
            max_events: 100_000,
            max_bytes: u64::MAX,
            max_age: None,
            timeout: Duration::from_secs(3),
            tls_ca: None,
            node_lease: Duration::from_secs(15),
            cache_bytes: DEFAULT_CACHE_BYTES,
        }
    }
}

/// The Redis Streams history.
#[derive(Debug, Clone)]
pub struct RedisHistory {
    inner: Arc<Inner>,
    roster: Arc<RedisRoster>,
}

#[derive(Debug)]
struct Inner {
    client: redis::Client,
    /// Appends, reads and upkeep (multiplexed: commands pipeline).
    conn: ConnectionManager,
    keys: Keys,
    options: RedisOptions,
    append: Script,
    /// The log's epoch when this node connected (see [`Keys::epoch`]).
    epoch: String,
    /// This node's view of the log, refreshed by its appends, its reads
    /// and its upkeep.
    stats: StatsCell,
    /// The newest entries this node followed, densely: a resuming client is
    /// replayed from here without a round trip to Redis, which is what
    /// keeps a reconnect storm off Redis.
    cache: Mutex<Ring>,
}

#[derive(Debug, Clone)]
struct Keys {
    log: String,
    seq: String,
    ids: String,
    bytes: String,
    /// A random token naming this incarnation of the log: when Redis loses
    /// its data (no persistence, a flush), the token goes with it, and the
    /// nodes learn that positions started over.
    epoch: String,
}

/// The log could not be opened.
#[derive(Debug)]
pub struct ConnectError(String);

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConnectError {}

impl RedisHistory {
    /// Connects to Redis, checks that it can hold the log (a standalone
    /// server, 6.2 or later), and reads where the log stands. Must be called
    /// within a tokio runtime; starts an upkeep task.
    ///
    /// A command that times out at start is asked again until
    /// [`START_WITHIN`] (or `options.timeout`, if longer) has passed: the
    /// timeout bounds how long a publish waits, and a Redis slow to answer
    /// once (starting up, or on a loaded machine) must not stop a hub
    /// from starting. A refusal, a wrong password or an unfit server fails
    /// at once.
    pub async fn connect(options: RedisOptions) -> Result<RedisHistory, ConnectError> {
        let deadline = tokio::time::Instant::now() + START_WITHIN.max(options.timeout);
        loop {
            match RedisHistory::connect_once(options.clone()).await {
                Ok(history) => return Ok(history),
                Err(Attempt {
                    error,
                    timed_out: true,
                }) if tokio::time::Instant::now() < deadline => {
                    tracing::warn!(%error, "Redis was slow to answer at start; asking again");
                }
                Err(Attempt { error, .. }) => return Err(error),
            }
        }
    }

    async fn connect_once(options: RedisOptions) -> Result<RedisHistory, Attempt> {
        let shown = redacted(&options.url);
        let refuse = |why: String| ConnectError(format!("Redis at {shown}: {why}"));
        let fatal = |why: String| Attempt {
            error: refuse(why),
            timed_out: false,
        };
        let failed = |(why, timed_out): (String, bool)| Attempt {
            error: refuse(why),
            timed_out,
        };
        if options.max_events == 0 {
            return Err(fatal(
                "a history of 0 events cannot work: the log is also how nodes reach each other; keep at least 1 (better: enough for a reconnecting client)".into(),
            ));
        }
        if options.url.starts_with("redis+sentinel") || options.url.starts_with("rediss+sentinel") {
            return Err(fatal(
                "Sentinel URLs are not supported: point --redis-url at the primary's stable address (see docs/cluster.md)".into(),
            ));
        }
        let unusable = |e: redis::RedisError| {
            fatal(format!("not a usable URL ({e}); use redis://host:port/db, rediss://… for TLS, or redis+unix:///path"))
        };
        let client = match &options.tls_ca {
            None => redis::Client::open(options.url.as_str()).map_err(unusable)?,
            Some(_) if !options.url.starts_with("rediss://") => {
                return Err(fatal("a CA to trust applies to rediss:// URLs only".into()))
            }
            Some(pem) => redis::Client::build_with_tls(
                options.url.as_str(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.clone()),
                },
            )
            .map_err(unusable)?,
        };
        let conn = at_start(
            options.timeout,
            ConnectionManager::new_with_config(
                client.clone(),
                manager_config(options.timeout, options.timeout),
            ),
            |e| format!("cannot connect: {e}"),
        )
        .await
        .map_err(failed)?;

        let prefix = &options.key_prefix;
        let keys = Keys {
            log: format!("{{{prefix}}}:log"),
            seq: format!("{{{prefix}}}:seq"),
            ids: format!("{{{prefix}}}:ids"),
            bytes: format!("{{{prefix}}}:bytes"),
            epoch: format!("{{{prefix}}}:epoch"),
        };
        let mut setup = conn.clone();
        let info: String = at_start(
            options.timeout,
            redis::cmd("INFO")
                .arg("server")
                .arg("cluster")
                .query_async(&mut setup),
            |e| format!("cannot ask the server what it is ({e})"),
        )
        .await
        .map_err(failed)?;
        check_server(&info).map_err(fatal)?;
        let (epoch, _) = at_start(options.timeout, log_state(&mut setup, &keys), |e| {
            format!("cannot read the log ({e})")
        })
        .await
        .map_err(failed)?;
        // Never more than retention keeps: a replay from the cache must not
        // return what the log has already dropped.
        let options_cache_events = options.max_events.min(CACHE_EVENTS);
        let max_bytes = options.max_bytes.min(options.cache_bytes);
        let node_lease = options.node_lease;
        let inner = Arc::new(Inner {
            client,
            conn,
            keys,
            options,
            append: Script::new(include_str!("append.lua")),
            epoch,
            stats: StatsCell::default(),
            cache: Mutex::new(Ring::new(
                usize::try_from(options_cache_events).unwrap_or(usize::MAX),
                max_bytes,
            )),
        });
        let history = RedisHistory {
            roster: Arc::new(RedisRoster::new(Arc::clone(&inner), node_lease)),
            inner,
        };
        // Applies retention too, so a hub started with smaller limits
        // trims the log at once.
        if let Err(e) = history.inner.run_append(Vec::new()).await {
            let timed_out = e.0 == history.inner.no_answer().0;
            return Err(Attempt {
                error: refuse(e.0),
                timed_out,
            });
        }
        tokio::spawn(upkeep(Arc::downgrade(&history.inner)));
        Ok(history)
    }
}

/// A start that failed, and whether because Redis did not answer in time
/// (then [`RedisHistory::connect`] asks again).
struct Attempt {
    error: ConnectError,
    timed_out: bool,
}

/// One command of a start, bounded by `limit`: its answer, or what went
/// wrong (`said` of Redis's error) and whether it was a timeout.
async fn at_start<T>(
    limit: Duration,
    command: impl std::future::Future<Output = redis::RedisResult<T>>,
    said: impl FnOnce(&redis::RedisError) -> String,
) -> Result<T, (String, bool)> {
    match tokio::time::timeout(limit, command).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(e)) => Err((said(&e), e.is_timeout())),
        Err(_) => Err((format!("no answer within {limit:?}"), true)),
    }
}

/// Refuses servers that cannot hold the log the way this backend needs
/// (Redis Cluster, and versions before 6.2), from their `INFO server
/// cluster`.
fn check_server(info: &str) -> Result<(), String> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .map(str::trim)
    };
    if field("cluster_enabled") == Some("1") {
        return Err(
            "Redis Cluster is not supported yet: use a standalone primary (see docs/cluster.md)"
                .into(),
        );
    }
    let version = field("redis_version").unwrap_or("0");
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    if (major, minor) < (6, 2) {
        return Err(format!(
            "Redis {version} is too old: the log needs 6.2 or later (XTRIM MINID, exclusive XRANGE)"
        ));
    }
    Ok(())
}

/// Where the log stands: its epoch (made now if the log has none: a new
/// or lost log) and its counter, the last sequence number handed out
/// (`None` while the counter key is missing; the next append restores it).
async fn log_state(
    conn: &mut ConnectionManager,
    keys: &Keys,
) -> Result<(String, Option<u64>), redis::RedisError> {
    let fresh = uuid::Uuid::now_v7().simple().to_string();
    redis::pipe()
        .cmd("SET")
        .arg(&keys.epoch)
        .arg(fresh)
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(&keys.epoch)
        .cmd("GET")
        .arg(&keys.seq)
        .query_async(conn)
        .await
}

/// The URL without its password, for messages and logs.
fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

fn manager_config(response: Duration, connect: Duration) -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_response_timeout(Some(response))
        .set_connection_timeout(Some(connect))
        // Reconnection is retried on every later command too, so a short
        // series per outage keeps each command's wait bounded.
        .set_number_of_retries(2)
        .set_max_delay(Duration::from_millis(500))
}

impl Inner {
    fn cache(&self) -> MutexGuard<'_, Ring> {
        // Each change is one push or a clear: a panic elsewhere cannot
        // leave the ring half-changed.
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Up to `limit` entries after `after` from the cache, when it holds
    /// everything after `after` that this node has followed. What the
    /// node has not followed yet it will dispatch live, so a replay that
    /// ends where the cache ends misses nothing.
    fn cached_after(&self, after: u64, limit: usize) -> Option<Vec<Arc<Entry>>> {
        let cache = self.cache();
        if cache.len() == 0 {
            return None;
        }
        cache.read_after(after, limit)
    }

    /// Runs one command under the time limit.
    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, HistoryError> {
        let mut conn = self.conn.clone();
        self.bounded(self.options.timeout, cmd.query_async(&mut conn))
            .await
    }

    /// Awaits a command for at most `limit`; a failure or a timeout
    /// becomes an error that says where to look.
    async fn bounded<T>(
        &self,
        limit: Duration,
        command: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, HistoryError> {
        match tokio::time::timeout(limit, command).await {
            Ok(result) => result.map_err(|e| self.fail(&e)),
            Err(_) => Err(self.no_answer()),
        }
    }

    /// A failed command, said so that an operator knows where to look.
    fn fail(&self, e: &redis::RedisError) -> HistoryError {
        if e.is_timeout() {
            return self.no_answer();
        }
        if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
            return HistoryError(format!(
                "redis: cannot reach Redis at {} ({e})",
                redacted(&self.options.url)
            ));
        }
        HistoryError(format!("redis: {e}"))
    }

    fn no_answer(&self) -> HistoryError {
        HistoryError(format!(
            "redis: no answer within {:?} (is Redis at {} up?)",
            self.options.timeout,
            redacted(&self.options.url)
        ))
    }

    /// Appends `batch` (possibly empty: retention and statistics only).
    async fn run_append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
        let options = &self.options;
        let max_age_ms = options.max_age.map_or(0, |a| a.as_millis().max(1) as u64);
        let mut invocation = self.append.prepare_invoke();
        invocation
            .key(&self.keys.log)
            .key(&self.keys.seq)
            .key(&self.keys.ids)
            .key(&self.keys.bytes)
            .arg(options.max_events)
            .arg(options.max_bytes)
            .arg(max_age_ms);
        for new in &batch {
            let topics = serde_json::to_string(&new.topics)
                .map_err(|e| HistoryError(format!("topics cannot be encoded: {e}")))?;
            invocation
                .arg(&new.id)
                .arg(if new.private { "1" } else { "0" })
                .arg(topics)
                .arg(new.frame.as_ref())
                .arg(new.size());
        }
        let mut conn = self.conn.clone();
        let reply: Vec<u64> = self
            .bounded(options.timeout, invocation.invoke_async(&mut conn))
            .await?;
        let [now, events, bytes, last_seq, seqs @ ..] = reply.as_slice() else {
            return Err(HistoryError(
                "redis: the append script gave a short answer".into(),
            ));
        };
        if seqs.len() != batch.len() {
            return Err(HistoryError(
                "redis: the append script stored a different number of entries".into(),
            ));
        }
        self.stats.set(HistoryStats {
            events: *events,
            bytes: *bytes,
            last_seq: *last_seq,
            reopens: 0,
        });
        Ok(batch
            .into_iter()
            .zip(seqs)
            .map(|(new, seq)| Arc::new(Entry::new(*seq, *now, new)))
            .collect())
    }
}

/// Refreshes the statistics and applies the age limit while nobody
/// publishes; ends with the history.
async fn upkeep(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(UPKEEP_PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        if let Err(e) = inner.run_append(Vec::new()).await {
            tracing::debug!(error = %e, "redis history upkeep failed; will retry");
        }
    }
}

#[async_trait]
impl History for RedisHistory {
    async fn append(&self, batch: Vec<NewEntry>) -> Result<Vec<Arc<Entry>>, HistoryError> {
        self.inner.run_append(batch).await
    }

    async fn seq_of(&self, id: &str) -> Result<Option<u64>, HistoryError> {
        let inner = &self.inner;
        let seq: Option<u64> = inner
            .query(redis::cmd("HGET").arg(&inner.keys.ids).arg(id))
            .await?;
        Ok(seq)
    }

    async fn read_after(&self, after: u64, limit: usize) -> Result<Vec<Arc<Entry>>, HistoryError> {
        let inner = &self.inner;
        if limit == 0 {
            return Ok(Vec::new());
        }
        let cutoff = inner
            .options
            .max_age
            .map(|age| super::now_ms().saturating_sub(age.as_millis() as u64));
        let mut from = after;
        while let Some(hit) = inner.cached_after(from, limit) {
            // Expired entries (not trimmed yet) are the oldest: skip them,
            // and keep the page full so that the replay does not stop early.
            let Some(cutoff) = cutoff else {
                return Ok(hit);
            };
            match hit.iter().position(|e| e.stored_at_ms >= cutoff) {
                Some(0) => return Ok(hit),
                Some(fresh) => from = hit[fresh - 1].seq,
                None if hit.len() == limit => from = hit[limit - 1].seq,
                None => return Ok(Vec::new()),
            }
        }
        let mut found = Vec::new();
        loop {
            let wanted = limit - found.len();
            let reply: Value = inner
                .query(
                    redis::cmd("XRANGE")
                        .arg(&inner.keys.log)
                        .arg(format!("({from}-0"))
                        .arg("+")
                        .arg("COUNT")
                        .arg(wanted),
                )
                .await?;
            let mut page = codec::entries(reply)?;
            let full = page.len() == wanted;
            if let Some(last) = page.last() {
                from = last.seq;
            }
            if let Some(cutoff) = cutoff {
                // Not trimmed yet (upkeep runs every second): never replay
                // what is past the age limit. Expired entries are the
                // oldest, so a page that lost some is topped up.
                page.retain(|e| e.stored_at_ms >= cutoff);
            }
            found.append(&mut page);
            if !full || found.len() >= limit {
                return Ok(found);
            }
        }
    }

    fn stats(&self) -> HistoryStats {
        self.inner.stats.get()
    }

    fn follow(&self, after: u64) -> Option<Follow> {
        Some(follow::stream(Arc::clone(&self.inner), after))
    }

    fn roster(&self) -> Option<Arc<dyn Roster>> {
        Some(Arc::clone(&self.roster) as Arc<dyn Roster>)
    }
}
