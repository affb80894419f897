//! The block builder, and the pre-execution stage that runs over a batch
//! between "pending" and "included".

use std::fmt::Debug;
use std::sync::Arc;

use alloy_primitives::{Address, B256, logs_bloom};

use crate::chain::{Chain, NextBlock, PoolTx, SealedBlock, TxReceipt};
use crate::evm::{ExecOptions, Executor, InvalidTx, Phase, PrecompileFactory, TxOutcome};

/// What the pre-execution stage decided for a batch.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Transactions to include now, in this order.
    pub include: Vec<Arc<PoolTx>>,
    /// Transactions to keep in the pool for a later block.
    pub defer: Vec<Arc<PoolTx>>,
    /// Transactions to drop from the pool, with the reason.
    pub drop: Vec<(Arc<PoolTx>, String)>,
}

/// A stage that runs over each ordered batch before the block builder
/// includes it: the place where inference pre-execution (PIPE) goes.
///
/// The stage may reorder, defer or drop transactions, and may prepare
/// whatever its precompiles will serve at inclusion (the precompile factory
/// it shares state with is the one the builder installs with
/// [`Phase::Inclusion`]).
pub trait PreExecution: Send + Sync + Debug {
    /// Decides what of `batch` is included in the block `ctx.next`.
    fn prepare(&self, ctx: &StageContext<'_>, batch: Vec<Arc<PoolTx>>) -> Prepared;
}

/// The default stage: includes the batch unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPreExecution;

impl PreExecution for NoPreExecution {
    fn prepare(&self, _ctx: &StageContext<'_>, batch: Vec<Arc<PoolTx>>) -> Prepared {
        Prepared { include: batch, ..Prepared::default() }
    }
}

/// What a [`PreExecution`] stage sees: the chain, the block being built, and
/// a way to simulate transactions on top of the head state.
#[derive(Debug)]
pub struct StageContext<'a> {
    /// The chain (its head is the parent of the block being built).
    pub chain: &'a Chain,
    /// The block being built.
    pub next: &'a NextBlock,
    /// Execution options of the chain.
    pub options: ExecOptions,
    /// The precompile factory of the devnet.
    pub precompiles: &'a dyn PrecompileFactory,
}

impl StageContext<'_> {
    /// Executes `txs` in order on the head state, in [`Phase::Simulation`];
    /// nothing is kept.
    pub fn simulate(&self, txs: &[Arc<PoolTx>]) -> Vec<Result<TxOutcome, InvalidTx>> {
        let mut executor = Executor::new(
            self.chain.latest(),
            self.next.block_env(),
            self.options,
            self.precompiles,
            Phase::Simulation,
        );
        txs.iter().map(|tx| executor.execute(tx.tx_env())).collect()
    }
}

/// What building one block did.
#[derive(Debug, Clone)]
pub struct Built {
    /// The new block.
    pub block: Arc<SealedBlock>,
    /// Transactions that go back to the pool (did not fit, or deferred).
    pub deferred: Vec<Arc<PoolTx>>,
    /// Transactions refused at inclusion, with the reason.
    pub dropped: Vec<(B256, String)>,
}

/// Builds blocks: runs the pre-execution stage over the batch, executes what
/// it includes in [`Phase::Inclusion`], and appends the block to the chain.
#[derive(Debug, Clone, Copy)]
pub struct BlockBuilder<'a> {
    /// Precompiles of every EVM the builder creates.
    pub precompiles: &'a dyn PrecompileFactory,
    /// The stage between pending and included.
    pub stage: &'a dyn PreExecution,
}

impl BlockBuilder<'_> {
    /// Builds and appends the next block from `batch` (ordered as the pool
    /// hands it out).
    pub fn build(&self, chain: &mut Chain, batch: Vec<Arc<PoolTx>>) -> Built {
        let next = chain.take_next_block();
        let options = ExecOptions { chain_id: chain.config().chain_id, spec: chain.config().spec, call: false };
        let prepared = {
            let ctx = StageContext { chain, next: &next, options, precompiles: self.precompiles };
            if batch.is_empty() { Prepared::default() } else { self.stage.prepare(&ctx, batch) }
        };
        let mut deferred = prepared.defer;
        let mut dropped: Vec<(B256, String)> = prepared.drop.into_iter().map(|(tx, why)| (tx.hash, why)).collect();
        let mut executor = Executor::new(chain.latest(), next.block_env(), options, self.precompiles, Phase::Inclusion);
        let mut included = Vec::with_capacity(prepared.include.len());
        let mut receipts: Vec<TxReceipt> = Vec::with_capacity(prepared.include.len());
        let mut cumulative = 0u64;
        let mut skipped_senders: Vec<Address> = Vec::new();
        for tx in prepared.include {
            if skipped_senders.contains(&tx.sender) || cumulative + tx.gas_limit() > next.gas_limit {
                // Later nonces of a sender that did not fit cannot go first.
                skipped_senders.push(tx.sender);
                deferred.push(tx);
                continue;
            }
            match executor.execute(tx.tx_env()) {
                Ok(outcome) => {
                    cumulative += outcome.gas_used;
                    let created = outcome.created;
                    receipts.push(TxReceipt {
                        success: outcome.success,
                        gas_used: outcome.gas_used,
                        cumulative_gas_used: cumulative,
                        logs_bloom: logs_bloom(outcome.logs.iter()),
                        logs: outcome.logs,
                        contract_address: created,
                        effective_gas_price: tx.effective_gas_price(next.base_fee),
                        output: outcome.output,
                        halt_reason: outcome.halt,
                    });
                    included.push(tx);
                }
                Err(InvalidTx(why)) if why.starts_with("nonce too high") => {
                    skipped_senders.push(tx.sender);
                    deferred.push(tx);
                }
                Err(InvalidTx(why)) => dropped.push((tx.hash, why)),
            }
        }
        let changes = executor.finish();
        let block = chain.append(&next, included, receipts, changes);
        Built { block, deferred, dropped }
    }
}
