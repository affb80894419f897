//! State dumps: the whole chain (accounts, blocks, receipts, clock) as JSON,
//! written atomically, read back with a clear error when damaged.
//!
//! A reserved range of empty blocks is kept as one entry (its first header,
//! count and interval), however many blocks it holds. A dump without one is
//! written as format version 1, which older builds read; a dump with one is
//! version 2.
//!
//! A dump is input: one written by hand (or damaged) is refused with a
//! typed error unless the chain it rebuilds is one this devnet could have
//! made, as far as later requests depend on it: blocks numbered from genesis
//! on, none holding transactions at genesis, timestamps rising and at most
//! 2^53 − 1, gas limits within [`MAX_LOADED_GAS_LIMIT`] (or the devnet's own),
//! base fees within [`MAX_BASE_FEE`], gas used within the gas limit and equal
//! to the receipts' sum, and a clock offset within ±(2^53 − 1) seconds.
//!
//! A devnet with a settlement relay also writes what its relay still owed
//! ([`RelayDuties`], the `relay` section), which the pool, lost with the
//! dump, may have held. The section is optional: older dumps and other
//! tools' have none (and older builds ignore it), so it leaves the format
//! version as it is.

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
use super::{
    BlockUndo, Chain, ChainConfig, Clock, Halt, InferenceRecord, MAX_BASE_FEE, MAX_RESERVED, PoolTx, SealedBlock,
    StateDb, TxReceipt,
};

/// The gas limit a loaded block may have beyond this devnet's own: a
/// billion gas (a bench's block), so that a dump written under a larger
/// `--gas-limit` still loads, and a call at an old block, which may burn
/// that block's whole gas limit, still ends (in about a second).
pub const MAX_LOADED_GAS_LIMIT: u64 = 1_000_000_000;

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
    /// A block (or the first of a reserved range) holds a value this devnet
    /// cannot run on from.
    #[error("block {block} of the state dump {problem}")]
    Block {
        /// The block's number.
        block: u64,
        /// What is wrong with it.
        problem: DumpBlockError,
    },
    /// The genesis block holds transactions (a block's transactions are
    /// read against its parent's state, and genesis has no parent).
    #[error("block 0 of the state dump holds {count} transactions: a genesis block holds none")]
    GenesisTransactions {
        /// How many it holds.
        count: usize,
    },
    /// The clock offset would take timestamps past [`MAX_RESERVED`] (or before 1970).
    #[error(
        "the state dump's clock offset of {offset} seconds is past ±{max} (2^53 - 1): the next timestamps would pass that bound",
        max = MAX_RESERVED
    )]
    ClockOffsetTooLarge {
        /// The dump's clock offset, in seconds.
        offset: i64,
    },
    /// A forked chain's state lies partly on the remote, which a dump cannot hold.
    #[error(
        "a forked devnet's state cannot be dumped or loaded: most of it stays on the remote chain (fork it again instead)"
    )]
    Forked,
}

/// What is wrong with a block of a dump ([`DumpError::Block`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpBlockError {
    /// The timestamp is past [`MAX_RESERVED`]: JavaScript clients would
    /// misread it, and the blocks after it would overflow the clock.
    #[error("has timestamp {0}, past {max} (2^53 - 1, the largest the devnet's clock reaches)", max = MAX_RESERVED)]
    TimestampTooHigh(u64),
    /// The timestamp is not after the parent's.
    #[error("has timestamp {timestamp}, not after its parent's {parent}")]
    TimestampNotIncreasing {
        /// The block's timestamp.
        timestamp: u64,
        /// Its parent's.
        parent: u64,
    },
    /// The gas limit is over this devnet's and [`MAX_LOADED_GAS_LIMIT`].
    #[error(
        "has gas limit {gas_limit}, over {max} (the larger of this devnet's block gas limit and {MAX_LOADED_GAS_LIMIT})"
    )]
    GasLimitTooHigh {
        /// The block's gas limit.
        gas_limit: u64,
        /// The largest taken.
        max: u64,
    },
    /// The gas used is over the gas limit.
    #[error("used {gas_used} gas, over its gas limit {gas_limit}")]
    GasUsedOverLimit {
        /// The block's gas used.
        gas_used: u64,
        /// Its gas limit.
        gas_limit: u64,
    },
    /// The gas used is not the sum of its receipts' (each receipt's
    /// cumulative gas being the sum of those up to it).
    #[error("used {gas_used} gas, but its receipts do not add up to that")]
    ReceiptGasMismatch {
        /// The block's gas used.
        gas_used: u64,
    },
    /// The base fee is over [`MAX_BASE_FEE`].
    #[error("has base fee {0} wei, over {max} (2^60, where the devnet's base fee stops rising)", max = MAX_BASE_FEE)]
    BaseFeeTooHigh(u64),
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
    /// What the devnet's settlement relay still owed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    relay: Option<RelayDuties>,
}

