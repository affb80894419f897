//! The CUDA execution provider ([`Device::Cuda`](super::Device::Cuda)):
//! preloading NVIDIA's libraries and registering the provider on a session
//! builder. Without the `cuda` cargo feature both say that this build has no
//! CUDA support.

use std::path::{Path, PathBuf};

#[cfg(feature = "cuda")]
use ort::ep::{CUDA, ExecutionProvider};
use ort::session::builder::SessionBuilder;

use crate::inference::error::InferenceError;

/// Preloads the CUDA libraries and checks that the library has the CUDA provider.
#[cfg(feature = "cuda")]
pub(super) fn prepare(library: &Path, preload: &[PathBuf]) -> Result<(), InferenceError> {
    for path in preload {
        // SAFETY: loading a shared library runs its initialisers; these are
        // NVIDIA's CUDA libraries, named by the user or the CLI.
        let loaded = unsafe {
            libloading::os::unix::Library::open(
                Some(path),
                libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
            )
        };
        let library =
            loaded.map_err(|e| InferenceError::Cuda { reason: format!("cannot preload {}: {e}", path.display()) })?;
        // Kept loaded for the life of the process, as the provider expects.
        std::mem::forget(library);
    }
    match CUDA::is_available() {
        Ok(true) => Ok(()),
        Ok(false) => Err(InferenceError::Cuda {
            reason: format!(
                "the ONNX Runtime library {} has no CUDA provider\nhelp: use the library of the `onnxruntime-gpu` wheel (onnxruntime/capi/libonnxruntime.so.*, with libonnxruntime_providers_cuda.so beside it), or run on the CPU",
                library.display()
            ),
        }),
        Err(e) => Err(InferenceError::Cuda { reason: e.to_string() }),
    }
}

/// Registers the CUDA provider on `builder`; a failure is an error, never a fallback.
#[cfg(feature = "cuda")]
pub(super) fn register(builder: SessionBuilder, device_id: i32) -> Result<SessionBuilder, InferenceError> {
    builder
        .with_execution_providers([CUDA::default().with_device_id(device_id).build().error_on_failure()])
        .map_err(|e| InferenceError::Cuda {
            reason: format!("cannot register the CUDA provider on device {device_id}: {e}\nhelp: check that a GPU is present (nvidia-smi) and that the CUDA 13 and cuDNN 9 libraries are preloaded or on the loader's path"),
        })
}

#[cfg(not(feature = "cuda"))]
fn unsupported() -> InferenceError {
    InferenceError::Cuda {
        reason: "this build of nml has no CUDA support\nhelp: rebuild with the `cuda` feature of nml-runtime (`cargo build --release --features nml-runtime/cuda`), or run on the CPU".to_owned(),
    }
}

#[cfg(not(feature = "cuda"))]
pub(super) fn prepare(_library: &Path, _preload: &[PathBuf]) -> Result<(), InferenceError> {
    Err(unsupported())
}

#[cfg(not(feature = "cuda"))]
pub(super) fn register(_builder: SessionBuilder, _device_id: i32) -> Result<SessionBuilder, InferenceError> {
    Err(unsupported())
}
