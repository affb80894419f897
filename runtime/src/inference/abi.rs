//! The OGInference precompile's ABI (PROTOCOL.md A1), byte for byte, and the
//! identity of a model request.
//!
//! The Solidity side is `stdlib/og/OGInference.sol` and `TensorLib.sol`; the
//! types here are their Rust twins (struct names do not enter the ABI, only
//! the tuple shapes do, so a contract written against OpenGradient's published
//! interface calls the same selectors with the same encoding).

use alloy_primitives::{B256, keccak256};
use alloy_sol_types::{SolCall, SolValue, sol};

use super::error::InferenceError;

sol! {
    /// A fixed-point number: `value * 10**-decimals` (1.5 is `(15, 1)`).
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct Number {
        /// The digits.
        int128 value;
        /// How many of them are decimals (may be negative: `(15, -1)` is 150).
        int128 decimals;
    }

    /// A named numeric tensor: values flat, in row-major order, and its shape.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct MultiDimensionalNumberTensor {
        /// The graph input or output it belongs to.
        string name;
        /// The elements, row-major.
        Number[] values;
        /// The dimensions; `[]` is a scalar.
        uint32[] shape;
    }

    /// A named string tensor (flat; its shape comes from the graph).
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct StringTensor {
        /// The graph input or output it belongs to.
        string name;
        /// The elements, row-major.
        string[] values;
    }

    /// A named JSON value returned by a model.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct JsonScalar {
        /// Its name.
        string name;
        /// The JSON text.
        string value;
    }

    /// The inputs of a model, by tensor name.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct ModelInput {
        /// Numeric (and boolean) tensors.
        MultiDimensionalNumberTensor[] numbers;
        /// String tensors.
        StringTensor[] strings;
    }

    /// One model inference request, the argument of `runModelInference`.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct ModelInferenceRequest {
        /// `VANILLA = 0`, `ZK = 1`, `TEE = 2` (see [`InferenceMode`]).
        uint8 mode;
        /// The model's id in the hub (see [`nml_protocol::ModelId`]).
        string modelCID;
        /// The input tensors.
        ModelInput input;
    }

    /// The outputs of a model. Empty with `is_simulation_result = true` during
    /// the mempool's simulation pass.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct ModelOutput {
        /// Numeric (and boolean) outputs, in graph output order.
        MultiDimensionalNumberTensor[] numbers;
        /// String outputs, in graph output order.
        StringTensor[] strings;
        /// JSON outputs (none from ONNX models).
        JsonScalar[] jsons;
        /// Whether this is the empty answer of a simulation pass.
        bool is_simulation_result;
    }

    /// An LLM completion request; `temperature` is in hundredths (0..100).
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct LLMCompletionRequest {
        /// `VANILLA = 0`, `TEE = 1`.
        uint8 mode;
        /// The model's id.
        string modelCID;
        /// The prompt.
        string prompt;
        /// The most tokens to generate.
        uint32 max_tokens;
        /// Sequences that end the answer.
        string[] stop_sequence;
        /// Sampling temperature in hundredths.
        uint32 temperature;
    }

    /// An LLM completion.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct LLMCompletionResponse {
        /// The generated text.
        string answer;
    }

    /// A tool call made by an LLM in a chat.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct ToolCall {
        /// The call's id.
        string id;
        /// The tool's name.
        string name;
        /// The arguments, as JSON text.
        string arguments;
    }

    /// A tool an LLM may call in a chat.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct ToolDefinition {
        /// What the tool does.
        string description;
        /// Its name.
        string name;
        /// Its parameters' JSON schema.
        string parameters;
    }

    /// One chat message.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct ChatMessage {
        /// `system`, `user`, `assistant` or `tool`.
        string role;
        /// The text.
        string content;
        /// The author's name.
        string name;
        /// The tool call this message answers.
        string tool_call_id;
        /// The tool calls this message makes.
        ToolCall[] tool_calls;
    }

    /// An LLM chat request.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct LLMChatRequest {
        /// `VANILLA = 0`, `TEE = 1`.
        uint8 mode;
        /// The model's id.
        string modelCID;
        /// The conversation so far.
        ChatMessage[] messages;
        /// The tools the model may call.
        ToolDefinition[] tools;
        /// Which tool to call, if any.
        string tool_choice;
        /// The most tokens to generate.
        uint32 max_tokens;
        /// Sequences that end the answer.
        string[] stop_sequence;
        /// Sampling temperature in hundredths.
        uint32 temperature;
    }

    /// An LLM chat response.
    #[derive(Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
    struct LLMChatResponse {
        /// Why generation stopped.
        string finish_reason;
        /// The model's message.
        ChatMessage message;
    }

    /// Runs an ONNX model.
    #[derive(Debug, PartialEq, Eq)]
    function runModelInference(ModelInferenceRequest memory request) external returns (ModelOutput memory);

    /// Runs an LLM completion.
    #[derive(Debug, PartialEq, Eq)]
    function runLLMCompletion(LLMCompletionRequest memory request) external returns (LLMCompletionResponse memory);

    /// Runs an LLM chat.
    #[derive(Debug, PartialEq, Eq)]
    function runLLMChat(LLMChatRequest memory request) external returns (LLMChatResponse memory);

    /// Emitted by the precompile when it serves a model request in a mined
    /// transaction (and its replays), as OpenGradient's `InferencePrecompile.abi` has it.
    #[derive(Debug, PartialEq, Eq)]
    event ModelInferenceEvent(string inferenceID, ModelInferenceRequest request, ModelOutput response);

    /// Emitted for a served completion.
    #[derive(Debug, PartialEq, Eq)]
    event LLMCompletionEvent(string inferenceID, LLMCompletionRequest request, LLMCompletionResponse response);

    /// Emitted for a served chat.
    #[derive(Debug, PartialEq, Eq)]
    event LLMChat(string inferenceID, LLMChatRequest request, LLMChatResponse response);
}

