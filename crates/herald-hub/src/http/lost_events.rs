//! The `events_lost` signal: on the subscribe path, between resolving the
//! resume position and the replay, the one frame that tells a subscriber
//! opted in with `lost_events=1` that history no longer holds the id it
//! resumed from.
//!
//! The response header says so too (`earliest` in `Last-Event-ID` /
//! `Mercure-Last-Event-ID`), but a browser's `EventSource` cannot read
//! response headers; it can listen for an event. The frame is
//!
//! ```text
//! event: mercure
//! data: {"type":"events_lost","requested":"<id>","earliest":"<id>"|null}
//! ```
//!
//! Its type is the one the hub reserves for its own events, which no
//! publisher may use in either revision, so it cannot be forged; the JSON
//! `type` tells it from draft-08's subscription events, which share it.
//! It has no `id` field on purpose: an event without one leaves the
//! client's last event id where it was, so the client keeps resuming from
//! the id it asked for until a real event moves it (an empty `id` would
//! reset it, and the client would then resume with no position at all).

use bytes::Bytes;
use serde_json::Value;

use crate::protocol::HUB_EVENT_TYPE;

/// The frame telling a subscriber that history does not hold `requested`.
/// `earliest` is the id of the first event the replay sends it, `None`
/// when the replay sends nothing.
pub(super) fn frame(requested: &str, earliest: Option<&str>) -> Bytes {
    // Written by hand rather than with `json!`, whose key order depends on
    // serde_json's features: the members come in the documented order.
    let data = format!(
        r#"{{"type":"events_lost","requested":{},"earliest":{}}}"#,
        Value::from(requested),
        earliest.map_or(Value::Null, Value::from),
    );
    // JSON from serde_json holds no raw line break and the event type is
    // fixed, so encoding cannot fail; fall back to a comment just in case.
    herald_sse::Frame::new()
        .event(HUB_EVENT_TYPE)
        .data(&data)
        .encode()
        .unwrap_or_else(|_| herald_sse::comment("events lost"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frame_has_the_reserved_type_no_id_and_one_json_line() {
        assert_eq!(
            &frame("urn:uuid:1", Some("urn:uuid:9"))[..],
            b"event: mercure\ndata: {\"type\":\"events_lost\",\"requested\":\"urn:uuid:1\",\"earliest\":\"urn:uuid:9\"}\n\n"
        );
        assert_eq!(
            &frame("x", None)[..],
            b"event: mercure\ndata: {\"type\":\"events_lost\",\"requested\":\"x\",\"earliest\":null}\n\n"
        );
    }

    // Ids come from clients and publishers: whatever they hold, the data
    // stays one line of valid JSON that gives them back unchanged.
    #[test]
    fn ids_are_escaped() {
        let requested = "a\"b\\c\nd\re\u{2028}f";
        let bytes = frame(requested, Some("\u{0}"));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(!text.contains('\r'), "{text:?}");
        let lines: Vec<&str> = text.split('\n').collect();
        assert_eq!(lines.len(), 4, "{text:?}");
        assert_eq!(lines[0], "event: mercure");
        let json: Value = serde_json::from_str(lines[1].strip_prefix("data: ").unwrap()).unwrap();
        assert_eq!(json["type"], "events_lost");
        assert_eq!(json["requested"], requested);
        assert_eq!(json["earliest"], "\u{0}");
    }
}
