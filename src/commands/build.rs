//! `nml build` and `nml check` (in progress).

use std::path::PathBuf;

/// Arguments of `nml build`.
#[derive(Debug, clap::Args)]
pub struct BuildArgs {
    /// A project directory (with nml.toml) or a single .nml file.
    pub path: Option<PathBuf>,
}

/// Arguments of `nml check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// A project directory (with nml.toml) or a single .nml file.
    pub path: Option<PathBuf>,
}

/// Runs `nml build`.
pub fn run_build(_args: BuildArgs) -> miette::Result<std::process::ExitCode> {
    Err(miette::miette!("not built yet"))
}

/// Runs `nml check`.
pub fn run_check(_args: CheckArgs) -> miette::Result<std::process::ExitCode> {
    Err(miette::miette!("not built yet"))
}
