//! The gateway in a chain's TEE registry, over JSON-RPC like any operator:
//! registered as an LLM proxy (its image approved, its attestation
//! document, TLS certificate and endpoint, its Oblivious HTTP key signed by
//! the enclave), then kept active with heartbeats the enclave signs. This
//! is what `nml gateway --register` does against a devnet; `nml devnet
//! --gateway` does the same in process.
//!
//! The attestation document is issued by the devnet's PKI for the seed the
//! devnet was started with, so the registry accepts it only when the
//! gateway's `--tee-seed` is the devnet's.

use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes};
use alloy_sol_types::SolCall;
use nml_runtime::predeploys::{ITEERegistry, TEE_REGISTRY, heartbeat_call, llm_proxy_registration};
use nml_runtime::tee::Enclave;
use nml_runtime::tee::nitro::{DevnetPki, gateway_pcrs};
use parking_lot::Mutex;

use crate::chain::{ChainAccount, ChainError};
use crate::ohttp::OhttpKey;

/// Gas for one registration step (the attestation's check costs 500k).
const REGISTRATION_GAS: u64 = 3_000_000;
/// Gas for a heartbeat.
const HEARTBEAT_GAS: u64 = 200_000;
/// How often the enclave's heartbeat is sent, in wall-clock time (the
/// registry's timeout is 30 minutes of chain time).
pub const HEARTBEAT_PERIOD: Duration = Duration::from_secs(60);

/// Why the gateway could not be registered, or keep its registration.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// The chain has no TEE registry.
    #[error("the chain has no TEE registry at {TEE_REGISTRY} (start it with `nml devnet`)")]
    NoRegistry,
    /// The enclave is registered, with another endpoint or certificate.
    #[error(
        "the enclave {tee_id} is registered already, at {endpoint}: serve it there, or pick another enclave \
         with --tee-index"
    )]
    RegisteredElsewhere {
        /// The enclave's id.
        tee_id: B256,
        /// The endpoint the registry holds.
        endpoint: String,
    },
    /// The devnet's PKI or the enclave could not make the document or a
    /// signature.
    #[error("the enclave's attestation: {0}")]
    Attestation(String),
    /// A registry call was refused (the revert's reason), or could not be sent.
    #[error("{step}: {source}")]
    Refused {
        /// What was being done.
        step: &'static str,
        /// Why it failed.
        source: ChainError,
    },
}

/// A registration: what keeps it alive.
#[derive(Debug)]
pub struct Registration {
    account: std::sync::Arc<ChainAccount>,
    enclave: std::sync::Arc<Enclave>,
    /// The last heartbeat's timestamp: each must be newer.
    last_beat: Mutex<u64>,
}

impl Registration {
    /// Registers `enclave` (index `index` of `seed`) as an LLM proxy at
    /// `endpoint` with `tls_certificate` and `ohttp`'s key, through
    /// `operator` (who holds the registry's admin and operator roles: on a
    /// devnet, its dev account 0). An enclave registered already at this
    /// endpoint with this certificate is kept as it is. Heartbeats go out
    /// through `account` (any account: they carry the enclave's signature).
    pub fn register(
        operator: &ChainAccount,
        account: std::sync::Arc<ChainAccount>,
        enclave: std::sync::Arc<Enclave>,
        (seed, index): (u64, u32),
        tls_certificate: &[u8],
        endpoint: &str,
        ohttp: &OhttpKey,
    ) -> Result<Self, RegistrationError> {
        let refused = |step| move |source| RegistrationError::Refused { step, source };
        let code = operator.code(TEE_REGISTRY).map_err(refused("reading the registry"))?;
        if code.is_empty() {
            return Err(RegistrationError::NoRegistry);
        }
        let known = operator
            .call(TEE_REGISTRY, ITEERegistry::getTEECall { teeId: enclave.id() }.abi_encode())
            .map_err(refused("reading the registry"))?;
        let known = ITEERegistry::getTEECall::abi_decode_returns(&known)
            .map_err(|_| refused("reading the registry")(ChainError::BadAnswer("getTEE")))?;
        if !known.registeredAt.is_zero() {
            if known.endpoint != endpoint || known.tlsCertificate[..] != *tls_certificate {
                return Err(RegistrationError::RegisteredElsewhere { tee_id: enclave.id(), endpoint: known.endpoint });
            }
        } else {
            let attestation = |e: String| RegistrationError::Attestation(e);
            let document = DevnetPki::from_seed(seed)
                .and_then(|pki| pki.document(seed, index, &gateway_pcrs(), enclave.public_key(), tls_certificate))
                .map_err(attestation)?;
            let calls = llm_proxy_registration(
                &enclave,
                Bytes::copy_from_slice(tls_certificate),
                document,
                endpoint.to_owned(),
                Some(ohttp.key_config().into()),
            )
            .map_err(|e| attestation(e.to_string()))?;
            let steps = ["approving the gateway's image", "registering the enclave", "publishing its OHTTP key"];
            for (call, step) in calls.iter().zip(steps) {
                // Tried first, so that a refusal names the registry's reason.
                operator.call(call.to, call.data.to_vec()).map_err(refused(step))?;
                operator.send(call.to, call.data.to_vec(), REGISTRATION_GAS).map_err(refused(step))?;
            }
        }
        let last_beat = Mutex::new(known.lastHeartbeatAt.saturating_to());
        Ok(Self { account, enclave, last_beat })
    }

    /// The registered enclave's id.
    pub fn tee_id(&self) -> B256 {
        self.enclave.id()
    }

    /// Sends one heartbeat (blocking), dated by the chain's latest block.
    pub fn beat(&self) -> Result<(), RegistrationError> {
        let refused = |source| RegistrationError::Refused { step: "sending a heartbeat", source };
        let mut last = self.last_beat.lock();
        let now = self.account.latest_timestamp().map_err(refused)?.max(last.saturating_add(1));
        let call = heartbeat_call(&self.enclave, now).map_err(|e| RegistrationError::Attestation(e.to_string()))?;
        self.account.send(TEE_REGISTRY, call.to_vec(), HEARTBEAT_GAS).map_err(refused)?;
        *last = now;
        Ok(())
    }

    /// The account heartbeats are sent from.
    pub fn sender(&self) -> Address {
        self.account.address()
    }
}
