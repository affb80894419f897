//! The miner: block building off the request path.
//!
//! A devnet's mutable part ([`Inner`]: chain, pool, filters…) sits behind one
//! lock that every request takes briefly. Building a block never holds it:
//! the builder takes the head (a cheap view of the state, the next block's
//! environment and the ready transactions) under the lock, builds the block
//! without it, and appends it under the lock again — unless the chain was
//! edited meanwhile (an `anvil_set*`, a revert, a load: the `epoch` moved),
//! in which case it builds again on the new head. One block is built at a
//! time (the `building` lock).
//!
//! Under automine, sending a transaction only adds it to the pool and asks
//! the miner thread for a pass; the answer goes back at once. A request that
//! reads the chain first waits for the passes asked for so far ([`Engine::settle`]),
//! so a client that sends and then reads sees its transaction mined — unless
//! the transaction met an inference request that is still running: it then
//! stays pending, the read answers at once, and the miner includes the
//! transaction when the pre-execution stage wakes it with the result. The
//! same holds for transactions queued behind a block that waits for its
//! models (`evm_mine` of a transaction whose inference runs): reads do not
//! wait for that block either.
//!
//! The miner thread waits for work awake while the node is busy (after a
//! pass, and after every request a client makes: [`Engine::keep_awake`]) and
//! asleep once it has been quiet for [`MINER_SPIN`].
//!
//! A build that panics (a bug of nml's: in an inspector, a precompile, the
//! stage) is caught where the block is built ([`Engine::build_block`]): the
//! transaction that causes it is found and dropped from the pool with the
//! panic's message, whoever waits for its receipt stops waiting, and the
//! block is built from the others (see [`culprit`] for the rule).

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, Instant};

use alloy_primitives::map::HashMap;
use alloy_primitives::{Address, B256};
use parking_lot::{Condvar, Mutex, MutexGuard};
use tokio::sync::broadcast;

use super::{Inner, NodeError};
use crate::chain::{BlockBody, ChainError, MAX_RESERVED, PoolTx, SealedBlock};
use crate::evm::{EvmSetup, ExecOptions, InspectorFactory, PrecompileFactory};
use crate::mempool::{BlockBuilder, Built, Head, InferenceWait, PreExecution};

/// The most blocks one automine pass builds (a pass ends when the pool has
/// nothing ready left; this only bounds a stage that keeps deferring).
const MAX_BLOCKS_PER_PASS: usize = 1 << 20;

/// The least gas a transaction uses: the intrinsic cost of a transfer.
const MIN_TX_GAS: u64 = 21_000;

/// How many blocks' worth [`Batch::All`] takes from the pool.
///
/// A block of gas limit `g` holds at most `g / MIN_TX_GAS` transactions.
/// Twice as many are taken, for those a block is handed and does not
/// include: deferred (a sender whose transaction did not fit, a stage that
/// undoes one) or dropped (invalid at inclusion). What is not taken stays
/// in the pool for the next block.
///
/// A bound on the sum of the gas limits (twice the block's, say) would take
/// fewer, but the builder charges what a transaction used, not its limit,
/// and clients send fixed limits of millions for calls that use tens of
/// thousands: 100 transfers with limits of 5,000,000 fit one block of
/// 30,000,000, and such a bound would take 12.
const BATCH_SLACK: u64 = 2;

/// How long [`Engine::settle`] spins before it sleeps.
const SETTLE_SPIN: Duration = Duration::from_micros(50);

/// How long the miner thread stays awake after a pass or a client's
/// request, watching for the next one, before it sleeps.
///
/// Putting a thread to sleep and waking it costs more than a one-transaction
/// pass on a virtual machine: the futex, and a halted virtual CPU brought
/// back by an interrupt. A client that sends in a loop (send, receipt, send)
/// asks for its next pass 100–200 µs after the last one ended, so staying
/// awake that long turns each wake-up into a load of an atomic: on the
/// 2-core development VM it took sequential transfers from about 3,700 to
/// 5,500–7,000 transactions a second (docs/benchmarks.md). Staying awake
/// after any request does the same for requests that ask for no pass (with
/// mining off, reads): a core kept out of its halted state answers the
/// next packet sooner. The thread yields its core while it waits, so a
/// thread with work runs first, and an idle devnet sleeps after at most
/// this long.
const MINER_SPIN: Duration = Duration::from_micros(500);

