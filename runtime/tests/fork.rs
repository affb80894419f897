//! Fork mode: a devnet (B) forked from another one (A) served over JSON-RPC
//! reads A's state lazily at the fork block, runs everything locally, never
//! writes A, caches what it read on disk, and says clearly when A is not the
//! chain expected, stops answering or never answers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_eips::BlockId;
use alloy_primitives::{Address, B256, Bytes, U256, address};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::SolCall;
use common::*;
use nml_runtime::fork::{ForkConfig, ForkError, ForkSource};
use nml_runtime::rpc::RpcServer;
use nml_runtime::rpc_client::{self as client, Retry, RpcError};
use nml_runtime::{Devnet, DevnetConfig, Mining};
use serde_json::{Value, json};

/// A devnet served over HTTP on a free port, on its own tokio runtime.
struct Served {
    devnet: Arc<Devnet>,
    url: String,
    server: Option<RpcServer>,
    runtime: tokio::runtime::Runtime,
}

impl Served {
    fn start(devnet: Devnet) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let devnet = Arc::new(devnet);
        let server = runtime.block_on(nml_runtime::rpc::serve(devnet.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();
        let url = format!("http://{}", server.local_addr);
        Self { devnet, url, server: Some(server), runtime }
    }

    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            self.runtime.block_on(server.stop());
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.stop();
    }
}

fn fork_config(url: &str, cache: Option<&std::path::Path>) -> ForkConfig {
    ForkConfig {
        cache_dir: cache.map(|c| c.to_path_buf()),
        retry: Retry { attempts: 2, first_wait: Duration::from_millis(10), within: Some(Duration::from_secs(30)) },
        ..ForkConfig::new(url)
    }
}

fn forked(source: Arc<ForkSource>) -> Devnet {
    Devnet::new(DevnetConfig { fork: Some(source), ..DevnetConfig::default() }).unwrap()
}

fn count(d: &Devnet, counter: Address) -> U256 {
    let request = TransactionRequest::default().to(counter).input(Counter::getCall {}.abi_encode().into());
    U256::from_be_slice(&d.call(request, None, None).unwrap())
}

fn increment(d: &Devnet, nonce: u64, counter: Address, by: u64) {
    let input: Bytes = Counter::incrementCall { by: U256::from(by) }.abi_encode().into();
    let hash = d.send_raw_transaction(&sign(call_tx(nonce, counter, input), &signer(0))).unwrap();
    assert!(d.receipt(hash).unwrap().status());
}

fn slot(d: &Devnet, address: Address, slot: u64, at: BlockId) -> U256 {
    d.storage_at(address, U256::from(slot), at).unwrap().into()
}

/// Runtime code returning `BLOCKHASH(1)`.
const BLOCKHASH_1: [u8; 11] = [0x60, 0x01, 0x40, 0x60, 0x00, 0x52, 0x60, 0x20, 0x60, 0x00, 0xf3];

