//! The Mercure authorization details of an access token (draft-08
//! §Authorization Details, §Topic Matcher List): parsed strictly, so that
//! one bad entry rejects the whole token rather than silently changing
//! what it grants.

use serde_json::{Map, Value};

use crate::matcher::{check_value, MatchType};

/// The `type` of a Mercure authorization detail, compared byte for byte.
pub const MERCURE_DETAIL_TYPE: &str = "https://mercure.rocks/authorization-detail";

/// Most Mercure details in one token.
const MAX_DETAILS: usize = 64;
/// Most topic matchers in one detail.
const MAX_TOPICS: usize = 256;
/// Longest matcher, in characters.
const MAX_PATTERN_CHARS: usize = 4096;

/// One Mercure authorization detail.
#[derive(Debug, Clone, PartialEq)]
pub struct MercureDetail {
    /// Whether `actions` holds `publish`.
    pub publish: bool,
    /// Whether `actions` holds `subscribe`.
    pub subscribe: bool,
    /// The topics the actions apply to.
    pub topics: Vec<TopicGrant>,
    /// The `payload` object, for subscriptions the detail covers.
    pub payload: Option<Map<String, Value>>,
}

/// One entry of a detail's `topics`: a matcher and its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicGrant {
    /// `match_type`, `exact` when absent.
    pub match_type: MatchType,
    /// `match`; `*` matches every topic whatever the type.
    pub pattern: String,
}

/// Parses the `authorization_details` claim (absent: no details). Entries
/// of other types are ignored; a Mercure entry that does not follow the
/// rules is an error naming what is wrong.
pub(crate) fn parse(claim: Option<&Value>) -> Result<Vec<MercureDetail>, String> {
    let entries = match claim {
        None => return Ok(Vec::new()),
        Some(Value::Array(entries)) => entries,
        Some(_) => return Err("\"authorization_details\" must be an array".into()),
    };
    let mut details = Vec::new();
    for entry in entries {
        let Value::Object(entry) = entry else {
            return Err("every authorization detail must be an object".into());
        };
        match entry.get("type") {
            Some(Value::String(t)) if t == MERCURE_DETAIL_TYPE => {}
            Some(Value::String(_)) => continue,
            _ => return Err("every authorization detail needs a \"type\" string".into()),
        }
        if details.len() == MAX_DETAILS {
            return Err(format!(
                "more than {MAX_DETAILS} Mercure authorization details"
            ));
        }
        details.push(detail(entry)?);
    }
    Ok(details)
}

fn detail(entry: &Map<String, Value>) -> Result<MercureDetail, String> {
    let Some(Value::Array(actions)) = entry.get("actions") else {
        return Err("a Mercure authorization detail needs an \"actions\" array".into());
    };
    if actions.is_empty() {
        return Err("\"actions\" must not be empty".into());
    }
    let (mut publish, mut subscribe) = (false, false);
    for action in actions {
        // Unknown actions grant nothing and are no error (§Authorization
        // Details); a non-string is.
        match action.as_str() {
            Some("publish") => publish = true,
            Some("subscribe") => subscribe = true,
            Some(_) => {}
            None => return Err("every action must be a string".into()),
        }
    }
    let Some(Value::Array(topics)) = entry.get("topics") else {
        return Err("a Mercure authorization detail needs a \"topics\" array".into());
    };
    if topics.is_empty() {
        return Err("\"topics\" must not be empty".into());
    }
    if topics.len() > MAX_TOPICS {
        return Err(format!("more than {MAX_TOPICS} topics in one detail"));
    }
    let topics = topics.iter().map(topic).collect::<Result<Vec<_>, _>>()?;
    let payload = match entry.get("payload") {
        None | Some(Value::Null) => None,
        Some(Value::Object(payload)) => Some(payload.clone()),
        Some(_) => return Err("\"payload\" must be an object".into()),
    };
    Ok(MercureDetail {
        publish,
        subscribe,
        topics,
        payload,
    })
}

