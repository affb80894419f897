//! The gateway's account on a chain, over JSON-RPC like any client: reads
//! (`eth_call`) and transactions it signs and sends one at a time (keeping
//! its nonce and a recent gas price), each waited for until mined — in the
//! same round trip where the node answers EIP-7966's
//! `eth_sendRawTransactionSync`, else by polling. Payment settlement and data
//! settlement both send through it.

use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TxEnvelope};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, B256, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use nml_runtime::rpc_client::{self, RpcError};
use parking_lot::Mutex;
use serde_json::{Value, json};

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
    /// The transaction was mined and reverted.
    #[error("transaction {0} reverted")]
    Reverted(B256),
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

/// What the next transaction is sent with: forgotten when a send fails, so
/// it is read again.
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

    /// `eth_call`s of each `(to, data)` of `calls`, in one round trip:
    /// each one's answer, in order.
    pub fn call_all(&self, calls: &[(Address, Vec<u8>)]) -> Result<Vec<Result<Vec<u8>, ChainError>>, ChainError> {
        let requests: Vec<(&str, Value)> = calls
            .iter()
            .map(|(to, data)| {
                let request = json!({ "from": self.address(), "to": to, "data": Bytes::from(data.clone()) });
                ("eth_call", json!([request, "latest"]))
            })
            .collect();
        let answers = rpc_client::batch(&self.rpc_url, &requests)?;
        Ok(answers
            .into_iter()
            .map(|answer| {
                let answer = answer?;
                answer
                    .as_str()
                    .and_then(|s| alloy_primitives::hex::decode(s).ok())
                    .ok_or(ChainError::BadAnswer("eth_call"))
            })
            .collect())
    }

    /// The code at `address` (empty for an account without).
    pub fn code(&self, address: Address) -> Result<Vec<u8>, ChainError> {
        let answer = rpc_client::call(&self.rpc_url, "eth_getCode", json!([address, "latest"]))?;
        answer.as_str().and_then(|s| alloy_primitives::hex::decode(s).ok()).ok_or(ChainError::BadAnswer("eth_getCode"))
    }

    /// The latest block's timestamp.
    pub fn latest_timestamp(&self) -> Result<u64, ChainError> {
        let block = rpc_client::call(&self.rpc_url, "eth_getBlockByNumber", json!(["latest", false]))?;
        quantity(&block["timestamp"]).ok_or(ChainError::BadAnswer("eth_getBlockByNumber"))
    }

    /// The first word `to` answers `data` with, as a number.
    pub fn call_uint(&self, to: Address, data: Vec<u8>) -> Result<U256, ChainError> {
        let out = self.call(to, data)?;
        Ok(U256::from_be_slice(out.get(..32).unwrap_or_default()))
    }

    /// Signs and sends a call of `data` to `to` with at most `gas`, and
    /// waits until it is mined: its hash, or why it failed.
    pub fn send(&self, to: Address, data: Vec<u8>, gas: u64) -> Result<B256, ChainError> {
        let url = &self.rpc_url;
        let mut sending = self.sending.lock();
        let nonce = match sending.nonce {
            Some(nonce) => nonce,
            None => quantity(&rpc_client::call(url, "eth_getTransactionCount", json!([self.address(), "pending"]))?)
                .ok_or(ChainError::BadAnswer("eth_getTransactionCount"))?,
        };
        let price = match sending.gas_price {
            Some((price, read)) if read.elapsed() < GAS_PRICE_FOR => price,
            _ => {
                let price = quantity(&rpc_client::call(url, "eth_gasPrice", json!([]))?).unwrap_or(1_000_000_000);
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
            input: data.into(),
            ..Default::default()
        };
        let signature =
            self.signer.sign_hash_sync(&tx.signature_hash()).map_err(|e| ChainError::Signing(e.to_string()))?;
        let raw = Bytes::from(TxEnvelope::from(tx.into_signed(signature)).encoded_2718());
        // One round trip where the node can (EIP-7966), else send and poll.
        let sent = match sending.sync {
            Some(false) => None,
            _ => {
                match rpc_client::call(url, "eth_sendRawTransactionSync", json!([raw, MINED_WITHIN.as_millis() as u64]))
                {
                    Err(RpcError::Remote { code: -32601, .. }) => {
                        sending.sync = Some(false);
                        None
                    }
                    answer => {
                        sending.sync = Some(true);
                        Some(answer)
                    }
                }
            }
        };
        let sent = match sent {
            Some(receipt) => receipt.map(Sent::Receipt),
            None => rpc_client::call(url, "eth_sendRawTransaction", json!([raw])).map(Sent::Hash),
        };
        // A refused transaction leaves the nonce and the price unknown: read them again next time.
        match sent {
            Ok(_) => sending.nonce = Some(nonce + 1),
            Err(_) => (sending.nonce, sending.gas_price) = (None, None),
        }
        drop(sending);
        match sent? {
            Sent::Receipt(receipt) => {
                let hash: B256 = serde_json::from_value(receipt["transactionHash"].clone())
                    .map_err(|_| ChainError::BadAnswer("eth_sendRawTransactionSync"))?;
                outcome(hash, &receipt)
            }
            Sent::Hash(hash) => {
                let hash: B256 =
                    serde_json::from_value(hash).map_err(|_| ChainError::BadAnswer("eth_sendRawTransaction"))?;
                self.wait_mined(hash)
            }
        }
    }

    /// Polls for `hash`'s receipt, at 1, 2, 4 … ms (at most 100 ms apart).
    fn wait_mined(&self, hash: B256) -> Result<B256, ChainError> {
        let started = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let receipt = rpc_client::call(&self.rpc_url, "eth_getTransactionReceipt", json!([hash]))?;
            if !receipt.is_null() {
                return outcome(hash, &receipt);
            }
            if started.elapsed() > MINED_WITHIN {
                return Err(ChainError::NotMined(hash));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(100));
        }
    }
}

/// What a send answered: the receipt (EIP-7966), or the hash to wait for.
enum Sent {
    Receipt(Value),
    Hash(Value),
}

/// A mined transaction's hash, or the revert its receipt records.
fn outcome(hash: B256, receipt: &Value) -> Result<B256, ChainError> {
    if receipt["status"] == "0x1" { Ok(hash) } else { Err(ChainError::Reverted(hash)) }
}
