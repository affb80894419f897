//! Mined blocks and their receipts.

use std::sync::{Arc, OnceLock};

use alloy_consensus::{Eip658Value, Header, Receipt, ReceiptEnvelope, ReceiptWithBloom, Transaction, TxType};
use alloy_primitives::{Address, B256, Bloom, Bytes, Keccak256, Log};
use parking_lot::Mutex;
use revm::context::result::OutOfGasError;

use super::tx::PoolTx;
use crate::tee::Attestation;

/// A block's transactions and receipts with their roots and bloom, made
/// before the chain is locked to append them: hashing every transaction and
/// receipt is the part of sealing that depends on the block alone.
#[derive(Debug)]
pub struct BlockBody {
    pub(super) transactions: Vec<Arc<PoolTx>>,
    pub(super) receipts: Vec<TxReceipt>,
    pub(super) transactions_root: B256,
    pub(super) receipts_root: B256,
    pub(super) logs_bloom: Bloom,
}

impl BlockBody {
    /// Hashes `transactions` and their `receipts` (in block order).
    pub fn new(transactions: Vec<Arc<PoolTx>>, receipts: Vec<TxReceipt>) -> Self {
        let _roots = tracing::trace_span!("roots").entered();
        let mut logs_bloom = Bloom::default();
        for receipt in &receipts {
            logs_bloom.accrue_bloom(&receipt.logs_bloom);
        }
        let envelopes: Vec<_> = transactions.iter().map(|t| t.envelope.clone()).collect();
        let receipt_envelopes: Vec<_> =
            receipts.iter().zip(&transactions).map(|(r, t)| r.envelope(t.envelope.tx_type())).collect();
        let transactions_root = super::roots::ordered_root(&envelopes);
        let receipts_root = super::roots::ordered_root(&receipt_envelopes);
        Self { transactions, receipts, transactions_root, receipts_root, logs_bloom }
    }

    /// Whether it holds no transaction.
    pub fn is_empty(&self) -> bool {
        self.transactions.is_empty()
    }
}

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
    pub halt_reason: Option<Halt>,
    /// What the inference precompile answered to each of its calls, in call
    /// order (PROTOCOL.md B6: every replay serves these, never a fresh run).
    pub inference: Vec<InferenceRecord>,
}

/// Why the EVM halted a transaction instead of returning or reverting.
///
/// The variants keep revm's names for its reasons ([`Halt::name`]), which is
/// how state dumps store them; [`Display`](std::fmt::Display) gives the
/// message a client reads (`out of gas`, `invalid opcode`…).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Halt {
    /// Out of gas, in one of revm's ways (`Basic`, `Memory`…).
    OutOfGas(OutOfGasError),
    /// An opcode that is not defined.
    OpcodeNotFound,
    /// The designated invalid instruction `0xFE`.
    InvalidFEOpcode,
    /// A value popped from an empty stack.
    StackUnderflow,
    /// A created contract's code exceeds the size limit (EIP-170).
    CreateContractSizeLimit,
    /// Any other reason, by revm's name for it (`InvalidJump`, `CallTooDeep`…).
    Other(String),
}

impl Halt {
    /// revm's name for the reason (its `Debug` form: `OutOfGas(Basic)`,
    /// `StackUnderflow`…), as state dumps store it.
    pub fn name(&self) -> String {
        match self {
            Self::OutOfGas(kind) => format!("OutOfGas({kind:?})"),
            Self::OpcodeNotFound => "OpcodeNotFound".to_owned(),
            Self::InvalidFEOpcode => "InvalidFEOpcode".to_owned(),
            Self::StackUnderflow => "StackUnderflow".to_owned(),
            Self::CreateContractSizeLimit => "CreateContractSizeLimit".to_owned(),
            Self::Other(name) => name.clone(),
        }
    }

    /// The reason [`Halt::name`] names; a name it does not know is
    /// [`Halt::Other`].
    pub fn from_name(name: &str) -> Self {
        let out_of_gas = |kind: &str| match kind {
            "Basic" => Some(OutOfGasError::Basic),
            "MemoryLimit" => Some(OutOfGasError::MemoryLimit),
            "Memory" => Some(OutOfGasError::Memory),
            "Precompile" => Some(OutOfGasError::Precompile),
            "InvalidOperand" => Some(OutOfGasError::InvalidOperand),
            "ReentrancySentry" => Some(OutOfGasError::ReentrancySentry),
            _ => None,
        };
        match name {
            "OpcodeNotFound" => Self::OpcodeNotFound,
            "InvalidFEOpcode" => Self::InvalidFEOpcode,
            "StackUnderflow" => Self::StackUnderflow,
            "CreateContractSizeLimit" => Self::CreateContractSizeLimit,
            _ => match name.strip_prefix("OutOfGas(").and_then(|k| k.strip_suffix(')')).and_then(out_of_gas) {
                Some(kind) => Self::OutOfGas(kind),
                None => Self::Other(name.to_owned()),
            },
        }
    }
}

impl std::fmt::Display for Halt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::OutOfGas(_) => f.write_str("out of gas"),
            Self::OpcodeNotFound | Self::InvalidFEOpcode => f.write_str("invalid opcode"),
            Self::StackUnderflow => f.write_str("stack underflow"),
            Self::CreateContractSizeLimit => f.write_str("max code size exceeded"),
            Self::Other(name) => write!(f, "execution halted: {name}"),
        }
    }
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
    /// `keccak256` of the ABI-encoded input tensors (hashed when first read).
    pub input_hash: InputHash,
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
    /// The enclave's attestation of a TEE-mode result (absent for other
    /// modes and for failures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<Attestation>,
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

