//! PIPE, the inference mempool (PROTOCOL.md part B): the inference precompile
//! at 0x…F4 and the pre-execution stage that shares its state.
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

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Weak};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, address, keccak256};
use alloy_sol_types::{Revert, SolCall, SolError, SolValue};
use parking_lot::{Condvar, Mutex};
use revm::handler::{EthPrecompiles, PrecompileProvider};
use revm::interpreter::{CallInputs, Gas, InstructionResult, InterpreterResult};
use revm::primitives::AddressSet;
use revm::primitives::hardfork::SpecId;
use serde::Serialize;

use super::builder::{Inclusion, InferenceWait, PreExecution, PreIncluded, Prepared, StageContext, Waker};
use crate::chain::{InferenceRecord, PoolTx, Served};
use crate::evm::{Checkpoint, EvmContext, EvmPrecompiles, InvalidTx, Phase, PrecompileFactory, TxOutcome};
use crate::inference::abi::runModelInferenceCall;
use crate::inference::{
    Executor, InferenceCall, InferenceError, ModelInferenceRequest, ModelOutput, Timed, request_id,
};

/// What one simulation asked of the precompile: every request id, and the
/// requests that were not known. Each simulation has its own, handed to the
/// precompiles of its EVM ([`SimulationPrecompiles`]) and read back after.
#[derive(Debug, Default)]
struct Met {
    ids: Vec<B256>,
    unknown: Vec<(B256, ModelInferenceRequest)>,
}

/// The inference precompile's address (PROTOCOL.md A1).
pub const INFERENCE_PRECOMPILE: Address = address!("00000000000000000000000000000000000000F4");

/// Gas of every call to the inference precompile.
pub const GAS_BASE: u64 = 20_000;

/// Gas per input tensor element (number or string) of a model request.
pub const GAS_PER_ELEMENT: u64 = 50;

/// The gas a model request costs: [`GAS_BASE`] plus [`GAS_PER_ELEMENT`] per
/// input element. It depends on the input only, so a simulation and the
/// inclusion of the same request cost the same.
pub fn request_gas(request: &ModelInferenceRequest) -> u64 {
    let numbers: usize = request.input.numbers.iter().map(|t| t.values.len()).sum();
    let strings: usize = request.input.strings.iter().map(|t| t.values.len()).sum();
    GAS_BASE.saturating_add(GAS_PER_ELEMENT.saturating_mul((numbers + strings) as u64))
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
}

impl Default for PipeConfig {
    fn default() -> Self {
        Self { round_limit: 8, on_miss: OnMiss::Inline, max_defers: 3 }
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
}

/// A result known by request id.
#[derive(Debug)]
struct Known {
    /// The encoded `ModelOutput`, or the revert reason.
    result: Result<Bytes, String>,
    model: String,
    mode: u8,
    input_hash: B256,
    took: Duration,
    /// The gas of the request ([`request_gas`]); unknown for a result read
    /// back from a record (its calls then take the slow path).
    gas: Option<u64>,
    /// A failure that may not happen again (the model was not registered
    /// yet, the run timed out, the executor was down): kept for the block
    /// being built, then forgotten, and never served to `eth_call`.
    transient: bool,
}

impl Known {
    fn new(request: &ModelInferenceRequest, run: Timed) -> Self {
        let transient = matches!(
            run.output,
            Err(InferenceError::UnknownModel { .. }
                | InferenceError::Timeout { .. }
                | InferenceError::Unavailable { .. })
        );
        let result = run.output.map(|o| InferenceCall::encode_model_output(&o).into()).map_err(|e| e.to_string());
        Self {
            transient,
            result,
            model: request.modelCID.clone(),
            mode: request.mode,
            input_hash: keccak256(request.input.abi_encode()),
            took: run.took,
            gas: Some(request_gas(request)),
        }
    }

    /// A result read back from a mined transaction's record.
    fn from_record(record: &InferenceRecord) -> Self {
        let result = if record.success { Ok(record.output.clone()) } else { Err(revert_reason(&record.output)) };
        Self {
            result,
            model: record.model.clone(),
            mode: record.mode,
            input_hash: record.input_hash,
            took: Duration::from_micros(record.duration_us),
            gas: None,
            transient: !record.success,
        }
    }

    fn answer(&self) -> Answer {
        match &self.result {
            Ok(output) => Answer::Return(output.clone()),
            Err(reason) => Answer::Revert(reason.clone()),
        }
    }

