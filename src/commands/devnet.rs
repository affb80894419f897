//! `nml devnet`: a local chain on JSON-RPC (HTTP and WebSocket on one port).

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use miette::{IntoDiagnostic, WrapErr, miette};
use nml_runtime::chain::{ChainConfig, DEV_MNEMONIC, ETHER};
use nml_runtime::evm::console::ConsoleSink;
use nml_runtime::fork::ForkSource;
use nml_runtime::inference::history::PriceFeed;
use nml_runtime::inference::{Device, OnnxConfig, OnnxExecutor};
use nml_runtime::mempool::{OnMiss, PipeConfig};
use nml_runtime::node::InferenceSetup;
use nml_runtime::settlement::{SettlementConfig, SettlementMode};
use nml_runtime::tee::{Enclaves, Fault};
use nml_runtime::{Devnet, DevnetConfig, Mining, NodeError};

use super::common::{
    project_remote_models, reachable, read_remote_signatures, register_project_models, shutdown_signal,
    with_remote_models,
};
use super::fork_flags::ForkArgs;
use super::gateway_flags::{GatewayTable, PaymentArgs, banner as gateway_banner};
use super::llm_flags::LlmArgs;
use crate::toolchain::onnxruntime;

/// Arguments of `nml devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: IpAddr,
    /// The port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 8545)]
    pub port: u16,
    /// The chain id (default 31337; with --fork-url, the remote's, which
    /// must then equal this one if given).
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// How many dev accounts to fund (at most 10,000).
    #[arg(long, default_value_t = 10, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10_000))]
    pub accounts: usize,
    /// The balance of each dev account, in ether.
    #[arg(long, default_value_t = 10_000)]
    pub balance: u64,
    /// Mine a block every SECS seconds instead of one per transaction.
    #[arg(long, value_name = "SECS", conflicts_with = "no_mining")]
    pub block_time: Option<f64>,
    /// Mine only on `evm_mine` / `anvil_mine`.
    #[arg(long)]
    pub no_mining: bool,
    /// Load the chain from FILE at start (when it exists) and write it there on
    /// Ctrl-C, SIGTERM and `anvil_dumpState`.
    #[arg(long, value_name = "FILE", conflicts_with = "fork_url")]
    pub state: Option<PathBuf>,
    /// Fork mode.
    #[command(flatten)]
    pub fork: ForkArgs,
    /// The block gas limit.
    #[arg(long, default_value_t = 30_000_000)]
    pub gas_limit: u64,
    /// The base fee of the genesis block, in wei (at most 2^60, the base
    /// fee's ceiling).
    #[arg(long, default_value_t = 1_000_000_000, value_parser = clap::value_parser!(u64).range(0..=1 << 60))]
    pub base_fee: u64,
    /// Register every `.onnx` file in DIR with the inference precompile
    /// (repeatable); each gets the id derived from its bytes.
    #[arg(long, value_name = "DIR")]
    pub models: Vec<PathBuf>,
    /// Register the models of an nml project: each `model` declaration's ONNX
    /// file under the id its contracts call, and its `models/*.onnx`.
    #[arg(long, value_name = "PATH")]
    pub project: Option<PathBuf>,
    /// Inference worker threads: how many requests run at once (default: the cores).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// ONNX Runtime intra-op threads per session.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub intra_threads: usize,
    /// How long one inference may take, in seconds; then it fails (and the
    /// transaction's call to the precompile reverts).
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub inference_timeout: f64,
    /// What to do at inclusion with a request that was not pre-executed:
    /// run it inline, or defer the transaction to the next block.
    #[arg(long, value_enum, default_value = "inline")]
    pub on_miss: OnMissArg,
    /// The most rounds of pre-execution per block (dependent inferences).
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub max_rounds: u32,
    /// How many simulated enclaves attest TEE-mode results (each with its
    /// own RSA-2048 key; requests are spread over them by request id).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub tees: u32,
    /// The seed the enclaves' keys are made from: the same seed gives the
    /// same keys and TEE ids on every run and machine.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub tee_seed: u64,
    /// How TEE results settle on chain: a Merkle root per batch, a record
    /// per result, or nothing.
    #[arg(long, value_enum, default_value = "batch")]
    pub settlement: SettlementArg,
    /// Blocks between the block that used a result and its settlement (the
    /// trust gap, in blocks).
    #[arg(long, value_name = "BLOCKS", default_value_t = 3, value_parser = clap::value_parser!(u64).range(0..=1_000_000))]
    pub settle_after: u64,
    /// A batch settles when it holds this many results, when none joined it
    /// for 5 minutes of chain time, or when it is 15 minutes old.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..=1024))]
    pub batch_size: u64,
    /// A batch settles when no result joined it for this many seconds of chain time.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub batch_idle: u64,
    /// A batch settles when its first result is this many seconds old (chain time).
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub batch_age: u64,
    /// Injects a fault into the enclaves, operator or relay (repeatable):
    /// wrong-output, stale-timestamp, future-timestamp, no-heartbeat,
    /// late-settlement, withhold-settlement, wrong-root. `nml_setTeeFault`
    /// switches them at run time.
    #[arg(long = "tee-fault", value_name = "FAULT")]
    pub tee_faults: Vec<Fault>,
    /// Where models run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceArg,
    /// Serve model ID from a model server over the Open Inference Protocol
    /// (KServe v2: Triton, KServe, MLServer) instead of ONNX Runtime
    /// (repeatable): `ID=http://host:port/v2/models/NAME[/versions/V]`.
    #[arg(long = "remote-model", value_name = "ID=URL")]
    pub remote_models: Vec<String>,
    /// Requests sent to one model server at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub remote_concurrency: usize,
    /// Price candles for price-history inference at 0x…F5 (a JSON file of
    /// 1-minute candles per pair, docs/opengradient.md) instead of the
    /// built-in synthetic feed.
    #[arg(long, value_name = "FILE")]
    pub price_feed: Option<PathBuf>,
    /// LLM backends.
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Also serve the TEE gateway (as `nml gateway`) on PORT, answered by
    /// this devnet's LLM backends, signed by the gateway's enclave (index
    /// 1000 of --tee-seed), and paid (with
    /// --price) on this devnet.
    #[arg(long, value_name = "PORT", conflicts_with = "no_inference")]
    pub gateway: Option<u16>,
    /// Serve the gateway over plain HTTP, unregistered (for
    /// `og.LLM.from_url`), instead of TLS with its enclave in the registry.
    #[arg(long, requires = "gateway")]
    pub gateway_http: bool,
    /// The gateway's x402 payments (with --gateway).
    #[command(flatten)]
    pub gateway_payment: PaymentArgs,
    /// Run without the inference precompile (ONNX Runtime is not needed).
    #[arg(long, conflicts_with_all = ["models", "project"])]
    pub no_inference: bool,
}

