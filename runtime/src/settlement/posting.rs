//! What the relay posts to the settlement relay contract, and what the
//! contract records of it: [`calldata`] encodes a [`Posting`], and
//! [`recorded`] reads a settlement back from the contract's events, so that
//! a loaded chain tells which of its results settled (`Book::reloaded`).
//!
//! The devnet has no blob store (the chain's relay names a Walrus blob), so
//! a batch's `blobId` carries the batch itself: its leaves, 32 bytes each,
//! in the tree's (ascending) order. From the event alone anyone can rebuild
//! the tree and every leaf's proof.

use alloy_primitives::{Address, B256, Bytes, Log, U256};
use alloy_sol_types::{SolCall, SolEvent, sol};

use super::merkle::MerkleTree;
use super::{batch_leaf, record_key};
use crate::predeploys::{ISettlementRelay, SETTLEMENT_RELAY};
use crate::tee::Attestation;

sol! {
    /// The relay contract's record of one result (`settleIndividual`).
    event IndividualSettlement(
        bytes32 indexed teeId,
        bytes32 indexed inputHash,
        bytes32 outputHash,
        uint256 timestamp,
        address ethAddress,
        bytes blobId,
        bytes signature
    );
    /// The relay contract's record of a batch (`batchSettle`).
    event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes blobId);
}

/// What the relay posts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posting {
    /// One result's record.
    Individual(Attestation),
    /// A batch: its root and its results.
    Batch {
        /// The root of the batch's tree.
        root: B256,
        /// The results in it.
        results: Vec<Attestation>,
    },
}

impl Posting {
    /// The results it settles.
    pub fn results(&self) -> &[Attestation] {
        match self {
            Self::Individual(a) => std::slice::from_ref(a),
            Self::Batch { results, .. } => results,
        }
    }
}

/// The calldata of a posting to the relay contract.
pub fn calldata(posting: &Posting, eth_address: Address) -> Bytes {
    match posting {
        Posting::Individual(a) => ISettlementRelay::settleIndividualCall {
            teeId: a.tee_id,
            inputHash: a.input_hash,
            outputHash: a.output_hash,
            timestamp: U256::from(a.timestamp),
            ethAddress: eth_address,
            blobId: Bytes::new(),
            signature: a.signature.clone(),
        }
        .abi_encode()
        .into(),
        Posting::Batch { root, results } => ISettlementRelay::batchSettleCall {
            merkleRoot: *root,
            batchSize: U256::from(results.len()),
            blobId: batch_blob(results),
        }
        .abi_encode()
        .into(),
    }
}

/// A batch's blob: its leaves, ascending, 32 bytes each.
fn batch_blob(results: &[Attestation]) -> Bytes {
    let mut leaves: Vec<B256> = results.iter().map(batch_leaf).collect();
    leaves.sort();
    leaves.iter().flat_map(|leaf| leaf.0).collect()
}

/// A settlement the relay contract recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// One result's record, by its key ([`super::result_key`]).
    Individual(B256),
    /// A batch: the tree of the leaves its blob carries. Its root is the
    /// leaves' root, whatever root was posted (a relay that posts a wrong
    /// root is caught when the proof is checked on chain).
    Batch(MerkleTree),
}

/// Why an event of the relay contract is not a settlement the devnet can
/// attribute to its results.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// The event's data does not decode.
    #[error("a settlement event that does not decode: {0}")]
    Malformed(String),
    /// A batch whose blob is not its leaves (a posting not made by the
    /// devnet's relay, or by an earlier version of it).
    #[error("a batch of {size} results whose blob of {len} bytes is not its leaves (32 bytes each)")]
    NoLeaves {
        /// The batch size posted.
        size: U256,
        /// The blob's length.
        len: usize,
    },
}

