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
use nml_gateway::ohttp::OhttpKey;
use nml_gateway::server::OHTTP_PATH;
use nml_gateway::{Gateway, GatewayConfig};
use nml_runtime::tee::{Enclave, Fault, Faults};

use super::common::shutdown_signal;
use super::gateway_flags::{PaymentArgs, banner};
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
    let (table, root) = match &args.project {
        Some(path) => {
            let project = nml_compiler::project::Project::open(path).map_err(|e| miette!("{e}"))?;
            (project.config.llm.clone(), project.root.clone())
        }
        None => (None, std::env::current_dir().map_err(|e| miette!("the current directory: {e}"))?),
    };
    let stack = args.llm.stack(table.as_ref(), &root, &library)?;
    let enclave = Enclave::from_seed(args.tee_seed, args.tee_index).map_err(|e| miette!("the enclave's key: {e}"))?;
    let on_chain = match (&args.rpc_url, &args.payment.price) {
        (Some(url), _) => args.payment.on_chain(url, &enclave)?,
        (None, Some(_)) => return Err(miette!("--price needs --rpc-url: the chain payments settle on")),
        (None, None) => Default::default(),
    };
    let faults = Arc::new(Faults::default());
    for fault in &args.tee_faults {
        faults.set(*fault, true);
    }
    let config = GatewayConfig {
        addr: SocketAddr::new(args.host, args.port),
        backend: stack.backend,
        concurrency: stack.concurrency,
        enclave,
        faults,
        payments: on_chain.payments,
        settlement: on_chain.settlement,
        tls: None,
        ohttp: Some(Arc::new(OhttpKey::from_seed(args.tee_seed, args.tee_index))),
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
        println!("Listening on {} (/v1/chat/completions, /v1/completions, {OHTTP_PATH})", gateway.local_addr);
        shutdown_signal().await;
        gateway.stop().await;
        Ok(ExitCode::SUCCESS)
    })
}
