//! The inference mempool end to end, in-process: contracts compiled by real
//! solc (`tests/fixtures/inference`) on a devnet whose precompile at 0x…F4
//! runs the real models of `runtime/tests/models` on ONNX Runtime
//! (PROTOCOL.md B1–B7).
//!
//! The `mlp` model is y = relu(x · W + b) with dyadic weights, so its outputs
//! are exact: x = [1, 2, 3, 4] gives y = [2.75, 1.75, 0], returned at 18
//! decimals.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, I256, U256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{SolCall, SolEvent, sol};
use nml_runtime::chain::{Served, TxReceipt};
use nml_runtime::inference::{Executor, ModelRegistry, OnnxConfig, OnnxExecutor};
use nml_runtime::mempool::{OnMiss, PipeConfig};
use nml_runtime::node::InferenceSetup;
use nml_runtime::settlement::SettlementConfig;
use nml_runtime::{Devnet, DevnetConfig, Mining};

mod common;

sol! {
    struct Number { int128 value; int128 decimals; }
    struct MultiDimensionalNumberTensor { string name; Number[] values; uint32[] shape; }
    struct StringTensor { string name; string[] values; }
    struct ModelInput { MultiDimensionalNumberTensor[] numbers; StringTensor[] strings; }
    struct ModelInferenceRequest { uint8 mode; string modelCID; ModelInput input; }

    contract Predictor {
        event Predicted(int128 y0, int128 y1, int128 y2);
        event Failed(string reason);
        function predict(int256[4] x);
        function predictUnchecked(int256[4] x);
        function predictTwice(int256[4] x);
        function setScale(int256 s);
        function predictScaled();
        function peek(int256[4] x) returns (int128[3]);
        function tryRequest(ModelInferenceRequest r);
        function tryPredict(string id, int256[4] x);
        function last(uint256 i) returns (int128);
        function updates() returns (uint256);
        function outputsSeen() returns (uint256);
        function sawSimulation() returns (bool);
        function lastError() returns (string);
    }

    contract AttestedPredictor {
        function run(ModelInferenceRequest r);
        function lastInputHash() returns (bytes32);
        function lastOutputHash() returns (bytes32);
        function check(bytes key, uint256 timestamp, bytes signature) returns (bool);
        function checkRegistered(bytes32 teeId, uint256 timestamp, bytes signature) returns (bool);
        function settled(bytes32 teeId, uint256 timestamp) returns (bool);
    }

    contract PublishedClient {
        function infer(int128 a, int128 b, int128 c, int128 d);
        function firstOutput() returns (int128);
    }
}

const E18: i128 = 1_000_000_000_000_000_000;
const GAS: u64 = 5_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_file(name: &str) -> PathBuf {
    repo().join("runtime/tests/models").join(format!("{name}.onnx"))
}

/// Creation bytecode of the fixture contracts, built once per test binary.
struct Fixtures {
    predictor: Bytes,
    published: Bytes,
    attested: Bytes,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| {
        let (_dir, codes) = common::build(
            &repo().join("tests/fixtures/inference"),
            false,
            &["Predictor", "PublishedClient", "AttestedPredictor"],
        );
        let [predictor, published, attested] = <[Bytes; 3]>::try_from(codes).expect("three contracts");
        Fixtures { predictor, published, attested }
    })
}

/// Model ids of the executor's registry.
struct Models {
    mlp: String,
    fails: String,
    slow: String,
}

fn executor(timeout: Duration) -> (Arc<OnnxExecutor>, Models) {
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    let executor = OnnxExecutor::new(OnnxConfig { workers: 2, timeout, ..OnnxConfig::new(library) }).expect("ORT");
    let register = |name: &str| executor.registry().register_file(&model_file(name), None).expect("model").id;
    let models = Models {
        mlp: register("mlp").to_string(),
        fails: register("fails").to_string(),
        slow: register("slow").to_string(),
    };
    (Arc::new(executor), models)
}

/// A devnet with inference and a deployed `Predictor` for the `mlp` model.
struct Net {
    devnet: Devnet,
    predictor: Address,
    models: Models,
}

impl Net {
    fn new(mining: Mining, pipe: PipeConfig) -> Self {
        Self::with(DevnetConfig { mining, ..DevnetConfig::default() }, pipe, Duration::from_secs(30))
    }

    fn with(config: DevnetConfig, pipe: PipeConfig, timeout: Duration) -> Self {
        Self::settling(config, pipe, timeout, Default::default())
    }

    fn settling(config: DevnetConfig, pipe: PipeConfig, timeout: Duration, settlement: SettlementConfig) -> Self {
        let (executor, models) = executor(timeout);
        let registry: Arc<ModelRegistry> = Arc::clone(executor.registry());
        let setup = InferenceSetup {
            registry: Some(registry),
            pipe,
            settlement,
            ..InferenceSetup::new(executor as Arc<dyn Executor>)
        };
        let manual = config.mining == Mining::Manual;
        let devnet = Devnet::with_inference(config, setup).expect("devnet");
        let mut code = fixtures().predictor.to_vec();
        code.extend_from_slice(&alloy_sol_types::SolValue::abi_encode_params(&(models.mlp.clone(),)));
        let hash = send(&devnet, 0, None, code.into());
        if manual {
            devnet.mine(None).expect("mine");
        }
        let predictor = mined(&devnet, hash).contract_address.expect("deployed");
        Self { devnet, predictor, models }
    }

    fn send(&self, from: usize, call: impl SolCall) -> B256 {
        send(&self.devnet, from, Some(self.predictor), call.abi_encode().into())
    }

    /// The receipt, once mined (a transaction stays pending while its
    /// inference runs).
    fn receipt(&self, hash: B256) -> TxReceipt {
        mined(&self.devnet, hash)
    }

    fn view<C: SolCall>(&self, call: C) -> C::Return {
        let request = TransactionRequest::default().to(self.predictor).input(call.abi_encode().into());
        let out = self.devnet.call(request, None, None).expect("call");
        C::abi_decode_returns(&out).expect("decode")
    }

    fn last(&self) -> [i128; 3] {
        [0, 1, 2].map(|i| self.view(Predictor::lastCall { i: U256::from(i) }))
    }

    fn runs(&self) -> u64 {
        self.devnet.mempool_status().expect("status").pipe.inferences_run
    }
}

fn send(devnet: &Devnet, from: usize, to: Option<Address>, input: Bytes) -> B256 {
    send_with_tip(devnet, from, to, input, 1)
}

fn mined(devnet: &Devnet, hash: B256) -> TxReceipt {
    devnet.wait_for_receipt(hash, Duration::from_secs(60)).expect("mined within a minute")
}

fn send_with_tip(devnet: &Devnet, from: usize, to: Option<Address>, input: Bytes, tip_gwei: u128) -> B256 {
    let sender = devnet.accounts()[from];
    let mut request = TransactionRequest::default()
        .from(sender)
        .input(input.into())
        .gas_limit(GAS)
        .max_fee_per_gas(100_000_000_000)
        .max_priority_fee_per_gas(tip_gwei * 1_000_000_000);
    if let Some(to) = to {
        request = request.to(to);
    }
    devnet.send_transaction(request).expect("sent")
}

fn x(values: [i64; 4]) -> [I256; 4] {
    values.map(I256::try_from).map(Result::unwrap)
}

#[test]
fn a_contract_that_returns_early_on_the_simulation_pass_gets_the_real_output_at_inclusion() {
    let net = Net::new(Mining::Auto, PipeConfig::default());
    let hash = net.send(0, Predictor::predictCall { x: x([1, 2, 3, 4]) });
    let receipt = net.receipt(hash);
    assert!(receipt.success, "{receipt:?}");
    assert_eq!(net.last(), [275 * E18 / 100, 175 * E18 / 100, 0]);
    assert_eq!(net.view(Predictor::updatesCall {}), U256::from(1));
    // The precompile logs what it served first, then the contract its event.
    assert_eq!(receipt.logs.len(), 2);
    assert_eq!(receipt.logs[0].address, nml_runtime::mempool::INFERENCE_PRECOMPILE);
    let event = Predictor::Predicted::decode_log_data(&receipt.logs[1].data).expect("event");
    assert_eq!(event.y0, 275 * E18 / 100);

    let [record] = receipt.inference.as_slice() else { panic!("one call: {:?}", receipt.inference) };
    assert_eq!(record.model, net.models.mlp);
    assert_eq!(record.served, Served::PreExecuted);
    assert_eq!(record.round, Some(1));
    assert!(record.success);
    assert_eq!(net.runs(), 1);
}

#[test]
fn a_contract_that_ignores_the_simulation_flag_sees_the_real_output_at_inclusion() {
    let net = Net::new(Mining::Auto, PipeConfig::default());
    let hash = net.send(0, Predictor::predictUncheckedCall { x: x([1, 2, 3, 4]) });
    assert!(net.receipt(hash).success);
    // The simulation saw no tensors and the flag; only inclusion's state is kept.
    assert_eq!(net.view(Predictor::outputsSeenCall {}), U256::from(1));
    assert!(!net.view(Predictor::sawSimulationCall {}));
}

