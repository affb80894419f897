//! nml's local TEE gateway (`nml gateway`): the HTTP service through which
//! OpenGradient's users reach LLMs off chain, run locally in front of the
//! same LLM backends the devnet's precompile uses (docs/gateway.md).
//!
//! Rooms, each using only the ones before it:
//! - [`canonical`]: what a signature covers — the canonical request and
//!   Python-compatible JSON, byte for byte as the SDK's `tee_verify`
//!   recomputes them;
//! - [`revert`]: why a transaction reverted, its revert data decoded
//!   (Permit2's, the proxies' and the token's errors);
//! - [`chain`]: the gateway's account on a chain over JSON-RPC (reads, and
//!   transactions sent one at a time);
//! - [`openai`]: OpenAI-style bodies in, [`nml_runtime::llm::LlmRequest`]s
//!   to the backends, signed JSON and server-sent events out;
//! - [`payment`]: x402 payments (`exact` and `upto` over Permit2): the
//!   terms of a 402, the facilitator's checks against the chain before
//!   anything runs, settlement after the answer;
//! - [`data_settlement`]: the answers' hashes posted to the settlement
//!   relay, as `X-SETTLEMENT-TYPE` asks (private, batch, individual);
//! - [`ohttp`]: Oblivious HTTP (RFC 9458), the private path: requests
//!   sealed to the enclave's X25519 key opened, answers sealed back;
//! - [`registration`]: the gateway in a chain's TEE registry over JSON-RPC
//!   (`nml gateway --register`), and its heartbeats;
//! - [`server`]: HTTP/1.1 (hyper), routes, limits and errors.
//!
//! The answers are signed by a simulated enclave of the devnet
//! ([`nml_runtime::tee::Enclave`]): the same seed gives the key the devnet's
//! TEE registry holds.

pub mod canonical;
pub mod chain;
pub mod data_settlement;
pub mod ohttp;
pub mod openai;
pub mod payment;
pub mod registration;
pub mod revert;
pub mod server;

pub use data_settlement::{DataSettlement, SettlementType};
pub use payment::{PaymentConfig, Payments, Prices, Scheme};
pub use server::{BODY_TIME, Gateway, GatewayConfig, MAX_BODY, TlsIdentity};
