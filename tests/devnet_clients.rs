//! Acceptance: real Ethereum client libraries we did not write (ethers v6
//! under Node, web3.py and OpenGradient's SDK under Python) drive a running
//! `nml devnet` (and `nml gateway`) binary.
//!
//! The clients are installed by this test from npm and PyPI into
//! `target/client-deps/` (under a file lock, reused by later runs). Set
//! `NML_SKIP_CLIENT_TESTS=1` to skip them where Node or Python is missing.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

use common::node::{Node, rpc, rpc_answer, wait};
use common::{deps_dir, provision, run_checked};

const ETHERS: &str = "ethers@6.13.5";
const WEB3PY: &str = "web3==7.6.0";
/// Check the devnet's attestations and documents independently of nml's code.
const CRYPTOGRAPHY: &str = "cryptography==46.0.3";
const CBOR2: &str = "cbor2==5.6.5";
/// OpenGradient's own SDK, the reference client of the chain nml simulates.
const OPENGRADIENT: &str = "opengradient==1.1.4";
/// x402's reference client (Coinbase's), with its EVM schemes and requests.
const X402: &str = "x402[evm,requests]==2.25.0";

fn skip() -> bool {
    if std::env::var_os("NML_SKIP_CLIENT_TESTS").is_some() {
        eprintln!("NML_SKIP_CLIENT_TESTS is set: skipping the client acceptance test");
        return true;
    }
    false
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn fixture() -> PathBuf {
    repo().join("tests/clients/fixtures/Counter.json")
}

/// A directory whose `node_modules` holds ethers.
fn node_deps() -> PathBuf {
    let dir = deps_dir().join("node");
    provision(&dir, &format!(".installed-{ETHERS}"), |dir| {
        run_checked(
            Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
                .arg(dir)
                .arg(ETHERS),
            "npm install ethers",
        );
    });
    dir
}

/// A Python interpreter with web3.py, cryptography and cbor2.
fn python() -> PathBuf {
    let dir = deps_dir().join("python");
    provision(&dir, &format!(".installed-{WEB3PY}-{CRYPTOGRAPHY}-{CBOR2}"), |dir| {
        run_checked(Command::new("python3").args(["-m", "venv"]).arg(dir), "python3 -m venv");
        run_checked(
            Command::new(dir.join("bin/pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                WEB3PY,
                CRYPTOGRAPHY,
                CBOR2,
            ]),
            "pip install web3 cryptography cbor2",
        );
    });
    dir.join("bin/python")
}

/// A Python interpreter with OpenGradient's SDK (a venv of its own: it
/// brings its own web3).
fn opengradient_python() -> PathBuf {
    let dir = deps_dir().join("opengradient");
    provision(&dir, &format!(".installed-{OPENGRADIENT}"), |dir| {
        run_checked(Command::new("python3").args(["-m", "venv"]).arg(dir), "python3 -m venv");
        run_checked(
            Command::new(dir.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", OPENGRADIENT]),
            "pip install opengradient",
        );
    });
    dir.join("bin/python")
}

/// A Python interpreter with x402's reference client (a venv of its own:
/// it brings its own web3).
fn x402_python() -> PathBuf {
    let dir = deps_dir().join("x402");
    provision(&dir, &format!(".installed-{X402}"), |dir| {
        run_checked(Command::new("python3").args(["-m", "venv"]).arg(dir), "python3 -m venv");
        run_checked(
            Command::new(dir.join("bin/pip")).args(["install", "--quiet", "--disable-pip-version-check", X402]),
            "pip install x402",
        );
    });
    dir.join("bin/python")
}

fn run_client(mut cmd: Command, what: &str) -> String {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
    let status = wait(&mut child, Duration::from_secs(180));
    let output = child.wait_with_output().unwrap_or_else(|_| Output {
        status: ExitStatus::default(),
        stdout: Vec::new(),
        stderr: Vec::new(),
    });
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        status.is_some_and(|s| s.success()) && stdout.contains("OK"),
        "{what} failed ({status:?}):\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// Copies `tests/clients/<name>` into `dir` under a name no other client
/// run of any test thread or process uses (tests run in parallel, and one
/// run deleting its copy must not pull the script from under another).
fn script_copy(dir: &Path, name: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let script = dir.join(format!("{}_{}_{n}.mjs", name.trim_end_matches(".mjs"), std::process::id()));
    fs::copy(repo().join("tests/clients").join(name), &script).expect("copying the script");
    script
}

fn ethers(url: &str, mode: &str, extra: &[&str]) -> String {
    let dir = node_deps();
    // ES modules resolve packages from the script's folder: run a copy there.
    let script = script_copy(&dir, "ethers_acceptance.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(&script).args([url, mode]).arg(fixture()).args(extra);
    let output = run_client(cmd, &format!("ethers {mode}"));
    let _ = fs::remove_file(&script);
    output
}

fn web3py(url: &str, mode: &str, extra: &[&str]) -> String {
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/clients/web3py_acceptance.py")).args([url, mode]).arg(fixture()).args(extra);
    run_client(cmd, &format!("web3.py {mode}"))
}

#[test]
fn ethers_v6_drives_the_devnet() {
    if skip() {
        return;
    }
    let node = Node::start(&[]);
    ethers(&node.url, "full", &[]);
}

#[test]
fn web3py_drives_the_devnet() {
    if skip() {
        return;
    }
    let node = Node::start(&[]);
    web3py(&node.url, "full", &[]);
}

fn balance_line(output: &str) -> String {
    output
        .lines()
        .find_map(|l| l.strip_prefix("BALANCE "))
        .unwrap_or_else(|| panic!("no balance in {output}"))
        .trim()
        .to_owned()
}

#[test]
fn state_survives_a_restart_for_both_clients() {
    if skip() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("devnet-state.json");
    let state_arg = state.to_str().unwrap();
    let node = Node::start(&["--state", state_arg]);
    let ethers_balance = balance_line(&ethers(&node.url, "state-write", &[]));
    let web3_balance = balance_line(&web3py(&node.url, "state-write", &[]));
    assert!(node.terminate().success());
    assert!(state.exists(), "the state is written on SIGTERM");

    let node = Node::start(&["--state", state_arg]);
    ethers(&node.url, "state-read", &[&ethers_balance]);
    web3py(&node.url, "state-read", &[&web3_balance]);
}

/// Copies `examples/<name>` into a temporary directory and builds it with the real binary.
fn built_example(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&repo().join("examples").join(name), dir.path());
    run_checked(Command::new(env!("CARGO_BIN_EXE_nml")).arg("build").arg(dir.path()), "nml build");
    dir
}

#[test]
fn ethers_runs_the_language_example_with_real_inference() {
    if skip() {
        return;
    }
    let project = built_example("quickstart");
    let artifact = project.path().join("out/DynamicFeePool.sol/DynamicFeePool.json");
    let onnx = project.path().join("models/volatility.onnx");
    let node = Node::start(&[]);
    let dir = node_deps();
    let script = script_copy(&dir, "ethers_inference.mjs");
    let mut cmd = Command::new("node");
    cmd.arg(&script).arg(&node.url).arg(&artifact).arg(&onnx).arg("QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51");
    run_client(cmd, "ethers inference");
    let _ = fs::remove_file(&script);
}

#[test]
fn python_cryptography_verifies_the_devnets_tee_attestations() {
    if skip() {
        return;
    }
    let project = built_example("quickstart");
    let artifact = project.path().join("out/DynamicFeePool.sol/DynamicFeePool.json");
    let onnx = project.path().join("models/volatility.onnx");
    let node = Node::start(&["--tees", "2", "--tee-seed", "7", "--settle-after", "1", "--batch-size", "2"]);
    let mut cmd = Command::new(python());
    cmd.arg(repo().join("tests/clients/python_tee_verify.py"))
        .arg(&node.url)
        .arg(&artifact)
        .arg(&onnx)
        .args(["QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51", "2"]);
    let output = run_client(cmd, "python tee verify");
    let line = |key: &str| {
        output
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {key} in {output}"))
    };
    let (tx, pcr_hash) = (line("FIRST_TX "), line("PCR_HASH "));

    // `nml verify` checks the same call without running the model: all good…
    let verify = || {
        let out =
            Command::new(env!("CARGO_BIN_EXE_nml")).args(["verify", tx, "--rpc-url", &node.url]).output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let (ok, text) = verify();
    assert!(ok, "{text}");
    for name in ["input", "output", "registered", "signature", "timestamp", "enabled", "active", "pcr", "settlement"] {
        assert!(text.lines().any(|l| l.trim_start().starts_with("ok") && l.contains(name)), "{name}: {text}");
    }
    // …until the admin (dev account 0) revokes the enclave image.
    let accounts = rpc(&node.url, "eth_accounts", serde_json::json!([]));
    let revoke = format!("0x{}{}", "9138c99e", pcr_hash.trim_start_matches("0x"));
    let sent = rpc(
        &node.url,
        "eth_sendTransaction",
        serde_json::json!([{ "from": accounts[0], "to": "0x703cB174AEadB35D611858369B4b1111dC9Abda6", "data": revoke }]),
    );
    assert!(sent.is_string(), "revokePCR sent: {sent}");
    let (ok, text) = verify();
    assert!(!ok, "{text}");
    for name in ["enabled", "active", "pcr"] {
        assert!(text.lines().any(|l| l.contains("FAIL") && l.contains(name)), "{name}: {text}");
    }
    let json = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["verify", tx, "--rpc-url", &node.url, "--json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(json["ok"], false);
}

#[test]
fn opengradients_sdk_finds_the_devnets_enclaves_in_its_tee_registry() {
    if skip() {
        return;
    }
    let node = Node::start(&["--tees", "3", "--tee-seed", "11"]);
    let tees = rpc(&node.url, "nml_getTees", serde_json::json!([]));
    assert_eq!(tees.as_array().map(Vec::len), Some(3));
    let mut cmd = Command::new(opengradient_python());
    cmd.arg(repo().join("tests/clients/og_tee_registry.py")).arg(&node.url).arg(tees.to_string());
    run_client(cmd, "opengradient TEERegistry");
}

#[test]
fn nml_models_registers_and_lists_over_rpc() {
    let node = Node::start(&["--models", repo().join("runtime/tests/models").to_str().unwrap()]);
    let nml =
        |args: &[&str]| Command::new(env!("CARGO_BIN_EXE_nml")).args(args).args(["--rpc", &node.url]).output().unwrap();
    let list = nml(&["models", "list"]);
    assert!(list.status.success());
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("runtime/tests/models/mlp.onnx") && text.contains("in  x: float32[N, 4]"), "{text}");
    let onnx = repo().join("examples/quickstart/models/volatility.onnx");
    let cid = "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51";
    let add = nml(&["models", "add", onnx.to_str().unwrap(), "--id", cid]);
    assert!(add.status.success(), "{}", String::from_utf8_lossy(&add.stderr));
    assert_eq!(String::from_utf8_lossy(&add.stdout).trim(), cid);
    let json = nml(&["models", "list", "--json"]);
    let models: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(models.as_array().unwrap().len(), 8);
    // Not an ONNX graph: a clear error, and the node goes on.
    let bad = nml(&["models", "add", repo().join("Cargo.toml").to_str().unwrap()]);
    assert!(!bad.status.success());
    // miette wraps long lines: compare without the layout.
    let stderr: String = String::from_utf8_lossy(&bad.stderr).chars().filter(|c| c.is_alphanumeric()).collect();
    assert!(stderr.contains("cannotbeloaded"), "{stderr}");
    assert!(nml(&["models", "list"]).status.success());
}

#[test]
fn nml_models_without_a_devnet_is_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["models", "list", "--rpc", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("is `nml devnet` running?"));
}

#[test]
fn a_damaged_state_file_is_a_clear_error_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("broken.json");
    fs::write(&state, b"{ not json").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["devnet", "--port", "0", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("not a valid nml devnet state dump"), "{stderr}");
    assert_eq!(fs::read(&state).unwrap(), b"{ not json");
}

#[test]
fn devnet_project_registers_models_under_the_ids_contracts_call() {
    let project = repo().join("examples/quickstart");
    let node = Node::start(&["--project", project.to_str().unwrap()]);
    let output = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["models", "list", "--json", "--rpc", &node.url])
        .output()
        .unwrap();
    let models: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let ids: Vec<&str> = models.as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert!(ids.contains(&"QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51"), "{ids:?}");
}

/// Sends a transaction from dev account 0 and waits for its receipt.
fn send_and_wait(url: &str, to: Option<&str>, data: &str) -> String {
    let accounts = rpc(url, "eth_accounts", serde_json::json!([]));
    let mut tx = serde_json::json!({ "from": accounts[0], "data": data, "gas": "0x989680" });
    if let Some(to) = to {
        tx["to"] = serde_json::json!(to);
    }
    let hash = rpc(url, "eth_sendTransaction", serde_json::json!([tx]));
    let hash = hash.as_str().unwrap_or_else(|| panic!("sent: {hash}")).to_owned();
    for _ in 0..600 {
        let receipt = rpc(url, "eth_getTransactionReceipt", serde_json::json!([hash]));
        if !receipt.is_null() {
            assert_eq!(receipt["status"], "0x1", "{receipt}");
            return hash;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{hash} not mined within 30 s");
}

/// `nml verify` on `tx`: whether it passed, and its report.
fn nml_verify(url: &str, tx: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_nml")).args(["verify", tx, "--rpc-url", url]).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

fn failed_check(report: &str, name: &str) -> bool {
    report.lines().any(|l| l.trim_start().starts_with("FAIL") && l.split_whitespace().nth(1) == Some(name))
}

#[test]
fn each_injected_fault_is_caught_by_the_check_that_names_it() {
    let project = built_example("quickstart");
    let artifact: serde_json::Value = serde_json::from_slice(
        &fs::read(project.path().join("out/DynamicFeePool.sol/DynamicFeePool.json")).expect("artifact"),
    )
    .expect("json");
    let onnx = fs::read(project.path().join("models/volatility.onnx")).expect("model");
    let args = ["--settlement", "individual", "--settle-after", "1", "--tee-fault", "wrong-output"];
    let node = Node::start(&args);
    let url = &node.url;
    let cid = "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51";
    rpc(url, "nml_registerModel", serde_json::json!([format!("0x{}", alloy_primitives::hex::encode(&onnx)), cid]));
    let deploy = send_and_wait(url, None, artifact["bytecode"]["object"].as_str().expect("bytecode"));
    let receipt = rpc(url, "eth_getTransactionReceipt", serde_json::json!([deploy]));
    let pool = receipt["contractAddress"].as_str().expect("deployed").to_owned();
    // update(int256[30]) with every return at `r` (a distinct request per call).
    let update = |r: u64| {
        let mut data =
            format!("0x{}", alloy_primitives::hex::encode(&alloy_primitives::keccak256("update(int256[30])")[..4]));
        for _ in 0..30 {
            data.push_str(&format!("{r:064x}"));
        }
        send_and_wait(url, Some(&pool), &data)
    };
    let unknown = format!("0x{}", "ab".repeat(32));
    let out = Command::new(env!("CARGO_BIN_EXE_nml")).args(["verify", &unknown, "--rpc-url", url]).output().unwrap();
    // miette wraps the report: compare its words.
    let words = String::from_utf8_lossy(&out.stderr).replace(['│', '×'], " ");
    let words = words.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(!out.status.success() && words.contains("is not mined"), "{words}");
    let bogus = rpc_answer(url, "nml_setTeeFault", serde_json::json!(["bogus", true]));
    assert_eq!(bogus["error"]["code"], -32602, "{bogus}");
    assert!(bogus["error"]["message"].as_str().unwrap_or_default().contains("unknown TEE fault `bogus`"), "{bogus}");
    let faults = |on: &str, off: &str| {
        rpc(url, "nml_setTeeFault", serde_json::json!([off, false]));
        rpc(url, "nml_setTeeFault", serde_json::json!([on, true]))
    };

    // The enclave signs another output than the contract received.
    let tx = update(100_000_000_000_000_000);
    let (ok, report) = nml_verify(url, &tx);
    assert!(!ok && failed_check(&report, "output") && !failed_check(&report, "signature"), "{report}");

    // Stale, then future timestamps.
    assert_eq!(faults("stale-timestamp", "wrong-output"), serde_json::json!(["stale-timestamp"]));
    let (ok, report) = nml_verify(url, &update(110_000_000_000_000_000));
    assert!(!ok && failed_check(&report, "timestamp") && !failed_check(&report, "output"), "{report}");
    faults("future-timestamp", "stale-timestamp");
    let (ok, report) = nml_verify(url, &update(120_000_000_000_000_000));
    assert!(!ok && failed_check(&report, "timestamp"), "{report}");

    // A withheld settlement never comes: blocks pass, the gap stays open.
    faults("withhold-settlement", "future-timestamp");
    let tx = update(130_000_000_000_000_000);
    for _ in 0..3 {
        rpc(url, "evm_mine", serde_json::json!([]));
    }
    let mut status = serde_json::Value::Null;
    for _ in 0..100 {
        status = rpc(url, "nml_getAttestations", serde_json::json!([tx]))[0]["settlement"]["status"].clone();
        if status == "withheld" {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(status, "withheld");
    let (ok, report) = nml_verify(url, &tx);
    assert!(!ok && failed_check(&report, "settlement") && !failed_check(&report, "timestamp"), "{report}");

    // No fault: everything passes once the relay has settled it.
    faults("late-settlement", "withhold-settlement");
    rpc(url, "nml_setTeeFault", serde_json::json!(["late-settlement", false]));
    let tx = update(140_000_000_000_000_000);
    rpc(url, "evm_mine", serde_json::json!([]));
    let mut report = String::new();
    for _ in 0..100 {
        let (ok, text) = nml_verify(url, &tx);
        report = text;
        if ok {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!failed_check(&report, "settlement") && !failed_check(&report, "output"), "{report}");
}

/// `og.Alpha.infer` of OpenGradient's SDK against the `nml devnet` binary:
/// the inference hub predeploy, VANILLA and TEE, outputs exactly ONNX
/// Runtime's.
#[test]
fn opengradients_sdk_runs_inference_through_the_hub() {
    use nml_runtime::inference::abi::{MultiDimensionalNumberTensor, Number};
    use nml_runtime::inference::{Executor, ModelInput, OnnxConfig, OnnxExecutor};
    if skip() {
        return;
    }
    let models = repo().join("runtime/tests/models");
    let node = Node::start(&["--models", models.to_str().unwrap()]);
    // What ONNX Runtime gives for the same input, run here directly.
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    let onnx = OnnxExecutor::new(OnnxConfig::new(library)).expect("ORT");
    let id = onnx.registry().register_file(&models.join("mlp.onnx"), None).expect("mlp").id;
    let x = [0.5f32, -1.25, 2.0, 3.5];
    let input = ModelInput {
        numbers: vec![MultiDimensionalNumberTensor {
            name: "x".into(),
            values: x.iter().map(|v| Number { value: (*v * 100.0) as i128, decimals: 2 }).collect(),
            shape: vec![1, 4],
        }],
        strings: vec![],
    };
    let output = onnx.run(&id, &input).expect("mlp runs");
    let y: Vec<f64> = output.numbers[0].values.iter().map(|n| n.value as f64 / 10f64.powi(n.decimals as i32)).collect();
    let expected = serde_json::json!({ "y": [y] });
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let mut cmd = Command::new(opengradient_python());
    cmd.arg(repo().join("tests/clients/og_infer.py"))
        .arg(&node.url)
        .arg(key)
        .arg(id.to_string())
        .arg(serde_json::json!({ "x": [x] }).to_string())
        .arg(expected.to_string());
    let out = run_client(cmd, "opengradient og.Alpha.infer");
    assert!(out.contains("OG INFER OK"), "{out}");
}

/// The SDK's price-history workflow against the `nml devnet` binary:
/// `new_workflow` deploys the SDK's own `PriceHistoryInference` bytecode and
/// registers it with the scheduler, its `run()` calls 0x…F5 (candles of the
/// synthetic feed into the `mlp` model), `run_workflow`,
/// `read_workflow_result`, `read_workflow_history` read what it stored, and
/// after `evm_increaseTime` the devnet's scheduler runs it again.
#[test]
fn opengradients_sdk_runs_a_price_history_workflow() {
    if skip() {
        return;
    }
    let models = repo().join("runtime/tests/models");
    let node = Node::start(&["--models", models.to_str().unwrap()]);
    let id = nml_runtime::inference::ModelId::derive(&std::fs::read(models.join("mlp.onnx")).unwrap());
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let mut cmd = Command::new(opengradient_python());
    cmd.arg(repo().join("tests/clients/og_workflow.py"))
        .arg(&node.url)
        .arg(key)
        .arg(id.to_string())
        .args(["x", "3", "1"]);
    let out = run_client(cmd, "opengradient workflows");
    assert!(out.contains("OG WORKFLOW OK ['y']"), "{out}");
    let tasks = rpc(&node.url, "nml_getTasks", serde_json::json!([]));
    let task = &tasks[0];
    assert_eq!(task["frequency"], "0x3c", "{tasks}");
    assert!(task["runs"].as_str().is_some_and(|r| r != "0x0"), "the scheduler ran it: {tasks}");
    assert_eq!(task["lastError"], serde_json::Value::Null, "{tasks}");
}

/// `nml devnet --price-feed FILE`: price-history queries at 0x…F5 take their
/// candles from the file (the last ones closed before the block's time,
/// aggregated to the query's duration), and the model runs on exactly those
/// values; a pair the feed lacks is a revert with the reason.
#[test]
fn price_history_reads_the_price_feed_file() {
    use alloy_sol_types::SolCall;
    use nml_runtime::inference::abi::runModelInferenceCall;
    use nml_runtime::inference::history::{HistoricalInputQuery, PriceHistoryCall};
    use nml_runtime::inference::{Executor, OnnxConfig, OnnxExecutor};
    let dir = tempfile::tempdir().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / 60 * 60;
    // Two hours of 1-minute candles around now: open = minute index, close = open + 1.
    let candles: Vec<serde_json::Value> = (0..240u64)
        .map(|i| {
            let time = now - 7200 + i * 60;
            let open = i as f64;
            serde_json::json!({ "time": time, "open": open, "high": open + 2.0, "low": open - 1.0, "close": open + 1.0, "volume": 10.0 })
        })
        .collect();
    let feed = dir.path().join("feed.json");
    std::fs::write(&feed, serde_json::json!({ "pairs": { "ETH/USD": candles } }).to_string()).unwrap();
    let models = repo().join("runtime/tests/models");
    let node = Node::start(&["--models", models.to_str().unwrap(), "--price-feed", feed.to_str().unwrap()]);
    let mlp = nml_runtime::inference::ModelId::derive(&std::fs::read(models.join("mlp.onnx")).unwrap());
    let call = |base: &str| PriceHistoryCall {
        model_id: mlp.to_string(),
        input_name: "x".into(),
        query: HistoricalInputQuery {
            base: base.into(),
            quote: "USD".into(),
            total_candles: 2,
            candle_duration_in_mins: 5,
            order: 0,
            candle_types: vec![2, 0, 1, 3],
        },
    };
    let data = alloy_primitives::hex::encode_prefixed(call("ETH").encode());
    let answer = rpc_answer(
        &node.url,
        "eth_call",
        serde_json::json!([{ "to": "0x00000000000000000000000000000000000000F5", "data": data }, "latest"]),
    );
    let out = alloy_primitives::hex::decode(answer["result"].as_str().unwrap_or_else(|| panic!("{answer}"))).unwrap();
    let output = runModelInferenceCall::abi_decode_returns(&out).expect("a ModelOutput");
    // What the node's executor gives on the candles the feed holds for the
    // block's time (the call runs at the next block's time, within a minute of `now`).
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    let onnx = OnnxExecutor::new(OnnxConfig::new(library)).expect("ORT");
    let id = onnx.registry().register_file(&models.join("mlp.onnx"), None).expect("mlp").id;
    let feed = nml_runtime::inference::history::PriceFeed::read(&feed).unwrap();
    let matches = (0..3u64).any(|late| {
        let request = nml_runtime::inference::history::request_for(
            &call("ETH"),
            &feed,
            now + late * 60,
            onnx.signature(&id).as_ref(),
        );
        request.is_ok_and(|r| onnx.run(&id, &r.input).is_ok_and(|o| o == output))
    });
    assert!(matches, "the model ran on the feed's candles: {output:?}");
    let data = alloy_primitives::hex::encode_prefixed(call("DOGE").encode());
    let refused = rpc_answer(
        &node.url,
        "eth_call",
        serde_json::json!([{ "to": "0x00000000000000000000000000000000000000F5", "data": data }, "latest"]),
    );
    assert!(
        refused["error"]["message"].as_str().is_some_and(|m| m.contains("the feed has no pair DOGE/USD")),
        "{refused}"
    );
}

/// `nml deploy` against the `nml devnet` binary: constructor arguments, a
/// keystore written by eth-account (web3.py's signer), the deployments
/// file and a second run that deploys nothing, a dry run that sends
/// nothing, a wrong chain id and a wrong password refused.
#[test]
fn nml_deploy_deploys_records_and_refuses_what_it_should() {
    if skip() {
        return;
    }
    let node = Node::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&repo().join("examples/trading-agent"), dir.path());
    // Account 1's key in a keystore, encrypted by eth-account.
    let keystore = dir.path().join("deployer.json");
    let key1 = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let encrypt = format!(
        "import json, sys\nfrom eth_account import Account\nopen(sys.argv[1], 'w').write(json.dumps(Account.encrypt('{key1}', 'hunter2')))\n"
    );
    run_checked(Command::new(python()).args(["-c", &encrypt]).arg(&keystore), "eth-account encrypt");
    let nml = |args: &[&str], password: &str| {
        Command::new(env!("CARGO_BIN_EXE_nml"))
            .arg("deploy")
            .args(args)
            .args(["--rpc-url", &node.url, "--keystore", keystore.to_str().unwrap(), "--password-env", "NML_TEST_PW"])
            .env("NML_TEST_PW", password)
            .current_dir(dir.path())
            .output()
            .expect("nml deploy")
    };
    let text = |o: &Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let deployer = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8";
    let nonce = || rpc(&node.url, "eth_getTransactionCount", serde_json::json!([deployer, "latest"]));

    let missing = nml(&["Token"], "hunter2");
    assert!(!missing.status.success());
    assert!(
        text(&missing).contains("the constructor takes 2 argument(s) (string, string), 0 given"),
        "{}",
        text(&missing)
    );

    let dry = nml(&["Token", "--arg", "Dollar", "--arg", "USD", "--dry-run"], "hunter2");
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("Token: dry run: deployed at 0x"), "{}", text(&dry));
    assert!(text(&dry).contains(&format!("on a fork of {}", node.url)), "{}", text(&dry));
    assert_eq!(nonce(), "0x0", "a dry run sends nothing");

    let wrong_chain = nml(&["Token", "--arg", "Dollar", "--arg", "USD", "--chain-id", "8453"], "hunter2");
    assert!(!wrong_chain.status.success());
    assert!(text(&wrong_chain).contains("is chain 31337, not the 8453 expected"), "{}", text(&wrong_chain));
    let wrong_password = nml(&["Token", "--arg", "Dollar", "--arg", "USD"], "hunter3");
    assert!(!wrong_password.status.success());
    assert!(text(&wrong_password).contains("cannot open the keystore"), "{}", text(&wrong_password));
    assert_eq!(nonce(), "0x0");

    let deployed = nml(&["Token", "--arg", "Dollar", "--arg", "USD", "--chain-id", "31337"], "hunter2");
    assert!(deployed.status.success(), "{}", text(&deployed));
    let file: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("deployments/31337.json")).unwrap()).unwrap();
    let token = &file["contracts"]["Token"];
    assert_eq!(token["deployer"].as_str().unwrap().to_lowercase(), deployer.to_lowercase());
    let address = token["address"].as_str().unwrap().to_owned();
    // name() of the deployed token.
    let name = rpc(&node.url, "eth_call", serde_json::json!([{ "to": address, "data": "0x06fdde03" }, "latest"]));
    let name = alloy_primitives::hex::decode(name.as_str().unwrap()).unwrap();
    assert_eq!(<String as alloy_sol_types::SolValue>::abi_decode(&name).unwrap(), "Dollar");

    let again = nml(&["Token", "--arg", "Dollar", "--arg", "USD"], "hunter2");
    assert!(again.status.success());
    let said = text(&again).to_lowercase();
    assert!(said.contains(&format!("token: already deployed at {}", address.to_lowercase())), "{said}");
    assert_eq!(nonce(), "0x1", "nothing deployed twice");
}

/// The README's tour: `nml deploy --all` deploys each template's contracts
/// right after `nml new`, as its nml.toml names them (two tokens, then the
/// pool that takes their addresses through `@TokenA`, `@TokenB`); a second
/// run deploys nothing.
#[test]
fn nml_deploy_all_deploys_every_template_right_after_nml_new() {
    let node = Node::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let key0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let text = |o: &Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let nml = |at: &Path, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nml")).args(args).current_dir(at).output().expect("nml")
    };
    for (template, deployments) in [
        ("dynamic-fee", &["TokenA", "TokenB", "DynamicFeePool"][..]),
        ("credit-risk", &["WETH", "USD", "LendingPool"]),
        ("trading-agent", &["USD", "WETH", "Market", "TradingVault"]),
        ("verified-payout", &["USD", "PayoutVault"]),
    ] {
        let created = nml(dir.path(), &["new", template, "--template", template]);
        assert!(created.status.success(), "{}", text(&created));
        let project = dir.path().join(template);
        let deploy = ["deploy", "--all", "--rpc-url", &node.url, "--private-key", key0];
        let deployed = nml(&project, &deploy);
        assert!(deployed.status.success(), "{template}: {}", text(&deployed));
        let file: serde_json::Value =
            serde_json::from_slice(&fs::read(project.join("deployments/31337.json")).unwrap()).unwrap();
        let recorded: Vec<&String> = file["contracts"].as_object().unwrap().keys().collect();
        let mut expected: Vec<&str> = deployments.to_vec();
        expected.sort_unstable();
        assert_eq!(recorded, expected, "{template}: {file}");
        let again = nml(&project, &deploy);
        assert!(again.status.success(), "{}", text(&again));
        for name in deployments {
            assert!(text(&again).contains(&format!("{name}: already deployed at")), "{}", text(&again));
        }
        if template == "dynamic-fee" {
            // token0() of the pool is the deployment TokenA.
            let pool = file["contracts"]["DynamicFeePool"]["address"].as_str().unwrap();
            let token0 =
                rpc(&node.url, "eth_call", serde_json::json!([{ "to": pool, "data": "0x0dfe1681" }, "latest"]));
            let token_a = file["contracts"]["TokenA"]["address"].as_str().unwrap().to_lowercase();
            assert!(token0.as_str().unwrap().ends_with(token_a.trim_start_matches("0x")), "{token0} {token_a}");
        }
    }
}

alloy_sol_types::sol! {
    function update(int256[30] r) external;
    function fee() external view returns (uint24);
}

/// The fee of the quickstart's `DynamicFeePool` at `pool` on the node at `url`.
fn pool_fee(url: &str, pool: &str) -> u64 {
    use alloy_sol_types::SolCall;
    let data = alloy_primitives::hex::encode_prefixed(feeCall {}.abi_encode());
    let answer = rpc(url, "eth_call", serde_json::json!([{ "to": pool, "data": data }, "latest"]));
    u64::from_str_radix(answer.as_str().unwrap().trim_start_matches("0x"), 16).unwrap()
}

/// Fork mode end to end with the `nml` binary: a pool deployed on devnet A
/// by `nml deploy` (after a dry run on a fork of A) is changed by a
/// transaction with real inference on devnet B, a fork of A, and by a test
/// of `nml test` forking A through `[fork]` in nml.toml; A is unchanged, and
/// a fork that expects another chain id is refused.
#[test]
fn a_fork_of_a_devnet_runs_its_deployed_contracts_with_local_inference() {
    use alloy_sol_types::SolCall;
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&repo().join("examples/quickstart"), dir.path());
    let project = dir.path().to_str().unwrap();
    let a = Node::start(&["--project", project]);
    let key0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let deploy = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nml"))
            .args(["deploy", "DynamicFeePool", "--rpc-url", &a.url, "--private-key", key0])
            .args(extra)
            .current_dir(dir.path())
            .output()
            .expect("nml deploy")
    };
    let text = |o: &Output| format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    let block = || rpc(&a.url, "eth_blockNumber", serde_json::json!([]));
    let before = block();
    let dry = deploy(&["--dry-run"]);
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("DynamicFeePool: dry run: deployed at 0x"), "{}", text(&dry));
    assert_eq!(block(), before, "a dry run sends nothing");
    let deployed = deploy(&[]);
    assert!(deployed.status.success(), "{}", text(&deployed));
    let file: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.path().join("deployments/31337.json")).unwrap()).unwrap();
    let pool = file["contracts"]["DynamicFeePool"]["address"].as_str().unwrap().to_owned();
    assert_eq!(pool_fee(&a.url, &pool), 3000);

    // Devnet B forks A and runs the pool's inference itself.
    let b = Node::start(&["--project", project, "--fork-url", &a.url]);
    let info = rpc(&b.url, "nml_forkInfo", serde_json::json!([]));
    assert_eq!(info["url"], a.url.as_str(), "{info}");
    assert_eq!(pool_fee(&b.url, &pool), 3000, "read from A");
    let volatile = updateCall { r: [alloy_primitives::I256::try_from(100_000_000_000_000_000i64).unwrap(); 30] };
    let tx = send_and_wait(&b.url, Some(&pool), &alloy_primitives::hex::encode_prefixed(volatile.abi_encode()));
    let records = rpc(&b.url, "nml_getInferenceReceipts", serde_json::json!([tx]));
    assert_eq!(records[0]["success"], true, "{records}");
    let ran = |url: &str| rpc(url, "nml_mempoolStatus", serde_json::json!([]))["inferencesRun"].as_u64().unwrap();
    assert!(ran(&b.url) >= 1 && ran(&a.url) == 0, "the model ran on B only");
    assert_eq!(pool_fee(&b.url, &pool), 10000, "changed on B by the model's answer");
    assert_eq!(pool_fee(&a.url, &pool), 3000, "A is unchanged");

    // `nml test` forks A through nml.toml.
    let checksummed = pool.parse::<alloy_primitives::Address>().unwrap().to_checksum(None);
    fs::write(
        dir.path().join("test/Fork.t.sol"),
        format!(
            r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/nml/Test.sol";
import {{DynamicFeePool}} from "../src/DynamicFeePool.nml";

contract ForkTest is Test {{
    function testTheDeployedPoolRunsOnTheFork() public {{
        DynamicFeePool pool = DynamicFeePool({checksummed});
        assertEq(uint256(pool.fee()), 3000);
        int256[30] memory r;
        for (uint256 i = 0; i < 30; i++) r[i] = 0.1e18;
        pool.update(r);
        assertEq(uint256(pool.fee()), 10000);
    }}
}}
"#
        ),
    )
    .unwrap();
    let manifest = dir.path().join("nml.toml");
    let toml = fs::read_to_string(&manifest).unwrap();
    fs::write(&manifest, format!("{toml}\n[fork]\nurl = \"{}\"\nchain_id = 31337\n", a.url)).unwrap();
    let tested = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["test", "--match-contract", "ForkTest"])
        .current_dir(dir.path())
        .output()
        .expect("nml test");
    assert!(tested.status.success(), "{}", text(&tested));
    assert!(text(&tested).contains("1 passed"), "{}", text(&tested));
    assert_eq!(pool_fee(&a.url, &pool), 3000, "A is unchanged");

    let refused = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["devnet", "--no-inference", "--port", "0", "--fork-url", &a.url, "--chain-id", "8453"])
        .output()
        .expect("nml devnet");
    assert!(!refused.status.success());
    assert!(text(&refused).contains("reports chain id 31337, but chain id 8453"), "{}", text(&refused));
}