    fn record(&self, request_id: B256, round: Option<u32>, served: Served) -> InferenceRecord {
        let (success, output) = match &self.result {
            Ok(output) => (true, output.clone()),
            Err(reason) => (false, Revert::from(reason.as_str()).abi_encode().into()),
        };
        InferenceRecord {
            request_id,
            model: self.model.clone(),
            mode: self.mode,
            input_hash: self.input_hash,
            success,
            output,
            round,
            served,
            duration_us: u64::try_from(self.took.as_micros()).unwrap_or(u64::MAX),
        }
    }
}

fn revert_reason(data: &[u8]) -> String {
    Revert::abi_decode(data).map(|r| r.reason).unwrap_or_else(|_| "inference failed".to_owned())
}

/// What the precompile answers.
enum Answer {
    Return(Bytes),
    Revert(String),
}

/// How one pending transaction was prepared so far (kept across blocks
/// while it waits for its inference).
#[derive(Debug, Default)]
struct TxPrep {
    /// The dispatch round that found each request it met (absent: known before).
    found: HashMap<B256, u32>,
    /// Rounds of dispatch run for it so far.
    rounds: u32,
    /// It met new requests after the last round.
    exhausted: bool,
    /// The requests it waits for (running in the background).
    awaiting: Vec<B256>,
}

/// The transaction being included.
#[derive(Debug)]
struct Current {
    tx: B256,
    records: Vec<InferenceRecord>,
    may_defer: bool,
    defer: bool,
}

#[derive(Default)]
struct Shared {
    /// Results by request id, for simulation, inclusion and calls.
    known: HashMap<B256, Arc<Known>>,
    /// The ids of the transient failures in `known`, with the preparation
    /// that was current when each arrived: a failure serves that preparation
    /// and the next one, then is forgotten (a list, so that a block does not
    /// scan every result).
    transient: Vec<(B256, u64)>,
    /// Preparations started so far.
    generation: u64,
    /// Called when a background dispatch is done.
    waker: Option<Waker>,
    /// The requests running now, by id: whoever meets one waits for its
    /// result instead of running it a second time (B3), be it a concurrent
    /// `eth_call` or a dispatch round.
    running: HashMap<B256, Arc<Running>>,
    /// What inclusion served, by request id, for replays (B6): also the
    /// failures that `known` forgets.
    recorded: HashMap<B256, Arc<Known>>,
    /// The pending transactions prepared so far, by hash.
    prepared: HashMap<B256, TxPrep>,
    /// How often each pending transaction was deferred.
    defers: HashMap<B256, u32>,
    current: Option<Current>,
    preparing: usize,
    round: Option<u32>,
    in_flight: usize,
    rounds_run: u64,
}

/// A request being run: its result, once there is one.
#[derive(Debug, Default)]
struct Running {
    result: Mutex<Option<Arc<Known>>>,
    done: Condvar,
}

impl Running {
    fn wait(&self) -> Arc<Known> {
        let mut result = self.result.lock();
        loop {
            if let Some(known) = result.as_ref() {
                return Arc::clone(known);
            }
            self.done.wait(&mut result);
        }
    }

    fn finish(&self, known: &Arc<Known>) {
        *self.result.lock() = Some(Arc::clone(known));
        self.done.notify_all();
    }
}

fn unavailable(reason: &str) -> Timed {
    Timed {
        output: Err(crate::inference::InferenceError::Unavailable { reason: reason.to_owned() }),
        took: Duration::ZERO,
    }
}

/// Who runs a request: this caller (it claimed it), or another one to wait for.
enum Claim {
    Run(Arc<Running>),
    Wait(Arc<Running>),
    /// Known meanwhile (a run that finished since the caller looked).
    Known(Arc<Known>),
}

/// The claims a caller must finish. Whatever is left open when it is
/// dropped (a panic on the way) is finished as a transient failure, so that
/// nobody waits for it forever.
struct Claims<'a> {
    pipe: &'a Pipe,
    open: Vec<(B256, Arc<Running>, ModelInferenceRequest)>,
}

impl Drop for Claims<'_> {
    fn drop(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let mut s = self.pipe.shared.lock();
        for (id, running, request) in self.open.drain(..) {
            let failed = Known::new(&request, unavailable("the node failed while running this inference"));
            s.finish(id, &running, Arc::new(failed));
        }
    }
}

/// The requests of one dispatch round, claimed: those this round runs, and
/// those another caller runs already (waited for).
struct Claimed {
    run: Vec<(B256, Arc<Running>, ModelInferenceRequest)>,
    others: Vec<Arc<Running>>,
}

impl Shared {
    /// Claims `id` for running, unless somebody runs it already or its
    /// lasting result is known.
    fn claim(&mut self, id: B256) -> Claim {
        if let Some(known) = self.known.get(&id).filter(|k| !k.transient) {
            return Claim::Known(Arc::clone(known));
        }
        match self.running.get(&id) {
            Some(running) => Claim::Wait(Arc::clone(running)),
            None => {
                let running = Arc::new(Running::default());
                self.running.insert(id, Arc::clone(&running));
                Claim::Run(running)
            }
        }
    }

    /// Keeps the result of a claimed run and hands it to those waiting.
    /// A lasting result already known wins (another path got there first).
    fn finish(&mut self, id: B256, running: &Running, known: Arc<Known>) -> Arc<Known> {
        let known = match self.known.get(&id) {
            Some(existing) if !existing.transient => Arc::clone(existing),
            _ => {
                self.insert_known(id, Arc::clone(&known));
                known
            }
        };
        self.running.remove(&id);
        running.finish(&known);
        known
    }

    /// Keeps `known` for `id`, noting a transient failure for forgetting.
    fn insert_known(&mut self, id: B256, known: Arc<Known>) {
        // Listed once, however often it fails before it is forgotten.
        if known.transient && !self.known.get(&id).is_some_and(|k| k.transient) {
            self.transient.push((id, self.generation));
        }
        self.known.insert(id, known);
    }

