//! Read-only requests: state, blocks, transactions, logs, calls, gas and
//! fees, the pool, traces.

use std::sync::Arc;

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_rpc_types_eth::state::StateOverride;
use alloy_rpc_types_eth::{
    Block, FeeHistory, Filter, FilterBlockOption, Log, Transaction, TransactionReceipt, TransactionRequest,
};
use alloy_rpc_types_trace::geth::{GethDebugTracingOptions, GethTrace};
use revm::bytecode::Bytecode;
use revm::context::TxEnv;

use super::convert::{rpc_block, rpc_block_logs, rpc_receipt, rpc_transaction};
use super::{DEFAULT_PRIORITY_FEE, Devnet, NodeError};
use crate::chain::{Chain, ChainError, Halt, NextBlock, Overlay, PoolTx, SealedBlock, StateView, TxError};
use crate::evm::{ExecOptions, Machine, Phase, TxOutcome, trace_transaction};
use crate::mempool::{PoolContent, PoolCounts};

/// The most built blocks one `eth_getLogs` may scan.
pub(super) const MAX_LOG_RANGE: u64 = 100_000;

/// The most logs one answer holds (the limit of Infura and Alchemy).
const MAX_LOGS: usize = 10_000;

/// The most addresses a log filter may name (geth's limit).
const MAX_ADDRESSES: usize = 1_000;

/// The most topics one position of a log filter may hold (geth's limit;
/// the type itself holds at most 4 positions).
const MAX_TOPIC_ALTERNATIVES: usize = 1_000;

/// The most reward percentiles one `eth_feeHistory` may ask for (geth's limit).
const MAX_PERCENTILES: usize = 100;

impl Devnet {
    /// In fork mode, the remote state the chain was forked from.
    pub fn fork_source(&self) -> Option<Arc<crate::fork::ForkSource>> {
        self.fork.clone()
    }

    /// The head's number.
    pub fn block_number(&self) -> u64 {
        self.with_chain(|c| c.head_number())
    }

    /// The number `id` names (tags resolve to the head; `pending` also).
    pub fn resolve_block(&self, id: BlockId) -> Result<u64, NodeError> {
        self.with_chain(|c| resolve(c, id))
    }

    /// The state at block `id`: taken under the lock, built after it.
    fn view(&self, id: Option<BlockId>) -> Result<StateView, NodeError> {
        let at = self.with_chain(|c| -> Result<_, NodeError> {
            let number = resolve(c, id.unwrap_or_default())?;
            Ok(c.view_at(number)?)
        })?;
        Ok(at.into_view())
    }

    /// Balance of `address` at block `id`. The view is taken under the lock
    /// and read after it (in fork mode, a read may wait on the remote).
    pub fn balance(&self, address: Address, id: BlockId) -> Result<U256, NodeError> {
        let view = self.view(Some(id))?;
        Ok(view.header(address)?.map(|a| a.balance).unwrap_or_default())
    }

    /// Nonce of `address` at block `id`; for `pending`, counting its
    /// executable pool transactions.
    pub fn transaction_count(&self, address: Address, id: BlockId) -> Result<u64, NodeError> {
        if id != BlockId::Number(BlockNumberOrTag::Pending) {
            return Ok(self.view(Some(id))?.nonce(address)?);
        }
        // In fork mode the account is read from the remote first, outside
        // the lock (later reads are cached).
        if self.fork.is_some() {
            self.view(None)?.nonce(address)?;
        }
        // The account's nonce and the pool's run read under one lock: a
        // block landing between two reads would leave the pool's run behind
        // a nonce already taken.
        let mut inner = self.lock();
        let nonce = inner.chain.latest().nonce(address)?;
        Ok(inner.pool.pending_nonce(&address, nonce))
    }

    /// Code of `address` at block `id`.
    pub fn code(&self, address: Address, id: BlockId) -> Result<Bytes, NodeError> {
        let view = self.view(Some(id))?;
        Ok(view.code_of(address)?.original_bytes())
    }

    /// A storage slot of `address` at block `id`.
    pub fn storage_at(&self, address: Address, slot: U256, id: BlockId) -> Result<B256, NodeError> {
        let view = self.view(Some(id))?;
        Ok(view.storage_at(address, slot)?.into())
    }

