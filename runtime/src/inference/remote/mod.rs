//! Models on an existing serving engine: an [`Executor`] that sends the
//! requests of chosen models over the Open Inference Protocol (KServe v2
//! REST, as NVIDIA Triton, KServe and Seldon MLServer serve it) and every
//! other request to the embedded executor it wraps.
//!
//! A remote model is named by its URL, `http://host:port/v2/models/NAME`
//! (with `/versions/V` for one version). Its signature is read from the
//! server (`GET` that URL) on first use and kept; a request's tensors are
//! matched and converted against it exactly as for an ONNX model, so a wrong
//! tensor name or shape is the same readable revert, before any request is
//! sent. Then `POST …/infer` with typed tensors; the outputs come back in
//! the signature's order.
//!
//! Failures keep the mempool's semantics: a server that is down, overloaded
//! (HTTP 429, 5xx), slow past the timeout or garbled fails the request
//! transiently (a later block retries it); a server that refuses the
//! request (HTTP 4xx) reverts it with the server's message. At most
//! `concurrency` requests go to one server at once; connections are kept
//! alive, and the requests of one round are sent side by side.

mod protocol;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use nml_protocol::ModelId;
use parking_lot::Condvar;

use super::abi::{ModelInput, ModelOutput};
use super::error::InferenceError;
use super::executor::{Executor, Timed};
use super::tensor::{self, ModelSignature};
use protocol::{InferRequest, InferResponse, Metadata, from_wire, to_wire};

/// The default number of requests sent to one server at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// Where a remote model is served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http://host:port` (with any path prefix before `/v2`).
    pub server: String,
    /// The model's name on the server.
    pub name: String,
    /// Its version, if one is pinned.
    pub version: Option<String>,
}

impl Endpoint {
    /// The model's URL: `{server}/v2/models/{name}[/versions/{version}]`.
    pub fn url(&self) -> String {
        match &self.version {
            Some(v) => format!("{}/v2/models/{}/versions/{v}", self.server, self.name),
            None => format!("{}/v2/models/{}", self.server, self.name),
        }
    }
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, String> {
        let bad = || format!("`{url}` is not a model URL: expected http://host:port/v2/models/NAME[/versions/V]");
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(bad());
        }
        let (server, path) = url.trim_end_matches('/').split_once("/v2/models/").ok_or_else(bad)?;
        let (name, version) = match path.split_once("/versions/") {
            Some((name, version)) => (name, Some(version.to_owned())),
            None => (path, None),
        };
        if name.is_empty() || name.contains('/') || version.as_deref().is_some_and(|v| v.is_empty() || v.contains('/'))
        {
            return Err(bad());
        }
        Ok(Self { server: server.to_owned(), name: name.to_owned(), version })
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url())
    }
}

/// A counting gate: at most N holders at once.
#[derive(Debug)]
struct Gate {
    free: parking_lot::Mutex<usize>,
    freed: Condvar,
}

impl Gate {
    fn new(n: usize) -> Self {
        Self { free: parking_lot::Mutex::new(n.max(1)), freed: Condvar::new() }
    }

    fn enter(&self) -> GatePass<'_> {
        let mut free = self.free.lock();
        while *free == 0 {
            self.freed.wait(&mut free);
        }
        *free -= 1;
        GatePass(self)
    }
}

struct GatePass<'a>(&'a Gate);

impl Drop for GatePass<'_> {
    fn drop(&mut self) {
        *self.0.free.lock() += 1;
        self.0.freed.notify_one();
    }
}

/// A remote model: its endpoint and, once read, its signature.
#[derive(Debug)]
struct Remote {
    endpoint: Endpoint,
    signature: Mutex<Option<ModelSignature>>,
}

/// Runs the models routed to servers there, every other on `local`.
pub struct RemoteExecutor {
    local: Arc<dyn Executor>,
    models: RwLock<BTreeMap<ModelId, Arc<Remote>>>,
    gates: Mutex<HashMap<String, Arc<Gate>>>,
    agent: ureq::Agent,
    timeout: Duration,
    concurrency: usize,
}

