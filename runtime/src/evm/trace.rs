//! `debug_traceTransaction`: re-executes a mined transaction with revm's
//! tracing inspector (geth's struct logger, or `callTracer`).

use alloy_rpc_types_trace::geth::{
    GethDebugBuiltInTracerType, GethDebugTracerType, GethDebugTracingOptions, GethTrace,
};
use revm::context::{BlockEnv, TxEnv};
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
    let mut machine =
        MachineWith::with_inspector(view, block, options, precompiles, Phase::Replay, TracingInspector::new(config));
    for tx in before {
        machine.execute(tx)?;
    }
    let outcome = machine.inspect(target)?;
    let builder = std::mem::replace(machine.inspector(), TracingInspector::new(config)).into_geth_builder();
    Ok(match call_config {
        Some(call) => GethTrace::CallTracer(builder.geth_call_traces(call, outcome.gas_used)),
        None => GethTrace::Default(builder.geth_traces(outcome.gas_used, outcome.output, opts.config)),
    })
}
