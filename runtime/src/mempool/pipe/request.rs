//! A request to the inference precompile as the mempool handles it: a
//! model request or an LLM call, with what every phase needs of either
//! (its id, gas, simulation answer, mode).

use alloy_primitives::{B256, Bytes, U256, keccak256};
use alloy_sol_types::{SolCall, SolValue};

use super::gas::{llm_gas, request_gas};
use super::memo::Hashed;
use crate::chain::InputHash;
use crate::inference::abi::runModelInferenceCall;
use crate::inference::{InferenceCall, InferenceError, InferenceMode, ModelInferenceRequest, ModelOutput, canonical};
use crate::llm::{LLM_MODE_TEE, LlmRequest};

/// A decoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Request {
    /// `runModelInference`, and its canonical encoding `abi.encode(request)`
    /// (what its id hashes, and where its input hash is read from: see
    /// [`Request::input_hash`]).
    Model(ModelInferenceRequest, Bytes),
    /// `runLLMCompletion` or `runLLMChat`.
    Llm(LlmRequest),
}

impl Request {
    /// The request of a precompile call, if it is one.
    fn from_call(call: InferenceCall) -> Self {
        match call {
            InferenceCall::Model(r) => Self::from_model(r),
            InferenceCall::LlmCompletion(r) => Self::Llm(LlmRequest::Completion(r)),
            InferenceCall::LlmChat(r) => Self::Llm(LlmRequest::Chat(r)),
        }
    }

    /// A model request, with its canonical encoding.
    pub(super) fn from_model(request: ModelInferenceRequest) -> Self {
        let encoding = request.abi_encode().into();
        Self::Model(request, encoding)
    }

    /// The request of a precompile call and its id, given the call's
    /// arguments and their keccak when it has a known selector (from the
    /// [`HashMemo`](super::memo::HashMemo)). Arguments that are the
    /// canonical encoding of a model request are read in one pass
    /// ([`canonical::model_request`]), their hash is the id, and the request
    /// keeps them as its encoding; any others are decoded, and identified by
    /// their canonical encoding.
    pub(super) fn of_call(calldata: &[u8], hashed: Option<Hashed>) -> Result<(Self, B256), InferenceError> {
        if let Some(Hashed { args, hash }) = &hashed
            && calldata.starts_with(&runModelInferenceCall::SELECTOR)
            && let Some(request) = canonical::model_request(args)
        {
            return Ok((Self::Model(request, args.clone()), *hash));
        }
        let call = InferenceCall::decode(calldata)?;
        Ok(match hashed {
            Some(Hashed { args, hash }) => Self::from_args(call, &args, hash),
            None => {
                let request = Self::from_call(call);
                let id = request.id();
                (request, id)
            }
        })
    }

    /// The request of a call whose arguments are `args` (their keccak
    /// `args_hash`), and its id, from one canonical encoding of it:
    /// arguments in the canonical encoding are what the id hashes, so only
    /// others are hashed again; a model request keeps the encoding, which
    /// its input hash is read from if it is ever asked for.
    fn from_args(call: InferenceCall, args: &[u8], args_hash: B256) -> (Self, B256) {
        let canonical = match &call {
            InferenceCall::Model(r) => r.abi_encode(),
            InferenceCall::LlmCompletion(r) => r.abi_encode(),
            InferenceCall::LlmChat(r) => r.abi_encode(),
        };
        let id = if canonical == args { args_hash } else { keccak256(&canonical) };
        let request = match call {
            InferenceCall::Model(r) => Self::Model(r, canonical.into()),
            other => Self::from_call(other),
        };
        (request, id)
    }

    /// `keccak256(abi.encode(request))` of either kind.
    pub(super) fn id(&self) -> B256 {
        match self {
            Self::Model(_, encoding) => keccak256(encoding),
            Self::Llm(r) => r.id(),
        }
    }

    /// The model or LLM id it names.
    pub(super) fn model(&self) -> &str {
        match self {
            Self::Model(r, _) => &r.modelCID,
            Self::Llm(r) => r.model(),
        }
    }

    /// The mode byte.
    pub(super) fn mode(&self) -> u8 {
        match self {
            Self::Model(r, _) => r.mode,
            Self::Llm(r) => r.mode(),
        }
    }

    /// Whether its result is attested by an enclave (model mode TEE = 2,
    /// LLM mode TEE = 1).
    pub(super) fn is_tee(&self) -> bool {
        match self {
            Self::Model(r, _) => r.mode == InferenceMode::Tee as u8,
            Self::Llm(r) => r.mode() == LLM_MODE_TEE,
        }
    }

    /// What the record calls its input hash: the model input's
    /// `keccak256(abi.encode(input))`, hashed when first read, from the
    /// request's encoding (the input is its last field), or an LLM call's
    /// request id.
    pub(super) fn input_hash(&self) -> InputHash {
        match self {
            Self::Model(r, encoding) => match input_tuple_in(encoding) {
                Some(tuple) => InputHash::of_tuple(tuple),
                None => keccak256(r.input.abi_encode()).into(),
            },
            Self::Llm(r) => r.id().into(),
        }
    }

    /// Its gas ([`request_gas`], [`llm_gas`]).
    pub(super) fn gas(&self) -> u64 {
        match self {
            Self::Model(r, _) => request_gas(r),
            Self::Llm(r) => llm_gas(r),
        }
    }

    /// The answer of a simulation pass.
    pub(super) fn simulation(&self) -> Bytes {
        match self {
            Self::Model(..) => InferenceCall::encode_model_output(&ModelOutput::simulation()).into(),
            Self::Llm(r) => r.simulation().encode().into(),
        }
    }
}

/// The encoding of a model request's input tuple, read from
/// `abi.encode(request)`: that is the offset 0x20, then the struct's head
/// (mode, the offsets of `modelCID` and of `input`) and its fields'
/// encodings in order. `input` is the last field, so its encoding runs to
/// the end, and `abi.encode(input)` is the same bytes after an offset 0x20
/// of its own.
fn input_tuple_in(canonical: &Bytes) -> Option<Bytes> {
    let offset = usize::try_from(U256::from_be_slice(canonical.get(96..128)?)).ok()?;
    let start = offset.checked_add(32).filter(|start| *start <= canonical.len())?;
    Some(canonical.slice(start..))
}
