//! Who is at the other end of a request, by address: the peer of its
//! connection, or, when that peer is a trusted reverse proxy, the address
//! the proxy says it forwarded for (`X-Forwarded-For`).
//!
//! On the subscribe path this names the client whose streams
//! [`super::client_limit`] counts when its token names no subject. The
//! hub's own server ([`crate::server::Server`]) hands every request its
//! peer address ([`PeerAddr`]), on every path (its HTTP/1.1 streams, hyper,
//! TLS); an application serving [`crate::Hub::router`] itself gives it by
//! serving with axum's `into_make_service_with_connect_info::<SocketAddr>()`,
//! and without either the address is unknown.
//!
//! `X-Forwarded-For` is a list each proxy appends the address it received
//! the request from to; anything left of what a trusted proxy appended is
//! whatever the client sent, so the list is read from the right, and the
//! first address that is not a trusted proxy's is the client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderName};

use crate::fanout::StallFlag;

static X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// The peer address of a request's connection: a request extension the
/// hub's server sets on every request it serves.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// Put by the hub's server on an HTTP/1.x request that came while its open
/// connections were past the budget it keeps for HTTP/1.1 event streams
/// (the budget): a subscription on it would hold one of the files left for
/// everything else, and is refused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SocketsShort(pub(crate) usize);

/// What the server knows of the connection a request came on.
#[derive(Debug, Clone, Default)]
pub(crate) struct Connection {
    /// Raised when the server closes the connection because the client
    /// stopped reading; `None` when another server serves the router.
    pub(crate) stall: Option<StallFlag>,
    /// The connection's peer; `None` when the server does not say.
    pub(crate) peer: Option<SocketAddr>,
    /// Set when an event stream on this connection would take the
    /// server's open connections past its budget for them.
    pub(crate) sockets_short: Option<SocketsShort>,
}

impl<S: Send + Sync> FromRequestParts<S> for Connection {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let extensions = &parts.extensions;
        Ok(Connection {
            stall: extensions.get::<StallFlag>().cloned(),
            peer: extensions
                .get::<PeerAddr>()
                .map(|p| p.0)
                .or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0)),
            sockets_short: extensions.get::<SocketsShort>().copied(),
        })
    }
}

/// A block of addresses: one address (`192.0.2.7`, `::1`) or a network in
/// CIDR notation (`10.0.0.0/8`, `fd00::/8`); the addresses a trusted
/// reverse proxy may connect from ([`crate::HubConfig::trusted_proxies`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    /// The first address, its bits past `prefix` cleared.
    network: IpAddr,
    /// How many leading bits an address must share with `network`.
    prefix: u8,
}

impl IpRange {
    /// Whether `addr` is in the block. An IPv4 address written as IPv6
    /// (`::ffff:192.0.2.7`, as a dual-stack socket reports it) is taken as
    /// the IPv4 address it is.
    pub fn contains(&self, addr: IpAddr) -> bool {
        masked(addr.to_canonical(), self.prefix) == Some(self.network)
    }
}

/// `addr` with its bits past `prefix` cleared; `None` when the prefix is
/// longer than the address.
fn masked(addr: IpAddr, prefix: u8) -> Option<IpAddr> {
    match addr {
        IpAddr::V4(v4) if prefix <= 32 => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            Some(Ipv4Addr::from(u32::from(v4) & mask).into())
        }
        IpAddr::V6(v6) if prefix <= 128 => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            Some(Ipv6Addr::from(u128::from(v6) & mask).into())
        }
        _ => None,
    }
}

/// Why a text is not an [`IpRange`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpRangeError(String);

impl std::fmt::Display for IpRangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IpRangeError {}

impl FromStr for IpRange {
    type Err = IpRangeError;

    /// An address, or an address and a prefix length after `/`; bits of
    /// the address past the prefix are ignored (`10.1.2.3/8` is
    /// `10.0.0.0/8`).
    fn from_str(text: &str) -> Result<IpRange, IpRangeError> {
        let wrong = |why: &str| {
            IpRangeError(format!(
                "{text:?} is not an IP address or network ({why}): use e.g. 127.0.0.1, ::1 or 10.0.0.0/8"
            ))
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr = IpAddr::from_str(addr.trim())
            .map_err(|_| wrong("bad address"))?
            .to_canonical();
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(|| wrong(&format!("the prefix length must be 0 to {bits}")))?,
        };
        let network = masked(addr, prefix).ok_or_else(|| wrong("bad prefix"))?;
        Ok(IpRange { network, prefix })
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// The client's address: `peer`, or, when `peer` is in `trusted`, the
/// right-most address of `X-Forwarded-For` (every such field, in order)
/// that is not; when every listed address is trusted, the left-most. A
/// hop that is not an address (a proxy that writes `unknown`, an
/// obfuscated identifier) ends the walk at the last trusted address
/// before it: what lies left of it cannot be vouched for.
pub(crate) fn client_addr(peer: IpAddr, headers: &HeaderMap, trusted: &[IpRange]) -> IpAddr {
    let is_trusted = |addr: IpAddr| trusted.iter().any(|range| range.contains(addr));
    let mut client = peer.to_canonical();
    if !is_trusted(client) {
        return client;
    }
    let fields: Vec<_> = headers.get_all(&X_FORWARDED_FOR).iter().collect();
    for field in fields.into_iter().rev() {
        let Ok(list) = field.to_str() else {
            return client;
        };
        for hop in list.rsplit(',') {
            let Some(addr) = hop_addr(hop.trim()) else {
                return client;
            };
            client = addr;
            if !is_trusted(addr) {
                return client;
            }
        }
    }
    client
}

/// One `X-Forwarded-For` hop: an address, perhaps with a port
/// (`192.0.2.7:4711`, `[2001:db8::1]:4711`) or in brackets.
fn hop_addr(hop: &str) -> Option<IpAddr> {
    let bare = hop
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hop);
    let addr = IpAddr::from_str(bare)
        .ok()
        .or_else(|| SocketAddr::from_str(hop).ok().map(|s| s.ip()))?;
    Some(addr.to_canonical())
}

/// Whether the request carries `X-Forwarded-For` from a peer that is not
/// trusted to set it: behind an unlisted proxy, every client seems to be
/// the proxy.
pub(crate) fn forwarded_by_untrusted(
    peer: IpAddr,
    headers: &HeaderMap,
    trusted: &[IpRange],
) -> bool {
    let peer = peer.to_canonical();
    headers.contains_key(&X_FORWARDED_FOR) && !trusted.iter().any(|range| range.contains(peer))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn ranges(texts: &[&str]) -> Vec<IpRange> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn forwarded(fields: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(&X_FORWARDED_FOR, HeaderValue::from_str(field).unwrap());
        }
        headers
    }