/// OpenGradient's SDK against the `nml gateway` binary: `og.LLM.from_url`
/// chat, completion and streaming chat, each answer's enclave signature
/// checked by the SDK's own `tee_verify`, bad input refused with the status
/// the clients expect, and a wrong-output fault caught by the SDK
/// (tests/clients/og_gateway.py).
#[test]
fn opengradients_sdk_chats_through_the_gateway_and_verifies_its_signatures() {
    if skip() {
        return;
    }
    let gateway = Node::spawn(&["gateway", "--port", "0"]);
    let faulty = Node::spawn(&["gateway", "--port", "0", "--tee-fault", "wrong-output"]);
    let key = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
    let mut cmd = Command::new(opengradient_python());
    cmd.arg(repo().join("tests/clients/og_gateway.py")).arg(&gateway.url).arg(key).arg(&faulty.url);
    let out = run_client(cmd, "opengradient og.LLM.from_url");
    assert!(out.contains("OG GATEWAY OK"), "{out}");
}

/// OpenGradient's SDK pays `nml gateway` (and `nml devnet --gateway`) with
/// x402 on a devnet running Base's chain id: the 402's terms, the Permit2 approval, paid chats,
/// completions and streams in both schemes, a replayed, altered, forged or
/// garbled payment refused, and nothing charged when the backend is down
/// (tests/clients/og_gateway_paid.py).
#[test]
fn opengradients_sdk_pays_the_gateway_with_x402_on_the_devnet() {
    if skip() {
        return;
    }
    // The upto gateway is the devnet's own (`nml devnet --gateway`).
    let devnet = Node::start(&["--chain-id", "8453", "--gateway", "0", "--price", "0.001"]);
    let upto = devnet.gateway_url();
    let gateway =
        |extra: &[&str]| Node::spawn(&[&["gateway", "--port", "0", "--rpc-url", devnet.url.as_str()], extra].concat());
    let exact = gateway(&["--scheme", "exact", "--price", "0.002"]);
    let down = gateway(&["--scheme", "exact", "--price", "0.002", "--llm-url", "http://127.0.0.1:1/v1"]);
    let payer = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
    let mut cmd = Command::new(opengradient_python());
    cmd.arg(repo().join("tests/clients/og_gateway_paid.py"))
        .args([&devnet.url, &upto, &exact.url, &down.url])
        .arg(payer);
    let out = run_client(cmd, "opengradient pays the gateway");
    assert!(out.contains("OG GATEWAY PAID OK"), "{out}");
}