/// What a devnet's settlement relay still owed when its state was dumped:
/// the results it had yet to post, each named by its relay key
/// (`settlement::result_key`), so that a devnet that loads the dump posts
/// them again instead of taking them for missed. Only results the dumped
/// chain used count: a key that names none of them is ignored, so the
/// section can never make the relay post a result the chain did not use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayDuties {
    /// Results waiting for the delay (or already due), in posting order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<B256>,
    /// The open batch: due, not posted yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<OpenBatch>,
    /// The postings submitted and not mined (their transactions were in
    /// the pool): each one's results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub submitted: Vec<Vec<B256>>,
    /// Results the relay withheld (an injected fault): not owed, and not
    /// posted after a reload either.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub withheld: Vec<B256>,
}

/// The relay's open batch ([`RelayDuties::batch`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpenBatch {
    /// The chain time its first result joined it.
    pub opened: u64,
    /// The chain time its last result joined it.
    pub touched: u64,
    /// Its results, in order.
    pub results: Vec<B256>,
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
            relay: None,
        }
    }

    /// The dump with `relay` as what the devnet's relay still owed.
    pub fn with_relay(self, relay: Option<RelayDuties>) -> Self {
        Self { relay, ..self }
    }

    /// Takes out what the dumping devnet's relay still owed (`None` for a
    /// dump without the section).
    pub fn take_relay(&mut self) -> Option<RelayDuties> {
        self.relay.take()
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
        if self.clock_offset.unsigned_abs() > MAX_RESERVED {
            return Err(DumpError::ClockOffsetTooLarge { offset: self.clock_offset });
        }
        let reserved = reserved_ranges(self.reserved)?;
        // Built blocks and reserved ranges together number every block once,
        // their headers checked in number order.
        let mut headers = HeaderWalk { max_gas_limit: config.gas_limit.max(MAX_LOADED_GAS_LIMIT), parent: None };
        let mut ranges = reserved.iter().peekable();
        let mut next = 0u64;
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (i, block) in self.blocks.into_iter().enumerate() {
            while let Some(range) = ranges.next_if(|r| r.first_number() == next) {
                headers.range(range)?;
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
            if block.header.number == 0 && !block.transactions.is_empty() {
                return Err(DumpError::GenesisTransactions { count: block.transactions.len() });
            }
            headers.block(&block.header, &block.receipts)?;
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
            headers.range(range)?;
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
            // Up to `u64::MAX` and no further: an open range would overflow
            // past it (a damaged `base`).
            let numbers: Vec<u64> =
                if h.blocks.is_empty() { (h.base..=u64::MAX).take(h.undos.len()).collect() } else { h.blocks };
            // Records that do not match the blocks are dropped by `from_parts`.
            (h.base, numbers.into_iter().zip(h.undos).collect())
        });
        Ok(Chain::from_parts(config, state, blocks, reserved, clock, history))
    }
}

/// The headers of a dump in number order, each checked against the bounds
/// later requests rely on and against its parent's timestamp.
struct HeaderWalk {
    /// The largest gas limit taken.
    max_gas_limit: u64,
    /// The timestamp of the block before the next header.
    parent: Option<u64>,
}

impl HeaderWalk {
    /// Checks a built block's header and its receipts' gas.
    fn block(&mut self, header: &Header, receipts: &[DumpReceipt]) -> Result<(), DumpError> {
        self.header(header)?;
        let mut cumulative = 0u64;
        for receipt in receipts {
            match cumulative.checked_add(receipt.gas_used) {
                Some(sum) if sum == receipt.cumulative_gas_used => cumulative = sum,
                _ => return Err(block_error(header, DumpBlockError::ReceiptGasMismatch { gas_used: header.gas_used })),
            }
        }
        if cumulative != header.gas_used {
            return Err(block_error(header, DumpBlockError::ReceiptGasMismatch { gas_used: header.gas_used }));
        }
        Ok(())
    }

