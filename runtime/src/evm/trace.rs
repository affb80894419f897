//! `debug_traceTransaction`: re-executes a mined transaction with revm's
//! tracing inspector (geth's struct logger, or `callTracer`).

use alloy_primitives::{Address, Log, U256};
use alloy_rpc_types_trace::geth::{
    GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingOptions, GethTrace,
};
use revm::Inspector;
use revm::context::{BlockEnv, TxEnv};
use revm::interpreter::{CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter};
use revm_inspectors::tracing::{TracingInspector, TracingInspectorConfig};

use super::{ExecOptions, InvalidTx, MachineWith, Phase, PrecompileFactory};
use crate::chain::StateView;

/// Why a trace could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The tracer is not one the devnet implements.
    #[error("tracer {0} is not supported (supported: the default struct logger and callTracer)")]
    UnsupportedTracer(String),
    /// The tracer configuration is malformed.
    #[error("invalid tracer config: {0}")]
    BadConfig(String),
    /// Re-execution refused a transaction (the chain's history is inconsistent).
    #[error("re-executing the block failed: {0}")]
    Replay(#[from] InvalidTx),
    /// The struct logger would record more than [`MAX_TRACE_STEPS`] steps.
    #[error(
        "trace too large: the transaction runs more than {MAX_TRACE_STEPS} steps; pass a smaller \"limit\" or use callTracer"
    )]
    TooLarge,
}

/// The most steps the struct logger records for one trace (each holds the
/// stack and, if asked, memory and storage: a million steps are hundreds of
/// megabytes). A trace with a `limit` option up to this keeps that many
/// steps, as geth truncates; past it, and without one, a longer transaction
/// is refused with [`TraceError::TooLarge`].
pub const MAX_TRACE_STEPS: u64 = 1_000_000;

/// The tracing inspector with a bound on the steps it records.
struct Bounded {
    inner: TracingInspector,
    /// Steps recorded so far, and the most to record.
    steps: u64,
    keep: u64,
    /// Whether a step past [`MAX_TRACE_STEPS`] was met.
    over: bool,
    /// For each step begun and not yet ended (a `CALL` ends after the steps
    /// of the frame it opens), whether it was recorded: its end is recorded
    /// the same way.
    open: Vec<bool>,
}

impl Bounded {
    fn new(inner: TracingInspector, keep: u64) -> Self {
        Self { inner, steps: 0, keep, over: false, open: Vec::new() }
    }
}

impl<CTX> Inspector<CTX> for Bounded
where
    TracingInspector: Inspector<CTX>,
{
    fn initialize_interp(&mut self, interp: &mut Interpreter, context: &mut CTX) {
        self.inner.initialize_interp(interp, context);
    }

    fn step(&mut self, interp: &mut Interpreter, context: &mut CTX) {
        let record = self.steps < self.keep;
        if record {
            self.steps += 1;
            self.inner.step(interp, context);
        } else if self.keep == MAX_TRACE_STEPS {
            self.over = true;
        }
        self.open.push(record);
    }

    fn step_end(&mut self, interp: &mut Interpreter, context: &mut CTX) {
        if self.open.pop().unwrap_or(false) {
            self.inner.step_end(interp, context);
        }
    }

    fn log(&mut self, context: &mut CTX, log: Log) {
        self.inner.log(context, log);
    }

    fn call(&mut self, context: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        self.inner.call(context, inputs)
    }

    fn call_end(&mut self, context: &mut CTX, inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.inner.call_end(context, inputs, outcome);
    }

    fn create(&mut self, context: &mut CTX, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.inner.create(context, inputs)
    }

    fn create_end(&mut self, context: &mut CTX, inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        self.inner.create_end(context, inputs, outcome);
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        Inspector::<CTX>::selfdestruct(&mut self.inner, contract, target, value);
    }
}

/// Traces `target`, executed after `before` on the state `view` (the state
/// before the block), in block `block`.
pub fn trace_transaction(
    view: StateView,
    block: BlockEnv,
    options: ExecOptions,
    precompiles: &dyn PrecompileFactory,
    before: impl IntoIterator<Item = TxEnv>,
    target: TxEnv,
    opts: GethDebugTracingOptions,
) -> Result<GethTrace, TraceError> {
    let call_config = match &opts.tracer {
        None => None,
        Some(GethDebugTracerType::BuiltInTracer(GethDebugBuiltInTracerType::CallTracer)) => {
            Some(opts.tracer_config.clone().into_call_config().map_err(|e| TraceError::BadConfig(e.to_string()))?)
        }
        Some(GethDebugTracerType::BuiltInTracer(other)) => {
            return Err(TraceError::UnsupportedTracer(format!("{other:?}")));
        }
        Some(GethDebugTracerType::JsTracer(_)) => return Err(TraceError::UnsupportedTracer("(JavaScript)".into())),
    };
    let config = match &call_config {
        Some(call) => TracingInspectorConfig::from_geth_call_config(call),
        None => TracingInspectorConfig::from_geth_config(&opts.config),
    };
    let keep = match opts.config.limit {
        // The call tracer records calls, not steps.
        _ if !config.record_steps => u64::MAX,
        Some(limit) if limit > 0 => limit.min(MAX_TRACE_STEPS),
        _ => MAX_TRACE_STEPS,
    };
    let inspector = Bounded::new(TracingInspector::new(config), keep);
    let mut machine = MachineWith::with_inspector(view, block, options, precompiles, Phase::Replay, inspector);
    for tx in before {
        machine.execute(tx)?;
    }
    let outcome = machine.inspect(target)?;
    let bounded = machine.inspector();
    if bounded.over {
        return Err(TraceError::TooLarge);
    }
    let builder = std::mem::replace(&mut bounded.inner, TracingInspector::new(config)).into_geth_builder();
    Ok(match call_config {
        Some(call) => GethTrace::CallTracer(builder.geth_call_traces(call, outcome.gas_used)),
        None => GethTrace::Default(builder.geth_traces(outcome.gas_used, outcome.output, opts.config)),
    })
}
