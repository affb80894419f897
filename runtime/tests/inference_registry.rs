//! Model ids and the model registry.

use std::path::{Path, PathBuf};

use nml_runtime::inference::tensor::{Dim, ElementType, TensorSpec};
use nml_runtime::inference::{InferenceError, ModelId, ModelIdForm, OnnxConfig, OnnxExecutor};

fn executor() -> OnnxExecutor {
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    OnnxExecutor::new(OnnxConfig { workers: 1, ..OnnxConfig::new(library) }).unwrap()
}

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

/// Computed once with the compiler's `nml_compiler::sema::cid::derive` on the
/// same bytes: a contract compiled against a model file finds it under the
/// id the registry derives.
#[test]
fn derived_ids_equal_the_compilers() {
    let all_bytes: Vec<u8> = (0..=255).collect();
    let cases: [(&[u8], &str); 3] = [
        (b"", "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"),
        (b"nml", "bafkreidunk2qpkfkawhuhnlz6sufbv2wvdrq3tgaro5i5ppfj6eteyzaea"),
        (&all_bytes, "bafkreicav7zotuwysixepl6umshgsz2jofmhqx55dwuhbzyrajtl7fciqa"),
    ];
    for (bytes, expected) in cases {
        let id = ModelId::derive(bytes);
        assert_eq!(id.as_str(), expected);
        assert_eq!(id.form(), ModelIdForm::CidV1);
        assert_eq!(ModelId::parse(expected), Ok(id));
    }
}

#[test]
fn ids_of_the_three_forms_are_accepted_and_others_refused() {
    let forms = [
        ("QmRhcpDXfYCKsimTmJYrAVM4Bbvck59Zb2onj3MHv9Kw5N", ModelIdForm::CidV0),
        ("bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi", ModelIdForm::CidV1),
        ("AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdE", ModelIdForm::Walrus),
    ];
    for (id, form) in forms {
        assert_eq!(ModelId::parse(id).map(|id| id.form()), Ok(form), "{id}");
    }
    for bad in ["", "Qm0", "QmRhcpDXfYCKsimTmJYrAVM4Bbvck59Zb2onj3MHv9Kw50", "bafy!", "b", "./vol.onnx"] {
        let err = ModelId::parse(bad).unwrap_err();
        assert!(matches!(&err, InferenceError::InvalidModelId { id, .. } if id == bad), "{bad}: {err:?}");
        assert!(err.to_string().contains("CIDv0") && err.to_string().contains("Walrus"), "{err}");
    }
    // Serialized as the plain string, and checked when read back.
    let id = ModelId::derive(b"nml");
    assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{id}\""));
    assert!(serde_json::from_str::<ModelId>("\"nope\"").is_err());
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
