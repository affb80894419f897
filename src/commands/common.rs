//! What several commands do the same way: open a project, resolve its solc,
//! print diagnostics, register its models. Commands import this module, never
//! each other.

use std::io::IsTerminal;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use miette::miette;
use nml_compiler::Frontend;
use nml_compiler::diagnostics::{self, Diagnostic, MessageFormat, SourceDb};
use nml_compiler::project::Project;
use nml_compiler::sema::onnx::{GraphElem, OnnxSignature, TensorInfo};
use nml_compiler::solc::SolcBinary;
use nml_runtime::inference::{
    Endpoint, Executor, ModelId, ModelRegistry, ModelSignature, OnnxExecutor, RemoteExecutor, fetch_signature,
};

use crate::toolchain::solc::{self, ToolchainError};

/// Opens a project and runs the front end.
pub fn frontend(path: Option<&Path>) -> miette::Result<Frontend> {
    let project = Project::open(path.unwrap_or(Path::new("."))).map_err(|e| miette!("{e}"))?;
    run_frontend(project)
}

/// [`frontend`] for the commands that print diagnostics (`build`, `check`):
/// a project that cannot be opened (no such path, a malformed nml.toml) is
/// printed as a diagnostic in `format`, like every other, and gives `None`.
pub fn frontend_or_report(path: Option<&Path>, format: MessageFormat) -> miette::Result<Option<Frontend>> {
    match Project::open(path.unwrap_or(Path::new("."))) {
        Ok(project) => run_frontend(project).map(Some),
        Err(e) => {
            let mut db = SourceDb::default();
            let diagnostic = e.diagnostic(&mut db);
            print_diagnostics(&db, &[diagnostic], format);
            Ok(None)
        }
    }
}

fn run_frontend(mut project: Project) -> miette::Result<Frontend> {
    read_remote_signatures(&mut project)?;
    Ok(Frontend::run(project))
}

/// How long nml waits for a model server's metadata at build time.
const METADATA_TIMEOUT: Duration = Duration::from_secs(10);

/// The project's remote models (`[models.<Name>] endpoint`), by declaration name.
pub fn remote_endpoints(project: &Project) -> miette::Result<Vec<(String, Endpoint)>> {
    project
        .config
        .models
        .iter()
        .filter_map(|(name, config)| config.endpoint.as_ref().map(|url| (name, url)))
        .map(|(name, url)| {
            url.parse::<Endpoint>().map(|e| (name.clone(), e)).map_err(|e| miette!("nml.toml [models.{name}]: {e}"))
        })
        .collect()
}

/// Readies an opened project for the analysis: where pulled models are kept,
/// and the signature of every remote model read from its server, so that
/// declarations without an `onnx` file are checked against them. A server
/// that cannot be read leaves its declaration unchecked, with a warning.
pub fn read_remote_signatures(project: &mut Project) -> miette::Result<()> {
    project.model_cache = crate::toolchain::model_cache();
    for (name, endpoint) in remote_endpoints(project)? {
        match fetch_signature(&name, &endpoint, METADATA_TIMEOUT) {
            Ok(signature) => {
                project.remote_signatures.insert(name, onnx_signature(&signature));
            }
            Err(e) => eprintln!(
                "warning: model `{name}`: cannot read its signature from {endpoint} ({e}); its declaration is not checked"
            ),
        }
    }
    Ok(())
}

/// A server-reported signature as the analysis reads a graph's.
fn onnx_signature(signature: &ModelSignature) -> OnnxSignature {
    let info = |t: &nml_runtime::inference::TensorSpec| TensorInfo {
        name: t.name.clone(),
        elem: GraphElem::Known(t.element),
        shape: Some(t.shape.clone()),
    };
    OnnxSignature {
        ir_version: 0,
        opsets: Vec::new(),
        inputs: signature.inputs.iter().map(info).collect(),
        outputs: signature.outputs.iter().map(info).collect(),
        non_tensor_outputs: Vec::new(),
    }
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

/// The executor of a devnet: `onnx`, wrapped in a [`RemoteExecutor`] when
/// some models are served remotely (`remote`: id → endpoint), each request
/// at most `timeout`, at most `concurrency` at once per server.
pub fn with_remote_models(
    onnx: Arc<OnnxExecutor>,
    remote: Vec<(String, Endpoint)>,
    timeout: Duration,
    concurrency: usize,
) -> miette::Result<Arc<dyn Executor>> {
    if remote.is_empty() {
        return Ok(onnx);
    }
    let executor = RemoteExecutor::new(onnx, timeout, concurrency);
    for (id, endpoint) in remote {
        let id = ModelId::parse(&id).map_err(|e| miette!("remote model `{id}`: {e}"))?;
        executor.route(id, endpoint);
    }
    Ok(Arc::new(executor))
}

/// The ids of a project's remote models: each `[models.<Name>] endpoint`
/// under the id its declaration compiles to.
pub fn project_remote_models(fe: &Frontend) -> miette::Result<Vec<(String, Endpoint)>> {
    let endpoints = remote_endpoints(&fe.project)?;
    let mut routed = Vec::new();
    for (name, endpoint) in endpoints {
        let id = fe
            .manifests
            .iter()
            .flat_map(|m| &m.models)
            .find(|m| m.name == name)
            .map(|m| m.id.clone())
            .ok_or_else(|| miette!("nml.toml [models.{name}]: no `model {name}` is declared in the project"))?;
        routed.push((id, endpoint));
    }
    Ok(routed)
}

/// A failed JSON-RPC call to a devnet, with the likely fix when it cannot be
/// reached (`nml models`, `nml verify`).
pub fn devnet_error(e: nml_runtime::rpc_client::RpcError) -> miette::Report {
    match e {
        nml_runtime::rpc_client::RpcError::Unreachable { .. } => {
            miette::miette!(help = "is `nml devnet` running?", "{e}")
        }
        other => miette::miette!("{other}"),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

/// A private key (hex), as `from` names where it came from.
pub fn parse_key(key: &str, from: &str) -> miette::Result<alloy_signer_local::PrivateKeySigner> {
    key.trim().parse().map_err(|_| miette!("{from} is not a private key (64 hex digits)"))
}

/// The private key in the environment variable `var`, which `flag` named.
pub fn key_from_env(flag: &str, var: &str) -> miette::Result<alloy_signer_local::PrivateKeySigner> {
    let key = std::env::var(var).map_err(|_| miette!("{flag}: the variable {var} is not set"))?;
    parse_key(&key, &format!("{flag}: ${var}"))
}

/// The key in `$VAR` when `flag` named one, else the devnet's dev account
/// `index`.
pub fn key_or_dev_account(
    flag: &str,
    var: Option<&str>,
    index: usize,
) -> miette::Result<alloy_signer_local::PrivateKeySigner> {
    match var {
        Some(var) => key_from_env(flag, var),
        None => nml_runtime::chain::dev_accounts(index + 1)
            .pop()
            .map(|a| a.signer)
            .ok_or_else(|| miette!("no dev account {index}")),
    }
}

/// Where a client reaches a server listening on `addr`: 127.0.0.1 for an
/// unspecified address (`0.0.0.0`).
pub fn reachable(addr: std::net::SocketAddr) -> std::net::SocketAddr {
    match addr.ip().is_unspecified() {
        true => std::net::SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), addr.port()),
        false => addr,
    }
}