#[test]
fn a_dependent_second_inference_is_found_in_round_two() {
    let net = Net::new(Mining::Auto, PipeConfig::default());
    let hash = net.send(0, Predictor::predictTwiceCall { x: x([1, 2, 3, 4]) });
    let receipt = net.receipt(hash);
    assert!(receipt.success);
    // First y = [2.75, 1.75, 0] → next x = [2, 1, 0, 1] → y = [2.625, 0, 0].
    assert_eq!(net.last(), [2625 * E18 / 1000, 0, 0]);
    let rounds: Vec<_> = receipt.inference.iter().map(|r| (r.round, r.served)).collect();
    assert_eq!(rounds, [(Some(1), Served::PreExecuted), (Some(2), Served::PreExecuted)]);
    assert_eq!(net.runs(), 2);
    let status = net.devnet.mempool_status().unwrap().pipe;
    assert_eq!(status.rounds_run, 2);
}

#[test]
fn the_round_limit_fails_the_request_it_cuts_off() {
    let net = Net::new(Mining::Auto, PipeConfig { round_limit: 1, ..PipeConfig::default() });
    let hash = net.send(0, Predictor::predictTwiceCall { x: x([1, 2, 3, 4]) });
    let receipt = net.receipt(hash);
    assert!(!receipt.success, "the second request reverts");
    let reason = alloy_sol_types::decode_revert_reason(&receipt.output).unwrap_or_default();
    assert!(reason.contains("inference round limit exceeded"), "{reason}");
    assert_eq!(net.runs(), 1, "the cut-off request never ran");
    // A replay gives the cut-off request the same answer.
    let opts = serde_json::from_value(serde_json::json!({ "tracer": "callTracer" })).unwrap();
    let trace = serde_json::to_value(net.devnet.trace_transaction(hash, opts).expect("trace")).unwrap();
    let calls = trace["calls"].as_array().expect("calls");
    assert_eq!(calls.len(), 2, "{trace}");
    let recorded = &net.receipt(hash).inference[1];
    assert_eq!(calls[1]["output"], serde_json::to_value(&recorded.output).unwrap());
}

#[test]
fn fifty_transactions_with_the_identical_request_run_the_model_once() {
    let net = Net::new(Mining::Manual, PipeConfig::default());
    let hashes: Vec<B256> = (0..50).map(|i| net.send(i % 10, Predictor::predictCall { x: x([1, 2, 3, 4]) })).collect();
    net.devnet.mine(None).expect("mine");
    for hash in &hashes {
        let receipt = net.receipt(*hash);
        assert!(receipt.success);
        assert_eq!(receipt.inference.len(), 1);
        assert_eq!(receipt.inference[0].served, Served::PreExecuted);
    }
    let ids: std::collections::HashSet<B256> = hashes.iter().map(|h| net.receipt(*h).inference[0].request_id).collect();
    assert_eq!(ids.len(), 1);
    assert_eq!(net.runs(), 1);
    assert_eq!(net.view(Predictor::updatesCall {}), U256::from(50));
}

/// Sender 0 changes `scale` (higher tip: first in the block); sender 1's
/// prediction depends on it and was simulated before the change.
fn state_changes_between_simulation_and_inclusion(on_miss: OnMiss) -> (Net, B256, B256) {
    let net = Net::new(Mining::Manual, PipeConfig { on_miss, ..PipeConfig::default() });
    let scale = Predictor::setScaleCall { s: I256::try_from(2).unwrap() }.abi_encode();
    let change = send_with_tip(&net.devnet, 0, Some(net.predictor), scale.into(), 5);
    let scaled = Predictor::predictScaledCall {}.abi_encode();
    let predict = send_with_tip(&net.devnet, 1, Some(net.predictor), scaled.into(), 1);
    net.devnet.mine(None).expect("mine");
    (net, change, predict)
}

#[test]
fn a_request_changed_since_simulation_runs_inline() {
    let (net, change, predict) = state_changes_between_simulation_and_inclusion(OnMiss::Inline);
    assert!(net.receipt(change).success);
    let receipt = net.receipt(predict);
    assert!(receipt.success);
    let [record] = receipt.inference.as_slice() else { panic!("{:?}", receipt.inference) };
    assert_eq!((record.served, record.round), (Served::Inline, None));
    // Scale 2: x = [2, 4, 6, 8] → y = [5, 3.75, 2.5].
    assert_eq!(net.last(), [5 * E18, 375 * E18 / 100, 25 * E18 / 10]);
    assert_eq!(net.runs(), 2, "the stale request and the inline one");
}

#[test]
fn a_request_changed_since_simulation_defers_the_transaction() {
    let (net, change, predict) = state_changes_between_simulation_and_inclusion(OnMiss::Defer);
    assert!(net.receipt(change).success);
    assert!(net.devnet.receipt_record(predict).is_none(), "deferred to the next block");
    assert_eq!(net.view(Predictor::updatesCall {}), U256::ZERO);
    net.devnet.mine(None).expect("mine");
    let receipt = net.receipt(predict);
    assert!(receipt.success);
    let [record] = receipt.inference.as_slice() else { panic!("{:?}", receipt.inference) };
    assert_eq!((record.served, record.round), (Served::PreExecuted, Some(1)));
    assert_eq!(net.last(), [5 * E18, 375 * E18 / 100, 25 * E18 / 10]);
}

fn request(
    model: &str,
    numbers: Vec<MultiDimensionalNumberTensor>,
    strings: Vec<StringTensor>,
) -> ModelInferenceRequest {
    ModelInferenceRequest { mode: 0, modelCID: model.into(), input: ModelInput { numbers, strings } }
}

fn tensor(name: &str, values: &[i128], shape: &[u32]) -> MultiDimensionalNumberTensor {
    MultiDimensionalNumberTensor {
        name: name.into(),
        values: values.iter().map(|&value| Number { value, decimals: 0 }).collect(),
        shape: shape.to_vec(),
    }
}

/// Sends `tryRequest(r)` and returns the reason the contract caught.
fn caught(net: &Net, r: ModelInferenceRequest) -> String {
    let hash = net.send(0, Predictor::tryRequestCall { r });
    let receipt = net.receipt(hash);
    assert!(receipt.success, "the failure is caught: {receipt:?}");
    assert!(!receipt.inference[0].success);
    let event = Predictor::Failed::decode_log_data(&receipt.logs[0].data).expect("Failed event");
    assert_eq!(net.view(Predictor::lastErrorCall {}), event.reason);
    event.reason
}

#[test]
fn failing_inferences_revert_with_a_reason_that_try_catch_catches() {
    let net = Net::new(Mining::Auto, PipeConfig::default());
    // A runtime error: `fails` reshapes x to [2, 2], which 3 values cannot fill.
    let fails = net.models.fails.clone();
    let reason = caught(&net, request(&fails, vec![tensor("x", &[1, 2, 3], &[3])], vec![]));
    assert!(reason.starts_with(&format!("model `{fails}` failed")), "{reason}");

    let unknown = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG";
    let hash = net.send(0, Predictor::tryPredictCall { id: unknown.into(), x: x([1, 2, 3, 4]) });
    assert!(net.receipt(hash).success);
    let reason = net.view(Predictor::lastErrorCall {});
    assert!(reason.contains(&format!("unknown model `{unknown}`")), "{reason}");

    // The model is registered under that id later: the failure is not kept.
    let bytes = std::fs::read(model_file("mlp")).unwrap();
    net.devnet.register_model(bytes, Some(unknown)).expect("register");
    let hash = net.send(0, Predictor::tryPredictCall { id: unknown.into(), x: x([1, 2, 3, 4]) });
    let receipt = net.receipt(hash);
    assert!(receipt.success && receipt.inference[0].success, "{receipt:?}");
    assert_eq!(net.last(), [275 * E18 / 100, 175 * E18 / 100, 0]);

    let mlp = net.models.mlp.clone();
    let reason = caught(&net, request(&mlp, vec![tensor("z", &[1, 2, 3, 4], &[1, 4])], vec![]));
    assert!(reason.contains("has no input named `z`"), "{reason}");
    let strings = vec![StringTensor { name: "x".into(), values: vec!["1".into(); 4] }];
    let reason = caught(&net, request(&mlp, vec![], strings));
    assert!(reason.contains("input `x` expects"), "{reason}");
    let reason = caught(&net, request(&mlp, vec![tensor("x", &[1, 2, 3, 4, 5], &[1, 5])], vec![]));
    assert!(reason.contains("input `x` has shape [1, 5]"), "{reason}");
    // Nothing failed silently: the devnet still serves.
    let hash = net.send(0, Predictor::predictCall { x: x([1, 2, 3, 4]) });
    assert!(net.receipt(hash).success);
}

