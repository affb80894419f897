//! The inference mempool's speed (`cargo bench --bench mempool`), on the
//! `bench` model of runtime/tests/models (x float32[1, 64], about 2 ms of one
//! CPU core) called by `BenchClient` (tests/fixtures/inference), compiled by
//! real solc:
//!
//! - **overhead**: per inference transaction, the time of mining the block
//!   that holds it (simulation, dispatch, ABI both ways, inclusion, block
//!   sealing) beyond a bare `Session::run` of the same input, measured in
//!   pairs so that both see the same load; and what of it is neither of the
//!   transaction's two EVM passes (nml's share). A pass is measured as an
//!   `eth_call` of the transaction with its result known: warm (right after
//!   the block) and cold (right after a bare run of the model, as both of
//!   the block's passes run: the model's run leaves the caches to revm cold);
//! - **parallel speedup**: 256 pending transactions with distinct requests
//!   mined in one `evm_mine`, with N workers (default: the cores;
//!   `NML_BENCH_WORKERS`) against 1 worker, alternating rounds;
//! - **deduplication**: 256 transactions with the identical request, and how
//!   many model runs they cost.
//!
//! - **TEE mode**: the same overhead and 256-transaction block with the
//!   requests in TEE mode (each result attested with an RSA-2048 signature)
//!   against vanilla, side by side, and one bare signature.
//! - **Keccak-256**: the node's (`asm-keccak`) against the portable `sha3`,
//!   side by side, on the sizes a `BenchClient` transaction hashes;
//! - **reading a request**: a `BenchClient` request decoded and checked
//!   canonical in one pass, against alloy's decoder and a fresh encoding.
//!
//! Prints a markdown table for docs/benchmarks.md. `NML_BENCH_OVERHEAD_ONLY=1`
//! (with `NML_BENCH_OVERHEAD_TXS=N`) runs only the overhead loop, for a
//! profiler; with `NML_BENCH_PHASES=1` as well it times the node's phases
//! inside each block by its trace spans ([`phases`]); `NML_BENCH_TEE_ONLY=1` only the TEE comparison;
//! `NML_BENCH_KECCAK_ONLY=1` only the keccak one, `NML_BENCH_ABI_ONLY=1`
//! only the request reading.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, U256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{SolCall, SolValue, sol};
use nml_runtime::chain::ChainConfig;
use nml_runtime::inference::{Executor, OnnxConfig, OnnxExecutor};
use nml_runtime::node::InferenceSetup;
use nml_runtime::{Devnet, DevnetConfig, Mining};
use ort::value::Tensor;

#[path = "../tests/common/mod.rs"]
mod common;

sol! {
    function run(int128 seed);
    function setMode(uint8 m);
    function predict(int256[4] x);
}

const TXS: usize = 256;

