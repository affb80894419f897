//! The block builder, and the pre-execution stage that runs over a batch
//! between "pending" and "included".

use std::fmt::Debug;
use std::sync::Arc;

use alloy_primitives::map::HashSet;
use alloy_primitives::{Address, B256, logs_bloom};

use revm::primitives::KECCAK_EMPTY;

use revm::state::EvmState;

use crate::chain::{InferenceRecord, NextBlock, PoolTx, StateView, TxReceipt};
use crate::evm::{Checkpoint, EvmSetup, ExecOptions, InvalidTx, InvalidTxKind, Machine, MachineWith, Phase, TxOutcome};

/// What the pre-execution stage decided for a batch.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    /// Transactions to include now, in this order.
    pub include: Vec<Arc<PoolTx>>,
    /// Transactions to keep in the pool for a later block.
    pub defer: Vec<Arc<PoolTx>>,
    /// Transactions to drop from the pool, with the reason.
    pub drop: Vec<(Arc<PoolTx>, String)>,
    /// The first transaction of `include`, already executed by the stage on
    /// the head state exactly as inclusion would execute it: the builder takes
    /// its outcome and state instead of executing it again.
    pub first: Option<PreIncluded>,
}

/// A transaction the stage has executed on the head state with the answers
/// inclusion would give (see [`Prepared::first`]).
#[derive(Debug, Clone)]
pub struct PreIncluded {
    /// The transaction.
    pub tx: B256,
    /// What executing it did.
    pub outcome: TxOutcome,
    /// The machine's state after it.
    pub state: Checkpoint,
    /// The inference records for its receipt.
    pub records: Vec<InferenceRecord>,
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

    /// Called just before the builder executes `tx` for inclusion. Returns
    /// whether the stage may ask to undo it (the builder then keeps a
    /// checkpoint, which costs a copy of the block's touched accounts).
    fn begin_inclusion(&self, _tx: &PoolTx) -> bool {
        false
    }

    /// Called right after `tx` executed for inclusion (also when it was
    /// invalid): keep it, with what goes on its receipt, or undo it.
    fn end_inclusion(&self, _tx: &PoolTx) -> Inclusion {
        Inclusion::Keep(Vec::new())
    }

    /// Installs what the stage calls when work it deferred (inference it
    /// runs in the background) is done, so the miner builds again. A stage
    /// that never defers ignores it.
    fn set_waker(&self, _waker: Waker) {}

    /// Whether the stage holds `tx` back for now (its inference runs): the
    /// miner then builds from other transactions.
    fn holds(&self, _tx: &B256) -> bool {
        false
    }
}

/// What a stage calls to wake the miner (see [`PreExecution::set_waker`]).
pub type Waker = Arc<dyn Fn() + Send + Sync>;

/// What the stage says of a transaction that just executed for inclusion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inclusion {
    /// Include it, with these inference records on its receipt.
    Keep(Vec<InferenceRecord>),
    /// Undo it and return it to the pool for a later block (only asked for
    /// after [`PreExecution::begin_inclusion`] returned true).
    Defer,
}

/// The default stage: includes the batch unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoPreExecution;

impl PreExecution for NoPreExecution {
    fn prepare(&self, _ctx: &StageContext<'_>, batch: Vec<Arc<PoolTx>>) -> Prepared {
        Prepared { include: batch, ..Prepared::default() }
    }
}

/// Whether a block waits for the inference its transactions need.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InferenceWait {
    /// The block goes on without it: a transaction that meets requests not
    /// run yet stays pending while they run on the executor, and a later
    /// block includes it (automine and interval mining: the chain keeps
    /// moving while models run).
    #[default]
    Defer,
    /// The block waits for every request its transactions meet
    /// (`evm_mine`: the caller asked for those transactions to be mined).
    Wait,
}

/// What a [`PreExecution`] stage sees: the head state, the block being
/// built, and a way to simulate transactions on top of the head state.
#[derive(Debug)]
pub struct StageContext<'a> {
    /// The state of the head (the parent of the block being built).
    pub view: &'a StateView,
    /// The block being built.
    pub next: &'a NextBlock,
    /// Execution options of the chain.
    pub options: ExecOptions,
    /// The devnet's EVM extensions.
    pub evm: EvmSetup<'a>,
    /// Whether the block waits for inference.
    pub wait: InferenceWait,
}

