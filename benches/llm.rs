//! LLM calls through the devnet, side by side with the bare operation:
//!
//! 1. **Overhead per call**: an `eth_call` that asks (the contract, the
//!    precompile, the request id, the router, the HTTP client, the answer
//!    back through the EVM), against a bare HTTP request to the same
//!    server (the test double of `tests/common/openai_double.rs`, no
//!    latency), each with a new prompt. nml's overhead is the difference
//!    of the medians.
//! 2. **Concurrency**: 64 distinct asks in one block (`evm_mine`) against
//!    a server with a fixed 50 ms latency, with 8 backend calls at once
//!    against 1.
//! 3. **The embedded model**: characters (tokens) per second of greedy
//!    decoding.
//!
//! `cargo bench --bench llm`; results in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, Bytes, keccak256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{SolCall, sol};
use nml_runtime::inference::{OnnxConfig, OnnxExecutor};
use nml_runtime::llm::{EmbeddedLlm, LlmBackend, LlmRouter, OpenAiBackend};
use nml_runtime::mempool::PipeConfig;
use nml_runtime::node::InferenceSetup;
use nml_runtime::{Devnet, DevnetConfig, Mining};

#[path = "../tests/common/mod.rs"]
mod common;

use common::openai_double::OpenAiDouble;

sol! {
    contract Oracle {
        function question(string prompt);
        function peek(string prompt) returns (string);
    }
}

fn main() {
    let (_dir, codes) = common::build(
        &std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llm"),
        false,
        &["Oracle"],
    );
    let code = codes.into_iter().next().expect("Oracle");
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;

    overhead(&code, &library);
    concurrency(&code, &library);
    embedded(&library);
}

fn devnet(llm: Arc<dyn LlmBackend>, concurrency: usize, mining: Mining, library: &std::path::Path) -> Devnet {
    let executor = Arc::new(OnnxExecutor::new(OnnxConfig::new(library.to_owned())).expect("ORT"));
    let setup = InferenceSetup {
        llm,
        pipe: PipeConfig { llm_concurrency: concurrency, ..PipeConfig::default() },
        ..InferenceSetup::new(executor)
    };
    Devnet::with_inference(DevnetConfig { mining, ..DevnetConfig::default() }, setup).expect("devnet")
}

fn deploy(devnet: &Devnet, code: &Bytes) -> Address {
    let hash = send(devnet, 0, None, code.clone());
    if !devnet.automine() {
        devnet.mine(None).expect("mine");
    }
    devnet.wait_for_receipt(hash, Duration::from_secs(30)).and_then(|r| r.contract_address).expect("deployed")
}

fn send(devnet: &Devnet, from: usize, to: Option<Address>, input: Bytes) -> B256 {
    let mut request = TransactionRequest::default()
        .from(devnet.accounts()[from])
        .input(input.into())
        .gas_limit(3_000_000)
        .max_fee_per_gas(100_000_000_000)
        .max_priority_fee_per_gas(1_000_000_000);
    if let Some(to) = to {
        request = request.to(to);
    }
    devnet.send_transaction(request).expect("sent")
}

fn overhead(code: &Bytes, library: &std::path::Path) {
    const N: usize = 400;
    let double = OpenAiDouble::start(Duration::ZERO);
    let backend = OpenAiBackend::new(&double.url, None, Duration::from_secs(10));
    let devnet = devnet(Arc::new(LlmRouter::new(Some(Arc::new(backend)))), 8, Mining::Auto, library);
    let oracle = deploy(&devnet, code);
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let url = format!("{}/completions", double.url);
    let bare = |i: usize| {
        let body =
            serde_json::json!({ "model": "m", "prompt": format!("bare {i}"), "max_tokens": 24, "temperature": 0.0 });
        let started = Instant::now();
        let mut response = agent.post(&url).header("content-type", "application/json").send(body.to_string()).unwrap();
        let text = response.body_mut().read_to_string().unwrap();
        let _: serde_json::Value = serde_json::from_str(&text).unwrap();
        started.elapsed()
    };
    let through_nml = |i: usize| {
        let input = Oracle::peekCall { prompt: format!("nml {i}") }.abi_encode();
        let request = TransactionRequest::default().to(oracle).input(input.into());
        let started = Instant::now();
        let out = devnet.call(request, None, None).expect("call");
        let took = started.elapsed();
        assert!(Oracle::peekCall::abi_decode_returns(&out).unwrap().starts_with("echo[m"));
        took
    };
    for i in 0..50 {
        bare(i);
        through_nml(i);
    }
    let mut bare_times = Vec::with_capacity(N);
    let mut nml_times = Vec::with_capacity(N);
    // Interleaved, so that both see the same machine.
    for i in 100..100 + N {
        bare_times.push(bare(i));
        nml_times.push(through_nml(i));
    }
    let bare = median(&mut bare_times);
    let nml = median(&mut nml_times);
    println!("## overhead per LLM call ({N} calls each, new prompt every call, server latency 0)");
    println!("bare HTTP request to the server:   median {:>8.1} µs", micros(bare));
    println!("eth_call of ask through the devnet: median {:>8.1} µs", micros(nml));
    println!("nml's overhead:                     median {:>8.1} µs", micros(nml.saturating_sub(bare)));
}

fn concurrency(code: &Bytes, library: &std::path::Path) {
    const ASKS: usize = 64;
    let double = OpenAiDouble::start(Duration::from_millis(50));
    println!("\n## {ASKS} distinct asks in one block, server latency 50 ms");
    let mut results = Vec::new();
    for concurrency in [1usize, 8] {
        let mut times = Vec::new();
        for run in 0..3 {
            let backend = OpenAiBackend::new(&double.url, None, Duration::from_secs(30));
            let llm: Arc<dyn LlmBackend> = Arc::new(LlmRouter::new(Some(Arc::new(backend))));
            let devnet = devnet(llm, concurrency, Mining::Manual, library);
            let oracle = deploy(&devnet, code);
            let hashes: Vec<B256> = (0..ASKS)
                .map(|i| {
                    let call = Oracle::questionCall { prompt: format!("c{concurrency} r{run} #{i}") };
                    send(&devnet, i % 10, Some(oracle), call.abi_encode().into())
                })
                .collect();
            let started = Instant::now();
            devnet.mine(None).expect("mine");
            times.push(started.elapsed());
            for hash in hashes {
                let receipt = devnet.wait_for_receipt(hash, Duration::from_secs(5)).expect("mined");
                assert!(receipt.success && receipt.inference.len() == 1);
            }
        }
        let m = median(&mut times);
        println!("{concurrency} backend call(s) at once: evm_mine median {:>8.1} ms", m.as_secs_f64() * 1e3);
        results.push(m);
    }
    println!("speedup 8 vs 1: {:.2}×", results[0].as_secs_f64() / results[1].as_secs_f64());
}

fn embedded(library: &std::path::Path) {
    let model = EmbeddedLlm::new(library).expect("the embedded model");
    let mut rates = Vec::new();
    let mut per_token = Vec::new();
    for i in 0..7u8 {
        let seed = keccak256([i]);
        let started = Instant::now();
        let g = model.generate("The devnet runs ", 512, 0, &[], seed).expect("generate");
        let took = started.elapsed();
        rates.push(f64::from(g.tokens) / took.as_secs_f64());
        per_token.push(took / g.tokens);
    }
    rates.sort_by(f64::total_cmp);
    println!("\n## the embedded model ({})", model.about());
    println!(
        "greedy decoding, 512 characters: median {:.0} tokens/s ({:.1} µs per token)",
        rates[3],
        micros(median(&mut per_token))
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
