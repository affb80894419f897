//! PIPE, the inference mempool (PROTOCOL.md part B): the inference precompile
//! at 0x…F4 and the pre-execution stage that shares its state.
//!
//! The rooms, each using only the ones before it (and [`Pipe`]): `gas`, what
//! a request costs; `memo`, the hashes of arguments met lately; `store`, the
//! results by request id and the claims on running ones; `precompile`, the
//! precompile sets the EVMs run and what a simulation met; `stage`, the
//! pre-execution stage (simulation, dispatch, inclusion). This file holds
//! [`Pipe`] and how it answers a request in each [`Phase`].
//!
//! How a block with inference is built:
//!
//! 1. **Simulation rounds** (B1). Every pending transaction that can run code
//!    is simulated on its own against the head state, as the chain's mempool
//!    simulates a transaction when it arrives. The precompile answers a request
//!    whose result is known and records every other one, answering it with the
//!    empty simulation output (`is_simulation_result = true`).
//! 2. **Dispatch** (B2, B3). The unknown requests of all transactions of the
//!    round, deduplicated by request id (`keccak256` of the ABI-encoded
//!    request), run side by side on the [`Executor`]. The transactions that met
//!    unknown requests are simulated again with the results served, so a
//!    second inference that depends on the first is found in round two; this
//!    repeats up to [`PipeConfig::round_limit`] rounds. A transaction that still
//!    meets new requests after the last round is included, and those requests
//!    revert with a reason naming the limit.
//! 3. **Inclusion** (B4). The block builder executes the transactions in order;
//!    the precompile serves results by request id with
//!    `is_simulation_result = false`. A request that was not pre-executed (an
//!    earlier transaction of the block changed what this one asks) is run
//!    inline ([`OnMiss::Inline`], the default), or the transaction is undone and
//!    deferred to the next block ([`OnMiss::Defer`], at most
//!    [`PipeConfig::max_defers`] times, then inline). Each call is recorded on
//!    the transaction's receipt ([`InferenceRecord`]): request id, model, mode,
//!    input hash, output, the round that found it and how it was served.
//! 4. **Failures** (B5). A failed inference (unknown model, bad tensors, a
//!    runtime error, the timeout) is a result like any other: the precompile
//!    reverts with its readable reason, in simulation and at inclusion alike, so
//!    `try/catch` takes the same path in both.
//! 5. **Records** (B6). Results are kept by request id; a replay
//!    ([`Phase::Replay`]: tracing) and a reloaded chain serve the recorded
//!    answers and never run a model.
//! 6. **Read-only calls** (B7). `eth_call` and `eth_estimateGas` run unknown
//!    requests synchronously and serve known ones.
//!
//! Known results are shared by every phase: identical requests run once, in
//! whatever phase first meets them.
//!
//! Under automine and interval mining a block does not wait for dispatch:
//! a transaction that meets unknown requests stays pending while they run
//! in the background, and the stage wakes the miner when they are done (its
//! rounds are counted across blocks). `evm_mine` waits for them.

mod gas;
mod memo;
mod precompile;
mod request;
mod stage;
mod store;
#[cfg(test)]
mod tests;

use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use alloy_primitives::{B256, Bytes};
use alloy_sol_types::SolCall;
use parking_lot::Mutex;
use revm::interpreter::InterpreterResult;
use serde::Serialize;

use crate::chain::{InferenceRecord, Served};
use crate::evm::console::ConsoleSink;
use crate::evm::{Phase, PrecompileFactory};
use crate::inference::abi::{runLLMChatCall, runLLMCompletionCall, runModelInferenceCall};
use crate::inference::history::{self, PriceFeed, PriceHistoryCall};
use crate::inference::{Executor, ModelId, ModelInferenceRequest};
use crate::llm::{LlmBackend, LlmRequest, answer_all};
use crate::tee::{Attestation, Enclaves};

