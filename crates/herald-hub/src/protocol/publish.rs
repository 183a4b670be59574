//! The publish form, and the rules every update must follow wherever it
//! comes from.

use super::{check_len, form_pairs, ProtocolError, ProtocolLimits, EARLIEST, HUB_EVENT_TYPE};
use crate::matcher::{is_forbidden_char, HubUrl};

/// A parsed publish request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishForm {
    /// The canonical topic first, then the alternates; never empty.
    pub topics: Vec<String>,
    /// The update's data; empty when the form had none.
    pub data: String,
    /// The publisher's id, when given; the hub generates one otherwise.
    pub id: Option<String>,
    /// The SSE event type.
    pub event_type: Option<String>,
    /// The SSE reconnection time, in milliseconds.
    pub retry: Option<u64>,
    /// Whether only authorized subscribers may receive the update.
    pub private: bool,
}

/// Parses an `application/x-www-form-urlencoded` publish body: the fields'
/// syntax and the limits. What an update may say is checked by
/// [`check_update`], for every update, from HTTP or from an embedding
/// application alike.
#[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
pub fn parse_publish(body: &[u8], limits: &ProtocolLimits) -> Result<PublishForm, ProtocolError> {
    let mut form = PublishForm::default();
    for pair in form_pairs(body) {
        let (name, value) = pair?;
        match &*name {
            "topic" => {
                if form.topics.len() == limits.max_topics {
                    return Err(ProtocolError::too_large(
                        "topic",
                        format!("at most {} topics per update", limits.max_topics),
                    ));
                }
                check_len("topic", &value, limits)?;
                form.topics.push(value.into_owned());
            }
            "data" => form.data = value.into_owned(),
            "id" => form.id = (!value.is_empty()).then(|| value.into_owned()),
            "type" => form.event_type = (!value.is_empty()).then(|| value.into_owned()),
            "retry" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ProtocolError::new(
                        "retry",
                        "must be a number of milliseconds (ASCII digits only)",
                    ));
                }
                let ms = value
                    .parse()
                    .map_err(|_| ProtocolError::new("retry", "is too large"))?;
                form.retry = Some(ms);
            }
            "private" => form.private = true,
            // An early Mercure draft's way to address one subscriber: ignoring
            // it would send a targeted update to everyone.
            "target" => {
                return Err(ProtocolError::new(
                    "target",
                    "is not supported: it would be ignored and the update sent to every subscriber; publish with \"private\" and give the intended subscribers tokens that allow the topic",
                ))
            }
            _ => {}
        }
    }
    if form.topics.is_empty() {
        return Err(ProtocolError::new(
            "topic",
            "missing: give at least one topic",
        ));
    }
    Ok(form)
}

/// The rules an update must follow before it is stored, whoever publishes
/// it. `strict` adds draft-08's ban on control and format characters in
/// topics, ids and event types; the rules of both revisions apply always:
/// no empty topic, no topic `*` (the wildcard), nothing under the hub's own
/// path (the reserved namespace), no event type `mercure`, and no id that
/// starts with `#` or is `earliest`.
pub(crate) fn check_update(
    form: &PublishForm,
    hub_url: &HubUrl,
    strict: bool,
) -> Result<(), ProtocolError> {
    if form.topics.is_empty() {
        return Err(ProtocolError::new(
            "topic",
            "missing: give at least one topic",
        ));
    }
    for topic in &form.topics {
        if topic.is_empty() {
            return Err(ProtocolError::new("topic", "must not be empty"));
        }
        if topic == "*" {
            return Err(ProtocolError::new(
                "topic",
                "\"*\" is the wildcard of subscriptions and cannot be a topic",
            ));
        }
        if hub_url.is_reserved(topic) {
            return Err(ProtocolError::new(
                "topic",
                format!("{topic:?} is under the hub's own path, which is reserved for the events the hub publishes itself"),
            ));
        }
        // A topic is never written into the stream, but a line break or NUL
        // in one is never meant and would corrupt a log line or a header.
        if topic.contains(['\r', '\n', '\0']) {
            return Err(ProtocolError::new(
                "topic",
                "must not contain CR, LF or NUL",
            ));
        }
        check_chars("topic", topic, strict)?;
    }
    if let Some(id) = &form.id {
        check_id(id)?;
        check_chars("id", id, strict)?;
    }
    if let Some(event_type) = &form.event_type {
        if event_type == HUB_EVENT_TYPE {
            return Err(ProtocolError::new(
                "type",
                "\"mercure\" is reserved for the events the hub publishes itself",
            ));
        }
        check_chars("type", event_type, strict)?;
    }
    Ok(())
}

/// The rules for a publisher-chosen event id.
fn check_id(id: &str) -> Result<(), ProtocolError> {
    if id.starts_with('#') {
        return Err(ProtocolError::new(
            "id",
            "must not start with '#' (hub-generated ids may)",
        ));
    }
    if id == EARLIEST {
        return Err(ProtocolError::new(
            "id",
            "\"earliest\" is reserved for replaying all history",
        ));
    }
    Ok(())
}