#[test]
fn a_model_past_the_inference_timeout_fails_and_the_node_goes_on() {
    let config = DevnetConfig::default();
    let net = Net::with(config, PipeConfig::default(), Duration::from_millis(300));
    let slow = net.models.slow.clone();
    let started = std::time::Instant::now();
    let reason = caught(&net, request(&slow, vec![tensor("n", &[50_000_000], &[])], vec![]));
    assert!(reason.contains("did not finish within the inference timeout"), "{reason}");
    assert!(started.elapsed() < Duration::from_secs(20), "no hang: {:?}", started.elapsed());
    let hash = net.send(0, Predictor::predictCall { x: x([1, 2, 3, 4]) });
    assert!(net.receipt(hash).success);
}

#[test]
fn llm_calls_revert_with_a_clear_reason() {
    let net = Net::new(Mining::Auto, PipeConfig::default());
    // runLLMCompletion((uint8,string,string,uint32,string[],uint32)) straight to the precompile.
    let calldata = nml_runtime::inference::abi::runLLMCompletionCall {
        request: nml_runtime::inference::abi::LLMCompletionRequest { prompt: "hi".into(), ..Default::default() },
    }
    .abi_encode();
    let to = nml_runtime::mempool::INFERENCE_PRECOMPILE;
    let request = TransactionRequest::default().to(to).input(calldata.into()).gas_limit(GAS);
    let err = net.devnet.call(request, None, None).unwrap_err().to_string();
    assert!(err.contains("no LLM backend is configured"), "{err}");
}

#[test]
fn eth_call_runs_a_model_synchronously() {
    let net = Net::new(Mining::Auto, PipeConfig::default());
    let y = net.view(Predictor::peekCall { x: x([1, 2, 3, 4]) });
    assert_eq!(y, [275 * E18 / 100, 175 * E18 / 100, 0]);
    // eth_estimateGas runs it too (from the known result: no second run).
    let request = TransactionRequest::default()
        .from(net.devnet.accounts()[0])
        .to(net.predictor)
        .input(Predictor::peekCall { x: x([1, 2, 3, 4]) }.abi_encode().into());
    let gas = net.devnet.estimate_gas(request, None, None).expect("estimate");
    assert!(gas > 21_000 + nml_runtime::mempool::pipe::GAS_BASE, "{gas}");
    assert_eq!(net.runs(), 1);
}

#[test]
fn a_contract_written_against_the_published_interface_runs_unmodified() {
    let net = Net::new(Mining::Auto, PipeConfig::default());
    let mut code = fixtures().published.to_vec();
    code.extend_from_slice(&alloy_sol_types::SolValue::abi_encode_params(&(net.models.mlp.clone(),)));
    let deploy = send(&net.devnet, 0, None, code.into());
    let client = net.receipt(deploy).contract_address.expect("deployed");
    let call = PublishedClient::inferCall { a: 1, b: 2, c: 3, d: 4 }.abi_encode();
    let hash = send(&net.devnet, 0, Some(client), call.into());
    let receipt = net.receipt(hash);
    assert!(receipt.success);
    assert_eq!(receipt.inference[0].mode, 2, "TEE");
    let request =
        TransactionRequest::default().to(client).input(PublishedClient::firstOutputCall {}.abi_encode().into());
    let out = net.devnet.call(request, None, None).expect("call");
    assert_eq!(PublishedClient::firstOutputCall::abi_decode_returns(&out).unwrap(), 275 * E18 / 100);
}

#[test]
fn replays_after_a_state_reload_serve_the_recorded_results() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = DevnetConfig { state_file: Some(state.clone()), ..DevnetConfig::default() };
    let net = Net::with(config.clone(), PipeConfig::default(), Duration::from_secs(30));
    let hash = net.send(0, Predictor::predictCall { x: x([1, 2, 3, 4]) });
    let recorded = net.receipt(hash).inference;
    net.devnet.save_state().expect("save").expect("a state file");
    let trace = |devnet: &Devnet| {
        let opts = serde_json::from_value(serde_json::json!({ "tracer": "callTracer" })).unwrap();
        serde_json::to_value(devnet.trace_transaction(hash, opts).expect("trace")).unwrap()
    };
    let before = trace(&net.devnet);
    drop(net);

    // A new node on the saved state, whose executor has never run anything.
    let (executor, _) = executor(Duration::from_secs(30));
    let setup = InferenceSetup::new(executor);
    let devnet = Devnet::with_inference(config, setup).unwrap();
    assert_eq!(devnet.receipt_record(hash).expect("reloaded").inference, recorded);
    let after = trace(&devnet);
    assert_eq!(before, after, "the replay is identical");
    let precompile_call = &after["calls"][0];
    assert_eq!(precompile_call["to"], "0x00000000000000000000000000000000000000f4");
    assert_eq!(precompile_call["output"], serde_json::to_value(&recorded[0].output).unwrap());
    assert_eq!(devnet.mempool_status().unwrap().pipe.inferences_run, 0, "a replay never runs a model");
}

