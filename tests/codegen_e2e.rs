//! The generated code really works: the LANGUAGE.md example is compiled with
//! real solc, deployed into revm, and its calls to the inference precompile
//! at 0x…F4 are captured (an inspector stands in for the precompile), decoded
//! with alloy from the ABI of PROTOCOL.md, and answered — once as the
//! mempool's simulation pass, once with a real result.

use std::path::PathBuf;

use alloy_primitives::{Address, Bytes, I256, U256, address};
use alloy_sol_types::{SolCall, SolError, SolEvent, SolValue, sol};
use revm::context::result::{ExecutionResult, Output};
use revm::context::{Context, ContextTr, TxEnv};
use revm::database::{CacheDB, EmptyDB};
use revm::interpreter::{CallInputs, CallOutcome, Gas, InstructionResult, InterpreterResult};
use revm::primitives::TxKind;
use revm::state::AccountInfo;
use revm::{InspectCommitEvm, Inspector, MainBuilder, MainContext};

mod common;

// The precompile ABI exactly as PROTOCOL.md A1 states it.
sol! {
    struct Number { int128 value; int128 decimals; }
    struct MultiDimensionalNumberTensor { string name; Number[] values; uint32[] shape; }
    struct StringTensor { string name; string[] values; }
    struct JsonScalar { string name; string value; }
    struct ModelInput { MultiDimensionalNumberTensor[] numbers; StringTensor[] strings; }
    struct ModelInferenceRequest { uint8 mode; string modelCID; ModelInput input; }
    struct ModelOutput { MultiDimensionalNumberTensor[] numbers; StringTensor[] strings; JsonScalar[] jsons; bool is_simulation_result; }
    function runModelInference(ModelInferenceRequest request) returns (ModelOutput);

    struct LLMCompletionRequest { uint8 mode; string modelCID; string prompt; uint32 max_tokens; string[] stop_sequence; uint32 temperature; }
    struct LLMCompletionResponse { string answer; }
    function runLLMCompletion(LLMCompletionRequest request) returns (LLMCompletionResponse);

    function update(int256[30] r);
    function fee() returns (uint24);
    function mood() returns (string);
    function named(int256[30] r) returns (int256);
    event FeeUpdated(uint24 fee, int256 vol);
    error NmlMissingOutput(string model, string tensor);
}

const PRECOMPILE: Address = address!("00000000000000000000000000000000000000F4");
const CALLER: Address = address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266");

/// Answers calls to 0x…F4 with `reply` and records their calldata.
#[derive(Default)]
struct CapturingPrecompile {
    reply: Bytes,
    calls: Vec<Bytes>,
}

impl<CTX: ContextTr> Inspector<CTX> for CapturingPrecompile {
    fn call(&mut self, ctx: &mut CTX, inputs: &mut CallInputs) -> Option<CallOutcome> {
        if inputs.target_address != PRECOMPILE {
            return None;
        }
        self.calls.push(inputs.input.bytes(ctx));
        let result = InterpreterResult::new(InstructionResult::Return, self.reply.clone(), Gas::new(inputs.gas_limit));
        Some(CallOutcome::new(result, inputs.return_memory_offset.clone()))
    }
}

/// Builds a copy of an example and returns the creation bytecode of `contract`.
fn build_example(name: &str, contract: &str) -> (tempfile::TempDir, Bytes) {
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let (dir, mut codes) = common::build(&example, false, &[contract]);
    (dir, codes.remove(0))
}

struct Chain {
    evm: revm::handler::MainnetEvm<
        Context<revm::context::BlockEnv, TxEnv, revm::context::CfgEnv, CacheDB<EmptyDB>>,
        CapturingPrecompile,
    >,
    nonce: u64,
}

impl Chain {
    fn new() -> Self {
        let mut db = CacheDB::new(EmptyDB::default());
        db.insert_account_info(CALLER, AccountInfo { balance: U256::from(10u128.pow(20)), ..Default::default() });
        let evm = Context::mainnet().with_db(db).build_mainnet_with_inspector(CapturingPrecompile::default());
        Self { evm, nonce: 0 }
    }

