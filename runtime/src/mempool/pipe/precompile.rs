//! The inference precompile at 0x…F4 as the EVMs see it: its answers, the
//! events it logs for what it served, and
//! the precompile sets (Ethereum's, 0x…F4, the TEE verifier at 0x…0900 and
//! the console of `console.log`) the devnet and each simulation install.

use std::sync::{Arc, Weak};

use alloy_primitives::{Address, B256, Bytes, Log, LogData, U256, address};
use alloy_sol_types::{Revert, SolCall, SolError, SolEvent};
use parking_lot::Mutex;
use revm::context::ContextTr;
use revm::context_interface::JournalTr;
use revm::handler::{EthPrecompiles, PrecompileProvider};
use revm::interpreter::{CallInputs, Gas, InstructionResult, InterpreterResult};
use revm::primitives::AddressSet;
use revm::primitives::hardfork::SpecId;

use super::Pipe;
use super::gas::GAS_BASE;
use super::request::Request;
use super::store::Answer;
use crate::evm::console::{self, CONSOLE_ADDRESS};
use crate::evm::{EvmContext, EvmPrecompiles, Phase, PrecompileFactory};
use crate::inference::abi::{
    LLMChat, LLMCompletionEvent, ModelInferenceEvent, runLLMChatCall, runLLMCompletionCall, runModelInferenceCall,
};
use crate::inference::{InferenceCall, request_id};
use crate::llm::LlmRequest;
use crate::tee::{TEE_VERIFIER, verifier};

/// The inference precompile's address (PROTOCOL.md A1).
pub const INFERENCE_PRECOMPILE: Address = address!("00000000000000000000000000000000000000F4");

/// The price-history inference precompile's address (OpenGradient's
/// workflow contracts call it; see [`crate::inference::history`]).
pub const PRICE_HISTORY_PRECOMPILE: Address = address!("00000000000000000000000000000000000000F5");

pub(super) fn result(answer: Answer, gas: u64, gas_limit: u64) -> InterpreterResult {
    let mut used = Gas::new(gas_limit);
    if !used.record_regular_cost(gas.min(gas_limit)) {
        return out_of_gas(gas_limit);
    }
    match answer {
        Answer::Return(output) => InterpreterResult::new(InstructionResult::Return, output, used),
        Answer::Revert(reason) => {
            InterpreterResult::new(InstructionResult::Revert, Revert::from(reason).abi_encode().into(), used)
        }
    }
}

pub(super) fn out_of_gas(gas_limit: u64) -> InterpreterResult {
    let mut gas = Gas::new(gas_limit);
    gas.spend_all();
    InterpreterResult::new(InstructionResult::PrecompileOOG, Bytes::new(), gas)
}

/// The event the precompile emits for a served request (OpenGradient's
/// `InferencePrecompile.abi`): the request and the answer, under an
/// inference id that names the request on every replay (its request id, in
/// hex).
pub(super) fn served_event(calldata: &[u8], output: &[u8]) -> Option<LogData> {
    let data = match InferenceCall::decode(calldata).ok()? {
        InferenceCall::Model(request) => ModelInferenceEvent {
            inferenceID: request_id(&request).to_string(),
            response: runModelInferenceCall::abi_decode_returns(output).ok()?,
            request,
        }
        .encode_log_data(),
        InferenceCall::LlmCompletion(request) => LLMCompletionEvent {
            inferenceID: LlmRequest::Completion(request.clone()).id().to_string(),
            response: runLLMCompletionCall::abi_decode_returns(output).ok()?,
            request,
        }
        .encode_log_data(),
        InferenceCall::LlmChat(request) => LLMChat {
            inferenceID: LlmRequest::Chat(request.clone()).id().to_string(),
            response: runLLMChatCall::abi_decode_returns(output).ok()?,
            request,
        }
        .encode_log_data(),
    };
    Some(data)
}