#[test]
fn a_fork_runs_on_the_remote_state_and_never_writes_it() {
    let a = Served::start(Devnet::new(DevnetConfig::default()).unwrap());
    let hash = a.devnet.send_raw_transaction(&sign(deploy_tx(0, 41), &signer(0))).unwrap();
    let counter = a.devnet.receipt(hash).unwrap().contract_address.unwrap();
    increment(&a.devnet, 1, counter, 1);
    let whale = address!("00000000000000000000000000000000000000aa");
    a.devnet.set_balance(whale, U256::from(5));
    a.devnet.set_code(whale, BLOCKHASH_1.to_vec().into());
    a.devnet.mine(None).unwrap();
    let fork_block = a.devnet.block_number();
    let cache = tempfile::tempdir().unwrap();

    let source = ForkSource::connect(&fork_config(&a.url, Some(cache.path()))).unwrap();
    assert_eq!((source.chain_id(), source.number()), (CHAIN_ID, fork_block));
    let b = forked(source.clone());
    // A moves on after the fork; B stays at the fork block's state.
    increment(&a.devnet, 2, counter, 100);
    assert_eq!(count(&a.devnet, counter), U256::from(142));

    // The remote's code, storage and balances, read at the fork block.
    assert_eq!(count(&b, counter), U256::from(42));
    assert_eq!(b.code(counter, BlockId::latest()).unwrap(), a.devnet.code(counter, BlockId::latest()).unwrap());
    assert_eq!(b.balance(whale, BlockId::latest()).unwrap(), U256::from(5));
    // The chain continues the remote's: its fork block, then blocks of its own.
    let a_block = |n: u64| a.devnet.block(BlockId::number(n), false).unwrap();
    assert_eq!(b.block_number(), fork_block);
    assert_eq!(b.block(BlockId::latest(), false).unwrap().header.hash, a_block(fork_block).header.hash);
    // BLOCKHASH of a block before the fork is the remote's.
    let blockhash = b.call(TransactionRequest::default().to(whale), None, None).unwrap();
    assert_eq!(B256::from_slice(&blockhash), a_block(1).header.hash);

    // Written locally: B changes, A does not.
    let nonce = b.transaction_count(address(0), BlockId::latest()).unwrap();
    assert_eq!(nonce, 2, "the dev account's nonce is the remote's at the fork block");
    increment(&b, nonce, counter, 5);
    assert_eq!(count(&b, counter), U256::from(47));
    assert_eq!(b.block_number(), fork_block + 1);
    assert_eq!(count(&a.devnet, counter), U256::from(142));
    // A zero written over a remote value reads as zero; the fork block still
    // reads the remote's value.
    b.set_storage_at(counter, U256::ZERO, U256::ZERO);
    assert_eq!(slot(&b, counter, 0, BlockId::latest()), U256::ZERO);
    assert_eq!(slot(&b, counter, 0, BlockId::number(fork_block)), U256::from(42));
    assert!(b.storage_at(counter, U256::ZERO, BlockId::number(fork_block - 1)).is_err(), "before the fork");
    // A transfer to a fresh account, and a contract created on B.
    let fresh = address!("00000000000000000000000000000000000000f1");
    let hash = b.send_raw_transaction(&sign(transfer(0, fresh, 9), &signer(1))).unwrap();
    assert!(b.receipt(hash).unwrap().status());
    assert_eq!(b.balance(fresh, BlockId::latest()).unwrap(), U256::from(9));
    assert_eq!(a.devnet.balance(fresh, BlockId::latest()).unwrap(), U256::ZERO);
    let hash = b.send_raw_transaction(&sign(deploy_tx(nonce + 1, 7), &signer(0))).unwrap();
    let created = b.receipt(hash).unwrap().contract_address.unwrap();
    assert_eq!(count(&b, created), U256::from(7));
    assert!(a.devnet.code(created, BlockId::latest()).unwrap().is_empty());
    assert!(b.dump().is_err(), "a fork's state is not dumped");

    // A second fork of the same block reads what the first read from the disk cache.
    let again = ForkSource::connect(&ForkConfig { block: Some(fork_block), ..fork_config(&a.url, Some(cache.path())) })
        .unwrap();
    let connecting = again.requests();
    let c = Devnet::new(DevnetConfig { fork: Some(again.clone()), mining: Mining::Manual, ..DevnetConfig::default() })
        .unwrap();
    assert_eq!(count(&c, counter), U256::from(42));
    assert_eq!(c.balance(whale, BlockId::latest()).unwrap(), U256::from(5));
    assert_eq!(again.requests(), connecting, "nothing read twice");
    assert!(source.requests() > connecting);
    // A cold account is read in one round trip: balance, nonce and code in a batch.
    let before = source.requests();
    assert_eq!(b.balance(Address::repeat_byte(0xab), BlockId::latest()).unwrap(), U256::ZERO);
    assert_eq!(source.requests(), before + 1);
}

