//! Model ids: the forms the model hub accepts, and the id nml derives from an
//! ONNX file's bytes when a declaration gives none.

use sha2::{Digest, Sha256};

/// Which form a model id has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidForm {
    /// IPFS CIDv0: `Qm` + 44 base58btc characters.
    V0,
    /// IPFS CIDv1 in base32 (`b...`).
    V1,
    /// A Walrus blob id: 43 characters of url-safe base64.
    Walrus,
}

const BASE58: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

/// The form of `id`, or `None` when it is none of the accepted forms.
pub fn form(id: &str) -> Option<CidForm> {
    if id.len() == 46 && id.starts_with("Qm") && id.chars().all(|c| BASE58.contains(c)) {
        return Some(CidForm::V0);
    }
    if id.len() == 43 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Some(CidForm::Walrus);
    }
    if let Some(rest) = id.strip_prefix('b') {
        let bytes = base32_decode(rest)?;
        // version 1, then a codec and a multihash of at least a few bytes
        if bytes.len() >= 4 && bytes[0] == 1 {
            return Some(CidForm::V1);
        }
    }
    None
}

/// The CIDv1 (raw codec, sha2-256, base32) of a file's bytes — what
/// `ipfs add --cid-version 1 --raw-leaves` gives for a single-block file.
pub fn derive(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut cid = vec![0x01, 0x55, 0x12, 0x20];
    cid.extend_from_slice(&digest);
    format!("b{}", base32_encode(&cid))
}

fn base32_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 8 / 5 + 1);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(BASE32[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(BASE32[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    out
}

fn base32_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = BASE32.iter().position(|&x| x == c)? as u32;
        buffer = (buffer << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
        buffer &= (1 << bits) - 1;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_three_forms() {
        assert_eq!(form("QmRhcpDXfYCKsimTmJYrAVM4Bbvck59Zb2onj3MHv9Kw5N"), Some(CidForm::V0));
        assert_eq!(form("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi"), Some(CidForm::V1));
        assert_eq!(form("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE"), Some(CidForm::Walrus));
        assert_eq!(form("Qm0"), None);
        assert_eq!(form("hello"), None);
        assert_eq!(form("bafy!"), None);
    }

    #[test]
    fn derived_ids_are_cidv1_raw_sha256() {
        // `ipfs add --cid-version 1 --raw-leaves` of an empty file.
        assert_eq!(derive(b""), "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
        assert_eq!(form(&derive(b"model")), Some(CidForm::V1));
    }
}
