//! Opening the history backend the options ask for.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use herald_hub::history::redb::{Durability, RedbOptions, Retention};
use herald_hub::history::{
    History, MemoryHistory, RedbHistory, RedisHistory, RedisOptions, DEFAULT_CACHE_BYTES,
};

use super::args::{
    DurabilityMode, HistoryBackend, ServeArgs, DEFAULT_HISTORY_MAX_BYTES, DEFAULT_HISTORY_SIZE,
};

/// The history backend the options ask for.
pub(super) async fn open_history(args: &ServeArgs) -> anyhow::Result<Arc<dyn History>> {
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
    let cache_bytes = match args.history_cache_size.as_deref() {
        Some(text) => parse_size(text).with_context(|| {
            format!("invalid --history-cache-size {text:?}: use e.g. 67108864, 64MiB or 1GiB")
        })?,
        None => DEFAULT_CACHE_BYTES,
    };
    let backend = args.history.unwrap_or(HistoryBackend::Redb);
    if backend != HistoryBackend::Redis {
        refuse_given(
            &[
                (args.redis_url.is_some(), "--redis-url"),
                (args.redis_key.is_some(), "--redis-key"),
                (args.redis_timeout.is_some(), "--redis-timeout"),
                (args.redis_node_lease.is_some(), "--redis-node-lease"),
                (args.redis_tls_ca.is_some(), "--redis-tls-ca"),
            ],
            |name| {
                format!(
                    "{name} applies to --history redis only: add --history redis or drop {name}"
                )
            },
        )?;
    }
    let retention = Retention {
        max_events: Some(max_events),
        max_age,
        max_bytes: Some(max_bytes),
    };
    match backend {
        HistoryBackend::Redis => open_redis(args, retention, cache_bytes).await,
        HistoryBackend::Memory => {
            // Memory history is never written to disk: a durability asked
            // for would be silently meaningless.
            if args.durability.is_some() {
                bail!(
                    "--durability applies to durable history only (--history redb); memory history is lost on restart whatever the setting: drop --durability or use --history redb"
                );
            }
            let capacity = usize::try_from(max_events).unwrap_or(usize::MAX);
            let history = MemoryHistory::with_max_bytes(capacity, max_bytes);
            Ok(Arc::new(match max_age {
                Some(age) => history.with_max_age(age),
                None => history,
            }))
        }
        HistoryBackend::Redb => {
            let dir = args
                .data_dir
                .clone()
                .unwrap_or_else(|| PathBuf::from("herald-data"));
            let options = RedbOptions {
                retention,
                durability: match args.durability.unwrap_or(DurabilityMode::Full) {
                    DurabilityMode::Full => Durability::Full,
                    DurabilityMode::Periodic => Durability::Periodic(Duration::from_millis(200)),
                },
                cache_bytes: cache_bytes / 2,
                page_cache_bytes: usize::try_from(cache_bytes / 2).unwrap_or(usize::MAX),
                ..RedbOptions::default()
            };
            let history = match RedbHistory::open(&dir, options) {
                Err(refusal) if args.reset_history == Some(true) => {
                    let Some(unusable) = refusal.unusable_file() else {
                        return Err(refusal.into());
                    };
                    let aside = set_aside(unusable).with_context(|| {
                        format!(
                            "--reset-history cannot move the unusable history file {} aside ({refusal})",
                            unusable.display()
                        )
                    })?;
                    tracing::warn!(
                        reason = %refusal,
                        kept_as = %aside.display(),
                        "--reset-history: moved the unusable history file aside; starting with an empty history"
                    );
                    RedbHistory::open(&dir, options)?
                }
                opened => opened?,
            };
            tracing::info!(path = %history.path().display(), events = history.stats().events, "durable history opened");
            Ok(Arc::new(history))
        }
    }
}