/// A record's input hash, `keccak256(abi.encode(input))`, hashed when it is
/// first read (the node's record views, a state written): few records ever
/// are, and the hash of a 64-number input costs about as much as all the
/// rest of a record (9–16 µs). Until then it holds the request's encoding
/// (the input is a slice of it, not a copy: 4.8 KB for 64 numbers), and
/// lets go of it once hashed. Clones share the hash and the bytes.
#[derive(Clone)]
pub struct InputHash(Arc<LazyHash>);

struct LazyHash {
    hash: OnceLock<B256>,
    /// The encoding of the input tuple until it is hashed: `abi.encode(input)`
    /// is the offset 0x20, then these bytes.
    tuple: Mutex<Bytes>,
}

impl InputHash {
    /// The input hash of an input whose tuple is encoded as `tuple`
    /// (`abi.encode(input)` without its leading offset 0x20).
    pub fn of_tuple(tuple: Bytes) -> Self {
        Self(Arc::new(LazyHash { hash: OnceLock::new(), tuple: Mutex::new(tuple) }))
    }

    /// The hash.
    pub fn get(&self) -> B256 {
        *self.0.hash.get_or_init(|| {
            let tuple = std::mem::take(&mut *self.0.tuple.lock());
            let mut hasher = Keccak256::new();
            hasher.update(B256::left_padding_from(&[0x20]));
            hasher.update(&tuple);
            hasher.finalize()
        })
    }
}

impl From<B256> for InputHash {
    fn from(hash: B256) -> Self {
        Self(Arc::new(LazyHash { hash: OnceLock::from(hash), tuple: Mutex::default() }))
    }
}

impl PartialEq for InputHash {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.get() == other.get()
    }
}

impl Eq for InputHash {}

impl std::fmt::Debug for InputHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

impl serde::Serialize for InputHash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for InputHash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        B256::deserialize(deserializer).map(Self::from)
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

    /// Its transactions' priority fees per gas, each with the gas it used,
    /// sorted (`eth_feeHistory`'s rewards).
    pub fn tips(&self) -> Vec<(u128, u64)> {
        let base_fee = self.header.base_fee_per_gas.unwrap_or_default();
        let mut tips: Vec<(u128, u64)> = self
            .transactions
            .iter()
            .zip(&self.receipts)
            .map(|(tx, r)| (tx.envelope.effective_tip_per_gas(base_fee).unwrap_or_default(), r.gas_used))
            .collect();
        tips.sort_unstable();
        tips
    }

    /// Size of the RLP encoding of the block, as `eth_getBlockBy*` reports it.
    pub fn size(&self) -> u64 {
        let header = alloy_rlp::Encodable::length(&self.header);
        let txs: usize = self.transactions.iter().map(|t| t.encoded_len()).sum();
        (header + txs + 8) as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_input_hash_hashed_when_read_is_the_one_made_at_once_and_survives_a_dump() {
        let tuple = Bytes::from(vec![7u8; 96]);
        let mut encoding = B256::left_padding_from(&[0x20]).to_vec();
        encoding.extend_from_slice(&tuple);
        let expected = alloy_primitives::keccak256(&encoding);
        let lazy = InputHash::of_tuple(tuple);
        let clone = lazy.clone();
        assert_eq!(lazy, InputHash::from(expected));
        assert_eq!(clone.get(), expected);
        assert!(lazy.0.tuple.lock().is_empty(), "the input is let go of once hashed");
        let json = serde_json::to_string(&clone).unwrap();
        assert_eq!(json, format!("\"{expected}\""));
        assert_eq!(serde_json::from_str::<InputHash>(&json).unwrap().get(), expected);
        assert_ne!(InputHash::of_tuple(Bytes::from(vec![8u8; 96])), lazy);
    }

    #[test]
    fn a_halt_keeps_revms_name_through_a_dump_and_reads_as_geth_words() {
        let halts = [
            Halt::OutOfGas(OutOfGasError::Basic),
            Halt::OutOfGas(OutOfGasError::Memory),
            Halt::OpcodeNotFound,
            Halt::InvalidFEOpcode,
            Halt::StackUnderflow,
            Halt::CreateContractSizeLimit,
            Halt::Other("InvalidJump".to_owned()),
        ];
        for halt in halts {
            assert_eq!(Halt::from_name(&halt.name()), halt);
        }
        assert_eq!(Halt::OutOfGas(OutOfGasError::Basic).name(), "OutOfGas(Basic)");
        assert_eq!(Halt::from_name("OutOfGas(Sideways)"), Halt::Other("OutOfGas(Sideways)".to_owned()));
        assert_eq!(Halt::OutOfGas(OutOfGasError::Precompile).to_string(), "out of gas");
        assert_eq!(Halt::InvalidFEOpcode.to_string(), "invalid opcode");
        assert_eq!(Halt::CreateContractSizeLimit.to_string(), "max code size exceeded");
        assert_eq!(Halt::Other("CallTooDeep".to_owned()).to_string(), "execution halted: CallTooDeep");
    }
}
