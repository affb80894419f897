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
pub(super) struct Hashes {
    memo: Mutex<Memo>,
    /// [`MEMO_ENTRIES`] and [`MEMO_BYTES`], smaller in the tests.
    most_entries: usize,
    most_bytes: usize,
}

impl Default for Hashes {
    fn default() -> Self {
        Self { memo: Mutex::default(), most_entries: MEMO_ENTRIES, most_bytes: MEMO_BYTES }
    }
}

#[derive(Debug, Default)]
struct Memo {
    hashes: HashMap<Bytes, B256, RandomState>,
    bytes: usize,
}

impl Hashes {
    /// `keccak256(args)`, remembered.
    pub(super) fn keccak(&self, args: &[u8]) -> B256 {
        if let Some(hash) = self.memo.lock().hashes.get(args) {
            return *hash;
        }
        let hash = keccak256(args);
        if args.len() > self.most_bytes {
            return hash;
        }
        let mut memo = self.memo.lock();
        if memo.hashes.len() >= self.most_entries || memo.bytes + args.len() > self.most_bytes {
            memo.hashes.clear();
            memo.bytes = 0;
        }
        if memo.hashes.insert(Bytes::copy_from_slice(args), hash).is_none() {
            memo.bytes += args.len();
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> Hashes {
        Hashes { memo: Mutex::default(), most_entries: 16, most_bytes: 1_000 }
    }

    #[test]
    fn a_remembered_hash_is_the_hash() {
        let hashes = small();
        for round in 0..3 {
            for n in 0..40 {
                let args = (n as u64).to_be_bytes().repeat(1 + round);
                assert_eq!(hashes.keccak(&args), keccak256(&args));
            }
        }
        let memo = hashes.memo.lock();
        assert!(!memo.hashes.is_empty() && memo.hashes.len() <= 16 && memo.bytes <= 1_000);
        assert_eq!(memo.bytes, memo.hashes.keys().map(|k| k.len()).sum::<usize>());
    }

    #[test]
    fn arguments_alike_but_one_byte_hash_apart() {
        let hashes = Hashes::default();
        let mut args = vec![7u8; 4_608];
        let first = hashes.keccak(&args);
        args[4_607] = 8;
        assert_ne!(hashes.keccak(&args), first);
        assert_eq!(hashes.keccak(&args), keccak256(&args));
    }

    #[test]
    fn arguments_too_long_to_remember_are_hashed() {
        let hashes = small();
        let args = vec![1u8; 1_001];
        assert_eq!(hashes.keccak(&args), keccak256(&args));
        assert!(hashes.memo.lock().hashes.is_empty());
    }
}
