//! The gateway's HTTP server with test doubles for backends: a slow backend
//! holds up nobody else, a panicking one is a 500 and the server goes on,
//! and every answer is signed by the enclave it names.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nml_gateway::ohttp::OhttpKey;
use nml_gateway::{Gateway, GatewayConfig};
use nml_runtime::llm::router::DEFAULT_MAX_PROMPT_BYTES;
use nml_runtime::llm::{LlmBackend, LlmError, LlmRequest, LlmResponse, LlmRouter};
use nml_runtime::rpc_client::{self, RpcError};
use nml_runtime::tee::{Enclave, message_hash, verify_rsa_pss};

/// Test double: answers "slow" after a delay, panics on the prompt "panic".
#[derive(Debug)]
struct Double(Duration);

impl LlmBackend for Double {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        if request.prompt() == "panic" {
            panic!("the test double panics on purpose");
        }
        std::thread::sleep(self.0);
        Ok(LlmResponse::text_for(request, "slow"))
    }

    fn describe(&self) -> String {
        "a test double".into()
    }
}

fn start(runtime: &tokio::runtime::Runtime, delay: Duration) -> (Gateway, String) {
    start_with(runtime, Arc::new(Double(delay)))
}

fn start_with(runtime: &tokio::runtime::Runtime, backend: Arc<dyn LlmBackend>) -> (Gateway, String) {
    start_config(runtime, config(backend))
}

fn config(backend: Arc<dyn LlmBackend>) -> GatewayConfig {
    GatewayConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        backend,
        concurrency: 4,
        enclave: Enclave::from_seed(0, 0).unwrap(),
        faults: Arc::default(),
        payments: None,
        settlement: None,
        tls: None,
        ohttp: Some(Arc::new(OhttpKey::from_seed(0, 0))),
        body_time: nml_gateway::BODY_TIME,
    }
}

fn start_config(runtime: &tokio::runtime::Runtime, config: GatewayConfig) -> (Gateway, String) {
    let gateway = runtime.block_on(Gateway::start(config)).unwrap();
    let url = format!("http://{}", gateway.local_addr);
    (gateway, url)
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

fn complete(url: &str, prompt: &str) -> (u16, serde_json::Value) {
    let body = serde_json::json!({ "model": "m", "prompt": prompt, "max_tokens": 5 }).to_string();
    let mut response = agent().post(&format!("{url}/v1/completions")).send(body).unwrap();
    let status = response.status().as_u16();
    (status, serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap())
}

#[test]
fn a_slow_backend_holds_up_nobody_and_a_panicking_one_is_a_500() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (gateway, url) = start(&runtime, Duration::from_secs(2));
    let slow = {
        let url = url.clone();
        std::thread::spawn(move || complete(&url, "take your time"))
    };
    std::thread::sleep(Duration::from_millis(200));
    // While the backend works, the gateway answers everything that needs no backend.
    let started = Instant::now();
    let mut health = agent().get(&format!("{url}/health")).call().unwrap();
    assert_eq!(health.body_mut().read_to_string().unwrap(), r#"{"status":"ok"}"#);
    let mut key = agent().get(&format!("{url}/signing-key")).call().unwrap();
    let key: serde_json::Value = serde_json::from_str(&key.body_mut().read_to_string().unwrap()).unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1_000),
        "answered while the backend works: {:?}",
        started.elapsed()
    );
    // A backend that panics: a 500, and the server goes on.
    let (status, body) = complete(&url, "panic");
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"]["message"], "the backend call failed");
    // The slow answer arrives, signed by the enclave /signing-key names.
    let (status, answer) = slow.join().unwrap();
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["completion"], "slow");
    assert_eq!(answer["tee_id"], key["tee_id"]);
    let enclave = Enclave::from_seed(0, 0).unwrap();
    let hash = |field: &str| answer[field].as_str().unwrap().parse().unwrap();
    let message =
        message_hash(hash("tee_request_hash"), hash("tee_output_hash"), answer["tee_timestamp"].as_u64().unwrap());
    use base64::Engine;
    let signature =
        base64::engine::general_purpose::STANDARD.decode(answer["tee_signature"].as_str().unwrap()).unwrap();
    assert!(verify_rsa_pss(enclave.public_key(), message, &signature), "the signature verifies");
    assert_eq!(hash("tee_output_hash"), alloy_primitives::keccak256("slow"));
    runtime.block_on(gateway.stop());
}

