//! Call traces of tests (`nml test -vvv` for failing tests, `-vvvv` for
//! every test): the test's transaction runs again on a fresh fork, as it ran,
//! with revm-inspectors' `TracingInspector` beside the cheatcodes, and the
//! call tree is written as Foundry writes it — each call with its gas, the
//! contract's name (or its `vm.label`), the function and its arguments, the
//! events it emitted, and what it returned or why it reverted.
//!
//! Names come from the project's compiled contracts ([`Artifacts`]): a
//! contract is known by its code, a function by its selector, an event by
//! its topic, a revert by the errors of every contract ([`RevertDecoder`]).
//! A fuzz test is traced with its counterexample; an invariant test with the
//! calls of its shrunk sequence, one tree each. Passing fuzz and invariant
//! tests are not traced (which of their runs would it be?).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_dyn_abi::{DynSolValue, EventExt, FunctionExt, JsonAbiExt};
use alloy_primitives::{Address, Bytes, LogData};
use alloy_sol_types::SolEvent;
use parking_lot::Mutex;
use revm::Inspector;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{CallInputs, CallOutcome, CreateInputs, CreateOutcome, Interpreter};
use revm::primitives::{Log, U256};
use revm_inspectors::tracing::types::{DecodedCallData, DecodedCallLog, DecodedCallTrace};
use revm_inspectors::tracing::{CallTraceArena, TraceWriter, TracingInspector, TracingInspectorConfig};

use super::cheatcodes::{CheatcodesFactory, VM_ADDRESS};
use super::invariant::send_as;
use super::{Artifacts, Run, TestResult, fuzz, install, mined, printable, send};
use crate::evm::console::{self, CONSOLE_ADDRESS};
use crate::evm::{DynInspector, EvmContext, InspectorFactory, Phase};
use crate::mempool::INFERENCE_PRECOMPILE;
use crate::node::Devnet;

/// Which tests are traced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Traces {
    /// None (the default).
    #[default]
    None,
    /// Failing tests (`-vvv`).
    Failing,
    /// Every test (`-vvvv`); passing fuzz and invariant tests excepted.
    All,
}

/// The call trees of the transactions a devnet includes, in order.
type Sink = Arc<Mutex<Vec<CallTraceArena>>>;

/// The test's cheatcodes, and a tracer beside them in the inclusion pass.
#[derive(Debug)]
struct Traced {
    cheats: CheatcodesFactory,
    sink: Sink,
}

impl InspectorFactory for Traced {
    fn inspector(&self, phase: Phase) -> DynInspector {
        let cheats = self.cheats.inspector(phase);
        if phase != Phase::Inclusion {
            return cheats;
        }
        // Precompile calls are kept: the inference precompile's are the point.
        let config = TracingInspectorConfig::default_parity().set_record_logs(true).set_exclude_precompile_calls(false);
        let tracer = TracingInspector::new(config);
        Box::new(Tracing { both: (cheats, tracer), sink: Arc::clone(&self.sink) })
    }
}

/// The cheatcodes and the tracer: a call starts in the cheatcodes first (a
/// prank changes the caller the tracer records; a cheatcode's answer is the
/// call's) and ends in the tracer first (it records what the call did, before
/// `expectRevert` turns a revert into a success for the caller). The tree
/// goes to the sink when the EVM is done with it.
struct Tracing {
    both: (DynInspector, TracingInspector),
    sink: Sink,
}

impl Drop for Tracing {
    fn drop(&mut self) {
        let tracer = std::mem::replace(&mut self.both.1, TracingInspector::new(TracingInspectorConfig::none()));
        let arena = tracer.into_traces();
        if arena.nodes().first().is_some_and(|root| root.trace.address != Address::ZERO || !root.trace.data.is_empty())
        {
            self.sink.lock().push(arena);
        }
    }
}

impl Inspector<EvmContext, EthInterpreter> for Tracing {
    fn initialize_interp(&mut self, interp: &mut Interpreter, context: &mut EvmContext) {
        self.both.initialize_interp(interp, context);
    }

    fn step(&mut self, interp: &mut Interpreter, context: &mut EvmContext) {
        self.both.step(interp, context);
    }

    fn step_end(&mut self, interp: &mut Interpreter, context: &mut EvmContext) {
        self.both.step_end(interp, context);
    }

    fn log(&mut self, context: &mut EvmContext, log: Log) {
        self.both.log(context, log);
    }

    fn log_full(&mut self, interp: &mut Interpreter, context: &mut EvmContext, log: Log) {
        self.both.log_full(interp, context, log);
    }

    fn call(&mut self, context: &mut EvmContext, inputs: &mut CallInputs) -> Option<CallOutcome> {
        self.both.call(context, inputs)
    }

