//! The Solidity shipped with nml, importable as `@nml/...`. It is embedded in
//! the binary and handed to solc from memory, so a project needs no copy.

/// `(source unit name, text)` of every stdlib file.
const FILES: &[(&str, &str)] = &[
    ("@nml/og/TensorLib.sol", include_str!("../../stdlib/og/TensorLib.sol")),
    ("@nml/og/OGInference.sol", include_str!("../../stdlib/og/OGInference.sol")),
    ("@nml/og/TEEVerifier.sol", include_str!("../../stdlib/og/TEEVerifier.sol")),
    ("@nml/nml/Tensors.sol", include_str!("../../stdlib/nml/Tensors.sol")),
    ("@nml/nml/Test.sol", include_str!("../../stdlib/nml/Test.sol")),
    ("@nml/nml/Answers.sol", include_str!("../../stdlib/nml/Answers.sol")),
    ("@nml/nml/Invariant.sol", include_str!("../../stdlib/nml/Invariant.sol")),
    ("@nml/nml/console.sol", include_str!("../../stdlib/nml/console.sol")),
];

/// The text of a stdlib file by its import path.
pub fn source(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Whether a stdlib file goes to solc only when imported (the test library,
/// its invariant targets, the TEE verifier's, the answer helpers and the
/// console: a build that does not use them
/// need not compile them).
pub fn on_demand(name: &str) -> bool {
    matches!(
        name,
        "@nml/nml/Test.sol"
            | "@nml/og/TEEVerifier.sol"
            | "@nml/nml/Answers.sol"
            | "@nml/nml/Invariant.sol"
            | "@nml/nml/console.sol"
    )
}

/// The on-demand stdlib files that stdlib file `name` imports: they go to
/// solc with it.
pub fn on_demand_imports(name: &str) -> &'static [&'static str] {
    match name {
        "@nml/nml/Test.sol" => &["@nml/nml/Answers.sol", "@nml/nml/Invariant.sol", "@nml/nml/console.sol"],
        _ => &[],
    }
}

/// All stdlib import paths.
pub fn names() -> Vec<&'static str> {
    FILES.iter().map(|(n, _)| *n).collect()
}

/// All stdlib files, for solc's standard JSON.
pub fn files() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES.iter().copied()
}
