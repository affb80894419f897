//! The in-memory chain: genesis, world state, mined blocks, reserved ranges
//! of empty blocks, receipts, the clock, and state dumps. It holds data and
//! executes nothing: the block builder (`mempool`) runs transactions through
//! `evm` and appends the result.

mod accounts;
mod block;
mod dump;
mod fee;
mod reserved;
mod roots;
mod state;
#[cfg(test)]
mod tests;
mod tx;

use std::cmp::Ordering;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use alloy_consensus::Header;
use alloy_consensus::constants::{EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_primitives::{B64, Bloom};
use imbl::{OrdMap, Vector};
use revm::bytecode::Bytecode;
use revm::context::BlockEnv;
use revm::primitives::hardfork::SpecId;
use revm::state::EvmState;

use self::reserved::ReservedRange;
use crate::fork::{ForkError, ForkSource};
pub use accounts::{DEV_MNEMONIC, DevAccount, derived_signer, dev_accounts};
pub use block::{BlockBody, Halt, InferenceRecord, InputHash, SealedBlock, Served, TxReceipt};
pub use dump::{DumpBlockError, DumpError, MAX_LOADED_GAS_LIMIT, OpenBatch, RelayDuties, StateDump};
pub use fee::MAX_BASE_FEE;
pub use reserved::MAX_RESERVED;
pub use state::{AccountHeader, BlockUndo, DbAccount, Overlay, RecentHashes, SharedMap, StateDb, StateView};
pub use tx::{MAX_TX_SIZE, PoolTx, TxError};

/// One ether in wei.
pub const ETHER: u128 = 1_000_000_000_000_000_000;

pub use alloy_primitives::{Address, B256, Bytes, U256};

/// How a devnet's chain starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// The chain id (EIP-155).
    pub chain_id: u64,
    /// Gas limit of every block.
    pub gas_limit: u64,
    /// Base fee of the genesis block, in wei; one over [`MAX_BASE_FEE`] is
    /// taken as that.
    pub base_fee: u64,
    /// The hard fork the EVM runs.
    pub spec: SpecId,
    /// Number of dev accounts funded at genesis.
    pub accounts: usize,
    /// Balance of each dev account, in wei.
    pub balance: U256,
    /// Timestamp of the genesis block; now when `None`.
    pub genesis_timestamp: Option<u64>,
    /// The address block rewards (tips) go to.
    pub coinbase: Address,
    /// Lift EIP-170's 24 KiB code size limit (and EIP-3860's initcode limit):
    /// test contracts that deploy what they test are often larger.
    pub unlimited_code_size: bool,
    /// Keep the base fee at `base_fee` whatever the blocks use, instead of
    /// EIP-1559's adjustment (`nml test`'s chains: a zero base fee that a
    /// full block does not raise).
    pub fixed_base_fee: bool,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            chain_id: 31337,
            gas_limit: 30_000_000,
            base_fee: 1_000_000_000,
            spec: SpecId::PRAGUE,
            accounts: 10,
            balance: U256::from(10_000u64) * U256::from(ETHER),
            genesis_timestamp: None,
            coinbase: Address::ZERO,
            unlimited_code_size: false,
            fixed_base_fee: false,
        }
    }
}

/// Why a chain query or edit failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The block does not exist.
    #[error("block {0} not found")]
    UnknownBlock(u64),
    /// No block has this hash.
    #[error("block {0} not found")]
    UnknownBlockHash(B256),
    /// The state of that block cannot be rebuilt (it predates a state load).
    #[error("historical state for block {0} is not available (the state was loaded from a dump at a later block)")]
    HistoryUnavailable(u64),
    /// A block before the fork block of a forked chain: ask the remote.
    #[error("block {number} is before block {fork}, where this devnet forked its remote chain: ask the remote for it")]
    BeforeFork {
        /// The block asked for.
        number: u64,
        /// The fork block.
        fork: u64,
    },
    /// A reservation of empty blocks (`anvil_mine`) that would take block
    /// numbers or timestamps past [`MAX_RESERVED`].
    #[error("mining {count} blocks would take the {what} past {max} (2^53 - 1, the largest integer JavaScript clients read exactly)", max = MAX_RESERVED)]
    ReservationTooLarge {
        /// The number of blocks asked for.
        count: u64,
        /// What would overflow: `block number` or `timestamp`.
        what: &'static str,
    },
    /// A timestamp at or before the head's.
    #[error("timestamp {requested} is lower than or equal to the previous block's timestamp {parent}")]
    TimestampTooLow {
        /// The requested timestamp.
        requested: u64,
        /// The head's timestamp.
        parent: u64,
    },
    /// A timestamp past [`MAX_RESERVED`]: JavaScript clients would misread
    /// it, and the blocks after it would overflow the clock.
    #[error("timestamp {0} is past {max} (2^53 - 1, the largest integer JavaScript clients read exactly)", max = MAX_RESERVED)]
    TimestampTooHigh(u64),
}