/// How many dropped transactions [`Dropped`] keeps the reason of.
pub(super) const MAX_DROPPED: usize = 4096;

/// Which ready transactions a block is built from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Batch {
    /// The ready transactions in block order, up to twice as many as a
    /// block can hold ([`BATCH_SLACK`]): `evm_mine`, interval mining,
    /// shutdown.
    All,
    /// The first ready transaction the stage does not hold back (automine:
    /// a block per transaction, as Hardhat and anvil mine).
    First,
}

/// What [`Engine::build_block`] did.
#[derive(Debug)]
pub(super) enum Mined {
    /// A block was appended.
    Block(Arc<SealedBlock>),
    /// Nothing was ready.
    NothingReady,
    /// Transactions were ready, but none was included (deferred or dropped).
    NoneIncluded,
}
/// Why transactions left the pool without being mined (refused at
/// inclusion, or nml hit an internal error executing them): the latest
/// [`MAX_DROPPED`], so that whoever waited for one can say why it never came.
#[derive(Debug, Default)]
pub(super) struct Dropped {
    reasons: HashMap<B256, String>,
    /// The hashes of `reasons`, oldest first.
    order: VecDeque<B256>,
}

impl Dropped {
    /// Keeps why `hash` was dropped, forgetting the oldest past the bound.
    fn record(&mut self, hash: B256, why: String) {
        if self.reasons.insert(hash, why).is_none() {
            self.order.push_back(hash);
        }
        while self.order.len() > MAX_DROPPED {
            if let Some(oldest) = self.order.pop_front() {
                self.reasons.remove(&oldest);
            }
        }
    }

    /// Why `hash` was dropped, if it was lately.
    pub(super) fn reason(&self, hash: &B256) -> Option<&str> {
        self.reasons.get(hash).map(String::as_str)
    }
}

/// What the miner thread is asked to do.
#[derive(Debug, Default)]
struct Work {
    /// Automine passes asked for (one per transaction that became ready).
    asked: u64,
    /// Passes asked for up to this count are done.
    done: u64,
    /// A stage result arrived: pending transactions may be includable now.
    woken: bool,
    /// The interval miner asks for a block.
    interval_block: bool,
    /// The thread should end.
    exit: bool,
}

/// Everything block building needs, shared by the devnet and its miner thread.
#[derive(Debug)]
pub(super) struct Engine {
    pub(super) inner: Mutex<Inner>,
    /// Held while a block is built and appended: one block at a time (and
    /// while system calls run: [`super::Devnet::run_system_calls`]).
    pub(super) building: Mutex<()>,
    /// Signalled (with `inner`) whenever a block is appended or a
    /// transaction dropped: what a receipt's waiter waits for.
    pub(super) appended: Condvar,
    pub(super) blocks: broadcast::Sender<Arc<SealedBlock>>,
    pub(super) pending_txs: broadcast::Sender<B256>,
    pub(super) precompiles: Arc<dyn PrecompileFactory>,
    pub(super) inspectors: OnceLock<Arc<dyn InspectorFactory>>,
    pub(super) stage: Arc<dyn PreExecution>,
    work: Mutex<Work>,
    /// `work.asked` and `work.done`, readable without the lock (written with it).
    asked: AtomicU64,
    done: AtomicU64,
    /// Counts the requests made of the miner thread, and the node's
    /// requests that keep it awake ([`Engine::keep_awake`]), so that it can
    /// watch for one without the lock.
    signals: AtomicU64,
    /// The miner thread sleeps on `wake` (set with `work`'s lock held).
    sleeping: AtomicBool,
    /// Builds in progress that wait for their models (`evm_mine`,
    /// `anvil_mine`, shutdown): an automine pass asked meanwhile waits
    /// behind them, and a read does not wait for it ([`Engine::settle`]).
    waiting_builds: AtomicUsize,
    /// A test double: [`MinerThread::start`] fails, as when the system
    /// refuses a thread.
    #[cfg(test)]
    pub(super) refuse_thread: AtomicBool,
    /// Wakes the miner thread.
    wake: Condvar,
    /// Signalled when passes are done.
    settled: Condvar,
}