#[test]
fn a_wrong_chain_or_a_remote_that_stops_answering_is_a_clear_error() {
    let mut a = Served::start(Devnet::new(DevnetConfig::default()).unwrap());
    let refused =
        ForkSource::connect(&ForkConfig { expected_chain_id: Some(8453), ..fork_config(&a.url, None) }).unwrap_err();
    assert!(matches!(refused, ForkError::WrongChain { expected: 8453, actual: CHAIN_ID, .. }), "{refused}");
    assert!(refused.to_string().contains("reports chain id 31337, but chain id 8453 was expected"), "{refused}");
    let future = ForkSource::connect(&ForkConfig { block: Some(99), ..fork_config(&a.url, None) }).unwrap_err();
    assert!(future.to_string().contains("has no block 99 yet"), "{future}");
    assert!(matches!(future, ForkError::NoSuchBlock { block: 99, latest: 0, .. }), "{future}");

    let b = forked(ForkSource::connect(&fork_config(&a.url, None)).unwrap());
    a.stop();
    // Reads of what was never read fail with the remote's reason, after
    // retries, naming what was read: the account, whichever of its fields
    // was asked for.
    let unknown = address!("00000000000000000000000000000000000000cc");
    let reading = format!("fork: reading account {unknown} from http://");
    let err = b.balance(unknown, BlockId::latest()).unwrap_err();
    let said = err.to_string();
    assert!(said.contains(&reading) && said.contains("cannot reach the node"), "{said}");
    let said = b.code(unknown, BlockId::latest()).unwrap_err().to_string();
    assert!(said.contains(&reading) && !said.contains("eth_getBalance"), "{said}");
    // A transaction to such an account is refused when sent, not lost.
    let sent = b.send_raw_transaction(&sign(transfer(0, unknown, 1), &signer(0))).unwrap_err();
    assert!(sent.to_string().contains(&reading), "{sent}");
    // What was read (the dev accounts) still works, and the chain goes on.
    let known = address(2);
    let hash = b.send_raw_transaction(&sign(transfer(0, known, 1), &signer(1))).unwrap();
    assert!(b.receipt(hash).unwrap().status());
    assert_eq!(b.block_number(), 1);

    let dead = ForkSource::connect(&fork_config(&a.url, None)).unwrap_err();
    assert!(matches!(&dead, ForkError::Rpc { source: RpcError::Unreachable { .. }, .. }), "{dead}");
}

/// A TCP relay to `target` whose requests wait `delay` (set to zero to stop
/// waiting): a remote that turned slow.
struct SlowRelay {
    url: String,
    delay_ms: Arc<std::sync::atomic::AtomicU64>,
}

impl SlowRelay {
    fn start(target: &str) -> Self {
        use std::io::{Read, Write};
        use std::net::{TcpListener, TcpStream};
        use std::sync::atomic::Ordering;
        let target = target.trim_start_matches("http://").to_owned();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let delay_ms = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let delay = Arc::clone(&delay_ms);
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { return };
                let Ok(mut server) = TcpStream::connect(&target) else { return };
                let (mut client_back, mut server_back) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let delay = Arc::clone(&delay);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 65536];
                    while let Ok(n @ 1..) = client.read(&mut buf) {
                        std::thread::sleep(Duration::from_millis(delay.load(Ordering::SeqCst)));
                        if server.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_back, &mut client_back);
                });
            }
        });
        Self { url, delay_ms }
    }

    fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(delay.as_millis() as u64, std::sync::atomic::Ordering::SeqCst);
    }
}