/// The environment of the block about to be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextBlock {
    /// Its number.
    pub number: u64,
    /// Its timestamp.
    pub timestamp: u64,
    /// Its base fee.
    pub base_fee: u64,
    /// Its gas limit.
    pub gas_limit: u64,
    /// Its beneficiary.
    pub coinbase: Address,
    /// Its parent's hash.
    pub parent_hash: B256,
    /// Its `prevrandao` (mix hash).
    pub prevrandao: B256,
}

impl NextBlock {
    /// The revm block environment.
    pub fn block_env(&self) -> BlockEnv {
        BlockEnv {
            number: U256::from(self.number),
            beneficiary: self.coinbase,
            timestamp: U256::from(self.timestamp),
            gas_limit: self.gas_limit,
            basefee: self.base_fee,
            difficulty: U256::ZERO,
            prevrandao: Some(self.prevrandao),
            ..Default::default()
        }
    }
}

/// Where a mined transaction sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxLocation {
    /// Block number.
    pub block: u64,
    /// Index in the block.
    pub index: usize,
}

/// The chain: state at the head, every block, undo records for older states,
/// and the clock. Cloning is the snapshot (`evm_snapshot`), in time
/// independent of the chain's length: the state and every index are
/// persistent structures, shared until the next write copies the path it
/// changes.
///
/// Blocks are either built (mined with their transactions) or reserved: a
/// [`reserved`] range of empty blocks stands for any number of them in
/// constant space, and its blocks are built when read.
#[derive(Debug, Clone)]
pub struct Chain {
    config: ChainConfig,
    state: Arc<StateDb>,
    /// The built blocks, in number order; the gaps are reserved ranges.
    blocks: Vector<Arc<SealedBlock>>,
    /// The reserved ranges, in number order.
    reserved: Vector<Arc<ReservedRange>>,
    /// `(n, undo)`: `undo` turns the state after block `n` into the state
    /// before it, for every built block and the last block of every range
    /// from `undo_base` on, in number order (the other blocks of a range
    /// change nothing). The last entry is the head's.
    undos: Vector<(u64, Arc<BlockUndo>)>,
    undo_base: u64,
    by_hash: OrdMap<B256, u64>,
    txs: OrdMap<B256, TxLocation>,
    recent: Arc<RecentHashes>,
    clock: Clock,
}

/// The index of the first item of `items` for which `before` is false
/// (`items` holds those for which it is true first), as
/// [`slice::partition_point`].
fn partition_point<T: Clone>(items: &Vector<T>, before: impl Fn(&T) -> bool) -> usize {
    items.binary_search_by(|item| if before(item) { Ordering::Less } else { Ordering::Greater }).unwrap_or_else(|i| i)
}

/// The devnet's clock: an offset from wall time and a pinned next timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Clock {
    offset: i64,
    next: Option<u64>,
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// The seconds between reserved blocks.
fn reserve_step(interval: Option<u64>) -> u64 {
    interval.unwrap_or(1).max(1)
}

