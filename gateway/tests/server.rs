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

/// A test double of an HTTP server (named as one: it stands for an
/// OpenAI-compatible LLM server or a JSON-RPC node): each request's path
/// and body go to `answer`, whose JSON is the 200 answer. One connection
/// per request. Its URL.
fn http_double(answer: impl Fn(&str, &str) -> String + Send + Sync + 'static) -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let answer = Arc::new(answer);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let answer = Arc::clone(&answer);
            std::thread::spawn(move || {
                let mut reader = BufReader::new(&stream);
                let (mut line, mut path, mut length) = (String::new(), String::new(), 0);
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    if path.is_empty() {
                        path = line.split(' ').nth(1).unwrap_or_default().to_owned();
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let out = answer(&path, &String::from_utf8(body).unwrap());
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    out.len()
                );
                (&stream).write_all(format!("{head}{out}").as_bytes()).unwrap();
            });
        }
    });
    url
}

/// A completion the backend cut at `max_tokens` says so: `finish_reason`
/// is the backend's `length`, not `stop`, in a whole answer and in a
/// stream's last chunk; the signed output is the text alone.
#[test]
fn a_completion_cut_at_max_tokens_finishes_with_length() {
    use nml_runtime::llm::OpenAiBackend;

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let llm = http_double(|path, _| {
        assert_eq!(path, "/v1/completions");
        serde_json::json!({ "choices": [{ "index": 0, "text": "cut sho", "finish_reason": "length" }] }).to_string()
    });
    let backend = OpenAiBackend::new(&llm, None, Duration::from_secs(10));
    let (gateway, url) = start_with(&runtime, Arc::new(LlmRouter::new(Some(Arc::new(backend)))));
    let (status, answer) = complete(&url, "tell me everything");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["choices"][0]["text"], "cut sho");
    assert_eq!(answer["choices"][0]["finish_reason"], "length", "{answer}");
    let output_hash: alloy_primitives::B256 = answer["tee_output_hash"].as_str().unwrap().parse().unwrap();
    assert_eq!(output_hash, alloy_primitives::keccak256("cut sho"), "the signed output is the text alone");
    let body = serde_json::json!({ "model": "m", "prompt": "tell me everything", "max_tokens": 5, "stream": true });
    let mut streamed = agent().post(&format!("{url}/v1/completions")).send(body.to_string()).unwrap();
    let events = streamed.body_mut().read_to_string().unwrap();
    let last = events
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .rfind(|data| *data != "[DONE]")
        .map(|data| serde_json::from_str::<serde_json::Value>(data).unwrap())
        .unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "length", "{events}");
    runtime.block_on(gateway.stop());
}

/// A devnet with the relay, the OPG token and the TEE registry
/// predeployed, served over JSON-RPC: its URL.
struct Chain {
    _runtime: tokio::runtime::Runtime,
    _server: nml_runtime::rpc::RpcServer,
    url: String,
}

