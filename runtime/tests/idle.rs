//! A devnet stays awake while requests come and sleeps once they stop: after
//! a pass, or a client's request (`Devnet::keep_awake`), the miner thread
//! waits awake for the next one only briefly (`MINER_SPIN`), then sleeps. A
//! test binary of its own, so that no other devnet's miner thread is counted.

#![cfg(target_os = "linux")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use nml_runtime::{Devnet, DevnetConfig};

/// The CPU time the thread named `nml-miner` has run, from the scheduler's
/// own count (nanoseconds; `stat`'s clock ticks are 10 ms, too coarse), or
/// `None` while there is no such thread.
fn miner_run_time() -> Option<Duration> {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for task in tasks.map_while(Result::ok) {
        let dir = task.path();
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|name| name.trim() == "nml-miner") {
            let stat = std::fs::read_to_string(dir.join("schedstat")).expect("the thread's schedstat");
            let ran = stat.split_whitespace().next().and_then(|ns| ns.parse().ok()).expect("run time");
            return Some(Duration::from_nanos(ran));
        }
    }
    None
}

fn miner_cpu() -> Duration {
    miner_run_time().expect("a miner thread")
}

#[test]
fn the_miner_stays_awake_while_requests_come_and_sleeps_once_they_stop() {
    let d = Arc::new(Devnet::new(DevnetConfig::default()).expect("devnet"));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let listen = "127.0.0.1:0".parse().expect("address");
    let server = runtime.block_on(nml_runtime::rpc::serve(Arc::clone(&d), listen)).expect("server");
    let addr = server.local_addr;
    assert!(miner_run_time().is_none(), "no miner thread before any request");
    // Any call, here over WebSocket, keeps the node awake: it starts the
    // miner thread, before any transaction.
    runtime.block_on(async {
        let client = WsClientBuilder::default().build(format!("ws://{addr}")).await.expect("connected");
        let chain_id: String = client.request("eth_chainId", rpc_params![]).await.expect("answered");
        assert_eq!(chain_id, "0x7a69");
    });
    // The thread names itself once it runs, which a loaded machine may delay.
    let started = std::time::Instant::now();
    while miner_run_time().is_none() && started.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(miner_run_time().is_some(), "a call started the miner thread");
    for nonce in 0..20 {
        let hash = d.send_raw_transaction(&sign(transfer(nonce, address(1), 1), &signer(0))).expect("sent");
        assert!(d.receipt(hash).is_some(), "mined under automine");
    }
    // Requests every 200 µs for 200 ms keep it awake: it runs whenever a
    // core is free (about 200 ms on an idle machine, and 0.2–1 ms with
    // four busy loops on two cores, where this thread's own sleeps stretch
    // past the miner's wait); asleep, not at all. It sleeps first, past
    // the wait that follows the last pass.
    std::thread::sleep(Duration::from_millis(50));
    let before = miner_cpu();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(200) {
        d.keep_awake();
        std::thread::sleep(Duration::from_micros(200));
    }
    let awake = miner_cpu() - before;
    assert!(awake >= Duration::from_micros(100), "the miner ran {awake:?} while requests came: it slept");
    // Past the wait that follows the last request.
    std::thread::sleep(Duration::from_millis(50));
    let before = miner_cpu();
    std::thread::sleep(Duration::from_millis(600));
    let spent = miner_cpu() - before;
    // A thread that kept waiting awake would have run about 600 ms.
    assert!(spent <= Duration::from_millis(50), "the idle miner ran {spent:?} in 600 ms");
}
