//! The ONNX executor on the real models of `tests/models` (made by
//! `tools/make_models.py`), with libonnxruntime provisioned as the CLI does.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nml_runtime::inference::abi::{MultiDimensionalNumberTensor, Number, StringTensor};
use nml_runtime::inference::{
    Device, Executor, InferenceError, ModelId, ModelInferenceRequest, ModelInput, ModelOutput, OnnxConfig, OnnxExecutor,
};

fn library() -> PathBuf {
    nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path
}

fn model_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models").join(format!("{name}.onnx"))
}

fn executor(workers: usize, timeout: Duration) -> OnnxExecutor {
    let config = OnnxConfig { workers, timeout, ..OnnxConfig::new(library()) };
    OnnxExecutor::new(config).unwrap()
}

fn register(executor: &OnnxExecutor, name: &str) -> ModelId {
    executor.registry().register_file(&model_file(name), None).unwrap().id
}

fn num(value: i128, decimals: i128) -> Number {
    Number { value, decimals }
}

fn ints(values: &[i128]) -> Vec<Number> {
    values.iter().map(|&v| num(v, 0)).collect()
}

fn e18(values: &[f64]) -> Vec<Number> {
    // Only for values exact in binary with few decimals.
    values.iter().map(|&v| num((v * 1e6) as i128 * 1_000_000_000_000, 18)).collect()
}

fn tensor(name: &str, values: Vec<Number>, shape: &[u32]) -> MultiDimensionalNumberTensor {
    MultiDimensionalNumberTensor { name: name.into(), values, shape: shape.to_vec() }
}

fn numbers(tensors: Vec<MultiDimensionalNumberTensor>) -> ModelInput {
    ModelInput { numbers: tensors, strings: vec![] }
}

#[test]
fn mlp_outputs_are_exact() {
    let executor = executor(2, Duration::from_secs(30));
    let mlp = register(&executor, "mlp");
    let info = executor.registry().get(&mlp).unwrap();
    assert_eq!(info.signature.inputs.iter().map(ToString::to_string).collect::<Vec<_>>(), ["x: float32[N, 4]"]);
    assert_eq!(info.signature.outputs.iter().map(ToString::to_string).collect::<Vec<_>>(), ["y: float32[N, 3]"]);

    // Row 2 is given in decimals: (-10, 1) is -1 and (0, 7) is 0.
    let x = vec![num(1, 0), num(2, 0), num(3, 0), num(4, 0), num(-10, 1), num(0, 7), num(0, 0), num(0, 0)];
    let output = executor.run(&mlp, &numbers(vec![tensor("x", x, &[2, 4])])).unwrap();
    assert_eq!(
        output,
        ModelOutput {
            numbers: vec![tensor("y", e18(&[2.75, 1.75, 0.0, 0.0, 0.75, 0.0]), &[2, 3])],
            strings: vec![],
            jsons: vec![],
            is_simulation_result: false,
        }
    );
    assert_eq!(output.numbers[0].values[0], num(2_750_000_000_000_000_000, 18));
}

#[test]
fn int64_and_bool_tensors_convert_both_ways() {
    let executor = executor(2, Duration::from_secs(30));
    let model = register(&executor, "ints");
    let input =
        numbers(vec![tensor("a", ints(&[-5, 0, 1 << 40]), &[3]), tensor("flags", vec![num(1, 0), num(0, 3)], &[2])]);
    let output = executor.run(&model, &input).unwrap();
    assert_eq!(
        output.numbers,
        vec![
            tensor("next", ints(&[-4, 1, (1 << 40) + 1]), &[3]),
            tensor("positive", ints(&[0, 0, 1]), &[3]),
            tensor("negated", ints(&[0, 1]), &[2]),
        ]
    );
}