/// While a send, a state edit or a call with an override waits on a slow
/// remote for an account nobody read yet, the forked devnet answers reads
/// of what it holds at once: the remote is read outside the lock that every
/// request takes.
#[test]
fn a_slow_remote_delays_only_the_request_that_reads_it() {
    let a = Served::start(Devnet::new(DevnetConfig::default()).unwrap());
    let relay = SlowRelay::start(&a.url);
    let b = forked(ForkSource::connect(&fork_config(&relay.url, None)).unwrap());
    // The dev accounts are read now, while the remote is quick.
    for i in 0..3 {
        b.balance(address(i), BlockId::latest()).unwrap();
    }
    relay.set_delay(Duration::from_millis(400));
    // Each fresh account costs a read of the remote (a batch): 0.4 s.
    let bound = Duration::from_millis(300);
    let fresh = |i: u8| Address::repeat_byte(0xf0 + i);
    type Request = Box<dyn Fn(&Devnet) + Send + Sync>;
    let slow: [(&str, Request); 3] = [
        (
            "a send to a fresh account",
            Box::new(move |b: &Devnet| {
                b.send_raw_transaction(&sign(transfer(0, fresh(1), 1), &signer(1))).unwrap();
            }),
        ),
        ("anvil_setStorageAt", Box::new(move |b: &Devnet| b.set_storage_at(fresh(2), U256::from(1), U256::from(2)))),
        (
            "eth_call with a state override",
            Box::new(move |b: &Devnet| {
                let mut overrides = alloy_rpc_types_eth::state::StateOverride::default();
                overrides.insert(
                    fresh(3),
                    alloy_rpc_types_eth::state::AccountOverride::default().with_balance(U256::from(1)),
                );
                b.call(TransactionRequest::default().to(fresh(3)), None, Some(overrides)).unwrap();
            }),
        ),
    ];
    for (what, request) in &slow {
        std::thread::scope(|scope| {
            let started = std::time::Instant::now();
            let waiting = scope.spawn(|| request(&b));
            std::thread::sleep(Duration::from_millis(100));
            let t = std::time::Instant::now();
            b.block_number();
            b.balance(address(2), BlockId::latest()).unwrap();
            assert!(t.elapsed() < bound, "two reads took {:?} while {what} waited on the remote", t.elapsed());
            waiting.join().unwrap();
            assert!(started.elapsed() >= Duration::from_millis(400), "{what} read the remote");
        });
    }
}

/// A remote that takes the connection and never answers: a read fails
/// when its time is spent (not after the 120 s per attempt of old), and a
/// devnet that stops does not wait on a read that waits on it.
#[test]
fn a_remote_that_never_answers_costs_a_read_its_time_limit_and_never_holds_the_shutdown() {
    let a = Served::start(Devnet::new(DevnetConfig::default()).unwrap());
    let within = |relay: &SlowRelay, limit: Duration| ForkConfig {
        retry: Retry { attempts: 5, first_wait: Duration::from_millis(10), within: Some(limit) },
        ..fork_config(&relay.url, None)
    };
    let hang = Duration::from_secs(3600);

    let relay = SlowRelay::start(&a.url);
    let b = forked(ForkSource::connect(&within(&relay, Duration::from_millis(500))).unwrap());
    relay.set_delay(hang);
    let fresh = Address::repeat_byte(0xee);
    let started = Instant::now();
    let said = b.balance(fresh, BlockId::latest()).unwrap_err().to_string();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert!(said.contains(&format!("fork: reading account {fresh} from {}", relay.url)), "{said}");
    assert!(said.contains("did not answer within 0.5 s"), "{said}");

    // The read's limit is long; closing the source ends its wait.
    let relay = SlowRelay::start(&a.url);
    let source = ForkSource::connect(&within(&relay, Duration::from_secs(600))).unwrap();
    let mut b = Served::start(forked(source.clone()));
    relay.set_delay(hang);
    let url = b.url.clone();
    let waiting = std::thread::spawn(move || client::call(&url, "eth_getBalance", json!([fresh, "latest"])));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    source.close();
    b.stop();
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let said = waiting.join().unwrap().unwrap_err().to_string();
    assert!(said.contains(&format!("the read of account {fresh} on {} was abandoned", relay.url)), "{said}");
    assert!(said.contains("the devnet is stopping"), "{said}");
    // What was read stays readable.
    assert!(!b.devnet.balance(address(0), BlockId::latest()).unwrap().is_zero());
}

/// A remote with a history: block 1 deploys a Counter (at 0), block 2
/// sends 1,000 wei to a fresh account, blocks 3 and 4 increment the counter
/// by 1 and 2 (each logging `Incremented`). The fork is at block 4.
struct History {
    remote: Served,
    counter: Address,
    fresh: Address,
    transfer: B256,
}

const FORK_BLOCK: u64 = 4;

impl History {
    fn start() -> Self {
        let remote = Served::start(Devnet::new(DevnetConfig::default()).unwrap());
        let a = &remote.devnet;
        let hash = a.send_raw_transaction(&sign(deploy_tx(0, 0), &signer(0))).unwrap();
        let counter = a.receipt(hash).unwrap().contract_address.unwrap();
        let fresh = address!("00000000000000000000000000000000000000f2");
        let transfer = a.send_raw_transaction(&sign(transfer(0, fresh, 1_000), &signer(1))).unwrap();
        increment(a, 1, counter, 1);
        increment(a, 2, counter, 2);
        assert_eq!(a.block_number(), FORK_BLOCK);
        Self { remote, counter, fresh, transfer }
    }