fn main() {
    // `cargo test --benches` would run this too: only run for real.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    if std::env::var_os("NML_BENCH_KECCAK_ONLY").is_some() {
        keccak_side_by_side();
        return;
    }
    if std::env::var_os("NML_BENCH_ABI_ONLY").is_some() {
        abi_side_by_side();
        return;
    }
    let library = nml::toolchain::onnxruntime::resolve(true).unwrap_or_else(|e| panic!("{e}")).path;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = std::env::var("NML_BENCH_WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(cores);
    if std::env::var_os("NML_BENCH_LIGHT_ONLY").is_some() {
        // For profiling the per-transaction path of a light contract.
        let light = light_overhead(&library);
        println!("light: bare {:.0} µs, overhead {:.0} µs, one pass {:.0} µs", light.0, light.1, light.2);
        return;
    }
    let code = bench_client();
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/tests/models/bench.onnx");
    let executor_with = |workers: usize| {
        let config = OnnxConfig { workers, timeout: Duration::from_secs(600), ..OnnxConfig::new(&library) };
        let executor = OnnxExecutor::new(config).unwrap_or_else(|e| panic!("{e}"));
        let id = executor.registry().register_file(&model, None).unwrap_or_else(|e| panic!("{e}")).id;
        executor.registry().warm_up(&id, workers).unwrap_or_else(|e| panic!("{e}"));
        (Arc::new(executor), id.to_string())
    };
    if std::env::var_os("NML_BENCH_PHASES").is_some() {
        phases::install();
    }
    let (one, id) = executor_with(1);
    let (many, _) = executor_with(workers);
    if std::env::var_os("NML_BENCH_TEE_ONLY").is_some() {
        tee_against_vanilla(&one, &many, &code, &id, workers);
        return;
    }

    // Overhead: one transaction per block, paired with a bare run of its input.
    let mut session = one.registry().new_session(&id.parse().unwrap()).unwrap_or_else(|e| panic!("{e}"));
    let (devnet, client) = chain(&one, &code, &id, Mining::Manual);
    let Samples { mut bare, mut block, overhead, mut evm, mut evm_cold, receipt_len } =
        overhead_samples(&devnet, client, &mut session, |seed| {
            let x: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0 + seed as f32) / 100.0).collect();
            (runCall { seed }.abi_encode(), [1, 64], x)
        });
    drop(devnet);
    if std::env::var_os("NML_BENCH_OVERHEAD_ONLY").is_some() {
        // For profiling the per-transaction path (`perf record`).
        let mut sorted = overhead.clone();
        sorted.sort_by(f64::total_cmp);
        let (overhead_us, pass_us) = (sorted[sorted.len() / 2] * 1e6, median(&mut evm).as_secs_f64() * 1e6);
        let cold_us = median(&mut evm_cold).as_secs_f64() * 1e6;
        println!(
            "bare run {:.0} µs, overhead median {overhead_us:.0} µs, one EVM pass warm / cold {pass_us:.0} / {cold_us:.0} µs, \
             nml's share {:.0} / {:.0} µs, of which the protocol's keccak alone {:.0} µs (receipt {receipt_len} B)",
            median(&mut bare).as_secs_f64() * 1e6,
            overhead_us - 2.0 * pass_us,
            overhead_us - 2.0 * cold_us,
            protocol_keccak_us(receipt_len)
        );
        phases::print();
        return;
    }

    // Parallel speedup: a fresh chain per round, so no result is known yet.
    let round = |executor: &Arc<OnnxExecutor>| {
        let (devnet, client) = chain(executor, &code, &id, Mining::Manual);
        let runs_before = devnet.mempool_status().unwrap().pipe.inferences_run;
        for i in 0..TXS {
            send(&devnet, client, i % 10, runCall { seed: 1000 + i as i128 }.abi_encode());
        }
        let started = Instant::now();
        let mined = devnet.mine(None).unwrap_or_else(|e| panic!("{e}"));
        let elapsed = started.elapsed();
        assert_eq!(mined.transactions.len(), TXS);
        assert!(mined.receipts.iter().all(|r| r.success));
        assert_eq!(devnet.mempool_status().unwrap().pipe.inferences_run - runs_before, TXS as u64);
        elapsed
    };
    let (mut serial, mut parallel) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        serial.push(round(&one));
        parallel.push(round(&many));
    }

    // 256 identical requests.
    let (devnet, client) = chain(&many, &code, &id, Mining::Manual);
    for i in 0..TXS {
        send(&devnet, client, i % 10, runCall { seed: 7 }.abi_encode());
    }
    let mined = devnet.mine(None).unwrap_or_else(|e| panic!("{e}"));
    assert!(mined.receipts.iter().all(|r| r.success));
    let identical_runs = devnet.mempool_status().unwrap().pipe.inferences_run;

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (serial_ms, parallel_ms) = (ms(median(&mut serial)), ms(median(&mut parallel)));
    let speedup = serial_ms / parallel_ms;
    let light = light_overhead(&library);
    let mut overhead_sorted = overhead.clone();
    overhead_sorted.sort_by(f64::total_cmp);
    println!("| measurement | value |");
    println!("| --- | --- |");
    println!("| bare `session.run`, median | {:.3} ms |", ms(median(&mut bare)));
    println!("| block of one inference transaction, median | {:.3} ms |", ms(median(&mut block)));
    let pass_us = median(&mut evm).as_secs_f64() * 1e6;
    let cold_us = median(&mut evm_cold).as_secs_f64() * 1e6;
    println!(
        "| one EVM execution of the transaction (`eth_call`, result known), warm / cold (after a model run), medians | {pass_us:.0} µs / {cold_us:.0} µs |"
    );
    println!(
        "| overhead per inference transaction (paired), median (p90) | {:.0} µs ({:.0} µs) |",
        overhead_sorted[overhead_sorted.len() / 2] * 1e6,
        overhead_sorted[overhead_sorted.len() * 9 / 10] * 1e6
    );
    let overhead_median = overhead_sorted[overhead_sorted.len() / 2] * 1e6;
    println!(
        "| of the overhead: 2 EVM passes / the rest (ABI, dispatch, records, block) | {:.0} µs / {:.0} µs |",
        2.0 * pass_us,
        overhead_median - 2.0 * pass_us
    );
    println!(
        "| of the overhead: 2 cold EVM passes / the rest (nml's share against cold passes) | {:.0} µs / {:.0} µs |",
        2.0 * cold_us,
        overhead_median - 2.0 * cold_us
    );
    println!(
        "| of nml's share: the keccak the protocol asks for alone (the request id over {} B, the receipts root over a {receipt_len} B receipt) | {:.0} µs |",
        bench_request().abi_encode().len(),
        protocol_keccak_us(receipt_len)
    );
    println!("| {TXS} transactions, 1 worker, median of 5 | {serial_ms:.1} ms |");
    println!("| {TXS} transactions, {workers} workers, median of 5 | {parallel_ms:.1} ms |");
    println!("| speedup ({workers} workers vs 1) | {speedup:.2}× ({:.2} × N) |", speedup / workers as f64);
    println!("| model runs for {TXS} identical requests | {identical_runs} |");
    println!(
        "| light contract (`Predictor`, 4 inputs, `mlp`): bare run / overhead / one EVM pass, medians | {:.0} µs / {:.0} µs / {:.0} µs |",
        light.0, light.1, light.2
    );
    tee_against_vanilla(&one, &many, &code, &id, workers);
    keccak_side_by_side();
    abi_side_by_side();
}