impl std::fmt::Debug for RemoteExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("RemoteExecutor")
            .field("models", &models.iter().map(|(id, r)| (id.to_string(), r.endpoint.url())).collect::<Vec<_>>())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteExecutor {
    /// An executor that sends routed models to their servers (each request
    /// at most `timeout`, at most `concurrency` at once per server) and
    /// every other model to `local`.
    pub fn new(local: Arc<dyn Executor>, timeout: Duration, concurrency: usize) -> Self {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_idle_connections_per_host(concurrency.max(1) * 2)
            .build()
            .into();
        Self {
            local,
            models: RwLock::new(BTreeMap::new()),
            gates: Mutex::new(HashMap::new()),
            agent,
            timeout,
            concurrency: concurrency.max(1),
        }
    }

    /// Serves `id` from `endpoint` from now on.
    pub fn route(&self, id: ModelId, endpoint: Endpoint) {
        let remote = Arc::new(Remote { endpoint, signature: Mutex::new(None) });
        self.models.write().unwrap_or_else(PoisonError::into_inner).insert(id, remote);
    }

    /// The routed models and their endpoints.
    pub fn routes(&self) -> Vec<(ModelId, Endpoint)> {
        let models = self.models.read().unwrap_or_else(PoisonError::into_inner);
        models.iter().map(|(id, r)| (id.clone(), r.endpoint.clone())).collect()
    }

    fn remote(&self, id: &ModelId) -> Option<Arc<Remote>> {
        self.models.read().unwrap_or_else(PoisonError::into_inner).get(id).cloned()
    }

    fn gate(&self, server: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(gates.entry(server.to_owned()).or_insert_with(|| Arc::new(Gate::new(self.concurrency))))
    }

    /// The signature of a routed model, read from its server once.
    pub fn signature(&self, id: &ModelId) -> Result<ModelSignature, InferenceError> {
        let remote = self.remote(id).ok_or_else(|| InferenceError::UnknownModel { model: id.to_string() })?;
        self.signature_of(id, &remote)
    }

    fn signature_of(&self, id: &ModelId, remote: &Remote) -> Result<ModelSignature, InferenceError> {
        if let Some(signature) = remote.signature.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            return Ok(signature);
        }
        let signature = read_signature(&self.agent, &id.to_string(), &remote.endpoint, self.timeout)?;
        *remote.signature.lock().unwrap_or_else(PoisonError::into_inner) = Some(signature.clone());
        Ok(signature)
    }

    /// Whether the server of `endpoint` says it is ready (`GET /v2/health/ready`).
    pub fn ready(&self, endpoint: &Endpoint) -> bool {
        let url = format!("{}/v2/health/ready", endpoint.server);
        self.agent.get(&url).call().is_ok_and(|r| r.status().as_u16() == 200)
    }

    fn run_remote(&self, model: &ModelId, remote: &Remote, input: &ModelInput) -> Result<ModelOutput, InferenceError> {
        let signature = self.signature_of(model, remote)?;
        let inputs = tensor::decode_inputs(model, &signature, input)?;
        let id = &model.to_string();
        let body = InferRequest { inputs: inputs.iter().map(to_wire).collect() };
        let body = serde_json::to_string(&body).map_err(|e| InferenceError::Runtime {
            model: id.to_string(),
            reason: format!("cannot encode the request: {e}"),
        })?;
        let endpoint = &remote.endpoint;
        let gate = self.gate(&endpoint.server);
        let (status, text) = {
            let _pass = gate.enter();
            let call = self.agent.post(&format!("{}/infer", endpoint.url())).header("content-type", "application/json");
            send(id, endpoint, self.timeout, call.send(body.as_bytes()))?
        };
        if status != 200 {
            return Err(refusal(id, endpoint, status, &text));
        }
        let malformed = |reason: String| unavailable(id, endpoint, format!("it answered malformed: {reason}"));
        let response: InferResponse = serde_json::from_str(&text).map_err(|e| malformed(e.to_string()))?;
        let outputs = signature
            .outputs
            .iter()
            .map(|spec| {
                let wire = response
                    .outputs
                    .iter()
                    .find(|o| o.name == spec.name)
                    .ok_or_else(|| malformed(format!("no output `{}`", spec.name)))?;
                from_wire(wire).map_err(|reason| malformed(format!("output `{}`: {reason}", spec.name)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        tensor::encode_outputs(model, outputs)
    }
}

/// The signature a server reports for the model at `endpoint`
/// (`GET {endpoint}`), for the model `id` (named in errors).
fn read_signature(
    agent: &ureq::Agent,
    id: &str,
    endpoint: &Endpoint,
    timeout: Duration,
) -> Result<ModelSignature, InferenceError> {
    let (status, body) = send(id, endpoint, timeout, agent.get(&endpoint.url()).call())?;
    if status != 200 {
        return Err(refusal(id, endpoint, status, &body));
    }
    let metadata: Metadata = serde_json::from_str(&body)
        .map_err(|e| unavailable(id, endpoint, format!("its model metadata is not the protocol's: {e}")))?;
    metadata.signature().map_err(|reason| InferenceError::Runtime {
        model: id.to_string(),
        reason: format!("the model server reports {reason}, which TensorLib tensors cannot carry"),
    })
}

/// The signature the server at `endpoint` reports for its model, read
/// within `timeout` (what `nml build` checks a declaration without an
/// `onnx` file against); `model` names it in errors.
pub fn fetch_signature(model: &str, endpoint: &Endpoint, timeout: Duration) -> Result<ModelSignature, InferenceError> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().timeout_global(Some(timeout)).http_status_as_error(false).build().into();
    read_signature(&agent, model, endpoint, timeout)
}

fn unavailable(id: &str, endpoint: &Endpoint, reason: String) -> InferenceError {
    InferenceError::ServerUnavailable { model: id.to_string(), server: endpoint.server.clone(), reason }
}

/// HTTP 429, 408 and 5xx are the server's trouble (transient); any other
/// status is its refusal of this request.
fn refusal(id: &str, endpoint: &Endpoint, status: u16, body: &str) -> InferenceError {
    let message = server_message(body);
    if status == 429 || status == 408 || status >= 500 {
        return unavailable(id, endpoint, format!("HTTP {status}: {message}"));
    }
    InferenceError::Runtime {
        model: id.to_string(),
        reason: format!("the model server refused the request (HTTP {status}): {message}"),
    }
}

/// A response's status and body, or the transport failure as an error.
fn send(
    id: &str,
    endpoint: &Endpoint,
    timeout: Duration,
    response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String), InferenceError> {
    let timed_out = || InferenceError::Timeout { model: id.to_string(), timeout };
    let mut response = match response {
        Ok(r) => r,
        Err(ureq::Error::Timeout(_)) => return Err(timed_out()),
        Err(e) => return Err(unavailable(id, endpoint, e.to_string())),
    };
    let status = response.status().as_u16();
    match response.body_mut().read_to_string() {
        Ok(body) => Ok((status, body)),
        Err(ureq::Error::Timeout(_)) => Err(timed_out()),
        Err(e) => Err(unavailable(id, endpoint, format!("reading its answer: {e}"))),
    }
}

/// The message of an error body (`{"error": "…"}`, `{"detail": …}`), else its start.
fn server_message(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.get("error")
            .or_else(|| v.get("detail"))
            .or_else(|| v.get("message"))
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
    });
    message.unwrap_or_else(|| {
        let cut: String = body.trim().chars().take(200).collect();
        if cut.is_empty() { "(no body)".to_owned() } else { cut }
    })
}

