//! The gateway's account on a chain, over JSON-RPC like any client: reads
//! (`eth_call`) and transactions it signs and sends one at a time (keeping
//! its nonce), each waited for until mined. Payment settlement and data
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

/// An account of the gateway on a chain.
#[derive(Debug)]
pub struct ChainAccount {
    rpc_url: String,
    chain_id: u64,
    signer: PrivateKeySigner,
    /// Transactions go out one at a time: the next nonce, once known.
    next_nonce: Mutex<Option<u64>>,
}

fn quantity(value: &Value) -> Option<u64> {
    value.as_str().and_then(|s| s.strip_prefix("0x")).and_then(|s| u64::from_str_radix(s, 16).ok())
}

impl ChainAccount {
    /// `signer` on the chain `chain_id` served at `rpc_url`.
    pub fn new(rpc_url: String, chain_id: u64, signer: PrivateKeySigner) -> Self {
        Self { rpc_url, chain_id, signer, next_nonce: Mutex::new(None) }
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

    /// `eth_call` of `data` to `to` at the latest block.
    pub fn call(&self, to: Address, data: Vec<u8>) -> Result<Vec<u8>, ChainError> {
        let answer =
            rpc_client::call(&self.rpc_url, "eth_call", json!([{ "to": to, "data": Bytes::from(data) }, "latest"]))?;
        answer.as_str().and_then(|s| alloy_primitives::hex::decode(s).ok()).ok_or(ChainError::BadAnswer("eth_call"))
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
        let mut next_nonce = self.next_nonce.lock();
        let nonce = match *next_nonce {
            Some(nonce) => nonce,
            None => quantity(&rpc_client::call(url, "eth_getTransactionCount", json!([self.address(), "pending"]))?)
                .ok_or(ChainError::BadAnswer("eth_getTransactionCount"))?,
        };
        let price = quantity(&rpc_client::call(url, "eth_gasPrice", json!([]))?).unwrap_or(1_000_000_000);
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
        let raw = TxEnvelope::from(tx.into_signed(signature)).encoded_2718();
        let sent = rpc_client::call(url, "eth_sendRawTransaction", json!([Bytes::from(raw)]));
        // A refused transaction leaves the nonce unknown: read it again next time.
        *next_nonce = sent.is_ok().then_some(nonce + 1);
        drop(next_nonce);
        let hash: B256 = serde_json::from_value(sent?).map_err(|_| ChainError::BadAnswer("eth_sendRawTransaction"))?;
        let started = Instant::now();
        let mut wait = Duration::from_millis(1);
        loop {
            let receipt = rpc_client::call(url, "eth_getTransactionReceipt", json!([hash]))?;
            if !receipt.is_null() {
                return if receipt["status"] == "0x1" { Ok(hash) } else { Err(ChainError::Reverted(hash)) };
            }
            if started.elapsed() > MINED_WITHIN {
                return Err(ChainError::NotMined(hash));
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_millis(100));
        }
    }
}
