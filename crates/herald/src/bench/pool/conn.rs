//! One subscriber's life: subscribe through the transport's [`Dialer`]
//! (with `Last-Event-ID` when resuming), feed what its stream brings to a
//! parser and account for every event in the thread's shared [`State`];
//! resubscribe as the run asks. Subscriber `i` subscribes on hub `i mod N`
//! and, when a storm asks it to resume elsewhere, on the next hub from then
//! on. In a soak each stream also ends when its lifetime does, and resumes
//! or gives its place to a new subscriber (`soak::mix`).

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::{watch, Semaphore};

use super::state::State;
use super::wire::{Body, Dialer};
use super::{Counters, PoolConfig};
use crate::bench::http::{self, Url};
use crate::bench::hubs::{assigned_hub, next_hub};
use crate::bench::soak::mix::{Next, Schedule};

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

/// One subscriber, resubscribing as the run asks.
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
    /// Limits the subscriptions being opened at once.
    pub(super) permits: Rc<Semaphore>,
    /// Opens its stream, over the run's transport.
    pub(super) dialer: Rc<Dialer>,
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
                self.dialer
                    .open(&url, last_id.as_deref(), self.global)
                    .await
            };
            let body = match opened {
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
                self.state.borrow_mut().reopened(self.local);
            }
            self.storm.mark_unchanged();
            let ends = schedule.as_mut().map(|s| Instant::now() + s.lifetime());
            let ended = self.read(body, ends).await;
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
                                self.state.borrow_mut().disconnected(&e);
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
                        s.disconnected(&why);
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
        self.state
            .borrow_mut()
            .first_attempt(self.local, result, &self.counters);
    }

    /// Reads events until the stream ends, a storm drops it or its
    /// lifetime `ends` (once the run is finishing, lifetimes no longer end:
    /// the drain waits for streams to catch up, not to churn).
    async fn read(&mut self, mut body: Body, ends: Option<Instant>) -> Ended {
        // One timer for the stream's life, not one per read.
        let mut churns = ends.is_some();
        let lifetime = sleep_until_some(ends);
        tokio::pin!(lifetime);
        let mut parser = herald_sse::Parser::new();
        loop {
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
                read = body.read_into(&mut parser) => read,
            };
            match read {
                Ok(more) => {
                    self.state
                        .borrow_mut()
                        .record_events(self.local, &mut parser, &self.counters);
                    if !more {
                        return Ended::Closed(anyhow::anyhow!("the stream ended"));
                    }
                }
                Err(e) => return Ended::Closed(e),
            }
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
            transport: Default::default(),
            streams_per_connection: 1,
            tls: Default::default(),
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
}
