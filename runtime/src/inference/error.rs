//! Why an inference could not be served. Every message names the model (and
//! the tensor, where one is at fault): it becomes the precompile's revert
//! reason, which a contract can catch and a developer reads in a receipt.

use std::path::PathBuf;
use std::time::Duration;

use nml_protocol::InvalidModelId;

/// An inference that failed, or a model or runtime that could not be set up.
///
/// Cloneable, so that one failed run can answer every transaction that made
/// the identical request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InferenceError {
    /// The calldata is not a well-formed call to the precompile.
    #[error("invalid inference call: {reason}")]
    InvalidCall {
        /// What is wrong with it.
        reason: String,
    },
    /// A model id that is none of the accepted forms.
    #[error("invalid model id `{id}`: {reason}")]
    InvalidModelId {
        /// The id as given.
        id: String,
        /// Which forms are accepted.
        reason: String,
    },
    /// No model is registered under the id.
    #[error("unknown model `{model}`: no model with this id is registered on this node")]
    UnknownModel {
        /// The id asked for.
        model: String,
    },
    /// The id is taken by a model with different bytes.
    #[error("model id `{model}` is already registered for a different model file")]
    IdTaken {
        /// The id.
        model: String,
    },
    /// The node serves as many models as it takes.
    #[error("too many models: a node serves at most {limit}")]
    TooManyModels {
        /// The most models a node serves.
        limit: usize,
    },
    /// A model file could not be read.
    #[error("cannot read model file {}: {reason}", path.display())]
    ReadModel {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        reason: String,
    },
    /// ONNX Runtime could not load the model.
    #[error("model `{model}` cannot be loaded: {reason}")]
    LoadModel {
        /// The model's id.
        model: String,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// A graph input or output has a type that TensorLib cannot carry.
    #[error("model `{model}`: {tensor} has type {ty}, which TensorLib tensors cannot carry")]
    UnsupportedType {
        /// The model's id.
        model: String,
        /// `input `x`` or `output `y``.
        tensor: String,
        /// The graph's type.
        ty: String,
    },
    /// The request names a tensor the graph has no input for.
    #[error("model `{model}` has no input named `{tensor}` (its inputs: {expected})")]
    UnknownInput {
        /// The model's id.
        model: String,
        /// The name given.
        tensor: String,
        /// The graph's inputs with their types.
        expected: String,
    },
    /// The request names the same tensor twice.
    #[error("model `{model}`: input `{tensor}` is given more than once")]
    DuplicateInput {
        /// The model's id.
        model: String,
        /// The repeated name.
        tensor: String,
    },
    /// A graph input the request does not give.
    #[error("model `{model}`: input `{tensor}` is missing (expected {expected})")]
    MissingInput {
        /// The model's id.
        model: String,
        /// The missing input.
        tensor: String,
        /// Its type and shape.
        expected: String,
    },
    /// A string tensor for a numeric input, or numbers for a string input.
    #[error("model `{model}`: input `{tensor}` expects {expected}, but the request gives {given}")]
    WrongKind {
        /// The model's id.
        model: String,
        /// The input.
        tensor: String,
        /// What the graph expects.
        expected: String,
        /// What the request gives.
        given: String,
    },
    /// The shape given does not fit the graph's.
    #[error("model `{model}`: input `{tensor}` has shape {given}, but the model expects {expected}")]
    WrongShape {
        /// The model's id.
        model: String,
        /// The input.
        tensor: String,
        /// The graph's type and shape.
        expected: String,
        /// The shape given.
        given: String,
    },
    /// The number of values does not match the shape.
    #[error(
        "model `{model}`: input `{tensor}` has shape {shape}, which holds {expected} values, but {given} are given"
    )]
    WrongCount {
        /// The model's id.
        model: String,
        /// The input.
        tensor: String,
        /// The shape.
        shape: String,
        /// The element count of the shape.
        expected: String,
        /// The number of values given.
        given: usize,
    },
    /// A value cannot be converted to the graph's element type.
    #[error("model `{model}`: input `{tensor}` element {index}: {reason}")]
    BadValue {
        /// The model's id.
        model: String,
        /// The input.
        tensor: String,
        /// The element's flat index.
        index: usize,
        /// Why it does not convert.
        reason: String,
    },
    /// An output value cannot be expressed as a TensorLib number.
    #[error("model `{model}`: output `{tensor}` element {index}: {reason}")]
    BadOutput {
        /// The model's id.
        model: String,
        /// The output.
        tensor: String,
        /// The element's flat index.
        index: usize,
        /// Why it does not convert.
        reason: String,
    },
    /// ONNX Runtime failed while running the model.
    #[error("model `{model}` failed: {reason}")]
    Runtime {
        /// The model's id.
        model: String,
        /// ONNX Runtime's message.
        reason: String,
    },
    /// The run did not finish within the inference timeout.
    #[error("model `{model}` did not finish within the inference timeout of {}", format_duration(*timeout))]
    Timeout {
        /// The model's id.
        model: String,
        /// The timeout.
        timeout: Duration,
    },
    /// A model server could not be reached, failed on its side (HTTP 429,
    /// 5xx) or answered something that is not an answer.
    #[error("model `{model}`: the model server at {server} is unavailable: {reason}")]
    ServerUnavailable {
        /// The model's id.
        model: String,
        /// The server's base URL.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The executor has shut down, or a worker died.
    #[error("the inference executor is not running: {reason}")]
    Unavailable {
        /// What happened.
        reason: String,
    },
    /// The ONNX Runtime library could not be loaded.
    #[error(
        "cannot load ONNX Runtime from {}: {reason}\nhelp: point ORT_DYLIB_PATH at libonnxruntime 1.24 or newer, or let the nml CLI provision it",
        path.display()
    )]
    Library {
        /// The library file.
        path: PathBuf,
        /// What failed.
        reason: String,
    },
    /// CUDA was asked for and cannot be used. The executor never falls back
    /// to the CPU silently.
    #[error("cannot run models on CUDA: {reason}")]
    Cuda {
        /// Why not, and what to do.
        reason: String,
    },
}

impl From<InvalidModelId> for InferenceError {
    fn from(e: InvalidModelId) -> Self {
        Self::InvalidModelId { id: e.id, reason: InvalidModelId::EXPECTED.to_owned() }
    }
}

fn format_duration(d: Duration) -> String {
    if d.as_secs() > 0 && d.subsec_nanos() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
