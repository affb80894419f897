//! The models a node serves: id → ONNX bytes, file and signature, with the
//! pool of sessions that runs each.
//!
//! A model is registered under an id given by the user (an IPFS CIDv0, a
//! CIDv1 or a Walrus blob id, the forms the model hub uses) or, without one,
//! under the CIDv1 derived from its bytes ([`ModelId::derive`]) — the same id
//! the compiler gives a `model` declaration without an explicit id, so a
//! compiled contract finds the model that sits next to it.
//!
//! The registry loads models through a [`SessionFactory`], so it knows
//! nothing of the backend that runs them.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use nml_protocol::ModelId;

use super::error::InferenceError;
use super::executor::SessionFactory;
use super::tensor::ModelSignature;

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
pub(crate) struct LoadedModel<S> {
    pub(crate) info: ModelInfo,
    bytes: Arc<[u8]>,
    idle: Mutex<Vec<S>>,
}

impl<S> LoadedModel<S> {
    /// An idle session, or a new one when all are busy. The pool grows to the
    /// number of workers that run this model at once and no further.
    pub(crate) fn checkout<F: SessionFactory<Session = S>>(&self, factory: &F) -> Result<S, InferenceError> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        match idle {
            Some(session) => Ok(session),
            None => factory.create(&self.info.id, &self.bytes),
        }
    }

    /// Returns a session to the pool.
    pub(crate) fn checkin(&self, session: S) {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(session);
    }
}

/// Why [`Registry::load_dir`] stopped: every variant names the folder or
/// the file at fault (a model's own error names only its id).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadDirError {
    /// The folder could not be listed.
    #[error("cannot list {}: {reason}", dir.display())]
    List {
        /// The folder.
        dir: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A model file could not be read.
    #[error("cannot read model file {}: {reason}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// A model file was read but could not be registered (it does not load,
    /// its id is taken, the node is full).
    #[error("{}: {error}", path.display())]
    Register {
        /// The file.
        path: PathBuf,
        /// Why, as for [`Registry::register`] (boxed: the error is large).
        error: Box<InferenceError>,
    },
}

/// The most models one node serves (each holds its bytes and at least one
/// session): a registration past it is refused.
pub const MAX_MODELS: usize = 1_024;

/// The models a node serves, by id, loaded by `F`. Thread-safe: models can
/// be added while others run.
pub struct Registry<F: SessionFactory> {
    factory: Arc<F>,
    models: RwLock<BTreeMap<ModelId, Arc<LoadedModel<F::Session>>>>,
}

impl<F: SessionFactory> fmt::Debug for Registry<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry").field("models", &self.list()).finish_non_exhaustive()
    }
}

impl<F: SessionFactory> Registry<F> {
    pub(crate) fn new(factory: Arc<F>) -> Self {
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

    /// Registers the ONNX file at `path`; see [`Registry::register`].
    pub fn register_file(&self, path: &Path, id: Option<&str>) -> Result<ModelInfo, InferenceError> {
        let bytes = std::fs::read(path)
            .map_err(|e| InferenceError::ReadModel { path: path.to_path_buf(), reason: e.to_string() })?;
        self.insert(bytes, id, Some(path.to_path_buf()))
    }

    /// Registers every `*.onnx` file directly in `dir` (not in subfolders), in
    /// file-name order, each under the id derived from its bytes. The first
    /// file that fails stops it, and the error names that file.
    pub fn load_dir(&self, dir: &Path) -> Result<Vec<ModelInfo>, LoadDirError> {
        let list_error = |e: std::io::Error| LoadDirError::List { dir: dir.to_path_buf(), reason: e.to_string() };
        let mut files = std::fs::read_dir(dir)
            .map_err(list_error)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(list_error)?;
        files.retain(|p| p.extension().is_some_and(|e| e == "onnx") && p.is_file());
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let bytes = match std::fs::read(&path) {
                    Ok(bytes) => bytes,
                    Err(e) => return Err(LoadDirError::Read { path, reason: e.to_string() }),
                };
                self.insert(bytes, None, Some(path.clone()))
                    .map_err(|error| LoadDirError::Register { path, error: Box::new(error) })
            })
            .collect()
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
    pub fn new_session(&self, id: &ModelId) -> Result<F::Session, InferenceError> {
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

    /// The id of the registered model whose id is the text `id`.
    pub fn id(&self, id: &str) -> Option<ModelId> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        models.get_key_value(id).map(|(id, _)| id.clone())
    }

