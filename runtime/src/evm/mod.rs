//! revm setup, in one place: the context type every execution uses, the
//! pluggable precompile set, and the [`Machine`] that runs transactions on a
//! [`StateView`] without committing (the chain commits what a block builder
//! hands it).
//!
//! # Adding a precompile
//!
//! Implement [`PrecompileFactory`]: it is asked for a fresh provider (any
//! [`PrecompileProvider`] over [`EvmContext`]) for every EVM the devnet
//! builds, with the [`Phase`] the EVM runs in, so a provider can answer
//! differently while the mempool simulates a transaction and when the block
//! builder includes it. Wrap [`EthPrecompiles`] to keep Ethereum's set.

pub mod console;
mod frames;
mod trace;

use std::fmt::Debug;

use alloy_primitives::{Address, Bytes, Log};
use alloy_sol_types::{ContractError, GenericRevertReason, RevertReason};
use revm::context::result::{EVMError, ExecutionResult, HaltReason, InvalidTransaction, Output};
use revm::context::{BlockEnv, CfgEnv, Context, Evm, Journal, JournalEntry, JournalInner, TxEnv};
use revm::database_interface::WrapDatabaseRef;
use revm::handler::instructions::EthInstructions;
use revm::handler::{EthFrame, EthPrecompiles, PrecompileProvider};
use revm::interpreter::InterpreterResult;
use revm::interpreter::interpreter::EthInterpreter;
use revm::primitives::hardfork::SpecId;
use revm::state::EvmState;
use revm::{ExecuteEvm, InspectEvm, Inspector};

use crate::chain::{ChainConfig, Halt, StateView};
use crate::fork::ForkError;

pub use trace::{MAX_TRACE_STEPS, TraceError, check_trace_options, trace_transaction};

/// The database revm reads: a [`StateView`].
pub type EvmDb = WrapDatabaseRef<StateView>;

/// The revm context of every devnet execution.
pub type EvmContext = Context<BlockEnv, TxEnv, CfgEnv, EvmDb, Journal<EvmDb>, ()>;

/// A precompile set the devnet can install: any provider over [`EvmContext`].
pub type EvmPrecompiles = Box<dyn PrecompileProvider<EvmContext, Output = InterpreterResult> + Send>;

/// The EVM the devnet runs, with inspector `I`.
pub type DevEvm<I = ()> =
    Evm<EvmContext, I, EthInstructions<EthInterpreter, EvmContext>, EvmPrecompiles, EthFrame<EthInterpreter>>;

/// Why an EVM runs, so precompiles can tell a dry run from inclusion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// `eth_call`, `eth_estimateGas`: read-only, nothing is kept.
    Call,
    /// The mempool's pre-execution of a pending transaction: nothing is kept.
    Simulation,
    /// The block builder executing a transaction for inclusion.
    Inclusion,
    /// Re-executing a mined transaction (tracing): must reproduce inclusion.
    Replay,
}

/// Builds the precompile set of each EVM the devnet creates.
pub trait PrecompileFactory: Send + Sync + Debug {
    /// A fresh provider for an EVM running `spec` in `phase`.
    fn precompiles(&self, spec: SpecId, phase: Phase) -> EvmPrecompiles;
}

/// Ethereum's precompiles, and nothing else.
#[derive(Debug, Clone, Copy, Default)]
pub struct EthereumPrecompiles;

impl PrecompileFactory for EthereumPrecompiles {
    fn precompiles(&self, spec: SpecId, _phase: Phase) -> EvmPrecompiles {
        Box::new(EthPrecompiles::new(spec))
    }
}

/// An inspector the devnet installs into an EVM.
pub type DynInspector = Box<dyn Inspector<EvmContext, EthInterpreter> + Send>;

/// Builds the inspector of each EVM the devnet creates: the extension point
/// of the test runner's cheatcodes. A devnet without one runs uninspected
/// (faster: no per-call hooks).
pub trait InspectorFactory: Send + Sync + Debug {
    /// A fresh inspector for an EVM running in `phase`.
    fn inspector(&self, phase: Phase) -> DynInspector;
}

/// The extensions of every EVM the devnet builds.
#[derive(Debug, Clone, Copy)]
pub struct EvmSetup<'a> {
    /// Its precompiles.
    pub precompiles: &'a dyn PrecompileFactory,
    /// Its inspector, if any.
    pub inspectors: Option<&'a dyn InspectorFactory>,
}

/// The devnet's EVM: runs transactions on a [`StateView`] with the devnet's
/// precompiles, and its inspector when it has one (a [`MachineWith`] of the
/// inspector type that fits).
#[derive(Debug)]
pub enum Machine {
    /// No inspector.
    Plain(MachineWith<()>),
    /// With the inspector of an [`InspectorFactory`].
    Inspected(MachineWith<DynInspector>),
}