    /// Checks a reserved range: its first block's header, and timestamps
    /// that rise through it.
    fn range(&mut self, range: &ReservedRange) -> Result<(), DumpError> {
        let first = range.template();
        self.header(first)?;
        if range.count() > 1 && range.interval() == 0 {
            let problem =
                DumpBlockError::TimestampNotIncreasing { timestamp: first.timestamp, parent: first.timestamp };
            return Err(DumpError::Block { block: first.number + 1, problem });
        }
        self.parent = Some(range.last().header.timestamp);
        Ok(())
    }

    fn header(&mut self, header: &Header) -> Result<(), DumpError> {
        let problem = if header.timestamp > MAX_RESERVED {
            Some(DumpBlockError::TimestampTooHigh(header.timestamp))
        } else if let Some(parent) = self.parent.filter(|parent| header.timestamp <= *parent) {
            Some(DumpBlockError::TimestampNotIncreasing { timestamp: header.timestamp, parent })
        } else if header.gas_limit > self.max_gas_limit {
            Some(DumpBlockError::GasLimitTooHigh { gas_limit: header.gas_limit, max: self.max_gas_limit })
        } else if header.gas_used > header.gas_limit {
            Some(DumpBlockError::GasUsedOverLimit { gas_used: header.gas_used, gas_limit: header.gas_limit })
        } else {
            header.base_fee_per_gas.filter(|fee| *fee > MAX_BASE_FEE).map(DumpBlockError::BaseFeeTooHigh)
        };
        if let Some(problem) = problem {
            return Err(block_error(header, problem));
        }
        self.parent = Some(header.timestamp);
        Ok(())
    }
}

