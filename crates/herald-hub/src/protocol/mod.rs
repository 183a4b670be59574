//! The Mercure protocol's request formats, both revisions, parsed and
//! validated.
//!
//! This is the first step on both paths: a publish form becomes a
//! [`PublishForm`] before authorization and history; a subscribe query becomes
//! a [`SubscribeQuery`] before registration and replay. Everything a client
//! can get wrong is caught here, with a [`ProtocolError`] that names the
//! field, so nothing invalid is stored or dispatched.
//!
//! A hub speaks draft-07 (Mercure 0.x), draft-08 (Mercure 1.0) or both
//! ([`Protocol`]); a request tells which it speaks by its parameters
//! ([`Revision`]). docs/protocol.md has the two side by side.

mod publish;
mod subscribe;

use std::borrow::Cow;
use std::fmt;

use percent_encoding::percent_decode;

pub(crate) use publish::check_update;
#[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
pub use publish::parse_publish;
pub use publish::PublishForm;
pub use subscribe::Revision;
#[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
pub use subscribe::{parse_subscribe, RequestedMatcher};

/// Which protocol revisions a hub speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Protocol {
    /// Both, each request in its own (the default).
    #[default]
    Both,
    /// Mercure draft-07 only (the 0.x hubs).
    Draft07,
    /// Mercure draft-08 only (1.0): what it forbids is refused, such as a
    /// token in the query string.
    Draft08,
}

impl Protocol {
    /// Whether requests of `revision` are served.
    pub fn speaks(self, revision: Revision) -> bool {
        matches!(
            (self, revision),
            (Protocol::Both, _)
                | (Protocol::Draft07, Revision::Draft07)
                | (Protocol::Draft08, Revision::Draft08)
        )
    }
}

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
/// `400 Bad Request` (`413 Content Too Large` past a limit, see
/// [`ProtocolError::is_too_large`]) and its `Display` text as
/// the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    field: &'static str,
    message: String,
    too_large: bool,
}

impl ProtocolError {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            field,
            message: message.into(),
            too_large: false,
        }
    }

    fn too_large(field: &'static str, message: impl Into<String>) -> ProtocolError {
        ProtocolError {
            too_large: true,
            ..ProtocolError::new(field, message)
        }
    }

    /// Whether a limit was exceeded (draft-08 §Publication: 413).
    pub fn is_too_large(&self) -> bool {
        self.too_large
    }

    /// The form or query field (or header) at fault.
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

/// The reserved `Last-Event-ID` that asks for all history; no update may
/// take it as its id.
pub(crate) const EARLIEST: &str = "earliest";

/// The SSE event type of the events the hub generates itself (draft-08
/// §Subscription Events, and Herald's `events_lost` signal): no publisher
/// may use it, in either revision, so a subscriber can trust an event of
/// this type.
pub(crate) const HUB_EVENT_TYPE: &str = "mercure";

fn check_len(
    field: &'static str,
    value: &str,
    limits: &ProtocolLimits,
) -> Result<(), ProtocolError> {
    if value.chars().count() > limits.max_selector_len {
        return Err(ProtocolError::too_large(
            field,
            format!("longer than {} characters", limits.max_selector_len),
        ));
    }
    Ok(())
}

/// The first non-empty value of the query parameter `name`, decoded as
/// [`parse_subscribe`] decodes (`None` when absent or empty).
pub(crate) fn query_parameter(query: &str, name: &str) -> Result<Option<String>, ProtocolError> {
    for pair in form_pairs(query.as_bytes()) {
        let (found, value) = pair?;
        if found == name && !value.is_empty() {
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
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
        "lastEventId" => "lastEventId",
        "last_event_id" => "last_event_id",
        "Last-Event-ID" => "Last-Event-ID",
        "lost_events" => "lost_events",
        "target" => "target",
        n if n.starts_with("match") => "match",
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
    if !raw.iter().any(|&b| b == b'+' || b == b'%') {
        return std::str::from_utf8(raw).map(Cow::Borrowed);
    }
    // One allocation, as the value decoded is never longer than `raw`.
    // A `+` is never inside an escape (`%` and two hex digits), so the
    // parts between them decode on their own.
    let mut bytes = Vec::with_capacity(raw.len());
    for (i, part) in raw.split(|&b| b == b'+').enumerate() {
        if i > 0 {
            bytes.push(b' ');
        }
        bytes.extend(percent_decode(part));
    }
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|e| e.utf8_error())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plus_is_a_space_and_an_escaped_plus_a_plus() {
        assert_eq!(decode_component(b"a+b%2Bc").unwrap(), "a b+c");
        assert_eq!(decode_component(b"%C3%A9+").unwrap(), "\u{e9} ");
        assert_eq!(decode_component(b"++").unwrap(), "  ");
        assert!(matches!(
            decode_component(b"plain").unwrap(),
            Cow::Borrowed("plain")
        ));
        assert!(matches!(decode_component(b"%+2"), Err(DecodeError::Escape)));
        assert!(matches!(decode_component(b"%FF"), Err(DecodeError::Utf8)));
    }

    proptest! {
        /// What a component decodes to is what the `url` crate's form
        /// decoder makes of it, whenever it decodes at all.
        #[test]
        fn a_component_decodes_as_form_urlencoded_does(raw in "([a-z+ \u{e9}]|%[0-9A-Fa-f]{2}|%){0,12}") {
            let ours = decode_component(raw.as_bytes());
            let pair = format!("x={raw}");
            let theirs = url::form_urlencoded::parse(pair.as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            match ours {
                Ok(value) => prop_assert_eq!(value, theirs),
                // Theirs is lossy where ours refuses.
                Err(DecodeError::Utf8) => prop_assert!(theirs.contains(char::REPLACEMENT_CHARACTER)),
                Err(DecodeError::Escape) => prop_assert!(raw.contains('%')),
            }
        }
    }
}
