//! LLM calls end to end, in-process: `ask` and `chat` of a contract
//! compiled by real solc (`tests/fixtures/llm`) go through the inference
//! mempool to a backend — the embedded model on ONNX Runtime, a test double
//! of an OpenAI-compatible server (`common/openai_double.rs`), or a cassette
//! — and come back on the receipt. `tests/llm_server.rs` does the same
//! against a real server.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{SolCall, sol};
use nml_runtime::chain::{Served, TxReceipt};
use nml_runtime::inference::{Executor, OnnxConfig, OnnxExecutor};
use nml_runtime::llm::{
    Cassette, CassetteMode, EmbeddedLlm, LlmBackend, LlmConfig, LlmRouter, OpenAiBackend, ServerConfig,
};
use nml_runtime::mempool::PipeConfig;
use nml_runtime::node::InferenceSetup;
use nml_runtime::{Devnet, DevnetConfig, Mining};

mod common;

use common::openai_double::{Behaviour, OpenAiDouble};

sol! {
    contract Oracle {
        function question(string prompt);
        function chain(string prompt);
        function attested(string prompt);
        function converse(string content);
        function tryQuestion(string prompt, string model);
        function peek(string prompt) returns (string);
        function last() returns (string);
        function lastFinish() returns (string);
        function lastError() returns (string);
        function answers() returns (uint256);
    }
}

sol! {
    struct CompletionRequest { uint8 mode; string modelCID; string prompt; uint32 max_tokens; string[] stop_sequence; uint32 temperature; }
    struct CompletionResponse { string answer; }
    /// OpenGradient's inference hub, as the SDK's `inference.abi` has it (its LLM part).
    contract Hub {
        event LLMCompletionResult(CompletionResponse response);
        function runLLMCompletion(CompletionRequest request) returns (CompletionResponse);
    }
}

const ANALYST: &str = "meta-llama/Llama-3.1-8B-Instruct";
const GAS: u64 = 3_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn oracle_code() -> &'static Bytes {
    static CODE: OnceLock<Bytes> = OnceLock::new();
    CODE.get_or_init(|| {
        let (_dir, codes) = common::build(&repo().join("tests/fixtures/llm"), false, &["Oracle"]);
        codes.into_iter().next().expect("Oracle")
    })
}

fn library() -> PathBuf {
    nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path
}

fn executor() -> Arc<dyn Executor> {
    Arc::new(OnnxExecutor::new(OnnxConfig { workers: 1, ..OnnxConfig::new(library()) }).expect("ORT"))
}

/// A router that sends every id to the double, `Llama-3.1-8B-Instruct` by
/// the server's name `llama`.
fn double_backend(double: &OpenAiDouble, timeout: Duration) -> Arc<dyn LlmBackend> {
    let server = OpenAiBackend::new(&double.url, None, timeout).name(ANALYST, "llama");
    Arc::new(LlmRouter::new(Some(Arc::new(server))))
}

struct Net {
    devnet: Devnet,
    oracle: Address,
}

impl Net {
    fn new(llm: Arc<dyn LlmBackend>, config: DevnetConfig) -> Self {
        let manual = config.mining == Mining::Manual;
        let setup = InferenceSetup { llm, ..InferenceSetup::new(executor()) };
        let devnet = Devnet::with_inference(config, setup).expect("devnet");
        let hash = send(&devnet, 0, None, oracle_code().clone());
        if manual {
            devnet.mine(None).expect("mine");
        }
        let oracle = mined(&devnet, hash).contract_address.expect("deployed");
        Self { devnet, oracle }
    }

    fn auto(llm: Arc<dyn LlmBackend>) -> Self {
        Self::new(llm, DevnetConfig::default())
    }

    fn send(&self, from: usize, call: impl SolCall) -> B256 {
        send(&self.devnet, from, Some(self.oracle), call.abi_encode().into())
    }

    fn view<C: SolCall>(&self, call: C) -> C::Return {
        let request = TransactionRequest::default().to(self.oracle).input(call.abi_encode().into());
        let out = self.devnet.call(request, None, None).expect("call");
        C::abi_decode_returns(&out).expect("decode")
    }

    fn last(&self) -> String {
        self.view(Oracle::lastCall {})
    }

    fn last_error(&self) -> String {
        self.view(Oracle::lastErrorCall {})
    }
}

fn send(devnet: &Devnet, from: usize, to: Option<Address>, input: Bytes) -> B256 {
    let mut request = TransactionRequest::default()
        .from(devnet.accounts()[from])
        .input(input.into())
        .gas_limit(GAS)
        .max_fee_per_gas(100_000_000_000)
        .max_priority_fee_per_gas(1_000_000_000);
    if let Some(to) = to {
        request = request.to(to);
    }
    devnet.send_transaction(request).expect("sent")
}

