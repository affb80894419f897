//! `debug_traceTransaction`: re-executes a mined transaction with revm's
//! tracing inspector (geth's struct logger, or `callTracer`).

use alloy_primitives::map::{HashMap, HashSet};
use alloy_primitives::{Address, Log, U256};
use alloy_rpc_types_trace::geth::{
    CallConfig, GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingOptions, GethDefaultTracingOptions,
    GethTrace,
};
use revm::Inspector;
use revm::bytecode::opcode;
use revm::context::{BlockEnv, TxEnv};
use revm::interpreter::interpreter_types::{InputsTr, Jumps, MemoryTr, ReturnData};
use revm::interpreter::{CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter};
use revm_inspectors::tracing::{TracingInspector, TracingInspectorConfig};
use serde::Deserialize;
use serde_json::Value;

use super::{ExecOptions, InvalidTx, MachineWith, Phase, PrecompileFactory};
use crate::chain::StateView;

/// Why a trace could not be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TraceError {
    /// The tracer is not one the devnet implements.
    #[error("tracer {0} is not supported (supported: the default struct logger and callTracer)")]
    UnsupportedTracer(String),
    /// The `tracerConfig` option is malformed, or holds a field the tracer
    /// does not take.
    #[error("invalid tracerConfig: {0}")]
    BadConfig(String),
    /// The `timeout` option is not a Go duration.
    #[error("invalid timeout {0:?}: expected a duration such as \"5s\" or \"1m30s\"")]
    BadTimeout(String),
    /// Re-execution refused a transaction (the chain's history is inconsistent).
    #[error("re-executing the block failed: {0}")]
    Replay(#[from] InvalidTx),
    /// The struct logger would record more than [`MAX_TRACE_STEPS`] steps.
    #[error(
        "trace too large: the transaction runs more than {MAX_TRACE_STEPS} steps; pass a smaller \"limit\" or use callTracer"
    )]
    TooManySteps,
    /// The steps the struct logger would record hold more than
    /// [`MAX_TRACE_BYTES`] bytes of stack, memory, return data and storage.
    #[error(
        "trace too large: its steps would record more than {MAX_TRACE_BYTES} bytes of stack, memory, return data and storage; pass a smaller \"limit\", \"disableStack\" or \"disableStorage\", leave \"enableMemory\" off, or use callTracer"
    )]
    TooManyBytes,
}

/// The most steps the struct logger records for one trace. A trace with a
/// `limit` option up to this keeps that many steps, as geth truncates; past
/// it, and without one, a longer transaction is refused with
/// [`TraceError::TooManySteps`].
pub const MAX_TRACE_STEPS: u64 = 1_000_000;

/// The most bytes the struct logger records for one trace (the RPC's
/// response limit, 256 MiB), summed over the steps it keeps: each step holds
/// a copy of the whole stack (32 bytes a word), and as asked the whole memory,
/// the return data, and at `SLOAD`/`SSTORE` every storage slot of the
/// contract touched so far (64 bytes a slot). A step is at most a few hundred
/// bytes otherwise, but a deep stack is 32 KiB a step, so the step bound
/// alone lets a trace reach tens of gigabytes. A trace past this is refused
/// with [`TraceError::TooManyBytes`], `limit` or not.
pub(crate) const MAX_TRACE_BYTES: u64 = 256 * 1024 * 1024;

/// What a recorded step costs in bytes, as the options ask for each part.
#[derive(Debug, Clone, Copy)]
struct StepCost {
    stack: bool,
    memory: bool,
    return_data: bool,
    storage: bool,
}

impl StepCost {
    /// The struct logger's parts as `opts` asks for them.
    fn of(opts: &GethDefaultTracingOptions) -> Self {
        Self {
            stack: opts.is_stack_enabled(),
            memory: opts.is_memory_enabled(),
            return_data: opts.is_return_data_enabled(),
            storage: opts.is_storage_enabled(),
        }
    }

    /// A tracer that records no steps (the call tracer).
    const NONE: Self = Self { stack: false, memory: false, return_data: false, storage: false };
}