#[test]
fn interval_mining_runs_the_mempool_too() {
    let config = DevnetConfig { mining: Mining::Interval(Duration::from_millis(100)), ..DevnetConfig::default() };
    let (executor, models) = executor(Duration::from_secs(30));
    let setup = InferenceSetup::new(executor);
    let devnet = Arc::new(Devnet::with_inference(config, setup).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    runtime.spawn(Arc::clone(&devnet).run_interval_miner());
    let mut code = fixtures().predictor.to_vec();
    code.extend_from_slice(&alloy_sol_types::SolValue::abi_encode_params(&(models.mlp.clone(),)));
    let deploy = send(&devnet, 0, None, code.into());
    let wait = |hash: B256| {
        for _ in 0..100 {
            if let Some(r) = devnet.receipt_record(hash) {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("not mined within 5 s");
    };
    let predictor = wait(deploy).contract_address.expect("deployed");
    let call = Predictor::predictCall { x: x([1, 2, 3, 4]) }.abi_encode();
    let receipt = wait(send(&devnet, 0, Some(predictor), call.into()));
    assert!(receipt.success);
    assert_eq!(receipt.inference[0].served, Served::PreExecuted);
}

/// A devnet with a 2 s inference timeout and a transaction whose model runs
/// until it: the chain keeps serving meanwhile.
fn slow_transaction(config: DevnetConfig) -> (Net, B256, std::time::Instant) {
    let net = Net::with(config, PipeConfig::default(), Duration::from_secs(2));
    let slow = net.models.slow.clone();
    let started = std::time::Instant::now();
    let hash = net
        .send(0, Predictor::tryRequestCall { r: request(&slow, vec![tensor("n", &[i64::MAX as i128], &[])], vec![]) });
    (net, hash, started)
}

#[test]
fn a_slow_inference_never_stalls_the_chain() {
    let (net, hash, started) = slow_transaction(DevnetConfig::default());
    let sent = started.elapsed();
    let d = &net.devnet;
    // Its round is running: it counts once done.
    let rounds_at_send = d.mempool_status().unwrap().pipe.rounds_run;
    // Far above normal latency (microseconds to milliseconds), far below the model's 2 s.
    let bound = Duration::from_millis(500);
    assert!(sent < bound, "the send answered at once: {sent:?}");
    let timed = |what: &str, f: &dyn Fn()| {
        let t = std::time::Instant::now();
        f();
        assert!(t.elapsed() < bound, "{what} took {:?} while the model ran", t.elapsed());
    };
    std::thread::sleep(Duration::from_millis(200));
    let head = d.block_number();
    timed("eth_blockNumber", &|| {
        d.block_number();
    });
    timed("eth_getBalance", &|| {
        d.balance(d.accounts()[3], Default::default()).unwrap();
    });
    // The transaction is pending: in the pool, without a block, in its stage.
    let (_, rpc) = d.transaction(hash).expect("known");
    assert_eq!(rpc.block_number, None);
    assert!(d.pool_content().pending.values().flatten().any(|tx| tx.hash == hash));
    assert!(d.mempool_status().unwrap().pipe.awaiting_inference.contains(&hash));
    assert!(d.receipt(hash).is_none());
    // A second account's transfer is mined meanwhile.
    timed("a second account's transfer", &|| {
        let request = TransactionRequest::default().from(d.accounts()[1]).to(d.accounts()[2]).value(U256::from(7));
        let transfer = d.send_transaction(request).expect("sent");
        let receipt = d.receipt(transfer).expect("mined before its receipt is asked for");
        assert!(receipt.status());
    });
    assert_eq!(d.block_number(), head + 1);
    // The other block did not make the node forget what it learnt of the
    // slow transaction (it is not simulated and dispatched again below).
    assert!(d.mempool_status().unwrap().pipe.awaiting_inference.contains(&hash));
    assert!(started.elapsed() < Duration::from_secs(2), "all of it while the model ran");
    // Once the model is done (here: stopped by the timeout), it is mined,
    // its request found by pre-execution.
    let receipt = net.receipt(hash);
    assert!(receipt.success, "the contract caught the failure");
    assert!(!receipt.inference[0].success);
    assert_eq!(receipt.inference[0].served, Served::PreExecuted);
    // One dispatch round ran for it, across both blocks.
    assert_eq!(d.mempool_status().unwrap().pipe.rounds_run - rounds_at_send, 1);
    assert!(started.elapsed() >= Duration::from_secs(2));
}

#[test]
fn reads_and_sends_answer_while_evm_mine_waits_for_a_slow_model() {
    let (net, hash, started) = slow_transaction(DevnetConfig::default());
    let d = &net.devnet;
    let head = d.block_number();
    std::thread::scope(|scope| {
        // `evm_mine` waits for the model (until its 2 s timeout) to include
        // the transaction, holding the builder meanwhile.
        let mining = scope.spawn(|| d.mine(None).expect("mined"));
        std::thread::sleep(Duration::from_millis(200));
        // A second account's transfer is queued behind that block: sending
        // it and reading the chain answer at once all the same.
        let bound = Duration::from_millis(500);
        let t = std::time::Instant::now();
        let request = TransactionRequest::default().from(d.accounts()[1]).to(d.accounts()[2]).value(U256::from(7));
        let transfer = d.send_transaction(request).expect("sent");
        d.block_number();
        d.balance(d.accounts()[3], Default::default()).unwrap();
        let receipt = d.receipt(transfer);
        assert!(t.elapsed() < bound, "a send and three reads took {:?} while evm_mine waited", t.elapsed());
        assert!(receipt.is_none(), "queued behind the block being built");
        // The slow transaction is shown waiting for its model meanwhile.
        assert!(d.mempool_status().unwrap().pipe.awaiting_inference.contains(&hash));
        assert!(started.elapsed() < Duration::from_secs(2), "all of it while the model ran");
        let block = mining.join().unwrap();
        assert!(block.transactions.iter().any(|tx| tx.hash == hash), "evm_mine's block holds the slow transaction");
        assert_eq!(block.number(), head + 1);
        // The transfer is mined right after.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while d.receipt(transfer).is_none() {
            assert!(std::time::Instant::now() < deadline, "the transfer was never mined");
            std::thread::sleep(Duration::from_millis(10));
        }
    });
}

#[test]
fn shutdown_during_a_slow_inference_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = DevnetConfig { state_file: Some(state.clone()), ..DevnetConfig::default() };
    let (net, hash, _) = slow_transaction(config.clone());
    std::thread::sleep(Duration::from_millis(200));
    assert!(net.devnet.receipt(hash).is_none(), "still pending");
    net.devnet.shutdown();
    net.devnet.save_state().expect("save").expect("a state file");
    let head = net.devnet.block_number();
    drop(net);
    let (executor, _) = executor(Duration::from_secs(30));
    let setup = InferenceSetup::new(executor);
    let devnet = Devnet::with_inference(config, setup).unwrap();
    assert_eq!(devnet.block_number(), head);
    let receipt = devnet.receipt_record(hash).expect("mined before the node stopped, and saved");
    assert!(receipt.success);
}

/// `nml devnet --state` stopped by SIGTERM while a transaction's model runs:
/// the server stops, the transaction is mined once its model is done (here:
/// stopped by the 2 s timeout), and the state written holds it.
#[test]
fn sigterm_during_a_slow_inference_loses_nothing() {
    use common::node::{Node, rpc};
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let (state, models) = (dir.path().join("state.json"), dir.path().join("models"));
    std::fs::create_dir(&models).unwrap();
    std::fs::copy(model_file("slow"), models.join("slow.onnx")).unwrap();
    let args = ["--state", state.to_str().unwrap(), "--models", models.to_str().unwrap(), "--inference-timeout", "2"];
    let node = Node::start(&args);
    let url = node.url.as_str();
    let slow = rpc(url, "nml_listModels", json!([]))[0]["id"].as_str().expect("the slow model").to_owned();
    let from = rpc(url, "eth_accounts", json!([]))[0].clone();
    let mut code = fixtures().predictor.to_vec();
    code.extend_from_slice(&alloy_sol_types::SolValue::abi_encode_params(&(slow.clone(),)));
    let send = |to: Option<&str>, data: Vec<u8>| {
        let data = alloy_primitives::hex::encode_prefixed(data);
        // With gas given: estimating it would run the model.
        let tx = json!({ "from": from, "to": to, "data": data, "gas": "0x4c4b40" });
        rpc(url, "eth_sendTransaction", json!([tx])).as_str().expect("a hash").to_owned()
    };
    let deploy = send(None, code);
    let predictor = rpc(url, "eth_getTransactionReceipt", json!([deploy]))["contractAddress"].clone();
    let predictor = predictor.as_str().expect("deployed").to_owned();
    let r = request(&slow, vec![tensor("n", &[i64::MAX as i128], &[])], vec![]);
    let hash = send(Some(&predictor), Predictor::tryRequestCall { r }.abi_encode());
    std::thread::sleep(Duration::from_millis(300));
    assert!(rpc(url, "eth_getTransactionReceipt", json!([hash])).is_null(), "pending while its model runs");
    assert!(node.terminate().success());
    let node = Node::start(&args);
    let receipt = rpc(&node.url, "eth_getTransactionReceipt", json!([hash]));
    assert_eq!(receipt["status"], "0x1", "mined before the node stopped, and saved: {receipt}");
}

/// The mlp request for x = [1, 2, 3, 4] in `mode`, as `Predictor.tryRequest` sends it.
fn mlp_request(model: &str, mode: u8) -> ModelInferenceRequest {
    let values = [1, 2, 3, 4].map(|v| Number { value: v, decimals: 0 }).to_vec();
    let tensor = MultiDimensionalNumberTensor { name: "x".into(), values, shape: vec![1, 4] };
    ModelInferenceRequest {
        mode,
        modelCID: model.to_owned(),
        input: ModelInput { numbers: vec![tensor], strings: vec![] },
    }
}

#[test]
fn tee_mode_results_carry_attestations_that_the_verifier_precompile_accepts() {
    use alloy_primitives::keccak256;
    use alloy_sol_types::SolValue;
    use nml_runtime::tee::verifier::ITEEVerifier;
    use nml_runtime::tee::{TEE_VERIFIER, message_hash, verify_rsa_pss};

    let net = Net::new(Mining::Auto, PipeConfig::default());
    let request = mlp_request(&net.models.mlp, 2);
    let hash = net.send(0, Predictor::tryRequestCall { r: request.clone() });
    let receipt = net.receipt(hash);
    assert!(receipt.success && net.view(Predictor::outputsSeenCall {}) == U256::from(1), "{receipt:?}");
    let [record] = receipt.inference.as_slice() else { panic!("one call: {:?}", receipt.inference) };
    let attestation = record.attestation.clone().expect("a TEE-mode result is attested");

    // What it binds: the request id, the recorded output, the chain's time.
    assert_eq!(attestation.input_hash, keccak256(request.abi_encode()));
    assert_eq!(attestation.input_hash, record.request_id);
    assert_eq!(attestation.output_hash, keccak256(&record.output));
    let number = net.devnet.receipt(hash).and_then(|r| r.block_number).expect("mined");
    let block = net.devnet.block(number.into(), false).expect("block");
    let mined_at = block.header.timestamp;
    assert!(attestation.timestamp <= mined_at && attestation.timestamp + 5 >= mined_at, "{attestation:?} {mined_at}");
    let [tee] = net.devnet.tees().unwrap().try_into().expect("one enclave by default");
    assert_eq!(attestation.tee_id, tee.tee_id);
    assert_eq!(tee.tee_id, keccak256(&tee.public_key));
    let message = message_hash(attestation.input_hash, attestation.output_hash, attestation.timestamp);
    assert!(verify_rsa_pss(&tee.public_key, message, &attestation.signature));
    let calls = net.devnet.attestations(hash).expect("a known transaction");
    assert_eq!(calls.len(), 1);
    assert_eq!((calls[0].request_id, &calls[0].attestation), (record.request_id, &attestation));

    // The verifier precompile says the same on chain, and no to a forgery.
    let verify = |signature: Bytes| {
        let call =
            ITEEVerifier::verifyRSAPSSCall { publicKeyDER: tee.public_key.clone(), messageHash: message, signature };
        let request = TransactionRequest::default().to(TEE_VERIFIER).input(call.abi_encode().into());
        let out = net.devnet.call(request, None, None).expect("call");
        bool::abi_decode(&out).expect("a bool")
    };
    assert!(verify(attestation.signature.clone()));
    let mut forged = attestation.signature.to_vec();
    forged[0] ^= 0x80;
    assert!(!verify(forged.into()));

    // A contract computes the same hashes with the stdlib and checks the
    // attestation through the precompile, inside the freshness window only.
    let deploy = send(&net.devnet, 1, None, fixtures().attested.clone());
    let attested = mined(&net.devnet, deploy).contract_address.expect("deployed");
    let run = send(&net.devnet, 1, Some(attested), AttestedPredictor::runCall { r: request }.abi_encode().into());
    assert!(mined(&net.devnet, run).success);
    let view = |data: Vec<u8>| {
        let request = TransactionRequest::default().to(attested).input(data.into());
        net.devnet.call(request, None, None).expect("call")
    };
    let on_chain = |call: AttestedPredictor::lastInputHashCall| {
        AttestedPredictor::lastInputHashCall::abi_decode_returns(&view(call.abi_encode())).unwrap()
    };
    assert_eq!(on_chain(AttestedPredictor::lastInputHashCall {}), attestation.input_hash);
    let output_hash = view(AttestedPredictor::lastOutputHashCall {}.abi_encode());
    assert_eq!(B256::from_slice(&output_hash), attestation.output_hash);
    let check = |signature: Bytes| {
        let call = AttestedPredictor::checkCall {
            key: tee.public_key.clone(),
            timestamp: U256::from(attestation.timestamp),
            signature,
        };
        AttestedPredictor::checkCall::abi_decode_returns(&view(call.abi_encode())).unwrap()
    };
    assert!(check(attestation.signature.clone()));
    let registered = AttestedPredictor::checkRegisteredCall {
        teeId: attestation.tee_id,
        timestamp: U256::from(attestation.timestamp),
        signature: attestation.signature.clone(),
    };
    let registered = AttestedPredictor::checkRegisteredCall::abi_decode_returns(&view(registered.abi_encode()));
    assert!(registered.unwrap(), "the key the registry holds verifies it");
    let settled =
        AttestedPredictor::settledCall { teeId: attestation.tee_id, timestamp: U256::from(attestation.timestamp) };
    let settled = AttestedPredictor::settledCall::abi_decode_returns(&view(settled.abi_encode())).unwrap();
    assert!(!settled, "nothing settles without the relay: the trust gap");
    net.devnet.increase_time(2 * 3600).unwrap();
    net.devnet.mine(None).expect("mine");
    assert!(!check(attestation.signature.clone()), "two hours later the attestation is stale");

    // A vanilla request proves nothing.
    let vanilla = net.send(0, Predictor::tryRequestCall { r: mlp_request(&net.models.mlp, 0) });
    assert!(net.receipt(vanilla).inference[0].attestation.is_none());
    assert_eq!(net.devnet.attestations(vanilla).unwrap().len(), 0);
}

#[test]
fn attestations_survive_a_state_reload_and_replays_serve_them() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = DevnetConfig { state_file: Some(state.clone()), ..DevnetConfig::default() };
    let net = Net::with(config.clone(), PipeConfig::default(), Duration::from_secs(30));
    let hash = net.send(0, Predictor::tryRequestCall { r: mlp_request(&net.models.mlp, 2) });
    net.receipt(hash);
    let recorded = net.devnet.attestations(hash).unwrap();
    assert_eq!(recorded.len(), 1);
    net.devnet.save_state().expect("save").expect("a state file");
    drop(net);
    let (executor, _) = executor(Duration::from_secs(30));
    let setup = InferenceSetup::new(executor);
    let devnet = Devnet::with_inference(config, setup).unwrap();
    let reloaded = devnet.attestations(hash).unwrap();
    assert_eq!(reloaded[0].attestation, recorded[0].attestation);
    assert_eq!(devnet.mempool_status().unwrap().pipe.inferences_run, 0);
}