    pub(crate) fn loaded(&self, id: &ModelId) -> Result<Arc<LoadedModel<F::Session>>, InferenceError> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        models.get(id).cloned().ok_or_else(|| InferenceError::UnknownModel { model: id.to_string() })
    }

    pub(crate) fn factory(&self) -> &F {
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
        let full = || InferenceError::TooManyModels { limit: MAX_MODELS };
        if self.models.read().unwrap_or_else(PoisonError::into_inner).len() >= MAX_MODELS {
            return Err(full());
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
        if models.len() >= MAX_MODELS {
            return Err(full());
        }
        models.insert(id, model);
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::tensor::ModelSignature;

    /// A test double: loads any bytes, as a model with no tensors.
    struct AnyBytes;

    impl SessionFactory for AnyBytes {
        type Session = ();

        fn create(&self, _: &ModelId, _: &[u8]) -> Result<(), InferenceError> {
            Ok(())
        }

        fn signature(&self, _: &ModelId, _: &()) -> Result<ModelSignature, InferenceError> {
            Ok(ModelSignature::default())
        }
    }

    /// A test double: loads any bytes but empty ones.
    struct NotEmpty;

    impl SessionFactory for NotEmpty {
        type Session = ();

        fn create(&self, id: &ModelId, bytes: &[u8]) -> Result<(), InferenceError> {
            match bytes {
                [] => Err(InferenceError::LoadModel { model: id.to_string(), reason: "no graph".into() }),
                _ => Ok(()),
            }
        }

        fn signature(&self, _: &ModelId, _: &()) -> Result<ModelSignature, InferenceError> {
            Ok(ModelSignature::default())
        }
    }

    #[test]
    fn a_folder_with_a_model_that_does_not_load_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.onnx"), b"a model").unwrap();
        std::fs::write(dir.path().join("empty.onnx"), b"").unwrap();
        std::fs::write(dir.path().join("notes.txt"), b"").unwrap();
        let registry = Registry::new(Arc::new(NotEmpty));
        let err = registry.load_dir(dir.path()).unwrap_err();
        let empty = dir.path().join("empty.onnx");
        let id = ModelId::derive(b"");
        assert_eq!(
            err,
            LoadDirError::Register {
                path: empty.clone(),
                error: Box::new(InferenceError::LoadModel { model: id.to_string(), reason: "no graph".into() }),
            }
        );
        assert_eq!(err.to_string(), format!("{}: model `{id}` cannot be loaded: no graph", empty.display()));

        std::fs::remove_file(&empty).unwrap();
        let infos = registry.load_dir(dir.path()).unwrap();
        assert_eq!(infos.len(), 1);
        assert_eq!(infos[0].file.as_deref(), Some(dir.path().join("a.onnx").as_path()));
        let missing = dir.path().join("missing");
        let err = registry.load_dir(&missing).unwrap_err();
        assert!(matches!(&err, LoadDirError::List { dir, .. } if *dir == missing), "{err:?}");
    }

    #[test]
    fn a_node_serves_at_most_max_models() {
        let registry = Registry::new(Arc::new(AnyBytes));
        for i in 0..MAX_MODELS {
            registry.register(i.to_le_bytes().to_vec(), None).unwrap();
        }
        let refused = registry.register(b"one more".to_vec(), None).unwrap_err();
        assert!(matches!(refused, InferenceError::TooManyModels { limit: MAX_MODELS }), "{refused}");
        // A model already served registers again as before.
        assert!(registry.register(0usize.to_le_bytes().to_vec(), None).is_ok());
        assert_eq!(registry.list().len(), MAX_MODELS);
    }
}
