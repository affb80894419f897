//! How the ONNX executor runs models: the library, the device, the threads,
//! the timeout and the graph optimisation level ([`OnnxConfig`]).

use std::path::PathBuf;
use std::time::Duration;

use crate::inference::executor::DEFAULT_TIMEOUT;

/// Where models run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU through ONNX Runtime's CUDA provider (cargo feature `cuda`).
    Cuda {
        /// The CUDA device ordinal.
        device_id: i32,
    },
}

/// ONNX Runtime's graph optimisation levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GraphOptimization {
    /// No rewrites.
    Disabled,
    /// Semantics-preserving rewrites only (the default; see [the backend's
    /// docs](super#determinism)).
    #[default]
    Basic,
    /// Also node fusions (machine-dependent results).
    Extended,
    /// Everything, layout transformations included (machine-dependent results).
    All,
}

/// How [`OnnxExecutor`](super::OnnxExecutor) runs models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxConfig {
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.31.1`), version
    /// 1.24 or newer.
    pub library: PathBuf,
    /// Where models run.
    pub device: Device,
    /// Worker threads, i.e. how many requests run at once (default: the
    /// machine's available parallelism).
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session (default 1: parallelism
    /// comes from running requests side by side).
    pub intra_threads: usize,
    /// How long a caller waits for a request, queueing included (default
    /// [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Graph optimisation (default [`GraphOptimization::Basic`]).
    pub optimization: GraphOptimization,
    /// Shared libraries to load, in order and with `RTLD_GLOBAL`, before the
    /// CUDA provider is registered: the CUDA and cuDNN libraries of the
    /// `nvidia-*` wheels, which the loader does not find by itself.
    pub cuda_preload: Vec<PathBuf>,
}

impl OnnxConfig {
    /// The defaults, running on the CPU with `library`.
    pub fn new(library: impl Into<PathBuf>) -> Self {
        Self {
            library: library.into(),
            device: Device::Cpu,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            intra_threads: 1,
            timeout: DEFAULT_TIMEOUT,
            optimization: GraphOptimization::Basic,
            cuda_preload: Vec::new(),
        }
    }
}