/// The Redis history of `--history redis`, its options checked.
async fn open_redis(
    args: &ServeArgs,
    retention: Retention,
    cache_bytes: u64,
) -> anyhow::Result<Arc<dyn History>> {
    refuse_given(
        &[
            (args.durability.is_some(), "--durability"),
            (args.data_dir.is_some(), "--data-dir"),
            (args.reset_history.is_some(), "--reset-history"),
        ],
        |name| {
            format!("{name} applies to --history redb only; with --history redis, durability is Redis's own (appendonly, appendfsync: see docs/cluster.md)")
        },
    )?;
    let Some(url) = args.redis_url.clone() else {
        bail!("--history redis needs --redis-url (e.g. redis://127.0.0.1:6379/0)");
    };
    let mut options = RedisOptions::new(url);
    if let Some(key) = &args.redis_key {
        if key.is_empty() || key.contains(['{', '}']) {
            bail!("invalid --redis-key {key:?}: use a non-empty name without braces");
        }
        options.key_prefix = key.clone();
    }
    if let Some(text) = &args.redis_timeout {
        let timeout = humantime::parse_duration(text)
            .with_context(|| format!("invalid --redis-timeout {text:?}: use e.g. 3s or 500ms"))?;
        if timeout.is_zero() {
            bail!("invalid --redis-timeout {text:?}: it must be above zero");
        }
        options.timeout = timeout;
    }
    if let Some(text) = &args.redis_node_lease {
        let lease = humantime::parse_duration(text)
            .with_context(|| format!("invalid --redis-node-lease {text:?}: use e.g. 15s or 2s"))?;
        // Renewed three times a lease; shorter than this, a busy Redis or
        // a garbage-collecting VM would end live subscriptions.
        if lease < std::time::Duration::from_millis(300) {
            bail!("invalid --redis-node-lease {text:?}: use at least 300ms");
        }
        options.node_lease = lease;
    }
    if let Some(path) = &args.redis_tls_ca {
        let pem = std::fs::read(path)
            .with_context(|| format!("cannot read --redis-tls-ca {}", path.display()))?;
        options.tls_ca = Some(pem);
    }
    if retention.max_events == Some(0) {
        bail!("--history-size 0 cannot work with --history redis: the log is also how nodes reach each other; keep at least 1 (better: enough for a client to resume)");
    }
    options.max_events = retention.max_events.unwrap_or(options.max_events);
    options.max_bytes = retention.max_bytes.unwrap_or(options.max_bytes);
    options.max_age = retention.max_age;
    options.cache_bytes = cache_bytes;
    let history = RedisHistory::connect(options)
        .await
        .context("cannot open the shared history")?;
    let stats = history.stats();
    tracing::info!(
        events = stats.events,
        last_seq = stats.last_seq,
        "shared history opened in Redis"
    );
    Ok(Arc::new(history))
}

/// Fails on the first of `options` (given?, flag) that was given, saying
/// `why` for it.
fn refuse_given(options: &[(bool, &str)], why: impl Fn(&str) -> String) -> anyhow::Result<()> {
    match options.iter().find(|(given, _)| *given) {
        Some((_, name)) => bail!(why(name)),
        None => Ok(()),
    }
}

/// Renames the unusable history file `file` to `FILE.unusable-SECONDS` in
/// its directory (with `-N` added if that name is taken, so an earlier
/// one is never overwritten) and returns the new path.
fn set_aside(file: &Path) -> anyhow::Result<PathBuf> {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let mut name = file.as_os_str().to_owned();
    name.push(format!(".unusable-{seconds}"));
    let first = PathBuf::from(name);
    let mut aside = first.clone();
    let mut n = 0u32;
    while aside.try_exists()? {
        n += 1;
        let mut name = first.clone().into_os_string();
        name.push(format!("-{n}"));
        aside = PathBuf::from(name);
    }
    std::fs::rename(file, &aside)?;
    Ok(aside)
}

/// Parses a byte size: a plain number, or one with a KiB, MiB or GiB suffix.
pub(super) fn parse_size(text: &str) -> anyhow::Result<u64> {
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
