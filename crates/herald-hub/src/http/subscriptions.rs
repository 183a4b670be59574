//! `GET {hub path}/subscriptions[/…]`: the subscription API (draft-08
//! §Subscription API, and draft-07's shapes).
//!
//! The path is normalized first (each segment percent-decoded, then encoded
//! once as the hub encodes the topics of subscription events), so that it
//! is at once the key of the list and the topic the caller's token must
//! grant `subscribe` on. After `/subscriptions`:
//!
//! | segments | draft-08 | draft-07 |
//! | --- | --- | --- |
//! | none | every subscription | the same |
//! | `{a}` | | the subscriptions of topic `a` |
//! | `{a}/{b}` | the subscriptions of matcher `b` of type `a`, when `a` is a matcher type | subscription `b` of topic `a` otherwise |
//! | `{a}/{b}/{c}` | subscription `c` of matcher `b` of type `a` | |
//!
//! The answer is in the revision of the caller's token, with the cursor in
//! the `Link` header's `last-event-id` (and, for draft-07, the body's
//! `lastEventID`, at the root of every document, a single subscription's
//! too): the id of the last event the list reflects, to resume the
//! subscription events from without missing one.

use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;
use serde_json::json;

use super::subscribe::subscriber_grants;
use super::token::presented_token;
use super::Rejection;
use crate::matcher::{MatchType, Topic};
use crate::presence::{collection_path, segment, Presence, Snapshot};
use crate::protocol::{Revision, EARLIEST};
use crate::Hub;

pub(crate) async fn subscriptions(
    State(hub): State<Hub>,
    uri: Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    match answer(&hub, uri.path(), query.as_deref(), &headers).await {
        Ok(response) => response,
        Err(rejection) => rejection.respond(&hub),
    }
}

/// How long a request waits for a starting cluster node to load the
/// other nodes' subscriptions before it is told to retry.
const LOADING_LIMIT: Duration = Duration::from_secs(5);

/// The id of the entry at the list's start, where a list nothing has
/// changed since stands; `earliest` when there is none (an empty log) or it
/// is gone: following from the start of what is held also converges on the
/// truth, with more to read. Looked up once.
async fn start_id(hub: &Hub, presence: &Presence) -> String {
    if let Some(id) = presence.start_id.get() {
        return id.clone();
    }
    let seq = presence.start_seq();
    if seq == 0 {
        return EARLIEST.to_owned();
    }
    let id = match hub.shared.history.read_after(seq - 1, 1).await {
        Ok(page) => match page.first() {
            Some(entry) if entry.seq == seq => entry.id.clone(),
            _ => EARLIEST.to_owned(),
        },
        // Not remembered: history may answer next time.
        Err(_) => return EARLIEST.to_owned(),
    };
    presence.start_id.get_or_init(|| id).clone()
}

/// What the path asks for.
enum Resource {
    Collection(String),
    One(String),
}

async fn answer(
    hub: &Hub,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> Result<Response, Rejection> {
    let shared = &hub.shared;
    let config = &shared.config;
    let Some(presence) = &shared.presence else {
        return Err(Rejection::SubscriptionsOff);
    };
    let resource = resource(path, &collection_path(config.hub_url.as_url().path()))?;
    let (Resource::Collection(canonical) | Resource::One(canonical)) = &resource;

    // draft-08 §Subscription API: authorized like a subscription to the
    // relative URL as a topic.
    let presented = presented_token(headers, query, config.protocol)?.ok_or_else(|| {
        Rejection::TokenMissing(
            "the subscription API needs a token that grants subscribe on the requested URL".into(),
        )
    })?;
    let grants = subscriber_grants(hub, &presented.token).await?;
    let topic = Topic::new(canonical, &config.hub_url);
    if !grants.subscribe.iter().any(|m| m.matches(&topic)) {
        return Err(Rejection::InsufficientScope(format!(
            "the token does not grant subscribe on {canonical:?}"
        )));
    }

    if !presence.wait_complete(LOADING_LIMIT).await {
        return Err(Rejection::SubscriptionsLoading);
    }
    let Snapshot {
        subscriptions,
        last_id,
    } = presence.snapshot(canonical);
    let last_id = match last_id {
        Some(id) => id,
        None => start_id(hub, presence).await,
    };
    let body = match resource {
        Resource::One(id) => match subscriptions.into_iter().find(|doc| doc["id"] == *id) {
            // draft-07 §Subscription API: every endpoint sets `lastEventID`
            // at the root of its document, the single subscription's too;
            // draft-08 serves the event document unchanged (the cursor is
            // in the Link header).
            Some(mut doc) => {
                if let (Revision::Draft07, Some(fields)) = (grants.revision, doc.as_object_mut()) {
                    fields.insert("lastEventID".into(), last_id.clone().into());
                }
                doc
            }
            None => {
                return Err(Rejection::NotFound(format!(
                    "no active subscription {id:?}"
                )))
            }
        },
        Resource::Collection(id) => match grants.revision {
            Revision::Draft08 => json!({
                "id": id,
                "type": "subscriptions",
                "subscriptions": subscriptions,
            }),
            Revision::Draft07 => json!({
                "@context": "https://mercure.rocks/",
                "id": id,
                "type": "Subscriptions",
                "lastEventID": last_id,
                "subscriptions": subscriptions,
            }),
        },
    };
    let content_type = match grants.revision {
        Revision::Draft08 => "application/json",
        Revision::Draft07 => "application/ld+json",
    };
    let link = format!(
        "<{}>; rel=\"mercure\"; last-event-id=\"{}\"; type=\"mercure\"; content-type=\"application/json\"",
        config.hub_url,
        quoted(&last_id)
    );
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "must-revalidate"),
        ],
        body.to_string(),
    )
        .into_response();
    // An id that cannot be a header value (it came from a publisher) is
    // left out rather than failing the request; the body still has it.
    if let Ok(link) = HeaderValue::from_str(&link) {
        response.headers_mut().insert(header::LINK, link);
    }
    Ok(response)
}

/// The resource `path` names, with its path in canonical form.
fn resource(path: &str, collection: &str) -> Result<Resource, Rejection> {
    let rest = path
        .strip_prefix(collection)
        .ok_or_else(|| Rejection::NotFound(format!("no such resource {path:?}")))?;
    if rest.is_empty() || rest == "/" {
        return Ok(Resource::Collection(collection.to_owned()));
    }
    let Some(rest) = rest.strip_prefix('/') else {
        return Err(Rejection::NotFound(format!("no such resource {path:?}")));
    };
    let segments = rest
        .split('/')
        .map(|s| {
            percent_decode_str(s).decode_utf8().map_err(|_| {
                Rejection::BadPath(format!(
                    "the path segment {s:?} is not UTF-8 once percent-decoded"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let canonical = std::iter::once(collection.to_owned())
        .chain(segments.iter().map(|s| segment(s)))
        .collect::<Vec<_>>()
        .join("/");
    let typed = MatchType::from_name(&segments[0]).is_some();
    match (segments.len(), typed) {
        (1, _) | (2, true) => Ok(Resource::Collection(canonical)),
        (2, false) | (3, true) => Ok(Resource::One(canonical)),
        _ => Err(Rejection::NotFound(format!("no such resource {path:?}"))),
    }
}

/// `value` as the content of a quoted-string (RFC 9110 §5.6.4).
fn quoted(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"")
}
