//! The publisher side: events with a sequence number and a send time, at a
//! fixed rate or as fast as acknowledgements allow.
//!
//! Each publishing connection owns a fixed share of the topics, so a
//! topic's events leave in order on one connection, and HTTP/1.1
//! pipelining (a window of requests in flight, answered in order) keeps
//! one connection fast even when the hub takes a while to acknowledge.
//! The writer half sends on schedule; the reader half matches each answer
//! to its request, in order, and records the acknowledgement latency.
//! With several hubs, connection `j` publishes to hub `j mod N`: its
//! events still leave in order on one connection, so their numbering per
//! topic and connection stays exact. To an `https://` hub the same
//! HTTP/1.1 goes over TLS.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{watch, Semaphore};

use super::http::{self, Chunked, Framing, Url};
use super::hubs::assigned_hub;
use super::stats::{event_data, unix_ns, Latency, LatencySummary};
use super::transport::TlsClient;

/// How to publish to the target.
#[derive(Debug, Clone)]
pub(crate) struct PubConfig {
    /// URL templates, one per hub; `{topic}` replaced (percent-encoded).
    /// Connection `j` publishes to hub `j mod N` (`hubs::assigned_hub`).
    pub(crate) urls: Vec<String>,
    pub(crate) method: String,
    /// Body template: `{topic}` (percent-encoded) and `{data}`.
    pub(crate) body: String,
    pub(crate) content_type: String,
    /// Extra request headers (e.g. `Authorization`).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) topic_prefix: String,
    pub(crate) topics: usize,
    /// Requests in flight per connection.
    pub(crate) window: usize,
    /// Minimum length of each event's data.
    pub(crate) payload: usize,
    /// The TLS connector for `https://` publish URLs.
    pub(crate) tls: Option<TlsClient>,
}

/// Events published so far, per topic and publishing connection (index
/// `topic * connections + conn`): what subscribers should receive.
#[derive(Debug)]
pub(crate) struct Published {
    per_stream: Vec<AtomicU64>,
    connections: usize,
    /// Requests sent, for the progress line.
    pub(crate) sent: AtomicU64,
}

impl Published {
    pub(crate) fn new(topics: usize, connections: usize) -> Published {
        let connections = connections.max(1);
        Published {
            per_stream: (0..topics.max(1) * connections)
                .map(|_| AtomicU64::new(0))
                .collect(),
            connections,
            sent: AtomicU64::new(0),
        }
    }

    /// The count per topic and connection now.
    pub(crate) fn snapshot(&self) -> Vec<u64> {
        self.per_stream
            .iter()
            .map(|c| c.load(Ordering::Acquire))
            .collect()
    }
}

/// What one publishing period achieved.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct PubStats {
    /// Requests sent.
    pub(crate) sent: u64,
    /// Answered with a 2xx.
    pub(crate) acked: u64,
    /// Answered otherwise, or lost with their connection.
    pub(crate) errors: u64,
    /// Seconds the period lasted.
    pub(crate) seconds: f64,
    /// Acknowledgement latency (request written → answer read).
    pub(crate) ack_latency: LatencySummary,
    /// First error, to tell the user why.
    pub(crate) first_error: Option<String>,
}

impl PubStats {
    /// Acknowledged publishes per second.
    pub(crate) fn acks_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.acked as f64 / self.seconds
        } else {
            0.0
        }
    }
}

#[derive(Default)]
struct ConnStats {
    sent: u64,
    acked: u64,
    errors: u64,
    latency: Latency,
    first_error: Option<String>,
}

