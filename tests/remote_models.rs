//! Models on a real Open Inference Protocol server: KServe's Python model
//! server (`tests/common/kserve.rs`, installed from PyPI by the test) serving
//! the runtime's test models through onnxruntime. The remote executor must
//! give exactly what the embedded executor gives on the same inputs, keep the
//! failure semantics (a readable revert for a wrong tensor, a transient
//! failure for a server that is down, slow or failing), and run through the
//! inference mempool unchanged.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{I256, U256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{SolCall, SolValue, sol};
use nml_runtime::inference::abi::{MultiDimensionalNumberTensor, Number, StringTensor};
use nml_runtime::inference::{
    Endpoint, Executor, InferenceError, ModelId, ModelInput, OnnxConfig, OnnxExecutor, RemoteExecutor,
};
use nml_runtime::node::InferenceSetup;
use nml_runtime::{Devnet, DevnetConfig};

mod common;

use common::kserve::KServe;

sol! {
    contract Predictor {
        function predict(int256[4] x);
        function last(uint256 i) returns (int128);
    }
}

const E18: i128 = 1_000_000_000_000_000_000;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn model_file(name: &str) -> PathBuf {
    repo().join("runtime/tests/models").join(format!("{name}.onnx"))
}

const MODELS: [&str; 5] = ["mlp", "ints", "strings", "fails", "slow"];

fn onnx() -> Arc<OnnxExecutor> {
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    Arc::new(OnnxExecutor::new(OnnxConfig { workers: 2, ..OnnxConfig::new(library) }).expect("ORT"))
}

fn numbers(name: &str, values: &[i128], decimals: i128, shape: &[u32]) -> MultiDimensionalNumberTensor {
    MultiDimensionalNumberTensor {
        name: name.into(),
        values: values.iter().map(|&value| Number { value, decimals }).collect(),
        shape: shape.to_vec(),
    }
}

fn input(numbers: Vec<MultiDimensionalNumberTensor>, strings: Vec<StringTensor>) -> ModelInput {
    ModelInput { numbers, strings }
}

/// An executor that sends `ids` (the models of [`MODELS`], in order) to
/// `server`, each request at most `timeout`. Its local fallback knows none of
/// them: every run that succeeds went to the server.
fn remote(server: &KServe, ids: &[ModelId], timeout: Duration) -> RemoteExecutor {
    let remote = RemoteExecutor::new(onnx(), timeout, 8);
    for (id, name) in ids.iter().zip(MODELS) {
        remote.route(id.clone(), server.model(name).parse::<Endpoint>().expect("endpoint"));
    }
    remote
}