#[test]
fn the_tee_registry_holds_the_enclaves_and_follows_revocation_and_heartbeats() {
    use alloy_primitives::keccak256;
    use nml_runtime::predeploys::{ITEERegistry, SYSTEM_ADDRESS, TEE_REGISTRY, TEE_TYPE_VALIDATOR};
    use nml_runtime::tee::Enclave;

    let net = Net::new(Mining::Auto, PipeConfig::default());
    let view = |call: Vec<u8>| {
        let request = TransactionRequest::default().to(TEE_REGISTRY).input(call.into());
        net.devnet.call(request, None, None).expect("call")
    };
    let active = |id: B256| {
        ITEERegistry::isTEEActiveCall::abi_decode_returns(&view(
            ITEERegistry::isTEEActiveCall { teeId: id }.abi_encode(),
        ))
        .unwrap()
    };
    let [tee] = net.devnet.tees().unwrap().try_into().expect("one enclave");
    let info = ITEERegistry::getTEECall::abi_decode_returns(&view(
        ITEERegistry::getTEECall { teeId: tee.tee_id }.abi_encode(),
    ))
    .unwrap();
    assert_eq!((info.publicKey, info.tlsCertificate), (tee.public_key.clone(), tee.tls_certificate.clone()));
    assert_eq!(
        (info.pcrHash, info.teeType, info.enabled, info.owner),
        (tee.pcr_hash, TEE_TYPE_VALIDATOR, true, SYSTEM_ADDRESS)
    );
    assert!(active(tee.tee_id));
    let image = view(ITEERegistry::approvedPCRsCall { pcrHash: tee.pcr_hash }.abi_encode());
    eprintln!("RAW {image}");
    let image = ITEERegistry::approvedPCRsCall::abi_decode_returns(&image).expect("decodes");
    assert!(image.approved && !image.revoked, "{} {} {}", image.approved, image.revoked, image.version);
    let listed = ITEERegistry::getActiveTEEsCall::abi_decode_returns(&view(
        ITEERegistry::getActiveTEEsCall { teeType: TEE_TYPE_VALIDATOR }.abi_encode(),
    ))
    .unwrap();
    assert_eq!(listed.len(), 1);
    // Dev account 0 is untouched: registration ran as system calls.
    assert_eq!(net.devnet.transaction_count(net.devnet.accounts()[0], Default::default()).unwrap(), 1);

    // No heartbeat for more than 30 minutes: inactive; a signed heartbeat: active.
    net.devnet.increase_time(1801).unwrap();
    net.devnet.mine(None).expect("mine");
    assert!(!active(tee.tee_id));
    let now = net.devnet.block(net.devnet.block_number().into(), false).unwrap().header.timestamp;
    let enclave = Enclave::from_seed(0, 0).unwrap();
    let message = keccak256([tee.tee_id.as_slice(), &U256::from(now).to_be_bytes::<32>()].concat());
    let beat = |signature: Bytes| {
        let call = ITEERegistry::heartbeatCall { teeId: tee.tee_id, timestamp: U256::from(now), signature };
        mined(&net.devnet, send(&net.devnet, 2, Some(TEE_REGISTRY), call.abi_encode().into()))
    };
    assert!(!beat(Bytes::from(vec![0u8; 256])).success, "a forged heartbeat is refused");
    assert!(beat(enclave.sign(message.as_slice()).unwrap()).success);
    assert!(active(tee.tee_id));

    // Revoking the image disables the enclave; only the admin may.
    let revoke = ITEERegistry::revokePCRCall { pcrHash: tee.pcr_hash }.abi_encode();
    assert!(!mined(&net.devnet, send(&net.devnet, 1, Some(TEE_REGISTRY), revoke.clone().into())).success);
    assert!(mined(&net.devnet, send(&net.devnet, 0, Some(TEE_REGISTRY), revoke.into())).success);
    assert!(!active(tee.tee_id));
    let enabled = ITEERegistry::getEnabledTEEsCall::abi_decode_returns(&view(
        ITEERegistry::getEnabledTEEsCall { teeType: TEE_TYPE_VALIDATOR }.abi_encode(),
    ))
    .unwrap();
    assert!(enabled.is_empty());
}

/// The mlp request for x = [seed, 2, 3, 4] in TEE mode.
fn tee_request(model: &str, seed: i128) -> ModelInferenceRequest {
    let mut request = mlp_request(model, 2);
    request.input.numbers[0].values[0].value = seed;
    request
}

#[test]
fn individual_settlement_comes_after_the_delay_and_a_contract_can_see_it() {
    use nml_runtime::predeploys::{ISettlementRelay, SETTLEMENT_RELAY};
    use nml_runtime::settlement::{SettlementMode, SettlementStatus};

    let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 2, ..Default::default() };
    let net = Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    let hash = net.send(0, Predictor::tryRequestCall { r: tee_request(&net.models.mlp, 1) });
    net.receipt(hash);
    let settled = |devnet: &Devnet| {
        let call = &devnet.attestations(hash).unwrap()[0];
        let a = &call.attestation;
        let query = ISettlementRelay::isSettledCall {
            teeId: a.tee_id,
            inputHash: a.input_hash,
            outputHash: a.output_hash,
            timestamp: U256::from(a.timestamp),
        };
        let request = TransactionRequest::default().to(SETTLEMENT_RELAY).input(query.abi_encode().into());
        let on_chain = ISettlementRelay::isSettledCall::abi_decode_returns(&devnet.call(request, None, None).unwrap());
        (call.settlement.clone().expect("tracked"), on_chain.unwrap())
    };
    assert!(net.devnet.settle_due().unwrap().is_empty(), "inside the gap nothing is posted");
    let (status, on_chain) = settled(&net.devnet);
    assert_eq!((status.status, on_chain), (SettlementStatus::Pending, false));
    net.devnet.mine(None).unwrap();
    assert!(net.devnet.settle_due().unwrap().is_empty(), "one block later: still in the gap");
    net.devnet.mine(None).unwrap();
    let [posted] = net.devnet.settle_due().unwrap().try_into().expect("one posting two blocks later");
    assert!(mined(&net.devnet, posted).success);
    net.devnet.settle_due().unwrap();
    let (status, on_chain) = settled(&net.devnet);
    assert_eq!((status.status, status.tx_hash, on_chain), (SettlementStatus::Settled, Some(posted), true));
}

