//! The TEE verifier precompile at `0x0000000000000000000000000000000000000900`
//! (PROTOCOL.md A2): `verifyRSAPSS(bytes publicKeyDER, bytes32 messageHash,
//! bytes signature) returns (bool)`, 20,000 gas, DER SubjectPublicKeyInfo
//! keys of 2048–8192 bits (at most 8 KiB), signatures of at most 1 KiB.
//! PSS with SHA-256 and a 32-byte salt, over the 32 bytes of
//! `messageHash` as the message (as OpenGradient's SDK verifies: the hash is
//! hashed again by PSS). Malformed keys and signatures answer `false`;
//! calldata that is not the ABI of a function here reverts with a reason.
//!
//! `verifyAttestation(bytes attestationDocument, bytes signingPublicKey,
//! bytes tlsCertificate, bytes rootCertificate) returns (bool valid, bytes32
//! pcrHash)`, 500,000 gas: [`verify_attestation`] at the block's time; a
//! refused document answers `(false, 0)`.

use alloy_primitives::{Address, B256, Bytes, address};
use alloy_sol_types::{Revert, SolCall, SolError, sol};
use aws_lc_rs::signature::{RSA_PSS_2048_8192_SHA256, UnparsedPublicKey};
use revm::interpreter::{Gas, InstructionResult, InterpreterResult};
use spki::SubjectPublicKeyInfoRef;
use spki::der::Decode;

use super::nitro::verify_attestation;

/// The verifier precompile's address.
pub const TEE_VERIFIER: Address = address!("0000000000000000000000000000000000000900");

/// Gas of `verifyRSAPSS`.
pub const GAS_VERIFY_RSA_PSS: u64 = 20_000;
/// Gas of `verifyAttestation`.
pub const GAS_VERIFY_ATTESTATION: u64 = 500_000;
/// The largest public key `verifyRSAPSS` takes, in bytes.
pub const MAX_KEY_BYTES: usize = 8 * 1024;
/// The largest signature `verifyRSAPSS` takes, in bytes.
pub const MAX_SIGNATURE_BYTES: usize = 1024;

sol! {
    /// The verifier precompile's interface.
    interface ITEEVerifier {
        /// Whether `signature` is an RSA-PSS-SHA256 signature (salt 32) of `messageHash` by `publicKeyDER`.
        function verifyRSAPSS(bytes publicKeyDER, bytes32 messageHash, bytes signature) external view returns (bool);
        /// Checks an AWS Nitro attestation document against a root certificate at the block's time.
        function verifyAttestation(bytes attestationDocument, bytes signingPublicKey, bytes tlsCertificate, bytes rootCertificate) external view returns (bool valid, bytes32 pcrHash);
    }
}

/// The rsaEncryption algorithm's object identifier.
const RSA_ENCRYPTION: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// Whether `signature` is a valid RSA-PSS-SHA256 (salt 32) signature of the
/// 32 bytes of `message` by the RSA key in `public_key_der` (DER
/// SubjectPublicKeyInfo, 2048–8192 bits). Anything malformed is `false`.
pub fn verify_rsa_pss(public_key_der: &[u8], message: B256, signature: &[u8]) -> bool {
    if public_key_der.len() > MAX_KEY_BYTES || signature.len() > MAX_SIGNATURE_BYTES {
        return false;
    }
    let Ok(info) = SubjectPublicKeyInfoRef::from_der(public_key_der) else { return false };
    if info.algorithm.oid != RSA_ENCRYPTION {
        return false;
    }
    let Some(pkcs1) = info.subject_public_key.as_bytes() else { return false };
    UnparsedPublicKey::new(&RSA_PSS_2048_8192_SHA256, pkcs1).verify(message.as_slice(), signature).is_ok()
}

/// Answers one call to the precompile, in a block whose timestamp is `now`.
pub fn run(calldata: &[u8], gas_limit: u64, now: u64) -> InterpreterResult {
    let selector = calldata.get(..4).unwrap_or_default();
    if selector == ITEEVerifier::verifyRSAPSSCall::SELECTOR {
        if gas_limit < GAS_VERIFY_RSA_PSS {
            return out_of_gas(gas_limit);
        }
        return match ITEEVerifier::verifyRSAPSSCall::abi_decode(calldata) {
            Ok(call) => {
                let valid = verify_rsa_pss(&call.publicKeyDER, call.messageHash, &call.signature);
                let output = ITEEVerifier::verifyRSAPSSCall::abi_encode_returns(&valid);
                finish(InstructionResult::Return, output.into(), GAS_VERIFY_RSA_PSS, gas_limit)
            }
            Err(e) => revert(&format!("verifyRSAPSS: malformed arguments: {e}"), GAS_VERIFY_RSA_PSS, gas_limit),
        };
    }
    if selector == ITEEVerifier::verifyAttestationCall::SELECTOR {
        if gas_limit < GAS_VERIFY_ATTESTATION {
            return out_of_gas(gas_limit);
        }
        return match ITEEVerifier::verifyAttestationCall::abi_decode(calldata) {
            Ok(call) => {
                let checked = verify_attestation(
                    &call.attestationDocument,
                    &call.signingPublicKey,
                    &call.tlsCertificate,
                    &call.rootCertificate,
                    now,
                );
                let (valid, pcr_hash) = checked.map_or((false, B256::ZERO), |hash| (true, hash));
                let returns = ITEEVerifier::verifyAttestationReturn { valid, pcrHash: pcr_hash };
                let output = ITEEVerifier::verifyAttestationCall::abi_encode_returns(&returns);
                finish(InstructionResult::Return, output.into(), GAS_VERIFY_ATTESTATION, gas_limit)
            }
            Err(e) => {
                revert(&format!("verifyAttestation: malformed arguments: {e}"), GAS_VERIFY_ATTESTATION, gas_limit)
            }
        };
    }
    revert(
        &format!(
            "unknown selector 0x{} (the TEE verifier serves verifyRSAPSS and verifyAttestation)",
            alloy_primitives::hex::encode(selector)
        ),
        0,
        gas_limit,
    )
}

