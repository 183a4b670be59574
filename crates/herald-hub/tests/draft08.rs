//! Mercure draft-08 (1.0) beside draft-07 on one hub, over TCP: each test
//! names the section of shared/spec/mercure-draft-08.md it checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::*;
use herald_hub::HubConfig;
use herald_hub::HubUrl;
use herald_hub::Protocol;
use herald_hub::HUB_PATH;
use http_body_util::Full;
use hyper::Request;
use hyper::StatusCode;

fn query(pairs: &[(&str, &str)]) -> String {
    form(pairs)
}

/// A subscribe request read to its end: for refusals.
async fn refused(addr: std::net::SocketAddr, query: &str) -> Reply {
    refused_with(addr, query, None).await
}

/// [`refused`], presenting `token` in the Authorization header.
async fn refused_with(addr: std::net::SocketAddr, query: &str, token: Option<&str>) -> Reply {
    let mut req = Request::get(format!("http://{addr}{HUB_PATH}?{query}"));
    if let Some(token) = token {
        req = req.header("authorization", format!("Bearer {token}"));
    }
    request(req.body(Full::new(Bytes::new())).unwrap()).await
}

fn hub_config(protocol: Protocol) -> HubConfig {
    HubConfig {
        protocol,
        hub_url: HubUrl::parse("https://hub.example.com/.well-known/mercure").unwrap(),
        ..config()
    }
}

// §Subscription, §Exact Matching, §URL Pattern: `match` and
// `match_urlpattern`, relative patterns resolved against the hub's URL.
#[tokio::test]
async fn match_and_match_urlpattern_subscriptions_receive_what_they_select() {
    let hub = start(hub_config(Protocol::Both)).await;
    let mut exact = subscribe(
        hub.addr,
        &query(&[("match", "https://example.com/books/1")]),
        &[],
    )
    .await;
    let mut pattern = subscribe(
        hub.addr,
        &query(&[("match_urlpattern", "https://example.com/books/:id")]),
        &[],
    )
    .await;
    let mut relative =
        subscribe(hub.addr, &query(&[("match_urlpattern", "/books/:id")]), &[]).await;
    let mut star = subscribe(hub.addr, &query(&[("match_urlpattern", "*")]), &[]).await;
    for s in [&mut exact, &mut pattern, &mut relative, &mut star] {
        assert_eq!(s.status, StatusCode::OK);
        s.ready().await;
    }
    publish(
        hub.addr,
        &[("topic", "https://example.com/books/1"), ("data", "one")],
    )
    .await;
    publish(
        hub.addr,
        &[("topic", "https://example.com/books/2"), ("data", "two")],
    )
    .await;
    publish(hub.addr, &[("topic", "/books/3"), ("data", "three")]).await;
    publish(
        hub.addr,
        &[
            ("topic", "https://hub.example.com/books/4"),
            ("data", "four"),
        ],
    )
    .await;
    publish(hub.addr, &[("topic", "end"), ("data", "end")]).await;
    let data = |events: Vec<herald_sse::Event>| -> Vec<String> {
        events.iter().map(|e| e.data().to_owned()).collect()
    };
    assert_eq!(
        data(star.events_until("end").await),
        ["one", "two", "three", "four"]
    );
    assert_eq!(exact.next_event_within(LONG).await.unwrap().data(), "one");
    assert_nothing_before_marker(hub.addr, &mut exact, "https://example.com/books/1", "exact")
        .await;
    let got = pattern.take(2, LONG).await;
    assert_eq!(data(got), ["one", "two"]);
    let got = relative.take(2, LONG).await;
    assert_eq!(data(got), ["three", "four"]);
}

// §Subscription: the reserved `match` namespace (the suffix in canonical
// case only), value constraints (UTF-8; no C0, DEL, C1 or format
// characters) and malformed URL patterns are 400s that say what is wrong.
#[tokio::test]
async fn bad_matchers_are_400() {
    let hub = start(hub_config(Protocol::Both)).await;
    for (q, says) in [
        (query(&[("match_template", "/a/{x}")]), "match_template"),
        (query(&[("Match", "a")]), "Match"),
        (query(&[("match_URLPATTERN", "/a/:x")]), "match_URLPATTERN"),
        (query(&[("match", "a\u{200b}")]), "format characters"),
        (query(&[("match", "a\u{7}")]), "control"),
        (query(&[("match", "a\u{7f}")]), "control"),
        (query(&[("match", "a\u{85}")]), "control"),
        ("match=a%FF".to_owned(), "UTF-8"),
        (
            query(&[("match_urlpattern", "https://example.com/(")]),
            "not a URL pattern",
        ),
        (query(&[("match", "")]), "empty"),
    ] {
        let reply = refused(hub.addr, &q).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{q}");
        assert!(reply.body.contains(says), "{q}: {}", reply.body);
    }
}

// §Subscription: the query is parsed as `application/x-www-form-urlencoded`
// (as `URLSearchParams` does): `+` is a space, `;` is no delimiter, and a
// name without a value has an empty value (refused for a matcher).
#[tokio::test]
async fn the_query_is_parsed_as_a_form() {
    let hub = start(hub_config(Protocol::Both)).await;
    let mut sub = subscribe(hub.addr, "match=a+b;c", &[]).await;
    assert_eq!(sub.status, StatusCode::OK);
    sub.ready().await;
    publish(hub.addr, &[("topic", "a+b;c"), ("data", "undecoded")]).await;
    publish(hub.addr, &[("topic", "a b"), ("data", "split at ;")]).await;
    publish(hub.addr, &[("topic", "a b;c"), ("data", "decoded")]).await;
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "decoded");

    let reply = refused(hub.addr, "match").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("empty"), "{}", reply.body);
}

// §Subscription: past the hub's limits on the number of matchers (100) and
// the length of one (4096 characters), a subscription is a 400.
#[tokio::test]
async fn matcher_limits_are_400() {
    let hub = start(hub_config(Protocol::Both)).await;
    let many: String = (0..101)
        .map(|i| format!("match=t{i}"))
        .collect::<Vec<_>>()
        .join("&");
    let reply = refused(hub.addr, &many).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("100"), "{}", reply.body);
    let reply = refused(hub.addr, &format!("match_urlpattern=/{}", "x".repeat(4096))).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("4096"), "{}", reply.body);

    // 99 short matchers and one of 4096 characters: at both limits.
    let at_the_limits: String = (1..100)
        .map(|i| format!("match=t{i}"))
        .chain([format!("match={}", "x".repeat(4096))])
        .collect::<Vec<_>>()
        .join("&");
    let sub = subscribe(hub.addr, &at_the_limits, &[]).await;
    assert_eq!(sub.status, StatusCode::OK);
}

