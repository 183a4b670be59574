//! How an entry is laid out in the `events` table. A file is input like
//! any other: decoding checks every length and never panics.

use bytes::Bytes;

use crate::history::{Entry, HistoryError};

/// Each entry is stored as:
/// `stored_at_ms: u64 | private: u8 | id_len: u32 | id | topic_count: u32 |
/// (topic_len: u32 | topic)* | frame`, integers little-endian.
pub(super) fn encode(entry: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry.size() + 32);
    out.extend_from_slice(&entry.stored_at_ms.to_le_bytes());
    out.push(u8::from(entry.private));
    put_str(&mut out, &entry.id);
    out.extend_from_slice(&(entry.topics.len() as u32).to_le_bytes());
    for topic in &entry.topics {
        put_str(&mut out, topic);
    }
    out.extend_from_slice(&entry.frame);
    out
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

pub(super) fn stored_at(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(..8)?.try_into().ok()?))
}

/// Decodes a stored entry; a file is input like any other, so every
/// length is checked.
pub(super) fn decode(seq: u64, bytes: &[u8]) -> Result<Entry, HistoryError> {
    let corrupt = || HistoryError(format!("the stored event at sequence {seq} is corrupt"));
    let mut reader = Reader { bytes };
    let stored_at_ms = u64::from_le_bytes(
        reader
            .take(8)
            .ok_or_else(corrupt)?
            .try_into()
            .map_err(|_| corrupt())?,
    );
    let private = reader.take(1).ok_or_else(corrupt)?[0] != 0;
    let id = reader.string().ok_or_else(corrupt)?;
    let count = reader.u32().ok_or_else(corrupt)? as usize;
    let mut topics = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        topics.push(reader.string().ok_or_else(corrupt)?);
    }
    Ok(Entry {
        seq,
        stored_at_ms,
        id,
        topics,
        private,
        frame: Bytes::copy_from_slice(reader.bytes),
    })
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        Some(head)
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    fn string(&mut self) -> Option<String> {
        let len = self.u32()? as usize;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry {
        Entry {
            seq: 7,
            stored_at_ms: 1_700_000_000_123,
            id: "urn:uuid:é".into(),
            topics: vec!["https://ex.com/a".into(), String::new(), "b".into()],
            private: true,
            frame: Bytes::from_static(b"id: x\ndata: y\n\n"),
        }
    }

    #[test]
    fn an_entry_round_trips() {
        let e = entry();
        let bytes = encode(&e);
        assert_eq!(decode(7, &bytes).unwrap(), e);
        assert_eq!(stored_at(&bytes), Some(e.stored_at_ms));
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let bytes = encode(&entry());
        let frame_start = bytes.len() - entry().frame.len();
        for cut in 0..frame_start {
            assert!(decode(7, &bytes[..cut]).is_err(), "cut at {cut}");
        }
        // Lengths pointing past the end are refused too.
        let mut lying = bytes.clone();
        lying[9..13].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode(7, &lying).is_err());
    }
}