/// The tracing inspector with a bound on the steps it records and on the
/// bytes they hold.
struct Bounded {
    inner: TracingInspector,
    /// Steps recorded so far, and the most to record.
    steps: u64,
    keep: u64,
    /// Bytes the recorded steps hold, counted as [`StepCost`] says.
    bytes: u64,
    cost: StepCost,
    /// The storage slots each contract touched so far, as the struct logger
    /// shows them at every `SLOAD` and `SSTORE` of that contract.
    slots: HashMap<Address, HashSet<U256>>,
    /// Why recording stopped short of the trace, if it did.
    over: Option<TraceError>,
    /// For each step begun and not yet ended (a `CALL` ends after the steps
    /// of the frame it opens), whether it was recorded: its end is recorded
    /// the same way.
    open: Vec<bool>,
}

impl Bounded {
    fn new(inner: TracingInspector, keep: u64, cost: StepCost) -> Self {
        Self { inner, steps: 0, keep, bytes: 0, cost, slots: HashMap::default(), over: None, open: Vec::new() }
    }

    /// Whether the step about to run is recorded: it is while the bounds
    /// hold, and the first step past one ends the recording.
    fn admit(&mut self, interp: &Interpreter) -> bool {
        if self.over.is_some() {
            return false;
        }
        if self.steps >= self.keep {
            // Past a `limit` below the bound, geth truncates.
            if self.keep == MAX_TRACE_STEPS {
                self.over = Some(TraceError::TooManySteps);
            }
            return false;
        }
        let bytes = self.bytes.saturating_add(self.step_bytes(interp));
        if bytes > MAX_TRACE_BYTES {
            self.over = Some(TraceError::TooManyBytes);
            return false;
        }
        self.bytes = bytes;
        self.steps += 1;
        true
    }