/// `--on-miss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OnMissArg {
    /// Run the request inline at inclusion.
    Inline,
    /// Defer the transaction to the next block.
    Defer,
}

/// `--settlement`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SettlementArg {
    /// A Merkle root per batch of results.
    Batch,
    /// One record per result.
    Individual,
    /// Nothing is posted.
    Private,
}

/// `--device`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DeviceArg {
    /// The CPU.
    Cpu,
    /// The first NVIDIA GPU (needs the `cuda` build feature and a GPU build of ONNX Runtime).
    Cuda,
}

impl DevnetArgs {
    fn config(&self) -> miette::Result<DevnetConfig> {
        let mining = match (self.block_time, self.no_mining) {
            (_, true) => Mining::Manual,
            (Some(secs), false) => {
                let every = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| miette!("--block-time must be a positive number of seconds, not {secs}"))?;
                Mining::Interval(every)
            }
            (None, false) => Mining::Auto,
        };
        Ok(DevnetConfig {
            chain: ChainConfig {
                chain_id: self.chain_id.unwrap_or(ChainConfig::default().chain_id),
                gas_limit: self.gas_limit,
                base_fee: self.base_fee,
                accounts: self.accounts,
                balance: alloy_balance(self.balance),
                ..ChainConfig::default()
            },
            mining,
            state_file: self.state.clone(),
            fork: self.fork.connect(None, self.chain_id)?,
        })
    }
}

fn alloy_balance(ether: u64) -> nml_runtime::chain::U256 {
    nml_runtime::chain::U256::from(ether) * nml_runtime::chain::U256::from(ETHER)
}