#[test]
fn a_loaded_chains_results_are_not_settled_again() {
    use nml_runtime::settlement::SettlementMode;

    let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 1, ..Default::default() };
    let settling = || Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    let (first, second) = (settling(), settling());
    let hash = first.send(0, Predictor::tryRequestCall { r: tee_request(&first.models.mlp, 1) });
    first.receipt(hash);
    first.devnet.mine(None).unwrap();
    // The second devnet's relay knows its own (shorter) chain, then takes
    // the first one's, as `--state` would at start.
    assert!(second.devnet.settle_due().unwrap().is_empty());
    assert!(second.devnet.block_number() < first.devnet.block_number());
    second.devnet.load(first.devnet.dump().unwrap()).unwrap();
    for _ in 0..3 {
        second.devnet.mine(None).unwrap();
        assert_eq!(second.devnet.settle_due().unwrap(), Vec::<B256>::new(), "nothing of the loaded chain is posted");
    }
}

/// The relay's book is rebuilt from a chain loaded at start (`--state`):
/// a settled batch keeps its transaction, root and proof, and nothing of it
/// is posted again.
/// A settling devnet that saves its state to a file, with two TEE-mode
/// results mined and one more block after them: the directory (keep it),
/// the devnet's config (to start another from the file), the devnet and the
/// two transactions.
fn two_tee_results_with_a_state_file(
    settlement: SettlementConfig,
) -> (tempfile::TempDir, DevnetConfig, Net, Vec<B256>) {
    let dir = tempfile::tempdir().unwrap();
    let config = DevnetConfig { state_file: Some(dir.path().join("state.json")), ..DevnetConfig::default() };
    let net = Net::settling(config.clone(), PipeConfig::default(), Duration::from_secs(30), settlement);
    let hashes: Vec<B256> =
        (1..=2).map(|seed| net.send(0, Predictor::tryRequestCall { r: tee_request(&net.models.mlp, seed) })).collect();
    for hash in &hashes {
        net.receipt(*hash);
    }
    net.devnet.mine(None).unwrap();
    (dir, config, net, hashes)
}

#[test]
fn settlement_status_survives_a_restart_from_the_state_file() {
    use nml_runtime::settlement::SettlementStatus;

    let settlement = SettlementConfig { after_blocks: 1, batch_size: 2, ..Default::default() };
    let (_dir, config, net, hashes) = two_tee_results_with_a_state_file(settlement);
    let [posted] = net.devnet.settle_due().unwrap().try_into().expect("one batch of two");
    assert!(mined(&net.devnet, posted).success);
    net.devnet.settle_due().unwrap();
    let settled: Vec<_> = hashes.iter().map(|h| net.devnet.attestations(*h).unwrap().remove(0)).collect();
    for call in &settled {
        let s = call.settlement.as_ref().expect("tracked");
        assert_eq!((s.status, s.tx_hash), (SettlementStatus::Settled, Some(posted)));
    }
    net.devnet.save_state().expect("save").expect("a state file");
    drop(net);

    let (executor, _) = executor(Duration::from_secs(30));
    let devnet =
        Devnet::with_inference(config, InferenceSetup { settlement, ..InferenceSetup::new(executor) }).unwrap();
    for (hash, before) in hashes.iter().zip(&settled) {
        let after = devnet.attestations(*hash).unwrap().remove(0);
        assert_eq!(after.settlement, before.settlement, "the same transaction, root and proof");
    }
    for _ in 0..3 {
        devnet.mine(None).unwrap();
        assert_eq!(devnet.settle_due().unwrap(), Vec::<B256>::new(), "nothing is posted again");
    }
}

/// A result still inside the settlement delay when its chain is dumped
/// settles after the chain is loaded into a fresh devnet, exactly once; and
/// its settlement survives the next load.
#[test]
fn a_pending_settlement_is_posted_once_after_its_chain_is_loaded_into_a_fresh_devnet() {
    use nml_runtime::predeploys::{ISettlementRelay, SETTLEMENT_RELAY};
    use nml_runtime::settlement::{SettlementMode, SettlementStatus};

    let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 2, ..Default::default() };
    let settling = || Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    let (first, second) = (settling(), settling());
    let hash = first.send(0, Predictor::tryRequestCall { r: tee_request(&first.models.mlp, 4) });
    first.receipt(hash);
    assert!(first.devnet.settle_due().unwrap().is_empty(), "inside the gap");
    second.devnet.load(first.devnet.dump().unwrap()).unwrap();
    let status = |devnet: &Devnet| devnet.attestations(hash).unwrap()[0].settlement.clone().expect("tracked");
    assert_eq!(status(&second.devnet).status, SettlementStatus::Pending);
    second.devnet.mine(None).unwrap();
    assert!(second.devnet.settle_due().unwrap().is_empty(), "one block later: still in the gap");
    second.devnet.mine(None).unwrap();
    let [posted] = second.devnet.settle_due().unwrap().try_into().expect("posted once the delay has passed");
    assert!(mined(&second.devnet, posted).success);
    for _ in 0..3 {
        second.devnet.mine(None).unwrap();
        assert_eq!(second.devnet.settle_due().unwrap(), Vec::<B256>::new(), "posted once");
    }
    let settled = status(&second.devnet);
    assert_eq!((settled.status, settled.tx_hash), (SettlementStatus::Settled, Some(posted)));
    let a = second.devnet.attestations(hash).unwrap().remove(0).attestation;
    let query = ISettlementRelay::isSettledCall {
        teeId: a.tee_id,
        inputHash: a.input_hash,
        outputHash: a.output_hash,
        timestamp: U256::from(a.timestamp),
    };
    let request = TransactionRequest::default().to(SETTLEMENT_RELAY).input(query.abi_encode().into());
    let answer = second.devnet.call(request, None, None).unwrap();
    assert!(ISettlementRelay::isSettledCall::abi_decode_returns(&answer).unwrap());

    // Loaded again (into the first devnet): settled, with the same transaction.
    first.devnet.load(second.devnet.dump().unwrap()).unwrap();
    assert_eq!(status(&first.devnet), settled);
    first.devnet.mine(None).unwrap();
    assert_eq!(first.devnet.settle_due().unwrap(), Vec::<B256>::new());
}

/// Results in the relay's open batch when the devnet saves its state are
/// still owed after a restart from it: the batch goes on, is posted once it
/// has been idle for 5 minutes, and its proofs verify on the relay.
#[test]
fn the_open_batch_is_posted_after_a_restart_from_the_state_file() {
    use nml_runtime::predeploys::{ISettlementRelay, SETTLEMENT_RELAY};
    use nml_runtime::settlement::{SettlementStatus, batch_leaf};

    let settlement = SettlementConfig { after_blocks: 1, ..Default::default() };
    let (_dir, config, net, hashes) = two_tee_results_with_a_state_file(settlement);
    assert!(net.devnet.settle_due().unwrap().is_empty(), "due, and in the open batch");
    net.devnet.save_state().expect("save").expect("a state file");
    drop(net);

    let (executor, _) = executor(Duration::from_secs(30));
    let devnet =
        Devnet::with_inference(config, InferenceSetup { settlement, ..InferenceSetup::new(executor) }).unwrap();
    let call = |hash: &B256| devnet.attestations(*hash).unwrap().remove(0);
    for hash in &hashes {
        assert_eq!(call(hash).settlement.expect("tracked").status, SettlementStatus::Pending, "owed, not missed");
    }
    assert!(devnet.settle_due().unwrap().is_empty(), "the batch is not idle yet");
    // The batch got its results at the loaded head's time.
    let loaded_at = devnet.with_chain(|c| c.head().header.timestamp);
    devnet.mine(Some(loaded_at + 299)).unwrap();
    assert!(devnet.settle_due().unwrap().is_empty(), "idle for 299 s");
    devnet.mine(Some(loaded_at + 300)).unwrap();
    let [posted] = devnet.settle_due().unwrap().try_into().expect("the batch, idle for 5 minutes");
    assert!(mined(&devnet, posted).success);
    devnet.settle_due().unwrap();
    for hash in &hashes {
        let call = call(hash);
        let s = call.settlement.expect("tracked");
        assert_eq!((s.status, s.tx_hash), (SettlementStatus::Settled, Some(posted)));
        let root = s.merkle_root.expect("a root");
        let query =
            ISettlementRelay::isSettledInBatchCall { proof: s.proof, root, leaf: batch_leaf(&call.attestation) };
        let request = TransactionRequest::default().to(SETTLEMENT_RELAY).input(query.abi_encode().into());
        let answer = devnet.call(request, None, None).unwrap();
        assert!(ISettlementRelay::isSettledInBatchCall::abi_decode_returns(&answer).unwrap());
    }
    for _ in 0..3 {
        devnet.mine(None).unwrap();
        assert_eq!(devnet.settle_due().unwrap(), Vec::<B256>::new(), "posted once");
    }
}