/// How a model inference is executed and proven (the `mode` of a
/// [`ModelInferenceRequest`]). The devnet computes the result the same way in
/// every mode; proofs and attestations come with the mode later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum InferenceMode {
    /// No proof.
    Vanilla = 0,
    /// A ZKML proof.
    Zk = 1,
    /// A TEE attestation.
    Tee = 2,
}

impl TryFrom<u8> for InferenceMode {
    type Error = InferenceError;

    fn try_from(mode: u8) -> Result<Self, InferenceError> {
        match mode {
            0 => Ok(Self::Vanilla),
            1 => Ok(Self::Zk),
            2 => Ok(Self::Tee),
            _ => Err(InferenceError::InvalidCall {
                reason: format!("unknown inference mode {mode} (VANILLA = 0, ZK = 1, TEE = 2)"),
            }),
        }
    }
}

/// The identity of a model request: `keccak256(abi.encode(request))`, the
/// hash of the canonical ABI encoding of the `ModelInferenceRequest` tuple.
///
/// That encoding is exactly the argument data of the `runModelInference`
/// call, i.e. the calldata without its 4-byte selector, as solc (and any
/// canonical encoder) writes it; a contract can compute the same id with
/// `keccak256(abi.encode(request))`. The id is computed from the decoded
/// request re-encoded, so calldata with non-canonical offsets names the same
/// request as its canonical form. Identical requests from any number of
/// transactions share one id and run once.
pub fn request_id(request: &ModelInferenceRequest) -> B256 {
    keccak256(request.abi_encode())
}

impl ModelOutput {
    /// The answer of a simulation pass: no tensors, `is_simulation_result = true`.
    pub fn simulation() -> Self {
        Self { is_simulation_result: true, ..Self::default() }
    }
}

/// A decoded call to the inference precompile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InferenceCall {
    /// `runModelInference(ModelInferenceRequest)`.
    Model(ModelInferenceRequest),
    /// `runLLMCompletion(LLMCompletionRequest)`.
    LlmCompletion(LLMCompletionRequest),
    /// `runLLMChat(LLMChatRequest)`.
    LlmChat(LLMChatRequest),
}

impl InferenceCall {
    /// Decodes the precompile's calldata by its selector.
    pub fn decode(calldata: &[u8]) -> Result<Self, InferenceError> {
        let Some((selector, args)) = calldata.split_first_chunk::<4>() else {
            return Err(InferenceError::InvalidCall {
                reason: format!("calldata of {} bytes has no selector", calldata.len()),
            });
        };
        let bad = |name: &str, e: alloy_sol_types::Error| InferenceError::InvalidCall {
            reason: format!("cannot decode the arguments of {name}: {e}"),
        };
        match *selector {
            runModelInferenceCall::SELECTOR => runModelInferenceCall::abi_decode_raw(args)
                .map(|call| Self::Model(call.request))
                .map_err(|e| bad("runModelInference", e)),
            runLLMCompletionCall::SELECTOR => runLLMCompletionCall::abi_decode_raw(args)
                .map(|call| Self::LlmCompletion(call.request))
                .map_err(|e| bad("runLLMCompletion", e)),
            runLLMChatCall::SELECTOR => runLLMChatCall::abi_decode_raw(args)
                .map(|call| Self::LlmChat(call.request))
                .map_err(|e| bad("runLLMChat", e)),
            other => Err(InferenceError::InvalidCall {
                reason: format!(
                    "unknown selector 0x{} (the precompile serves runModelInference, runLLMCompletion and runLLMChat)",
                    alloy_primitives::hex::encode(other)
                ),
            }),
        }
    }