/// Reading a `BenchClient` request the first time the precompile meets it,
/// to learn the request and whether its arguments are the canonical
/// encoding its id hashes: the general way (alloy's decoder, then the
/// request encoded again and compared) against the node's one pass
/// (`canonical::model_request`), side by side. Alternating rounds, the
/// median of 7 round means each.
fn abi_side_by_side() {
    use nml_runtime::inference::{ModelInferenceRequest, canonical};
    const READS: u32 = 2_000;
    let args = bench_request().abi_encode();
    let general = || {
        let (decoded,) = <(ModelInferenceRequest,)>::abi_decode_params(std::hint::black_box(&args)).expect("decodes");
        decoded.abi_encode() == args
    };
    let one_pass = || canonical::model_request(std::hint::black_box(&args)).is_some();
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        a.push(mean_of(READS, &|| assert!(general())));
        b.push(mean_of(READS, &|| assert!(one_pass())));
    }
    let (a, b) = (median(&mut a).as_secs_f64() * 1e6, median(&mut b).as_secs_f64() * 1e6);
    println!("| reading a `BenchClient` request ({} B) and checking it is canonical | µs |", args.len());
    println!("| --- | --- |");
    println!("| decode, encode again and compare (alloy) | {a:.2} |");
    println!("| one pass (`canonical::model_request`) | {b:.2} ({:.1}× faster) |", a / b);
}

