//! Arbitrary bytes as an `.nml` file through everything before solc:
//! `Project::open`, `Frontend::run` (parse, checks, lowering, solang) and the
//! human renderer. Must never panic.
//!
//! The file lies in `<tmp>/ui/Fuzz.nml` next to the UI tests' `Shared.sol`,
//! with their ONNX models in `<tmp>/models/`, so the seed corpus's imports and
//! `onnx "../models/…"` paths resolve as they do in `compiler/tests/ui`.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use nml_compiler::Frontend;
use nml_compiler::diagnostics::render_human;
use nml_compiler::project::Project;

const MODELS: &[(&str, &[u8])] = &[
    ("dynamic.onnx", include_bytes!("../../compiler/tests/ui/models/dynamic.onnx")),
    ("multi.onnx", include_bytes!("../../compiler/tests/ui/models/multi.onnx")),
    ("not_onnx.onnx", include_bytes!("../../compiler/tests/ui/models/not_onnx.onnx")),
    ("opset20.onnx", include_bytes!("../../compiler/tests/ui/models/opset20.onnx")),
    ("strings.onnx", include_bytes!("../../compiler/tests/ui/models/strings.onnx")),
    ("truncated.onnx", include_bytes!("../../compiler/tests/ui/models/truncated.onnx")),
    ("vol.onnx", include_bytes!("../../compiler/tests/ui/models/vol.onnx")),
    ("with_initializer_input.onnx", include_bytes!("../../compiler/tests/ui/models/with_initializer_input.onnx")),
    ("volatility.onnx", include_bytes!("../../examples/quickstart/models/volatility.onnx")),
];

const SHARED_SOL: &str = include_str!("../../compiler/tests/ui/compile_success/Shared.sol");

/// The input file's path, in a temporary tree made once per process.
fn input_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let root = tempfile::tempdir().expect("temporary directory").keep();
        std::fs::create_dir_all(root.join("ui")).expect("ui directory");
        std::fs::create_dir_all(root.join("models")).expect("models directory");
        for (name, bytes) in MODELS {
            std::fs::write(root.join("models").join(name), bytes).expect("model file");
        }
        std::fs::write(root.join("ui/Shared.sol"), SHARED_SOL).expect("Shared.sol");
        root.join("ui/Fuzz.nml")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = input_path();
    std::fs::write(path, data).expect("write the input");
    let Ok(project) = Project::open(path) else { return };
    let fe = Frontend::run(project);
    let mut diags = fe.diagnostics.clone();
    diags.extend(fe.solang_rejections.iter().cloned());
    let _ = render_human(&fe.project.db, &diags, false, 100);
});