    fn call_end(&mut self, context: &mut EvmContext, inputs: &CallInputs, outcome: &mut CallOutcome) {
        self.both.1.call_end(context, inputs, outcome);
        self.both.0.call_end(context, inputs, outcome);
    }

    fn create(&mut self, context: &mut EvmContext, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.both.create(context, inputs)
    }

    fn create_end(&mut self, context: &mut EvmContext, inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        self.both.1.create_end(context, inputs, outcome);
        self.both.0.create_end(context, inputs, outcome);
    }

    fn selfdestruct(&mut self, contract: Address, target: Address, value: U256) {
        Inspector::<EvmContext, EthInterpreter>::selfdestruct(&mut self.both, contract, target, value);
    }
}

impl Run<'_> {
    /// A fresh fork of the post-`setUp` chain whose inclusion pass traces.
    fn traced_fork(&self) -> Result<(Devnet, CheatcodesFactory, Sink), String> {
        let mut devnet = self.base.devnet.fork();
        let cheats = self.cheats(&devnet);
        let sink = Sink::default();
        // A traced run repeats one that was counted already.
        install(&mut devnet, Arc::new(Traced { cheats: cheats.clone(), sink: Arc::clone(&sink) }), None)?;
        Ok((devnet, cheats, sink))
    }

    /// The call trees of the test that `result` reports, written out: a
    /// unit test's transaction, a fuzz test's counterexample, the calls of
    /// an invariant test's failing sequence; `None` for a passing fuzz or
    /// invariant test.
    pub(super) fn traced(&self, result: &TestResult) -> Option<String> {
        if let Some(invariant) = &result.invariant {
            let sequence = invariant.sequence.as_ref()?;
            return Some(self.trace_each(|devnet| {
                sequence
                    .iter()
                    .filter(|call| send_as(devnet, call.sender, call.target, call.calldata.clone()).is_ok())
                    .count()
            }));
        }
        match &result.fuzz {
            Some(fuzz) => fuzz.counterexample.as_ref().map(|c| self.trace(c.calldata.clone())),
            None => Some(self.trace(self.selector.to_vec().into())),
        }
    }

    /// The call tree of the test's transaction with `calldata`, written out.
    fn trace(&self, calldata: Bytes) -> String {
        let traced = self.traced_fork().and_then(|(devnet, cheats, sink)| {
            let from = devnet.accounts()[0];
            let hash = send(&devnet, from, Some(self.base.address), calldata)?;
            mined(&devnet, hash, "the traced transaction")?;
            Ok(self.written(&devnet, &cheats, &sink, 1))
        });
        traced.unwrap_or_else(|reason| format!("(no trace: {reason})\n"))
    }

    /// The call trees of `sent` (transactions it sends on the traced fork,
    /// it says how many), written out one after another.
    fn trace_each(&self, sent: impl FnOnce(&Devnet) -> usize) -> String {
        self.traced_fork()
            .map(|(devnet, cheats, sink)| {
                let count = sent(&devnet);
                self.written(&devnet, &cheats, &sink, count)
            })
            .unwrap_or_else(|reason| format!("(no trace: {reason})\n"))
    }

    /// Waits (briefly) for `count` trees, then decodes and writes them.
    fn written(&self, devnet: &Devnet, cheats: &CheatcodesFactory, sink: &Sink, count: usize) -> String {
        // The inclusion pass hands its tree over when the block's EVM is
        // dropped, right after the block is sealed.
        let deadline = Instant::now() + Duration::from_secs(2);
        while sink.lock().len() < count && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let mut arenas = std::mem::take(&mut *sink.lock());
        let names = Names { run: self, devnet, labels: cheats.state().labels().clone() };
        let mut out = Vec::new();
        for arena in &mut arenas {
            names.decode(arena);
            let _ = TraceWriter::new(&mut out).write_arena(arena);
        }
        String::from_utf8_lossy(&out).into_owned()
    }
}

/// What a trace's addresses, calls, events and reverts are called.
struct Names<'r, 'a> {
    run: &'r Run<'a>,
    devnet: &'r Devnet,
    labels: BTreeMap<Address, String>,
}

