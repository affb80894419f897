//! `nml deploy`: a project's contracts, compiled as `nml build` compiles
//! them, deployed over JSON-RPC to any chain (docs/deploy.md).
//!
//! The key comes from `--private-key`, an environment variable, or an
//! encrypted keystore (the Web3 Secret Storage format Foundry and geth
//! write). The chain id is checked against the one expected; fees are
//! EIP-1559 where the chain has a base fee, legacy otherwise (or with
//! `--legacy`). Each deployment waits for its receipt, and lands in
//! `deployments/<chain id>.json`; a contract whose init code (bytecode and
//! constructor arguments) is already deployed there, with code at its
//! address, is not deployed again. `--dry-run` runs the same deployments on
//! a local fork of the chain at its latest block, and sends nothing to it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope, TxLegacy};
use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, hex, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use miette::{IntoDiagnostic, miette};
use nml_compiler::diagnostics::Severity;
use nml_compiler::project::Project;
use nml_compiler::{Frontend, build};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::common::{key_from_env, parse_key, print_diagnostics, read_remote_signatures, solc_for};
use super::deploy_plan::{plan, reference};
use nml_runtime::fork::{ForkConfig, ForkSource};
use nml_runtime::rpc_client::{self as client, Retry};
use nml_runtime::{Devnet, DevnetConfig};

/// Arguments of `nml deploy`.
#[derive(Debug, clap::Args)]
pub struct DeployArgs {
    /// The contracts to deploy, by name.
    pub contracts: Vec<String>,
    /// Deploy every deployable contract of the project's sources.
    #[arg(long, conflicts_with = "contracts")]
    pub all: bool,
    /// The project [default: .]
    #[arg(long, value_name = "PATH")]
    pub project: Option<PathBuf>,
    /// The chain's JSON-RPC URL [default: nml.toml `[deploy] rpc_url`].
    #[arg(long, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// The chain id expected; another is refused [default: nml.toml `[deploy] chain_id`].
    #[arg(long, value_name = "ID")]
    pub chain_id: Option<u64>,
    /// The deployer's private key (hex).
    #[arg(long, value_name = "HEX", conflicts_with_all = ["private_key_env", "keystore"])]
    pub private_key: Option<String>,
    /// The environment variable that holds the deployer's private key.
    #[arg(long, value_name = "VAR", conflicts_with = "keystore")]
    pub private_key_env: Option<String>,
    /// An encrypted keystore file (Foundry's `cast wallet`, geth's `account new`).
    #[arg(long, value_name = "FILE")]
    pub keystore: Option<PathBuf>,
    /// The environment variable that holds the keystore's password (else it is asked for).
    #[arg(long, value_name = "VAR", requires = "keystore")]
    pub password_env: Option<String>,
    /// A constructor argument (repeatable, in order), as `cast` writes them:
    /// `42`, `0xabc…`, `true`, `"text"`, `[1,2]`; for one contract only.
    #[arg(long = "arg", value_name = "VALUE", allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Pay with a legacy gas price even where the chain has EIP-1559 fees.
    #[arg(long)]
    pub legacy: bool,
    /// Deploy on a local fork of the chain at its latest block instead, and
    /// send nothing to the chain.
    #[arg(long)]
    pub dry_run: bool,
}

/// `deployments/<chain id>.json`.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deployments {
    chain_id: u64,
    contracts: BTreeMap<String, Deployment>,
}

/// One deployed contract.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Deployment {
    address: Address,
    transaction_hash: B256,
    block_number: u64,
    deployer: Address,
    /// `keccak256(bytecode ‖ constructor arguments)`: the same init code is
    /// not deployed twice.
    init_code_hash: B256,
    source: String,
    /// The contract deployed (a named deployment's may differ from its
    /// name); absent in files written before named deployments.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    contract: String,
}

/// A contract that can be deployed: its name, source unit, creation code
/// and constructor inputs.
struct Deployable {
    name: String,
    unit: String,
    bytecode: Bytes,
    constructor: Vec<String>,
}

