//! Fork mode: the requests the remote chain answers. A forked devnet's chain
//! continues the remote's from the fork block, its first block; what came
//! before it, the remote holds. So, as anvil does:
//!
//! - a block numbered up to the fork block, the fork block included (the
//!   devnet keeps its header, not its transactions), or with a hash the
//!   devnet's chain does not hold after the fork block, is the remote's;
//! - a transaction or receipt the devnet does not hold (mined or pending)
//!   is the remote's;
//! - logs of blocks up to the fork block are the remote's: a range that
//!   spans it is answered by the remote up to it and by the devnet after
//!   it, in block order (`eth_getLogs`, `eth_getFilterLogs`; a filter's
//!   changes are of blocks mined since it was installed, the devnet's);
//! - state at a block numbered before the fork block is the remote's (at
//!   the fork block and after, the devnet's, laid over the remote's).
//!
//! The remote answers for its chain up to the fork block only: a block,
//! transaction, receipt or log it made later is not on this chain, and
//! answers `null` (or is left out). Its JSON is passed through as it is.
//! Each read is one [`ForkSource::forward`]: bounded, tried again, counted
//! and abandoned at shutdown as every read of the remote; the methods that
//! may make one run on the blocking pool in fork mode
//! ([`super::dispatch::READS_STATE`]). A remote's error is answered with its
//! JSON-RPC code (and revert data) and a message naming the fork.
//!
//! Every function answers `None` when the devnet answers the request
//! itself, which outside fork mode is always.

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, U64};
use alloy_rpc_types_eth::{Filter, FilterBlockOption};
use jsonrpsee::types::ErrorObjectOwned;
use serde_json::{Value, json};

use super::{SERVER_ERROR, error_object};
use crate::fork::{ForkError, ForkSource};
use crate::node::{Devnet, NodeError, check_filter, check_log_count};
use crate::rpc_client::RpcError;

/// The remote's answer, or `None`: the devnet answers.
pub(super) type Forwarded = Result<Option<Value>, ErrorObjectOwned>;

/// `eth_getBlockByNumber` and `eth_getBlockByHash`: the remote's block up
/// to the fork block.
pub(super) fn block(devnet: &Devnet, id: BlockId, full: bool) -> Forwarded {
    let Some(fork) = devnet.fork_source() else { return Ok(None) };
    match id {
        // A number past the head is the devnet's to answer (`null`).
        BlockId::Number(_) => match devnet.resolve_block(id) {
            Ok(number) if number <= fork.number() => {
                forward(&fork, "eth_getBlockByNumber", json!([BlockNumberOrTag::Number(number), full])).map(Some)
            }
            _ => Ok(None),
        },
        BlockId::Hash(hash) => {
            if after_fork(devnet, &fork, hash.block_hash) {
                return Ok(None);
            }
            let block = forward(&fork, "eth_getBlockByHash", json!([hash.block_hash, full]))?;
            Ok(Some(on_chain(&fork, block)))
        }
    }
}

/// `eth_getBlockTransactionCountByNumber` and `…ByHash`: the number of
/// transactions of the remote's block up to the fork block, counted from
/// the block (so that a block after it is left out as in [`block`]).
pub(super) fn block_transaction_count(devnet: &Devnet, id: BlockId) -> Forwarded {
    Ok(block(devnet, id, false)?.map(|block| match block.get("transactions").and_then(Value::as_array) {
        Some(transactions) => json!(U64::from(transactions.len())),
        None => Value::Null,
    }))
}

/// `eth_getTransactionByHash`: a transaction the devnet does not hold.
pub(super) fn transaction(devnet: &Devnet, hash: B256) -> Forwarded {
    remote_transaction(devnet, hash, "eth_getTransactionByHash")
}

/// `eth_getTransactionReceipt`: the receipt of a transaction the devnet does
/// not hold (one pending here has none, and costs no read of the remote).
pub(super) fn receipt(devnet: &Devnet, hash: B256) -> Forwarded {
    remote_transaction(devnet, hash, "eth_getTransactionReceipt")
}

/// `eth_getLogs` and `eth_getFilterLogs`: the remote's logs up to the fork
/// block, then the devnet's after it, at most as many as one answer holds
/// in all.
pub(super) fn logs(devnet: &Devnet, filter: &Filter) -> Forwarded {
    let Some(fork) = devnet.fork_source() else { return Ok(None) };
    check_filter(filter).map_err(|e| error_object(&e))?;
    let (from, to) = match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => {
            if after_fork(devnet, &fork, hash) {
                return Ok(None);
            }
            let logs = remote_logs(&fork, filter)?;
            return Ok(Some(Value::Array(logs)));
        }
        FilterBlockOption::Range { from_block, to_block } => {
            let resolve = |bound: Option<BlockNumberOrTag>| devnet.resolve_block(bound.unwrap_or_default().into());
            match (resolve(from_block), resolve(to_block)) {
                (Ok(from), Ok(to)) => (from, to),
                // A bound past the head: the devnet's error.
                _ => return Ok(None),
            }
        }
    };
    // An empty range is the devnet's error; one after the fork block, its logs.
    if from > to || from > fork.number() {
        return Ok(None);
    }
    let mut logs = remote_logs(&fork, &filter.clone().from_block(from).to_block(to.min(fork.number())))?;
    if to > fork.number() {
        let local =
            devnet.logs(&filter.clone().from_block(fork.number() + 1).to_block(to)).map_err(|e| error_object(&e))?;
        check_log_count(logs.len() + local.len()).map_err(|e| error_object(&e))?;
        let local = serde_json::to_value(local).map_err(|e| error_object(&NodeError::Failed(e.to_string())))?;
        logs.extend(local.as_array().into_iter().flatten().cloned());
    }
    Ok(Some(Value::Array(logs)))
}

