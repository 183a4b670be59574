//! The Mercure protocol's request formats (draft-07), parsed and validated.
//!
//! This is the first step on both paths: a publish form becomes a
//! [`PublishForm`] before authorization and history; a subscribe query becomes
//! a [`SubscribeQuery`] before registration and replay. Everything a client
//! can get wrong is caught here, with a [`ProtocolError`] that names the
//! field, so nothing invalid is stored or dispatched. A second protocol
//! version would sit beside this module.

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode;

/// The limits a request must stay within; the defaults are the reference
/// hub's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolLimits {
    /// Most topics in one publish.
    pub max_topics: usize,
    /// Most selectors in one subscription.
    pub max_selectors: usize,
    /// Longest selector or topic, in characters.
    pub max_selector_len: usize,
}

impl Default for ProtocolLimits {
    fn default() -> Self {
        ProtocolLimits {
            max_topics: 1000,
            max_selectors: 100,
            max_selector_len: 4096,
        }
    }
}

/// A request the protocol refuses, with the field at fault. Answered with
/// `400 Bad Request` and [`ProtocolError::to_string`] as the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    field: &'static str,
    message: String,
}

impl ProtocolError {
    fn new(field: &'static str, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            field,
            message: message.into(),
        }
    }

    /// The form or query field at fault.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid \"{}\": {}", self.field, self.message)
    }
}

impl std::error::Error for ProtocolError {}

/// A validated publish request.
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

/// A validated subscribe query.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SubscribeQuery {
    /// The topic selectors; never empty.
    pub selectors: Vec<String>,
    /// The `lastEventID` query parameter (the `Last-Event-ID` header, read
    /// elsewhere, wins over it).
    pub last_event_id: Option<String>,
}

/// The reserved `Last-Event-ID` that asks for all history; no update may
/// take it as its id.
pub(crate) const EARLIEST: &str = "earliest";

/// The rules for a publisher-chosen event id, wherever the update comes
/// from (a publish form or [`crate::Hub::publish`]).
pub(crate) fn check_id(id: &str) -> Result<(), ProtocolError> {
    if id.starts_with('#') {
        return Err(ProtocolError::new("id", "must not start with '#'"));
    }
    if id.contains(['\r', '\n', '\0']) {
        return Err(ProtocolError::new("id", "must not contain CR, LF or NUL"));
    }
    if id == EARLIEST {
        return Err(ProtocolError::new(
            "id",
            "\"earliest\" is reserved for replaying all history",
        ));
    }
    Ok(())
}

/// Parses an `application/x-www-form-urlencoded` publish body.
pub fn parse_publish(body: &[u8], limits: &ProtocolLimits) -> Result<PublishForm, ProtocolError> {
    let mut form = PublishForm::default();
    for pair in form_pairs(body) {
        let (name, value) = pair?;
        match &*name {
            "topic" => {
                if form.topics.len() == limits.max_topics {
                    return Err(ProtocolError::new(
                        "topic",
                        format!("at most {} topics per update", limits.max_topics),
                    ));
                }
                check_selector_len("topic", &value, limits)?;
                if value.is_empty() {
                    return Err(ProtocolError::new("topic", "must not be empty"));
                }
                form.topics.push(value.into_owned());
            }
            "data" => form.data = value.into_owned(),
            "id" => {
                check_id(&value)?;
                form.id = (!value.is_empty()).then(|| value.into_owned());
            }
            "type" => {
                if value.contains(['\r', '\n']) {
                    return Err(ProtocolError::new("type", "must not contain CR or LF"));
                }
                form.event_type = (!value.is_empty()).then(|| value.into_owned());
            }
            "retry" => {
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(ProtocolError::new(
                        "retry",
                        "must be a number of milliseconds",
                    ));
                }
                let ms = value
                    .parse()
                    .map_err(|_| ProtocolError::new("retry", "is too large"))?;
                form.retry = Some(ms);
            }
            "private" => form.private = true,
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

/// Parses a subscribe query string (without the `?`).
pub fn parse_subscribe(
    query: &str,
    limits: &ProtocolLimits,
) -> Result<SubscribeQuery, ProtocolError> {
    let mut parsed = SubscribeQuery::default();
    for pair in form_pairs(query.as_bytes()) {
        let (name, value) = pair?;
        match &*name {
            "topic" => {
                if parsed.selectors.len() == limits.max_selectors {
                    return Err(ProtocolError::new(
                        "topic",
                        format!(
                            "at most {} selectors per subscription",
                            limits.max_selectors
                        ),
                    ));
                }
                check_selector_len("topic", &value, limits)?;
                if value.is_empty() {
                    return Err(ProtocolError::new("topic", "a selector must not be empty"));
                }
                if !parsed.selectors.iter().any(|s| *s == *value) {
                    parsed.selectors.push(value.into_owned());
                }
            }
            "lastEventID" => parsed.last_event_id = Some(value.into_owned()),
            _ => {}
        }
    }
    if parsed.selectors.is_empty() {
        return Err(ProtocolError::new(
            "topic",
            "missing: give at least one topic selector",
        ));
    }
    Ok(parsed)
}

fn check_selector_len(
    field: &'static str,
    value: &str,
    limits: &ProtocolLimits,
) -> Result<(), ProtocolError> {
    if value.chars().count() > limits.max_selector_len {
        return Err(ProtocolError::new(
            field,
            format!("longer than {} characters", limits.max_selector_len),
        ));
    }
    Ok(())
}

/// The name/value pairs of a form body or query string, decoded strictly:
/// `+` is a space, `%XX` a byte, and the result must be UTF-8.
fn form_pairs(
    input: &[u8],
) -> impl Iterator<Item = Result<(Cow<'_, str>, Cow<'_, str>), ProtocolError>> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match memchr_eq(pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode_component(name)
                .map_err(|e| ProtocolError::new("form", format!("a field name is {e}")))?;
            let value = decode_component(value)
                .map_err(|e| ProtocolError::new(field_name(&name), format!("value is {e}")))?;
            Ok((name, value))
        })
}

