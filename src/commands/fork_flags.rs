//! The fork-mode flags that `nml devnet` and `nml test` share, the
//! `[fork]` table of `nml.toml` they fall back on, and connecting to the
//! remote with a progress line and a clear error (docs/deploy.md).

use std::sync::Arc;

use miette::miette;
use nml_compiler::project::ForkTable;
use nml_runtime::fork::{ForkConfig, ForkSource};

use crate::toolchain;

/// Fork mode (docs/deploy.md).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ForkArgs {
    /// Start from a remote chain's state: accounts, code and storage are
    /// read from URL the first time they are needed (and cached on disk per
    /// chain and block); everything else, inference included, runs locally.
    #[arg(long, value_name = "URL")]
    pub fork_url: Option<String>,
    /// The block to fork at (default: the remote's latest).
    #[arg(long, value_name = "N", requires = "fork_url")]
    pub fork_block: Option<u64>,
    /// Do not keep what is read from the remote in nml's cache.
    #[arg(long, requires = "fork_url")]
    pub no_fork_cache: bool,
}

impl ForkArgs {
    /// The flags, or else the project's `[fork]` table, connected; `None`
    /// when neither asks for a fork. `chain_id` is the chain id the remote
    /// must have, when the user named one.
    pub fn connect(&self, table: Option<&ForkTable>, chain_id: Option<u64>) -> miette::Result<Option<Arc<ForkSource>>> {
        let (url, block, expected) = match (&self.fork_url, table) {
            (Some(url), _) => (url.clone(), self.fork_block, chain_id),
            (None, Some(table)) => (table.url.clone(), table.block, chain_id.or(table.chain_id)),
            (None, None) => return Ok(None),
        };
        let config = ForkConfig {
            block,
            expected_chain_id: expected,
            cache_dir: if self.no_fork_cache { None } else { toolchain::cache_dir().map(|d| d.join("fork")) },
            ..ForkConfig::new(url.clone())
        };
        eprintln!("Forking {url}{}…", block.map(|b| format!(" at block {b}")).unwrap_or_default());
        let source = ForkSource::connect(&config).map_err(|e| {
            miette!(help = "check --fork-url (or [fork] url in nml.toml) and that the node answers JSON-RPC", "{e}")
        })?;
        eprintln!("Forked chain {} at block {} ({})", source.chain_id(), source.number(), source.hash());
        Ok(Some(source))
    }
}