    #[test]
    fn ranges_parse_addresses_and_networks_and_contain_what_they_should() {
        let net: IpRange = "10.1.2.3/8".parse().unwrap();
        assert_eq!(net.to_string(), "10.0.0.0/8");
        assert!(net.contains(ip("10.255.0.1")));
        assert!(!net.contains(ip("11.0.0.1")));
        // An IPv4 address as a dual-stack socket reports it.
        assert!(net.contains(ip("::ffff:10.9.9.9")));
        assert!(!net.contains(ip("::1")));

        let one: IpRange = "127.0.0.1".parse().unwrap();
        assert_eq!(one.to_string(), "127.0.0.1/32");
        assert!(one.contains(ip("127.0.0.1")));
        assert!(!one.contains(ip("127.0.0.2")));

        let v6: IpRange = " fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12:3456::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!("::1".parse::<IpRange>().unwrap().contains(ip("::1")));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));

        for bad in [
            "",
            "localhost",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "1.2.3.4:80",
        ] {
            let err = bad.parse::<IpRange>().unwrap_err().to_string();
            assert!(err.contains("use e.g."), "{bad:?}: {err}");
        }
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let headers = forwarded(&["198.51.100.1"]);
        assert_eq!(client_addr(ip("192.0.2.1"), &headers, &[]), ip("192.0.2.1"));
        let trusted = ranges(&["10.0.0.0/8"]);
        assert_eq!(
            client_addr(ip("192.0.2.1"), &headers, &trusted),
            ip("192.0.2.1")
        );
        assert!(forwarded_by_untrusted(ip("192.0.2.1"), &headers, &trusted));
        assert!(!forwarded_by_untrusted(ip("10.0.0.1"), &headers, &trusted));
        assert!(!forwarded_by_untrusted(
            ip("192.0.2.1"),
            &HeaderMap::new(),
            &trusted
        ));
    }

    #[test]
    fn behind_trusted_proxies_the_right_most_untrusted_hop_is_the_client() {
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        let proxy = ip("127.0.0.1");
        // nginx: `$proxy_add_x_forwarded_for` appends its peer.
        assert_eq!(
            client_addr(proxy, &forwarded(&["203.0.113.7"]), &trusted),
            ip("203.0.113.7")
        );
        // What the client wrote itself is left of what the proxy appended.
        let spoofed = forwarded(&["1.1.1.1, 203.0.113.7"]);
        assert_eq!(client_addr(proxy, &spoofed, &trusted), ip("203.0.113.7"));
        // Proxies in a chain, and the fields of several lines, in order.
        let chain = forwarded(&["1.1.1.1, 203.0.113.7", "10.0.0.5,10.0.0.6"]);
        assert_eq!(client_addr(proxy, &chain, &trusted), ip("203.0.113.7"));
        // Every hop trusted: the furthest known.
        assert_eq!(
            client_addr(proxy, &forwarded(&["10.0.0.9, 10.0.0.5"]), &trusted),
            ip("10.0.0.9")
        );
        // No header: the proxy itself.
        assert_eq!(client_addr(proxy, &HeaderMap::new(), &trusted), proxy);
        // Ports and brackets, and IPv4 written as IPv6.
        assert_eq!(
            client_addr(proxy, &forwarded(&["203.0.113.7:4711"]), &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            client_addr(proxy, &forwarded(&["[2001:db8::1]:4711"]), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_addr(proxy, &forwarded(&["[2001:db8::1]"]), &trusted),
            ip("2001:db8::1")
        );
        assert_eq!(
            client_addr(
                ip("::ffff:127.0.0.1"),
                &forwarded(&["::ffff:203.0.113.7"]),
                &trusted
            ),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_hop_that_is_no_address_stops_at_the_last_trusted_one() {
        let trusted = ranges(&["127.0.0.1", "10.0.0.0/8"]);
        let proxy = ip("127.0.0.1");
        assert_eq!(
            client_addr(
                proxy,
                &forwarded(&["203.0.113.7, unknown, 10.0.0.5"]),
                &trusted
            ),
            ip("10.0.0.5")
        );
        assert_eq!(
            client_addr(proxy, &forwarded(&["203.0.113.7, "]), &trusted),
            proxy
        );
        assert_eq!(client_addr(proxy, &forwarded(&[""]), &trusted), proxy);
        let mut headers = HeaderMap::new();
        headers.insert(
            &X_FORWARDED_FOR,
            HeaderValue::from_bytes(b"\xff203.0.113.7").unwrap(),
        );
        assert_eq!(client_addr(proxy, &headers, &trusted), proxy);
    }
}
