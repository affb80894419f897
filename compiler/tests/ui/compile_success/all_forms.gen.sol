// ==== all_forms.nml ====
// pragma nml 0.1; (lowered by nml 0.1.0)
import "@nml/og/OGInference.sol";
import {TensorLib} from "@nml/og/TensorLib.sol";
import "@nml/nml/Tensors.sol";
pragma solidity ^0.8.24;

import "./Shared.sol";

/// Two inputs of different types, one output read.
/// @notice nml model `Multi`, generated from all_forms.nml. Do not edit:
///         change the `model` declaration instead.
library Multi {
    /// @notice The model's id in the model hub (`modelCID`).
    string internal constant CID = "bafkreihqhu2xjso577pxipxgy2pziszf6djmqnkegnrftjpy4praxikkpq";
    /// @notice How the model runs and is proven.
    ModelInferenceMode internal constant MODE = ModelInferenceMode.TEE;

    /// @notice The declared outputs, flat and row-major, at their declared
    ///         decimals. All zero when `simulated` (the mempool's first pass).
    struct Output {
        int256[4] y;
        bool simulated;
    }

    /// @notice Runs `Multi` through the inference precompile.
    function run(int256[2] memory in_b, int256[4] memory in_a) internal returns (Output memory out) {
        ModelInput memory input;
        input.numbers = new TensorLib.MultiDimensionalNumberTensor[](2);
        input.strings = new TensorLib.StringTensor[](0);
        {
            uint32[] memory dims = new uint32[](2);
            dims[0] = 1;
            dims[1] = 2;
            int256[] memory v = new int256[](2);
            for (uint256 k = 0; k < 2; ++k) v[k] = in_b[k];
            uint32[] memory shape = NmlTensors.inputShape("Multi", "b", dims, v.length);
            input.numbers[0] = NmlTensors.numbers("Multi", "b", v, 0, shape);
        }
        {
            uint32[] memory dims = new uint32[](2);
            dims[0] = 1;
            dims[1] = 4;
            int256[] memory v = new int256[](4);
            for (uint256 k = 0; k < 4; ++k) v[k] = in_a[k];
            uint32[] memory shape = NmlTensors.inputShape("Multi", "a", dims, v.length);
            input.numbers[1] = NmlTensors.numbers("Multi", "a", v, 6, shape);
        }
        ModelOutput memory result = OG_INFERENCE_CONTRACT.runModelInference(ModelInferenceRequest(MODE, CID, input));
        out.simulated = result.is_simulation_result;
        if (out.simulated) return out;
        {
            uint32[] memory dims = new uint32[](2);
            dims[0] = 1;
            dims[1] = 4;
            TensorLib.MultiDimensionalNumberTensor memory t = NmlTensors.findNumbers(result.numbers, "Multi", "y");
            NmlTensors.checkShape("Multi", "y", dims, t.shape, t.values.length);
            for (uint256 k = 0; k < t.values.length; ++k) {
                out.y[k] = NmlTensors.toFixed(t.values[k], 6, "Multi", "y", k);
            }
        }
    }
}

/// A dynamic batch dimension; the id is derived from the file.
/// @notice nml model `Dyn`, generated from all_forms.nml. Do not edit:
///         change the `model` declaration instead.
library Dyn {
    /// @notice The model's id in the model hub (`modelCID`).
    string internal constant CID = "bafkreieyz62g6oo3pk3jq2e3jnpan3dduzxynr3h3q7kovyucke6ooljoa";
    /// @notice How the model runs and is proven.
    ModelInferenceMode internal constant MODE = ModelInferenceMode.VANILLA;

    /// @notice The declared outputs, flat and row-major, at their declared
    ///         decimals. All zero when `simulated` (the mempool's first pass).
    struct Output {
        int256[] y;
        bool simulated;
    }

    /// @notice Runs `Dyn` through the inference precompile.
    function run(int256[] memory in_x) internal returns (Output memory out) {
        ModelInput memory input;
        input.numbers = new TensorLib.MultiDimensionalNumberTensor[](1);
        input.strings = new TensorLib.StringTensor[](0);
        {
            uint32[] memory dims = new uint32[](2);
            dims[0] = 0;
            dims[1] = 3;
            int256[] memory v = in_x;
            uint32[] memory shape = NmlTensors.inputShape("Dyn", "x", dims, v.length);
            input.numbers[0] = NmlTensors.numbers("Dyn", "x", v, 18, shape);
        }
        ModelOutput memory result = OG_INFERENCE_CONTRACT.runModelInference(ModelInferenceRequest(MODE, CID, input));
        out.simulated = result.is_simulation_result;
        if (out.simulated) return out;
        {
            uint32[] memory dims = new uint32[](2);
            dims[0] = 0;
            dims[1] = 1;
            TensorLib.MultiDimensionalNumberTensor memory t = NmlTensors.findNumbers(result.numbers, "Dyn", "y");
            NmlTensors.checkShape("Dyn", "y", dims, t.shape, t.values.length);
            out.y = new int256[](t.values.length);
            for (uint256 k = 0; k < t.values.length; ++k) {
                out.y[k] = NmlTensors.toFixed(t.values[k], 18, "Dyn", "y", k);
            }
        }
    }
}