/// Publishes at `rate` events/s in total (`None`: as fast as answers come)
/// until `stop` turns true.
pub(crate) async fn publish(
    config: Arc<PubConfig>,
    published: Arc<Published>,
    rate: Option<f64>,
    stop: watch::Receiver<bool>,
) -> PubStats {
    let started = Instant::now();
    let connections = published.connections;
    let topics = config.topics.max(1);
    let mut tasks = Vec::new();
    for c in 0..connections {
        // Each connection its share of the topics; all of them when there
        // are fewer topics than connections.
        let owned: Vec<usize> = (0..topics)
            .filter(|t| topics < connections || t % connections == c)
            .collect();
        let per_conn = rate.map(|r| r / connections as f64);
        tasks.push(tokio::spawn(run_conn(
            Arc::clone(&config),
            Arc::clone(&published),
            c,
            owned,
            per_conn,
            stop.clone(),
        )));
    }
    let mut stats = PubStats::default();
    let mut latency = Latency::new();
    for task in tasks {
        if let Ok(c) = task.await {
            stats.sent += c.sent;
            stats.acked += c.acked;
            stats.errors += c.errors;
            latency.merge(&c.latency);
            if stats.first_error.is_none() {
                stats.first_error = c.first_error;
            }
        }
    }
    stats.seconds = started.elapsed().as_secs_f64();
    stats.ack_latency = latency.summary();
    stats
}