/// The header of an empty block built as `next` on the state `state_root`.
fn empty_header(next: &NextBlock, state_root: B256) -> Header {
    Header {
        parent_hash: next.parent_hash,
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: next.coinbase,
        state_root,
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        withdrawals_root: Some(EMPTY_ROOT_HASH),
        logs_bloom: Bloom::default(),
        difficulty: U256::ZERO,
        number: next.number,
        gas_limit: next.gas_limit,
        gas_used: 0,
        timestamp: next.timestamp,
        extra_data: Bytes::new(),
        mix_hash: next.prevrandao,
        nonce: B64::ZERO,
        base_fee_per_gas: Some(next.base_fee),
        blob_gas_used: Some(0),
        excess_blob_gas: Some(0),
        parent_beacon_block_root: Some(B256::ZERO),
        requests_hash: Some(EMPTY_REQUESTS_HASH),
        ..Default::default()
    }
}

impl Chain {
    /// A chain holding only its genesis block, with the dev accounts funded.
    pub fn genesis(config: ChainConfig) -> Self {
        let mut state = StateDb::default();
        for account in dev_accounts(config.accounts) {
            state.account_mut(account.address).balance = config.balance;
        }
        let genesis = NextBlock {
            number: 0,
            timestamp: config.genesis_timestamp.unwrap_or_else(now),
            base_fee: config.base_fee.min(MAX_BASE_FEE),
            gas_limit: config.gas_limit,
            coinbase: config.coinbase,
            parent_hash: B256::ZERO,
            prevrandao: B256::ZERO,
        };
        let header = empty_header(&genesis, EMPTY_ROOT_HASH);
        let genesis = vec![SealedBlock::seal(header, Vec::new(), Vec::new())];
        Self::from_parts(config, state, genesis, Vec::new(), Clock::default(), None)
    }

    /// A chain forked from `fork`'s remote at its fork block: that block is
    /// the first one here (the same number, hash, timestamp and base fee),
    /// the state is the remote's with the dev accounts funded over it, and
    /// the chain id is the remote's. The dev accounts and the coinbase, which
    /// every block touches, are read from the remote now.
    pub fn fork(mut config: ChainConfig, fork: Arc<ForkSource>) -> Result<Self, ForkError> {
        config.chain_id = fork.chain_id();
        let mut state = StateDb::forked(fork.clone());
        state.header(&config.coinbase)?;
        for account in dev_accounts(config.accounts) {
            state.header(&account.address)?;
            state.account_mut(account.address).balance = config.balance;
        }
        let block =
            SealedBlock { hash: fork.hash(), ..SealedBlock::seal(fork.header().clone(), Vec::new(), Vec::new()) };
        Ok(Self::from_parts(config, state, vec![block], Vec::new(), Clock::default(), None))
    }

    /// A chain from a dump's parts: built blocks and reserved ranges that
    /// together number every block from genesis on once; `history` is the
    /// undo record of every built block and range end from `base` on (their
    /// states can then be rebuilt).
    fn from_parts(
        config: ChainConfig,
        state: StateDb,
        blocks: Vec<SealedBlock>,
        reserved: Vec<ReservedRange>,
        clock: Clock,
        history: Option<(u64, Vec<(u64, BlockUndo)>)>,
    ) -> Self {
        let blocks: Vector<Arc<SealedBlock>> = blocks.into_iter().map(Arc::new).collect();
        let reserved: Vector<Arc<ReservedRange>> = reserved.into_iter().map(Arc::new).collect();
        let mut by_hash = OrdMap::new();
        let mut txs = OrdMap::new();
        for block in &blocks {
            by_hash.insert(block.hash, block.number());
            for (index, tx) in block.transactions.iter().enumerate() {
                txs.insert(tx.hash, TxLocation { block: block.number(), index });
            }
        }
        let mut ends: Vec<u64> =
            blocks.iter().map(|b| b.number()).chain(reserved.iter().map(|r| r.last_number())).collect();
        ends.sort_unstable();
        let head = ends.last().copied().unwrap_or_default();
        let (undo_base, undos) = match history {
            // One record for every block end from `base` on, and nothing else.
            Some((base, undos))
                if undos.iter().map(|(n, _)| *n).eq(ends.iter().copied().filter(|n| *n >= base))
                    && ends.contains(&base) =>
            {
                (base, undos.into_iter().map(|(n, undo)| (n, Arc::new(undo))).collect())
            }
            _ => (head, Vector::unit((head, Arc::new(BlockUndo::default())))),
        };
        let mut chain = Self {
            config,
            state: Arc::new(state),
            blocks,
            reserved,
            undos,
            undo_base,
            by_hash,
            txs,
            recent: Arc::default(),
            clock,
        };
        chain.refresh_recent();
        chain
    }

