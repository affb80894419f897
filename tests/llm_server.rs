//! LLM calls against a real OpenAI-compatible server that nml did not write:
//! llama-cpp-python's `llama_cpp.server` (llama.cpp underneath), installed
//! from PyPI by this test into `target/client-deps` (built from its source
//! package: PyPI has no Linux wheel; a minimal CPU build takes about two
//! minutes on two cores, once per target directory), serving a tiny
//! random-weight llama model that `tests/clients/make_tiny_gguf.py` writes
//! (no model can be downloaded here).
//!
//! The server is deterministic at temperature 0, so the answer a contract
//! gets through the devnet must equal, byte for byte, what the server
//! answers a direct HTTP request with the same parameters.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{SolCall, sol};
use nml_runtime::inference::{OnnxConfig, OnnxExecutor};
use nml_runtime::llm::{LlmBackend, LlmRouter, OpenAiBackend};
use nml_runtime::node::InferenceSetup;
use nml_runtime::{Devnet, DevnetConfig};
use serde_json::{Value, json};

mod common;

sol! {
    contract Oracle {
        function question(string prompt);
        function converse(string content);
        function tryQuestion(string prompt, string model);
        function last() returns (string);
        function lastFinish() returns (string);
        function lastError() returns (string);
    }
}

const ANALYST: &str = "meta-llama/Llama-3.1-8B-Instruct";
const VERSION: &str = "0.3.36";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The server's virtual environment, installed once per target directory.
fn server_venv() -> PathBuf {
    let dir = common::deps_dir().join("llama-cpp-server");
    common::provision(&dir, &format!(".installed-{VERSION}"), |dir| {
        let venv = dir.join("venv");
        common::run_checked(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv");
        let pip = venv.join("bin/pip");
        common::run_checked(
            Command::new(&pip).args(["install", "-q", "--no-cache-dir", "gguf==0.19.0", "numpy==2.4.6"]),
            "pip install gguf numpy",
        );
        let sdist = dir.join("sdist");
        common::run_checked(
            Command::new(&pip)
                .args(["download", "-q", "--no-cache-dir", "--no-deps", "-d"])
                .arg(&sdist)
                .arg(format!("llama-cpp-python=={VERSION}")),
            "pip download llama-cpp-python",
        );
        let src = dir.join("src");
        std::fs::create_dir_all(&src).expect("src dir");
        common::run_checked(
            Command::new("tar")
                .arg("xzf")
                .arg(sdist.join(format!("llama_cpp_python-{VERSION}.tar.gz")))
                .arg("-C")
                .arg(&src),
            "unpacking llama-cpp-python",
        );
        let package = src.join(format!("llama_cpp_python-{VERSION}"));
        // llama.cpp's `common` library is only needed by the multimodal
        // extension (LLAVA_BUILD, off here); building it doubles the time.
        let cmake = package.join("CMakeLists.txt");
        let text = std::fs::read_to_string(&cmake).expect("CMakeLists.txt");
        let patched = text.replace("set(LLAMA_BUILD_COMMON ON CACHE BOOL", "set(LLAMA_BUILD_COMMON OFF CACHE BOOL");
        assert_ne!(text, patched, "llama-cpp-python's CMakeLists.txt changed: update this test");
        std::fs::write(&cmake, patched).expect("CMakeLists.txt");
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        common::run_checked(
            Command::new(&pip)
                .args(["install", "-q", "--no-cache-dir"])
                .arg(format!("{}[server]", package.display()))
                .env("CMAKE_BUILD_PARALLEL_LEVEL", cores.to_string())
                .env(
                    "CMAKE_ARGS",
                    "-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_LLAMAFILE=OFF -DGGML_OPENMP=OFF \
                     -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF \
                     -DLLAMA_BUILD_SERVER=OFF -DCMAKE_C_FLAGS_RELEASE=-O0 -DCMAKE_CXX_FLAGS_RELEASE=-O0",
                ),
            "building llama-cpp-python[server]",
        );
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(&sdist);
    });
    dir.join("venv")
}

/// `llama_cpp.server` on a free port, serving the tiny model as `nml-tiny`.
struct Server {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start(venv: &Path) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let model = dir.path().join("tiny.gguf");
        let python = venv.join("bin/python");
        common::run_checked(
            Command::new(&python).arg(repo().join("tests/clients/make_tiny_gguf.py")).arg(&model).arg("0"),
            "writing the tiny model",
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
        let child = Command::new(&python)
            .args(["-m", "llama_cpp.server", "--model"])
            .arg(&model)
            .args(["--model_alias", "nml-tiny", "--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--n_ctx", "512", "--verbose", "false"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting llama_cpp.server");
        let mut server = Self { child, url: format!("http://127.0.0.1:{port}/v1"), _dir: dir };
        let started = Instant::now();
        loop {
            if let Some(status) = server.child.try_wait().expect("wait") {
                let mut err = String::new();
                server.child.stderr.take().map(|mut e| e.read_to_string(&mut err));
                panic!("llama_cpp.server exited with {status}: {err}");
            }
            if ureq::get(&format!("{}/models", server.url)).call().is_ok() {
                return server;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "llama_cpp.server did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's own answer to a direct request.
    fn direct(&self, path: &str, body: &Value) -> Value {
        let mut response = ureq::post(&format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .send(body.to_string())
            .expect("a direct request");
        serde_json::from_str(&response.body_mut().read_to_string().expect("body")).expect("JSON")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn devnet(llm: Arc<dyn LlmBackend>) -> (Devnet, Address) {
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    let executor = Arc::new(OnnxExecutor::new(OnnxConfig { workers: 1, ..OnnxConfig::new(library) }).expect("ORT"));
    let devnet =
        Devnet::with_inference(DevnetConfig::default(), InferenceSetup { llm, ..InferenceSetup::new(executor) })
            .expect("devnet");
    let (_dir, codes) = common::build(&repo().join("tests/fixtures/llm"), false, &["Oracle"]);
    let hash = send(&devnet, None, codes.into_iter().next().expect("Oracle"));
    let oracle = devnet.wait_for_receipt(hash, Duration::from_secs(30)).and_then(|r| r.contract_address);
    (devnet, oracle.expect("deployed"))
}

fn send(devnet: &Devnet, to: Option<Address>, input: Bytes) -> B256 {
    let mut request = TransactionRequest::default()
        .from(devnet.accounts()[0])
        .input(input.into())
        .gas_limit(3_000_000)
        .max_fee_per_gas(100_000_000_000)
        .max_priority_fee_per_gas(1_000_000_000);
    if let Some(to) = to {
        request = request.to(to);
    }
    devnet.send_transaction(request).expect("sent")
}

fn view<C: SolCall>(devnet: &Devnet, oracle: Address, call: C) -> C::Return {
    let request = TransactionRequest::default().to(oracle).input(call.abi_encode().into());
    C::abi_decode_returns(&devnet.call(request, None, None).expect("call")).expect("decode")
}

fn transact(devnet: &Devnet, oracle: Address, call: impl SolCall) {
    let hash = send(devnet, Some(oracle), call.abi_encode().into());
    let receipt = devnet.wait_for_receipt(hash, Duration::from_secs(60)).expect("mined");
    assert!(receipt.success);
}

#[test]
fn a_real_openai_compatible_server_answers_asks_and_chats_through_the_mempool() {
    let server = Server::start(&server_venv());
    let backend = OpenAiBackend::new(&server.url, None, Duration::from_secs(30)).name(ANALYST, "nml-tiny");
    let (devnet, oracle) = devnet(Arc::new(LlmRouter::new(Some(Arc::new(backend)))));

    // A completion: the fixture's Analyst asks for 24 tokens at temperature 0.
    transact(&devnet, oracle, Oracle::questionCall { prompt: "Hello the world".into() });
    let direct = server.direct(
        "/completions",
        &json!({ "model": "nml-tiny", "prompt": "Hello the world", "max_tokens": 24, "temperature": 0.0 }),
    );
    let expected = direct["choices"][0]["text"].as_str().expect("text");
    assert!(!expected.is_empty());
    assert_eq!(view(&devnet, oracle, Oracle::lastCall {}), expected);

    // A chat, through the server's chat template.
    transact(&devnet, oracle, Oracle::converseCall { content: "Hi there".into() });
    let direct = server.direct(
        "/chat/completions",
        &json!({ "model": "nml-tiny", "messages": [{ "role": "user", "content": "Hi there" }], "max_tokens": 24, "temperature": 0.0 }),
    );
    let choice = &direct["choices"][0];
    assert_eq!(view(&devnet, oracle, Oracle::lastCall {}), choice["message"]["content"].as_str().expect("content"));
    assert_eq!(view(&devnet, oracle, Oracle::lastFinishCall {}), choice["finish_reason"].as_str().expect("reason"));
    assert_eq!(choice["finish_reason"], "length", "greedy decoding of this model runs to max_tokens");

    // The server's refusal, in its own words: a prompt over its 512-token context.
    let long = "word ".repeat(700);
    transact(&devnet, oracle, Oracle::tryQuestionCall { prompt: long, model: ANALYST.into() });
    let error = view(&devnet, oracle, Oracle::lastErrorCall {});
    assert!(error.contains("the server refused the request (HTTP 400)"), "{error}");
    assert!(error.contains("maximum context length is 512 tokens"), "{error}");

    // The server goes away: a transient failure, not a hang.
    drop(server);
    transact(&devnet, oracle, Oracle::tryQuestionCall { prompt: "anyone?".into(), model: ANALYST.into() });
    let error = view(&devnet, oracle, Oracle::lastErrorCall {});
    assert!(error.contains("is unavailable"), "{error}");
}
