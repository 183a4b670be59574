//! What a verified token allows, in one shape for both revisions.

use serde_json::Value;

use super::Claims;
use crate::matcher::{Matcher, Topic};
use crate::protocol::Revision;
use crate::topic::TopicMatcher;

/// The rights of a verified token.
#[derive(Debug)]
pub(crate) struct Grants {
    /// Which revision's token they came from (for messages that name its
    /// claims).
    pub(crate) revision: Revision,
    /// Topics the holder may publish to (`None`: no publish right at all).
    pub(crate) publish: Option<Vec<Matcher>>,
    /// Topics whose private updates the holder may receive.
    pub(crate) subscribe: Vec<Matcher>,
    /// The payload attached to every subscription (draft-07's
    /// `mercure.payload`).
    pub(crate) payload: Option<Value>,
    /// `exp`, seconds since the Unix epoch.
    pub(crate) expires: Option<u64>,
}

impl Grants {
    /// The grants of a draft-07 token: `mercure.publish` and
    /// `mercure.subscribe` are selectors (`*`, URI templates or exact
    /// topics).
    pub(crate) fn from_claims(claims: Claims, templates: &TopicMatcher) -> Grants {
        let compile = |selectors: Vec<String>| -> Vec<Matcher> {
            selectors
                .iter()
                .map(|s| Matcher::selector(s, templates))
                .collect()
        };
        Grants {
            revision: Revision::Draft07,
            publish: claims.publish.map(compile),
            subscribe: claims.subscribe.map(compile).unwrap_or_default(),
            payload: claims.payload,
            expires: claims.exp,
        }
    }

    /// The payload the subscription described by `pattern` carries in
    /// subscription events and the subscription API.
    pub(crate) fn payload_for(&self, _pattern: &str) -> Option<Value> {
        self.payload.clone()
    }

    /// Why these grants do not allow publishing to every one of `topics`
    /// (draft-08 §Publishers, draft-07 §Publication: all or nothing), or
    /// `None` when they do.
    pub(crate) fn refuses_publish(&self, topics: &[Topic<'_>]) -> Option<String> {
        let claim = match self.revision {
            Revision::Draft07 => "\"mercure.publish\" claim",
            Revision::Draft08 => "\"publish\" authorization detail",
        };
        let allowed = match self.publish.as_deref() {
            Some(allowed) if !allowed.is_empty() => allowed,
            _ => return Some(format!("the token has no {claim}")),
        };
        topics
            .iter()
            .find(|topic| !allowed.iter().any(|m| m.matches(topic)))
            .map(|topic| {
                format!(
                    "the token's {claim} does not allow the topic {:?}",
                    topic.as_str()
                )
            })
    }
}