/// Runs `nml deploy`.
pub fn run(args: DeployArgs) -> miette::Result<ExitCode> {
    let path = args.project.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut project = Project::open(&path).map_err(|e| miette!("{e}"))?;
    read_remote_signatures(&mut project)?;
    let fe = Frontend::run(project);
    let out = build::build(&fe, &|| solc_for(&fe)).map_err(|e| miette!("{e}"))?;
    let shown: Vec<_> = out.diagnostics.iter().filter(|d| d.severity != Severity::Note).cloned().collect();
    print_diagnostics(&fe.project.db, &shown, Default::default());
    if out.has_errors() {
        return Err(miette!("the project does not compile"));
    }
    let config = fe.project.config.deploy.clone().unwrap_or_default();
    let deployable = deployable(&fe, &out.contracts)?;
    let contracts: Vec<String> = deployable.iter().map(|d| d.name.clone()).collect();
    let chosen = plan(&contracts, &config, &args.contracts, args.all, &args.args).map_err(|e| miette!("{e}"))?;
    let url = args
        .rpc_url
        .clone()
        .or(config.rpc_url.clone())
        .ok_or_else(|| miette!("no chain: pass --rpc-url URL or set `[deploy] rpc_url` in nml.toml"))?;
    let node = Node { url };
    let chain_id = hex_u64(&node.call("eth_chainId", json!([]))?)?;
    if let Some(expected) = args.chain_id.or(config.chain_id)
        && expected != chain_id
    {
        return Err(miette!(
            "the node at {} is chain {chain_id}, not the {expected} expected: nothing was sent",
            node.url
        ));
    }
    let signer = signer(&args)?;
    let deployer = signer.address();
    // A dry run deploys on a local fork of the chain, through the same steps.
    let fork = if args.dry_run { Some(DryRunFork::start(&node.url, chain_id)?) } else { None };
    let node = match &fork {
        Some(fork) => Node { url: fork.url.clone() },
        None => node,
    };
    let file = fe.project.root.join("deployments").join(format!("{chain_id}.json"));
    let mut deployments = read_deployments(&file, chain_id)?;

    // Where this run's deployments are, for the `@Name` arguments of later ones.
    let mut here: BTreeMap<String, Address> = BTreeMap::new();
    for planned in chosen {
        let Some(contract) = deployable.iter().find(|d| d.name == planned.contract) else { continue };
        let values = planned
            .args
            .iter()
            .map(|arg| resolve(arg, &planned.name, &here, &deployments, &node))
            .collect::<miette::Result<Vec<String>>>()?;
        let name = &planned.name;
        let init = init_code(contract, name, &values)?;
        let init_hash = keccak256(&init);
        if let Some(existing) = deployments.contracts.get(name)
            && existing.init_code_hash == init_hash
            && has_code(&node, existing.address)?
        {
            println!("{name}: already deployed at {} (tx {})", existing.address, existing.transaction_hash);
            here.insert(name.clone(), existing.address);
            continue;
        }
        let call = json!({ "from": deployer, "data": Bytes::from(init.clone()) });
        let estimate = hex_u64(
            &node
                .call("eth_estimateGas", json!([call]))
                .map_err(|e| miette!("{name}: the deployment would fail: {e}"))?,
        )?;
        let gas = estimate.saturating_mul(6) / 5;
        let nonce = hex_u64(&node.call("eth_getTransactionCount", json!([deployer, "pending"]))?)?;
        let raw = sign(&node, &signer, chain_id, nonce, gas, init.into(), args.legacy)?;
        let hash: B256 =
            serde_json::from_value(node.call("eth_sendRawTransaction", json!([raw]))?).into_diagnostic()?;
        let receipt = wait_for_receipt(&node, name, hash)?;
        if receipt["status"] != "0x1" {
            return Err(miette!("{name}: the deployment reverted (tx {hash})"));
        }
        let address: Address = serde_json::from_value(receipt["contractAddress"].clone()).into_diagnostic()?;
        let block_number = hex_u64(&receipt["blockNumber"])?;
        here.insert(name.clone(), address);
        if let Some(fork) = &fork {
            let gas = hex_u64(&receipt["gasUsed"])?;
            println!(
                "{name}: dry run: deployed at {address} on a fork of {} at block {} ({gas} gas); nothing sent",
                fork.remote, fork.block
            );
            continue;
        }
        println!("{name}: deployed at {address} (tx {hash}, block {block_number})");
        deployments.contracts.insert(
            name.clone(),
            Deployment {
                address,
                transaction_hash: hash,
                block_number,
                deployer,
                init_code_hash: init_hash,
                source: contract.unit.clone(),
                contract: contract.name.clone(),
            },
        );
        write_deployments(&file, &deployments)?;
    }
    Ok(ExitCode::SUCCESS)
}

