// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {TensorLib} from "../og/TensorLib.sol";

/// @notice An input value does not fit the precompile's int128.
error NmlValueOutOfRange(string model, string tensor, uint256 index, int256 value);
/// @notice The model's output has no tensor of this name.
error NmlMissingOutput(string model, string tensor);
/// @notice A tensor's shape differs from its declaration (0 = any size).
error NmlShapeMismatch(string model, string tensor, uint32[] expected, uint32[] actual);
/// @notice An output value does not fit int256 at the declared decimals.
error NmlRescaleOverflow(string model, string tensor, uint256 index);

/// @title NmlTensors
/// @notice Helpers of the Solidity that nml generates for `model` declarations:
///         building request tensors, finding outputs by name, checking shapes and
///         rescaling fixed-point values.
library NmlTensors {
    /// @notice A numeric tensor from flat values at `decimals`; reverts with
    ///         `NmlValueOutOfRange` when a value does not fit int128.
    function numbers(
        string memory model,
        string memory tensor,
        int256[] memory values,
        int128 decimals,
        uint32[] memory shape
    ) internal pure returns (TensorLib.MultiDimensionalNumberTensor memory t) {
        t.name = tensor;
        t.shape = shape;
        t.values = new TensorLib.Number[](values.length);
        for (uint256 i = 0; i < values.length; ++i) {
            int256 v = values[i];
            if (v > type(int128).max || v < type(int128).min) revert NmlValueOutOfRange(model, tensor, i, v);
            t.values[i] = TensorLib.Number(int128(v), decimals);
        }
    }

    /// @notice The shape of an input with at most one dynamic (0) dim, given
    ///         its element count; reverts when the count does not fit.
    function inputShape(string memory model, string memory tensor, uint32[] memory dims, uint256 count)
        internal
        pure
        returns (uint32[] memory shape)
    {
        shape = new uint32[](dims.length);
        uint256 fixedCount = 1;
        uint256 dynamicAt = type(uint256).max;
        for (uint256 i = 0; i < dims.length; ++i) {
            shape[i] = dims[i];
            if (dims[i] == 0) dynamicAt = i;
            else fixedCount *= dims[i];
        }
        if (dynamicAt != type(uint256).max && fixedCount != 0 && count % fixedCount == 0) {
            shape[dynamicAt] = uint32(count / fixedCount);
        }
        uint256 total = 1;
        for (uint256 i = 0; i < shape.length; ++i) {
            total *= shape[i];
        }
        if (total != count) {
            uint32[] memory actual = new uint32[](1);
            actual[0] = uint32(count);
            revert NmlShapeMismatch(model, tensor, dims, actual);
        }
    }

    /// @notice The output tensor named `tensor`; reverts with `NmlMissingOutput`.
    function findNumbers(TensorLib.MultiDimensionalNumberTensor[] memory ts, string memory model, string memory tensor)
        internal
        pure
        returns (TensorLib.MultiDimensionalNumberTensor memory)
    {
        bytes32 h = keccak256(bytes(tensor));
        for (uint256 i = 0; i < ts.length; ++i) {
            if (keccak256(bytes(ts[i].name)) == h) return ts[i];
        }
        revert NmlMissingOutput(model, tensor);
    }

    /// @notice The string output named `tensor`; reverts with `NmlMissingOutput`.
    function findStrings(TensorLib.StringTensor[] memory ts, string memory model, string memory tensor)
        internal
        pure
        returns (TensorLib.StringTensor memory)
    {
        bytes32 h = keccak256(bytes(tensor));
        for (uint256 i = 0; i < ts.length; ++i) {
            if (keccak256(bytes(ts[i].name)) == h) return ts[i];
        }
        revert NmlMissingOutput(model, tensor);
    }

    /// @notice Checks an output's shape against its declaration (0 = any
    ///         size) and that the value count matches the shape.
    function checkShape(
        string memory model,
        string memory tensor,
        uint32[] memory expected,
        uint32[] memory actual,
        uint256 count
    ) internal pure {
        bool ok = expected.length == actual.length;
        uint256 total = 1;
        for (uint256 i = 0; ok && i < actual.length; ++i) {
            if (expected[i] != 0 && expected[i] != actual[i]) ok = false;
            total *= actual[i];
        }
        if (!ok || total != count) revert NmlShapeMismatch(model, tensor, expected, actual);
    }

    /// @notice Checks a string output's element count (0 = any count).
    function checkCount(string memory model, string memory tensor, uint256 expected, uint256 count) internal pure {
        if (expected != 0 && expected != count) {
            uint32[] memory e = new uint32[](1);
            e[0] = uint32(expected);
            uint32[] memory a = new uint32[](1);
            a[0] = uint32(count);
            revert NmlShapeMismatch(model, tensor, e, a);
        }
    }

    /// @notice `n` rescaled to `decimals`. Extra decimals are dropped,
    ///         rounding toward zero; missing ones are added exactly, and a
    ///         result beyond int256 reverts with `NmlRescaleOverflow`.
    function toFixed(TensorLib.Number memory n, int256 decimals, string memory model, string memory tensor, uint256 i)
        internal
        pure
        returns (int256)
    {
        int256 diff = decimals - int256(n.decimals);
        if (diff == 0 || n.value == 0) return n.value;
        if (diff < 0) {
            // 10**77 exceeds int128's range, so any larger drop yields zero.
            if (diff < -76) return 0;
            return int256(n.value) / int256(10 ** uint256(-diff));
        }
        if (diff > 76) revert NmlRescaleOverflow(model, tensor, i);
        int256 scale = int256(10 ** uint256(diff));
        int256 v = int256(n.value);
        if (v > type(int256).max / scale || v < type(int256).min / scale) revert NmlRescaleOverflow(model, tensor, i);
        return v * scale;
    }
}
