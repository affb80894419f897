//! On-chain inference without the chain: the OGInference ABI, request
//! identity, TensorLib ↔ ONNX tensor conversion, the model registry and the
//! executors that run models.
//!
//! This layer knows nothing of blocks, the mempool or RPC (those build on it).
//! The mempool's path through it:
//!
//! 1. decode the precompile's calldata with [`InferenceCall::decode`];
//! 2. identify a model request with [`request_id`] (identical requests run once);
//! 3. during simulation answer with [`ModelOutput::simulation`];
//! 4. run the unknown requests of a round side by side with
//!    [`Executor::run_all_requests`] (or one with [`Executor::run_request`]);
//! 5. at inclusion encode the recorded output with [`InferenceCall::encode_model_output`],
//!    or revert with the error's message ([`InferenceError`] displays as a
//!    readable reason that names the model and the tensor).
//!
//! Model ids and element types are the vocabulary shared with the compiler
//! (`nml-protocol`). The modules, each using only the ones before it:
//! [`error`], [`abi`], [`canonical`] (a model request read from its
//! canonical encoding in one pass), [`tensor`] (TensorLib ↔ typed tensors), [`executor`]
//! (the backend-independent [`Executor`] and [`SessionFactory`] traits),
//! [`registry`] (models by id, loaded through a `SessionFactory`) and
//! [`onnx`], the ONNX Runtime backend: [`OnnxExecutor`], whose models live
//! in a [`ModelRegistry`]; and [`remote`], the [`RemoteExecutor`] that sends
//! chosen models to a serving engine over the Open Inference Protocol; and
//! [`history`], price-history queries (the precompile at 0x…F5) as the model
//! requests they stand for.

pub mod abi;
pub mod canonical;
pub mod error;
pub mod executor;
pub mod history;
pub mod onnx;
pub mod registry;
pub mod remote;
pub mod tensor;

pub use abi::{InferenceCall, InferenceMode, ModelInferenceRequest, ModelInput, ModelOutput, request_id};
pub use error::InferenceError;
pub use executor::{DEFAULT_TIMEOUT, Executor, SessionFactory, Timed};
pub use nml_protocol::ModelId;
pub use onnx::{Device, GraphOptimization, ModelRegistry, OnnxConfig, OnnxExecutor};
pub use registry::{ModelInfo, Registry};
pub use remote::{Endpoint, RemoteExecutor, fetch_signature};
pub use tensor::{ModelSignature, TensorSpec};