/// OpenGradient's confidential client (`og.ConfidentialLLM`) finds a
/// standalone `nml gateway --register` and its OHTTP key in the devnet's TEE
/// registry, chats and streams sealed to the enclave with its relay paying
/// over x402, and verifies every answer; what the gateway cannot open is
/// refused (tests/clients/og_ohttp.py). A gateway whose enclave is not of
/// the devnet's PKI (another seed) is refused registration, with the
/// registry's reason.
#[test]
fn opengradients_confidential_client_chats_privately_through_a_registered_gateway() {
    if skip() {
        return;
    }
    let devnet = Node::start(&["--chain-id", "8453"]);
    let url = devnet.url.clone();
    let gateway = |extra: &[&'static str]| -> Vec<String> {
        let base = ["gateway", "--port", "0", "--rpc-url", url.as_str(), "--register", "--price", "0.001"];
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let mut stranger = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(gateway(&["--tee-seed", "7"]))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting nml gateway");
    let status = wait(&mut stranger, Duration::from_secs(60));
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut stranger.stderr.take().expect("stderr"), &mut stderr).expect("stderr");
    assert!(status.is_some_and(|s| !s.success()), "a stranger's enclave is refused: {stderr}");
    assert!(stderr.contains("attestation document refused"), "{stderr}");

    let args = gateway(&[]);
    let registered = Node::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        registered.banner.iter().any(|line| line.starts_with("Registered in the TEE registry")),
        "{:?}",
        registered.banner
    );
    let relay = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a";
    let mut cmd = Command::new(opengradient_python());
    cmd.arg(repo().join("tests/clients/og_ohttp.py")).arg(&devnet.url).arg(relay);
    let out = run_client(cmd, "opengradient's confidential client");
    assert!(out.contains("OG OHTTP OK"), "{out}");
}