fn mined(devnet: &Devnet, hash: B256) -> TxReceipt {
    devnet.wait_for_receipt(hash, Duration::from_secs(60)).expect("mined within a minute")
}

#[test]
fn an_ask_in_a_transaction_is_answered_by_the_server_and_recorded_on_the_receipt() {
    let double = OpenAiDouble::start(Duration::ZERO);
    let net = Net::auto(double_backend(&double, Duration::from_secs(10)));
    let hash = net.send(0, Oracle::questionCall { prompt: "Is ETH up?".into() });
    let receipt = mined(&net.devnet, hash);
    assert!(receipt.success);
    assert_eq!(net.last(), "echo[llama]: Is ETH up?");
    assert_eq!(net.view(Oracle::answersCall {}), alloy_primitives::U256::from(1));
    // Asked once: the simulation met it, dispatch asked, inclusion served it.
    let requests = double.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (path, body, _) = &requests[0];
    assert_eq!(path, "/v1/completions");
    assert_eq!(
        body,
        &serde_json::json!({ "model": "llama", "prompt": "Is ETH up?", "max_tokens": 24, "temperature": 0.0 })
    );
    let [record] = <[_; 1]>::try_from(receipt.inference).expect("one record");
    assert!(record.success);
    assert_eq!(record.model, ANALYST);
    assert_eq!(record.served, Served::PreExecuted);
    assert_eq!(record.round, Some(1));
}

#[test]
fn identical_asks_of_a_block_reach_the_server_once_and_a_dependent_one_in_round_two() {
    let double = OpenAiDouble::start(Duration::from_millis(20));
    let net = Net::new(
        double_backend(&double, Duration::from_secs(10)),
        DevnetConfig { mining: Mining::Manual, ..DevnetConfig::default() },
    );
    let same: Vec<B256> = (1..4).map(|from| net.send(from, Oracle::questionCall { prompt: "same".into() })).collect();
    let chained = net.send(4, Oracle::chainCall { prompt: "first".into() });
    net.devnet.mine(None).expect("mine");
    for hash in same {
        assert!(mined(&net.devnet, hash).success);
    }
    let receipt = mined(&net.devnet, chained);
    let rounds: Vec<Option<u32>> = receipt.inference.iter().map(|r| r.round).collect();
    assert_eq!(rounds, [Some(1), Some(2)]);
    assert_eq!(net.last(), "echo[llama]: again: echo[llama]: first");
    // "same" once, "first" once, "again: …" once.
    assert_eq!(double.served(), 3);
}

#[test]
fn eth_call_answers_at_once_and_a_chat_maps_onto_the_server() {
    let double = OpenAiDouble::start(Duration::ZERO);
    let net = Net::auto(double_backend(&double, Duration::from_secs(10)));
    assert_eq!(net.view(Oracle::peekCall { prompt: "now?".into() }), "echo[llama]: now?");
    let hash = net.send(0, Oracle::converseCall { content: "hello".into() });
    assert!(mined(&net.devnet, hash).success);
    assert_eq!(net.last(), "echo[llama]: hello");
    assert_eq!(net.view(Oracle::lastFinishCall {}), "stop");
    let chat = double.requests().into_iter().find(|(p, _, _)| p.ends_with("/chat/completions")).expect("a chat");
    assert_eq!(chat.1["messages"], serde_json::json!([{ "role": "user", "content": "hello" }]));
}