#[test]
fn every_element_type_round_trips() {
    let executor = executor(2, Duration::from_secs(30));
    let model = register(&executor, "types");
    let cases: [(&str, [Number; 2], [Number; 2]); 9] = [
        ("f64", [num(15, 1), num(-1, 3)], [num(1_500_000_000_000_000_000, 18), num(-1_000_000_000_000_000, 18)]),
        // float16 has 10 fraction bits: 0.1 becomes 0.0999755859375.
        ("f16", [num(5, 1), num(1, 1)], [num(500_000_000_000_000_000, 18), num(99_975_585_937_500_000, 18)]),
        ("i8", [num(-128, 0), num(127, 0)], [num(-128, 0), num(127, 0)]),
        ("i16", [num(-32768, 0), num(3, 0)], [num(-32768, 0), num(3, 0)]),
        ("i32", [num(i32::MIN.into(), 0), num(300, 2)], [num(i32::MIN.into(), 0), num(3, 0)]),
        ("u8", [num(255, 0), num(0, 0)], [num(255, 0), num(0, 0)]),
        ("u16", [num(65535, 0), num(1, 0)], [num(65535, 0), num(1, 0)]),
        ("u32", [num(u32::MAX.into(), 0), num(2, -3)], [num(u32::MAX.into(), 0), num(2000, 0)]),
        ("u64", [num(u64::MAX.into(), 0), num(0, 0)], [num(u64::MAX.into(), 0), num(0, 0)]),
    ];
    let input = numbers(cases.iter().map(|(name, given, _)| tensor(name, given.to_vec(), &[2])).collect());
    let output = executor.run(&model, &input).unwrap();
    let expected: Vec<_> =
        cases.iter().map(|(name, _, out)| tensor(&format!("{name}_out"), out.to_vec(), &[2])).collect();
    assert_eq!(output.numbers, expected);
}

#[test]
fn string_tensors_pass_through() {
    let executor = executor(1, Duration::from_secs(30));
    let model = register(&executor, "strings");
    let input = ModelInput {
        numbers: vec![tensor("x", vec![num(15, 1)], &[1])],
        strings: vec![StringTensor { name: "s".into(), values: vec!["héllo, wörld".into()] }],
    };
    let output = executor.run(&model, &input).unwrap();
    assert_eq!(output.strings, vec![StringTensor { name: "s_out".into(), values: vec!["héllo, wörld".into()] }]);
    assert_eq!(output.numbers, vec![tensor("y", vec![num(1_500_000_000_000_000_000, 18)], &[1])]);
}

#[test]
fn wrong_names_types_and_shapes_name_the_model_and_the_tensor() {
    let executor = executor(1, Duration::from_secs(30));
    let mlp = register(&executor, "mlp");
    let strings = register(&executor, "strings");
    let run = |model: &ModelId, input: ModelInput| executor.run(model, &input).unwrap_err().to_string();

    let wrong_name = run(&mlp, numbers(vec![tensor("X", ints(&[1, 2, 3, 4]), &[1, 4])]));
    assert_eq!(wrong_name, format!("model `{mlp}` has no input named `X` (its inputs: x: float32[N, 4])"));

    let wrong_shape = run(&mlp, numbers(vec![tensor("x", ints(&[1, 2, 3]), &[1, 3])]));
    assert_eq!(wrong_shape, format!("model `{mlp}`: input `x` has shape [1, 3], but the model expects float32[N, 4]"));

    let wrong_count = run(&mlp, numbers(vec![tensor("x", ints(&[1, 2, 3]), &[1, 4])]));
    assert_eq!(
        wrong_count,
        format!("model `{mlp}`: input `x` has shape [1, 4], which holds 4 values, but 3 are given")
    );

    let strings_for_numbers = ModelInput {
        numbers: vec![],
        strings: vec![
            StringTensor { name: "s".into(), values: vec!["a".into()] },
            StringTensor { name: "x".into(), values: vec!["1.5".into()] },
        ],
    };
    assert_eq!(
        run(&strings, strings_for_numbers),
        format!(
            "model `{strings}`: input `x` expects float32[1] (in `numbers`), but the request gives a string tensor"
        )
    );
    let missing = run(&strings, numbers(vec![tensor("x", vec![num(1, 0)], &[1])]));
    assert_eq!(missing, format!("model `{strings}`: input `s` is missing (expected string[1])"));
}

