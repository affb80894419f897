//! The Solidity shipped with nml, importable as `@nml/...`. It is embedded in
//! the binary and handed to solc from memory, so a project needs no copy.

/// `(source unit name, text)` of every stdlib file.
const FILES: &[(&str, &str)] = &[
    ("@nml/og/TensorLib.sol", include_str!("../../stdlib/og/TensorLib.sol")),
    ("@nml/og/OGInference.sol", include_str!("../../stdlib/og/OGInference.sol")),
    ("@nml/nml/Tensors.sol", include_str!("../../stdlib/nml/Tensors.sol")),
];

/// The text of a stdlib file by its import path.
pub fn source(name: &str) -> Option<&'static str> {
    FILES.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// All stdlib import paths.
pub fn names() -> Vec<&'static str> {
    FILES.iter().map(|(n, _)| *n).collect()
}

/// All stdlib files, for solc's standard JSON.
pub fn files() -> impl Iterator<Item = (&'static str, &'static str)> {
    FILES.iter().copied()
}
