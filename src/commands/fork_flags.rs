//! The fork-mode flags that `nml devnet` and `nml test` share, the
//! `[fork]` table of `nml.toml` they fall back on, and connecting to the
//! remote with a progress line and a clear error (docs/deploy.md).

use std::sync::Arc;

use miette::miette;
use nml_compiler::project::ForkTable;
use nml_runtime::fork::{ForkConfig, ForkError, ForkSource};

use crate::toolchain;

/// Fork mode (docs/deploy.md).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ForkArgs {
    /// Start from a remote chain's state: accounts, code and storage are
    /// read from URL the first time they are needed (and cached on disk per
    /// chain and block); everything else, inference included, runs locally.
    #[arg(long, value_name = "URL")]
    pub fork_url: Option<String>,
    /// The block to fork at (default: the remote's latest; with the URL of
    /// `[fork]` in nml.toml, its `block`).
    #[arg(long, value_name = "N")]
    pub fork_block: Option<u64>,
    /// Do not keep what is read from the remote in nml's cache.
    #[arg(long)]
    pub no_fork_cache: bool,
}

impl ForkArgs {
    /// The flags, or else the project's `[fork]` table, connected; `None`
    /// when neither asks for a fork. `chain_id` is the chain id the remote
    /// must have, when the user named one.
    pub fn connect(&self, table: Option<&ForkTable>, chain_id: Option<u64>) -> miette::Result<Option<Arc<ForkSource>>> {
        let Some(config) = self.config(table, chain_id)? else { return Ok(None) };
        let url = &config.url;
        eprintln!("Forking {url}{}…", config.block.map(|b| format!(" at block {b}")).unwrap_or_default());
        let source = ForkSource::connect(&config).map_err(|e| miette!(help = help(&e), "{e}"))?;
        eprintln!("Forked chain {} at block {} ({})", source.chain_id(), source.number(), source.hash());
        Ok(Some(source))
    }

    /// What to fork: `--fork-url` with the flags alone, or `[fork]`'s URL
    /// with its block and chain id unless the flags name others.
    fn config(&self, table: Option<&ForkTable>, chain_id: Option<u64>) -> miette::Result<Option<ForkConfig>> {
        let (url, block, expected) = match (&self.fork_url, table) {
            (Some(url), _) => (url.clone(), self.fork_block, chain_id),
            (None, Some(table)) => (table.url.clone(), self.fork_block.or(table.block), chain_id.or(table.chain_id)),
            (None, None) if self.fork_block.is_some() || self.no_fork_cache => {
                let flag = if self.fork_block.is_some() { "--fork-block" } else { "--no-fork-cache" };
                return Err(miette!(
                    help = "pass --fork-url URL (`nml test` also takes the URL from [fork] url in nml.toml)",
                    "{flag} needs a chain to fork"
                ));
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(ForkConfig {
            block,
            expected_chain_id: expected,
            cache_dir: if self.no_fork_cache { None } else { toolchain::cache_dir().map(|d| d.join("fork")) },
            ..ForkConfig::new(url)
        }))
    }
}

/// The likely fix of a failed connection.
fn help(e: &ForkError) -> String {
    match e {
        ForkError::NoSuchBlock { latest, .. } => {
            format!(
                "the remote's head is block {latest}: fork at a block up to it (--fork-block or [fork] block), or leave the block out to fork the head"
            )
        }
        ForkError::WrongChain { actual, .. } => {
            format!(
                "the remote is chain {actual}: check the URL, or the chain id asked for (--chain-id, --fork-chain-id or [fork] chain_id)"
            )
        }
        _ => "check --fork-url (or [fork] url in nml.toml) and that the node answers JSON-RPC".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, clap::Parser)]
    struct Cli {
        #[command(flatten)]
        fork: ForkArgs,
    }

    fn parse(args: &[&str]) -> ForkArgs {
        Cli::try_parse_from(std::iter::once("nml").chain(args.iter().copied())).unwrap().fork
    }

    #[test]
    fn the_flags_override_the_block_and_chain_id_of_the_manifest() {
        let table = ForkTable { url: "http://toml:1".into(), block: Some(3), chain_id: Some(8453) };
        let config = parse(&["--fork-block", "5"]).config(Some(&table), None).unwrap().unwrap();
        assert_eq!(
            (config.url.as_str(), config.block, config.expected_chain_id),
            ("http://toml:1", Some(5), Some(8453))
        );
        let config = parse(&[]).config(Some(&table), Some(1)).unwrap().unwrap();
        assert_eq!((config.block, config.expected_chain_id), (Some(3), Some(1)));
        // --fork-url names another chain: nothing of the manifest's applies.
        let config = parse(&["--fork-url", "http://flag:1"]).config(Some(&table), None).unwrap().unwrap();
        assert_eq!((config.url.as_str(), config.block, config.expected_chain_id), ("http://flag:1", None, None));
        // Without a URL anywhere, the block is an error, not ignored.
        let err = parse(&["--fork-block", "5"]).config(None, None).unwrap_err();
        assert!(err.to_string().contains("--fork-block needs a chain to fork"), "{err}");
        assert!(parse(&[]).config(None, Some(1)).unwrap().is_none());
    }

    #[test]
    fn a_block_past_the_head_is_told_the_head() {
        let e = ForkError::NoSuchBlock { url: "http://x:1".into(), block: 9, latest: 4 };
        assert!(help(&e).contains("the remote's head is block 4"), "{}", help(&e));
    }
}
