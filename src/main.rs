//! The `nml` binary: argument parsing and dispatch.

use clap::{Parser, Subcommand};
use nml::commands;

/// nml: smart contracts that call machine-learning models on chain.
#[derive(Debug, Parser)]
#[command(name = "nml", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a project from a template (`nml new --list`).
    New(commands::new::NewArgs),
    /// Compile a project (or one .nml file) to Solidity and solc artifacts.
    Build(commands::build::BuildArgs),
    /// Parse and check a project without running solc (fast editor feedback).
    Check(commands::build::CheckArgs),
    /// Run a local chain with the inference precompile over JSON-RPC.
    Devnet(Box<commands::devnet::DevnetArgs>),
    /// Register and list the models of a running devnet.
    Models(commands::models::ModelsArgs),
    /// Build the project and run its tests on an in-process devnet with real inference.
    Test(commands::test::TestArgs),
    /// Run the tests and report the lines, statements, branches and functions they reach (summary, LCOV).
    Coverage(commands::test::CoverageArgs),
    /// Check a transaction's TEE attestations (registry, signature, time, settlement) without running a model.
    Verify(commands::verify::VerifyArgs),
    /// Deploy the project's contracts to a chain over JSON-RPC, recorded in deployments/<chain id>.json.
    Deploy(commands::deploy::DeployArgs),
    /// Serve OpenGradient's TEE gateway locally: OpenAI-style LLM endpoints with enclave-signed answers.
    Gateway(commands::gateway::GatewayArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    log_to_stderr();
    // Enclave keys made from seeds are kept in the cache for later runs.
    if let Some(dir) = nml::toolchain::cache_dir() {
        nml_runtime::tee::keep_keys_in(dir.join("enclave-keys"));
    }
    let result = match cli.command {
        Command::New(args) => commands::new::run(args),
        Command::Build(args) => commands::build::run_build(args),
        Command::Check(args) => commands::build::run_check(args),
        Command::Devnet(args) => commands::devnet::run(*args),
        Command::Models(args) => commands::models::run(args),
        Command::Test(args) => commands::test::run(args),
        Command::Coverage(args) => commands::test::coverage(args),
        Command::Verify(args) => commands::verify::run(args),
        Command::Deploy(args) => commands::deploy::run(args),
        Command::Gateway(args) => commands::gateway::run(args),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// What the runtime reports as it works (a block the miner could not build,
/// a settlement that failed) goes to stderr: warnings and errors, or the
/// level `NML_LOG` names (`error`, `warn`, `info`, `debug`, `trace`, `off`).
fn log_to_stderr() {
    use tracing_subscriber::filter::LevelFilter;
    let level = std::env::var("NML_LOG").ok().and_then(|l| l.parse::<LevelFilter>().ok()).unwrap_or(LevelFilter::WARN);
    tracing_subscriber::fmt().with_max_level(level).with_writer(std::io::stderr).with_target(false).init();
}