    /// The configuration the chain started with.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The latest block.
    pub fn head(&self) -> &Arc<SealedBlock> {
        // A chain always holds its genesis block.
        let built = &self.blocks[self.blocks.len() - 1];
        match self.reserved.back() {
            Some(range) if range.last_number() > built.number() => range.last(),
            _ => built,
        }
    }

    /// The latest block's number.
    pub fn head_number(&self) -> u64 {
        self.head().number()
    }

    /// The block with that number (a reserved one is built for the caller).
    pub fn block(&self, number: u64) -> Option<Arc<SealedBlock>> {
        match self.range_of(number) {
            Some(range) => Some(range.block(number)),
            None => self.built(number).cloned(),
        }
    }

    /// The hash of block `number`, without building a reserved block.
    pub fn block_hash(&self, number: u64) -> Option<B256> {
        match self.range_of(number) {
            Some(range) => Some(range.hash(number)),
            None => self.built(number).map(|b| b.hash),
        }
    }

    /// The block with that hash.
    pub fn block_by_hash(&self, hash: &B256) -> Option<Arc<SealedBlock>> {
        if let Some(number) = self.by_hash.get(hash) {
            return self.built(*number).cloned();
        }
        let number = ReservedRange::number_in(hash);
        self.range_of(number).filter(|range| range.hash(number) == *hash).map(|range| range.block(number))
    }

    /// Blocks `from..=to` (clamped to the chain), reserved ones built on the
    /// way: the caller bounds the range.
    pub fn blocks(&self, from: u64, to: u64) -> impl Iterator<Item = Arc<SealedBlock>> {
        let to = to.min(self.head_number());
        (from..=to).filter_map(|n| self.block(n))
    }

    /// The built blocks among `from..=to`: the only ones that can hold
    /// transactions and logs (reserved blocks are empty).
    pub fn built_blocks(&self, from: u64, to: u64) -> impl Iterator<Item = &Arc<SealedBlock>> {
        let start = partition_point(&self.blocks, |b| b.number() < from);
        (start..self.blocks.len()).map(|i| &self.blocks[i]).take_while(move |b| b.number() <= to)
    }

    /// How many of `from..=to` are built blocks.
    pub fn built_count(&self, from: u64, to: u64) -> u64 {
        let start = partition_point(&self.blocks, |b| b.number() < from);
        let end = partition_point(&self.blocks, |b| b.number() <= to);
        end.saturating_sub(start) as u64
    }

    fn built(&self, number: u64) -> Option<&Arc<SealedBlock>> {
        self.blocks.binary_search_by_key(&number, |b| b.number()).ok().map(|i| &self.blocks[i])
    }

    fn range_of(&self, number: u64) -> Option<&ReservedRange> {
        let i = partition_point(&self.reserved, |r| r.last_number() < number);
        self.reserved.get(i).map(|r| &**r).filter(|r| r.contains(number))
    }

    /// Where a mined transaction sits.
    pub fn tx_location(&self, hash: &B256) -> Option<TxLocation> {
        self.txs.get(hash).copied()
    }

    /// A mined transaction with its block and index.
    pub fn transaction(&self, hash: &B256) -> Option<(&Arc<SealedBlock>, usize)> {
        let location = self.tx_location(hash)?;
        Some((self.built(location.block)?, location.index))
    }

    /// The state at the head, read-only.
    pub fn state(&self) -> &StateDb {
        &self.state
    }

    /// A view of the state after block `number`, to build with
    /// [`ViewAt::into_view`] (after releasing whatever lock guards this chain:
    /// an earlier block's view applies the undo records of every block since).
    pub fn view_at(&self, number: u64) -> Result<ViewAt, ChainError> {
        let head = self.head_number();
        if number > head {
            return Err(ChainError::UnknownBlock(number));
        }
        if number == head {
            return Ok(ViewAt { state: self.state.clone(), undos: None, recent: self.recent.clone() });
        }
        let first = self.blocks[0].number();
        if number < first {
            return Err(ChainError::BeforeFork { number, fork: first });
        }
        if number < self.undo_base {
            return Err(ChainError::HistoryUnavailable(number));
        }
        // A shared tail of the records (O(log n)): they are read after the
        // caller's lock is released.
        let undos = self.undos.skip(partition_point(&self.undos, |(n, _)| *n <= number));
        let recent = Arc::new(self.recent_hashes_before(number + 1));
        Ok(ViewAt { state: self.state.clone(), undos: Some(undos), recent })
    }