impl StageContext<'_> {
    /// Executes `txs` in order on the head state, in [`Phase::Simulation`];
    /// nothing is kept.
    pub fn simulate(&self, txs: &[Arc<PoolTx>]) -> Vec<Result<TxOutcome, InvalidTx>> {
        let mut machine = MachineWith::new(
            self.view.clone(),
            self.next.block_env(),
            self.options,
            self.evm.precompiles,
            Phase::Simulation,
        );
        txs.iter().map(|tx| machine.execute(tx.tx_env())).collect()
    }

    /// Executes `tx` alone on the head state in [`Phase::Simulation`], as the
    /// inference mempool simulates a transaction when it arrives: without the
    /// transactions before it in the batch, so its nonce is not checked.
    pub fn simulate_alone(&self, tx: &PoolTx) -> Result<TxOutcome, InvalidTx> {
        self.simulate_alone_keeping(tx).0
    }

    /// [`StageContext::simulate_alone`], and the machine's state after it.
    pub fn simulate_alone_keeping(&self, tx: &PoolTx) -> (Result<TxOutcome, InvalidTx>, Checkpoint) {
        self.simulate_alone_with(tx, self.evm.precompiles)
    }

    /// [`StageContext::simulate_alone_keeping`] with `precompiles` instead of
    /// the devnet's (a stage that wants to hear what one simulation asked of
    /// its precompiles hands in a set made for it).
    pub fn simulate_alone_with(
        &self,
        tx: &PoolTx,
        precompiles: &dyn crate::evm::PrecompileFactory,
    ) -> (Result<TxOutcome, InvalidTx>, Checkpoint) {
        let options = ExecOptions { call: true, ..self.options };
        let setup = EvmSetup { precompiles, inspectors: self.evm.inspectors };
        let mut machine = Machine::new(self.view.clone(), self.next.block_env(), options, setup, Phase::Simulation);
        let outcome = machine.execute(tx.tx_env());
        (outcome, machine.into_checkpoint())
    }

    /// Whether a simulation of `tx` alone on the head state executes it
    /// exactly as inclusion would as the block's first transaction: its nonce
    /// is the sender's next one and no inspector (which may behave by phase)
    /// is installed.
    pub fn simulation_is_inclusion(&self, tx: &PoolTx) -> bool {
        self.evm.inspectors.is_none() && self.view.pool_nonce(tx.sender) == tx.nonce()
    }

    /// Whether `tx` can run any code: false for a plain transfer to an
    /// account without code (those never reach a precompile).
    pub fn runs_code(&self, tx: &PoolTx) -> bool {
        match tx.to() {
            None => true,
            Some(to) => {
                // Precompiles have no code but run.
                let precompile = to.0[..19].iter().all(|b| *b == 0);
                precompile
                    || self
                        .view
                        .header(to)
                        .ok()
                        .flatten()
                        .is_some_and(|h| h.code_hash != KECCAK_EMPTY && !h.code_hash.is_zero())
            }
        }
    }
}

/// What a block is built on, taken from the chain under the devnet's lock
/// and built on without it.
#[derive(Debug, Clone)]
pub struct Head {
    /// The state of the parent block.
    pub view: StateView,
    /// The block to build.
    pub next: NextBlock,
    /// Execution options of the chain.
    pub options: ExecOptions,
}

/// What building one block did: the block's contents, for the chain to
/// append ([`crate::chain::Chain::append`]), and what goes back to the pool.
#[derive(Debug)]
pub struct Built {
    /// The block built.
    pub next: NextBlock,
    /// Its transactions, in order.
    pub transactions: Vec<Arc<PoolTx>>,
    /// Their receipts.
    pub receipts: Vec<TxReceipt>,
    /// Every state change of the block.
    pub changes: EvmState,
    /// Transactions that stay in the pool (did not fit, or deferred).
    pub deferred: Vec<Arc<PoolTx>>,
    /// Transactions refused at inclusion, with the reason.
    pub dropped: Vec<(B256, String)>,
}

/// Builds blocks: runs the pre-execution stage over the batch and executes
/// what it includes in [`Phase::Inclusion`] on the head state. It touches no
/// chain: the caller appends what it built.
#[derive(Debug, Clone, Copy)]
pub struct BlockBuilder<'a> {
    /// Extensions of every EVM the builder creates.
    pub evm: EvmSetup<'a>,
    /// The stage between pending and included.
    pub stage: &'a dyn PreExecution,
}