/// The executor and registry of `nml devnet`: ONNX Runtime (provisioned
/// into nml's cache on first use) with the models of every `--models` folder.
pub fn inference_setup(args: &DevnetArgs) -> miette::Result<(InferenceSetup, Option<GatewayTable>)> {
    let library = onnxruntime::resolve(true).map_err(|e| miette!("{e}"))?.path;
    let timeout = Duration::try_from_secs_f64(args.inference_timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| miette!("--inference-timeout must be a positive number of seconds"))?;
    let mut config = OnnxConfig { timeout, intra_threads: args.intra_threads.max(1), ..OnnxConfig::new(library) };
    if let Some(workers) = args.workers {
        config.workers = workers.max(1);
    }
    if args.device == DeviceArg::Cuda {
        config.device = Device::Cuda { device_id: 0 };
    }
    let onnx = Arc::new(OnnxExecutor::new(config.clone()).map_err(|e| miette!("{e}"))?);
    let mut remote = Vec::new();
    for pair in &args.remote_models {
        let (id, url) = pair.split_once('=').ok_or_else(|| miette!("--remote-model {pair}: expected ID=URL"))?;
        remote.push((id.to_owned(), url.parse().map_err(|e| miette!("--remote-model {pair}: {e}"))?));
    }
    for dir in &args.models {
        onnx.registry().load_dir(dir).map_err(|e| miette!("cannot register the models of {}: {e}", dir.display()))?;
    }
    let (mut llm_table, mut prices) = (None, None);
    let mut root = std::env::current_dir().map_err(|e| miette!("the current directory: {e}"))?;
    if let Some(path) = &args.project {
        let mut project = nml_compiler::project::Project::open(path).map_err(|e| miette!("{e}"))?;
        read_remote_signatures(&mut project)?;
        llm_table = project.config.llm.clone();
        prices = GatewayTable::from_toml(project.config.gateway.as_ref())?;
        root.clone_from(&project.root);
        let fe = nml_compiler::Frontend::run(project);
        register_project_models(onnx.registry(), &fe)?;
        remote.extend(project_remote_models(&fe)?);
    }
    let llm = args.llm.stack(llm_table.as_ref(), &root, &config.library)?;
    let pipe = PipeConfig {
        round_limit: args.max_rounds.max(1),
        on_miss: match args.on_miss {
            OnMissArg::Inline => OnMiss::Inline,
            OnMissArg::Defer => OnMiss::Defer,
        },
        llm_concurrency: llm.concurrency,
        ..PipeConfig::default()
    };
    let registry = Some(Arc::clone(onnx.registry()));
    let executor = with_remote_models(onnx, remote, timeout, args.remote_concurrency.max(1))?;
    let enclaves = Arc::new(Enclaves::new(args.tees, args.tee_seed));
    for fault in &args.tee_faults {
        enclaves.faults().set(*fault, true);
    }
    let settlement = SettlementConfig {
        mode: match args.settlement {
            SettlementArg::Batch => SettlementMode::Batch,
            SettlementArg::Individual => SettlementMode::Individual,
            SettlementArg::Private => SettlementMode::Private,
        },
        after_blocks: args.settle_after,
        batch_size: usize::try_from(args.batch_size).unwrap_or(20),
        batch_idle_secs: args.batch_idle,
        batch_age_secs: args.batch_age,
    };
    Ok((InferenceSetup { executor, llm: llm.backend, registry, pipe, enclaves, settlement }, prices))
}

