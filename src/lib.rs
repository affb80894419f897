//! The `nml` command-line tool as a library: command implementations and the
//! toolchain provisioning (solc, ONNX Runtime) that the binary and the
//! end-to-end tests share.

pub mod commands;
pub mod toolchain;