fn devnet() -> Chain {
    use nml_runtime::inference::{Executor, InferenceError, ModelId, ModelInput, ModelOutput};
    use nml_runtime::node::InferenceSetup;

    /// Test double: knows no model (these tests run none).
    struct NoModels;
    impl Executor for NoModels {
        fn run(&self, model: &ModelId, _: &ModelInput) -> Result<ModelOutput, InferenceError> {
            Err(InferenceError::Unavailable { reason: format!("no model {model}") })
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let setup = InferenceSetup::new(Arc::new(NoModels));
    let devnet = Arc::new(nml_runtime::Devnet::with_inference(nml_runtime::DevnetConfig::default(), setup).unwrap());
    let server = runtime.block_on(nml_runtime::rpc::serve(devnet, "127.0.0.1:0".parse().unwrap())).unwrap();
    let url = format!("http://{}", server.local_addr);
    Chain { _runtime: runtime, _server: server, url }
}

/// The facilitator's account (dev account 9) on `url`.
fn facilitator(url: &str) -> Arc<nml_gateway::chain::ChainAccount> {
    let signer = nml_runtime::chain::dev_accounts(10)[9].signer.clone();
    Arc::new(nml_gateway::chain::ChainAccount::new(url.to_owned(), 31337, signer))
}

/// The relay refuses an individual record it holds already; the gateway
/// then names the transaction of that record, found in the relay's log by
/// `eth_getLogs` over bounded ranges — here through a test-double node that
/// refuses, as hosted nodes do, a range that is open (`earliest`) or wider
/// than the gateway's window, while the record lies more than one window
/// back: the record's block is found by bisecting block timestamps, so a
/// few reads find it.
#[test]
fn an_individual_record_already_settled_is_found_in_bounded_log_ranges() {
    use std::sync::Mutex;

    use alloy_primitives::B256;
    use nml_gateway::data_settlement::LOG_WINDOW;
    use nml_gateway::{DataSettlement, SettlementType};

    let chain = devnet();
    let ranges = Arc::new(Mutex::new(Vec::new()));
    let blocks_read = Arc::new(Mutex::new(0));
    let node = {
        let (devnet, ranges, blocks_read) = (chain.url.clone(), Arc::clone(&ranges), Arc::clone(&blocks_read));
        http_double(move |_, body| {
            let request: serde_json::Value = serde_json::from_str(body).unwrap();
            if request["method"] == "eth_getBlockByNumber" {
                *blocks_read.lock().unwrap() += 1;
            }
            if request["method"] == "eth_getLogs" {
                let number = |key: &str| {
                    let value = request["params"][0][key].as_str().unwrap_or_default();
                    u64::from_str_radix(value.strip_prefix("0x")?, 16).ok()
                };
                let range = number("fromBlock").zip(number("toBlock"));
                ranges.lock().unwrap().push(range);
                if !range.is_some_and(|(from, to)| from <= to && to - from < LOG_WINDOW) {
                    let refusal = serde_json::json!({ "code": -32005, "message": "block range too wide" });
                    return serde_json::json!({ "jsonrpc": "2.0", "id": request["id"], "error": refusal }).to_string();
                }
            }
            let mut forwarded = agent().post(&devnet).header("content-type", "application/json").send(body).unwrap();
            forwarded.body_mut().read_to_string().unwrap()
        })
    };
    let admin = Some(nml_runtime::chain::dev_accounts(1)[0].address);
    let first = DataSettlement::connect(facilitator(&chain.url), admin, 20).unwrap();
    let second = DataSettlement::connect(facilitator(&node), admin, 20).unwrap();
    let attestation = Enclave::from_seed(0, 0).unwrap().attest(B256::repeat_byte(1), B256::repeat_byte(2), 7).unwrap();
    let payer = nml_runtime::chain::dev_accounts(2)[1].address;
    let posted = first.record(SettlementType::Individual, attestation.clone(), payer).unwrap().unwrap();
    // The record lies more than a window behind the latest block.
    rpc_client::call(&chain.url, "anvil_mine", serde_json::json!([format!("{:#x}", LOG_WINDOW + 20)])).unwrap();
    // The gateway that posted it remembers it; another finds it in the log.
    assert_eq!(first.record(SettlementType::Individual, attestation.clone(), payer).unwrap(), Some(posted));
    assert_eq!(second.record(SettlementType::Individual, attestation, payer).unwrap(), Some(posted));
    let ranges = ranges.lock().unwrap().clone();
    assert!(!ranges.is_empty() && ranges.len() <= 2, "the record's block was found first: {ranges:?}");
    assert!(
        ranges.iter().all(|r| r.is_some_and(|(from, to)| to - from < LOG_WINDOW)),
        "every range is bounded: {ranges:?}"
    );
    // About log2 of the chain's length, not one read per window.
    let blocks_read = *blocks_read.lock().unwrap();
    assert!(blocks_read <= 14, "{blocks_read} blocks read");
}

/// A transaction that fails for want of gas is reported as out of gas:
/// its failure is run again with its own gas limit, under which it fails
/// again (with the node's default gas it would pass, and be taken for a
/// revert without a reason).
#[test]
fn a_transaction_short_of_gas_is_reported_as_out_of_gas() {
    use alloy_primitives::U256;
    use alloy_sol_types::SolCall;
    use nml_gateway::chain::ChainError;
    use nml_gateway::revert::Revert;
    use nml_runtime::predeploys::payments::{IOPGToken, OPG_TOKEN, PERMIT2};

    let chain = devnet();
    let account = facilitator(&chain.url);
    let approve = IOPGToken::approveCall { spender: PERMIT2, value: U256::from(1) }.abi_encode();
    // Past the intrinsic gas, short of the allowance's new storage slot.
    let refused = account.send(OPG_TOKEN, approve.clone(), 30_000).unwrap_err();
    match refused {
        ChainError::Reverted { reason, .. } => {
            assert_eq!(*reason, Revert::OutOfGas { gas_limit: 30_000 }, "{reason}")
        }
        other => panic!("expected a revert, got {other}"),
    }
    // With its gas, the same call passes; a revert with data is decoded as before.
    account.send(OPG_TOKEN, approve, 100_000).unwrap();
    let too_much = IOPGToken::transferCall { to: PERMIT2, value: U256::MAX }.abi_encode();
    match account.send(OPG_TOKEN, too_much, 100_000).unwrap_err() {
        ChainError::Reverted { reason, .. } => {
            assert!(matches!(*reason, Revert::InsufficientBalance { .. }), "{reason}")
        }
        other => panic!("expected a revert, got {other}"),
    }
}
