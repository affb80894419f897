//! Provisioning of external toolchains into nml's cache directory.
//!
//! Library crates never download anything: the CLI resolves each tool to a
//! plain path here and passes it down.

pub mod onnxruntime;
pub mod solc;

use std::path::PathBuf;

/// The directory nml provisions toolchains into: `$NML_HOME`, else
/// `$XDG_CACHE_HOME/nml`, else `$HOME/.cache/nml`. `None` when none of these
/// variables is set (to a non-empty value).
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    var("NML_HOME")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("nml")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("nml")))
}

/// Where `nml models pull` keeps models, as `<id>.onnx`: `models/` in the
/// cache directory. A `model` declaration with a `cid` and no `onnx` file
/// uses the file kept here.
pub fn model_cache() -> Option<PathBuf> {
    cache_dir().map(|d| d.join("models"))
}