    fn transact(&mut self, kind: TxKind, data: Bytes) -> ExecutionResult {
        let tx = TxEnv::builder()
            .caller(CALLER)
            .kind(kind)
            .data(data)
            .gas_limit(10_000_000)
            .nonce(self.nonce)
            .build()
            .expect("tx");
        self.nonce += 1;
        self.evm.inspect_tx_commit(tx).expect("evm runs")
    }

    fn deploy(&mut self, code: Bytes) -> Address {
        match self.transact(TxKind::Create, code) {
            ExecutionResult::Success { output: Output::Create(_, Some(addr)), .. } => addr,
            other => panic!("deploy failed: {other:?}"),
        }
    }

    fn call(&mut self, to: Address, data: Vec<u8>, reply: Bytes) -> (ExecutionResult, Vec<Bytes>) {
        self.evm.inspector.reply = reply;
        self.evm.inspector.calls.clear();
        let result = self.transact(TxKind::Call(to), data.into());
        (result, std::mem::take(&mut self.evm.inspector.calls))
    }
}

fn output_of(result: &ExecutionResult) -> Bytes {
    match result {
        ExecutionResult::Success { output, .. } => output.data().clone(),
        other => panic!("call failed: {other:?}"),
    }
}

fn model_output(vol: Option<(i128, i128)>) -> Bytes {
    tensor_output("vol", vol)
}

/// A precompile reply with one number tensor `name` of shape `[1]`, or the
/// simulation pass's empty reply.
fn tensor_output(name: &str, value: Option<(i128, i128)>) -> Bytes {
    let numbers = value
        .map(|(value, decimals)| {
            vec![MultiDimensionalNumberTensor {
                name: name.into(),
                values: vec![Number { value, decimals }],
                shape: vec![1],
            }]
        })
        .unwrap_or_default();
    let out = ModelOutput { numbers, strings: vec![], jsons: vec![], is_simulation_result: value.is_none() };
    runModelInferenceCall::abi_encode_returns(&out).into()
}

