//! What a verified token allows, in one shape for both revisions.

use serde_json::Value;

use super::Claims;
use crate::access_token::AccessToken;
use crate::matcher::{HubUrl, Matcher, Topic};
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
    /// Draft-08: the `subscribe` details in order, each with its payload;
    /// a subscription carries the payload of the first that matches its
    /// matcher (§Payloads).
    pub(crate) payloads: Vec<(Vec<Matcher>, Option<Value>)>,
    /// `exp`, seconds since the Unix epoch.
    pub(crate) expires: Option<u64>,
    /// `sub`: whom the token names, by which the hub counts a client's
    /// streams (`HubConfig::max_streams_per_client`).
    pub(crate) subject: Option<String>,
    /// `iss` of a draft-08 token: a subject is unique within its issuer
    /// only. `None` for draft-07 (one key, one issuer).
    pub(crate) issuer: Option<String>,
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
            payloads: Vec::new(),
            expires: claims.exp,
            subject: claims.sub,
            issuer: None,
        }
    }

    /// The grants of a draft-08 access token: its Mercure authorization
    /// details, compiled; a matcher that does not compile makes the token
    /// invalid (§Topic Matcher List).
    pub(crate) fn from_access_token(
        token: AccessToken,
        hub_url: &HubUrl,
    ) -> Result<Grants, String> {
        let mut publish = Vec::new();
        let mut subscribe = Vec::new();
        let mut payloads = Vec::new();
        for detail in token.details {
            let matchers = detail
                .topics
                .iter()
                .map(|t| {
                    Matcher::typed(t.match_type, &t.pattern, hub_url).map_err(|e| {
                        format!(
                            "the token's matcher {:?} ({}) is invalid: {e}",
                            t.pattern, t.match_type
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if detail.publish {
                publish.extend(matchers.iter().cloned());
            }
            if detail.subscribe {
                subscribe.extend(matchers.iter().cloned());
                payloads.push((matchers, detail.payload.map(Value::Object)));
            }
        }
        Ok(Grants {
            revision: Revision::Draft08,
            publish: Some(publish),
            subscribe,
            payload: None,
            payloads,
            expires: Some(token.expires),
            subject: token.subject,
            issuer: Some(token.issuer),
        })
    }

    /// The payload the subscription whose matcher is `pattern` carries in
    /// subscription events and the subscription API: draft-07's
    /// `mercure.payload`, or the payload of the first draft-08 `subscribe`
    /// detail whose matchers select `pattern` taken as a topic.
    pub(crate) fn payload_for(&self, pattern: &str, hub_url: &HubUrl) -> Option<Value> {
        match self.revision {
            Revision::Draft07 => self.payload.clone(),
            Revision::Draft08 => {
                let topic = Topic::new(pattern, hub_url);
                self.payloads
                    .iter()
                    .find(|(matchers, _)| matchers.iter().any(|m| m.matches(&topic)))
                    .and_then(|(_, payload)| payload.clone())
            }
        }
    }

    /// Why these grants do not allow publishing to every one of `topics`
    /// (draft-08 §Publishers, draft-07 §Publication: all or nothing), or
    /// `None` when they do.
    pub(crate) fn refuses_publish<'t>(
        &self,
        topics: impl IntoIterator<Item = Topic<'t>>,
    ) -> Option<String> {
        let claim = match self.revision {
            Revision::Draft07 => "\"mercure.publish\" claim",
            Revision::Draft08 => "\"publish\" authorization detail",
        };
        let allowed = match self.publish.as_deref() {
            Some(allowed) if !allowed.is_empty() => allowed,
            _ => return Some(format!("the token has no {claim}")),
        };
        topics
            .into_iter()
            .find(|topic| !allowed.iter().any(|m| m.matches(topic)))
            .map(|topic| {
                format!(
                    "the token's {claim} does not allow the topic {:?}",
                    topic.as_str()
                )
            })
    }
}
