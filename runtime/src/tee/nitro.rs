//! Attestation documents in the AWS Nitro format, made for the devnet's
//! enclaves and checked by the verifier precompile's `verifyAttestation`.
//!
//! A document is a COSE_Sign1 structure (CBOR, RFC 9052), optionally under
//! CBOR tag 18: `[protected, unprotected, payload, signature]`, where
//! `protected` encodes `{1: -35}` (ES384), the signature is ECDSA P-384
//! over SHA-384 (raw `r ‖ s`, 96 bytes) of the `Signature1` structure, and
//! `payload` is a CBOR map with `module_id`, `digest` (`"SHA384"`),
//! `timestamp` (ms), `pcrs` (index → 48 bytes), `certificate` (the signing
//! certificate, DER), `cabundle` (root first, then intermediates, DER) and
//! optionally `public_key`, `user_data` and `nonce`.
//!
//! The devnet's documents bind an enclave's keys as follows:
//! `public_key` is the enclave's RSA signing key (DER SubjectPublicKeyInfo)
//! and `user_data` is `sha256` of its TLS certificate (DER). They chain to a
//! devnet root certificate (P-384, made from the seed like the enclave
//! keys) through one intermediate, as AWS's chain to its Nitro root.
//!
//! Verification ([`verify_attestation`]) knows nothing of how the devnet
//! made its documents: the same code accepts a genuine Nitro document given
//! AWS's root certificate.

use std::str::FromStr;
use std::time::Duration;

use alloy_primitives::{B256, Bytes, keccak256};
use ciborium::Value;
use p384::ecdsa::signature::{Signer, Verifier};
use p384::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p384::pkcs8::DecodePublicKey;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use sha2::{Digest, Sha256, Sha384};
use spki::SubjectPublicKeyInfoOwned;
use spki::der::{Decode, Encode};
use x509_cert::Certificate;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::Name;
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

/// The largest document `verifyAttestation` takes, in bytes.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// The largest certificate `verifyAttestation` takes, in bytes.
pub const MAX_CERTIFICATE_BYTES: usize = 8 * 1024;
/// The most certificates a document's bundle may hold (AWS's holds 4): each
/// costs a signature check, and the gas of `verifyAttestation` is flat.
pub const MAX_BUNDLE: usize = 8;
/// The length of a PCR (SHA-384).
const PCR_BYTES: usize = 48;

/// The timestamp of the devnet's documents (ms): fixed, so that the same
/// seed gives the same documents.
const DOCUMENT_TIMESTAMP_MS: u64 = 1_767_225_600_000;

/// Why an attestation document was refused: each names the check.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// The document or a certificate is over its size limit.
    #[error("{what} is {size} bytes, over the limit of {limit}")]
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// Its size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The document is not a COSE_Sign1 structure of the Nitro shape.
    #[error("malformed attestation document: {0}")]
    Malformed(String),
    /// A certificate could not be parsed.
    #[error("malformed certificate: {0}")]
    Certificate(String),
    /// The bundle does not start with the given root certificate.
    #[error("the document's certificate bundle does not start with the given root certificate")]
    UntrustedRoot,
    /// A certificate is not signed by the one before it.
    #[error("certificate {index} of the chain is not signed by its issuer")]
    BrokenChain {
        /// Its place in the chain (0: the root).
        index: usize,
    },
    /// A certificate is not valid at the block's time.
    #[error("certificate {index} of the chain is not valid at {now} (valid {not_before}..{not_after})")]
    Expired {
        /// Its place in the chain.
        index: usize,
        /// The time checked.
        now: u64,
        /// Its validity.
        not_before: u64,
        /// Its validity.
        not_after: u64,
    },
    /// The COSE signature does not verify with the signing certificate.
    #[error("the document's ES384 signature does not verify")]
    BadSignature,
    /// The document does not carry the given signing key.
    #[error("the document's public_key is not the given signing key")]
    WrongSigningKey,
    /// The document does not commit to the given TLS certificate.
    #[error("the document's user_data is not sha256 of the given TLS certificate")]
    WrongTlsCertificate,
}