impl Engine {
    pub(super) fn new(inner: Inner, precompiles: Arc<dyn PrecompileFactory>, stage: Arc<dyn PreExecution>) -> Self {
        let (blocks, _) = broadcast::channel(1024);
        let (pending_txs, _) = broadcast::channel(4096);
        Self {
            inner: Mutex::new(inner),
            building: Mutex::new(()),
            appended: Condvar::new(),
            blocks,
            pending_txs,
            precompiles,
            inspectors: OnceLock::new(),
            stage,
            work: Mutex::new(Work::default()),
            asked: AtomicU64::new(0),
            done: AtomicU64::new(0),
            signals: AtomicU64::new(0),
            sleeping: AtomicBool::new(false),
            waiting_builds: AtomicUsize::new(0),
            #[cfg(test)]
            refuse_thread: AtomicBool::new(false),
            wake: Condvar::new(),
            settled: Condvar::new(),
        }
    }

    pub(super) fn evm_setup(&self) -> EvmSetup<'_> {
        EvmSetup { precompiles: &*self.precompiles, inspectors: self.inspectors.get().map(|i| &**i) }
    }

    /// Whether any transaction is executable.
    pub(super) fn any_ready(inner: &Inner) -> bool {
        inner.pool.best(inner.chain.next_base_fee(), |_| false).is_some()
    }

    /// The executable transactions, in block order: as many as [`Batch::All`]
    /// takes, or the first of them ([`Batch::First`]). Read under the
    /// devnet's lock, so what they cost is bounded by the block, not by the
    /// pool.
    ///
    /// A transaction the stage holds back (its inference runs) is passed
    /// over with its sender's later ones, and takes no room, unless the
    /// block waits for inference: then the stage waits for it.
    fn batch(&self, inner: &Inner, batch: Batch, wait: InferenceWait) -> Vec<Arc<PoolTx>> {
        let base_fee = inner.chain.next_base_fee();
        let held = |tx: &PoolTx| wait == InferenceWait::Defer && self.stage.holds(&tx.hash);
        match batch {
            Batch::All => {
                let fits = inner.chain.config().gas_limit / MIN_TX_GAS;
                let take = usize::try_from(fits.saturating_mul(BATCH_SLACK).max(1)).unwrap_or(usize::MAX);
                inner.pool.ready(base_fee, held).take(take).collect()
            }
            Batch::First => inner.pool.best(base_fee, held).into_iter().collect(),
        }
    }

    /// Builds one block from the ready transactions and appends it.
    ///
    /// With `seal_empty` false, nothing is appended when no transaction could
    /// be included (all deferred or dropped); `timestamp` pins the block's
    /// time. The devnet's lock is held only to take the head and to append.
    ///
    /// A build that panics appends nothing: the transaction that makes it
    /// panic ([`culprit`]) is dropped with the panic's message, and the block
    /// is built again from what is ready then. Only a panic with no
    /// transaction to blame (an empty block's) fails the call.
    pub(super) fn build_block(
        &self,
        wait: InferenceWait,
        batch: Batch,
        seal_empty: bool,
        timestamp: Option<u64>,
    ) -> Result<Mined, NodeError> {
        let _waiting = (wait == InferenceWait::Wait).then(|| WaitingBuild::start(self));
        let _building = self.building.lock();
        let _block = tracing::trace_span!("block").entered();
        let mut timestamp = timestamp;
        loop {
            let (epoch, head, txs) = {
                let mut inner = self.inner.lock();
                if let Some(ts) = timestamp.take() {
                    inner.chain.set_next_timestamp(ts)?;
                    inner.epoch += 1;
                }
                let txs = self.batch(&inner, batch, wait);
                if txs.is_empty() && !seal_empty {
                    return Ok(Mined::NothingReady);
                }
                let chain = &inner.chain;
                let next = chain.pending_block();
                // After a block at the bound, no next one: a timestamp past
                // it would make a chain that no dump of it loads.
                if next.timestamp > MAX_RESERVED {
                    return Err(ChainError::TimestampTooHigh(next.timestamp).into());
                }
                let head = Head { view: chain.latest(), next, options: ExecOptions::for_chain(chain.config(), false) };
                (inner.epoch, head, txs)
            };
            let builder = BlockBuilder { evm: self.evm_setup(), stage: &*self.stage };
            let built = match attempt(&builder, &head, txs.clone(), wait) {
                Ok(built) => built,
                Err(panic) if txs.is_empty() => {
                    tracing::error!(panic, "nml hit an internal error building an empty block");
                    return Err(NodeError::Failed(format!("nml hit an internal error building a block: {panic}")));
                }
                Err(panic) => {
                    let (tx, panic) = culprit(&builder, &head, &txs, wait, panic);
                    drop(head);
                    tracing::error!(
                        hash = %tx.hash,
                        panic,
                        "nml hit an internal error executing a transaction; it is dropped from the pool"
                    );
                    let mut inner = self.inner.lock();
                    inner.pool.remove(&tx.hash);
                    inner.dropped.record(tx.hash, format!("nml hit an internal error executing it: {panic}"));
                    drop(inner);
                    self.appended.notify_all();
                    continue;
                }
            };
            // The view must go before the append, or committing copies the state.
            let crate::mempool::Head { next, view, .. } = head;
            drop(view);
            // Hashed before the lock: reads wait only for the state's commit.
            let body = BlockBody::new(built.transactions, built.receipts);
            let mut inner = self.inner.lock();
            if inner.epoch != epoch {
                // Edited meanwhile: what was built stands on an old head.
                continue;
            }
            let dropped_any = !built.dropped.is_empty();
            for (hash, why) in built.dropped {
                tracing::debug!(%hash, why, "transaction dropped at inclusion");
                inner.pool.remove(&hash);
                inner.dropped.record(hash, why);
            }
            if body.is_empty() && !seal_empty {
                drop(inner);
                if dropped_any {
                    // Their receipts' waiters stop waiting.
                    self.appended.notify_all();
                }
                return Ok(Mined::NoneIncluded);
            }
            inner.chain.clear_pinned_timestamp();
            // Whose nonces the block can have moved: the accounts it touched.
            let touched: Vec<Address> = built.changes.keys().copied().collect();
            let append = tracing::trace_span!("append").entered();
            let block = inner.chain.append(&next, body, built.changes);
            drop(append);
            for tx in &block.transactions {
                inner.pool.remove(&tx.hash);
            }
            let view = inner.chain.latest();
            inner.pool.prune_senders(&touched, |a| view.pool_nonce(*a));
            drop(view);
            drop(inner);
            self.appended.notify_all();
            // Nobody listening is fine.
            let _ = self.blocks.send(block.clone());
            return Ok(Mined::Block(block));
        }
    }

    /// Builds a block per ready transaction while there are some (automine).
    fn mine_ready(&self) {
        for _ in 0..MAX_BLOCKS_PER_PASS {
            match self.build_block(InferenceWait::Defer, Batch::First, false, None) {
                Ok(Mined::Block(_) | Mined::NoneIncluded) => {}
                Ok(Mined::NothingReady) => return,
                Err(e) => {
                    tracing::error!(%e, "the miner could not build a block");
                    return;
                }
            }
        }
    }

    /// Asks the miner thread for something: `ask` edits its work list.
    fn signal(&self, ask: impl FnOnce(&mut Work)) {
        let mut work = self.work.lock();
        ask(&mut work);
        self.signals.fetch_add(1, Ordering::SeqCst);
        drop(work);
        self.wake.notify_one();
    }

    /// Keeps the miner thread awake for [`MINER_SPIN`] more: the node had a
    /// request, and the next one (or the pass it asks for) is likely near.
    /// A load and an increment while the thread is awake.
    pub(super) fn keep_awake(&self) {
        self.signals.fetch_add(1, Ordering::SeqCst);
        // The thread sets `sleeping` before it reads `signals` for the last
        // time, under the lock it sleeps with: either it sees this increment,
        // or this sees it asleep and wakes it.
        if self.sleeping.load(Ordering::SeqCst) {
            let _work = self.work.lock();
            self.wake.notify_one();
        }
    }

    /// Asks the miner thread for an automine pass.
    pub(super) fn ask_pass(&self) {
        self.signal(|work| {
            work.asked += 1;
            self.asked.store(work.asked, Ordering::Release);
        });
    }

    /// Asks the miner thread for one block (interval mining).
    pub(super) fn ask_interval_block(&self) {
        self.signal(|work| work.interval_block = true);
    }

    /// Wakes the miner: a stage result arrived.
    pub(super) fn wake(&self) {
        self.signal(|work| work.woken = true);
    }

    /// Whether [`Engine::settle`] would return at once.
    pub(super) fn is_settled(&self) -> bool {
        self.done.load(Ordering::Acquire) >= self.asked.load(Ordering::Acquire)
            || self.waiting_builds.load(Ordering::SeqCst) > 0
    }

    /// Waits until the passes asked for so far are done: every transaction
    /// sent before is mined, or pending on inference.
    ///
    /// A pass for one transaction takes tens of microseconds, about what it
    /// costs to put a thread to sleep and wake it again, so the wait spins
    /// for up to [`SETTLE_SPIN`] before it sleeps. While a build waits for
    /// its models (an `evm_mine` of a transaction whose inference runs), the
    /// passes queued behind it wait as long: a read then answers at once,
    /// with their transactions still pending, as it does for a transaction
    /// whose own inference runs.
    pub(super) fn settle(&self) {
        let asked = self.asked.load(Ordering::Acquire);
        if self.done.load(Ordering::Acquire) >= asked {
            return;
        }
        let started = Instant::now();
        while started.elapsed() < SETTLE_SPIN {
            std::hint::spin_loop();
            if self.done.load(Ordering::Acquire) >= asked {
                return;
            }
        }
        let mut work = self.work.lock();
        while work.done < asked && !work.exit && self.waiting_builds.load(Ordering::SeqCst) == 0 {
            self.settled.wait(&mut work);
        }
    }

    /// Waits until a block is appended or `timeout` passes, with the lock held.
    pub(super) fn wait_appended(&self, inner: &mut MutexGuard<'_, Inner>, timeout: Duration) {
        self.appended.wait_for(inner, timeout);
    }

    /// Whether [`Engine::stop`] was called: no miner thread runs again.
    pub(super) fn is_stopped(&self) -> bool {
        self.work.lock().exit
    }

    /// Ends the miner thread after the pass it is in.
    pub(super) fn stop(&self) {
        self.signal(|work| work.exit = true);
        self.wake.notify_all();
        self.settled.notify_all();
    }

    /// Waits awake, yielding the core, for up to [`MINER_SPIN`] while no
    /// signal came after the `seen`th; returns the signals counted then.
    fn spin_for_signal(&self, seen: u64) -> u64 {
        let started = Instant::now();
        loop {
            let now = self.signals.load(Ordering::SeqCst);
            if now != seen || started.elapsed() >= MINER_SPIN {
                return now;
            }
            // Any other thread ready on this core runs first.
            std::thread::yield_now();
        }
    }

    /// Waits for work: awake while signals keep coming (requests of the
    /// node, [`Engine::keep_awake`]), asleep once none came for
    /// [`MINER_SPIN`]. Returns the passes asked for and whether an interval
    /// block is, or `None` when the thread should end.
    fn next_work(&self, seen: &mut u64) -> Option<(u64, bool)> {
        loop {
            let signals = self.spin_for_signal(*seen);
            let mut work = self.work.lock();
            let quiet = signals == *seen;
            *seen = signals;
            if work.exit {
                return None;
            }
            if work.done != work.asked || work.woken || work.interval_block {
                work.woken = false;
                return Some((work.asked, std::mem::take(&mut work.interval_block)));
            }
            if quiet {
                self.sleeping.store(true, Ordering::SeqCst);
                // Sleeps until any signal: work, or a request to stay awake.
                while self.signals.load(Ordering::SeqCst) == *seen {
                    self.wake.wait(&mut work);
                }
                self.sleeping.store(false, Ordering::SeqCst);
            }
        }
    }

    /// One pass: automine's blocks (when it is on), then an interval block
    /// if one is asked for. A panic is caught: the node goes on.
    pub(super) fn pass(&self, interval_block: bool) {
        let automine = self.inner.lock().automine;
        let pass = AssertUnwindSafe(|| {
            if automine {
                self.mine_ready();
            }
            if interval_block && let Err(e) = self.build_block(InferenceWait::Defer, Batch::All, true, None) {
                tracing::error!(%e, "the interval miner could not build a block");
            }
        });
        if let Err(payload) = catch_unwind(pass) {
            let panic = panic_message(&*payload);
            tracing::error!(panic, "the miner panicked; it goes on with the next pass");
        }
    }

    /// [`Engine::pass`], unless a block is being built now.
    pub(super) fn pass_if_idle(&self) {
        if self.building.try_lock().is_some() {
            self.pass(false);
        }
    }

    /// The miner thread's loop.
    fn run(&self) {
        // Any request made before the thread started ends the first wait at once.
        let mut seen = 0;
        loop {
            let Some((asked, interval_block)) = self.next_work(&mut seen) else { return };
            // A panic in a pass must not leave readers waiting for it.
            self.pass(interval_block);
            let mut work = self.work.lock();
            work.done = work.done.max(asked);
            self.done.store(work.done, Ordering::Release);
            drop(work);
            self.settled.notify_all();
        }
    }
}