    /// A block by number or tag; `None` past the head.
    pub fn block(&self, id: BlockId, full: bool) -> Option<Block> {
        self.with_chain(|c| {
            let number = resolve(c, id).ok()?;
            c.block(number).map(|b| rpc_block(&b, full))
        })
    }

    /// Number of transactions in a block.
    pub fn block_transaction_count(&self, id: BlockId) -> Option<u64> {
        self.with_chain(|c| {
            let number = resolve(c, id).ok()?;
            c.block(number).map(|b| b.transactions.len() as u64)
        })
    }

    /// A transaction, mined or pending, with its RPC form.
    pub fn transaction(&self, hash: B256) -> Option<(Arc<PoolTx>, Transaction)> {
        let inner = self.lock();
        if let Some((block, index)) = inner.chain.transaction(&hash) {
            let tx = block.transactions[index].clone();
            let rpc = rpc_transaction(&tx, Some((block, index)));
            return Some((tx, rpc));
        }
        let tx = inner.pool.get(&hash)?.clone();
        let rpc = rpc_transaction(&tx, None);
        Some((tx, rpc))
    }

    /// The receipt of a mined transaction.
    pub fn receipt(&self, hash: B256) -> Option<TransactionReceipt> {
        self.with_chain(|c| c.transaction(&hash).map(|(block, index)| rpc_receipt(block, index)))
    }

    /// The outcome of a mined transaction as the chain recorded it
    /// (status, output, revert data).
    pub fn receipt_record(&self, hash: B256) -> Option<crate::chain::TxReceipt> {
        self.with_chain(|c| c.transaction(&hash).map(|(block, index)| block.receipts[index].clone()))
    }

    /// Logs matching `filter` (`eth_getLogs`): at most [`MAX_LOGS`] of them.
    pub fn logs(&self, filter: &Filter) -> Result<Vec<Log>, NodeError> {
        check_filter(filter)?;
        // The blocks are taken under the lock and read after it: a long scan
        // does not hold up the node.
        let blocks = self.with_chain(|c| -> Result<Vec<_>, NodeError> {
            let (from, to) = filter_range(c, filter)?;
            Ok(c.built_blocks(from, to).cloned().collect())
        })?;
        let (logs, read) = matching_logs(filter, &blocks);
        if read < blocks.len() {
            return Err(too_many_logs());
        }
        check_log_count(logs.len())?;
        Ok(logs)
    }

    /// Refuses a transaction request (`eth_call`, `eth_estimateGas`,
    /// `eth_sendTransaction`) whose fields contradict each other, or that
    /// names another chain or a transaction type the devnet does not build,
    /// as the raw path refuses a signed one (see [`check_request`]).
    /// [`Devnet::call`] and [`Devnet::estimate_gas`] check their requests
    /// themselves.
    pub fn check_request(&self, request: &TransactionRequest) -> Result<(), NodeError> {
        check_request(request, self.chain_id())
    }

