//! One module per `nml` subcommand. Each exposes an `Args` struct (clap) and a
//! `run` function returning a miette result; `main.rs` only dispatches.

pub mod build;
pub mod devnet;
pub mod models;
pub mod new;
pub mod test;
