//! The RPC view of inference records (`nml_getInferenceReceipts`): a
//! receipt's record with its output decoded for people and scripts.

use alloy_sol_types::SolCall;

use crate::chain::InferenceRecord;
use crate::inference::abi::{runLLMChatCall, runLLMCompletionCall, runModelInferenceCall};
use crate::mempool::pipe::revert_reason;

/// A receipt record as `nml_getInferenceReceipts` shows it: the record, with
/// its output decoded (`output` as tensors, an LLM call's `{answer}` or
/// `{finish_reason, message}`, or `error` with the reason).
pub fn record_json(record: &InferenceRecord) -> serde_json::Value {
    let mut json = serde_json::to_value(record).unwrap_or_default();
    if let Some(obj) = json.as_object_mut() {
        obj.insert("rawOutput".into(), serde_json::to_value(&record.output).unwrap_or_default());
        obj.remove("output");
        if record.success {
            obj.insert("output".into(), decode_output(&record.output));
        } else {
            obj.insert("error".into(), serde_json::Value::String(revert_reason(&record.output)));
        }
    }
    json
}

/// A successful output decoded by the shape it has (strictly: the three
/// response tuples never decode as one another).
pub(super) fn decode_output(output: &[u8]) -> serde_json::Value {
    if let Ok(model) = runModelInferenceCall::abi_decode_returns_validate(output) {
        return serde_json::to_value(model).unwrap_or_default();
    }
    if let Ok(chat) = runLLMChatCall::abi_decode_returns_validate(output) {
        return serde_json::to_value(chat).unwrap_or_default();
    }
    runLLMCompletionCall::abi_decode_returns_validate(output)
        .ok()
        .and_then(|completion| serde_json::to_value(completion).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::ModelOutput;
    use crate::inference::abi::{LLMCompletionResponse, runLLMCompletionCall};
    use crate::llm::LlmResponse;

    #[test]
    fn outputs_of_every_kind_decode_as_themselves() {
        let completion = runLLMCompletionCall::abi_encode_returns(&LLMCompletionResponse { answer: "Bullish".into() });
        assert_eq!(decode_output(&completion), serde_json::json!({ "answer": "Bullish" }));
        let chat = LlmResponse::chat_text("hi", "stop").encode();
        let decoded = decode_output(&chat);
        assert_eq!(decoded["finish_reason"], "stop");
        assert_eq!(decoded["message"]["content"], "hi");
        let model = runModelInferenceCall::abi_encode_returns(&ModelOutput::default());
        assert_eq!(decode_output(&model)["is_simulation_result"], false);
        let empty = runLLMCompletionCall::abi_encode_returns(&LLMCompletionResponse::default());
        assert_eq!(decode_output(&empty), serde_json::json!({ "answer": "" }));
    }
}
