//! Fuzz target for the publish path: a form body through `parse_publish`,
//! then the update rules and the encoder (`Update::new`).
//!
//! The first byte chooses the limits, the hub URL and strictness; the rest
//! is the body. Invariants checked:
//! 1. nothing panics;
//! 2. an accepted form stays within the limits (at least one topic, at most
//!    `max_topics`, none longer than `max_selector_len` characters) and has
//!    no empty `id` or `type`;
//! 3. the accepted form, encoded again canonically (every byte outside the
//!    unreserved set as `%XX`), parses back to the same form;
//! 4. an update accepted under draft-08's strict rules is accepted under
//!    draft-07's too;
//! 5. an accepted update's frame, parsed by herald-sse, is exactly one
//!    event with the form's type, id (or the generated one), retry and data
//!    (line breaks CR, LF and CRLF all read back as LF).
#![no_main]

use herald_hub::fuzzing;
use herald_hub::HubUrl;
use herald_hub::fuzzing::parse_publish;
use herald_hub::{ProtocolLimits, PublishForm};
use herald_sse::{Item, Parser};
use libfuzzer_sys::fuzz_target;

/// `value` with every byte but the unreserved ones percent-encoded.
fn encode(out: &mut String, value: &str) {
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The form as a body that says exactly what it holds.
fn canonical(form: &PublishForm) -> String {
    let mut body = String::new();
    let mut field = |name: &str, value: &str| {
        if !body.is_empty() {
            body.push('&');
        }
        body.push_str(name);
        body.push('=');
        encode(&mut body, value);
    };
    for topic in &form.topics {
        field("topic", topic);
    }
    field("data", &form.data);
    if let Some(id) = &form.id {
        field("id", id);
    }
    if let Some(t) = &form.event_type {
        field("type", t);
    }
    if let Some(ms) = form.retry {
        field("retry", &ms.to_string());
    }
    if form.private {
        field("private", "on");
    }
    body
}

/// What an `EventSource` reads back from data written with line breaks.
fn read_back(data: &str) -> String {
    data.replace("\r\n", "\n").replace('\r', "\n")
}

fuzz_target!(|input: &[u8]| {
    let Some((&flags, body)) = input.split_first() else {
        return;
    };
    let strict = flags & 1 != 0;
    let limits = if flags & 2 != 0 {
        // Tiny limits, so that the fuzzer reaches them.
        ProtocolLimits {
            max_topics: usize::from(flags >> 6) + 1,
            max_selectors: 100,
            max_selector_len: usize::from((flags >> 2) & 0x0f),
        }
    } else {
        ProtocolLimits::default()
    };
    let hub_url = if flags & 0x20 != 0 {
        HubUrl::parse("https://hub.example/a/hub/").expect("a constant URL")
    } else {
        HubUrl::default()
    };

    let Ok(form) = parse_publish(body, &limits) else {
        return;
    };
    assert!(!form.topics.is_empty(), "a form without topics: {form:?}");
    assert!(form.topics.len() <= limits.max_topics, "too many topics");
    for topic in &form.topics {
        assert!(
            topic.chars().count() <= limits.max_selector_len,
            "topic too long"
        );
    }
    assert!(form.id.as_deref() != Some(""), "empty id");
    assert!(form.event_type.as_deref() != Some(""), "empty type");

    let again = parse_publish(canonical(&form).as_bytes(), &limits);
    assert_eq!(again.as_ref(), Ok(&form), "form → canonical body → form");

    let lenient = fuzzing::update(form.clone(), &hub_url, false);
    let checked = if strict {
        let strict_result = fuzzing::update(form.clone(), &hub_url, true);
        if strict_result.is_ok() {
            assert!(
                lenient.is_ok(),
                "strict accepts what draft-07 refuses: {lenient:?}"
            );
        }
        strict_result
    } else {
        lenient
    };
    let Ok(entry) = checked else {
        return;
    };
    assert_eq!(entry.topics, form.topics);
    assert_eq!(entry.private, form.private);
    if let Some(id) = &form.id {
        assert_eq!(&entry.id, id);
    }

    let mut parser = Parser::new();
    parser.feed(&entry.frame);
    let mut events = Vec::new();
    while let Some(item) = parser.next_item() {
        match item {
            Ok(Item::Event(e)) => events.push(e),
            Ok(other) => panic!("the frame holds something else than the event: {other:?}"),
            Err(e) => panic!("the frame does not parse: {e}"),
        }
    }
    assert_eq!(events.len(), 1, "one frame, one event: {:?}", entry.frame);
    let event = &events[0];
    assert_eq!(event.data(), read_back(&form.data), "data");
    assert_eq!(
        event.event_type(),
        form.event_type.as_deref().unwrap_or("message"),
        "type"
    );
    assert_eq!(event.last_event_id(), entry.id, "id");
    assert_eq!(
        parser.last_event_id(),
        entry.id,
        "the parser's last event id"
    );
    assert_eq!(
        parser.retry(),
        form.retry.map(std::time::Duration::from_millis),
        "retry"
    );
});
