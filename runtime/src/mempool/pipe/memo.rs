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
//! keccak it would have cost anyway, and one copy of the arguments, which
//! the caller gets to keep (a request keeps its encoding: see
//! [`Request::of_call`](super::request::Request::of_call)).

use std::collections::HashMap;
use std::hash::BuildHasher;

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
    /// The fingerprints' hasher: one pass over the arguments finds them and,
    /// on a miss, files them.
    fingerprint: RandomState,
    /// [`MEMO_ENTRIES`] and [`MEMO_BYTES`], smaller in the tests.
    most_entries: usize,
    most_bytes: usize,
}

impl Default for HashMemo {
    fn default() -> Self {
        Self::with_bounds(MEMO_ENTRIES, MEMO_BYTES)
    }
}

/// The remembered arguments and their hashes, by fingerprint (a foldhash
/// of the arguments; two arguments that share one, which 64 bits make
/// vanishingly rare, take turns), and the bytes of arguments they hold.
#[derive(Debug, Default)]
struct Entries {
    hashes: HashMap<u64, (Bytes, B256), PassThrough>,
    bytes: usize,
}

/// Arguments met, hashed ([`HashMemo::keccak`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hashed {
    /// The arguments: the memo's copy, shared.
    pub(super) args: Bytes,
    /// `keccak256(args)`.
    pub(super) hash: B256,
}

impl HashMemo {
    fn with_bounds(most_entries: usize, most_bytes: usize) -> Self {
        Self { entries: Mutex::default(), fingerprint: RandomState::default(), most_entries, most_bytes }
    }

    /// `keccak256(args)`, remembered, with a shared copy of `args`.
    pub(super) fn keccak(&self, args: &[u8]) -> Hashed {
        if args.len() > self.most_bytes {
            return Hashed { args: Bytes::copy_from_slice(args), hash: keccak256(args) };
        }
        let fingerprint = self.fingerprint.hash_one(args);
        if let Some((known, hash)) = self.entries.lock().hashes.get(&fingerprint)
            && known[..] == *args
        {
            return Hashed { args: known.clone(), hash: *hash };
        }
        let hashed = Hashed { args: Bytes::copy_from_slice(args), hash: keccak256(args) };
        let mut entries = self.entries.lock();
        if entries.hashes.len() >= self.most_entries || entries.bytes + args.len() > self.most_bytes {
            entries.hashes.clear();
            entries.bytes = 0;
        }
        entries.bytes += args.len();
        if let Some((replaced, _)) = entries.hashes.insert(fingerprint, (hashed.args.clone(), hashed.hash)) {
            entries.bytes -= replaced.len();
        }
        hashed
    }
}

/// The map's hasher: a fingerprint is a hash already.
#[derive(Debug, Clone, Copy, Default)]
struct PassThrough;

impl BuildHasher for PassThrough {
    type Hasher = PassThroughHasher;

    fn build_hasher(&self) -> PassThroughHasher {
        PassThroughHasher(0)
    }
}

#[derive(Debug, Default)]
struct PassThroughHasher(u64);

impl std::hash::Hasher for PassThroughHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used (the key is a u64); anything else folds in.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> HashMemo {
        HashMemo::with_bounds(16, 1_000)
    }

    #[test]
    fn a_remembered_hash_is_the_hash() {
        let memo = small();
        for round in 0..3 {
            for n in 0..40 {
                let args = (n as u64).to_be_bytes().repeat(1 + round);
                let hashed = memo.keccak(&args);
                assert_eq!((hashed.hash, &hashed.args[..]), (keccak256(&args), &args[..]));
            }
        }
        let entries = memo.entries.lock();
        assert!(!entries.hashes.is_empty() && entries.hashes.len() <= 16 && entries.bytes <= 1_000);
        assert_eq!(entries.bytes, entries.hashes.values().map(|(args, _)| args.len()).sum::<usize>());
    }

    #[test]
    fn arguments_alike_but_one_byte_hash_apart() {
        let memo = HashMemo::default();
        let mut args = vec![7u8; 4_608];
        let first = memo.keccak(&args);
        args[4_607] = 8;
        assert_ne!(memo.keccak(&args), first);
        assert_eq!(memo.keccak(&args).hash, keccak256(&args));
    }

    #[test]
    fn a_hit_shares_the_remembered_copy() {
        let memo = HashMemo::default();
        let args = vec![3u8; 4_608];
        let first = memo.keccak(&args);
        let again = memo.keccak(&args);
        assert_eq!(first.args.as_ptr(), again.args.as_ptr());
    }

    #[test]
    fn other_arguments_under_the_same_fingerprint_are_hashed() {
        let memo = HashMemo::default();
        let args = vec![5u8; 100];
        // Another argument filed under this one's fingerprint, as a
        // collision would file it.
        let fingerprint = memo.fingerprint.hash_one(&args[..]);
        let other = Bytes::from(vec![6u8; 100]);
        memo.entries.lock().hashes.insert(fingerprint, (other.clone(), keccak256(&other)));
        memo.entries.lock().bytes = 100;
        assert_eq!(memo.keccak(&args).hash, keccak256(&args));
        // It took the other's place, and the byte count followed.
        let entries = memo.entries.lock();
        assert_eq!(entries.hashes[&fingerprint].0[..], args[..]);
        assert_eq!(entries.bytes, 100);
    }

    #[test]
    fn arguments_too_long_to_remember_are_hashed() {
        let memo = small();
        let args = vec![1u8; 1_001];
        assert_eq!(memo.keccak(&args).hash, keccak256(&args));
        assert!(memo.entries.lock().hashes.is_empty());
    }
}
