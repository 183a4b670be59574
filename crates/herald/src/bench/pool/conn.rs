//! One subscriber connection: connect from its 127.0.0.x source address,
//! send the GET (with `Last-Event-ID` when resuming), check that the answer
//! opens an event stream, decode the body and account for every event in
//! the thread's shared [`State`]; reconnect as the run asks. Subscriber `i`
//! subscribes on hub `i mod N` and, when a storm asks it to resume
//! elsewhere, on the next hub from then on. In a soak each connection also
//! ends when its lifetime does, and resumes or gives its place to a new
//! subscriber (`soak::mix`).

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};

use super::{Counters, PoolConfig, State};
use crate::bench::http::{self, Chunked, Framing, ResponseHead, Url};
use crate::bench::hubs::{assigned_hub, next_hub};
use crate::bench::soak::mix::{Next, Schedule};
use crate::bench::stats::{parse_event_data, unix_ns};

/// Bytes read from a socket at a time.
const READ_BUF: usize = 4096;

/// Whether a subscription's answer opens an event stream; if not, why, and
/// what to do.
fn check_subscription(head: &ResponseHead) -> anyhow::Result<()> {
    match head.status {
        200 => {}
        401 => bail!(
            "the server answered 401 to the subscription: herald bench subscribes without a token (start the hub with --anonymous)"
        ),
        404 => bail!(
            "the server answered 404 to the subscription: check --hub (the hub's endpoint is http://HOST/.well-known/mercure) or --sub-url"
        ),
        status => bail!("the server answered {status} to the subscription"),
    }
    if !head.is_event_stream() {
        bail!(
            "the subscription was answered with {}, not text/event-stream: check --hub (the hub's endpoint is http://HOST/.well-known/mercure) or --sub-url",
            match &head.content_type {
                Some(t) => format!("Content-Type {t}"),
                None => "no Content-Type".to_owned(),
            }
        );
    }
    Ok(())
}

/// The subscribe URL of `selectors` on hub `hub` (an index into
/// `sub_urls`): the first fills the template's `{topic}`, each other one is
/// a `topic` parameter of its own.
fn url_on(config: &PoolConfig, hub: usize, selectors: &[String]) -> anyhow::Result<Url> {
    let template = config
        .sub_urls
        .get(hub)
        .with_context(|| format!("no subscribe URL for hub {hub}"))?;
    let (first, rest) = selectors.split_first().context("no topic selector")?;
    let mut url = http::fill(template, first, "", true);
    for selector in rest {
        url.push_str(&http::fill("&topic={topic}", selector, "", true));
    }
    Url::parse(&url)
}

/// One subscriber connection, reconnecting as the run asks.
pub(super) struct Conn {
    /// Index of its subscriber in the thread's `State::subs`.
    pub(super) local: usize,
    /// Index of its subscriber among all of the run's.
    pub(super) global: usize,
    pub(super) config: Rc<PoolConfig>,
    pub(super) state: Rc<RefCell<State>>,
    pub(super) counters: Arc<Counters>,
    /// Bumped by the controller at each storm: drop the stream.
    pub(super) storm: watch::Receiver<u64>,
    /// Limits the connections being opened at once.
    pub(super) permits: Rc<Semaphore>,
}

/// Why a stream stopped.
enum Ended {
    /// The run asked for a drop (storm).
    Storm,
    /// The connection's lifetime ended (soak).
    Churn,
    /// The server ended it or the connection failed.
    Closed(anyhow::Error),
}