    /// Executes a call without a transaction (`eth_call`).
    pub fn call(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> Result<Bytes, NodeError> {
        let outcome = self.run_call(&request, block, overrides.as_ref(), None)?;
        if outcome.success { Ok(outcome.output) } else { Err(failed(&outcome)) }
    }

    /// Executes `request` once with gas limit `gas` (or the request's, or the block's).
    fn run_call(
        &self,
        request: &TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<&StateOverride>,
        gas: Option<u64>,
    ) -> Result<TxOutcome, NodeError> {
        let (at, env, options) = self.with_chain(|c| -> Result<_, NodeError> {
            let id = block.unwrap_or_default();
            let number = resolve(c, id)?;
            let at = c.view_at(number)?;
            let env = if number == c.head_number() {
                c.pending_block()
            } else {
                c.block_env_of(number).ok_or(ChainError::UnknownBlock(number))?
            };
            let options = ExecOptions::for_chain(c.config(), true);
            Ok((at, env, options))
        })?;
        check_request(request, options.chain_id)?;
        // Built and overridden outside the lock (in fork mode, an override
        // reads the account it edits from the remote).
        let mut view = at.into_view();
        if let Some(overrides) = overrides {
            let precompiles = self.evm_setup().precompiles.precompiles(options.spec, Phase::Call);
            view = apply_overrides(view, overrides, |address| precompiles.contains(address))?;
        }
        let tx = call_env(request, &env, gas, &view, options.chain_id);
        let mut machine = Machine::new(view, env.block_env(), options, self.evm_setup(), Phase::Call);
        machine.set_call_price(options, tx.gas_price);
        machine.execute(tx).map_err(|e| NodeError::Failed(e.message))
    }

    /// The gas `request` needs (`eth_estimateGas`): a binary search over the
    /// gas limit down to the exact smallest limit that succeeds.
    pub fn estimate_gas(
        &self,
        request: TransactionRequest,
        block: Option<BlockId>,
        overrides: Option<StateOverride>,
    ) -> Result<u64, NodeError> {
        let gas_limit = self.with_chain(|c| c.config().gas_limit);
        let cap = request.gas.unwrap_or(gas_limit).min(gas_limit);
        let first = self.run_call(&request, block, overrides.as_ref(), Some(cap))?;
        if !first.success {
            return Err(match first.halt {
                Some(Halt::OutOfGas(_)) => NodeError::Failed(format!("gas required exceeds allowance ({cap})")),
                _ => failed(&first),
            });
        }
        let (mut lo, mut hi) = (first.gas_used.saturating_sub(1), cap);
        // Most transactions need a little more than they use (refunds, the
        // 63/64 rule): try that first.
        let guess = (first.gas_used + 2_300) * 64 / 63;
        if guess < hi {
            match self.run_call(&request, block, overrides.as_ref(), Some(guess)) {
                Ok(o) if o.success => hi = guess,
                _ => lo = guess,
            }
        }
        while lo + 1 < hi {
            let mid = lo + (hi - lo) / 2;
            match self.run_call(&request, block, overrides.as_ref(), Some(mid)) {
                Ok(o) if o.success => hi = mid,
                _ => lo = mid,
            }
        }
        Ok(hi)
    }

    /// The suggested legacy gas price: next base fee plus the default tip.
    pub fn gas_price(&self) -> u128 {
        self.with_chain(|c| c.min_gas_price()) + DEFAULT_PRIORITY_FEE
    }

    /// The suggested priority fee.
    pub fn max_priority_fee(&self) -> u128 {
        DEFAULT_PRIORITY_FEE
    }

    /// Base fees, gas use and tip percentiles of recent blocks (`eth_feeHistory`).
    pub fn fee_history(
        &self,
        block_count: u64,
        newest: BlockNumberOrTag,
        percentiles: Option<&[f64]>,
    ) -> Result<FeeHistory, NodeError> {
        if let Some(p) = percentiles {
            check_percentiles(p)?;
        }
        // No blocks asked for: geth answers nothing (oldest block 0, no
        // base fees, no rewards) without reading the newest block.
        if block_count == 0 {
            return Ok(FeeHistory::default());
        }
        // The blocks are taken under the lock; their rewards are worked out after it.
        let (blocks, next) = self.with_chain(|c| -> Result<_, NodeError> {
            let newest = resolve(c, newest.into())?;
            let count = block_count.min(1024).min(newest + 1);
            let blocks: Vec<Arc<SealedBlock>> = c.blocks(newest + 1 - count, newest).collect();
            let next = if newest == c.head_number() {
                c.next_base_fee()
            } else {
                c.block(newest + 1).and_then(|b| b.header.base_fee_per_gas).unwrap_or_default()
            };
            Ok((blocks, next))
        })?;
        let oldest = blocks.first().map(|b| b.number()).unwrap_or_default();
        let mut history = FeeHistory { oldest_block: oldest, ..Default::default() };
        let mut rewards = Vec::new();
        for block in &blocks {
            history.base_fee_per_gas.push(u128::from(block.header.base_fee_per_gas.unwrap_or_default()));
            history.gas_used_ratio.push(block.header.gas_used as f64 / block.header.gas_limit.max(1) as f64);
            history.base_fee_per_blob_gas.push(0);
            history.blob_gas_used_ratio.push(0.0);
            if let Some(percentiles) = percentiles {
                rewards.push(tip_percentiles(&block.tips(), block.header.gas_used, percentiles));
            }
        }
        history.base_fee_per_gas.push(u128::from(next));
        history.base_fee_per_blob_gas.push(0);
        history.reward = percentiles.map(|_| rewards);
        Ok(history)
    }

    /// The pool's transactions, counted (`txpool_status`): as
    /// [`Devnet::pool_content`] would list them, at the cost of a count.
    pub fn pool_counts(&self) -> PoolCounts {
        self.lock().pool.counts()
    }

    /// Pending (executable) and queued transactions.
    pub fn pool_content(&self) -> PoolContent {
        self.lock().pool.content()
    }

    /// Traces a mined transaction (`debug_traceTransaction`).
    pub fn trace_transaction(&self, hash: B256, opts: GethDebugTracingOptions) -> Result<GethTrace, NodeError> {
        let (view, env, options, before, target) = self.with_chain(|c| -> Result<_, NodeError> {
            let (block, index) =
                c.transaction(&hash).ok_or_else(|| NodeError::Failed(format!("transaction {hash} not found")))?;
            let view = c.view_at(block.number().saturating_sub(1))?;
            let env = c.block_env_of(block.number()).ok_or(ChainError::UnknownBlock(block.number()))?;
            let options = ExecOptions::for_chain(c.config(), false);
            let before: Vec<TxEnv> = block.transactions[..index].iter().map(|t| t.tx_env()).collect();
            Ok((view, env, options, before, block.transactions[index].tx_env()))
        })?;
        Ok(trace_transaction(
            view.into_view(),
            env.block_env(),
            options,
            &*self.engine.precompiles,
            before,
            target,
            opts,
        )?)
    }
}

/// The number of the block with hash `hash`.
pub(super) fn block_of_hash(chain: &Chain, hash: B256) -> Result<u64, NodeError> {
    chain.block_by_hash(&hash).map(|b| b.number()).ok_or_else(|| NodeError::Failed(format!("block {hash} not found")))
}

/// The blocks `filter` names, at most [`MAX_LOG_RANGE`] built ones.
fn filter_range(chain: &Chain, filter: &Filter) -> Result<(u64, u64), NodeError> {
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            let n = block_of_hash(chain, hash)?;
            (n, n)
        }
        FilterBlockOption::Range { from_block, to_block } => (
            resolve(chain, from_block.unwrap_or_default().into())?,
            resolve(chain, to_block.unwrap_or_default().into())?,
        ),
    };
    if from > to {
        return Err(invalid_range());
    }
    // Reserved blocks are empty and cost nothing to skip: only built ones count.
    if chain.built_count(from, to) > MAX_LOG_RANGE {
        return Err(NodeError::Failed(format!("query exceeds max block range {MAX_LOG_RANGE}")));
    }
    Ok((from, to))
}