/// The devnet's certificate authority: a root and an intermediate, P-384,
/// made from the seed.
pub struct DevnetPki {
    root_certificate: Bytes,
    intermediate_certificate: Bytes,
    intermediate_key: SigningKey,
}

impl std::fmt::Debug for DevnetPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevnetPki").finish_non_exhaustive()
    }
}

fn key_from(seed: u64, label: &str) -> SigningKey {
    let mut material = format!("nml devnet {label}").into_bytes();
    material.extend_from_slice(&seed.to_be_bytes());
    let mut rng = ChaCha20Rng::from_seed(keccak256(material).0);
    SigningKey::random(&mut rng)
}

fn validity() -> Result<Validity, String> {
    let from = Duration::from_secs(946_684_800); // 2000-01-01
    let until = Duration::from_secs(4_102_444_800); // 2100-01-01
    Ok(Validity {
        not_before: Time::UtcTime(spki::der::asn1::UtcTime::from_unix_duration(from).map_err(|e| e.to_string())?),
        not_after: Time::GeneralTime(
            spki::der::asn1::GeneralizedTime::from_unix_duration(until).map_err(|e| e.to_string())?,
        ),
    })
}

fn certificate(
    profile: Profile,
    serial: &[u8],
    subject: &str,
    subject_key: &VerifyingKey,
    signer: &SigningKey,
) -> Result<Bytes, String> {
    let spki = SubjectPublicKeyInfoOwned::from_key(*subject_key).map_err(|e| e.to_string())?;
    let name = Name::from_str(subject).map_err(|e| e.to_string())?;
    let serial = SerialNumber::new(serial).map_err(|e| e.to_string())?;
    let builder =
        CertificateBuilder::new(profile, serial, validity()?, name, spki, signer).map_err(|e| e.to_string())?;
    let cert = builder.build::<DerSignature>().map_err(|e| e.to_string())?;
    Ok(cert.to_der().map_err(|e| e.to_string())?.into())
}

impl DevnetPki {
    /// The authority of the devnet seeded with `seed`.
    pub fn from_seed(seed: u64) -> Result<Self, String> {
        let root_key = key_from(seed, "root CA");
        let intermediate_key = key_from(seed, "intermediate CA");
        let root_name = "CN=nml devnet Nitro root,O=nml";
        let root_certificate = certificate(Profile::Root, &[1], root_name, root_key.verifying_key(), &root_key)?;
        let issuer = Name::from_str(root_name).map_err(|e| e.to_string())?;
        let intermediate_certificate = certificate(
            Profile::SubCA { issuer, path_len_constraint: None },
            &[2],
            "CN=nml devnet Nitro intermediate,O=nml",
            intermediate_key.verifying_key(),
            &root_key,
        )?;
        Ok(Self { root_certificate, intermediate_certificate, intermediate_key })
    }

    /// The root certificate (DER) the devnet's documents chain to.
    pub fn root_certificate(&self) -> &Bytes {
        &self.root_certificate
    }

    /// A TLS certificate (DER) for enclave `index`, issued by the intermediate.
    pub fn tls_certificate(&self, seed: u64, index: u32) -> Result<Bytes, String> {
        let key = key_from(seed, &format!("enclave {index} TLS"));
        let issuer = Name::from_str("CN=nml devnet Nitro intermediate,O=nml").map_err(|e| e.to_string())?;
        let profile = Profile::Leaf { issuer, enable_key_agreement: false, enable_key_encipherment: false };
        let serial = [&[1u8][..], &index.to_be_bytes()].concat();
        certificate(
            profile,
            &serial,
            &format!("CN=enclave-{index}.nml.localhost,O=nml"),
            key.verifying_key(),
            &self.intermediate_key,
        )
    }