    /// Forgets the transient failures older than the last preparation:
    /// they are retried by later blocks.
    fn forget_transient(&mut self) {
        let current = self.generation;
        let (old, recent): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.transient).into_iter().partition(|(_, g)| g + 1 < current);
        self.transient = recent;
        for (id, _) in old {
            if self.known.get(&id).is_some_and(|k| k.transient) {
                self.known.remove(&id);
            }
        }
    }

    /// Whether `tx` waits for requests that are running now.
    fn is_awaiting(&self, tx: &B256) -> bool {
        self.prepared.get(tx).is_some_and(|p| p.awaiting.iter().any(|id| self.running.contains_key(id)))
    }

    fn prep_of_current(&self) -> Option<&TxPrep> {
        self.prepared.get(&self.current.as_ref()?.tx)
    }
}

/// The inference mempool: install it as the devnet's pre-execution stage and,
/// through [`Pipe::precompiles`], as its precompile set.
pub struct Pipe {
    /// Itself, for the background dispatch threads and simulation precompiles.
    me: Weak<Pipe>,
    executor: Arc<dyn Executor>,
    config: PipeConfig,
    /// The machine's cores, read once: `available_parallelism` reads cgroup
    /// files on every call (about 20 µs, a tenth of a light transaction's path).
    cores: usize,
    shared: Mutex<Shared>,
    runs: AtomicU64,
}

impl Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("known", &self.known.len()).finish_non_exhaustive()
    }
}

