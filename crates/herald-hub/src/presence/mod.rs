//! Active subscriptions (draft-08 §Active Subscriptions, draft-07's
//! subscription events): who is subscribed to what, as events and as a
//! list.
//!
//! When a connection subscribes, the hub publishes one private update per
//! matcher on its reserved topic (`…/subscriptions/{match_type}/{match}/
//! {subscriber}`, or draft-07's `…/subscriptions/{topic}/{subscriber}`)
//! with `active: true`, and the same with `active: false` when the
//! connection ends. These updates go through the log like any other.
//!
//! The list ([`Presence`]) is folded from the log, not from the local
//! connections: the dispatcher shows it every entry in log order before
//! fan-out, and it keeps the documents of the subscription events it sees
//! together with the id of the last entry. So a snapshot is exactly the
//! state at one position of the log, and a client that subscribes to the
//! events from that position (`last_event_id`) misses nothing.
//!
//! On a cluster every node follows the one shared log, so its events
//! cover the subscriptions of every node. What the log cannot tell a node
//! (the subscriptions that started before it did, and the end of those
//! held by a node that died) comes from the log's roster
//! ([`Membership`]): a starting node loads every live node's records
//! into its list, and a node whose lease lapses has its subscriptions
//! ended, through the log, by another.

mod announce;
mod document;
pub(crate) mod membership;

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

pub(crate) use announce::Announced;
pub(crate) use document::{collection_path, new_subscriber_id, segment, ActiveSubscription};
pub(crate) use membership::Membership;

use crate::history::Entry;

/// The active subscriptions, folded from the subscription events of the
/// log.
#[derive(Debug)]
pub(crate) struct Presence {
    /// `{hub path}/subscriptions/`: the prefix of every event's topic.
    prefix: String,
    /// The log position the list starts from: the dispatcher shows it
    /// every entry after this one.
    start_seq: u64,
    state: Mutex<State>,
    /// Whether the list is whole: false on a cluster node until it has
    /// loaded the roster.
    complete: watch::Sender<bool>,
    /// The id of the entry at `start_seq`, once looked up: the cursor of
    /// a list nothing has changed since the start.
    pub(crate) start_id: std::sync::OnceLock<String>,
}

#[derive(Debug, Default)]
struct State {
    /// Documents of the active subscriptions by topic (their `id`), so a
    /// collection is a range of keys.
    active: BTreeMap<String, Value>,
    /// The id of the last entry seen.
    last_id: Option<String>,
    /// Until the roster is loaded: the topics of the subscription events
    /// seen since the start. Their state in the list comes from the log,
    /// which is at least as new as any record loaded for them.
    seen: Option<HashSet<String>>,
}

/// The list at one position of the log.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Snapshot {
    /// The documents, ordered by `id`.
    pub(crate) subscriptions: Vec<Value>,
    /// The id of the last entry dispatched when the list was taken;
    /// `None` when none was since the start (the list is the state at
    /// [`Presence::start_seq`]).
    pub(crate) last_id: Option<String>,
}

impl Presence {
    /// An empty list for a hub whose path is `hub_path`, of the
    /// subscriptions that start after position `start_seq` of the log;
    /// `loading` when the subscriptions of other nodes are still to be
    /// merged in ([`Presence::merge`]).
    pub(crate) fn new(hub_path: &str, start_seq: u64, loading: bool) -> Presence {
        Presence {
            prefix: format!("{}/", collection_path(hub_path)),
            start_seq,
            state: Mutex::new(State {
                seen: loading.then(HashSet::new),
                ..State::default()
            }),
            complete: watch::Sender::new(!loading),
            start_id: std::sync::OnceLock::new(),
        }
    }

