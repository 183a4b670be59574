//! One active subscription as both revisions describe it: its topic under
//! the hub's reserved namespace and its JSON document.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Value};

use crate::matcher::MatchType;
use crate::protocol::Revision;

/// What RFC 6570 simple expansion leaves as is: the unreserved characters.
/// Everything else, `%` included, is percent-encoded once (draft-08
/// §Subscription Events).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A value as one path segment.
pub(crate) fn segment(value: &str) -> String {
    utf8_percent_encode(value, SEGMENT).to_string()
}

/// One subscription of one connection: a matcher (or a draft-07
/// selector), the connection's hub-assigned subscriber id, and the payload
/// the token attached to it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ActiveSubscription {
    /// The matcher type; `None` for a draft-07 `topic` selector.
    pub(crate) match_type: Option<MatchType>,
    /// The matcher or selector, as the subscriber gave it.
    pub(crate) pattern: String,
    /// The subscriber's id, assigned by the hub per connection.
    pub(crate) subscriber: String,
    /// The token's payload for this subscription.
    pub(crate) payload: Option<Value>,
}

impl ActiveSubscription {
    /// The revision whose format describes it.
    pub(crate) fn revision(&self) -> Revision {
        match self.match_type {
            Some(_) => Revision::Draft08,
            None => Revision::Draft07,
        }
    }

    /// Its topic: `{hub path}/subscriptions/{match_type}/{match}/{subscriber}`
    /// (draft-08) or `{hub path}/subscriptions/{topic}/{subscriber}`
    /// (draft-07), each variable encoded once.
    pub(crate) fn topic(&self, hub_path: &str) -> String {
        let matcher = match self.match_type {
            Some(t) => format!("{}/{}", t.name(), segment(&self.pattern)),
            None => segment(&self.pattern),
        };
        format!(
            "{}/{matcher}/{}",
            collection_path(hub_path),
            segment(&self.subscriber)
        )
    }

    /// The document of its subscription events and of the subscription
    /// API, with `active` as given.
    pub(crate) fn document(&self, hub_path: &str, active: bool) -> Value {
        let id = self.topic(hub_path);
        let mut doc = match self.match_type {
            Some(t) => json!({
                "id": id,
                "type": "subscription",
                "match_type": t.name(),
                "match": self.pattern,
                "subscriber": self.subscriber,
                "active": active,
            }),
            None => json!({
                "@context": "https://mercure.rocks/",
                "id": id,
                "type": "Subscription",
                "topic": self.pattern,
                "subscriber": self.subscriber,
                "active": active,
            }),
        };
        if let (Some(payload), Value::Object(map)) = (&self.payload, &mut doc) {
            map.insert("payload".into(), payload.clone());
        }
        doc
    }
}

impl ActiveSubscription {
    /// What a cluster's roster keeps of it: enough for any node to list it
    /// and to announce its end.
    pub(crate) fn record(&self) -> String {
        json!({
            "match_type": self.match_type.map(MatchType::name),
            "match": self.pattern,
            "subscriber": self.subscriber,
            "payload": self.payload,
        })
        .to_string()
    }

    /// The subscription a [`ActiveSubscription::record`] describes; `None`
    /// when the record is not one (another version wrote it, or someone
    /// else's data sits under the roster's keys).
    pub(crate) fn from_record(record: &str) -> Option<ActiveSubscription> {
        let value: Value = serde_json::from_str(record).ok()?;
        let match_type = match &value["match_type"] {
            Value::Null => None,
            Value::String(name) => Some(MatchType::from_name(name)?),
            _ => return None,
        };
        Some(ActiveSubscription {
            match_type,
            pattern: value["match"].as_str()?.to_owned(),
            subscriber: value["subscriber"].as_str()?.to_owned(),
            payload: match &value["payload"] {
                Value::Null => None,
                payload => Some(payload.clone()),
            },
        })
    }
}

/// `{hub path}/subscriptions`.
pub(crate) fn collection_path(hub_path: &str) -> String {
    format!("{}/subscriptions", hub_path.trim_end_matches('/'))
}

/// A fresh subscriber id: a random UUID as a URN, which discloses nothing
/// about the token (draft-08 §Subscriber Identifier Assignment).
pub(crate) fn new_subscriber_id() -> String {
    uuid::Uuid::new_v4().urn().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub(match_type: Option<MatchType>, pattern: &str) -> ActiveSubscription {
        ActiveSubscription {
            match_type,
            pattern: pattern.into(),
            subscriber: "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6".into(),
            payload: Some(json!({"foo": "bar"})),
        }
    }

    // draft-08 §Subscription Events: the spec's own example, byte for byte.
    #[test]
    fn draft08_topic_and_document_match_the_spec_example() {
        let s = sub(Some(MatchType::UrlPattern), "https://example.com/:selector");
        let id = "/.well-known/mercure/subscriptions/urlpattern/https%3A%2F%2Fexample.com%2F%3Aselector/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6";
        assert_eq!(s.topic("/.well-known/mercure"), id);
        assert_eq!(
            s.document("/.well-known/mercure", true),
            json!({
                "id": id,
                "type": "subscription",
                "match_type": "urlpattern",
                "match": "https://example.com/:selector",
                "subscriber": "urn:uuid:bb3de268-05b0-4c65-b44e-8f9acefc29d6",
                "active": true,
                "payload": {"foo": "bar"}
            })
        );
    }

    // draft-08 §Subscription Events: encoded exactly once, `%` included.
    #[test]
    fn variables_are_encoded_once_as_a_whole() {
        let s = sub(Some(MatchType::Exact), "a%20b c/~d");
        assert!(s
            .topic("/.well-known/mercure")
            .starts_with("/.well-known/mercure/subscriptions/exact/a%2520b%20c%2F~d/"));
    }

    #[test]
    fn draft07_documents_are_json_ld() {
        let s = sub(None, "https://example.com/books/{id}");
        let doc = s.document("/.well-known/mercure", false);
        assert_eq!(doc["@context"], "https://mercure.rocks/");
        assert_eq!(doc["type"], "Subscription");
        assert_eq!(doc["topic"], "https://example.com/books/{id}");
        assert_eq!(doc["active"], false);
        assert_eq!(
            doc["id"],
            "/.well-known/mercure/subscriptions/https%3A%2F%2Fexample.com%2Fbooks%2F%7Bid%7D/urn%3Auuid%3Abb3de268-05b0-4c65-b44e-8f9acefc29d6"
        );
    }

    #[test]
    fn records_round_trip_for_both_revisions() {
        for s in [
            sub(Some(MatchType::UrlPattern), "https://example.com/:selector"),
            sub(None, "https://example.com/books/{id}"),
            ActiveSubscription {
                payload: None,
                ..sub(Some(MatchType::Exact), "a")
            },
        ] {
            assert_eq!(ActiveSubscription::from_record(&s.record()), Some(s));
        }
        assert_eq!(ActiveSubscription::from_record("not json"), None);
        assert_eq!(
            ActiveSubscription::from_record(
                r#"{"match_type":"regex","match":"a","subscriber":"s"}"#
            ),
            None
        );
    }
}
