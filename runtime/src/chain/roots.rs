//! A block's transactions and receipts roots: the roots of ordered tries
//! keyed by `rlp(index)`, over each item's EIP-2718 encoding.
//!
//! A block of one item is the devnet's usual block (automine, `evm_mine`
//! after a send). Its trie is a single leaf, whose hash is the root: this
//! writes that leaf straight into one buffer and hashes it once, where the
//! general trie builder encodes the item, copies it into the node and goes
//! through its stack. More items take the general builder.

use alloy_consensus::proofs::ordered_trie_root_with_encoder;
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{B256, keccak256};
use alloy_rlp::Header;

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
    let mut buf = Vec::with_capacity(node.length_with_payload());
    node.encode(&mut buf);
    buf.extend_from_slice(&PATH);
    value.encode(&mut buf);
    item.encode_2718(&mut buf);
    keccak256(&buf)
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
}