/// [`served_event`] for canonical calldata (its arguments are the request
/// whose id is `id`, as they hash to it) and a canonical answer (the pipe
/// encodes every result): the event's data is spliced from the two encodings
/// instead of decoding both and encoding them again, which for a tensor of
/// 64 numbers costs tens of microseconds. `None` for anything else.
pub(super) fn spliced_event(id: B256, calldata: &[u8], output: &[u8]) -> Option<LogData> {
    let (selector, args) = calldata.split_first_chunk::<4>()?;
    let topic = match *selector {
        runModelInferenceCall::SELECTOR => ModelInferenceEvent::SIGNATURE_HASH,
        runLLMCompletionCall::SELECTOR => LLMCompletionEvent::SIGNATURE_HASH,
        runLLMChatCall::SELECTOR => LLMChat::SIGNATURE_HASH,
        _ => return None,
    };
    // Each is one dynamic struct: the offset 0x20, then the struct's encoding.
    let word = |n: usize| U256::from(n).to_be_bytes::<32>();
    let request = args.strip_prefix(&word(32)[..])?;
    let response = output.strip_prefix(&word(32)[..])?;
    if request.len() % 32 != 0 || response.len() % 32 != 0 {
        return None;
    }
    // (string inferenceID, request, response): three offsets, then the tails.
    let id = id.to_string();
    let id_tail = 32 + id.len().div_ceil(32) * 32;
    let mut data = Vec::with_capacity(96 + id_tail + request.len() + response.len());
    data.extend_from_slice(&word(96));
    data.extend_from_slice(&word(96 + id_tail));
    data.extend_from_slice(&word(96 + id_tail + request.len()));
    data.extend_from_slice(&word(id.len()));
    data.extend_from_slice(id.as_bytes());
    data.resize(96 + id_tail, 0);
    data.extend_from_slice(request);
    data.extend_from_slice(response);
    Some(LogData::new_unchecked(vec![topic], data.into()))
}

/// The devnet's precompiles with inference: Ethereum's set plus 0x…F4.
#[derive(Debug)]
pub(super) struct InferencePrecompiles {
    pub(super) pipe: Arc<Pipe>,
}

impl PrecompileFactory for InferencePrecompiles {
    fn precompiles(&self, spec: SpecId, phase: Phase) -> EvmPrecompiles {
        let eth = EthPrecompiles::new(spec);
        let warm = warm_set(&eth);
        Box::new(InferenceProvider { eth, warm, pipe: Arc::clone(&self.pipe), phase, met: None })
    }
}

/// What one simulation asked of the precompile: every request id, and the
/// requests that were not known. Each simulation has its own, handed to the
/// precompiles of its EVM ([`SimulationPrecompiles`]) and read back after.
#[derive(Debug, Default)]
pub(super) struct Met {
    pub(super) ids: Vec<B256>,
    pub(super) unknown: Vec<(B256, Request)>,
    /// Whether it called the console of `console.log`.
    pub(super) logged: bool,
}

/// The precompiles of one simulation: those of [`InferencePrecompiles`],
/// noting what the simulation asked in its own [`Met`].
#[derive(Debug)]
pub(super) struct SimulationPrecompiles {
    pub(super) pipe: Weak<Pipe>,
    pub(super) met: Arc<Mutex<Met>>,
}

impl PrecompileFactory for SimulationPrecompiles {
    fn precompiles(&self, spec: SpecId, phase: Phase) -> EvmPrecompiles {
        let eth = EthPrecompiles::new(spec);
        match self.pipe.upgrade() {
            Some(pipe) => {
                let warm = warm_set(&eth);
                Box::new(InferenceProvider { eth, warm, pipe, phase, met: Some(Arc::clone(&self.met)) })
            }
            None => Box::new(eth),
        }
    }
}

pub(super) fn warm_set(eth: &EthPrecompiles) -> AddressSet {
    let mut warm = AddressSet::default();
    warm.clone_from(eth.warm_addresses());
    warm.insert(INFERENCE_PRECOMPILE);
    warm.insert(PRICE_HISTORY_PRECOMPILE);
    warm.insert(TEE_VERIFIER);
    warm
}

