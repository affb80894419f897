//! The devnet's enclaves: RSA-2048 signing keys made deterministically from
//! a seed, each enclave's id (`keccak256` of its DER public key), and the
//! attestation of one inference result.
//!
//! Making a 2048-bit key takes about 0.1 s, which every devnet start would
//! pay (its TEE registry holds the first enclave's key): where the CLI says
//! so ([`keep_keys_in`]), a key made once is kept on disk and read back by
//! later processes (the file holds its own checksum; a damaged one is made
//! again).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, OnceLock};

use alloy_primitives::{B256, Bytes, keccak256};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{RSA_PSS_SHA256, RsaKeyPair};
use parking_lot::Mutex;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::SeedableRng;
use rsa::RsaPrivateKey;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use serde::{Deserialize, Serialize};

use super::faults::Faults;
use super::nitro::{DevnetPki, devnet_pcrs, pcr_hash};

/// The size of an enclave's signing key, in bits (as on the chain).
pub(super) const KEY_BITS: usize = 2048;

/// Why an enclave could not be made or could not sign.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TeeError {
    /// Making the RSA key failed.
    #[error("could not make the enclave's RSA key: {0}")]
    KeyGeneration(String),
    /// The RSA signature could not be made.
    #[error("the enclave could not sign: {0}")]
    Signing(String),
    /// The certificates or the attestation document could not be made.
    #[error("could not make the enclave's attestation document: {0}")]
    Document(String),
}

/// One inference result as an enclave attests it (PROTOCOL.md A2): an
/// RSA-PSS-SHA256 signature (salt 32) by the enclave's key over
/// [`message_hash`]`(input_hash, output_hash, timestamp)`.
///
/// For a request through the inference precompile:
/// - `input_hash` is the request id: `keccak256` of the ABI-encoded
///   `ModelInferenceRequest` (mode, model id and input), so the signature
///   binds the model and the mode as well as the input;
/// - `output_hash` is `keccak256` of the ABI-encoded `ModelOutput` the
///   precompile returns at inclusion (`is_simulation_result = false`), i.e.
///   of the return data recorded on the receipt;
/// - `timestamp` is the chain's time when the request was run: the
///   timestamp of the block being prepared (or of the `eth_call`'s block),
///   so `evm_increaseTime` moves it as it moves everything else.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attestation {
    /// The enclave: `keccak256` of its DER (SubjectPublicKeyInfo) public key.
    pub tee_id: B256,
    /// What was asked (see above).
    pub input_hash: B256,
    /// What was answered (see above).
    pub output_hash: B256,
    /// When, in unix seconds of the chain's clock.
    pub timestamp: u64,
    /// The RSA-PSS signature (256 bytes for a 2048-bit key).
    pub signature: Bytes,
}

/// `keccak256(abi.encodePacked(inputHash, outputHash, uint256 timestamp))`:
/// the message an enclave signs.
pub fn message_hash(input_hash: B256, output_hash: B256, timestamp: u64) -> B256 {
    let mut packed = [0u8; 96];
    packed[..32].copy_from_slice(input_hash.as_slice());
    packed[32..64].copy_from_slice(output_hash.as_slice());
    packed[88..].copy_from_slice(&timestamp.to_be_bytes());
    keccak256(packed)
}

/// A simulated enclave: its signing key and identity, its TLS certificate
/// and its attestation document (under the devnet's root certificate).
pub struct Enclave {
    id: B256,
    public_key: Bytes,
    key: RsaKeyPair,
    tls_certificate: Bytes,
    document: Bytes,
    root_certificate: Bytes,
}

impl std::fmt::Debug for Enclave {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Enclave").field("id", &self.id).finish_non_exhaustive()
    }
}

/// Keys already made in this process, by seed and index: a 2048-bit key
/// takes a fraction of a second, and tests make many devnets.
static MADE: LazyLock<Mutex<Made>> = LazyLock::new(Default::default);

/// Enclaves by (seed, index).
type Made = HashMap<(u64, u32), Arc<Enclave>>;