    /// The precompile's return data for `runModelInference`: the ABI encoding
    /// of the output as the function's single return value.
    pub fn encode_model_output(output: &ModelOutput) -> Vec<u8> {
        runModelInferenceCall::abi_encode_returns(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request() -> ModelInferenceRequest {
        ModelInferenceRequest {
            mode: 0,
            modelCID: "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51".into(),
            input: ModelInput {
                numbers: vec![MultiDimensionalNumberTensor {
                    name: "x".into(),
                    values: vec![Number { value: 15, decimals: 1 }, Number { value: -2, decimals: 0 }],
                    shape: vec![1, 2],
                }],
                strings: vec![StringTensor { name: "s".into(), values: vec!["hi".into()] }],
            },
        }
    }

    #[test]
    fn selectors_are_those_of_the_published_interface() {
        let tensor = "(string,(int128,int128)[],uint32[])";
        let strings = "(string,string[])";
        let model = format!("runModelInference((uint8,string,({tensor}[],{strings}[])))");
        let completion = "runLLMCompletion((uint8,string,string,uint32,string[],uint32))";
        let chat = "runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],(string,string,string)[],string,uint32,string[],uint32))";
        let selector = |signature: &str| keccak256(signature.as_bytes())[..4].to_vec();
        assert_eq!(runModelInferenceCall::SIGNATURE, model);
        assert_eq!(runModelInferenceCall::SELECTOR.to_vec(), selector(&model));
        assert_eq!(runLLMCompletionCall::SELECTOR.to_vec(), selector(completion));
        assert_eq!(runLLMChatCall::SELECTOR.to_vec(), selector(chat));
    }

    #[test]
    fn request_id_hashes_the_call_arguments() {
        let request = request();
        let calldata = runModelInferenceCall { request: request.clone() }.abi_encode();
        assert_eq!(request_id(&request), keccak256(&calldata[4..]));
        let mut other = request.clone();
        other.input.numbers[0].values[0].decimals = 2;
        assert_ne!(request_id(&request), request_id(&other));
        let mut other_mode = request.clone();
        other_mode.mode = 2;
        assert_ne!(request_id(&request), request_id(&other_mode));
    }

    #[test]
    fn calls_decode_by_selector() {
        let request = request();
        let calldata = runModelInferenceCall { request: request.clone() }.abi_encode();
        assert_eq!(InferenceCall::decode(&calldata), Ok(InferenceCall::Model(request)));
        let completion = LLMCompletionRequest { prompt: "hi".into(), max_tokens: 10, ..Default::default() };
        let calldata = runLLMCompletionCall { request: completion.clone() }.abi_encode();
        assert_eq!(InferenceCall::decode(&calldata), Ok(InferenceCall::LlmCompletion(completion)));

        let err = InferenceCall::decode(&[0xde, 0xad, 0xbe, 0xef]).unwrap_err().to_string();
        assert!(err.contains("unknown selector 0xdeadbeef"), "{err}");
        let err = InferenceCall::decode(&[1, 2]).unwrap_err().to_string();
        assert!(err.contains("no selector"), "{err}");
        let truncated = &runModelInferenceCall { request: self::tests::request() }.abi_encode()[..40];
        let err = InferenceCall::decode(truncated).unwrap_err().to_string();
        assert!(err.starts_with("invalid inference call: cannot decode the arguments of runModelInference"), "{err}");
    }

    #[test]
    fn outputs_encode_as_the_single_return_value() {
        let simulation = ModelOutput::simulation();
        assert!(simulation.is_simulation_result && simulation.numbers.is_empty() && simulation.strings.is_empty());
        let encoded = InferenceCall::encode_model_output(&simulation);
        assert_eq!(encoded, (simulation.clone(),).abi_encode_params());
        assert_eq!(runModelInferenceCall::abi_decode_returns(&encoded), Ok(simulation));
    }

    #[test]
    fn modes() {
        assert_eq!(InferenceMode::try_from(2), Ok(InferenceMode::Tee));
        assert!(InferenceMode::try_from(3).unwrap_err().to_string().contains("unknown inference mode 3"));
    }
}
