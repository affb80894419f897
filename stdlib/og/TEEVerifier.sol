// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ModelInferenceRequest, ModelOutput} from "./OGInference.sol";

/// @notice The TEE verifier precompile (PROTOCOL.md A2).
interface ITEEVerifier {
    /// @notice Whether `signature` is an RSA-PSS-SHA256 signature (salt 32) of
    ///         the 32 bytes of `messageHash` by `publicKeyDER` (DER
    ///         SubjectPublicKeyInfo, 2048–8192 bits). 20,000 gas.
    function verifyRSAPSS(bytes calldata publicKeyDER, bytes32 messageHash, bytes calldata signature)
        external
        view
        returns (bool);

    /// @notice Checks an AWS Nitro attestation document. 500,000 gas.
    function verifyAttestation(
        bytes calldata attestationDocument,
        bytes calldata signingPublicKey,
        bytes calldata tlsCertificate,
        bytes calldata rootCertificate
    ) external view returns (bool valid, bytes32 pcrHash);
}

ITEEVerifier constant TEE_VERIFIER = ITEEVerifier(0x0000000000000000000000000000000000000900);

/// @notice The attestation of one inference result and how to check it on
///         chain: an enclave signs `keccak256(inputHash ‖ outputHash ‖
///         uint256 timestamp)` with RSA-PSS; a verifier accepts a signature
///         at most 1 hour old and at most 5 minutes in the future.
library TEEAttestation {
    /// @notice The oldest an attestation may be.
    uint256 internal constant MAX_AGE = 1 hours;
    /// @notice How far ahead of the block an attestation may be.
    uint256 internal constant MAX_AHEAD = 5 minutes;

    /// @notice What an enclave signs.
    function messageHash(bytes32 input, bytes32 output, uint256 timestamp) internal pure returns (bytes32) {
        return keccak256(abi.encodePacked(input, output, timestamp));
    }

    /// @notice The input hash of a request through the inference precompile:
    ///         its request id, `keccak256(abi.encode(request))`.
    function inputHash(ModelInferenceRequest memory request) internal pure returns (bytes32) {
        return keccak256(abi.encode(request));
    }

    /// @notice The output hash of a result: `keccak256(abi.encode(output))`,
    ///         the hash of the precompile's return data.
    function outputHash(ModelOutput memory output) internal pure returns (bytes32) {
        return keccak256(abi.encode(output));
    }

    /// @notice Whether `timestamp` is inside the window around this block.
    function fresh(uint256 timestamp) internal view returns (bool) {
        return timestamp + MAX_AGE >= block.timestamp && timestamp <= block.timestamp + MAX_AHEAD;
    }

    /// @notice Whether the enclave with key `publicKeyDER` signed this result
    ///         recently enough.
    function verify(
        bytes memory publicKeyDER,
        bytes32 input,
        bytes32 output,
        uint256 timestamp,
        bytes memory signature
    ) internal view returns (bool) {
        return fresh(timestamp) && TEE_VERIFIER.verifyRSAPSS(publicKeyDER, messageHash(input, output, timestamp), signature);
    }
}

/// @notice The settlement relay predeployed by the nml devnet: where the
///         proofs of TEE results settle, some blocks after the results were
///         used (docs/verification.md).
interface ISettlementRelay {
    /// @notice Whether the result was settled by its own record.
    function isSettled(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp)
        external
        view
        returns (bool);

    /// @notice Whether `leaf` settled in the batch of `root`.
    function isSettledInBatch(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external view returns (bool);

    /// @notice A result's batch leaf (OpenZeppelin `StandardMerkleTree`).
    function leafOf(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, bytes calldata signature, uint256 timestamp)
        external
        pure
        returns (bytes32);
}

ISettlementRelay constant SETTLEMENT_RELAY = ISettlementRelay(address(uint160(0x5E77)));

/// @notice The views of the TEE registry a contract needs.
interface ITEERegistryViews {
    function isTEEActive(bytes32 teeId) external view returns (bool);
    function isTEEEnabled(bytes32 teeId) external view returns (bool);
    function getTEEPublicKey(bytes32 teeId) external view returns (bytes memory);
}

ITEERegistryViews constant TEE_REGISTRY = ITEERegistryViews(0x703cB174AEadB35D611858369B4b1111dC9Abda6);
