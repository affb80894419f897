//! A devnet stays awake while requests come and sleeps once they stop: after
//! a pass, or a client's request (`Devnet::keep_awake`), the miner thread
//! waits awake for the next one only briefly (`MINER_SPIN`), then sleeps. A
//! test binary of its own, so that no other devnet's miner thread is counted.

#![cfg(target_os = "linux")]

mod common;

use std::time::Duration;

use common::*;
use nml_runtime::{Devnet, DevnetConfig};

/// CPU time (user + system, in clock ticks) of the thread named `nml-miner`.
fn miner_ticks() -> u64 {
    let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
    for task in tasks.map_while(Result::ok) {
        let dir = task.path();
        if std::fs::read_to_string(dir.join("comm")).is_ok_and(|name| name.trim() == "nml-miner") {
            let stat = std::fs::read_to_string(dir.join("stat")).expect("the thread's stat");
            // After "(comm) ": state, ppid, … utime is the 12th field, stime the 13th.
            let fields: Vec<&str> = stat[stat.rfind(')').expect("comm") + 2..].split_whitespace().collect();
            return fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
        }
    }
    panic!("no miner thread");
}

#[test]
fn the_miner_stays_awake_while_requests_come_and_sleeps_once_they_stop() {
    let d = Devnet::new(DevnetConfig::default()).expect("devnet");
    // A request starts the miner thread, before any transaction.
    d.keep_awake();
    for nonce in 0..20 {
        let hash = d.send_raw_transaction(&sign(transfer(nonce, address(1), 1), &signer(0))).expect("sent");
        assert!(d.receipt(hash).is_some(), "mined under automine");
    }
    // Requests every 200 µs for 200 ms keep it awake: about 20 ticks when
    // it has a core to itself, none if it slept.
    let before = miner_ticks();
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(200) {
        d.keep_awake();
        std::thread::sleep(Duration::from_micros(200));
    }
    let awake = miner_ticks() - before;
    assert!(awake >= 3, "the miner spent {awake} ticks while requests came: it slept");
    // Past the wait that follows the last request.
    std::thread::sleep(Duration::from_millis(50));
    let before = miner_ticks();
    std::thread::sleep(Duration::from_millis(600));
    let spent = miner_ticks() - before;
    // A thread that kept waiting awake would have spent about 60 ticks.
    assert!(spent <= 5, "the idle miner used {spent} ticks of CPU in 600 ms");
}