/// x402's reference client pays the gateway in both EVM schemes over
/// Permit2 — refused before the approval, `upto` on the devnet's own
/// gateway, `exact` on a standalone one — and reads the settlement from
/// PAYMENT-RESPONSE (tests/clients/x402_reference.py).
#[test]
fn x402s_reference_client_pays_the_gateway() {
    if skip() {
        return;
    }
    let devnet = Node::start(&["--chain-id", "8453", "--gateway", "0", "--gateway-http", "--price", "0.001"]);
    let upto = devnet.gateway_url();
    // The exact gateway's prices come from a project's [gateway] table: one
    // model priced apart.
    let project = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        project.path().join("nml.toml"),
        "[gateway]\nscheme = \"exact\"\nprice = \"0.002\"\n\n[gateway.models.\"claude-haiku-4-5\"]\nprice = \"0.003\"\n",
    )
    .expect("nml.toml");
    let project_dir = project.path().to_str().expect("utf-8 path");
    let exact = Node::spawn(&["gateway", "--port", "0", "--rpc-url", devnet.url.as_str(), "--project", project_dir]);
    let payer = "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a";
    let mut cmd = Command::new(x402_python());
    cmd.arg(repo().join("tests/clients/x402_reference.py")).args([&devnet.url, &upto, &exact.url]).arg(payer);
    let out = run_client(cmd, "x402's reference client");
    assert!(out.contains("X402 REFERENCE OK"), "{out}");
}
