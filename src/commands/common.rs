//! What several commands do the same way: open a project, resolve its solc,
//! print diagnostics, register its models. Commands import this module, never
//! each other.

use std::io::IsTerminal;
use std::path::Path;
use std::time::Duration;

use miette::miette;
use nml_compiler::Frontend;
use nml_compiler::diagnostics::{self, Diagnostic, MessageFormat, SourceDb};
use nml_compiler::project::Project;
use nml_compiler::solc::SolcBinary;
use nml_runtime::inference::ModelRegistry;

use crate::toolchain::solc::{self, ToolchainError};

/// Opens a project and runs the front end.
pub fn frontend(path: Option<&Path>) -> miette::Result<Frontend> {
    let path = path.unwrap_or(Path::new("."));
    let project = Project::open(path).map_err(|e| miette!("{e}"))?;
    Ok(Frontend::run(project))
}

/// Resolves solc for a project: `nml.toml`'s pin, else the sources' pragmas.
pub fn solc_for(fe: &Frontend) -> Result<SolcBinary, ToolchainError> {
    let pragmas = fe.project.solidity_pragmas();
    let pinned = fe.project.config.project.solc.as_deref();
    solc::resolve(&pragmas, pinned, std::io::stderr().is_terminal()).map(|s| s.binary())
}

/// Prints diagnostics to stderr (human) or stdout (JSON lines).
pub fn print_diagnostics(db: &SourceDb, diags: &[Diagnostic], format: MessageFormat) {
    if diags.is_empty() {
        return;
    }
    match format {
        MessageFormat::Human => {
            let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            eprint!("{}", diagnostics::render_human(db, diags, color, 100));
        }
        MessageFormat::Json => print!("{}", diagnostics::render_json(db, diags)),
    }
}

/// Registers a project's models: every model of its manifests (the `model`
/// declarations with an `onnx` file) under the id its contracts call, and
/// every `models/*.onnx` under the id derived from its bytes.
pub fn register_project_models(registry: &ModelRegistry, fe: &Frontend) -> miette::Result<()> {
    let root = &fe.project.root;
    let models_dir = root.join("models");
    if models_dir.is_dir() {
        registry
            .load_dir(&models_dir)
            .map_err(|e| miette!("cannot register the models of {}: {e}", models_dir.display()))?;
    }
    for manifest in &fe.manifests {
        for model in &manifest.models {
            let Some(onnx) = &model.onnx else { continue };
            let file = root.join(onnx);
            // The same file under the same id from another contract registers once.
            registry
                .register_file(&file, Some(&model.id))
                .map_err(|e| miette!("cannot register model `{}` ({}): {e}", model.name, file.display()))?;
        }
    }
    Ok(())
}

/// A duration in milliseconds, for reports.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}
