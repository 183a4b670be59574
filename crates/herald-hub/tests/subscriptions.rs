//! Active subscriptions: subscription events and the subscription API
//! (draft-08 §Active Subscriptions, and draft-07's formats). Each test
//! names the section it checks: a bare `§` is one of
//! shared/spec/mercure-draft-08.md, `draft-07 §` one of draft-07's
//! (docs/conformance.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use herald_hub::auth::Claims;
use herald_hub::HubConfig;
use http_body_util::Full;
use hyper::{Request, StatusCode};
use serde_json::{json, Value};

const COLLECTION: &str = "/.well-known/mercure/subscriptions";

fn tracking() -> HubConfig {
    HubConfig {
        subscriptions: true,
        // Short heartbeats make the hub notice a closed connection soon.
        heartbeat: Duration::from_millis(100),
        ..config()
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

/// A token that may read every subscription event and API resource.
fn watcher_token() -> String {
    token(&[], &["*"])
}

/// A watcher of every subscription event, from `last_event_id` if given.
async fn watch(hub: &TestHub, last_event_id: Option<&str>) -> Stream {
    let mut query = form(&[("match_urlpattern", &format!("{COLLECTION}/*"))]);
    if let Some(id) = last_event_id {
        query.push_str(&format!("&last_event_id={}", enc(id)));
    }
    let token = watcher_token();
    let mut watcher = subscribe(hub.addr, &query, &[("Authorization", &bearer(&token))]).await;
    assert_eq!(watcher.status, StatusCode::OK);
    watcher.ready().await;
    watcher
}

/// The next subscription document the watcher gets about `pattern`
/// (skipping those about other subscriptions, such as its own).
async fn next_about(watcher: &mut Stream, key: &str, pattern: &str) -> (String, Value) {
    loop {
        let event = watcher
            .next_event_within(LONG)
            .await
            .expect("a subscription event in time");
        let doc: Value = serde_json::from_str(event.data()).unwrap();
        if doc[key] == pattern {
            return (event.event_type().to_owned(), doc);
        }
    }
}

async fn get(hub: &TestHub, path: &str, token: Option<&str>) -> Reply {
    let mut req = Request::get(format!("http://{}{path}", hub.addr));
    if let Some(token) = token {
        req = req.header("Authorization", bearer(token));
    }
    request(req.body(Full::new(Bytes::new())).unwrap()).await
}

// §Subscription Events: an event when a subscription starts and when it
// ends, private, of type `mercure`, on the reserved topic, with the
// document the spec lists.
#[tokio::test]
async fn a_subscription_is_announced_when_it_starts_and_when_it_ends() {
    let hub = start(tracking()).await;
    let mut watcher = watch(&hub, None).await;
    let subscriber = token_with_payload(json!({"name": "Ada"}));
    let mut reader = subscribe(
        hub.addr,
        &form(&[("match", "https://example.com/books/1")]),
        &[("Authorization", &bearer(&subscriber))],
    )
    .await;
    reader.ready().await;

    let (event_type, started) =
        next_about(&mut watcher, "match", "https://example.com/books/1").await;
    assert_eq!(event_type, "mercure");
    assert_eq!(started["type"], "subscription");
    assert_eq!(started["match_type"], "exact");
    assert_eq!(started["active"], true);
    assert_eq!(started["payload"], json!({"name": "Ada"}));
    let id = started["id"].as_str().unwrap();
    let subscriber_id = started["subscriber"].as_str().unwrap();
    assert!(subscriber_id.starts_with("urn:uuid:"), "{subscriber_id}");
    assert_eq!(
        id,
        format!(
            "{COLLECTION}/exact/https%3A%2F%2Fexample.com%2Fbooks%2F1/{}",
            subscriber_id.replace(':', "%3A")
        )
    );

    drop(reader);
    let (_, ended) = next_about(&mut watcher, "match", "https://example.com/books/1").await;
    assert_eq!(ended["active"], false);
    assert_eq!(ended["id"], started["id"]);
}

fn token_with_payload(payload: Value) -> String {
    let claims = Claims {
        subscribe: Some(vec!["https://example.com/{+path}".into()]),
        payload: Some(payload),
        ..claims(&[], &[])
    };
    herald_hub::auth::mint(jsonwebtoken::Algorithm::HS256, KEY.as_bytes(), &claims).unwrap()
}

// §Subscription Events: the subscriber id is the hub's, one per
// connection, shared by the connection's subscriptions; distinct
// connections get distinct ids even with the same token; a client cannot
// supply it.
#[tokio::test]
async fn each_connection_gets_its_own_subscriber_id() {
    const FORGED: &str = "urn:uuid:00000000-0000-4000-8000-000000000000";
    let hub = start(tracking()).await;
    let mut watcher = watch(&hub, None).await;
    let mut first = subscribe(
        hub.addr,
        &form(&[("match", "a"), ("match", "b"), ("subscriber", FORGED)]),
        &[("Mercure-Subscriber", FORGED)],
    )
    .await;
    first.ready().await;
    let (_, a) = next_about(&mut watcher, "match", "a").await;
    let (_, b) = next_about(&mut watcher, "match", "b").await;
    assert_eq!(a["subscriber"], b["subscriber"]);
    assert_ne!(a["subscriber"], FORGED, "the client chose its id");
    assert!(!a["id"].as_str().unwrap().contains("00000000-0000"), "{a}");
    let mut second = subscribe(hub.addr, &form(&[("match", "a")]), &[]).await;
    second.ready().await;
    let (_, again) = next_about(&mut watcher, "match", "a").await;
    assert_ne!(again["subscriber"], a["subscriber"]);
}

// draft-07 §Subscription Events: draft-07 subscriptions are announced in
// draft-07's format, when they start and when they end: a JSON-LD document
// on `…/subscriptions/{topic}/{subscriber}` (each variable
// percent-encoded), whose `id` is that topic, with `@context`, `type`,
// `topic`, `subscriber`, `active` and the token's `mercure.payload`; as
// plain messages.
#[tokio::test]
async fn draft07_subscriptions_are_announced_in_draft07_format() {
    let hub = start(tracking()).await;
    let mut watcher = watch(&hub, None).await;
    let subscriber = token_with_payload(json!({"name": "Ada"}));
    let mut reader = subscribe(
        hub.addr,
        &topics(&["https://example.com/{x}"]),
        &[("Authorization", &bearer(&subscriber))],
    )
    .await;
    reader.ready().await;
    let (event_type, doc) = next_about(&mut watcher, "topic", "https://example.com/{x}").await;
    assert_eq!(event_type, "message");
    assert_eq!(doc["@context"], "https://mercure.rocks/");
    assert_eq!(doc["type"], "Subscription");
    assert_eq!(doc["active"], true);
    assert_eq!(doc["payload"], json!({"name": "Ada"}));
    let subscriber_id = doc["subscriber"].as_str().unwrap();
    assert!(subscriber_id.starts_with("urn:uuid:"), "{subscriber_id}");
    assert_eq!(
        doc["id"],
        format!(
            "{COLLECTION}/https%3A%2F%2Fexample.com%2F%7Bx%7D/{}",
            subscriber_id.replace(':', "%3A")
        )
    );

    drop(reader);
    let (_, ended) = next_about(&mut watcher, "topic", "https://example.com/{x}").await;
    assert_eq!(ended["active"], false);
    assert_eq!(ended["id"], doc["id"]);
    assert_eq!(ended["type"], "Subscription");
}

// draft-08 §Subscription Events and draft-07 §Subscription Events: the
// events are private. A subscriber whose matchers select their topics but
// whose token does not grant them (or who has no token) receives none; one
// whose token does, receives them.
#[tokio::test]
async fn subscription_events_are_private() {
    let hub = start(tracking()).await;
    let namespace = form(&[
        ("match_urlpattern", &format!("{COLLECTION}/*")),
        ("match", "marker"),
    ]);
    let mut anonymous = subscribe(hub.addr, &namespace, &[]).await;
    let other_grant = token(&[], &["marker"]);
    let mut ungranted = subscribe(
        hub.addr,
        &namespace,
        &[("Authorization", &bearer(&other_grant))],
    )
    .await;
    for s in [&mut anonymous, &mut ungranted] {
        assert_eq!(s.status, StatusCode::OK);
        s.ready().await;
    }
    let mut granted = watch(&hub, None).await;
    let mut draft08 = subscribe(hub.addr, &form(&[("match", "https://example.com/a")]), &[]).await;
    let mut draft07 = subscribe(hub.addr, &topics(&["https://example.com/b"]), &[]).await;
    draft08.ready().await;
    draft07.ready().await;
    next_about(&mut granted, "match", "https://example.com/a").await;
    next_about(&mut granted, "topic", "https://example.com/b").await;
    // Each announcement was published before its subscriber's stream
    // opened; the marker, published after, comes first for those not
    // allowed to read them.
    for (s, who) in [(&mut anonymous, "anonymous"), (&mut ungranted, "ungranted")] {
        assert_nothing_before_marker(hub.addr, s, "marker", who).await;
    }
}

// draft-08 §Subscription Events: the topic of the update is the `id` of its
// document, byte for byte (and so for draft-07's): a subscriber matching
// that id exactly receives the event announcing the subscription's end.
#[tokio::test]
async fn the_topic_of_a_subscription_event_is_its_id() {
    let hub = start(tracking()).await;
    let mut watcher = watch(&hub, None).await;
    let mut draft08 = subscribe(hub.addr, &form(&[("match", "https://example.com/a")]), &[]).await;
    let mut draft07 = subscribe(hub.addr, &topics(&["https://example.com/{b}"]), &[]).await;
    draft08.ready().await;
    draft07.ready().await;
    let (_, a) = next_about(&mut watcher, "match", "https://example.com/a").await;
    let (_, b) = next_about(&mut watcher, "topic", "https://example.com/{b}").await;
    for (reader, doc) in [(draft08, a), (draft07, b)] {
        let id = doc["id"].as_str().unwrap();
        let mut exact = subscribe(
            hub.addr,
            &form(&[("match", id)]),
            &[("Authorization", &bearer(&watcher_token()))],
        )
        .await;
        exact.ready().await;
        drop(reader);
        let ended: Value =
            serde_json::from_str(exact.next_event_within(LONG).await.unwrap().data()).unwrap();
        assert_eq!(ended["id"], id);
        assert_eq!(ended["active"], false);
    }
}

// §Subscription API and draft-07 §Subscription API (a draft-07 caller, so
// draft-07's shapes): the collection, one matcher's collection and one
// subscription, with the cursor in the Link header and in `lastEventID`;
// 404 for a subscription that is not active.
#[tokio::test]
async fn the_api_lists_active_subscriptions_with_a_cursor() {
    let hub = start(tracking()).await;
    let mut reader = subscribe(hub.addr, &form(&[("match", "https://example.com/a")]), &[]).await;
    reader.ready().await;
    let token = watcher_token();

    let reply = get(&hub, COLLECTION, Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    assert_eq!(
        reply.headers["content-type"], "application/ld+json",
        "a draft-07 token gets draft-07's shape"
    );
    let all: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(all["type"], "Subscriptions");
    let docs = all["subscriptions"].as_array().unwrap();
    assert_eq!(docs.len(), 1, "{docs:?}");
    let doc = &docs[0];
    assert_eq!(doc["match"], "https://example.com/a");
    let link = reply.headers["link"].to_str().unwrap();
    assert!(
        link.starts_with(
            "<http://localhost/.well-known/mercure>; rel=\"mercure\"; last-event-id=\""
        ),
        "{link}"
    );
    assert_eq!(all["lastEventID"], cursor(link));

    let per_matcher = format!("{COLLECTION}/exact/https%3A%2F%2Fexample.com%2Fa");
    let reply = get(&hub, &per_matcher, Some(&token)).await;
    let matcher: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(matcher["id"], per_matcher);
    assert_eq!(matcher["subscriptions"][0], *doc);

    // The same resource spelled with lower-case escapes is the same.
    let one = doc["id"].as_str().unwrap();
    let reply = get(&hub, &one.replace("%3A", "%3a"), Some(&token)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let mut single: Value = serde_json::from_str(&reply.body).unwrap();
    // draft-07 §Subscription API: `lastEventID` at the root, here too.
    let last_event_id = single.as_object_mut().unwrap().remove("lastEventID");
    assert_eq!(last_event_id, Some(all["lastEventID"].clone()));
    assert_eq!(single, *doc);

    let missing = format!("{per_matcher}/urn%3Auuid%3Anobody");
    assert_eq!(
        get(&hub, &missing, Some(&token)).await.status,
        StatusCode::NOT_FOUND
    );
}

fn cursor(link: &str) -> String {
    let start = link.find("last-event-id=\"").unwrap() + "last-event-id=\"".len();
    link[start..start + link[start..].find('"').unwrap()].to_owned()
}

// §Subscription API: the cursor passed back as `last_event_id` resumes the
// events with nothing missed: a subscription that started after the list
// was taken arrives as the first event about it.
#[tokio::test]
async fn the_cursor_resumes_the_events_after_the_list() {
    let hub = start(tracking()).await;
    let token = watcher_token();
    let reply = get(&hub, COLLECTION, Some(&token)).await;
    let cursor = cursor(reply.headers["link"].to_str().unwrap());
    assert_eq!(cursor, "earliest", "nothing dispatched yet");
    let mut later = subscribe(hub.addr, &form(&[("match", "late")]), &[]).await;
    later.ready().await;
    let reply = get(&hub, COLLECTION, Some(&token)).await;
    let after_late = self::cursor(reply.headers["link"].to_str().unwrap());
    let mut last = subscribe(hub.addr, &form(&[("match", "last")]), &[]).await;
    last.ready().await;

    let mut watcher = watch(&hub, Some(&after_late)).await;
    let first = watcher.next_event_within(LONG).await.unwrap();
    let doc: Value = serde_json::from_str(first.data()).unwrap();
    assert_eq!(
        doc["match"], "last",
        "the event after the cursor, not before"
    );
}

// §Subscription API: authorized like a subscription to the URL as a topic:
// no token 401, a token without the grant 403 insufficient_scope
// (draft-07 §Subscription API: the URL must match `mercure.subscribe`).
#[tokio::test]
async fn the_api_needs_a_grant_on_the_requested_url() {
    let hub = start(tracking()).await;
    let reply = get(&hub, COLLECTION, None).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let narrow = token(&[], &[&format!("{COLLECTION}/exact/a{{/rest}}")]);
    let reply = get(&hub, COLLECTION, Some(&narrow)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer error=\"insufficient_scope\""));
    let reply = get(&hub, &format!("{COLLECTION}/exact/a"), Some(&narrow)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
}

// Off by default: no events, no API, and the metadata does not claim it.
#[tokio::test]
async fn without_the_option_nothing_is_tracked() {
    let hub = start(config()).await;
    let reply = get(&hub, COLLECTION, Some(&watcher_token())).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    let mut reader = subscribe(hub.addr, &form(&[("match", "a")]), &[]).await;
    reader.ready().await;
    assert_eq!(hub.hub.metrics().history.events, 0);
    let metadata = get(
        &hub,
        "/.well-known/oauth-protected-resource/.well-known/mercure",
        None,
    )
    .await;
    let doc: Value = serde_json::from_str(&metadata.body).unwrap();
    assert!(doc.get("mercure_subscriptions").is_none());

    let on = start(tracking()).await;
    let metadata = get(
        &on,
        "/.well-known/oauth-protected-resource/.well-known/mercure",
        None,
    )
    .await;
    let doc: Value = serde_json::from_str(&metadata.body).unwrap();
    assert_eq!(doc["mercure_subscriptions"], true);
}

mod access {
    //! Draft-08 access tokens on a tracking hub.
    use super::*;
    use herald_hub::access_token::{
        mint, AccessTokenConfig, IssuerConfig, KeySource, MERCURE_DETAIL_TYPE,
    };

    const ED_PRIVATE: &[u8] = include_bytes!("fixtures/ed25519_private.pem");
    const ED_PUBLIC: &str = include_str!("fixtures/ed25519_public.pem");
    const ISSUER: &str = "https://issuer.example";
    const RESOURCE: &str = "http://localhost/.well-known/mercure";

    /// A tracking hub that also takes access tokens from [`ISSUER`].
    pub(super) fn tracking_with_issuer() -> HubConfig {
        HubConfig {
            access_tokens: Some(AccessTokenConfig::new(
                RESOURCE,
                vec![IssuerConfig {
                    issuer: ISSUER.into(),
                    keys: vec![KeySource::Pem(ED_PUBLIC.into())],
                }],
            )),
            ..tracking()
        }
    }

    /// A Mercure authorization detail granting `subscribe`.
    pub(super) fn subscribe_detail(topics: Value, payload: Option<Value>) -> Value {
        let mut detail =
            json!({"type": MERCURE_DETAIL_TYPE, "actions": ["subscribe"], "topics": topics});
        if let Some(payload) = payload {
            detail["payload"] = payload;
        }
        detail
    }

    /// An access token with these authorization details.
    pub(super) fn access_token(details: Value) -> String {
        let claims = json!({
            "iss": ISSUER, "aud": RESOURCE,
            "sub": "u", "client_id": "c", "iat": now(), "exp": now() + 600, "jti": "j",
            "authorization_details": details,
        });
        mint(
            jsonwebtoken::Algorithm::EdDSA,
            ED_PRIVATE,
            None,
            claims.as_object().unwrap(),
        )
        .unwrap()
    }
}

// §Payloads: a draft-08 subscription carries the payload of the first
// subscribe detail whose topics match its own matcher, taken as a topic;
// `*` serves as the default. It is in the subscription events and in the
// subscription API alike.
#[tokio::test]
async fn draft08_payloads_come_from_the_first_matching_detail() {
    use access::{access_token, subscribe_detail as detail};
    let hub = start(access::tracking_with_issuer()).await;
    let token = access_token(json!([
        detail(
            json!([{"match": "https://example.com/foo"}]),
            Some(json!({"n": 1}))
        ),
        detail(
            json!([{"match": "https://example.com/bar/:id", "match_type": "urlpattern"}]),
            Some(json!({"n": 2}))
        ),
        detail(json!([{"match": "*"}]), Some(json!({"n": 3}))),
    ]));
    let mut watcher = watch(&hub, None).await;
    let mut reader = subscribe(
        hub.addr,
        &form(&[
            ("match", "https://example.com/foo"),
            ("match_urlpattern", "https://example.com/bar/:id"),
            ("match", "https://example.com/other"),
        ]),
        &[("Authorization", &bearer(&token))],
    )
    .await;
    assert_eq!(reader.status, StatusCode::OK);
    reader.ready().await;
    let expected = [
        ("https://example.com/foo", 1),
        ("https://example.com/bar/:id", 2),
        ("https://example.com/other", 3),
    ];
    for (pattern, n) in expected {
        let (_, doc) = next_about(&mut watcher, "match", pattern).await;
        assert_eq!(doc["payload"], json!({"n": n}), "{pattern}");
    }
    // The list has taken in every event a subscriber has received.
    let reply = get(&hub, COLLECTION, Some(&watcher_token())).await;
    let listed: Value = serde_json::from_str(&reply.body).unwrap();
    for (pattern, n) in expected {
        let in_list = listed["subscriptions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["match"] == pattern)
            .unwrap_or_else(|| panic!("{pattern} listed: {listed}"));
        assert_eq!(in_list["payload"], json!({"n": n}), "{pattern}");
    }
}

// §Subscription API, to a draft-08 caller (an access token): every endpoint
// answers `application/json` and carries the cursor (the id of the last
// event dispatched) in `Link: <hub>; rel="mercure"; last-event-id=…`; a
// collection is `{id, type: "subscriptions", subscriptions}`; a single
// subscription is the document of its subscription event, unchanged. The
// token's grant is checked against the relative URL: an exact matcher on
// the collection, a relative URL pattern on what is below it.
#[tokio::test]
async fn the_api_answers_a_draft08_caller_in_draft08_form() {
    use access::{access_token, subscribe_detail};
    let hub = start(access::tracking_with_issuer()).await;
    let caller = access_token(json!([subscribe_detail(
        json!([
            {"match": COLLECTION},
            {"match": format!("{COLLECTION}/*"), "match_type": "urlpattern"},
        ]),
        None
    )]));
    let mut watcher = watch(&hub, None).await;
    let mut reader = subscribe(hub.addr, &form(&[("match", "https://example.com/a")]), &[]).await;
    reader.ready().await;
    let started = loop {
        let event = watcher.next_event_within(LONG).await.unwrap();
        let doc: Value = serde_json::from_str(event.data()).unwrap();
        if doc["match"] == "https://example.com/a" {
            break event;
        }
    };
    let event_doc: Value = serde_json::from_str(started.data()).unwrap();
    // The reader's announcement is the last event the hub dispatched.
    let expected_link = format!(
        "<http://localhost/.well-known/mercure>; rel=\"mercure\"; last-event-id=\"{}\"; type=\"mercure\"; content-type=\"application/json\"",
        started.last_event_id()
    );

    let per_matcher = format!("{COLLECTION}/exact/https%3A%2F%2Fexample.com%2Fa");
    let one = event_doc["id"].as_str().unwrap().to_owned();
    for path in [COLLECTION, &per_matcher, &one] {
        let reply = get(&hub, path, Some(&caller)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(reply.headers["content-type"], "application/json", "{path}");
        assert_eq!(reply.headers["link"], expected_link.as_str(), "{path}");
        let body: Value = serde_json::from_str(&reply.body).unwrap();
        if path == one {
            assert_eq!(body, event_doc, "the event's document, unchanged");
            continue;
        }
        assert_eq!(body["id"], path);
        assert_eq!(body["type"], "subscriptions");
        assert!(body.get("@context").is_none() && body.get("lastEventID").is_none());
        assert_eq!(
            listed_besides_the_watcher(&body),
            std::slice::from_ref(&event_doc),
            "{path}"
        );
    }
    let missing = format!("{per_matcher}/urn%3Auuid%3Anobody");
    let reply = get(&hub, &missing, Some(&caller)).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);

    // A grant on the collection alone does not reach below it.
    let narrow = access_token(json!([subscribe_detail(
        json!([{"match": COLLECTION}]),
        None
    )]));
    assert_eq!(
        get(&hub, COLLECTION, Some(&narrow)).await.status,
        StatusCode::OK
    );
    let reply = get(&hub, &per_matcher, Some(&narrow)).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
}

/// The documents of a collection, less those of [`watch`]'s subscription.
fn listed_besides_the_watcher(collection: &Value) -> Vec<Value> {
    let watcher = format!("{COLLECTION}/*");
    collection["subscriptions"]
        .as_array()
        .expect("a collection has subscriptions")
        .iter()
        .filter(|doc| doc["match"] != watcher.as_str())
        .cloned()
        .collect()
}

// draft-07 §Subscription API: for draft-07 subscriptions, the collection,
// `…/{topic}` and `…/{topic}/{subscriber}`, as `application/ld+json`;
// collections are `{@context, id, type: "Subscriptions", subscriptions}`;
// every document has `lastEventID` at its root (`earliest` before any
// event); a single subscription is its subscription event's document; an
// unknown one is a 404.
#[tokio::test]
async fn the_api_answers_a_draft07_caller_in_draft07_form() {
    let hub = start(tracking()).await;
    let caller = watcher_token();
    let reply = get(&hub, COLLECTION, Some(&caller)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let empty: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        empty,
        json!({
            "@context": "https://mercure.rocks/",
            "id": COLLECTION,
            "type": "Subscriptions",
            "lastEventID": "earliest",
            "subscriptions": [],
        })
    );

    let mut watcher = watch(&hub, None).await;
    let subscriber = token_with_payload(json!({"name": "Ada"}));
    let mut reader = subscribe(
        hub.addr,
        &topics(&["https://example.com/{x}"]),
        &[("Authorization", &bearer(&subscriber))],
    )
    .await;
    reader.ready().await;
    let started = loop {
        let event = watcher.next_event_within(LONG).await.unwrap();
        let doc: Value = serde_json::from_str(event.data()).unwrap();
        if doc["topic"] == "https://example.com/{x}" {
            break event;
        }
    };
    let event_doc: Value = serde_json::from_str(started.data()).unwrap();
    let cursor = started.last_event_id();

    let per_topic = format!("{COLLECTION}/https%3A%2F%2Fexample.com%2F%7Bx%7D");
    let one = event_doc["id"].as_str().unwrap().to_owned();
    for path in [COLLECTION, &per_topic, &one] {
        let reply = get(&hub, path, Some(&caller)).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.body);
        assert_eq!(
            reply.headers["content-type"], "application/ld+json",
            "{path}"
        );
        let mut body: Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(body["lastEventID"], cursor, "{path}");
        assert_eq!(
            self::cursor(reply.headers["link"].to_str().unwrap()),
            cursor
        );
        if path == one {
            body.as_object_mut().unwrap().remove("lastEventID");
            assert_eq!(body, event_doc, "the event's document");
            continue;
        }
        assert_eq!(body["@context"], "https://mercure.rocks/");
        assert_eq!(body["id"], path);
        assert_eq!(body["type"], "Subscriptions");
        assert_eq!(
            listed_besides_the_watcher(&body),
            std::slice::from_ref(&event_doc),
            "{path}"
        );
    }
    let missing = format!("{per_topic}/urn%3Auuid%3Anobody");
    assert_eq!(
        get(&hub, &missing, Some(&caller)).await.status,
        StatusCode::NOT_FOUND
    );
}

// §Subscription API: a hub serving cross-origin subscribers exposes the
// `Link` header of the API's answers to them, so that they can read the
// cursor.
#[tokio::test]
async fn the_api_exposes_its_link_header_to_cross_origin_callers() {
    const APP: &str = "https://app.example";
    let hub = start(HubConfig {
        cors_origins: vec![APP.into()],
        ..tracking()
    })
    .await;
    let req = Request::get(format!("http://{}{COLLECTION}", hub.addr))
        .header("Authorization", bearer(&watcher_token()))
        .header("Origin", APP)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let reply = request(req).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.contains_key("link"));
    assert_eq!(reply.headers["access-control-allow-origin"], APP);
    let exposed = reply.headers["access-control-expose-headers"]
        .to_str()
        .unwrap();
    assert!(
        exposed
            .split(',')
            .any(|h| h.trim().eq_ignore_ascii_case("link")),
        "{exposed}"
    );
}

// §Subscription API: the cursor of a list nothing has changed since the
// hub started is the last entry the log held then, not `earliest` (which
// would make a client replay the whole history to follow the list).
#[tokio::test]
async fn the_first_cursor_is_where_the_log_stood_at_the_start() {
    use herald_hub::history::{History, MemoryHistory, NewEntry};
    let history = std::sync::Arc::new(MemoryHistory::new(10));
    for id in ["old-1", "old-2"] {
        let frame = Bytes::from(format!("id: {id}\ndata: x\n\n"));
        let entry = NewEntry {
            id: id.into(),
            topics: vec!["t".into()],
            private: false,
            frame,
        };
        history.append(vec![entry]).await.unwrap();
    }
    let hub = start_hub(herald_hub::Hub::with_history(tracking(), history).unwrap()).await;
    let reply = get(&hub, COLLECTION, Some(&watcher_token())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let link = reply.headers["link"].to_str().unwrap();
    assert!(link.contains("last-event-id=\"old-2\""), "{link}");
}
