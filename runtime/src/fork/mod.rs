//! Fork mode's remote state: the accounts, codes, storage slots and block
//! hashes of a remote chain at one block, read lazily over JSON-RPC the first
//! time the devnet needs them, kept in memory and in a disk cache per chain
//! and block ([`cache`]), and never written. The chain lays its own state
//! over this one (`chain::StateDb`), so everything the devnet executes runs
//! locally: the remote only answers reads. What the remote chain holds
//! whole and the devnet does not (its blocks, transactions, receipts and
//! logs up to the fork block, its state before it) is read by forwarding
//! the request ([`ForkSource::forward`]); `node::remote` decides which.
//!
//! Every read of the remote ends within [`READ_TIMEOUT`], its retries
//! included, and runs on a thread of its own that the caller waits on: a
//! remote that takes the connection and never answers costs a read its
//! time limit, and a devnet that stops ([`ForkSource::close`]) waits on no
//! read at all.

mod cache;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use alloy_consensus::Header;
use alloy_primitives::map::HashMap;
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use parking_lot::{Condvar, Mutex};
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use self::cache::DiskCache;
use crate::rpc_client::{self as client, Retry, RpcError};

/// The time one read of the remote may take in all, its retries and the
/// waits between them included (5 attempts, waiting 0.25, 0.5, 1 and 2 s
/// between them while time is left); then it fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// What to fork.
#[derive(Debug, Clone)]
pub struct ForkConfig {
    /// The remote chain's JSON-RPC URL.
    pub url: String,
    /// The block to fork at; the remote's latest when `None`.
    pub block: Option<u64>,
    /// The chain id the remote must report; any when `None`.
    pub expected_chain_id: Option<u64>,
    /// The root of the disk cache (`<root>/<chain id>/<block>-<hash>.jsonl`);
    /// no disk cache when `None`.
    pub cache_dir: Option<PathBuf>,
    /// How reads are tried again after a transient failure (an unreachable
    /// or slow remote, a rate limit, a server error), and the time each
    /// read may take in all ([`Retry::within`]).
    pub retry: Retry,
}

impl ForkConfig {
    /// Forks `url` at its latest block, with the default retries and no disk cache.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            block: None,
            expected_chain_id: None,
            cache_dir: None,
            retry: Retry { attempts: 5, first_wait: Duration::from_millis(250), within: Some(READ_TIMEOUT) },
        }
    }
}

/// Why the remote state could not be read.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ForkError {
    /// A JSON-RPC call to the remote failed (after its retries).
    #[error("fork: {method} on {url} failed: {source}")]
    Rpc {
        /// The remote's URL.
        url: String,
        /// The method.
        method: &'static str,
        /// Why.
        source: RpcError,
    },
    /// Reading an account (its balance, nonce and code, in one batch) failed
    /// as a whole (after its retries).
    #[error("fork: reading account {address} from {url} failed: {source}")]
    Account {
        /// The remote's URL.
        url: String,
        /// The account.
        address: Address,
        /// Why (boxed: it would make every fork error larger).
        source: Box<RpcError>,
    },
    /// The source was closed (the devnet is stopping) while a read waited
    /// on the remote, or before it began.
    #[error("fork: {what} on {url} was abandoned: the devnet is stopping")]
    Closed {
        /// The remote's URL.
        url: String,
        /// What was being read: a method, or an account.
        what: String,
    },
    /// The remote answered something that is not what the method returns.
    #[error("fork: {method} on {url} answered {answer}, which is not {expected}")]
    BadAnswer {
        /// The remote's URL.
        url: String,
        /// The method.
        method: &'static str,
        /// What it answered (abridged).
        answer: String,
        /// What was expected.
        expected: &'static str,
    },
    /// The remote is not the chain it was expected to be.
    #[error("fork: {url} reports chain id {actual}, but chain id {expected} was expected; refusing to fork it")]
    WrongChain {
        /// The remote's URL.
        url: String,
        /// The chain id expected.
        expected: u64,
        /// The chain id it reported.
        actual: u64,
    },
    /// The fork block is past the remote's head.
    #[error("fork: {url} has no block {block} yet (its latest is {latest})")]
    NoSuchBlock {
        /// The remote's URL.
        url: String,
        /// The block asked for.
        block: u64,
        /// The remote's latest block.
        latest: u64,
    },
}

