//! Mocked inference and LLM calls (`mockInference`, `failInference`,
//! `mockLlm`, `failLlm`): what outlives a transaction in [`CheatState`], and
//! the answer a call to the inference precompile gets instead of a run. A
//! mocked request never reaches the precompile: it is answered like a
//! known result, in both passes alike, with the gas the precompile would
//! charge.

use alloy_primitives::{Bytes, keccak256};
use alloy_sol_types::{Revert, SolError, SolValue};
use revm::interpreter::{CallInputs, CallOutcome, InstructionResult};

use super::{CheatState, Cheatcodes, outcome};
use crate::evm::EvmContext;
use crate::inference::InferenceCall;
use crate::llm::{LlmRequest, LlmResponse};
use crate::mempool::pipe::{llm_gas, request_gas};

/// What a mocked model answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum MockAnswer {
    /// The encoded `ModelOutput`.
    Output(Bytes),
    /// A revert with this reason.
    Fail(String),
}

/// One inference mock: for `model`, and for one input (its ABI encoding's
/// hash) or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mock {
    pub(super) model: String,
    pub(super) input: Option<alloy_primitives::B256>,
    pub(super) answer: MockAnswer,
}

/// One LLM mock: for `model`, and for one prompt (a completion's prompt,
/// a chat's last message) or any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct LlmMock {
    pub(super) model: String,
    pub(super) prompt: Option<String>,
    /// The answer's text, or the revert reason.
    pub(super) answer: Result<String, String>,
}

impl CheatState {
    /// The answer for a request of `model` with `input_hash`: an input mock
    /// wins over a model-wide one; the latest of each wins.
    pub(super) fn mocked(&self, model: &str, input_hash: alloy_primitives::B256) -> Option<&MockAnswer> {
        let exact = self.mocks.iter().rev().find(|m| m.model == model && m.input == Some(input_hash));
        exact.or_else(|| self.mocks.iter().rev().find(|m| m.model == model && m.input.is_none())).map(|m| &m.answer)
    }

    /// The mocked answer of an LLM call: a prompt mock wins over a
    /// model-wide one; the latest of each wins.
    pub(super) fn mocked_llm(&self, request: &LlmRequest) -> Option<&Result<String, String>> {
        let model = request.model();
        let prompt = request.prompt();
        let mocks = || self.llm_mocks.iter().rev().filter(|m| m.model == model);
        let exact = mocks().find(|m| m.prompt.as_deref() == Some(prompt));
        exact.or_else(|| mocks().find(|m| m.prompt.is_none())).map(|m| &m.answer)
    }
}

impl Cheatcodes {
    /// A mocked answer for a call to the inference precompile, if one applies.
    pub(super) fn mocked_inference(&self, ctx: &mut EvmContext, inputs: &CallInputs) -> Option<CallOutcome> {
        if self.local.mocks.is_empty() && self.local.llm_mocks.is_empty() {
            return None;
        }
        let request = match InferenceCall::decode(&inputs.input.bytes(ctx)).ok()? {
            InferenceCall::Model(request) => request,
            InferenceCall::LlmCompletion(r) => return self.mocked_llm(inputs, &LlmRequest::Completion(r)),
            InferenceCall::LlmChat(r) => return self.mocked_llm(inputs, &LlmRequest::Chat(r)),
        };
        let answer = self.local.mocked(&request.modelCID, keccak256(request.input.abi_encode()))?;
        // The gas the real precompile would charge.
        let gas = request_gas(&request);
        Some(match answer {
            MockAnswer::Output(output) => outcome(inputs, InstructionResult::Return, output.clone(), gas),
            MockAnswer::Fail(reason) => {
                outcome(inputs, InstructionResult::Revert, Revert::from(reason.as_str()).abi_encode().into(), gas)
            }
        })
    }

    /// A mocked answer for an LLM call, if one applies: a completion of the
    /// mocked text, or an assistant message with it that finished with `stop`.
    pub(super) fn mocked_llm(&self, inputs: &CallInputs, request: &LlmRequest) -> Option<CallOutcome> {
        let answer = self.local.mocked_llm(request)?;
        let gas = llm_gas(request);
        Some(match answer {
            Ok(text) => {
                outcome(inputs, InstructionResult::Return, LlmResponse::text_for(request, text).encode().into(), gas)
            }
            Err(reason) => {
                outcome(inputs, InstructionResult::Revert, Revert::from(reason.as_str()).abi_encode().into(), gas)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_mocks_win_over_model_mocks_and_the_latest_wins() {
        let input = keccak256(b"input");
        let mut state = CheatState::default();
        let output = |b: u8| MockAnswer::Output(Bytes::from(vec![b]));
        state.mocks.push(Mock { model: "m".into(), input: None, answer: output(1) });
        state.mocks.push(Mock { model: "m".into(), input: Some(input), answer: output(2) });
        state.mocks.push(Mock { model: "m".into(), input: None, answer: output(3) });
        assert_eq!(state.mocked("m", input), Some(&output(2)));
        assert_eq!(state.mocked("m", keccak256(b"other")), Some(&output(3)));
        assert_eq!(state.mocked("n", input), None);
    }
}
