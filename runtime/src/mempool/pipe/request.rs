//! A request to the inference precompile as the mempool handles it: a
//! model request or an LLM call, with what every phase needs of either
//! (its id, gas, simulation answer, mode).

use alloy_primitives::{B256, Bytes, keccak256};
use alloy_sol_types::SolValue;

use super::gas::{llm_gas, request_gas};
use crate::inference::{InferenceCall, InferenceMode, ModelInferenceRequest, ModelOutput, request_id};
use crate::llm::{LLM_MODE_TEE, LlmRequest};

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// `runModelInference`.
    Model(ModelInferenceRequest),
    /// `runLLMCompletion` or `runLLMChat`.
    Llm(LlmRequest),
}

impl Request {
    /// The request of a precompile call, if it is one.
    pub(super) fn from_call(call: InferenceCall) -> Self {
        match call {
            InferenceCall::Model(r) => Self::Model(r),
            InferenceCall::LlmCompletion(r) => Self::Llm(LlmRequest::Completion(r)),
            InferenceCall::LlmChat(r) => Self::Llm(LlmRequest::Chat(r)),
        }
    }

    /// `keccak256(abi.encode(request))` of either kind.
    pub(super) fn id(&self) -> B256 {
        match self {
            Self::Model(r) => request_id(r),
            Self::Llm(r) => r.id(),
        }
    }

    /// [`Request::id`] of the request decoded from `args` (a call's
    /// arguments), whose keccak is `args_hash`: arguments in the canonical
    /// encoding are what the id hashes, so only others are hashed again.
    pub(super) fn id_of_args(&self, args: &[u8], args_hash: B256) -> B256 {
        let canonical = match self {
            Self::Model(r) => r.abi_encode(),
            Self::Llm(LlmRequest::Completion(r)) => r.abi_encode(),
            Self::Llm(LlmRequest::Chat(r)) => r.abi_encode(),
        };
        if canonical == args { args_hash } else { keccak256(canonical) }
    }

    /// The model or LLM id it names.
    pub(super) fn model(&self) -> &str {
        match self {
            Self::Model(r) => &r.modelCID,
            Self::Llm(r) => r.model(),
        }
    }

    /// The mode byte.
    pub(super) fn mode(&self) -> u8 {
        match self {
            Self::Model(r) => r.mode,
            Self::Llm(r) => r.mode(),
        }
    }

    /// Whether its result is attested by an enclave (model mode TEE = 2,
    /// LLM mode TEE = 1).
    pub(super) fn is_tee(&self) -> bool {
        match self {
            Self::Model(r) => r.mode == InferenceMode::Tee as u8,
            Self::Llm(r) => r.mode() == LLM_MODE_TEE,
        }
    }

    /// What the record calls its input hash: the model input's
    /// `keccak256(abi.encode(input))`, or an LLM call's request id.
    pub(super) fn input_hash(&self) -> B256 {
        match self {
            Self::Model(r) => keccak256(r.input.abi_encode()),
            Self::Llm(r) => r.id(),
        }
    }

    /// Its gas ([`request_gas`], [`llm_gas`]).
    pub(super) fn gas(&self) -> u64 {
        match self {
            Self::Model(r) => request_gas(r),
            Self::Llm(r) => llm_gas(r),
        }
    }

    /// The answer of a simulation pass.
    pub(super) fn simulation(&self) -> Bytes {
        match self {
            Self::Model(_) => InferenceCall::encode_model_output(&ModelOutput::simulation()).into(),
            Self::Llm(r) => r.simulation().encode().into(),
        }
    }
}