/// Keccak-256 as the node computes it (`alloy_primitives::keccak256`, with
/// `asm-keccak`: CRYPTOGAMS' assembly) against the portable Rust one it used
/// before (`sha3`), on what a `BenchClient` transaction hashes: its request
/// (the id; a record's input hash, when read, is over about as much) and its
/// receipt with the served event (the size the overhead loop measures).
/// Alternating rounds, the median of 7 round means each.
fn keccak_side_by_side() {
    use sha3::Digest;
    const HASHES: u32 = 2_000;
    println!("| Keccak-256 of | portable (`sha3`) | `asm-keccak` | ratio |");
    println!("| --- | --- | --- | --- |");
    for (what, size) in [("one rate block", 136), ("a `BenchClient` request", 4_768), ("its receipt", 6_348)] {
        let data = vec![0x5au8; size];
        let (mut portable, mut asm) = (Vec::new(), Vec::new());
        for _ in 0..7 {
            portable.push(mean_of(HASHES, &|| {
                std::hint::black_box(sha3::Keccak256::digest(std::hint::black_box(&data)));
            }));
            asm.push(mean_of(HASHES, &|| {
                std::hint::black_box(alloy_primitives::keccak256(std::hint::black_box(&data)));
            }));
        }
        let (portable, asm) = (median(&mut portable).as_secs_f64() * 1e6, median(&mut asm).as_secs_f64() * 1e6);
        println!("| {what}, {size} B | {portable:.2} µs | {asm:.2} µs | {:.2}× |", portable / asm);
    }
}

/// A request as `BenchClient` makes it (the values vary with the seed, the
/// size does not), under a CIDv0 of the model hub's length.
fn bench_request() -> nml_runtime::inference::ModelInferenceRequest {
    use nml_runtime::inference::abi::{MultiDimensionalNumberTensor, Number};
    use nml_runtime::inference::{ModelInferenceRequest, ModelInput};
    let values = (0..64).map(|i| Number { value: i - 31, decimals: 2 }).collect();
    let x = MultiDimensionalNumberTensor { name: "x".into(), values, shape: vec![1, 64] };
    ModelInferenceRequest {
        mode: 0,
        modelCID: "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51".into(),
        input: ModelInput { numbers: vec![x], strings: vec![] },
    }
}

/// The keccak the protocol asks of every `BenchClient` transaction, timed
/// alone in µs (the median of 7 means of 2,000): its request id (the
/// request's encoding, hashed the first time the precompile meets it) and
/// its block's receipts root (one receipt of `receipt_len` bytes, which
/// carries the served event: the request and the answer). A floor under
/// nml's share that no code of its own can go below on this machine.
fn protocol_keccak_us(receipt_len: usize) -> f64 {
    const HASHES: u32 = 2_000;
    let (request, receipt) = (bench_request().abi_encode(), vec![0x5au8; receipt_len]);
    let both = || {
        std::hint::black_box(alloy_primitives::keccak256(std::hint::black_box(&request)));
        std::hint::black_box(alloy_primitives::keccak256(std::hint::black_box(&receipt)));
    };
    let mut means: Vec<Duration> = (0..7).map(|_| mean_of(HASHES, &both)).collect();
    median(&mut means).as_secs_f64() * 1e6
}

/// TEE mode against vanilla, each measured in the same run: the overhead
/// per transaction, a block of 256 distinct requests with `workers`
/// workers (alternating rounds, median of 5), and one bare RSA-PSS signature.
fn tee_against_vanilla(one: &Arc<OnnxExecutor>, many: &Arc<OnnxExecutor>, code: &Bytes, id: &str, workers: usize) {
    const TEE: u8 = 2;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let overhead = |mode: u8| {
        let mut session = one.registry().new_session(&id.parse().unwrap()).unwrap_or_else(|e| panic!("{e}"));
        let (devnet, client) = chain(one, code, id, Mining::Manual);
        set_mode(&devnet, client, mode);
        let samples = overhead_samples(&devnet, client, &mut session, |seed| {
            let x: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0 + seed as f32) / 100.0).collect();
            (runCall { seed }.abi_encode(), [1, 64], x)
        });
        let mut sorted = samples.overhead;
        sorted.sort_by(f64::total_cmp);
        sorted[sorted.len() / 2] * 1e6
    };
    let (vanilla_us, tee_us) = (overhead(0), overhead(TEE));
    let block = |mode: u8| {
        let (devnet, client) = chain(many, code, id, Mining::Manual);
        set_mode(&devnet, client, mode);
        for i in 0..TXS {
            send(&devnet, client, i % 10, runCall { seed: 5000 + i as i128 }.abi_encode());
        }
        let started = Instant::now();
        let mined = devnet.mine(None).unwrap_or_else(|e| panic!("{e}"));
        let elapsed = started.elapsed();
        assert_eq!(mined.transactions.len(), TXS);
        let attested = mined.receipts.iter().filter(|r| r.inference.iter().all(|c| c.attestation.is_some())).count();
        assert_eq!(attested, if mode == TEE { TXS } else { 0 });
        elapsed
    };
    let (mut vanilla, mut tee) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        vanilla.push(block(0));
        tee.push(block(TEE));
    }
    let enclave = nml_runtime::tee::Enclave::from_seed(0, 0).unwrap_or_else(|e| panic!("{e}"));
    let mut signs: Vec<Duration> = (0..200u32)
        .map(|i| {
            let started = Instant::now();
            std::hint::black_box(enclave.sign(&i.to_be_bytes()).unwrap_or_else(|e| panic!("{e}")));
            started.elapsed()
        })
        .collect();
    let (vanilla_ms, tee_ms) = (ms(median(&mut vanilla)), ms(median(&mut tee)));
    println!("| TEE mode against vanilla | value |");
    println!("| --- | --- |");
    println!("| one RSA-2048 PSS signature, median | {:.0} µs |", median(&mut signs).as_secs_f64() * 1e6);
    println!("| overhead per transaction, vanilla / TEE, medians | {vanilla_us:.0} µs / {tee_us:.0} µs |");
    println!("| **added cost per TEE inference** | **{:.0} µs** |", tee_us - vanilla_us);
    println!(
        "| {TXS} transactions, {workers} workers, vanilla / TEE, median of 5 | {vanilla_ms:.1} ms / {tee_ms:.1} ms |"
    );
    println!("| **TEE block against vanilla** | **{:+.1}%** |", (tee_ms / vanilla_ms - 1.0) * 100.0);
    on_chain_check_gas(one, code, id);
}

