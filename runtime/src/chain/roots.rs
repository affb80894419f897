//! A block's transactions and receipts roots: the roots of ordered tries
//! keyed by `rlp(index)`, over each item's EIP-2718 encoding.
//!
//! A block of one item is the devnet's usual block (automine, `evm_mine`
//! after a send). Its trie is a single leaf, whose hash is the root: this
//! hashes that leaf's encoding as it is written ([`Hashing`]), where the
//! general trie builder encodes the item, copies it into the node and goes
//! through its stack. An inference transaction's receipt is kilobytes (its
//! event carries the request and the answer), and right after a model's run
//! every byte written to fresh memory is slow: the leaf is never written
//! out whole. More items take the general builder.

use alloy_consensus::proofs::ordered_trie_root_with_encoder;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, Keccak256};
use alloy_rlp::bytes::buf::UninitSlice;
use alloy_rlp::{BufMut, Header};

/// The root of the ordered trie of `items` (none: the empty root).
pub(super) fn ordered_root<T: Encodable2718>(items: &[T]) -> B256 {
    match items {
        [item] => single_leaf_root(item),
        _ => ordered_trie_root_with_encoder(items, |item, buf| item.encode_2718(buf)),
    }
}

/// The root of a trie whose one leaf, at key `rlp(0)` (`0x80`: the nibbles
/// 8, 0), holds `item`'s encoding: `keccak256(rlp([hex_prefix(8, 0), value]))`.
fn single_leaf_root(item: &impl Encodable2718) -> B256 {
    // The key's hex-prefix encoding: a leaf (flag 2) with an even number of
    // nibbles, then the nibbles; as an RLP string of two bytes.
    const PATH: [u8; 3] = [0x82, 0x20, 0x80];
    let len = item.encode_2718_len();
    let value = Header { list: false, payload_length: len };
    // A value of one byte below 0x80 would be its own RLP; no 2718 encoding
    // is that short.
    debug_assert!(len > 1);
    let node = Header { list: true, payload_length: PATH.len() + value.length() + len };
    let mut leaf = Hashing::default();
    node.encode(&mut leaf);
    leaf.put_slice(&PATH);
    value.encode(&mut leaf);
    item.encode_2718(&mut leaf);
    leaf.finish()
}

/// Keccak-256 of what is written to it: short pieces (RLP headers, numbers)
/// gather in a small buffer, long ones (a log's data) are hashed where they lie.
struct Hashing {
    hasher: Keccak256,
    buf: [u8; Self::BUF],
    len: usize,
}

impl Default for Hashing {
    fn default() -> Self {
        Self { hasher: Keccak256::new(), buf: [0; Self::BUF], len: 0 }
    }
}

impl Hashing {
    /// Keccak's rate: a buffer of one block.
    const BUF: usize = 136;

    fn flush(&mut self) {
        self.hasher.update(&self.buf[..self.len]);
        self.len = 0;
    }

    fn finish(mut self) -> B256 {
        self.flush();
        self.hasher.finalize()
    }
}

// SAFETY: `chunk_mut` hands out the buffer's unwritten part, never empty
// (a full buffer is flushed first), and `advance_mut` counts only what the
// caller wrote in it (at most its length, as `BufMut` requires).
unsafe impl BufMut for Hashing {
    fn remaining_mut(&self) -> usize {
        usize::MAX
    }

    unsafe fn advance_mut(&mut self, count: usize) {
        self.len = (self.len + count).min(Self::BUF);
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        if self.len == Self::BUF {
            self.flush();
        }
        UninitSlice::new(&mut self.buf[self.len..])
    }

    fn put_slice(&mut self, src: &[u8]) {
        if self.len + src.len() <= Self::BUF {
            self.buf[self.len..self.len + src.len()].copy_from_slice(src);
            self.len += src.len();
        } else {
            self.flush();
            self.hasher.update(src);
        }
    }

