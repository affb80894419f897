//! The devnet measured the way a user's client sees it (`cargo bench --bench
//! devnet`, release): the real `nml devnet` binary and Hardhat's node
//! (`hardhat node`, 2.29.1 from npm) each run as a separate process, started
//! fresh for every run, and a client process (this binary re-executed) speaks
//! JSON-RPC to them over one HTTP/1.1 keep-alive connection with a minimal
//! hand-written client whose request bytes are all built before timing. The
//! transactions are EIP-1559, signed ahead of time with the dev accounts' keys
//! (the standard test mnemonic, the same on both nodes), so both nodes get the
//! same bytes. The client reports its own CPU time (`getrusage`) next to the
//! wall time, and the bench reads each node's CPU time from `/proc`. Every
//! measurement starts after 200 untimed `eth_chainId` calls.
//!
//! Rows (each the median of `NML_BENCH_RUNS`, default 3, runs):
//!
//! 1. sequential: `eth_sendRawTransaction` of an ETH transfer to a fresh
//!    address, then `eth_getTransactionReceipt` polled until non-null; 2,000;
//! 2. pipelined: 2,000 transfers sent one after another (each send's reply
//!    read, no receipt asked), then the last one's receipt polled;
//! 3. contract calls: a hand-written contract (an SSTORE to a fresh slot, a
//!    counter incremented, a LOG3; about 50.5k gas a call) deployed untimed,
//!    then 2,000 calls as in row 1;
//! 4. 10,000 transfers (10 senders) sent with `evm_setAutomine false`, then
//!    one `evm_mine`: the seconds to send and to mine;
//! 5. decay: 100,000 transfers to fresh addresses as in row 1, on nml only
//!    (`NML_BENCH_HARDHAT_DECAY=1` adds Hardhat): the rate of the first and of
//!    the last tenth, and the devnet's RSS at the end;
//! 6. client floor: two `eth_chainId` round trips per "transaction", 2,000:
//!    the ceiling of this client and the node's HTTP stack;
//! 7. memory: nml's RSS after each of 5 repeats of row 4's work between
//!    `evm_snapshot` and `evm_revert`;
//! 8. row 4's 10,000 transfers sent in JSON-RPC batches of 100 calls (how
//!    ethers v6 sends the transactions a program sends at once), then one
//!    `evm_mine`;
//! 9. a deep pool under automine: 10,000 transfers of one sender sent with
//!    `evm_setAutomine false`, then `evm_setAutomine true`, which mines them
//!    one block each: the seconds until the last is mined (nml only; the
//!    cost of a block must not grow with the transactions still pending);
//! 10. the same with 5,000 senders of one transaction each (impersonated
//!     accounts funded with `anvil_setBalance`, sending with
//!     `eth_sendTransaction`, all untimed): the cost of a block must not
//!     grow with the senders pending either;
//! 11. snapshots on a long chain: `evm_snapshot` then `evm_revert`, 100
//!     pairs, on the fresh chain and again after it grew by 50,000 transfers
//!     (sent in JSON-RPC batches, mined 1,000 a block) and 10,000 empty
//!     blocks (`evm_mine` each): the median of each call. Both answer while
//!     every other request waits, so neither may grow with the chain;
//! 12. row 10 with legacy transactions (a `gasPrice`, as a client sends
//!     when its code sets one): a legacy transaction pays its
//!     price less the base fee, below the tip it offers, so an index by the
//!     offered tip alone cannot stop early for it.
//!
//! Settings: `NML_BENCH_ROWS=1,2,6` (default: all), `NML_BENCH_SCALE=0.1`
//! (sizes × scale), `NML_BENCH_RUNS=N`, `NML_BENCH_NO_HARDHAT=1`,
//! `NML_BENCH_NO_INFERENCE=1` (start `nml devnet --no-inference`; by default
//! the devnet starts as a user starts it, with the inference precompile and
//! its mempool), `NML_BENCH_NML_BIN=path` (another `nml` binary, to compare
//! two builds run after run). Hardhat is installed on first use into
//! `<target dir>/bench-deps/hardhat`, under a file lock.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy_consensus::{SignableTransaction, TxEip1559, TypedTransaction};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256, hex, keccak256};
use alloy_signer::SignerSync;
use nml_runtime::chain::{DevAccount, dev_accounts};

/// Set in the client process: which loop to run.
const CLIENT_ENV: &str = "NML_DEVNET_BENCH_CLIENT";
const CHAIN_ID: u64 = 31337;
const GAS_LIMIT: u64 = 1_000_000_000;
const HARDHAT_VERSION: &str = "2.29.1";
/// Untimed `eth_chainId` calls before every measurement.
const WARM_UP: usize = 200;
/// Senders of row 4's batch.
const BATCH_SENDERS: usize = 10;
/// Calls per JSON-RPC batch in row 8 (ethers v6's `batchMaxCount`: how it
/// sends transactions a program sends at once).
const RPC_BATCH: usize = 100;

