//! Mined blocks and their receipts.

use std::sync::Arc;

use alloy_consensus::{Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, TxType};
use alloy_primitives::{Address, B256, Bloom, Bytes, Log};

use super::tx::PoolTx;

/// The outcome of one included transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxReceipt {
    /// Whether it succeeded.
    pub success: bool,
    /// Gas it used.
    pub gas_used: u64,
    /// Gas used by it and every transaction before it in the block.
    pub cumulative_gas_used: u64,
    /// Logs it emitted.
    pub logs: Vec<Log>,
    /// Bloom filter of the logs.
    pub logs_bloom: Bloom,
    /// The contract it created.
    pub contract_address: Option<Address>,
    /// Price per gas it paid.
    pub effective_gas_price: u128,
    /// Return data, or revert data when it reverted.
    pub output: Bytes,
    /// Why it halted (out of gas, invalid opcode…), when it did.
    pub halt_reason: Option<String>,
    /// What the inference precompile answered to each of its calls, in call
    /// order (PROTOCOL.md B6: every replay serves these, never a fresh run).
    pub inference: Vec<InferenceRecord>,
}

/// How an inference result reached a transaction at inclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Served {
    /// Run by the mempool before inclusion (in the simulation round the record names).
    PreExecuted,
    /// Known before this transaction was prepared: the identical request was
    /// run for an earlier transaction or call.
    Cached,
    /// Not pre-executed (the state changed since simulation): run inline at inclusion.
    Inline,
}

/// One call of a mined transaction to the inference precompile, and its answer.
///
/// The chain keeps these as plain data; the mempool writes them and serves
/// them again to every replay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InferenceRecord {
    /// `keccak256` of the ABI-encoded request (PROTOCOL.md B2).
    pub request_id: B256,
    /// The model (or LLM) id the request names.
    pub model: String,
    /// The request's mode byte.
    pub mode: u8,
    /// `keccak256` of the ABI-encoded input tensors.
    pub input_hash: B256,
    /// Whether the precompile returned (true) or reverted (false).
    pub success: bool,
    /// The precompile's return data (the encoded `ModelOutput`) or revert data.
    pub output: Bytes,
    /// The simulation round that found the request; `None` when run inline.
    pub round: Option<u32>,
    /// How the result was served.
    pub served: Served,
    /// How long the model ran, in microseconds.
    pub duration_us: u64,
}

impl TxReceipt {
    /// The consensus receipt, typed like its transaction (for the receipts root).
    pub fn envelope(&self, tx_type: TxType) -> ReceiptEnvelope {
        self.envelope_with(tx_type, self.logs.clone())
    }

    /// The receipt envelope carrying `logs` (e.g. the RPC form of its logs).
    pub fn envelope_with<L>(&self, tx_type: TxType, logs: Vec<L>) -> ReceiptEnvelope<L> {
        let receipt = ReceiptWithBloom {
            receipt: Receipt {
                status: Eip658Value::Eip658(self.success),
                cumulative_gas_used: self.cumulative_gas_used,
                logs,
            },
            logs_bloom: self.logs_bloom,
        };
        match tx_type {
            TxType::Legacy => ReceiptEnvelope::Legacy(receipt),
            TxType::Eip2930 => ReceiptEnvelope::Eip2930(receipt),
            TxType::Eip1559 => ReceiptEnvelope::Eip1559(receipt),
            TxType::Eip4844 => ReceiptEnvelope::Eip4844(receipt),
            TxType::Eip7702 => ReceiptEnvelope::Eip7702(receipt),
        }
    }
}

/// A mined block: its header, hash, transactions and receipts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedBlock {
    /// The header.
    pub header: Header,
    /// keccak256 of the RLP-encoded header; for a block of a reserved range,
    /// a synthetic hash (`chain::reserved`).
    pub hash: B256,
    /// The transactions, in execution order.
    pub transactions: Vec<Arc<PoolTx>>,
    /// One receipt per transaction.
    pub receipts: Vec<TxReceipt>,
}

impl SealedBlock {
    /// Seals a header: computes its hash.
    pub fn seal(header: Header, transactions: Vec<Arc<PoolTx>>, receipts: Vec<TxReceipt>) -> Self {
        Self { hash: header.hash_slow(), header, transactions, receipts }
    }

    /// The block number.
    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// Size of the RLP encoding of the block, as `eth_getBlockBy*` reports it.
    pub fn size(&self) -> u64 {
        let header = alloy_rlp::Encodable::length(&self.header);
        let txs: usize =
            self.transactions.iter().map(|t| alloy_eips::eip2718::Encodable2718::encode_2718_len(&t.envelope)).sum();
        (header + txs + 8) as u64
    }
}
