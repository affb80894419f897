//! Model ids: the forms the model hub accepts, and the id derived from an
//! ONNX file's bytes when none is given.
//!
//! The compiler gives a `model` declaration without a `cid` the id derived
//! from its ONNX file, and a node registers a model file without an id under
//! the same derivation: so a compiled contract finds the model that sits
//! next to it.

use std::fmt;
use std::str::FromStr;

use crate::unixfs::{CidVersion, file_cid};

/// Which form a [`ModelId`] has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ModelIdForm {
    /// IPFS CIDv0: `Qm` + 44 base58btc characters.
    CidV0,
    /// IPFS CIDv1 in base32 (`b…`).
    CidV1,
    /// A Walrus blob id: 43 characters of url-safe base64.
    Walrus,
}

/// A model id in one of the forms the model hub accepts; valid by
/// construction ([`ModelId::parse`], [`ModelId::derive`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ModelId(String);

/// Text that is none of the accepted forms of a [`ModelId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid model id `{id}`: {}", Self::EXPECTED)]
pub struct InvalidModelId {
    /// The text given.
    pub id: String,
}

impl InvalidModelId {
    /// Which forms are accepted.
    pub const EXPECTED: &str = "expected an IPFS CIDv0 (`Qm` + 44 base58 characters), a CIDv1 in base32 (`b…`) or a Walrus blob id (43 characters of url-safe base64)";
}

impl ModelId {
    /// Checks `id` against the accepted forms.
    pub fn parse(id: &str) -> Result<Self, InvalidModelId> {
        match form(id) {
            Some(_) => Ok(Self(id.to_owned())),
            None => Err(InvalidModelId { id: id.to_owned() }),
        }
    }

    /// The id of a file's bytes: the CIDv1 `ipfs add --cid-version 1` gives
    /// it (raw leaves; base32), for a file of any size ([`unixfs`](crate::unixfs)).
    pub fn derive(bytes: &[u8]) -> Self {
        Self(file_cid(bytes, CidVersion::V1).to_string())
    }

    /// The CIDv0 plain `ipfs add` gives the same bytes (`Qm…`).
    pub fn derive_v0(bytes: &[u8]) -> Self {
        Self(file_cid(bytes, CidVersion::V0).to_string())
    }

    /// The id's form.
    pub fn form(&self) -> ModelIdForm {
        form(&self.0).unwrap_or(ModelIdForm::CidV1)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A map keyed by model ids can be searched with the text of one.
impl std::borrow::Borrow<str> for ModelId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModelId {
    type Err = InvalidModelId;

    fn from_str(s: &str) -> Result<Self, InvalidModelId> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ModelId {
    type Error = InvalidModelId;

    fn try_from(s: String) -> Result<Self, InvalidModelId> {
        Self::parse(&s)
    }
}

impl From<ModelId> for String {
    fn from(id: ModelId) -> Self {
        id.0
    }
}

/// The form of `id`, or `None` when it is none of the accepted forms.
fn form(id: &str) -> Option<ModelIdForm> {
    if id.len() == 43 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Some(ModelIdForm::Walrus);
    }
    // A CID as the hub writes them: CIDv0 in base58btc, CIDv1 in base32.
    let cid = cid::Cid::try_from(id).ok()?;
    match cid.version() {
        cid::Version::V0 if id.starts_with("Qm") => Some(ModelIdForm::CidV0),
        cid::Version::V1 if id.starts_with('b') => Some(ModelIdForm::CidV1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_ids_of_one_chunk_are_cidv1_raw_sha256() {
        // `ipfs add --cid-version 1` of the same bytes (one chunk: a raw leaf).
        let all_bytes: Vec<u8> = (0..=255).collect();
        let cases: [(&[u8], &str); 3] = [
            (b"", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
            (b"nml", "bafkreidunk2qpkfkawhuhnlz6sufbv2wvdrq3tgaro5i5ppfj6eteyzaea"),
            (&all_bytes, "bafkreicav7zotuwysixepl6umshgsz2jofmhqx55dwuhbzyrajtl7fciqa"),
        ];
        for (bytes, expected) in cases {
            let id = ModelId::derive(bytes);
            assert_eq!(id.as_str(), expected);
            assert_eq!(id.form(), ModelIdForm::CidV1);
            assert_eq!(ModelId::parse(expected), Ok(id));
        }
    }

    #[test]
    fn ids_of_the_three_forms_round_trip() {
        let forms = [
            ("QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51", ModelIdForm::CidV0),
            ("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", ModelIdForm::CidV1),
            ("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE", ModelIdForm::Walrus),
        ];
        for (text, form) in forms {
            let id = ModelId::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!((id.form(), id.as_str(), id.to_string()), (form, text, text.to_owned()));
            assert_eq!(text.parse::<ModelId>().as_ref(), Ok(&id));
            assert_eq!(String::from(id), text);
        }
    }

    #[test]
    fn other_text_is_refused() {
        for bad in ["", "Qm0", "QmRhcpDXfYCKsimTmJYrAVM4Bbvck59Zb2onj3MHv9Kw50", "bafy!", "b", "hello", "./vol.onnx"] {
            let err = ModelId::parse(bad).unwrap_err();
            assert_eq!(err, InvalidModelId { id: bad.to_owned() });
            assert_eq!(err.to_string(), format!("invalid model id `{bad}`: {}", InvalidModelId::EXPECTED));
        }
    }

    #[test]
    fn ids_serialize_as_the_plain_string_and_are_checked_when_read() {
        let id = ModelId::derive(b"nml");
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<ModelId>(&json).unwrap(), id);
        let err = serde_json::from_str::<ModelId>("\"nope\"").unwrap_err();
        assert!(err.to_string().starts_with("invalid model id `nope`"), "{err}");
    }
}
