//! The hash of the accounting table's keys: producer instance ids.
//!
//! Every receipt entry and log record looks its producer up by id, so the
//! hash is on the exporter's hottest path; the standard SipHash took about
//! half of the instructions of `Accounting::observe_receipt`. This one
//! folds 8 bytes at a time with a 64×64→128-bit multiply, keyed by two
//! random words per table. Ids come from anyone who can write to the topic,
//! so the keys are random (from the standard library's per-process random
//! state): colliding ids cannot be prepared without knowing them, and the
//! table is bounded by `max_producers` in any case.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// Builds [`IdHasher`]s with the keys of one table.
#[derive(Debug, Clone, Copy)]
pub struct IdHashBuilder {
    keys: [u64; 2],
}

impl Default for IdHashBuilder {
    /// Fresh random keys.
    fn default() -> Self {
        let random = RandomState::new();
        IdHashBuilder {
            // Odd, so that no key multiplies every input to zero.
            keys: [random.hash_one(0u64) | 1, random.hash_one(1u64) | 1],
        }
    }
}

impl BuildHasher for IdHashBuilder {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher {
            state: self.keys[1],
            key: self.keys[0],
        }
    }
}

/// Folded-multiply hash of a byte string, keyed.
#[derive(Debug, Clone, Copy)]
pub struct IdHasher {
    state: u64,
    key: u64,
}

/// The high and low halves of the 128-bit product, xored.
fn folded_multiply(a: u64, b: u64) -> u64 {
    let product = u128::from(a) * u128::from(b);
    (product as u64) ^ ((product >> 64) as u64)
}

impl IdHasher {
    fn mix(&mut self, word: u64) {
        self.state = folded_multiply(self.state ^ word, self.key);
    }
}

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.mix(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        // The length keeps "a" and "a\0" apart.
        self.mix(u64::from_le_bytes(word) ^ ((bytes.len() as u64) << 56));
    }

    fn finish(&self) -> u64 {
        folded_multiply(self.state, self.key.rotate_left(32) | 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn equal_ids_hash_equal_and_similar_ids_apart() {
        let b = IdHashBuilder::default();
        assert_eq!(b.hash_one("producer-1"), b.hash_one("producer-1"));
        let ids: Vec<String> = (0..100_000)
            .map(|i| format!("meshflow-producer-7d9f8b6c5-{i:05x}-3f9a2c71"))
            .chain(["", "a", "a\0", "\0"].map(String::from))
            .collect();
        let hashes: HashSet<u64> = ids.iter().map(|id| b.hash_one(id)).collect();
        assert_eq!(hashes.len(), ids.len());
    }

    #[test]
    fn tables_have_keys_of_their_own() {
        let (a, b) = (IdHashBuilder::default(), IdHashBuilder::default());
        assert_ne!(a.hash_one("producer-1"), b.hash_one("producer-1"));
    }
}
