//! Models on a serving engine against the same model embedded:
//!
//! 1. **Latency and throughput**: the `mlp` test model run one request at a
//!    time, embedded (ONNX Runtime in-process) and on KServe's Python model
//!    server (`tests/common/kserve.rs`, onnxruntime behind the Open Inference
//!    Protocol), each request with a new input; medians, requests per second
//!    and the ratio.
//! 2. **Concurrency**: 32 distinct requests in one round (`run_all_timed`,
//!    as a dispatch round sends them) with 1 request in flight per server
//!    against 8, on a server whose runs take 50 ms (a stand-in for a model
//!    on a busy GPU), and on the bare `mlp`.
//!
//! `cargo bench --bench remote`; results in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nml_runtime::inference::abi::{MultiDimensionalNumberTensor, Number};
use nml_runtime::inference::{Executor, ModelId, ModelInput, OnnxConfig, OnnxExecutor, RemoteExecutor};

#[path = "../tests/common/mod.rs"]
mod common;

use common::kserve::KServe;

fn input(i: usize) -> ModelInput {
    let values = (0..4).map(|k| Number { value: (i * 4 + k) as i128 % 97, decimals: 1 }).collect();
    ModelInput {
        numbers: vec![MultiDimensionalNumberTensor { name: "x".into(), values, shape: vec![1, 4] }],
        strings: vec![],
    }
}

fn main() {
    let mlp = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("runtime/tests/models/mlp.onnx");
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    let onnx = Arc::new(OnnxExecutor::new(OnnxConfig::new(library)).expect("ORT"));
    let id = onnx.registry().register_file(&mlp, None).expect("mlp").id;

    let server = KServe::start(&[mlp.as_path()], Duration::ZERO);
    let remote = executor(&onnx, &server, &id, 8);
    latency(&onnx, &remote, &id);
    drop(server);

    println!("\n## 32 distinct requests in one round");
    for delay in [Duration::from_millis(50), Duration::ZERO] {
        let server = KServe::start(&[mlp.as_path()], delay);
        let mut times = Vec::new();
        for concurrency in [1, 8] {
            let remote = executor(&onnx, &server, &id, concurrency);
            let mut runs = Vec::new();
            for round in 0..3 {
                let inputs: Vec<ModelInput> = (0..32).map(|i| input(1000 * (round + 1) + i)).collect();
                let requests: Vec<(&ModelId, &ModelInput)> = inputs.iter().map(|x| (&id, x)).collect();
                let started = Instant::now();
                let results = remote.run_all_timed(&requests);
                runs.push(started.elapsed());
                assert!(results.iter().all(|r| r.output.is_ok()));
            }
            let m = median(&mut runs);
            println!("runs of {delay:?}, {concurrency} in flight: median {:>8.1} ms", m.as_secs_f64() * 1e3);
            times.push(m);
        }
        println!("speedup 8 vs 1: {:.2}×", times[0].as_secs_f64() / times[1].as_secs_f64());
    }
}

fn executor(onnx: &Arc<OnnxExecutor>, server: &KServe, id: &ModelId, concurrency: usize) -> RemoteExecutor {
    let remote = RemoteExecutor::new(Arc::clone(onnx) as Arc<dyn Executor>, Duration::from_secs(30), concurrency);
    remote.route(id.clone(), server.model("mlp").parse().expect("endpoint"));
    remote
}

fn latency(onnx: &OnnxExecutor, remote: &RemoteExecutor, id: &ModelId) {
    const N: usize = 300;
    for i in 0..30 {
        onnx.run(id, &input(i)).unwrap();
        remote.run(id, &input(i)).unwrap();
    }
    let (mut embedded, mut served) = (Vec::with_capacity(N), Vec::with_capacity(N));
    for i in 100..100 + N {
        let x = input(i);
        let started = Instant::now();
        let a = onnx.run(id, &x).unwrap();
        embedded.push(started.elapsed());
        let started = Instant::now();
        let b = remote.run(id, &x).unwrap();
        served.push(started.elapsed());
        assert_eq!(a, b);
    }
    let (e, s) = (median(&mut embedded), median(&mut served));
    println!("## mlp, one request at a time ({N} each, interleaved)");
    println!(
        "embedded (ONNX Runtime in-process): median {:>8.1} µs ({:>6.0} requests/s)",
        us(e),
        1.0 / e.as_secs_f64()
    );
    println!(
        "KServe server over HTTP:            median {:>8.1} µs ({:>6.0} requests/s)",
        us(s),
        1.0 / s.as_secs_f64()
    );
    println!(
        "added latency {:.1} µs; the server is {:.1}× slower",
        us(s.saturating_sub(e)),
        s.as_secs_f64() / e.as_secs_f64()
    );
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}
