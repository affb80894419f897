//! ONNX Runtime sessions: the process's one environment (and library), and
//! the factory that builds every session with the executor's settings and
//! reads a loaded model's signature.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nml_protocol::{Dim, ModelId};
use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::value::ValueType;

use super::config::{Device, GraphOptimization, OnnxConfig};
use super::convert::element_type;
use super::cuda;
use crate::inference::error::InferenceError;
use crate::inference::executor::SessionFactory;
use crate::inference::tensor::{ModelSignature, TensorSpec};

/// The process's ONNX Runtime environment. `ort` allows one per process and
/// loads one library; a second executor shares both, and asking for another
/// library afterwards is an error.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

pub(crate) fn environment(library: &Path) -> Result<Environment, InferenceError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, environment)) = slot.as_ref() {
        return if same_file(loaded, library) {
            Ok(environment.clone())
        } else {
            Err(InferenceError::Library {
                path: library.to_path_buf(),
                reason: format!("this process has already loaded ONNX Runtime from {}", loaded.display()),
            })
        };
    }
    let library_error = |reason: String| InferenceError::Library { path: library.to_path_buf(), reason };
    if !library.is_file() {
        return Err(library_error("no such file".to_owned()));
    }
    let builder = ort::init_from(library).map_err(|e| library_error(e.to_string()))?;
    let environment =
        builder.with_name("nml").with_telemetry(false).build().map_err(|e| library_error(e.to_string()))?;
    // Every failure reaches the caller as an error carrying ONNX Runtime's
    // message (and becomes a revert reason); logging it again on stderr
    // would only duplicate it.
    environment.set_log_level(ort::logging::LogLevel::Fatal);
    *slot = Some((library.to_path_buf(), environment.clone()));
    Ok(environment)
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Creates sessions with the executor's settings: what the registry of an
/// [`OnnxExecutor`](super::OnnxExecutor) loads its models with.
pub struct OnnxSessions {
    environment: Environment,
    device: Device,
    intra_threads: usize,
    optimization: GraphOptimization,
}

impl OnnxSessions {
    pub(super) fn new(environment: Environment, config: &OnnxConfig) -> Result<Self, InferenceError> {
        let factory = Self {
            environment,
            device: config.device,
            intra_threads: config.intra_threads.max(1),
            optimization: config.optimization,
        };
        if let Device::Cuda { .. } = config.device {
            cuda::prepare(&config.library, &config.cuda_preload)?;
            // Registering the provider loads its library and CUDA's: fail
            // here, before any model, when they are missing.
            factory.builder().map_err(|e| match e {
                BuildError::Cuda(e) => e,
                BuildError::Ort(reason) => InferenceError::Cuda { reason },
            })?;
        }
        Ok(factory)
    }

    fn builder(&self) -> Result<SessionBuilder, BuildError> {
        let level = match self.optimization {
            GraphOptimization::Disabled => GraphOptimizationLevel::Disable,
            GraphOptimization::Basic => GraphOptimizationLevel::Level1,
            GraphOptimization::Extended => GraphOptimizationLevel::Level2,
            GraphOptimization::All => GraphOptimizationLevel::All,
        };
        let ort = |e: ort::Error<SessionBuilder>| BuildError::Ort(e.to_string());
        let builder = Session::builder(&self.environment)
            .map_err(|e| BuildError::Ort(e.to_string()))?
            .with_optimization_level(level)
            .map_err(ort)?
            .with_parallel_execution(false)
            .map_err(ort)?
            .with_inter_threads(1)
            .map_err(ort)?
            .with_intra_threads(self.intra_threads)
            .map_err(ort)?
            .with_intra_op_spinning(false)
            .map_err(ort)?
            .with_deterministic_compute(true)
            .map_err(ort)?;
        match self.device {
            Device::Cpu => Ok(builder),
            Device::Cuda { device_id } => cuda::register(builder, device_id).map_err(BuildError::Cuda),
        }
    }
}

impl SessionFactory for OnnxSessions {
    type Session = Session;

    fn create(&self, id: &ModelId, bytes: &[u8]) -> Result<Session, InferenceError> {
        let load_error = |reason: String| InferenceError::LoadModel { model: id.to_string(), reason };
        let mut builder = self.builder().map_err(|e| match e {
            BuildError::Cuda(e) => e,
            BuildError::Ort(reason) => load_error(reason),
        })?;
        builder.commit_from_memory(bytes).map_err(|e| match self.device {
            Device::Cpu => load_error(e.to_string()),
            Device::Cuda { .. } => InferenceError::Cuda { reason: format!("model `{id}`: {e}") },
        })
    }

    fn signature(&self, id: &ModelId, session: &Session) -> Result<ModelSignature, InferenceError> {
        let spec = |kind: &str, outlet: &ort::value::Outlet| {
            let unsupported = |ty: String| InferenceError::UnsupportedType {
                model: id.to_string(),
                tensor: format!("{kind} `{}`", outlet.name()),
                ty,
            };
            let ValueType::Tensor { ty, shape, dimension_symbols } = outlet.dtype() else {
                return Err(unsupported(outlet.dtype().to_string()));
            };
            let element = element_type(*ty).ok_or_else(|| unsupported(ty.to_string()))?;
            let shape = shape
                .iter()
                .enumerate()
                .map(|(i, &d)| match u64::try_from(d) {
                    Ok(d) => Dim::Fixed(d),
                    Err(_) => Dim::Symbolic(dimension_symbols.get(i).filter(|s| !s.is_empty()).cloned()),
                })
                .collect();
            Ok(TensorSpec { name: outlet.name().to_owned(), element, shape })
        };
        Ok(ModelSignature {
            inputs: session.inputs().iter().map(|o| spec("input", o)).collect::<Result<_, _>>()?,
            outputs: session.outputs().iter().map(|o| spec("output", o)).collect::<Result<_, _>>()?,
        })
    }
}

/// Why a session builder could not be made.
enum BuildError {
    Ort(String),
    Cuda(InferenceError),
}