    /// The attestation document of enclave `index`: its PCRs, its signing
    /// key and (through `user_data`) its TLS certificate, signed by a leaf
    /// certificate of its own under the intermediate.
    pub fn document(
        &self,
        seed: u64,
        index: u32,
        pcrs: &[[u8; 48]; 3],
        signing_key: &[u8],
        tls_certificate: &[u8],
    ) -> Result<Bytes, String> {
        let leaf_key = key_from(seed, &format!("enclave {index} attestation"));
        let issuer = Name::from_str("CN=nml devnet Nitro intermediate,O=nml").map_err(|e| e.to_string())?;
        let profile = Profile::Leaf { issuer, enable_key_agreement: false, enable_key_encipherment: false };
        let serial = [&[2u8][..], &index.to_be_bytes()].concat();
        let leaf = certificate(
            profile,
            &serial,
            &format!("CN=enclave-{index}.nitro.nml.localhost,O=nml"),
            leaf_key.verifying_key(),
            &self.intermediate_key,
        )?;
        let mut all_pcrs: Vec<(Value, Value)> = Vec::new();
        for i in 0..16u8 {
            let value = pcrs.get(usize::from(i)).map_or([0u8; 48], |p| *p);
            all_pcrs.push((Value::Integer(i.into()), Value::Bytes(value.to_vec())));
        }
        let payload = Value::Map(vec![
            (text("module_id"), text(&format!("nml-devnet-enclave-{index}"))),
            (text("digest"), text("SHA384")),
            (text("timestamp"), Value::Integer(DOCUMENT_TIMESTAMP_MS.into())),
            (text("pcrs"), Value::Map(all_pcrs)),
            (text("certificate"), Value::Bytes(leaf.to_vec())),
            (
                text("cabundle"),
                Value::Array(vec![
                    Value::Bytes(self.root_certificate.to_vec()),
                    Value::Bytes(self.intermediate_certificate.to_vec()),
                ]),
            ),
            (text("public_key"), Value::Bytes(signing_key.to_vec())),
            (text("user_data"), Value::Bytes(Sha256::digest(tls_certificate).to_vec())),
            (text("nonce"), Value::Null),
        ]);
        let payload = cbor(&payload)?;
        let protected = cbor(&Value::Map(vec![(Value::Integer(1.into()), Value::Integer((-35).into()))]))?;
        let signature: Signature = leaf_key.sign(&signature1(&protected, &payload)?);
        let document = Value::Array(vec![
            Value::Bytes(protected),
            Value::Map(Vec::new()),
            Value::Bytes(payload),
            Value::Bytes(signature.to_bytes().to_vec()),
        ]);
        Ok(cbor(&document)?.into())
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

fn cbor(value: &Value) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    ciborium::into_writer(value, &mut out).map_err(|e| e.to_string())?;
    Ok(out)
}

/// The COSE `Sig_structure` of a COSE_Sign1 with no external data.
fn signature1(protected: &[u8], payload: &[u8]) -> Result<Vec<u8>, String> {
    cbor(&Value::Array(vec![
        text("Signature1"),
        Value::Bytes(protected.to_vec()),
        Value::Bytes(Vec::new()),
        Value::Bytes(payload.to_vec()),
    ]))
}

/// `keccak256(pcr0 ‖ pcr1 ‖ pcr2)`: how the registry names an enclave image.
pub fn pcr_hash(pcrs: &[[u8; 48]; 3]) -> B256 {
    keccak256(pcrs.concat())
}

/// The devnet's image measurements (the same for every enclave).
pub fn devnet_pcrs() -> [[u8; 48]; 3] {
    [0u8, 1, 2].map(|i| Sha384::digest(format!("nml devnet enclave image, PCR{i}")).into())
}

/// The PCRs of the gateway's image (`nml gateway`): another image than the
/// validators', approved for the LLM-proxy TEE type.
pub fn gateway_pcrs() -> [[u8; 48]; 3] {
    [0u8, 1, 2].map(|i| Sha384::digest(format!("nml gateway enclave image, PCR{i}")).into())
}

/// A self-signed TLS certificate (DER) and its P-384 private key
/// (PKCS#8 DER) for the gateway served by enclave `index`: clients that
/// pin the certificate the registry holds (OpenGradient's SDK) trust it
/// and nothing else, so it is its own issuer. Its subject names
/// `localhost`; pinning clients skip the hostname check.
pub fn self_signed_tls(seed: u64, index: u32) -> Result<(Bytes, Vec<u8>), String> {
    use p384::pkcs8::EncodePrivateKey;
    let key = key_from(seed, &format!("gateway {index} TLS"));
    let subject = format!("CN=localhost,O=nml gateway {index}");
    let issuer = Name::from_str(&subject).map_err(|e| e.to_string())?;
    let profile = Profile::Leaf { issuer, enable_key_agreement: false, enable_key_encipherment: false };
    let serial = [&[3u8][..], &index.to_be_bytes()].concat();
    let certificate = certificate(profile, &serial, &subject, key.verifying_key(), &key)?;
    let pkcs8 = key.to_pkcs8_der().map_err(|e| e.to_string())?.as_bytes().to_vec();
    Ok((certificate, pkcs8))
}

fn malformed(what: impl Into<String>) -> AttestationError {
    AttestationError::Malformed(what.into())
}

fn field<'a>(map: &'a [(Value, Value)], name: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k.as_text() == Some(name)).map(|(_, v)| v)
}

