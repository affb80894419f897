//! What runs a model request, whatever the backend: the [`Executor`] trait
//! that the mempool calls, and the [`SessionFactory`] trait through which a
//! [`Registry`](super::registry::Registry) loads the models it holds.
//! The ONNX Runtime backend implements both in [`onnx`](super::onnx).

use std::time::{Duration, Instant};

use nml_protocol::ModelId;

use super::abi::{InferenceMode, ModelInferenceRequest, ModelInput, ModelOutput};
use super::error::InferenceError;
use super::tensor::ModelSignature;

/// The default inference timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs model requests. Implementations must be callable from many threads
/// at once.
pub trait Executor: Send + Sync {
    /// Runs `model` on `input` and returns its outputs (with
    /// `is_simulation_result = false`), or why it could not.
    fn run(&self, model: &ModelId, input: &ModelInput) -> Result<ModelOutput, InferenceError>;

    /// Runs several requests side by side; the results are in request order.
    /// The default runs each on its own scoped thread; [`OnnxExecutor`](super::OnnxExecutor)
    /// queues them all on its workers instead.
    fn run_all(&self, requests: &[(&ModelId, &ModelInput)]) -> Vec<Result<ModelOutput, InferenceError>> {
        std::thread::scope(|scope| {
            let handles: Vec<_> =
                requests.iter().map(|&(model, input)| scope.spawn(move || self.run(model, input))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(InferenceError::Unavailable { reason: "an inference thread panicked".to_owned() })
                    })
                })
                .collect()
        })
    }

    /// [`Executor::run_all`] with how long each model ran. The default times
    /// each run on its own scoped thread (queueing included);
    /// [`OnnxExecutor`](super::OnnxExecutor) reports the time its worker spent on the run.
    fn run_all_timed(&self, requests: &[(&ModelId, &ModelInput)]) -> Vec<Timed> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = requests
                .iter()
                .map(|&(model, input)| {
                    scope.spawn(move || {
                        let start = Instant::now();
                        let output = self.run(model, input);
                        Timed { output, took: start.elapsed() }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| Timed {
                        output: Err(InferenceError::Unavailable { reason: "an inference thread panicked".to_owned() }),
                        took: Duration::ZERO,
                    })
                })
                .collect()
        })
    }

    /// The inputs and outputs of `model`, when the executor knows them
    /// (price-history queries shape their candles to them).
    fn signature(&self, model: &ModelId) -> Option<ModelSignature> {
        let _ = model;
        None
    }

    /// The model id `text` is: [`ModelId::parse`]'s answer, which an
    /// executor that knows its models may give without parsing the text of
    /// one again (a CID's parse costs microseconds, a lookup far less).
    fn model_id(&self, text: &str) -> Result<ModelId, InferenceError> {
        Ok(ModelId::parse(text)?)
    }

    /// Runs a request as the precompile receives it: checks the mode and the
    /// model id, then runs the model.
    fn run_request(&self, request: &ModelInferenceRequest) -> Result<ModelOutput, InferenceError> {
        InferenceMode::try_from(request.mode)?;
        self.run(&self.model_id(&request.modelCID)?, &request.input)
    }

    /// [`Executor::run_request`] for several requests side by side, through
    /// [`Executor::run_all`]; the results are in request order.
    fn run_all_requests(&self, requests: &[&ModelInferenceRequest]) -> Vec<Result<ModelOutput, InferenceError>> {
        self.run_all_requests_timed(requests).into_iter().map(|t| t.output).collect()
    }

    /// [`Executor::run_all_requests`] with how long each model ran (zero for
    /// a request refused before it reached a model).
    fn run_all_requests_timed(&self, requests: &[&ModelInferenceRequest]) -> Vec<Timed> {
        let ids: Vec<Result<ModelId, InferenceError>> =
            requests.iter().map(|r| InferenceMode::try_from(r.mode).and_then(|_| self.model_id(&r.modelCID))).collect();
        let valid: Vec<(&ModelId, &ModelInput)> =
            ids.iter().zip(requests).filter_map(|(id, r)| id.as_ref().ok().map(|id| (id, &r.input))).collect();
        let mut results = self.run_all_timed(&valid).into_iter();
        ids.into_iter()
            .map(|id| match id {
                Ok(_) => results.next().unwrap_or_else(|| Timed {
                    output: Err(InferenceError::Unavailable {
                        reason: "the executor returned too few results".to_owned(),
                    }),
                    took: Duration::ZERO,
                }),
                Err(e) => Timed { output: Err(e), took: Duration::ZERO },
            })
            .collect()
    }
}

/// The result of one run and how long the model ran.
#[derive(Debug, Clone)]
pub struct Timed {
    /// The outputs, or why there are none.
    pub output: Result<ModelOutput, InferenceError>,
    /// How long the model ran: the backend's own run, without the node's
    /// conversions around it where the backend can tell them apart.
    pub took: Duration,
}

impl std::fmt::Debug for dyn Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Executor")
    }
}

/// Loads models for a registry: checks a model's bytes, reads its signature
/// and makes the sessions that run it. A session runs one request at a time;
/// the registry keeps a pool of them per model.
pub trait SessionFactory: Send + Sync {
    /// A loaded model, ready to run.
    type Session: Send;

    /// A new session for a model's bytes, or why the bytes cannot be loaded.
    fn create(&self, id: &ModelId, bytes: &[u8]) -> Result<Self::Session, InferenceError>;

    /// A loaded model's inputs and outputs.
    fn signature(&self, id: &ModelId, session: &Self::Session) -> Result<ModelSignature, InferenceError>;
}
