//! `nml gateway`: OpenGradient's TEE gateway, locally — OpenAI-style
//! `/v1/chat/completions` and `/v1/completions` answered by the same LLM
//! backends as the devnet's precompile, every answer signed by the enclave
//! the devnet's TEE registry holds, paid with x402 when asked
//! (docs/gateway.md).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use miette::{IntoDiagnostic, WrapErr, miette};
use nml_gateway::chain::ChainAccount;
use nml_gateway::ohttp::OhttpKey;
use nml_gateway::registration::{HEARTBEAT_PERIOD, Registration};
use nml_gateway::server::OHTTP_PATH;
use nml_gateway::{Gateway, GatewayConfig, TlsIdentity};
use nml_runtime::tee::{Enclave, Fault, Faults, GATEWAY_ENCLAVE, nitro};

use super::common::{key_or_dev_account, reachable, shutdown_signal};
use super::gateway_flags::{GatewayTable, PaymentArgs, banner};
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
    /// Which of that devnet's enclaves signs (0-based; with --register,
    /// the gateway's own, 1000, by default).
    #[arg(long, value_name = "N")]
    pub tee_index: Option<u32>,
    /// Serve TLS and register in the TEE registry of the chain at
    /// --rpc-url as an LLM proxy (its certificate pinned there, its OHTTP
    /// key published), so OpenGradient's SDK finds it (`og.LLM(...)`,
    /// `og.ConfidentialLLM(...)`); heartbeats keep it active.
    #[arg(long, requires = "rpc_url")]
    pub register: bool,
    /// The environment variable holding the key of the registry's operator
    /// and admin (default: the devnet's dev account 0).
    #[arg(long, value_name = "VAR", requires = "register")]
    pub operator_key_env: Option<String>,
    /// Injects a fault into the enclave's signatures (repeatable):
    /// wrong-output, stale-timestamp, future-timestamp.
    #[arg(long = "tee-fault", value_name = "FAULT")]
    pub tee_faults: Vec<Fault>,
    /// The chain x402 payments (with --price) and the answers' hashes
    /// settle on: a devnet, which has the OPG token, Permit2, x402's proxies
    /// and the settlement relay predeployed.
    #[arg(long, value_name = "URL")]
    pub rpc_url: Option<String>,
    /// x402 payments.
    #[command(flatten)]
    pub payment: PaymentArgs,
    /// LLM backends.
    #[command(flatten)]
    pub llm: LlmArgs,
}

/// Runs the gateway until Ctrl-C or SIGTERM.
pub fn run(args: GatewayArgs) -> miette::Result<ExitCode> {
    let library = onnxruntime::resolve(true).map_err(|e| miette!("{e}"))?.path;
    let (table, prices, root) = match &args.project {
        Some(path) => {
            let project = nml_compiler::project::Project::open(path).map_err(|e| miette!("{e}"))?;
            let prices = GatewayTable::from_toml(project.config.gateway.as_ref())?;
            (project.config.llm.clone(), prices, project.root.clone())
        }
        None => (None, None, std::env::current_dir().map_err(|e| miette!("the current directory: {e}"))?),
    };
    let stack = args.llm.stack(table.as_ref(), &root, &library)?;
    let index = args.tee_index.unwrap_or(if args.register { GATEWAY_ENCLAVE } else { 0 });
    let enclave = Enclave::from_seed(args.tee_seed, index).map_err(|e| miette!("the enclave's key: {e}"))?;
    let priced = args.payment.price.is_some() || prices.as_ref().is_some_and(|t| t.price.is_some());
    let on_chain = match (&args.rpc_url, priced) {
        (Some(url), _) => args.payment.on_chain(url, &enclave, prices.as_ref())?,
        (None, true) => {
            return Err(miette!("a price (--price, or [gateway] price) needs --rpc-url: the chain payments settle on"));
        }
        (None, false) => Default::default(),
    };
    let faults = Arc::new(Faults::default());
    for fault in &args.tee_faults {
        faults.set(*fault, true);
    }
    let tls = match args.register {
        true => {
            let (certificate, private_key) = nitro::self_signed_tls(args.tee_seed, index)
                .map_err(|e| miette!("the gateway's TLS certificate: {e}"))?;
            Some(TlsIdentity { certificate: certificate.to_vec(), private_key })
        }
        false => None,
    };
    let ohttp = Arc::new(OhttpKey::from_seed(args.tee_seed, index));
    let config = GatewayConfig {
        addr: SocketAddr::new(args.host, args.port),
        backend: stack.backend,
        concurrency: stack.concurrency,
        enclave: Arc::clone(&enclave),
        faults,
        payments: on_chain.payments,
        settlement: on_chain.settlement,
        tls: tls.clone(),
        ohttp: Some(Arc::clone(&ohttp)),
        body_time: nml_gateway::BODY_TIME,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("starting the async runtime")?;
    runtime.block_on(async {
        let banner = banner(&config);
        let addr = config.addr;
        let gateway =
            Gateway::start(config).await.into_diagnostic().wrap_err_with(|| format!("cannot listen on {addr}"))?;
        println!("nml gateway v{}\n{banner}", env!("CARGO_PKG_VERSION"));
        let registration = match (tls, &args.rpc_url, on_chain.account) {
            (Some(tls), Some(url), Some(account)) => {
                let endpoint = format!("https://{}", reachable(gateway.local_addr));
                let operator = operator(url, account.chain_id(), args.operator_key_env.as_deref())?;
                let (seed, registering) = (args.tee_seed, endpoint.clone());
                let registration = tokio::task::spawn_blocking(move || {
                    Registration::register(
                        &operator,
                        account,
                        enclave,
                        (seed, index),
                        &tls.certificate,
                        &registering,
                        &ohttp,
                    )
                })
                .await
                .into_diagnostic()?
                .map_err(|e| miette!("registering the gateway: {e}"))?;
                println!(
                    "Registered in the TEE registry of {url} as an LLM proxy at {endpoint} (tee id {})",
                    registration.tee_id()
                );
                let registration = Arc::new(registration);
                tokio::spawn(heartbeats(Arc::clone(&registration)));
                Some(registration)
            }
            _ => None,
        };
        println!("Listening on {} (/v1/chat/completions, /v1/completions, {OHTTP_PATH})", gateway.local_addr);
        shutdown_signal().await;
        drop(registration);
        gateway.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}

/// The registry's operator: the key in `$VAR`, or the devnet's dev account 0.
fn operator(rpc_url: &str, chain_id: u64, key_env: Option<&str>) -> miette::Result<ChainAccount> {
    let signer = key_or_dev_account("--operator-key-env", key_env, 0)?;
    Ok(ChainAccount::new(rpc_url.to_owned(), chain_id, signer))
}

/// Keeps the registration active: a heartbeat every minute; one that fails
/// is logged and the next one tries again.
async fn heartbeats(registration: Arc<Registration>) {
    let mut every = tokio::time::interval(HEARTBEAT_PERIOD);
    every.tick().await;
    loop {
        every.tick().await;
        let beating = Arc::clone(&registration);
        match tokio::task::spawn_blocking(move || beating.beat()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("warning: the enclave's heartbeat failed (tried again in a minute): {e}"),
            Err(e) => eprintln!("warning: the enclave's heartbeat failed (tried again in a minute): {e}"),
        }
    }
}