    /// A view of the state at the head.
    pub fn latest(&self) -> StateView {
        StateView::new(self.state.clone(), None, self.recent.clone())
    }

    /// The hashes of the (up to 256) blocks before `next` that this chain
    /// holds: a forked chain starts at its fork block, and `BLOCKHASH` reads
    /// earlier ones from the remote (`StateView`).
    fn recent_hashes_before(&self, next: u64) -> RecentHashes {
        let first = next.saturating_sub(256).max(self.blocks[0].number());
        RecentHashes { first, hashes: (first..next).map_while(|n| self.block_hash(n)).collect() }
    }

    fn refresh_recent(&mut self) {
        self.recent = Arc::new(self.recent_hashes_before(self.head_number() + 1));
    }

    /// Adds the hash of the block just appended to the recent hashes, in
    /// time independent of the chain's length (a full refresh when they do
    /// not end right before it). In place when no view holds them, which is
    /// the miner's case: the head's view goes before the append.
    fn push_recent(&mut self, number: u64, hash: B256) {
        if self.recent.first + self.recent.hashes.len() as u64 != number {
            return self.refresh_recent();
        }
        let recent = Arc::make_mut(&mut self.recent);
        if recent.hashes.len() >= 256 {
            recent.hashes.pop_front();
            recent.first += 1;
        }
        recent.hashes.push_back(hash);
    }

    /// The base fee of the block after the head (EIP-1559; the configured
    /// one with [`ChainConfig::fixed_base_fee`]), at most [`MAX_BASE_FEE`]
    /// whatever the head's header holds.
    pub fn next_base_fee(&self) -> u64 {
        let header = &self.head().header;
        match header.base_fee_per_gas {
            Some(base_fee) if !self.config.fixed_base_fee => {
                fee::next_base_fee(base_fee, header.gas_used, header.gas_limit)
            }
            _ => self.config.base_fee.min(MAX_BASE_FEE),
        }
    }

    /// The environment of the next block, as it stands now (`pending`).
    ///
    /// The clock (wall time plus the offset) reads at most [`MAX_RESERVED`];
    /// the next block is still a second after its parent, and no head, even
    /// one at `u64::MAX`, makes the sums overflow (they saturate).
    pub fn pending_block(&self) -> NextBlock {
        let parent = self.head();
        let timestamp = self.clock.next.unwrap_or_else(|| {
            let wall = now().saturating_add_signed(self.clock.offset).min(MAX_RESERVED);
            wall.max(parent.header.timestamp.saturating_add(1))
        });
        NextBlock {
            number: parent.number().saturating_add(1),
            timestamp,
            base_fee: self.next_base_fee(),
            gas_limit: self.config.gas_limit,
            coinbase: self.config.coinbase,
            parent_hash: parent.hash,
            prevrandao: alloy_primitives::keccak256(parent.hash),
        }
    }

    /// Forgets the pinned timestamp of the next block, once a block was
    /// built with it ([`Chain::pending_block`] has it).
    pub fn clear_pinned_timestamp(&mut self) {
        self.clock.next = None;
    }

    /// Balance, nonce and code hash of `address` at the head (in fork mode
    /// the first read of an account waits on the remote).
    pub fn latest_header(&self, address: Address) -> Result<Option<AccountHeader>, ForkError> {
        self.state.header(&address)
    }

    /// The environment block `number` executed in (for calls at that block).
    pub fn block_env_of(&self, number: u64) -> Option<NextBlock> {
        let block = self.block(number)?;
        Some(NextBlock {
            number,
            timestamp: block.header.timestamp,
            base_fee: block.header.base_fee_per_gas.unwrap_or_default(),
            gas_limit: block.header.gas_limit,
            coinbase: block.header.beneficiary,
            parent_hash: block.header.parent_hash,
            prevrandao: block.header.mix_hash,
        })
    }