impl revm::database_interface::DBErrorMarker for ForkError {}

/// An account as the remote holds it at the fork block.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForkAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// keccak256 of its code ([`KECCAK_EMPTY`] for none).
    pub code_hash: B256,
}

/// What was read from the remote so far.
#[derive(Debug, Default)]
struct Known {
    /// `None`: the account does not exist there.
    accounts: HashMap<Address, Option<ForkAccount>>,
    codes: HashMap<B256, Bytecode>,
    slots: HashMap<(Address, U256), U256>,
    hashes: HashMap<u64, B256>,
}

/// What reads wait on: their answer, or the source being closed.
#[derive(Debug, Default)]
struct Waiting {
    closed: Mutex<bool>,
    /// Notified when a read's answer arrives and when the source closes.
    wake: Condvar,
}

/// The remote state at the fork block: read on first use, then served from
/// memory (and, across runs, from the disk cache). Shared by every state
/// laid over it; reads may come from any thread and block on the network.
#[derive(Debug)]
pub struct ForkSource {
    url: String,
    chain_id: u64,
    header: Header,
    hash: B256,
    retry: Retry,
    known: Mutex<Known>,
    disk: Option<DiskCache>,
    requests: AtomicU64,
    /// Whether account reads go in one batch (until the remote refuses one).
    batches: AtomicBool,
    waiting: Arc<Waiting>,
}

impl ForkSource {
    /// Connects to the remote: reads its chain id (refusing one other than
    /// the expected), the fork block's header, and the disk cache of that
    /// chain and block when there is one.
    pub fn connect(config: &ForkConfig) -> Result<Arc<Self>, ForkError> {
        let mut source = Self {
            url: config.url.clone(),
            chain_id: 0,
            header: Header::default(),
            hash: B256::ZERO,
            retry: config.retry,
            known: Mutex::default(),
            disk: None,
            requests: AtomicU64::new(0),
            batches: AtomicBool::new(true),
            waiting: Arc::default(),
        };
        source.chain_id = source.quantity("eth_chainId", source.request("eth_chainId", json!([]))?)?;
        if let Some(expected) = config.expected_chain_id
            && expected != source.chain_id
        {
            return Err(ForkError::WrongChain { url: config.url.clone(), expected, actual: source.chain_id });
        }
        let latest = source.quantity("eth_blockNumber", source.request("eth_blockNumber", json!([]))?)?;
        let number = config.block.unwrap_or(latest);
        if number > latest {
            return Err(ForkError::NoSuchBlock { url: config.url.clone(), block: number, latest });
        }
        let block = source.request("eth_getBlockByNumber", json!([format!("{number:#x}"), false]))?;
        let rpc: alloy_rpc_types_eth::Header = serde_json::from_value(block.clone())
            .map_err(|_| source.bad_answer("eth_getBlockByNumber", &block, "a block header"))?;
        if rpc.inner.number != number {
            return Err(source.bad_answer("eth_getBlockByNumber", &block, "the block asked for"));
        }
        source.hash = rpc.hash;
        source.header = rpc.inner;
        if let Some(root) = &config.cache_dir {
            let path = root.join(source.chain_id.to_string()).join(format!("{number}-{}.jsonl", source.hash));
            match DiskCache::open(&path, number, source.hash) {
                Ok((disk, entries)) => {
                    let mut known = source.known.lock();
                    for entry in entries {
                        entry.learn(&mut known);
                    }
                    drop(known);
                    source.disk = Some(disk);
                }
                Err(e) => tracing::warn!(path = %path.display(), %e, "fork: no disk cache"),
            }
        }
        Ok(Arc::new(source))
    }

    /// The remote's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The remote's chain id.
    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The fork block's header, as the remote reported it.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The fork block's hash, as the remote reported it.
    pub fn hash(&self) -> B256 {
        self.hash
    }

    /// The fork block's number.
    pub fn number(&self) -> u64 {
        self.header.number
    }

