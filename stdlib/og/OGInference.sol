// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib} from "./TensorLib.sol";

/// @notice How a model inference is executed and proven.
enum ModelInferenceMode {
    VANILLA,
    ZK,
    TEE
}

/// @notice How an LLM call is executed and proven.
enum LLMInferenceMode {
    VANILLA,
    TEE
}

/// @notice The inputs of a model, by tensor name.
struct ModelInput {
    TensorLib.MultiDimensionalNumberTensor[] numbers;
    TensorLib.StringTensor[] strings;
}

/// @notice One model inference request.
struct ModelInferenceRequest {
    ModelInferenceMode mode;
    string modelCID;
    ModelInput input;
}

/// @notice The outputs of a model. Empty with `is_simulation_result = true`
///         during the mempool's simulation pass.
struct ModelOutput {
    TensorLib.MultiDimensionalNumberTensor[] numbers;
    TensorLib.StringTensor[] strings;
    TensorLib.JsonScalar[] jsons;
    bool is_simulation_result;
}

/// @notice An LLM completion request; `temperature` is in hundredths (0..100).
struct LLMCompletionRequest {
    LLMInferenceMode mode;
    string modelCID;
    string prompt;
    uint32 max_tokens;
    string[] stop_sequence;
    uint32 temperature;
}

/// @notice An LLM completion; `answer` is empty during simulation.
struct LLMCompletionResponse {
    string answer;
}

/// @notice A tool call made by an LLM in a chat.
struct ToolCall {
    string id;
    string name;
    string arguments;
}

/// @notice A tool an LLM may call in a chat.
struct ToolDefinition {
    string description;
    string name;
    string parameters;
}

/// @notice One chat message.
struct ChatMessage {
    string role;
    string content;
    string name;
    string tool_call_id;
    ToolCall[] tool_calls;
}

/// @notice An LLM chat request.
struct LLMChatRequest {
    LLMInferenceMode mode;
    string modelCID;
    ChatMessage[] messages;
    ToolDefinition[] tools;
    string tool_choice;
    uint32 max_tokens;
    string[] stop_sequence;
    uint32 temperature;
}

/// @notice An LLM chat response.
struct LLMChatResponse {
    string finish_reason;
    ChatMessage message;
}

/// @title OGInference
/// @notice The inference precompile's interface.
interface OGInference {
    /// @notice Runs an ONNX model.
    function runModelInference(ModelInferenceRequest memory request) external returns (ModelOutput memory);

    /// @notice Runs an LLM completion.
    function runLLMCompletion(LLMCompletionRequest memory request) external returns (LLMCompletionResponse memory);

    /// @notice Runs an LLM chat.
    function runLLMChat(LLMChatRequest memory request) external returns (LLMChatResponse memory);
}

// The inference precompile (NatSpec is not allowed on file-level constants).
OGInference constant OG_INFERENCE_CONTRACT = OGInference(0x00000000000000000000000000000000000000F4);
