//! Every JSON-RPC method: parameters in, [`Devnet`] call, JSON out.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, U256, hex};
use alloy_rpc_types_eth::state::StateOverride;
use alloy_rpc_types_eth::{Filter, TransactionRequest};
use alloy_rpc_types_trace::geth::GethDebugTracingOptions;
use jsonrpsee::core::SubscriptionResult;
use jsonrpsee::types::{ErrorObjectOwned, Id, Params};
use jsonrpsee::{
    ConnectionId, MethodCallback, MethodResponse, PendingSubscriptionSink, RpcModule, SubscriptionMessage,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::dispatch::{Handler, Method, Out, register};
use super::error_object;
use super::params::{Args, invalid, quantity, quantity_u256};
use super::records::record_json;
use super::typed_data;
use crate::chain::{PoolTx, StateDump};
use crate::evm::{TraceError, check_trace_options};
use crate::inference::{ModelInfo, TensorSpec};
use crate::node::{Devnet, NodeError, rpc_block_logs, rpc_header, transaction_json};
use crate::tee::Fault;
use crate::tee::faults::UnknownFault;

/// The version string `web3_clientVersion` reports.
const CLIENT_VERSION: &str = concat!("nml-devnet/v", env!("CARGO_PKG_VERSION"));

trait IntoRpc<T> {
    fn rpc(self) -> Result<T, ErrorObjectOwned>;
}

impl<T> IntoRpc<T> for Result<T, NodeError> {
    fn rpc(self) -> Result<T, ErrorObjectOwned> {
        self.map_err(|e| error_object(&e))
    }
}

fn json<T: Serialize>(value: T) -> Out {
    serde_json::to_value(value).map_err(|e| ErrorObjectOwned::owned(-32603, e.to_string(), None::<()>))
}

fn qty(n: u64) -> Value {
    Value::String(format!("{n:#x}"))
}

/// How long `eth_sendRawTransactionSync` waits for the receipt by default,
/// and at most, in milliseconds.
const SYNC_SEND_DEFAULT_MS: u64 = 2_000;
const SYNC_SEND_MAX_MS: u64 = 60_000;

/// Methods: (name, min params, max params, handler).
const METHODS: &[(&str, usize, usize, Handler)] = &[
    ("web3_clientVersion", 0, 0, |_, _| Ok(json!(CLIENT_VERSION))),
    ("web3_sha3", 1, 1, |a, _| json(alloy_primitives::keccak256(a.req::<Bytes>(0)?))),
    ("net_version", 0, 0, |_, d| Ok(json!(d.chain_id().to_string()))),
    ("net_listening", 0, 0, |_, _| Ok(json!(true))),
    ("net_peerCount", 0, 0, |_, _| Ok(qty(0))),
    ("eth_chainId", 0, 0, |_, d| Ok(qty(d.chain_id()))),
    ("eth_syncing", 0, 0, |_, _| Ok(json!(false))),
    ("eth_mining", 0, 0, |_, d| Ok(json!(d.automine()))),
    ("eth_coinbase", 0, 0, |_, d| json(d.chain_config().coinbase)),
    ("eth_blockNumber", 0, 0, |_, d| Ok(qty(d.block_number()))),
    ("eth_accounts", 0, 0, |_, d| json(d.accounts())),
    // In fork mode, a state read at a block before the fork block is the
    // remote's (`Devnet::forwarded_*`), as are blocks, transactions and logs up to it.
    ("eth_getBalance", 1, 2, |a, d| {
        let (address, id): (Address, _) = (a.req(0)?, block_id(a, 1)?);
        if let Some(answer) = d.forwarded_at("eth_getBalance", id, |at| json!([address, at])).rpc()? {
            return Ok(answer);
        }
        json(d.balance(address, id).rpc()?)
    }),
    ("eth_getTransactionCount", 1, 2, |a, d| {
        let (address, id): (Address, _) = (a.req(0)?, block_id(a, 1)?);
        if let Some(answer) = d.forwarded_at("eth_getTransactionCount", id, |at| json!([address, at])).rpc()? {
            return Ok(answer);
        }
        Ok(qty(d.transaction_count(address, id).rpc()?))
    }),
    ("eth_getCode", 1, 2, |a, d| {
        let (address, id): (Address, _) = (a.req(0)?, block_id(a, 1)?);
        if let Some(answer) = d.forwarded_at("eth_getCode", id, |at| json!([address, at])).rpc()? {
            return Ok(answer);
        }
        json(d.code(address, id).rpc()?)
    }),
    ("eth_getStorageAt", 2, 3, |a, d| {
        let address: Address = a.req(0)?;
        let slot = a.raw(1).map(|v| quantity_u256(1, v)).transpose()?.unwrap_or_default();
        let id = block_id(a, 2)?;
        let params = |at| json!([address, B256::from(slot), at]);
        if let Some(answer) = d.forwarded_at("eth_getStorageAt", id, params).rpc()? {
            return Ok(answer);
        }
        json(d.storage_at(address, slot, id).rpc()?)
    }),
    ("eth_call", 1, 3, |a, d| {
        let (request, id): (TransactionRequest, _) = (a.req(0)?, block_id(a, 1)?);
        let overrides: Option<StateOverride> = a.opt(2)?;
        if let Some(answer) = d.forwarded_at("eth_call", id, |at| json!([request, at, overrides])).rpc()? {
            return Ok(answer);
        }
        json(d.call(request, Some(id), overrides).rpc()?)
    }),
    ("eth_estimateGas", 1, 3, |a, d| {
        let (request, id): (TransactionRequest, _) = (a.req(0)?, block_id(a, 1)?);
        let overrides: Option<StateOverride> = a.opt(2)?;
        if let Some(answer) = d.forwarded_at("eth_estimateGas", id, |at| json!([request, at, overrides])).rpc()? {
            return Ok(answer);
        }
        Ok(qty(d.estimate_gas(request, Some(id), overrides).rpc()?))
    }),
    ("eth_gasPrice", 0, 0, |_, d| json(U256::from(d.gas_price()))),
    ("eth_maxPriorityFeePerGas", 0, 0, |_, d| json(U256::from(d.max_priority_fee()))),
    ("eth_feeHistory", 2, 3, |a, d| {
        let count = a.quantity(0)?.unwrap_or(1);
        let newest: BlockNumberOrTag = a.req(1)?;
        let percentiles: Option<Vec<f64>> = a.opt(2)?;
        json(d.fee_history(count, newest, percentiles.as_deref()).rpc()?)
    }),
    ("eth_sendRawTransaction", 1, 1, |a, d| json(d.send_raw_transaction(&a.req::<Bytes>(0)?).rpc()?)),
    ("eth_sendTransaction", 1, 1, |a, d| json(d.send_transaction(a.req(0)?).rpc()?)),
    ("eth_sendRawTransactionSync", 1, 2, |a, d| {
        // EIP-7966: send, then answer with the receipt once mined, or error 4
        // (with the hash) when it is not mined within the timeout.
        // Every argument is read before the transaction is sent: a refused
        // call must not have sent it.
        let raw: Bytes = a.req(0)?;
        let asked = a.quantity(1)?.filter(|ms| *ms > 0).unwrap_or(SYNC_SEND_DEFAULT_MS);
        let hash = d.send_raw_transaction(&raw).rpc()?;
        let timeout = Duration::from_millis(asked.min(SYNC_SEND_MAX_MS));
        match d.wait_for_receipt(hash, timeout).and_then(|_| d.receipt(hash)) {
            Some(receipt) => json(receipt),
            None => Err(ErrorObjectOwned::owned(
                4,
                format!("the transaction was added to the pool but not mined within {} ms", timeout.as_millis()),
                Some(hash),
            )),
        }
    }),
    ("eth_sign", 2, 2, |a, d| json(d.sign(a.req(0)?, &a.req::<Bytes>(1)?).rpc()?)),
    ("personal_sign", 2, 2, |a, d| json(d.sign(a.req(1)?, &a.req::<Bytes>(0)?).rpc()?)),
    ("eth_signTypedData_v4", 2, 2, |a, d| {
        let data = typed_data::read(1, &a.req::<Value>(1)?)?;
        json(d.sign_typed_data(a.req(0)?, &data).rpc()?)
    }),
    ("eth_getTransactionByHash", 1, 1, |a, d| {
        let hash: B256 = a.req(0)?;
        if let Some(answer) = d.forwarded_transaction(hash).rpc()? {
            return Ok(answer);
        }
        Ok(d.transaction(hash).map(|(tx, rpc)| transaction_json(&tx, &rpc)).unwrap_or(Value::Null))
    }),
    ("eth_getTransactionReceipt", 1, 1, |a, d| {
        let hash: B256 = a.req(0)?;
        if let Some(answer) = d.forwarded_receipt(hash).rpc()? {
            return Ok(answer);
        }
        json(d.receipt(hash))
    }),
    ("eth_getBlockByNumber", 1, 2, |a, d| {
        let (tag, full): (BlockNumberOrTag, bool) = (a.req(0)?, a.opt(1)?.unwrap_or(false));
        if let Some(answer) = d.forwarded_block(tag.into(), full).rpc()? {
            return Ok(answer);
        }
        json(d.block(tag.into(), full))
    }),
    ("eth_getBlockByHash", 1, 2, |a, d| {
        let (hash, full): (B256, bool) = (a.req(0)?, a.opt(1)?.unwrap_or(false));
        if let Some(answer) = d.forwarded_block(hash.into(), full).rpc()? {
            return Ok(answer);
        }
        json(d.block(hash.into(), full))
    }),
    ("eth_getBlockTransactionCountByNumber", 1, 1, |a, d| {
        let tag: BlockNumberOrTag = a.req(0)?;
        if let Some(answer) = d.forwarded_block_transaction_count(tag.into()).rpc()? {
            return Ok(answer);
        }
        Ok(d.block_transaction_count(tag.into()).map(qty).unwrap_or(Value::Null))
    }),
    ("eth_getBlockTransactionCountByHash", 1, 1, |a, d| {
        let hash: B256 = a.req(0)?;
        if let Some(answer) = d.forwarded_block_transaction_count(hash.into()).rpc()? {
            return Ok(answer);
        }
        Ok(d.block_transaction_count(hash.into()).map(qty).unwrap_or(Value::Null))
    }),
    ("eth_getLogs", 1, 1, |a, d| {
        let filter: Filter = a.req(0)?;
        if let Some(answer) = d.forwarded_logs(&filter).rpc()? {
            return Ok(answer);
        }
        json(d.logs(&filter).rpc()?)
    }),
    ("eth_newFilter", 1, 1, |a, d| json(d.new_filter(a.req(0)?).rpc()?)),
    ("eth_newBlockFilter", 0, 0, |_, d| json(d.new_block_filter().rpc()?)),
    ("eth_newPendingTransactionFilter", 0, 0, |_, d| json(d.new_pending_transaction_filter().rpc()?)),
    ("eth_getFilterChanges", 1, 1, |a, d| json(d.filter_changes(a.req(0)?).rpc()?)),
    ("eth_getFilterLogs", 1, 1, |a, d| {
        let filter = d.log_filter(a.req(0)?).rpc()?;
        if let Some(answer) = d.forwarded_logs(&filter).rpc()? {
            return Ok(answer);
        }
        json(d.logs(&filter).rpc()?)
    }),
    ("eth_uninstallFilter", 1, 1, |a, d| json(d.uninstall_filter(a.req(0)?))),
    ("evm_mine", 0, 1, |a, d| {
        // Either a timestamp, or `{ timestamp, blocks }` (ganache's form).
        if let Some(Value::Object(_)) = a.raw(0) {
            let options: MineOptions = a.req(0)?;
            let blocks = options.blocks.map(|v| quantity(0, &v)).transpose()?.unwrap_or(1);
            let timestamp = options.timestamp.map(|v| quantity(0, &v)).transpose()?;
            d.mine_many_from(blocks, None, timestamp).rpc()?;
        } else {
            d.mine(a.quantity(0)?).rpc()?;
        }
        Ok(json!("0x0"))
    }),
    ("evm_snapshot", 0, 0, |_, d| Ok(qty(d.snapshot().rpc()?))),
    ("evm_revert", 1, 1, |a, d| Ok(json!(a.quantity(0)?.is_some_and(|id| d.revert(id))))),
    ("evm_increaseTime", 1, 1, |a, d| {
        let seconds = a.quantity(0)?.unwrap_or_default();
        let seconds = i64::try_from(seconds).map_err(|_| invalid("invalid argument 0: too large"))?;
        Ok(json!(d.increase_time(seconds).rpc()?))
    }),
    ("evm_setNextBlockTimestamp", 1, 1, |a, d| {
        d.set_next_block_timestamp(a.quantity(0)?.unwrap_or_default()).rpc()?;
        Ok(Value::Null)
    }),
    ("evm_setAutomine", 1, 1, |a, d| {
        d.set_automine(a.req(0)?);
        Ok(Value::Null)
    }),
    ("evm_setIntervalMining", 1, 1, |a, d| {
        let millis = a.quantity(0)?.unwrap_or_default();
        d.set_interval((millis > 0).then(|| Duration::from_millis(millis)));
        Ok(Value::Null)
    }),
    ("anvil_setBalance", 2, 2, |a, d| {
        let balance = a.raw(1).map(|v| quantity_u256(1, v)).transpose()?.unwrap_or_default();
        d.set_balance(a.req(0)?, balance);
        Ok(Value::Null)
    }),
    ("anvil_setCode", 2, 2, |a, d| {
        d.set_code(a.req(0)?, a.req(1)?);
        Ok(Value::Null)
    }),
    ("anvil_setNonce", 2, 2, |a, d| {
        d.set_nonce(a.req(0)?, a.quantity(1)?.unwrap_or_default());
        Ok(Value::Null)
    }),
    ("anvil_setStorageAt", 3, 3, |a, d| {
        let slot = a.raw(1).map(|v| quantity_u256(1, v)).transpose()?.unwrap_or_default();
        let value = a.raw(2).map(|v| quantity_u256(2, v)).transpose()?.unwrap_or_default();
        d.set_storage_at(a.req(0)?, slot, value);
        Ok(json!(true))
    }),
    ("anvil_impersonateAccount", 1, 1, |a, d| {
        d.impersonate(a.req(0)?);
        Ok(Value::Null)
    }),
    ("anvil_stopImpersonatingAccount", 1, 1, |a, d| {
        d.stop_impersonating(a.req(0)?);
        Ok(Value::Null)
    }),
    ("anvil_mine", 0, 2, |a, d| {
        d.mine_many_from(a.quantity(0)?.unwrap_or(1), a.quantity(1)?, None).rpc()?;
        Ok(Value::Null)
    }),
    ("anvil_dumpState", 0, 0, |_, d| {
        let dump = d.dump().rpc()?;
        if let Some(path) = d.save(&dump).rpc()? {
            tracing::info!(path = %path.display(), "state written");
        }
        Ok(json!(hex::encode_prefixed(dump.to_json())))
    }),
    ("anvil_loadState", 1, 1, |a, d| {
        let bytes: Bytes = a.req(0)?;
        d.load(StateDump::from_json(&bytes).rpc_dump()?).rpc()?;
        Ok(json!(true))
    }),
    ("txpool_status", 0, 0, |_, d| {
        // Counted by the pool: listing its content would cost as much as it holds.
        let counts = d.pool_counts();
        Ok(json!({ "pending": qty(counts.pending as u64), "queued": qty(counts.queued as u64) }))
    }),
    ("txpool_content", 0, 0, |_, d| {
        let content = d.pool_content();
        let group = |m: &BTreeMap<Address, Vec<Arc<PoolTx>>>| -> Value {
            m.iter()
                .map(|(sender, txs)| {
                    let by_nonce: serde_json::Map<String, Value> = txs
                        .iter()
                        .map(|tx| {
                            (tx.nonce().to_string(), transaction_json(tx, &crate::node::rpc_transaction(tx, None)))
                        })
                        .collect();
                    (sender.to_checksum(None), Value::Object(by_nonce))
                })
                .collect::<serde_json::Map<_, _>>()
                .into()
        };
        Ok(json!({ "pending": group(&content.pending), "queued": group(&content.queued) }))
    }),
    ("debug_traceTransaction", 1, 2, |a, d| {
        let opts: GethDebugTracingOptions = a.opt(1)?.unwrap_or_default();
        // A malformed option is a parameter error; an unsupported tracer is
        // the node's (-32000, from the trace).
        if let Err(e @ (TraceError::BadConfig(_) | TraceError::BadTimeout(_))) = check_trace_options(&opts) {
            return Err(invalid(format!("invalid argument 1: {e}")));
        }
        json(d.trace_transaction(a.req(0)?, opts).rpc()?)
    }),
    // Inference (docs/rpc.md, "nml").
    ("nml_registerModel", 1, 2, |a, d| {
        let bytes: Bytes = a.req(0)?;
        let id: Option<String> = a.opt(1)?;
        Ok(model_json(&d.register_model(bytes.to_vec(), id.as_deref()).rpc()?))
    }),
    ("nml_listModels", 0, 0, |_, d| Ok(Value::Array(d.list_models().rpc()?.iter().map(model_json).collect()))),
    ("nml_getInferenceReceipts", 1, 1, |a, d| {
        let records = d.inference_receipts(a.req(0)?);
        Ok(records.map_or(Value::Null, |r| Value::Array(r.iter().map(record_json).collect())))
    }),
    ("nml_mempoolStatus", 0, 0, |_, d| json(d.mempool_status().rpc()?)),
    ("nml_forkInfo", 0, 0, |_, d| {
        Ok(d.fork_source().map_or(Value::Null, |f| {
            json!({
                "url": f.url(),
                "chainId": qty(f.chain_id()),
                "blockNumber": qty(f.number()),
                "blockHash": f.hash(),
                "remoteRequests": f.requests(),
            })
        }))
    }),
    // Verification (docs/verification.md).
    ("nml_getAttestations", 1, 1, |a, d| d.attestations(a.req(0)?).map_or(Ok(Value::Null), json)),
    ("nml_getTees", 0, 0, |_, d| json(d.tees().rpc()?)),
    ("nml_setTeeFault", 1, 2, |a, d| {
        let name: String = a.req(0)?;
        let on: Option<bool> = a.opt(1)?;
        let fault: Fault = name.parse().map_err(|e: UnknownFault| invalid(e.to_string()))?;
        d.set_tee_fault(fault, on.unwrap_or(true)).rpc()?;
        json(d.tee_faults().rpc()?)
    }),
    ("nml_getTeeFaults", 0, 0, |_, d| json(d.tee_faults().rpc()?)),
    ("nml_getTasks", 0, 0, |_, d| json(d.tasks().rpc()?)),
];

/// `hardhat_*` names that behave exactly like the `anvil_*` ones.
const HARDHAT_ALIASES: &[(&str, &str)] = &[
    ("hardhat_setBalance", "anvil_setBalance"),
    ("hardhat_setCode", "anvil_setCode"),
    ("hardhat_setNonce", "anvil_setNonce"),
    ("hardhat_setStorageAt", "anvil_setStorageAt"),
    ("hardhat_impersonateAccount", "anvil_impersonateAccount"),
    ("hardhat_stopImpersonatingAccount", "anvil_stopImpersonatingAccount"),
    ("hardhat_mine", "anvil_mine"),
    ("anvil_setAutomine", "evm_setAutomine"),
    ("anvil_setIntervalMining", "evm_setIntervalMining"),
    ("anvil_setNextBlockTimestamp", "evm_setNextBlockTimestamp"),
    ("anvil_increaseTime", "evm_increaseTime"),
    ("anvil_snapshot", "evm_snapshot"),
    ("anvil_revert", "evm_revert"),
];

trait DumpRpc<T> {
    fn rpc_dump(self) -> Result<T, ErrorObjectOwned>;
}

impl<T> DumpRpc<T> for Result<T, crate::chain::DumpError> {
    fn rpc_dump(self) -> Result<T, ErrorObjectOwned> {
        self.map_err(|e| error_object(&NodeError::Dump(e)))
    }
}

/// A registered model as `nml_registerModel` and `nml_listModels` answer it.
fn model_json(info: &ModelInfo) -> Value {
    let tensors = |specs: &[TensorSpec]| -> Vec<Value> {
        specs
            .iter()
            .map(|t| json!({ "name": t.name, "type": t.type_and_shape(), "element": t.element.to_string(), "shape": t.shape }))
            .collect()
    };
    json!({
        "id": info.id,
        "file": info.file,
        "size": info.size,
        "inputs": tensors(&info.signature.inputs),
        "outputs": tensors(&info.signature.outputs),
    })
}

/// `evm_mine`'s options object (ganache's form); `null` is absent, and any
/// other field is refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MineOptions {
    /// The first block's timestamp, a quantity.
    timestamp: Option<Value>,
    /// How many blocks to mine, a quantity (1 when absent).
    blocks: Option<Value>,
}

