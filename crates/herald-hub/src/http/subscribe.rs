//! `GET /.well-known/mercure`: the subscribe path, from request to stream.
//!
//! Parse the selectors, authenticate (or admit anonymously), take a place
//! among the client's streams when they are limited
//! ([`super::client_limit`]: 429 past the limit), register with fan-out
//! FIRST, then resolve `Last-Event-ID` and replay from history, then
//! follow the live queue, dropping live entries already replayed
//! (sequence number at or below the last one sent). Registering before
//! reading history is what makes the hand-over free of gaps; comparing
//! sequence numbers is what makes it free of duplicates.
//!
//! An id that history no longer holds (evicted, or never seen) is never
//! taken to mean "nothing missed": the stream replays everything history
//! still holds and the response says `earliest`, in `Mercure-Last-Event-ID`
//! (draft-08) and `Last-Event-ID` (draft-07), each when the hub speaks that
//! revision. A subscriber that asked for it with `lost_events=1` is also
//! told in the stream, by an `events_lost` event before the replay
//! ([`super::lost_events`]): a browser cannot read those headers. History
//! cannot tell an evicted id from one it never had, so both are reported:
//! either way, the hub cannot vouch that nothing after it was missed.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use tokio::time::Instant;

use super::client_limit::{ClientKey, ClientPermit};
use super::peer::{client_addr, forwarded_by_untrusted, Connection, SocketsShort};
use super::subscription::{End, Replay, Subscription, REPLAY_PAGE};
use super::token::{presented_token, TokenSource};
use super::{Rejection, LAST_EVENT_ID, MERCURE_LAST_EVENT_ID};
use crate::auth::{self, Grants, Refused, Role};
use crate::fanout::{Interest, Unregistered};
use crate::matcher::{MatchType, Matcher};
use crate::metrics::Metrics;
use crate::presence::{new_subscriber_id, ActiveSubscription, Announced};
use crate::protocol::{
    parse_subscribe, Protocol, ProtocolError, RequestedMatcher, Revision, EARLIEST,
};
use crate::Hub;

pub(crate) async fn subscribe(
    State(hub): State<Hub>,
    RawQuery(query): RawQuery,
    connection: Connection,
    headers: HeaderMap,
) -> Response {
    match open(hub.clone(), query.as_deref(), &headers, connection).await {
        Ok(response) => response,
        Err(rejection) => rejection.respond(&hub),
    }
}

/// `QUERY /.well-known/mercure` (draft-08 §Subscription): the parameters
/// in a form body, for matcher lists too long for a URI. The body and the
/// query component are taken together, the query's pairs first, so that a
/// single-valued parameter (`last_event_id`) found in both takes the
/// query's value.
pub(crate) async fn subscribe_with_body(
    hub: Hub,
    query: Option<&str>,
    headers: &HeaderMap,
    connection: Connection,
    body: axum::body::Body,
) -> Response {
    let limit = hub.shared.config.max_body;
    let parameters = match super::read_form(headers, body, limit).await {
        Ok(form) => form,
        Err(rejection) => return rejection.respond(&hub),
    };
    let Ok(parameters) = std::str::from_utf8(&parameters) else {
        return Rejection::UnreadableBody("the request body is not UTF-8".into()).respond(&hub);
    };
    let union = match query.filter(|q| !q.is_empty()) {
        Some(query) => format!("{query}&{parameters}"),
        None => parameters.to_owned(),
    };
    match open(hub.clone(), Some(&union), headers, connection).await {
        Ok(response) => response,
        Err(rejection) => rejection.respond(&hub),
    }
}

