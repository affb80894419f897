//! Inference benchmarks (not run by the tests): `cargo bench -p nml-runtime --bench inference`.
//!
//! On `tests/models/bench.onnx` (about 2 ms of CPU per run):
//! - the latency of a bare `Session::run` (one intra-op thread, the
//!   executor's session settings), with the input tensor built once;
//! - the latency of `OnnxExecutor::run` on one request, and what it adds
//!   (TensorLib conversion both ways, queueing, the worker hand-off),
//!   measured in pairs with the bare run so that both see the same load;
//! - the executor's throughput on 256 requests with 1 worker and with N
//!   workers (default: the machine's cores; `NML_BENCH_WORKERS=N` to change),
//!   in alternating rounds.
//!
//! Prints a markdown table for `docs/benchmarks.md`.

use std::path::Path;
use std::time::{Duration, Instant};

use nml_runtime::inference::abi::{MultiDimensionalNumberTensor, Number};
use nml_runtime::inference::{Executor, ModelId, ModelInput, OnnxConfig, OnnxExecutor};
use ort::value::Tensor;

const REQUESTS: usize = 256;

fn main() {
    let library = nml::toolchain::onnxruntime::resolve(true).unwrap_or_else(|e| panic!("{e}"));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let workers = std::env::var("NML_BENCH_WORKERS").ok().and_then(|w| w.parse().ok()).unwrap_or(cores);
    let model_file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models/bench.onnx");

    let executor_with = |workers: usize| {
        let executor = OnnxExecutor::new(OnnxConfig {
            workers,
            timeout: Duration::from_secs(600),
            ..OnnxConfig::new(&library.path)
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let id = executor.registry().register_file(&model_file, None).unwrap_or_else(|e| panic!("{e}")).id;
        executor.registry().warm_up(&id, workers).unwrap_or_else(|e| panic!("{e}"));
        (executor, id)
    };
    let inputs: Vec<ModelInput> = (0..REQUESTS).map(input).collect();

    // A bare session.run (input built once) and the executor on one request,
    // interleaved so that both see the same machine load.
    let (single, id) = executor_with(1);
    let mut session = single.registry().new_session(&id).unwrap_or_else(|e| panic!("{e}"));
    let x: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) / 100.0).collect();
    let value = Tensor::from_array(([1usize, 64], x)).unwrap_or_else(|e| panic!("{e}"));
    let (mut raw, mut through_executor, mut overhead) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..520 {
        let started = Instant::now();
        let outputs = session.run(ort::inputs!["x" => &value]).unwrap_or_else(|e| panic!("{e}"));
        std::hint::black_box(outputs.len());
        drop(outputs);
        let bare = started.elapsed();
        let started = Instant::now();
        std::hint::black_box(single.run(&id, &inputs[i % REQUESTS]).unwrap_or_else(|e| panic!("{e}")));
        let full = started.elapsed();
        if i >= 20 {
            raw.push(bare);
            through_executor.push(full);
            overhead.push(full.as_secs_f64() - bare.as_secs_f64());
        }
    }

    // Throughput: all requests at once, 1 worker vs N, alternating rounds.
    let (many, many_id) = executor_with(workers);
    let throughput = |executor: &OnnxExecutor, id: &ModelId| {
        let requests: Vec<(&ModelId, &ModelInput)> = inputs.iter().map(|i| (id, i)).collect();
        let started = Instant::now();
        let results = executor.run_all(&requests);
        let elapsed = started.elapsed();
        assert!(results.iter().all(Result::is_ok));
        REQUESTS as f64 / elapsed.as_secs_f64()
    };
    let (mut one, mut n) = (Vec::new(), Vec::new());
    for _ in 0..7 {
        one.push(throughput(&single, &id));
        n.push(throughput(&many, &many_id));
    }
    let (one, n) = (median_f64(&mut one), median_f64(&mut n));

    let (raw, through_executor) = (percentiles(&mut raw), percentiles(&mut through_executor));
    println!("| measurement | value |");
    println!("| --- | --- |");
    println!("| bare `session.run`, median (p90) | {} ({}) |", ms(raw.0), ms(raw.1));
    println!(
        "| `OnnxExecutor::run`, one request, median (p90) | {} ({}) |",
        ms(through_executor.0),
        ms(through_executor.1)
    );
    println!("| executor overhead over the bare run (paired), median | {:.0} µs |", median_f64(&mut overhead) * 1e6);
    println!("| throughput, {REQUESTS} requests, 1 worker, median of 7 | {one:.0} req/s |");
    println!("| throughput, {REQUESTS} requests, {workers} workers, median of 7 | {n:.0} req/s |");
    println!("| speedup ({workers} workers vs 1) | {:.2}× ({:.2} × N) |", n / one, n / one / workers as f64);
}

/// A distinct request per index, as distinct transactions would send.
fn input(i: usize) -> ModelInput {
    let values = (0..64).map(|j| Number { value: ((i * 7 + j) % 64) as i128 - 32, decimals: 2 }).collect();
    ModelInput {
        numbers: vec![MultiDimensionalNumberTensor { name: "x".into(), values, shape: vec![1, 64] }],
        strings: vec![],
    }
}

/// Median and 90th percentile.
fn percentiles(times: &mut [Duration]) -> (Duration, Duration) {
    times.sort();
    (times[times.len() / 2], times[times.len() * 9 / 10])
}

fn median_f64(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}
