// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/og/OGInference.sol";

/// @title InferenceHub
/// @notice OpenGradient's inference hub, predeployed by the nml devnet at
///         0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE with the ABI of the
///         SDK's `inference.abi`: an account that is not a contract (the SDK's
///         `og.Alpha.infer`) calls a model or an LLM through it, and reads the
///         answer from the event it emits. Each call goes to the inference
///         precompile at 0x…F4, so it runs through the inference mempool like
///         any contract's call: in the simulation pass the event carries the
///         empty simulation answer (and is discarded with the pass); the mined
///         transaction's event carries the real one.
contract InferenceHub {
    /// @notice A model's answer to `run`.
    event InferenceResult(ModelOutput output);
    /// @notice An LLM's answer to `runLLMCompletion`.
    event LLMCompletionResult(LLMCompletionResponse response);
    /// @notice An LLM's answer to `runLLMChat`.
    event LLMChatResult(LLMChatResponse response);

    /// @notice Runs model `modelId` on `modelInput` in `inferenceMode`
    ///         (VANILLA = 0, ZK = 1, TEE = 2).
    function run(string calldata modelId, uint8 inferenceMode, ModelInput calldata modelInput)
        external
        returns (ModelOutput memory output)
    {
        require(inferenceMode <= uint8(ModelInferenceMode.TEE), "unknown inference mode (VANILLA = 0, ZK = 1, TEE = 2)");
        output = OG_INFERENCE_CONTRACT.runModelInference(
            ModelInferenceRequest(ModelInferenceMode(inferenceMode), modelId, modelInput)
        );
        emit InferenceResult(output);
    }

    /// @notice Completes a prompt.
    function runLLMCompletion(LLMCompletionRequest calldata request)
        external
        returns (LLMCompletionResponse memory response)
    {
        response = OG_INFERENCE_CONTRACT.runLLMCompletion(request);
        emit LLMCompletionResult(response);
    }

    /// @notice Continues a chat.
    function runLLMChat(LLMChatRequest calldata request) external returns (LLMChatResponse memory response) {
        response = OG_INFERENCE_CONTRACT.runLLMChat(request);
        emit LLMChatResult(response);
    }
}