/// The settlement `log` records, when it is an event of the relay contract
/// that records one (`None` for any other log).
pub fn recorded(log: &Log) -> Result<Option<Recorded>, RecordError> {
    if log.address != SETTLEMENT_RELAY {
        return Ok(None);
    }
    let malformed = |e: alloy_sol_types::Error| RecordError::Malformed(e.to_string());
    match log.data.topics().first() {
        Some(&IndividualSettlement::SIGNATURE_HASH) => {
            let event = IndividualSettlement::decode_log_data(&log.data).map_err(malformed)?;
            Ok(Some(Recorded::Individual(record_key(event.teeId, event.inputHash, event.outputHash, event.timestamp))))
        }
        Some(&BatchSettlement::SIGNATURE_HASH) => {
            let event = BatchSettlement::decode_log_data(&log.data).map_err(malformed)?;
            let no_leaves = || RecordError::NoLeaves { size: event.batchSize, len: event.blobId.len() };
            let blob = &event.blobId;
            if blob.is_empty() || blob.len() % 32 != 0 || U256::from(blob.len() / 32) != event.batchSize {
                return Err(no_leaves());
            }
            let leaves: Vec<B256> = blob.chunks_exact(32).map(B256::from_slice).collect();
            MerkleTree::new(&leaves).map(|tree| Some(Recorded::Batch(tree))).ok_or_else(no_leaves)
        }
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::LogData;
    use alloy_sol_types::SolInterface;

    use super::*;
    use crate::settlement::tests::att;
    use crate::settlement::{merkle, result_key};

    /// The log the relay contract emits for `posting`, as its Solidity does.
    fn emitted(posting: &Posting) -> Log {
        let data = match ISettlementRelay::ISettlementRelayCalls::abi_decode(&calldata(posting, Address::ZERO)).unwrap()
        {
            ISettlementRelay::ISettlementRelayCalls::settleIndividual(c) => IndividualSettlement {
                teeId: c.teeId,
                inputHash: c.inputHash,
                outputHash: c.outputHash,
                timestamp: c.timestamp,
                ethAddress: c.ethAddress,
                blobId: c.blobId,
                signature: c.signature,
            }
            .encode_log_data(),
            ISettlementRelay::ISettlementRelayCalls::batchSettle(c) => {
                BatchSettlement { merkleRoot: c.merkleRoot, batchSize: c.batchSize, blobId: c.blobId }.encode_log_data()
            }
            _ => panic!("not a posting"),
        };
        Log { address: SETTLEMENT_RELAY, data }
    }

    #[test]
    fn a_posting_is_read_back_from_the_event_it_makes() {
        let individual = Posting::Individual(att(1));
        assert_eq!(recorded(&emitted(&individual)), Ok(Some(Recorded::Individual(result_key(&att(1))))));
        let results = vec![att(3), att(1), att(2)];
        let leaves: Vec<B256> = results.iter().map(batch_leaf).collect();
        let tree = MerkleTree::new(&leaves).unwrap();
        let batch = Posting::Batch { root: tree.root(), results };
        let Ok(Some(Recorded::Batch(read))) = recorded(&emitted(&batch)) else { panic!("a batch") };
        assert_eq!(read, tree);
        for leaf in leaves {
            assert!(merkle::verify(&read.proof(leaf).unwrap(), tree.root(), leaf));
        }
    }

    #[test]
    fn other_logs_are_not_settlements_and_a_batch_without_its_leaves_is_named() {
        let mut other = emitted(&Posting::Individual(att(1)));
        other.address = Address::repeat_byte(1);
        assert_eq!(recorded(&other), Ok(None));
        let unrelated = Log { address: SETTLEMENT_RELAY, data: LogData::new_unchecked(vec![B256::ZERO], Bytes::new()) };
        assert_eq!(recorded(&unrelated), Ok(None));
        let bare = BatchSettlement { merkleRoot: B256::ZERO, batchSize: U256::from(2), blobId: Bytes::new() };
        let log = Log { address: SETTLEMENT_RELAY, data: bare.encode_log_data() };
        assert_eq!(recorded(&log), Err(RecordError::NoLeaves { size: U256::from(2), len: 0 }));
        let truncated = Log {
            address: SETTLEMENT_RELAY,
            data: LogData::new_unchecked(vec![BatchSettlement::SIGNATURE_HASH, B256::ZERO], Bytes::from(vec![0; 7])),
        };
        assert!(matches!(recorded(&truncated), Err(RecordError::Malformed(_))));
    }
}