fn bytes_field<'a>(map: &'a [(Value, Value)], name: &str) -> Result<&'a [u8], AttestationError> {
    field(map, name).and_then(Value::as_bytes).map(Vec::as_slice).ok_or_else(|| malformed(format!("no {name}")))
}

/// Checks `document` against `root_certificate` at unix time `now` and
/// answers `keccak256(pcr0 ‖ pcr1 ‖ pcr2)`. A non-empty `signing_key` must be
/// the document's `public_key`, and a non-empty `tls_certificate` must
/// hash (sha256) to its `user_data`.
pub fn verify_attestation(
    document: &[u8],
    signing_key: &[u8],
    tls_certificate: &[u8],
    root_certificate: &[u8],
    now: u64,
) -> Result<B256, AttestationError> {
    let limit = |what, size, limit| {
        if size > limit { Err(AttestationError::TooLarge { what, size, limit }) } else { Ok(()) }
    };
    limit("the attestation document", document.len(), MAX_DOCUMENT_BYTES)?;
    limit("the TLS certificate", tls_certificate.len(), MAX_CERTIFICATE_BYTES)?;
    limit("the root certificate", root_certificate.len(), MAX_CERTIFICATE_BYTES)?;
    let value: Value = ciborium::from_reader(document).map_err(|e| malformed(e.to_string()))?;
    let value = match value {
        Value::Tag(18, inner) => *inner,
        other => other,
    };
    let Value::Array(parts) = value else { return Err(malformed("not a COSE_Sign1 array")) };
    let [Value::Bytes(protected), Value::Map(_), Value::Bytes(payload), Value::Bytes(signature)] = parts.as_slice()
    else {
        return Err(malformed("not [protected, unprotected, payload, signature]"));
    };
    let header: Value = ciborium::from_reader(protected.as_slice()).map_err(|e| malformed(e.to_string()))?;
    let alg = header.as_map().and_then(|m| m.iter().find(|(k, _)| k.as_integer() == Some(1.into()))).map(|(_, v)| v);
    if alg.and_then(Value::as_integer) != Some((-35).into()) {
        return Err(malformed("the algorithm is not ES384"));
    }
    let payload_value: Value = ciborium::from_reader(payload.as_slice()).map_err(|e| malformed(e.to_string()))?;
    let map = payload_value.as_map().ok_or_else(|| malformed("the payload is not a map"))?;
    if field(map, "digest").and_then(Value::as_text) != Some("SHA384") {
        return Err(malformed("digest is not SHA384"));
    }
    let leaf = bytes_field(map, "certificate")?;
    let bundle: Vec<&[u8]> = field(map, "cabundle")
        .and_then(Value::as_array)
        .ok_or_else(|| malformed("no cabundle"))?
        .iter()
        .map(|c| c.as_bytes().map(Vec::as_slice).ok_or_else(|| malformed("a cabundle entry is not bytes")))
        .collect::<Result<_, _>>()?;
    if bundle.len() > MAX_BUNDLE {
        return Err(malformed(format!("a bundle of {} certificates (at most {MAX_BUNDLE})", bundle.len())));
    }
    if bundle.first() != Some(&root_certificate) {
        return Err(AttestationError::UntrustedRoot);
    }
    let chain: Vec<Certificate> = bundle
        .iter()
        .chain(std::iter::once(&leaf))
        .map(|der| {
            limit("a certificate", der.len(), MAX_CERTIFICATE_BYTES)?;
            Certificate::from_der(der).map_err(|e| AttestationError::Certificate(e.to_string()))
        })
        .collect::<Result<_, _>>()?;
    for (index, cert) in chain.iter().enumerate() {
        let validity = &cert.tbs_certificate.validity;
        let (not_before, not_after) =
            (validity.not_before.to_unix_duration().as_secs(), validity.not_after.to_unix_duration().as_secs());
        if now < not_before || now > not_after {
            return Err(AttestationError::Expired { index, now, not_before, not_after });
        }
        let issuer = if index == 0 { cert } else { &chain[index - 1] };
        if !signed_by(cert, issuer) {
            return Err(AttestationError::BrokenChain { index });
        }
    }
    let leaf_key =
        p384_key(chain.last().ok_or_else(|| malformed("no certificate"))?).ok_or(AttestationError::BadSignature)?;
    let signature = Signature::from_slice(signature).map_err(|_| AttestationError::BadSignature)?;
    let signed = signature1(protected, payload).map_err(malformed)?;
    leaf_key.verify(&signed, &signature).map_err(|_| AttestationError::BadSignature)?;
    let optional = |name| field(map, name).and_then(Value::as_bytes).map(Vec::as_slice);
    if !signing_key.is_empty() && optional("public_key") != Some(signing_key) {
        return Err(AttestationError::WrongSigningKey);
    }
    if !tls_certificate.is_empty() && optional("user_data") != Some(&Sha256::digest(tls_certificate)[..]) {
        return Err(AttestationError::WrongTlsCertificate);
    }
    let pcrs = field(map, "pcrs").and_then(Value::as_map).ok_or_else(|| malformed("no pcrs"))?;
    let pcr = |i: i64| -> Result<&[u8], AttestationError> {
        pcrs.iter()
            .find(|(k, _)| k.as_integer() == Some(i.into()))
            .and_then(|(_, v)| v.as_bytes())
            .map(Vec::as_slice)
            .filter(|pcr| pcr.len() == PCR_BYTES)
            .ok_or_else(|| malformed(format!("no 48-byte PCR{i}")))
    };
    Ok(keccak256([pcr(0)?, pcr(1)?, pcr(2)?].concat()))
}