/// Refuses an answer of `count` logs, more than one answer holds
/// ([`MAX_LOGS`]): `eth_getLogs` here, or a forked devnet's logs of the
/// remote and its own together.
pub(crate) fn check_log_count(count: usize) -> Result<(), NodeError> {
    if count > MAX_LOGS { Err(too_many_logs()) } else { Ok(()) }
}

fn too_many_logs() -> NodeError {
    NodeError::LimitExceeded {
        what: "query returned more results than an answer holds",
        limit: MAX_LOGS,
        hint: ": narrow the block range or the filter",
    }
}

/// Refuses a log filter that names more addresses or topics than a query,
/// a filter or a log subscription may hold (geth's limits), or a range whose
/// numbered `fromBlock` is past its numbered `toBlock` (as geth does for all
/// three; a query also checks the range its tags resolve to).
pub fn check_filter(filter: &Filter) -> Result<(), NodeError> {
    if let FilterBlockOption::Range { from_block: Some(from), to_block: Some(to) } = filter.block_option
        && let (Some(from), Some(to)) = (numbered(from), numbered(to))
        && from > to
    {
        return Err(invalid_range());
    }
    if filter.address.len() > MAX_ADDRESSES {
        return Err(NodeError::InvalidParams(format!(
            "exceed max addresses: {} given, at most {MAX_ADDRESSES}",
            filter.address.len()
        )));
    }
    if let Some((position, topics)) = filter.topics.iter().enumerate().find(|(_, t)| t.len() > MAX_TOPIC_ALTERNATIVES) {
        return Err(NodeError::InvalidParams(format!(
            "exceed max topics per position: {} given at position {position}, at most {MAX_TOPIC_ALTERNATIVES}",
            topics.len()
        )));
    }
    Ok(())
}

/// The number a filter bound names whatever the head: `earliest` or a number.
fn numbered(bound: BlockNumberOrTag) -> Option<u64> {
    match bound {
        BlockNumberOrTag::Earliest => Some(0),
        BlockNumberOrTag::Number(n) => Some(n),
        _ => None,
    }
}