// §Reconciliation: an id outside ASCII (a draft-07 publisher may choose
// one) is echoed in the resume fields as its UTF-8 bytes; only an id with
// a control character cannot be a header value (docs/conformance.md).
#[tokio::test]
async fn a_non_ascii_id_is_echoed_as_its_utf8_bytes() {
    let hub = start(hub_config(Protocol::Both)).await;
    publish(
        hub.addr,
        &[("topic", "/t"), ("id", "café-1"), ("data", "1")],
    )
    .await;
    publish(hub.addr, &[("topic", "/t"), ("data", "2")]).await;
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", "café-1")]),
        &[],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    assert_eq!(
        sub.headers["mercure-last-event-id"].as_bytes(),
        "café-1".as_bytes()
    );
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "2");
}

// §Reconciliation: `last_event_id` in the query, the header winning over
// it, and `Mercure-Last-Event-ID` naming the event before the first sent.
#[tokio::test]
async fn last_event_id_and_mercure_last_event_id() {
    let hub = start(hub_config(Protocol::Both)).await;
    let first = publish(hub.addr, &[("topic", "/t"), ("data", "1")]).await;
    let second = publish(hub.addr, &[("topic", "/t"), ("data", "2")]).await;
    publish(hub.addr, &[("topic", "/t"), ("data", "3")]).await;

    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", &first)]),
        &[],
    )
    .await;
    assert_eq!(sub.headers["mercure-last-event-id"], first.as_str());
    assert_eq!(sub.headers["last-event-id"], first.as_str());
    let got: Vec<String> = sub
        .take(2, LONG)
        .await
        .iter()
        .map(|e| e.data().to_owned())
        .collect();
    assert_eq!(got, ["2", "3"]);

    // The header takes precedence over the query parameter.
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", &first)]),
        &[("Last-Event-ID", &second)],
    )
    .await;
    assert_eq!(sub.headers["mercure-last-event-id"], second.as_str());
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "3");

    // An unknown id: everything held, and `earliest`.
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", "nope")]),
        &[],
    )
    .await;
    assert_eq!(sub.headers["mercure-last-event-id"], "earliest");
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "1");

    // No position asked: no field.
    let sub = subscribe(hub.addr, &query(&[("match", "/t")]), &[]).await;
    assert!(sub.headers.get("mercure-last-event-id").is_none());
}

// §Reconciliation: `Mercure-Last-Event-ID` is `earliest` when no event
// precedes the first one sent: the history is empty, the subscriber asked
// for `earliest`, or the id asked for was discarded.
#[tokio::test]
async fn mercure_last_event_id_is_earliest_when_nothing_precedes() {
    let hub = start(HubConfig {
        history_size: 3,
        ..hub_config(Protocol::Both)
    })
    .await;
    let sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", "urn:uuid:never")]),
        &[],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    assert_eq!(sub.headers["mercure-last-event-id"], "earliest", "empty");

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(publish(hub.addr, &[("topic", "/t"), ("data", &i.to_string())]).await);
    }
    let data = |events: Vec<herald_sse::Event>| -> Vec<String> {
        events.iter().map(|e| e.data().to_owned()).collect()
    };
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", "earliest")]),
        &[],
    )
    .await;
    assert_eq!(sub.headers["mercure-last-event-id"], "earliest", "asked");
    assert_eq!(data(sub.take(3, LONG).await), ["2", "3", "4"]);

    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", &ids[0])]),
        &[],
    )
    .await;
    assert_eq!(
        sub.headers["mercure-last-event-id"], "earliest",
        "discarded"
    );
    assert_eq!(data(sub.take(3, LONG).await), ["2", "3", "4"]);

    // Still held: the id itself.
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", &ids[3])]),
        &[],
    )
    .await;
    assert_eq!(sub.headers["mercure-last-event-id"], ids[3].as_str());
    assert_eq!(data(sub.take(1, LONG).await), ["4"]);
}

// §Reconciliation: an id that several updates reused resolves to the
// earliest of them, and everything after it is sent, the later update with
// the same id included.
#[tokio::test]
async fn a_reused_id_resolves_to_its_earliest_update() {
    let hub = start(hub_config(Protocol::Both)).await;
    publish(hub.addr, &[("topic", "/t"), ("data", "0")]).await;
    for (id, data) in [("reused", "1"), ("other", "2"), ("reused", "3")] {
        let reply = publish(hub.addr, &[("topic", "/t"), ("id", id), ("data", data)]).await;
        assert_eq!(reply, id);
    }
    publish(hub.addr, &[("topic", "/t"), ("data", "4")]).await;
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", "reused")]),
        &[],
    )
    .await;
    assert_eq!(sub.headers["mercure-last-event-id"], "reused");
    let got: Vec<(String, String)> = sub
        .take(3, LONG)
        .await
        .iter()
        .map(|e| (e.last_event_id().to_owned(), e.data().to_owned()))
        .collect();
    let data: Vec<&str> = got.iter().map(|(_, d)| d.as_str()).collect();
    assert_eq!(data, ["2", "3", "4"]);
    assert_eq!(got[1].0, "reused");
}

// What draft-07 clients send (draft-07 §Reconciliation: `lastEventID`);
// `reconnecting-eventsource` resumes with `lastEventId`, the reference
// hub's legacy mode reads `Last-Event-ID` from the query; each replays
// what was missed.
#[tokio::test]
async fn draft_07_clients_resume_with_every_spelling() {
    let hub = start(config()).await;
    let first = publish(hub.addr, &[("topic", "t"), ("data", "1")]).await;
    publish(hub.addr, &[("topic", "t"), ("data", "2")]).await;
    for name in ["lastEventID", "lastEventId", "Last-Event-ID"] {
        let mut sub = subscribe(hub.addr, &query(&[("topic", "t"), (name, &first)]), &[]).await;
        assert_eq!(sub.headers["last-event-id"], first.as_str(), "{name}");
        assert_eq!(
            sub.next_event_within(LONG).await.unwrap().data(),
            "2",
            "{name}"
        );
    }
}

