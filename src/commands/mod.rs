//! One module per `nml` subcommand. Each exposes an `Args` struct (clap) and a
//! `run` function returning a miette result; `main.rs` only dispatches. What
//! several commands share lives in [`common`]; no command imports another.

pub mod build;
pub mod common;
pub mod devnet;
pub mod models;
pub mod new;
pub mod test;
pub mod verify;
