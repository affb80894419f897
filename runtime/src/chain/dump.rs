//! State dumps: the whole chain (accounts, blocks, receipts, clock) as JSON,
//! written atomically, read back with a clear error when damaged.
//!
//! A reserved range of empty blocks is kept as one entry (its first header,
//! count and interval), however many blocks it holds. A dump without one is
//! written as format version 1, which older builds read; a dump with one is
//! version 2.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_consensus::{Header, TxEnvelope};
use alloy_eips::eip2718::Decodable2718;
use alloy_primitives::{Address, B256, Bloom, Bytes, Log, U256};
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use serde::{Deserialize, Serialize};

use super::reserved::{ReservedRange, check_reservation};
use super::{BlockUndo, Chain, ChainConfig, Clock, Halt, InferenceRecord, PoolTx, SealedBlock, StateDb, TxReceipt};

/// The format version of a dump without reserved ranges (older builds read it).
const DUMP_VERSION: u32 = 1;

/// The format version of a dump with reserved ranges: the newest this build
/// writes and reads.
const DUMP_VERSION_RESERVED: u32 = 2;

/// Why a dump could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    /// Reading or writing the file failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The bytes are not a dump this build understands.
    #[error("not a valid nml devnet state dump: {0}")]
    Corrupt(String),
    /// The dump belongs to another chain.
    #[error("the state dump is for chain id {dump}, but this devnet runs chain id {devnet}")]
    ChainIdMismatch {
        /// The dump's chain id.
        dump: u64,
        /// The devnet's chain id.
        devnet: u64,
    },
    /// A forked chain's state lies partly on the remote, which a dump cannot hold.
    #[error(
        "a forked devnet's state cannot be dumped or loaded: most of it stays on the remote chain (fork it again instead)"
    )]
    Forked,
}

