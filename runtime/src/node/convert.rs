//! The chain's data as the standard JSON-RPC types (alloy's), for both the
//! RPC server and in-process users.

use alloy_consensus::transaction::Recovered;
use alloy_primitives::U256;
use alloy_rpc_types_eth::{Block, BlockTransactions, Header, Log, Transaction, TransactionReceipt};

use crate::chain::{PoolTx, SealedBlock};

/// A transaction as `eth_getTransactionByHash` returns it.
pub fn rpc_transaction(tx: &PoolTx, location: Option<(&SealedBlock, usize)>) -> Transaction {
    let (block_hash, block_number, transaction_index, effective_gas_price, block_timestamp) = match location {
        Some((block, index)) => (
            Some(block.hash),
            Some(block.number()),
            Some(index as u64),
            Some(tx.effective_gas_price(block.header.base_fee_per_gas.unwrap_or_default())),
            Some(block.header.timestamp),
        ),
        None => (None, None, None, None, None),
    };
    Transaction {
        inner: Recovered::new_unchecked(tx.envelope.clone(), tx.sender),
        block_hash,
        block_number,
        transaction_index,
        effective_gas_price: effective_gas_price.or(Some(tx.max_fee())),
        block_timestamp,
    }
}

/// The logs of transaction `index` of `block`, with their positions.
pub fn rpc_logs(block: &SealedBlock, index: usize) -> Vec<Log> {
    let first: usize = block.receipts[..index].iter().map(|r| r.logs.len()).sum();
    logs_from(block, index, first)
}

/// Every log of `block`, with its positions, in order: one pass over the
/// block, not a count of the earlier logs per transaction.
pub fn rpc_block_logs(block: &SealedBlock) -> impl Iterator<Item = Log> + '_ {
    let mut first = 0;
    (0..block.transactions.len()).flat_map(move |index| {
        let logs = logs_from(block, index, first);
        first += logs.len();
        logs
    })
}

/// The logs of transaction `index` of `block`, the first at `first` in it.
fn logs_from(block: &SealedBlock, index: usize, first: usize) -> Vec<Log> {
    let tx = &block.transactions[index];
    block.receipts[index]
        .logs
        .iter()
        .enumerate()
        .map(|(i, log)| Log {
            inner: log.clone(),
            block_hash: Some(block.hash),
            block_number: Some(block.number()),
            block_timestamp: Some(block.header.timestamp),
            transaction_hash: Some(tx.hash),
            transaction_index: Some(index as u64),
            log_index: Some((first + i) as u64),
            removed: false,
        })
        .collect()
}

/// The receipt of transaction `index` of `block`.
pub fn rpc_receipt(block: &SealedBlock, index: usize) -> TransactionReceipt {
    let tx = &block.transactions[index];
    let receipt = &block.receipts[index];
    let envelope = receipt.envelope_with(tx.envelope.tx_type(), rpc_logs(block, index));
    TransactionReceipt {
        inner: envelope,
        transaction_hash: tx.hash,
        transaction_index: Some(index as u64),
        block_hash: Some(block.hash),
        block_number: Some(block.number()),
        gas_used: receipt.gas_used,
        effective_gas_price: receipt.effective_gas_price,
        blob_gas_used: None,
        blob_gas_price: None,
        from: tx.sender,
        to: tx.to(),
        contract_address: receipt.contract_address,
    }
}

/// A block, with transaction hashes or full transactions.
pub fn rpc_block(block: &SealedBlock, full: bool) -> Block {
    let transactions = if full {
        BlockTransactions::Full(
            block.transactions.iter().enumerate().map(|(i, tx)| rpc_transaction(tx, Some((block, i)))).collect(),
        )
    } else {
        BlockTransactions::Hashes(block.transactions.iter().map(|tx| tx.hash).collect())
    };
    Block { header: rpc_header(block), uncles: Vec::new(), transactions, withdrawals: Some(Default::default()) }
}

/// A block header with its hash and size (`newHeads`).
pub fn rpc_header(block: &SealedBlock) -> Header {
    Header {
        hash: block.hash,
        inner: block.header.clone(),
        total_difficulty: Some(U256::ZERO),
        size: Some(U256::from(block.size())),
    }
}

/// The JSON of a transaction, with the hash fixed for impersonated ones
/// (whose envelope hash does not cover the sender).
pub fn transaction_json(tx: &PoolTx, rpc: &Transaction) -> serde_json::Value {
    let mut value = serde_json::to_value(rpc).unwrap_or_default();
    if tx.impersonated
        && let Some(object) = value.as_object_mut()
    {
        object.insert("hash".into(), serde_json::Value::String(tx.hash.to_string()));
    }
    value
}
