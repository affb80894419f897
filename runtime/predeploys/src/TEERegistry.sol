// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ITEEVerifier, TEE_VERIFIER} from "@nml/og/TEEVerifier.sol";
import {Roles} from "./Roles.sol";

/// @title TEERegistry
/// @notice The registry of trusted execution environments, predeployed by the
///         nml devnet at 0x703cB174AEadB35D611858369B4b1111dC9Abda6 (where
///         OpenGradient's SDK reads it). Its views have the ABI of the SDK's
///         `TEERegistry.abi`; registration checks an attestation document
///         through the verifier precompile at 0x…0900. A TEE is active while it
///         is enabled, its PCRs are not revoked and its last heartbeat is at most
///         `HEARTBEAT_TIMEOUT` old.
contract TEERegistry is Roles {
    struct OhttpConfig {
        uint8 keyId;
        uint16 kemId;
        uint16 kdfId;
        uint16 aeadId;
        bytes publicKey;
        bytes keyConfig;
        uint256 registeredAt;
    }

    struct TEEInfo {
        address owner;
        address paymentAddress;
        string endpoint;
        bytes publicKey;
        bytes tlsCertificate;
        bytes32 pcrHash;
        uint8 teeType;
        bool enabled;
        uint256 registeredAt;
        uint256 lastHeartbeatAt;
        OhttpConfig ohttpConfig;
    }

    struct PCRMeasurements {
        bytes pcr0;
        bytes pcr1;
        bytes pcr2;
    }

    struct ApprovedPCR {
        bool approved;
        bool revoked;
        uint8 teeType;
        string version;
    }

    bytes32 public constant TEE_OPERATOR = keccak256("TEE_OPERATOR");
    /// A TEE whose last heartbeat is older than this is inactive.
    uint256 public constant HEARTBEAT_TIMEOUT = 1800;
    /// How old and how far ahead a heartbeat's timestamp may be.
    uint256 public constant MAX_HEARTBEAT_AGE = 1 hours;
    uint256 public constant MAX_HEARTBEAT_AHEAD = 5 minutes;
    ITEEVerifier public constant VERIFIER = TEE_VERIFIER;
    /// What an OHTTP key configuration's signed message starts with.
    bytes32 public constant OHTTP_CONFIG_TAG = keccak256("TEERegistry.OhttpConfig");

    bool private initialized;
    bytes public rootCertificate;
    mapping(uint8 => string) public teeTypeNames;
    mapping(uint8 => bool) public teeTypeExists;
    mapping(bytes32 => ApprovedPCR) public approvedPCRs;
    mapping(bytes32 => TEEInfo) private tees;
    bytes32[] private teeIds;

    event TEETypeAdded(uint8 indexed teeType, string name);
    event PCRApproved(bytes32 indexed pcrHash, string version, uint8 teeType);
    event PCRRevoked(bytes32 indexed pcrHash);
    event TEERegistered(bytes32 indexed teeId, address indexed owner, uint8 teeType, bytes32 pcrHash);
    event TEEDisabled(bytes32 indexed teeId);
    event TEEEnabled(bytes32 indexed teeId);
    event HeartbeatReceived(bytes32 indexed teeId, uint256 timestamp);
    event OhttpConfigSet(bytes32 indexed teeId, uint8 keyId);

    /// @notice Sets the first admin and operator and the root certificate
    ///         documents must chain to; once.
    function initialize(address admin, address operator, bytes calldata root) external {
        require(!initialized, "TEERegistry: initialized");
        initialized = true;
        _grant(DEFAULT_ADMIN_ROLE, admin);
        _grant(TEE_OPERATOR, admin);
        _grant(TEE_OPERATOR, operator);
        rootCertificate = root;
    }

    function setRootCertificate(bytes calldata root) external onlyRole(DEFAULT_ADMIN_ROLE) {
        rootCertificate = root;
    }

    function addTEEType(uint8 teeType, string calldata name) external onlyRole(DEFAULT_ADMIN_ROLE) {
        teeTypeExists[teeType] = true;
        teeTypeNames[teeType] = name;
        emit TEETypeAdded(teeType, name);
    }

    /// @notice Approves an enclave image for a TEE type.
    function approvePCR(PCRMeasurements calldata pcrs, string calldata version, uint8 teeType)
        external
        onlyRole(DEFAULT_ADMIN_ROLE)
        returns (bytes32 pcrHash)
    {
        require(teeTypeExists[teeType], "TEERegistry: unknown TEE type");
        pcrHash = keccak256(abi.encodePacked(pcrs.pcr0, pcrs.pcr1, pcrs.pcr2));
        approvedPCRs[pcrHash] = ApprovedPCR(true, false, teeType, version);
        emit PCRApproved(pcrHash, version, teeType);
    }

    /// @notice Revokes an image: every TEE running it is disabled.
    function revokePCR(bytes32 pcrHash) external onlyRole(DEFAULT_ADMIN_ROLE) {
        approvedPCRs[pcrHash].revoked = true;
        emit PCRRevoked(pcrHash);
        for (uint256 i = 0; i < teeIds.length; i++) {
            TEEInfo storage tee = tees[teeIds[i]];
            if (tee.pcrHash == pcrHash && tee.enabled) {
                tee.enabled = false;
                emit TEEDisabled(teeIds[i]);
            }
        }
    }

    /// @notice Registers the TEE whose attestation document binds
    ///         `signingPublicKey` and `tlsCertificate` under the root
    ///         certificate, running an approved image of `teeType`.
    function registerTEEWithAttestation(
        bytes calldata attestationDocument,
        bytes calldata signingPublicKey,
        bytes calldata tlsCertificate,
        address paymentAddress,
        string calldata endpoint,
        uint8 teeType
    ) external onlyRole(TEE_OPERATOR) returns (bytes32 teeId) {
        (bool valid, bytes32 pcrHash) =
            VERIFIER.verifyAttestation(attestationDocument, signingPublicKey, tlsCertificate, rootCertificate);
        require(valid, "TEERegistry: attestation document refused");
        ApprovedPCR storage image = approvedPCRs[pcrHash];
        require(image.approved && !image.revoked && image.teeType == teeType, "TEERegistry: PCRs not approved");
        teeId = keccak256(signingPublicKey);
        require(tees[teeId].registeredAt == 0, "TEERegistry: already registered");
        TEEInfo storage tee = tees[teeId];
        tee.owner = msg.sender;
        tee.paymentAddress = paymentAddress;
        tee.endpoint = endpoint;
        tee.publicKey = signingPublicKey;
        tee.tlsCertificate = tlsCertificate;
        tee.pcrHash = pcrHash;
        tee.teeType = teeType;
        tee.enabled = true;
        tee.registeredAt = block.timestamp;
        tee.lastHeartbeatAt = block.timestamp;
        teeIds.push(teeId);
        emit TEERegistered(teeId, msg.sender, teeType, pcrHash);
    }

    /// @notice A heartbeat signed by the enclave: RSA-PSS over
    ///         `keccak256(abi.encodePacked(teeId, timestamp))`.
    function heartbeat(bytes32 teeId, uint256 timestamp, bytes calldata signature) external {
        TEEInfo storage tee = tees[teeId];
        require(tee.registeredAt != 0, "TEERegistry: unknown TEE");
        require(
            timestamp + MAX_HEARTBEAT_AGE >= block.timestamp && timestamp <= block.timestamp + MAX_HEARTBEAT_AHEAD,
            "TEERegistry: heartbeat timestamp out of range"
        );
        require(timestamp > tee.lastHeartbeatAt, "TEERegistry: heartbeat not newer");
        bytes32 message = keccak256(abi.encodePacked(teeId, timestamp));
        require(VERIFIER.verifyRSAPSS(tee.publicKey, message, signature), "TEERegistry: bad heartbeat signature");
        tee.lastHeartbeatAt = timestamp;
        emit HeartbeatReceived(teeId, timestamp);
    }

    /// @notice Publishes the TEE's Oblivious HTTP key configuration (RFC 9458
    ///         §3.1: key id, KEM, public key, then KDF/AEAD pairs; the first
    ///         pair is recorded), signed by the enclave: RSA-PSS over
    ///         `keccak256(abi.encodePacked(OHTTP_CONFIG_TAG, teeId, keyConfig))`
    ///         (the tag keeps it apart from every other message the enclave
    ///         signs), so no operator
    ///         can put a key of its own in front of the enclave's. Only
    ///         DHKEM(X25519, HKDF-SHA256) keys (32 bytes).
    function setOhttpConfig(bytes32 teeId, bytes calldata keyConfig, bytes calldata signature) external {
        TEEInfo storage tee = tees[teeId];
        require(tee.registeredAt != 0, "TEERegistry: unknown TEE");
        require(msg.sender == tee.owner || hasRole(DEFAULT_ADMIN_ROLE, msg.sender), "TEERegistry: not owner or admin");
        require(keyConfig.length >= 41, "TEERegistry: OHTTP key config too short");
        uint16 kemId = uint16(bytes2(keyConfig[1:3]));
        require(kemId == 0x0020, "TEERegistry: OHTTP KEM is not X25519");
        uint256 suites = uint16(bytes2(keyConfig[35:37]));
        require(suites >= 4 && suites % 4 == 0 && keyConfig.length == 37 + suites, "TEERegistry: malformed OHTTP key config");
        bytes32 message = keccak256(abi.encodePacked(OHTTP_CONFIG_TAG, teeId, keyConfig));
        require(VERIFIER.verifyRSAPSS(tee.publicKey, message, signature), "TEERegistry: bad OHTTP config signature");
        uint8 keyId = uint8(keyConfig[0]);
        tee.ohttpConfig = OhttpConfig({
            keyId: keyId,
            kemId: kemId,
            kdfId: uint16(bytes2(keyConfig[37:39])),
            aeadId: uint16(bytes2(keyConfig[39:41])),
            publicKey: keyConfig[3:35],
            keyConfig: keyConfig,
            registeredAt: block.timestamp
        });
        emit OhttpConfigSet(teeId, keyId);
    }

    function disableTEE(bytes32 teeId) external {
        TEEInfo storage tee = tees[teeId];
        require(tee.registeredAt != 0, "TEERegistry: unknown TEE");
        require(msg.sender == tee.owner || hasRole(DEFAULT_ADMIN_ROLE, msg.sender), "TEERegistry: not owner or admin");
        tee.enabled = false;
        emit TEEDisabled(teeId);
    }

    function enableTEE(bytes32 teeId) external {
        TEEInfo storage tee = tees[teeId];
        require(tee.registeredAt != 0, "TEERegistry: unknown TEE");
        require(msg.sender == tee.owner || hasRole(DEFAULT_ADMIN_ROLE, msg.sender), "TEERegistry: not owner or admin");
        require(!approvedPCRs[tee.pcrHash].revoked, "TEERegistry: PCRs revoked");
        tee.enabled = true;
        emit TEEEnabled(teeId);
    }

    function getTEE(bytes32 teeId) external view returns (TEEInfo memory) {
        return tees[teeId];
    }

    function getTEEPublicKey(bytes32 teeId) external view returns (bytes memory) {
        return tees[teeId].publicKey;
    }

    function isTEEEnabled(bytes32 teeId) public view returns (bool) {
        return tees[teeId].enabled;
    }

    function isTEEActive(bytes32 teeId) public view returns (bool) {
        TEEInfo storage tee = tees[teeId];
        return tee.enabled && !approvedPCRs[tee.pcrHash].revoked
            && block.timestamp <= tee.lastHeartbeatAt + HEARTBEAT_TIMEOUT;
    }

    function getTEEsByType(uint8 teeType) external view returns (bytes32[] memory ids) {
        return _select(teeType, 0);
    }

    function getEnabledTEEs(uint8 teeType) external view returns (bytes32[] memory) {
        return _select(teeType, 1);
    }

    function getActiveTEEs(uint8 teeType) external view returns (TEEInfo[] memory active) {
        bytes32[] memory ids = _select(teeType, 2);
        active = new TEEInfo[](ids.length);
        for (uint256 i = 0; i < ids.length; i++) {
            active[i] = tees[ids[i]];
        }
    }

    /// The TEEs of a type: all (0), enabled (1) or active (2).
    function _select(uint8 teeType, uint8 which) private view returns (bytes32[] memory ids) {
        ids = new bytes32[](teeIds.length);
        uint256 n = 0;
        for (uint256 i = 0; i < teeIds.length; i++) {
            bytes32 id = teeIds[i];
            if (tees[id].teeType != teeType) continue;
            if (which == 1 && !isTEEEnabled(id)) continue;
            if (which == 2 && !isTEEActive(id)) continue;
            ids[n++] = id;
        }
        assembly {
            mstore(ids, n)
        }
    }
}