fn topic(value: &Value) -> Result<TopicGrant, String> {
    let Value::Object(topic) = value else {
        return Err("every topic matcher must be an object".into());
    };
    let Some(Value::String(pattern)) = topic.get("match") else {
        return Err("every topic matcher needs a \"match\" string".into());
    };
    if pattern.is_empty() {
        return Err("a \"match\" must not be empty".into());
    }
    if pattern.chars().count() > MAX_PATTERN_CHARS {
        return Err(format!(
            "a \"match\" is longer than {MAX_PATTERN_CHARS} characters"
        ));
    }
    check_value(pattern).map_err(|why| format!("a \"match\" {why}"))?;
    let match_type = match topic.get("match_type") {
        None => MatchType::Exact,
        Some(Value::String(name)) => MatchType::from_name(name)
            .ok_or_else(|| format!("the match_type {name:?} is not supported by this hub"))?,
        Some(_) => return Err("\"match_type\" must be a string".into()),
    };
    Ok(TopicGrant {
        match_type,
        pattern: pattern.clone(),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn mercure(fields: Value) -> Value {
        let mut detail = json!({"type": MERCURE_DETAIL_TYPE});
        if let (Value::Object(d), Value::Object(f)) = (&mut detail, fields) {
            d.extend(f);
        }
        json!([detail])
    }

    #[test]
    fn a_detail_with_actions_topics_and_payload() {
        let claim = mercure(json!({
            "actions": ["publish", "subscribe", "future-action"],
            "topics": [{"match": "https://example.com/a"}, {"match": "/b/:id", "match_type": "urlpattern"}],
            "payload": {"user": 42},
        }));
        let details = parse(Some(&claim)).unwrap();
        assert_eq!(
            details,
            vec![MercureDetail {
                publish: true,
                subscribe: true,
                topics: vec![
                    TopicGrant {
                        match_type: MatchType::Exact,
                        pattern: "https://example.com/a".into()
                    },
                    TopicGrant {
                        match_type: MatchType::UrlPattern,
                        pattern: "/b/:id".into()
                    },
                ],
                payload: json!({"user": 42}).as_object().cloned(),
            }]
        );
    }

    // §Authorization Details: entries of other types are ignored; unknown
    // actions grant nothing; no claim grants nothing.
    #[test]
    fn other_types_and_unknown_actions_grant_nothing() {
        let claim = json!([
            {"type": "payment_initiation", "actions": 5},
            {"type": MERCURE_DETAIL_TYPE, "actions": ["later"], "topics": [{"match": "*"}]},
        ]);
        let details = parse(Some(&claim)).unwrap();
        assert_eq!(details.len(), 1);
        assert!(!details[0].publish && !details[0].subscribe);
        assert_eq!(parse(None).unwrap(), vec![]);
    }

    // §Authorization Details, §Topic Matcher List: one bad Mercure entry
    // rejects the token.
    #[test]
    fn any_bad_mercure_entry_is_an_error() {
        let bad = [
            json!({"type": MERCURE_DETAIL_TYPE}),
            json!([{"actions": ["publish"]}]),
            json!([{"type": 7}]),
            mercure(json!({"actions": [], "topics": [{"match": "a"}]})),
            mercure(json!({"actions": [1], "topics": [{"match": "a"}]})),
            mercure(json!({"actions": ["publish"]})),
            mercure(json!({"actions": ["publish"], "topics": []})),
            mercure(json!({"actions": ["publish"], "topics": ["a"]})),
            mercure(json!({"actions": ["publish"], "topics": [{"match": ""}]})),
            mercure(json!({"actions": ["publish"], "topics": [{"match": "a\u{7}"}]})),
            mercure(
                json!({"actions": ["publish"], "topics": [{"match": "a", "match_type": "regex"}]}),
            ),
            mercure(
                json!({"actions": ["publish"], "topics": [{"match": "a", "match_type": "Exact"}]}),
            ),
            mercure(json!({"actions": ["subscribe"], "topics": [{"match": "a"}], "payload": "x"})),
        ];
        for claim in bad {
            assert!(parse(Some(&claim)).is_err(), "{claim}");
        }
        let many: Vec<Value> = (0..=MAX_DETAILS)
            .map(|_| json!({"type": MERCURE_DETAIL_TYPE, "actions": ["publish"], "topics": [{"match": "a"}]}))
            .collect();
        assert!(parse(Some(&Value::Array(many))).is_err());
    }
}
