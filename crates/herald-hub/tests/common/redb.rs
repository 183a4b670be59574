//! Support for tests of the redb history: temporary directories and
//! entries.

use std::path::PathBuf;
use std::sync::Arc;

use herald_hub::history::redb::{RedbOptions, Retention};
use herald_hub::history::{Entry, History, NewEntry, RedbHistory};

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("herald-redb-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An entry with id `id` (private when it ends in `p`) and `data_len`
/// bytes of data.
pub fn entry(id: &str, data_len: usize) -> NewEntry {
    let data = "d".repeat(data_len);
    NewEntry {
        id: id.to_owned(),
        topics: vec!["https://ex.com/t".into(), "alt".into()],
        private: id.ends_with('p'),
        frame: herald_sse::Frame::new()
            .id(id)
            .data(&data)
            .encode()
            .unwrap(),
    }
}

pub fn options(retention: Retention) -> RedbOptions {
    RedbOptions {
        retention,
        ..RedbOptions::default()
    }
}

pub fn ids(entries: &[Arc<Entry>]) -> Vec<String> {
    entries.iter().map(|e| e.id.clone()).collect()
}

/// Appends entries `e{i}` for `range`, 100 to a transaction.
pub async fn append_n(h: &RedbHistory, range: std::ops::Range<usize>, data_len: usize) {
    for chunk in range.collect::<Vec<_>>().chunks(100) {
        h.append(
            chunk
                .iter()
                .map(|i| entry(&format!("e{i}"), data_len))
                .collect(),
        )
        .await
        .unwrap();
    }
}
