//! What a call to the inference precompile costs. It depends on the request
//! only, so a simulation and the inclusion of the same request cost the
//! same, and the result store can record it with the result.

use crate::inference::ModelInferenceRequest;
use crate::llm::LlmRequest;

/// Gas of every call to the inference precompile.
pub const GAS_BASE: u64 = 20_000;

/// Gas per input tensor element (number or string) of a model request.
pub const GAS_PER_ELEMENT: u64 = 50;

/// Gas per byte of text an LLM call sends (its prompt or messages and tools).
pub const GAS_PER_TEXT_BYTE: u64 = 8;

/// The gas a model request costs: [`GAS_BASE`] plus [`GAS_PER_ELEMENT`] per
/// input element. It depends on the input only, so a simulation and the
/// inclusion of the same request cost the same.
pub fn request_gas(request: &ModelInferenceRequest) -> u64 {
    let numbers: usize = request.input.numbers.iter().map(|t| t.values.len()).sum();
    let strings: usize = request.input.strings.iter().map(|t| t.values.len()).sum();
    GAS_BASE.saturating_add(GAS_PER_ELEMENT.saturating_mul((numbers + strings) as u64))
}

/// The gas an LLM call costs: [`GAS_BASE`] plus [`GAS_PER_TEXT_BYTE`] per
/// byte of text it sends ([`LlmRequest::text_len`]).
pub fn llm_gas(request: &LlmRequest) -> u64 {
    GAS_BASE.saturating_add(GAS_PER_TEXT_BYTE.saturating_mul(request.text_len() as u64))
}