impl BlockBuilder<'_> {
    /// Builds the block `head.next` from `batch` (ordered as the pool hands
    /// it out).
    pub fn build(&self, head: &Head, batch: Vec<Arc<PoolTx>>, wait: InferenceWait) -> Built {
        let next = &head.next;
        let options = head.options;
        let prepared = {
            let ctx = StageContext { view: &head.view, next, options, evm: self.evm, wait };
            if batch.is_empty() { Prepared::default() } else { self.stage.prepare(&ctx, batch) }
        };
        let mut deferred = prepared.defer;
        let mut dropped: Vec<(B256, String)> = prepared.drop.into_iter().map(|(tx, why)| (tx.hash, why)).collect();
        // The machine is made when a transaction first needs executing: the
        // stage may have executed the first one already, and when it is the
        // block's only one its state stands alone (one EVM fewer to make).
        let mut machine: Option<Machine> = None;
        let mut executed_first: Option<Checkpoint> = None;
        let mut included = Vec::with_capacity(prepared.include.len());
        let mut receipts: Vec<TxReceipt> = Vec::with_capacity(prepared.include.len());
        let mut cumulative = 0u64;
        // Senders passed over: a set, as a block may defer thousands.
        let mut skipped_senders: HashSet<Address> = HashSet::default();
        let mut first = prepared.first;
        for tx in prepared.include {
            // Only the very first transaction can start from the head state.
            let pre = first.take().filter(|p| p.tx == tx.hash);
            if skipped_senders.contains(&tx.sender) || cumulative + tx.gas_limit() > next.gas_limit {
                // Later nonces of a sender that did not fit cannot go first.
                skipped_senders.insert(tx.sender);
                deferred.push(tx);
                continue;
            }
            let (result, inclusion, checkpoint) = match pre {
                Some(pre) => {
                    executed_first = Some(pre.state);
                    (Ok(pre.outcome), Inclusion::Keep(pre.records), None)
                }
                None => {
                    let machine = machine.get_or_insert_with(|| {
                        let mut machine =
                            Machine::new(head.view.clone(), next.block_env(), options, self.evm, Phase::Inclusion);
                        if let Some(state) = executed_first.take() {
                            machine.restore(state);
                        }
                        machine
                    });
                    let checkpoint = self.stage.begin_inclusion(&tx).then(|| machine.checkpoint());
                    let result = machine.execute(tx.tx_env());
                    (result, self.stage.end_inclusion(&tx), checkpoint)
                }
            };
            match (result, inclusion) {
                (Ok(_), Inclusion::Defer) => {
                    if let (Some(checkpoint), Some(machine)) = (checkpoint, machine.as_mut()) {
                        machine.restore(checkpoint);
                    }
                    skipped_senders.insert(tx.sender);
                    deferred.push(tx);
                }
                (Ok(outcome), Inclusion::Keep(inference)) => {
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
                        inference,
                    });
                    included.push(tx);
                }
                (Err(InvalidTx { kind: InvalidTxKind::NonceTooHigh, .. }), _) => {
                    skipped_senders.insert(tx.sender);
                    deferred.push(tx);
                }
                (Err(InvalidTx { message, .. }), _) => dropped.push((tx.hash, message)),
            }
        }
        let changes = match (machine, executed_first) {
            (Some(machine), _) => machine.finish(),
            (None, Some(state)) => state.finish(),
            (None, None) => EvmState::default(),
        };
        Built { next: next.clone(), transactions: included, receipts, changes, deferred, dropped }
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{TxLegacy, TypedTransaction};

    use super::*;
    use crate::chain::{Chain, ChainConfig};
    use crate::evm::EthereumPrecompiles;

    #[test]
    fn every_sender_whose_transaction_does_not_fit_is_deferred() {
        // 40,000 senders whose transactions do not fit: each is deferred, and
        // each later one asks whether its sender was (a set: in a list that
        // was 800 million comparisons, 0.7 s a block at 48,000 senders).
        let chain = Chain::genesis(ChainConfig::default());
        let head = Head {
            view: chain.latest(),
            next: chain.pending_block(),
            options: ExecOptions::for_chain(chain.config(), false),
        };
        let too_large = TxLegacy { gas_limit: head.next.gas_limit + 1, ..Default::default() };
        let batch: Vec<Arc<PoolTx>> = (1..=40_000u64)
            .map(|n| {
                let sender = Address::left_padding_from(&n.to_be_bytes());
                Arc::new(PoolTx::impersonated(TypedTransaction::Legacy(too_large.clone()), sender))
            })
            .collect();
        let builder = BlockBuilder {
            evm: EvmSetup { precompiles: &EthereumPrecompiles, inspectors: None },
            stage: &NoPreExecution,
        };
        let built = builder.build(&head, batch, InferenceWait::Defer);
        assert_eq!((built.transactions.len(), built.deferred.len()), (0, 40_000));
    }
}