/// Argument `i` as a block id (number, tag, or EIP-1898 object); latest when absent.
fn block_id(args: &Args, i: usize) -> Result<BlockId, ErrorObjectOwned> {
    Ok(args.opt::<BlockId>(i)?.unwrap_or_default())
}

/// Every method of the devnet.
pub(super) fn module(devnet: Arc<Devnet>) -> RpcModule<Devnet> {
    let forked = devnet.fork_source().is_some();
    let mut module = RpcModule::from_arc(devnet);
    for &(name, min, max, handler) in METHODS {
        register(&mut module, Method { name, target: name, min, max, handler }, forked);
    }
    for &(name, target) in HARDHAT_ALIASES {
        if let Some(&(_, min, max, handler)) = METHODS.iter().find(|(n, ..)| *n == target) {
            register(&mut module, Method { name, target, min, max, handler }, forked);
        }
    }
    // Registering a name twice is a programming error caught by the tests.
    let _ = module.register_subscription("eth_subscribe", "eth_subscription", "eth_unsubscribe", subscribe);
    check_unsubscribe_params(&mut module);
    module
}

/// Puts a check of its parameters before jsonrpsee's `eth_unsubscribe`,
/// which answers `false` to parameters it cannot read: geth refuses a
/// missing or malformed subscription id as it refuses any method's (-32602).
fn check_unsubscribe_params(module: &mut RpcModule<Devnet>) {
    let Some(MethodCallback::Unsubscription(unsubscribe)) = module.remove_method("eth_unsubscribe") else {
        tracing::error!("eth_unsubscribe is not registered");
        return;
    };
    let checked = move |id: Id<'_>, params: Params<'_>, connection: ConnectionId, max_size: usize, extensions| {
        let read = Args::new(&params, 1, 1).and_then(|args| match args.raw(0) {
            Some(Value::String(_) | Value::Number(_)) => Ok(()),
            other => Err(invalid(format!(
                "invalid argument 0: expected a subscription id, got {}",
                other.unwrap_or(&Value::Null)
            ))),
        });
        match read {
            Ok(()) => unsubscribe(id, params, connection, max_size, extensions),
            Err(e) => MethodResponse::error(id, e).with_extensions(extensions),
        }
    };
    if let Err(e) = module.verify_and_insert("eth_unsubscribe", MethodCallback::Unsubscription(Arc::new(checked))) {
        tracing::error!(%e, "eth_unsubscribe registered twice");
    }
}

