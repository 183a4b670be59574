//! The event a parser dispatches: what an `EventSource` hands to its
//! `onmessage` / `addEventListener` callbacks.

use std::sync::Arc;

/// One dispatched Server-Sent Event.
///
/// Producing an event costs one allocation, for its data: a short event
/// type or id (up to 22 bytes, e.g. `update` or a sequence number) is
/// stored inside the event, and a longer id is an `Arc<str>` shared between
/// consecutive events that carry it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    /// Empty for the default type, `message`.
    event_type: SmallStr,
    data: String,
    last_event_id: SmallStr,
}

/// Strings up to this many bytes are stored inside the event.
const INLINE: usize = 22;

/// A short string stored inline, or a longer one shared.
///
/// Event types are few and short, and ids are often short and different in
/// every event: inline they cost neither an allocation nor the two atomic
/// operations of an `Arc` clone and drop, which per event weigh more than
/// copying 24 bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum SmallStr {
    /// At most [`INLINE`] bytes; the bytes past `len` are zero.
    Inline { len: u8, bytes: [u8; INLINE] },
    /// A longer string.
    Shared(Arc<str>),
}

impl SmallStr {
    /// `text` inline when it fits, otherwise in a new `Arc`.
    pub(crate) fn new(text: &str) -> SmallStr {
        match SmallStr::inline(text) {
            Some(small) => small,
            None => SmallStr::Shared(Arc::from(text)),
        }
    }

    /// `text` inline, if it fits.
    pub(crate) fn inline(text: &str) -> Option<SmallStr> {
        if text.len() > INLINE {
            return None;
        }
        let mut bytes = [0; INLINE];
        bytes[..text.len()].copy_from_slice(text.as_bytes());
        Some(SmallStr::Inline {
            // INLINE < 256, so the length fits.
            len: text.len() as u8,
            bytes,
        })
    }

    /// An already shared string, inline instead when it fits.
    pub(crate) fn from_arc(text: Arc<str>) -> SmallStr {
        SmallStr::inline(&text).unwrap_or(SmallStr::Shared(text))
    }

    pub(crate) fn as_str(&self) -> &str {
        match self {
            // Always valid: the bytes were copied from a `str`.
            SmallStr::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..usize::from(*len)]).unwrap_or_default()
            }
            SmallStr::Shared(text) => text,
        }
    }
}

impl Event {
    /// An event as a parser would dispatch it. `event_type: None` (or an
    /// empty type) means the default type, `message`.
    pub fn new(event_type: Option<String>, data: String, last_event_id: Arc<str>) -> Event {
        Event::from_parts(
            SmallStr::new(event_type.as_deref().unwrap_or("")),
            data,
            SmallStr::from_arc(last_event_id),
        )
    }

    /// The parser's constructor; an empty type means `message`.
    pub(crate) fn from_parts(event_type: SmallStr, data: String, last_event_id: SmallStr) -> Event {
        Event {
            event_type,
            data,
            last_event_id,
        }
    }

    /// The event type: the `event` field, or `"message"` when it was unset
    /// or empty.
    pub fn event_type(&self) -> &str {
        match self.event_type.as_str() {
            "" => "message",
            text => text,
        }
    }

    /// The data: each `data` line joined by LF, without a trailing LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The last event id in force when this event was dispatched: the most
    /// recent `id` field on the stream, not necessarily one in this event.
    pub fn last_event_id(&self) -> &str {
        self.last_event_id.as_str()
    }

    /// Takes the data out without copying it.
    pub fn into_data(self) -> String {
        self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_long_strings_read_back_the_same() {
        for text in [
            "",
            "a",
            "update",
            "0123456789012345678901",
            "01234567890123456789012",
            "é…😀",
        ] {
            assert_eq!(SmallStr::new(text).as_str(), text);
            assert_eq!(SmallStr::from_arc(Arc::from(text)).as_str(), text);
        }
        assert!(matches!(
            SmallStr::new(&"x".repeat(INLINE)),
            SmallStr::Inline { .. }
        ));
        assert!(matches!(
            SmallStr::new(&"x".repeat(INLINE + 1)),
            SmallStr::Shared(_)
        ));
    }

    #[test]
    fn equality_does_not_depend_on_how_the_event_was_built() {
        let a = Event::new(Some("update".into()), "d".into(), Arc::from("7"));
        let b = Event::new(Some("update".into()), "d".into(), Arc::from("7"));
        assert_eq!(a, b);
        assert_eq!(
            Event::new(Some(String::new()), "d".into(), Arc::from("")).event_type(),
            "message"
        );
    }
}