impl Executor for RemoteExecutor {
    fn model_id(&self, text: &str) -> Result<ModelId, InferenceError> {
        self.local.model_id(text)
    }

    fn signature(&self, model: &ModelId) -> Option<ModelSignature> {
        match self.remote(model) {
            Some(_) => RemoteExecutor::signature(self, model).ok(),
            None => self.local.signature(model),
        }
    }

    fn run(&self, model: &ModelId, input: &ModelInput) -> Result<ModelOutput, InferenceError> {
        match self.remote(model) {
            Some(remote) => self.run_remote(model, &remote, input),
            None => self.local.run(model, input),
        }
    }

    fn run_all_timed(&self, requests: &[(&ModelId, &ModelInput)]) -> Vec<Timed> {
        let (remote, local): (Vec<_>, Vec<_>) =
            requests.iter().enumerate().partition(|(_, (id, _))| self.remote(id).is_some());
        if remote.is_empty() {
            return self.local.run_all_timed(requests);
        }
        let local_requests: Vec<(&ModelId, &ModelInput)> = local.iter().map(|(_, r)| **r).collect();
        let mut results: Vec<Option<Timed>> = vec![None; requests.len()];
        std::thread::scope(|scope| {
            let handles: Vec<_> = remote
                .iter()
                .map(|&(i, &(id, input))| {
                    let handle = scope.spawn(move || {
                        let started = Instant::now();
                        let output = self.run(id, input);
                        Timed { output, took: started.elapsed() }
                    });
                    (i, handle)
                })
                .collect();
            let local_runs =
                if local_requests.is_empty() { Vec::new() } else { self.local.run_all_timed(&local_requests) };
            for ((i, _), run) in local.iter().zip(local_runs) {
                results[*i] = Some(run);
            }
            for (i, handle) in handles {
                results[i] = handle.join().ok();
            }
        });
        results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| Timed {
                    output: Err(InferenceError::Unavailable { reason: "a remote inference thread failed".to_owned() }),
                    took: Duration::ZERO,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_from_model_urls() {
        let e: Endpoint = "http://127.0.0.1:8080/v2/models/mlp".parse().unwrap();
        assert_eq!((e.server.as_str(), e.name.as_str(), e.version.as_deref()), ("http://127.0.0.1:8080", "mlp", None));
        let v: Endpoint = "https://serving.example/prefix/v2/models/mlp/versions/3/".parse().unwrap();
        assert_eq!(v.url(), "https://serving.example/prefix/v2/models/mlp/versions/3");
        for bad in
            ["127.0.0.1:8080/v2/models/mlp", "http://h/v1/models/mlp", "http://h/v2/models/", "http://h/v2/models/a/b"]
        {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_gate_lets_n_through() {
        let gate = Arc::new(Gate::new(2));
        let inside = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        std::thread::scope(|s| {
            for _ in 0..6 {
                s.spawn(|| {
                    let _pass = gate.enter();
                    let now = inside.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
                    most.fetch_max(now, std::sync::atomic::Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(20));
                    inside.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                });
            }
        });
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn server_messages_are_read_from_the_usual_shapes() {
        assert_eq!(server_message(r#"{"error":"Input x has wrong shape"}"#), "Input x has wrong shape");
        assert_eq!(server_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(server_message(""), "(no body)");
    }
}
