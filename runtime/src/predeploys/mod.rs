//! Contracts the devnet places at fixed addresses, as the chain it simulates
//! has them: each is our own Solidity in `runtime/predeploys/src/`, compiled by
//! nml's solc into the runtime bytecode committed here (the test
//! `tests/predeploys.rs` rebuilds it and fails when the two differ).
//!
//! The TEE registry, the settlement relay, and OpenGradient's inference hub
//! and workflow scheduler live here; the contracts of x402 payments (the OPG
//! token, Permit2 and x402's proxies) in [`payments`].
//!
//! A predeploy is installed on a new chain with its code and then set up by
//! [`SystemCall`]s: calls from [`SYSTEM_ADDRESS`] executed on the genesis
//! state outside any block, as EIP-4788's system calls are, so no account a
//! user holds spends a nonce and no block or transaction is added.

pub mod payments;

use std::sync::{Arc, LazyLock};

use alloy_primitives::{Address, B256, Bytes, address, keccak256};
use alloy_sol_types::{SolCall, sol};

use crate::tee::Enclave;
use crate::tee::nitro::devnet_pcrs;

/// The TEE registry's address (where OpenGradient's SDK reads it).
pub const TEE_REGISTRY: Address = address!("703cB174AEadB35D611858369B4b1111dC9Abda6");

/// The settlement relay's address (a devnet choice: the SDK names none).
pub const SETTLEMENT_RELAY: Address = address!("0000000000000000000000000000000000005E77");

/// OpenGradient's inference hub (where the SDK's `og.Alpha.infer` sends
/// its transactions).
pub const INFERENCE_HUB: Address = address!("8383C9bD7462F12Eb996DD02F78234C0421A6FaE");

/// OpenGradient's workflow scheduler (where the SDK's `new_workflow`
/// registers a task).
pub const WORKFLOW_SCHEDULER: Address = address!("7179724De4e7FF9271FA40C0337c7f90C0508eF6");

/// The caller of the devnet's system calls (EIP-4788's system address).
pub const SYSTEM_ADDRESS: Address = address!("fffffffffffffffffffffffffffffffffffffffe");

/// The gas each [`SystemCall`] may use: set-up is not bound by the block gas
/// limit (about 2.5 million OPG holders at genesis).
pub const SYSTEM_CALL_GAS: u64 = 1 << 36;

/// The TEE type of the devnet's enclaves: validators (they attest on-chain
/// inference; type 0 is the LLM proxy of the gateway).
pub const TEE_TYPE_VALIDATOR: u8 = 1;

sol! {
    /// The TEE registry (`runtime/predeploys/src/TEERegistry.sol`).
    interface ITEERegistry {
        struct OhttpConfig { uint8 keyId; uint16 kemId; uint16 kdfId; uint16 aeadId; bytes publicKey; bytes keyConfig; uint256 registeredAt; }
        struct TEEInfo { address owner; address paymentAddress; string endpoint; bytes publicKey; bytes tlsCertificate; bytes32 pcrHash; uint8 teeType; bool enabled; uint256 registeredAt; uint256 lastHeartbeatAt; OhttpConfig ohttpConfig; }
        struct PCRMeasurements { bytes pcr0; bytes pcr1; bytes pcr2; }

        function initialize(address admin, address operator, bytes root) external;
        function grantRole(bytes32 role, address account) external;
        function hasRole(bytes32 role, address account) external view returns (bool);
        function addTEEType(uint8 teeType, string name) external;
        function approvePCR(PCRMeasurements pcrs, string version, uint8 teeType) external returns (bytes32);
        function revokePCR(bytes32 pcrHash) external;
        function registerTEEWithAttestation(bytes attestationDocument, bytes signingPublicKey, bytes tlsCertificate, address paymentAddress, string endpoint, uint8 teeType) external returns (bytes32);
        function heartbeat(bytes32 teeId, uint256 timestamp, bytes signature) external;
        function setOhttpConfig(bytes32 teeId, bytes keyConfig, bytes signature) external;
        function disableTEE(bytes32 teeId) external;
        function enableTEE(bytes32 teeId) external;
        function getTEE(bytes32 teeId) external view returns (TEEInfo memory);
        function getActiveTEEs(uint8 teeType) external view returns (TEEInfo[] memory);
        function getEnabledTEEs(uint8 teeType) external view returns (bytes32[] memory);
        function getTEEsByType(uint8 teeType) external view returns (bytes32[] memory);
        function isTEEActive(bytes32 teeId) external view returns (bool);
        function isTEEEnabled(bytes32 teeId) external view returns (bool);
        function approvedPCRs(bytes32 pcrHash) external view returns (bool approved, bool revoked, uint8 teeType, string version);
    }
}