    /// The log position the list starts from.
    pub(crate) fn start_seq(&self) -> u64 {
        self.start_seq
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // Every change is one insert or removal: a panic elsewhere cannot
        // leave the state half-changed.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds the documents of the subscriptions other nodes held when this
    /// one loaded them, by topic, except those whose events this node has
    /// seen since it started: the log is newer. Makes the list whole.
    pub(crate) fn merge(&self, loaded: Vec<(String, Value)>) {
        let mut state = self.state();
        let seen = state.seen.take().unwrap_or_default();
        for (topic, doc) in loaded {
            if !seen.contains(&topic) {
                state.active.insert(topic, doc);
            }
        }
        drop(state);
        self.complete.send_replace(true);
    }

    /// Waits until the list is whole, for at most `limit`.
    pub(crate) async fn wait_complete(&self, limit: Duration) -> bool {
        let mut complete = self.complete.subscribe();
        tokio::time::timeout(limit, complete.wait_for(|c| *c))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Takes in a batch the dispatcher is about to hand fan-out.
    pub(crate) fn observe(&self, batch: &[Arc<Entry>]) {
        let Some(newest) = batch.last() else {
            return;
        };
        let mut state = self.state();
        for entry in batch {
            let Some(topic) = entry.topics.first() else {
                continue;
            };
            // Publishers cannot publish under the hub's path (the reserved
            // namespace), so whatever is here the hub wrote.
            if !entry.private || !topic.starts_with(&self.prefix) {
                continue;
            }
            if let Some(seen) = &mut state.seen {
                seen.insert(topic.clone());
            }
            match document_of(entry) {
                Some(doc) if doc["active"] == Value::Bool(true) => {
                    state.active.insert(topic.clone(), doc);
                }
                Some(_) => {
                    state.active.remove(topic);
                }
                None => tracing::warn!(topic, "a subscription event without a JSON document"),
            }
        }
        state.last_id = Some(newest.id.clone());
    }

    /// The subscriptions whose topic is `path` or lies under `path/`.
    pub(crate) fn snapshot(&self, path: &str) -> Snapshot {
        let state = self.state();
        let under = format!("{}/", path.trim_end_matches('/'));
        let subscriptions = state
            .active
            .range(path.to_owned()..)
            .take_while(|(topic, _)| *topic == path || topic.starts_with(&under))
            .map(|(_, doc)| doc.clone())
            .collect();
        Snapshot {
            subscriptions,
            last_id: state.last_id.clone(),
        }
    }
}

/// The JSON document in the `data` of an event frame.
fn document_of(entry: &Entry) -> Option<Value> {
    let mut parser = herald_sse::Parser::new();
    parser.feed(&entry.frame);
    let event = parser.next_event()?.ok()?;
    serde_json::from_str(event.data()).ok()
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    fn event(seq: u64, doc: &Value, private: bool) -> Arc<Entry> {
        let data = doc.to_string();
        let frame = herald_sse::Frame::new()
            .id(&format!("e{seq}"))
            .event("mercure")
            .data(&data)
            .encode()
            .unwrap();
        Arc::new(Entry {
            seq,
            stored_at_ms: 0,
            id: format!("e{seq}"),
            topics: vec![doc["id"].as_str().unwrap().to_owned()],
            private,
            frame,
        })
    }

    fn doc(matcher: &str, subscriber: &str, active: bool) -> Value {
        json!({
            "id": format!("/.well-known/mercure/subscriptions/exact/{matcher}/{subscriber}"),
            "type": "subscription",
            "active": active,
        })
    }

    #[test]
    fn the_list_follows_the_events_and_remembers_the_position() {
        let presence = Presence::new("/.well-known/mercure", 0, false);
        presence.observe(&[
            event(1, &doc("a", "s1", true), true),
            event(2, &doc("a", "s2", true), true),
            event(3, &doc("b", "s1", true), true),
        ]);
        presence.observe(&[event(4, &doc("a", "s1", false), true)]);
        let all = presence.snapshot("/.well-known/mercure/subscriptions");
        assert_eq!(
            all.subscriptions,
            vec![doc("a", "s2", true), doc("b", "s1", true)]
        );
        assert_eq!(all.last_id.as_deref(), Some("e4"));
        let a = presence.snapshot("/.well-known/mercure/subscriptions/exact/a");
        assert_eq!(a.subscriptions, vec![doc("a", "s2", true)]);
        let one = presence.snapshot("/.well-known/mercure/subscriptions/exact/b/s1");
        assert_eq!(one.subscriptions, vec![doc("b", "s1", true)]);
        // A prefix of a matcher is not that matcher.
        let none = presence.snapshot("/.well-known/mercure/subscriptions/exact/");
        assert_eq!(
            none.subscriptions.len(),
            2,
            "the collection of every exact matcher"
        );
        assert!(presence
            .snapshot("/.well-known/mercure/subscriptions/exac")
            .subscriptions
            .is_empty());
    }

    #[test]
    fn other_entries_only_move_the_position() {
        let presence = Presence::new("/.well-known/mercure", 0, false);
        let public = event(1, &doc("a", "s1", true), false);
        let mut elsewhere = (*event(2, &doc("a", "s1", true), true)).clone();
        elsewhere.topics = vec!["https://example.com/.well-known/mercure/subscriptions/x".into()];
        elsewhere.frame = Bytes::from_static(b"data: not json\n\n");
        presence.observe(&[public, Arc::new(elsewhere)]);
        let all = presence.snapshot("/.well-known/mercure/subscriptions");
        assert!(all.subscriptions.is_empty());
        assert_eq!(all.last_id.as_deref(), Some("e2"));
    }

    // Loaded records fill the list, except where the log has spoken since
    // the start: an end seen in the log is not undone by an older record.
    #[tokio::test]
    async fn loaded_records_yield_to_the_events_seen_since_the_start() {
        let presence = Presence::new("/.well-known/mercure", 7, true);
        assert!(!presence.wait_complete(Duration::ZERO).await);
        presence.observe(&[event(8, &doc("a", "s1", false), true)]);
        let topic = |m: &str, s: &str| doc(m, s, true)["id"].as_str().unwrap().to_owned();
        presence.merge(vec![
            (topic("a", "s1"), doc("a", "s1", true)),
            (topic("b", "s2"), doc("b", "s2", true)),
        ]);
        assert!(presence.wait_complete(Duration::ZERO).await);
        let all = presence.snapshot("/.well-known/mercure/subscriptions");
        assert_eq!(all.subscriptions, vec![doc("b", "s2", true)]);
        assert_eq!(presence.start_seq(), 7);
        // Once loaded, nothing more is remembered of the topics seen.
        presence.observe(&[event(9, &doc("c", "s3", true), true)]);
        assert!(presence.state().seen.is_none());
    }
}