// `--protocol 08` refuses draft-07 subscriptions and does not answer with
// draft-07's `Last-Event-ID`; `--protocol 07` refuses `match`.
#[tokio::test]
async fn strict_revisions() {
    let hub = start(access::hub_with_issuer(Protocol::Draft08)).await;
    let reply = refused(hub.addr, &topics(&["t"])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("--protocol 08"), "{}", reply.body);
    let reply = publish_as(
        hub.addr,
        Some(&access::any_publisher()),
        &[("topic", "/t"), ("data", "1")],
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let id = reply.body;
    let sub = subscribe(
        hub.addr,
        &query(&[("match", "/t"), ("last_event_id", &id)]),
        &[],
    )
    .await;
    assert_eq!(sub.headers["mercure-last-event-id"], id.as_str());
    assert!(sub.headers.get("last-event-id").is_none());

    let hub = start(hub_config(Protocol::Draft07)).await;
    let reply = refused(hub.addr, &query(&[("match", "t")])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(reply.body.contains("--protocol 07"), "{}", reply.body);
    let id = publish(hub.addr, &[("topic", "t"), ("data", "1")]).await;
    let sub = subscribe(
        hub.addr,
        &query(&[("topic", "t"), ("lastEventID", &id)]),
        &[],
    )
    .await;
    assert_eq!(sub.headers["last-event-id"], id.as_str());
    assert!(sub.headers.get("mercure-last-event-id").is_none());
}

// §Publication: the reserved namespace, the topic `*`, the event type
// `mercure`, the id `earliest` or starting with `#`, a non-digit retry,
// and (strict) control and format characters in topics, ids and types are
// 400s, for every topic of the update; an early draft's `target` is
// refused. The 200 is the id, as `text/plain; charset=utf-8`.
#[tokio::test]
async fn publish_rules() {
    let hub = start(access::hub_with_issuer(Protocol::Draft08)).await;
    let token = access::any_publisher();
    for (pairs, field) in [
        (
            vec![
                ("topic", "a"),
                ("topic", "/.well-known/mercure/subscriptions/x"),
            ],
            "topic",
        ),
        (
            vec![("topic", "https://hub.example.com/.well-known/%6Dercure")],
            "topic",
        ),
        (vec![("topic", "*")], "topic"),
        (vec![("topic", "a"), ("type", "mercure")], "type"),
        (vec![("topic", "a"), ("type", "up\u{7}")], "type"),
        (vec![("topic", "a"), ("type", "up\u{200b}")], "type"),
        (vec![("topic", "a"), ("id", "earliest")], "id"),
        (vec![("topic", "a"), ("id", "#1")], "id"),
        (vec![("topic", "a\u{7f}")], "topic"),
        (vec![("topic", "a\u{202e}")], "topic"),
        (vec![("topic", "a"), ("id", "x\u{85}")], "id"),
        (vec![("topic", "a"), ("retry", "1e3")], "retry"),
        (vec![("topic", "a"), ("target", "user-1")], "target"),
    ] {
        let reply = publish_as(hub.addr, Some(&token), &pairs).await;
        assert_eq!(
            reply.status,
            StatusCode::BAD_REQUEST,
            "{pairs:?}: {}",
            reply.body
        );
        assert!(
            reply.body.contains(&format!("\"{field}\"")),
            "{pairs:?}: {}",
            reply.body
        );
    }
    // The 200 is the id as text/plain; charset=utf-8.
    let reply = publish_as(hub.addr, Some(&token), &[("topic", "a"), ("id", "urn:x:1")]).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "text/plain; charset=utf-8");
    assert_eq!(reply.body, "urn:x:1");
}

// §Subscribers: the routing matchers select, the token grants; a draft-08
// subscription with a draft-07 token (a mix `both` allows) receives the
// private updates its grant covers and no others.
#[tokio::test]
async fn private_updates_need_a_grant_whatever_the_matchers_select() {
    let hub = start(hub_config(Protocol::Both)).await;
    let reader = token(&[], &["https://example.com/books/1"]);
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match_urlpattern", "https://example.com/books/:id")]),
        &[("Authorization", &format!("Bearer {reader}"))],
    )
    .await;
    sub.ready().await;
    for (topic, data) in [
        ("https://example.com/books/2", "not granted"),
        ("https://example.com/books/1", "granted"),
    ] {
        publish(
            hub.addr,
            &[("topic", topic), ("data", data), ("private", "on")],
        )
        .await;
    }
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "granted");
}

async fn get(addr: std::net::SocketAddr, path: &str) -> Reply {
    let req = Request::get(format!("http://{addr}{path}"))
        .body(Full::new(Bytes::new()))
        .unwrap();
    request(req).await
}

const METADATA_PATH: &str = "/.well-known/oauth-protected-resource/.well-known/mercure";

// §Protected Resource Metadata: the document at the path RFC 9728 derives
// from the hub URL, with `resource` equal to the hub's identifier; a hub
// speaking only draft-07 publishes none (§Protected Resource Metadata:
// pre-standardization hubs do not).
#[tokio::test]
async fn protected_resource_metadata_names_the_resource_and_how_to_present_tokens() {
    let hub = start(hub_config(Protocol::Both)).await;
    let reply = get(hub.addr, METADATA_PATH).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.headers["content-type"], "application/json");
    let document: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(
        document["resource"],
        "https://hub.example.com/.well-known/mercure"
    );
    assert_eq!(
        document["authorization_details_types_supported"],
        serde_json::json!(["https://mercure.rocks/authorization-detail"])
    );
    assert_eq!(
        document["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    assert_eq!(document["mercure_cookie"], "__Secure-mercure_access_token");

    let old = start(hub_config(Protocol::Draft07)).await;
    assert_eq!(
        get(old.addr, METADATA_PATH).await.status,
        StatusCode::NOT_FOUND
    );
}

// §Error Responses: no token where one is needed is a 401 with a bare
// Bearer challenge pointing at the metadata; a draft-07-only hub has no
// metadata to point at.
#[tokio::test]
async fn a_missing_token_gets_a_challenge_with_resource_metadata() {
    let hub = start(HubConfig {
        anonymous: false,
        ..hub_config(Protocol::Both)
    })
    .await;
    let reply = refused(hub.addr, &query(&[("match", "a")])).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        reply.headers["www-authenticate"],
        "Bearer resource_metadata=\"https://hub.example.com/.well-known/oauth-protected-resource/.well-known/mercure\""
    );

    let old = start(HubConfig {
        anonymous: false,
        ..hub_config(Protocol::Draft07)
    })
    .await;
    let reply = refused(old.addr, &query(&[("topic", "a")])).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    assert_eq!(reply.headers["www-authenticate"], "Bearer");
}