/// Runs the devnet until Ctrl-C or SIGTERM.
pub fn run(args: DevnetArgs) -> miette::Result<ExitCode> {
    if args.gateway_payment.price.is_some() && args.gateway.is_none() {
        return Err(miette!("--price is the gateway's: pass --gateway PORT too"));
    }
    let config = args.config()?;
    let fork = config.fork.clone();
    let mut llm = None;
    let started = if args.no_inference {
        Devnet::new(config)
    } else {
        let (setup, prices) = inference_setup(&args)?;
        llm = Some(SharedLlm {
            backend: Arc::clone(&setup.llm),
            concurrency: setup.pipe.llm_concurrency,
            faults: setup.enclaves.shared_faults(),
            prices,
        });
        Devnet::with_inference(config, setup)
    };
    let devnet = started.map_err(|e| match e {
        NodeError::Dump(dump) => miette!(
            help = "fix or delete the file, or start without --state; nml leaves it untouched",
            "cannot load the devnet state: {dump}"
        ),
        other => miette!("{other}"),
    })?;
    let devnet = Arc::new(devnet);
    if let (Some(path), Some(pipe)) = (&args.price_feed, devnet.pipe()) {
        pipe.set_price_feed(PriceFeed::read(path).map_err(|e| miette!("--price-feed: {e}"))?);
    }
    if let Some(pipe) = devnet.pipe() {
        // As Hardhat's and anvil's nodes do: contracts' console.log on stdout.
        pipe.set_console(Some(ConsoleSink(Arc::new(|line: &str| {
            // A line is the contract's text: it must not break the output's
            // lines or drive the terminal.
            let _ = writeln!(std::io::stdout().lock(), "console.log: {}", nml_runtime::testing::printable(line));
        }))));
    }
    if !args.no_inference {
        devnet.start_settlement().into_diagnostic().wrap_err("starting the settlement relay")?;
        devnet.start_scheduler().into_diagnostic().wrap_err("starting the workflow scheduler")?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("starting the async runtime")?;
    runtime.block_on(serve(devnet, &args, llm, fork))
}

/// What the gateway of `--gateway` shares with the devnet: its LLM backend
/// (and how many calls it may make at once), its enclaves' faults, and the
/// project's `[gateway]` prices.
struct SharedLlm {
    backend: Arc<dyn nml_runtime::llm::LlmBackend>,
    concurrency: usize,
    faults: Arc<nml_runtime::tee::Faults>,
    prices: Option<GatewayTable>,
}

async fn serve(
    devnet: Arc<Devnet>,
    args: &DevnetArgs,
    llm: Option<SharedLlm>,
    fork: Option<Arc<ForkSource>>,
) -> miette::Result<ExitCode> {
    let addr = SocketAddr::new(args.host, args.port);
    let server = nml_runtime::rpc::serve(devnet.clone(), addr)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("cannot listen on {addr}"))?;
    let gateway = match (args.gateway, llm) {
        (Some(port), Some(shared)) => Some(start_gateway(&devnet, args, port, server.local_addr, shared).await?),
        _ => None,
    };
    print_banner(&devnet, args, server.local_addr);

    shutdown_signal().await;
    // A read of the remote may wait on it for up to its time limit: the
    // requests that wait fail at once instead, so that stopping waits on none.
    if let Some(fork) = fork {
        fork.close();
    }
    if let Some(gateway) = gateway {
        gateway.stop().await;
    }
    // No request may change the chain once its state is written: the
    // server stops first, and waits for the calls in flight (an `evm_mine`
    // whose model runs, an `anvil_setBalance`) to answer.
    server.stop().await;
    // The block being built is finished, and transactions whose inference
    // runs are mined once it is done, before the state is written.
    let stopping = Arc::clone(&devnet);
    if tokio::task::spawn_blocking(move || stopping.shutdown()).await.is_err() {
        eprintln!("error: the miner failed while stopping");
    }
    match devnet.save_state() {
        Ok(Some(path)) => println!("\nState written to {}", path.display()),
        Ok(None) => {}
        Err(e) => {
            eprintln!("error: could not write the state: {e}");
            return Ok(ExitCode::FAILURE);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts `--gateway`: paid on this devnet, reached at `rpc` (its own
/// address); over TLS (unless `--gateway-http`) with the enclave registered
/// in the TEE registry as an LLM proxy at its address, its certificate
/// pinned there.
async fn start_gateway(
    devnet: &Arc<Devnet>,
    args: &DevnetArgs,
    port: u16,
    rpc: SocketAddr,
    shared: SharedLlm,
) -> miette::Result<nml_gateway::Gateway> {
    use nml_runtime::tee::{Enclave, GATEWAY_ENCLAVE, nitro};
    let seed = args.tee_seed;
    let failed = |e: String| miette!("the gateway's enclave: {e}");
    let enclave = tokio::task::spawn_blocking(move || Enclave::from_seed(seed, GATEWAY_ENCLAVE))
        .await
        .map_err(|e| failed(e.to_string()))?
        .map_err(|e| failed(e.to_string()))?;
    let tls = match args.gateway_http {
        true => None,
        false => {
            let (certificate, private_key) = nitro::self_signed_tls(seed, GATEWAY_ENCLAVE).map_err(failed)?;
            Some(nml_gateway::TlsIdentity { certificate: certificate.to_vec(), private_key })
        }
    };
    let url = format!("http://{}", reachable(rpc));
    let payment = args.gateway_payment.clone();
    let signer = Arc::clone(&enclave);
    let prices = shared.prices;
    // The facilitator reads this devnet over JSON-RPC, which this runtime serves.
    let on_chain = tokio::task::spawn_blocking(move || payment.on_chain(&url, &signer, prices.as_ref()))
        .await
        .map_err(|e| miette!("starting the gateway: {e}"))??;
    let ohttp = Arc::new(nml_gateway::ohttp::OhttpKey::from_seed(seed, GATEWAY_ENCLAVE));
    let config = nml_gateway::GatewayConfig {
        addr: SocketAddr::new(args.host, port),
        backend: shared.backend,
        concurrency: shared.concurrency,
        enclave: Arc::clone(&enclave),
        faults: shared.faults,
        payments: on_chain.payments,
        settlement: on_chain.settlement,
        tls: tls.clone(),
        ohttp: Some(Arc::clone(&ohttp)),
        body_time: nml_gateway::BODY_TIME,
    };
    let banner = gateway_banner(&config);
    let gateway = nml_gateway::Gateway::start(config)
        .await
        .into_diagnostic()
        .wrap_err_with(|| format!("the gateway cannot listen on port {port}"))?;
    let endpoint = format!("{}://{}", if tls.is_some() { "https" } else { "http" }, reachable(gateway.local_addr));
    let registered = match tls {
        Some(tls) => {
            let devnet = Arc::clone(devnet);
            let (endpoint, certificate) = (endpoint.clone(), tls.certificate.into());
            let key_config = Some(ohttp.key_config().into());
            tokio::task::spawn_blocking(move || devnet.register_llm_proxy(enclave, certificate, endpoint, key_config))
                .await
                .map_err(|e| miette!("registering the gateway: {e}"))?
                .map_err(|e| miette!("{e}"))?;
            "registered in the TEE registry as an LLM proxy, its TLS certificate and OHTTP key there"
        }
        None => "plain HTTP, not in the registry (for og.LLM.from_url)",
    };
    println!("Gateway on {endpoint} (nml gateway; {registered})\n{banner}\n");
    Ok(gateway)
}

fn print_banner(devnet: &Devnet, args: &DevnetArgs, addr: SocketAddr) {
    use std::io::Write;
    let mut out = String::new();
    let chain = devnet.chain_config();
    out.push_str(&format!("nml devnet v{} (chain id {})\n\n", env!("CARGO_PKG_VERSION"), chain.chain_id));
    out.push_str("Available accounts\n==================\n");
    for (i, account) in devnet.dev_accounts().iter().enumerate() {
        let balance = devnet.balance(account.address, Default::default()).unwrap_or_default();
        let ether = balance / nml_runtime::chain::U256::from(ETHER);
        out.push_str(&format!("({i}) {} ({ether} ETH)\n", account.address));
    }
    out.push_str("\nPrivate keys\n==================\n");
    for (i, account) in devnet.dev_accounts().iter().enumerate() {
        out.push_str(&format!("({i}) {}\n", account.signer.to_bytes()));
    }
    out.push_str(&format!("\nMnemonic:        {DEV_MNEMONIC}\nDerivation path: m/44'/60'/0'/0/<i>\n\n"));
    let mining = match (args.no_mining, args.block_time) {
        (true, _) => "manual (evm_mine)".to_owned(),
        (false, Some(secs)) => format!("every {secs} s"),
        (false, None) => "automine".to_owned(),
    };
    out.push_str(&format!(
        "Mining:     {mining}\nGas limit:  {}\nBase fee:   {} wei\n",
        chain.gas_limit, chain.base_fee
    ));
    if let Some(path) = &args.state {
        out.push_str(&format!("State file: {}\n", path.display()));
    }
    match devnet.list_models() {
        Ok(models) => {
            out.push_str(&format!("Inference:  precompile at 0x…F4, {} model(s)\n", models.len()));
            for model in models {
                let file = model.file.as_ref().map(|f| f.display().to_string()).unwrap_or_default();
                out.push_str(&format!("  {}  {file}\n", model.id));
            }
            if let Some(pipe) = devnet.pipe() {
                out.push_str(&format!("LLM calls:  {}\n", pipe.llm_backend()));
            }
        }
        Err(_) => out.push_str("Inference:  off\n"),
    }
    out.push_str(&format!("\nListening on {addr} (HTTP and WebSocket)\n"));
    let mut stdout = std::io::stdout().lock();
    // A closed stdout must not stop the node.
    let _ = stdout.write_all(out.as_bytes());
    let _ = stdout.flush();
}
