//! `nml devnet`: placeholder until the devnet lands (owned by the devnet work).

/// Arguments of `nml devnet`.
#[derive(Debug, clap::Args)]
pub struct DevnetArgs {}

/// Runs the devnet.
pub fn run(_args: DevnetArgs) -> miette::Result<std::process::ExitCode> {
    Err(miette::miette!("nml devnet is not built yet"))
}