/// geth's answer to a log range that ends before it starts.
fn invalid_range() -> NodeError {
    NodeError::InvalidParams("invalid block range params".into())
}

/// The logs of `blocks` that `filter` matches, whole blocks, until the next
/// block's would take them past [`MAX_LOGS`] (the first block with logs is
/// always read: one block holds a bounded number). Returns them and how many
/// blocks were read.
pub(super) fn matching_logs(filter: &Filter, blocks: &[Arc<SealedBlock>]) -> (Vec<Log>, usize) {
    let mut logs = Vec::new();
    for (read, block) in blocks.iter().enumerate() {
        if !filter.matches_bloom(block.header.logs_bloom) {
            continue;
        }
        let found: Vec<Log> = rpc_block_logs(block).filter(|log| filter.matches(&log.inner)).collect();
        if !logs.is_empty() && logs.len() + found.len() > MAX_LOGS {
            return (logs, read);
        }
        logs.extend(found);
    }
    (logs, blocks.len())
}

/// Refuses reward percentiles that are too many, outside [0, 100], or not
/// in increasing order (geth's rules, but equal neighbours are allowed).
fn check_percentiles(percentiles: &[f64]) -> Result<(), NodeError> {
    if percentiles.len() > MAX_PERCENTILES {
        return Err(NodeError::InvalidParams(format!(
            "invalid reward percentiles: {} given, at most {MAX_PERCENTILES}",
            percentiles.len()
        )));
    }
    if let Some(p) = percentiles.iter().find(|p| !(0.0..=100.0).contains(*p)) {
        return Err(NodeError::InvalidParams(format!("invalid reward percentile {p}: not within [0, 100]")));
    }
    if let Some(w) = percentiles.windows(2).find(|w| w[0] > w[1]) {
        return Err(NodeError::InvalidParams(format!(
            "invalid reward percentiles: {} after {} (they must be in increasing order)",
            w[1], w[0]
        )));
    }
    Ok(())
}

/// The block number `id` names.
fn resolve(chain: &Chain, id: BlockId) -> Result<u64, NodeError> {
    match id {
        // geth's words for a state query at a hash no block has, as for a
        // number past the head (`ChainError::UnknownBlock`).
        BlockId::Hash(hash) => chain
            .block_by_hash(&hash.block_hash)
            .map(|b| b.number())
            .ok_or_else(|| ChainError::UnknownBlockHash(hash.block_hash).into()),
        BlockId::Number(tag) => match tag {
            BlockNumberOrTag::Earliest => Ok(0),
            BlockNumberOrTag::Number(n) if n > chain.head_number() => Err(ChainError::UnknownBlock(n).into()),
            BlockNumberOrTag::Number(n) => Ok(n),
            _ => Ok(chain.head_number()),
        },
    }
}

/// Refuses a request that sets both fee styles, or both `data` and `input`
/// with different bytes (geth's checks, in its words); whose chain id is not
/// `chain_id`; or whose type (its `type`, or the fields only EIP-4844 and
/// EIP-7702 transactions have) is one the devnet does not build: blob and
/// set-code transactions with the errors the raw path gives them, any other
/// type as geth's "transaction type not supported".
fn check_request(request: &TransactionRequest, chain_id: u64) -> Result<(), NodeError> {
    if request.gas_price.is_some() && (request.max_fee_per_gas.is_some() || request.max_priority_fee_per_gas.is_some())
    {
        return Err(NodeError::InvalidParams(
            "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified".into(),
        ));
    }
    // A copy of the input is two reference counts.
    if let Err(e) = request.input.clone().try_into_unique_input() {
        return Err(NodeError::InvalidParams(e.to_string()));
    }
    if let Some(have) = request.chain_id
        && have != chain_id
    {
        return Err(TxError::ChainId { have, want: chain_id }.into());
    }
    let blob =
        request.blob_versioned_hashes.is_some() || request.sidecar.is_some() || request.max_fee_per_blob_gas.is_some();
    match request.transaction_type {
        Some(3) => Err(TxError::BlobUnsupported.into()),
        Some(4) => Err(TxError::SetCodeUnsupported.into()),
        Some(other) if other > 2 => Err(NodeError::Failed(format!(
            "transaction type not supported: type {other:#x} (the nml devnet builds types 0x0, 0x1 and 0x2)"
        ))),
        _ if blob => Err(TxError::BlobUnsupported.into()),
        _ if request.authorization_list.is_some() => Err(TxError::SetCodeUnsupported.into()),
        _ => Ok(()),
    }
}

