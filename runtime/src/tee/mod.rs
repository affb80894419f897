//! Simulated trusted execution environments (PROTOCOL.md A2): the enclaves
//! that attest TEE-mode inference results with real RSA-PSS signatures, and
//! the verifier precompile at 0x…0900 that checks such signatures on chain.
//!
//! The rooms: `enclave`, the enclaves' keys and what they sign; `nitro`,
//! attestation documents; `faults`, what the devnet can make go wrong;
//! `verifier`, the precompile. What a result's attestation says and how its
//! hashes are defined is [`Attestation`]'s doc.

mod enclave;
pub mod faults;
pub mod nitro;
pub mod verifier;

pub use enclave::{Attestation, Enclave, Enclaves, TeeError, keep_keys_in, message_hash};

/// The index of the gateway's enclave among a seed's enclaves: apart from
/// the devnet's own (`--tees` counts from 0), so its key and id are its own.
pub const GATEWAY_ENCLAVE: u32 = 1_000;
pub use faults::{Fault, Faults};
pub use verifier::{TEE_VERIFIER, verify_rsa_pss};
