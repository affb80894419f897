// ==== graph_names.nml ====
// pragma nml 0.1; (lowered by nml 0.1.0)
import "@nml/og/OGInference.sol";
import {TensorLib} from "@nml/og/TensorLib.sol";
import "@nml/nml/Tensors.sol";
pragma solidity ^0.8.24;

// The graph's tensors are named `input:0` and `output.1`: the declaration
// gives each an identifier for Solidity and the graph's name as a string.
/// @notice nml model `Vol`, generated from graph_names.nml. Do not edit:
///         change the `model` declaration instead.
library Vol {
    /// @notice The model's id in the model hub (`modelCID`).
    string internal constant CID = "bafkreif3cczyufmq5pxo7f4nbtiubszhcpz66vcin4nnlclouitgcqjkce";
    /// @notice How the model runs and is proven.
    ModelInferenceMode internal constant MODE = ModelInferenceMode.VANILLA;

    /// @notice The declared outputs, flat and row-major, at their declared
    ///         decimals. All zero when `simulated` (the mempool's first pass).
    struct Output {
        int256[1] vol;
        bool simulated;
    }

    /// @notice Runs `Vol` through the inference precompile.
    function run(int256[30] memory in_returns) internal returns (Output memory out) {
        ModelInput memory input;
        input.numbers = new TensorLib.MultiDimensionalNumberTensor[](1);
        input.strings = new TensorLib.StringTensor[](0);
        {
            uint32[] memory dims = new uint32[](2);
            dims[0] = 1;
            dims[1] = 30;
            int256[] memory v = new int256[](30);
            for (uint256 k = 0; k < 30; ++k) v[k] = in_returns[k];
            uint32[] memory shape = NmlTensors.inputShape("Vol", "input:0", dims, v.length);
            input.numbers[0] = NmlTensors.numbers("Vol", "input:0", v, 18, shape);
        }
        ModelOutput memory result = OG_INFERENCE_CONTRACT.runModelInference(ModelInferenceRequest(MODE, CID, input));
        out.simulated = result.is_simulation_result;
        if (out.simulated) return out;
        {
            uint32[] memory dims = new uint32[](1);
            dims[0] = 1;
            TensorLib.MultiDimensionalNumberTensor memory t = NmlTensors.findNumbers(result.numbers, "Vol", "output.1");
            NmlTensors.checkShape("Vol", "output.1", dims, t.shape, t.values.length);
            for (uint256 k = 0; k < t.values.length; ++k) {
                out.vol[k] = NmlTensors.toFixed(t.values[k], 18, "Vol", "output.1", k);
            }
        }
    }
}

contract Pool {
    int256 public last;

    function named(int256[30] memory r) external returns (int256) {
        Vol.Output memory o = Vol.run(r);
        last = o.vol[0];
        return last;
    }

    function positional(int256[30] memory r) external returns (int256) {
        return (Vol.run(r)).vol[0];
    }
}