/// What an `eth_subscribe` asked for.
enum Subscription {
    NewHeads,
    Logs(Box<Filter>),
    PendingTransactions,
}

async fn subscribe(
    params: Params<'static>,
    pending: PendingSubscriptionSink,
    devnet: Arc<Devnet>,
    _: jsonrpsee::Extensions,
) -> SubscriptionResult {
    let parsed = Args::new(&params, 1, 2).and_then(|args| match args.req::<String>(0)?.as_str() {
        "newHeads" => Ok(Subscription::NewHeads),
        "logs" => {
            let filter = args.opt::<Filter>(1)?.unwrap_or_default();
            crate::node::check_filter(&filter).map_err(|e| super::error_object(&e))?;
            Ok(Subscription::Logs(Box::new(filter)))
        }
        "newPendingTransactions" => Ok(Subscription::PendingTransactions),
        other => Err(invalid(format!(
            "unsupported subscription: {other} (supported: newHeads, logs, newPendingTransactions)"
        ))),
    });
    let kind = match parsed {
        Ok(kind) => kind,
        Err(e) => {
            pending.reject(e).await;
            return Ok(());
        }
    };
    if let Subscription::PendingTransactions = kind {
        return pending_transactions(pending, &devnet).await;
    }
    let mut blocks = devnet.subscribe_blocks();
    let sink = pending.accept().await?;
    loop {
        let block = tokio::select! {
            () = sink.closed() => return Ok(()),
            block = blocks.recv() => block,
        };
        let block = match block {
            Ok(block) => block,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return Ok(()),
        };
        let items: Vec<Value> = match &kind {
            Subscription::NewHeads => vec![serde_json::to_value(rpc_header(&block))?],
            Subscription::PendingTransactions => Vec::new(),
            Subscription::Logs(filter) => rpc_block_logs(&block)
                .filter(|log| filter.matches(&log.inner))
                .map(serde_json::to_value)
                .collect::<Result<_, _>>()?,
        };
        for item in items {
            sink.send(SubscriptionMessage::from(serde_json::value::to_raw_value(&item)?)).await?;
        }
    }
}

