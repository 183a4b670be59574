//! The bounded cache of compiled templates behind a [`super::TopicMatcher`].

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;

use super::Compiled;

/// A bounded map with O(1) random eviction: `keys` lists the keys densely
/// so a random slot can be picked, and each entry knows its slot.
pub(super) struct TemplateCache {
    entries: HashMap<Arc<str>, CacheEntry>,
    keys: Vec<Arc<str>>,
    /// xorshift64 state for picking victims.
    rng: u64,
}

struct CacheEntry {
    slot: usize,
    compiled: Arc<Compiled>,
}

impl TemplateCache {
    pub(super) fn new() -> TemplateCache {
        // Seeded per process so evictions are not predictable from outside.
        let seed = RandomState::new().hash_one(0x5eed_u64) | 1;
        TemplateCache {
            entries: HashMap::new(),
            keys: Vec::new(),
            rng: seed,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn get(&self, selector: &str) -> Option<Arc<Compiled>> {
        self.entries.get(selector).map(|e| Arc::clone(&e.compiled))
    }

    pub(super) fn insert(&mut self, selector: &str, compiled: Arc<Compiled>, capacity: usize) {
        while self.entries.len() >= capacity && !self.keys.is_empty() {
            self.evict_one();
        }
        let key: Arc<str> = Arc::from(selector);
        self.entries.insert(
            Arc::clone(&key),
            CacheEntry {
                slot: self.keys.len(),
                compiled,
            },
        );
        self.keys.push(key);
    }

    fn evict_one(&mut self) {
        let victim = (self.next_random() % self.keys.len() as u64) as usize;
        let key = self.keys.swap_remove(victim);
        self.entries.remove(&key);
        if let Some(moved) = self.keys.get(victim) {
            if let Some(entry) = self.entries.get_mut(moved) {
                entry.slot = victim;
            }
        }
    }

    fn next_random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}