/// Builds `txs` on `head`, catching a panic: its message.
fn attempt(
    builder: &BlockBuilder<'_>,
    head: &Head,
    txs: Vec<Arc<PoolTx>>,
    wait: InferenceWait,
) -> Result<Built, String> {
    catch_unwind(AssertUnwindSafe(|| builder.build(head, txs, wait))).map_err(|payload| panic_message(&*payload))
}

/// The transaction of `txs` (not empty) that makes a build on `head` panic,
/// and the message of the panic it causes; `panic` is the message of the
/// build of all of them, which panicked.
///
/// The rule: the culprit is the last transaction of the shortest prefix of
/// the batch whose build panics, found by bisection (the prefix without it
/// built, the prefix with it panicked). Each try builds a prefix on the same
/// head and throws the block away, as a build across an edit of the chain
/// is thrown away; a batch of one (automine's) needs no try, and one of `n`
/// about log2(n). The rule blames the transaction that turns a good build
/// into a panic whether the panic comes from it alone or from it after the
/// ones before it, which then stay in the pool and are mined. A panic that
/// does not come again the same way may blame the wrong transaction, but
/// costs one at most: each panic drops one transaction, so a batch that
/// panics is never retried for ever.
fn culprit(
    builder: &BlockBuilder<'_>,
    head: &Head,
    txs: &[Arc<PoolTx>],
    wait: InferenceWait,
    panic: String,
) -> (Arc<PoolTx>, String) {
    // The prefix of `built` transactions built; that of `panicked` panicked.
    let (mut built, mut panicked, mut panic) = (0, txs.len(), panic);
    while panicked - built > 1 {
        let mid = built + (panicked - built) / 2;
        match attempt(builder, head, txs[..mid].to_vec(), wait) {
            Ok(_) => built = mid,
            Err(message) => (panicked, panic) = (mid, message),
        }
    }
    (Arc::clone(&txs[panicked - 1]), panic)
}