/// The local devnet a dry run deploys on: a fork of the target chain at its
/// latest block, served over JSON-RPC on a free local port while it lives.
struct DryRunFork {
    remote: String,
    block: u64,
    url: String,
    server: Option<nml_runtime::rpc::RpcServer>,
    runtime: tokio::runtime::Runtime,
}

impl DryRunFork {
    fn start(remote: &str, chain_id: u64) -> miette::Result<Self> {
        let config = ForkConfig { expected_chain_id: Some(chain_id), ..ForkConfig::new(remote) };
        let source = ForkSource::connect(&config).map_err(|e| miette!("the dry run cannot fork the chain: {e}"))?;
        let block = source.number();
        let devnet = Devnet::new(DevnetConfig { fork: Some(source), ..DevnetConfig::default() })
            .map_err(|e| miette!("the dry run cannot fork the chain: {e}"))?;
        let runtime =
            tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().into_diagnostic()?;
        let server = runtime
            .block_on(nml_runtime::rpc::serve(Arc::new(devnet), "127.0.0.1:0".parse().into_diagnostic()?))
            .into_diagnostic()?;
        let url = format!("http://{}", server.local_addr);
        eprintln!("Dry run on a fork of {remote} at block {block}");
        Ok(Self { remote: remote.to_owned(), block, url, server: Some(server), runtime })
    }
}

impl Drop for DryRunFork {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

/// The node, called with retries: an unreachable or rate-limited node is
/// asked again (three times, waiting longer each time), with a clear message.
struct Node {
    url: String,
}

impl Node {
    fn call(&self, method: &str, params: Value) -> miette::Result<Value> {
        client::call_with_retries(&self.url, method, &params, Retry::default(), |e, wait| {
            eprintln!("{method}: {e}; trying again in {:.1} s", wait.as_secs_f64());
        })
        .map_err(|e| miette!("{method}: {e}"))
    }
}

/// The contracts of the project's own sources that have creation code:
/// not interfaces, abstract contracts or libraries (solc's library code
/// starts with its call guard, `PUSH20 0 ADDRESS EQ`).
fn deployable(fe: &Frontend, contracts: &[(String, String)]) -> miette::Result<Vec<Deployable>> {
    let src = format!("{}/", fe.project.config.project.src.trim_end_matches('/'));
    let out_dir = fe.project.out_dir();
    let mut found = Vec::new();
    for (unit, name) in contracts {
        if !unit.starts_with(&src) {
            continue;
        }
        let path = nml_compiler::solc::artifact_path(&out_dir, unit, name);
        let artifact: Value = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| miette!("cannot read the artifact {}", path.display()))?;
        let code = artifact["bytecode"]["object"].as_str().unwrap_or_default();
        let deployed = artifact["deployedBytecode"]["object"].as_str().unwrap_or_default();
        let library = deployed.trim_start_matches("0x").starts_with("730000000000000000000000000000000000000000");
        let bytes = hex::decode(code).unwrap_or_default();
        if bytes.is_empty() || library {
            continue;
        }
        let constructor = artifact["abi"]
            .as_array()
            .and_then(|abi| abi.iter().find(|item| item["type"] == "constructor"))
            .and_then(|c| c["inputs"].as_array())
            .map(|inputs| inputs.iter().map(abi_type).collect())
            .unwrap_or_default();
        found.push(Deployable { name: name.clone(), unit: unit.clone(), bytecode: bytes.into(), constructor });
    }
    Ok(found)
}