/// The gas of the on-chain checks a contract makes across the trust gap,
/// each as `eth_estimateGas` of a call (so including the 21,000 of a
/// transaction and its calldata): the verifier precompile on a real
/// attestation, and the relay's individual and batch checks (a proof of
/// depth 5, as for a full batch of 20).
fn on_chain_check_gas(executor: &Arc<OnnxExecutor>, code: &Bytes, id: &str) {
    use nml_runtime::predeploys::{ISettlementRelay, SETTLEMENT_RELAY};
    use nml_runtime::settlement::batch_leaf;
    use nml_runtime::settlement::merkle::MerkleTree;
    use nml_runtime::tee::verifier::ITEEVerifier;
    use nml_runtime::tee::{TEE_VERIFIER, message_hash};

    let (devnet, client) = chain(executor, code, id, Mining::Manual);
    set_mode(&devnet, client, 2);
    send(&devnet, client, 0, runCall { seed: 9 }.abi_encode());
    let block = devnet.mine(None).unwrap_or_else(|e| panic!("{e}"));
    let attestation = block.receipts[0].inference[0].attestation.clone().expect("attested");
    let key = devnet.tees().unwrap_or_else(|e| panic!("{e}"))[0].public_key.clone();
    let gas = |to: Address, data: Vec<u8>| {
        let request = TransactionRequest::default().to(to).input(data.into());
        devnet.estimate_gas(request, None, None).unwrap_or_else(|e| panic!("{e}"))
    };
    let message = message_hash(attestation.input_hash, attestation.output_hash, attestation.timestamp);
    let verify = ITEEVerifier::verifyRSAPSSCall {
        publicKeyDER: key,
        messageHash: message,
        signature: attestation.signature.clone(),
    };
    let a = &attestation;
    let individual = ISettlementRelay::isSettledCall {
        teeId: a.tee_id,
        inputHash: a.input_hash,
        outputHash: a.output_hash,
        timestamp: U256::from(a.timestamp),
    };
    let mut leaves: Vec<_> = (0..19u8).map(|i| nml_runtime::settlement::merkle::leaf(&[i])).collect();
    leaves.push(batch_leaf(a));
    let tree = MerkleTree::new(&leaves).expect("a tree");
    let proof = tree.proof(batch_leaf(a)).expect("in the tree");
    let batch = ISettlementRelay::isSettledInBatchCall { proof: proof.clone(), root: tree.root(), leaf: batch_leaf(a) };
    println!("| on-chain check (`eth_estimateGas`, incl. 21,000 and calldata) | gas |");
    println!("| --- | --- |");
    println!(
        "| `verifyRSAPSS` at 0x…0900 on a real attestation (20,000 in the precompile) | {} |",
        gas(TEE_VERIFIER, verify.abi_encode())
    );
    println!("| relay `isSettled` (individual record) | {} |", gas(SETTLEMENT_RELAY, individual.abi_encode()));
    println!(
        "| relay `isSettledInBatch`, proof of depth {} (a batch of 20) | {} |",
        proof.len(),
        gas(SETTLEMENT_RELAY, batch.abi_encode())
    );
}

