//! Oblivious HTTP (RFC 9458), the gateway's side: the private path of
//! OpenGradient Chat, where a relay forwards requests it cannot read. A
//! client seals its chat to the enclave's X25519 key (published in the TEE
//! registry's `OhttpConfig`) with HPKE; the gateway opens it here, and seals
//! the answer back — in one piece, or chunk by chunk for a stream
//! (draft-ietf-ohai-chunked-ohttp).
//!
//! One suite, the one OpenGradient's clients speak: DHKEM(X25519,
//! HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305. HPKE is the `hpke` crate;
//! the response keys are derived as RFC 9458 §4.4 says, with `hkdf`.
//!
//! Wire formats:
//! - request: `key_id(1) ‖ kem(2) ‖ kdf(2) ‖ aead(2) ‖ enc(32) ‖ sealed`;
//! - response: `response_nonce(32) ‖ sealed`;
//! - chunked response: `response_nonce(32) ‖ (varint(len) ‖ sealed)* ‖
//!   varint(0) ‖ sealed final` (the final chunk's AAD is `"final"`).
//!
//! A chunked response answers a plain request here, as OpenGradient's
//! clients expect (the chunked-OHTTP draft pairs it with a chunked request).

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hpke::aead::ChaCha20Poly1305 as HpkeChaCha;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem, OpModeR, Serializable};
use rand_core::{OsRng, TryRngCore};
use sha2::Sha256;

/// The KEM: DHKEM(X25519, HKDF-SHA256).
pub const KEM_ID: u16 = 0x0020;
/// The KDF: HKDF-SHA256.
pub const KDF_ID: u16 = 0x0001;
/// The AEAD: ChaCha20-Poly1305.
pub const AEAD_ID: u16 = 0x0003;
/// The key configuration's id (the one OpenGradient's clients default to).
pub const KEY_ID: u8 = 0x01;

/// The media type of an encapsulated request.
pub const REQUEST_MEDIA_TYPE: &str = "message/ohttp-req";
/// The media type of a response in one piece.
pub const RESPONSE_MEDIA_TYPE: &str = "message/ohttp-res";
/// The media type of a chunked response.
pub const CHUNKED_RESPONSE_MEDIA_TYPE: &str = "message/ohttp-chunked-res";
/// The media type of `GET /ohttp-keys` (RFC 9540).
pub const KEYS_MEDIA_TYPE: &str = "application/ohttp-keys";

const HEADER_LEN: usize = 7;
const ENC_LEN: usize = 32;
/// The response nonce's length: max(Nn, Nk) of ChaCha20-Poly1305.
const NONCE_SECRET_LEN: usize = 32;
const AEAD_NONCE_LEN: usize = 12;

const LABEL_REQUEST: &[u8] = b"message/bhttp request";
const LABEL_RESPONSE: &[u8] = b"message/bhttp response";
const LABEL_CHUNKED_RESPONSE: &[u8] = b"message/bhttp chunked response";

/// Why an encapsulated request cannot be opened. All are the client's
/// (400): RFC 9458 §5.2 has the gateway say no more than that.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OhttpError {
    /// Shorter than a header and an encapsulated key.
    #[error("the encapsulated request is {0} bytes, too short to hold a header and a key")]
    Truncated(usize),
    /// A key configuration this gateway does not have.
    #[error("no key configuration {0:#04x} here (this gateway's is {KEY_ID:#04x})")]
    UnknownKey(u8),
    /// Another HPKE suite than the one this gateway speaks.
    #[error(
        "HPKE suite kem {kem:#06x}, kdf {kdf:#06x}, aead {aead:#06x} is not this gateway's \
         (X25519/HKDF-SHA256/ChaCha20-Poly1305)"
    )]
    UnsupportedSuite {
        /// The request's KEM id.
        kem: u16,
        /// The request's KDF id.
        kdf: u16,
        /// The request's AEAD id.
        aead: u16,
    },
    /// The HPKE context could not be set up, or the request did not open.
    #[error("the request does not decrypt under this gateway's key")]
    Decrypt,
}

/// The gateway's OHTTP key: X25519, derived from the enclave's seed so a
/// devnet and its gateway agree on it without talking.
pub struct OhttpKey {
    private: <X25519HkdfSha256 as Kem>::PrivateKey,
    public: [u8; 32],
}

impl std::fmt::Debug for OhttpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OhttpKey").field("public", &alloy_primitives::hex::encode(self.public)).finish_non_exhaustive()
    }
}