impl Debug for Pipe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipe").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Pipe {
    /// A mempool that runs models on `executor`.
    pub fn new(executor: Arc<dyn Executor>, config: PipeConfig) -> Arc<Self> {
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            executor,
            config,
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            shared: Mutex::new(Shared::default()),
            runs: AtomicU64::new(0),
        })
    }

    /// A new mempool on the same executor and configuration that starts
    /// knowing every result this one knows (a forked devnet's).
    pub fn fork(&self) -> Arc<Self> {
        let known =
            self.shared.lock().known.iter().filter(|(_, k)| !k.transient).map(|(id, k)| (*id, Arc::clone(k))).collect();
        let shared = Shared { known, ..Shared::default() };
        Arc::new_cyclic(|me| Self {
            me: me.clone(),
            executor: Arc::clone(&self.executor),
            config: self.config,
            cores: self.cores,
            shared: Mutex::new(shared),
            runs: AtomicU64::new(0),
        })
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
            awaiting_inference: s.prepared.keys().filter(|tx| s.is_awaiting(tx)).copied().collect(),
        }
    }

    /// Learns the results recorded on mined receipts (a chain loaded from a
    /// state file), so that replays serve them.
    pub fn learn<'a>(&self, records: impl IntoIterator<Item = &'a InferenceRecord>) {
        let mut s = self.shared.lock();
        for record in records {
            let known = Arc::new(Known::from_record(record));
            if record.success {
                s.known.entry(record.request_id).or_insert_with(|| Arc::clone(&known));
            }
            s.recorded.insert(record.request_id, known);
        }
    }

    /// Answers one call to the precompile in `phase`; a simulation notes what
    /// it met in `met`.
    fn answer(&self, phase: Phase, calldata: &[u8], gas_limit: u64, met: Option<&Mutex<Met>>) -> InterpreterResult {
        if let Some(fast) = self.answer_known(phase, calldata, gas_limit, met) {
            return fast;
        }
        let request = match InferenceCall::decode(calldata) {
            Ok(InferenceCall::Model(request)) => request,
            Ok(InferenceCall::LlmCompletion(_)) => return no_llm("runLLMCompletion", gas_limit),
            Ok(InferenceCall::LlmChat(_)) => return no_llm("runLLMChat", gas_limit),
            Err(e) => return result(Answer::Revert(e.to_string()), GAS_BASE, gas_limit),
        };
        let gas = request_gas(&request);
        if gas > gas_limit {
            return out_of_gas(gas_limit);
        }
        let id = request_id(&request);
        let answer = match phase {
            Phase::Simulation => self.simulate(id, request, met),
            Phase::Inclusion => self.include(id, &request),
            Phase::Call => self.known_or_run(id, &request).answer(),
            Phase::Replay => self.replay(id),
        };
        result(answer, gas, gas_limit)
    }

    /// The fast path for a known result: canonical calldata (what solc and
    /// every standard encoder write) hashes to the request id as it is, so a
    /// known request is served without decoding it. Non-canonical calldata
    /// misses here and takes the slow path, which identifies it by its
    /// canonical re-encoding.
    fn answer_known(
        &self,
        phase: Phase,
        calldata: &[u8],
        gas_limit: u64,
        met: Option<&Mutex<Met>>,
    ) -> Option<InterpreterResult> {
        let args = calldata.strip_prefix(runModelInferenceCall::SELECTOR.as_slice())?;
        let id = keccak256(args);
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

    fn simulate(&self, id: B256, request: ModelInferenceRequest, met: Option<&Mutex<Met>>) -> Answer {
        let known = self.shared.lock().known.get(&id).map(|k| k.answer());
        if let Some(met) = met {
            let mut met = met.lock();
            met.ids.push(id);
            if known.is_none() {
                met.unknown.push((id, request));
            }
        }
        known.unwrap_or_else(|| Answer::Return(InferenceCall::encode_model_output(&ModelOutput::simulation()).into()))
    }

    fn include(&self, id: B256, request: &ModelInferenceRequest) -> Answer {
        let mut s = self.shared.lock();
        if let Some(known) = s.known.get(&id).cloned() {
            return Self::serve_included(&mut s, id, &known);
        }
        if s.prep_of_current().is_some_and(|p| p.exhausted) {
            let limit = self.config.round_limit;
            let reason = format!(
                "inference round limit exceeded: model `{}` was asked for after {limit} rounds of pre-execution (--max-rounds)",
                request.modelCID
            );
            let known = Known {
                result: Err(reason),
                model: request.modelCID.clone(),
                mode: request.mode,
                input_hash: keccak256(request.input.abi_encode()),
                took: Duration::ZERO,
                gas: Some(request_gas(request)),
                transient: true,
            };
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
        let known = self.run_one(id, request);
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

    /// The known result of `id`, or a synchronous run of `request`.
    fn known_or_run(&self, id: B256, request: &ModelInferenceRequest) -> Arc<Known> {
        if let Some(known) = self.shared.lock().known.get(&id).filter(|k| !k.transient) {
            return Arc::clone(known);
        }
        self.run_one(id, request)
    }

    /// Runs claimed requests: one result per request, even from an executor
    /// that panics, since others may be waiting for them.
    fn run_claimed(&self, requests: &[&ModelInferenceRequest]) -> Vec<Timed> {
        let run = std::panic::AssertUnwindSafe(|| self.executor.run_all_requests_timed(requests));
        let mut runs = std::panic::catch_unwind(run).unwrap_or_default();
        runs.resize_with(requests.len(), || unavailable("the executor failed without a result"));
        runs
    }

    /// Runs one request now (the lock is not held while the model runs), or
    /// waits for the run of it already under way.
    fn run_one(&self, id: B256, request: &ModelInferenceRequest) -> Arc<Known> {
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
        let known = Arc::new(Known::new(request, run));
        let mut s = self.shared.lock();
        s.in_flight = s.in_flight.saturating_sub(1);
        claims.open.clear();
        s.finish(id, &running, known)
    }

    /// Claims the requests of round `round`: those nobody runs are this
    /// round's to run.
    fn claim_round(&self, round: u32, requests: Vec<(B256, ModelInferenceRequest)>) -> Claimed {
        let mut claimed = Claimed { run: Vec::new(), others: Vec::new() };
        let mut s = self.shared.lock();
        s.round = Some(round);
        for (id, request) in requests {
            match s.claim(id) {
                Claim::Run(running) => claimed.run.push((id, running, request)),
                Claim::Wait(running) => claimed.others.push(running),
                Claim::Known(_) => {}
            }
        }
        s.in_flight += claimed.run.len();
        claimed
    }

    /// Runs the requests of one round side by side and keeps the results;
    /// a request another caller is running already is waited for instead.
    fn dispatch(&self, round: u32, requests: &[(B256, ModelInferenceRequest)]) {
        let claimed = self.claim_round(round, requests.to_vec());
        self.run_round(claimed);
    }

    /// Runs what [`Pipe::claim_round`] claimed, then waits for the others.
    fn run_round(&self, claimed: Claimed) {
        let Claimed { run, others } = claimed;
        let mut claims = Claims { pipe: self, open: run };
        let count = claims.open.len();
        let refs: Vec<&ModelInferenceRequest> = claims.open.iter().map(|(_, _, r)| r).collect();
        let runs = self.run_claimed(&refs);
        self.runs.fetch_add(count as u64, Ordering::Relaxed);
        let results: Vec<_> = claims
            .open
            .iter()
            .zip(runs)
            .map(|((id, running, request), run)| (*id, Arc::clone(running), Arc::new(Known::new(request, run))))
            .collect();
        let mut s = self.shared.lock();
        claims.open.clear();
        for (id, running, known) in results {
            s.finish(id, &running, known);
        }
        s.in_flight = s.in_flight.saturating_sub(count);
        drop(s);
        // Only after finishing every claim of its own, so two dispatchers
        // never wait on each other.
        for running in others {
            running.wait();
        }
        let mut s = self.shared.lock();
        s.round = None;
        s.rounds_run += 1;
    }

    /// Claims the requests now and runs them on a thread of their own; the
    /// waker is called when they are done. The caller goes on at once.
    fn dispatch_in_background(&self, round: u32, requests: Vec<(B256, ModelInferenceRequest)>) {
        let claimed = self.claim_round(round, requests);
        let Some(pipe) = self.me.upgrade() else { return };
        let spawned = std::thread::Builder::new().name("nml-dispatch".into()).spawn(move || {
            pipe.run_round(claimed);
            let waker = pipe.shared.lock().waker.clone();
            if let Some(wake) = waker {
                wake();
            }
        });
        if let Err(e) = spawned {
            // The claims were moved into the closure that failed to start
            // and dropped with it: they finished as transient failures.
            tracing::error!(%e, "cannot start an inference dispatch thread");
        }
    }

    /// Simulates one transaction on this thread; returns what it met, and
    /// its outcome and state (a stand-in for its inclusion as the block's
    /// first transaction).
    fn simulate_one(&self, ctx: &StageContext<'_>, tx: &PoolTx) -> (Met, Result<TxOutcome, InvalidTx>, Checkpoint) {
        let met = Arc::new(Mutex::new(Met::default()));
        let precompiles = SimulationPrecompiles { pipe: self.me.clone(), met: Arc::clone(&met) };
        let (outcome, state) = ctx.simulate_alone_with(tx, &precompiles);
        drop(precompiles);
        let met = Arc::try_unwrap(met).map(Mutex::into_inner).unwrap_or_else(|met| std::mem::take(&mut *met.lock()));
        (met, outcome, state)
    }

    /// Simulates one transaction on this thread; returns what it met.
    fn simulate_tx(&self, ctx: &StageContext<'_>, tx: &PoolTx) -> Met {
        // An invalid transaction is the builder's to drop; it met nothing.
        self.simulate_one(ctx, tx).0
    }

    /// Simulates `txs`, each on its own, side by side on the machine's cores
    /// (one transaction is simulated on the calling thread); results in order.
    fn simulate_all(&self, ctx: &StageContext<'_>, txs: &[&Arc<PoolTx>]) -> Vec<Met> {
        let threads = self.cores.min(txs.len());
        if threads <= 1 {
            return txs.iter().map(|tx| self.simulate_tx(ctx, tx)).collect();
        }
        let chunk = txs.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = txs
                .chunks(chunk)
                .map(|part| {
                    (
                        part.len(),
                        scope.spawn(move || part.iter().map(|tx| self.simulate_tx(ctx, tx)).collect::<Vec<_>>()),
                    )
                })
                .collect();
            // A simulation that panicked met nothing; inclusion decides.
            handles
                .into_iter()
                .flat_map(|(len, h)| h.join().unwrap_or_else(|_| (0..len).map(|_| Met::default()).collect()))
                .collect()
        })
    }
}

