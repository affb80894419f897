//! The model registry (model ids themselves are tested in nml-protocol).

use std::path::{Path, PathBuf};

use nml_protocol::{Dim, ElementType, ModelId};
use nml_runtime::inference::{InferenceError, OnnxConfig, OnnxExecutor, TensorSpec};

fn executor() -> OnnxExecutor {
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    OnnxExecutor::new(OnnxConfig { workers: 1, ..OnnxConfig::new(library) }).unwrap()
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

#[test]
fn a_folder_registers_every_onnx_file_under_its_derived_id() {
    let executor = executor();
    let registry = executor.registry();
    let infos = registry.load_dir(&models_dir()).unwrap();
    let files: Vec<_> = infos.iter().map(|i| i.file.as_ref().unwrap().file_name().unwrap().to_str().unwrap()).collect();
    assert_eq!(files, ["bench.onnx", "fails.onnx", "ints.onnx", "mlp.onnx", "slow.onnx", "strings.onnx", "types.onnx"]);
    for info in &infos {
        let bytes = std::fs::read(info.file.as_ref().unwrap()).unwrap();
        assert_eq!(info.id, ModelId::derive(&bytes));
        assert_eq!(info.size, bytes.len() as u64);
        assert_eq!(registry.get(&info.id).as_ref(), Some(info));
    }
    let mut listed = registry.list();
    listed.sort_by(|a, b| a.file.cmp(&b.file));
    assert_eq!(listed, infos);

    let ints = infos.iter().find(|i| i.file.as_ref().unwrap().ends_with("ints.onnx")).unwrap();
    let n = || vec![Dim::Symbolic(Some("N".into()))];
    assert_eq!(
        ints.signature.inputs,
        vec![
            TensorSpec { name: "a".into(), element: ElementType::Int64, shape: n() },
            TensorSpec { name: "flags".into(), element: ElementType::Bool, shape: vec![Dim::Fixed(2)] },
        ]
    );
    let outputs: Vec<String> = ints.signature.outputs.iter().map(ToString::to_string).collect();
    assert_eq!(outputs, ["next: int64[N]", "positive: bool[N]", "negated: bool[2]"]);
    let slow = infos.iter().find(|i| i.file.as_ref().unwrap().ends_with("slow.onnx")).unwrap();
    assert_eq!(slow.signature.inputs[0].to_string(), "n: int64[]");
    // Loading the folder again changes nothing.
    assert_eq!(registry.load_dir(&models_dir()).unwrap(), infos);
}

#[test]
fn the_executor_names_a_registered_model_by_its_text_and_parses_any_other() {
    use nml_runtime::inference::Executor;
    let executor = executor();
    let info = executor.registry().register_file(&models_dir().join("mlp.onnx"), None).unwrap();
    assert_eq!(executor.registry().id(info.id.as_str()), Some(info.id.clone()));
    assert_eq!(executor.model_id(info.id.as_str()), Ok(info.id));
    // Not registered: parsed, so a valid id still names a model (unknown
    // when run) and any other text is refused as an id.
    let other = "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51";
    assert_eq!(executor.registry().id(other), None);
    assert_eq!(executor.model_id(other), Ok(ModelId::parse(other).unwrap()));
    let err = executor.model_id("my-model").unwrap_err();
    assert!(matches!(err, InferenceError::InvalidModelId { .. }), "{err:?}");
}

#[test]
fn given_ids_are_checked_and_never_rebound() {
    let executor = executor();
    let registry = executor.registry();
    let mlp = std::fs::read(models_dir().join("mlp.onnx")).unwrap();
    let ints = std::fs::read(models_dir().join("ints.onnx")).unwrap();
    let walrus = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE";

    let info = registry.register(mlp.clone(), Some(walrus)).unwrap();
    assert_eq!((info.id.as_str(), info.file.as_deref()), (walrus, None));
    assert_eq!(registry.register(mlp.clone(), Some(walrus)).unwrap(), info);
    let err = registry.register(ints, Some(walrus)).unwrap_err();
    assert_eq!(err.to_string(), format!("model id `{walrus}` is already registered for a different model file"));

    let err = registry.register(mlp, Some("my-model")).unwrap_err();
    assert!(matches!(err, InferenceError::InvalidModelId { .. }), "{err:?}");
    assert!(err.to_string().contains("CIDv0") && err.to_string().contains("Walrus"), "{err}");
}

#[test]
fn files_that_are_not_models_are_refused_with_the_reason() {
    let executor = executor();
    let registry = executor.registry();
    let bytes = b"This is not an ONNX model.".to_vec();
    let id = ModelId::derive(&bytes);
    let err = registry.register(bytes, None).unwrap_err();
    assert!(matches!(err, InferenceError::LoadModel { .. }), "{err:?}");
    assert!(err.to_string().starts_with(&format!("model `{id}` cannot be loaded: ")), "{err}");
    assert!(registry.get(&id).is_none());

    let missing = models_dir().join("missing.onnx");
    let err = registry.register_file(&missing, None).unwrap_err();
    assert!(err.to_string().starts_with(&format!("cannot read model file {}: ", missing.display())), "{err}");
}
