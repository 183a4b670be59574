//! The subscribe query of both revisions: draft-07's `topic` selectors
//! and draft-08's `match`/`match_<type>` matchers, every spelling of the
//! resume position, and Herald's `lost_events` opt-in.

use super::{check_len, form_pairs, Protocol, ProtocolError, ProtocolLimits};
use crate::matcher::{check_value, MatchType};

/// The protocol revision a request speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revision {
    /// Mercure draft-07 (the 0.x hubs): `topic` selectors.
    Draft07,
    /// Mercure draft-08 (1.0): `match` matchers.
    Draft08,
}

/// One topic matcher a subscriber asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
pub enum RequestedMatcher {
    /// A draft-07 `topic` selector: `*`, a URI template or an exact topic.
    Selector(String),
    /// A draft-08 matcher of a type (`match`, `match_<type>`).
    Match(MatchType, String),
}

/// A parsed subscribe query.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
pub struct SubscribeQuery {
    /// Which revision the parameters are from.
    pub revision: Revision,
    /// What to subscribe to, in order, without duplicates; never empty.
    pub matchers: Vec<RequestedMatcher>,
    /// The resume position from the query (the `Last-Event-ID` header,
    /// read elsewhere, wins over it).
    pub last_event_id: Option<String>,
    /// Whether the subscriber asked ([`LOST_EVENTS`]) to be told in the
    /// stream itself when history no longer holds its resume position.
    pub lost_events: bool,
}

/// The query parameter that opts a subscription in to the in-band
/// `events_lost` signal (a Herald extension, the same in both revisions):
/// a browser's `EventSource` cannot read the response header that says
/// `earliest`, but it can listen for an event.
pub(super) const LOST_EVENTS: &str = "lost_events";

/// The query parameters that carry a resume position, best first:
/// draft-08's, draft-07's, and two that real draft-07 clients send
/// (`reconnecting-eventsource` rebuilds its URL with `lastEventId`; the
/// reference hub's legacy mode reads `Last-Event-ID`).
const RESUME_PARAMETERS: [(&str, Revision); 4] = [
    ("last_event_id", Revision::Draft08),
    ("lastEventID", Revision::Draft07),
    ("lastEventId", Revision::Draft07),
    ("Last-Event-ID", Revision::Draft07),
];

/// Parses a subscribe query string (without the `?`) for a hub speaking
/// `protocol`.
///
/// A request speaks one revision: `topic` and `match…` parameters in one
/// query are refused, and so is a revision the hub does not speak. Every
/// name in the reserved `match` namespace (any case) must be a supported
/// matcher parameter (draft-08 §Subscription).
#[allow(unreachable_pub)] // `pub` for the re-export in `crate::fuzzing`
pub fn parse_subscribe(
    query: &str,
    limits: &ProtocolLimits,
    protocol: Protocol,
) -> Result<SubscribeQuery, ProtocolError> {
    let mut matchers = Vec::new();
    let mut revision = None;
    let mut resume: [Option<String>; RESUME_PARAMETERS.len()] = Default::default();
    let mut lost_events = None;
    for pair in form_pairs(query.as_bytes()) {
        let (name, value) = pair?;
        let requested = if name == "topic" {
            check_len("topic", &value, limits)?;
            if value.is_empty() {
                return Err(ProtocolError::new("topic", "a selector must not be empty"));
            }
            RequestedMatcher::Selector(value.into_owned())
        } else if name
            .as_bytes()
            .get(..5)
            .is_some_and(|p| p.eq_ignore_ascii_case(b"match"))
        {
            let match_type = matcher_type(&name)?;
            check_len("match", &value, limits)?;
            check_value(&value).map_err(|m| ProtocolError::new("match", m))?;
            RequestedMatcher::Match(match_type, value.into_owned())
        } else if name == LOST_EVENTS {
            // Single-valued, as the resume position: the first one counts.
            if lost_events.is_none() {
                lost_events = Some(opt_in(&value)?);
            }
            continue;
        } else {
            if let Some(i) = RESUME_PARAMETERS.iter().position(|(n, _)| *n == name) {
                if protocol.speaks(RESUME_PARAMETERS[i].1) && resume[i].is_none() {
                    resume[i] = Some(value.into_owned());
                }
            }
            continue;
        };
        let this = match requested {
            RequestedMatcher::Selector(_) => Revision::Draft07,
            RequestedMatcher::Match(..) => Revision::Draft08,
        };
        if !protocol.speaks(this) {
            return Err(unspoken(this));
        }
        if revision.is_some_and(|r| r != this) {
            return Err(ProtocolError::new(
                "match",
                "a subscription uses either \"topic\" (draft-07) or \"match\" parameters (draft-08), not both",
            ));
        }
        revision = Some(this);
        if matchers.len() == limits.max_selectors {
            let (field, noun) = match this {
                Revision::Draft07 => ("topic", "selectors"),
                Revision::Draft08 => ("match", "matchers"),
            };
            return Err(ProtocolError::new(
                field,
                format!("at most {} {noun} per subscription", limits.max_selectors),
            ));
        }
        if !matchers.contains(&requested) {
            matchers.push(requested);
        }
    }
    let Some(revision) = revision else {
        return Err(ProtocolError::new(
            if protocol == Protocol::Draft07 { "topic" } else { "match" },
            match protocol {
                Protocol::Draft07 => "missing: give at least one \"topic\" selector",
                Protocol::Draft08 => "missing: give at least one \"match\" (or \"match_urlpattern\") parameter",
                Protocol::Both => "missing: give at least one \"match\" (draft-08) or \"topic\" (draft-07) parameter",
            },
        ));
    };
    Ok(SubscribeQuery {
        revision,
        matchers,
        last_event_id: resume.into_iter().flatten().next(),
        lost_events: lost_events.unwrap_or(false),
    })
}