/// Sets the mode of `BenchClient`'s requests (0 vanilla, 2 TEE).
fn set_mode(devnet: &Devnet, client: Address, mode: u8) {
    send(devnet, client, 0, setModeCall { m: mode }.abi_encode());
    devnet.mine(None).unwrap_or_else(|e| panic!("{e}"));
}

/// The overhead with a light contract: the tests' `Predictor` (4 inputs) on
/// the `mlp` model. Medians in µs of the bare run, the overhead and one EVM pass.
fn light_overhead(library: &Path) -> (f64, f64, f64) {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inference");
    let code = common::build(&fixtures, false, &["Predictor"]).1.remove(0);
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("runtime/tests/models/mlp.onnx");
    let config = OnnxConfig { workers: 1, timeout: Duration::from_secs(600), ..OnnxConfig::new(library) };
    let executor = Arc::new(OnnxExecutor::new(config).unwrap_or_else(|e| panic!("{e}")));
    let id = executor.registry().register_file(&model, None).unwrap_or_else(|e| panic!("{e}")).id;
    let mut session = executor.registry().new_session(&id).unwrap_or_else(|e| panic!("{e}"));
    let (devnet, client) = chain(&executor, &code, id.as_str(), Mining::Manual);
    let samples = overhead_samples(&devnet, client, &mut session, |seed| {
        let x = [seed, 2, 3, 4].map(|v: i128| alloy_primitives::I256::try_from(v).unwrap_or_default());
        (predictCall { x }.abi_encode(), [1, 4], vec![seed as f32, 2.0, 3.0, 4.0])
    });
    let micros = |mut v: Vec<Duration>| median(&mut v).as_secs_f64() * 1e6;
    let mut overhead = samples.overhead;
    overhead.sort_by(f64::total_cmp);
    (micros(samples.bare), overhead[overhead.len() / 2] * 1e6, micros(samples.evm))
}

/// Per-transaction timings of the overhead loop (warm-up left out).
struct Samples {
    /// Bare `session.run` of the transaction's input.
    bare: Vec<Duration>,
    /// `evm_mine` of the block holding the transaction.
    block: Vec<Duration>,
    /// `block − bare`, in seconds.
    overhead: Vec<f64>,
    /// One EVM execution of the same call with its result known (`eth_call`),
    /// right after the block.
    evm: Vec<Duration>,
    /// The same, right after a bare run of the model (as both passes of a
    /// block run: round 1 after the bare run, round 2 after the block's own
    /// run), with the caches the model's run left.
    evm_cold: Vec<Duration>,
    /// The size of the last block's receipt (EIP-2718 encoding): what its
    /// receipts root hashes.
    receipt_len: usize,
}

