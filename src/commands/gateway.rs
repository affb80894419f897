//! `nml gateway`: OpenGradient's TEE gateway, locally — OpenAI-style
//! `/v1/chat/completions` and `/v1/completions` answered by the same LLM
//! backends as the devnet's precompile, every answer signed by the enclave
//! the devnet's TEE registry holds (docs/gateway.md).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;

use alloy_primitives::{Address, U256};
use alloy_signer_local::PrivateKeySigner;
use miette::{IntoDiagnostic, WrapErr, miette};
use nml_gateway::{Gateway, GatewayConfig, PaymentConfig, Payments, Prices, Scheme};
use nml_runtime::chain::dev_accounts;
use nml_runtime::predeploys::payment_address;
use nml_runtime::predeploys::payments;
use nml_runtime::rpc_client;
use nml_runtime::tee::Enclave;
use serde_json::json;

use super::common::shutdown_signal;
use super::llm_flags::LlmArgs;
use crate::toolchain::onnxruntime;

/// Arguments of `nml gateway`.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// The address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,
    /// The port to listen on (0: any free port).
    #[arg(long, default_value_t = 8402)]
    pub port: u16,
    /// A project whose `[llm]` table configures the backends.
    #[arg(long, value_name = "PATH")]
    pub project: Option<PathBuf>,
    /// The seed of the devnet whose enclave signs the answers (`nml devnet
    /// --tee-seed`): the same seed gives the key its TEE registry holds.
    #[arg(long, value_name = "SEED", default_value_t = 0)]
    pub tee_seed: u64,
    /// Which of that devnet's enclaves signs (0-based).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub tee_index: u32,
    /// Ask for x402 payments, settled on the chain at URL (a devnet, which
    /// has the OPG token, Permit2 and x402's proxies predeployed).
    #[arg(long, value_name = "URL", requires = "price")]
    pub rpc_url: Option<String>,
    /// The price of one request, in OPG (e.g. `0.01`); with --rpc-url.
    #[arg(long, value_name = "OPG", requires = "rpc_url")]
    pub price: Option<String>,
    /// The price of one token of prompt and answer, in OPG (`upto` only).
    #[arg(long, value_name = "OPG", default_value = "0")]
    pub price_per_token: String,
    /// The most one request may cost, in OPG: what `upto` asks to sign for.
    #[arg(long, value_name = "OPG", default_value = "0.1")]
    pub cap: String,
    /// The x402 scheme offered.
    #[arg(long, value_enum, default_value = "upto")]
    pub scheme: SchemeArg,
    /// Who is paid (default: the signing enclave's payment address in the registry).
    #[arg(long, value_name = "ADDRESS")]
    pub pay_to: Option<Address>,
    /// The environment variable holding the key of the account that settles
    /// payments (default: the devnet's dev account 9).
    #[arg(long, value_name = "VAR")]
    pub facilitator_key_env: Option<String>,
    /// LLM backends.
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// `--scheme`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemeArg {
    /// The signed amount is charged.
    Exact,
    /// Up to the signed amount is charged: what the request cost.
    Upto,
}

/// `amount` OPG (a decimal number) in the token's smallest unit (18 decimals).
fn opg(flag: &str, amount: &str) -> miette::Result<U256> {
    let bad = || miette!("{flag} {amount:?} is not an amount of OPG (like 0.01)");
    let (whole, fraction) = amount.trim().split_once('.').unwrap_or((amount.trim(), ""));
    if fraction.len() > 18 || (whole.is_empty() && fraction.is_empty()) {
        return Err(bad());
    }
    let digits = format!("{whole}{fraction:0<18}");
    U256::from_str_radix(&digits, 10).map_err(|_| bad())
}