pub use gas::{GAS_BASE, GAS_PER_ELEMENT, GAS_PER_TEXT_BYTE, llm_gas, request_gas};
pub use precompile::{INFERENCE_PRECOMPILE, PRICE_HISTORY_PRECOMPILE};
pub(crate) use store::revert_reason;

use precompile::Met;
use precompile::{InferencePrecompiles, out_of_gas, result};
use request::Request;
use store::{Answer, Claim, Claims, Known, Run, Shared, unavailable};

/// The precompile's answer to one call.
struct Response {
    result: InterpreterResult,
    /// The request id, when the calldata was its canonical encoding (it
    /// hashed to a known id as it is): the served event can then be spliced
    /// from the calldata instead of decoded and encoded again.
    canonical: Option<B256>,
}

impl Response {
    /// An answer that decoded the calldata (or could not).
    fn slow(result: InterpreterResult) -> Self {
        Self { result, canonical: None }
    }
}

/// What the block builder does with a request met at inclusion that was not
/// pre-executed (PROTOCOL.md B4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum OnMiss {
    /// Run it inline, during inclusion.
    #[default]
    Inline,
    /// Undo the transaction and include it in a later block, after it has been
    /// simulated again on the new state.
    Defer,
}

/// How the inference mempool works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PipeConfig {
    /// The most rounds of dispatch for one block (default 8): a transaction
    /// that still meets new requests after them fails those requests.
    pub round_limit: u32,
    /// What to do with a request that was not pre-executed.
    pub on_miss: OnMiss,
    /// How often one transaction may be deferred before its misses run
    /// inline (default 3), so that a transaction whose requests change every
    /// block is still mined.
    pub max_defers: u32,
    /// How many LLM calls a round sends to the backends at once (default 8).
    pub llm_concurrency: usize,
    /// The most results kept by request id for reuse (default 16,384):
    /// past it the oldest are forgotten, and a request met again runs
    /// again. Without a bound, `eth_call`s with new inputs alone would grow
    /// the node without end. What mined transactions were served stays for
    /// replays whatever the bound.
    pub known_limit: usize,
}

impl Default for PipeConfig {
    fn default() -> Self {
        Self { round_limit: 8, on_miss: OnMiss::Inline, max_defers: 3, llm_concurrency: 8, known_limit: 16_384 }
    }
}

/// What the inference mempool is doing (`nml_mempoolStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PipeStatus {
    /// Transactions in the batch being prepared (0 when none is).
    pub preparing: usize,
    /// The dispatch round in progress, if any.
    pub round: Option<u32>,
    /// Requests running on the executor now.
    pub in_flight: usize,
    /// Requests sent to the executor since start (each distinct request once).
    pub inferences_run: u64,
    /// Dispatch rounds run since start.
    pub rounds_run: u64,
    /// Results known by request id.
    pub known_results: usize,
    /// The round limit.
    pub round_limit: u32,
    /// `inline` or `defer`.
    pub on_miss: &'static str,
    /// Pending transactions whose inference runs now: they stay pending
    /// until it is done, and the next block includes them.
    pub awaiting_inference: Vec<B256>,
    /// Where LLM calls are answered, in words.
    pub llm: String,
    /// LLM calls sent to the backends at once.
    pub llm_concurrency: usize,
}

/// The inference mempool: install it as the devnet's pre-execution stage and,
/// through [`Pipe::precompiles`], as its precompile set.
pub struct Pipe {
    /// Itself, for the background dispatch threads and simulation precompiles.
    me: Weak<Pipe>,
    executor: Arc<dyn Executor>,
    /// Answers LLM calls.
    llm: Arc<dyn LlmBackend>,
    config: PipeConfig,
    /// The machine's cores, read once: `available_parallelism` reads cgroup
    /// files on every call (about 20 µs, a tenth of a light transaction's path).
    cores: usize,
    shared: Mutex<Shared>,
    /// The keccak of the arguments met lately: the request ids of canonical ones.
    memo: memo::HashMemo,
    runs: AtomicU64,
    /// The enclaves that attest TEE-mode results.
    enclaves: Arc<Enclaves>,
    /// Where price-history queries (0x…F5) take their candles.
    price_feed: parking_lot::RwLock<Arc<PriceFeed>>,
    /// Where the `console.log` lines of mined transactions go, if anywhere.
    console: parking_lot::RwLock<Option<ConsoleSink>>,
}

