//! The JSON-RPC server's limits: one client's slow or hostile requests never
//! stall another client, nor the process. Methods that wait for the miner or
//! run many EVM executions leave the I/O threads free; idle WebSockets
//! cannot lock new clients out, and dead ones are closed; typed data that
//! would overflow alloy's stack is refused; a batch stops starting calls
//! after its time; one connection runs a bounded number of calls at once.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, U256};
use common::http::{error, post, rpc};
use common::*;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::{WsClient, WsClientBuilder};
use nml_runtime::rpc::{RpcServer, ServerLimits};
use nml_runtime::{Devnet, DevnetConfig, Mining};
use serde_json::{Value, json};

async fn start(config: DevnetConfig, limits: &ServerLimits) -> (Arc<Devnet>, SocketAddr, RpcServer) {
    let devnet = Arc::new(Devnet::new(config).unwrap());
    let server = nml_runtime::rpc::serve_with(devnet.clone(), "127.0.0.1:0".parse().unwrap(), limits).await.unwrap();
    (devnet, server.local_addr, server)
}

fn manual() -> DevnetConfig {
    DevnetConfig { mining: Mining::Manual, ..Default::default() }
}

/// How long `eth_chainId` takes to answer, and that it answers.
async fn chain_id_time(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let response = rpc(addr, "eth_chainId", json!([])).await;
    assert_eq!(response["result"], "0x7a69", "{response}");
    started.elapsed()
}

/// Waits on the test's own thread: tokio's timers are driven by the same
/// threads as the server, which the first tests try to block.
fn pause(millis: u64) {
    std::thread::sleep(Duration::from_millis(millis));
}

fn raw_hex(bytes: Vec<u8>) -> Value {
    json!(alloy_primitives::hex::encode_prefixed(bytes))
}

/// Runtime code that reverts when it has less than 20,000,000 gas left, and
/// otherwise counts its calldata's first word down to zero: 40 gas a turn,
/// so a large count burns whatever gas it is given. Estimating its gas takes
/// a binary search of some 25 executions.
const BURNER: &str = "5a6301312d0011601b575f355b801560195760019003600c565b005b5f5ffd";

/// Installs [`BURNER`] and returns its address.
fn install_burner(d: &Devnet) -> Address {
    let burner = Address::repeat_byte(0x20);
    d.set_code(burner, alloy_primitives::hex::decode(BURNER).unwrap().into());
    burner
}