sol! {
    /// The settlement relay (`runtime/predeploys/src/InferenceSettlementRelay.sol`).
    interface ISettlementRelay {
        function initialize(address admin, address relay) external;
        function hasRole(bytes32 role, address account) external view returns (bool);
        function grantRole(bytes32 role, address account) external;
        function settleIndividual(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp, address ethAddress, bytes blobId, bytes signature) external;
        function batchSettle(bytes32 merkleRoot, uint256 batchSize, bytes blobId) external;
        function isSettled(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp) external view returns (bool);
        function leafOf(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, bytes signature, uint256 timestamp) external pure returns (bytes32);
        function verifyProof(bytes32[] proof, bytes32 root, bytes32 leaf) external pure returns (bool);
        function isSettledInBatch(bytes32[] proof, bytes32 root, bytes32 leaf) external view returns (bool);
        function batchSettledAt(bytes32 root) external view returns (uint256);
        function individualSettledAt(bytes32 key) external view returns (uint256);
    }
}

/// The inference hub's runtime bytecode (`runtime/predeploys/src/InferenceHub.sol`;
/// it needs no set-up).
pub fn inference_hub_code() -> Bytes {
    static CODE: LazyLock<Bytes> = LazyLock::new(|| {
        alloy_primitives::hex::decode(include_str!("InferenceHub.hex").trim()).unwrap_or_default().into()
    });
    CODE.clone()
}

sol! {
    /// The workflow scheduler (`runtime/predeploys/src/WorkflowScheduler.sol`).
    interface IWorkflowScheduler {
        struct Task { address contractAddress; address owner; uint256 endTime; uint256 frequency; uint256 nextRun; uint256 lastRun; uint256 runs; uint256 failures; bytes lastError; }

        function initialize(address executor) external;
        function registerTask(address contractAddress, uint256 endTime, uint256 frequency) external;
        function taskCount() external view returns (uint256);
        function dueTasks() external view returns (uint256[] memory ids);
        function dueTasksIn(uint256 from, uint256 to) external view returns (uint256[] memory ids);
        function execute(uint256 id) external;
        function getTasks() external view returns (Task[] memory);
        function getTasksIn(uint256 from, uint256 to) external view returns (Task[] memory page);
    }
}

/// The scheduler's runtime bytecode.
pub fn workflow_scheduler_code() -> Bytes {
    static CODE: LazyLock<Bytes> = LazyLock::new(|| {
        alloy_primitives::hex::decode(include_str!("WorkflowScheduler.hex").trim()).unwrap_or_default().into()
    });
    CODE.clone()
}

/// The system call that makes `executor` the scheduler's runner.
pub fn workflow_scheduler_setup(executor: Address) -> Vec<SystemCall> {
    vec![SystemCall::new(WORKFLOW_SCHEDULER, IWorkflowScheduler::initializeCall { executor })]
}

/// The relay's runtime bytecode.
pub fn settlement_relay_code() -> Bytes {
    static CODE: LazyLock<Bytes> = LazyLock::new(|| {
        alloy_primitives::hex::decode(include_str!("InferenceSettlementRelay.hex").trim()).unwrap_or_default().into()
    });
    CODE.clone()
}

/// The system call that sets the relay up: `admin` holds its admin role and
/// `relay` its relay role.
pub fn settlement_relay_setup(admin: Address, relay: Address) -> Vec<SystemCall> {
    vec![SystemCall::new(SETTLEMENT_RELAY, ISettlementRelay::initializeCall { admin, relay })]
}

/// The registry's runtime bytecode.
pub fn tee_registry_code() -> Bytes {
    static CODE: LazyLock<Bytes> = LazyLock::new(|| {
        alloy_primitives::hex::decode(include_str!("TEERegistry.hex").trim()).unwrap_or_default().into()
    });
    CODE.clone()
}

/// A call from [`SYSTEM_ADDRESS`] outside any block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemCall {
    /// The contract called.
    pub to: Address,
    /// The calldata.
    pub data: Bytes,
}

impl SystemCall {
    fn new(to: Address, call: impl SolCall) -> Self {
        Self { to, data: call.abi_encode().into() }
    }
}

/// The payment address of enclave `tee` (made from its id).
pub fn payment_address(tee: B256) -> Address {
    Address::from_slice(&keccak256([b"nml devnet enclave payment".as_slice(), tee.as_slice()].concat())[12..])
}

/// Where enclave `index` says it is served (the devnet serves no enclave
/// over the network yet).
pub fn endpoint(index: usize) -> String {
    format!("nml-devnet://enclave-{index}")
}

/// The system call that approves the image with `pcrs` for `tee_type`.
fn approve_pcrs(pcrs: &[[u8; 48]; 3], version: &str, tee_type: u8) -> SystemCall {
    SystemCall::new(
        TEE_REGISTRY,
        ITEERegistry::approvePCRCall {
            pcrs: ITEERegistry::PCRMeasurements {
                pcr0: pcrs[0].to_vec().into(),
                pcr1: pcrs[1].to_vec().into(),
                pcr2: pcrs[2].to_vec().into(),
            },
            version: version.into(),
            teeType: tee_type,
        },
    )
}