/// One inference transaction per block, `NML_BENCH_OVERHEAD_TXS` times
/// (default 320): `case(seed)` gives its calldata and the model input it
/// leads to (shape and values), run bare in pairs with the block.
fn overhead_samples(
    devnet: &Devnet,
    client: Address,
    session: &mut ort::session::Session,
    case: impl Fn(i128) -> (Vec<u8>, [usize; 2], Vec<f32>),
) -> Samples {
    let txs: i128 = std::env::var("NML_BENCH_OVERHEAD_TXS").ok().and_then(|n| n.parse().ok()).unwrap_or(320);
    let mut samples = Samples {
        bare: Vec::new(),
        block: Vec::new(),
        overhead: Vec::new(),
        evm: Vec::new(),
        evm_cold: Vec::new(),
        receipt_len: 0,
    };
    for seed in 1..=txs {
        let (input, shape, x) = case(seed);
        send(devnet, client, 0, input.clone());
        let value = Tensor::from_array((shape, x)).unwrap_or_else(|e| panic!("{e}"));
        let started = Instant::now();
        let outputs = session.run(ort::inputs!["x" => &value]).unwrap_or_else(|e| panic!("{e}"));
        std::hint::black_box(outputs.len());
        drop(outputs);
        let raw = started.elapsed();
        let started = Instant::now();
        let mined = phases::timed(|| devnet.mine(None)).unwrap_or_else(|e| panic!("{e}"));
        let full = started.elapsed();
        assert!(mined.receipts.iter().all(|r| r.success && r.inference.len() == 1));
        let tx_type = mined.transactions[0].envelope.tx_type();
        samples.receipt_len = mined.receipts[0].envelope(tx_type).encoded_2718().len();
        // One EVM execution of the same call, its result now known: what each
        // of the two passes (two simulation rounds, the second standing as the
        // inclusion of the block's first transaction) costs in revm.
        let call = TransactionRequest::default().to(client).input(input.into());
        let started = Instant::now();
        devnet.call(call, None, None).unwrap_or_else(|e| panic!("{e}"));
        let one_pass = started.elapsed();
        if seed > 20 {
            samples.bare.push(raw);
            samples.block.push(full);
            samples.overhead.push(full.as_secs_f64() - raw.as_secs_f64());
            samples.evm.push(one_pass);
        }
    }
    // Cold passes, apart so as not to disturb the pairs above: each call
    // (its result known now) right after a bare run of the model.
    for seed in (1..=txs).rev().take(200) {
        let (input, shape, x) = case(seed);
        let value = Tensor::from_array((shape, x)).unwrap_or_else(|e| panic!("{e}"));
        drop(session.run(ort::inputs!["x" => &value]).unwrap_or_else(|e| panic!("{e}")));
        let call = TransactionRequest::default().to(client).input(input.into());
        let started = Instant::now();
        devnet.call(call, None, None).unwrap_or_else(|e| panic!("{e}"));
        samples.evm_cold.push(started.elapsed());
    }
    samples
}