/// Turns of [`BURNER`]'s loop as calldata.
fn turns(n: u64) -> alloy_primitives::Bytes {
    U256::from(n).to_be_bytes::<32>().to_vec().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_waiting_for_heavy_blocks_leave_the_io_threads_free() {
    let (d, addr, _server) = start(manual(), &ServerLimits::default()).await;
    let burner = install_burner(&d);
    // Heavy transactions (29M gas each), then automine on: its pass builds
    // their blocks one after another for seconds, and every read waits for
    // them.
    for nonce in 0..4 {
        let mut tx = call_tx(nonce, burner, turns(u64::MAX));
        tx.gas_limit = 29_000_000;
        d.send_raw_transaction(&sign(tx, &signer(0))).unwrap();
    }
    let started = Instant::now();
    let mining = tokio::task::spawn_blocking({
        let d = Arc::clone(&d);
        move || d.set_automine(true)
    });
    pause(50);
    // More waiting reads than the server has I/O threads (2).
    let reads: Vec<_> = (0..4).map(|_| tokio::spawn(rpc(addr, "eth_blockNumber", json!([])))).collect();
    pause(100);
    let answered = chain_id_time(addr).await;
    assert!(answered < Duration::from_millis(500), "eth_chainId waited {answered:?} behind reads of other clients");
    assert!(!d.is_settled(), "the blocks were built before the test's calls ended ({:?})", started.elapsed());
    for read in reads {
        assert_eq!(read.await.unwrap()["result"], "0x4", "the reads see every block");
    }
    mining.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_that_estimate_gas_leave_the_io_threads_free() {
    let (d, addr, _server) = start(manual(), &ServerLimits::default()).await;
    let burner = install_burner(&d);
    // Without `gas`, eth_sendTransaction estimates it: a binary search of
    // EVM executions, half of which burn 5M gas here.
    let sends: Vec<_> = (0..3)
        .map(|i| {
            let request = json!({ "from": address(i), "to": burner, "input": turns(125_000) });
            tokio::spawn(rpc(addr, "eth_sendTransaction", json!([request])))
        })
        .collect();
    pause(100);
    let started = Instant::now();
    let answered = chain_id_time(addr).await;
    let pending = sends.iter().filter(|s| !s.is_finished()).count();
    assert!(pending > 0, "the estimates took longer than the test's call ({:?})", started.elapsed());
    assert!(answered < Duration::from_millis(500), "eth_chainId waited {answered:?} behind gas estimates");
    for send in sends {
        let response = send.await.unwrap();
        assert!(response["result"].is_string(), "{response}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_data_that_overflowed_the_stack_is_refused() {
    let (_d, addr, _server) = start(DevnetConfig::default(), &ServerLimits::default()).await;
    let typed = json!({
        "types": {
            "EIP712Domain": [{ "name": "name", "type": "string" }],
            "Deep": [{ "name": "x", "type": format!("uint256{}", "[]".repeat(30_000)) }],
        },
        "primaryType": "Deep",
        "domain": { "name": "nml" },
        "message": { "x": [] },
    });
    for data in [typed.clone(), json!(typed.to_string())] {
        let response = rpc(addr, "eth_signTypedData_v4", json!([address(0), data])).await;
        let (code, message) = error(&response);
        assert_eq!(code, -32602, "{response}");
        assert!(message.contains("nests more than 32 arrays"), "{message}");
    }
    // The process is alive, and signs typed data within the bounds.
    chain_id_time(addr).await;
    let mut fine = typed;
    fine["types"]["Deep"][0]["type"] = json!("uint256[][]");
    let signed = rpc(addr, "eth_signTypedData_v4", json!([address(0), fine])).await;
    assert!(signed["result"].as_str().is_some_and(|s| s.len() == 132), "{signed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_websockets_do_not_lock_new_clients_out() {
    let (_d, addr, _server) = start(DevnetConfig::default(), &ServerLimits::default()).await;
    // jsonrpsee's default bound, 100 connections, let these lock every new
    // client out with HTTP 429.
    let mut idle: Vec<WsClient> = Vec::new();
    for _ in 0..150 {
        idle.push(WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap());
    }
    chain_id_time(addr).await;
    let last: String = idle[149].request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(last, "0x7a69");
}

/// Opens a WebSocket by hand, then neither reads nor answers pings: whether
/// the server closes it within `within`.
fn closed_when_silent(addr: SocketAddr, within: Duration) -> bool {
    let mut stream = TcpStream::connect(addr).unwrap();
    let handshake = format!(
        "GET / HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(handshake.as_bytes()).unwrap();
    std::thread::sleep(within);
    // Whatever came (the upgrade, pings, a close) is read now; a closed
    // connection then ends, an open one times out.
    stream.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_that_answer_no_ping_are_closed() {
    let limits = ServerLimits {
        ping_interval: Duration::from_millis(100),
        ping_timeout: Duration::from_millis(300),
        ..Default::default()
    };
    let (_d, addr, _server) = start(DevnetConfig::default(), &limits).await;
    let live = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
    let closed =
        tokio::task::spawn_blocking(move || closed_when_silent(addr, Duration::from_millis(1_500))).await.unwrap();
    assert!(closed, "a WebSocket that answers no ping is closed");
    // A client that answers pings stays connected.
    let chain: String = live.request("eth_chainId", rpc_params![]).await.unwrap();
    assert_eq!(chain, "0x7a69");
}

/// `count` signed transfers of dev account 0, nonces from 0, as hex.
fn transfers(count: u64) -> Vec<Value> {
    (0..count).map(|nonce| raw_hex(sign(transfer(nonce, address(1), 1), &signer(0)))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_starts_no_call_after_its_time() {
    let limits = ServerLimits { batch_time: Duration::from_millis(300), ..Default::default() };
    let (_d, addr, _server) = start(manual(), &limits).await;
    // Nothing is mined: each call waits its whole timeout (200 ms).
    let batch: Vec<Value> = transfers(5)
        .into_iter()
        .enumerate()
        .map(|(i, raw)| json!({ "jsonrpc": "2.0", "id": i, "method": "eth_sendRawTransactionSync", "params": [raw, 200] }))
        .collect();
    let body = serde_json::to_vec(&batch).unwrap();
    let started = Instant::now();
    let (_, body) = tokio::task::spawn_blocking(move || post(addr, &body)).await.unwrap();
    let elapsed = started.elapsed();
    let mut answers: Vec<Value> = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    answers.sort_by_key(|a| a["id"].as_u64());
    let codes: Vec<i64> = answers.iter().map(|a| error(a).0).collect();
    // Two calls start within 300 ms; the rest are refused without running.
    assert_eq!(codes, [4, 4, -32005, -32005, -32005], "{answers:?}");
    assert!(error(&answers[2]).1.starts_with("batch time exceeded"), "{answers:?}");
    assert!(elapsed < Duration::from_millis(900), "the batch answered after {elapsed:?}");
    // A call alone has no batch time.
    let alone = rpc(addr, "eth_blockNumber", json!([])).await;
    assert_eq!(alone["result"], "0x0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_connection_runs_a_bounded_number_of_calls_at_once() {
    let limits = ServerLimits { calls_in_flight: NonZeroUsize::new(2).unwrap(), ..Default::default() };
    let (_d, addr, _server) = start(manual(), &limits).await;
    let client = Arc::new(WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap());
    // Four calls that each wait 300 ms (nothing is mined), sent at once: two
    // run, two wait their turn.
    let started = Instant::now();
    let calls: Vec<_> = transfers(4)
        .into_iter()
        .map(|raw| {
            let client = Arc::clone(&client);
            tokio::spawn(async move {
                client.request::<Value, _>("eth_sendRawTransactionSync", rpc_params![raw, 300]).await
            })
        })
        .collect();
    pause(50);
    // Another connection is not held up meanwhile.
    assert!(chain_id_time(addr).await < Duration::from_millis(500));
    for call in calls {
        assert!(call.await.unwrap().is_err(), "nothing is mined");
    }
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(600), "all four ran at once ({elapsed:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_piles_up_at_most_max_waiting_calls() {
    let limits = ServerLimits { calls_in_flight: NonZeroUsize::new(1).unwrap(), ..Default::default() };
    let (_d, addr, _server) = start(manual(), &limits).await;
    let client = Arc::new(
        WsClientBuilder::default().max_concurrent_requests(4_096).build(format!("ws://{addr}")).await.unwrap(),
    );
    // One call waits 1 s for a block that never comes; 1,100 more are sent
    // behind it at once: 1,024 wait their turn, the rest are refused at once.
    let raw = transfers(1).remove(0);
    let running = {
        let client = Arc::clone(&client);
        tokio::spawn(
            async move { client.request::<Value, _>("eth_sendRawTransactionSync", rpc_params![raw, 1000]).await },
        )
    };
    pause(100);
    let behind: Vec<_> = (0..1_100)
        .map(|_| {
            let client = Arc::clone(&client);
            tokio::spawn(async move { client.request::<Value, _>("eth_chainId", rpc_params![]).await })
        })
        .collect();
    let mut refused = 0;
    for call in behind {
        match call.await.unwrap() {
            Ok(_) => {}
            Err(jsonrpsee::core::ClientError::Call(e)) => {
                assert_eq!(e.code(), -32005, "{e:?}");
                assert!(e.message().starts_with("too many calls waiting on this connection"), "{e:?}");
                refused += 1;
            }
            Err(e) => panic!("{e}"),
        }
    }
    assert!(running.await.unwrap().is_err(), "nothing is mined");
    assert!(refused >= 1_100 - 1_024, "{refused} refused");
}