#[test]
fn unknown_models_and_bad_requests_are_refused() {
    let executor = executor(1, Duration::from_secs(30));
    let unknown = ModelId::derive(b"no such model");
    let err = executor.run(&unknown, &ModelInput::default()).unwrap_err();
    assert_eq!(err, InferenceError::UnknownModel { model: unknown.to_string() });
    assert_eq!(err.to_string(), format!("unknown model `{unknown}`: no model with this id is registered on this node"));

    let mlp = register(&executor, "mlp");
    let good = ModelInferenceRequest {
        mode: 0,
        modelCID: mlp.to_string(),
        input: numbers(vec![tensor("x", ints(&[1, 2, 3, 4]), &[1, 4])]),
    };
    let bad_mode = ModelInferenceRequest { mode: 7, ..good.clone() };
    let bad_id = ModelInferenceRequest { modelCID: "vol.onnx".into(), ..good.clone() };
    let results = executor.run_all_requests(&[&bad_id, &good, &bad_mode, &good]);
    assert!(matches!(&results[0], Err(InferenceError::InvalidModelId { id, .. }) if id == "vol.onnx"), "{results:?}");
    assert_eq!(results[1].as_ref().unwrap().numbers[0].values, e18(&[2.75, 1.75, 0.0]));
    assert!(results[2].as_ref().unwrap_err().to_string().contains("unknown inference mode 7"));
    assert_eq!(results[3], results[1]);
    assert_eq!(executor.run_request(&good), results[1]);
}