impl OhttpKey {
    /// The key of enclave `index` under `seed` (RFC 9180's DeriveKeyPair
    /// from a seed-specific input).
    pub fn from_seed(seed: u64, index: u32) -> Self {
        let ikm = alloy_primitives::keccak256(format!("nml ohttp key {seed} {index}"));
        let (private, public) = X25519HkdfSha256::derive_keypair(ikm.as_slice());
        let mut raw = [0u8; 32];
        raw.copy_from_slice(&public.to_bytes());
        Self { private, public: raw }
    }

    /// The raw X25519 public key (`OhttpConfig.publicKey`).
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// The key configuration (RFC 9458 §3.1): `key_id ‖ kem ‖ public key ‖
    /// length ‖ (kdf ‖ aead)`.
    pub fn key_config(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 2 + 32 + 2 + 4);
        out.push(KEY_ID);
        out.extend_from_slice(&KEM_ID.to_be_bytes());
        out.extend_from_slice(&self.public);
        out.extend_from_slice(&4u16.to_be_bytes());
        out.extend_from_slice(&KDF_ID.to_be_bytes());
        out.extend_from_slice(&AEAD_ID.to_be_bytes());
        out
    }

    /// The body of `GET /ohttp-keys` (RFC 9540): each configuration
    /// prefixed by its length.
    pub fn key_configs(&self) -> Vec<u8> {
        let config = self.key_config();
        let mut out = (config.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(&config);
        out
    }

    /// Opens an encapsulated request: its plaintext, and what seals the
    /// response to it.
    pub fn decapsulate(&self, wire: &[u8]) -> Result<(Vec<u8>, ResponseKeys), OhttpError> {
        if wire.len() < HEADER_LEN + ENC_LEN {
            return Err(OhttpError::Truncated(wire.len()));
        }
        let (header, rest) = wire.split_at(HEADER_LEN);
        let be16 = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let (kem, kdf, aead) = (be16(1), be16(3), be16(5));
        if header[0] != KEY_ID {
            return Err(OhttpError::UnknownKey(header[0]));
        }
        if (kem, kdf, aead) != (KEM_ID, KDF_ID, AEAD_ID) {
            return Err(OhttpError::UnsupportedSuite { kem, kdf, aead });
        }
        let (enc, sealed) = rest.split_at(ENC_LEN);
        let encapped = <X25519HkdfSha256 as Kem>::EncappedKey::from_bytes(enc).map_err(|_| OhttpError::Decrypt)?;
        let info = [LABEL_REQUEST, &[0u8], header].concat();
        let mut context = hpke::setup_receiver::<HpkeChaCha, HkdfSha256, X25519HkdfSha256>(
            &OpModeR::Base,
            &self.private,
            &encapped,
            &info,
        )
        .map_err(|_| OhttpError::Decrypt)?;
        let plaintext = context.open(sealed, b"").map_err(|_| OhttpError::Decrypt)?;
        let mut single = [0u8; NONCE_SECRET_LEN];
        let mut chunked = [0u8; NONCE_SECRET_LEN];
        context.export(LABEL_RESPONSE, &mut single).map_err(|_| OhttpError::Decrypt)?;
        context.export(LABEL_CHUNKED_RESPONSE, &mut chunked).map_err(|_| OhttpError::Decrypt)?;
        let mut enc_owned = [0u8; ENC_LEN];
        enc_owned.copy_from_slice(enc);
        Ok((plaintext, ResponseKeys { enc: enc_owned, single, chunked }))
    }
}

/// What seals the response to one request: the exported secrets and the
/// request's encapsulated key.
pub struct ResponseKeys {
    enc: [u8; ENC_LEN],
    single: [u8; NONCE_SECRET_LEN],
    chunked: [u8; NONCE_SECRET_LEN],
}

impl std::fmt::Debug for ResponseKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseKeys").finish_non_exhaustive()
    }
}