/// An ABI parameter's type as `DynSolType` parses it (tuples spelled out).
fn abi_type(param: &Value) -> String {
    let ty = param["type"].as_str().unwrap_or_default();
    match ty.strip_prefix("tuple") {
        Some(suffix) => {
            let inner: Vec<String> =
                param["components"].as_array().map(|c| c.iter().map(abi_type).collect()).unwrap_or_default();
            format!("({}){suffix}", inner.join(","))
        }
        None => ty.to_owned(),
    }
}

/// The creation code with its constructor arguments ABI-encoded.
fn init_code(contract: &Deployable, name: &str, values: &[String]) -> miette::Result<Vec<u8>> {
    if values.len() != contract.constructor.len() {
        let (constructor, config) = if name == contract.name {
            ("the constructor".to_owned(), format!("`[deploy.args] {name} = [...]`"))
        } else {
            (format!("the constructor of {}", contract.name), format!("`args = [...]` in [deploy.contracts.{name}]"))
        };
        return Err(miette!(
            "{name}: {constructor} takes {} argument(s) ({}), {} given (--arg, or {config} in nml.toml)",
            contract.constructor.len(),
            contract.constructor.join(", "),
            values.len(),
        ));
    }
    let encoded: Vec<DynSolValue> = contract
        .constructor
        .iter()
        .zip(values)
        .map(|(ty, value)| {
            let parsed = DynSolType::parse(ty).map_err(|e| miette!("{name}: constructor type {ty}: {e}"))?;
            parsed.coerce_str(value.trim_matches('"')).map_err(|e| miette!("{name}: `{value}` is not a {ty}: {e}"))
        })
        .collect::<miette::Result<_>>()?;
    let mut init = contract.bytecode.to_vec();
    init.extend(DynSolValue::Tuple(encoded).abi_encode_params());
    Ok(init)
}

/// A constructor argument as `init_code` parses it: `@Name` becomes the
/// address of the deployment `Name`, made earlier in this run or recorded in
/// the deployments file, which must hold code on the chain.
fn resolve(
    arg: &str,
    deploying: &str,
    here: &BTreeMap<String, Address>,
    recorded: &Deployments,
    node: &Node,
) -> miette::Result<String> {
    let Some(target) = reference(arg) else { return Ok(arg.to_owned()) };
    if let Some(address) = here.get(target) {
        return Ok(address.to_string());
    }
    let Some(deployment) = recorded.contracts.get(target) else {
        return Err(miette!(
            "{deploying}: `{arg}` names no deployment on chain {}: deploy {target} first, or deploy both in one run",
            recorded.chain_id
        ));
    };
    if !has_code(node, deployment.address)? {
        return Err(miette!(
            "{deploying}: `{arg}` is recorded at {}, which holds no code on the chain now: deploy {target} again",
            deployment.address
        ));
    }
    Ok(deployment.address.to_string())
}

/// Whether `address` holds code at the chain's latest block.
fn has_code(node: &Node, address: Address) -> miette::Result<bool> {
    let code = node.call("eth_getCode", json!([address, "latest"]))?;
    Ok(code.as_str().is_some_and(|c| c.len() > 2))
}

/// The deployer's key, from wherever the flags say.
fn signer(args: &DeployArgs) -> miette::Result<PrivateKeySigner> {
    if let Some(key) = &args.private_key {
        return parse_key(key, "--private-key");
    }
    if let Some(var) = &args.private_key_env {
        return key_from_env("--private-key-env", var);
    }
    let Some(keystore) = &args.keystore else {
        return Err(miette!("no key: pass --private-key, --private-key-env VAR or --keystore FILE"));
    };
    let password = match &args.password_env {
        Some(var) => std::env::var(var).map_err(|_| miette!("--password-env: the variable {var} is not set"))?,
        None => ask_password(keystore)?,
    };
    PrivateKeySigner::decrypt_keystore(keystore, password)
        .map_err(|e| miette!("cannot open the keystore {}: {e} (a wrong password?)", keystore.display()))
}

fn ask_password(keystore: &Path) -> miette::Result<String> {
    if !std::io::stdin().is_terminal() {
        return Err(miette!("the keystore needs a password: pass --password-env VAR (stdin is not a terminal)"));
    }
    eprint!("Password for {}: ", keystore.display());
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).into_diagnostic()?;
    Ok(line.trim_end_matches(['\n', '\r']).to_owned())
}