/// `eth_subscribe("newPendingTransactions")`: each transaction's hash as it
/// enters the pool.
async fn pending_transactions(pending: PendingSubscriptionSink, devnet: &Devnet) -> SubscriptionResult {
    let mut hashes = devnet.subscribe_pending_transactions();
    let sink = pending.accept().await?;
    loop {
        let hash = tokio::select! {
            () = sink.closed() => return Ok(()),
            hash = hashes.recv() => hash,
        };
        match hash {
            Ok(hash) => sink.send(SubscriptionMessage::from(serde_json::value::to_raw_value(&hash)?)).await?,
            Err(RecvError::Lagged(_)) => continue,
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::node::DevnetConfig;
    use crate::rpc::dispatch::{LONG_RUNNING, Placement, READS_STATE};

    #[test]
    fn listed_methods_are_registered_and_slow_ones_run_on_the_blocking_pool() {
        let module = module(Arc::new(Devnet::new(DevnetConfig::default()).expect("devnet")));
        let names: HashSet<&str> = module.method_names().collect();
        for name in LONG_RUNNING.iter().chain(READS_STATE) {
            assert!(names.contains(name), "{name} is listed but not registered");
        }
        // Estimating gas, editing state, taking and restoring snapshots: also
        // through their aliases.
        for name in [
            "eth_sendTransaction",
            "anvil_setBalance",
            "hardhat_setBalance",
            "anvil_setNonce",
            "hardhat_setNonce",
            "anvil_setCode",
            "hardhat_setCode",
            "anvil_setStorageAt",
            "hardhat_setStorageAt",
            "evm_snapshot",
            "anvil_snapshot",
            "evm_revert",
            "anvil_revert",
        ] {
            assert!(names.contains(name), "{name} is registered");
            let target = HARDHAT_ALIASES.iter().find(|(alias, _)| *alias == name).map_or(name, |(_, target)| *target);
            assert_eq!(Placement::of(target, false), Placement::Blocking, "{name}");
        }
        assert_eq!(Placement::of("eth_getTransactionReceipt", false), Placement::WhenSettled);
        // In fork mode, the reads the remote may answer leave the I/O threads.
        for name in ["eth_getBlockByNumber", "eth_getBlockByHash", "eth_getTransactionReceipt", "eth_getBalance"] {
            assert_eq!(Placement::of(name, true), Placement::Blocking, "{name}");
        }
    }

    /// How many transactions one sender's group of `txpool_content` lists.
    fn count(by_nonce: &Value) -> usize {
        by_nonce.as_object().map_or(0, serde_json::Map::len)
    }

    /// What `name` answers without parameters.
    fn call(devnet: &Devnet, name: &str) -> Value {
        let (_, _, _, handler) = METHODS.iter().find(|(n, ..)| *n == name).expect("registered");
        let args = Args::new(&jsonrpsee::types::Params::new(None), 0, 0).expect("no parameters");
        handler(&args, devnet).expect("answered")
    }

    #[test]
    fn txpool_status_counts_what_txpool_content_lists() {
        let devnet = Devnet::new(DevnetConfig { mining: crate::Mining::Manual, ..DevnetConfig::default() }).unwrap();
        let from = devnet.accounts()[0];
        // Two executable, and one behind the gap at nonce 2.
        for nonce in [0, 1, 3] {
            let request = TransactionRequest::default().from(from).to(from).nonce(nonce).gas_limit(21_000);
            devnet.send_transaction(request).unwrap();
        }
        assert_eq!(call(&devnet, "txpool_status"), json!({ "pending": "0x2", "queued": "0x1" }));
        let content = call(&devnet, "txpool_content");
        let listed =
            |group: &str| content[group].as_object().map_or(0, |by_sender| by_sender.values().map(count).sum());
        assert_eq!((listed("pending"), listed("queued")), (2, 1));
        devnet.mine(None).unwrap();
        assert_eq!(call(&devnet, "txpool_status"), json!({ "pending": "0x0", "queued": "0x1" }));
    }
}