/// Why a call failed, as geth answers it: a revert is `Reverted` (code 3,
/// with its data), a halt (invalid opcode, out of gas…) fails with its
/// reason (-32000, no data).
fn failed(outcome: &TxOutcome) -> NodeError {
    match &outcome.halt {
        Some(halt) => NodeError::Failed(halt.to_string()),
        None => NodeError::Reverted { message: outcome.error_message(), data: outcome.output.clone() },
    }
}

/// The transaction environment of a call.
fn call_env(request: &TransactionRequest, env: &NextBlock, gas: Option<u64>, view: &StateView, chain_id: u64) -> TxEnv {
    let caller = request.from.unwrap_or_default();
    let dynamic = request.max_fee_per_gas.is_some() || request.max_priority_fee_per_gas.is_some();
    let gas_price = request.gas_price.or(request.max_fee_per_gas).unwrap_or_default();
    let tx_type = if dynamic {
        2
    } else if request.access_list.is_some() {
        1
    } else {
        0
    };
    TxEnv {
        tx_type,
        caller,
        gas_limit: gas.or(request.gas).unwrap_or(env.gas_limit).min(env.gas_limit),
        gas_price,
        kind: request.to.unwrap_or(TxKind::Create),
        value: request.value.unwrap_or_default(),
        data: request.input.input().cloned().unwrap_or_default(),
        nonce: view.pool_nonce(caller),
        chain_id: Some(chain_id),
        access_list: request.access_list.clone().unwrap_or_default(),
        gas_priority_fee: if dynamic {
            Some(request.max_priority_fee_per_gas.unwrap_or_default().min(gas_price))
        } else {
            None
        },
        ..Default::default()
    }
}

/// Lays `eth_call` state overrides over `view`. Precompiles stay where they
/// are: geth's `movePrecompileToAddress`, and a `code` override on an address
/// that `is_precompile` (which geth takes as replacing the precompile), are
/// refused rather than ignored.
fn apply_overrides(
    view: StateView,
    overrides: &StateOverride,
    is_precompile: impl Fn(&Address) -> bool,
) -> Result<StateView, NodeError> {
    let mut overlay = Overlay::default();
    for (address, o) in overrides {
        if o.state.is_some() && o.state_diff.is_some() {
            return Err(NodeError::InvalidParams(format!("account {address} has both 'state' and 'stateDiff'")));
        }
        if o.move_precompile_to.is_some() {
            return Err(NodeError::InvalidParams(format!(
                "account {address}: 'movePrecompileToAddress' is not supported (the nml devnet does not move precompiles)"
            )));
        }
        if o.code.is_some() && is_precompile(address) {
            return Err(NodeError::InvalidParams(format!(
                "account {address} is a precompile: its 'code' cannot be overridden (the nml devnet does not replace precompiles)"
            )));
        }
        if let Some(balance) = o.balance {
            overlay.set_account(&view, *address, |a| a.balance = balance);
        }
        if let Some(nonce) = o.nonce {
            overlay.set_account(&view, *address, |a| a.nonce = nonce);
        }
        if let Some(code) = &o.code {
            overlay.set_code(&view, *address, Bytecode::new_raw(code.clone()));
        }
        if let Some(state) = &o.state {
            overlay.clear_storage(*address);
            for (slot, value) in state {
                overlay.set_storage(*address, (*slot).into(), (*value).into());
            }
        }
        if let Some(diff) = &o.state_diff {
            for (slot, value) in diff {
                overlay.set_storage(*address, (*slot).into(), (*value).into());
            }
        }
    }
    Ok(view.with_overlay(overlay))
}

/// Tip percentiles weighted by gas used, as geth computes them.
fn tip_percentiles(tips: &[(u128, u64)], gas_used: u64, percentiles: &[f64]) -> Vec<u128> {
    if tips.is_empty() {
        return vec![0; percentiles.len()];
    }
    percentiles
        .iter()
        .map(|p| {
            let threshold = (gas_used as f64 * p / 100.0) as u64;
            let mut sum = 0u64;
            for (tip, gas) in tips {
                sum = sum.saturating_add(*gas);
                if sum >= threshold {
                    return *tip;
                }
            }
            tips.last().map(|(t, _)| *t).unwrap_or_default()
        })
        .collect()
}