    /// Appends a block built by executing `body`'s transactions on the head
    /// state: commits `changes`, digests the state and seals the header.
    pub fn append(&mut self, next: &NextBlock, body: BlockBody, changes: EvmState) -> Arc<SealedBlock> {
        let committing = tracing::trace_span!("state").entered();
        let state = Arc::make_mut(&mut self.state);
        let undo = state.commit(changes);
        let state_root = state.digest();
        drop(committing);
        let BlockBody { transactions, receipts, transactions_root, receipts_root, logs_bloom } = body;
        let header = Header {
            transactions_root,
            receipts_root,
            logs_bloom,
            gas_used: receipts.last().map(|r| r.cumulative_gas_used).unwrap_or_default(),
            ..empty_header(next, state_root)
        };
        let block =
            tracing::trace_span!("seal").in_scope(|| Arc::new(SealedBlock::seal(header, transactions, receipts)));
        self.by_hash.insert(block.hash, block.number());
        for (index, tx) in block.transactions.iter().enumerate() {
            self.txs.insert(tx.hash, TxLocation { block: block.number(), index });
        }
        self.blocks.push_back(block.clone());
        self.undos.push_back((block.number(), Arc::new(undo)));
        self.push_recent(block.number(), block.hash);
        block
    }

    /// Checks that the pending block, once mined, could be followed by a
    /// reservation of `count` blocks (see [`Chain::reserve`]): `anvil_mine`
    /// asks before it mines anything, so that a refused request changes nothing.
    /// With `timestamp`, the pending block would be pinned to it first
    /// (checked as [`Chain::set_next_timestamp`] checks it).
    pub fn check_reserve_after_pending(
        &self,
        count: u64,
        interval: Option<u64>,
        timestamp: Option<u64>,
    ) -> Result<(), ChainError> {
        if let Some(timestamp) = timestamp {
            self.check_next_timestamp(timestamp)?;
        }
        let pending = self.pending_block();
        let step = reserve_step(interval);
        let first = timestamp.unwrap_or(pending.timestamp);
        reserved::check_reservation(pending.number, first.checked_add(step), count, step)
    }

    /// Appends `count` empty blocks after the head in constant time and
    /// space, as a reserved range whose blocks are built when read (see
    /// [`reserved`]). They are `interval` seconds apart (at least 1; 1 when
    /// `None`), the first that long after the head or at the pinned next
    /// timestamp; with an interval the clock then continues from the last
    /// one, as `evm_setNextBlockTimestamp` would leave it. Their base fees
    /// fall per EIP-1559 and their state is the head's.
    pub fn reserve(&mut self, count: u64, interval: Option<u64>) -> Result<(), ChainError> {
        if count == 0 {
            return Ok(());
        }
        let step = reserve_step(interval);
        let parent = self.head().clone();
        let first_timestamp = match self.clock.next {
            Some(pinned) => Some(pinned),
            None => parent.header.timestamp.checked_add(step),
        };
        reserved::check_reservation(parent.number(), first_timestamp, count, step)?;
        let next = NextBlock {
            number: parent.number() + 1,
            timestamp: first_timestamp.unwrap_or_default(),
            base_fee: self.next_base_fee(),
            gas_limit: self.config.gas_limit,
            coinbase: self.config.coinbase,
            parent_hash: parent.hash,
            prevrandao: alloy_primitives::keccak256(parent.hash),
        };
        let range = ReservedRange::new(empty_header(&next, self.state_digest()), count, step);
        if interval.is_some() {
            self.clock.offset = i64::try_from(range.last().header.timestamp).unwrap_or(i64::MAX)
                - i64::try_from(now()).unwrap_or(i64::MAX);
        }
        self.clock.next = None;
        self.undos.push_back((range.last_number(), Arc::default()));
        self.reserved.push_back(Arc::new(range));
        self.refresh_recent();
        Ok(())
    }

    /// The digest of the head state (`StateDb::digest`).
    fn state_digest(&mut self) -> B256 {
        Arc::make_mut(&mut self.state).digest()
    }