/// Draft-08 forbids every control and format character. (CR, LF and NUL,
/// which would inject SSE fields in either revision, are refused by the
/// encoder when the update is made.)
fn check_chars(field: &'static str, value: &str, strict: bool) -> Result<(), ProtocolError> {
    if strict && value.chars().any(is_forbidden_char) {
        return Err(ProtocolError::new(
            field,
            "must not contain control or Unicode format characters",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(body: &str) -> Result<PublishForm, ProtocolError> {
        parse_publish(body.as_bytes(), &ProtocolLimits::default())
    }

    /// The form, if it also makes an update (which runs `check_update` and
    /// the encoder).
    fn checked(body: &str, strict: bool) -> Result<PublishForm, ProtocolError> {
        let form = publish(body)?;
        crate::Update::new(form.clone(), &HubUrl::default(), strict)?;
        Ok(form)
    }

    #[test]
    fn a_full_publish_form() {
        let form = checked("topic=https%3A%2F%2Fex.com%2Fa&topic=b&data=hello+world%0Anext&id=42&type=up&retry=1500&private=on", true).unwrap();
        assert_eq!(form.topics, vec!["https://ex.com/a", "b"]);
        assert_eq!(form.data, "hello world\nnext");
        assert_eq!(form.id.as_deref(), Some("42"));
        assert_eq!(form.event_type.as_deref(), Some("up"));
        assert_eq!(form.retry, Some(1500));
        assert!(form.private);
    }

    #[test]
    fn each_bad_field_is_named() {
        let field = |body: &str| checked(body, false).unwrap_err().field();
        assert_eq!(field("data=x"), "topic");
        assert_eq!(field("topic=a&id=%23frag"), "id");
        assert_eq!(field("topic=a&id=a%0Ab"), "id");
        assert_eq!(field("topic=a&id=earliest"), "id");
        assert_eq!(field("topic=a&type=a%0Db"), "type");
        assert_eq!(field("topic=a&retry=-5"), "retry");
        assert_eq!(field("topic=a&retry="), "retry");
        assert_eq!(field("topic=a&retry=99999999999999999999999"), "retry");
        assert_eq!(field("topic=a&data=%FF"), "data");
        assert_eq!(field("topic="), "topic");
        let err = parse_publish(b"topic=\xff", &ProtocolLimits::default()).unwrap_err();
        assert_eq!(err.field(), "topic");
    }

    #[test]
    fn limits_are_too_large_errors() {
        let limits = ProtocolLimits::default();
        let many = "topic=a&".repeat(1001);
        let err = parse_publish(many.as_bytes(), &limits).unwrap_err();
        assert!(err.is_too_large());
        assert!(err.to_string().contains("1000"));
        let long = format!("topic={}", "x".repeat(4097));
        assert!(publish(&long).unwrap_err().is_too_large());
    }

    // An early draft's `target` field is refused, not ignored.
    #[test]
    fn target_is_refused_with_what_to_do_instead() {
        let err = publish("topic=a&target=user-1&data=secret").unwrap_err();
        assert_eq!(err.field(), "target");
        assert!(err.to_string().contains("private"), "{err}");
    }

    // draft-08 §Publication: unknown fields are ignored.
    #[test]
    fn unknown_fields_are_ignored() {
        assert!(checked("topic=a&future=1&x", true).is_ok());
    }

    // draft-08 §Publication and §Matcher Types: the topic `*` is refused.
    #[test]
    fn star_topic_is_refused() {
        assert_eq!(
            checked("topic=a&topic=*", false).unwrap_err().field(),
            "topic"
        );
    }

    // draft-08 §Publication: the reserved namespace, canonical and
    // alternate topics alike.
    #[test]
    fn reserved_namespace_is_refused() {
        for topic in [
            "%2F.well-known%2Fmercure%2Fsubscriptions%2Fx",
            "https%3A%2F%2Flocalhost%2F.well-known%2Fmercure",
            "%2F.well-known%2F%256Dercure%2Fx",
        ] {
            let err = checked(&format!("topic=a&topic={topic}"), false).unwrap_err();
            assert_eq!(err.field(), "topic", "{topic}");
            assert!(err.to_string().contains("reserved"), "{err}");
        }
    }

    // draft-08 §Publication: `type` `mercure` is the hub's own.
    #[test]
    fn hub_event_type_is_refused() {
        assert_eq!(
            checked("topic=a&type=mercure", false).unwrap_err().field(),
            "type"
        );
        assert!(checked("topic=a&type=Mercure", true).is_ok());
    }

    // draft-08 §Publication: control and format characters in topics, ids
    // and types, in strict mode; CR, LF and NUL always.
    #[test]
    fn control_and_format_characters() {
        for body in [
            "topic=a%E2%80%8Bb",
            "topic=a%09b",
            "topic=a&id=x%C2%85",
            "topic=a&type=%E2%80%AEx",
            "topic=a&id=x%7F",
        ] {
            assert!(checked(body, true).is_err(), "{body} (strict)");
            assert!(checked(body, false).is_ok(), "{body} (draft-07)");
        }
        assert!(checked("topic=a%00b", false).is_err());
        assert!(checked("topic=%F0%9F%98%80", true).is_ok());
    }
}
