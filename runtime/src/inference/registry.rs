//! The models a node serves: id → ONNX bytes, file and signature, with the
//! pool of ONNX Runtime sessions that runs each.
//!
//! A model is registered under an id given by the user (an IPFS CIDv0, a
//! CIDv1 or a Walrus blob id, the forms the model hub uses) or, without one,
//! under the CIDv1 derived from its bytes — the same id the compiler gives a
//! `model` declaration without an explicit id, so a compiled contract finds
//! the model that sits next to it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use ort::session::Session;
use sha2::{Digest, Sha256};

use super::error::InferenceError;
use super::executor::SessionFactory;
use super::tensor::ModelSignature;

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

const BASE58: &[u8] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

impl ModelId {
    /// Checks `id` against the accepted forms.
    pub fn parse(id: &str) -> Result<Self, InferenceError> {
        match form(id) {
            Some(_) => Ok(Self(id.to_owned())),
            None => Err(InferenceError::InvalidModelId {
                id: id.to_owned(),
                reason: "expected an IPFS CIDv0 (`Qm` + 44 base58 characters), a CIDv1 in base32 (`b…`) or a Walrus blob id (43 characters of url-safe base64)".to_owned(),
            }),
        }
    }

    /// The CIDv1 of a file's bytes: raw codec, sha2-256, base32 —
    /// `b` + base32lower(0x01 0x55 0x12 0x20 ‖ sha256(bytes)), what
    /// `ipfs add --cid-version 1 --raw-leaves` gives for a single-block file.
    ///
    /// This must equal what the compiler derives (`nml_compiler::sema::cid::derive`).
    /// The runtime does not depend on the compiler, so these few lines are
    /// repeated here; `tests/inference_registry.rs` pins both to the same strings.
    pub fn derive(bytes: &[u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let mut cid = vec![0x01, 0x55, 0x12, 0x20];
        cid.extend_from_slice(&digest);
        Self(format!("b{}", base32_encode(&cid)))
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

impl fmt::Display for ModelId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for ModelId {
    type Err = InferenceError;

    fn from_str(s: &str) -> Result<Self, InferenceError> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ModelId {
    type Error = InferenceError;

    fn try_from(s: String) -> Result<Self, InferenceError> {
        Self::parse(&s)
    }
}

impl From<ModelId> for String {
    fn from(id: ModelId) -> Self {
        id.0
    }
}

/// The form of `id`, tried in the compiler's order (`sema::cid::form`), so
/// that both classify every id alike.
fn form(id: &str) -> Option<ModelIdForm> {
    if id.len() == 46 && id.starts_with("Qm") && id.bytes().all(|c| BASE58.contains(&c)) {
        return Some(ModelIdForm::CidV0);
    }
    if id.len() == 43 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return Some(ModelIdForm::Walrus);
    }
    let bytes = base32_decode(id.strip_prefix('b')?)?;
    // Version 1, then a codec and a multihash of at least a few bytes.
    (bytes.len() >= 4 && bytes[0] == 1).then_some(ModelIdForm::CidV1)
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
        buffer &= (1 << bits) - 1;
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

/// What a node knows of a registered model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ModelInfo {
    /// The id contracts call it by.
    pub id: ModelId,
    /// The file it was loaded from; `None` for bytes registered directly.
    pub file: Option<PathBuf>,
    /// The size of the ONNX file in bytes.
    pub size: u64,
    /// The graph's inputs and outputs.
    pub signature: ModelSignature,
}

/// A registered model with its idle sessions.
pub(crate) struct LoadedModel {
    pub(crate) info: ModelInfo,
    bytes: Arc<[u8]>,
    idle: Mutex<Vec<Session>>,
}

impl LoadedModel {
    /// An idle session, or a new one when all are busy. The pool grows to the
    /// number of workers that run this model at once and no further.
    pub(crate) fn checkout(&self, factory: &SessionFactory) -> Result<Session, InferenceError> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(session) => Ok(session),
            None => factory.create(&self.info.id, &self.bytes),
        }
    }

    /// Returns a session to the pool.
    pub(crate) fn checkin(&self, session: Session) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(session);
    }
}

/// The models a node serves, by id. Thread-safe: models can be added while
/// others run.
pub struct ModelRegistry {
    factory: Arc<SessionFactory>,
    models: RwLock<BTreeMap<ModelId, Arc<LoadedModel>>>,
}

impl fmt::Debug for ModelRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ModelRegistry").field("models", &self.list()).finish_non_exhaustive()
    }
}

impl ModelRegistry {
    pub(crate) fn new(factory: Arc<SessionFactory>) -> Self {
        Self { factory, models: RwLock::new(BTreeMap::new()) }
    }