    /// A devnet forked at [`FORK_BLOCK`], served.
    fn fork(&self) -> Served {
        let config = ForkConfig { block: Some(FORK_BLOCK), ..fork_config(&self.remote.url, None) };
        Served::start(forked(ForkSource::connect(&config).unwrap()))
    }
}

/// `method` with `params` on the devnet at `url`, which must answer.
fn ask(url: &str, method: &str, params: Value) -> Value {
    client::call(url, method, params).unwrap_or_else(|e| panic!("{method} on {url}: {e}"))
}

fn remote_requests(url: &str) -> u64 {
    ask(url, "nml_forkInfo", json!([]))["remoteRequests"].as_u64().unwrap()
}

fn get_call(counter: Address) -> Value {
    json!({ "to": counter, "data": Bytes::from(Counter::getCall {}.abi_encode()) })
}

/// What `Incremented`'s data holds when the count is `n`.
fn new_count(n: u64) -> Value {
    json!(B256::from(U256::from(n)))
}

#[test]
fn blocks_transactions_logs_and_state_before_the_fork_block_are_the_remotes() {
    let mut history = History::start();
    let (a, counter, fresh) = (history.remote.url.clone(), history.counter, history.fresh);
    let a = a.as_str();
    let b = history.fork();
    let b_url = b.url.as_str();
    // B moves on with a block of its own that logs (the count goes 3 -> 8).
    increment(&b.devnet, 3, counter, 5);
    assert_eq!(b.devnet.block_number(), FORK_BLOCK + 1);

    // An earlier block, by number and by hash, with hashes or whole transactions.
    let before = remote_requests(b_url);
    for full in [false, true] {
        let remote = ask(a, "eth_getBlockByNumber", json!(["0x2", full]));
        assert_eq!(remote["transactions"].as_array().unwrap().len(), 1);
        assert_eq!(ask(b_url, "eth_getBlockByNumber", json!(["0x2", full])), remote);
        assert_eq!(ask(b_url, "eth_getBlockByHash", json!([remote["hash"], full])), remote);
    }
    assert_eq!(remote_requests(b_url), before + 4, "each forwarded read is counted");
    assert_eq!(
        ask(b_url, "eth_getBlockByNumber", json!(["earliest", false])),
        ask(a, "eth_getBlockByNumber", json!(["0x0", false]))
    );
    assert_eq!(ask(b_url, "eth_getBlockTransactionCountByNumber", json!(["0x2"])), json!("0x1"));
    // Its transaction and receipt.
    for method in ["eth_getTransactionByHash", "eth_getTransactionReceipt"] {
        let remote = ask(a, method, json!([history.transfer]));
        assert_eq!(remote["blockNumber"], json!("0x2"), "{method}");
        assert_eq!(ask(b_url, method, json!([history.transfer])), remote, "{method}");
    }

    // Logs over a range across the fork block: the remote's (blocks 3 and
    // 4), then B's own (block 5), in order.
    let remote_logs = ask(a, "eth_getLogs", json!([{ "fromBlock": "0x1", "toBlock": "0x4", "address": counter }]));
    let remote_logs = remote_logs.as_array().unwrap();
    assert_eq!(remote_logs.len(), 2);
    let logs = ask(b_url, "eth_getLogs", json!([{ "fromBlock": "0x1", "toBlock": "latest", "address": counter }]));
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 3, "{logs:?}");
    assert_eq!(&logs[..2], remote_logs.as_slice());
    let b_head = b.devnet.block(BlockId::latest(), false).unwrap();
    assert_eq!((&logs[2]["blockNumber"], &logs[2]["blockHash"]), (&json!("0x5"), &json!(b_head.header.hash)));
    let counts: Vec<_> = logs.iter().map(|log| log["data"].clone()).collect();
    assert_eq!(counts, [new_count(1), new_count(3), new_count(8)]);
    // An installed filter's logs are the same.
    let id = ask(b_url, "eth_newFilter", json!([{ "fromBlock": "0x1", "address": counter }]));
    assert_eq!(ask(b_url, "eth_getFilterLogs", json!([id])).as_array().unwrap(), logs);
    // A block hash filter of a remote block.
    let at_hash = ask(b_url, "eth_getLogs", json!([{ "blockHash": remote_logs[0]["blockHash"] }]));
    assert_eq!(at_hash, json!([remote_logs[0]]));

    // State at an earlier block is the remote's at that block.
    for (method, params) in [
        ("eth_getBalance", json!([fresh, "0x1"])),
        ("eth_getBalance", json!([fresh, "0x2"])),
        ("eth_getCode", json!([counter, "earliest"])),
        ("eth_getCode", json!([counter, "0x1"])),
        ("eth_getStorageAt", json!([counter, "0x0", "0x3"])),
        ("eth_getTransactionCount", json!([address(0), "0x2"])),
        ("eth_call", json!([get_call(counter), "0x3"])),
        (
            "eth_getBalance",
            json!([fresh, { "blockHash": ask(a, "eth_getBlockByNumber", json!(["0x1", false]))["hash"] }]),
        ),
    ] {
        assert_eq!(ask(b_url, method, params.clone()), ask(a, method, params.clone()), "{method} {params}");
    }
    assert_eq!(ask(b_url, "eth_getBalance", json!([fresh, "0x1"])), json!("0x0"));
    assert_eq!(ask(b_url, "eth_getBalance", json!([fresh, "latest"])), json!("0x3e8"));
    assert_eq!(ask(b_url, "eth_call", json!([get_call(counter), "0x3"])), new_count(1));
    assert_eq!(ask(b_url, "eth_call", json!([get_call(counter), "latest"])), new_count(8));

    // A revert on the remote stays a revert, naming the fork; a remote that
    // is gone is a clear error too.
    let call = json!({ "to": counter, "data": "0xdeadbeef" });
    let said = client::call(b_url, "eth_call", json!([call, "0x3"])).unwrap_err();
    let fork = format!("fork: eth_call on {a} failed");
    assert!(matches!(&said, RpcError::Remote { code: 3, message, .. } if message.contains(&fork)), "{said}");
    history.remote.stop();
    let said = client::call(b_url, "eth_getBlockByNumber", json!(["0x1", false])).unwrap_err();
    let fork = format!("fork: eth_getBlockByNumber on {a} failed: cannot reach the node");
    assert!(matches!(&said, RpcError::Remote { code: -32000, message, .. } if message.contains(&fork)), "{said}");
    // What B holds needs no remote.
    assert_eq!(ask(b_url, "eth_getBlockByNumber", json!(["latest", false]))["hash"], json!(b_head.header.hash));
}