/// Where keys made from seeds are kept between processes (see the module's
/// doc); unset, each process makes its own.
static KEY_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Keeps the keys enclaves make from seeds in `dir`, for later processes
/// (the CLI's cache). The first call wins.
pub fn keep_keys_in(dir: PathBuf) {
    let _ = KEY_DIR.set(dir);
}

/// The private key the ChaCha20 stream seeded with `material` makes: read
/// from `dir` when it was kept there, else made (and kept there, at best:
/// a cache that cannot be written costs the next process the time, nothing
/// else).
fn private_key(material: B256, dir: Option<&Path>) -> Result<RsaPrivateKey, TeeError> {
    // The name says how the key was made: another derivation, another file.
    let path = dir.map(|d| d.join(format!("v1-rsa{KEY_BITS}-{material:x}.der")));
    if let Some(key) = path.as_deref().and_then(read_kept) {
        return Ok(key);
    }
    let mut rng = ChaCha20Rng::from_seed(material.0);
    let key = RsaPrivateKey::new(&mut rng, KEY_BITS).map_err(|e| TeeError::KeyGeneration(e.to_string()))?;
    if let Some(path) = path
        && let Err(e) = keep(&path, &key)
    {
        tracing::warn!(path = %path.display(), %e, "could not keep the enclave key for later runs");
    }
    Ok(key)
}

/// A kept key: `keccak256` of its PKCS#8 DER, then the DER.
fn read_kept(path: &Path) -> Option<RsaPrivateKey> {
    let bytes = std::fs::read(path).ok()?;
    let (sum, der) = bytes.split_at_checked(32)?;
    if keccak256(der).as_slice() != sum {
        return None;
    }
    RsaPrivateKey::from_pkcs8_der(der).ok().filter(|k| k.size() * 8 == KEY_BITS)
}