/// A state read (`eth_getBalance`, `eth_call`…) at block `id`: the remote's
/// when `id` is numbered before the fork block (`earliest` included), sent
/// as `params` makes it from the block's number.
pub(super) fn at_block(
    devnet: &Devnet,
    method: &'static str,
    id: BlockId,
    params: impl FnOnce(BlockNumberOrTag) -> Value,
) -> Forwarded {
    let Some(fork) = devnet.fork_source() else { return Ok(None) };
    let number = match id {
        BlockId::Number(BlockNumberOrTag::Number(number)) => number,
        BlockId::Number(BlockNumberOrTag::Earliest) => 0,
        _ => return Ok(None),
    };
    if number >= fork.number() {
        return Ok(None);
    }
    forward(&fork, method, params(BlockNumberOrTag::Number(number))).map(Some)
}

/// A transaction's or its receipt's remote answer, when the devnet does
/// not hold the transaction.
fn remote_transaction(devnet: &Devnet, hash: B256, method: &'static str) -> Forwarded {
    let Some(fork) = devnet.fork_source() else { return Ok(None) };
    if devnet.transaction(hash).is_some() {
        return Ok(None);
    }
    Ok(Some(on_chain(&fork, forward(&fork, method, json!([hash]))?)))
}

/// The remote's logs for `filter`, those up to the fork block.
fn remote_logs(fork: &ForkSource, filter: &Filter) -> Result<Vec<Value>, ErrorObjectOwned> {
    let logs: Vec<Value> = match forward(fork, "eth_getLogs", json!([filter]))? {
        Value::Array(logs) => logs.into_iter().filter(|log| up_to_fork(fork, log)).collect(),
        other => return Err(fork_error(&fork.bad_answer("eth_getLogs", &other, "a list of logs"))),
    };
    // The remote's own limit may be wider than an answer of the devnet's.
    check_log_count(logs.len()).map_err(|e| error_object(&e))?;
    Ok(logs)
}

/// Whether the devnet's chain holds the block with hash `hash` after the
/// fork block (then it answers for it).
fn after_fork(devnet: &Devnet, fork: &ForkSource, hash: B256) -> bool {
    devnet.resolve_block(hash.into()).is_ok_and(|number| number > fork.number())
}

/// The remote's `answer` (a block, a transaction, a receipt) if it lies on
/// this chain, at or before the fork block; `null` otherwise.
fn on_chain(fork: &ForkSource, answer: Value) -> Value {
    if up_to_fork(fork, &answer) { answer } else { Value::Null }
}

/// Whether a remote object's `number` (a block's) or `blockNumber` (a
/// transaction's, a receipt's, a log's) is at most the fork block's.
fn up_to_fork(fork: &ForkSource, answer: &Value) -> bool {
    let number = answer.get("blockNumber").or_else(|| answer.get("number")).and_then(Value::as_str);
    let number = number.and_then(|n| n.strip_prefix("0x")).and_then(|n| u64::from_str_radix(n, 16).ok());
    number.is_some_and(|number| number <= fork.number())
}

/// Sends `params` (trailing `null`s left out) to the remote.
fn forward(fork: &ForkSource, method: &'static str, mut params: Value) -> Result<Value, ErrorObjectOwned> {
    if let Value::Array(values) = &mut params {
        while values.last().is_some_and(Value::is_null) {
            values.pop();
        }
    }
    fork.forward(method, params).map_err(|e| fork_error(&e))
}

/// The JSON-RPC error for a failed forwarded read: the remote's own code
/// and data when it answered an error (a revert stays a revert, code 3 with
/// its data), `-32000` otherwise; the message names the fork and the method.
fn fork_error(error: &ForkError) -> ErrorObjectOwned {
    match error {
        ForkError::Rpc { source: RpcError::Remote { code, data, .. }, .. } => {
            ErrorObjectOwned::owned(i32::try_from(*code).unwrap_or(SERVER_ERROR), error.to_string(), data.clone())
        }
        _ => ErrorObjectOwned::owned(SERVER_ERROR, error.to_string(), None::<()>),
    }
}
