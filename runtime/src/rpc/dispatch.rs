//! Where each method runs: on the I/O thread that read the request, or on
//! tokio's blocking pool.
//!
//! jsonrpsee reads requests on tokio's few I/O threads; a method that blocks
//! one stops every connection it serves. Most methods are quick, but every
//! one that reads the chain first waits until the automine passes asked for
//! so far are done (`Devnet::lock`), and a pass of heavy transactions can
//! take seconds. So a quick method runs where the request arrived only while
//! the node is settled ([`Devnet::is_settled`]), after a spin as short as
//! the node's own; otherwise it moves to the blocking pool. Methods that may
//! run long whatever the node's state ([`LONG_RUNNING`], and in fork mode
//! [`READS_STATE`]) always run there.
//!
//! The check and the read are not one step: a pass that another client asks
//! for in the microseconds between them is still waited for where the
//! request arrived. Closing that window would take a read of the node that
//! refuses to wait (a node API), not a check before it.
//!
//! Each call also keeps its batch's deadline (see [`super::batch`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use jsonrpsee::RpcModule;
use jsonrpsee::types::{ErrorObjectOwned, Params};
use serde_json::Value;

use super::params::Args;
use super::{batch, in_flight};
use crate::node::Devnet;

/// What a method answers: its result, or a JSON-RPC error.
pub(super) type Out = Result<Value, ErrorObjectOwned>;

/// A method's body: its checked parameters and the devnet in, its answer out.
pub(super) type Handler = fn(&Args, &Devnet) -> Out;

/// One JSON-RPC method as it is registered.
#[derive(Debug, Clone, Copy)]
pub(super) struct Method {
    /// The name clients call.
    pub(super) name: &'static str,
    /// The name of the method whose list membership decides where it runs
    /// (itself, or the method an alias stands for).
    pub(super) target: &'static str,
    /// The fewest parameters it takes.
    pub(super) min: usize,
    /// The most parameters it takes.
    pub(super) max: usize,
    /// Its body.
    pub(super) handler: Handler,
}

/// Methods that may run long (many EVM executions, whole-chain scans,
/// waits): they always run on tokio's blocking pool.
pub(super) const LONG_RUNNING: &[&str] = &[
    "eth_call",
    "eth_sendRawTransactionSync",
    "eth_estimateGas",
    // Without `gas`, it estimates it (`eth_estimateGas`'s binary search).
    "eth_sendTransaction",
    "eth_getLogs",
    "eth_getFilterLogs",
    "eth_getFilterChanges",
    "eth_feeHistory",
    "evm_mine",
    "evm_setAutomine",
    // State edits and snapshots copy or prune the chain's indexes and pool,
    // and in fork mode fetch the account edited from the remote.
    "anvil_setBalance",
    "anvil_setNonce",
    "anvil_setCode",
    "anvil_setStorageAt",
    "evm_snapshot",
    "evm_revert",
    "anvil_mine",
    "anvil_dumpState",
    "anvil_loadState",
    "debug_traceTransaction",
    "nml_registerModel",
    // Makes the enclaves' RSA keys on first use.
    "nml_getTees",
];

/// Methods that read state, or blocks and transactions the remote chain may
/// answer (`Devnet::forwarded_*`), which in fork mode may wait on the remote: a
/// forked devnet runs them on the blocking pool too.
pub(super) const READS_STATE: &[&str] = &[
    "eth_getBalance",
    "eth_getTransactionCount",
    "eth_getCode",
    "eth_getStorageAt",
    "eth_sendRawTransaction",
    "eth_getBlockByNumber",
    "eth_getBlockByHash",
    "eth_getBlockTransactionCountByNumber",
    "eth_getBlockTransactionCountByHash",
    "eth_getTransactionByHash",
    "eth_getTransactionReceipt",
];

/// How long a quick method spins on the I/O thread, watching for the node to
/// settle, before it moves to the blocking pool: as long as the node's own
/// settle spins before it sleeps (50 µs). A transfer's automine pass takes
/// tens of microseconds, so a client that sends and then polls its receipt
/// is answered where its request arrived, without the hand-off to another
/// thread (about as long as the pass).
const SETTLE_SPIN: Duration = Duration::from_micros(50);

/// Where a method runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    /// On the I/O thread while the node is settled, else on the blocking pool.
    WhenSettled,
    /// Always on the blocking pool.
    Blocking,
}

impl Placement {
    /// Where `target` runs, on a forked devnet or not.
    pub(super) fn of(target: &str, forked: bool) -> Self {
        if LONG_RUNNING.contains(&target) || (forked && READS_STATE.contains(&target)) {
            Self::Blocking
        } else {
            Self::WhenSettled
        }
    }
}

/// Registers `method` on `module`, to run where [`Placement::of`] says.
pub(super) fn register(module: &mut RpcModule<Devnet>, method: Method, forked: bool) {
    let placement = Placement::of(method.target, forked);
    let result = module.register_async_method(method.name, move |params, devnet, extensions| async move {
        in_flight::check_waiting(&extensions)?;
        batch::check_deadline(&extensions)?;
        if placement == Placement::WhenSettled && settles_soon(&devnet) {
            return run(method, &params, &devnet);
        }
        on_blocking_pool(method, params, devnet).await
    });
    if let Err(e) = result {
        tracing::error!(name = method.name, %e, "method registered twice");
    }
}

/// Checks the parameters and runs the handler.
fn run(method: Method, params: &Params<'_>, devnet: &Devnet) -> Out {
    let args = Args::new(params, method.min, method.max)?;
    (method.handler)(&args, devnet)
}

/// Runs the method on tokio's blocking pool. A handler that panics answers
/// "internal error", as jsonrpsee's own blocking methods do.
async fn on_blocking_pool(method: Method, params: Params<'static>, devnet: Arc<Devnet>) -> Out {
    tokio::task::spawn_blocking(move || run(method, &params, &devnet)).await.unwrap_or_else(|e| {
        tracing::error!(name = method.name, %e, "a method failed on the blocking pool");
        Err(ErrorObjectOwned::from(jsonrpsee::types::ErrorCode::InternalError))
    })
}

/// Whether the node is settled now or within [`SETTLE_SPIN`].
fn settles_soon(devnet: &Devnet) -> bool {
    if devnet.is_settled() {
        return true;
    }
    let started = Instant::now();
    while started.elapsed() < SETTLE_SPIN {
        std::hint::spin_loop();
        if devnet.is_settled() {
            return true;
        }
    }
    false
}