/// The mean time of `calls` calls of `f`.
fn mean_of(calls: u32, f: &dyn Fn()) -> Duration {
    let started = Instant::now();
    for _ in 0..calls {
        f();
    }
    started.elapsed() / calls
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// A devnet with inference on `executor` and a deployed `BenchClient`.
fn chain(executor: &Arc<OnnxExecutor>, code: &Bytes, id: &str, mining: Mining) -> (Devnet, Address) {
    let config = DevnetConfig {
        chain: ChainConfig { gas_limit: 300_000_000, ..ChainConfig::default() },
        mining,
        state_file: None,
        fork: None,
    };
    let setup = InferenceSetup::new(Arc::clone(executor) as Arc<dyn Executor>);
    let devnet = Devnet::with_inference(config, setup).unwrap_or_else(|e| panic!("{e}"));
    let mut deploy = code.to_vec();
    deploy.extend_from_slice(&(id.to_owned(),).abi_encode_params());
    let from = devnet.accounts()[0];
    let request = TransactionRequest::default().from(from).input(deploy.into()).gas_limit(5_000_000);
    let hash = devnet.send_transaction(request).unwrap_or_else(|e| panic!("{e}"));
    devnet.mine(None).unwrap_or_else(|e| panic!("{e}"));
    let client = devnet.receipt_record(hash).and_then(|r| r.contract_address).expect("deployed");
    (devnet, client)
}

fn send(devnet: &Devnet, client: Address, from: usize, input: Vec<u8>) {
    let request = TransactionRequest::default()
        .from(devnet.accounts()[from])
        .to(client)
        .input(input.into())
        .gas_limit(400_000)
        .value(U256::ZERO);
    devnet.send_transaction(request).unwrap_or_else(|e| panic!("{e}"));
}

/// Builds the fixture project and returns `BenchClient`'s creation code.
fn bench_client() -> Bytes {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/inference");
    common::build(&fixtures, false, &["BenchClient"]).1.remove(0)
}

/// The node's phases inside the overhead loop's blocks, timed by the trace
/// spans the runtime opens (`block`, `prepare`, `simulate`, `precompile`,
/// `dispatch`, `executor`, `session_run`, `append`, `state`, `roots`,
/// `seal`): a subscriber that adds up each span's time by name while a
/// block is being mined. The spans cost nothing measurable when nobody
/// listens (the devnet never installs a subscriber); here each costs about
/// a microsecond of bookkeeping, so compare phases within a run, not with
/// the overhead of a run without them.
mod phases {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::{Mutex, OnceLock};
    use std::time::{Duration, Instant};

    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Metadata, Subscriber};

    static TIMER: OnceLock<&'static Timer> = OnceLock::new();

    #[derive(Default)]
    struct Timer {
        on: AtomicBool,
        next: AtomicU64,
        blocks: AtomicU64,
        spans: Mutex<Spans>,
    }

    #[derive(Default)]
    struct Spans {
        names: HashMap<u64, &'static str>,
        entered: HashMap<u64, Instant>,
        totals: HashMap<&'static str, (Duration, u64)>,
    }

    struct Listener(&'static Timer);

    impl Subscriber for Listener {
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            metadata.is_span()
        }
        fn new_span(&self, span: &Attributes<'_>) -> Id {
            let id = self.0.next.fetch_add(1, Ordering::Relaxed) + 1;
            self.0.spans.lock().unwrap().names.insert(id, span.metadata().name());
            Id::from_u64(id)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, _: &Event<'_>) {}
        fn enter(&self, span: &Id) {
            self.0.spans.lock().unwrap().entered.insert(span.into_u64(), Instant::now());
        }
        fn exit(&self, span: &Id) {
            let now = Instant::now();
            let mut spans = self.0.spans.lock().unwrap();
            let Some(started) = spans.entered.remove(&span.into_u64()) else { return };
            if !self.0.on.load(Ordering::Relaxed) {
                return;
            }
            let Some(&name) = spans.names.get(&span.into_u64()) else { return };
            let total = spans.totals.entry(name).or_default();
            total.0 += now - started;
            total.1 += 1;
        }
        fn try_close(&self, span: Id) -> bool {
            self.0.spans.lock().unwrap().names.remove(&span.into_u64());
            true
        }
    }

    /// Listens to the node's spans from now on.
    pub(crate) fn install() {
        let timer: &'static Timer = Box::leak(Box::default());
        if tracing::subscriber::set_global_default(Listener(timer)).is_ok() {
            let _ = TIMER.set(timer);
        }
    }

    /// `mine()`, with its spans added up when listening.
    pub(crate) fn timed<T>(mine: impl FnOnce() -> T) -> T {
        let Some(timer) = TIMER.get() else { return mine() };
        timer.on.store(true, Ordering::Relaxed);
        let mined = mine();
        timer.on.store(false, Ordering::Relaxed);
        timer.blocks.fetch_add(1, Ordering::Relaxed);
        mined
    }

    /// Each phase's time per block (the mean over the blocks timed), and
    /// what of the block is neither the model's run nor revm's: nml's share
    /// in situ.
    pub(crate) fn print() {
        let Some(timer) = TIMER.get() else { return };
        let blocks = timer.blocks.load(Ordering::Relaxed).max(1) as f64;
        let spans = timer.spans.lock().unwrap();
        let per_block = |name: &str| spans.totals.get(name).map_or(0.0, |t| t.0.as_secs_f64() * 1e6 / blocks);
        let mut rows: Vec<_> = spans.totals.iter().collect();
        rows.sort_by_key(|(_, (total, _))| std::cmp::Reverse(*total));
        println!("| phase (trace span) | µs per block | spans per block |");
        println!("| --- | --- | --- |");
        for (name, (_, count)) in rows {
            println!("| `{name}` | {:.1} | {:.1} |", per_block(name), *count as f64 / blocks);
        }
        // The simulations are revm running the transaction, with the
        // precompile's own work inside them.
        let evm = per_block("simulate") - per_block("precompile");
        println!(
            "| nml's share in situ: `block` − `session_run` − (`simulate` − `precompile`) | {:.1} |  |",
            per_block("block") - per_block("session_run") - evm
        );
    }
}
