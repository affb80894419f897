//! The devnet as a library: one [`Devnet`] ties the chain, the pool, the
//! block builder, mining modes, snapshots, filters and dev signers together.
//! Every method is synchronous and usable in-process without a socket; the
//! RPC server is a thin layer over it.

mod convert;
mod filters;
mod inference;
mod query;

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
use parking_lot::Mutex;
use tokio::sync::{Notify, broadcast};

use crate::chain::{
    Chain, ChainConfig, ChainError, DevAccount, DumpError, PoolTx, SealedBlock, StateDump, TxError, dev_accounts,
};
use crate::evm::{EthereumPrecompiles, EvmSetup, InspectorFactory, PrecompileFactory, TraceError};
use crate::mempool::{Added, BlockBuilder, NoPreExecution, Pool, PreExecution};

pub use convert::{rpc_block, rpc_header, rpc_logs, rpc_receipt, rpc_transaction, transaction_json};
pub use filters::FilterChanges;
pub use inference::{InferenceSetup, MempoolStatus};

/// The priority fee the devnet suggests and fills in, in wei (1 gwei).
pub const DEFAULT_PRIORITY_FEE: u128 = 1_000_000_000;

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
}

impl Default for DevnetConfig {
    fn default() -> Self {
        Self { chain: ChainConfig::default(), mining: Mining::Auto, state_file: None }
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
    /// Reading or writing a state dump failed.
    #[error(transparent)]
    Dump(#[from] DumpError),
    /// Tracing failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// The mutable part of a devnet.
#[derive(Debug)]
struct Inner {
    chain: Chain,
    pool: Pool,
    automine: bool,
    interval: Option<Duration>,
    impersonated: HashSet<Address>,
    snapshots: BTreeMap<u64, (Chain, Pool)>,
    next_snapshot: u64,
    filters: filters::Filters,
}

/// A local chain: accepts transactions, mines blocks, answers queries.
#[derive(Debug)]
pub struct Devnet {
    inner: Mutex<Inner>,
    blocks: broadcast::Sender<Arc<SealedBlock>>,
    interval_changed: Notify,
    precompiles: Arc<dyn PrecompileFactory>,
    inspectors: Option<Arc<dyn InspectorFactory>>,
    stage: Arc<dyn PreExecution>,
    accounts: Vec<DevAccount>,
    state_file: Option<PathBuf>,
    inference: Option<inference::Inference>,
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
        let chain = match &config.state_file {
            Some(path) if path.exists() => StateDump::read(path)?.into_chain(config.chain.clone())?,
            _ => Chain::genesis(config.chain.clone()),
        };
        Ok(Self::assemble(config, chain, precompiles, stage))
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
        let (blocks, _) = broadcast::channel(1024);
        Self {
            inner: Mutex::new(Inner {
                chain,
                pool: Pool::default(),
                automine,
                interval,
                impersonated: HashSet::default(),
                snapshots: BTreeMap::new(),
                next_snapshot: 1,
                filters: filters::Filters::default(),
            }),
            blocks,
            interval_changed: Notify::new(),
            precompiles,
            inspectors: None,
            stage,
            accounts: dev_accounts(config.chain.accounts),
            state_file: config.state_file,
            inference: None,
        }
    }

    /// Installs `inspectors` into every EVM the devnet builds from now on
    /// (the test runner's cheatcodes).
    pub fn set_inspectors(&mut self, inspectors: Arc<dyn InspectorFactory>) {
        self.inspectors = Some(inspectors);
    }

    pub(crate) fn evm_setup(&self) -> EvmSetup<'_> {
        EvmSetup { precompiles: &*self.precompiles, inspectors: self.inspectors.as_deref() }
    }

    /// The chain configuration.
    pub fn chain_config(&self) -> ChainConfig {
        self.inner.lock().chain.config().clone()
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.inner.lock().chain.config().chain_id
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
        self.blocks.subscribe()
    }

    /// Runs `f` on the chain (read-only).
    pub fn with_chain<T>(&self, f: impl FnOnce(&Chain) -> T) -> T {
        f(&self.inner.lock().chain)
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
        let from = request.from.ok_or_else(|| NodeError::InvalidParams("missing \"from\" field".into()))?;
        let signer = self.accounts.iter().find(|a| a.address == from).map(|a| a.signer.clone());
        let impersonated = self.inner.lock().impersonated.contains(&from);
        if signer.is_none() && !impersonated {
            return Err(TxError::UnknownAccount(from).into());
        }
        let typed = self.fill_transaction(request, from)?;
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

    /// Fills nonce, gas and fees of a request from `from`.
    fn fill_transaction(&self, request: TransactionRequest, from: Address) -> Result<TypedTransaction, NodeError> {
        let chain_id = self.chain_id();
        let nonce = match request.nonce {
            Some(n) => n,
            None => self.transaction_count(from, alloy_eips::BlockNumberOrTag::Pending.into())?,
        };
        let gas_limit = match request.gas {
            Some(g) => g,
            None => self.estimate_gas(request.clone(), None, None)?,
        };
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
                let max_fee = request.max_fee_per_gas.unwrap_or(u128::from(base_fee) * 2 + tip);
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

    /// Validates a transaction against the head, adds it to the pool, and
    /// mines under automine.
    pub fn submit(&self, tx: PoolTx) -> Result<B256, NodeError> {
        let hash = tx.hash;
        let mut inner = self.inner.lock();
        let config = inner.chain.config().clone();
        tx.check_stateless(config.chain_id, config.spec, config.gas_limit)?;
        let base_fee = inner.chain.next_base_fee();
        if tx.max_fee() < u128::from(base_fee) {
            return Err(TxError::FeeCapTooLow { max_fee: tx.max_fee(), base_fee }.into());
        }
        let account = inner.chain.latest().header(tx.sender);
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
        if inner.automine && added != Added::Queued {
            self.mine_ready(&mut inner);
        }
        Ok(hash)
    }

    // ----- mining -----

    /// Mines blocks until no executable transaction is left (at least one block).
    fn mine_ready(&self, inner: &mut Inner) -> Vec<Arc<SealedBlock>> {
        let mut mined = vec![self.mine_block(inner)];
        // A block that filled up leaves the rest for the next ones.
        while mined.len() < 1024 && !self.ready(inner).is_empty() {
            mined.push(self.mine_block(inner));
        }
        mined
    }

    fn ready(&self, inner: &Inner) -> Vec<Arc<PoolTx>> {
        let view = inner.chain.latest();
        let base_fee = inner.chain.next_base_fee();
        inner.pool.ready(|a| view.header(*a).map(|h| h.nonce).unwrap_or_default(), base_fee)
    }

    fn mine_block(&self, inner: &mut Inner) -> Arc<SealedBlock> {
        let batch = self.ready(inner);
        let builder = BlockBuilder { evm: self.evm_setup(), stage: &*self.stage };
        let built = builder.build(&mut inner.chain, batch);
        for tx in &built.block.transactions {
            inner.pool.remove(&tx.hash);
        }
        for (hash, why) in &built.dropped {
            tracing::debug!(%hash, why, "transaction dropped at inclusion");
            inner.pool.remove(hash);
        }
        let view = inner.chain.latest();
        inner.pool.prune(|a| view.header(*a).map(|h| h.nonce).unwrap_or_default());
        // Nobody listening is fine.
        let _ = self.blocks.send(built.block.clone());
        built.block
    }

    /// Mines one block with the pending transactions (`evm_mine`); with a
    /// timestamp, the block gets it.
    pub fn mine(&self, timestamp: Option<u64>) -> Result<Arc<SealedBlock>, NodeError> {
        let mut inner = self.inner.lock();
        if let Some(ts) = timestamp {
            inner.chain.set_next_timestamp(ts)?;
        }
        Ok(self.mine_block(&mut inner))
    }

    /// Mines `blocks` blocks, `interval` seconds apart (`anvil_mine`): the
    /// first with the pending transactions, the rest as one reserved range
    /// of empty blocks (constant time and space, see `Chain::reserve`).
    pub fn mine_many(&self, blocks: u64, interval: Option<u64>) -> Result<(), NodeError> {
        let mut inner = self.inner.lock();
        let Some(rest) = blocks.checked_sub(1) else { return Ok(()) };
        inner.chain.check_reserve_after_pending(rest, interval)?;
        self.mine_block(&mut inner);
        if rest > 0 {
            inner.chain.reserve(rest, interval)?;
            // Subscribers hear of the new head, not of every reserved block.
            let _ = self.blocks.send(inner.chain.head().clone());
        }
        Ok(())
    }

    /// Turns automine on or off (`evm_setAutomine`); turning it on mines
    /// what is pending.
    pub fn set_automine(&self, on: bool) {
        let mut inner = self.inner.lock();
        inner.automine = on;
        if on && !self.ready(&inner).is_empty() {
            self.mine_ready(&mut inner);
        }
    }

    /// Whether automine is on.
    pub fn automine(&self) -> bool {
        self.inner.lock().automine
    }

    /// Sets the interval-mining period; `None` stops it (`evm_setIntervalMining`).
    pub fn set_interval(&self, every: Option<Duration>) {
        self.inner.lock().interval = every.filter(|d| !d.is_zero());
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
            let interval = self.inner.lock().interval;
            match interval {
                Some(every) => {
                    tokio::select! {
                        () = tokio::time::sleep(every) => {
                            let mut inner = self.inner.lock();
                            if inner.interval.is_some() {
                                self.mine_block(&mut inner);
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
        self.inner.lock().chain.edit(address, &[], |s| s.account_mut(address).balance = balance);
    }

    /// Sets a nonce (`anvil_setNonce`).
    pub fn set_nonce(&self, address: Address, nonce: u64) {
        self.inner.lock().chain.edit(address, &[], |s| s.account_mut(address).nonce = nonce);
    }

    /// Sets code (`anvil_setCode`).
    pub fn set_code(&self, address: Address, code: Bytes) {
        self.inner.lock().chain.set_code(address, code);
    }

    /// Sets a storage slot (`anvil_setStorageAt`).
    pub fn set_storage_at(&self, address: Address, slot: U256, value: U256) {
        self.inner.lock().chain.edit(address, &[slot], |s| s.set_storage(address, slot, value));
    }

    /// Lets `eth_sendTransaction` send for `address` without its key.
    pub fn impersonate(&self, address: Address) {
        self.inner.lock().impersonated.insert(address);
    }

    /// Stops impersonating `address`.
    pub fn stop_impersonating(&self, address: Address) {
        self.inner.lock().impersonated.remove(&address);
    }

    // ----- time -----

    /// Moves the clock forward (`evm_increaseTime`); returns the total offset in seconds.
    pub fn increase_time(&self, seconds: i64) -> i64 {
        self.inner.lock().chain.increase_time(seconds)
    }

    /// Pins the next block's timestamp (`evm_setNextBlockTimestamp`).
    pub fn set_next_block_timestamp(&self, timestamp: u64) -> Result<(), NodeError> {
        Ok(self.inner.lock().chain.set_next_timestamp(timestamp)?)
    }

    // ----- snapshots -----

    /// Saves the chain and pool (`evm_snapshot`); returns the snapshot id.
    pub fn snapshot(&self) -> u64 {
        let mut inner = self.inner.lock();
        let id = inner.next_snapshot;
        inner.next_snapshot += 1;
        let saved = (inner.chain.clone(), inner.pool.clone());
        inner.snapshots.insert(id, saved);
        id
    }

    /// Restores a snapshot (`evm_revert`); it and every later one are
    /// consumed. Returns false for an unknown id.
    pub fn revert(&self, id: u64) -> bool {
        let mut inner = self.inner.lock();
        let Some((chain, pool)) = inner.snapshots.remove(&id) else { return false };
        inner.snapshots.retain(|k, _| *k < id);
        inner.chain = chain;
        inner.pool = pool;
        true
    }

    // ----- state dumps -----

    /// The whole chain as a dump.
    pub fn dump(&self) -> StateDump {
        StateDump::of(&self.inner.lock().chain)
    }

    /// Replaces the chain with a dump's; the pool and snapshots are cleared.
    pub fn load(&self, dump: StateDump) -> Result<(), NodeError> {
        let mut inner = self.inner.lock();
        let chain = dump.into_chain(inner.chain.config().clone())?;
        self.learn_records(&chain);
        inner.chain = chain;
        inner.pool = Pool::default();
        inner.snapshots.clear();
        Ok(())
    }

    /// Writes the chain to the `--state` file, when one was given.
    pub fn save_state(&self) -> Result<Option<PathBuf>, NodeError> {
        let Some(path) = &self.state_file else { return Ok(None) };
        self.dump().write(path)?;
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
