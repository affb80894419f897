//! `nml models`: register and list the models of a running devnet, over its
//! JSON-RPC (`nml_registerModel`, `nml_listModels`), and print the ids the
//! model hub gives a file (`nml models id`).

use std::path::PathBuf;
use std::process::ExitCode;

use miette::{IntoDiagnostic, WrapErr, miette};
use nml_protocol::ModelId;
use serde_json::{Value, json};

use nml_runtime::rpc_client;

use super::common::devnet_error;

/// Arguments of `nml models`.
#[derive(Debug, clap::Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
    /// The devnet's JSON-RPC URL.
    #[arg(long, global = true, default_value = "http://127.0.0.1:8545")]
    rpc: String,
}

#[derive(Debug, clap::Subcommand)]
enum ModelsCommand {
    /// Register an ONNX file; prints its id.
    Add {
        /// The `.onnx` file.
        file: PathBuf,
        /// The id contracts call it by (CIDv0, CIDv1 or Walrus blob id);
        /// derived from the bytes (CIDv1, as `ipfs add --cid-version 1`) when absent.
        #[arg(long)]
        id: Option<String>,
    },
    /// Print the ids `ipfs add` gives a file: CIDv1 (the id nml derives) and CIDv0.
    Id {
        /// The file (any size).
        file: PathBuf,
    },
    /// Fetch a model by id from an IPFS gateway into nml's cache, checking
    /// every block against the id; a project can then declare it by `cid` alone.
    Pull {
        /// The model's id (CIDv0 or CIDv1).
        cid: String,
        /// The gateway (trustless: it is asked for raw blocks, which are checked).
        #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:8080")]
        gateway: String,
        /// Also write the file here.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// List the registered models with their inputs and outputs.
    List {
        /// Print the JSON the devnet answers.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `nml models`.
pub fn run(args: ModelsArgs) -> miette::Result<ExitCode> {
    match args.command {
        ModelsCommand::Add { file, id } => {
            let bytes =
                std::fs::read(&file).into_diagnostic().wrap_err_with(|| format!("reading {}", file.display()))?;
            let hex = format!("0x{}", alloy_primitives::hex::encode(bytes));
            let params = match id {
                Some(id) => json!([hex, id]),
                None => json!([hex]),
            };
            let info = rpc_client::call(&args.rpc, "nml_registerModel", params).map_err(devnet_error)?;
            print(&format!("{}\n", info["id"].as_str().unwrap_or_default()));
        }
        ModelsCommand::Id { file } => {
            let bytes =
                std::fs::read(&file).into_diagnostic().wrap_err_with(|| format!("reading {}", file.display()))?;
            let (v1, v0) = (ModelId::derive(&bytes), ModelId::derive_v0(&bytes));
            print(&format!("{v1}  (CIDv1: ipfs add --cid-version 1)\n{v0}  (CIDv0: ipfs add)\n"));
        }
        ModelsCommand::Pull { cid, gateway, out } => {
            let path = pull(&cid, &gateway)?;
            if let Some(out) = out {
                std::fs::copy(&path, &out).into_diagnostic().wrap_err_with(|| format!("writing {}", out.display()))?;
            }
            print(&format!("{}\n", path.display()));
        }
        ModelsCommand::List { json } => {
            let models = rpc_client::call(&args.rpc, "nml_listModels", json!([])).map_err(devnet_error)?;
            print(&if json { format!("{models}\n") } else { models_text(&models) });
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Fetches `id` block by block from `gateway`, each block checked against
/// the id naming it, into `<cache>/models/<id>.onnx` (written atomically);
/// returns the file.
fn pull(id: &str, gateway: &str) -> miette::Result<PathBuf> {
    let model = ModelId::parse(id).map_err(|e| miette!("{e}"))?;
    if model.form() == nml_protocol::ModelIdForm::Walrus {
        return Err(miette!("`{id}` is a Walrus blob id: only IPFS ids (CIDv0, CIDv1) can be pulled"));
    }
    let dir = crate::toolchain::model_cache()
        .ok_or_else(|| miette!("nml has nowhere to keep models: set NML_HOME (or HOME)"))?;
    std::fs::create_dir_all(&dir).into_diagnostic().wrap_err_with(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{id}.onnx"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(120)))
        .http_status_as_error(false)
        .build()
        .into();
    let gateway = gateway.trim_end_matches('/');
    let spinner = indicatif::ProgressBar::new_spinner();
    let mut fetched = 0u64;
    let mut fetch = |cid: &str| -> Result<Vec<u8>, String> {
        let url = format!("{gateway}/ipfs/{cid}?format=raw");
        let mut response = agent
            .get(&url)
            .header("accept", "application/vnd.ipld.raw")
            .call()
            .map_err(|e| format!("cannot reach the gateway at {gateway}: {e}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(format!("the gateway answered HTTP {status}"));
        }
        let block = response.body_mut().with_config().limit(8 << 20).read_to_vec().map_err(|e| e.to_string())?;
        fetched += block.len() as u64;
        spinner.set_message(format!("pulling {id}: {} KiB", fetched / 1024));
        spinner.tick();
        Ok(block)
    };
    let bytes = nml_protocol::unixfs_read::read_file(id, &mut fetch).map_err(|e| miette!("pulling {id}: {e}"))?;
    spinner.finish_and_clear();
    nml_compiler::solc::write_atomic(&path, &bytes).map_err(|e| miette!("writing {}: {e}", path.display()))?;
    Ok(path)
}

/// Writes to stdout; a closed pipe (`| head`) is not an error.
fn print(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

fn models_text(models: &Value) -> String {
    let models = models.as_array().map(Vec::as_slice).unwrap_or_default();
    if models.is_empty() {
        return "no models registered\n".to_owned();
    }
    let mut out = String::new();
    for model in models {
        let file = model["file"].as_str().unwrap_or("(registered over RPC)");
        out.push_str(&format!("{}  {file}\n", model["id"].as_str().unwrap_or_default()));
        for (kind, key) in [("in ", "inputs"), ("out", "outputs")] {
            for tensor in model[key].as_array().map(Vec::as_slice).unwrap_or_default() {
                out.push_str(&format!("  {kind} {}\n", tensor_line(tensor)));
            }
        }
    }
    out
}

fn tensor_line(tensor: &Value) -> String {
    format!("{}: {}", tensor["name"].as_str().unwrap_or_default(), tensor["type"].as_str().unwrap_or_default())
}