fn main() {
    if let Ok(mode) = std::env::var(CLIENT_ENV) {
        client(&mode);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` would run this too: only run for real.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    orchestrate();
}

// ---------------------------------------------------------------------------
// The client: a minimal HTTP/1.1 keep-alive JSON-RPC client.

/// One keep-alive connection; responses are read into one reused buffer.
struct Conn {
    addr: String,
    stream: TcpStream,
    buf: Vec<u8>,
    /// The decoded body of a chunked response.
    chunked: Vec<u8>,
    reconnects: u32,
}

/// The whole request (headers and body) of one JSON-RPC call.
fn request(addr: &str, method: &str, params: &str) -> Vec<u8> {
    post(addr, &format!(r#"{{"jsonrpc":"2.0","id":1,"method":"{method}","params":{params}}}"#))
}

/// An HTTP request posting the JSON `body`.
fn post(addr: &str, body: &str) -> Vec<u8> {
    format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One HTTP request carrying a JSON-RPC batch: an `eth_sendRawTransaction`
/// per transaction.
fn batch_request(addr: &str, txs: &[Prepared]) -> Vec<u8> {
    let calls: Vec<String> = txs
        .iter()
        .enumerate()
        .map(|(i, tx)| {
            format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"eth_sendRawTransaction","params":["{}"]}}"#, tx.raw)
        })
        .collect();
    post(addr, &format!("[{}]", calls.join(",")))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn connect(addr: &str) -> TcpStream {
    let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    stream.set_nodelay(true).expect("nodelay");
    stream
}

impl Conn {
    fn new(addr: &str) -> Self {
        Conn { addr: addr.to_owned(), stream: connect(addr), buf: vec![0; 1 << 16], chunked: Vec::new(), reconnects: 0 }
    }

    /// Sends one request and returns the response's body. A connection the
    /// server closed while idle is opened again once.
    fn call(&mut self, req: &[u8]) -> &[u8] {
        let range = match self.stream.write_all(req).ok().and_then(|()| self.read_response()) {
            Some(range) => range,
            None => {
                self.reconnects += 1;
                self.stream = connect(&self.addr);
                self.stream.write_all(req).expect("write");
                self.read_response().expect("the server closed the connection")
            }
        };
        match range {
            Some((start, end)) => &self.buf[start..end],
            None => &self.chunked,
        }
    }

    /// Reads into `buf` until it holds at least `want` bytes; false at EOF.
    fn fill(&mut self, filled: &mut usize, want: usize) -> bool {
        if self.buf.len() < want {
            self.buf.resize(want.next_power_of_two(), 0);
        }
        while *filled < want {
            match self.stream.read(&mut self.buf[*filled..]) {
                Ok(0) | Err(_) => return false,
                Ok(n) => *filled += n,
            }
        }
        true
    }

    /// One response: `Some(Some(range))` of a body with a Content-Length,
    /// `Some(None)` for a chunked body (in `chunked`), `None` when the
    /// connection was closed before any byte came.
    #[allow(clippy::option_option)]
    fn read_response(&mut self) -> Option<Option<(usize, usize)>> {
        let mut filled = 0;
        let head_end = loop {
            if let Some(i) = find(&self.buf[..filled], b"\r\n\r\n") {
                break i + 4;
            }
            if filled == self.buf.len() {
                self.buf.resize(self.buf.len() * 2, 0);
            }
            match self.stream.read(&mut self.buf[filled..]) {
                Ok(0) | Err(_) if filled == 0 => return None,
                Ok(0) | Err(_) => panic!("the server closed the connection mid-response"),
                Ok(n) => filled += n,
            }
        };
        let head = std::str::from_utf8(&self.buf[..head_end]).expect("ASCII headers").to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "HTTP error: {head}");
        assert!(!head.contains("connection: close"), "the server does not keep the connection alive: {head}");
        let header = |name: &str| {
            head.lines().find_map(|l| l.strip_prefix(name).map(|v| v.trim_start_matches(':').trim().to_owned()))
        };
        if let Some(len) = header("content-length") {
            let end = head_end + len.parse::<usize>().expect("content-length");
            assert!(self.fill(&mut filled, end), "the server closed the connection mid-body");
            assert_eq!(filled, end, "more bytes than one response");
            return Some(Some((head_end, end)));
        }
        assert!(header("transfer-encoding").is_some_and(|t| t.contains("chunked")), "no body length: {head}");
        self.chunked.clear();
        let mut pos = head_end;
        loop {
            let line_end = loop {
                if let Some(i) = find(&self.buf[pos..filled], b"\r\n") {
                    break pos + i;
                }
                let want = filled + 1;
                assert!(self.fill(&mut filled, want), "closed mid-chunk");
            };
            let size = std::str::from_utf8(&self.buf[pos..line_end]).expect("chunk size");
            let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16).expect("chunk size");
            let data = line_end + 2;
            assert!(self.fill(&mut filled, data + size + 2), "closed mid-chunk");
            if size == 0 {
                assert_eq!(filled, data + 2, "trailers or more bytes than one response");
                return Some(None);
            }
            let chunk = &self.buf[data..data + size];
            self.chunked.extend_from_slice(chunk);
            pos = data + size + 2;
        }
    }
}

/// Panics with the body when it is a JSON-RPC error.
fn check(body: &[u8]) -> &[u8] {
    if find(body, b"\"error\"").is_some() {
        panic!("JSON-RPC error: {}", String::from_utf8_lossy(body));
    }
    body
}

/// The raw text of a response's `result`.
fn result(body: &[u8]) -> &[u8] {
    let body = check(body);
    let at = find(body, b"\"result\":").map(|i| i + 9).expect("a result");
    body[at..].trim_ascii_start()
}

fn is_null(body: &[u8]) -> bool {
    result(body).starts_with(b"null")
}

/// A `0x` quantity or a string holding one.
fn quantity(text: &[u8]) -> u64 {
    let text = std::str::from_utf8(text).expect("utf-8");
    let hex = text.trim_start_matches('"').trim_start_matches("0x");
    let hex = &hex[..hex.find(|c: char| !c.is_ascii_hexdigit()).unwrap_or(hex.len())];
    u64::from_str_radix(hex, 16).unwrap_or_else(|_| panic!("not a quantity: {text}"))
}

/// A pre-signed transaction's requests.
struct Prepared {
    hash: Vec<u8>,
    /// The signed transaction, 0x-prefixed hex.
    raw: String,
    send: Vec<u8>,
    receipt: Vec<u8>,
}

fn load(path: &Path, addr: &str) -> Vec<Prepared> {
    let text = std::fs::read_to_string(path).expect("transactions");
    text.lines()
        .map(|line| {
            let (hash, raw) = line.split_once(' ').expect("hash raw");
            Prepared {
                hash: hash.as_bytes().to_vec(),
                raw: raw.to_owned(),
                send: request(addr, "eth_sendRawTransaction", &format!(r#"["{raw}"]"#)),
                receipt: request(addr, "eth_getTransactionReceipt", &format!(r#"["{hash}"]"#)),
            }
        })
        .collect()
}

/// This process's user + system CPU time.
fn cpu_time() -> Duration {
    // SAFETY: getrusage writes the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// A process's user + system CPU time so far, from /proc, seconds.
fn proc_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // SAFETY: sysconf only reads a setting.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    // utime and stime: fields 14 and 15 of stat(5), 12 and 13 after the name.
    (ticks(11) + ticks(12)) / hz
}

/// VmRSS of a process, MiB.
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let line = s.lines().find_map(|l| l.strip_prefix("VmRSS:"))?.to_owned();
            line.split_whitespace().next()?.parse::<f64>().ok()
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Sends a transaction and checks the reply is its hash.
fn send(conn: &mut Conn, tx: &Prepared) {
    let body = check(conn.call(&tx.send));
    assert!(find(body, &tx.hash).is_some(), "unexpected reply: {}", String::from_utf8_lossy(body));
}

/// Polls for a receipt until it is there; returns how many polls came back
/// null, and the receipt's gas used.
fn wait_receipt(conn: &mut Conn, tx: &Prepared) -> (u64, u64) {
    let mut nulls = 0;
    let start = Instant::now();
    loop {
        let body = conn.call(&tx.receipt);
        if !is_null(body) {
            assert!(find(body, b"\"status\":\"0x1\"").is_some(), "failed: {}", String::from_utf8_lossy(body));
            let gas = find(body, b"\"gasUsed\":").map_or(0, |i| quantity(&body[i + 10..]));
            return (nulls, gas);
        }
        nulls += 1;
        assert!(start.elapsed() < Duration::from_secs(60), "no receipt after 60 s");
    }
}

/// Client mode: runs one loop against `NML_BENCH_ADDR` and prints a
/// `RESULT key=value ...` line.
fn client(mode: &str) {
    let env = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let addr = env("NML_BENCH_ADDR");
    let pid: Option<u32> = std::env::var("NML_BENCH_NODE_PID").ok().and_then(|p| p.parse().ok());
    let txs = std::env::var("NML_BENCH_TXS").map(|p| load(Path::new(&p), &addr)).unwrap_or_default();
    let skip: usize = std::env::var("NML_BENCH_SKIP").ok().and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut conn = Conn::new(&addr);
    let mut out: Vec<(String, f64)> = Vec::new();
    // Untimed: a warm-up (Hardhat's first calls run cold JavaScript), then
    // the transactions before the measured ones (a deployment).
    let chain_id = request(&addr, "eth_chainId", "[]");
    for _ in 0..WARM_UP {
        check(conn.call(&chain_id));
    }
    for tx in &txs[..skip] {
        send(&mut conn, tx);
        wait_receipt(&mut conn, tx);
    }
    let timed = &txs[skip..];
    let node_cpu = pid.map(proc_cpu);
    let cpu = cpu_time();
    let start = Instant::now();
    match mode {
        "sequential" => {
            let segments: usize = std::env::var("NML_BENCH_SEGMENTS").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
            let per = timed.len().div_ceil(segments);
            let (mut nulls, mut mark) = (0, Instant::now());
            for (i, tx) in timed.iter().enumerate() {
                send(&mut conn, tx);
                let (n, gas) = wait_receipt(&mut conn, tx);
                nulls += n;
                if i + 1 == timed.len() {
                    out.push(("gas".into(), gas as f64));
                }
                if segments > 1 && (i + 1) % per == 0 {
                    out.push((format!("seg{}", i / per), per as f64 / mark.elapsed().as_secs_f64()));
                    mark = Instant::now();
                }
            }
            out.push(("nulls".into(), nulls as f64));
        }
        "pipelined" => {
            for tx in timed {
                send(&mut conn, tx);
            }
            let (nulls, _) = wait_receipt(&mut conn, timed.last().expect("transactions"));
            out.push(("nulls".into(), nulls as f64));
        }
        "batch" | "rpc_batch" => {
            check(conn.call(&request(&addr, "evm_setAutomine", "[false]")));
            let (mine, count) = (request(&addr, "evm_mine", "[]"), request(&addr, "eth_blockNumber", "[]"));
            let before = quantity(result(conn.call(&count)));
            // JSON-RPC batches of `RPC_BATCH` sends, built before timing.
            let batches: Vec<Vec<u8>> = if mode == "rpc_batch" {
                timed.chunks(RPC_BATCH).map(|chunk| batch_request(&addr, chunk)).collect()
            } else {
                Vec::new()
            };
            let (cpu, start) = (cpu_time(), Instant::now());
            if mode == "rpc_batch" {
                for (request, chunk) in batches.iter().zip(timed.chunks(RPC_BATCH)) {
                    let body = conn.call(request);
                    let answers = body.windows(9).filter(|w| *w == b"\"result\":").count();
                    assert!(
                        answers == chunk.len() && find(body, b"\"error\"").is_none(),
                        "unexpected reply: {}",
                        String::from_utf8_lossy(body)
                    );
                }
            } else {
                for tx in timed {
                    send(&mut conn, tx);
                }
            }
            out.push(("send".into(), start.elapsed().as_secs_f64()));
            let mined = Instant::now();
            check(conn.call(&mine));
            out.push(("mine".into(), mined.elapsed().as_secs_f64()));
            out.push(("batch_cpu".into(), (cpu_time() - cpu).as_secs_f64()));
            let block = quantity(result(conn.call(&count)));
            assert_eq!(block, before + 1, "one block");
            let in_block = request(&addr, "eth_getBlockTransactionCountByNumber", r#"["latest"]"#);
            let included = quantity(result(conn.call(&in_block)));
            assert_eq!(included, timed.len() as u64, "every transaction in the block");
            let (nulls, _) = wait_receipt(&mut conn, timed.last().expect("transactions"));
            assert_eq!(nulls, 0);
        }
        "drain" => {
            check(conn.call(&request(&addr, "evm_setAutomine", "[false]")));
            let count = request(&addr, "eth_blockNumber", "[]");
            let before = quantity(result(conn.call(&count)));
            for tx in timed {
                send(&mut conn, tx);
            }
            out.push(("drain".into(), drain(&mut conn, &addr, before + timed.len() as u64)));
            let (nulls, _) = wait_receipt(&mut conn, timed.last().expect("transactions"));
            assert_eq!(nulls, 0);
        }
        "drain_senders" | "drain_senders_legacy" => {
            let n: usize = env("NML_BENCH_N").parse().expect("N");
            check(conn.call(&request(&addr, "evm_setAutomine", "[false]")));
            let count = request(&addr, "eth_blockNumber", "[]");
            let before = quantity(result(conn.call(&count)));
            for i in 0..n {
                let sender = format!("{}", fresh(2_000_000 + i));
                let call = |method: &str, params: String| request(&addr, method, &params);
                check(conn.call(&call("anvil_setBalance", format!(r#"["{sender}","0xde0b6b3a7640000"]"#))));
                check(conn.call(&call("anvil_impersonateAccount", format!(r#"["{sender}"]"#))));
                let price = if mode == "drain_senders_legacy" { r#","gasPrice":"0xba43b7400""# } else { "" };
                let tx = format!(r#"[{{"from":"{sender}","to":"{sender}","value":"0x1","gas":"0x5208"{price}}}]"#);
                check(conn.call(&call("eth_sendTransaction", tx)));
            }
            out.push(("drain".into(), drain(&mut conn, &addr, before + n as u64)));
        }
        "floor" => {
            let n: usize = env("NML_BENCH_N").parse().expect("N");
            let req = request(&addr, "eth_chainId", "[]");
            for _ in 0..n {
                check(conn.call(&req));
                check(conn.call(&req));
            }
        }
        "memory" => {
            let pid = pid.expect("NML_BENCH_NODE_PID");
            out.push(("rss0".into(), rss_mib(pid)));
            check(conn.call(&request(&addr, "evm_setAutomine", "[false]")));
            for round in 1..=5 {
                let snapshot = conn.call(&request(&addr, "evm_snapshot", "[]"));
                let id = String::from_utf8_lossy(result(snapshot)).split('"').nth(1).expect("snapshot id").to_owned();
                for tx in timed {
                    send(&mut conn, tx);
                }
                check(conn.call(&request(&addr, "evm_mine", "[]")));
                let reverted = conn.call(&request(&addr, "evm_revert", &format!(r#"["{id}"]"#)));
                assert!(result(reverted).starts_with(b"true"), "evm_revert");
                out.push((format!("rss{round}"), rss_mib(pid)));
            }
        }
        "snapshots" => {
            let blocks: usize = env("NML_BENCH_N").parse().expect("N");
            snapshot_times(&mut conn, &addr, "fresh", &mut out);
            check(conn.call(&request(&addr, "evm_setAutomine", "[false]")));
            let mine = request(&addr, "evm_mine", "[]");
            for block in timed.chunks(1_000) {
                for chunk in block.chunks(RPC_BATCH) {
                    check(conn.call(&batch_request(&addr, chunk)));
                }
                check(conn.call(&mine));
            }
            for _ in 0..blocks {
                check(conn.call(&mine));
            }
            let (nulls, _) = wait_receipt(&mut conn, timed.last().expect("transactions"));
            assert_eq!(nulls, 0);
            snapshot_times(&mut conn, &addr, "grown", &mut out);
        }
        other => panic!("unknown client mode {other}"),
    }
    let wall = start.elapsed().as_secs_f64();
    let cpu = (cpu_time() - cpu).as_secs_f64();
    if let (Some(pid), Some(before)) = (pid, node_cpu) {
        out.push(("node_cpu".into(), proc_cpu(pid) - before));
    }
    if let Some(pid) = pid {
        out.push(("rss".into(), rss_mib(pid)));
    }
    out.push(("wall".into(), wall));
    out.push(("cpu".into(), cpu));
    out.push(("reconnects".into(), f64::from(conn.reconnects)));
    let fields: Vec<String> = out.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("RESULT {}", fields.join(" "));
}

/// Times 100 pairs of `evm_snapshot` and `evm_revert` (row 11); pushes the
/// median of each, µs, as `{label}_snapshot` and `{label}_revert`.
fn snapshot_times(conn: &mut Conn, addr: &str, label: &str, out: &mut Vec<(String, f64)>) {
    let snapshot = request(addr, "evm_snapshot", "[]");
    let (mut taken, mut reverted) = (Vec::new(), Vec::new());
    for _ in 0..100 {
        let started = Instant::now();
        let body = conn.call(&snapshot);
        taken.push(started.elapsed().as_secs_f64() * 1e6);
        let id = String::from_utf8_lossy(result(body)).split('"').nth(1).expect("snapshot id").to_owned();
        let revert = request(addr, "evm_revert", &format!(r#"["{id}"]"#));
        let started = Instant::now();
        let body = conn.call(&revert);
        reverted.push(started.elapsed().as_secs_f64() * 1e6);
        assert!(result(body).starts_with(b"true"), "evm_revert");
    }
    out.push((format!("{label}_snapshot"), median(taken)));
    out.push((format!("{label}_revert"), median(reverted)));
}

/// Turns automine on and waits for block `last`: the seconds it took to
/// mine what was pending (rows 9 and 10).
fn drain(conn: &mut Conn, addr: &str, last: u64) -> f64 {
    let count = request(addr, "eth_blockNumber", "[]");
    let started = Instant::now();
    check(conn.call(&request(addr, "evm_setAutomine", "[true]")));
    while quantity(result(conn.call(&count))) < last {}
    started.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------
// The orchestrator: transactions, nodes, runs, the table.

/// A transaction to sign.
struct Unsigned {
    sender: usize,
    nonce: u64,
    to: TxKind,
    gas: u64,
    input: Bytes,
}

/// Signs `txs` on every core; returns `(hash, raw)` hex pairs.
fn sign_all(accounts: &[DevAccount], txs: &[Unsigned]) -> Vec<(String, String)> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    let chunk = txs.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .map(|part| {
                scope.spawn(move || {
                    part.iter()
                        .map(|u| {
                            let tx: TypedTransaction = TxEip1559 {
                                chain_id: CHAIN_ID,
                                nonce: u.nonce,
                                gas_limit: u.gas,
                                max_fee_per_gas: 50_000_000_000,
                                max_priority_fee_per_gas: 1_000_000_000,
                                to: u.to,
                                value: if u.to.is_create() { U256::ZERO } else { U256::from(1) },
                                input: u.input.clone(),
                                ..Default::default()
                            }
                            .into();
                            let signer = &accounts[u.sender].signer;
                            let signature = signer.sign_hash_sync(&tx.signature_hash()).expect("sign");
                            let raw = tx.into_envelope(signature).encoded_2718();
                            (hex::encode_prefixed(keccak256(&raw)), hex::encode_prefixed(raw))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().expect("signer thread")).collect()
    })
}

/// A fresh address per index.
fn fresh(i: usize) -> Address {
    Address::from_word(keccak256((i as u64).to_be_bytes()))
}

/// The contract of row 3, any calldata: `v = calldata[4..36]`;
/// `counter = sload(0) + 1; sstore(0, counter); sstore(counter, v);
/// log3(v, Stored, counter, caller)`.
fn contract_initcode() -> Bytes {
    let topic = keccak256("Stored(uint256,address,uint256)");
    let mut code = vec![
        0x60, 0x00, 0x54, // SLOAD(0)
        0x60, 0x01, 0x01, // + 1
        0x80, 0x60, 0x00, 0x55, // SSTORE(0, counter)
        0x60, 0x04, 0x35, // CALLDATALOAD(4)
        0x81, 0x55, // SSTORE(counter, v)
        0x60, 0x04, 0x35, 0x60, 0x00, 0x52, // MSTORE(0, v)
        0x33, 0x90, // CALLER, SWAP1: [caller, counter]
        0x7f, // PUSH32 topic
    ];
    code.extend_from_slice(topic.as_slice());
    code.extend_from_slice(&[0x60, 0x20, 0x60, 0x00, 0xa3, 0x00]); // LOG3(0, 32, topic, counter, caller); STOP
    let len = u8::try_from(code.len()).expect("short runtime code");
    // CODECOPY(0, 11, len); RETURN(0, len)
    let mut init = vec![0x60, len, 0x80, 0x60, 0x0b, 0x60, 0x00, 0x39, 0x60, 0x00, 0xf3];
    init.extend_from_slice(&code);
    init.into()
}

fn write_txs(dir: &Path, name: &str, txs: &[(String, String)]) -> PathBuf {
    let path = dir.join(format!("{name}.txt"));
    let mut text = String::with_capacity(txs.len() * 400);
    for (hash, raw) in txs {
        text.push_str(hash);
        text.push(' ');
        text.push_str(raw);
        text.push('\n');
    }
    std::fs::write(&path, text).expect("write transactions");
    path
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum NodeKind {
    Nml,
    Hardhat,
}

impl NodeKind {
    fn name(self) -> &'static str {
        match self {
            NodeKind::Nml => "nml",
            NodeKind::Hardhat => "hardhat",
        }
    }
}

struct Node {
    child: Child,
    addr: String,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout until a line with `needle` (then keeps draining it).
fn wait_for_line(child: &mut Child, needle: &str) -> String {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(600);
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

struct Settings {
    rows: Vec<u32>,
    scale: f64,
    runs: usize,
    hardhat: Option<PathBuf>,
    hardhat_decay: bool,
    inference: bool,
}

impl Settings {
    fn size(&self, base: usize) -> usize {
        ((base as f64 * self.scale).round() as usize).max(10)
    }

    fn start(&self, kind: NodeKind) -> Node {
        match kind {
            NodeKind::Nml => {
                let bin = std::env::var_os("NML_BENCH_NML_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_nml").into());
                let mut command = Command::new(bin);
                command.args(["devnet", "--port", "0", "--gas-limit", &GAS_LIMIT.to_string()]);
                if !self.inference {
                    command.arg("--no-inference");
                }
                let mut child = command.stdout(Stdio::piped()).spawn().expect("nml devnet");
                let line = wait_for_line(&mut child, "Listening on ");
                let addr = line.split_whitespace().nth(2).expect("an address").to_owned();
                Node { child, addr }
            }
            NodeKind::Hardhat => {
                let dir = self.hardhat.as_ref().expect("hardhat");
                let port = std::net::TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .expect("a free port");
                let mut child = Command::new(dir.join("node_modules/.bin/hardhat"))
                    .args(["node", "--hostname", "127.0.0.1", "--port", &port.to_string()])
                    .current_dir(dir)
                    .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
                    .stdout(Stdio::piped())
                    .spawn()
                    .expect("hardhat node");
                wait_for_line(&mut child, "Started HTTP");
                Node { child, addr: format!("127.0.0.1:{port}") }
            }
        }
    }
}

fn hardhat_dir() -> Option<PathBuf> {
    if std::env::var_os("NML_BENCH_NO_HARDHAT").is_some() {
        return None;
    }
    // target/release/deps/devnet-xxxx
    let exe = std::env::current_exe().expect("own path");
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("bench-deps/hardhat");
    std::fs::create_dir_all(&dir).expect("bench-deps");
    // One install at a time (parallel benches share the cache).
    let lock = std::fs::File::create(dir.join(".lock")).expect("lock file");
    lock.lock().expect("lock");
    let installed = std::fs::read_to_string(dir.join("node_modules/hardhat/package.json"))
        .is_ok_and(|p| p.contains(&format!("\"version\": \"{HARDHAT_VERSION}\"")));
    if !installed {
        eprintln!("installing hardhat@{HARDHAT_VERSION} into {} ...", dir.display());
        let ok = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(&dir)
            .arg(format!("hardhat@{HARDHAT_VERSION}"))
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("npm install hardhat failed: measuring nml alone");
            return None;
        }
    }
    // `hardhat node` logs every call unless the config's `loggingEnabled` is false.
    std::fs::write(
        dir.join("hardhat.config.js"),
        format!(
            "module.exports = {{ networks: {{ hardhat: {{ chainId: {CHAIN_ID}, blockGasLimit: {GAS_LIMIT}, \
             initialBaseFeePerGas: 1000000000, loggingEnabled: false, mining: {{ auto: true }} }} }} }};\n"
        ),
    )
    .expect("hardhat.config.js");
    Some(dir)
}

/// One measured row.
struct Row {
    id: u32,
    title: String,
    mode: &'static str,
    txs: Option<PathBuf>,
    /// Untimed leading transactions.
    skip: usize,
    /// Timed transactions (or round-trip pairs).
    n: usize,
    segments: usize,
    nodes: Vec<NodeKind>,
}

type Run = HashMap<String, f64>;

/// Runs the client once against a fresh node.
fn run_once(settings: &Settings, row: &Row, kind: NodeKind) -> Run {
    let node = settings.start(kind);
    let mut command = Command::new(std::env::current_exe().expect("own path"));
    command
        .env(CLIENT_ENV, row.mode)
        .env("NML_BENCH_ADDR", &node.addr)
        .env("NML_BENCH_SKIP", row.skip.to_string())
        .env("NML_BENCH_N", row.n.to_string())
        .env("NML_BENCH_SEGMENTS", row.segments.to_string())
        .env("NML_BENCH_NODE_PID", node.child.id().to_string());
    if let Some(txs) = &row.txs {
        command.env("NML_BENCH_TXS", txs);
    }
    let output = command.stderr(Stdio::inherit()).output().expect("client");
    assert!(output.status.success(), "the client failed on {} (row {})", kind.name(), row.id);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("a RESULT line");
    let run: Run = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.parse().unwrap_or(f64::NAN)))
        .collect();
    eprintln!("  row {} {:>7}: {line}", row.id, kind.name());
    run
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.retain(|x| !x.is_nan());
    xs.sort_by(f64::total_cmp);
    xs.get(xs.len() / 2).copied().unwrap_or(f64::NAN)
}

