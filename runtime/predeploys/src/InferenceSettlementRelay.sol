// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Roles} from "./Roles.sol";

/// @title InferenceSettlementRelay
/// @notice Where the proofs of TEE inference results settle, predeployed by
///         the nml devnet at 0x0000000000000000000000000000000000005E77. The
///         relay role posts them asynchronously, after the results were used:
///         one record per result (`settleIndividual`) or the Merkle root of a
///         batch (`batchSettle`), whose leaves are OpenZeppelin
///         `StandardMerkleTree` leaves of `(bytes32 teeId, bytes32 inputHash,
///         bytes32 outputHash, bytes signature, uint256 timestamp)`. A contract
///         checks that a result has settled with `isSettled` or
///         `isSettledInBatch` (a leaf and its proof against a settled root).
contract InferenceSettlementRelay is Roles {
    bytes32 public constant SETTLEMENT_RELAY_ROLE = keccak256("SETTLEMENT_RELAY_ROLE");

    bool private initialized;
    /// When each individually settled result settled (block timestamp), by
    /// `keccak256(abi.encode(teeId, inputHash, outputHash, timestamp))`.
    mapping(bytes32 => uint256) public individualSettledAt;
    /// When each batch root settled (block timestamp).
    mapping(bytes32 => uint256) public batchSettledAt;

    event IndividualSettlement(
        bytes32 indexed teeId,
        bytes32 indexed inputHash,
        bytes32 outputHash,
        uint256 timestamp,
        address ethAddress,
        bytes blobId,
        bytes signature
    );
    event BatchSettlement(bytes32 indexed merkleRoot, uint256 batchSize, bytes blobId);

    function initialize(address admin, address relay) external {
        require(!initialized, "InferenceSettlementRelay: initialized");
        initialized = true;
        _grant(DEFAULT_ADMIN_ROLE, admin);
        _grant(SETTLEMENT_RELAY_ROLE, relay);
    }

    function settleIndividual(
        bytes32 teeId,
        bytes32 inputHash,
        bytes32 outputHash,
        uint256 timestamp,
        address ethAddress,
        bytes calldata blobId,
        bytes calldata signature
    ) external onlyRole(SETTLEMENT_RELAY_ROLE) {
        bytes32 key = keccak256(abi.encode(teeId, inputHash, outputHash, timestamp));
        require(individualSettledAt[key] == 0, "InferenceSettlementRelay: already settled");
        individualSettledAt[key] = block.timestamp;
        emit IndividualSettlement(teeId, inputHash, outputHash, timestamp, ethAddress, blobId, signature);
    }

    function batchSettle(bytes32 merkleRoot, uint256 batchSize, bytes calldata blobId)
        external
        onlyRole(SETTLEMENT_RELAY_ROLE)
    {
        require(batchSettledAt[merkleRoot] == 0, "InferenceSettlementRelay: already settled");
        batchSettledAt[merkleRoot] = block.timestamp;
        emit BatchSettlement(merkleRoot, batchSize, blobId);
    }

    /// @notice Whether the result was settled individually.
    function isSettled(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp)
        external
        view
        returns (bool)
    {
        return individualSettledAt[keccak256(abi.encode(teeId, inputHash, outputHash, timestamp))] != 0;
    }

    /// @notice The batch leaf of a result (OpenZeppelin `StandardMerkleTree`).
    function leafOf(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, bytes calldata signature, uint256 timestamp)
        public
        pure
        returns (bytes32)
    {
        return keccak256(bytes.concat(keccak256(abi.encode(teeId, inputHash, outputHash, signature, timestamp))));
    }

    /// @notice Whether `leaf` is in the tree of `root` (OpenZeppelin `MerkleProof`: sorted pairs).
    function verifyProof(bytes32[] calldata proof, bytes32 root, bytes32 leaf) public pure returns (bool) {
        bytes32 computed = leaf;
        for (uint256 i = 0; i < proof.length; i++) {
            bytes32 other = proof[i];
            computed = computed < other
                ? keccak256(abi.encodePacked(computed, other))
                : keccak256(abi.encodePacked(other, computed));
        }
        return computed == root;
    }

    /// @notice Whether `leaf` settled in the batch of `root`.
    function isSettledInBatch(bytes32[] calldata proof, bytes32 root, bytes32 leaf) external view returns (bool) {
        return batchSettledAt[root] != 0 && verifyProof(proof, root, leaf);
    }
}