#[test]
fn a_kserve_server_answers_exactly_what_the_embedded_executor_answers() {
    let files: Vec<PathBuf> = MODELS.iter().map(|m| model_file(m)).collect();
    let mut server = KServe::start(&files.iter().map(PathBuf::as_path).collect::<Vec<_>>(), Duration::ZERO);
    let onnx = onnx();
    let ids: Vec<ModelId> =
        MODELS.iter().map(|m| onnx.registry().register_file(&model_file(m), None).expect("model").id).collect();
    let remote = remote(&server, &ids, Duration::from_secs(10));
    let [mlp, ints, strings, fails, slow] = <[ModelId; 5]>::try_from(ids.clone()).unwrap();

    let cases = [
        (&mlp, input(vec![numbers("x", &[1, 2, 3, 4], 0, &[1, 4])], vec![])),
        (&mlp, input(vec![numbers("x", &[15, -25, 3, 0], 1, &[1, 4])], vec![])),
        (
            &ints,
            input(
                vec![numbers("a", &[9_007_199_254_740_993, -1, 0], 0, &[3]), numbers("flags", &[1, 0], 0, &[2])],
                vec![],
            ),
        ),
        (
            &strings,
            input(
                vec![numbers("x", &[15], 1, &[1])],
                vec![StringTensor { name: "s".into(), values: vec!["héllo, wörld".into()] }],
            ),
        ),
        (&slow, input(vec![numbers("n", &[3], 0, &[])], vec![])),
    ];
    for (id, request) in &cases {
        let embedded = onnx.run(id, request).expect("embedded run");
        let served = remote.run(id, request).unwrap_or_else(|e| panic!("remote run of {id}: {e}"));
        assert_eq!(served, embedded, "model {id}");
    }
    // The mlp's outputs are exact: y = [2.75, 1.75, 0] at 18 decimals.
    let y = remote.run(&mlp, &cases[0].1).unwrap().numbers.remove(0);
    let values: Vec<i128> = y.values.iter().map(|n| n.value).collect();
    assert_eq!(values, [275 * E18 / 100, 175 * E18 / 100, 0]);

    // The signature comes from the server.
    let signature = remote.signature(&mlp).expect("metadata");
    assert_eq!(signature.inputs[0].to_string().split(':').next(), Some("x"));
    assert_eq!(signature.outputs[0].element, nml_protocol::ElementType::Float32);

    // Wrong tensors are the embedded executor's readable reverts, found
    // before anything is sent (the server names a dynamic dimension `?`
    // where the graph says `N`; the rest of the message is the same).
    let wrong_name = input(vec![numbers("X", &[1, 2, 3, 4], 0, &[1, 4])], vec![]);
    let err = remote.run(&mlp, &wrong_name).unwrap_err();
    assert!(matches!(&err, InferenceError::UnknownInput { tensor, .. } if tensor == "X"), "{err}");
    assert!(matches!(onnx.run(&mlp, &wrong_name), Err(InferenceError::UnknownInput { .. })));
    let wrong_shape = input(vec![numbers("x", &[1, 2, 3], 0, &[1, 3])], vec![]);
    let err = remote.run(&mlp, &wrong_shape).unwrap_err();
    assert!(matches!(err, InferenceError::WrongShape { .. }), "{err}");
    assert!(err.to_string().contains("input `x` has shape [1, 3], but the model expects float32["), "{err}");

    // The server's own failure (onnxruntime fails inside it: HTTP 500) is
    // transient, as an outage is: the mempool retries it in a later block.
    let err = remote.run(&fails, &input(vec![numbers("x", &[1, 2, 3], 0, &[3])], vec![])).unwrap_err();
    assert!(matches!(err, InferenceError::ServerUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("HTTP 500") && err.to_string().contains("Reshape"), "{err}");

    // A model the server does not have: its refusal, in its words, not transient.
    let unknown = RemoteExecutor::new(onnx.clone(), Duration::from_secs(5), 8);
    unknown.route(mlp.clone(), server.model("nope").parse().expect("endpoint"));
    let err = unknown.run(&mlp, &cases[0].1).unwrap_err();
    assert!(matches!(err, InferenceError::Runtime { .. }), "{err}");
    assert!(err.to_string().contains("refused the request (HTTP 404): Model with name nope does not exist"), "{err}");

    // A run slower than the timeout.
    let impatient = self::remote(&server, &ids, Duration::from_millis(300));
    let err = impatient.run(&slow, &input(vec![numbers("n", &[2_000_000], 0, &[])], vec![])).unwrap_err();
    assert!(matches!(err, InferenceError::Timeout { .. }), "{err}");

    // Through the inference mempool: a contract's request runs on the server.
    let setup = InferenceSetup::new(Arc::new(remote) as Arc<dyn Executor>);
    let devnet = Devnet::with_inference(DevnetConfig::default(), setup).expect("devnet");
    let (_dir, codes) = common::build(&repo().join("tests/fixtures/inference"), false, &["Predictor"]);
    let mut code = codes[0].to_vec();
    code.extend_from_slice(&(mlp.to_string(),).abi_encode_params());
    let sender = devnet.accounts()[0];
    let tx = |to: Option<alloy_primitives::Address>, input: Vec<u8>| {
        let mut request = TransactionRequest::default().from(sender).input(input.into()).gas_limit(5_000_000);
        if let Some(to) = to {
            request = request.to(to);
        }
        let hash = devnet.send_transaction(request).expect("sent");
        devnet.wait_for_receipt(hash, Duration::from_secs(60)).expect("mined")
    };
    let predictor = tx(None, code).contract_address.expect("deployed");
    let x = [1, 2, 3, 4].map(|v| I256::try_from(v).unwrap());
    let receipt = tx(Some(predictor), Predictor::predictCall { x }.abi_encode());
    assert!(receipt.success && receipt.inference[0].success, "{:?}", receipt.inference);
    let last = |i: u64| {
        let call = Predictor::lastCall { i: U256::from(i) }.abi_encode();
        let out = devnet.call(TransactionRequest::default().to(predictor).input(call.into()), None, None).unwrap();
        Predictor::lastCall::abi_decode_returns(&out).unwrap()
    };
    assert_eq!([last(0), last(1), last(2)], [275 * E18 / 100, 175 * E18 / 100, 0]);

    // The server goes away: transient, not a hang.
    server.stop();
    let gone = self::remote(&server, &ids, Duration::from_secs(5));
    let err = gone.run(&mlp, &cases[0].1).unwrap_err();
    assert!(matches!(err, InferenceError::ServerUnavailable { .. }), "{err}");
}

/// A test double of a broken model server: it answers every request with
/// HTTP 200 and a body that is not the protocol's JSON.
fn garbage_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nnope!");
        }
    });
    url
}