#[test]
fn a_model_that_fails_at_run_time_gives_onnx_runtimes_reason() {
    let executor = executor(1, Duration::from_secs(30));
    let model = register(&executor, "fails");
    let four = executor.run(&model, &numbers(vec![tensor("x", ints(&[1, 2, 3, 4]), &[4])])).unwrap();
    assert_eq!(four.numbers[0].shape, vec![2, 2]);
    let err = executor.run(&model, &numbers(vec![tensor("x", ints(&[1, 2, 3]), &[3])])).unwrap_err();
    assert!(matches!(err, InferenceError::Runtime { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with(&format!("model `{model}` failed: ")), "{message}");
    assert!(message.contains("Reshape") && message.contains("requested shape:{2,2}"), "{message}");
    // The session that failed still serves.
    assert_eq!(executor.run(&model, &numbers(vec![tensor("x", ints(&[1, 2, 3, 4]), &[4])])).unwrap(), four);
}

#[test]
fn a_run_past_the_timeout_is_stopped_and_the_worker_freed() {
    let timeout = Duration::from_millis(300);
    // One worker: the second request can only run once the first is stopped.
    let executor = executor(1, timeout);
    let model = register(&executor, "slow");
    let iterations = |n: i128| numbers(vec![tensor("n", vec![num(n, 0)], &[])]);

    let started = Instant::now();
    let err = executor.run(&model, &iterations(100_000_000)).unwrap_err();
    let waited = started.elapsed();
    assert_eq!(err, InferenceError::Timeout { model: model.to_string(), timeout });
    assert_eq!(err.to_string(), format!("model `{model}` did not finish within the inference timeout of 300 ms"));
    assert!(waited >= timeout && waited < timeout * 3, "waited {waited:?}");

    let output = executor.run(&model, &iterations(3)).unwrap();
    assert_eq!(output.numbers[0].shape, Vec::<u32>::new());
    assert_eq!(output.numbers[0].values.len(), 1);
}

#[test]
fn a_batch_past_the_timeout_times_out_on_the_worker_and_the_caller_alike() {
    let timeout = Duration::from_millis(300);
    // One worker: one request runs on it or on the calling thread, the others wait.
    let executor = executor(1, timeout);
    let model = register(&executor, "slow");
    let long = numbers(vec![tensor("n", vec![num(100_000_000, 0)], &[])]);
    let started = Instant::now();
    let results = executor.run_all(&[(&model, &long), (&model, &long), (&model, &long)]);
    let waited = started.elapsed();
    for result in results {
        assert_eq!(result.unwrap_err(), InferenceError::Timeout { model: model.to_string(), timeout });
    }
    assert!(waited >= timeout && waited < timeout * 3, "waited {waited:?}");
}

#[test]
fn no_more_requests_run_at_once_than_there_are_workers_caller_included() {
    let executor = executor(1, Duration::from_secs(60));
    let model = register(&executor, "slow");
    let inputs: Vec<ModelInput> = (0..8).map(|i| numbers(vec![tensor("n", vec![num(20_000 + i, 0)], &[])])).collect();
    let requests: Vec<_> = inputs.iter().map(|input| (&model, input)).collect();
    assert!(executor.run_all(&requests).iter().all(Result::is_ok));
    // A second session would only have been made for a second run at once.
    assert_eq!(executor.registry().idle_sessions(&model), Some(1));
}

#[test]
fn requests_run_side_by_side_on_a_pool_of_sessions() {
    let executor = executor(4, Duration::from_secs(60));
    let model = register(&executor, "slow");
    assert_eq!(executor.registry().idle_sessions(&model), Some(1));
    let inputs: Vec<ModelInput> = (0..16).map(|i| numbers(vec![tensor("n", vec![num(2000 + i, 0)], &[])])).collect();
    let requests: Vec<_> = inputs.iter().map(|input| (&model, input)).collect();
    let parallel = executor.run_all(&requests);
    // Sessions are only added while all others are busy.
    let sessions = executor.registry().idle_sessions(&model).unwrap();
    assert!((2..=4).contains(&sessions), "{sessions} sessions");
    for (input, result) in inputs.iter().zip(&parallel) {
        assert_eq!(result.as_ref().unwrap(), &executor.run(&model, input).unwrap());
    }
    // Different inputs, different outputs: no mix-ups between runs.
    assert_ne!(parallel[0], parallel[1]);
}

#[test]
fn identical_requests_give_identical_outputs() {
    let executor = executor(2, Duration::from_secs(60));
    let model = register(&executor, "bench");
    let x: Vec<Number> = (0..64).map(|i| num(i - 32, 2)).collect();
    let input = numbers(vec![tensor("x", x, &[1, 64])]);
    let first = executor.run(&model, &input).unwrap();
    assert_eq!(first.numbers[0].shape, vec![1, 8]);
    let again = executor.run_all(&[(&model, &input), (&model, &input), (&model, &input)]);
    assert!(again.iter().all(|r| r.as_ref() == Ok(&first)));
}

#[test]
fn cuda_is_never_a_silent_cpu_run() {
    let config = OnnxConfig { device: Device::Cuda { device_id: 0 }, ..OnnxConfig::new(library()) };
    let err = OnnxExecutor::new(config).unwrap_err();
    assert!(matches!(err, InferenceError::Cuda { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.starts_with("cannot run models on CUDA: "), "{message}");
    #[cfg(not(feature = "cuda"))]
    assert!(message.contains("no CUDA support") && message.contains("--features nml-runtime/cuda"), "{message}");
    // The provisioned library is the CPU wheel's.
    #[cfg(feature = "cuda")]
    assert!(message.contains("has no CUDA provider") && message.contains("onnxruntime-gpu"), "{message}");
}

#[test]
fn a_second_library_is_refused() {
    let _loaded = executor(1, Duration::from_secs(1));
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("libonnxruntime.so");
    std::fs::write(&other, b"not a library").unwrap();
    let err = OnnxExecutor::new(OnnxConfig::new(&other)).unwrap_err();
    assert!(matches!(err, InferenceError::Library { .. }), "{err:?}");
    assert!(err.to_string().contains("already loaded ONNX Runtime from"), "{err}");
}
