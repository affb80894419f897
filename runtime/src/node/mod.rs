//! The devnet as a library: one [`Devnet`] ties the chain, the pool, the
//! block builder, mining modes, snapshots, filters and dev signers together.
//! Every method is synchronous and usable in-process without a socket; the
//! RPC server is a thin layer over it.

mod convert;
mod filters;
mod inference;
mod miner;
mod query;
mod remote;
mod scheduler;
mod settlement;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxLegacy, TypedTransaction};
use alloy_dyn_abi::TypedData;
use alloy_primitives::map::HashSet;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer::SignerSync;
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::{Notify, broadcast};

use crate::chain::{
    Chain, ChainConfig, ChainError, DevAccount, DumpError, NextBlock, PoolTx, RelayDuties, SealedBlock, StateDump,
    StateView, TxError, TxReceipt, dev_accounts,
};
use crate::evm::{
    EthereumPrecompiles, EvmSetup, ExecOptions, InspectorFactory, Machine, Phase, PrecompileFactory, TraceError,
};
use crate::fork::{ForkError, ForkSource};
use crate::mempool::{Added, InferenceWait, NoPreExecution, Pool, PreExecution};
use crate::predeploys::{SYSTEM_ADDRESS, SYSTEM_CALL_GAS, SystemCall};
use miner::{Batch, Engine, Mined, MinerThread};
use revm::context::TxEnv;

pub use convert::{rpc_block, rpc_block_logs, rpc_header, rpc_logs, rpc_receipt, rpc_transaction, transaction_json};
pub use filters::FilterChanges;
pub use inference::{AttestedCall, InferenceSetup, MempoolStatus, TeeInfo};
pub use query::check_filter;
pub(crate) use query::check_log_count;
pub use remote::Forwarded;
pub use scheduler::{TaskInfo, scheduler_signer};
use settlement::ChainReplaced;
pub use settlement::HEARTBEAT_EVERY;

/// The priority fee the devnet suggests and fills in, in wei (1 gwei).
pub const DEFAULT_PRIORITY_FEE: u128 = 1_000_000_000;

/// The most snapshots kept at once: each copies the chain's indexes (its
/// blocks, hashes and transaction locations), so their count bounds memory.
pub const MAX_SNAPSHOTS: usize = 1_000;

/// When blocks are mined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mining {
    /// A block for every transaction, as soon as it arrives.
    Auto,
    /// A block every interval, with whatever is pending.
    Interval(Duration),
    /// Only on `evm_mine` / `anvil_mine`.
    Manual,
}

/// How a devnet starts.
#[derive(Debug, Clone)]
pub struct DevnetConfig {
    /// The chain.
    pub chain: ChainConfig,
    /// The mining mode.
    pub mining: Mining,
    /// The file `--state` names: loaded at start when present, written by
    /// [`Devnet::save_state`] and `anvil_dumpState`.
    pub state_file: Option<PathBuf>,
    /// Fork mode: the remote state the chain starts from (connected with
    /// [`ForkSource::connect`]; the chain id is then the remote's, and
    /// `state_file` is not read).
    pub fork: Option<Arc<ForkSource>>,
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self { chain: ChainConfig::default(), mining: Mining::Auto, state_file: None, fork: None }
    }
}