#[test]
fn backend_failures_are_readable_reverts_or_transient_and_retried() {
    let double = OpenAiDouble::start(Duration::ZERO);
    let net = Net::auto(double_backend(&double, Duration::from_millis(400)));
    let try_ask = |prompt: &str| {
        let hash = net.send(0, Oracle::tryQuestionCall { prompt: prompt.into(), model: ANALYST.into() });
        assert!(mined(&net.devnet, hash).success);
        net.last_error()
    };
    double.set(Behaviour::Status(400, r#"{"error":{"message":"max_tokens is too large"}}"#.into()));
    assert_eq!(
        try_ask("a"),
        "LLM `meta-llama/Llama-3.1-8B-Instruct`: the server refused the request (HTTP 400): max_tokens is too large"
    );
    double.set(Behaviour::Malformed);
    assert!(try_ask("b").contains("answered malformed: not JSON"), "{}", net.last_error());
    double.set(Behaviour::EmptyChoices);
    assert!(try_ask("c").contains("answered malformed: an empty `choices` list"), "{}", net.last_error());
    double.set(Behaviour::Status(503, "overloaded".into()));
    let down = try_ask("d");
    assert!(down.contains("is unavailable: HTTP 503: overloaded"), "{down}");
    double.set(Behaviour::Echo);
    double.set_latency(Duration::from_secs(2));
    let slow = try_ask("e");
    assert!(slow.contains("did not answer within 400ms"), "{slow}");
    // Transient failures are forgotten: the same request, asked again once
    // the server is back, is answered.
    double.set_latency(Duration::ZERO);
    assert_eq!(try_ask("d"), "");
    assert_eq!(net.last(), "echo[llama]: d");
    // The refusal was not transient: it is served from the result, not asked again.
    let before = double.served();
    double.set(Behaviour::Echo);
    assert!(try_ask("a").contains("HTTP 400"));
    assert_eq!(double.served(), before);
}

#[test]
fn an_unrouted_llm_and_an_unknown_mode_revert_with_their_reason() {
    let double = OpenAiDouble::start(Duration::ZERO);
    let server = OpenAiBackend::new(&double.url, None, Duration::from_secs(5));
    let router = LlmRouter::new(None).route(ANALYST, Arc::new(server));
    let net = Net::auto(Arc::new(router));
    let hash = net.send(0, Oracle::tryQuestionCall { prompt: "x".into(), model: "openai/gpt-9".into() });
    assert!(mined(&net.devnet, hash).success);
    assert_eq!(
        net.last_error(),
        "unknown LLM `openai/gpt-9`: no backend on this devnet serves it (routed ids: meta-llama/Llama-3.1-8B-Instruct)"
    );
    assert_eq!(double.served(), 0);
}

#[test]
fn a_slow_server_does_not_stall_the_devnet() {
    let double = OpenAiDouble::start(Duration::from_millis(1500));
    let net = Net::auto(double_backend(&double, Duration::from_secs(10)));
    let started = Instant::now();
    let hash = net.send(0, Oracle::questionCall { prompt: "slow".into() });
    assert!(started.elapsed() < Duration::from_millis(500), "the send waited for the LLM: {:?}", started.elapsed());
    // Others are served meanwhile: a transfer is mined while the ask is pending.
    let other = send(&net.devnet, 1, Some(net.devnet.accounts()[2]), Bytes::new());
    assert!(mined(&net.devnet, other).success);
    assert!(net.devnet.receipt_record(hash).is_none(), "the ask is still pending");
    assert!(mined(&net.devnet, hash).success);
    assert_eq!(net.last(), "echo[llama]: slow");
}

#[test]
fn tee_mode_answers_are_attested() {
    let double = OpenAiDouble::start(Duration::ZERO);
    let net = Net::auto(double_backend(&double, Duration::from_secs(10)));
    let hash = net.send(0, Oracle::attestedCall { prompt: "sign me".into() });
    let receipt = mined(&net.devnet, hash);
    assert_eq!(net.last(), "echo[openai/gpt-4.1]: sign me");
    let record = &receipt.inference[0];
    assert_eq!(record.mode, 1);
    let attestation = record.attestation.as_ref().expect("attested");
    assert_eq!(attestation.input_hash, record.request_id);
    assert_eq!(attestation.output_hash, alloy_primitives::keccak256(&record.output));
    assert_eq!(net.devnet.attestations(hash).expect("known").len(), 1);
}

#[test]
fn a_reloaded_chain_replays_the_recorded_answers_with_the_backend_off() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = DevnetConfig { state_file: Some(state), ..DevnetConfig::default() };
    let double = OpenAiDouble::start(Duration::ZERO);
    let net = Net::new(double_backend(&double, Duration::from_secs(10)), config.clone());
    let hash = net.send(0, Oracle::questionCall { prompt: "remember".into() });
    let recorded = mined(&net.devnet, hash).inference;
    net.devnet.save_state().expect("save").expect("a state file");
    let trace = |devnet: &Devnet| {
        let opts = serde_json::from_value(serde_json::json!({ "tracer": "callTracer" })).unwrap();
        serde_json::to_value(devnet.trace_transaction(hash, opts).expect("trace")).unwrap()
    };
    let before = trace(&net.devnet);
    drop(net);

    // No LLM backend at all now.
    let setup = InferenceSetup::new(executor());
    let devnet = Devnet::with_inference(config, setup).unwrap();
    assert_eq!(devnet.receipt_record(hash).expect("reloaded").inference, recorded);
    assert_eq!(trace(&devnet), before, "the replay is identical");
    assert_eq!(double.served(), 1);
}

#[test]
fn a_cassette_records_then_replays_in_ci_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("test/cassettes/llm.json");
    let double = OpenAiDouble::start(Duration::ZERO);
    let recorder = Cassette::open(&path, CassetteMode::Record, Some(double_backend(&double, Duration::from_secs(5))))
        .expect("cassette");
    let net = Net::auto(Arc::new(recorder));
    assert!(mined(&net.devnet, net.send(0, Oracle::questionCall { prompt: "taped".into() })).success);
    drop(net);

    let player = Cassette::open(&path, CassetteMode::Replay, None).expect("cassette");
    let net = Net::auto(Arc::new(player));
    assert!(mined(&net.devnet, net.send(0, Oracle::questionCall { prompt: "taped".into() })).success);
    assert_eq!(net.last(), "echo[llama]: taped");
    let miss = net.send(0, Oracle::tryQuestionCall { prompt: "never taped".into(), model: ANALYST.into() });
    assert!(mined(&net.devnet, miss).success);
    let error = net.last_error();
    assert!(error.contains("has no answer for request 0x"), "{error}");
    assert!(error.contains("record it with `--cassette-mode record`"), "{error}");
    assert_eq!(double.served(), 1);
}