    /// The bytes the struct logger holds for the step about to run.
    fn step_bytes(&mut self, interp: &Interpreter) -> u64 {
        let cost = self.cost;
        let mut bytes = 0u64;
        if cost.stack {
            bytes += 32 * interp.stack.len() as u64;
        }
        if cost.memory {
            bytes += interp.memory.size() as u64;
        }
        if cost.return_data {
            bytes += interp.return_data.buffer().len() as u64;
        }
        if cost.storage
            && matches!(interp.bytecode.opcode(), opcode::SLOAD | opcode::SSTORE)
            && let Ok(key) = interp.stack.peek(0)
        {
            let slots = self.slots.entry(interp.input.target_address()).or_default();
            slots.insert(key);
            bytes += 64 * slots.len() as u64;
        }
        bytes
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
        let record = self.admit(interp);
        if record {
            self.inner.step(interp, context);
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

/// Checks the options of a trace (see [`trace_transaction`]) without
/// tracing: an unsupported tracer is [`TraceError::UnsupportedTracer`], a
/// malformed option [`TraceError::BadConfig`] or [`TraceError::BadTimeout`].
pub fn check_trace_options(opts: &GethDebugTracingOptions) -> Result<(), TraceError> {
    tracer_of(opts).map(drop)
}

/// Traces `target`, executed after `before` on the state `view` (the state
/// before the block), in block `block`, with the tracer `opts` asks for
/// (its options checked as [`check_trace_options`] checks them).
pub fn trace_transaction(
    view: StateView,
    block: BlockEnv,
    options: ExecOptions,
    precompiles: &dyn PrecompileFactory,
    before: impl IntoIterator<Item = TxEnv>,
    target: TxEnv,
    opts: GethDebugTracingOptions,
) -> Result<GethTrace, TraceError> {
    let call_config = match tracer_of(&opts)? {
        Tracer::StructLogger => None,
        Tracer::Call(config) => Some(config),
    };
    let config = match &call_config {
        Some(call) => TracingInspectorConfig::from_geth_call_config(call),
        None => TracingInspectorConfig::from_geth_config(&opts.config),
    };
    let (keep, cost) = match opts.config.limit {
        // The call tracer records calls, not steps.
        _ if !config.record_steps => (u64::MAX, StepCost::NONE),
        Some(limit) if limit > 0 => (limit.min(MAX_TRACE_STEPS), StepCost::of(&opts.config)),
        _ => (MAX_TRACE_STEPS, StepCost::of(&opts.config)),
    };
    let inspector = Bounded::new(TracingInspector::new(config), keep, cost);
    let mut machine = MachineWith::with_inspector(view, block, options, precompiles, Phase::Replay, inspector);
    for tx in before {
        machine.execute(tx)?;
    }
    let outcome = machine.inspect(target)?;
    let bounded = machine.inspector();
    if let Some(over) = bounded.over.take() {
        return Err(over);
    }
    let builder = std::mem::replace(&mut bounded.inner, TracingInspector::new(config)).into_geth_builder();
    Ok(match call_config {
        Some(call) => GethTrace::CallTracer(builder.geth_call_traces(call, outcome.gas_used)),
        None => GethTrace::Default(builder.geth_traces(outcome.gas_used, outcome.output, opts.config)),
    })
}

/// The tracer a trace's options ask for.
enum Tracer {
    /// geth's struct logger, the default.
    StructLogger,
    /// `callTracer`.
    Call(CallConfig),
}

/// `callTracer`'s `tracerConfig`: geth's fields, and no others.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CallTracerConfig {
    only_top_call: Option<bool>,
    with_log: Option<bool>,
}

/// The tracer `opts` asks for, its options checked: `timeout` is a Go
/// duration (taken as geth takes it, and not enforced: a trace is bounded
/// by its steps and bytes instead); `tracerConfig` is absent or an object
/// of the fields its tracer takes (the struct logger takes none: its
/// options sit beside `tracer`). A `tracer` of `""` is none, as clients that
/// always write the field send it.
fn tracer_of(opts: &GethDebugTracingOptions) -> Result<Tracer, TraceError> {
    if let Some(timeout) = &opts.timeout
        && !is_go_duration(timeout)
    {
        return Err(TraceError::BadTimeout(timeout.clone()));
    }
    let config = match &opts.tracer_config.0 {
        Value::Null => None,
        Value::Object(fields) => Some(fields),
        other => return Err(TraceError::BadConfig(format!("expected an object, got {other}"))),
    };
    match &opts.tracer {
        None => struct_logger(config),
        Some(GethDebugTracerType::JsTracer(name)) if name.is_empty() => struct_logger(config),
        Some(GethDebugTracerType::BuiltInTracer(GethDebugBuiltInTracerType::CallTracer)) => {
            let config = match config {
                None => CallTracerConfig::default(),
                Some(fields) => serde_json::from_value(Value::Object(fields.clone()))
                    .map_err(|e| TraceError::BadConfig(format!("{e} (callTracer takes onlyTopCall and withLog)")))?,
            };
            Ok(Tracer::Call(CallConfig { only_top_call: config.only_top_call, with_log: config.with_log }))
        }
        Some(other @ GethDebugTracerType::BuiltInTracer(_)) => {
            Err(TraceError::UnsupportedTracer(other.as_str().into()))
        }
        Some(GethDebugTracerType::JsTracer(_)) => Err(TraceError::UnsupportedTracer("(JavaScript)".into())),
    }
}

/// The struct logger, which takes no `tracerConfig` fields.
fn struct_logger(config: Option<&serde_json::Map<String, Value>>) -> Result<Tracer, TraceError> {
    match config.and_then(|fields| fields.keys().next()) {
        Some(field) => Err(TraceError::BadConfig(format!(
            "unknown field `{field}`: the struct logger takes none (its options, such as disableStack and limit, go beside \"tracer\")"
        ))),
        None => Ok(Tracer::StructLogger),
    }
}

/// Whether `text` is a duration as Go's `time.ParseDuration` reads it: an
/// optional sign, then `0` or numbers (digits with an optional fraction),
/// each with a unit (`ns`, `us`, `µs`, `ms`, `s`, `m`, `h`).
fn is_go_duration(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if unsigned == "0" {
        return true;
    }
    let mut rest = unsigned;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let number_end = rest.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(rest.len());
        let (number, tail) = rest.split_at(number_end);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return false;
        }
        let unit_end = tail.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_end);
        if !matches!(unit, "ns" | "us" | "µs" | "μs" | "ms" | "s" | "m" | "h") {
            return false;
        }
        rest = next;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_read_as_go_durations() {
        for good in ["0", "5s", "1m30s", "1.5h", "-2ms", "+.5us", "300ms", "1h2m3.5s", "10µs", "7ns"] {
            assert!(is_go_duration(good), "{good}");
        }
        for bad in ["", "bogus", "5", "s", "1.2.3s", ".s", "5 s", "5sec", "1m30", "-", "0x10s", "5S"] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }
}
