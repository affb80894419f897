//! The keccak of arguments the precompile met lately.
//!
//! A transaction's request is met several times in one block's making: the
//! simulation round that finds it, the round that confirms its result (and,
//! for a block's first transaction, stands as the inclusion), an inclusion
//! pass, `eth_call`s of the same request. Each time the precompile hashes the
//! call's arguments to find the request id, and for a 64-number tensor that
//! is 4.6 KB of keccak, about 12 µs here. The memo remembers the hash of the
//! arguments it saw last, found again by a fast non-cryptographic hash and a
//! byte-for-byte comparison: a memo of a pure function, so a miss costs the
//! keccak it would have cost anyway, and a copy of the arguments.

use std::collections::HashMap;

use alloy_primitives::{B256, Bytes, keccak256};
use foldhash::fast::RandomState;
use parking_lot::Mutex;

/// The most arguments remembered: the memo starts again when it holds more.
const MEMO_ENTRIES: usize = 1024;
/// The most bytes of arguments remembered (LLM prompts can be long).
const MEMO_BYTES: usize = 16 << 20;

/// `keccak256` of recently met arguments ([module docs](self)).
#[derive(Debug)]
pub(super) struct HashMemo {
    entries: Mutex<Entries>,
    /// [`MEMO_ENTRIES`] and [`MEMO_BYTES`], smaller in the tests.
    most_entries: usize,
    most_bytes: usize,
}

impl Default for HashMemo {
    fn default() -> Self {
        Self { entries: Mutex::default(), most_entries: MEMO_ENTRIES, most_bytes: MEMO_BYTES }
    }
}

/// The remembered hashes, and the bytes of arguments they hold.
#[derive(Debug, Default)]
struct Entries {
    hashes: HashMap<Bytes, B256, RandomState>,
    bytes: usize,
}

impl HashMemo {
    /// `keccak256(args)`, remembered.
    pub(super) fn keccak(&self, args: &[u8]) -> B256 {
        if args.len() > self.most_bytes {
            return keccak256(args);
        }
        if let Some(hash) = self.entries.lock().hashes.get(args) {
            return *hash;
        }
        let hash = keccak256(args);
        let mut entries = self.entries.lock();
        if entries.hashes.len() >= self.most_entries || entries.bytes + args.len() > self.most_bytes {
            entries.hashes.clear();
            entries.bytes = 0;
        }
        if entries.hashes.insert(Bytes::copy_from_slice(args), hash).is_none() {
            entries.bytes += args.len();
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> HashMemo {
        HashMemo { entries: Mutex::default(), most_entries: 16, most_bytes: 1_000 }
    }

    #[test]
    fn a_remembered_hash_is_the_hash() {
        let memo = small();
        for round in 0..3 {
            for n in 0..40 {
                let args = (n as u64).to_be_bytes().repeat(1 + round);
                assert_eq!(memo.keccak(&args), keccak256(&args));
            }
        }
        let entries = memo.entries.lock();
        assert!(!entries.hashes.is_empty() && entries.hashes.len() <= 16 && entries.bytes <= 1_000);
        assert_eq!(entries.bytes, entries.hashes.keys().map(|k| k.len()).sum::<usize>());
    }

    #[test]
    fn arguments_alike_but_one_byte_hash_apart() {
        let memo = HashMemo::default();
        let mut args = vec![7u8; 4_608];
        let first = memo.keccak(&args);
        args[4_607] = 8;
        assert_ne!(memo.keccak(&args), first);
        assert_eq!(memo.keccak(&args), keccak256(&args));
    }

    #[test]
    fn arguments_too_long_to_remember_are_hashed() {
        let memo = small();
        let args = vec![1u8; 1_001];
        assert_eq!(memo.keccak(&args), keccak256(&args));
        assert!(memo.entries.lock().hashes.is_empty());
    }
}