#[test]
fn the_embedded_model_answers_with_no_setup_and_the_same_answer_every_run() {
    let embedded = || -> Arc<dyn LlmBackend> { Arc::new(EmbeddedLlm::new(&library()).expect("embedded model")) };
    let answer = |llm| {
        let net = Net::auto(llm);
        let hash = net.send(0, Oracle::questionCall { prompt: "The devnet ".into() });
        assert!(mined(&net.devnet, hash).success);
        net.last()
    };
    let first = answer(embedded());
    assert!(!first.is_empty());
    assert!(first.len() <= 24, "max_tokens counts characters: {first:?}");
    assert_eq!(answer(embedded()), first, "greedy decoding at temperature 0 is deterministic");
    // eth_call runs it too.
    let net = Net::auto(embedded());
    assert!(net.view(Oracle::peekCall { prompt: "A contract ".into() }).len() <= 24);
}

#[test]
fn nml_toml_llm_routes_and_keys_reach_the_server() {
    let double = OpenAiDouble::start(Duration::ZERO);
    // SAFETY: set before any thread of this test reads it; no other test reads this variable.
    unsafe { std::env::set_var("NML_TEST_LLM_KEY", "sk-test-123") };
    let mut config = LlmConfig { default: Some("none".into()), ..LlmConfig::default() };
    config.servers.insert(
        "local".into(),
        ServerConfig {
            url: double.url.clone(),
            api_key_env: Some("NML_TEST_LLM_KEY".into()),
            models: [(ANALYST.to_owned(), "served-llama".to_owned())].into(),
            ..ServerConfig::default()
        },
    );
    let stack = config.build(Path::new("."), &library()).expect("config");
    let net = Net::auto(stack.backend);
    assert_eq!(net.view(Oracle::peekCall { prompt: "hi".into() }), "echo[served-llama]: hi");
    let (_, _, auth) = double.requests().pop().expect("a request");
    assert_eq!(auth.as_deref(), Some("Bearer sk-test-123"));
    let status = serde_json::to_string(&net.devnet.mempool_status().unwrap()).unwrap();
    assert!(!status.contains("sk-test-123"));
}

#[test]
fn the_pipe_config_bounds_concurrent_backend_calls() {
    let double = OpenAiDouble::start(Duration::from_millis(100));
    let run = |concurrency: usize| {
        let setup = InferenceSetup {
            llm: double_backend(&double, Duration::from_secs(10)),
            pipe: PipeConfig { llm_concurrency: concurrency, ..PipeConfig::default() },
            ..InferenceSetup::new(executor())
        };
        let devnet = Devnet::with_inference(DevnetConfig { mining: Mining::Manual, ..DevnetConfig::default() }, setup)
            .expect("devnet");
        let deploy = send(&devnet, 0, None, oracle_code().clone());
        devnet.mine(None).unwrap();
        let oracle = mined(&devnet, deploy).contract_address.unwrap();
        let hashes: Vec<B256> = (0..8)
            .map(|i| {
                let call = Oracle::questionCall { prompt: format!("c{concurrency}-{i}") };
                send(&devnet, i % 10, Some(oracle), call.abi_encode().into())
            })
            .collect();
        let started = Instant::now();
        devnet.mine(None).unwrap();
        let took = started.elapsed();
        assert!(hashes.iter().all(|h| mined(&devnet, *h).success));
        took
    };
    let one = run(1);
    let eight = run(8);
    assert!(one >= Duration::from_millis(800), "{one:?}");
    assert!(eight < Duration::from_millis(600), "{eight:?} with 8 at once (one at a time: {one:?})");
}