impl PreExecution for Pipe {
    fn prepare(&self, ctx: &StageContext<'_>, batch: Vec<Arc<PoolTx>>) -> Prepared {
        let wait = ctx.wait == InferenceWait::Wait;
        let live: HashSet<B256> = batch.iter().map(|tx| tx.hash).collect();
        // What earlier blocks learnt of each pending transaction, worked on
        // here without the lock.
        let mut prepared = {
            let mut s = self.shared.lock();
            s.generation += 1;
            s.preparing = batch.len();
            // Failures that may not repeat are retried by later blocks.
            s.forget_transient();
            let mut prepared = std::mem::take(&mut s.prepared);
            prepared.retain(|hash, _| live.contains(hash));
            prepared
        };
        // Senders held back: a transaction waiting for its inference, and
        // every later one of its sender, stays pending.
        let mut held: HashSet<Address> = HashSet::new();
        let mut defer: Vec<Arc<PoolTx>> = Vec::new();
        let batch: Vec<Arc<PoolTx>> = if wait {
            batch
        } else {
            let s = self.shared.lock();
            let awaiting = |tx: &PoolTx| {
                prepared.get(&tx.hash).is_some_and(|p| p.awaiting.iter().any(|id| s.running.contains_key(id)))
            };
            let mut go = Vec::with_capacity(batch.len());
            for tx in batch {
                if held.contains(&tx.sender) || awaiting(&tx) {
                    held.insert(tx.sender);
                    defer.push(tx);
                } else {
                    go.push(tx);
                }
            }
            go
        };
        let mut todo: Vec<&Arc<PoolTx>> = batch.iter().filter(|tx| ctx.runs_code(tx)).collect();
        for tx in &todo {
            prepared.entry(tx.hash).or_default();
        }
        let mut found_in: HashMap<B256, u32> = HashMap::new();
        // The block's first transaction starts from the head state: its last
        // simulation can stand as its inclusion (one EVM pass fewer).
        let first = batch.first().filter(|tx| todo.first() == Some(tx) && ctx.simulation_is_inclusion(tx));
        let mut first_done: Option<(Result<TxOutcome, InvalidTx>, Checkpoint, Vec<B256>)> = None;
        // Transactions whose requests now run in the background.
        let mut waiting: HashSet<B256> = HashSet::new();
        for round in 1..=self.config.round_limit.saturating_add(1) {
            let mut unknown: Vec<(B256, ModelInferenceRequest)> = Vec::new();
            let mut seen: HashSet<B256> = HashSet::new();
            let mut again = Vec::new();
            let (lead, rest): (Vec<&Arc<PoolTx>>, Vec<&Arc<PoolTx>>) =
                todo.iter().partition(|tx| first.is_some_and(|f| f.hash == tx.hash));
            let mut simulations = self.simulate_all(ctx, &rest);
            if let Some(tx) = lead.first() {
                let (met, outcome, state) = self.simulate_one(ctx, tx);
                if met.unknown.is_empty() {
                    first_done = Some((outcome, state, met.ids.clone()));
                }
                simulations.insert(0, met);
            }
            let order: Vec<&Arc<PoolTx>> = lead.into_iter().chain(rest).collect();
            for (tx, Met { ids: met, unknown: misses }) in order.into_iter().zip(simulations) {
                let prep = prepared.entry(tx.hash).or_default();
                let found = if wait { round } else { prep.rounds + 1 };
                for (id, _) in &misses {
                    prep.found.entry(*id).or_insert(found);
                }
                for id in met {
                    if let Some(r) = found_in.get(&id) {
                        prep.found.entry(id).or_insert(*r);
                    }
                }
                if !misses.is_empty() {
                    again.push(tx);
                    prep.awaiting = misses.iter().map(|(id, _)| *id).collect();
                    unknown.extend(misses.into_iter().filter(|(id, _)| seen.insert(*id)));
                }
            }
            if unknown.is_empty() {
                break;
            }
            if !wait {
                // One round now; its requests run while the block goes on.
                let mut requests: HashMap<B256, ModelInferenceRequest> = unknown.into_iter().collect();
                let mut dispatch = Vec::new();
                let mut last_round = 0;
                for tx in again {
                    let Some(prep) = prepared.get_mut(&tx.hash) else { continue };
                    if prep.rounds >= self.config.round_limit {
                        prep.exhausted = true;
                        continue;
                    }
                    prep.rounds += 1;
                    last_round = last_round.max(prep.rounds);
                    waiting.insert(tx.hash);
                    dispatch.extend(prep.awaiting.iter().filter_map(|id| requests.remove_entry(id)));
                }
                self.dispatch_in_background(last_round, dispatch);
                break;
            }
            if round > self.config.round_limit {
                for tx in again {
                    if let Some(prep) = prepared.get_mut(&tx.hash) {
                        prep.exhausted = true;
                    }
                }
                break;
            }
            self.dispatch(round, &unknown);
            found_in.extend(unknown.iter().map(|(id, _)| (*id, round)));
            todo = again;
        }
        let mut include = Vec::with_capacity(batch.len());
        for tx in &batch {
            if held.contains(&tx.sender) || waiting.contains(&tx.hash) {
                held.insert(tx.sender);
                defer.push(Arc::clone(tx));
            } else {
                include.push(Arc::clone(tx));
            }
        }
        let mut s = self.shared.lock();
        let pre_included = match (first, first_done) {
            (Some(tx), Some((Ok(outcome), state, ids))) if include.first().is_some_and(|t| t.hash == tx.hash) => {
                let prep = prepared.get(&tx.hash);
                let records: Option<Vec<InferenceRecord>> = ids
                    .iter()
                    .map(|id| {
                        let known = Arc::clone(s.known.get(id)?);
                        let round = prep.and_then(|p| p.found.get(id).copied());
                        let served = if round.is_some() { Served::PreExecuted } else { Served::Cached };
                        s.recorded.insert(*id, Arc::clone(&known));
                        Some(known.record(*id, round, served))
                    })
                    .collect();
                records.map(|records| PreIncluded { tx: tx.hash, outcome, state, records })
            }
            _ => None,
        };
        s.prepared = prepared;
        s.preparing = 0;
        Prepared { include, defer, first: pre_included, ..Prepared::default() }
    }

