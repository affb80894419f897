//! The devnet over HTTP, driven the way a client drives it, against Hardhat's
//! node in the same run:
//!
//! - (a) sequential `eth_sendRawTransaction` of pre-signed ETH transfers, each
//!   followed by `eth_getTransactionReceipt`, automine;
//! - (b) 10,000 transfers sent with mining off, then one `evm_mine`;
//! - memory: the devnet's RSS after 100,000 transactions, and across five
//!   repeats of the same 10,000-transaction work under snapshot/revert.
//!
//! `cargo bench -p nml-runtime --bench devnet` (release). Hardhat is installed
//! from npm into `target/bench-deps/hardhat` on first use; set
//! `NML_BENCH_NO_HARDHAT=1` to measure the devnet alone. The devnet runs in a
//! child process (this binary re-executed) so that its RSS is its own.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TypedTransaction};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, TxKind, U256, hex};
use alloy_signer::SignerSync;
use jsonrpsee::core::client::ClientT;
use jsonrpsee::http_client::{HttpClient, HttpClientBuilder};
use jsonrpsee::rpc_params;
use nml_runtime::chain::{ChainConfig, dev_accounts};
use nml_runtime::{Devnet, DevnetConfig, Mining};
use serde_json::Value;

const SERVE_ENV: &str = "NML_DEVNET_BENCH_SERVE";
const GAS_LIMIT: u64 = 300_000_000;

fn main() {
    if let Ok(mode) = std::env::var(SERVE_ENV) {
        serve(&mode);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this too: only run for real.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");
    runtime.block_on(run());
}

/// Child mode: serve a devnet on an ephemeral port and print the address.
fn serve(mode: &str) {
    let mining = if mode == "manual" { Mining::Manual } else { Mining::Auto };
    let config =
        DevnetConfig { chain: ChainConfig { gas_limit: GAS_LIMIT, ..Default::default() }, mining, state_file: None };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio");
    runtime.block_on(async {
        let devnet = Arc::new(Devnet::new(config).expect("devnet"));
        let server = nml_runtime::rpc::serve(devnet, "127.0.0.1:0".parse().expect("addr")).await.expect("serve");
        println!("Listening on {}", server.local_addr);
        server.stopped().await;
    });
}

struct Node {
    name: &'static str,
    child: Child,
    url: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    fn rss_mib(&self) -> f64 {
        rss_of(self.child.id()).unwrap_or(f64::NAN)
    }
}

/// Resident set size of a process and its children (Hardhat runs under npx), MiB.
fn rss_of(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.split_whitespace().next()?.parse().ok()?;
    let children: f64 = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|c| c.parse().ok())
        .filter_map(rss_of)
        .sum();
    Some(kb / 1024.0 + children)
}

fn wait_for_line(child: &mut Child, needle: &str) -> String {
    use std::io::{BufRead, BufReader};
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => {
                std::thread::spawn(move || while rx.recv().is_ok() {});
                return line;
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("the node did not print {needle:?}");
}

fn start_devnet(mode: &str) -> Node {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .env(SERVE_ENV, mode)
        .stdout(Stdio::piped())
        .spawn()
        .expect("devnet child");
    let line = wait_for_line(&mut child, "Listening on ");
    let addr = line.trim_start_matches("Listening on ").trim().to_owned();
    Node { name: "nml devnet", child, url: format!("http://{addr}") }
}

fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    // target/release/deps/devnet-xxxx
    exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"))
}

fn hardhat_dir() -> Option<PathBuf> {
    if std::env::var_os("NML_BENCH_NO_HARDHAT").is_some() {
        return None;
    }
    let dir = target_dir().join("bench-deps/hardhat");
    if !dir.join("node_modules/.bin/hardhat").exists() {
        std::fs::create_dir_all(&dir).ok()?;
        eprintln!("installing hardhat@2 into {} ...", dir.display());
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(&dir)
            .arg("hardhat@2")
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("npm install hardhat failed: measuring the devnet alone");
            return None;
        }
    }
    std::fs::write(
        dir.join("hardhat.config.js"),
        format!(
            "module.exports = {{ networks: {{ hardhat: {{ chainId: 31337, blockGasLimit: {GAS_LIMIT}, \
             initialBaseFeePerGas: 1000000000, mining: {{ auto: true }} }} }} }};\n"
        ),
    )
    .ok()?;
    Some(dir)
}

fn start_hardhat(dir: &Path) -> Node {
    let port = free_port();
    let mut child = Command::new(dir.join("node_modules/.bin/hardhat"))
        .args(["node", "--hostname", "127.0.0.1", "--port", &port.to_string()])
        .current_dir(dir)
        .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
        .stdout(Stdio::piped())
        .spawn()
        .expect("hardhat node");
    wait_for_line(&mut child, "Started HTTP");
    Node { name: "hardhat node", child, url: format!("http://127.0.0.1:{port}") }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or(18545)
}

/// `count` transfers from each of `senders` dev accounts, nonces from 0,
/// signed ahead of time.
fn presign(senders: usize, count: usize) -> Vec<String> {
    let accounts = dev_accounts(senders);
    let to = Address::repeat_byte(0x42);
    let mut out = Vec::with_capacity(senders * count);
    for nonce in 0..count {
        for account in &accounts {
            let tx: TypedTransaction = TxEip1559 {
                chain_id: 31337,
                nonce: nonce as u64,
                gas_limit: 21_000,
                max_fee_per_gas: 50_000_000_000,
                max_priority_fee_per_gas: 1_000_000_000,
                to: TxKind::Call(to),
                value: U256::from(1),
                ..Default::default()
            }
            .into();
            let signature = account.signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
            out.push(hex::encode_prefixed(tx.into_envelope(signature).encoded_2718()));
        }
    }
    out
}