fn block_error(header: &Header, problem: DumpBlockError) -> DumpError {
    DumpError::Block { block: header.number, problem }
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

#[cfg(test)]
mod tests {
    use alloy_consensus::{TxLegacy, TypedTransaction};
    use revm::state::EvmState;

    use super::*;

    /// A dump of a chain with a transaction in block 1, blocks 2 to 4
    /// reserved 12 seconds apart, and an empty block 5.
    fn dump() -> StateDump {
        let mut chain = Chain::genesis(ChainConfig { genesis_timestamp: Some(1_000), ..ChainConfig::default() });
        let legacy = TxLegacy { gas_price: 2_000_000_000, gas_limit: 21_000, ..Default::default() };
        let tx = Arc::new(PoolTx::impersonated(TypedTransaction::Legacy(legacy), Address::repeat_byte(1)));
        let receipt = TxReceipt {
            success: true,
            gas_used: 21_000,
            cumulative_gas_used: 21_000,
            logs: Vec::new(),
            logs_bloom: Bloom::default(),
            contract_address: None,
            effective_gas_price: 2_000_000_000,
            output: Bytes::new(),
            halt_reason: None,
            inference: Vec::new(),
        };
        let next = chain.pending_block();
        chain.append(&next, crate::chain::BlockBody::new(vec![tx], vec![receipt]), EvmState::default());
        chain.reserve(3, Some(12)).unwrap();
        let next = chain.pending_block();
        chain.append(&next, crate::chain::BlockBody::new(Vec::new(), Vec::new()), EvmState::default());
        StateDump::of(&chain)
    }

    fn load(dump: StateDump) -> Result<Chain, DumpError> {
        StateDump::from_json(&dump.to_json())?.into_chain(ChainConfig::default())
    }

    /// The error loading the dump edited by `edit` gives.
    fn refused(edit: impl FnOnce(&mut StateDump)) -> DumpError {
        let mut dump = dump();
        edit(&mut dump);
        load(dump).map(|chain| chain.head_number()).expect_err("a damaged dump is refused")
    }

    fn block_error(error: DumpError) -> (u64, DumpBlockError) {
        match error {
            DumpError::Block { block, problem } => (block, problem),
            other => panic!("not a block's error: {other}"),
        }
    }

    #[test]
    fn a_dump_the_devnet_writes_loads() {
        let chain = load(dump()).unwrap();
        assert_eq!(chain.head_number(), 5);
        assert_eq!(chain.pending_block().number, 6);
    }

    #[test]
    fn timestamps_past_2_53_or_not_rising_are_refused() {
        let error = refused(|d| d.blocks[2].header.timestamp = u64::MAX);
        assert_eq!(block_error(error), (5, DumpBlockError::TimestampTooHigh(u64::MAX)));
        let error = refused(|d| d.blocks[1].header.timestamp = 1_000);
        assert_eq!(block_error(error), (1, DumpBlockError::TimestampNotIncreasing { timestamp: 1_000, parent: 1_000 }));
        let message = refused(|d| d.blocks[1].header.timestamp = 999).to_string();
        assert_eq!(message, "block 1 of the state dump has timestamp 999, not after its parent's 1000");
        // A reserved range is as a reservation makes it: its blocks at least a second apart.
        let (block, problem) = block_error(refused(|d| d.reserved[0].interval = 0));
        assert_eq!(block, 3);
        assert!(matches!(problem, DumpBlockError::TimestampNotIncreasing { .. }));
        let (block, _) = block_error(refused(|d| d.reserved[0].first.timestamp = 1_000));
        assert_eq!(block, 2);
    }

    #[test]
    fn gas_limits_base_fees_and_gas_used_past_their_bounds_are_refused() {
        let error = refused(|d| d.blocks[0].header.gas_limit = u64::MAX);
        let too_high = DumpBlockError::GasLimitTooHigh { gas_limit: u64::MAX, max: MAX_LOADED_GAS_LIMIT };
        assert_eq!(block_error(error), (0, too_high));
        let error = refused(|d| d.reserved[0].first.gas_limit = MAX_LOADED_GAS_LIMIT + 1);
        assert!(matches!(block_error(error), (2, DumpBlockError::GasLimitTooHigh { .. })));
        let error = refused(|d| {
            let head = &mut d.blocks[2].header;
            head.base_fee_per_gas = Some(u64::MAX);
        });
        assert_eq!(block_error(error), (5, DumpBlockError::BaseFeeTooHigh(u64::MAX)));
        let error = refused(|d| d.blocks[2].header.gas_used = 30_000_001);
        let over = DumpBlockError::GasUsedOverLimit { gas_used: 30_000_001, gas_limit: 30_000_000 };
        assert_eq!(block_error(error), (5, over));
        let error = refused(|d| d.blocks[1].receipts[0].gas_used = u64::MAX);
        assert_eq!(block_error(error), (1, DumpBlockError::ReceiptGasMismatch { gas_used: 21_000 }));
        let error = refused(|d| d.blocks[1].header.gas_used = 42_000);
        assert_eq!(block_error(error), (1, DumpBlockError::ReceiptGasMismatch { gas_used: 42_000 }));
        // A devnet started with a larger gas limit takes its own blocks.
        let mut dump = dump();
        dump.blocks[2].header.gas_limit = 2_000_000_000;
        let config = ChainConfig { gas_limit: 2_000_000_000, ..ChainConfig::default() };
        assert!(dump.into_chain(config).is_ok());
    }

    #[test]
    fn a_clock_offset_past_2_53_and_transactions_at_genesis_are_refused() {
        let error = refused(|d| d.clock_offset = i64::MAX);
        assert!(matches!(error, DumpError::ClockOffsetTooLarge { offset: i64::MAX }), "{error}");
        let error = refused(|d| d.clock_offset = -(1 << 53));
        assert!(matches!(error, DumpError::ClockOffsetTooLarge { .. }), "{error}");
        let error = refused(|d| {
            d.blocks[0].transactions = d.blocks[1].transactions.clone();
            d.blocks[0].receipts = d.blocks[1].receipts.clone();
        });
        assert!(matches!(error, DumpError::GenesisTransactions { count: 1 }), "{error}");
    }

    #[test]
    fn the_relay_section_round_trips_and_a_dump_without_it_has_none() {
        let duties = RelayDuties {
            pending: vec![B256::repeat_byte(1)],
            batch: Some(OpenBatch { opened: 10, touched: 20, results: vec![B256::repeat_byte(2)] }),
            submitted: vec![vec![B256::repeat_byte(3), B256::repeat_byte(4)]],
            withheld: vec![B256::repeat_byte(5)],
        };
        let mut read = StateDump::from_json(&dump().with_relay(Some(duties.clone())).to_json()).unwrap();
        assert_eq!(read.take_relay(), Some(duties));
        // An older dump (or another tool's) has no section, and one without
        // duties writes none.
        let json = dump().to_json();
        assert!(!String::from_utf8_lossy(&json).contains("\"relay\""));
        assert_eq!(StateDump::from_json(&json).unwrap().take_relay(), None);
    }

    #[test]
    fn a_history_based_at_the_last_block_number_loads_without_it() {
        let mut dump = dump();
        let history = dump.history.as_mut().unwrap();
        history.base = u64::MAX;
        history.blocks.clear();
        // The records name no block of the chain: dropped, the head's state alone is kept.
        assert_eq!(load(dump).unwrap().undo_base, 5);
    }
}
