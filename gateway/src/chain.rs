//! The gateway's account on a chain, over JSON-RPC like any client: reads
//! (`eth_call`) and transactions it signs and sends one at a time (keeping
//! its nonce and a recent gas price), each waited for until mined — in the
//! same round trip where the node answers EIP-7966's
//! `eth_sendRawTransactionSync`, else by polling. Payment settlement and data
//! settlement both send through it.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256, keccak256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use nml_runtime::rpc_client::{self, RpcError};
use parking_lot::Mutex;
use serde_json::{Value, json};

use crate::revert::Revert;

/// How long a transaction may take to be mined.
const MINED_WITHIN: Duration = Duration::from_secs(60);

/// Why a read or a transaction failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChainError {
    /// The node could not be asked, or refused.
    #[error(transparent)]
    Rpc(#[from] RpcError),
    /// The node answered something else than the method returns.
    #[error("the node answered {0} with something else")]
    BadAnswer(&'static str),
    /// The transaction was mined and reverted: why, as the same call run
    /// again at its block says.
    #[error("transaction {hash} reverted: {reason}")]
    Reverted {
        /// The transaction.
        hash: B256,
        /// Its revert, decoded.
        reason: Box<Revert>,
    },
    /// The transaction was not mined in time.
    #[error("transaction {0} was not mined within {MINED_WITHIN:?}")]
    NotMined(B256),
    /// Signing failed.
    #[error("signing: {0}")]
    Signing(String),
    /// The account lacks a role the contract asks for.
    #[error("{account} does not hold the {role} of {contract}")]
    Unauthorized {
        /// The account.
        account: Address,
        /// The role.
        role: &'static str,
        /// The contract.
        contract: Address,
    },
}

/// EIP-7966's error code: the transaction was taken but not mined in time.
const SYNC_TIMEOUT: i64 = 4;

/// How long a gas price read from the node is used for.
const GAS_PRICE_FOR: Duration = Duration::from_secs(2);

/// An account of the gateway on a chain.
#[derive(Debug)]
pub struct ChainAccount {
    rpc_url: String,
    chain_id: u64,
    signer: PrivateKeySigner,
    /// Transactions go out one at a time: what the next one needs, once known.
    sending: Mutex<Sending>,
}

/// What the next transaction is sent with. A transaction's nonce is taken
/// before it goes out, so sends overlap; when the node refuses one, nonce
/// and price are forgotten and read again (the node's pending nonce then
/// fills any gap the refused one left).
#[derive(Debug, Default)]
struct Sending {
    nonce: Option<u64>,
    /// The node's gas price, and when it was read.
    gas_price: Option<(u64, Instant)>,
    /// Whether the node answers `eth_sendRawTransactionSync` (EIP-7966: the
    /// receipt in the same round trip); unknown until tried.
    sync: Option<bool>,
}

fn quantity(value: &Value) -> Option<u64> {
    value.as_str().and_then(|s| s.strip_prefix("0x")).and_then(|s| u64::from_str_radix(s, 16).ok())
}

impl ChainAccount {
    /// `signer` on the chain `chain_id` served at `rpc_url`.
    pub fn new(rpc_url: String, chain_id: u64, signer: PrivateKeySigner) -> Self {
        Self { rpc_url, chain_id, signer, sending: Mutex::default() }
    }

    /// The node's URL.
    pub fn rpc_url(&self) -> &str {
        &self.rpc_url
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The account's address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// `eth_call` of `data` to `to` from this account at the latest block
    /// (a revert is an error with the contract's reason).
    pub fn call(&self, to: Address, data: Vec<u8>) -> Result<Vec<u8>, ChainError> {
        let request = json!({ "from": self.address(), "to": to, "data": Bytes::from(data) });
        let answer = rpc_client::call(&self.rpc_url, "eth_call", json!([request, "latest"]))?;
        answer.as_str().and_then(|s| alloy_primitives::hex::decode(s).ok()).ok_or(ChainError::BadAnswer("eth_call"))
    }

    /// `eth_call`s of each `(to, data)` of `calls` at the `pending` block —
    /// the state and the block (its timestamp) the next transaction will
    /// see — in one round trip: each one's answer, in order. A
    /// `TxKind::Create` runs `data` as init code and answers what it
    /// returns ([`BLOCK_TIMESTAMP`] reads the pending block's time).
    pub fn call_all(&self, calls: &[(TxKind, Vec<u8>)]) -> Result<Vec<Result<Vec<u8>, ChainError>>, ChainError> {
        let request = |to: &TxKind, data: &[u8]| {
            let mut request = json!({ "from": self.address(), "data": Bytes::copy_from_slice(data) });
            if let TxKind::Call(to) = to {
                request["to"] = json!(to);
            }
            json!([request, "pending"])
        };
        let requests: Vec<(&str, Value)> = calls.iter().map(|(to, data)| ("eth_call", request(to, data))).collect();
        let decode = |answer: Value| {
            answer.as_str().and_then(|s| alloy_primitives::hex::decode(s).ok()).ok_or(ChainError::BadAnswer("eth_call"))
        };
        let answers = match rpc_client::batch(&self.rpc_url, &requests) {
            Ok(answers) => answers,
            // A node that takes no batches: one call at a time.
            Err(RpcError::Remote { .. } | RpcError::Status { .. } | RpcError::BadAnswer { .. }) => {
                return Ok(requests
                    .into_iter()
                    .map(|(method, params)| decode(rpc_client::call(&self.rpc_url, method, params)?))
                    .collect());
            }
            Err(e) => return Err(e.into()),
        };
        Ok(answers.into_iter().map(|answer| decode(answer?)).collect())
    }

    /// The code at `address` (empty for an account without).
    pub fn code(&self, address: Address) -> Result<Vec<u8>, ChainError> {
        let answer = rpc_client::call(&self.rpc_url, "eth_getCode", json!([address, "latest"]))?;
        answer.as_str().and_then(|s| alloy_primitives::hex::decode(s).ok()).ok_or(ChainError::BadAnswer("eth_getCode"))
    }

    /// The latest block's timestamp.
    pub fn latest_timestamp(&self) -> Result<u64, ChainError> {
        self.timestamp_of(json!("latest"))
    }

    /// The timestamp of block `number`.
    pub fn block_timestamp(&self, number: u64) -> Result<u64, ChainError> {
        self.timestamp_of(json!(format!("{number:#x}")))
    }

    fn timestamp_of(&self, block: Value) -> Result<u64, ChainError> {
        let block = rpc_client::call(&self.rpc_url, "eth_getBlockByNumber", json!([block, false]))?;
        quantity(&block["timestamp"]).ok_or(ChainError::BadAnswer("eth_getBlockByNumber"))
    }

    /// The latest block's number.
    pub fn block_number(&self) -> Result<u64, ChainError> {
        quantity(&rpc_client::call(&self.rpc_url, "eth_blockNumber", json!([]))?)
            .ok_or(ChainError::BadAnswer("eth_blockNumber"))
    }

    /// The first word `to` answers `data` with, as a number.
    pub fn call_uint(&self, to: Address, data: Vec<u8>) -> Result<U256, ChainError> {
        let out = self.call(to, data)?;
        Ok(U256::from_be_slice(out.get(..32).unwrap_or_default()))
    }

    /// Signs and sends a call of `data` to `to` with at most `gas`, and
    /// waits until it is mined: its hash, or why it failed. A transaction
    /// the node took but did not mine within a minute is
    /// [`ChainError::NotMined`]: it may still be mined.
    pub fn send(&self, to: Address, data: Vec<u8>, gas: u64) -> Result<B256, ChainError> {
        match self.send_once(to, data.clone(), gas) {
            // Refused with a nonce the node had seen used (another sender of
            // this account): once more, with the node's.
            Err(Refused { nonce: Some(nonce), error })
                if self.pending_nonce().is_ok_and(|pending| pending != nonce) =>
            {
                tracing::debug!(nonce, %error, "resending with the node's nonce");
                self.send_once(to, data, gas).map_err(|refused| refused.error)
            }
            sent => sent.map_err(|refused| refused.error),
        }
    }

    fn pending_nonce(&self) -> Result<u64, ChainError> {
        quantity(&rpc_client::call(&self.rpc_url, "eth_getTransactionCount", json!([self.address(), "pending"]))?)
            .ok_or(ChainError::BadAnswer("eth_getTransactionCount"))
    }

    fn send_once(&self, to: Address, data: Vec<u8>, gas: u64) -> Result<B256, Refused> {
        let url = &self.rpc_url;
        let failed = |error: ChainError| Refused { nonce: None, error };
        let (nonce, raw, sync) = {
            let mut sending = self.sending.lock();
            let nonce = match sending.nonce {
                Some(nonce) => nonce,
                None => self.pending_nonce().map_err(failed)?,
            };
            let price = match sending.gas_price {
                Some((price, read)) if read.elapsed() < GAS_PRICE_FOR => price,
                _ => {
                    let price = rpc_client::call(url, "eth_gasPrice", json!([])).map_err(|e| failed(e.into()))?;
                    let price = quantity(&price).unwrap_or(1_000_000_000);
                    sending.gas_price = Some((price, Instant::now()));
                    price
                }
            };
            let tx = TxEip1559 {
                chain_id: self.chain_id,
                nonce,
                gas_limit: gas,
                max_fee_per_gas: u128::from(price).saturating_mul(2),
                max_priority_fee_per_gas: 1,
                to: TxKind::Call(to),
                input: data.clone().into(),
                ..Default::default()
            };
            let signature = self
                .signer
                .sign_hash_sync(&tx.signature_hash())
                .map_err(|e| failed(ChainError::Signing(e.to_string())))?;
            sending.nonce = Some(nonce + 1);
            (nonce, Bytes::from(TxEnvelope::from(tx.into_signed(signature)).encoded_2718()), sending.sync)
        };
        let hash = keccak256(&raw);
        let sent = Sent { hash, to, data: &data, gas };
        let refused = |e: RpcError| {
            let mut sending = self.sending.lock();
            (sending.nonce, sending.gas_price) = (None, None);
            tracing::debug!(nonce, %e, "the node refused a transaction");
            Refused { nonce: Some(nonce), error: ChainError::Rpc(e) }
        };
        // One round trip where the node can (EIP-7966), else send and poll.
        if sync != Some(false) {
            let timeout = MINED_WITHIN.as_millis() as u64;
            match rpc_client::call(url, "eth_sendRawTransactionSync", json!([raw, timeout])) {
                Ok(receipt) => {
                    self.sending.lock().sync = Some(true);
                    return self.outcome(&sent, &receipt).map_err(failed);
                }
                // Taken, not mined in time.
                Err(RpcError::Remote { code: SYNC_TIMEOUT, .. }) => return Err(failed(ChainError::NotMined(hash))),
                Err(e) if sync == Some(true) => return Err(refused(e)),
                // Not known yet whether the node has the method: the plain
                // send tells (the same bytes; a refused transaction is
                // refused again).
                Err(_) => {}
            }
        }
        rpc_client::call(url, "eth_sendRawTransaction", json!([raw])).map_err(refused)?;
        self.sending.lock().sync.get_or_insert(false);
        self.wait_mined(&sent).map_err(failed)
    }

    /// A mined transaction's hash, or why it failed: the receipt says only
    /// that it did, so the transaction runs again as an `eth_call` whose
    /// error carries the revert data — with the fields it was sent with
    /// (from, to, no value, data, and its gas limit: a call short of gas
    /// fails again as it did, where the node's default gas would let it
    /// pass), in the block that mined it. That block, not the one before:
    /// an `eth_call` runs in the header of the block it names, and the
    /// mined block's timestamp is what Permit2's deadline and the proxies'
    /// `validAfter` were checked against. A transaction that used its
    /// whole gas limit and left no revert data ran out of gas.
    fn outcome(&self, sent: &Sent<'_>, receipt: &Value) -> Result<B256, ChainError> {
        if receipt["status"] == "0x1" {
            return Ok(sent.hash);
        }
        let request = json!({
            "from": self.address(),
            "to": sent.to,
            "value": U256::ZERO,
            "gas": format!("{:#x}", sent.gas),
            "data": Bytes::copy_from_slice(sent.data),
        });
        let block = receipt.get("blockNumber").cloned().unwrap_or_else(|| json!("latest"));
        let used_all = quantity(&receipt["gasUsed"]).is_some_and(|used| used >= sent.gas);
        let reason = match rpc_client::call(&self.rpc_url, "eth_call", json!([request, block])) {
            Err(RpcError::Remote { data: Some(data), .. }) if !data.is_empty() => Revert::decode(&data),
            _ if used_all => Revert::OutOfGas { gas_limit: sent.gas },
            Err(RpcError::Remote { data: Some(_), .. }) => Revert::Empty,
            Err(RpcError::Remote { message, .. }) => Revert::Message(message),
            // The call passes now (the state moved on since): the receipt is all there is.
            _ => Revert::Empty,
        };
        Err(ChainError::Reverted { hash: sent.hash, reason: Box::new(reason) })
    }

    /// Polls for `hash`'s receipt, at 1, 2, 4 … ms (at most 100 ms apart).
    fn wait_mined(&self, sent: &Sent<'_>) -> Result<B256, ChainError> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let receipt = rpc_client::call(&self.rpc_url, "eth_getTransactionReceipt", json!([sent.hash]))?;
            if !receipt.is_null() {
                return self.outcome(sent, &receipt);
            }
            if started.elapsed() > MINED_WITHIN {
                return Err(ChainError::NotMined(sent.hash));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(100));
        }
    }
}

/// A transaction as it was sent: what its failure runs again with.
struct Sent<'a> {
    hash: B256,
    to: Address,
    data: &'a [u8],
    gas: u64,
}

/// A send that failed, with the nonce of the transaction the node refused
/// (none when the node did not refuse one).
struct Refused {
    nonce: Option<u64>,
    error: ChainError,
}

/// Init code that returns the block's timestamp (`TIMESTAMP PUSH1 0 MSTORE
/// PUSH1 32 PUSH1 0 RETURN`): run by `eth_call` as a creation, it reads the
/// time of the block the call runs in on any EVM node, no contract needed.
pub const BLOCK_TIMESTAMP: [u8; 9] = [0x42, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];