impl Machine {
    /// A machine over `view` for `block`, extended by `setup`.
    pub fn new(view: StateView, block: BlockEnv, options: ExecOptions, setup: EvmSetup<'_>, phase: Phase) -> Self {
        match setup.inspectors {
            None => Self::Plain(MachineWith::new(view, block, options, setup.precompiles, phase)),
            Some(factory) => Self::Inspected(MachineWith::with_inspector(
                view,
                block,
                options,
                setup.precompiles,
                phase,
                factory.inspector(phase),
            )),
        }
    }

    /// See [`MachineWith::execute`].
    pub fn execute(&mut self, tx: TxEnv) -> Result<TxOutcome, InvalidTx> {
        match self {
            Self::Plain(e) => e.execute(tx),
            Self::Inspected(e) => e.inspect(tx),
        }
    }

    /// See [`MachineWith::set_call_price`].
    pub fn set_call_price(&mut self, options: ExecOptions, gas_price: u128) {
        match self {
            Self::Plain(e) => e.set_call_price(options, gas_price),
            Self::Inspected(e) => e.set_call_price(options, gas_price),
        }
    }

    /// See [`MachineWith::checkpoint`].
    pub fn checkpoint(&self) -> Checkpoint {
        match self {
            Self::Plain(e) => e.checkpoint(),
            Self::Inspected(e) => e.checkpoint(),
        }
    }

    /// See [`MachineWith::into_checkpoint`].
    pub fn into_checkpoint(self) -> Checkpoint {
        match self {
            Self::Plain(e) => e.into_checkpoint(),
            Self::Inspected(e) => e.into_checkpoint(),
        }
    }

    /// See [`MachineWith::restore`].
    pub fn restore(&mut self, checkpoint: Checkpoint) {
        match self {
            Self::Plain(e) => e.restore(checkpoint),
            Self::Inspected(e) => e.restore(checkpoint),
        }
    }

    /// See [`MachineWith::finish`].
    pub fn finish(self) -> EvmState {
        match self {
            Self::Plain(e) => e.finish(),
            Self::Inspected(e) => e.finish(),
        }
    }
}

/// How an execution is configured beyond the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecOptions {
    /// Chain id transactions must carry.
    pub chain_id: u64,
    /// The hard fork.
    pub spec: SpecId,
    /// A read-only call: no nonce check, and no base-fee check when it pays
    /// no gas price (as geth's `eth_call`).
    pub call: bool,
    /// No limit on code and initcode sizes.
    pub unlimited_code_size: bool,
}

impl ExecOptions {
    /// How transactions of the chain `config` describes execute; `call` for
    /// a read-only call.
    pub fn for_chain(config: &ChainConfig, call: bool) -> Self {
        Self { chain_id: config.chain_id, spec: config.spec, call, unlimited_code_size: config.unlimited_code_size }
    }

    fn cfg(&self, zero_price: bool) -> CfgEnv {
        let mut cfg = CfgEnv::new_with_spec(self.spec);
        cfg.chain_id = self.chain_id;
        // Impersonated senders may hold code; the devnet serves them anyway.
        cfg.disable_eip3607 = true;
        if self.unlimited_code_size {
            cfg.limit_contract_code_size = Some(usize::MAX);
            cfg.limit_contract_initcode_size = Some(usize::MAX);
        }
        if self.call {
            cfg.disable_nonce_check = true;
            cfg.disable_base_fee = zero_price;
        }
        cfg
    }
}

/// What executing one transaction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxOutcome {
    /// Whether it succeeded.
    pub success: bool,
    /// Gas used (after refunds).
    pub gas_used: u64,
    /// Logs emitted (empty unless it succeeded).
    pub logs: Vec<Log>,
    /// Return data, or revert data.
    pub output: Bytes,
    /// The created contract.
    pub created: Option<Address>,
    /// Why it halted, when it did.
    pub halt: Option<Halt>,
}

impl TxOutcome {
    fn from_result(result: ExecutionResult) -> Self {
        let gas_used = result.tx_gas_used();
        match result {
            ExecutionResult::Success { logs, output, .. } => {
                let (output, created) = match output {
                    Output::Call(bytes) => (bytes, None),
                    Output::Create(bytes, address) => (bytes, address),
                };
                Self { success: true, gas_used, logs, output, created, halt: None }
            }
            ExecutionResult::Revert { output, .. } => {
                Self { success: false, gas_used, logs: Vec::new(), output, created: None, halt: None }
            }
            ExecutionResult::Halt { reason, .. } => Self {
                success: false,
                gas_used,
                logs: Vec::new(),
                output: Bytes::new(),
                created: None,
                halt: Some(halt(reason)),
            },
        }
    }