/// A signed creation transaction, EIP-1559 where the chain has a base fee.
fn sign(
    node: &Node,
    signer: &PrivateKeySigner,
    chain_id: u64,
    nonce: u64,
    gas: u64,
    input: Bytes,
    legacy: bool,
) -> miette::Result<Bytes> {
    let latest = node.call("eth_getBlockByNumber", json!(["latest", false]))?;
    let base_fee = latest.get("baseFeePerGas").filter(|v| !v.is_null()).map(hex_u128).transpose()?;
    let sign_error = |e: alloy_signer::Error| miette!("signing: {e}");
    let envelope: TxEnvelope = match base_fee {
        Some(base_fee) if !legacy => {
            let tip = node.call("eth_maxPriorityFeePerGas", json!([])).ok().map(|v| hex_u128(&v)).transpose()?;
            let tip = tip.unwrap_or(1_000_000_000);
            let tx = TxEip1559 {
                chain_id,
                nonce,
                gas_limit: gas,
                max_fee_per_gas: base_fee * 2 + tip,
                max_priority_fee_per_gas: tip,
                to: TxKind::Create,
                value: U256::ZERO,
                access_list: Default::default(),
                input,
            };
            let signature = signer.sign_hash_sync(&tx.signature_hash()).map_err(sign_error)?;
            tx.into_signed(signature).into()
        }
        _ => {
            let gas_price = hex_u128(&node.call("eth_gasPrice", json!([]))?)?;
            let tx = TxLegacy {
                chain_id: Some(chain_id),
                nonce,
                gas_price,
                gas_limit: gas,
                to: TxKind::Create,
                value: U256::ZERO,
                input,
            };
            let signature = signer.sign_hash_sync(&tx.signature_hash()).map_err(sign_error)?;
            tx.into_signed(signature).into()
        }
    };
    Ok(envelope.encoded_2718().into())
}

/// Polls for the receipt with a progress line (at most 5 minutes).
fn wait_for_receipt(node: &Node, name: &str, hash: B256) -> miette::Result<Value> {
    let started = Instant::now();
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(format!("{name}: waiting for the receipt of {hash}"));
    loop {
        let receipt = node.call("eth_getTransactionReceipt", json!([hash]))?;
        if !receipt.is_null() {
            spinner.finish_and_clear();
            return Ok(receipt);
        }
        if started.elapsed() > Duration::from_secs(300) {
            spinner.finish_and_clear();
            return Err(miette!(
                "{name}: no receipt for {hash} after 5 minutes: it may still be mined; run again to see"
            ));
        }
        spinner.tick();
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn read_deployments(file: &Path, chain_id: u64) -> miette::Result<Deployments> {
    match std::fs::read(file) {
        Ok(bytes) => {
            let deployments: Deployments = serde_json::from_slice(&bytes)
                .map_err(|e| miette!("{} is not a deployments file: {e}", file.display()))?;
            Ok(deployments)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Deployments { chain_id, ..Deployments::default() }),
        Err(e) => Err(miette!("cannot read {}: {e}", file.display())),
    }
}

fn write_deployments(file: &Path, deployments: &Deployments) -> miette::Result<()> {
    let mut text = serde_json::to_string_pretty(deployments).into_diagnostic()?;
    text.push('\n');
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).into_diagnostic()?;
    }
    nml_compiler::solc::write_atomic(file, text.as_bytes()).map_err(|e| miette!("writing {}: {e}", file.display()))
}

fn hex_u64(value: &Value) -> miette::Result<u64> {
    let text = value.as_str().ok_or_else(|| miette!("expected a hex quantity, got {value}"))?;
    u64::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| miette!("`{text}`: {e}"))
}

fn hex_u128(value: &Value) -> miette::Result<u128> {
    let text = value.as_str().ok_or_else(|| miette!("expected a hex quantity, got {value}"))?;
    u128::from_str_radix(text.trim_start_matches("0x"), 16).map_err(|e| miette!("`{text}`: {e}"))
}
