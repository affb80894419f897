// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title TensorLib
/// @notice The tensor types of the on-chain inference precompile (ABI-identical
///         to OpenGradient's published `TensorLib`). Numbers are fixed point:
///         1.5 is `Number(15, 1)`. Tensor values are flat, row-major.
library TensorLib {
    /// @notice A fixed-point number: `value * 10**-decimals`.
    struct Number {
        int128 value;
        int128 decimals;
    }

    /// @notice A named numeric tensor with its shape.
    struct MultiDimensionalNumberTensor {
        string name;
        Number[] values;
        uint32[] shape;
    }

    /// @notice A named string tensor (flat).
    struct StringTensor {
        string name;
        string[] values;
    }

    /// @notice A named JSON value returned by a model.
    struct JsonScalar {
        string name;
        string value;
    }
}