impl Names<'_, '_> {
    fn decode(&self, arena: &mut CallTraceArena) {
        let artifacts: &Artifacts = &self.run.contract.artifacts;
        // The code of what the traced transaction created, as it was created
        // (a reverted test leaves none of it in the state).
        let created: BTreeMap<Address, Bytes> = arena
            .nodes()
            .iter()
            .filter(|n| n.trace.kind.is_any_create() && n.trace.success)
            .map(|n| (n.trace.address, n.trace.output.clone()))
            .collect();
        for node in arena.nodes_mut() {
            let trace = &mut node.trace;
            let code = match created.get(&trace.address) {
                Some(code) => code.clone(),
                None => self.devnet.code(trace.address, Default::default()).unwrap_or_default(),
            };
            let artifact = match trace.address {
                VM_ADDRESS => artifacts.named("Vm"),
                INFERENCE_PRECOMPILE => artifacts.named("OGInference"),
                _ => artifacts.identify(&code),
            };
            let label = self.labels.get(&trace.address).map(|l| printable(l)).or_else(|| match trace.address {
                VM_ADDRESS => Some("VM".to_owned()),
                INFERENCE_PRECOMPILE => Some("InferencePrecompile".to_owned()),
                _ => artifact.map(|a| a.name.clone()),
            });
            // The contract's own function, else any function of the
            // project with the selector (a proxy's, an unknown contract's).
            let selector: Option<[u8; 4]> = trace.data.get(..4).and_then(|s| s.try_into().ok());
            let function = selector.filter(|_| !trace.kind.is_any_create()).and_then(|selector| {
                artifact
                    .and_then(|a| a.abi.functions().find(|f| f.selector() == selector))
                    .or_else(|| artifacts.function(selector))
            });
            let call_data = function.and_then(|f| {
                let args = f.abi_decode_input(&trace.data[4..]).ok()?;
                Some(DecodedCallData { signature: f.signature(), args: args.iter().map(described).collect() })
            });
            if trace.address == CONSOLE_ADDRESS
                && let Some(line) = console::line(&trace.data)
            {
                // `console::log("the line")`, as it printed.
                let args = vec![format!("{:?}", printable(&line))];
                let call = DecodedCallData { signature: "log(string)".to_owned(), args };
                trace.decoded = Some(Box::new(DecodedCallTrace {
                    label: Some("console".to_owned()),
                    return_data: None,
                    call_data: Some(call),
                }));
                continue;
            }
            let return_data = if !trace.success {
                Some(printable(&self.run.contract.errors.decode(&trace.output).to_string()))
            } else if trace.kind.is_any_create() {
                Some(format!("{} bytes of code", trace.output.len()))
            } else {
                function
                    .and_then(|f| f.abi_decode_output(&trace.output).ok())
                    .filter(|v| !v.is_empty())
                    .map(|values| values.iter().map(described).collect::<Vec<_>>().join(", "))
            };
            trace.decoded = Some(Box::new(DecodedCallTrace { label, return_data, call_data }));
            for log in &mut node.logs {
                if let Some(served) = served_event(&log.raw_log) {
                    log.decoded = Some(Box::new(served));
                    continue;
                }
                let Some(event) = log.raw_log.topics().first().and_then(|topic| artifacts.event(topic)) else {
                    continue;
                };
                let Ok(decoded) = event.decode_log(&log.raw_log) else { continue };
                let (mut indexed, mut body) = (decoded.indexed.into_iter(), decoded.body.into_iter());
                let params = event
                    .inputs
                    .iter()
                    .map(|input| {
                        let value = if input.indexed { indexed.next() } else { body.next() };
                        let value: Option<DynSolValue> = value;
                        (input.name.clone(), value.as_ref().map(described).unwrap_or_default())
                    })
                    .collect();
                log.decoded = Some(Box::new(DecodedCallLog { name: Some(event.name.clone()), params: Some(params) }));
            }
        }
    }
}

/// The event the inference precompile emits for a request it served, by its
/// id (the request and the answer are the call's own line).
fn served_event(log: &LogData) -> Option<DecodedCallLog> {
    use crate::inference::abi::{LLMChat, LLMCompletionEvent, ModelInferenceEvent};
    let topic = log.topics().first()?;
    let (name, id) = if *topic == ModelInferenceEvent::SIGNATURE_HASH {
        ("ModelInferenceEvent", ModelInferenceEvent::decode_log_data(log).ok()?.inferenceID)
    } else if *topic == LLMCompletionEvent::SIGNATURE_HASH {
        ("LLMCompletionEvent", LLMCompletionEvent::decode_log_data(log).ok()?.inferenceID)
    } else if *topic == LLMChat::SIGNATURE_HASH {
        ("LLMChat", LLMChat::decode_log_data(log).ok()?.inferenceID)
    } else {
        return None;
    };
    let params = vec![
        ("inferenceID".to_owned(), serde_json::Value::String(id).to_string()),
        ("request".to_owned(), "…".to_owned()),
        ("response".to_owned(), "…".to_owned()),
    ];
    Some(DecodedCallLog { name: Some(name.to_owned()), params: Some(params) })
}

/// A value in words, with control characters escaped (a string argument or
/// revert reason must not break the tree's lines or color the terminal).
fn described(value: &DynSolValue) -> String {
    printable(&fuzz::describe_value(value))
}