impl Conn {
    pub(super) async fn run(mut self) {
        let selectors = self.config.follows(self.global).selectors;
        let mut schedule = self.config.soak.map(|c| Schedule::new(c, self.global));
        let hubs = self.config.sub_urls.len();
        let mut hub = assigned_hub(self.global, hubs);
        let mut url = match url_on(&self.config, hub, &selectors) {
            Ok(u) => u,
            Err(e) => {
                self.first_attempt(Err(e));
                return;
            }
        };
        let mut first = true;
        loop {
            let last_id = self.state.borrow().subs[self.local].last_id.clone();
            let opened = {
                let _permit = self.permits.acquire().await;
                self.open(&url, last_id.as_deref()).await
            };
            let (stream, rest, framing) = match opened {
                Ok(o) => o,
                Err(e) => {
                    if first {
                        self.first_attempt(Err(e));
                        return;
                    }
                    self.counters.errors.fetch_add(1, Ordering::Relaxed);
                    if self.state.borrow().finishing {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if first {
                first = false;
                self.first_attempt(Ok(()));
            } else {
                let mut s = self.state.borrow_mut();
                s.totals.reconnects += 1;
                if s.storm.is_some() {
                    let now = Instant::now();
                    s.subs[self.local].reconnected_at = Some(now);
                }
                drop(s);
                self.check_caught_up();
            }
            self.storm.mark_unchanged();
            let ends = schedule.as_mut().map(|s| Instant::now() + s.lifetime());
            let ended = self.read(stream, rest, framing, ends).await;
            match ended {
                Ended::Storm => {
                    if self.config.resume_elsewhere && hubs > 1 {
                        // Resume on another node, with the id this one gave:
                        // what a cluster promises to a client whose load
                        // balancer sends it elsewhere.
                        hub = next_hub(hub, hubs);
                        url = match url_on(&self.config, hub, &selectors) {
                            Ok(u) => u,
                            Err(e) => {
                                // Every template was parsed at the start, so
                                // this is not expected; the subscriber stops
                                // and what it misses counts as lost.
                                let mut s = self.state.borrow_mut();
                                s.totals.disconnects += 1;
                                if s.totals.first_disconnect.is_none() {
                                    s.totals.first_disconnect = Some(format!("{e:#}"));
                                }
                                return;
                            }
                        };
                    }
                    // Stay away for the gap the storm asked for, counted
                    // from the drop, so every connection returns at once.
                    let back = self.state.borrow().storm.as_ref().map(|st| st.at + st.gap);
                    if let Some(back) = back {
                        tokio::time::sleep_until(back.into()).await;
                    }
                }
                Ended::Churn => {
                    let next = schedule.as_mut().map(Schedule::next);
                    self.state.borrow_mut().totals.churned += 1;
                    let gap = match next {
                        Some(Next::Resume(gap)) => {
                            self.state.borrow_mut().subs[self.local].resume();
                            gap
                        }
                        Some(Next::Replace(gap)) => {
                            let mut s = self.state.borrow_mut();
                            let s = &mut *s;
                            s.subs[self.local].replace(&mut s.totals);
                            gap
                        }
                        None => Duration::ZERO,
                    };
                    tokio::time::sleep(gap).await;
                }
                Ended::Closed(why) => {
                    let stop = {
                        let mut s = self.state.borrow_mut();
                        s.totals.disconnects += 1;
                        if s.totals.first_disconnect.is_none() {
                            s.totals.first_disconnect = Some(format!("{why:#}"));
                        }
                        s.finishing || !self.config.reconnect
                    };
                    if stop {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn first_attempt(&self, result: anyhow::Result<()>) {
        let mut s = self.state.borrow_mut();
        s.attempted += 1;
        match result {
            Ok(()) => {
                s.subs[self.local].opened = true;
                self.counters.connected.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                s.totals.connect_errors += 1;
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                if s.first_error.is_none() {
                    s.first_error = Some(format!("{e:#}"));
                }
            }
        }
        if s.attempted >= s.subs.len() {
            s.connect_ended = Some(Instant::now());
        }
    }

    /// Connects from this subscriber's source address and reads the head.
    async fn open(
        &self,
        url: &Url,
        last_id: Option<&str>,
    ) -> anyhow::Result<(TcpStream, Vec<u8>, Framing)> {
        let socket = match url.addr {
            SocketAddr::V4(_) => {
                let socket = TcpSocket::new_v4()?;
                let n = self.config.source_ips.clamp(1, 250);
                let ip = Ipv4Addr::new(127, 0, 0, 1 + (self.global % n) as u8);
                socket
                    .bind(SocketAddr::new(IpAddr::V4(ip), 0))
                    .with_context(|| format!("cannot bind to {ip}"))?;
                socket
            }
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        let mut stream = socket
            .connect(url.addr)
            .await
            .with_context(|| format!("cannot connect to {}", url.addr))?;
        stream.set_nodelay(true)?;
        let mut request = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\nCache-Control: no-cache\r\n",
            url.target, url.host
        );
        if let Some(id) = last_id {
            request.push_str("Last-Event-ID: ");
            request.push_str(id);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0u8; 1024];
        loop {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                bail!("the server closed the connection before answering");
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(head) = http::parse_head(&buf)? {
                check_subscription(&head)?;
                let rest = buf.split_off(head.len);
                return Ok((stream, rest, head.framing));
            }
        }
    }

    /// Reads events until the stream ends, a storm drops it or its
    /// lifetime `ends` (once the run is finishing, lifetimes no longer end:
    /// the drain waits for streams to catch up, not to churn).
    async fn read(
        &mut self,
        mut stream: TcpStream,
        rest: Vec<u8>,
        framing: Framing,
        ends: Option<Instant>,
    ) -> Ended {
        // One timer for the connection's life, not one per read.
        let mut churns = ends.is_some();
        let lifetime = sleep_until_some(ends);
        tokio::pin!(lifetime);
        let mut parser = herald_sse::Parser::new();
        let mut chunked = Chunked::default();
        let mut left = match framing {
            Framing::Length(n) => Some(n),
            _ => None,
        };
        let mut buf = vec![0u8; READ_BUF];
        let mut pending = rest;
        loop {
            if !pending.is_empty() {
                let input = std::mem::take(&mut pending);
                let result = match framing {
                    Framing::Chunked => chunked
                        .decode(&input, |piece| parser.feed(piece))
                        .map(|_| ()),
                    _ => {
                        let take = left.map_or(input.len(), |l| (l as usize).min(input.len()));
                        parser.feed(&input[..take]);
                        if let Some(l) = left.as_mut() {
                            *l -= take as u64;
                        }
                        Ok(())
                    }
                };
                if let Err(e) = result {
                    return Ended::Closed(e);
                }
                self.drain_events(&mut parser);
                if chunked.is_done() || left == Some(0) {
                    return Ended::Closed(anyhow::anyhow!("the stream ended"));
                }
                pending = input;
                pending.clear();
            }
            let read = tokio::select! {
                biased;
                changed = self.storm.changed() => {
                    if changed.is_ok() {
                        return Ended::Storm;
                    }
                    // The controller is gone: the run is over.
                    return Ended::Closed(anyhow::anyhow!("the run ended"));
                }
                () = &mut lifetime, if churns => {
                    if !self.state.borrow().finishing {
                        return Ended::Churn;
                    }
                    churns = false;
                    continue;
                }
                read = stream.read(&mut buf) => read,
            };
            match read {
                Ok(0) => return Ended::Closed(anyhow::anyhow!("the server closed the stream")),
                Ok(n) => {
                    pending.extend_from_slice(&buf[..n]);
                }
                Err(e) => return Ended::Closed(e.into()),
            }
        }
    }

    fn drain_events(&self, parser: &mut herald_sse::Parser) {
        let now = unix_ns();
        let mut s = self.state.borrow_mut();
        let s = &mut *s;
        let mut delivered = 0u64;
        while let Some(event) = parser.next_event() {
            let Ok(event) = event else {
                s.totals.malformed += 1;
                continue;
            };
            let Some((seq, topic, conn, sent)) = parse_event_data(event.data()) else {
                s.totals.malformed += 1;
                continue;
            };
            let sub = &mut s.subs[self.local];
            let joining = sub.joined_late;
            let Some(tracker) = sub.tracker_mut(topic, conn) else {
                s.totals.malformed += 1;
                continue;
            };
            if joining {
                tracker.record_joining(seq);
            } else {
                tracker.record(seq);
            }

            if !event.last_event_id().is_empty()
                && sub.last_id.as_deref() != Some(event.last_event_id())
            {
                sub.last_id = Some(Rc::from(event.last_event_id()));
            }
            delivered += 1;
            s.phase.deliveries += 1;
            let latency_us = (now.saturating_sub(sent) / 1000) as u64;
            s.phase.latency.record(latency_us);
            if let Some(storm) = &s.storm {
                let sub = &mut s.subs[self.local];
                if sub.caught_up_at.is_none()
                    && sub.reconnected_at.is_some()
                    && sub.has_all(&storm.targets)
                {
                    sub.caught_up_at = Some(Instant::now());
                }
            }
        }
        if delivered > 0 {
            self.counters
                .deliveries
                .fetch_add(delivered, Ordering::Relaxed);
        }
    }

    /// After a storm reconnect: a subscriber that had everything already
    /// is caught up as soon as its stream reopens.
    fn check_caught_up(&self) {
        let mut s = self.state.borrow_mut();
        let s = &mut *s;
        let Some(storm) = &s.storm else {
            return;
        };
        let sub = &mut s.subs[self.local];
        if sub.caught_up_at.is_none() && sub.has_all(&storm.targets) {
            sub.caught_up_at = sub.reconnected_at;
        }
    }
}

/// Sleeps until `at`, or forever without one.
async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subscriber_subscribes_on_hub_i_mod_n_and_resumes_on_the_next() {
        let config = PoolConfig {
            sub_urls: (1..=3)
                .map(|n| format!("http://127.0.0.1:940{n}/.well-known/mercure?topic={{topic}}"))
                .collect(),
            resume_elsewhere: true,
            topic_prefix: "bench-".into(),
            first: 0,
            count: 8,
            topics: 1,
            publishers: 1,
            source_ips: 1,
            threads: 1,
            connect_concurrency: 1,
            reconnect: true,
            soak: None,
        };
        let one = |name: &str| vec![name.to_owned()];
        let port = |hub| url_on(&config, hub, &one("bench-0")).unwrap().addr.port();
        // Subscribers 0..8 on 3 hubs, then where each resumes.
        let on: Vec<u16> = (0..8).map(|i| port(assigned_hub(i, 3))).collect();
        assert_eq!(on, [9401, 9402, 9403, 9401, 9402, 9403, 9401, 9402]);
        let resumed: Vec<u16> = (0..8)
            .map(|i| port(next_hub(assigned_hub(i, 3), 3)))
            .collect();
        assert_eq!(resumed, [9402, 9403, 9401, 9402, 9403, 9401, 9402, 9403]);
        let url = url_on(&config, 1, &one("bench-7")).unwrap();
        assert_eq!(url.target, "/.well-known/mercure?topic=bench%2D7");
        assert!(url_on(&config, 3, &one("bench-0")).is_err());
        // Several selectors: one topic parameter each, encoded alike.
        let several = ["b-1".to_owned(), "b-{n}".to_owned()];
        let url = url_on(&config, 0, &several).unwrap();
        assert_eq!(
            url.target,
            "/.well-known/mercure?topic=b%2D1&topic=b%2D%7Bn%7D"
        );
        assert!(url_on(&config, 0, &[]).is_err());
    }

    #[test]
    fn only_an_event_stream_opens_a_subscription_and_failures_say_what_to_do() {
        let check = |head: &str| {
            let text = format!("{head}\r\n\r\n");
            let head = http::parse_head(text.as_bytes()).unwrap().unwrap();
            check_subscription(&head).map_err(|e| e.to_string())
        };
        assert!(check("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream").is_ok());
        // The web UI at / of a hub given by its base URL.
        let err = check("HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8").unwrap_err();
        assert!(
            err.contains("text/html") && err.contains("--hub") && err.contains("--sub-url"),
            "{err}"
        );
        let err = check("HTTP/1.1 200 OK\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("no Content-Type"), "{err}");
        let err = check("HTTP/1.1 401 Unauthorized\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("(start the hub with --anonymous)"), "{err}");
        let err = check("HTTP/1.1 404 Not Found\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("--hub"), "{err}");
        let err = check("HTTP/1.1 503 Unavailable\r\nContent-Length: 0").unwrap_err();
        assert!(err.contains("503"), "{err}");
    }
}