/// The fork block is the remote's block (its transactions are there) and
/// the devnet's state (its first); blocks, transactions and logs the remote
/// made after it are not on the devnet's chain.
#[test]
fn the_fork_block_is_the_remotes_block_and_what_the_remote_made_after_it_is_not_the_forks() {
    let history = History::start();
    let (a, counter, fresh) = (&history.remote.url, history.counter, history.fresh);
    let b = history.fork();
    let b_url = b.url.as_str();
    let at_fork = format!("{FORK_BLOCK:#x}");
    let next = format!("{:#x}", FORK_BLOCK + 1);
    // Before B mines, its head is the fork block: the remote's, whole.
    let remote_block = ask(a, "eth_getBlockByNumber", json!([at_fork, true]));
    assert_eq!(ask(b_url, "eth_getBlockByNumber", json!(["latest", true])), remote_block);
    // A and B each make a block 5 of their own, each logging.
    increment(&history.remote.devnet, 3, counter, 100);
    let after = history.remote.devnet.send_raw_transaction(&sign(transfer(1, fresh, 1), &signer(1))).unwrap();
    increment(&b.devnet, 3, counter, 5);

    // The fork block: the remote's, by number and by hash, with its transaction.
    assert_eq!(remote_block["transactions"].as_array().unwrap().len(), 1);
    assert_eq!(ask(b_url, "eth_getBlockByNumber", json!([at_fork, true])), remote_block);
    assert_eq!(ask(b_url, "eth_getBlockByHash", json!([remote_block["hash"], true])), remote_block);
    assert_eq!(ask(b_url, "eth_getBlockTransactionCountByHash", json!([remote_block["hash"]])), json!("0x1"));
    let tx = &remote_block["transactions"][0];
    assert_eq!(&ask(b_url, "eth_getTransactionByHash", json!([tx["hash"]])), tx);
    assert_eq!(ask(b_url, "eth_getTransactionReceipt", json!([tx["hash"]]))["blockNumber"], json!(at_fork));
    let logs = |url: &str, from: &str, to: &str| ask(url, "eth_getLogs", json!([{ "fromBlock": from, "toBlock": to }]));
    assert_eq!(logs(b_url, &at_fork, &at_fork), logs(a, &at_fork, &at_fork));
    assert_eq!(logs(b_url, &at_fork, &at_fork).as_array().unwrap().len(), 1);
    // Its state is B's own, which starts as the remote's there: the balance
    // at the fork block, then A's later transfer not seen.
    assert_eq!(
        ask(b_url, "eth_getBalance", json!([fresh, at_fork])),
        ask(a, "eth_getBalance", json!([fresh, at_fork]))
    );
    assert_eq!(ask(a, "eth_getBalance", json!([fresh, "latest"])), json!("0x3e9"));
    assert_eq!(ask(b_url, "eth_getBalance", json!([fresh, "latest"])), json!("0x3e8"));
    assert_eq!(ask(b_url, "eth_call", json!([get_call(counter), at_fork])), new_count(3));
    // B funded its dev accounts over the remote's balances there: a state
    // read at the fork block is B's, one block earlier the remote's.
    let dev = |url: &str, at: &str| ask(url, "eth_getBalance", json!([address(0), at]));
    assert_ne!(dev(b_url, &at_fork), dev(a, &at_fork));
    assert_eq!(dev(b_url, &at_fork), json!(DevnetConfig::default().chain.balance));
    let before_fork = format!("{:#x}", FORK_BLOCK - 1);
    assert_eq!(dev(b_url, &before_fork), dev(a, &before_fork));

    // Block 5 is B's own; A's block 5, its transaction and its logs are not B's.
    let b_next = ask(b_url, "eth_getBlockByNumber", json!([next, false]));
    let a_next = ask(a, "eth_getBlockByNumber", json!([next, false]));
    assert_eq!(b_next["hash"], json!(b.devnet.block(BlockId::number(FORK_BLOCK + 1), false).unwrap().header.hash));
    assert_ne!(b_next["hash"], a_next["hash"]);
    assert_eq!(ask(b_url, "eth_getBlockByHash", json!([a_next["hash"], false])), Value::Null);
    assert_eq!(ask(b_url, "eth_getTransactionByHash", json!([after])), Value::Null);
    assert_eq!(ask(b_url, "eth_getTransactionReceipt", json!([after])), Value::Null);
    assert_eq!(ask(b_url, "eth_getLogs", json!([{ "blockHash": a_next["hash"] }])), json!([]));
    // State at A's block 5 by its hash is not B's to read: no such block here.
    let said = client::call(b_url, "eth_getBalance", json!([fresh, { "blockHash": a_next["hash"] }])).unwrap_err();
    assert!(matches!(&said, RpcError::Remote { code: -32000, message, .. } if message == "header not found"), "{said}");
    // The fork block by its hash: B's state, as by its number.
    let by_hash = json!([address(0), { "blockHash": remote_block["hash"] }]);
    assert_eq!(ask(b_url, "eth_getBalance", by_hash), dev(b_url, &at_fork));
    let mine = logs(b_url, &next, &next);
    assert_eq!(mine.as_array().unwrap().len(), 1);
    assert_eq!((&mine[0]["blockHash"], &mine[0]["data"]), (&b_next["hash"], &new_count(8)));
    // B's own transaction and its pending ones are B's, with no remote read.
    let before = remote_requests(b_url);
    let own = b.devnet.block(BlockId::latest(), false).unwrap().transactions.hashes().next().unwrap();
    assert_eq!(ask(b_url, "eth_getTransactionReceipt", json!([own]))["blockHash"], b_next["hash"]);
    assert_eq!(remote_requests(b_url), before);
}