fn finish(result: InstructionResult, output: Bytes, gas: u64, gas_limit: u64) -> InterpreterResult {
    let mut used = Gas::new(gas_limit);
    if !used.record_regular_cost(gas) {
        return out_of_gas(gas_limit);
    }
    InterpreterResult::new(result, output, used)
}

fn revert(reason: &str, gas: u64, gas_limit: u64) -> InterpreterResult {
    finish(InstructionResult::Revert, Revert::from(reason).abi_encode().into(), gas, gas_limit)
}

fn out_of_gas(gas_limit: u64) -> InterpreterResult {
    let mut gas = Gas::new(gas_limit);
    gas.spend_all();
    InterpreterResult::new(InstructionResult::PrecompileOOG, Bytes::new(), gas)
}

#[cfg(test)]
mod tests {
    use alloy_primitives::keccak256;
    use alloy_sol_types::SolValue;

    use super::*;
    use crate::tee::Enclave;

    #[test]
    fn selectors_are_the_chains() {
        assert_eq!(ITEEVerifier::verifyRSAPSSCall::SELECTOR, [0x7e, 0x26, 0x67, 0x9a]);
        assert_eq!(ITEEVerifier::verifyAttestationCall::SELECTOR, [0xf7, 0xcf, 0x40, 0xd3]);
    }

    fn call(key: &[u8], message: B256, signature: &[u8], gas: u64) -> InterpreterResult {
        let data = ITEEVerifier::verifyRSAPSSCall {
            publicKeyDER: key.to_vec().into(),
            messageHash: message,
            signature: signature.to_vec().into(),
        }
        .abi_encode();
        run(&data, gas, 1_800_000_000)
    }

    #[test]
    fn verify_rsa_pss_answers_true_false_and_charges_its_gas() {
        let enclave = Enclave::from_seed(3, 0).unwrap();
        let message = keccak256("message");
        let signature = enclave.sign(message.as_slice()).unwrap();
        let ok = call(enclave.public_key(), message, &signature, 100_000);
        assert_eq!(ok.result, InstructionResult::Return);
        assert!(bool::abi_decode(&ok.output).unwrap());
        assert_eq!(ok.gas.total_gas_spent(), GAS_VERIFY_RSA_PSS);
        let wrong = call(enclave.public_key(), keccak256("other"), &signature, 100_000);
        assert!(!bool::abi_decode(&wrong.output).unwrap());
        let garbage_key = call(b"not a key", message, &signature, 100_000);
        assert_eq!(garbage_key.result, InstructionResult::Return);
        assert!(!bool::abi_decode(&garbage_key.output).unwrap());
        assert!(!verify_rsa_pss(enclave.public_key(), message, &[]));
        assert!(!verify_rsa_pss(enclave.public_key(), message, &[0u8; 2000]));
        assert_eq!(call(enclave.public_key(), message, &signature, 19_999).result, InstructionResult::PrecompileOOG);
    }

    #[test]
    fn malformed_calldata_and_unknown_selectors_revert_with_a_reason() {
        let short = run(&ITEEVerifier::verifyRSAPSSCall::SELECTOR, 100_000, 0);
        assert_eq!(short.result, InstructionResult::Revert);
        assert!(Revert::abi_decode(&short.output).unwrap().reason.contains("malformed"));
        let unknown = run(&[1, 2, 3, 4], 100_000, 0);
        assert!(Revert::abi_decode(&unknown.output).unwrap().reason.contains("unknown selector 0x01020304"));
        let empty = run(&[], 100_000, 0);
        assert_eq!(empty.result, InstructionResult::Revert);
        let truncated = &ITEEVerifier::verifyAttestationCall::SELECTOR;
        let answer = run(truncated, 1_000_000, 0);
        assert!(Revert::abi_decode(&answer.output).unwrap().reason.contains("verifyAttestation: malformed"));
    }

    #[test]
    fn verify_attestation_answers_the_pcr_hash_of_a_good_document_and_false_otherwise() {
        let enclave = Enclave::from_seed(3, 0).unwrap();
        let call = |document: &[u8], now: u64| {
            let data = ITEEVerifier::verifyAttestationCall {
                attestationDocument: document.to_vec().into(),
                signingPublicKey: enclave.public_key().clone(),
                tlsCertificate: enclave.tls_certificate().clone(),
                rootCertificate: enclave.root_certificate().clone(),
            }
            .abi_encode();
            let answer = run(&data, 1_000_000, now);
            assert_eq!(answer.result, InstructionResult::Return);
            assert_eq!(answer.gas.total_gas_spent(), GAS_VERIFY_ATTESTATION);
            ITEEVerifier::verifyAttestationCall::abi_decode_returns(&answer.output).unwrap()
        };
        let good = call(enclave.attestation_document(), 1_800_000_000);
        assert!(good.valid);
        assert_eq!(good.pcrHash, enclave.pcr_hash());
        let stale = call(enclave.attestation_document(), 4_200_000_000);
        assert!(!stale.valid && stale.pcrHash == B256::ZERO);
        assert!(!call(b"junk", 1_800_000_000).valid);
    }
}
