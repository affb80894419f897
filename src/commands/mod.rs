//! One module per `nml` subcommand. Each exposes an `Args` struct (clap) and a
//! `run` function returning a miette result; `main.rs` only dispatches. What
//! several commands share lives in [`common`] (their LLM flags in
//! [`llm_flags`], their fork flags in [`fork_flags`]; what one `nml deploy` run deploys
//! in `deploy_plan`; `nml test`'s gas snapshots in `gas_snapshot`, `nml coverage`'s reports in
//! `coverage`); no
//! command imports another.

pub mod build;
pub mod common;
pub mod coverage;
pub mod deploy;
mod deploy_plan;
pub mod devnet;
pub mod fork_flags;
mod gas_snapshot;
pub mod gateway;
pub mod gateway_flags;
pub mod llm_flags;
pub mod models;
pub mod new;
pub mod test;
pub mod verify;