    fn set_waker(&self, waker: Waker) {
        self.shared.lock().waker = Some(waker);
    }

    fn holds(&self, tx: &B256) -> bool {
        self.shared.lock().is_awaiting(tx)
    }

    fn begin_inclusion(&self, tx: &PoolTx) -> bool {
        let mut s = self.shared.lock();
        let may_defer = self.config.on_miss == OnMiss::Defer
            && s.prepared.contains_key(&tx.hash)
            && s.defers.get(&tx.hash).copied().unwrap_or(0) < self.config.max_defers;
        s.current = Some(Current { tx: tx.hash, records: Vec::new(), may_defer, defer: false });
        may_defer
    }

    fn end_inclusion(&self, tx: &PoolTx) -> Inclusion {
        let mut s = self.shared.lock();
        let current = s.current.take();
        match current {
            Some(Current { defer: true, .. }) => {
                *s.defers.entry(tx.hash).or_default() += 1;
                Inclusion::Defer
            }
            Some(Current { records, .. }) => {
                s.defers.remove(&tx.hash);
                Inclusion::Keep(records)
            }
            None => Inclusion::Keep(Vec::new()),
        }
    }
}

fn result(answer: Answer, gas: u64, gas_limit: u64) -> InterpreterResult {
    let mut used = Gas::new(gas_limit);
    if !used.record_regular_cost(gas.min(gas_limit)) {
        return out_of_gas(gas_limit);
    }
    match answer {
        Answer::Return(output) => InterpreterResult::new(InstructionResult::Return, output, used),
        Answer::Revert(reason) => {
            InterpreterResult::new(InstructionResult::Revert, Revert::from(reason).abi_encode().into(), used)
        }
    }
}

fn out_of_gas(gas_limit: u64) -> InterpreterResult {
    let mut gas = Gas::new(gas_limit);
    gas.spend_all();
    InterpreterResult::new(InstructionResult::PrecompileOOG, Bytes::new(), gas)
}

fn no_llm(function: &str, gas_limit: u64) -> InterpreterResult {
    let reason = format!("no LLM backend is configured on this devnet: {function} cannot be served");
    result(Answer::Revert(reason), GAS_BASE, gas_limit)
}

