//! Stream entries to [`Entry`] values, from the replies of XRANGE and XREAD.
//!
//! The fields are the ones `append.lua` writes, in its order: `t` (stored
//! at, ms), `i` (event id), `p` (private), `o` (topics as a JSON array), `f`
//! (the SSE frame), `s` (size). Anything else in a reply is a foreign or
//! damaged entry and is reported, never guessed at.

use std::sync::Arc;

use bytes::Bytes;
use redis::Value;

use crate::history::{Entry, HistoryError};

/// The entries of an XRANGE reply (or of one stream in an XREAD reply).
pub(super) fn entries(reply: Value) -> Result<Vec<Arc<Entry>>, HistoryError> {
    match reply {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) => items.into_iter().map(entry).collect(),
        other => Err(malformed(&format!(
            "expected a list of entries, got {other:?}"
        ))),
    }
}

/// The entries of an XREAD reply for one stream; nil when it timed out.
pub(super) fn read_reply(reply: Value) -> Result<Vec<Arc<Entry>>, HistoryError> {
    let streams = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams,
        Value::Map(pairs) => pairs.into_iter().map(|(_, v)| v).collect(),
        other => return Err(malformed(&format!("unexpected XREAD reply {other:?}"))),
    };
    let mut out = Vec::new();
    for stream in streams {
        match stream {
            // RESP2: [name, entries]
            Value::Array(mut pair) if pair.len() == 2 => out.extend(entries(pair.remove(1))?),
            // RESP3 maps give the entries directly.
            entries_value @ Value::Array(_) => out.extend(entries(entries_value)?),
            other => return Err(malformed(&format!("unexpected XREAD stream {other:?}"))),
        }
    }
    Ok(out)
}

/// One `[id, [field, value, ...]]` entry.
fn entry(value: Value) -> Result<Arc<Entry>, HistoryError> {
    let Value::Array(mut parts) = value else {
        return Err(malformed("an entry is not a list"));
    };
    if parts.len() != 2 {
        return Err(malformed("an entry is not an id and fields"));
    }
    let Value::Array(fields) = parts.pop().unwrap_or(Value::Nil) else {
        return Err(malformed("an entry's fields are not a list"));
    };
    let stream_id = text(parts.pop().unwrap_or(Value::Nil), "stream id")?;
    let seq = stream_id
        .split_once('-')
        .and_then(|(seq, _)| seq.parse::<u64>().ok())
        .ok_or_else(|| malformed(&format!("stream id {stream_id:?} is not SEQ-0")))?;

    let mut stored_at_ms = None;
    let mut id = None;
    let mut private = None;
    let mut topics = None;
    let mut frame = None;
    let mut fields = fields.into_iter();
    while let (Some(name), Some(value)) = (fields.next(), fields.next()) {
        match bytes(name)?.as_ref() {
            b"t" => stored_at_ms = text(value, "t")?.parse::<u64>().ok(),
            b"i" => id = Some(text(value, "i")?),
            b"p" => private = Some(bytes(value)?.as_ref() == b"1"),
            b"o" => {
                topics = serde_json::from_slice::<Vec<String>>(&bytes(value)?).ok();
            }
            b"f" => frame = Some(bytes(value)?),
            _ => {}
        }
    }
    let missing = |field| malformed(&format!("entry {seq} has no valid {field:?} field"));
    Ok(Arc::new(Entry {
        seq,
        stored_at_ms: stored_at_ms.ok_or_else(|| missing("t"))?,
        id: id.ok_or_else(|| missing("i"))?,
        private: private.ok_or_else(|| missing("p"))?,
        topics: topics.ok_or_else(|| missing("o"))?,
        frame: frame.ok_or_else(|| missing("f"))?,
    }))
}

fn bytes(value: Value) -> Result<Bytes, HistoryError> {
    match value {
        Value::BulkString(b) => Ok(Bytes::from(b)),
        Value::SimpleString(s) => Ok(Bytes::from(s)),
        Value::Int(n) => Ok(Bytes::from(n.to_string())),
        other => Err(malformed(&format!("expected a string, got {other:?}"))),
    }
}

fn text(value: Value, what: &str) -> Result<String, HistoryError> {
    String::from_utf8(bytes(value)?.to_vec())
        .map_err(|_| malformed(&format!("field {what} is not UTF-8")))
}

fn malformed(what: &str) -> HistoryError {
    HistoryError(format!(
        "redis: the log holds an entry Herald did not write ({what}); is another program using the same key?"
    ))
}