fn http_client(url: &str) -> HttpClient {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(600))
        .max_request_size(64 * 1024 * 1024)
        .max_response_size(512 * 1024 * 1024)
        .build(url)
        .expect("http client")
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// (a): returns (tx/s, median latency in ms).
async fn sequential(node: &Node, txs: &[String]) -> (f64, f64) {
    let client = http_client(&node.url);
    let mut latencies = Vec::with_capacity(txs.len());
    let start = Instant::now();
    for raw in txs {
        let t = Instant::now();
        let hash: String = client.request("eth_sendRawTransaction", rpc_params![raw]).await.expect("send");
        let receipt: Value = client.request("eth_getTransactionReceipt", rpc_params![hash]).await.expect("receipt");
        assert!(receipt.is_object(), "automine: the receipt exists at once");
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let rate = txs.len() as f64 / start.elapsed().as_secs_f64();
    (rate, median(latencies))
}

/// (b): sends `txs` with mining off, then times one `evm_mine`. Returns
/// (seconds to send, seconds to mine, transactions in the block).
async fn batch(node: &Node, txs: &[String]) -> (f64, f64, usize) {
    let client = http_client(&node.url);
    let _: Value = client.request("evm_setAutomine", rpc_params![false]).await.expect("automine off");
    let start = Instant::now();
    for raw in txs {
        let _: String = client.request("eth_sendRawTransaction", rpc_params![raw]).await.expect("send");
    }
    let send = start.elapsed().as_secs_f64();
    let start = Instant::now();
    let _: Value = client.request("evm_mine", rpc_params![]).await.expect("mine");
    let mine = start.elapsed().as_secs_f64();
    let block: Value = client.request("eth_getBlockByNumber", rpc_params!["latest", false]).await.expect("block");
    let included = block["transactions"].as_array().map_or(0, Vec::len);
    let _: Value = client.request("evm_setAutomine", rpc_params![true]).await.expect("automine on");
    (send, mine, included)
}

async fn run() {
    eprintln!("pre-signing transactions ...");
    let seq_txs = presign(1, 2_000);
    let batch_txs = presign(10, 1_000);
    let mut report = String::new();

    // (a) and (b) on the devnet.
    let devnet = start_devnet("auto");
    let (rate, latency) = sequential(&devnet, &seq_txs).await;
    report += &format!(
        "(a) {}: {rate:.0} tx/s, median {latency:.3} ms per send+receipt ({} txs)\n",
        devnet.name,
        seq_txs.len()
    );
    drop(devnet);
    let devnet = start_devnet("auto");
    let (send, mine, included) = batch(&devnet, &batch_txs).await;
    report += &format!("(b) {}: evm_mine of {included} txs {mine:.3} s (sending them took {send:.2} s)\n", devnet.name);
    drop(devnet);
    let devnet_rate = rate;
    let devnet_mine = mine;

    // The same on Hardhat.
    if let Some(dir) = hardhat_dir() {
        let hardhat_seq = &seq_txs[..500];
        let hardhat = start_hardhat(&dir);
        let (rate, latency) = sequential(&hardhat, hardhat_seq).await;
        report += &format!(
            "(a) {}: {rate:.0} tx/s, median {latency:.3} ms per send+receipt ({} txs)\n",
            hardhat.name,
            hardhat_seq.len()
        );
        report += &format!("(a) ratio: nml devnet / hardhat = {:.1}x\n", devnet_rate / rate);
        drop(hardhat);
        let hardhat = start_hardhat(&dir);
        let (send, mine, included) = batch(&hardhat, &batch_txs).await;
        report +=
            &format!("(b) {}: evm_mine of {included} txs {mine:.3} s (sending them took {send:.2} s)\n", hardhat.name);
        report += &format!("(b) ratio: hardhat / nml devnet mining time = {:.1}x\n", mine / devnet_mine);
        drop(hardhat);
    }

    // Memory: 100,000 transactions kept, then the same work repeated under snapshot/revert.
    let devnet = start_devnet("manual");
    let client = http_client(&devnet.url);
    report += &format!("memory: RSS at start {:.0} MiB\n", devnet.rss_mib());
    let rounds = presign(10, 10_000);
    for (round, chunk) in rounds.chunks(10_000).enumerate() {
        for raw in chunk {
            let _: String = client.request("eth_sendRawTransaction", rpc_params![raw]).await.expect("send");
        }
        let _: Value = client.request("evm_mine", rpc_params![]).await.expect("mine");
        if round % 3 == 2 || round == 9 {
            report += &format!("memory: RSS after {} txs {:.0} MiB\n", (round + 1) * 10_000, devnet.rss_mib());
        }
    }
    drop(client);
    drop(devnet);
    let devnet = start_devnet("manual");
    let client = http_client(&devnet.url);
    let work = &rounds[..10_000];
    let mut repeats = Vec::new();
    for _ in 0..5 {
        let id: String = client.request("evm_snapshot", rpc_params![]).await.expect("snapshot");
        for raw in work {
            let _: String = client.request("eth_sendRawTransaction", rpc_params![raw]).await.expect("send");
        }
        let _: Value = client.request("evm_mine", rpc_params![]).await.expect("mine");
        let _: bool = client.request("evm_revert", rpc_params![id]).await.expect("revert");
        repeats.push(format!("{:.0}", devnet.rss_mib()));
    }
    report += &format!("memory: RSS after each of 5 repeats of 10,000 txs + evm_revert: {} MiB\n", repeats.join(", "));
    println!("\n{report}");
}
