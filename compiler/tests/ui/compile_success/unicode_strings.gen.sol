// ==== unicode_strings.nml ====
// SPDX-License-Identifier: MIT
// pragma nml 0.1; (lowered by nml 0.1.0)
import "@nml/og/OGInference.sol";
import {TensorLib} from "@nml/og/TensorLib.sol";
import "@nml/nml/Tensors.sol";
pragma solidity ^0.8.24;

/// Non-ASCII and escaped strings in a declaration become Solidity literals
/// solc accepts: `unicode"…"` where they are not ASCII.
/// @notice nml llm `Poet`, generated from unicode_strings.nml. Do not edit:
///         change the `llm` declaration instead.
library Poet {
    /// @notice The LLM's id.
    string internal constant MODEL = unicode"modèle-ü";
    /// @notice How the LLM runs and is proven.
    LLMInferenceMode internal constant MODE = LLMInferenceMode.VANILLA;
    /// @notice The most tokens an answer may have.
    uint32 internal constant MAX_TOKENS = 256;
    /// @notice Sampling temperature in hundredths.
    uint32 internal constant TEMPERATURE = 0;

    /// @notice The stop sequences.
    function stop() internal pure returns (string[] memory s) {
        s = new string[](6);
        s[0] = unicode"é";
        s[1] = unicode"é";
        s[2] = unicode"—";
        s[3] = "a\"b";
        s[4] = "\n";
        s[5] = "A";
    }

    /// @notice Completes `prompt`. In the mempool's simulation pass the
    ///         answer is `""` (docs/llm.md): treat an empty answer as no answer.
    function ask(string memory prompt) internal returns (string memory) {
        LLMCompletionRequest memory request = LLMCompletionRequest(MODE, MODEL, prompt, MAX_TOKENS, stop(), TEMPERATURE);
        return OG_INFERENCE_CONTRACT.runLLMCompletion(request).answer;
    }

    /// @notice Continues a chat; in the simulation pass the response is
    ///         empty, with an empty `finish_reason` (see `simulated`).
    function chat(ChatMessage[] memory messages) internal returns (LLMChatResponse memory) {
        LLMChatRequest memory request =
            LLMChatRequest(MODE, MODEL, messages, new ToolDefinition[](0), "", MAX_TOKENS, stop(), TEMPERATURE);
        return OG_INFERENCE_CONTRACT.runLLMChat(request);
    }

    /// @notice Whether a chat response is the simulation pass's empty one:
    ///         a real response always says why it finished.
    function simulated(LLMChatResponse memory response) internal pure returns (bool) {
        return bytes(response.finish_reason).length == 0;
    }
}

contract Verses {
    function line() external returns (string memory) {
        return Poet.ask(unicode"Écris un vers");
    }
}