/// The median of one figure over runs.
fn med(runs: &[Run], f: impl Fn(&Run) -> f64) -> f64 {
    median(runs.iter().map(f).collect())
}

fn get(run: &Run, key: &str) -> f64 {
    run.get(key).copied().unwrap_or(f64::NAN)
}

fn orchestrate() {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let mut settings = Settings {
        rows: var("NML_BENCH_ROWS")
            .map(|r| r.split(',').filter_map(|x| x.trim().parse().ok()).collect())
            .unwrap_or_else(|| (1..=12).collect()),
        scale: var("NML_BENCH_SCALE").and_then(|s| s.parse().ok()).unwrap_or(1.0),
        runs: var("NML_BENCH_RUNS").and_then(|s| s.parse().ok()).unwrap_or(3),
        hardhat: None,
        hardhat_decay: var("NML_BENCH_HARDHAT_DECAY").is_some(),
        inference: var("NML_BENCH_NO_INFERENCE").is_none(),
    };
    settings.hardhat = hardhat_dir();
    let want = |row: u32| settings.rows.contains(&row);

    let dir = tempfile::tempdir().expect("temp dir");
    let accounts = dev_accounts(BATCH_SENDERS);
    let (n_snapshot_txs, n_snapshot_blocks) = (settings.size(50_000) / 1_000 * 1_000, settings.size(10_000));
    let (n_seq, n_pipe, n_call, n_batch, n_decay, n_floor, n_drain, n_senders) = (
        settings.size(2_000),
        settings.size(2_000),
        settings.size(2_000),
        settings.size(10_000) / BATCH_SENDERS * BATCH_SENDERS,
        settings.size(100_000) / 10 * 10,
        settings.size(2_000),
        settings.size(10_000),
        settings.size(5_000),
    );
    eprintln!("pre-signing transactions ...");
    let signing = Instant::now();
    let n_transfers = [(1, n_seq), (2, n_pipe), (5, n_decay), (9, n_drain), (11, n_snapshot_txs)]
        .iter()
        .filter(|(r, _)| want(*r))
        .map(|p| p.1)
        .max();
    let transfers = n_transfers.map(|n| {
        let txs: Vec<Unsigned> = (0..n)
            .map(|i| Unsigned {
                sender: 0,
                nonce: i as u64,
                to: TxKind::Call(fresh(i)),
                gas: 21_000,
                input: Bytes::new(),
            })
            .collect();
        sign_all(&accounts, &txs)
    });
    let transfers_file = |n: usize, name: &str| {
        let txs = transfers.as_ref().expect("transfers");
        write_txs(dir.path(), name, &txs[..n])
    };
    let calls = want(3).then(|| {
        let contract = accounts[0].address.create(0);
        let mut txs =
            vec![Unsigned { sender: 0, nonce: 0, to: TxKind::Create, gas: 200_000, input: contract_initcode() }];
        txs.extend((0..n_call).map(|i| {
            let mut input = vec![0xc2, 0x98, 0x55, 0x78];
            input.extend_from_slice(keccak256((i as u64).to_be_bytes()).as_slice());
            Unsigned { sender: 0, nonce: i as u64 + 1, to: TxKind::Call(contract), gas: 100_000, input: input.into() }
        }));
        write_txs(dir.path(), "calls", &sign_all(&accounts, &txs))
    });
    let batch = (want(4) || want(7) || want(8)).then(|| {
        let per = n_batch / BATCH_SENDERS;
        let txs: Vec<Unsigned> = (0..per)
            .flat_map(|nonce| {
                (0..BATCH_SENDERS).map(move |sender| Unsigned {
                    sender,
                    nonce: nonce as u64,
                    to: TxKind::Call(fresh(1_000_000 + nonce * BATCH_SENDERS + sender)),
                    gas: 21_000,
                    input: Bytes::new(),
                })
            })
            .collect();
        write_txs(dir.path(), "batch", &sign_all(&accounts, &txs))
    });
    eprintln!("signed in {:.1} s", signing.elapsed().as_secs_f64());

    let both: Vec<NodeKind> =
        if settings.hardhat.is_some() { vec![NodeKind::Nml, NodeKind::Hardhat] } else { vec![NodeKind::Nml] };
    let mut rows = Vec::new();
    let row = |id, title: String, mode, txs, skip, n, segments, nodes: &[NodeKind]| Row {
        id,
        title,
        mode,
        txs,
        skip,
        n,
        segments,
        nodes: nodes.to_vec(),
    };
    if want(6) {
        rows.push(row(
            6,
            format!("client floor: 2 × `eth_chainId` per tx ({n_floor})"),
            "floor",
            None,
            0,
            n_floor,
            1,
            &both,
        ));
    }
    if want(1) {
        let txs = Some(transfers_file(n_seq, "sequential"));
        rows.push(row(
            1,
            format!("sequential transfers, send + receipt ({n_seq})"),
            "sequential",
            txs,
            0,
            n_seq,
            1,
            &both,
        ));
    }
    if want(2) {
        let txs = Some(transfers_file(n_pipe, "pipelined"));
        rows.push(row(
            2,
            format!("pipelined transfers, then last receipt ({n_pipe})"),
            "pipelined",
            txs,
            0,
            n_pipe,
            1,
            &both,
        ));
    }
    if want(3) {
        rows.push(row(
            3,
            format!("contract calls, send + receipt ({n_call})"),
            "sequential",
            calls,
            1,
            n_call,
            1,
            &both,
        ));
    }
    if want(4) {
        rows.push(row(
            4,
            format!("automine off: send {n_batch}, then `evm_mine`"),
            "batch",
            batch.clone(),
            0,
            n_batch,
            1,
            &both,
        ));
    }
    if want(8) {
        rows.push(row(
            8,
            format!("automine off: send {n_batch} in JSON-RPC batches of {RPC_BATCH}, then `evm_mine`"),
            "rpc_batch",
            batch.clone(),
            0,
            n_batch,
            1,
            &both,
        ));
    }
    if want(5) {
        let txs = Some(transfers_file(n_decay, "decay"));
        let nodes = if settings.hardhat_decay { both.clone() } else { vec![NodeKind::Nml] };
        rows.push(row(5, format!("decay: {n_decay} sequential transfers"), "sequential", txs, 0, n_decay, 10, &nodes));
    }
    if want(9) {
        let txs = Some(transfers_file(n_drain, "drain"));
        let title =
            format!("a deep pool under automine: {n_drain} transfers of one sender, then `evm_setAutomine true`");
        rows.push(row(9, title, "drain", txs, 0, n_drain, 1, &[NodeKind::Nml]));
    }
    if want(10) {
        let title = format!("a deep pool of {n_senders} senders under automine, one transaction each");
        rows.push(row(10, title, "drain_senders", None, 0, n_senders, 1, &[NodeKind::Nml]));
    }
    if want(12) {
        let title = format!("a deep pool of {n_senders} senders under automine, one legacy transaction each");
        rows.push(row(12, title, "drain_senders_legacy", None, 0, n_senders, 1, &[NodeKind::Nml]));
    }
    if want(11) {
        let txs = Some(transfers_file(n_snapshot_txs, "snapshots"));
        let title = format!(
            "`evm_snapshot` + `evm_revert` on a fresh chain, then after {n_snapshot_txs} transfers and \
             {n_snapshot_blocks} empty blocks"
        );
        rows.push(row(11, title, "snapshots", txs, 0, n_snapshot_blocks, 1, &both));
    }
    if want(7) {
        let title = format!("memory: 5 × ({n_batch} txs + `evm_revert`)");
        rows.push(row(7, title, "memory", batch, 0, n_batch, 1, &[NodeKind::Nml]));
    }

    let mut results: HashMap<(u32, NodeKind), Vec<Run>> = HashMap::new();
    for row in &rows {
        eprintln!("row {}: {}", row.id, row.title);
        for _ in 0..settings.runs {
            // Nodes alternate, so that both see the same noise of the machine.
            for &kind in &row.nodes {
                let run = run_once(&settings, row, kind);
                results.entry((row.id, kind)).or_default().push(run);
            }
        }
    }
    report(&settings, &rows, &results);
}

