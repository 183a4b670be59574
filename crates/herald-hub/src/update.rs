//! An update that passed every rule, encoded once.
//!
//! The publish form says what a publisher asked for; an [`Update`] is what
//! the hub will store and send. Each rule is checked in exactly one place:
//! the form's syntax and limits when it is parsed
//! ([`parse_publish`](crate::protocol::parse_publish)), what an update may
//! say when an `Update` is made (`protocol::check_update`), and the line
//! structure of the id and event type by the SSE encoder, which encodes the
//! frame here, once, for every subscriber and for history.

use bytes::Bytes;

use crate::history::NewEntry;
use crate::matcher::HubUrl;
use crate::protocol::{check_update, ProtocolError, PublishForm};

/// A valid update with its id and its encoded frame. Only
/// [`Hub::update`](crate::Hub::update) makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Update {
    id: String,
    topics: Vec<String>,
    private: bool,
    frame: Bytes,
}

impl Update {
    /// Checks `form` and encodes it, with a hub-generated id when the form
    /// has none. `strict` adds draft-08's character rules.
    pub(crate) fn new(
        form: PublishForm,
        hub_url: &HubUrl,
        strict: bool,
    ) -> Result<Update, ProtocolError> {
        check_update(&form, hub_url, strict)?;
        let id = form.id.unwrap_or_else(generate_id);
        let mut frame = herald_sse::Frame::new().id(&id).data(&form.data);
        if let Some(t) = &form.event_type {
            frame = frame.event(t);
        }
        if let Some(ms) = form.retry {
            frame = frame.retry(std::time::Duration::from_millis(ms));
        }
        let frame = frame.encode().map_err(|e| {
            let field = match e {
                herald_sse::EncodeError::EventTypeHasLineBreak => "type",
                _ => "id",
            };
            ProtocolError::new(field, e.to_string())
        })?;
        Ok(Update {
            id,
            topics: form.topics,
            private: form.private,
            frame,
        })
    }

    /// An event the hub publishes itself, under its reserved namespace
    /// (which no publisher may use) and with a type publishers may not use:
    /// private, with a generated id.
    pub(crate) fn hub_event(
        topic: String,
        data: &str,
        event_type: Option<&str>,
    ) -> Result<Update, herald_sse::EncodeError> {
        let id = generate_id();
        let mut frame = herald_sse::Frame::new().id(&id).data(data);
        if let Some(t) = event_type {
            frame = frame.event(t);
        }
        let frame = frame.encode()?;
        Ok(Update {
            id,
            topics: vec![topic],
            private: true,
            frame,
        })
    }

    /// The event id: the publisher's, or one the hub generated.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The canonical topic first, then the alternates.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// Whether only authorized subscribers may receive it.
    pub fn is_private(&self) -> bool {
        self.private
    }

    /// What history stores.
    pub(crate) fn into_entry(self) -> NewEntry {
        NewEntry {
            id: self.id,
            topics: self.topics,
            private: self.private,
            frame: self.frame,
        }
    }
}

/// A new hub-generated id: a time-ordered UUIDv7 as a URN.
pub(crate) fn generate_id() -> String {
    uuid::Uuid::now_v7().urn().to_string()
}