// §Presenting the Access Token: a hub speaking only draft-08 does not
// accept a token in the query string; it says so with `invalid_request`
// (§Error Responses: a malformed presentation).
#[tokio::test]
async fn a_draft08_hub_refuses_a_token_in_the_query_string() {
    let hub = start(hub_config(Protocol::Draft08)).await;
    let reader = token(&[], &["*"]);
    let reply = refused(
        hub.addr,
        &query(&[("match", "a"), ("authorization", &reader)]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    assert!(
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer error=\"invalid_request\""),
        "{:?}",
        reply.headers
    );
    assert!(reply.body.contains("query string"), "{}", reply.body);
}

// §Cookie: the `__Secure-mercure_access_token` cookie carries the token of
// an EventSource; its grants unlock private updates.
#[tokio::test]
async fn the_secure_cookie_carries_a_subscribers_token() {
    let hub = start(hub_config(Protocol::Both)).await;
    let reader = token(&[], &["https://example.com/books/1"]);
    let mut sub = subscribe(
        hub.addr,
        &query(&[("match", "https://example.com/books/1")]),
        &[(
            "Cookie",
            &format!("theme=dark; __Secure-mercure_access_token={reader}"),
        )],
    )
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    sub.ready().await;
    publish(
        hub.addr,
        &[
            ("topic", "https://example.com/books/1"),
            ("data", "private"),
            ("private", "on"),
        ],
    )
    .await;
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "private");
}

// §Error Responses: a token that fails validation is a 401 with
// `invalid_token`, in draft-08's cookie too, even on a hub that admits
// anonymous subscribers (only a stale draft-07 cookie falls back to an
// anonymous subscription: auth.rs).
#[tokio::test]
async fn an_invalid_token_in_the_secure_cookie_is_refused_even_when_anonymous_is_allowed() {
    let hub = start(hub_config(Protocol::Both)).await;
    let sub = subscribe(
        hub.addr,
        &query(&[("match", "https://example.com/books/1")]),
        &[("Cookie", "__Secure-mercure_access_token=not.a.token")],
    )
    .await;
    assert_eq!(sub.status, StatusCode::UNAUTHORIZED);
    let challenge = sub.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
}

fn query_request(addr: std::net::SocketAddr, query: &str, body: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method("QUERY")
        .uri(format!("http://{addr}{HUB_PATH}?{query}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(body.to_owned())))
        .unwrap()
}

// §Subscription: the QUERY method carries the parameters in a form body;
// the hub takes the union of body and query, a matcher from each, and
// `last_event_id` from the query when both give one, the `Last-Event-ID`
// header winning over both.
#[tokio::test]
async fn query_method_subscribes_with_the_union_of_body_and_query() {
    let hub = start(hub_config(Protocol::Both)).await;
    let first = publish(hub.addr, &[("topic", "from-body"), ("data", "1")]).await;
    let second = publish(hub.addr, &[("topic", "from-body"), ("data", "2")]).await;
    publish(hub.addr, &[("topic", "from-body"), ("data", "3")]).await;
    let mut sub = subscribe_request(query_request(
        hub.addr,
        &query(&[("match", "from-query"), ("last_event_id", &second)]),
        &query(&[("match", "from-body"), ("last_event_id", &first)]),
    ))
    .await;
    assert_eq!(sub.status, StatusCode::OK);
    assert_eq!(sub.headers["mercure-last-event-id"], second.as_str());
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "3");
    sub.ready().await;
    publish(hub.addr, &[("topic", "from-query"), ("data", "4")]).await;
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "4");

    // The `Last-Event-ID` header takes precedence over either.
    let mut req = query_request(
        hub.addr,
        &query(&[("last_event_id", &second)]),
        &query(&[("match", "from-body"), ("last_event_id", &second)]),
    );
    req.headers_mut()
        .insert("last-event-id", first.parse().unwrap());
    let mut sub = subscribe_request(req).await;
    assert_eq!(sub.headers["mercure-last-event-id"], first.as_str());
    assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "2");
}

// §Subscription: the reserved namespace and value rules apply to the body's
// names and values as to the query's.
#[tokio::test]
async fn query_method_body_follows_the_query_rules() {
    let hub = start(hub_config(Protocol::Both)).await;
    for body in ["matchx=a", "match=a%00b", "match_urlpattern=%28"] {
        let sub = subscribe_request(query_request(hub.addr, "", body)).await;
        assert_eq!(sub.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let json = Request::builder()
        .method("QUERY")
        .uri(format!("http://{}{HUB_PATH}", hub.addr))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from("{}")))
        .unwrap();
    assert_eq!(
        request(json).await.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE
    );
}

// QUERY is a draft-08 method: a hub speaking only draft-07 answers 405, and
// `Allow` says what each hub takes.
#[tokio::test]
async fn allow_lists_query_only_where_draft08_is_spoken() {
    let both = start(hub_config(Protocol::Both)).await;
    let old = start(hub_config(Protocol::Draft07)).await;
    let delete = |addr| {
        Request::builder()
            .method("DELETE")
            .uri(format!("http://{addr}{HUB_PATH}"))
            .body(Full::new(Bytes::new()))
            .unwrap()
    };
    let reply = request(delete(both.addr)).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers["allow"], "GET, HEAD, POST, QUERY");
    let reply = request(delete(old.addr)).await;
    assert_eq!(reply.headers["allow"], "GET, HEAD, POST");
    let reply = request(query_request(old.addr, "", "topic=a")).await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
}

// ---------- draft-08 access tokens (at+jwt) ----------

mod access {
    use super::*;
    use herald_hub::access_token::{
        mint, AccessTokenConfig, IssuerConfig, KeySource, MERCURE_DETAIL_TYPE,
    };
    use jsonwebtoken::Algorithm;
    use serde_json::{json, Map, Value};

    const ED_PRIVATE: &[u8] = include_bytes!("fixtures/ed25519_private.pem");
    const ED_PUBLIC: &str = include_str!("fixtures/ed25519_public.pem");
    const ISSUER: &str = "https://issuer.example";
    const RESOURCE: &str = "https://hub.example.com/.well-known/mercure";