/// The value of [`LOST_EVENTS`]. Anything but the usual spellings of yes
/// and no is refused, so that a typo fails loudly rather than leaving a
/// subscriber that believes it will be told.
fn opt_in(value: &str) -> Result<bool, ProtocolError> {
    match value {
        "1" | "true" | "on" => Ok(true),
        "0" | "false" | "off" => Ok(false),
        _ => Err(ProtocolError::new(
            "lost_events",
            format!("{value:?} is not a choice: use lost_events=1 to be sent an events_lost event when history no longer holds the resume position"),
        )),
    }
}

/// The matcher type a parameter in the reserved `match` namespace names.
fn matcher_type(name: &str) -> Result<MatchType, ProtocolError> {
    if name == "match" {
        return Ok(MatchType::Exact);
    }
    name.strip_prefix("match_")
        .and_then(MatchType::from_name)
        .ok_or_else(|| {
            ProtocolError::new(
                "match",
                format!("{name:?} is no matcher this hub supports (names are case-sensitive): use \"match\", \"match_exact\" or \"match_urlpattern\""),
            )
        })
}

fn unspoken(revision: Revision) -> ProtocolError {
    match revision {
        Revision::Draft07 => ProtocolError::new(
            "topic",
            "this hub speaks Mercure draft-08 only (--protocol 08): subscribe with \"match\" or \"match_urlpattern\"",
        ),
        Revision::Draft08 => ProtocolError::new(
            "match",
            "this hub speaks Mercure draft-07 only (--protocol 07): subscribe with \"topic\"",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &str) -> Result<SubscribeQuery, ProtocolError> {
        parse_subscribe(query, &ProtocolLimits::default(), Protocol::Both)
    }

    fn sel(s: &str) -> RequestedMatcher {
        RequestedMatcher::Selector(s.into())
    }

    #[test]
    fn draft_07_query() {
        let q = parse("topic=a&topic=%7Bx%7D&topic=a&lastEventID=urn%3Auuid%3A1").unwrap();
        assert_eq!(q.revision, Revision::Draft07);
        assert_eq!(q.matchers, vec![sel("a"), sel("{x}")]);
        assert_eq!(q.last_event_id.as_deref(), Some("urn:uuid:1"));
        assert_eq!(parse("").unwrap_err().field(), "match");
        assert_eq!(parse("topic=").unwrap_err().field(), "topic");
    }

    // draft-08 §Subscription: `match` is exact, `match_<type>` names the
    // type; several in any combination; duplicates may be merged.
    #[test]
    fn draft_08_query() {
        let q = parse("match=https%3A%2F%2Fexample.com%2Ffoo&match=bar&match_urlpattern=https%3A%2F%2Fexample.com%2Fbar%2F%3Aid&match_exact=bar&last_event_id=x").unwrap();
        assert_eq!(q.revision, Revision::Draft08);
        assert_eq!(
            q.matchers,
            vec![
                RequestedMatcher::Match(MatchType::Exact, "https://example.com/foo".into()),
                RequestedMatcher::Match(MatchType::Exact, "bar".into()),
                RequestedMatcher::Match(
                    MatchType::UrlPattern,
                    "https://example.com/bar/:id".into()
                ),
            ]
        );
        assert_eq!(q.last_event_id.as_deref(), Some("x"));
    }

    // draft-08 §Subscription: a name given without a value has an empty
    // value, which no matcher may have.
    #[test]
    fn a_match_without_value_is_empty_and_refused() {
        assert_eq!(parse("match").unwrap_err().field(), "match");
        assert_eq!(parse("match=").unwrap_err().field(), "match");
    }

    // draft-08 §Subscription: the whole `match` prefix is reserved, under
    // an ASCII case-insensitive comparison; matcher names are case-sensitive.
    #[test]
    fn reserved_match_namespace() {
        for name in [
            "match_template",
            "match\u{e9}",
            "matches",
            "Match",
            "MATCH_exact",
            "match_URLPattern",
            "match_",
            "matchurlpattern",
        ] {
            let err = parse(&format!("{name}=x")).unwrap_err();
            assert_eq!(err.field(), "match", "{name}");
            assert!(err.to_string().contains(name), "{err}");
        }
        // Other parameters are ignored, whatever their bytes.
        assert!(parse("match=a&foo=bar&mat=x&matc%C3%A9=x").is_ok());
    }

    // draft-08 §Subscription: value constraints.
    #[test]
    fn matcher_values_are_checked() {
        for value in [
            "a%00",
            "a%0A",
            "a%C2%85",
            "a%E2%80%8B",
            "%EF%BB%BFa",
            "a%7F",
        ] {
            assert_eq!(
                parse(&format!("match={value}")).unwrap_err().field(),
                "match",
                "{value}"
            );
        }
        assert_eq!(parse("match=%FF").unwrap_err().field(), "match");
        assert_eq!(parse("match=a%2").unwrap_err().field(), "match");
    }

    // draft-08 §Subscription: limits on the number and length of matchers.
    #[test]
    fn limits() {
        let many: String = (0..101).map(|i| format!("match=t{i}&")).collect();
        assert!(parse(&many).unwrap_err().to_string().contains("100"));
        let long = format!("match={}", "x".repeat(4097));
        assert!(parse(&long).unwrap_err().to_string().contains("4096"));
        let long = format!("topic={}", "x".repeat(4097));
        assert!(parse(&long).unwrap_err().to_string().contains("4096"));
    }

    #[test]
    fn revisions_do_not_mix() {
        let err = parse("topic=a&match=b").unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");
    }

    // `--protocol` refuses the other revision's parameters with a message
    // that says what to send.
    #[test]
    fn a_strict_hub_refuses_the_other_revision() {
        let limits = ProtocolLimits::default();
        let err = parse_subscribe("topic=a", &limits, Protocol::Draft08).unwrap_err();
        assert!(err.to_string().contains("--protocol 08"), "{err}");
        let err = parse_subscribe("match=a", &limits, Protocol::Draft07).unwrap_err();
        assert!(err.to_string().contains("--protocol 07"), "{err}");
        // The other revision's resume parameters are not read.
        let q = parse_subscribe("match=a&lastEventID=x", &limits, Protocol::Draft08).unwrap();
        assert_eq!(q.last_event_id, None);
        let q = parse_subscribe("topic=a&last_event_id=x", &limits, Protocol::Draft07).unwrap();
        assert_eq!(q.last_event_id, None);
    }

    // Every spelling real clients send, best first; the first occurrence
    // of a name wins (draft-08 §Reconciliation: single-valued).
    #[test]
    fn resume_spellings() {
        for name in [
            "last_event_id",
            "lastEventID",
            "lastEventId",
            "Last-Event-ID",
        ] {
            let q = parse(&format!("topic=a&{name}=x1&{name}=x2")).unwrap();
            assert_eq!(q.last_event_id.as_deref(), Some("x1"), "{name}");
        }
        let q =
            parse("Last-Event-ID=d&lastEventId=c&lastEventID=b&last_event_id=a&match=t").unwrap();
        assert_eq!(q.last_event_id.as_deref(), Some("a"));
        let q = parse("Last-Event-ID=d&lastEventId=c&topic=t").unwrap();
        assert_eq!(q.last_event_id.as_deref(), Some("c"));
        // Names are exact: other spellings are no position.
        let q = parse("topic=t&lasteventid=x&LAST_EVENT_ID=y").unwrap();
        assert_eq!(q.last_event_id, None);
    }

    // The opt-in works with either vocabulary; it is off unless asked for,
    // the first occurrence wins, and a value that is neither yes nor no
    // is refused.
    #[test]
    fn lost_events_opt_in() {
        assert!(!parse("topic=a").unwrap().lost_events);
        for on in ["1", "true", "on"] {
            assert!(
                parse(&format!("topic=a&lost_events={on}"))
                    .unwrap()
                    .lost_events
            );
            assert!(
                parse(&format!("match=a&lost_events={on}"))
                    .unwrap()
                    .lost_events
            );
        }
        for off in ["0", "false", "off"] {
            assert!(
                !parse(&format!("match=a&lost_events={off}"))
                    .unwrap()
                    .lost_events
            );
        }
        assert!(
            parse("lost_events=1&match=a&lost_events=0")
                .unwrap()
                .lost_events
        );
        for bad in ["", "yes", "2", "TRUE"] {
            let err = parse(&format!("match=a&lost_events={bad}")).unwrap_err();
            assert_eq!(err.field(), "lost_events", "{bad:?}");
            assert!(err.to_string().contains("lost_events=1"), "{err}");
        }
        // Other spellings are not the parameter.
        assert!(
            !parse("match=a&lostEvents=1&LOST_EVENTS=1")
                .unwrap()
                .lost_events
        );
    }
}
