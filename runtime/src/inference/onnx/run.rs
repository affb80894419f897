//! One run of a request: its inputs as ONNX Runtime values, a session from
//! the model's pool, the run itself (stoppable between nodes), and the
//! outputs back as the precompile's answer.
//!
//! A run's time ([`Timed::took`], a record's `durationUs`) is ONNX Runtime's
//! `Session::run` alone: what the model cost, apart from the conversions
//! and bookkeeping around it, which are the node's.

use std::time::{Duration, Instant};

use nml_protocol::ModelId;
use ort::session::{RunOptions, Session};
use ort::value::DynValue;

use super::convert::{from_value, to_value};
use super::session::OnnxSessions;
use crate::inference::abi::ModelOutput;
use crate::inference::error::InferenceError;
use crate::inference::executor::Timed;
use crate::inference::registry::{LoadedModel, Registry};
use crate::inference::tensor::{self, ModelSignature, Tensor};

/// [`run_job`], with a panic turned into a runtime error, and the time of
/// the model's own run.
pub(super) fn run_caught(
    model: &LoadedModel<Session>,
    inputs: Vec<Tensor>,
    cancel: &RunOptions,
    registry: &Registry<OnnxSessions>,
) -> Timed {
    let mut took = Duration::ZERO;
    let run = std::panic::AssertUnwindSafe(|| run_job(model, inputs, cancel, registry, &mut took));
    let output = std::panic::catch_unwind(run).unwrap_or_else(|_| {
        Err(InferenceError::Runtime { model: model.info.id.to_string(), reason: "the run panicked".to_owned() })
    });
    Timed { output, took }
}

fn run_job(
    model: &LoadedModel<Session>,
    inputs: Vec<Tensor>,
    cancel: &RunOptions,
    registry: &Registry<OnnxSessions>,
    took: &mut Duration,
) -> Result<ModelOutput, InferenceError> {
    let id = &model.info.id;
    let inputs = inputs
        .into_iter()
        .map(|t| to_value(t.data, &t.shape).map(|v| (t.name, v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| runtime_error(id, &e))?;
    let mut session = model.checkout(registry.factory())?;
    let outputs = run_session(&mut session, id, &model.info.signature, inputs, cancel, took);
    model.checkin(session);
    tensor::encode_outputs(id, outputs?)
}

fn run_session(
    session: &mut Session,
    id: &ModelId,
    signature: &ModelSignature,
    inputs: Vec<(String, DynValue)>,
    cancel: &RunOptions,
    took: &mut Duration,
) -> Result<Vec<Tensor>, InferenceError> {
    let run = tracing::trace_span!("session_run").entered();
    let started = Instant::now();
    let outputs = session.run_with_options(inputs, cancel);
    *took = started.elapsed();
    drop(run);
    let outputs = outputs.map_err(|e| runtime_error(id, &e))?;
    signature
        .outputs
        .iter()
        .map(|spec| {
            let value = outputs.get(&spec.name).ok_or_else(|| InferenceError::Runtime {
                model: id.to_string(),
                reason: format!("the run returned no output `{}`", spec.name),
            })?;
            from_value(&spec.name, value).map_err(|e| runtime_error(id, &e))
        })
        .collect()
}

pub(super) fn runtime_error(id: &ModelId, e: &impl std::fmt::Display) -> InferenceError {
    InferenceError::Runtime { model: id.to_string(), reason: e.to_string() }
}