async fn run_conn(
    config: Arc<PubConfig>,
    published: Arc<Published>,
    conn: usize,
    topics: Vec<usize>,
    rate: Option<f64>,
    stop: watch::Receiver<bool>,
) -> ConnStats {
    let stats = Arc::new(Mutex::new(ConnStats::default()));
    let started = Instant::now();
    let mut scheduled = 0u64;
    while !*stop.borrow() {
        let result = session(
            &config,
            &published,
            conn,
            &topics,
            rate,
            started,
            &mut scheduled,
            stop.clone(),
            &stats,
        )
        .await;
        if let Err(e) = result {
            {
                let mut s = lock(&stats);
                s.errors += 1;
                if s.first_error.is_none() {
                    s.first_error = Some(format!("{e:#}"));
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let mut s = lock(&stats);
    std::mem::take(&mut *s)
}

fn lock(stats: &Mutex<ConnStats>) -> std::sync::MutexGuard<'_, ConnStats> {
    stats.lock().unwrap_or_else(|p| p.into_inner())
}

/// One connection's life: pipelined requests until `stop` or an error.
#[allow(clippy::too_many_arguments)]
async fn session(
    config: &PubConfig,
    published: &Published,
    conn: usize,
    topics: &[usize],
    rate: Option<f64>,
    started: Instant,
    scheduled: &mut u64,
    stop: watch::Receiver<bool>,
    stats: &Arc<Mutex<ConnStats>>,
) -> anyhow::Result<()> {
    let url_template = config.url_of(conn);
    let first_url = Url::parse(&http::fill(
        url_template,
        &topic_name(config, topics[0]),
        "",
        true,
    ))?;
    let stream = TcpStream::connect(first_url.addr)
        .await
        .with_context(|| format!("cannot connect to the publish URL {}", first_url.addr))?;
    stream.set_nodelay(true)?;
    let run = Session {
        config,
        published,
        conn,
        topics,
        rate,
        started,
    };
    match (&config.tls, first_url.tls) {
        (_, false) => {
            let (reader, writer) = stream.into_split();
            run.pipeline(reader, writer, scheduled, stop, stats).await
        }
        (Some(connector), true) => {
            let tls = connector.handshake(stream, &first_url).await?;
            let (reader, writer) = tokio::io::split(tls);
            run.pipeline(reader, writer, scheduled, stop, stats).await
        }
        (None, true) => bail!("no TLS configuration for the https:// publish URL"),
    }
}

/// What one publishing connection's session works with.
#[derive(Clone, Copy)]
struct Session<'a> {
    config: &'a PubConfig,
    published: &'a Published,
    conn: usize,
    topics: &'a [usize],
    rate: Option<f64>,
    started: Instant,
}

impl Session<'_> {
    /// Pipelined requests on one connection (`reader`, `writer`: its
    /// halves, over TCP or TLS) until `stop` or an error.
    async fn pipeline<R, W>(
        &self,
        mut reader: R,
        mut writer: W,
        scheduled: &mut u64,
        mut stop: watch::Receiver<bool>,
        stats: &Arc<Mutex<ConnStats>>,
    ) -> anyhow::Result<()>
    where
        R: AsyncRead + Unpin,
        W: AsyncWrite + Unpin,
    {
        let Session {
            config,
            published,
            conn,
            topics,
            rate,
            started,
        } = *self;
        let url_template = config.url_of(conn);
        let window = Arc::new(Semaphore::new(config.window.max(1)));
        // When each request in flight was written, oldest first.
        let in_flight: Arc<Mutex<VecDeque<Instant>>> = Arc::default();

        // Reader: answers in order.
        let read_task = {
            let window = Arc::clone(&window);
            let in_flight = Arc::clone(&in_flight);
            let stats = Arc::clone(stats);
            async move {
                let mut buf = Vec::with_capacity(8192);
                let mut chunk = vec![0u8; 8192];
                loop {
                    // One response head.
                    let head = loop {
                        if let Some(head) = http::parse_head(&buf)? {
                            break head;
                        }
                        let n = reader.read(&mut chunk).await?;
                        if n == 0 {
                            return Ok::<(), anyhow::Error>(());
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    };
                    buf.drain(..head.len);
                    // Its body, skipped.
                    match head.framing {
                        Framing::Length(n) => {
                            let n = usize::try_from(n).unwrap_or(usize::MAX);
                            while buf.len() < n {
                                let r = reader.read(&mut chunk).await?;
                                if r == 0 {
                                    bail!("the publish answer was cut short");
                                }
                                buf.extend_from_slice(&chunk[..r]);
                            }
                            buf.drain(..n);
                        }
                        Framing::Chunked => {
                            let mut decoder = Chunked::default();
                            loop {
                                let used = decoder.decode(&buf, |_| {})?;
                                buf.drain(..used);
                                if decoder.is_done() {
                                    break;
                                }
                                let r = reader.read(&mut chunk).await?;
                                if r == 0 {
                                    bail!("the publish answer was cut short");
                                }
                                buf.extend_from_slice(&chunk[..r]);
                            }
                        }
                        Framing::Close => bail!("the publish answer has no length"),
                    }
                    let sent = in_flight
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .pop_front();
                    {
                        let mut s = lock(&stats);
                        if (200..300).contains(&head.status) {
                            s.acked += 1;
                            if let Some(at) = sent {
                                s.latency.record(at.elapsed().as_micros() as u64);
                            }
                        } else {
                            s.errors += 1;
                            if s.first_error.is_none() {
                                s.first_error = Some(rejected(head.status));
                            }
                        }
                    }
                    window.add_permits(1);
                    if head.close {
                        bail!("the server closed the publishing connection");
                    }
                }
            }
        };

        // Writer: on schedule, batching whatever is due.
        let write_task = async {
            let mut rng = rand::rngs::StdRng::seed_from_u64(topics[0] as u64);
            let mut out = Vec::with_capacity(16 * 1024);
            let per_topic_url: Vec<Url> = topics
                .iter()
                .map(|&t| Url::parse(&http::fill(url_template, &topic_name(config, t), "", true)))
                .collect::<anyhow::Result<_>>()?;
            let mut turn = 0usize;
            loop {
                if *stop.borrow() {
                    return Ok::<(), anyhow::Error>(());
                }
                // How many are due now.
                let due = match rate {
                    Some(r) if r > 0.0 => {
                        // Connections take turns: connection c of n sends its
                        // first event c/n of an interval late, the next ones an
                        // interval apart, so n connections make one even rate.
                        let offset = 1.0 - conn as f64 / published.connections as f64;
                        let should = (started.elapsed().as_secs_f64() * r + offset) as u64;
                        if should <= *scheduled {
                            let next = started
                                + Duration::from_secs_f64(((*scheduled + 1) as f64 - offset) / r);
                            tokio::select! {
                                _ = tokio::time::sleep_until(next.into()) => {}
                                _ = stop.changed() => {}
                            }
                            continue;
                        }
                        // Never burst more than a second's worth after a stall.
                        let burst = r.max(1.0) as u64;
                        if should - *scheduled > burst {
                            *scheduled = should - burst;
                        }
                        (should - *scheduled) as usize
                    }
                    Some(_) => {
                        let _ = stop.changed().await;
                        continue;
                    }
                    None => 64,
                };
                // Wait for room in the window.
                let permit = tokio::select! {
                    p = window.acquire() => p?,
                    _ = stop.changed() => continue,
                };
                permit.forget();
                let mut batch = 1 + window.available_permits().min(due.saturating_sub(1));
                if batch > 1 {
                    if let Ok(more) = window.try_acquire_many((batch - 1) as u32) {
                        more.forget();
                    } else {
                        batch = 1;
                    }
                }
                out.clear();
                let now = Instant::now();
                for _ in 0..batch {
                    let i = if topics.len() == 1 {
                        0
                    } else if rate.is_some() {
                        rng.random_range(0..topics.len())
                    } else {
                        turn = (turn + 1) % topics.len();
                        turn
                    };
                    let topic = topics[i];
                    let stream = topic * published.connections + conn;
                    let seq = published.per_stream[stream].load(Ordering::Relaxed) + 1;
                    let data = event_data(seq, topic, conn, unix_ns(), config.payload);
                    let url = &per_topic_url[i];
                    let body = http::fill(&config.body, &topic_name(config, topic), &data, true);
                    out.extend_from_slice(
                        format!(
                        "{} {} HTTP/1.1\r\nHost: {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
                        config.method,
                        url.target,
                        url.host,
                        config.content_type,
                        body.len()
                    )
                        .as_bytes(),
                    );
                    for (name, value) in &config.headers {
                        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(body.as_bytes());
                    published.per_stream[stream].store(seq, Ordering::Release);
                }
                *scheduled += batch as u64;
                in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .extend(std::iter::repeat_n(now, batch));
                writer.write_all(&out).await?;
                // TLS holds what it encrypted until flushed; TCP sends at once.
                writer.flush().await?;
                published.sent.fetch_add(batch as u64, Ordering::Relaxed);
                lock(stats).sent += batch as u64;
            }
        };

        tokio::pin!(read_task);
        tokio::select! {
            r = &mut read_task => {
                r?;
                bail!("the server closed the publishing connection");
            }
            w = write_task => w?,
        }
        // Stopped: wait (briefly) for the answers still in flight.
        let deadline = tokio::time::sleep(Duration::from_secs(10));
        tokio::pin!(deadline);
        loop {
            if window.available_permits() >= config.window.max(1) {
                return Ok(());
            }
            tokio::select! {
                r = &mut read_task => {
                    r?;
                    return Ok(());
                }
                _ = &mut deadline => {
                    bail!("publish answers still missing 10 s after the end");
                }
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
            }
        }
    }
}

impl PubConfig {
    /// The URL template publishing connection `conn` uses: its hub's.
    pub(crate) fn url_of(&self, conn: usize) -> &str {
        self.urls
            .get(assigned_hub(conn, self.urls.len()))
            .map_or("", String::as_str)
    }
}

/// Why a publish answered `status` failed, with what to do about it.
fn rejected(status: u16) -> String {
    let hint = match status {
        401 => " (give the hub's key with --jwt-key, or a publisher token with --token)",
        403 => " (the token must allow publishing to every topic: use --jwt-key, or a --token whose mercure.publish allows them)",
        _ => "",
    };
    format!("the publish was answered {status}{hint}")
}

/// The name of topic `t`.
pub(crate) fn topic_name(config: &PubConfig, t: usize) -> String {
    format!("{}{}", config.topic_prefix, t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_publishes_say_which_option_authorises_them() {
        assert!(rejected(401).contains("--jwt-key"), "{}", rejected(401));
        assert!(rejected(401).contains("--token"), "{}", rejected(401));
        assert!(rejected(403).contains("--jwt-key"), "{}", rejected(403));
        assert_eq!(rejected(500), "the publish was answered 500");
    }
}
