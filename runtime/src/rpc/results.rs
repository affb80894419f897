//! The node's result API, on the JSON-RPC port: what OpenGradient's SDK
//! asks a node for an inference result by the id the precompile logged
//! (`GET /artela-network/artela-rollkit/inference/tx/{inferenceID}`).
//!
//! The answer is `{"inference_results": [base64(JSON)]}`, the JSON being
//! `{"InferenceResult": R}` with `R` by the request's mode:
//! `{"VanillaResult": {"model_output": O}}`,
//! `{"ZkmlResult": {"model_output": O}}` (no proof: the devnet proves
//! nothing), or `{"TeeNodeResult": {"Response": {"VanillaResponse":
//! {"model_output": O}}, "tee_id", "input_hash", "output_hash", "timestamp",
//! "signature"}}`; `O` is the `ModelOutput` with its field names (`numbers`
//! of `{name, values: [{value, decimals}], shape}`, `strings`, `jsons`,
//! `is_simulation_result`). An LLM call's result is
//! `{"LlmResult": {"response": …}}` (nml's own shape: the SDK reads none).
//! An id that no mined transaction was served is a 404.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use alloy_primitives::B256;
use alloy_sol_types::SolCall;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::inference::abi::runModelInferenceCall;
use crate::node::Devnet;
use crate::tee::Attestation;

/// Where the SDK asks.
pub const RESULT_PATH: &str = "/artela-network/artela-rollkit/inference/tx/";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The HTTP layer that answers the result API in front of JSON-RPC.
#[derive(Debug, Clone)]
pub(super) struct ResultApiLayer {
    pub(super) devnet: Arc<Devnet>,
}

impl<S> tower::Layer<S> for ResultApiLayer {
    type Service = ResultApi<S>;

    fn layer(&self, inner: S) -> ResultApi<S> {
        ResultApi { inner, devnet: Arc::clone(&self.devnet) }
    }
}

/// [`ResultApiLayer`]'s service: a `GET` of [`RESULT_PATH`] is answered
/// here, everything else goes on to JSON-RPC.
#[derive(Debug, Clone)]
pub(super) struct ResultApi<S> {
    inner: S,
    devnet: Arc<Devnet>,
}

impl<S> tower::Service<HttpRequest> for ResultApi<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        if request.method().as_str() == "GET"
            && let Some(id) = request.uri().path().strip_prefix(RESULT_PATH)
        {
            let (status, body) = answer(&self.devnet, id);
            let response = HttpResponse::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(HttpBody::from(body.to_string()))
                .map_err(BoxError::from);
            return Box::pin(std::future::ready(response));
        }
        Box::pin(self.inner.call(request))
    }
}

/// The status and body for inference id `id` (URL-encoded, as the SDK sends it).
fn answer(devnet: &Devnet, id: &str) -> (u16, Value) {
    let not_found = |why: &str| (404, json!({ "code": 5, "message": why }));
    let id = id.replace("%78", "x").replace("%58", "X");
    let Ok(request_id) = id.parse::<B256>() else {
        return not_found("not an inference id: ids are the 0x-prefixed request ids the precompile logs");
    };
    let Some((mode, output, attestation)) = devnet.pipe().and_then(|p| p.served(request_id)) else {
        return not_found("no mined transaction was served this inference id");
    };
    let result = result_json(mode, &output, attestation.as_ref());
    let encoded = BASE64.encode(json!({ "InferenceResult": result }).to_string());
    (200, json!({ "inference_results": [encoded] }))
}

/// `R` for a served result.
fn result_json(mode: u8, output: &[u8], attestation: Option<&Attestation>) -> Value {
    let Ok(model_output) = runModelInferenceCall::abi_decode_returns_validate(output) else {
        return json!({ "LlmResult": { "response": super::records::decode_output(output) } });
    };
    let model_output = serde_json::to_value(model_output).unwrap_or_default();
    match mode {
        1 => json!({ "ZkmlResult": { "model_output": model_output } }),
        2 => {
            let mut tee = json!({ "Response": { "VanillaResponse": { "model_output": model_output } } });
            if let (Some(a), Some(fields)) = (attestation, tee.as_object_mut()) {
                fields.insert("tee_id".into(), json!(a.tee_id));
                fields.insert("input_hash".into(), json!(a.input_hash));
                fields.insert("output_hash".into(), json!(a.output_hash));
                fields.insert("timestamp".into(), json!(a.timestamp));
                fields.insert("signature".into(), json!(a.signature));
            }
            json!({ "TeeNodeResult": tee })
        }
        _ => json!({ "VanillaResult": { "model_output": model_output } }),
    }
}