#[test]
fn infer_round_trips_through_the_precompile_abi() {
    let (_dir, code) = build_example("quickstart", "DynamicFeePool");
    let mut chain = Chain::new();
    let pool = chain.deploy(code);
    let returns: [I256; 30] =
        std::array::from_fn(|i| I256::try_from(i as i64 * 1_000_000_000_000_000 - 7).expect("fits"));
    let call = updateCall { r: returns }.abi_encode();

    // Simulation pass: the precompile answers empty with is_simulation_result.
    let (result, calls) = chain.call(pool, call.clone(), model_output(None));
    assert!(result.is_success(), "{result:?}");
    assert!(result.logs().is_empty(), "the simulation pass must not emit");
    assert_eq!(calls.len(), 1, "one inference per update");
    let request = runModelInferenceCall::abi_decode(&calls[0]).expect("calldata decodes as runModelInference");
    assert_eq!(request.request.mode, 2, "mode TEE");
    assert_eq!(request.request.modelCID, "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51");
    let tensors = &request.request.input.numbers;
    assert_eq!(tensors.len(), 1);
    assert!(request.request.input.strings.is_empty());
    assert_eq!(tensors[0].name, "returns");
    assert_eq!(tensors[0].shape, vec![1, 30]);
    for (i, v) in tensors[0].values.iter().enumerate() {
        assert_eq!(v.decimals, 18);
        assert_eq!(I256::try_from(v.value).expect("fits"), returns[i], "value {i}");
    }
    // Byte identity: re-encoding the decoded request with alloy gives exactly
    // the calldata our Solidity produced.
    assert_eq!(request.abi_encode(), calls[0].to_vec());
    let (fee, _) = chain.call(pool, feeCall {}.abi_encode(), Bytes::new());
    assert_eq!(feeCall::abi_decode_returns(&output_of(&fee)).expect("fee"), 3000);

    // Real pass: vol = 0.06 given as (6, 2) is rescaled to 6e16 at 18 decimals.
    let (result, _) = chain.call(pool, call.clone(), model_output(Some((6, 2))));
    assert!(result.is_success(), "{result:?}");
    let logs = result.logs();
    assert_eq!(logs.len(), 1);
    let event = FeeUpdated::decode_log_data(&logs[0].data).expect("FeeUpdated");
    assert_eq!(event.fee, 10000);
    assert_eq!(event.vol, I256::try_from(60_000_000_000_000_000i128).expect("fits"));
    let (fee, _) = chain.call(pool, feeCall {}.abi_encode(), Bytes::new());
    assert_eq!(feeCall::abi_decode_returns(&output_of(&fee)).expect("fee"), 10000);

    // A low volatility brings the fee back.
    let (result, _) = chain.call(pool, call.clone(), model_output(Some((1, 2))));
    assert!(result.is_success());
    let (fee, _) = chain.call(pool, feeCall {}.abi_encode(), Bytes::new());
    assert_eq!(feeCall::abi_decode_returns(&output_of(&fee)).expect("fee"), 3000);

    // A result without the declared output reverts with NmlMissingOutput.
    let missing = ModelOutput { numbers: vec![], strings: vec![], jsons: vec![], is_simulation_result: false };
    let (result, _) = chain.call(pool, call, runModelInferenceCall::abi_encode_returns(&missing).into());
    match result {
        ExecutionResult::Revert { output, .. } => {
            let err = NmlMissingOutput::abi_decode(&output).expect("NmlMissingOutput");
            assert_eq!((err.model.as_str(), err.tensor.as_str()), ("Volatility", "vol"));
        }
        other => panic!("expected a revert, got {other:?}"),
    }
}

/// A model whose graph tensors are named `input:0` and `output.1`, as
/// TensorFlow and PyTorch name them, called from a one-file project.
const GRAPH_NAMES_POOL: &str = r#"pragma nml 0.1;
pragma solidity ^0.8.24;

model Vol {
    onnx "../models/graph_names.onnx";
    input  returns "input:0": fixed<18>[1, 30];
    output vol "output.1": fixed<18>[1];
}

contract Pool {
    function named(int256[30] memory r) external returns (int256) {
        Vol.Output memory o = infer Vol { returns: r };
        return o.vol[0];
    }
}
"#;

#[test]
fn graph_names_that_are_not_identifiers_go_on_the_wire() {
    let project = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(project.path().join("src")).expect("mkdir src");
    std::fs::create_dir_all(project.path().join("models")).expect("mkdir models");
    std::fs::write(project.path().join("nml.toml"), "[project]\nname = \"graph-names\"\n").expect("nml.toml");
    std::fs::write(project.path().join("src/Pool.nml"), GRAPH_NAMES_POOL).expect("Pool.nml");
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/ui/models/graph_names.onnx");
    std::fs::copy(model, project.path().join("models/graph_names.onnx")).expect("copy the model");
    let (_dir, mut codes) = common::build(project.path(), false, &["Pool"]);
    let mut chain = Chain::new();
    let pool = chain.deploy(codes.remove(0));
    let returns: [I256; 30] = std::array::from_fn(|i| I256::try_from(i as i64).expect("fits"));
    let call = namedCall { r: returns }.abi_encode();

    // The request names the input tensor by its graph name.
    let (result, calls) = chain.call(pool, call.clone(), tensor_output("output.1", None));
    assert!(result.is_success(), "{result:?}");
    let request = runModelInferenceCall::abi_decode(&calls[0]).expect("calldata decodes as runModelInference");
    let names: Vec<&str> = request.request.input.numbers.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["input:0"]);

    // The output is looked up by its graph name and read through the identifier.
    let (result, _) = chain.call(pool, call.clone(), tensor_output("output.1", Some((6, 2))));
    let vol = namedCall::abi_decode_returns(&output_of(&result)).expect("named");
    assert_eq!(vol, I256::try_from(60_000_000_000_000_000i128).expect("fits"));

    // A tensor under the identifier is not the graph's output.
    let (result, _) = chain.call(pool, call, tensor_output("vol", Some((6, 2))));
    match result {
        ExecutionResult::Revert { output, .. } => {
            let err = NmlMissingOutput::abi_decode(&output).expect("NmlMissingOutput");
            assert_eq!((err.model.as_str(), err.tensor.as_str()), ("Vol", "output.1"));
        }
        other => panic!("expected a revert, got {other:?}"),
    }
}