/// Why a devnet request failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The transaction was refused.
    #[error(transparent)]
    Tx(#[from] TxError),
    /// A chain query failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// The execution reverted (`eth_call`, `eth_estimateGas`).
    #[error("{message}")]
    Reverted {
        /// `execution reverted: <reason>`.
        message: String,
        /// The raw revert data.
        data: Bytes,
    },
    /// The request cannot be served (geth answers these with -32000).
    #[error("{0}")]
    Failed(String),
    /// A parameter is invalid (-32602).
    #[error("{0}")]
    InvalidParams(String),
    /// The request would go past one of the node's bounds (-32005, EIP-1474's
    /// "limit exceeded"): too many results, too many filters installed.
    #[error("{what} (at most {limit}){hint}")]
    LimitExceeded {
        /// What went past it.
        what: &'static str,
        /// The bound.
        limit: usize,
        /// How to stay within it, after a colon, or nothing.
        hint: &'static str,
    },
    /// Reading or writing a state dump failed.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// Tracing failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
    /// In fork mode, the remote state could not be read.
    #[error(transparent)]
    Fork(#[from] ForkError),
}

/// The mutable part of a devnet.
#[derive(Debug)]
struct Inner {
    /// Counts the edits of the chain that are not blocks (state edits, time,
    /// reverts, loads): a block built across one is built again.
    epoch: u64,
    chain: Chain,
    pool: Pool,
    automine: bool,
    interval: Option<Duration>,
    impersonated: HashSet<Address>,
    snapshots: BTreeMap<u64, (Chain, Pool)>,
    next_snapshot: u64,
    filters: filters::Filters,
    /// Why transactions left the pool unmined, lately.
    dropped: miner::Dropped,
}

/// A local chain: accepts transactions, mines blocks, answers queries.
///
/// Blocks are built by a miner thread of its own (started with the first
/// transaction) and by `evm_mine` callers, never while the lock that
/// requests take is held: see the `miner` module.
#[derive(Debug)]
pub struct Devnet {
    engine: Arc<Engine>,
    miner: Mutex<Option<MinerThread>>,
    interval_changed: Notify,
    accounts: Vec<DevAccount>,
    state_file: Option<PathBuf>,
    inference: Option<inference::Inference>,
    /// In fork mode, the remote state (fixed for the devnet's life).
    fork: Option<Arc<ForkSource>>,
    /// Held by `eth_sendTransaction` from reading an account's next nonce
    /// to adding the transaction that takes it.
    nonces: Mutex<()>,
    /// What the relay of the `--state` file's devnet still owed, until the
    /// relay's book is made (`with_inference`).
    loaded_duties: Option<RelayDuties>,
}

impl Devnet {
    /// A devnet with Ethereum's precompiles and no pre-execution stage. With
    /// a state file that exists, the chain is loaded from it.
    pub fn new(config: DevnetConfig) -> Result<Self, NodeError> {
        Self::with_extensions(config, Arc::new(EthereumPrecompiles), Arc::new(NoPreExecution))
    }

    /// A devnet with a custom precompile set and pre-execution stage.
    pub fn with_extensions(
        config: DevnetConfig,
        precompiles: Arc<dyn PrecompileFactory>,
        stage: Arc<dyn PreExecution>,
    ) -> Result<Self, NodeError> {
        let (chain, loaded_duties) = match (&config.fork, &config.state_file) {
            (Some(fork), _) => (Chain::fork(config.chain.clone(), fork.clone())?, None),
            (None, Some(path)) if path.exists() => {
                let mut dump = StateDump::read(path)?;
                let duties = dump.take_relay();
                (dump.into_chain(config.chain.clone())?, duties)
            }
            (None, _) => (Chain::genesis(config.chain.clone()), None),
        };
        Ok(Self { loaded_duties, ..Self::assemble(config, chain, precompiles, stage) })
    }

    fn assemble(
        config: DevnetConfig,
        chain: Chain,
        precompiles: Arc<dyn PrecompileFactory>,
        stage: Arc<dyn PreExecution>,
    ) -> Self {
        let (automine, interval) = match config.mining {
            Mining::Auto => (true, None),
            Mining::Interval(every) => (false, Some(every)),
            Mining::Manual => (false, None),
        };
        let fork = chain.state().fork().cloned();
        let inner = Inner {
            epoch: 0,
            chain,
            pool: Pool::default(),
            automine,
            interval,
            impersonated: HashSet::default(),
            snapshots: BTreeMap::new(),
            next_snapshot: 1,
            filters: filters::Filters::default(),
            dropped: miner::Dropped::default(),
        };
        Self {
            engine: Arc::new(Engine::new(inner, precompiles, stage)),
            miner: Mutex::new(None),
            interval_changed: Notify::new(),
            accounts: dev_accounts(config.chain.accounts),
            state_file: config.state_file,
            inference: None,
            fork,
            nonces: Mutex::new(()),
            loaded_duties: None,
        }
    }

    /// Installs `inspectors` into every EVM the devnet builds (the test
    /// runner's cheatcodes). A devnet takes one set, before its first
    /// transaction; a second is refused (returned).
    pub fn set_inspectors(&mut self, inspectors: Arc<dyn InspectorFactory>) -> Result<(), Arc<dyn InspectorFactory>> {
        self.engine.inspectors.set(inspectors)
    }

    pub(crate) fn evm_setup(&self) -> EvmSetup<'_> {
        self.engine.evm_setup()
    }

    /// The devnet's state after every transaction sent so far was handled
    /// (mined, or pending on inference), locked.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.engine.settle();
        self.engine.inner.lock()
    }

    /// Whether a request that reads the chain would answer without waiting
    /// for the miner (every automine pass asked for so far is done). The RPC
    /// server runs such a request where it arrives, and one that would wait
    /// on the blocking pool, so that its I/O threads never wait.
    pub fn is_settled(&self) -> bool {
        self.engine.is_settled()
    }

    /// Keeps the node awake for a while after a client's request: its miner
    /// thread (started now if it is not running) waits for the next request,
    /// or the pass it asks for, awake instead of asleep (see the `miner`
    /// module). The RPC server calls it for every call, batch and notification.
    pub fn keep_awake(&self) {
        if self.ensure_miner() {
            self.engine.keep_awake();
        }
    }

    /// Starts the miner thread if it is not running; whether it runs.
    fn ensure_miner(&self) -> bool {
        let mut miner = self.miner.lock();
        if miner.is_none() && !self.engine.is_stopped() {
            match MinerThread::start(&self.engine) {
                Ok(thread) => *miner = Some(thread),
                Err(e) => {
                    tracing::error!(%e, "cannot start the miner thread; blocks are built on the caller's thread");
                    // A model's result then runs the pass on the thread that
                    // brings it, unless a block is being built (which may be
                    // the caller of the waker itself).
                    let weak = Arc::downgrade(&self.engine);
                    self.engine.stage.set_waker(Arc::new(move || {
                        if let Some(engine) = weak.upgrade() {
                            engine.pass_if_idle();
                        }
                    }));
                }
            }
        }
        miner.is_some()
    }

    /// Asks for an automine pass: on the miner thread, or, when that thread
    /// cannot start, here before this returns (so that nobody waits for a
    /// pass that never runs).
    fn ask_pass(&self) {
        if self.ensure_miner() {
            self.engine.ask_pass();
        } else if !self.engine.is_stopped() {
            self.engine.pass(false);
        }
    }

    /// The chain configuration.
    pub fn chain_config(&self) -> ChainConfig {
        self.engine.inner.lock().chain.config().clone()
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.engine.inner.lock().chain.config().chain_id
    }

    /// The dev accounts, whose keys the devnet holds.
    pub fn dev_accounts(&self) -> &[DevAccount] {
        &self.accounts
    }

    /// Addresses the devnet signs for (`eth_accounts`).
    pub fn accounts(&self) -> Vec<Address> {
        self.accounts.iter().map(|a| a.address).collect()
    }

    /// New blocks, as they are mined.
    pub fn subscribe_blocks(&self) -> broadcast::Receiver<Arc<SealedBlock>> {
        self.engine.blocks.subscribe()
    }

    /// Hashes of transactions, as they enter the pool.
    pub fn subscribe_pending_transactions(&self) -> broadcast::Receiver<B256> {
        self.engine.pending_txs.subscribe()
    }

    /// Runs `f` on the chain (read-only), once every transaction sent so far
    /// was handled.
    pub fn with_chain<T>(&self, f: impl FnOnce(&Chain) -> T) -> T {
        f(&self.lock().chain)
    }

    /// The receipt of `hash` once it is mined: waits while the transaction
    /// is pending (its inference running), up to `timeout`. `None` for a
    /// transaction that is neither mined nor pending, or still pending then:
    /// one dropped meanwhile ends the wait when it is
    /// ([`Devnet::dropped_reason`] says why).
    pub fn wait_for_receipt(&self, hash: B256, timeout: Duration) -> Option<TxReceipt> {
        let deadline = std::time::Instant::now() + timeout;
        let mut inner = self.lock();
        loop {
            if let Some((block, index)) = inner.chain.transaction(&hash) {
                return block.receipts.get(index).cloned();
            }
            let now = std::time::Instant::now();
            if inner.pool.get(&hash).is_none() || now >= deadline {
                return None;
            }
            self.engine.wait_appended(&mut inner, deadline - now);
        }
    }

    /// Why `hash` left the pool without being mined: refused at inclusion,
    /// or nml hit an internal error executing it (the message says which).
    /// `None` for a transaction mined, pending, never seen, or dropped long
    /// ago (the reasons of the latest 4,096 drops are kept).
    pub fn dropped_reason(&self, hash: B256) -> Option<String> {
        let inner = self.lock();
        if inner.pool.get(&hash).is_some() || inner.chain.transaction(&hash).is_some() {
            return None;
        }
        inner.dropped.reason(&hash).map(str::to_owned)
    }

    /// Stops mining for good, for a clean shutdown: transactions whose
    /// inference is running are mined once it is done (each waits at most
    /// the executor's timeout), and the miner thread ends after the block
    /// it is building. State read afterwards holds every mined block.
    pub fn shutdown(&self) {
        self.engine.settle();
        let automine = self.engine.inner.lock().automine;
        if automine {
            for _ in 0..1024 {
                match self.engine.build_block(InferenceWait::Wait, Batch::All, false, None) {
                    Ok(Mined::Block(_)) => {}
                    Ok(Mined::NothingReady | Mined::NoneIncluded) => break,
                    Err(e) => {
                        tracing::error!(%e, "cannot mine the pending transactions at shutdown");
                        break;
                    }
                }
            }
        }
        // The thread ends after its pass, and none starts again; joining it
        // does not hold the lock that a request starting the miner takes.
        self.engine.stop();
        let thread = self.miner.lock().take();
        drop(thread);
    }

    // ----- transactions -----

    /// Accepts a signed transaction (`eth_sendRawTransaction`); mines it at
    /// once under automine. Returns its hash.
    pub fn send_raw_transaction(&self, raw: &[u8]) -> Result<B256, NodeError> {
        let tx = PoolTx::decode(raw)?;
        self.submit(tx)
    }

    /// Signs and sends a transaction for a dev account, or sends one for an
    /// impersonated account (`eth_sendTransaction`).
    pub fn send_transaction(&self, request: TransactionRequest) -> Result<B256, NodeError> {
        self.check_request(&request)?;
        let from = request.from.ok_or_else(|| NodeError::InvalidParams("missing \"from\" field".into()))?;
        let signer = self.accounts.iter().find(|a| a.address == from).map(|a| a.signer.clone());
        let impersonated = self.lock().impersonated.contains(&from);
        if signer.is_none() && !impersonated {
            return Err(TxError::UnknownAccount(from).into());
        }
        // Gas first: estimating it runs the EVM, and the nonce's lock below
        // should be brief.
        let gas = match request.gas {
            Some(g) => g,
            None => self.estimate_gas(request.clone(), None, None)?,
        };
        // The nonce is read and taken under one lock: two sends for one
        // account at once get two nonces, not the same one twice.
        let _nonces = request.nonce.is_none().then(|| self.nonces.lock());
        let nonce = match request.nonce {
            Some(n) => n,
            None => self.transaction_count(from, alloy_eips::BlockNumberOrTag::Pending.into())?,
        };
        let typed = self.fill_transaction(request, nonce, gas)?;
        let tx = match signer {
            Some(signer) if !impersonated => {
                let signature =
                    signer.sign_hash_sync(&typed.signature_hash()).map_err(|e| NodeError::Failed(e.to_string()))?;
                PoolTx::from_signed(typed.into_envelope(signature))?
            }
            _ => PoolTx::impersonated(typed, from),
        };
        self.submit(tx)
    }

    /// The transaction `request` asks for, with `nonce`, gas limit `gas_limit`
    /// and the fees it leaves out filled in.
    fn fill_transaction(
        &self,
        request: TransactionRequest,
        nonce: u64,
        gas_limit: u64,
    ) -> Result<TypedTransaction, NodeError> {
        let chain_id = self.chain_id();
        let to = request.to.unwrap_or(TxKind::Create);
        let value = request.value.unwrap_or_default();
        let input = request.input.input().cloned().unwrap_or_default();
        let access_list = request.access_list.clone().unwrap_or_default();
        let base_fee = self.with_chain(|c| c.next_base_fee());
        Ok(match request.gas_price {
            Some(gas_price) if request.transaction_type == Some(1) || request.access_list.is_some() => {
                TxEip2930 { chain_id, nonce, gas_price, gas_limit, to, value, access_list, input }.into()
            }
            Some(gas_price) => {
                TxLegacy { chain_id: Some(chain_id), nonce, gas_price, gas_limit, to, value, input }.into()
            }
            None => {
                let tip = request.max_priority_fee_per_gas.unwrap_or(DEFAULT_PRIORITY_FEE);
                let max_fee = request.max_fee_per_gas.unwrap_or((u128::from(base_fee) * 2).saturating_add(tip));
                TxEip1559 {
                    chain_id,
                    nonce,
                    gas_limit,
                    max_fee_per_gas: max_fee,
                    max_priority_fee_per_gas: tip.min(max_fee),
                    to,
                    value,
                    access_list,
                    input,
                }
                .into()
            }
        })
    }

    /// Validates a transaction against the head and adds it to the pool;
    /// under automine, asks the miner for a block and returns at once.
    pub fn submit(&self, tx: PoolTx) -> Result<B256, NodeError> {
        let hash = tx.hash;
        // In fork mode, the accounts are read from the remote now (once;
        // later reads are cached), outside the lock every request takes, so
        // that a remote that is down fails the send with its reason instead
        // of the transaction at inclusion, and a slow one delays only this send.
        if self.fork.is_some() {
            let view = self.with_chain(|c| c.latest());
            view.header(tx.sender)?;
            if let Some(to) = tx.to() {
                view.header(to)?;
            }
        }
        // Validated against the chain after the transactions sent before.
        let mut inner = self.lock();
        // After a block at the timestamp bound no block can follow: a
        // transaction accepted now would wait for ever.
        let next = inner.chain.pending_block().timestamp;
        if next > crate::chain::MAX_RESERVED {
            return Err(ChainError::TimestampTooHigh(next).into());
        }
        let config = inner.chain.config();
        tx.check_stateless(config)?;
        let base_fee = inner.chain.next_base_fee();
        if tx.max_fee() < u128::from(base_fee) {
            return Err(TxError::FeeCapTooLow { max_fee: tx.max_fee(), base_fee }.into());
        }
        let account = inner.chain.latest_header(tx.sender)?;
        let (balance, nonce) = account.map(|a| (a.balance, a.nonce)).unwrap_or_default();
        if tx.nonce() < nonce {
            return Err(TxError::NonceTooLow { next: nonce, tx: tx.nonce() }.into());
        }
        let cost = tx.max_cost();
        if balance < cost {
            return Err(TxError::InsufficientFunds { balance, cost, overshot: cost - balance }.into());
        }
        let added = inner.pool.add(Arc::new(tx), nonce)?;
        inner.filters.on_pending(hash);
        let automine = inner.automine;
        drop(inner);
        // Nobody listening is fine.
        let _ = self.engine.pending_txs.send(hash);
        if automine && added != Added::Queued {
            self.ask_pass();
        }
        Ok(hash)
    }

    // ----- mining -----

    /// Mines one block with the pending transactions (`evm_mine`), waiting
    /// for the inference they need; with a timestamp, the block gets it.
    pub fn mine(&self, timestamp: Option<u64>) -> Result<Arc<SealedBlock>, NodeError> {
        self.engine.settle();
        match self.engine.build_block(InferenceWait::Wait, Batch::All, true, timestamp)? {
            Mined::Block(block) => Ok(block),
            Mined::NothingReady | Mined::NoneIncluded => Err(NodeError::Failed("no block was built".into())),
        }
    }

    /// Mines `blocks` blocks, `interval` seconds apart (`anvil_mine`): the
    /// first with the pending transactions, the rest as one reserved range
    /// of empty blocks (constant time and space, see `Chain::reserve`).
    pub fn mine_many(&self, blocks: u64, interval: Option<u64>) -> Result<(), NodeError> {
        self.mine_many_from(blocks, interval, None)
    }

    /// [`Devnet::mine_many`], the first block at `timestamp` (`evm_mine`'s
    /// `{timestamp, blocks}`). A refused request changes nothing: the
    /// timestamp is checked with the count before anything is pinned.
    pub fn mine_many_from(&self, blocks: u64, interval: Option<u64>, timestamp: Option<u64>) -> Result<(), NodeError> {
        let Some(rest) = blocks.checked_sub(1) else { return Ok(()) };
        self.engine.settle();
        // Checked for the blocks after the first; refused naming all of them.
        self.engine.inner.lock().chain.check_reserve_after_pending(rest, interval, timestamp).map_err(|e| match e {
            ChainError::ReservationTooLarge { what, .. } => ChainError::ReservationTooLarge { count: blocks, what },
            other => other,
        })?;
        self.engine.build_block(InferenceWait::Wait, Batch::All, true, timestamp)?;
        if rest > 0 {
            let head = self.edit(None, |chain| chain.reserve(rest, interval).map(|()| chain.head().clone()))?;
            // Subscribers hear of the new head, not of every reserved block.
            let _ = self.engine.blocks.send(head);
        }
        Ok(())
    }

    /// Turns automine on or off (`evm_setAutomine`); turning it on mines
    /// what is pending.
    pub fn set_automine(&self, on: bool) {
        let mut inner = self.lock();
        inner.automine = on;
        let ready = on && Engine::any_ready(&inner);
        drop(inner);
        if ready {
            self.ask_pass();
            self.engine.settle();
        }
    }

    /// Whether automine is on.
    pub fn automine(&self) -> bool {
        self.engine.inner.lock().automine
    }

    /// Sets the interval-mining period; `None` stops it (`evm_setIntervalMining`).
    pub fn set_interval(&self, every: Option<Duration>) {
        self.lock().interval = every.filter(|d| !d.is_zero());
        self.interval_changed.notify_waiters();
    }

    /// Mines a block every interval while one is set. Runs until the devnet
    /// is dropped by every other owner; spawn it on a tokio runtime.
    pub async fn run_interval_miner(self: Arc<Self>) {
        loop {
            // Created first: it then sees a `set_interval` made while the
            // interval is read (tokio's `notified` catches every
            // `notify_waiters` after its creation).
            let notified = self.interval_changed.notified();
            let interval = self.engine.inner.lock().interval;
            match interval {
                Some(every) => {
                    tokio::select! {
                        () = tokio::time::sleep(every) => {
                            if self.engine.inner.lock().interval.is_some() {
                                if self.ensure_miner() {
                                    self.engine.ask_interval_block();
                                } else {
                                    let engine = Arc::clone(&self.engine);
                                    let _ = tokio::task::spawn_blocking(move || engine.pass(true)).await;
                                }
                            }
                        }
                        () = notified => {}
                    }
                }
                None => notified.await,
            }
            if Arc::strong_count(&self) == 1 {
                return;
            }
        }
    }

    // ----- state edits -----

    /// Sets a balance (`anvil_setBalance`).
    pub fn set_balance(&self, address: Address, balance: U256) {
        self.warm(address, None);
        self.edit(Some(address), |chain| chain.edit(address, &[], |s| s.account_mut(address).balance = balance));
    }

    /// Sets a nonce (`anvil_setNonce`).
    pub fn set_nonce(&self, address: Address, nonce: u64) {
        self.warm(address, None);
        self.edit(Some(address), |chain| chain.edit(address, &[], |s| s.account_mut(address).nonce = nonce));
    }

    /// Sets code (`anvil_setCode`).
    pub fn set_code(&self, address: Address, code: Bytes) {
        self.warm(address, None);
        self.edit(Some(address), |chain| chain.set_code(address, code));
    }

    /// Sets a storage slot (`anvil_setStorageAt`).
    pub fn set_storage_at(&self, address: Address, slot: U256, value: U256) {
        self.warm(address, Some(slot));
        self.edit(Some(address), |chain| chain.edit(address, &[slot], |s| s.set_storage(address, slot, value)));
    }

    /// In fork mode, reads `address` (and `slot`) from the remote now,
    /// outside the lock, so that the edit's record of the earlier values
    /// finds them cached. A remote that fails is read again, and fails
    /// again, under the edit: the earlier value is then taken as empty.
    fn warm(&self, address: Address, slot: Option<U256>) {
        if self.fork.is_none() {
            return;
        }
        let view = self.with_chain(|c| c.latest());
        let _ = view.header(address);
        if let Some(slot) = slot {
            let _ = view.storage_at(address, slot);
        }
    }

    /// Executes `calls` from the system address on the head state, outside
    /// any block, and keeps what they changed (see [`crate::predeploys`]).
    /// Any failing call fails them all, with its reason. They are set-up,
    /// not transactions: the block gas limit does not bound them (minting
    /// OPG to 2,000 dev accounts takes more than a block of 30M gas).
    ///
    /// They run outside the lock that requests take (on a devnet that
    /// serves already, the LLM proxy's registration), holding the builder's
    /// so that no block lands meanwhile; an edit made meanwhile (the epoch
    /// moved) runs them again on the edited head.
    pub fn run_system_calls(&self, calls: &[SystemCall]) -> Result<(), NodeError> {
        // What was sent before is mined first, as for any edit.
        self.engine.settle();
        let _building = self.engine.building.lock();
        loop {
            let (epoch, view, env, options) = {
                let inner = self.engine.inner.lock();
                let chain = &inner.chain;
                let env = NextBlock { gas_limit: SYSTEM_CALL_GAS, ..chain.pending_block() };
                (inner.epoch, chain.latest(), env, ExecOptions::for_chain(chain.config(), true))
            };
            let changes = self.execute_system_calls(calls, view, &env, options)?;
            let mut inner = self.engine.inner.lock();
            if inner.epoch != epoch {
                continue;
            }
            inner.epoch += 1;
            // Only the accounts the calls wrote can have moved nonces.
            let touched: Vec<Address> = changes.keys().copied().collect();
            let Inner { chain, pool, .. } = &mut *inner;
            chain.apply(changes);
            let view = chain.latest();
            pool.prune_senders(&touched, |a| view.pool_nonce(*a));
            return Ok(());
        }
    }

    /// Executes `calls` on `view`; what they changed, or the first failure.
    fn execute_system_calls(
        &self,
        calls: &[SystemCall],
        view: StateView,
        env: &NextBlock,
        options: ExecOptions,
    ) -> Result<revm::state::EvmState, NodeError> {
        let mut machine = Machine::new(view, env.block_env(), options, self.evm_setup(), Phase::Call);
        machine.set_call_price(options, 0);
        for call in calls {
            let tx = TxEnv {
                caller: SYSTEM_ADDRESS,
                kind: TxKind::Call(call.to),
                data: call.data.clone(),
                gas_limit: SYSTEM_CALL_GAS,
                chain_id: Some(options.chain_id),
                ..Default::default()
            };
            let outcome = machine.execute(tx).map_err(|e| NodeError::Failed(e.message))?;
            if !outcome.success {
                return Err(NodeError::Failed(format!(
                    "a system call to {} failed: {}",
                    call.to,
                    outcome.error_message()
                )));
            }
        }
        Ok(machine.finish())
    }

    /// Edits the chain outside a block: a block being built meanwhile is
    /// built again on the edited head. `account` is the account the edit
    /// writes, if any: its nonce may have moved (`anvil_setNonce`), so what
    /// that made stale in the pool goes now, as what a block makes stale
    /// goes after it. No other sender's can have moved.
    fn edit<T>(&self, account: Option<Address>, edit: impl FnOnce(&mut Chain) -> T) -> T {
        let mut inner = self.lock();
        inner.epoch += 1;
        let edited = edit(&mut inner.chain);
        if let Some(account) = account {
            let Inner { chain, pool, .. } = &mut *inner;
            let view = chain.latest();
            pool.prune_senders(&[account], |a| view.pool_nonce(*a));
        }
        edited
    }

    /// Lets `eth_sendTransaction` send for `address` without its key.
    pub fn impersonate(&self, address: Address) {
        self.lock().impersonated.insert(address);
    }

    /// Stops impersonating `address`.
    pub fn stop_impersonating(&self, address: Address) {
        self.lock().impersonated.remove(&address);
    }

    // ----- time -----

    /// Moves the clock forward (`evm_increaseTime`); returns the total offset in seconds.
    /// Refused when the next block's timestamp would pass 2^53 − 1.
    pub fn increase_time(&self, seconds: i64) -> Result<i64, NodeError> {
        Ok(self.edit(None, |chain| chain.increase_time(seconds))?)
    }

    /// Pins the next block's timestamp (`evm_setNextBlockTimestamp`).
    pub fn set_next_block_timestamp(&self, timestamp: u64) -> Result<(), NodeError> {
        Ok(self.edit(None, |chain| chain.set_next_timestamp(timestamp))?)
    }

    // ----- snapshots -----

    /// Saves the chain and pool (`evm_snapshot`); returns the snapshot id.
    /// Refused past [`MAX_SNAPSHOTS`] kept at once.
    pub fn snapshot(&self) -> Result<u64, NodeError> {
        let mut inner = self.lock();
        if inner.snapshots.len() >= MAX_SNAPSHOTS {
            return Err(NodeError::LimitExceeded {
                what: "too many snapshots",
                limit: MAX_SNAPSHOTS,
                hint: ": revert to one (evm_revert), which frees it and every later one",
            });
        }
        let id = inner.next_snapshot;
        inner.next_snapshot += 1;
        let saved = (inner.chain.clone(), inner.pool.clone());
        inner.snapshots.insert(id, saved);
        Ok(id)
    }

    /// Restores a snapshot (`evm_revert`); it and every later one are
    /// consumed. Returns false for an unknown id.
    pub fn revert(&self, id: u64) -> bool {
        let replaced = self.replace_chain(ChainReplaced::Reverted, |inner| {
            let (chain, pool) = inner.snapshots.remove(&id)?;
            inner.epoch += 1;
            let later = inner.snapshots.split_off(&id);
            Some((later, std::mem::replace(&mut inner.chain, chain), std::mem::replace(&mut inner.pool, pool)))
        });
        // Freed outside the locks.
        replaced.is_some()
    }

    // ----- state dumps -----

    /// The whole chain as a dump (refused in fork mode).
    pub fn dump(&self) -> Result<StateDump, NodeError> {
        if self.fork.is_some() {
            return Err(DumpError::Forked.into());
        }
        // Encoded outside the lock, with what the relay still owes: the
        // pool, which may hold its postings, is not dumped.
        let (chain, duties) = self.chain_and_duties();
        Ok(StateDump::of(&chain).with_relay(duties))
    }

    /// Replaces the chain with a dump's; the pool and snapshots are cleared
    /// (refused in fork mode). The dump is decoded and checked outside the
    /// lock that requests take.
    pub fn load(&self, mut dump: StateDump) -> Result<(), NodeError> {
        if self.fork.is_some() {
            return Err(DumpError::Forked.into());
        }
        let duties = dump.take_relay();
        let chain = dump.into_chain(self.chain_config())?;
        self.learn_records(&chain);
        let replaced = self.replace_chain(ChainReplaced::Loaded(duties), |inner| {
            inner.epoch += 1;
            Some((
                std::mem::replace(&mut inner.chain, chain),
                std::mem::take(&mut inner.pool),
                std::mem::take(&mut inner.snapshots),
            ))
        });
        // Freed outside the locks: a long chain is many allocations.
        drop(replaced);
        Ok(())
    }

    /// Writes the chain to the `--state` file, when one was given.
    pub fn save_state(&self) -> Result<Option<PathBuf>, NodeError> {
        if self.state_file.is_none() {
            return Ok(None);
        }
        self.save(&self.dump()?)
    }

    /// Writes `dump` to the `--state` file, when one was given; its path.
    pub fn save(&self, dump: &StateDump) -> Result<Option<PathBuf>, NodeError> {
        let Some(path) = &self.state_file else { return Ok(None) };
        dump.write(path)?;
        Ok(Some(path.clone()))
    }

    // ----- signing -----

    fn signer(&self, address: Address) -> Result<&alloy_signer_local::PrivateKeySigner, NodeError> {
        self.accounts
            .iter()
            .find(|a| a.address == address)
            .map(|a| &a.signer)
            .ok_or_else(|| NodeError::Failed(format!("unknown account {address}")))
    }

    /// Signs an EIP-191 personal message (`eth_sign`).
    pub fn sign(&self, address: Address, message: &[u8]) -> Result<Bytes, NodeError> {
        let signature =
            self.signer(address)?.sign_message_sync(message).map_err(|e| NodeError::Failed(e.to_string()))?;
        Ok(signature.as_bytes().to_vec().into())
    }

    /// Signs EIP-712 typed data (`eth_signTypedData_v4`).
    pub fn sign_typed_data(&self, address: Address, data: &TypedData) -> Result<Bytes, NodeError> {
        let signature = self
            .signer(address)?
            .sign_dynamic_typed_data_sync(data)
            .map_err(|e| NodeError::InvalidParams(e.to_string()))?;
        Ok(signature.as_bytes().to_vec().into())
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;
    use alloy_rpc_types_eth::TransactionRequest;

    use super::*;

    #[test]
    fn without_a_miner_thread_automine_builds_on_the_callers_thread() {
        let devnet = Devnet::new(DevnetConfig::default()).unwrap();
        devnet.engine.refuse_thread.store(true, std::sync::atomic::Ordering::SeqCst);
        let [from, to] = [devnet.accounts()[0], devnet.accounts()[1]];
        let request = TransactionRequest::default().from(from).to(to).value(U256::from(7));
        let hash = devnet.send_transaction(request).unwrap();
        assert!(devnet.miner.lock().is_none(), "the test double refused the thread");
        // Before the fix, this read waited for a pass nobody ran, for ever.
        let receipt = devnet.receipt(hash).expect("mined before the send returned");
        assert!(receipt.status());
        assert_eq!(devnet.block_number(), 1);
    }

    #[test]
    fn no_block_is_built_past_the_timestamp_bound_and_the_dump_loads() {
        let devnet = Devnet::new(DevnetConfig { mining: crate::Mining::Manual, ..DevnetConfig::default() }).unwrap();
        devnet.set_next_block_timestamp(crate::chain::MAX_RESERVED).unwrap();
        devnet.mine(None).unwrap();
        let refused = devnet.mine(None).unwrap_err();
        assert!(matches!(refused, NodeError::Chain(ChainError::TimestampTooHigh(_))), "{refused}");
        // Nor is a transaction accepted that no block could include.
        let [from, to] = [devnet.accounts()[0], devnet.accounts()[1]];
        let send = devnet.send_transaction(TransactionRequest::default().from(from).to(to).value(U256::from(1)));
        assert!(matches!(send, Err(NodeError::Chain(ChainError::TimestampTooHigh(_)))), "{send:?}");
        assert_eq!(devnet.pool_counts().pending, 0);
        let dump = devnet.dump().unwrap();
        Devnet::new(DevnetConfig::default()).unwrap().load(dump).expect("the devnet's own dump loads");
    }

    #[test]
    fn concurrent_sends_for_one_account_take_distinct_nonces() {
        let devnet = Devnet::new(DevnetConfig { mining: crate::Mining::Manual, ..DevnetConfig::default() }).unwrap();
        let [from, to] = [devnet.accounts()[0], devnet.accounts()[1]];
        std::thread::scope(|scope| {
            let senders: Vec<_> = (0..4)
                .map(|_| {
                    scope.spawn(|| {
                        for _ in 0..25 {
                            let request = TransactionRequest::default().from(from).to(to).value(U256::from(1));
                            devnet.send_transaction(request).expect("a nonce of its own");
                        }
                    })
                })
                .collect();
            for sender in senders {
                sender.join().unwrap();
            }
        });
        assert_eq!(devnet.pool_content().pending[&from].len(), 100);
    }
}