fn report(settings: &Settings, rows: &[Row], results: &HashMap<(u32, NodeKind), Vec<Run>>) {
    let runs = |id: u32, kind: NodeKind| results.get(&(id, kind)).map(Vec::as_slice).unwrap_or(&[]);
    let rate = |id: u32, kind: NodeKind, n: usize| med(runs(id, kind), |r| n as f64 / get(r, "wall"));
    let per_tx = |id: u32, kind: NodeKind, key: &str, n: usize| med(runs(id, kind), |r| get(r, key) / n as f64 * 1e6);
    let floor = rows.iter().find(|r| r.id == 6).map(|r| rate(6, NodeKind::Nml, r.n));
    let fmt = |x: f64, unit: &str| if x.is_nan() { "–".to_owned() } else { format!("{x:.0}{unit}") };
    let pair = |hh: f64, nml: f64, unit: &str| format!("{} / {}", fmt(hh, unit), fmt(nml, unit));
    let times = |x: f64, digits: usize| if x.is_nan() { "–".to_owned() } else { format!("{x:.digits$}×") };
    let mut out = String::new();
    out += &format!(
        "\nnml devnet{} vs hardhat {HARDHAT_VERSION}; median of {} runs, each on a fresh node; scale {}\n\n",
        if settings.inference { "" } else { " --no-inference" },
        settings.runs,
        settings.scale
    );
    out += "| row | Hardhat | nml | nml / Hardhat | client CPU per tx (Hardhat / nml) | node CPU per tx (Hardhat / nml) | nml / floor |\n";
    out += "| --- | --- | --- | --- | --- | --- | --- |\n";
    for row in rows.iter().filter(|r| matches!(r.id, 1..=4 | 6 | 8)) {
        let (hh, nml) = (NodeKind::Hardhat, NodeKind::Nml);
        let key = if matches!(row.id, 4 | 8) { "batch_cpu" } else { "cpu" };
        let cpu = pair(per_tx(row.id, hh, key, row.n), per_tx(row.id, nml, key, row.n), " µs");
        let node_cpu = pair(per_tx(row.id, hh, "node_cpu", row.n), per_tx(row.id, nml, "node_cpu", row.n), " µs");
        if matches!(row.id, 4 | 8) {
            let part = |kind, key: &str| med(runs(row.id, kind), |r| get(r, key));
            let total = |kind| med(runs(row.id, kind), |r| get(r, "send") + get(r, "mine"));
            let cell = |kind| {
                if runs(row.id, kind).is_empty() {
                    "–".to_owned()
                } else {
                    format!("{:.2} s + {:.3} s", part(kind, "send"), part(kind, "mine"))
                }
            };
            // The floor's rate, two round trips per transaction, against
            // this row's: send and mine.
            let floor_ratio = floor.map(|f| format!("{:.2}", row.n as f64 / total(nml) / f)).unwrap_or_default();
            out += &format!(
                "| {}. {} (send s + mine s) | {} | {} | {} faster (mine {}) | {cpu} | {node_cpu} | {floor_ratio} |\n",
                row.id,
                row.title,
                cell(hh),
                cell(nml),
                times(total(hh) / total(nml), 1),
                times(part(hh, "mine") / part(nml, "mine"), 0),
            );
            continue;
        }
        let (rh, rn) = (rate(row.id, hh, row.n), rate(row.id, nml, row.n));
        let floor_ratio = match (row.id, floor) {
            (1..=3, Some(f)) => format!("{:.2}", rn / f),
            _ => String::new(),
        };
        out += &format!(
            "| {}. {} | {} | {} | {} | {cpu} | {node_cpu} | {floor_ratio} |\n",
            row.id,
            row.title,
            fmt(rh, " tx/s"),
            fmt(rn, " tx/s"),
            times(rn / rh, 1)
        );
    }
    for row in rows.iter().filter(|r| r.id == 5) {
        for &kind in &row.nodes {
            let r = runs(5, kind);
            let first = med(r, |r| get(r, "seg0"));
            let last = med(r, |r| get(r, "seg9"));
            let ratio = med(r, |r| get(r, "seg9") / get(r, "seg0"));
            let all: Vec<String> = (0..10).map(|s| format!("{:.0}", med(r, |r| get(r, &format!("seg{s}"))))).collect();
            out += &format!(
                "\n5. {} on {}: first tenth {first:.0} tx/s, last tenth {last:.0} tx/s, last / first {ratio:.2} \
                 (target ≥ 0.9); whole run {:.0} tx/s; client CPU {:.0} µs/tx, node CPU {:.0} µs/tx\n   \
                 tenths: {} tx/s\n",
                row.title,
                kind.name(),
                rate(5, kind, row.n),
                per_tx(5, kind, "cpu", row.n),
                per_tx(5, kind, "node_cpu", row.n),
                all.join(", ")
            );
            if kind == NodeKind::Nml {
                out += &format!("   nml RSS after {} transactions: {:.0} MiB\n", row.n, med(r, |r| get(r, "rss")));
            }
        }
    }
    for row in rows.iter().filter(|r| r.id == 7) {
        let r = runs(7, NodeKind::Nml);
        let rss: Vec<String> = (0..=5).map(|i| format!("{:.0}", med(r, |r| get(r, &format!("rss{i}"))))).collect();
        out += &format!("\n7. {}: nml RSS at start, then after each repeat: {} MiB\n", row.title, rss.join(", "));
    }
    for row in rows.iter().filter(|r| matches!(r.id, 9 | 10 | 12)) {
        let drain = med(runs(row.id, NodeKind::Nml), |r| get(r, "drain"));
        let per_block = drain / row.n as f64 * 1e6;
        out += &format!("\n{}. {}: mined in {drain:.3} s, {per_block:.0} µs a block\n", row.id, row.title);
    }
    for row in rows.iter().filter(|r| r.id == 11) {
        out += &format!("\n11. {}, medians of 100 pairs (µs):\n\n", row.title);
        out += "| node | snapshot, fresh | revert, fresh | snapshot, grown | revert, grown |\n| --- | --- | --- | --- | --- |\n";
        for &kind in &row.nodes {
            let r = runs(11, kind);
            let cell = |key: &str| fmt(med(r, |r| get(r, key)), "");
            out += &format!(
                "| {} | {} | {} | {} | {} |\n",
                kind.name(),
                cell("fresh_snapshot"),
                cell("fresh_revert"),
                cell("grown_snapshot"),
                cell("grown_revert")
            );
        }
    }
    if rows.iter().any(|r| r.id == 3) {
        let gas = med(runs(3, NodeKind::Nml), |r| get(r, "gas"));
        out += &format!("\nrow 3: gas used by one call {gas:.0}\n");
    }
    let nulls: f64 = results.values().flatten().map(|r| r.get("nulls").copied().unwrap_or(0.0)).sum();
    let reconnects: f64 = results.values().flatten().map(|r| get(r, "reconnects")).sum();
    out += &format!("receipt polls that came back null: {nulls:.0}; reconnections: {reconnects:.0}\n");
    println!("{out}");
}