    /// Registers an ONNX model from its bytes under `id`, or under the id
    /// derived from the bytes when `id` is `None` (what `nml_registerModel`
    /// does). Registering the same bytes under the same id again is a no-op;
    /// an id taken by other bytes is an error, so a chain's model never
    /// changes under it.
    pub fn register(&self, bytes: Vec<u8>, id: Option<&str>) -> Result<ModelInfo, InferenceError> {
        self.insert(bytes, id, None)
    }

    /// Registers the ONNX file at `path`; see [`ModelRegistry::register`].
    pub fn register_file(&self, path: &Path, id: Option<&str>) -> Result<ModelInfo, InferenceError> {
        let bytes = std::fs::read(path)
            .map_err(|e| InferenceError::ReadModel { path: path.to_path_buf(), reason: e.to_string() })?;
        self.insert(bytes, id, Some(path.to_path_buf()))
    }

    /// Registers every `*.onnx` file directly in `dir` (not in subfolders), in
    /// file-name order, each under the id derived from its bytes.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<ModelInfo>, InferenceError> {
        let read_error =
            |e: std::io::Error| InferenceError::ReadModel { path: dir.to_path_buf(), reason: e.to_string() };
        let mut files = std::fs::read_dir(dir)
            .map_err(read_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_error)?;
        files.retain(|p| p.extension().is_some_and(|e| e == "onnx") && p.is_file());
        files.sort();
        files.iter().map(|path| self.register_file(path, None)).collect()
    }

    /// The model registered under `id`.
    pub fn get(&self, id: &ModelId) -> Option<ModelInfo> {
        self.loaded(id).ok().map(|m| m.info.clone())
    }

    /// Every registered model, by id.
    pub fn list(&self) -> Vec<ModelInfo> {
        self.models.read().unwrap_or_else(PoisonError::into_inner).values().map(|m| m.info.clone()).collect()
    }

    /// Creates sessions for `id` until `count` are idle, so that the first
    /// requests do not pay for loading the model (the pool otherwise grows on
    /// demand).
    pub fn warm_up(&self, id: &ModelId, count: usize) -> Result<(), InferenceError> {
        let model = self.loaded(id)?;
        let missing = count.saturating_sub(model.idle.lock().unwrap_or_else(PoisonError::into_inner).len());
        for _ in 0..missing {
            let session = self.factory.create(id, &model.bytes)?;
            model.checkin(session);
        }
        Ok(())
    }

    /// A new session of the model with the executor's settings, outside the
    /// pool: for benchmarks that compare a bare `Session::run` with the
    /// executor.
    pub fn new_session(&self, id: &ModelId) -> Result<Session, InferenceError> {
        let model = self.loaded(id)?;
        self.factory.create(id, &model.bytes)
    }

    /// How many sessions of the model's pool are idle now (all of them when
    /// nothing runs): the pool grows only while every session is busy, so
    /// this is the most requests of the model that ran at once.
    pub fn idle_sessions(&self, id: &ModelId) -> Option<usize> {
        let model = self.loaded(id).ok()?;
        let idle = model.idle.lock().unwrap_or_else(PoisonError::into_inner).len();
        Some(idle)
    }

    pub(crate) fn loaded(&self, id: &ModelId) -> Result<Arc<LoadedModel>, InferenceError> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        models.get(id).cloned().ok_or_else(|| InferenceError::UnknownModel { model: id.to_string() })
    }

    pub(crate) fn factory(&self) -> &SessionFactory {
        &self.factory
    }

    fn insert(&self, bytes: Vec<u8>, id: Option<&str>, file: Option<PathBuf>) -> Result<ModelInfo, InferenceError> {
        let id = match id {
            Some(id) => ModelId::parse(id)?,
            None => ModelId::derive(&bytes),
        };
        if let Ok(existing) = self.loaded(&id) {
            return if *existing.bytes == *bytes {
                Ok(existing.info.clone())
            } else {
                Err(InferenceError::IdTaken { model: id.to_string() })
            };
        }
        // Loading the model checks it and yields its signature; the session
        // becomes the first of the pool.
        let session = self.factory.create(&id, &bytes)?;
        let signature = self.factory.signature(&id, &session)?;
        let info = ModelInfo { id: id.clone(), file, size: bytes.len() as u64, signature };
        let model = Arc::new(LoadedModel { info: info.clone(), bytes: bytes.into(), idle: Mutex::new(vec![session]) });
        let mut models = self.models.write().unwrap_or_else(PoisonError::into_inner);
        // Another thread may have registered the same id meanwhile.
        if let Some(existing) = models.get(&id) {
            return if *existing.bytes == *model.bytes {
                Ok(existing.info.clone())
            } else {
                Err(InferenceError::IdTaken { model: id.to_string() })
            };
        }
        models.insert(id, model);
        Ok(info)
    }
}