/// The P-384 key of a certificate.
fn p384_key(cert: &Certificate) -> Option<VerifyingKey> {
    let spki = cert.tbs_certificate.subject_public_key_info.to_der().ok()?;
    VerifyingKey::from_public_key_der(&spki).ok()
}

/// Whether `cert` carries an ECDSA P-384 / SHA-384 signature by `issuer`'s key.
fn signed_by(cert: &Certificate, issuer: &Certificate) -> bool {
    const ECDSA_WITH_SHA384: spki::ObjectIdentifier = spki::ObjectIdentifier::new_unwrap("1.2.840.10045.4.3.3");
    if cert.signature_algorithm.oid != ECDSA_WITH_SHA384
        || cert.tbs_certificate.issuer != issuer.tbs_certificate.subject
    {
        return false;
    }
    let (Some(key), Ok(tbs)) = (p384_key(issuer), cert.tbs_certificate.to_der()) else { return false };
    let Some(raw) = cert.signature.as_bytes() else { return false };
    let Ok(signature) = DerSignature::from_bytes(raw) else { return false };
    key.verify(&tbs, &signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_800_000_000;

    fn made() -> (DevnetPki, Bytes, Bytes, Bytes) {
        let pki = DevnetPki::from_seed(9).unwrap();
        let tls = pki.tls_certificate(9, 0).unwrap();
        let key = b"an RSA key's DER".to_vec();
        let doc = pki.document(9, 0, &devnet_pcrs(), &key, &tls).unwrap();
        (pki, doc, key.into(), tls)
    }

    #[test]
    fn a_devnet_document_verifies_and_names_its_pcrs() {
        let (pki, doc, key, tls) = made();
        let hash = verify_attestation(&doc, &key, &tls, pki.root_certificate(), NOW).unwrap();
        assert_eq!(hash, pcr_hash(&devnet_pcrs()));
        // Deterministic from the seed.
        assert_eq!(DevnetPki::from_seed(9).unwrap().document(9, 0, &devnet_pcrs(), &key, &tls).unwrap(), doc);
        // Binding checks are skipped for empty arguments (a foreign document).
        assert!(verify_attestation(&doc, &[], &[], pki.root_certificate(), NOW).is_ok());
    }

    #[test]
    fn every_check_refuses_what_it_should() {
        let (pki, doc, key, tls) = made();
        let root = pki.root_certificate();
        let other = DevnetPki::from_seed(10).unwrap();
        assert_eq!(
            verify_attestation(&doc, &key, &tls, other.root_certificate(), NOW),
            Err(AttestationError::UntrustedRoot)
        );
        assert_eq!(verify_attestation(&doc, b"other", &tls, root, NOW), Err(AttestationError::WrongSigningKey));
        let other_tls = pki.tls_certificate(9, 1).unwrap();
        assert_eq!(verify_attestation(&doc, &key, &other_tls, root, NOW), Err(AttestationError::WrongTlsCertificate));
        assert!(matches!(
            verify_attestation(&doc, &key, &tls, root, 4_200_000_000),
            Err(AttestationError::Expired { .. })
        ));
        // A flipped byte in the signature, then in the payload.
        let mut forged = doc.to_vec();
        let last = forged.len() - 1;
        forged[last] ^= 1;
        assert_eq!(verify_attestation(&forged, &key, &tls, root, NOW), Err(AttestationError::BadSignature));
        let mut tampered = doc.to_vec();
        let at = tampered.windows(6).position(|w| w == b"SHA384").unwrap() + 40;
        tampered[at] ^= 1;
        assert!(verify_attestation(&tampered, &key, &tls, root, NOW).is_err());
        assert!(matches!(verify_attestation(b"junk", &key, &tls, root, NOW), Err(AttestationError::Malformed(_))));
        // A long bundle is refused before any signature is checked.
        let Value::Array(mut parts) = ciborium::from_reader::<Value, _>(doc.as_ref()).unwrap() else { panic!() };
        let mut payload: Value = ciborium::from_reader(parts[2].as_bytes().unwrap().as_slice()).unwrap();
        for (k, v) in payload.as_map_mut().unwrap() {
            if k.as_text() == Some("cabundle") {
                *v = Value::Array(vec![Value::Bytes(root.to_vec()); MAX_BUNDLE + 1]);
            }
        }
        parts[2] = Value::Bytes(cbor(&payload).unwrap());
        let long = cbor(&Value::Array(parts)).unwrap();
        let refused = verify_attestation(&long, &key, &tls, root, NOW).unwrap_err();
        assert!(refused.to_string().contains("a bundle of 9 certificates"), "{refused}");
        assert!(matches!(
            verify_attestation(&vec![0u8; MAX_DOCUMENT_BYTES + 1], &key, &tls, root, NOW),
            Err(AttestationError::TooLarge { .. })
        ));
    }
}
