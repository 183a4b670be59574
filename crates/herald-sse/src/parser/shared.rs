//! The event-type and last-event-id buffers: set from raw field bytes,
//! handed to each dispatched event as cheaply as the value allows.

use std::sync::Arc;

use super::scan::decode;
use crate::event::SmallStr;

/// A string the parser hands to many events: the last event id, the event
/// type.
///
/// Short values are copied into each event (see [`SmallStr`]). A long one
/// becomes an `Arc<str>`, made only when needed: when every event carries a
/// new id, sharing buys nothing and costs atomic operations, so the first
/// event that gets a value gets a fresh `Arc` of its own; only from the
/// second on is one `Arc` kept and cloned.
#[derive(Debug)]
pub(super) struct Shared {
    text: String,
    arc: Option<Arc<str>>,
    handed_out: bool,
}

impl Shared {
    pub(super) fn new(text: &str) -> Shared {
        Shared {
            text: text.to_owned(),
            arc: None,
            handed_out: false,
        }
    }

    pub(super) fn as_str(&self) -> &str {
        &self.text
    }

    /// Sets the value from raw bytes (decoded lossily); a repeated value is
    /// recognised from its bytes without decoding.
    pub(super) fn set(&mut self, bytes: &[u8]) {
        if self.text.as_bytes() == bytes {
            return;
        }
        self.text.clear();
        self.text.push_str(&decode(bytes));
        self.arc = None;
        self.handed_out = false;
    }

    /// The value for one more event.
    pub(super) fn share(&mut self) -> SmallStr {
        if let Some(small) = SmallStr::inline(&self.text) {
            return small;
        }
        if let Some(arc) = &self.arc {
            return SmallStr::Shared(Arc::clone(arc));
        }
        let arc: Arc<str> = Arc::from(self.text.as_str());
        if self.handed_out {
            self.arc = Some(Arc::clone(&arc));
        }
        self.handed_out = true;
        SmallStr::Shared(arc)
    }
}