    /// The revert reason: `execution reverted` plus the decoded
    /// `Error(string)` or `Panic(uint256)`, or why the EVM halted.
    pub fn error_message(&self) -> String {
        if let Some(halt) = &self.halt {
            return halt.to_string();
        }
        let reason = match GenericRevertReason::decode(&self.output) {
            Some(RevertReason::ContractError(ContractError::Revert(revert))) => revert.reason().to_owned(),
            Some(RevertReason::ContractError(ContractError::Panic(panic))) => panic.to_string(),
            Some(RevertReason::ContractError(ContractError::CustomError(never))) => match never {},
            Some(RevertReason::RawString(reason)) => reason,
            None => return "execution reverted".to_owned(),
        };
        format!("execution reverted: {reason}")
    }
}

/// The receipt's form of why revm halted.
fn halt(reason: HaltReason) -> Halt {
    match reason {
        HaltReason::OutOfGas(kind) => Halt::OutOfGas(kind),
        HaltReason::OpcodeNotFound => Halt::OpcodeNotFound,
        HaltReason::InvalidFEOpcode => Halt::InvalidFEOpcode,
        HaltReason::StackUnderflow => Halt::StackUnderflow,
        HaltReason::CreateContractSizeLimit => Halt::CreateContractSizeLimit,
        other => Halt::Other(format!("{other:?}")),
    }
}

/// A transaction revm refused to execute (nonce, balance, gas limit...):
/// what was wrong, and geth's words for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidTx {
    /// What was wrong.
    pub kind: InvalidTxKind,
    /// What a client reads (geth's wording where geth has one).
    pub message: String,
}

/// What was wrong with a transaction revm refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvalidTxKind {
    /// Its nonce is below the sender's next nonce.
    NonceTooLow,
    /// Its nonce is above the sender's next nonce: it may become valid once
    /// the transactions before it are in.
    NonceTooHigh,
    /// The sender cannot pay gas limit × price + value.
    InsufficientFunds,
    /// Its gas limit exceeds the block's.
    ExceedsBlockGasLimit,
    /// Its fee cap is below the block's base fee.
    FeeBelowBaseFee,
    /// Its gas limit is below its intrinsic gas (or the EIP-7623 floor).
    IntrinsicGasTooLow,
    /// It names another chain.
    InvalidChainId,
    /// Its sender holds code.
    SenderNotEoa,
    /// The block environment itself is invalid.
    Header,
    /// In fork mode, the remote state it reads could not be read.
    StateUnavailable,
    /// Anything else revm refuses.
    Other,
}

impl InvalidTx {
    fn new(kind: InvalidTxKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into() }
    }
}

fn invalid(error: EVMError<ForkError>) -> InvalidTx {
    match error {
        EVMError::Transaction(tx) => invalid_transaction(&tx),
        EVMError::Header(h) => InvalidTx::new(InvalidTxKind::Header, h.to_string()),
        EVMError::Database(e) => InvalidTx::new(InvalidTxKind::StateUnavailable, e.to_string()),
        EVMError::Custom(s) => InvalidTx::new(InvalidTxKind::Other, s),
        EVMError::CustomAny(e) => InvalidTx::new(InvalidTxKind::Other, e.to_string()),
    }
}

/// The kind of each check revm performs, in geth's wording.
fn invalid_transaction(tx: &InvalidTransaction) -> InvalidTx {
    use InvalidTxKind as K;
    let (kind, message) = match tx {
        InvalidTransaction::NonceTooLow { tx, state } => {
            (K::NonceTooLow, format!("nonce too low: next nonce {state}, tx nonce {tx}"))
        }
        InvalidTransaction::NonceTooHigh { tx, state } => {
            (K::NonceTooHigh, format!("nonce too high: next nonce {state}, tx nonce {tx}"))
        }
        InvalidTransaction::LackOfFundForMaxFee { fee, balance } => {
            (K::InsufficientFunds, format!("insufficient funds for gas * price + value: have {balance} want {fee}"))
        }
        InvalidTransaction::CallerGasLimitMoreThanBlock => {
            (K::ExceedsBlockGasLimit, "exceeds block gas limit".to_owned())
        }
        InvalidTransaction::GasPriceLessThanBasefee => {
            (K::FeeBelowBaseFee, "max fee per gas less than block base fee".to_owned())
        }
        InvalidTransaction::CallGasCostMoreThanGasLimit { initial_gas, gas_limit } => {
            (K::IntrinsicGasTooLow, format!("intrinsic gas too low: gas {gas_limit}, minimum needed {initial_gas}"))
        }
        InvalidTransaction::GasFloorMoreThanGasLimit { gas_floor, gas_limit } => {
            (K::IntrinsicGasTooLow, format!("intrinsic gas too low: gas {gas_limit}, minimum needed {gas_floor}"))
        }
        InvalidTransaction::InvalidChainId => (K::InvalidChainId, "invalid chain id for signer".to_owned()),
        InvalidTransaction::RejectCallerWithCode => (K::SenderNotEoa, "sender not an eoa".to_owned()),
        other => (K::Other, other.to_string()),
    };
    InvalidTx { kind, message }
}

