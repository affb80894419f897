//! Provisioning of external toolchains into nml's cache directory.
//!
//! Library crates never download anything: the CLI resolves each tool to a
//! plain path here and passes it down.

pub mod onnxruntime;
pub mod solc;
