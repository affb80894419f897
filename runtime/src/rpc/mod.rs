//! The JSON-RPC server: HTTP and WebSocket on one port (jsonrpsee). It only
//! parses parameters, calls the [`Devnet`], and maps errors to geth's codes;
//! every method is documented in `docs/rpc.md`. The same port answers the
//! node's result API that OpenGradient's SDK falls back to ([`results`]),
//! and every call keeps the node awake a little while ([`awake`]).
//!
//! The server keeps one client's requests from stalling another's: a method
//! that would wait for the node runs on tokio's blocking pool, not on an I/O
//! thread ([`dispatch`]); connections, idle WebSockets, batches and the calls
//! one connection runs at once are bounded ([`ServerLimits`], [`batch`],
//! [`in_flight`]); a request body that stops arriving is given up
//! ([`edge`]); and typed data is bounded before alloy reads it
//! ([`typed_data`]). In fork mode, what the remote chain holds and the
//! devnet does not is forwarded to it (`node`'s `forwarded_*` methods), and
//! a remote's error keeps its JSON-RPC code.

mod awake;
mod batch;
mod dispatch;
mod edge;
mod in_flight;
mod methods;
mod params;
mod records;
mod results;
mod typed_data;

pub use records::record_json;
pub use results::RESULT_PATH;

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use jsonrpsee::core::middleware::RpcServiceBuilder;
use jsonrpsee::server::{BatchRequestConfig, PingConfig, Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;

use crate::chain::{ChainError, DumpError, TxError};
use crate::fork::ForkError;
use crate::node::{Devnet, NodeError};
use crate::rpc_client::RpcError;

/// The most requests one batch may hold (geth's limit).
pub const MAX_BATCH: u32 = 1_000;

/// The largest request body accepted, in bytes (geth's limit: 5 MiB).
pub const MAX_REQUEST_BODY: u32 = 5 * 1024 * 1024;

/// The largest response body, in bytes.
pub const MAX_RESPONSE_BODY: u32 = 256 * 1024 * 1024;

/// The most subscriptions one WebSocket connection may hold (jsonrpsee's
/// default, set here so that docs/rpc.md can rely on it).
pub const MAX_SUBSCRIPTIONS_PER_CONNECTION: u32 = 1_024;

/// The most messages (answers and notifications) queued for one WebSocket
/// client that does not read them; past it the server reads no more of its
/// requests until it does (jsonrpsee's default, set here for the same reason).
pub const MESSAGE_BUFFER: u32 = 1_024;

/// The most calls of one connection that run at once, by default.
const CALLS_IN_FLIGHT: NonZeroUsize = NonZeroUsize::new(32).unwrap();

/// The server's bounds on connections, batches and calls in flight.
/// [`ServerLimits::default`] is what [`serve`] uses and docs/rpc.md
/// ("Limits and errors") describes; the fields are public so that tests can
/// shorten the times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// The most connections served at once: WebSocket connections, and HTTP
    /// requests being answered (an idle HTTP keep-alive connection does not
    /// count). Past it a new one is answered HTTP 429.
    pub max_connections: u32,
    /// How often the server pings each WebSocket client (at least every
    /// millisecond: a shorter interval is taken as one millisecond).
    pub ping_interval: Duration,
    /// How long a WebSocket client may go without answering a ping (or
    /// sending anything) before its connection is closed.
    pub ping_timeout: Duration,
    /// How long after its arrival a batch may still start calls; a later
    /// call is answered `-32005` without running.
    pub batch_time: Duration,
    /// The most calls (a batch counts as one) of one connection that run at
    /// once; later ones wait their turn.
    pub calls_in_flight: NonZeroUsize,
    /// How long a request's body may stop arriving before the request is
    /// closed (and its connection freed for others).
    pub body_idle: Duration,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            // jsonrpsee's default, 100, let 100 idle WebSockets lock every
            // other client out.
            max_connections: 1_000,
            // A dead peer goes within a minute and a half; a live one has
            // half a minute to answer a ping.
            ping_interval: Duration::from_secs(30),
            ping_timeout: Duration::from_secs(60),
            // The longest `eth_sendRawTransactionSync` wait.
            batch_time: Duration::from_secs(60),
            calls_in_flight: CALLS_IN_FLIGHT,
            // A client sends its request at once; one that stops for this
            // long is not coming back.
            body_idle: Duration::from_secs(10),
        }
    }
}

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

