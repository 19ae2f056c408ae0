//! `typing` is relayed at most once per 2 s per user and conversation;
//! extra ones get their `ok` and go no further (docs/PROTOCOL.md, "Closing,
//! limits and floods"), so a flood of them cannot make anyone else too slow.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Shortest time between two relayed `typing` events of one key.
pub(crate) const TYPING_EVERY: Duration = Duration::from_secs(2);

/// When each key last had a `typing` relayed.
pub(crate) struct TypingThrottle<K> {
    last: HashMap<K, Instant>,
}

impl<K: Eq + Hash + Clone> Default for TypingThrottle<K> {
    fn default() -> Self {
        TypingThrottle {
            last: HashMap::new(),
        }
    }
}

impl<K: Eq + Hash + Clone> TypingThrottle<K> {
    /// Whether a `typing` for `key` is relayed now (and, if so, records it).
    pub(crate) fn allow(&mut self, key: &K) -> bool {
        let now = Instant::now();
        if self
            .last
            .get(key)
            .is_some_and(|t| now.duration_since(*t) < TYPING_EVERY)
        {
            return false;
        }
        // Old entries say nothing any more: drop them now and then, so the
        // map holds only keys seen in the last 2 s.
        if self.last.len() >= 64 {
            self.last
                .retain(|_, t| now.duration_since(*t) < TYPING_EVERY);
        }
        self.last.insert(key.clone(), now);
        true
    }
}