#[test]
fn ask_round_trips_through_the_precompile_abi() {
    let (_dir, code) = build_example("quickstart", "DynamicFeePool");
    let mut chain = Chain::new();
    let pool = chain.deploy(code);

    let empty = runLLMCompletionCall::abi_encode_returns(&LLMCompletionResponse { answer: String::new() });
    let (result, calls) = chain.call(pool, moodCall {}.abi_encode(), empty.into());
    assert_eq!(moodCall::abi_decode_returns(&output_of(&result)).expect("mood"), "");
    assert_eq!(calls.len(), 1);
    let request = runLLMCompletionCall::abi_decode(&calls[0]).expect("calldata decodes as runLLMCompletion");
    let r = &request.request;
    assert_eq!(r.mode, 1, "LLM mode TEE");
    assert_eq!(r.modelCID, "meta-llama/Llama-3.1-8B-Instruct");
    assert_eq!(r.prompt, "One word for ETH's trend this week:");
    assert_eq!(r.max_tokens, 64);
    assert_eq!(r.temperature, 0);
    assert_eq!(r.stop_sequence, vec!["\n".to_owned()]);
    assert_eq!(request.abi_encode(), calls[0].to_vec());

    let answer = runLLMCompletionCall::abi_encode_returns(&LLMCompletionResponse { answer: "bullish".into() });
    let (result, _) = chain.call(pool, moodCall {}.abi_encode(), answer.into());
    assert_eq!(moodCall::abi_decode_returns(&output_of(&result)).expect("mood"), "bullish");
}

#[test]
fn stdlib_selectors_match_the_published_signatures() {
    // Selectors from the signature strings of PROTOCOL.md, computed by alloy,
    // against solc's method identifiers for our OGInference interface.
    let (dir, _) = build_example("quickstart", "DynamicFeePool");
    let artifact = dir.path().join("out/OGInference.sol/OGInference.json");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&artifact).expect("OGInference artifact")).expect("json");
    let ids = &json["methodIdentifiers"];
    let expect = [
        ("runModelInference((uint8,string,((string,(int128,int128)[],uint32[])[],(string,string[])[])))", runModelInferenceCall::SELECTOR),
        ("runLLMCompletion((uint8,string,string,uint32,string[],uint32))", runLLMCompletionCall::SELECTOR),
        (
            "runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],(string,string,string)[],string,uint32,string[],uint32))",
            alloy_primitives::keccak256(
                "runLLMChat((uint8,string,(string,string,string,string,(string,string,string)[])[],(string,string,string)[],string,uint32,string[],uint32))",
            )[..4]
                .try_into()
                .expect("4 bytes"),
        ),
    ];
    for (signature, selector) in expect {
        let ours = ids[signature].as_str().unwrap_or_else(|| panic!("{signature} missing from {ids}"));
        assert_eq!(ours, alloy_primitives::hex::encode(selector), "{signature}");
    }
    assert_eq!(runModelInferenceCall::SIGNATURE, expect[0].0);
    let _ = ModelInferenceRequest::abi_encode(&ModelInferenceRequest {
        mode: 0,
        modelCID: String::new(),
        input: ModelInput { numbers: vec![], strings: vec![] },
    });
}