/// What is not an Oblivious HTTP request of this gateway's is refused in
/// the clear with its reason (the SDK's confidential client judges the
/// sealed answers, in tests/devnet_clients.rs).
#[test]
fn the_private_path_publishes_its_key_and_refuses_what_it_cannot_open() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (gateway, url) = start(&runtime, Duration::ZERO);
    let mut keys = agent().get(&format!("{url}/ohttp-keys")).call().unwrap();
    assert_eq!(keys.headers()["content-type"], "application/ohttp-keys");
    let keys = keys.body_mut().read_to_vec().unwrap();
    assert_eq!(keys[2..], OhttpKey::from_seed(0, 0).key_config()[..]);
    let post = |content_type: &str, body: &[u8]| {
        let mut response =
            agent().post(&format!("{url}/api/v1/chat/ohttp")).header("content-type", content_type).send(body).unwrap();
        let status = response.status().as_u16();
        let body: serde_json::Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        (status, body["error"]["message"].as_str().unwrap_or_default().to_owned())
    };
    let (status, message) = post("application/json", b"{}");
    assert_eq!(status, 415, "{message}");
    let (status, message) = post("message/ohttp-req", b"short");
    assert_eq!((status, message.contains("too short")), (400, true), "{message}");
    let mut garbled = vec![1, 0, 0x20, 0, 1, 0, 3];
    garbled.extend([7u8; 80]);
    let (status, message) = post("message/ohttp-req", &garbled);
    assert_eq!((status, message.contains("does not decrypt")), (400, true), "{message}");
    garbled[0] = 2;
    let (status, message) = post("message/ohttp-req", &garbled);
    assert_eq!((status, message.contains("no key configuration 0x02")), (400, true), "{message}");
    // And the gateway goes on serving.
    assert_eq!(complete(&url, "hello").0, 200);
    runtime.block_on(gateway.stop());
}

/// POSTs `body` to `path`: the status and the error message, if any.
fn post_json(url: &str, path: &str, body: &str) -> (u16, String) {
    let mut response =
        agent().post(&format!("{url}{path}")).header("content-type", "application/json").send(body).unwrap();
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    (status, body["error"]["message"].as_str().map_or(text, str::to_owned))
}

/// What the gateway documents passes the checks every backend call passes
/// (the router's, as `nml gateway` builds its backends): a temperature up
/// to 2, and a refusal of a text over the prompt limit worded as the
/// gateway's, not a devnet's.
#[test]
fn the_documented_temperatures_pass_and_the_prompt_limit_is_the_gateways() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let router = LlmRouter::new(Some(Arc::new(Double(Duration::ZERO))));
    let (gateway, url) = start_with(&runtime, Arc::new(router));
    let chat = |temperature: f64, content: &str| {
        serde_json::json!({ "model": "m", "messages": [{"role": "user", "content": content}], "temperature": temperature })
            .to_string()
    };
    for temperature in [0.0, 1.0, 1.5, 2.0] {
        let (status, said) = post_json(&url, "/v1/chat/completions", &chat(temperature, "hi"));
        assert_eq!(status, 200, "temperature {temperature}: {said}");
    }
    let streaming = r#"{"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "yes"}"#;
    let (status, said) = post_json(&url, "/v1/chat/completions", streaming);
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("'stream' must be true or false"), "{said}");
    let (status, said) = post_json(&url, "/v1/chat/completions", &chat(2.5, "hi"));
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("between 0 and 2") && said.contains("2.5"), "{said}");
    let (status, said) = post_json(&url, "/v1/chat/completions", &chat(0.0, &"x".repeat(DEFAULT_MAX_PROMPT_BYTES + 1)));
    assert_eq!(status, 400, "{said}");
    assert!(said.contains("over this gateway's limit of 65536") && !said.contains("devnet"), "{said}");
    runtime.block_on(gateway.stop());
}

/// A JSON-RPC client pointed at an HTTP endpoint that is no JSON-RPC node
/// (the gateway answers a POST to `/health` with 405 and a JSON error of
/// its own) reports the HTTP status, not a JSON-RPC error.
#[test]
fn an_http_error_with_a_json_body_is_an_http_error_to_the_rpc_client() {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let (gateway, url) = start(&runtime, Duration::ZERO);
    let err = rpc_client::call(&format!("{url}/health"), "eth_chainId", serde_json::json!([])).unwrap_err();
    assert!(matches!(err, RpcError::Status { status: 405, .. }), "{err}");
    assert!(err.to_string().contains("HTTP 405"), "{err}");
    runtime.block_on(gateway.stop());
}

/// Sends `head` (and no more) and returns the answer's status line, or
/// what the read got when the gateway closed without one.
fn status_after_head(url: &str, head: &str) -> String {
    use std::io::{Read, Write};
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = [0u8; 64];
    let n = stream.read(&mut answer).unwrap_or(0);
    String::from_utf8_lossy(&answer[..n]).lines().next().unwrap_or_default().to_owned()
}

/// A body that stops arriving is answered 408 and does not hold its connection.
#[test]
fn a_body_that_stops_arriving_is_answered_408() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let body_time = Duration::from_millis(300);
    let (_gateway, url) =
        start_config(&runtime, GatewayConfig { body_time, ..config(Arc::new(Double(Duration::ZERO))) });
    let head = |length: usize| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    let started = Instant::now();
    let stalled = status_after_head(&url, &format!("{}{{\"model\"", head(100)));
    assert!(stalled.contains(" 408 "), "{stalled}");
    assert!(started.elapsed() < Duration::from_secs(15), "waited {:?}", started.elapsed());
}