impl ResponseKeys {
    /// The response in one piece: `response_nonce ‖ sealed`.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let (nonce, cipher, aead_nonce) = self.keys(&self.single);
        let mut out = nonce.to_vec();
        out.extend_from_slice(&seal(&cipher, &aead_nonce, 0, plaintext, b""));
        out
    }

    /// A chunked response of `chunks`, the last one final.
    pub fn seal_chunked<'a>(&self, chunks: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
        let (nonce, cipher, aead_nonce) = self.keys(&self.chunked);
        let mut out = nonce.to_vec();
        let chunks: Vec<&[u8]> = chunks.into_iter().collect();
        let last = chunks.len().saturating_sub(1);
        for (counter, chunk) in chunks.iter().enumerate() {
            let is_final = counter == last;
            let sealed = seal(&cipher, &aead_nonce, counter as u64, chunk, if is_final { b"final" } else { b"" });
            varint(&mut out, if is_final { 0 } else { sealed.len() as u64 });
            out.extend_from_slice(&sealed);
        }
        if chunks.is_empty() {
            varint(&mut out, 0);
            out.extend_from_slice(&seal(&cipher, &aead_nonce, 0, b"", b"final"));
        }
        out
    }

    /// A fresh response nonce, and the AEAD key and nonce derived from it:
    /// `prk = HKDF-Extract(enc ‖ response_nonce, secret)`, then `key` and
    /// `nonce` expanded from it.
    fn keys(
        &self,
        secret: &[u8; NONCE_SECRET_LEN],
    ) -> ([u8; NONCE_SECRET_LEN], ChaCha20Poly1305, [u8; AEAD_NONCE_LEN]) {
        let mut response_nonce = [0u8; NONCE_SECRET_LEN];
        // The operating system's generator failing is beyond recovery here.
        OsRng.try_fill_bytes(&mut response_nonce).expect("the operating system's random generator");
        let salt = [&self.enc[..], &response_nonce[..]].concat();
        let prk = hkdf::Hkdf::<Sha256>::new(Some(&salt), secret);
        let mut key = [0u8; 32];
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        // Both lengths are far below HKDF-SHA256's limit.
        let _ = prk.expand(b"key", &mut key);
        let _ = prk.expand(b"nonce", &mut nonce);
        (response_nonce, ChaCha20Poly1305::new(&Key::from(key)), nonce)
    }
}

/// Seals chunk `counter`: its nonce is the base nonce XOR the counter.
fn seal(cipher: &ChaCha20Poly1305, base: &[u8; AEAD_NONCE_LEN], counter: u64, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let mut nonce = *base;
    for (byte, c) in nonce[AEAD_NONCE_LEN - 8..].iter_mut().zip(counter.to_be_bytes()) {
        *byte ^= c;
    }
    // ChaCha20-Poly1305 refuses only plaintexts over 256 GiB.
    cipher.encrypt(&Nonce::from(nonce), Payload { msg: plaintext, aad }).unwrap_or_default()
}