#[test]
fn tools_and_tool_calls_cross_the_precompile() {
    use nml_runtime::inference::abi::{ChatMessage, LLMChatRequest, ToolDefinition, runLLMChatCall};
    let request = LLMChatRequest {
        modelCID: ANALYST.into(),
        messages: vec![ChatMessage { role: "user".into(), content: "price of ETH?".into(), ..Default::default() }],
        tools: vec![ToolDefinition {
            description: "the price of an asset".into(),
            name: "price".into(),
            parameters: r#"{"type":"object","properties":{"asset":{"type":"string"}}}"#.into(),
        }],
        tool_choice: "auto".into(),
        max_tokens: 16,
        ..Default::default()
    };
    let call = |net: &Net| {
        let to = nml_runtime::mempool::INFERENCE_PRECOMPILE;
        let input = runLLMChatCall { request: request.clone() }.abi_encode();
        let tx = TransactionRequest::default().to(to).input(input.into()).gas_limit(GAS);
        net.devnet.call(tx, None, None)
    };
    let double = OpenAiDouble::start(Duration::ZERO);
    let net = Net::auto(double_backend(&double, Duration::from_secs(5)));
    let out = call(&net).expect("answered");
    let response = runLLMChatCall::abi_decode_returns(&out).expect("a chat response");
    assert_eq!(response.finish_reason, "tool_calls");
    let [tool_call] = <[_; 1]>::try_from(response.message.tool_calls).expect("one call");
    assert_eq!(
        (tool_call.id.as_str(), tool_call.name.as_str(), tool_call.arguments.as_str()),
        ("call_1", "price", "{\"x\":1}")
    );
    let (_, body, _) = double.requests().pop().expect("sent");
    assert_eq!(body["tools"][0]["function"]["parameters"]["properties"]["asset"]["type"], "string");
    assert_eq!(body["tool_choice"], "auto");

    // The embedded model cannot call tools, and says so.
    let net = Net::auto(Arc::new(EmbeddedLlm::new(&library()).expect("embedded")));
    let err = call(&net).unwrap_err().to_string();
    assert!(
        err.contains("cannot call tools: route `meta-llama/Llama-3.1-8B-Instruct` to an OpenAI-compatible server"),
        "{err}"
    );
}

/// OpenGradient's inference hub at 0x8383…6FaE answers an account's LLM
/// calls with its own event, and the precompile logs what it served (the
/// events of the SDK's `inference.abi` and `InferencePrecompile.abi`), once,
/// in the mined transaction.
#[test]
fn the_inference_hub_and_the_precompile_log_what_was_served() {
    use alloy_sol_types::SolEvent;
    use nml_runtime::inference::abi::{LLMCompletionEvent, LLMCompletionRequest};
    use nml_runtime::predeploys::INFERENCE_HUB;
    let double = OpenAiDouble::start(Duration::ZERO);
    let net = Net::auto(double_backend(&double, Duration::from_secs(5)));
    let request = CompletionRequest {
        mode: 0,
        modelCID: ANALYST.into(),
        prompt: "via the hub".into(),
        max_tokens: 8,
        stop_sequence: vec![],
        temperature: 0,
    };
    let hash = send(&net.devnet, 0, Some(INFERENCE_HUB), Hub::runLLMCompletionCall { request }.abi_encode().into());
    let receipt = mined(&net.devnet, hash);
    assert!(receipt.success);
    let [served, result] = <[_; 2]>::try_from(receipt.logs).expect("two logs");
    assert_eq!(served.address, nml_runtime::mempool::INFERENCE_PRECOMPILE);
    let served = LLMCompletionEvent::decode_log_data(&served.data).expect("LLMCompletionEvent");
    assert_eq!(served.response.answer, "echo[llama]: via the hub");
    assert_eq!(
        served.request,
        LLMCompletionRequest {
            modelCID: ANALYST.into(),
            prompt: "via the hub".into(),
            max_tokens: 8,
            ..Default::default()
        }
    );
    assert_eq!(served.inferenceID, receipt.inference[0].request_id.to_string());
    assert_eq!(result.address, INFERENCE_HUB);
    let result = Hub::LLMCompletionResult::decode_log_data(&result.data).expect("LLMCompletionResult");
    assert_eq!(result.response.answer, "echo[llama]: via the hub");
}