/// A posting still in the pool when the chain is dumped (mining is off) is
/// lost with the pool: after the chain is loaded into a fresh devnet, the
/// same batch is posted again at once, and settles once.
#[test]
fn a_posting_in_the_pool_when_the_chain_is_dumped_is_posted_again_after_it_is_loaded() {
    use nml_runtime::settlement::SettlementStatus;

    let config = SettlementConfig { after_blocks: 1, batch_size: 2, ..Default::default() };
    let settling = || Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    let (first, second) = (settling(), settling());
    let hashes: Vec<B256> = (1..=2)
        .map(|seed| first.send(0, Predictor::tryRequestCall { r: tee_request(&first.models.mlp, seed) }))
        .collect();
    for hash in &hashes {
        first.receipt(*hash);
    }
    first.devnet.mine(None).unwrap();
    first.devnet.set_automine(false);
    let [posted] = first.devnet.settle_due().unwrap().try_into().expect("one batch of two");
    let status = |devnet: &Devnet, hash: &B256| devnet.attestations(*hash).unwrap()[0].settlement.clone().unwrap();
    let submitted = status(&first.devnet, &hashes[0]);
    assert_eq!((submitted.status, submitted.tx_hash), (SettlementStatus::Submitted, Some(posted)));
    second.devnet.load(first.devnet.dump().unwrap()).unwrap();
    for hash in &hashes {
        let s = status(&second.devnet, hash);
        assert_eq!((s.status, s.tx_hash), (SettlementStatus::Pending, None), "owed again, not missed");
    }
    let [again] = second.devnet.settle_due().unwrap().try_into().expect("posted again at the next step");
    assert!(mined(&second.devnet, again).success);
    second.devnet.settle_due().unwrap();
    for hash in &hashes {
        let s = status(&second.devnet, hash);
        assert_eq!((s.status, s.tx_hash), (SettlementStatus::Settled, Some(again)));
        assert_eq!(s.merkle_root, submitted.merkle_root, "the same batch");
    }
    for _ in 0..3 {
        second.devnet.mine(None).unwrap();
        assert_eq!(second.devnet.settle_due().unwrap(), Vec::<B256>::new(), "settled once");
    }
}

/// A result the relay withheld (an injected fault) is not owed: after its
/// chain is loaded into a fresh devnet, without the fault, it stays
/// withheld and is never posted.
#[test]
fn a_withheld_result_is_still_not_posted_after_its_chain_is_loaded_into_a_fresh_devnet() {
    use nml_runtime::settlement::{SettlementMode, SettlementStatus};
    use nml_runtime::tee::Fault;

    let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 1, ..Default::default() };
    let settling = || Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    let (first, second) = (settling(), settling());
    first.devnet.set_tee_fault(Fault::WithholdSettlement, true).unwrap();
    let hash = first.send(0, Predictor::tryRequestCall { r: tee_request(&first.models.mlp, 6) });
    first.receipt(hash);
    first.devnet.mine(None).unwrap();
    assert!(first.devnet.settle_due().unwrap().is_empty(), "withheld");
    let status = |devnet: &Devnet| devnet.attestations(hash).unwrap()[0].settlement.clone().expect("tracked").status;
    assert_eq!(status(&first.devnet), SettlementStatus::Withheld);
    second.devnet.load(first.devnet.dump().unwrap()).unwrap();
    assert_eq!(second.devnet.tee_faults().unwrap(), Vec::new(), "the fresh devnet withholds nothing");
    assert_eq!(status(&second.devnet), SettlementStatus::Withheld);
    for _ in 0..3 {
        second.devnet.mine(None).unwrap();
        assert_eq!(second.devnet.settle_due().unwrap(), Vec::<B256>::new(), "never posted");
    }
}

#[test]
fn batch_settlement_posts_a_root_whose_proofs_verify_on_the_relay() {
    use nml_runtime::predeploys::{ISettlementRelay, SETTLEMENT_RELAY};
    use nml_runtime::settlement::{SettlementStatus, batch_leaf};

    let config = SettlementConfig { after_blocks: 1, batch_size: 3, ..Default::default() };
    let net = Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    let hashes: Vec<B256> =
        (1..=3).map(|seed| net.send(0, Predictor::tryRequestCall { r: tee_request(&net.models.mlp, seed) })).collect();
    for hash in &hashes {
        net.receipt(*hash);
    }
    net.devnet.mine(None).unwrap();
    let [posted] = net.devnet.settle_due().unwrap().try_into().expect("one batch of three");
    assert!(mined(&net.devnet, posted).success);
    net.devnet.settle_due().unwrap();
    let view = |data: Vec<u8>| {
        let request = TransactionRequest::default().to(SETTLEMENT_RELAY).input(data.into());
        net.devnet.call(request, None, None).expect("call")
    };
    for hash in &hashes {
        let call = net.devnet.attestations(*hash).unwrap().remove(0);
        let (a, s) = (call.attestation, call.settlement.expect("tracked"));
        assert_eq!((s.status, s.tx_hash), (SettlementStatus::Settled, Some(posted)));
        let root = s.merkle_root.expect("a root");
        let leaf = ISettlementRelay::leafOfCall {
            teeId: a.tee_id,
            inputHash: a.input_hash,
            outputHash: a.output_hash,
            signature: a.signature.clone(),
            timestamp: U256::from(a.timestamp),
        };
        let leaf = B256::from_slice(&view(leaf.abi_encode()));
        assert_eq!(leaf, batch_leaf(&a), "the relay computes the same leaf");
        let check = |proof: Vec<B256>| {
            let call = ISettlementRelay::isSettledInBatchCall { proof, root, leaf };
            ISettlementRelay::isSettledInBatchCall::abi_decode_returns(&view(call.abi_encode())).unwrap()
        };
        assert!(check(s.proof.clone()));
        let mut wrong = s.proof.clone();
        wrong[0] = B256::repeat_byte(7);
        assert!(!check(wrong));
    }
}

#[test]
fn the_operator_keeps_the_enclaves_heartbeats_fresh_as_the_chain_time_moves() {
    use nml_runtime::node::HEARTBEAT_EVERY;
    use nml_runtime::predeploys::{ITEERegistry, TEE_REGISTRY};

    let net = Net::new(Mining::Auto, PipeConfig::default());
    let [tee] = net.devnet.tees().unwrap().try_into().expect("one enclave");
    let active = || {
        let call = ITEERegistry::isTEEActiveCall { teeId: tee.tee_id }.abi_encode();
        let request = TransactionRequest::default().to(TEE_REGISTRY).input(call.into());
        ITEERegistry::isTEEActiveCall::abi_decode_returns(&net.devnet.call(request, None, None).unwrap()).unwrap()
    };
    assert!(net.devnet.settle_due().unwrap().is_empty(), "nothing due at start");
    net.devnet.increase_time(HEARTBEAT_EVERY as i64 - 10).unwrap();
    net.devnet.mine(None).unwrap();
    assert!(net.devnet.settle_due().unwrap().is_empty(), "not yet");
    net.devnet.increase_time(2_000).unwrap();
    net.devnet.mine(None).unwrap();
    assert!(!active(), "over 30 minutes without a heartbeat");
    let [beat] = net.devnet.settle_due().unwrap().try_into().expect("one heartbeat");
    assert!(mined(&net.devnet, beat).success);
    assert!(active(), "fresh again");
}