/// `connection` says what the server knows of the request's connection:
/// its stall flag and peer address when the hub's own server serves it.
async fn open(
    hub: Hub,
    query: Option<&str>,
    headers: &HeaderMap,
    connection: Connection,
) -> Result<Response, Rejection> {
    if hub.is_shutting_down() {
        return Err(shutting_down());
    }
    let shared = Arc::clone(&hub.shared);
    let config = &shared.config;
    let request = parse_subscribe(query.unwrap_or(""), &config.limits, config.protocol)
        .map_err(Rejection::BadSubscription)?;
    let matchers = request
        .matchers
        .iter()
        .map(|requested| match requested {
            RequestedMatcher::Selector(s) => Ok(Matcher::selector(s, &shared.matcher)),
            RequestedMatcher::Match(t, v) => Matcher::typed(*t, v, &config.hub_url).map_err(|e| {
                let field = match t {
                    MatchType::Exact => "match",
                    MatchType::UrlPattern => "match_urlpattern",
                };
                Rejection::BadSubscription(ProtocolError::new(field, format!("{v:?}: {e}")))
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let grants = authenticate(&hub, headers, query).await?;
    if let Some(SocketsShort(budget)) = connection.sockets_short {
        Metrics::inc(&shared.metrics.subscribers_refused_total);
        return Err(Rejection::AtCapacity {
            message: format!(
                "the hub's open connections are at {budget}, the most its open-file limit leaves for HTTP/1.1 event streams; reconnect later, over HTTP/2, or to another node"
            ),
            retry_after: 5,
        });
    }
    // Counted before anything is registered: a refused client costs the
    // hub nothing more.
    let permit = admit_client(&hub, grants.as_ref(), headers, connection.peer)?;
    let last_event_id = match headers.get(&LAST_EVENT_ID) {
        Some(raw) => Some(
            std::str::from_utf8(raw.as_bytes())
                .map_err(|_| {
                    Rejection::BadSubscription(ProtocolError::new(
                        "Last-Event-ID",
                        "the header is not valid UTF-8",
                    ))
                })?
                .to_owned(),
        ),
        None => request.last_event_id,
    }
    // An empty id is no position (browsers never send one): no replay.
    .filter(|id| !id.is_empty());
    let token_expiry = grants
        .as_ref()
        .and_then(|g| g.expires)
        .and_then(deadline_of)
        .map(|at| (at, End::TokenExpiry));
    let lifetime = shared
        .config
        .max_stream_lifetime
        .and_then(|l| Instant::now().checked_add(jittered(l)))
        .map(|at| (at, End::Lifetime));
    let ends = token_expiry
        .into_iter()
        .chain(lifetime)
        .min_by_key(|(at, _)| *at);
    let active: Vec<ActiveSubscription> = if shared.presence.is_some() {
        let subscriber = new_subscriber_id();
        request
            .matchers
            .iter()
            .map(|requested| {
                let (match_type, pattern) = match requested {
                    RequestedMatcher::Selector(s) => (None, s),
                    RequestedMatcher::Match(t, v) => (Some(*t), v),
                };
                ActiveSubscription {
                    match_type,
                    pattern: pattern.clone(),
                    subscriber: subscriber.clone(),
                    payload: grants
                        .as_ref()
                        .and_then(|g| g.payload_for(pattern, &config.hub_url)),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    let grants = grants.map(|g| g.subscribe);
    let interest = Arc::new(Interest { matchers, grants });

    // Register for live entries before reading history: nothing stored
    // from here on can be missed.
    let (registration, inbox) = shared
        .fanout
        .register(Arc::clone(&interest))
        .map_err(|e| match e {
            Unregistered::Closed => shutting_down(),
            Unregistered::TooManyPatterns(limit) => Rejection::TooManyRequests {
                message: format!(
                    "the hub holds its limit of {limit} distinct URI templates and URL patterns; subscribe with exact topics or patterns already in use, or retry later"
                ),
                // Long enough for subscribers to come and go.
                retry_after: 10,
            },
            Unregistered::Full(limit) => Rejection::AtCapacity {
                message: format!(
                    "the hub serves its limit of {limit} streams; reconnect later or to another node"
                ),
                // Spreads the retries of a full node's clients a little.
                retry_after: 5,
            },
        })?;

    let mut resumed_from = None;
    let mut replay = None;
    let mut last_seq = 0;
    if let Some(id) = last_event_id {
        let found = if id == EARLIEST {
            None
        } else {
            shared.history.seq_of(&id).await.map_err(unavailable)?
        };
        let after = found.unwrap_or(0);
        last_seq = after;
        let page = shared
            .history
            .read_after(after, REPLAY_PAGE)
            .await
            .map_err(unavailable)?;
        // The id may have been evicted between the lookup and the read.
        let intact = found.is_some() && page.first().is_none_or(|e| e.seq == after + 1);
        // `earliest` itself asks for everything: nothing was lost.
        let lost = (request.lost_events && !intact && id != EARLIEST).then(|| id.clone());
        resumed_from = Some(if intact { id } else { EARLIEST.to_owned() });
        replay = Some(Replay::new(page, lost));
    }

    tracing::debug!(
        matchers = ?interest.matchers,
        revision = ?request.revision,
        authorized = interest.grants.is_some(),
        resumed_from = resumed_from.as_deref().unwrap_or(""),
        "subscribed"
    );
    let protocol = shared.config.protocol;
    let announced = if active.is_empty() {
        None
    } else {
        Some(Announced::start(&hub, active).await)
    };
    let subscription =
        Subscription::new(hub, interest, (registration, inbox), replay, last_seq, ends)
            .announced(announced)
            .stall_flag(connection.stall)
            .client_permit(permit);

    let mut response = super::event_stream(subscription);
    let out = response.headers_mut();
    if let Some(id) = resumed_from {
        // Ids come from the publish form or the request and may hold bytes a
        // header cannot; such an id is still replayed from, just not echoed.
        if let Ok(value) = HeaderValue::from_str(&id) {
            if protocol.speaks(Revision::Draft07) {
                out.insert(LAST_EVENT_ID.clone(), value.clone());
            }
            if protocol.speaks(Revision::Draft08) {
                out.insert(MERCURE_LAST_EVENT_ID.clone(), value);
            }
        }
    }
    Ok(response)
}

/// A place for the stream among its client's, when streams per client are
/// limited and the client is known: by its token's subject, else by its
/// address. `None` when there is no limit, or no subject and no address
/// (a server that does not give it).
fn admit_client(
    hub: &Hub,
    grants: Option<&Grants>,
    headers: &HeaderMap,
    peer: Option<std::net::SocketAddr>,
) -> Result<Option<ClientPermit>, Rejection> {
    let Some(limit) = &hub.shared.client_limit else {
        return Ok(None);
    };
    let trusted = &hub.shared.config.trusted_proxies;
    let key = match (grants.and_then(|g| g.subject.as_ref()), peer) {
        (Some(subject), _) => ClientKey::Subject {
            issuer: grants.and_then(|g| g.issuer.clone()),
            subject: subject.clone(),
        },
        (None, Some(peer)) => ClientKey::address(client_addr(peer.ip(), headers, trusted)),
        (None, None) => return Ok(None),
    };
    limit.admit(&key).map(Some).map_err(|refused| {
        let proxy = peer
            .map(|p| p.ip().to_canonical())
            .filter(|p| forwarded_by_untrusted(*p, headers, trusted));
        if let (ClientKey::Address(_), Some(proxy)) = (&key, proxy) {
            if limit.first_hint() {
                tracing::warn!(
                    "a stream from {proxy} was refused for its client's limit although the request came with X-Forwarded-For: if {proxy} is your reverse proxy, trust it (herald serve --trusted-proxy {proxy}) so that the clients behind it count apart (said once)"
                );
            }
        }
        Rejection::TooManyRequests {
            message: refused.message,
            retry_after: super::client_limit::RETRY_AFTER,
        }
    })
}

fn unavailable(e: crate::history::HistoryError) -> Rejection {
    Rejection::HistoryUnavailable(e)
}

/// The subscriber's grants, `None` for an anonymous subscriber.
async fn authenticate(
    hub: &Hub,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Option<Grants>, Rejection> {
    let shared = &hub.shared;
    let anonymous = shared.config.anonymous;
    let Some(presented) =
        presented_token(headers, query, shared.config.protocol).map_err(Rejection::from)?
    else {
        return if anonymous {
            Ok(None)
        } else {
            Err(Rejection::TokenMissing(
                token_missing(shared.config.protocol).into(),
            ))
        };
    };
    match subscriber_grants(hub, &presented.token).await {
        Ok(grants) => Ok(Some(grants)),
        // A stale draft-07 cookie must not lock a browser out of public
        // updates it could read without one (a common complaint about the
        // reference hub); a token given explicitly is still refused, and so
        // is draft-08's cookie, which §Error Responses leaves no choice for.
        Err(Refused::Invalid(reason))
            if presented.source == TokenSource::Cookie(Revision::Draft07) && anonymous =>
        {
            tracing::debug!(%reason, "ignoring an unusable token cookie; subscribing anonymously");
            Ok(None)
        }
        Err(refused) => Err(refused.into()),
    }
}

/// Where a subscriber may present its token, on a hub speaking `protocol`.
fn token_missing(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Draft08 => "subscribing needs an access token: send \"Authorization: Bearer <token>\" or the \"__Secure-mercure_access_token\" cookie",
        Protocol::Draft07 => "subscribing needs a JWT: send \"Authorization: Bearer <token>\", the \"authorization\" query parameter or the \"mercureAuthorization\" cookie",
        Protocol::Both => "subscribing needs a token: send \"Authorization: Bearer <token>\", the \"__Secure-mercure_access_token\" cookie (an access token) or, with a draft-07 JWT, the \"authorization\" query parameter or the \"mercureAuthorization\" cookie",
    }
}

/// What a subscriber's token allows, or why it is refused.
pub(super) async fn subscriber_grants(hub: &Hub, token: &str) -> Result<Grants, Refused> {
    auth::verify(&hub.shared, token, Role::Subscriber).await
}

/// A stream's lifetime: `lifetime` less up to a fifth, at random, so that
/// the streams opened in one burst (a deploy, a reconnect storm) do not all
/// end, and reconnect, in the same second again.
fn jittered(lifetime: Duration) -> Duration {
    lifetime.mul_f64(1.0 - LIFETIME_JITTER * rand::random::<f64>())
}

/// The largest share of a stream's lifetime its jitter takes away.
const LIFETIME_JITTER: f64 = 0.2;

/// The instant a token with `exp` (seconds since the epoch) runs out;
/// `None` when that is too far away to represent (it never runs out).
fn deadline_of(exp: u64) -> Option<Instant> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let left = Duration::from_secs(exp).saturating_sub(now);
    Instant::now().checked_add(left)
}

fn shutting_down() -> Rejection {
    Rejection::ShuttingDown
}

#[cfg(test)]
mod tests {
    use super::*;

    // Lifetimes fall within the last fifth before the limit, spread out.
    #[test]
    fn jittered_lifetimes_spread_over_the_last_fifth() {
        let lifetime = Duration::from_secs(100);
        let samples: Vec<Duration> = (0..1000).map(|_| jittered(lifetime)).collect();
        assert!(samples
            .iter()
            .all(|d| *d >= Duration::from_secs(80) && *d <= lifetime));
        let early = samples
            .iter()
            .filter(|d| **d < Duration::from_secs(90))
            .count();
        // About half: far from none and from all, whatever the draw.
        assert!(
            (300..700).contains(&early),
            "{early} of 1000 in the first half"
        );
    }
}