    pub(super) fn hub_with_issuer(protocol: Protocol) -> HubConfig {
        HubConfig {
            access_tokens: Some(AccessTokenConfig::new(
                RESOURCE,
                vec![IssuerConfig {
                    issuer: ISSUER.into(),
                    keys: vec![KeySource::Pem(ED_PUBLIC.into())],
                }],
            )),
            ..hub_config(protocol)
        }
    }

    /// An access token with these authorization details.
    pub(super) fn access_token(details: Value) -> String {
        let claims: Map<String, Value> = json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": "user-1", "client_id": "app",
            "iat": now(), "exp": now() + 600, "jti": "j",
            "authorization_details": details,
        })
        .as_object()
        .cloned()
        .unwrap();
        mint(Algorithm::EdDSA, ED_PRIVATE, None, &claims).unwrap()
    }

    /// An access token that may publish anywhere.
    pub(super) fn any_publisher() -> String {
        access_token(json!([detail(&["publish"], json!([{"match": "*"}]))]))
    }

    pub(super) fn detail(actions: &[&str], topics: Value) -> Value {
        json!({"type": MERCURE_DETAIL_TYPE, "actions": actions, "topics": topics})
    }

    fn challenge(reply: &Reply) -> String {
        reply.headers["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned()
    }

    // §Publishers: the token must grant publish on every topic of the
    // update; otherwise 403 insufficient_scope and nothing is dispatched.
    #[tokio::test]
    async fn an_access_token_publishes_only_where_its_details_allow() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let mut sub = subscribe(hub.addr, &query(&[("match", "*")]), &[]).await;
        sub.ready().await;
        let publisher = access_token(json!([detail(
            &["publish"],
            json!([{"match": "https://example.com/books/:id", "match_type": "urlpattern"}])
        )]));
        let reply = publish_as(
            hub.addr,
            Some(&publisher),
            &[
                ("topic", "https://example.com/books/1"),
                ("topic", "https://example.com/authors/1"),
                ("data", "no"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
        assert!(challenge(&reply).starts_with("Bearer error=\"insufficient_scope\""));
        let reply = publish_as(
            hub.addr,
            Some(&publisher),
            &[("topic", "https://example.com/books/1"), ("data", "yes")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "yes");
    }

    // §Subscribers, §Private Update Audience: a private update reaches a
    // subscriber whose token grants subscribe on one of its topics,
    // canonical or alternate, and no other.
    #[tokio::test]
    async fn private_updates_follow_the_subscribe_details() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let reader = access_token(json!([detail(
            &["subscribe"],
            json!([{"match": "https://example.com/users/42/*", "match_type": "urlpattern"}])
        )]));
        let mut sub = subscribe(
            hub.addr,
            &query(&[("match_urlpattern", "https://example.com/books/:id")]),
            &[("Authorization", &format!("Bearer {reader}"))],
        )
        .await;
        assert_eq!(sub.status, StatusCode::OK);
        sub.ready().await;
        publish(
            hub.addr,
            &[
                ("topic", "https://example.com/books/2"),
                ("data", "not granted"),
                ("private", "on"),
            ],
        )
        .await;
        publish(
            hub.addr,
            &[
                ("topic", "https://example.com/books/1"),
                ("topic", "https://example.com/users/42/books/1"),
                ("data", "granted by the alternate"),
                ("private", "on"),
            ],
        )
        .await;
        assert_eq!(
            sub.next_event_within(LONG).await.unwrap().data(),
            "granted by the alternate"
        );
    }

    // §Topic Matcher List: a matcher that does not parse for its type makes
    // the token invalid (401 invalid_token), not a narrower grant.
    #[tokio::test]
    async fn an_invalid_matcher_in_the_token_is_an_invalid_token() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let bad = access_token(json!([detail(
            &["subscribe"],
            json!([{"match": "(", "match_type": "urlpattern"}])
        )]));
        let reply = refused_with(hub.addr, &query(&[("match", "a")]), Some(&bad)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert!(challenge(&reply).starts_with("Bearer error=\"invalid_token\""));
    }

    // §Cookie: the __Secure- cookie carries an access token.
    #[tokio::test]
    async fn the_secure_cookie_carries_an_access_token() {
        let hub = start(hub_with_issuer(Protocol::Draft08)).await;
        let reader = access_token(json!([detail(
            &["subscribe"],
            json!([{"match": "https://example.com/a"}])
        )]));
        let mut sub = subscribe(
            hub.addr,
            &query(&[("match", "https://example.com/a")]),
            &[("Cookie", &format!("__Secure-mercure_access_token={reader}"))],
        )
        .await;
        assert_eq!(sub.status, StatusCode::OK);
        sub.ready().await;
        let publisher = access_token(json!([detail(&["publish"], json!([{"match": "*"}]))]));
        let reply = publish_as(
            hub.addr,
            Some(&publisher),
            &[
                ("topic", "https://example.com/a"),
                ("data", "private"),
                ("private", "on"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        assert_eq!(sub.next_event_within(LONG).await.unwrap().data(), "private");
    }

    // §Security Considerations: access tokens MUST NOT be passed in URLs;
    // on a hub that also speaks draft-07 (whose clients may) an access
    // token in the query string is refused all the same, with
    // `invalid_request`, and so is one in a QUERY body.
    #[tokio::test]
    async fn an_access_token_in_the_query_string_is_refused_on_a_hub_speaking_both() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let reader = access_token(json!([detail(&["subscribe"], json!([{"match": "*"}]))]));
        let reply = refused(
            hub.addr,
            &query(&[("match", "a"), ("authorization", &reader)]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert!(challenge(&reply).starts_with("Bearer error=\"invalid_request\""));
        assert!(reply.body.contains("access token"), "{}", reply.body);

        let body = query(&[("match", "a"), ("authorization", &reader)]);
        let reply = common::request(super::query_request(hub.addr, "", &body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        assert!(reply.body.contains("QUERY body"), "{}", reply.body);
    }

    // §Error Responses: a 401 says where this hub takes a token, and only
    // places it accepts.
    #[tokio::test]
    async fn a_missing_token_is_told_where_this_hub_takes_one() {
        let secure = "__Secure-mercure_access_token";
        let old_cookie = "mercureAuthorization";
        let in_query = "\"authorization\" query parameter";
        for (protocol, subscription, named, never) in [
            (
                Protocol::Draft08,
                ("match", "a"),
                vec![secure],
                vec![old_cookie, in_query],
            ),
            (
                Protocol::Draft07,
                ("topic", "a"),
                vec![old_cookie, in_query],
                vec![secure],
            ),
            (
                Protocol::Both,
                ("match", "a"),
                vec![secure, old_cookie, in_query],
                vec![],
            ),
        ] {
            let hub = start(HubConfig {
                anonymous: false,
                ..hub_with_issuer(protocol)
            })
            .await;
            let reply = refused(hub.addr, &query(&[subscription])).await;
            assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{protocol:?}");
            for place in named {
                assert!(reply.body.contains(place), "{protocol:?}: {}", reply.body);
            }
            for place in never {
                assert!(!reply.body.contains(place), "{protocol:?}: {}", reply.body);
            }
        }
    }

    /// What a subscription to `https://example.com/p` presenting a token
    /// as `place` gets on a hub speaking `protocol`: its status when
    /// refused, else whether a private update reached it (read up to a
    /// public marker published after it).
    async fn private_reaches(
        protocol: Protocol,
        vocabulary: &str,
        place: Place<'_>,
    ) -> Result<bool, StatusCode> {
        const TOPIC: &str = "https://example.com/p";
        let hub = start(hub_with_issuer(protocol)).await;
        let mut pairs = vec![(vocabulary, TOPIC)];
        let cookie;
        let mut headers = Vec::new();
        match place {
            Place::Header(token) => {
                cookie = format!("Bearer {token}");
                headers.push(("authorization", cookie.as_str()));
            }
            Place::Query(token) => pairs.push(("authorization", token)),
            Place::Cookie(name, token) => {
                cookie = format!("{name}={token}");
                headers.push(("cookie", cookie.as_str()));
            }
        }
        let mut sub = subscribe(hub.addr, &query(&pairs), &headers).await;
        if sub.status != StatusCode::OK {
            return Err(sub.status);
        }
        sub.ready().await;
        let publisher = match protocol {
            Protocol::Draft08 => any_publisher(),
            _ => super::publisher(),
        };
        for (data, private) in [("private", true), ("marker", false)] {
            let mut form = vec![("topic", TOPIC), ("data", data)];
            if private {
                form.push(("private", "on"));
            }
            let reply = publish_as(hub.addr, Some(&publisher), &form).await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        }
        let before = sub.events_until("marker").await;
        Ok(before.iter().any(|e| e.data() == "private"))
    }

    #[derive(Clone, Copy)]
    enum Place<'a> {
        Header(&'a str),
        Query(&'a str),
        Cookie(&'a str, &'a str),
    }

    // docs/protocol.md §Mixes, row by row: which token, presented where,
    // works with which subscription vocabulary on which hub.
    #[tokio::test]
    async fn the_mixes_table_holds() {
        let old = token(&[], &["*"]);
        let access = access_token(json!([detail(&["subscribe"], json!([{"match": "*"}]))]));
        let secure = "__Secure-mercure_access_token";
        let old_cookie = "mercureAuthorization";
        let (both, strict, legacy) = (Protocol::Both, Protocol::Draft08, Protocol::Draft07);
        let rows: Vec<(Protocol, &str, Place, Result<bool, StatusCode>)> = vec![
            (both, "match", Place::Header(&old), Ok(true)),
            (both, "topic", Place::Header(&access), Ok(true)),
            (both, "match", Place::Cookie(secure, &access), Ok(true)),
            (both, "topic", Place::Cookie(secure, &old), Ok(true)),
            (both, "match", Place::Cookie(old_cookie, &access), Ok(true)),
            (both, "match", Place::Query(&old), Ok(true)),
            (both, "topic", Place::Cookie(old_cookie, &old), Ok(true)),
            (
                both,
                "match",
                Place::Query(&access),
                Err(StatusCode::BAD_REQUEST),
            ),
            (
                strict,
                "match",
                Place::Header(&old),
                Err(StatusCode::UNAUTHORIZED),
            ),
            (strict, "match", Place::Cookie(secure, &access), Ok(true)),
            (
                strict,
                "match",
                Place::Cookie(old_cookie, &access),
                Ok(false),
            ),
            (
                strict,
                "match",
                Place::Query(&access),
                Err(StatusCode::BAD_REQUEST),
            ),
            (
                strict,
                "topic",
                Place::Header(&access),
                Err(StatusCode::BAD_REQUEST),
            ),
            (
                legacy,
                "topic",
                Place::Header(&access),
                Err(StatusCode::UNAUTHORIZED),
            ),
            (legacy, "topic", Place::Cookie(secure, &old), Ok(false)),
            (legacy, "topic", Place::Cookie(secure, &access), Ok(false)),
            (
                legacy,
                "topic",
                Place::Cookie(old_cookie, &access),
                Ok(false),
            ),
            (
                legacy,
                "match",
                Place::Header(&old),
                Err(StatusCode::BAD_REQUEST),
            ),
            (legacy, "topic", Place::Cookie(old_cookie, &old), Ok(true)),
            (legacy, "topic", Place::Query(&old), Ok(true)),
            (
                legacy,
                "topic",
                Place::Query(&access),
                Err(StatusCode::BAD_REQUEST),
            ),
        ];
        for (i, (protocol, vocabulary, place, expected)) in rows.into_iter().enumerate() {
            assert_eq!(
                private_reaches(protocol, vocabulary, place).await,
                expected,
                "row {i}: {protocol:?} {vocabulary}"
            );
        }
    }

    // Each revision's tokens only where the hub speaks it.
    #[tokio::test]
    async fn a_hub_refuses_the_tokens_of_a_revision_it_does_not_speak() {
        let strict = start(hub_with_issuer(Protocol::Draft08)).await;
        let reply = publish_as(strict.addr, Some(&publisher()), &[("topic", "a")]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.contains("access token"), "{}", reply.body);

        let old = start(hub_with_issuer(Protocol::Draft07)).await;
        let publisher = access_token(json!([detail(&["publish"], json!([{"match": "*"}]))]));
        let reply = publish_as(old.addr, Some(&publisher), &[("topic", "a")]).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
        assert!(reply.body.contains("draft-07 only"), "{}", reply.body);
    }

    // §Publication: an access-token publisher follows draft-08's character
    // rules even on a hub that speaks both revisions.
    #[tokio::test]
    async fn access_token_publishers_follow_draft08_character_rules() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let publisher = access_token(json!([detail(&["publish"], json!([{"match": "*"}]))]));
        let reply = publish_as(hub.addr, Some(&publisher), &[("topic", "a\u{200b}b")]).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
        // The same topic from a draft-07 publisher on this hub is accepted.
        let reply = publish_as(
            hub.addr,
            Some(&super::publisher()),
            &[("topic", "a\u{200b}b")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    }

    /// An access token with these authorization details and `changes`
    /// made to the claims (a `null` removes one).
    fn access_token_with(details: Value, changes: Value) -> String {
        let mut claims: Map<String, Value> = json!({
            "iss": ISSUER, "aud": RESOURCE, "sub": "user-1", "client_id": "app",
            "iat": now(), "exp": now() + 600, "jti": "j",
            "authorization_details": details,
        })
        .as_object()
        .cloned()
        .unwrap();
        for (name, value) in changes.as_object().unwrap() {
            match value {
                Value::Null => claims.remove(name),
                _ => claims.insert(name.clone(), value.clone()),
            };
        }
        mint(Algorithm::EdDSA, ED_PRIVATE, None, &claims).unwrap()
    }

    // §Token Validation, §Error Responses: a token failing validation is a
    // 401 with `invalid_token`, to subscribe and to publish alike: expired,
    // no `exp`, not yet valid (`nbf`), another audience, an issuer the hub
    // does not trust, or signed with a key other than its issuer's.
    #[tokio::test]
    async fn access_tokens_failing_validation_are_invalid_tokens() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let both = json!([detail(&["publish", "subscribe"], json!([{"match": "*"}]))]);
        let other_key = {
            let claims: Map<String, Value> = json!({
                "iss": ISSUER, "aud": RESOURCE, "sub": "user-1", "client_id": "app",
                "iat": now(), "exp": now() + 600, "jti": "j",
                "authorization_details": both.clone(),
            })
            .as_object()
            .cloned()
            .unwrap();
            mint(Algorithm::HS256, KEY.as_bytes(), None, &claims).unwrap()
        };
        for (why, token) in [
            (
                "expired",
                access_token_with(both.clone(), json!({"exp": now() - 60})),
            ),
            (
                "no exp",
                access_token_with(both.clone(), json!({"exp": null})),
            ),
            (
                "not yet valid",
                access_token_with(both.clone(), json!({"nbf": now() + 600})),
            ),
            (
                "another audience",
                access_token_with(both.clone(), json!({"aud": "https://other.example/hub"})),
            ),
            (
                "untrusted issuer",
                access_token_with(both.clone(), json!({"iss": "https://stranger.example"})),
            ),
            ("another key", other_key),
        ] {
            let sub = subscribe(
                hub.addr,
                &query(&[("match", "a")]),
                &[("Authorization", &format!("Bearer {token}"))],
            )
            .await;
            assert_eq!(sub.status, StatusCode::UNAUTHORIZED, "{why}");
            let offered = sub.headers["www-authenticate"].to_str().unwrap();
            assert!(
                offered.starts_with("Bearer error=\"invalid_token\""),
                "{why}: {offered}"
            );
            let reply = publish_as(hub.addr, Some(&token), &[("topic", "a")]).await;
            assert_eq!(
                reply.status,
                StatusCode::UNAUTHORIZED,
                "{why}: {}",
                reply.body
            );
            assert!(
                challenge(&reply).starts_with("Bearer error=\"invalid_token\""),
                "{why}"
            );
        }
        assert_eq!(hub.hub.metrics().history.events, 0, "nothing published");
    }

    // §Authorization Details: a token past the hub's limits (64 Mercure
    // details, 256 topics in one, 4096 characters in one matcher) is an
    // invalid token, not a narrower grant.
    #[tokio::test]
    async fn a_token_past_the_detail_limits_is_an_invalid_token() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let one = detail(&["subscribe"], json!([{"match": "a"}]));
        let topics: Vec<Value> = (0..257)
            .map(|i| json!({"match": format!("t{i}")}))
            .collect();
        for (why, details) in [
            ("65 details", Value::Array(vec![one.clone(); 65])),
            (
                "257 topics",
                json!([detail(&["subscribe"], Value::Array(topics))]),
            ),
            (
                "a 4097-character matcher",
                json!([detail(&["subscribe"], json!([{"match": "x".repeat(4097)}]))]),
            ),
        ] {
            let sub = subscribe(
                hub.addr,
                &query(&[("match", "a")]),
                &[(
                    "Authorization",
                    &format!("Bearer {}", access_token(details)),
                )],
            )
            .await;
            assert_eq!(sub.status, StatusCode::UNAUTHORIZED, "{why}");
            let offered = sub.headers["www-authenticate"].to_str().unwrap();
            assert!(
                offered.starts_with("Bearer error=\"invalid_token\""),
                "{why}: {offered}"
            );
        }
        // At the limits, the token is good.
        let at_limits = access_token(Value::Array(vec![one; 64]));
        let sub = subscribe(
            hub.addr,
            &query(&[("match", "a")]),
            &[("Authorization", &format!("Bearer {at_limits}"))],
        )
        .await;
        assert_eq!(sub.status, StatusCode::OK);
    }

    // §Topic Matcher List: without `match_type` a matcher is exact (a URL
    // pattern's syntax is then just bytes); a `match_type` the hub does not
    // support makes the token invalid.
    #[tokio::test]
    async fn a_matcher_without_match_type_is_exact() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let reader = access_token(json!([detail(
            &["subscribe"],
            json!([{"match": "https://example.com/books/:id"}])
        )]));
        let mut sub = subscribe(
            hub.addr,
            &query(&[("match", "*")]),
            &[("Authorization", &format!("Bearer {reader}"))],
        )
        .await;
        assert_eq!(sub.status, StatusCode::OK);
        sub.ready().await;
        for (topic, data) in [
            ("https://example.com/books/1", "a pattern would grant this"),
            ("https://example.com/books/:id", "the same bytes"),
        ] {
            publish(
                hub.addr,
                &[("topic", topic), ("data", data), ("private", "on")],
            )
            .await;
        }
        assert_eq!(
            sub.next_event_within(LONG).await.unwrap().data(),
            "the same bytes"
        );

        let unsupported = access_token(json!([detail(
            &["subscribe"],
            json!([{"match": "https://example.com/{id}", "match_type": "template"}])
        )]));
        let reply = refused_with(hub.addr, &query(&[("match", "a")]), Some(&unsupported)).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{}", reply.body);
        assert!(challenge(&reply).starts_with("Bearer error=\"invalid_token\""));
    }

    // §Authorization Details: an action the hub does not know grants
    // nothing and does not invalidate the token.
    #[tokio::test]
    async fn unknown_actions_are_ignored() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let mixed = access_token(json!([detail(
            &["publish", "archive"],
            json!([{"match": "*"}])
        )]));
        let reply = publish_as(hub.addr, Some(&mixed), &[("topic", "a")]).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let unknown_only = access_token(json!([detail(&["archive"], json!([{"match": "*"}]))]));
        let reply = publish_as(hub.addr, Some(&unknown_only), &[("topic", "a")]).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{}", reply.body);
        assert!(challenge(&reply).starts_with("Bearer error=\"insufficient_scope\""));
    }

    // §Publication: `private` marks an update private by its presence,
    // whatever its value (empty, "false", "off"): only subscribers whose
    // token grants one of its topics receive it. (§Authorization: an
    // anonymous subscriber receives no private update.)
    #[tokio::test]
    async fn private_is_a_flag_whatever_its_value() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let reader = access_token(json!([detail(&["subscribe"], json!([{"match": "/t"}]))]));
        let mut granted = subscribe(
            hub.addr,
            &query(&[("match", "/t")]),
            &[("Authorization", &format!("Bearer {reader}"))],
        )
        .await;
        let mut anonymous = subscribe(hub.addr, &query(&[("match", "/t")]), &[]).await;
        granted.ready().await;
        anonymous.ready().await;
        let publisher = any_publisher();
        for value in ["", "false", "off", "on"] {
            let data = format!("private={value:?}");
            let reply = publish_as(
                hub.addr,
                Some(&publisher),
                &[("topic", "/t"), ("data", &data), ("private", value)],
            )
            .await;
            assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
            assert_eq!(granted.next_event_within(LONG).await.unwrap().data(), data);
        }
        let reply = publish_as(
            hub.addr,
            Some(&publisher),
            &[("topic", "/t"), ("data", "public")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        let before = anonymous.events_until("public").await;
        assert!(before.is_empty(), "{before:?}");
    }

    // §Publication: fields the hub does not recognize are ignored.
    #[tokio::test]
    async fn unrecognized_publish_fields_are_ignored() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let mut sub = subscribe(hub.addr, &query(&[("match", "/t")]), &[]).await;
        sub.ready().await;
        let reply = publish_as(
            hub.addr,
            Some(&any_publisher()),
            &[
                ("topic", "/t"),
                ("x-trace", "abc"),
                ("match", "/elsewhere"),
                ("data", "delivered"),
                ("priority", "high"),
            ],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let event = sub.next_event_within(LONG).await.unwrap();
        assert_eq!(event.data(), "delivered");
        assert_eq!(event.last_event_id(), reply.body);
    }

    // §Reconciliation: replayed events are authorized like live ones,
    // against the token presented now: private events it does not grant are
    // not replayed, those it grants and the public ones are.
    #[tokio::test]
    async fn replay_reauthorizes_every_event_against_the_current_token() {
        let hub = start(hub_with_issuer(Protocol::Both)).await;
        let publisher = any_publisher();
        for (topic, data, private) in [
            ("https://example.com/books/1", "granted", true),
            ("https://example.com/books/2", "not granted", true),
            ("https://example.com/books/3", "public", false),
        ] {
            let mut pairs = vec![("topic", topic), ("data", data)];
            if private {
                pairs.push(("private", "on"));
            }
            let reply = publish_as(hub.addr, Some(&publisher), &pairs).await;
            assert_eq!(reply.status, StatusCode::OK);
        }
        let reader = access_token(json!([detail(
            &["subscribe"],
            json!([{"match": "https://example.com/books/1"}])
        )]));
        let mut sub = subscribe(
            hub.addr,
            &query(&[
                ("match_urlpattern", "https://example.com/books/:id"),
                ("last_event_id", "earliest"),
            ]),
            &[("Authorization", &format!("Bearer {reader}"))],
        )
        .await;
        assert_eq!(sub.status, StatusCode::OK);
        let reply = publish_as(
            hub.addr,
            Some(&publisher),
            &[("topic", "https://example.com/books/4"), ("data", "live")],
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
        let replayed: Vec<String> = sub
            .events_until("live")
            .await
            .iter()
            .map(|e| e.data().to_owned())
            .collect();
        assert_eq!(replayed, ["granted", "public"]);
    }

    // §Subscribers: the hub closes a subscriber's connection no later than
    // its access token's `exp`. Paused time, as for draft-07 tokens in
    // tests/auth.rs: the deadline is `exp` less the wall time at
    // validation, between the readings taken around the subscribe.
    #[test]
    fn an_access_tokens_exp_closes_the_stream() {
        use std::time::Duration;
        paused(|| async {
            let hub = start(hub_with_issuer(Protocol::Both)).await;
            let exp = now() + 60;
            let reader = access_token_with(
                json!([detail(&["subscribe"], json!([{"match": "/t"}]))]),
                json!({"exp": exp}),
            );
            let left_at = || Duration::from_secs(exp).saturating_sub(since_epoch());
            let most_left = left_at();
            let start = tokio::time::Instant::now();
            let mut sub = subscribe(
                hub.addr,
                &query(&[("match", "/t")]),
                &[("Authorization", &format!("Bearer {reader}"))],
            )
            .await;
            let least_left = left_at();
            assert_eq!(sub.status, StatusCode::OK);
            sub.ready().await;

            tokio::time::advance(least_left - Duration::from_millis(1)).await;
            publish(hub.addr, &[("topic", "/t"), ("data", "before exp")]).await;
            let events = sub.events_until("before exp").await;
            assert!(events.is_empty(), "{events:?}");
            assert!(!sub.ended, "open before exp");

            let elapsed = tokio::time::Instant::now() - start;
            tokio::time::advance(most_left - elapsed + Duration::from_millis(2)).await;
            assert!(sub.ends_within(LONG).await, "closed at exp");
            assert_eq!(sub.next_event().await, None);
        });
    }
}