#[test]
fn a_relay_that_posts_a_wrong_root_and_an_operator_that_stops_beating_are_caught_on_chain() {
    use nml_runtime::predeploys::{ISettlementRelay, ITEERegistry, SETTLEMENT_RELAY, TEE_REGISTRY};
    use nml_runtime::settlement::{SettlementStatus, batch_leaf};
    use nml_runtime::tee::Fault;

    let config = SettlementConfig { after_blocks: 0, batch_size: 1, ..Default::default() };
    let net = Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    net.devnet.set_tee_fault(Fault::WrongRoot, true).unwrap();
    net.devnet.set_tee_fault(Fault::NoHeartbeat, true).unwrap();
    let hash = net.send(0, Predictor::tryRequestCall { r: tee_request(&net.models.mlp, 3) });
    net.receipt(hash);
    let [posted] = net.devnet.settle_due().unwrap().try_into().expect("one batch");
    assert!(mined(&net.devnet, posted).success);
    net.devnet.settle_due().unwrap();
    let call = net.devnet.attestations(hash).unwrap().remove(0);
    let settlement = call.settlement.expect("tracked");
    assert_eq!(settlement.status, SettlementStatus::Settled, "the relay believes it settled");
    let query = ISettlementRelay::isSettledInBatchCall {
        proof: settlement.proof,
        root: settlement.merkle_root.unwrap(),
        leaf: batch_leaf(&call.attestation),
    };
    let request = TransactionRequest::default().to(SETTLEMENT_RELAY).input(query.abi_encode().into());
    let answer = net.devnet.call(request, None, None).unwrap();
    assert!(!ISettlementRelay::isSettledInBatchCall::abi_decode_returns(&answer).unwrap(), "the posted root is wrong");

    net.devnet.increase_time(2_000).unwrap();
    net.devnet.mine(None).unwrap();
    assert!(net.devnet.settle_due().unwrap().is_empty(), "no heartbeat is sent");
    let active = ITEERegistry::isTEEActiveCall { teeId: call.attestation.tee_id }.abi_encode();
    let request = TransactionRequest::default().to(TEE_REGISTRY).input(active.into());
    let answer = net.devnet.call(request, None, None).unwrap();
    assert!(!ITEERegistry::isTEEActiveCall::abi_decode_returns(&answer).unwrap());
}

#[test]
fn the_relay_follows_the_chain_back_after_evm_revert() {
    use nml_runtime::settlement::{SettlementMode, SettlementStatus};

    let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 1, ..Default::default() };
    let net = Net::settling(DevnetConfig::default(), PipeConfig::default(), Duration::from_secs(30), config);
    let settle = |hash: B256| {
        net.receipt(hash);
        net.devnet.mine(None).unwrap();
        let [posted] = net.devnet.settle_due().unwrap().try_into().expect("one posting");
        assert!(mined(&net.devnet, posted).success);
        net.devnet.settle_due().unwrap();
        net.devnet.attestations(hash).unwrap()[0].settlement.clone().expect("tracked").status
    };
    let snapshot = net.devnet.snapshot().unwrap();
    let first = net.send(0, Predictor::tryRequestCall { r: tee_request(&net.models.mlp, 5) });
    assert_eq!(settle(first), SettlementStatus::Settled);
    assert!(net.devnet.revert(snapshot));
    // The same request again (the same attestation, served from the known
    // results) in a block the relay has not seen: it settles anew.
    let again = net.send(0, Predictor::tryRequestCall { r: tee_request(&net.models.mlp, 5) });
    assert_eq!(settle(again), SettlementStatus::Settled);
}

/// The workflow scheduler's tasks live on chain: the devnet's scheduler
/// account runs a due one after time moves, a failing one is recorded and
/// does not stop it, and a saved and reloaded chain still has them.
#[test]
fn scheduled_tasks_run_when_due_and_survive_a_reload() {
    use nml_runtime::predeploys::{IWorkflowScheduler, WORKFLOW_SCHEDULER};
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    let config = DevnetConfig { state_file: Some(state.clone()), ..DevnetConfig::default() };
    let (onnx, _) = executor(Duration::from_secs(30));
    let devnet = Devnet::with_inference(config.clone(), InferenceSetup::new(onnx)).unwrap();
    // Two targets: `run()` of the first stops at once (succeeds), the second always reverts.
    let (good, bad) = (Address::repeat_byte(0x61), Address::repeat_byte(0x62));
    devnet.set_code(good, Bytes::from_static(&[0x00]));
    devnet.set_code(bad, Bytes::from_static(&[0x60, 0x00, 0x80, 0xfd]));
    let now = devnet.with_chain(|c| c.head().header.timestamp);
    for target in [bad, good] {
        let call = IWorkflowScheduler::registerTaskCall {
            contractAddress: target,
            endTime: U256::from(now + 3_600),
            frequency: U256::from(60),
        };
        let hash = send(&devnet, 0, Some(WORKFLOW_SCHEDULER), call.abi_encode().into());
        assert!(mined(&devnet, hash).success);
    }
    assert!(devnet.run_due_tasks().unwrap().is_empty(), "nothing is due yet");
    devnet.increase_time(61).unwrap();
    devnet.mine(None).unwrap();
    let sent = devnet.run_due_tasks().unwrap();
    assert_eq!(sent.len(), 2);
    for hash in &sent {
        assert!(mined(&devnet, *hash).success, "a failing run() does not fail execute()");
    }
    assert!(devnet.run_due_tasks().unwrap().is_empty(), "run once per period");
    let tasks = devnet.tasks().unwrap();
    assert_eq!((tasks[0].runs, tasks[0].failures), (U256::from(1), U256::from(1)));
    assert_eq!((tasks[1].runs, tasks[1].failures), (U256::from(1), U256::ZERO));
    assert_eq!(tasks[1].last_error, None);
    devnet.save_state().expect("save").expect("a state file");
    drop(devnet);

    let (onnx, _) = executor(Duration::from_secs(30));
    let reloaded = Devnet::with_inference(config, InferenceSetup::new(onnx)).unwrap();
    assert_eq!(reloaded.tasks().unwrap(), tasks);
}

/// One call over every task ran out of the call's gas (the block gas limit)
/// past a few thousand tasks at 30M, and then no task ran at all: the devnet
/// asks the scheduler a page at a time, for the due tasks and for the list.
/// Under a 3M-gas limit, 1,000 tasks are past that point.
#[test]
fn a_thousand_scheduled_tasks_under_a_small_gas_limit_are_all_found_due_and_listed() {
    use nml_runtime::predeploys::{IWorkflowScheduler, WORKFLOW_SCHEDULER};
    const TASKS: usize = 1_000;
    let chain = nml_runtime::chain::ChainConfig { gas_limit: 3_000_000, ..Default::default() };
    let config = DevnetConfig { chain, ..DevnetConfig::default() };
    let (onnx, _) = executor(Duration::from_secs(30));
    let devnet = Devnet::with_inference(config, InferenceSetup::new(onnx)).unwrap();
    let target = Address::repeat_byte(0x61);
    devnet.set_code(target, Bytes::from_static(&[0x00]));
    let now = devnet.with_chain(|c| c.head().header.timestamp);
    let register = IWorkflowScheduler::registerTaskCall {
        contractAddress: target,
        // Each block is at least a second later: the registrations' 1,000 blocks
        // run ahead of the clock, and pass before the first task is due.
        endTime: U256::from(now + 100_000),
        frequency: U256::from(10_000),
    };
    let request = TransactionRequest::default()
        .from(devnet.accounts()[1])
        .to(WORKFLOW_SCHEDULER)
        .input(Bytes::from(register.abi_encode()).into())
        .gas_limit(300_000);
    let sent: Vec<B256> = (0..TASKS).map(|_| devnet.send_transaction(request.clone()).expect("sent")).collect();
    assert!(mined(&devnet, *sent.last().unwrap()).success);
    // The runs are counted, not mined.
    devnet.set_automine(false);
    assert!(devnet.run_due_tasks().unwrap().is_empty(), "nothing is due yet");
    devnet.increase_time(20_000).unwrap();
    devnet.mine(None).unwrap();
    assert_eq!(devnet.run_due_tasks().unwrap().len(), TASKS, "every task is due once");
    assert!(devnet.run_due_tasks().unwrap().is_empty(), "each run is on its way");
    let tasks = devnet.tasks().unwrap();
    assert_eq!(tasks.len(), TASKS);
    assert!(tasks.iter().enumerate().all(|(i, t)| t.id == i as u64 && t.contract_address == target));
}

#[test]
fn a_devnet_of_two_thousand_accounts_mints_opg_to_each() {
    // Minting to 2,000 holders takes more gas than a 30M-gas block: the
    // genesis system calls are not bound by the block gas limit.
    let chain = nml_runtime::chain::ChainConfig { accounts: 2_000, ..Default::default() };
    let config = DevnetConfig { chain, ..DevnetConfig::default() };
    let (executor, _) = executor(Duration::from_secs(30));
    let devnet = Devnet::with_inference(config, InferenceSetup::new(executor)).expect("devnet");
    let accounts = devnet.accounts();
    assert_eq!(accounts.len(), 2_000);
    sol! { function balanceOf(address holder) external view returns (uint256); }
    for holder in [accounts[0], accounts[1_999]] {
        let call = balanceOfCall { holder }.abi_encode();
        let request = TransactionRequest::default().to(nml_runtime::predeploys::payments::OPG_TOKEN).input(call.into());
        let out = devnet.call(request, None, None).expect("balanceOf");
        let balance = balanceOfCall::abi_decode_returns(&out).expect("a uint256");
        assert_eq!(balance, nml_runtime::predeploys::payments::genesis_opg());
    }
}
