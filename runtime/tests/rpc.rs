//! The JSON-RPC server: bad input of every kind gets geth's code and message,
//! and the node keeps serving; batches, body limits, WebSocket subscriptions.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alloy_primitives::{Address, U256};
use alloy_sol_types::{SolCall, SolEvent};
use common::http::{error, post, rpc};
use common::*;
use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use nml_runtime::{Devnet, DevnetConfig, Mining};
use serde_json::{Value, json};

async fn start(config: DevnetConfig) -> (Arc<Devnet>, SocketAddr, nml_runtime::rpc::RpcServer) {
    let devnet = Arc::new(Devnet::new(config).unwrap());
    let server = nml_runtime::rpc::serve(devnet.clone(), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    (devnet, server.local_addr, server)
}

fn raw_hex(bytes: Vec<u8>) -> Value {
    json!(alloy_primitives::hex::encode_prefixed(bytes))
}

async fn alive(addr: SocketAddr) {
    let response = rpc(addr, "eth_chainId", json!([])).await;
    assert_eq!(response["result"], "0x7a69");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_errors_use_json_rpc_codes() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    // Malformed JSON.
    let (_, body) =
        tokio::task::spawn_blocking(move || post(addr, b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":")).await.unwrap();
    assert_eq!(error(&serde_json::from_str(&body).unwrap()).0, -32700);
    // Unknown method.
    assert_eq!(error(&rpc(addr, "eth_nonsense", json!([])).await).0, -32601);
    // Wrong counts and types.
    assert_eq!(
        error(&rpc(addr, "eth_getBalance", json!([])).await),
        (-32602, "missing value for required argument 0".into())
    );
    assert_eq!(
        error(&rpc(addr, "eth_chainId", json!([1])).await),
        (-32602, "too many arguments, want at most 0".into())
    );
    let (code, message) = error(&rpc(addr, "eth_getBalance", json!([42, "latest"])).await);
    assert_eq!(code, -32602);
    assert!(message.starts_with("invalid argument 0"), "{message}");
    assert_eq!(error(&rpc(addr, "eth_getBlockByNumber", json!(["soon", false])).await).0, -32602);
    assert_eq!(error(&rpc(addr, "eth_sendRawTransaction", json!(["0xzz"])).await).0, -32602);
    assert_eq!(error(&rpc(addr, "eth_getTransactionReceipt", json!([{"a": 1}])).await).0, -32602);
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_and_batches_of_1000_served() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let huge = format!(
        "{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"eth_call\",\"params\":[{{\"data\":\"0x{}\"}}]}}",
        "00".repeat(nml_runtime::rpc::MAX_REQUEST_BODY as usize)
    );
    let (status, _) = tokio::task::spawn_blocking(move || post(addr, huge.as_bytes())).await.unwrap();
    assert_eq!(status, 413);
    alive(addr).await;

    let batch: Vec<Value> =
        (0..1000).map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "eth_blockNumber", "params": [] })).collect();
    let body = serde_json::to_vec(&batch).unwrap();
    let (status, body) = tokio::task::spawn_blocking(move || post(addr, &body)).await.unwrap();
    assert_eq!(status, 200);
    let answers: Vec<Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(answers.len(), 1000);
    assert!(answers.iter().all(|a| a["result"] == "0x0"));

    let too_many: Vec<Value> =
        (0..1001).map(|i| json!({ "jsonrpc": "2.0", "id": i, "method": "eth_blockNumber", "params": [] })).collect();
    let body = serde_json::to_vec(&too_many).unwrap();
    let (_, body) = tokio::task::spawn_blocking(move || post(addr, &body)).await.unwrap();
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(
        answer.get("error").is_some() || answer.as_array().is_some_and(|a| a.iter().all(|x| x.get("error").is_some()))
    );
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_errors_use_geths_code_and_messages() {
    let (_d, addr, _server) = start(DevnetConfig { mining: Mining::Manual, ..Default::default() }).await;
    let send = |raw: Vec<u8>| rpc(addr, "eth_sendRawTransaction", json!([raw_hex(raw)]));
    let to = address(1);

    let mut wrong_chain = transfer(0, to, 1);
    wrong_chain.chain_id = 1;
    assert_eq!(
        error(&send(sign(wrong_chain, &signer(0))).await),
        (-32000, "invalid chain id for signer: have 1 want 31337".into())
    );

    let (code, message) = error(&send(vec![0x02, 0xc0]).await);
    assert_eq!(code, -32000);
    assert!(message.starts_with("failed to decode signed transaction"), "{message}");

    let typed: alloy_consensus::TypedTransaction = transfer(0, to, 1).into();
    let bogus = typed.into_envelope(alloy_primitives::Signature::new(U256::ZERO, U256::ZERO, false));
    let (code, message) = error(&send(alloy_eips::eip2718::Encodable2718::encoded_2718(&bogus)).await);
    assert_eq!(code, -32000);
    assert!(message.starts_with("invalid sender"), "{message}");

    let mut rich = transfer(0, to, 0);
    rich.value = U256::from(10u64).pow(U256::from(30));
    let (code, message) = error(&send(sign(rich, &signer(0))).await);
    assert_eq!(code, -32000);
    assert!(message.starts_with("insufficient funds for gas * price + value"), "{message}");

    let mut heavy = transfer(0, to, 1);
    heavy.gas_limit = 40_000_000;
    let (code, message) = error(&send(sign(heavy, &signer(0))).await);
    assert_eq!((code, message.starts_with("exceeds block gas limit")), (-32000, true), "{message}");

    assert!(send(sign(transfer(0, to, 1), &signer(0))).await["result"].is_string());
    let mut same_fee = transfer(0, to, 2);
    same_fee.max_fee_per_gas += 1;
    assert_eq!(error(&send(sign(same_fee, &signer(0))).await), (-32000, "replacement transaction underpriced".into()));
    assert_eq!(error(&send(sign(transfer(0, to, 1), &signer(0))).await), (-32000, "already known".into()));

    rpc(addr, "evm_mine", json!([])).await;
    assert_eq!(
        error(&send(sign(transfer(0, to, 1), &signer(0))).await),
        (-32000, "nonce too low: next nonce 1, tx nonce 0".into())
    );
    let status = rpc(addr, "txpool_status", json!([])).await;
    assert_eq!(status["result"], json!({ "pending": "0x0", "queued": "0x0" }));
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_transaction_refuses_another_chain_and_types_it_cannot_send() {
    let (_d, addr, _server) = start(DevnetConfig { mining: Mining::Manual, ..Default::default() }).await;
    let send = |fields: Value| {
        // With a gas limit: no estimate runs before the send.
        let mut request = json!({ "from": address(0), "to": address(1), "value": "0x1", "gas": "0x5208" });
        request.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        rpc(addr, "eth_sendTransaction", json!([request]))
    };
    assert_eq!(
        error(&send(json!({ "chainId": "0x1" })).await),
        (-32000, "invalid chain id for signer: have 1 want 31337".into())
    );
    // The raw path's errors for blob and set-code transactions.
    let blob = "transaction type not supported: EIP-4844 blob transactions are not supported by the nml devnet";
    let set_code = "transaction type not supported: EIP-7702 set-code transactions are not supported by the nml devnet";
    assert_eq!(error(&send(json!({ "type": "0x3" })).await), (-32000, blob.into()));
    assert_eq!(error(&send(json!({ "blobVersionedHashes": [] })).await), (-32000, blob.into()));
    assert_eq!(error(&send(json!({ "type": "0x4" })).await), (-32000, set_code.into()));
    assert_eq!(error(&send(json!({ "authorizationList": [] })).await), (-32000, set_code.into()));
    let (code, message) = error(&send(json!({ "type": "0x7f" })).await);
    assert_eq!(code, -32000);
    assert!(message.starts_with("transaction type not supported: type 0x7f"), "{message}");
    // Nothing was sent; the node's own chain id and a type it builds are fine.
    assert_eq!(rpc(addr, "txpool_status", json!([])).await["result"], json!({ "pending": "0x0", "queued": "0x0" }));
    assert!(send(json!({ "chainId": "0x7a69", "type": "0x2" })).await["result"].is_string());
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverts_answer_code_3_with_data() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let hash = rpc(addr, "eth_sendRawTransaction", json!([raw_hex(sign(deploy_tx(0, 1), &signer(0)))])).await;
    let receipt = rpc(addr, "eth_getTransactionReceipt", json!([hash["result"]])).await;
    let counter = receipt["result"]["contractAddress"].clone();
    let bad = alloy_primitives::hex::encode_prefixed(Counter::incrementCall { by: U256::ZERO }.abi_encode());
    let response = rpc(addr, "eth_call", json!([{ "to": counter, "data": bad }, "latest"])).await;
    assert_eq!(error(&response), (3, "execution reverted: by must be positive".into()));
    assert!(response["error"]["data"].as_str().unwrap().starts_with("0x08c379a0"));
    let response = rpc(addr, "eth_estimateGas", json!([{ "from": address(0), "to": counter, "data": bad }])).await;
    assert_eq!(error(&response).0, 3);
    // Unknown hashes are null, not errors.
    assert_eq!(
        rpc(addr, "eth_getTransactionByHash", json!([format!("0x{}", "11".repeat(32))])).await["result"],
        Value::Null
    );
    assert_eq!(rpc(addr, "eth_getBlockByNumber", json!(["0x99", false])).await["result"], Value::Null);
    // Unknown filters are an error.
    assert_eq!(error(&rpc(addr, "eth_getFilterChanges", json!(["0x99"])).await), (-32000, "filter not found".into()));
    // debug_traceTransaction with the call tracer.
    let trace = rpc(addr, "debug_traceTransaction", json!([hash["result"], { "tracer": "callTracer" }])).await;
    assert_eq!(trace["result"]["type"], "CREATE");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn halts_answer_server_errors_with_their_reason() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let at = "0x00000000000000000000000000000000000000cc";
    // Code at `at`: the invalid instruction, and a loop that runs out of gas.
    let invalid = json!({ at: { "code": "0xfe" } });
    let endless = json!({ at: { "code": "0x5b600056" } });
    let call = json!({ "from": address(0), "to": at, "gas": "0x10000" });
    for method in ["eth_call", "eth_estimateGas"] {
        let response = rpc(addr, method, json!([call, "latest", invalid])).await;
        assert_eq!(error(&response), (-32000, "invalid opcode".into()), "{method}");
        assert_eq!(response["error"]["data"], Value::Null, "{method}");
    }
    assert_eq!(error(&rpc(addr, "eth_call", json!([call, "latest", endless])).await), (-32000, "out of gas".into()));
    // Only running out of gas at the cap is "gas required exceeds allowance".
    assert_eq!(
        error(&rpc(addr, "eth_estimateGas", json!([call, "latest", endless])).await),
        (-32000, "gas required exceeds allowance (65536)".into())
    );
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_queries_at_an_unknown_block_answer_header_not_found() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let who = address(0);
    let unknown_hash = json!({ "blockHash": format!("0x{}", "11".repeat(32)) });
    for block in [unknown_hash, json!("0x99")] {
        for (method, params) in [
            ("eth_getBalance", json!([who, block])),
            ("eth_getTransactionCount", json!([who, block])),
            ("eth_getCode", json!([who, block])),
            ("eth_getStorageAt", json!([who, "0x0", block])),
            ("eth_call", json!([{ "to": who }, block])),
            ("eth_estimateGas", json!([{ "to": who }, block])),
        ] {
            assert_eq!(
                error(&rpc(addr, method, params).await),
                (-32000, "header not found".into()),
                "{method} {block}"
            );
        }
    }
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_with_contradicting_fields_are_refused_in_geths_words() {
    let (_d, addr, _server) = start(DevnetConfig { mining: Mining::Manual, ..Default::default() }).await;
    // A gas limit, so that eth_sendTransaction runs no estimate first.
    let request = |fields: Value| {
        let mut request = json!({ "from": address(0), "to": address(1), "gas": "0x7530" });
        request.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        request
    };
    let both_inputs = request(json!({ "input": "0x01", "data": "0x02" }));
    let both_fees = request(json!({ "gasPrice": "0x77359400", "maxFeePerGas": "0x77359400" }));
    for method in ["eth_call", "eth_estimateGas", "eth_sendTransaction"] {
        assert_eq!(
            error(&rpc(addr, method, json!([both_inputs])).await),
            (
                -32602,
                r#"both "data" and "input" are set and not equal. Please use "input" to pass transaction call data"#
                    .into()
            ),
            "{method}"
        );
        assert_eq!(
            error(&rpc(addr, method, json!([both_fees])).await),
            (-32602, "both gasPrice and (maxFeePerGas or maxPriorityFeePerGas) specified".into()),
            "{method}"
        );
    }
    // The same bytes under both names are one input.
    let same = request(json!({ "input": "0x01", "data": "0x01" }));
    assert!(rpc(addr, "eth_call", json!([same])).await["result"].is_string());
    assert_eq!(rpc(addr, "txpool_status", json!([])).await["result"], json!({ "pending": "0x0", "queued": "0x0" }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_without_a_subscription_id_is_refused() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let client = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
    let refused = |answer: Result<Value, jsonrpsee::core::ClientError>| match answer {
        Err(jsonrpsee::core::ClientError::Call(e)) => (e.code(), e.message().to_owned()),
        other => panic!("{other:?}"),
    };
    let missing = client.request::<Value, _>("eth_unsubscribe", rpc_params![]).await;
    assert_eq!(refused(missing), (-32602, "missing value for required argument 0".into()));
    let malformed = client.request::<Value, _>("eth_unsubscribe", rpc_params![json!({ "id": 1 })]).await;
    assert_eq!(refused(malformed).0, -32602);
    let extra = client.request::<Value, _>("eth_unsubscribe", rpc_params!["0x1", "0x2"]).await;
    assert_eq!(refused(extra), (-32602, "too many arguments, want at most 1".into()));
    // A subscription still ends, once.
    let mut heads =
        client.subscribe::<Value, _>("eth_subscribe", rpc_params!["newHeads"], "eth_unsubscribe").await.unwrap();
    // jsonrpsee answers a subscribe before it records the subscription, so
    // an unsubscribe sent at once can race it: the first head proves it is
    // recorded.
    let _: Value = client.request("evm_mine", rpc_params![]).await.unwrap();
    assert!(heads.next().await.unwrap().is_ok());
    let id = match heads.kind() {
        jsonrpsee::core::client::SubscriptionKind::Subscription(id) => id.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(client.request::<Value, _>("eth_unsubscribe", rpc_params![id.clone()]).await.unwrap(), true);
    assert_eq!(client.request::<Value, _>("eth_unsubscribe", rpc_params![id]).await.unwrap(), false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_trace_options_are_refused_naming_the_field() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let hash =
        rpc(addr, "eth_sendRawTransaction", json!([raw_hex(sign(transfer(0, address(1), 1), &signer(0)))])).await;
    let trace = |options: Value| rpc(addr, "debug_traceTransaction", json!([hash["result"], options]));
    for (options, field) in [
        (json!({ "timeout": "bogus" }), "invalid timeout \"bogus\""),
        (json!({ "tracer": "callTracer", "tracerConfig": [] }), "invalid tracerConfig: expected an object"),
        (
            json!({ "tracer": "callTracer", "tracerConfig": { "bogus": 1 } }),
            "invalid tracerConfig: unknown field `bogus`",
        ),
        (
            json!({ "tracer": "callTracer", "tracerConfig": { "onlyTopCall": "yes" } }),
            "invalid tracerConfig: invalid type",
        ),
        (json!({ "tracerConfig": { "onlyTopCall": true } }), "invalid tracerConfig: unknown field `onlyTopCall`"),
    ] {
        let (code, message) = error(&trace(options.clone()).await);
        assert_eq!(code, -32602, "{options}: {message}");
        assert!(message.starts_with(&format!("invalid argument 1: {field}")), "{options}: {message}");
    }
    // An unsupported tracer is still the node's error.
    let (code, message) = error(&trace(json!({ "tracer": "prestateTracer" })).await);
    assert_eq!((code, message.starts_with("tracer prestateTracer is not supported")), (-32000, true), "{message}");
    // Well-formed options trace; an empty tracer is the struct logger.
    let calls =
        trace(json!({ "tracer": "callTracer", "tracerConfig": { "onlyTopCall": true }, "timeout": "1m30s" })).await;
    assert_eq!(calls["result"]["type"], "CALL", "{calls}");
    assert_eq!(trace(json!({ "tracer": "callTracer", "tracerConfig": null })).await["result"]["type"], "CALL");
    let steps = trace(json!({ "tracer": "", "tracerConfig": {} })).await;
    assert!(steps["result"]["structLogs"].is_array(), "{steps}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_subscriptions_deliver_heads_and_logs() {
    let (d, addr, _server) = start(DevnetConfig::default()).await;
    let client = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
    let chain_id: String = client.request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(chain_id, "0x7a69");
    let mut heads =
        client.subscribe::<Value, _>("eth_subscribe", rpc_params!["newHeads"], "eth_unsubscribe").await.unwrap();
    let mut logs = client
        .subscribe::<Value, _>(
            "eth_subscribe",
            rpc_params!["logs", json!({ "topics": [Counter::Incremented::SIGNATURE_HASH] })],
            "eth_unsubscribe",
        )
        .await
        .unwrap();
    let deployed = d.send_raw_transaction(&sign(deploy_tx(0, 1), &signer(0))).unwrap();
    let counter: Address = d.receipt(deployed).unwrap().contract_address.unwrap();
    d.send_raw_transaction(&sign(
        call_tx(1, counter, Counter::incrementCall { by: U256::from(2) }.abi_encode().into()),
        &signer(0),
    ))
    .unwrap();
    let timeout = std::time::Duration::from_secs(10);
    let head = tokio::time::timeout(timeout, heads.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(head["number"], "0x1");
    let log = tokio::time::timeout(timeout, logs.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(log["address"].as_str().unwrap().to_lowercase(), counter.to_string().to_lowercase());
    assert_eq!(log["blockNumber"], "0x2");
    // An unknown subscription kind is refused with invalid params.
    let refused = client.subscribe::<Value, _>("eth_subscribe", rpc_params!["nonsense"], "eth_unsubscribe").await;
    assert!(refused.is_err());
    // So is a log subscription past the filter's bounds.
    let addresses: Vec<Address> = (0..1_001u64).map(|i| Address::left_padding_from(&i.to_be_bytes())).collect();
    let too_wide = json!({ "address": addresses });
    let refused = client.subscribe::<Value, _>("eth_subscribe", rpc_params!["logs", too_wide], "eth_unsubscribe").await;
    assert!(matches!(&refused, Err(jsonrpsee::core::ClientError::Call(e)) if e.code() == -32602), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_range_that_ends_before_it_starts_is_refused_everywhere() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    rpc(addr, "anvil_mine", json!(["0x6"])).await;
    let backwards = json!({ "fromBlock": "0x5", "toBlock": "0x3" });
    let refused = (-32602, "invalid block range params".to_owned());
    assert_eq!(error(&rpc(addr, "eth_getLogs", json!([backwards])).await), refused);
    assert_eq!(error(&rpc(addr, "eth_newFilter", json!([backwards])).await), refused);
    let client = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
    let subscribed =
        client.subscribe::<Value, _>("eth_subscribe", rpc_params!["logs", backwards], "eth_unsubscribe").await;
    assert!(
        matches!(&subscribed, Err(jsonrpsee::core::ClientError::Call(e)) if (e.code(), e.message()) == (refused.0 as i32, refused.1.as_str())),
        "{subscribed:?}"
    );
    // Forwards, or with a bound that follows the head, a filter installs.
    for range in [json!({ "fromBlock": "0x3", "toBlock": "0x5" }), json!({ "fromBlock": "0x5", "toBlock": "latest" })] {
        assert!(rpc(addr, "eth_newFilter", json!([range])).await["result"].is_string(), "{range}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_report_new_blocks_and_logs_once() {
    let (d, addr, _server) = start(DevnetConfig::default()).await;
    let blocks = rpc(addr, "eth_newBlockFilter", json!([])).await["result"].clone();
    let logs = rpc(addr, "eth_newFilter", json!([{ "fromBlock": "0x0" }])).await["result"].clone();
    let deployed = d.send_raw_transaction(&sign(deploy_tx(0, 1), &signer(0))).unwrap();
    let counter = d.receipt(deployed).unwrap().contract_address.unwrap();
    d.send_raw_transaction(&sign(
        call_tx(1, counter, Counter::incrementCall { by: U256::from(2) }.abi_encode().into()),
        &signer(0),
    ))
    .unwrap();
    let changes = rpc(addr, "eth_getFilterChanges", json!([blocks])).await;
    assert_eq!(changes["result"].as_array().unwrap().len(), 2);
    assert_eq!(rpc(addr, "eth_getFilterChanges", json!([blocks])).await["result"], json!([]));
    let changes = rpc(addr, "eth_getFilterChanges", json!([logs])).await;
    assert_eq!(changes["result"].as_array().unwrap().len(), 1);
    let all = rpc(addr, "eth_getFilterLogs", json!([logs])).await;
    assert_eq!(all["result"].as_array().unwrap().len(), 1);
    assert_eq!(rpc(addr, "eth_uninstallFilter", json!([logs])).await["result"], true);
    assert_eq!(rpc(addr, "eth_uninstallFilter", json!([logs])).await["result"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dev_methods_work_over_rpc() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let who = "0x00000000000000000000000000000000000000cc";
    rpc(addr, "anvil_setBalance", json!([who, "0x64"])).await;
    assert_eq!(rpc(addr, "eth_getBalance", json!([who, "latest"])).await["result"], "0x64");
    rpc(addr, "hardhat_setBalance", json!([who, "0x65"])).await;
    assert_eq!(rpc(addr, "eth_getBalance", json!([who])).await["result"], "0x65");
    let snapshot = rpc(addr, "evm_snapshot", json!([])).await["result"].clone();
    rpc(addr, "anvil_mine", json!(["0x3"])).await;
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x3");
    assert_eq!(rpc(addr, "evm_revert", json!([snapshot])).await["result"], true);
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x0");
    let dump = rpc(addr, "anvil_dumpState", json!([])).await["result"].clone();
    rpc(addr, "evm_mine", json!([])).await;
    assert_eq!(rpc(addr, "anvil_loadState", json!([dump])).await["result"], true);
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x0");
    assert_eq!(error(&rpc(addr, "anvil_loadState", json!(["0x1234"])).await).0, -32602);
    let version = rpc(addr, "web3_clientVersion", json!([])).await;
    assert!(version["result"].as_str().unwrap().starts_with("nml-devnet/"));
    let typed = json!({
        "types": { "EIP712Domain": [{ "name": "name", "type": "string" }], "Mail": [{ "name": "body", "type": "string" }] },
        "primaryType": "Mail",
        "domain": { "name": "nml" },
        "message": { "body": "hi" }
    });
    let signature = rpc(addr, "eth_signTypedData_v4", json!([address(0), typed.to_string()])).await;
    assert_eq!(signature["result"].as_str().unwrap().len(), 132);
    let fee = rpc(addr, "eth_feeHistory", json!(["0x1", "latest", [25, 75]])).await;
    assert_eq!(fee["result"]["baseFeePerGas"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mines_past_the_bounds_name_the_count_asked_for_and_options_are_checked() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let too_many = "0x20000000000000";
    for (method, params) in [
        ("anvil_mine", json!([too_many])),
        ("hardhat_mine", json!([too_many])),
        ("evm_mine", json!([{ "blocks": too_many }])),
    ] {
        let (code, message) = error(&rpc(addr, method, params).await);
        assert_eq!(code, -32602, "{method}");
        assert!(message.starts_with("mining 9007199254740992 blocks would take the block number past"), "{message}");
    }
    // Two blocks an interval apart that would take the second past the bound.
    let (code, message) = error(&rpc(addr, "anvil_mine", json!(["0x2", "0x1fffffffffffff"])).await);
    assert_eq!(code, -32602);
    assert!(message.starts_with("mining 2 blocks would take the timestamp past"), "{message}");
    // One block: the interval spaces no later block, whatever it is.
    let one = rpc(addr, "anvil_mine", json!(["0x1", "0x1fffffffffffff"])).await;
    assert!(one.get("error").is_none(), "{one}");
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x1");
    // evm_mine's options object takes `timestamp` and `blocks` only.
    let (code, message) = error(&rpc(addr, "evm_mine", json!([{ "foo": 1 }])).await);
    assert_eq!(code, -32602);
    assert!(message.starts_with("invalid argument 0: unknown field `foo`"), "{message}");
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x1");
    assert_eq!(rpc(addr, "evm_mine", json!([{ "timestamp": null, "blocks": null }])).await["result"], "0x0");
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_zero_blocks_mines_nothing() {
    let (_d, addr, _server) = start(DevnetConfig { mining: Mining::Manual, ..Default::default() }).await;
    rpc(addr, "eth_sendRawTransaction", json!([raw_hex(sign(transfer(0, address(1), 1), &signer(0)))])).await;
    let head = rpc(addr, "eth_getBlockByNumber", json!(["latest", false])).await["result"].clone();
    let far = "0x1fffffffffffff";
    for (method, params) in [
        ("anvil_mine", json!(["0x0"])),
        ("anvil_mine", json!([0, far])),
        ("hardhat_mine", json!(["0x0"])),
        ("evm_mine", json!([{ "blocks": 0 }])),
        ("evm_mine", json!([{ "blocks": "0x0", "timestamp": far }])),
    ] {
        let answer = rpc(addr, method, params.clone()).await;
        assert!(answer.get("error").is_none(), "{method} {params}: {answer}");
        let now = rpc(addr, "eth_getBlockByNumber", json!(["latest", false])).await["result"].clone();
        assert_eq!(now["hash"], head["hash"], "{method} {params}");
    }
    // The transfer is still pending, and the next block is mined as before.
    assert_eq!(rpc(addr, "txpool_status", json!([])).await["result"]["pending"], "0x1");
    rpc(addr, "anvil_mine", json!([])).await;
    let mined = rpc(addr, "eth_getBlockByNumber", json!(["latest", false])).await["result"].clone();
    assert_eq!((mined["number"].clone(), mined["transactions"].as_array().map(Vec::len)), (json!("0x1"), Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_mines_answer_at_once_over_rpc() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let filter = rpc(addr, "eth_newBlockFilter", json!([])).await["result"].clone();
    assert_eq!(rpc(addr, "anvil_mine", json!(["0xffffffffffff"])).await["result"], Value::Null);
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0xffffffffffff");
    let middle = rpc(addr, "eth_getBlockByNumber", json!(["0x800000000000", false])).await["result"].clone();
    assert_eq!(middle["number"], "0x800000000000");
    assert_eq!(middle["transactions"], json!([]));
    let parent = rpc(addr, "eth_getBlockByHash", json!([middle["parentHash"], false])).await["result"].clone();
    assert_eq!(parent["number"], "0x7fffffffffff");
    assert_eq!(rpc(addr, "eth_getBlockByHash", json!([middle["hash"]])).await["result"]["number"], middle["number"]);
    // A block filter reports the newest hashes, not 2^48 of them.
    let changes = rpc(addr, "eth_getFilterChanges", json!([filter])).await["result"].clone();
    let head = rpc(addr, "eth_getBlockByNumber", json!(["latest", false])).await["result"].clone();
    assert_eq!(changes.as_array().unwrap().len(), 10_000);
    assert_eq!(changes.as_array().unwrap().last(), Some(&head["hash"]));
    let logs = rpc(addr, "eth_getLogs", json!([{ "fromBlock": "0x0", "toBlock": "latest" }])).await;
    assert_eq!(logs["result"], json!([]));
    let (code, message) = error(&rpc(addr, "anvil_mine", json!(["0x20000000000000"])).await);
    assert_eq!(code, -32602, "{message}");
    assert!(message.contains("past 9007199254740991"), "{message}");
    rpc(addr, "hardhat_mine", json!(["0x10", "0x3c"])).await;
    let last = rpc(addr, "eth_getBlockByNumber", json!(["latest", false])).await["result"].clone();
    assert_eq!(last["number"], "0x100000000000f");
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn inference_methods_on_a_devnet_without_inference_are_clear_errors() {
    let (_devnet, addr, _server) = start(DevnetConfig::default()).await;
    for method in ["nml_listModels", "nml_mempoolStatus"] {
        let (code, message) = error(&rpc(addr, method, json!([])).await);
        assert_eq!(code, -32000, "{method}");
        assert!(message.contains("runs without inference"), "{method}: {message}");
    }
    let (code, _) = error(&rpc(addr, "nml_registerModel", json!(["0x00"])).await);
    assert_eq!(code, -32000);
    let (code, message) = error(&rpc(addr, "nml_registerModel", json!([])).await);
    assert_eq!(code, -32602, "{message}");
    // An unknown transaction has no inference receipts.
    let unknown = rpc(addr, "nml_getInferenceReceipts", json!([format!("0x{}", "00".repeat(32))])).await;
    assert_eq!(unknown["result"], Value::Null);
}

/// EIP-7966: the receipt in the answer to the send; with mining off, error
/// 4 naming the hash once the timeout passes, and the transaction stays
/// pending.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_raw_transaction_sync_answers_with_the_receipt() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let raw = raw_hex(sign(transfer(0, address(1), 1), &signer(0)));
    // A refused timeout refuses the call before anything is sent.
    for timeout in [json!("abc"), json!(-1), json!(1.5)] {
        let (code, message) = error(&rpc(addr, "eth_sendRawTransactionSync", json!([raw, timeout])).await);
        assert_eq!(code, -32602, "{message}");
    }
    let nonce = rpc(addr, "eth_getTransactionCount", json!([signer(0).address(), "pending"])).await;
    assert_eq!(nonce["result"], "0x0", "nothing was sent: {nonce}");
    let receipt = rpc(addr, "eth_sendRawTransactionSync", json!([raw])).await;
    assert_eq!(receipt["result"]["status"], "0x1", "{receipt}");
    assert_eq!(receipt["result"]["blockNumber"], "0x1", "{receipt}");
    let hash = receipt["result"]["transactionHash"].clone();
    assert_eq!(rpc(addr, "eth_getTransactionReceipt", json!([hash])).await["result"], receipt["result"]);

    let (_d, addr, _server) = start(DevnetConfig { mining: Mining::Manual, ..Default::default() }).await;
    let started = std::time::Instant::now();
    let response = rpc(addr, "eth_sendRawTransactionSync", json!([raw, "0x32"])).await;
    assert!(started.elapsed() >= Duration::from_millis(50), "waited the timeout: {:?}", started.elapsed());
    assert_eq!(error(&response).0, 4, "{response}");
    let hash = response["error"]["data"].clone();
    let pending = rpc(addr, "eth_getTransactionByHash", json!([hash])).await;
    assert_eq!(pending["result"]["blockNumber"], Value::Null, "{pending}");
    alive(addr).await;
}

/// Runtime code that emits as many empty `LOG0`s as its calldata's first word says.
const LOGGER: &str = "5f355b80156012575f5fa0600190036002565b00";

/// Installs [`LOGGER`] and returns its address.
fn install_logger(d: &Devnet) -> Address {
    let logger = Address::repeat_byte(0x10);
    let code = alloy_primitives::hex::decode(LOGGER).unwrap();
    d.set_code(logger, code.into());
    logger
}

/// Mines a transaction (nonce `nonce` of dev account 0) that emits `count` logs.
fn emit_logs(d: &Devnet, logger: Address, nonce: u64, count: u64) {
    let mut tx = call_tx(nonce, logger, U256::from(count).to_be_bytes::<32>().to_vec().into());
    tx.gas_limit = 10_000_000;
    let hash = d.send_raw_transaction(&sign(tx, &signer(0))).unwrap();
    assert!(d.wait_for_receipt(hash, Duration::from_secs(10)).is_some_and(|r| r.success), "the logger ran");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fee_history_bounds_its_reward_percentiles() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let hundred: Vec<f64> = (0..100).map(f64::from).collect();
    let fee = rpc(addr, "eth_feeHistory", json!(["0x1", "latest", hundred])).await;
    assert_eq!(fee["result"]["reward"][0].as_array().map(Vec::len), Some(100), "{fee}");
    let too_many: Vec<f64> = (0..101).map(|p| f64::from(p) / 2.0).collect();
    let (code, message) = error(&rpc(addr, "eth_feeHistory", json!(["0x1", "latest", too_many])).await);
    assert_eq!(code, -32602);
    assert!(message.contains("at most 100"), "{message}");
    for bad in [json!([50, 25]), json!([101]), json!([-1])] {
        assert_eq!(error(&rpc(addr, "eth_feeHistory", json!(["0x1", "latest", bad])).await).0, -32602, "{bad}");
    }
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fee_history_of_no_blocks_is_empty() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    rpc(addr, "anvil_mine", json!(["0x3"])).await;
    // geth's answer: oldest block 0 and nothing else, whatever the newest block.
    for newest in ["latest", "0x2"] {
        let fee = rpc(addr, "eth_feeHistory", json!(["0x0", newest, [50]])).await;
        assert_eq!(fee["result"], json!({ "oldestBlock": "0x0", "gasUsedRatio": [] }), "{newest}");
    }
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_overrides_that_would_move_or_replace_a_precompile_are_refused() {
    let (_d, addr, _server) = start(DevnetConfig::default()).await;
    let ecrecover = "0x0000000000000000000000000000000000000001";
    let sha256 = "0x0000000000000000000000000000000000000002";
    let plain = "0x00000000000000000000000000000000000000cc";
    // Code that returns 32 bytes of 0x2a: PUSH1 42 PUSH1 0 MSTORE PUSH1 32 PUSH1 0 RETURN.
    let code = "0x602a60005260206000f3";
    let call = json!({ "to": sha256, "input": "0x" });
    for method in ["eth_call", "eth_estimateGas"] {
        let moved = json!({ ecrecover: { "movePrecompileToAddress": plain } });
        let (error_code, message) = error(&rpc(addr, method, json!([call, "latest", moved])).await);
        assert_eq!(error_code, -32602, "{method}: {message}");
        assert!(message.contains("movePrecompileToAddress"), "{method}: {message}");
        let replaced = json!({ sha256: { "code": code } });
        let (error_code, message) = error(&rpc(addr, method, json!([call, "latest", replaced])).await);
        assert_eq!(error_code, -32602, "{method}: {message}");
        assert!(message.contains("precompile") && message.contains("'code'"), "{method}: {message}");
    }
    // Code on an address that holds no precompile still applies.
    let out = rpc(addr, "eth_call", json!([{ "to": plain }, "latest", { plain: { "code": code } }])).await;
    assert_eq!(out["result"], format!("0x{}", "00".repeat(31) + "2a"));
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_logs_bounds_addresses_topics_and_results() {
    let (d, addr, _server) = start(DevnetConfig::default()).await;
    let addresses = |n: u64| (0..n).map(|i| Address::left_padding_from(&i.to_be_bytes())).collect::<Vec<_>>();
    let logs = rpc(addr, "eth_getLogs", json!([{ "address": addresses(1_000) }])).await;
    assert_eq!(logs["result"], json!([]), "{logs}");
    let (code, message) = error(&rpc(addr, "eth_getLogs", json!([{ "address": addresses(1_001) }])).await);
    assert_eq!(code, -32602);
    assert!(message.contains("at most 1000"), "{message}");
    let topics: Vec<_> = (0..1_001u64).map(|i| alloy_primitives::B256::from(U256::from(i))).collect();
    let (code, message) = error(&rpc(addr, "eth_getLogs", json!([{ "topics": [null, topics] }])).await);
    assert_eq!(code, -32602);
    assert!(message.contains("at most 1000"), "{message}");
    let (code, message) = error(&rpc(addr, "eth_newFilter", json!([{ "topics": [null, topics] }])).await);
    assert_eq!(code, -32602, "{message}");
    let five = json!([{ "topics": [null, null, null, null, null] }]);
    assert_eq!(error(&rpc(addr, "eth_getLogs", five).await).0, -32602);

    let logger = install_logger(&d);
    emit_logs(&d, logger, 0, 10_000);
    let block = json!([{ "blockHash": d.block(1.into(), false).unwrap().header.hash }]);
    let logs = rpc(addr, "eth_getLogs", block).await;
    assert_eq!(logs["result"].as_array().map(Vec::len), Some(10_000));
    emit_logs(&d, logger, 1, 1);
    let (code, message) = error(&rpc(addr, "eth_getLogs", json!([{ "fromBlock": "0x0" }])).await);
    assert_eq!(
        (code, message.as_str()),
        (
            -32005,
            "query returned more results than an answer holds (at most 10000): narrow the block range or the filter"
        )
    );
    alive(addr).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_positions_count_through_the_block_in_every_view() {
    let (d, addr, _server) = start(DevnetConfig { mining: Mining::Manual, ..Default::default() }).await;
    let logger = install_logger(&d);
    let counts = [2u64, 0, 3, 1];
    let mut hashes = Vec::new();
    for (nonce, count) in counts.iter().enumerate() {
        let mut tx = call_tx(nonce as u64, logger, U256::from(*count).to_be_bytes::<32>().to_vec().into());
        tx.gas_limit = 1_000_000;
        hashes.push(d.send_raw_transaction(&sign(tx, &signer(0))).unwrap());
    }
    let block = d.mine(None).unwrap();
    assert_eq!(block.transactions.len(), counts.len());
    let logs = rpc(addr, "eth_getLogs", json!([{ "blockHash": block.hash }])).await["result"].clone();
    let positions: Vec<Value> =
        logs.as_array().unwrap().iter().map(|log| json!([log["transactionIndex"], log["logIndex"]])).collect();
    let expected = [["0x0", "0x0"], ["0x0", "0x1"], ["0x2", "0x2"], ["0x2", "0x3"], ["0x2", "0x4"], ["0x3", "0x5"]];
    assert_eq!(positions, expected.map(|p| json!(p)));
    // Each receipt's logs sit where the block's list has them.
    for hash in hashes {
        let receipt = rpc(addr, "eth_getTransactionReceipt", json!([hash])).await["result"].clone();
        for log in receipt["logs"].as_array().unwrap() {
            let index = usize::from_str_radix(log["logIndex"].as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
            assert_eq!(log, &logs[index], "{hash}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_filter_reports_every_block_since_its_last_poll() {
    let (d, addr, _server) = start(DevnetConfig::default()).await;
    let logger = install_logger(&d);
    let filter = rpc(addr, "eth_newFilter", json!([{ "address": logger }])).await["result"].clone();
    let to_block_3 = rpc(addr, "eth_newFilter", json!([{ "toBlock": "0x3" }])).await["result"].clone();
    emit_logs(&d, logger, 0, 1);
    emit_logs(&d, logger, 1, 1);
    let changes = rpc(addr, "eth_getFilterChanges", json!([filter])).await["result"].clone();
    let blocks: Vec<&Value> = changes.as_array().unwrap().iter().map(|log| &log["blockNumber"]).collect();
    assert_eq!(blocks, ["0x1", "0x2"]);
    assert_eq!(rpc(addr, "eth_getFilterChanges", json!([filter])).await["result"], json!([]));
    // A filter's own range bounds what it reports.
    emit_logs(&d, logger, 2, 1);
    emit_logs(&d, logger, 3, 1);
    let changes = rpc(addr, "eth_getFilterChanges", json!([to_block_3])).await["result"].clone();
    let blocks: Vec<&Value> = changes.as_array().unwrap().iter().map(|log| &log["blockNumber"]).collect();
    assert_eq!(blocks, ["0x1", "0x2", "0x3"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_poll_answers_whole_blocks_up_to_10000_logs_and_the_next_goes_on() {
    let (d, addr, _server) = start(DevnetConfig::default()).await;
    let logger = install_logger(&d);
    let filter = rpc(addr, "eth_newFilter", json!([{}])).await["result"].clone();
    emit_logs(&d, logger, 0, 6_000);
    emit_logs(&d, logger, 1, 6_000);
    for block in ["0x1", "0x2"] {
        let changes = rpc(addr, "eth_getFilterChanges", json!([filter])).await["result"].clone();
        let changes = changes.as_array().unwrap();
        assert_eq!(changes.len(), 6_000);
        assert!(changes.iter().all(|log| log["blockNumber"] == block), "{block}");
    }
    assert_eq!(rpc(addr, "eth_getFilterChanges", json!([filter])).await["result"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn installed_filters_are_capped_at_10000() {
    let (d, addr, _server) = start(DevnetConfig::default()).await;
    let first = d.new_pending_transaction_filter().unwrap();
    for _ in 1..10_000 {
        d.new_block_filter().unwrap();
    }
    let (code, message) = error(&rpc(addr, "eth_newBlockFilter", json!([])).await);
    assert_eq!(code, -32005);
    assert!(message.starts_with("too many filters installed (at most 10000)"), "{message}");
    assert_eq!(error(&rpc(addr, "eth_newFilter", json!([{}])).await).0, -32005);
    assert!(d.uninstall_filter(first));
    assert!(rpc(addr, "eth_newBlockFilter", json!([])).await["result"].is_string());
}