/// A serialisable copy of a chain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StateDump {
    version: u32,
    chain_id: u64,
    clock_offset: i64,
    accounts: BTreeMap<Address, DumpAccount>,
    blocks: Vec<DumpBlock>,
    /// Ranges of empty blocks that were reserved, not built.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reserved: Vec<DumpRange>,
    /// What each block from `base` on changed, so that a reloaded chain can
    /// still rebuild (and trace) the states of those blocks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    history: Option<DumpHistory>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DumpHistory {
    base: u64,
    undos: Vec<BlockUndo>,
    /// The block each undo record belongs to; absent (version 1), they are
    /// the blocks from `base` on, one each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    blocks: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DumpRange {
    /// The header of the range's first block.
    first: Header,
    count: u64,
    interval: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DumpAccount {
    balance: U256,
    nonce: u64,
    #[serde(default, skip_serializing_if = "is_empty")]
    code: Bytes,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    storage: BTreeMap<U256, U256>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DumpBlock {
    header: Header,
    transactions: Vec<DumpTx>,
    receipts: Vec<DumpReceipt>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct DumpTx {
    raw: Bytes,
    sender: Address,
    #[serde(default)]
    impersonated: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DumpReceipt {
    success: bool,
    gas_used: u64,
    cumulative_gas_used: u64,
    logs: Vec<Log>,
    logs_bloom: Bloom,
    contract_address: Option<Address>,
    effective_gas_price: u128,
    output: Bytes,
    halt_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    inference: Vec<InferenceRecord>,
}

fn is_empty(bytes: &Bytes) -> bool {
    bytes.is_empty()
}

impl StateDump {
    /// Copies the chain.
    pub fn of(chain: &Chain) -> Self {
        let state = chain.state();
        let accounts = state
            .accounts()
            .map(|(address, account)| {
                let code = if account.code_hash == KECCAK_EMPTY {
                    Bytes::new()
                } else {
                    state.code(&account.code_hash).map(|c| c.original_bytes()).unwrap_or_default()
                };
                let dump = DumpAccount {
                    balance: account.balance,
                    nonce: account.nonce,
                    code,
                    storage: account.storage().iter().map(|(k, v)| (*k, *v)).collect(),
                };
                (*address, dump)
            })
            .collect();
        let blocks = chain
            .blocks
            .iter()
            .map(|block| DumpBlock {
                header: block.header.clone(),
                transactions: block
                    .transactions
                    .iter()
                    .map(|tx| DumpTx { raw: tx.encoded(), sender: tx.sender, impersonated: tx.impersonated })
                    .collect(),
                receipts: block
                    .receipts
                    .iter()
                    .map(|r| DumpReceipt {
                        success: r.success,
                        gas_used: r.gas_used,
                        cumulative_gas_used: r.cumulative_gas_used,
                        logs: r.logs.clone(),
                        logs_bloom: r.logs_bloom,
                        contract_address: r.contract_address,
                        effective_gas_price: r.effective_gas_price,
                        output: r.output.clone(),
                        halt_reason: r.halt_reason.as_ref().map(Halt::name),
                        inference: r.inference.clone(),
                    })
                    .collect(),
            })
            .collect();
        let reserved: Vec<DumpRange> = chain
            .reserved
            .iter()
            .map(|r| DumpRange { first: r.template().clone(), count: r.count(), interval: r.interval() })
            .collect();
        Self {
            version: if reserved.is_empty() { DUMP_VERSION } else { DUMP_VERSION_RESERVED },
            chain_id: chain.config.chain_id,
            clock_offset: chain.clock.offset,
            accounts,
            blocks,
            reserved,
            history: Some(DumpHistory {
                base: chain.undo_base,
                undos: chain.undos.iter().map(|(_, u)| BlockUndo::clone(u)).collect(),
                blocks: chain.undos.iter().map(|(n, _)| *n).collect(),
            }),
        }
    }

    /// Parses a dump.
    pub fn from_json(bytes: &[u8]) -> Result<Self, DumpError> {
        let dump: Self = serde_json::from_slice(bytes).map_err(|e| DumpError::Corrupt(e.to_string()))?;
        if !(DUMP_VERSION..=DUMP_VERSION_RESERVED).contains(&dump.version) {
            return Err(DumpError::Corrupt(format!(
                "format version {} (this nml reads {DUMP_VERSION} to {DUMP_VERSION_RESERVED})",
                dump.version
            )));
        }
        if dump.blocks.is_empty() {
            return Err(DumpError::Corrupt("it holds no blocks".into()));
        }
        Ok(dump)
    }

    /// The dump as JSON.
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data with string keys cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a dump from a file.
    pub fn read(path: &Path) -> Result<Self, DumpError> {
        let bytes =
            std::fs::read(path).map_err(|source| DumpError::Io { action: "reading", path: path.into(), source })?;
        Self::from_json(&bytes).map_err(|e| match e {
            DumpError::Corrupt(why) => DumpError::Corrupt(format!("{}: {why}", path.display())),
            other => other,
        })
    }

    /// Writes the dump to `path` atomically: a temporary file beside it,
    /// flushed, then renamed over it. A crash leaves the old file intact.
    pub fn write(&self, path: &Path) -> Result<(), DumpError> {
        let io = |action| move |source| DumpError::Io { action, path: path.into(), source };
        let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "state".into());
        // Unique per process and per call, so concurrent writers never share one.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let tmp = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        let result = (|| {
            let mut file = std::fs::File::create(&tmp).map_err(io("creating a temporary file for"))?;
            file.write_all(&self.to_json()).map_err(io("writing"))?;
            file.sync_all().map_err(io("flushing"))?;
            std::fs::rename(&tmp, path).map_err(io("replacing"))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Rebuilds a chain from the dump, under `config` (whose genesis settings
    /// are ignored: the dump's blocks are the chain).
    pub fn into_chain(self, config: ChainConfig) -> Result<Chain, DumpError> {
        if self.chain_id != config.chain_id {
            return Err(DumpError::ChainIdMismatch { dump: self.chain_id, devnet: config.chain_id });
        }
        let mut state = StateDb::default();
        for (address, account) in self.accounts {
            if !account.code.is_empty() {
                state.set_code(address, Bytecode::new_raw(account.code));
            }
            let entry = state.account_mut(address);
            entry.balance = account.balance;
            entry.nonce = account.nonce;
            for (slot, value) in account.storage {
                entry.set_slot(slot, value);
            }
        }
        let reserved = reserved_ranges(self.reserved)?;
        // Built blocks and reserved ranges together number every block once.
        let mut ranges = reserved.iter().peekable();
        let mut next = 0u64;
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, block) in self.blocks.into_iter().enumerate() {
            while let Some(range) = ranges.next_if(|r| r.first_number() == next) {
                next = range.last_number() + 1;
            }
            if block.header.number != next {
                return Err(DumpError::Corrupt(format!(
                    "block {} is stored where block {next} belongs",
                    block.header.number
                )));
            }
            next += 1;
            if block.transactions.len() != block.receipts.len() {
                return Err(DumpError::Corrupt(format!(
                    "block {i} has a different number of transactions and receipts"
                )));
            }
            let transactions = block
                .transactions
                .into_iter()
                .map(|tx| {
                    let envelope = TxEnvelope::decode_2718(&mut tx.raw.as_ref())
                        .map_err(|e| DumpError::Corrupt(format!("a transaction of block {i}: {e}")))?;
                    let pool_tx = if tx.impersonated {
                        PoolTx::impersonated(envelope.into(), tx.sender)
                    } else {
                        let hash: B256 = *envelope.tx_hash();
                        PoolTx { envelope, sender: tx.sender, hash, impersonated: false }
                    };
                    Ok(Arc::new(pool_tx))
                })
                .collect::<Result<Vec<_>, DumpError>>()?;
            let receipts = block
                .receipts
                .into_iter()
                .map(|r| TxReceipt {
                    success: r.success,
                    gas_used: r.gas_used,
                    cumulative_gas_used: r.cumulative_gas_used,
                    logs: r.logs,
                    logs_bloom: r.logs_bloom,
                    contract_address: r.contract_address,
                    effective_gas_price: r.effective_gas_price,
                    output: r.output,
                    halt_reason: r.halt_reason.as_deref().map(Halt::from_name),
                    inference: r.inference,
                })
                .collect();
            blocks.push(SealedBlock::seal(block.header, transactions, receipts));
        }
        while let Some(range) = ranges.next_if(|r| r.first_number() == next) {
            next = range.last_number() + 1;
        }
        if let Some(range) = ranges.next() {
            return Err(DumpError::Corrupt(format!(
                "the reserved blocks from {} are stored where block {next} belongs",
                range.first_number()
            )));
        }
        let clock = Clock { offset: self.clock_offset, next: None };
        let history = self.history.map(|h| {
            let numbers: Vec<u64> =
                if h.blocks.is_empty() { (h.base..).take(h.undos.len()).collect() } else { h.blocks };
            // Records that do not match the blocks are dropped by `from_parts`.
            (h.base, numbers.into_iter().zip(h.undos).collect())
        });
        Ok(Chain::from_parts(config, state, blocks, reserved, clock, history))
    }
}

/// The reserved ranges of a dump, checked as a reservation would be.
fn reserved_ranges(ranges: Vec<DumpRange>) -> Result<Vec<ReservedRange>, DumpError> {
    let mut checked = Vec::with_capacity(ranges.len());
    for range in ranges {
        let first = range.first.number;
        let corrupt = |why: String| DumpError::Corrupt(format!("the reserved blocks from {first}: {why}"));
        if first == 0 || range.count == 0 {
            return Err(corrupt("a range holds at least one block after genesis".into()));
        }
        check_reservation(first - 1, Some(range.first.timestamp), range.count, range.interval)
            .map_err(|e| corrupt(e.to_string()))?;
        checked.push(ReservedRange::new(range.first, range.count, range.interval));
    }
    Ok(checked)
}