fn keep(path: &Path, key: &RsaPrivateKey) -> std::io::Result<()> {
    let der = key.to_pkcs8_der().map_err(std::io::Error::other)?;
    let mut bytes = keccak256(der.as_bytes()).to_vec();
    bytes.extend_from_slice(der.as_bytes());
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Written aside (readable by its owner only: a private key), then
    // renamed: a reader never sees half a key.
    let partial = path.with_extension(format!("{}.partial", std::process::id()));
    let written = write_private(&partial, &bytes).and_then(|()| std::fs::rename(&partial, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
}

impl Enclave {
    /// Enclave `index` of the devnet seeded with `seed`: the same key on
    /// every run and machine for the same pair.
    pub fn from_seed(seed: u64, index: u32) -> Result<Arc<Self>, TeeError> {
        if let Some(made) = MADE.lock().get(&(seed, index)) {
            return Ok(Arc::clone(made));
        }
        let mut material = b"nml devnet enclave key".to_vec();
        material.extend_from_slice(&seed.to_be_bytes());
        material.extend_from_slice(&index.to_be_bytes());
        let private = private_key(keccak256(material), KEY_DIR.get().map(PathBuf::as_path))?;
        let pkcs8 = private.to_pkcs8_der().map_err(|e| TeeError::KeyGeneration(e.to_string()))?;
        let public_key: Bytes = private
            .to_public_key()
            .to_public_key_der()
            .map_err(|e| TeeError::KeyGeneration(e.to_string()))?
            .as_bytes()
            .to_vec()
            .into();
        let key = RsaKeyPair::from_pkcs8(pkcs8.as_bytes()).map_err(|e| TeeError::KeyGeneration(e.to_string()))?;
        let pki = DevnetPki::from_seed(seed).map_err(TeeError::Document)?;
        let tls_certificate = pki.tls_certificate(seed, index).map_err(TeeError::Document)?;
        let document =
            pki.document(seed, index, &devnet_pcrs(), &public_key, &tls_certificate).map_err(TeeError::Document)?;
        let enclave = Arc::new(Self {
            id: keccak256(&public_key),
            public_key,
            key,
            tls_certificate,
            document,
            root_certificate: pki.root_certificate().clone(),
        });
        Ok(Arc::clone(MADE.lock().entry((seed, index)).or_insert(enclave)))
    }

    /// `keccak256` of [`Enclave::public_key`].
    pub fn id(&self) -> B256 {
        self.id
    }

    /// The signing key's public half, DER-encoded SubjectPublicKeyInfo.
    pub fn public_key(&self) -> &Bytes {
        &self.public_key
    }

    /// Its TLS certificate (DER).
    pub fn tls_certificate(&self) -> &Bytes {
        &self.tls_certificate
    }

    /// Its attestation document (AWS Nitro format, see [`nitro`](super::nitro)).
    pub fn attestation_document(&self) -> &Bytes {
        &self.document
    }

    /// The root certificate (DER) its document chains to.
    pub fn root_certificate(&self) -> &Bytes {
        &self.root_certificate
    }

    /// `keccak256(pcr0 ‖ pcr1 ‖ pcr2)` of its image.
    pub fn pcr_hash(&self) -> B256 {
        pcr_hash(&devnet_pcrs())
    }

    /// Signs `message` (RSA-PSS, SHA-256, salt 32; the salt is random, so
    /// two signatures of one message differ and both verify).
    pub fn sign(&self, message: &[u8]) -> Result<Bytes, TeeError> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(&RSA_PSS_SHA256, &SystemRandom::new(), message, &mut signature)
            .map_err(|e| TeeError::Signing(e.to_string()))?;
        Ok(signature.into())
    }

    /// Attests one result.
    pub fn attest(&self, input_hash: B256, output_hash: B256, timestamp: u64) -> Result<Attestation, TeeError> {
        let signature = self.sign(message_hash(input_hash, output_hash, timestamp).as_slice())?;
        Ok(Attestation { tee_id: self.id, input_hash, output_hash, timestamp, signature })
    }
}

/// The devnet's enclaves (`--tees N`, `--tee-seed S`). Their keys are made
/// on first use, so a devnet that never serves a TEE-mode request pays
/// nothing for them.
#[derive(Debug)]
pub struct Enclaves {
    count: u32,
    seed: u64,
    made: OnceLock<Result<Vec<Arc<Enclave>>, TeeError>>,
    faults: Arc<Faults>,
}

impl Enclaves {
    /// `count` enclaves (at least one) with keys from `seed`.
    pub fn new(count: u32, seed: u64) -> Self {
        Self { count: count.max(1), seed, made: OnceLock::new(), faults: Arc::default() }
    }

    /// How many there are.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// The seed their keys are made from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The same enclaves (keys made once) with faults of their own, starting
    /// as these are: a forked devnet's, so a fault injected into one test's
    /// chain does not reach another's.
    pub fn fork(&self) -> Self {
        Self { count: self.count, seed: self.seed, made: self.made.clone(), faults: Arc::new(self.faults.fork()) }
    }

    /// The faults injected into them (and into the operator and relay).
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// The same faults, to share with another signer (the gateway of
    /// `nml devnet --gateway`): switching one switches both.
    pub fn shared_faults(&self) -> Arc<Faults> {
        Arc::clone(&self.faults)
    }

    /// Attests a result as the serving enclave does, faults included: with
    /// [`Fault::WrongOutput`] it signs another output than `output_hash`,
    /// with the timestamp faults it misdates the attestation.
    pub fn attest(&self, request_id: B256, output_hash: B256, timestamp: u64) -> Result<Attestation, TeeError> {
        let (output_hash, timestamp) = self.faults.misattest(output_hash, timestamp);
        self.serving(request_id)?.attest(request_id, output_hash, timestamp)
    }

    /// Every enclave, making the keys on first use.
    pub fn all(&self) -> Result<&[Arc<Enclave>], TeeError> {
        self.made
            .get_or_init(|| (0..self.count).map(|i| Enclave::from_seed(self.seed, i)).collect())
            .as_deref()
            .map_err(Clone::clone)
    }

    /// The enclave that serves `request_id`: spread over the enclaves by the
    /// id, so the same request is always attested by the same one.
    pub fn serving(&self, request_id: B256) -> Result<&Arc<Enclave>, TeeError> {
        let all = self.all()?;
        let pick = u64::from_be_bytes(request_id.0[24..].try_into().unwrap_or_default()) % all.len() as u64;
        Ok(&all[pick as usize])
    }
}

impl Default for Enclaves {
    fn default() -> Self {
        Self::new(1, 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tee::verify_rsa_pss;

    #[test]
    fn keys_are_deterministic_per_seed_and_index() {
        let a = Enclave::from_seed(7, 0).unwrap();
        let b = Enclave::from_seed(7, 1).unwrap();
        assert_ne!(a.id(), b.id());
        assert_eq!(a.id(), keccak256(a.public_key()));
        // A fresh derivation (not the process cache) gives the same key.
        MADE.lock().remove(&(7, 0));
        assert_eq!(Enclave::from_seed(7, 0).unwrap().public_key(), a.public_key());
    }

    #[test]
    fn a_kept_key_is_the_key_made_and_a_damaged_one_is_made_again() {
        let dir = tempfile::tempdir().unwrap();
        let material = keccak256(b"a test key");
        let made = private_key(material, None).unwrap();
        assert_eq!(private_key(material, Some(dir.path())).unwrap(), made);
        let file = dir.path().join(format!("v1-rsa{KEY_BITS}-{material:x}.der"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600, "a private key");
        }
        assert!(read_kept(&file).is_some_and(|k| k == made), "kept");
        // Read back, not made: a key kept under this name is what is used.
        let other = private_key(keccak256(b"another"), None).unwrap();
        keep(&file, &other).unwrap();
        assert_eq!(private_key(material, Some(dir.path())).unwrap(), other);
        // A damaged file is made again, and kept again.
        let mut bytes = std::fs::read(&file).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&file, bytes).unwrap();
        assert_eq!(private_key(material, Some(dir.path())).unwrap(), made);
        assert!(read_kept(&file).is_some_and(|k| k == made));
        // A directory that cannot be written costs nothing but the time.
        let blocked = dir.path().join("file");
        std::fs::write(&blocked, b"").unwrap();
        assert_eq!(private_key(material, Some(&blocked.join("keys"))).unwrap(), made);
    }

    #[test]
    fn an_attestation_verifies_and_a_tampered_one_does_not() {
        let enclave = Enclave::from_seed(1, 0).unwrap();
        let (input, output) = (keccak256("in"), keccak256("out"));
        let att = enclave.attest(input, output, 1_700_000_000).unwrap();
        assert_eq!(att.signature.len(), 256);
        let message = message_hash(input, output, 1_700_000_000);
        assert!(verify_rsa_pss(enclave.public_key(), message, &att.signature));
        assert!(!verify_rsa_pss(enclave.public_key(), message_hash(input, output, 1_700_000_001), &att.signature));
        let mut forged = att.signature.to_vec();
        forged[100] ^= 1;
        assert!(!verify_rsa_pss(enclave.public_key(), message, &forged));
        let other = Enclave::from_seed(1, 1).unwrap();
        assert!(!verify_rsa_pss(other.public_key(), message, &att.signature));
    }

    #[test]
    fn the_message_is_the_packed_encoding() {
        use alloy_sol_types::SolValue;
        let (input, output) = (keccak256("a"), keccak256("b"));
        let packed = (input, output, alloy_primitives::U256::from(42u64)).abi_encode_packed();
        assert_eq!(message_hash(input, output, 42), keccak256(packed));
    }

    #[test]
    fn requests_are_spread_over_the_enclaves() {
        let enclaves = Enclaves::new(3, 5);
        let ids: std::collections::HashSet<B256> =
            (0..30u8).map(|i| enclaves.serving(keccak256([i])).unwrap().id()).collect();
        assert_eq!(ids.len(), 3);
        assert_eq!(enclaves.serving(keccak256([1])).unwrap().id(), enclaves.serving(keccak256([1])).unwrap().id());
    }
}