/// A QUIC variable-length integer (RFC 9000 §16).
fn varint(out: &mut Vec<u8>, value: u64) {
    match value {
        0..=0x3f => out.push(value as u8),
        0x40..=0x3fff => out.extend_from_slice(&(value as u16 | 0x4000).to_be_bytes()),
        0x4000..=0x3fff_ffff => out.extend_from_slice(&(value as u32 | 0x8000_0000).to_be_bytes()),
        _ => out.extend_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

#[cfg(test)]
mod tests {
    //! Round trips against a client written here from RFC 9458 (a test
    //! double of OpenGradient's; the SDK itself judges in the end-to-end
    //! tests).

    use hpke::OpModeS;

    use super::*;

    struct Client {
        enc: Vec<u8>,
        single: [u8; 32],
        chunked: [u8; 32],
    }

    fn encapsulate(key: &OhttpKey, header: [u8; 7], plaintext: &[u8]) -> (Vec<u8>, Client) {
        let public = <X25519HkdfSha256 as Kem>::PublicKey::from_bytes(&key.public_key()).unwrap();
        let info = [LABEL_REQUEST, &[0u8], &header].concat();
        let (enc, mut context) = hpke::setup_sender::<HpkeChaCha, HkdfSha256, X25519HkdfSha256, _>(
            &OpModeS::Base,
            &public,
            &info,
            &mut rand_core::UnwrapErr(OsRng),
        )
        .unwrap();
        let sealed = context.seal(plaintext, b"").unwrap();
        let mut client = Client { enc: enc.to_bytes().to_vec(), single: [0; 32], chunked: [0; 32] };
        context.export(LABEL_RESPONSE, &mut client.single).unwrap();
        context.export(LABEL_CHUNKED_RESPONSE, &mut client.chunked).unwrap();
        ([&header[..], &client.enc, &sealed].concat(), client)
    }

    fn header() -> [u8; 7] {
        let mut h = [KEY_ID, 0, 0, 0, 0, 0, 0];
        h[1..3].copy_from_slice(&KEM_ID.to_be_bytes());
        h[3..5].copy_from_slice(&KDF_ID.to_be_bytes());
        h[5..7].copy_from_slice(&AEAD_ID.to_be_bytes());
        h
    }

    fn open(secret: &[u8; 32], enc: &[u8], nonce: &[u8], counter: u64, sealed: &[u8], aad: &[u8]) -> Vec<u8> {
        let prk = hkdf::Hkdf::<Sha256>::new(Some(&[enc, nonce].concat()), secret);
        let (mut key, mut base) = ([0u8; 32], [0u8; 12]);
        prk.expand(b"key", &mut key).unwrap();
        prk.expand(b"nonce", &mut base).unwrap();
        for (byte, c) in base[4..].iter_mut().zip(counter.to_be_bytes()) {
            *byte ^= c;
        }
        ChaCha20Poly1305::new(&Key::from(key)).decrypt(&Nonce::from(base), Payload { msg: sealed, aad }).unwrap()
    }

    #[test]
    fn a_request_opens_and_its_response_opens_at_the_client() {
        let key = OhttpKey::from_seed(7, 1000);
        let (wire, client) = encapsulate(&key, header(), b"{\"model\":\"m\"}");
        let (plaintext, keys) = key.decapsulate(&wire).unwrap();
        assert_eq!(plaintext, b"{\"model\":\"m\"}");
        let response = keys.seal(b"answer");
        assert_eq!(open(&client.single, &client.enc, &response[..32], 0, &response[32..], b""), b"answer");
    }

    #[test]
    fn a_chunked_response_frames_each_chunk_and_marks_the_last_final() {
        let key = OhttpKey::from_seed(7, 1000);
        let (wire, client) = encapsulate(&key, header(), b"stream");
        let (_, keys) = key.decapsulate(&wire).unwrap();
        let response = keys.seal_chunked([&b"data: one\n\n"[..], b"data: two\n\n", b""]);
        let (nonce, mut rest) = response.split_at(32);
        let mut seen = Vec::new();
        let mut counter = 0;
        loop {
            let len = rest[0] as usize; // every chunk here is under 64 bytes
            rest = &rest[1..];
            if len == 0 {
                seen.push(open(&client.chunked, &client.enc, nonce, counter, rest, b"final"));
                break;
            }
            seen.push(open(&client.chunked, &client.enc, nonce, counter, &rest[..len], b""));
            rest = &rest[len..];
            counter += 1;
        }
        assert_eq!(seen, [&b"data: one\n\n"[..], b"data: two\n\n", b""]);
    }

    #[test]
    fn what_is_not_this_gateways_is_refused_with_its_reason() {
        let key = OhttpKey::from_seed(7, 1000);
        assert_eq!(key.decapsulate(&[1, 2, 3]).unwrap_err(), OhttpError::Truncated(3));
        let mut other = header();
        other[0] = 9;
        let (wire, _) = encapsulate(&key, other, b"x");
        assert_eq!(key.decapsulate(&wire).unwrap_err(), OhttpError::UnknownKey(9));
        let mut aes = header();
        aes[6] = 1;
        let (wire, _) = encapsulate(&key, aes, b"x");
        assert!(matches!(key.decapsulate(&wire).unwrap_err(), OhttpError::UnsupportedSuite { aead: 1, .. }));
        // Sealed to another key, or altered on the way: it does not open.
        let (wire, _) = encapsulate(&OhttpKey::from_seed(8, 1000), header(), b"x");
        assert_eq!(key.decapsulate(&wire).unwrap_err(), OhttpError::Decrypt);
        let (mut wire, _) = encapsulate(&key, header(), b"x");
        *wire.last_mut().unwrap() ^= 1;
        assert_eq!(key.decapsulate(&wire).unwrap_err(), OhttpError::Decrypt);
    }

    #[test]
    fn the_key_config_is_rfc_9458s() {
        let key = OhttpKey::from_seed(7, 1000);
        let config = key.key_config();
        assert_eq!(config.len(), 41);
        assert_eq!(&config[..3], &[KEY_ID, 0x00, 0x20]);
        assert_eq!(&config[3..35], &key.public_key());
        assert_eq!(&config[35..], &[0, 4, 0, 1, 0, 3]);
        assert_eq!(&key.key_configs()[..2], &[0, 41]);
        assert_eq!(OhttpKey::from_seed(7, 1000).public_key(), key.public_key());
        assert_ne!(OhttpKey::from_seed(7, 1001).public_key(), key.public_key());
    }

    #[test]
    fn varints_use_the_shortest_form() {
        for (value, bytes) in
            [(0u64, vec![0u8]), (63, vec![63]), (64, vec![0x40, 64]), (16_384, vec![0x80, 0, 0x40, 0])]
        {
            let mut out = Vec::new();
            varint(&mut out, value);
            assert_eq!(out, bytes, "{value}");
        }
    }
}