    fn put_u8(&mut self, byte: u8) {
        self.put_slice(&[byte]);
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::proofs::{calculate_receipt_root, calculate_transaction_root};
    use alloy_consensus::{
        Eip658Value, Receipt, ReceiptEnvelope, ReceiptWithBloom, SignableTransaction, TxEip1559, TxEnvelope, TxLegacy,
    };
    use alloy_primitives::{Address, Bytes, Log, LogData, Signature, TxKind, U256};

    use super::*;

    fn receipt(data: usize, logs: usize, legacy: bool) -> ReceiptEnvelope {
        let log = Log {
            address: Address::repeat_byte(1),
            data: LogData::new_unchecked(vec![B256::repeat_byte(2)], vec![7; data].into()),
        };
        let receipt = ReceiptWithBloom {
            receipt: Receipt { status: Eip658Value::Eip658(true), cumulative_gas_used: 21_000, logs: vec![log; logs] },
            logs_bloom: Default::default(),
        };
        if legacy { ReceiptEnvelope::Legacy(receipt) } else { ReceiptEnvelope::Eip1559(receipt) }
    }

    fn transaction(input: usize, legacy: bool) -> TxEnvelope {
        let signature = Signature::new(U256::from(1), U256::from(2), false);
        let to = TxKind::Call(Address::repeat_byte(3));
        let input = Bytes::from(vec![9; input]);
        if legacy {
            let tx = TxLegacy {
                chain_id: Some(31337),
                nonce: 1,
                gas_price: 1,
                gas_limit: 21_000,
                to,
                input,
                ..Default::default()
            };
            tx.into_signed(signature).into()
        } else {
            let tx = TxEip1559 { chain_id: 31337, nonce: 1, gas_limit: 21_000, to, input, ..Default::default() };
            tx.into_signed(signature).into()
        }
    }

    #[test]
    fn one_items_root_is_the_tries_root_whatever_its_size() {
        // Sizes either side of the RLP header's short and long forms (55
        // bytes) and of one and two length bytes (255, 65,535).
        for size in [0, 10, 40, 56, 300, 6_300, 70_000] {
            for legacy in [false, true] {
                let r = receipt(size, 1, legacy);
                assert_eq!(ordered_root(std::slice::from_ref(&r)), calculate_receipt_root(&[r]), "{size}");
                let t = transaction(size, legacy);
                assert_eq!(ordered_root(std::slice::from_ref(&t)), calculate_transaction_root(&[t]), "{size}");
            }
        }
        let no_logs = receipt(0, 0, true);
        assert_eq!(ordered_root(std::slice::from_ref(&no_logs)), calculate_receipt_root(&[no_logs]));
    }

    #[test]
    fn several_or_no_items_take_the_general_trie() {
        let receipts: Vec<_> = (0..130).map(|i| receipt(i * 7, i % 3, i % 2 == 0)).collect();
        for n in [0, 2, 17, 130] {
            assert_eq!(ordered_root(&receipts[..n]), calculate_receipt_root(&receipts[..n]), "{n}");
        }
    }

    #[test]
    fn hashing_as_written_is_hashing_the_whole() {
        // Pieces of every size around the buffer's, written every way a
        // `BufMut` is written to (`put_bytes` goes through `chunk_mut`).
        let mut whole = Vec::new();
        let mut leaf = Hashing::default();
        for (n, size) in [0, 1, 5, 135, 136, 137, 300, 1, 2, 272, 7, 4_096].into_iter().enumerate() {
            let piece: Vec<u8> = (0..size).map(|i| (i * 7 + n) as u8).collect();
            match n % 3 {
                0 => leaf.put_slice(&piece),
                1 => piece.iter().for_each(|b| leaf.put_u8(*b)),
                _ => leaf.put_bytes(n as u8, size),
            }
            whole.extend(if n % 3 == 2 { vec![n as u8; size] } else { piece });
        }
        assert_eq!(leaf.finish(), alloy_primitives::keccak256(&whole));
    }
}
