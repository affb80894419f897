//! The nml devnet: a local EVM chain (revm) that standard Ethereum clients
//! use unmodified over JSON-RPC, and that tests drive in-process.
//!
//! Layers, each using only the ones before it:
//! - [`tee`]: the simulated enclaves (keys, attestations) and the TEE
//!   verifier precompile's checks (independent of the chain);
//! - [`rpc_client`]: a minimal JSON-RPC client, for talking to other nodes;
//! - [`fork`]: fork mode's remote state, read lazily from another chain
//!   through [`rpc_client`] and cached on disk;
//! - [`chain`]: state (laid over a [`fork`] in fork mode), blocks, receipts,
//!   clock, dumps;
//! - [`evm`]: revm setup and the pluggable precompile set;
//! - [`inference`]: the OGInference ABI, tensors, the model registry and the
//!   ONNX executor (independent of the chain);
//! - [`llm`]: LLM calls and their backends (the embedded model, OpenAI-compatible
//!   servers, cassettes), independent of the chain;
//! - [`mempool`]: the pending pool, the pre-execution stage, the block builder;
//! - [`predeploys`]: the contracts at fixed addresses (the TEE registry and the
//!   settlement relay), from their committed Solidity build, and the system
//!   calls that set them up;
//! - [`settlement`]: the relay's bookkeeping of asynchronous settlement
//!   (what is due, Merkle batches, each result's status), without the chain;
//! - [`node`]: the [`Devnet`] that ties them together (mining modes,
//!   snapshots, filters, signing);
//! - [`rpc`]: the JSON-RPC server over HTTP and WebSocket;
//! - [`testing`]: contract tests on in-process devnets, with cheatcodes (`nml test`).
//!
//! ```no_run
//! use nml_runtime::{Devnet, DevnetConfig};
//! let devnet = Devnet::new(DevnetConfig::default()).expect("a fresh devnet");
//! assert_eq!(devnet.block_number(), 0);
//! ```

pub mod chain;
pub mod evm;
pub mod fork;
pub mod inference;
pub mod llm;
pub mod mempool;
pub mod node;
pub mod predeploys;
pub mod rpc;
pub mod rpc_client;
pub mod settlement;
pub mod tee;
pub mod testing;

pub use node::{Devnet, DevnetConfig, Mining, NodeError};