/// A saved machine state (see [`MachineWith::checkpoint`]).
#[derive(Debug, Clone)]
pub struct Checkpoint(JournalInner<JournalEntry>);

impl Checkpoint {
    /// The changes a machine restored to this state would return from
    /// [`MachineWith::finish`], without making one.
    pub fn finish(mut self) -> EvmState {
        self.0.finalize()
    }
}

/// A [`Machine`] with an inspector of type `I` (`()`: none; the tracer's:
/// revm's `TracingInspector`). Runs transactions one after another on a
/// [`StateView`]; each sees the changes of the ones before it, and nothing
/// reaches the view itself: [`MachineWith::finish`] hands back every change
/// for the caller to commit or drop.
pub struct MachineWith<I = ()> {
    evm: DevEvm<I>,
}

impl<I> Debug for MachineWith<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MachineWith").finish_non_exhaustive()
    }
}

impl<I> Drop for MachineWith<I> {
    fn drop(&mut self) {
        frames::give(std::mem::take(&mut self.evm.frame_stack));
    }
}

impl MachineWith<()> {
    /// An uninspected machine over `view` for a block `block`.
    pub fn new(
        view: StateView,
        block: BlockEnv,
        options: ExecOptions,
        precompiles: &dyn PrecompileFactory,
        phase: Phase,
    ) -> Self {
        MachineWith::with_inspector(view, block, options, precompiles, phase, ())
    }
}

impl<I> MachineWith<I> {
    /// A machine that reports to `inspector` (tracing).
    pub fn with_inspector(
        view: StateView,
        block: BlockEnv,
        options: ExecOptions,
        precompiles: &dyn PrecompileFactory,
        phase: Phase,
        inspector: I,
    ) -> Self {
        let cfg = options.cfg(false);
        let ctx: EvmContext = EvmContext::new(WrapDatabaseRef(view), options.spec).with_cfg(cfg).with_block(block);
        let evm = Evm {
            ctx,
            inspector,
            instruction: EthInstructions::new_mainnet_with_spec(options.spec),
            precompiles: precompiles.precompiles(options.spec, phase),
            frame_stack: frames::take(),
        };
        Self { evm }
    }

    /// Re-applies the call options for a transaction paying `gas_price`.
    pub fn set_call_price(&mut self, options: ExecOptions, gas_price: u128) {
        self.evm.ctx.cfg = options.cfg(gas_price == 0);
    }

    /// Executes `tx`; its changes stay in the machine. An invalid
    /// transaction changes nothing.
    pub fn execute(&mut self, tx: TxEnv) -> Result<TxOutcome, InvalidTx>
    where
        DevEvm<I>: ExecuteEvm<Tx = TxEnv, ExecutionResult = ExecutionResult, Error = EVMError<ForkError>>,
    {
        self.evm.transact_one(tx).map(TxOutcome::from_result).map_err(invalid)
    }

    /// Executes `tx` reporting every step to the inspector.
    pub fn inspect(&mut self, tx: TxEnv) -> Result<TxOutcome, InvalidTx>
    where
        I: Inspector<EvmContext, EthInterpreter>,
    {
        self.evm.inspect_one_tx(tx).map(TxOutcome::from_result).map_err(invalid)
    }

    /// The state after the transactions executed so far, to return to with
    /// [`MachineWith::restore`] (the block builder undoes a deferred transaction
    /// this way). Costs a copy of every account the block has touched.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint(self.evm.ctx.journaled_state.inner.clone())
    }

    /// [`MachineWith::checkpoint`] of a machine that is done: its state is
    /// moved, not copied.
    pub fn into_checkpoint(mut self) -> Checkpoint {
        Checkpoint(std::mem::take(&mut self.evm.ctx.journaled_state.inner))
    }

    /// Forgets every transaction executed since `checkpoint` was taken.
    pub fn restore(&mut self, checkpoint: Checkpoint) {
        self.evm.ctx.journaled_state.inner = checkpoint.0;
    }

    /// Every change the executed transactions made.
    pub fn finish(mut self) -> EvmState
    where
        DevEvm<I>: ExecuteEvm<State = EvmState>,
    {
        self.evm.finalize()
    }

    /// The inspector.
    pub fn inspector(&mut self) -> &mut I {
        &mut self.evm.inspector
    }
}