/// The devnet's precompiles with inference: Ethereum's set plus 0x…F4.
#[derive(Debug)]
struct InferencePrecompiles {
    pipe: Arc<Pipe>,
}

impl PrecompileFactory for InferencePrecompiles {
    fn precompiles(&self, spec: SpecId, phase: Phase) -> EvmPrecompiles {
        let eth = EthPrecompiles::new(spec);
        let warm = warm_set(&eth);
        Box::new(InferenceProvider { eth, warm, pipe: Arc::clone(&self.pipe), phase, met: None })
    }
}

/// The precompiles of one simulation: those of [`InferencePrecompiles`],
/// noting what the simulation asked in its own [`Met`].
#[derive(Debug)]
struct SimulationPrecompiles {
    pipe: Weak<Pipe>,
    met: Arc<Mutex<Met>>,
}

impl PrecompileFactory for SimulationPrecompiles {
    fn precompiles(&self, spec: SpecId, phase: Phase) -> EvmPrecompiles {
        let eth = EthPrecompiles::new(spec);
        match self.pipe.upgrade() {
            Some(pipe) => {
                let warm = warm_set(&eth);
                Box::new(InferenceProvider { eth, warm, pipe, phase, met: Some(Arc::clone(&self.met)) })
            }
            None => Box::new(eth),
        }
    }
}

fn warm_set(eth: &EthPrecompiles) -> AddressSet {
    let mut warm = AddressSet::default();
    warm.clone_from(eth.warm_addresses());
    warm.insert(INFERENCE_PRECOMPILE);
    warm
}

struct InferenceProvider {
    eth: EthPrecompiles,
    warm: AddressSet,
    pipe: Arc<Pipe>,
    phase: Phase,
    met: Option<Arc<Mutex<Met>>>,
}

impl PrecompileProvider<EvmContext> for InferenceProvider {
    type Output = InterpreterResult;

    fn set_spec(&mut self, spec: SpecId) -> bool {
        let changed = <EthPrecompiles as PrecompileProvider<EvmContext>>::set_spec(&mut self.eth, spec);
        if changed {
            self.warm = warm_set(&self.eth);
        }
        changed
    }

    fn run(&mut self, ctx: &mut EvmContext, inputs: &CallInputs) -> Result<Option<InterpreterResult>, String> {
        if inputs.bytecode_address != INFERENCE_PRECOMPILE {
            return self.eth.run(ctx, inputs);
        }
        let calldata = inputs.input.bytes(ctx);
        Ok(Some(self.pipe.answer(self.phase, &calldata, inputs.gas_limit, self.met.as_deref())))
    }

    fn warm_addresses(&self) -> &AddressSet {
        &self.warm
    }

    fn contains(&self, address: &Address) -> bool {
        self.warm.contains(address)
    }
}