#[test]
fn a_server_that_answers_garbage_is_a_transient_failure() {
    let remote = RemoteExecutor::new(onnx(), Duration::from_secs(5), 8);
    let id = ModelId::derive(b"garbage");
    remote.route(id.clone(), format!("{}/v2/models/m", garbage_server()).parse().unwrap());
    let err = remote.run(&id, &input(vec![numbers("x", &[1], 0, &[1])], vec![])).unwrap_err();
    assert!(matches!(err, InferenceError::ServerUnavailable { .. }), "{err}");
    assert!(err.to_string().contains("its model metadata is not the protocol's"), "{err}");
}

/// `nml build` checks a declaration without an `onnx` file against the
/// signature its server reports (`[models.<Name>] endpoint`), and `nml test`
/// runs the project's contract against the server.
#[test]
fn nml_checks_and_tests_a_declaration_against_its_server() {
    let server = KServe::start(&[model_file("mlp").as_path()], Duration::ZERO);
    let id = ModelId::derive(&std::fs::read(model_file("mlp")).unwrap());
    let project = |output: &str| {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("nml.toml", format!("[project]\nname = \"remote\"\n\n[models.Mlp]\nendpoint = \"{}\"\n", server.model("mlp"))),
            (
                "src/Scorer.nml",
                format!(
                    "// SPDX-License-Identifier: MIT\npragma nml 0.1;\npragma solidity ^0.8.24;\n\n\
                     model Mlp {{\n    cid \"{id}\";\n    input x: fixed<18>[1, 4];\n    output {output}: fixed<18>[1, 3];\n}}\n\n\
                     contract Scorer {{\n    int256 public first;\n    function score(int256[4] calldata x) external {{\n        \
                     Mlp.Output memory o = infer Mlp {{ x: x }};\n        if (o.simulated) return;\n        first = o.{output}[0];\n    }}\n}}\n"
                ),
            ),
            (
                "test/Scorer.t.sol",
                "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\nimport \"@nml/nml/Test.sol\";\nimport {Scorer} from \"../src/Scorer.nml\";\n\n\
                 contract ScorerTest is Test {\n    function testTheServerScores() public {\n        Scorer s = new Scorer();\n        \
                 s.score([int256(1e18), 2e18, 3e18, 4e18]);\n        assertEq(s.first(), 2.75e18);\n    }\n}\n"
                    .to_owned(),
            ),
        ];
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    };
    let nml = |dir: &std::path::Path, args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_nml")).args(args).current_dir(dir).output().expect("nml")
    };
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };

    let wrong = project("z");
    let build = nml(wrong.path(), &["build"]);
    assert_eq!(build.status.code(), Some(1), "{}", text(&build));
    assert!(text(&build).contains("model `Mlp` has no output `z`"), "{}", text(&build));
    assert!(text(&build).contains("the graph's outputs are `y`"), "{}", text(&build));

    let right = project("y");
    let test = nml(right.path(), &["test"]);
    assert!(test.status.success(), "{}", text(&test));
    assert!(text(&test).contains("[PASS] testTheServerScores()"), "{}", text(&test));
}