fn memchr_eq(pair: &[u8]) -> Option<usize> {
    pair.iter().position(|&b| b == b'=')
}

/// Maps a decoded field name to the static name used in errors.
fn field_name(name: &str) -> &'static str {
    match name {
        "topic" => "topic",
        "data" => "data",
        "id" => "id",
        "type" => "type",
        "retry" => "retry",
        "private" => "private",
        "lastEventID" => "lastEventID",
        _ => "form",
    }
}

/// Why a form component could not be decoded.
#[derive(Debug)]
enum DecodeError {
    Escape,
    Utf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DecodeError::Escape => "malformed: '%' must be followed by two hex digits",
            DecodeError::Utf8 => "not valid UTF-8",
        })
    }
}

impl From<std::str::Utf8Error> for DecodeError {
    fn from(_: std::str::Utf8Error) -> Self {
        DecodeError::Utf8
    }
}

fn decode_component(raw: &[u8]) -> Result<Cow<'_, str>, DecodeError> {
    let mut rest = raw;
    while let Some(i) = rest.iter().position(|&b| b == b'%') {
        let hex = rest.get(i + 1..i + 3).ok_or(DecodeError::Escape)?;
        if !hex.iter().all(u8::is_ascii_hexdigit) {
            return Err(DecodeError::Escape);
        }
        rest = &rest[i + 3..];
    }
    Ok(decode_utf8(raw)?)
}

fn decode_utf8(raw: &[u8]) -> Result<Cow<'_, str>, std::str::Utf8Error> {
    if raw.contains(&b'+') {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|&b| if b == b'+' { b' ' } else { b })
            .collect();
        let bytes: Vec<u8> = percent_decode(&spaced).collect();
        return String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error());
    }
    match percent_decode(raw).into() {
        Cow::Borrowed(bytes) => std::str::from_utf8(bytes).map(Cow::Borrowed),
        Cow::Owned(bytes) => String::from_utf8(bytes)
            .map(Cow::Owned)
            .map_err(|e| e.utf8_error()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn publish(body: &str) -> Result<PublishForm, ProtocolError> {
        parse_publish(body.as_bytes(), &ProtocolLimits::default())
    }

    #[test]
    fn a_full_publish_form() {
        let form = publish("topic=https%3A%2F%2Fex.com%2Fa&topic=b&data=hello+world%0Anext&id=42&type=up&retry=1500&private=on").unwrap();
        assert_eq!(form.topics, vec!["https://ex.com/a", "b"]);
        assert_eq!(form.data, "hello world\nnext");
        assert_eq!(form.id.as_deref(), Some("42"));
        assert_eq!(form.event_type.as_deref(), Some("up"));
        assert_eq!(form.retry, Some(1500));
        assert!(form.private);
    }

    #[test]
    fn each_bad_field_is_named() {
        assert_eq!(publish("data=x").unwrap_err().field(), "topic");
        assert_eq!(publish("topic=a&id=%23frag").unwrap_err().field(), "id");
        assert_eq!(publish("topic=a&id=a%0Ab").unwrap_err().field(), "id");
        assert_eq!(publish("topic=a&type=a%0Db").unwrap_err().field(), "type");
        assert_eq!(publish("topic=a&retry=-5").unwrap_err().field(), "retry");
        assert_eq!(publish("topic=a&retry=").unwrap_err().field(), "retry");
        assert_eq!(
            publish("topic=a&retry=99999999999999999999999")
                .unwrap_err()
                .field(),
            "retry"
        );
        assert_eq!(publish("topic=a&data=%FF").unwrap_err().field(), "data");
        let err = parse_publish(b"topic=\xff", &ProtocolLimits::default()).unwrap_err();
        assert_eq!(err.field(), "topic");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = ProtocolLimits::default();
        let many = "topic=a&".repeat(1001);
        assert!(parse_publish(many.as_bytes(), &limits)
            .unwrap_err()
            .to_string()
            .contains("1000"));
        let many: String = (0..101).map(|i| format!("topic=t{i}&")).collect();
        assert!(parse_subscribe(&many, &limits)
            .unwrap_err()
            .to_string()
            .contains("100"));
        let long = format!("topic={}", "x".repeat(4097));
        assert!(parse_subscribe(&long, &limits)
            .unwrap_err()
            .to_string()
            .contains("4096"));
    }

    #[test]
    fn subscribe_query() {
        let q = parse_subscribe(
            "topic=a&topic=%7Bx%7D&topic=a&lastEventID=urn%3Auuid%3A1",
            &ProtocolLimits::default(),
        )
        .unwrap();
        assert_eq!(q.selectors, vec!["a", "{x}"]);
        assert_eq!(q.last_event_id.as_deref(), Some("urn:uuid:1"));
        assert_eq!(
            parse_subscribe("", &ProtocolLimits::default())
                .unwrap_err()
                .field(),
            "topic"
        );
    }
}