    /// How many requests this source has sent to the remote (a batch is one).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The account at `address` at the fork block; `None` if it does not exist there.
    pub fn account(&self, address: Address) -> Result<Option<ForkAccount>, ForkError> {
        if let Some(known) = self.known.lock().accounts.get(&address) {
            return Ok(*known);
        }
        let at = self.block_tag();
        let [balance, nonce, code] = self.read_account(
            address,
            [
                ("eth_getBalance", json!([address, at])),
                ("eth_getTransactionCount", json!([address, at])),
                ("eth_getCode", json!([address, at])),
            ],
        )?;
        let balance = self.u256("eth_getBalance", balance)?;
        let nonce = self.quantity("eth_getTransactionCount", nonce)?;
        let code = self.bytes("eth_getCode", code)?;
        let code_hash = if code.is_empty() { KECCAK_EMPTY } else { keccak256(&code) };
        let exists = !balance.is_zero() || nonce != 0 || !code.is_empty();
        let account = exists.then_some(ForkAccount { balance, nonce, code_hash });
        if !code.is_empty() {
            self.remember(cache::Entry::Code { hash: code_hash, code: code.clone() });
        }
        self.remember(cache::Entry::Account { address, account });
        Ok(account)
    }

    /// The code with hash `hash`, if an account read so far holds it.
    pub fn code(&self, hash: &B256) -> Option<Bytecode> {
        self.known.lock().codes.get(hash).cloned()
    }

    /// Storage slot `slot` of `address` at the fork block.
    pub fn storage(&self, address: Address, slot: U256) -> Result<U256, ForkError> {
        if let Some(value) = self.known.lock().slots.get(&(address, slot)) {
            return Ok(*value);
        }
        let value =
            self.u256("eth_getStorageAt", self.request("eth_getStorageAt", json!([address, slot, self.block_tag()]))?)?;
        self.remember(cache::Entry::Slot { address, slot, value });
        Ok(value)
    }

    /// The hash of block `number`, at or before the fork block.
    pub fn block_hash(&self, number: u64) -> Result<B256, ForkError> {
        if number == self.number() {
            return Ok(self.hash);
        }
        if number > self.number() {
            return Ok(B256::ZERO);
        }
        if let Some(hash) = self.known.lock().hashes.get(&number) {
            return Ok(*hash);
        }
        let block = self.request("eth_getBlockByNumber", json!([format!("{number:#x}"), false]))?;
        let hash = block
            .get("hash")
            .and_then(|h| serde_json::from_value::<B256>(h.clone()).ok())
            .ok_or_else(|| self.bad_answer("eth_getBlockByNumber", &block, "a block with a hash"))?;
        self.remember(cache::Entry::Hash { number, hash });
        Ok(hash)
    }

    /// Sends `method` with `params` to the remote and answers its result
    /// as it is: a read the remote answers whole, not state laid under the
    /// devnet's (a block, a transaction, logs, state at an earlier block).
    /// Nothing is cached; the read is counted in [`ForkSource::requests`],
    /// tried again, bounded and abandoned at [`ForkSource::close`] as every
    /// other read.
    pub fn forward(&self, method: &'static str, params: Value) -> Result<Value, ForkError> {
        self.request(method, params)
    }

    /// Closes the source for the devnet's shutdown: every read that waits
    /// on the remote, and every later one, fails at once with
    /// [`ForkError::Closed`]; what was read stays readable.
    pub fn close(&self) {
        *self.waiting.closed.lock() = true;
        self.waiting.wake.notify_all();
    }

    fn block_tag(&self) -> String {
        format!("{:#x}", self.number())
    }

    /// Keeps what was read, in memory and on disk.
    fn remember(&self, entry: cache::Entry) {
        if let Some(disk) = &self.disk {
            disk.append(&entry);
        }
        entry.learn(&mut self.known.lock());
    }

    fn request(&self, method: &'static str, params: Value) -> Result<Value, ForkError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (url, retry) = (self.url.clone(), self.retry);
        let answer = self.on_own_thread(method, move || {
            client::call_with_retries(&url, method, &params, retry, |e, wait| {
                tracing::warn!(%url, method, %e, "fork: trying again in {:.1} s", wait.as_secs_f64());
            })
        })?;
        answer.map_err(|source| {
            tracing::warn!(url = %self.url, method, %source, "fork: remote read failed");
            ForkError::Rpc { url: self.url.clone(), method, source }
        })
    }