impl Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Pipe {
    /// A mempool that runs models on `executor`, answers LLM calls with
    /// `llm` and has TEE-mode results attested by `enclaves`.
    pub fn new(
        executor: Arc<dyn Executor>,
        llm: Arc<dyn LlmBackend>,
        config: PipeConfig,
        enclaves: Arc<Enclaves>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            executor,
            llm,
            config,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            shared: Mutex::new(Shared::new(config.known_limit)),
            memo: memo::HashMemo::default(),
            runs: AtomicU64::new(0),
            enclaves,
            price_feed: parking_lot::RwLock::new(Arc::new(PriceFeed::Synthetic)),
            console: parking_lot::RwLock::new(None),
        })
    }

    /// A new mempool on the same executor and configuration that starts
    /// knowing every result this one knows (a forked devnet's), with the
    /// same enclaves under faults of its own.
    pub fn fork(&self) -> Arc<Self> {
        let mut shared = Shared::new(self.config.known_limit);
        for (id, known) in self.shared.lock().known.iter().filter(|(_, k)| !k.transient) {
            shared.insert_known(*id, Arc::clone(known));
        }
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            executor: Arc::clone(&self.executor),
            llm: Arc::clone(&self.llm),
            config: self.config,
            cores: self.cores,
            shared: Mutex::new(shared),
            memo: memo::HashMemo::default(),
            runs: AtomicU64::new(0),
            enclaves: Arc::new(self.enclaves.fork()),
            price_feed: parking_lot::RwLock::new(Arc::clone(&self.price_feed.read())),
            console: parking_lot::RwLock::new(self.console.read().clone()),
        })
    }

    /// Takes price-history candles from `feed` from now on (the built-in
    /// synthetic feed until then).
    pub fn set_price_feed(&self, feed: PriceFeed) {
        *self.price_feed.write() = Arc::new(feed);
    }

    /// Hands the `console.log` lines of mined transactions to `sink` from
    /// now on (forks made later too); `None`: nowhere.
    pub fn set_console(&self, sink: Option<ConsoleSink>) {
        *self.console.write() = sink;
    }

    /// Hands a `console.log` line to the console sink, if there is one.
    pub(super) fn console(&self, line: &str) {
        if let Some(sink) = &*self.console.read() {
            (sink.0)(line);
        }
    }

    /// The model request a price-history call (0x…F5) stands for at chain
    /// time `now`, encoded as a call of `runModelInference`, or why the
    /// query cannot be served.
    fn price_history_calldata(&self, calldata: &[u8], now: u64) -> Result<Vec<u8>, String> {
        let call = PriceHistoryCall::decode(calldata)?;
        let model = ModelId::parse(&call.model_id).ok();
        let signature = model.and_then(|m| self.executor.signature(&m));
        let feed = Arc::clone(&self.price_feed.read());
        let request = history::request_for(&call, &feed, now, signature.as_ref())?;
        Ok(runModelInferenceCall { request }.abi_encode())
    }

    /// The precompile set to install beside it: Ethereum's, and the inference
    /// precompile at [`INFERENCE_PRECOMPILE`].
    pub fn precompiles(self: &Arc<Self>) -> Arc<dyn PrecompileFactory> {
        Arc::new(InferencePrecompiles { pipe: Arc::clone(self) })
    }

    /// The configuration.
    pub fn config(&self) -> PipeConfig {
        self.config
    }

    /// Where LLM calls are answered, in words (never a secret).
    pub fn llm_backend(&self) -> String {
        self.llm.describe()
    }

    /// The enclaves that attest TEE-mode results.
    pub fn enclaves(&self) -> &Arc<Enclaves> {
        &self.enclaves
    }

    /// Every attested result this mempool knows.
    pub fn attestations(&self) -> Vec<Attestation> {
        let s = self.shared.lock();
        let mut all: Vec<Attestation> =
            s.known.values().chain(s.recorded.values()).filter_map(|k| k.attestation.clone()).collect();
        all.sort_by_key(|a| a.input_hash);
        all.dedup();
        all
    }

    /// The attestation of the result of request `id`, if it is known and attested.
    pub fn attestation(&self, id: B256) -> Option<Attestation> {
        let s = self.shared.lock();
        s.known.get(&id).or_else(|| s.recorded.get(&id)).and_then(|k| k.attestation.clone())
    }

    /// The result served for request `id` in a mined transaction (what
    /// the node's result API answers): its mode byte and the precompile's
    /// return data, with the enclave's attestation of a TEE-mode result.
    /// `None` for a request no mined transaction was served, or one that failed.
    pub fn served(&self, id: B256) -> Option<(u8, Bytes, Option<Attestation>)> {
        let s = self.shared.lock();
        let known = s.recorded.get(&id)?;
        let output = known.result.as_ref().ok()?.clone();
        Some((known.mode, output, known.attestation.clone()))
    }

    /// What the mempool is doing now.
    pub fn status(&self) -> PipeStatus {
        let s = self.shared.lock();
        PipeStatus {
            preparing: s.preparing,
            round: s.round,
            in_flight: s.in_flight,
            inferences_run: self.runs.load(Ordering::Relaxed),
            rounds_run: s.rounds_run,
            known_results: s.known.len(),
            round_limit: self.config.round_limit,
            on_miss: match self.config.on_miss {
                OnMiss::Inline => "inline",
                OnMiss::Defer => "defer",
            },
            awaiting_inference: (s.prepared.keys().filter(|tx| s.is_awaiting(tx)))
                .chain(&s.awaiting_in_build)
                .copied()
                .collect(),
            llm: self.llm.describe(),
            llm_concurrency: self.config.llm_concurrency,
        }
    }

    /// Learns the results recorded on mined receipts (a chain loaded from a
    /// state file), so that replays serve them.
    pub fn learn<'a>(&self, records: impl IntoIterator<Item = &'a InferenceRecord>) {
        let mut s = self.shared.lock();
        for record in records {
            let known = Arc::new(Known::from_record(record));
            if record.success && !s.known.contains_key(&record.request_id) {
                s.insert_known(record.request_id, Arc::clone(&known));
            }
            s.recorded.insert(record.request_id, known);
        }
    }

    /// [`Pipe::respond`]'s answer alone, for the tests.
    #[cfg(test)]
    fn answer(
        &self,
        phase: Phase,
        calldata: &[u8],
        gas_limit: u64,
        met: Option<&Mutex<Met>>,
        now: u64,
    ) -> InterpreterResult {
        self.respond(phase, calldata, gas_limit, met, now).result
    }

    /// Answers one call to the precompile in `phase`, from a block whose
    /// timestamp is `now`; a simulation notes what it met in `met`.
    fn respond(&self, phase: Phase, calldata: &[u8], gas_limit: u64, met: Option<&Mutex<Met>>, now: u64) -> Response {
        // The hash of the arguments as they are: the request id when they
        // are its canonical encoding (what solc and every standard encoder write).
        let args = calldata.split_first_chunk::<4>().filter(|(selector, _)| {
            [runModelInferenceCall::SELECTOR, runLLMCompletionCall::SELECTOR, runLLMChatCall::SELECTOR]
                .contains(selector)
        });
        let hashed = args.map(|(_, args)| self.memo.keccak(args));
        if let Some(id) = hashed.as_ref().map(|h| h.hash)
            && let Some(result) = self.answer_known(phase, id, gas_limit, met)
        {
            return Response { result, canonical: Some(id) };
        }
        let (request, id) = match Request::of_call(calldata, hashed) {
            Ok(decoded) => decoded,
            Err(e) => return Response::slow(result(Answer::Revert(e.to_string()), GAS_BASE, gas_limit)),
        };
        let gas = request.gas();
        if gas > gas_limit {
            return Response::slow(out_of_gas(gas_limit));
        }
        let answer = match phase {
            Phase::Simulation => self.simulate(id, request, met),
            Phase::Inclusion => self.include(id, &request, now),
            Phase::Call => self.known_or_run(id, &request, now).answer(),
            Phase::Replay => self.replay(id),
        };
        Response::slow(result(answer, gas, gas_limit))
    }

    /// The fast path for a known result: canonical calldata hashes to the
    /// request id as it is (`id` here), so a known request is served without
    /// decoding it. Non-canonical calldata misses here and takes the slow
    /// path, which identifies it by its canonical re-encoding.
    fn answer_known(
        &self,
        phase: Phase,
        id: B256,
        gas_limit: u64,
        met: Option<&Mutex<Met>>,
    ) -> Option<InterpreterResult> {
        let mut s = self.shared.lock();
        let known = Arc::clone(s.known.get(&id)?);
        if phase == Phase::Replay || (phase == Phase::Call && known.transient) {
            return None;
        }
        let gas = known.gas?;
        if gas > gas_limit {
            return Some(out_of_gas(gas_limit));
        }
        let answer = match phase {
            Phase::Simulation => {
                drop(s);
                if let Some(met) = met {
                    met.lock().ids.push(id);
                }
                known.answer()
            }
            Phase::Inclusion => Self::serve_included(&mut s, id, &known),
            Phase::Call | Phase::Replay => known.answer(),
        };
        Some(result(answer, gas, gas_limit))
    }

    /// Serves a known result at inclusion and records it for the receipt.
    fn serve_included(s: &mut Shared, id: B256, known: &Arc<Known>) -> Answer {
        let round = s.prep_of_current().and_then(|p| p.found.get(&id).copied());
        let served = if round.is_some() { Served::PreExecuted } else { Served::Cached };
        if let Some(current) = s.current.as_mut() {
            current.records.push(known.record(id, round, served));
        }
        s.recorded.insert(id, Arc::clone(known));
        known.answer()
    }

    fn simulate(&self, id: B256, request: Request, met: Option<&Mutex<Met>>) -> Answer {
        let known = self.shared.lock().known.get(&id).map(|k| k.answer());
        let unknown = known.is_none();
        let answer = known.unwrap_or_else(|| Answer::Return(request.simulation()));
        if let Some(met) = met {
            let mut met = met.lock();
            met.ids.push(id);
            if unknown {
                met.unknown.push((id, request));
            }
        }
        answer
    }

    fn include(&self, id: B256, request: &Request, now: u64) -> Answer {
        let mut s = self.shared.lock();
        if let Some(known) = s.known.get(&id).cloned() {
            return Self::serve_included(&mut s, id, &known);
        }
        if s.prep_of_current().is_some_and(|p| p.exhausted) {
            let limit = self.config.round_limit;
            let reason = format!(
                "inference round limit exceeded: model `{}` was asked for after {limit} rounds of pre-execution (--max-rounds)",
                request.model()
            );
            let known = Known::new(request, Run { output: Err(reason), transient: true, took: Duration::ZERO });
            let answer = known.answer();
            if let Some(current) = s.current.as_mut() {
                current.records.push(known.record(id, None, Served::Inline));
            }
            s.recorded.insert(id, Arc::new(known));
            return answer;
        }
        if let Some(current) = s.current.as_mut().filter(|c| c.may_defer) {
            // The builder undoes the transaction; what it is answered does not matter.
            current.defer = true;
            return Answer::Revert("deferred to the next block: this request was not pre-executed".to_owned());
        }
        drop(s);
        let known = self.run_one(id, request, now);
        let answer = known.answer();
        let mut s = self.shared.lock();
        if let Some(current) = s.current.as_mut() {
            current.records.push(known.record(id, None, Served::Inline));
        }
        s.recorded.insert(id, known);
        answer
    }

    fn replay(&self, id: B256) -> Answer {
        let s = self.shared.lock();
        match s.recorded.get(&id).or_else(|| s.known.get(&id)) {
            Some(known) => known.answer(),
            None => Answer::Revert(format!(
                "no recorded result for inference request {id}: replays serve recorded results and never run a model"
            )),
        }
    }

    /// The known result of `id`, or a synchronous run of `request` at the
    /// chain's time `now`.
    fn known_or_run(&self, id: B256, request: &Request, now: u64) -> Arc<Known> {
        if let Some(known) = self.shared.lock().known.get(&id).filter(|k| !k.transient) {
            return Arc::clone(known);
        }
        self.run_one(id, request, now)
    }

    /// Runs claimed requests: one result per request, even from an executor
    /// that panics, since others may be waiting for them. Model requests go
    /// to the executor and LLM calls to their backends (at most
    /// [`PipeConfig::llm_concurrency`] at once), both at the same time.
    fn run_claimed(&self, requests: &[&Request]) -> Vec<Run> {
        let models: Vec<&ModelInferenceRequest> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Model(m, _) => Some(m),
                Request::Llm(_) => None,
            })
            .collect();
        let llms: Vec<&LlmRequest> = requests
            .iter()
            .filter_map(|r| match r {
                Request::Llm(l) => Some(l),
                Request::Model(..) => None,
            })
            .collect();
        let run_models = || {
            if models.is_empty() {
                return Vec::new();
            }
            let _executor = tracing::trace_span!("executor").entered();
            let run = std::panic::AssertUnwindSafe(|| self.executor.run_all_requests_timed(&models));
            let mut runs: Vec<Run> =
                std::panic::catch_unwind(run).unwrap_or_default().into_iter().map(Run::model).collect();
            runs.resize_with(models.len(), || unavailable("the executor failed without a result"));
            runs
        };
        let run_llms = || answer_all(self.llm.as_ref(), &llms, self.config.llm_concurrency).into_iter().map(Run::llm);
        let (model_runs, llm_runs): (Vec<Run>, Vec<Run>) = if llms.is_empty() {
            (run_models(), Vec::new())
        } else if models.is_empty() {
            (Vec::new(), run_llms().collect())
        } else {
            std::thread::scope(|scope| {
                let llm_runs = scope.spawn(|| run_llms().collect::<Vec<_>>());
                let model_runs = run_models();
                (model_runs, llm_runs.join().unwrap_or_default())
            })
        };
        let (mut model_runs, mut llm_runs) = (model_runs.into_iter(), llm_runs.into_iter());
        requests
            .iter()
            .map(|r| {
                let next = match r {
                    Request::Model(..) => model_runs.next(),
                    Request::Llm(_) => llm_runs.next(),
                };
                next.unwrap_or_else(|| unavailable("the backend failed without a result"))
            })
            .collect()
    }

    /// Runs one request now (the lock is not held while the model runs), or
    /// waits for the run of it already under way.
    fn run_one(&self, id: B256, request: &Request, now: u64) -> Arc<Known> {
        // Not in the match: its scrutinee would hold the lock while waiting.
        let claim = self.shared.lock().claim(id);
        let running = match claim {
            Claim::Known(known) => return known,
            Claim::Wait(running) => return running.wait(),
            Claim::Run(running) => running,
        };
        let mut claims = Claims { pipe: self, open: vec![(id, Arc::clone(&running), request.clone())] };
        self.shared.lock().in_flight += 1;
        let run = self.run_claimed(&[request]).pop().unwrap_or_else(|| unavailable("the executor returned no result"));
        self.runs.fetch_add(1, Ordering::Relaxed);
        let known = Arc::new(Known::new(request, run).attested(id, &self.enclaves, now));
        let mut s = self.shared.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        claims.open.clear();
        s.finish(id, &running, known)
    }
}
