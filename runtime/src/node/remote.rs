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
//! - state at a block before the fork block, by number or by the hash of
//!   a remote block, is the remote's (at the fork block and after, the
//!   devnet's, laid over the remote's).
//!
//! The remote answers for its chain up to the fork block only: a block,
//! transaction, receipt or log it made later is not on this chain, and
//! answers `null` (or is left out). Its JSON is passed through as it is.
//! Each read is one [`ForkSource::forward`]: bounded, tried again, counted
//! and abandoned at shutdown as every read of the remote (`rpc` runs the
//! methods that may make one on its blocking pool in fork mode). A remote's
//! error is a [`NodeError::Fork`], which `rpc` answers with the remote's
//! JSON-RPC code (and revert data) and a message naming the fork.
//!
//! Every method answers `None` when the devnet answers the request itself,
//! which outside fork mode is always.

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{B256, U64};
use alloy_rpc_types_eth::{Filter, FilterBlockOption};
use serde_json::{Value, json};

use super::{Devnet, NodeError, check_filter, check_log_count};
use crate::fork::ForkSource;

/// The remote's answer, or `None`: the devnet answers.
pub type Forwarded = Result<Option<Value>, NodeError>;

impl Devnet {
    /// `eth_getBlockByNumber` and `eth_getBlockByHash`: the remote's block up
    /// to the fork block.
    pub fn forwarded_block(&self, id: BlockId, full: bool) -> Forwarded {
        let Some(fork) = self.fork_source() else { return Ok(None) };
        match id {
            // A number past the head is the self's to answer (`null`).
            BlockId::Number(_) => match self.resolve_block(id) {
                Ok(number) if number <= fork.number() => {
                    forward(&fork, "eth_getBlockByNumber", json!([BlockNumberOrTag::Number(number), full])).map(Some)
                }
                _ => Ok(None),
            },
            BlockId::Hash(hash) => {
                if after_fork(self, &fork, hash.block_hash) {
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
    pub fn forwarded_block_transaction_count(&self, id: BlockId) -> Forwarded {
        Ok(self.forwarded_block(id, false)?.map(|block| match block.get("transactions").and_then(Value::as_array) {
            Some(transactions) => json!(U64::from(transactions.len())),
            None => Value::Null,
        }))
    }

    /// `eth_getTransactionByHash`: a transaction the self does not hold.
    pub fn forwarded_transaction(&self, hash: B256) -> Forwarded {
        remote_transaction(self, hash, "eth_getTransactionByHash")
    }

    /// `eth_getTransactionReceipt`: the receipt of a transaction the self does
    /// not hold (one pending here has none, and costs no read of the remote).
    pub fn forwarded_receipt(&self, hash: B256) -> Forwarded {
        remote_transaction(self, hash, "eth_getTransactionReceipt")
    }

    /// `eth_getLogs` and `eth_getFilterLogs`: the remote's logs up to the fork
    /// block, then the self's after it, at most as many as one answer holds
    /// in all.
    pub fn forwarded_logs(&self, filter: &Filter) -> Forwarded {
        let Some(fork) = self.fork_source() else { return Ok(None) };
        check_filter(filter)?;
        let (from, to) = match filter.block_option {
            FilterBlockOption::AtBlockHash(hash) => {
                if after_fork(self, &fork, hash) {
                    return Ok(None);
                }
                let logs = remote_logs(&fork, filter)?;
                return Ok(Some(Value::Array(logs)));
            }
            FilterBlockOption::Range { from_block, to_block } => {
                let resolve = |bound: Option<BlockNumberOrTag>| self.resolve_block(bound.unwrap_or_default().into());
                match (resolve(from_block), resolve(to_block)) {
                    (Ok(from), Ok(to)) => (from, to),
                    // A bound past the head: the self's error.
                    _ => return Ok(None),
                }
            }
        };
        // An empty range is the self's error; one after the fork block, its logs.
        if from > to || from > fork.number() {
            return Ok(None);
        }
        let mut logs = remote_logs(&fork, &filter.clone().from_block(from).to_block(to.min(fork.number())))?;
        if to > fork.number() {
            let local = self.logs(&filter.clone().from_block(fork.number() + 1).to_block(to))?;
            check_log_count(logs.len() + local.len())?;
            let local = serde_json::to_value(local).map_err(|e| NodeError::Failed(e.to_string()))?;
            logs.extend(local.as_array().into_iter().flatten().cloned());
        }
        Ok(Some(Value::Array(logs)))
    }

    /// A state read (`eth_getBalance`, `eth_call`…) at block `id`: the remote's
    /// when `id` is numbered before the fork block (`earliest` included), sent
    /// as `params` makes it from the block's number.
    pub fn forwarded_at(
        &self,
        method: &'static str,
        id: BlockId,
        params: impl FnOnce(BlockNumberOrTag) -> Value,
    ) -> Forwarded {
        let Some(fork) = self.fork_source() else { return Ok(None) };
        let number = match id {
            BlockId::Number(BlockNumberOrTag::Number(number)) => number,
            BlockId::Number(BlockNumberOrTag::Earliest) => 0,
            // A block the devnet holds is its own; another's number is the
            // remote's to say (a block it made after the fork block is not
            // on this chain, and the devnet answers for it).
            BlockId::Hash(hash) if self.resolve_block(id).is_err() => {
                let block = forward(&fork, "eth_getBlockByHash", json!([hash.block_hash, false]))?;
                match block_number(&block) {
                    Some(number) => number,
                    None => return Ok(None),
                }
            }
            _ => return Ok(None),
        };
        if number >= fork.number() {
            return Ok(None);
        }
        forward(&fork, method, params(BlockNumberOrTag::Number(number))).map(Some)
    }
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
fn remote_logs(fork: &ForkSource, filter: &Filter) -> Result<Vec<Value>, NodeError> {
    let logs: Vec<Value> = match forward(fork, "eth_getLogs", json!([filter]))? {
        Value::Array(logs) => logs.into_iter().filter(|log| up_to_fork(fork, log)).collect(),
        other => return Err(fork.bad_answer("eth_getLogs", &other, "a list of logs").into()),
    };
    // The remote's own limit may be wider than an answer of the devnet's.
    check_log_count(logs.len())?;
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
    block_number(answer).is_some_and(|number| number <= fork.number())
}

/// A remote object's `blockNumber` (a transaction's, a receipt's, a log's)
/// or `number` (a block's).
fn block_number(answer: &Value) -> Option<u64> {
    let number = answer.get("blockNumber").or_else(|| answer.get("number")).and_then(Value::as_str)?;
    u64::from_str_radix(number.strip_prefix("0x")?, 16).ok()
}

/// Sends `params` (trailing `null`s left out) to the remote.
fn forward(fork: &ForkSource, method: &'static str, mut params: Value) -> Result<Value, NodeError> {
    if let Value::Array(values) = &mut params {
        while values.last().is_some_and(Value::is_null) {
            values.pop();
        }
    }
    Ok(fork.forward(method, params)?)
}