/// The TEE type of an LLM proxy (the gateway) in the registry.
pub const TEE_TYPE_LLM_PROXY: u8 = 0;

/// The system calls that register `enclave` as an LLM proxy (a gateway)
/// served at `endpoint` with `tls_certificate`, under `document`: its image
/// (the gateway's PCRs) approved for the type, then the registration, then
/// its Oblivious HTTP key configuration (RFC 9458 §3.1) when it has one,
/// signed by the enclave as the registry requires.
pub fn llm_proxy_registration(
    enclave: &Enclave,
    tls_certificate: Bytes,
    document: Bytes,
    endpoint: String,
    ohttp_key_config: Option<Bytes>,
) -> Result<Vec<SystemCall>, crate::tee::TeeError> {
    let mut calls = vec![
        approve_pcrs(&crate::tee::nitro::gateway_pcrs(), "nml-gateway", TEE_TYPE_LLM_PROXY),
        SystemCall::new(
            TEE_REGISTRY,
            ITEERegistry::registerTEEWithAttestationCall {
                attestationDocument: document,
                signingPublicKey: enclave.public_key().clone(),
                tlsCertificate: tls_certificate,
                paymentAddress: payment_address(enclave.id()),
                endpoint,
                teeType: TEE_TYPE_LLM_PROXY,
            },
        ),
    ];
    if let Some(key_config) = ohttp_key_config {
        let tag = keccak256("TEERegistry.OhttpConfig");
        let message = keccak256([tag.as_slice(), enclave.id().as_slice(), &key_config].concat());
        let signature = enclave.sign(message.as_slice())?;
        calls.push(SystemCall::new(
            TEE_REGISTRY,
            ITEERegistry::setOhttpConfigCall { teeId: enclave.id(), keyConfig: key_config, signature },
        ));
    }
    Ok(calls)
}

/// The calldata of `enclave`'s heartbeat at unix time `timestamp`: its
/// RSA-PSS signature over `keccak256(teeId ‖ uint256 timestamp)`.
pub fn heartbeat_call(enclave: &Enclave, timestamp: u64) -> Result<Bytes, crate::tee::TeeError> {
    let message =
        keccak256([enclave.id().as_slice(), &alloy_primitives::U256::from(timestamp).to_be_bytes::<32>()].concat());
    let signature = enclave.sign(message.as_slice())?;
    Ok(ITEERegistry::heartbeatCall {
        teeId: enclave.id(),
        timestamp: alloy_primitives::U256::from(timestamp),
        signature,
    }
    .abi_encode()
    .into())
}

/// The system calls that set the registry up: `admin` holds the admin and
/// operator roles, the devnet's enclave image is approved for validators,
/// and every enclave is registered with its attestation document.
pub fn tee_registry_setup(admin: Address, enclaves: &[Arc<Enclave>]) -> Vec<SystemCall> {
    let root = enclaves.first().map(|e| e.root_certificate().clone()).unwrap_or_default();
    let pcrs = devnet_pcrs();
    let mut calls = vec![
        SystemCall::new(
            TEE_REGISTRY,
            ITEERegistry::initializeCall { admin: SYSTEM_ADDRESS, operator: SYSTEM_ADDRESS, root },
        ),
        SystemCall::new(TEE_REGISTRY, ITEERegistry::grantRoleCall { role: B256::ZERO, account: admin }),
        SystemCall::new(TEE_REGISTRY, ITEERegistry::grantRoleCall { role: keccak256("TEE_OPERATOR"), account: admin }),
        SystemCall::new(
            TEE_REGISTRY,
            ITEERegistry::addTEETypeCall { teeType: TEE_TYPE_LLM_PROXY, name: "LLMProxy".into() },
        ),
        SystemCall::new(
            TEE_REGISTRY,
            ITEERegistry::addTEETypeCall { teeType: TEE_TYPE_VALIDATOR, name: "Validator".into() },
        ),
        approve_pcrs(&pcrs, "nml-devnet", TEE_TYPE_VALIDATOR),
    ];
    for (index, enclave) in enclaves.iter().enumerate() {
        calls.push(SystemCall::new(
            TEE_REGISTRY,
            ITEERegistry::registerTEEWithAttestationCall {
                attestationDocument: enclave.attestation_document().clone(),
                signingPublicKey: enclave.public_key().clone(),
                tlsCertificate: enclave.tls_certificate().clone(),
                paymentAddress: payment_address(enclave.id()),
                endpoint: endpoint(index),
                teeType: TEE_TYPE_VALIDATOR,
            },
        ));
    }
    calls
}