pub(super) struct InferenceProvider {
    pub(super) eth: EthPrecompiles,
    pub(super) warm: AddressSet,
    pub(super) pipe: Arc<Pipe>,
    pub(super) phase: Phase,
    pub(super) met: Option<Arc<Mutex<Met>>>,
}

impl PrecompileProvider<EvmContext> for InferenceProvider {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: SpecId) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<EvmContext>>::set_spec(&mut self.eth, spec);
        if changed {
            self.warm = warm_set(&self.eth);
        }
        changed
    }

    fn run(&mut self, ctx: &mut EvmContext, inputs: &CallInputs) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address == TEE_VERIFIER {
            let now = ctx.block.timestamp.saturating_to::<u64>();
            return Ok(Some(verifier::run(&inputs.input.bytes(ctx), inputs.gas_limit, now)));
        }
        if inputs.bytecode_address == CONSOLE_ADDRESS {
            // The lines of mined transactions: not of the mempool's
            // simulations, nor of `eth_call` and `eth_estimateGas` (which
            // a client's send repeats).
            if self.phase == Phase::Inclusion
                && let Some(line) = console::line(&inputs.input.bytes(ctx))
            {
                self.pipe.console(&line);
            }
            // A simulation that logged cannot stand as the inclusion (which
            // prints): the block executes the transaction again.
            if let Some(met) = &self.met {
                met.lock().logged = true;
            }
            // As an account without code answers: nothing, no gas.
            return Ok(Some(InterpreterResult::new(InstructionResult::Stop, Bytes::new(), Gas::new(inputs.gas_limit))));
        }
        if inputs.bytecode_address != INFERENCE_PRECOMPILE && inputs.bytecode_address != PRICE_HISTORY_PRECOMPILE {
            return self.eth.run(ctx, inputs);
        }
        // All of the precompile's own work, the event it logs included.
        let _precompile = tracing::trace_span!("precompile").entered();
        let now = ctx.block.timestamp.saturating_to::<u64>();
        // Read where it lies, in the caller's memory (a request is kilobytes).
        let input = inputs.input.as_bytes(ctx);
        let history: Vec<u8>;
        let calldata: &[u8] = if inputs.bytecode_address == PRICE_HISTORY_PRECOMPILE {
            // A price-history query is the model request it stands for.
            match self.pipe.price_history_calldata(&input, now) {
                Ok(request) => {
                    history = request;
                    &history
                }
                Err(reason) => return Ok(Some(result(Answer::Revert(reason), GAS_BASE, inputs.gas_limit))),
            }
        } else {
            &input
        };
        let unknown_before = self.met.as_ref().map(|m| m.lock().unknown.len());
        let super::Response { result: answer, canonical } =
            self.pipe.respond(self.phase, calldata, inputs.gas_limit, self.met.as_deref(), now);
        // The mined transaction (and its replays) logs what was served. A
        // simulation logs a result only when it is the real one: such a
        // simulation may stand as the transaction's inclusion (the block's
        // first transaction), and any other simulation is discarded, logs
        // and all; the placeholder answer of an unknown request is never logged.
        let served = match self.phase {
            Phase::Inclusion | Phase::Replay => true,
            Phase::Simulation => unknown_before == self.met.as_ref().map(|m| m.lock().unknown.len()),
            Phase::Call => false,
        };
        let event = (served && answer.result == InstructionResult::Return)
            .then(|| {
                canonical
                    .and_then(|id| spliced_event(id, calldata, &answer.output))
                    .or_else(|| served_event(calldata, &answer.output))
            })
            .flatten();
        drop(input);
        if let Some(data) = event {
            ctx.journal_mut().log(Log { address: INFERENCE_PRECOMPILE, data });
        }
        Ok(Some(answer))
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        self.warm.contains(address)
    }
}