/// What a panic said: its message, when it has one.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(message), _) => (*message).to_owned(),
        (None, Some(message)) => message.clone(),
        (None, None) => "a panic without a message".to_owned(),
    }
}

/// A build that waits for its models, counted in [`Engine::waiting_builds`]
/// from its start to its end (a failure or a panic included).
struct WaitingBuild<'a>(&'a Engine);

impl<'a> WaitingBuild<'a> {
    fn start(engine: &'a Engine) -> Self {
        engine.waiting_builds.fetch_add(1, Ordering::SeqCst);
        // Under `work`'s lock: a read that saw no such build before it
        // slept is woken, and looks again.
        let _work = engine.work.lock();
        engine.settled.notify_all();
        Self(engine)
    }
}

impl Drop for WaitingBuild<'_> {
    fn drop(&mut self) {
        self.0.waiting_builds.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The miner thread of one devnet; stopping it (or dropping it) lets the
/// pass in progress finish.
#[derive(Debug)]
pub(super) struct MinerThread {
    engine: Arc<Engine>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl MinerThread {
    /// Starts the miner thread, and installs its waker into the stage.
    pub(super) fn start(engine: &Arc<Engine>) -> std::io::Result<Self> {
        let weak: Weak<Engine> = Arc::downgrade(engine);
        engine.stage.set_waker(Arc::new(move || {
            if let Some(engine) = weak.upgrade() {
                engine.wake();
            }
        }));
        #[cfg(test)]
        if engine.refuse_thread.load(Ordering::SeqCst) {
            return Err(std::io::Error::other("a test double refused the thread"));
        }
        let runner = Arc::clone(engine);
        let handle = std::thread::Builder::new().name("nml-miner".into()).spawn(move || runner.run())?;
        Ok(Self { engine: Arc::clone(engine), handle: Some(handle) })
    }
}

impl Drop for MinerThread {
    fn drop(&mut self) {
        self.engine.stop();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_primitives::U256;
    use alloy_primitives::map::HashSet;
    use alloy_rpc_types_eth::TransactionRequest;

    use super::*;
    use crate::Mining;
    use crate::chain::ChainConfig;
    use crate::evm::EthereumPrecompiles;
    use crate::mempool::{NoPreExecution, Prepared, StageContext};
    use crate::node::{Devnet, DevnetConfig};

    /// A devnet that mines on request, with blocks of `gas_limit` and `stage`.
    fn devnet(gas_limit: u64, stage: Arc<dyn PreExecution>) -> Devnet {
        let config = DevnetConfig {
            chain: ChainConfig { gas_limit, ..ChainConfig::default() },
            mining: Mining::Manual,
            ..DevnetConfig::default()
        };
        Devnet::with_extensions(config, Arc::new(EthereumPrecompiles), stage).unwrap()
    }

    /// Sends `per_account` transfers with gas limit `gas` from each dev
    /// account, a nonce of each account after another; their hashes in order.
    fn send_transfers(devnet: &Devnet, per_account: usize, gas: u64) -> Vec<B256> {
        let accounts = devnet.accounts();
        let mut hashes = Vec::new();
        for _ in 0..per_account {
            for from in &accounts {
                let request = TransactionRequest::default()
                    .from(*from)
                    .to(Address::repeat_byte(0xee))
                    .value(U256::from(1))
                    .gas_limit(gas)
                    .max_fee_per_gas(100_000_000_000)
                    .max_priority_fee_per_gas(1_000_000_000);
                hashes.push(devnet.send_transaction(request).unwrap());
            }
        }
        hashes
    }

    fn batch(devnet: &Devnet, wait: InferenceWait) -> Vec<Arc<PoolTx>> {
        let inner = devnet.engine.inner.lock();
        devnet.engine.batch(&inner, Batch::All, wait)
    }

    #[test]
    fn a_block_of_the_whole_pool_takes_twice_what_fits_and_leaves_the_rest() {
        // Blocks of 10 transfers, and 50 in the pool.
        let devnet = devnet(210_000, Arc::new(NoPreExecution));
        let sent = send_transfers(&devnet, 5, 21_000);
        assert_eq!(batch(&devnet, InferenceWait::Wait).len(), 20);
        let mut mined = Vec::new();
        for _ in 0..5 {
            let block = devnet.mine(None).unwrap();
            assert_eq!(block.transactions.len(), 10);
            mined.extend(block.transactions.iter().map(|tx| tx.hash));
        }
        // Every transaction, each sender's in nonce order (as sent).
        assert_eq!(mined, sent);
        assert!(devnet.pool_content().pending.is_empty());
    }

    #[test]
    fn the_reasons_of_drops_are_kept_for_the_latest_only() {
        let mut dropped = Dropped::default();
        let hash = |n: usize| B256::left_padding_from(&n.to_be_bytes());
        for n in 0..=MAX_DROPPED {
            dropped.record(hash(n), format!("reason {n}"));
        }
        // Dropped again, the first does not count twice.
        dropped.record(hash(1), "again".into());
        assert_eq!((dropped.reasons.len(), dropped.order.len()), (MAX_DROPPED, MAX_DROPPED));
        assert_eq!(dropped.reason(&hash(0)), None);
        assert_eq!(dropped.reason(&hash(1)), Some("again"));
        assert_eq!(dropped.reason(&hash(MAX_DROPPED)), Some(format!("reason {MAX_DROPPED}").as_str()));
    }

    #[test]
    fn a_block_of_the_whole_pool_takes_every_transaction_that_fits_whatever_its_gas_limit() {
        // 100 transfers with limits of 5,000,000 fit a block of 30,000,000:
        // the builder charges what each used.
        let devnet = devnet(30_000_000, Arc::new(NoPreExecution));
        send_transfers(&devnet, 10, 5_000_000);
        assert_eq!(devnet.mine(None).unwrap().transactions.len(), 100);
    }

    /// A stage that includes its batch whole and holds back `held`.
    #[derive(Debug, Default)]
    struct Holding {
        held: parking_lot::Mutex<HashSet<B256>>,
    }

    impl PreExecution for Holding {
        fn prepare(&self, _ctx: &StageContext<'_>, batch: Vec<Arc<PoolTx>>) -> Prepared {
            Prepared { include: batch, ..Prepared::default() }
        }

        fn holds(&self, tx: &B256) -> bool {
            self.held.lock().contains(tx)
        }
    }

    #[test]
    fn transactions_held_back_take_no_room_unless_the_block_waits_for_them() {
        // Room for 20; 30 sent, and the first nonces of five senders held
        // back (their inference runs): what those senders sent waits.
        let stage = Arc::new(Holding::default());
        let devnet = devnet(210_000, stage.clone());
        let sent = send_transfers(&devnet, 3, 21_000);
        stage.held.lock().extend(&sent[..5]);
        let taken: Vec<B256> = batch(&devnet, InferenceWait::Defer).iter().map(|tx| tx.hash).collect();
        let others: Vec<B256> = sent.chunks(10).flat_map(|round| round[5..].to_vec()).collect();
        assert_eq!(taken, others);
        // A block that waits for inference (`evm_mine`) takes them in order.
        let waiting: Vec<B256> = batch(&devnet, InferenceWait::Wait).iter().map(|tx| tx.hash).collect();
        assert_eq!(waiting, sent[..20]);
    }
}