/// The facilitator of `--rpc-url`: checks that the chain has the payment
/// contracts and reads its chain id.
fn payments(args: &GatewayArgs, enclave: &Enclave) -> miette::Result<Option<Arc<Payments>>> {
    let (Some(url), Some(price)) = (&args.rpc_url, &args.price) else { return Ok(None) };
    let chain_id = rpc_client::call(url, "eth_chainId", json!([])).map_err(|e| miette!("--rpc-url: {e}"))?;
    let chain_id = chain_id
        .as_str()
        .and_then(|s| u64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
        .ok_or_else(|| miette!("--rpc-url: eth_chainId answered {chain_id}"))?;
    let code = rpc_client::call(url, "eth_getCode", json!([payments::OPG_TOKEN, "latest"]))
        .map_err(|e| miette!("--rpc-url: {e}"))?;
    if code.as_str().is_none_or(|c| c.len() <= 2) {
        return Err(miette!(
            help = "start the chain with `nml devnet` (which predeploys them)",
            "the chain at {url} has no OPG token at {}: payments need it, Permit2 and x402's proxies",
            payments::OPG_TOKEN
        ));
    }
    let facilitator: PrivateKeySigner = match &args.facilitator_key_env {
        Some(var) => std::env::var(var)
            .map_err(|_| miette!("--facilitator-key-env: ${var} is not set"))?
            .trim()
            .parse()
            .map_err(|_| miette!("--facilitator-key-env: ${var} is not a private key"))?,
        None => dev_accounts(10).pop().map(|a| a.signer).ok_or_else(|| miette!("no dev account"))?,
    };
    let config = PaymentConfig {
        rpc_url: url.clone(),
        chain_id,
        scheme: match args.scheme {
            SchemeArg::Exact => Scheme::Exact,
            SchemeArg::Upto => Scheme::Upto,
        },
        prices: Prices {
            per_request: opg("--price", price)?,
            per_token: opg("--price-per-token", &args.price_per_token)?,
            cap: opg("--cap", &args.cap)?,
        },
        pay_to: args.pay_to.unwrap_or_else(|| payment_address(enclave.id())),
        facilitator,
        max_timeout_seconds: 300,
    };
    Ok(Some(Arc::new(Payments::new(config))))
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub fn run(args: GatewayArgs) -> miette::Result<ExitCode> {
    let library = onnxruntime::resolve(true).map_err(|e| miette!("{e}"))?.path;
    let (table, root) = match &args.project {
        Some(path) => {
            let project = nml_compiler::project::Project::open(path).map_err(|e| miette!("{e}"))?;
            (project.config.llm.clone(), project.root.clone())
        }
        None => (None, std::env::current_dir().map_err(|e| miette!("the current directory: {e}"))?),
    };
    let stack = args.llm.stack(table.as_ref(), &root, &library)?;
    let enclave = Enclave::from_seed(args.tee_seed, args.tee_index).map_err(|e| miette!("the enclave's key: {e}"))?;
    let payments = payments(&args, &enclave)?;
    let config = GatewayConfig {
        addr: SocketAddr::new(args.host, args.port),
        backend: stack.backend,
        concurrency: stack.concurrency,
        enclave,
        payments,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("starting the async runtime")?;
    runtime.block_on(async {
        let description = config.backend.describe();
        let payments = config.payments.clone();
        let tee_id = config.enclave.id();
        let addr = config.addr;
        let gateway =
            Gateway::start(config).await.into_diagnostic().wrap_err_with(|| format!("cannot listen on {addr}"))?;
        println!("nml gateway v{}", env!("CARGO_PKG_VERSION"));
        println!("LLM calls: {description}");
        println!("Signing enclave: {tee_id} (GET /signing-key)");
        match &payments {
            Some(p) => println!(
                "Payments: x402 {} on eip155:{} in OPG, {} units a request (cap {}), paid to {}, settled by {}",
                p.config().scheme.name(),
                p.config().chain_id,
                p.config().prices.per_request,
                p.config().prices.cap,
                p.config().pay_to,
                p.config().facilitator.address()
            ),
            None => println!("Payments: none asked (every request is answered free)"),
        }
        println!("Listening on {} (/v1/chat/completions, /v1/completions)", gateway.local_addr);
        shutdown_signal().await;
        gateway.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