/// Serves `devnet` on `addr` (HTTP and WebSocket on the same port) within
/// the default [`ServerLimits`], and starts its interval miner. Call from a
/// tokio runtime.
pub async fn serve(devnet: Arc<Devnet>, addr: SocketAddr) -> std::io::Result<RpcServer> {
    serve_with(devnet, addr, &ServerLimits::default()).await
}

/// [`serve`] within `limits`.
pub async fn serve_with(devnet: Arc<Devnet>, addr: SocketAddr, limits: &ServerLimits) -> std::io::Result<RpcServer> {
    // tokio's intervals panic on a zero period.
    let interval = limits.ping_interval.max(Duration::from_millis(1));
    let ping = PingConfig::new().ping_interval(interval).inactive_limit(limits.ping_timeout);
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BODY)
        .max_response_body_size(MAX_RESPONSE_BODY)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
        .max_connections(limits.max_connections)
        .max_subscriptions_per_connection(MAX_SUBSCRIPTIONS_PER_CONNECTION)
        .set_message_buffer_capacity(MESSAGE_BUFFER)
        .enable_ws_ping(ping)
        .set_id_provider(edge::HexIds::new())
        .build();
    let http = tower::ServiceBuilder::new()
        .layer(edge::EdgeLayer { body_idle: limits.body_idle })
        .layer(results::ResultApiLayer { devnet: Arc::clone(&devnet) });
    let awake = Arc::clone(&devnet);
    let (batch_time, calls_in_flight) = (limits.batch_time, limits.calls_in_flight);
    // Built once per WebSocket connection and once per HTTP request.
    let calls = RpcServiceBuilder::new()
        .layer_fn(move |inner| awake::KeepAwake { inner, devnet: Arc::clone(&awake) })
        // The deadline is stamped when a batch arrives, before it waits its turn.
        .layer_fn(move |inner| batch::StampDeadline { inner, time: batch_time })
        .layer_fn(move |inner| in_flight::BoundInFlight::new(inner, calls_in_flight));
    let server =
        Server::builder().set_config(config).set_http_middleware(http).set_rpc_middleware(calls).build(addr).await?;
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
        // The remote answered an error (a forwarded read): its code and
        // data (a revert stays code 3 with its data), the fork named.
        NodeError::Fork(ForkError::Rpc { source: RpcError::Remote { code, data, .. }, .. }) => {
            ErrorObjectOwned::owned(i32::try_from(*code).unwrap_or(SERVER_ERROR), error.to_string(), data.clone())
        }
        NodeError::InvalidParams(message) => params::invalid(message.clone()),
        NodeError::LimitExceeded { .. } => ErrorObjectOwned::owned(LIMIT_EXCEEDED, error.to_string(), None::<()>),
        NodeError::Tx(TxError::Decode(_)) => ErrorObjectOwned::owned(SERVER_ERROR, error.to_string(), None::<()>),
        NodeError::Chain(ChainError::ReservationTooLarge { .. } | ChainError::TimestampTooHigh(_)) => {
            params::invalid(error.to_string())
        }
        NodeError::Chain(ChainError::UnknownBlock(_) | ChainError::UnknownBlockHash(_)) => {
            ErrorObjectOwned::owned(SERVER_ERROR, "header not found", None::<()>)
        }
        NodeError::Dump(
            DumpError::Corrupt(_)
            | DumpError::ChainIdMismatch { .. }
            | DumpError::Block { .. }
            | DumpError::GenesisTransactions { .. }
            | DumpError::ClockOffsetTooLarge { .. },
        ) => params::invalid(error.to_string()),
        _ => ErrorObjectOwned::owned(SERVER_ERROR, error.to_string(), None::<()>),
    }
}
