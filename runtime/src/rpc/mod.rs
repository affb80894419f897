//! The JSON-RPC server: HTTP and WebSocket on one port (jsonrpsee). It only
//! parses parameters, calls the [`Devnet`], and maps errors to geth's codes;
//! every method is documented in `docs/rpc.md`. The same port answers the
//! node's result API that OpenGradient's SDK falls back to ([`results`]),
//! and every call keeps the node awake a little while ([`awake`]).

mod awake;
mod methods;
mod params;
mod records;
mod results;

pub use records::record_json;
pub use results::RESULT_PATH;

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

use crate::chain::{ChainError, DumpError, TxError};
use crate::node::{Devnet, NodeError};

/// The most requests one batch may hold (geth's limit).
pub const MAX_BATCH: u32 = 1_000;

/// The largest request body accepted, in bytes (geth's limit: 5 MiB).
pub const MAX_REQUEST_BODY: u32 = 5 * 1024 * 1024;

/// The largest response body, in bytes.
pub const MAX_RESPONSE_BODY: u32 = 256 * 1024 * 1024;

/// A running server.
#[derive(Debug)]
pub struct RpcServer {
    /// The address it listens on (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    handle: ServerHandle,
}

impl RpcServer {
    /// Stops the server and waits for it to finish.
    pub async fn stop(self) {
        // Stopping twice is the only failure, and it is harmless.
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }

    /// Waits until the server stops.
    pub async fn stopped(&self) {
        self.handle.clone().stopped().await;
    }
}

/// Serves `devnet` on `addr` (HTTP and WebSocket on the same port), and
/// starts its interval miner. Call from a tokio runtime.
pub async fn serve(devnet: Arc<Devnet>, addr: SocketAddr) -> std::io::Result<RpcServer> {
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BODY)
        .max_response_body_size(MAX_RESPONSE_BODY)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
        .build();
    let results = tower::ServiceBuilder::new().layer(results::ResultApiLayer { devnet: Arc::clone(&devnet) });
    let awake = Arc::clone(&devnet);
    let calls = RpcServiceBuilder::new().layer_fn(move |inner| awake::KeepAwake { inner, devnet: Arc::clone(&awake) });
    let server =
        Server::builder().set_config(config).set_http_middleware(results).set_rpc_middleware(calls).build(addr).await?;
    let local_addr = server.local_addr()?;
    let module = methods::module(devnet.clone());
    let handle = server.start(module);
    tokio::spawn(devnet.run_interval_miner());
    Ok(RpcServer { local_addr, handle })
}

/// geth's "server error" code, which it uses for transaction and state errors.
pub const SERVER_ERROR: i32 = -32000;

/// The code of a reverted `eth_call` / `eth_estimateGas` (geth's).
pub const EXECUTION_REVERTED: i32 = 3;

/// EIP-1474's "limit exceeded": a request past one of the node's bounds.
pub const LIMIT_EXCEEDED: i32 = -32005;

/// The JSON-RPC error for a devnet error.
pub fn error_object(error: &NodeError) -> ErrorObjectOwned {
    match error {
        NodeError::Reverted { message, data } => ErrorObjectOwned::owned(EXECUTION_REVERTED, message, Some(data)),
        NodeError::InvalidParams(message) => params::invalid(message.clone()),
        NodeError::LimitExceeded { .. } => ErrorObjectOwned::owned(LIMIT_EXCEEDED, error.to_string(), None::<()>),
        NodeError::Tx(TxError::Decode(_)) => ErrorObjectOwned::owned(SERVER_ERROR, error.to_string(), None::<()>),
        NodeError::Chain(ChainError::ReservationTooLarge { .. } | ChainError::TimestampTooHigh(_)) => {
            params::invalid(error.to_string())
        }
        NodeError::Chain(ChainError::UnknownBlock(_)) => {
            ErrorObjectOwned::owned(SERVER_ERROR, "header not found", None::<()>)
        }
        NodeError::Dump(DumpError::Corrupt(_) | DumpError::ChainIdMismatch { .. }) => {
            params::invalid(error.to_string())
        }
        _ => ErrorObjectOwned::owned(SERVER_ERROR, error.to_string(), None::<()>),
    }
}
