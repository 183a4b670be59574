//! Event streams per client (`HubConfig::max_streams_per_client`): one
//! client (a buggy page that opens streams in a loop, a script) cannot
//! take the hub's whole stream capacity from the others.
//!
//! On the subscribe path, once the token is verified and before fan-out
//! registers the subscriber: a client is the subject its token names, or,
//! without one, its address ([`super::peer`]; an IPv6 address counts by
//! its /64, which one host or one site holds, as one IPv4 address behind a
//! NAT). Each admitted stream holds a [`ClientPermit`] that gives its place
//! back when the stream ends or is dropped, however that comes, and a
//! client whose last stream ended leaves no state behind.
//!
//! Counts are kept by a hash of the client (a random key per hub, as
//! `publish_rate` does): a permit is two words on a subscriber that holds
//! it for hours, whatever the subject's length.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::metrics::Metrics;

/// Seconds a refused client is told to wait: long enough for a tab to
/// close or a stream to end, short enough for a page to recover soon.
pub(crate) const RETRY_AFTER: u64 = 10;

/// Whom a stream is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ClientKey {
    /// The subject of a verified token, within its issuer (draft-08).
    Subject {
        issuer: Option<String>,
        subject: String,
    },
    /// A client without a subject: its address, an IPv6 one cut to its
    /// /64.
    Address(IpAddr),
}

impl ClientKey {
    /// The key of a client at `addr`.
    pub(crate) fn address(addr: IpAddr) -> ClientKey {
        ClientKey::Address(match addr.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64))),
            v4 => v4,
        })
    }

    /// Who, for the refusal's message.
    fn describe(&self) -> String {
        match self {
            ClientKey::Subject { .. } => "this token's subject (\"sub\")".to_owned(),
            ClientKey::Address(IpAddr::V6(net)) => format!("the address block {net}/64"),
            ClientKey::Address(addr) => format!("the address {addr}"),
        }
    }
}

/// The open streams of every client that holds one.
#[derive(Debug)]
pub(crate) struct ClientLimit {
    max: usize,
    hasher: RandomState,
    /// Open streams by client; a client at zero is removed.
    open: Mutex<HashMap<u64, usize>>,
    metrics: Arc<Metrics>,
    /// Whether the hint about an untrusted proxy was logged: once is
    /// enough to tell the operator, and a flood of refusals must not
    /// flood the log.
    hinted: AtomicBool,
}

/// A client's place for one stream: released when dropped.
#[derive(Debug)]
pub(crate) struct ClientPermit {
    limit: Arc<ClientLimit>,
    key: u64,
}

/// A stream the client may not open: it holds the limit.
#[derive(Debug)]
pub(crate) struct Refused {
    /// What the client is told.
    pub(crate) message: String,
}

impl ClientLimit {
    /// At most `max` streams per client (at least one).
    pub(crate) fn new(max: usize, metrics: Arc<Metrics>) -> ClientLimit {
        ClientLimit {
            max: max.max(1),
            hasher: RandomState::new(),
            open: Mutex::new(HashMap::new()),
            metrics,
            hinted: AtomicBool::new(false),
        }
    }

    /// A place for one more stream of `client`, or the refusal (counted).
    pub(crate) fn admit(self: &Arc<Self>, client: &ClientKey) -> Result<ClientPermit, Refused> {
        let key = self.hasher.hash_one(client);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            drop(open);
            Metrics::inc(&self.metrics.client_limit_refused_total);
            return Err(Refused {
                message: format!(
                    "{} holds the hub's limit of {} event streams per client; close one (another tab, another page) or retry later",
                    client.describe(),
                    self.max
                ),
            });
        }
        *count += 1;
        Metrics::set(&self.metrics.client_limit_clients, open.len() as u64);
        Ok(ClientPermit {
            limit: Arc::clone(self),
            key,
        })
    }

    /// Whether to log, this once, that refusals may come from an
    /// untrusted proxy.
    pub(crate) fn first_hint(&self) -> bool {
        !self.hinted.swap(true, Ordering::Relaxed)
    }
}

impl Drop for ClientPermit {
    fn drop(&mut self) {
        let limit = &self.limit;
        let mut open = limit.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
        Metrics::set(&limit.metrics.client_limit_clients, open.len() as u64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(max: usize) -> Arc<ClientLimit> {
        Arc::new(ClientLimit::new(max, Arc::new(Metrics::default())))
    }

    fn subject(s: &str) -> ClientKey {
        ClientKey::Subject {
            issuer: None,
            subject: s.into(),
        }
    }

    fn clients(limit: &ClientLimit) -> u64 {
        limit.metrics.client_limit_clients.load(Ordering::Relaxed)
    }

    #[test]
    fn each_client_gets_its_own_count_and_a_dropped_permit_gives_its_place_back() {
        let limit = limit(2);
        let a = subject("a");
        let first = limit.admit(&a).unwrap();
        let second = limit.admit(&a).unwrap();
        let refused = limit.admit(&a).unwrap_err();
        assert!(
            refused
                .message
                .contains("limit of 2 event streams per client"),
            "{}",
            refused.message
        );
        // Another subject, the same subject from another issuer, and an
        // address are other clients.
        let b = limit.admit(&subject("b")).unwrap();
        let other_issuer = ClientKey::Subject {
            issuer: Some("https://idp.example".into()),
            subject: "a".into(),
        };
        let c = limit.admit(&other_issuer).unwrap();
        let d = limit
            .admit(&ClientKey::address("192.0.2.1".parse().unwrap()))
            .unwrap();
        assert_eq!(clients(&limit), 4);
        assert_eq!(
            limit
                .metrics
                .client_limit_refused_total
                .load(Ordering::Relaxed),
            1
        );

        drop(first);
        let again = limit.admit(&a).unwrap();
        // Nothing is kept for a client whose streams all ended.
        drop((second, again, b, c, d));
        assert_eq!(clients(&limit), 0);
        assert!(limit.open.lock().unwrap().is_empty());
    }

    #[test]
    fn an_ipv6_client_counts_by_its_64_and_ipv4_as_itself() {
        let limit = limit(1);
        let addr = |s: &str| ClientKey::address(s.parse().unwrap());
        let _held = limit.admit(&addr("2001:db8:1:2::10")).unwrap();
        let refused = limit.admit(&addr("2001:db8:1:2:aaaa::1")).unwrap_err();
        assert!(
            refused
                .message
                .contains("the address block 2001:db8:1:2::/64"),
            "{}",
            refused.message
        );
        let _other = limit.admit(&addr("2001:db8:1:3::10")).unwrap();
        let _v4 = limit.admit(&addr("192.0.2.1")).unwrap();
        // The same IPv4 client written as IPv6 (a dual-stack socket).
        let refused = limit.admit(&addr("::ffff:192.0.2.1")).unwrap_err();
        assert!(
            refused.message.contains("the address 192.0.2.1 "),
            "{}",
            refused.message
        );
        assert!(limit.admit(&addr("192.0.2.2")).is_ok());
    }
}
