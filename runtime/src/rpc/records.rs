//! The RPC view of inference records (`nml_getInferenceReceipts`): a
//! receipt's record with its output decoded for people and scripts.

use alloy_sol_types::SolCall;

use crate::chain::InferenceRecord;
use crate::inference::abi::runModelInferenceCall;
use crate::mempool::pipe::revert_reason;

/// A receipt record as `nml_getInferenceReceipts` shows it: the record, with
/// its output decoded (`output` as tensors, or `error` with the reason).
pub fn record_json(record: &InferenceRecord) -> serde_json::Value {
    let mut json = serde_json::to_value(record).unwrap_or_default();
    if let Some(obj) = json.as_object_mut() {
        obj.insert("rawOutput".into(), serde_json::to_value(&record.output).unwrap_or_default());
        obj.remove("output");
        if record.success {
            let decoded = runModelInferenceCall::abi_decode_returns(&record.output).ok();
            obj.insert("output".into(), serde_json::to_value(decoded).unwrap_or_default());
        } else {
            obj.insert("error".into(), serde_json::Value::String(revert_reason(&record.output)));
        }
    }
    json
}
