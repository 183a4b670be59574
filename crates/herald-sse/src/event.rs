//! The event a parser dispatches: what an `EventSource` hands to its
//! `onmessage` / `addEventListener` callbacks.

use std::sync::Arc;

/// One dispatched Server-Sent Event.
///
/// The last event id is shared between consecutive events that carry the
/// same id, so producing an event costs no copy of it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Event {
    event_type: Option<String>,
    data: String,
    last_event_id: Arc<str>,
}

impl Event {
    /// An event as a parser would dispatch it. `event_type: None` means the
    /// default type, `message`.
    pub fn new(event_type: Option<String>, data: String, last_event_id: Arc<str>) -> Event {
        Event {
            event_type: event_type.filter(|t| !t.is_empty()),
            data,
            last_event_id,
        }
    }

    /// The event type: the `event` field, or `"message"` when it was unset
    /// or empty.
    pub fn event_type(&self) -> &str {
        self.event_type.as_deref().unwrap_or("message")
    }

    /// The data: each `data` line joined by LF, without a trailing LF.
    pub fn data(&self) -> &str {
        &self.data
    }

    /// The last event id in force when this event was dispatched: the most
    /// recent `id` field on the stream, not necessarily one in this event.
    pub fn last_event_id(&self) -> &str {
        &self.last_event_id
    }

    /// Takes the data out without copying it.
    pub fn into_data(self) -> String {
        self.data
    }
}