/// A receipt record as `nml_getInferenceReceipts` shows it: the record, with
/// its output decoded (`output` as tensors, or `error` with the reason).
pub fn record_json(record: &InferenceRecord) -> serde_json::Value {
    let mut json = serde_json::to_value(record).unwrap_or_default();
    if let Some(obj) = json.as_object_mut() {
        obj.insert("rawOutput".into(), serde_json::to_value(&record.output).unwrap_or_default());
        obj.remove("output");
        if record.success {
            let decoded = runModelInferenceCall::abi_decode_returns(&record.output).ok();
            obj.insert("output".into(), serde_json::to_value(decoded).unwrap_or_default());
        } else {
            obj.insert("error".into(), serde_json::Value::String(revert_reason(&record.output)));
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use alloy_sol_types::SolCall;

    use super::*;
    use crate::inference::abi::{MultiDimensionalNumberTensor, Number};
    use crate::inference::{InferenceError, ModelId, ModelInput};

    /// Test double: answers every request with one fixed tensor (after
    /// `delay`) and counts runs.
    #[derive(Default)]
    struct CountingExecutor {
        runs: AtomicUsize,
        delay: Duration,
    }

    impl Executor for CountingExecutor {
        fn run(&self, _model: &ModelId, _input: &ModelInput) -> Result<ModelOutput, InferenceError> {
            self.runs.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(self.delay);
            let y = MultiDimensionalNumberTensor {
                name: "y".into(),
                values: vec![Number { value: 7, decimals: 0 }],
                shape: vec![1],
            };
            Ok(ModelOutput { numbers: vec![y], ..ModelOutput::default() })
        }
    }

    fn request() -> ModelInferenceRequest {
        let x = MultiDimensionalNumberTensor {
            name: "x".into(),
            values: vec![Number { value: 1, decimals: 0 }],
            shape: vec![1],
        };
        ModelInferenceRequest {
            mode: 0,
            modelCID: "QmRhcpDXfYCKsimTmJYrAVM4Bbvck59Zb2onj3MHv9Kw5N".into(),
            input: ModelInput { numbers: vec![x], strings: vec![] },
        }
    }

    #[test]
    fn non_canonical_calldata_names_the_same_request() {
        let executor = Arc::new(CountingExecutor::default());
        let pipe = Pipe::new(executor.clone(), PipeConfig::default());
        let canonical = runModelInferenceCall { request: request() }.abi_encode();
        let first = pipe.answer(Phase::Call, &canonical, 1_000_000, None);
        assert_eq!(first.result, InstructionResult::Return);
        // The same request with its tuple 32 bytes further on: valid ABI, other bytes.
        let mut other = canonical[..4].to_vec();
        other.extend_from_slice(&alloy_primitives::U256::from(0x40).to_be_bytes::<32>());
        other.extend_from_slice(&[0u8; 32]);
        other.extend_from_slice(&canonical[36..]);
        assert_ne!(keccak256(&other[4..]), keccak256(&canonical[4..]));
        let second = pipe.answer(Phase::Call, &other, 1_000_000, None);
        assert_eq!(second.output, first.output);
        assert_eq!(executor.runs.load(Ordering::Relaxed), 1, "served as the known request");
        assert_eq!(pipe.status().inferences_run, 1);
    }

    #[test]
    fn concurrent_calls_with_the_same_unknown_request_run_it_once() {
        let executor = Arc::new(CountingExecutor { delay: Duration::from_millis(200), ..Default::default() });
        let pipe = Pipe::new(executor.clone(), PipeConfig::default());
        let calldata = runModelInferenceCall { request: request() }.abi_encode();
        let outputs: Vec<Bytes> = std::thread::scope(|scope| {
            let calls: Vec<_> =
                (0..4).map(|_| scope.spawn(|| pipe.answer(Phase::Call, &calldata, 1_000_000, None).output)).collect();
            // A dispatch round meeting the same request while the calls run it.
            std::thread::sleep(Duration::from_millis(50));
            pipe.dispatch(1, &[(request_id(&request()), request())]);
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        assert_eq!(executor.runs.load(Ordering::Relaxed), 1, "one run for all of them");
        assert!(outputs.windows(2).all(|w| w[0] == w[1]));
        let output = runModelInferenceCall::abi_decode_returns(&outputs[0]).unwrap();
        assert_eq!(output.numbers[0].values[0].value, 7);
        assert!(pipe.shared.lock().running.is_empty());
    }

    /// Test double: an executor that panics after a while.
    struct PanickingExecutor;

    impl Executor for PanickingExecutor {
        fn run(&self, _model: &ModelId, _input: &ModelInput) -> Result<ModelOutput, InferenceError> {
            std::thread::sleep(Duration::from_millis(100));
            panic!("test double: the executor panics");
        }
    }

    #[test]
    fn a_panicking_executor_still_answers_everyone_waiting() {
        let pipe = Pipe::new(Arc::new(PanickingExecutor), PipeConfig::default());
        let calldata = runModelInferenceCall { request: request() }.abi_encode();
        let answers: Vec<_> = std::thread::scope(|scope| {
            let calls: Vec<_> =
                (0..3).map(|_| scope.spawn(|| pipe.answer(Phase::Call, &calldata, 1_000_000, None))).collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        // One run, one failure, the same answer for all three.
        assert!(answers.windows(2).all(|w| w[0].output == w[1].output));
        for answer in answers {
            assert_eq!(answer.result, InstructionResult::Revert);
            let reason = Revert::abi_decode(&answer.output).unwrap().reason;
            assert!(reason.contains("panicked"), "{reason}");
        }
        assert!(pipe.shared.lock().running.is_empty());
    }

    #[test]
    fn gas_is_charged_by_input_size_and_a_short_limit_halts() {
        let pipe = Pipe::new(Arc::new(CountingExecutor::default()), PipeConfig::default());
        let calldata = runModelInferenceCall { request: request() }.abi_encode();
        let gas = request_gas(&request());
        assert_eq!(gas, GAS_BASE + GAS_PER_ELEMENT);
        let ok = pipe.answer(Phase::Call, &calldata, gas, None);
        assert_eq!((ok.result, ok.gas.remaining()), (InstructionResult::Return, 0));
        let short = pipe.answer(Phase::Call, &calldata, gas - 1, None);
        assert_eq!(short.result, InstructionResult::PrecompileOOG);
    }

    #[test]
    fn simulation_answers_unknown_requests_with_the_empty_flagged_output() {
        let executor = Arc::new(CountingExecutor::default());
        let pipe = Pipe::new(executor.clone(), PipeConfig::default());
        let calldata = runModelInferenceCall { request: request() }.abi_encode();
        let met = Mutex::new(Met::default());
        let answer = pipe.answer(Phase::Simulation, &calldata, 1_000_000, Some(&met));
        let output = runModelInferenceCall::abi_decode_returns(&answer.output).unwrap();
        assert!(output.is_simulation_result && output.numbers.is_empty());
        let met = met.into_inner();
        assert_eq!(met.unknown.len(), 1);
        assert_eq!(met.unknown[0].0, request_id(&request()));
        assert_eq!(executor.runs.load(Ordering::Relaxed), 0, "a simulation never runs a model");
        // A replay of a request never recorded reverts instead of running it.
        let replay = pipe.answer(Phase::Replay, &calldata, 1_000_000, None);
        assert_eq!(replay.result, InstructionResult::Revert);
        assert_eq!(executor.runs.load(Ordering::Relaxed), 0);
    }
}