/// Strings in and out.
/// @notice nml model `Tagger`, generated from all_forms.nml. Do not edit:
///         change the `model` declaration instead.
library Tagger {
    /// @notice The model's id in the model hub (`modelCID`).
    string internal constant CID = "bafkreic54zcy7oex7ymuddryyl4rvm2zvn65q3lsuuozem5lrxam66r7mi";
    /// @notice How the model runs and is proven.
    ModelInferenceMode internal constant MODE = ModelInferenceMode.VANILLA;

    /// @notice The declared outputs, flat and row-major, at their declared
    ///         decimals. All zero when `simulated` (the mempool's first pass).
    struct Output {
        string[1] s_out;
        int256[1] y;
        bool simulated;
    }

    /// @notice Runs `Tagger` through the inference precompile.
    function run(string[1] memory in_s, int256[1] memory in_x) internal returns (Output memory out) {
        ModelInput memory input;
        input.numbers = new TensorLib.MultiDimensionalNumberTensor[](1);
        input.strings = new TensorLib.StringTensor[](1);
        {
            uint32[] memory dims = new uint32[](1);
            dims[0] = 1;
            string[] memory v = new string[](1);
            for (uint256 k = 0; k < 1; ++k) v[k] = in_s[k];
            NmlTensors.inputShape("Tagger", "s", dims, v.length);
            input.strings[0] = TensorLib.StringTensor("s", v);
        }
        {
            uint32[] memory dims = new uint32[](1);
            dims[0] = 1;
            int256[] memory v = new int256[](1);
            for (uint256 k = 0; k < 1; ++k) v[k] = in_x[k];
            uint32[] memory shape = NmlTensors.inputShape("Tagger", "x", dims, v.length);
            input.numbers[0] = NmlTensors.numbers("Tagger", "x", v, 6, shape);
        }
        ModelOutput memory result = OG_INFERENCE_CONTRACT.runModelInference(ModelInferenceRequest(MODE, CID, input));
        out.simulated = result.is_simulation_result;
        if (out.simulated) return out;
        {
            TensorLib.StringTensor memory t = NmlTensors.findStrings(result.strings, "Tagger", "s_out");
            NmlTensors.checkCount("Tagger", "s_out", 1, t.values.length);
            for (uint256 k = 0; k < t.values.length; ++k) out.s_out[k] = t.values[k];
        }
        {
            uint32[] memory dims = new uint32[](1);
            dims[0] = 1;
            TensorLib.MultiDimensionalNumberTensor memory t = NmlTensors.findNumbers(result.numbers, "Tagger", "y");
            NmlTensors.checkShape("Tagger", "y", dims, t.shape, t.values.length);
            for (uint256 k = 0; k < t.values.length; ++k) {
                out.y[k] = NmlTensors.toFixed(t.values[k], 6, "Tagger", "y", k);
            }
        }
    }
}

/// @notice nml llm `Analyst`, generated from all_forms.nml. Do not edit:
///         change the `llm` declaration instead.
library Analyst {
    /// @notice The LLM's id.
    string internal constant MODEL = "meta-llama/Llama-3.1-8B-Instruct";
    /// @notice How the LLM runs and is proven.
    LLMInferenceMode internal constant MODE = LLMInferenceMode.VANILLA;
    /// @notice The most tokens an answer may have.
    uint32 internal constant MAX_TOKENS = 256;
    /// @notice Sampling temperature in hundredths.
    uint32 internal constant TEMPERATURE = 0;

    /// @notice The stop sequences.
    function stop() internal pure returns (string[] memory s) {
        s = new string[](2);
        s[0] = "\n";
        s[1] = "END";
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

contract Forms is Shared {
    int256 public last;

    function named(int256[4] memory a, int256[2] memory b) external returns (int256) {
        // Named arguments in any order.
        Multi.Output memory o = Multi.run(b, a);
        if (o.simulated) return 0;
        return o.y[0];
    }

    function positional(int256[] memory xs) external returns (uint256) {
        Dyn.Output memory o = Dyn.run(xs);
        return o.y.length;
    }

    function dependent(int256[] memory xs) external {
        // The second inference depends on the first one's output.
        Dyn.Output memory first = Dyn.run(xs);
        int256[] memory again = new int256[](3);
        again[0] = first.simulated ? int256(0) : first.y[0];
        last = Dyn.run(again).y.length > 0 ? int256(1) : int256(0);
    }

    function nested(int256[] memory xs) external returns (uint256) {
        // A dependent inference inline: the outer call needs the inner output.
        return Dyn.run(Dyn.run(xs).y).y.length;
    }

    function strings(string[1] memory s) external returns (string memory) {
        int256[1] memory x;
        return Tagger.run(s, x).s_out[0];
    }

    function talk(string memory topic) external returns (string memory) {
        return Analyst.ask(string.concat("Summarise ", topic));
    }

    function converse(ChatMessage[] memory messages) external returns (string memory) {
        return Analyst.chat(messages).message.content;
    }

    modifier gated(int256[4] memory a, int256[2] memory b) {
        require(!Multi.run(b, a).simulated || true, "never");
        _;
    }
}