    /// The answers of the three calls that read an account: in one batch,
    /// or one by one from a remote that refuses batches.
    fn read_account(&self, address: Address, calls: [(&'static str, Value); 3]) -> Result<[Value; 3], ForkError> {
        if self.batches.load(Ordering::Relaxed) {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let (url, retry, batch) = (self.url.clone(), self.retry, calls.clone());
            let answers = self.on_own_thread(&format!("the read of account {address}"), move || {
                client::batch_with_retries(&url, &batch, retry, |e, wait| {
                    tracing::warn!(%url, %e, "fork: account read: trying again in {:.1} s", wait.as_secs_f64());
                })
            })?;
            match answers {
                Ok(answers) => {
                    let mut out = [Value::Null, Value::Null, Value::Null];
                    for ((slot, answer), (method, _)) in out.iter_mut().zip(answers).zip(&calls) {
                        *slot = answer.map_err(|source| ForkError::Rpc { url: self.url.clone(), method, source })?;
                    }
                    return Ok(out);
                }
                // A node that answers a batch with an error, an HTTP error
                // that will not pass, or no batch answer does not do batches.
                Err(e) if !e.is_transient() => {
                    tracing::info!(url = %self.url, %e, "fork: the remote refuses batches; reading accounts call by call");
                    self.batches.store(false, Ordering::Relaxed);
                }
                Err(source) => {
                    tracing::warn!(url = %self.url, %address, %source, "fork: remote read failed");
                    return Err(ForkError::Account { url: self.url.clone(), address, source: Box::new(source) });
                }
            }
        }
        let [(m0, p0), (m1, p1), (m2, p2)] = calls;
        Ok([self.request(m0, p0)?, self.request(m1, p1)?, self.request(m2, p2)?])
    }

    /// Runs `read` on a thread of its own and waits for its answer, or for
    /// the source to close: a read stuck on the remote then holds only its
    /// thread (until its time is spent), never the caller.
    fn on_own_thread<T: Send + 'static>(
        &self,
        what: &str,
        read: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ForkError> {
        let closed = || ForkError::Closed { url: self.url.clone(), what: what.to_owned() };
        if *self.waiting.closed.lock() {
            return Err(closed());
        }
        let answer = Arc::new(Mutex::new(None));
        let (slot, waiting) = (Arc::clone(&answer), Arc::clone(&self.waiting));
        std::thread::spawn(move || {
            *slot.lock() = Some(read());
            // Taken after the answer is in, so that a waiter who found no
            // answer is already waiting when this wakes it.
            let _closed = waiting.closed.lock();
            waiting.wake.notify_all();
        });
        let mut closed_now = self.waiting.closed.lock();
        loop {
            if let Some(answer) = answer.lock().take() {
                return Ok(answer);
            }
            if *closed_now {
                return Err(closed());
            }
            self.waiting.wake.wait(&mut closed_now);
        }
    }

    /// The error for an `answer` of `method` that is not what was `expected`.
    pub(crate) fn bad_answer(&self, method: &'static str, answer: &Value, expected: &'static str) -> ForkError {
        let answer: String = answer.to_string().chars().take(120).collect();
        ForkError::BadAnswer { url: self.url.clone(), method, answer, expected }
    }

    fn u256(&self, method: &'static str, answer: Value) -> Result<U256, ForkError> {
        serde_json::from_value(answer.clone()).map_err(|_| self.bad_answer(method, &answer, "a 256-bit quantity"))
    }

    fn quantity(&self, method: &'static str, answer: Value) -> Result<u64, ForkError> {
        answer
            .as_str()
            .and_then(|s| s.strip_prefix("0x"))
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .ok_or_else(|| self.bad_answer(method, &answer, "a 64-bit quantity"))
    }

    fn bytes(&self, method: &'static str, answer: Value) -> Result<Bytes, ForkError> {
        serde_json::from_value(answer.clone()).map_err(|_| self.bad_answer(method, &answer, "hex bytes"))
    }
}