    /// Edits the head state directly (`anvil_setBalance` and the like),
    /// recording the previous values so older states stay correct.
    pub fn edit(&mut self, address: Address, slots: &[U256], edit: impl FnOnce(&mut StateDb)) {
        let undo = self.state.undo_of(address, slots);
        edit(Arc::make_mut(&mut self.state));
        if let Some((_, last)) = self.undos.back_mut() {
            Arc::make_mut(last).extend_newer(undo);
        }
    }

    /// Applies executed state changes outside a block (the devnet's system
    /// calls), recording the previous values like [`Chain::edit`].
    pub fn apply(&mut self, changes: revm::state::EvmState) {
        let undo = Arc::make_mut(&mut self.state).commit(changes);
        if let Some((_, last)) = self.undos.back_mut() {
            Arc::make_mut(last).extend_newer(undo);
        }
    }

    /// Sets the code of `address`.
    pub fn set_code(&mut self, address: Address, code: Bytes) {
        self.edit(address, &[], |state| state.set_code(address, Bytecode::new_raw(code)));
    }

    /// Adds `seconds` to the clock (`evm_increaseTime`); returns the total
    /// offset. A step forward that would take the clock (now plus the
    /// offset), and so the next block's timestamp, past [`MAX_RESERVED`] is
    /// refused and changes nothing. A step back stops at an offset of
    /// −[`MAX_RESERVED`]: the clock reads no earlier than 1970 anyway.
    pub fn increase_time(&mut self, seconds: i64) -> Result<i64, ChainError> {
        let offset = i128::from(self.clock.offset) + i128::from(seconds);
        let clock = i128::from(now()) + offset;
        if seconds > 0 && clock > i128::from(MAX_RESERVED) {
            return Err(ChainError::TimestampTooHigh(u64::try_from(clock).unwrap_or(u64::MAX)));
        }
        let offset = offset.max(-i128::from(MAX_RESERVED));
        // Within ±2^53 now: the previous offset was, and this step is back or short.
        self.clock.offset = i64::try_from(offset).unwrap_or(i64::MAX);
        Ok(self.clock.offset)
    }

    /// Pins the timestamp of the next block.
    pub fn set_next_timestamp(&mut self, timestamp: u64) -> Result<(), ChainError> {
        self.check_next_timestamp(timestamp)?;
        self.clock.next = Some(timestamp);
        // Later blocks keep counting from the pinned time.
        self.clock.offset = i64::try_from(timestamp).unwrap_or(i64::MAX) - i64::try_from(now()).unwrap_or(i64::MAX);
        Ok(())
    }

    /// Refuses a next block's timestamp at or before the head's, or past
    /// [`MAX_RESERVED`].
    fn check_next_timestamp(&self, timestamp: u64) -> Result<(), ChainError> {
        let parent = self.head().header.timestamp;
        if timestamp <= parent {
            return Err(ChainError::TimestampTooLow { requested: timestamp, parent });
        }
        if timestamp > MAX_RESERVED {
            return Err(ChainError::TimestampTooHigh(timestamp));
        }
        Ok(())
    }

    /// The gas price a transaction must at least pay in the next block.
    pub fn min_gas_price(&self) -> u128 {
        u128::from(self.next_base_fee())
    }
}

/// The state after one block, as [`Chain::view_at`] takes it: shared parts
/// and, for an earlier block, the undo records of the blocks since.
#[derive(Debug, Clone)]
pub struct ViewAt {
    state: Arc<StateDb>,
    /// For an earlier block than the head: the undo records of every block
    /// since, newest last.
    undos: Option<Vector<(u64, Arc<BlockUndo>)>>,
    recent: Arc<RecentHashes>,
}

impl ViewAt {
    /// The view: an earlier block's applies the undo records (O(blocks since)).
    pub fn into_view(self) -> StateView {
        let Some(undos) = self.undos else { return StateView::new(self.state, None, self.recent) };
        let mut overlay = Overlay::default();
        for (_, undo) in undos.iter().rev() {
            overlay.apply_undo(undo);
        }
        StateView::new(self.state, Some(Arc::new(overlay)), self.recent)
    }
}
