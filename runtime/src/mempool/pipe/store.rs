//! The results the inference mempool knows, by request id, and the claims
//! on requests being run: whoever meets a running request waits for its
//! result instead of running it again (PROTOCOL.md B3).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, keccak256};
use alloy_sol_types::{Revert, SolError};
use parking_lot::{Condvar, Mutex};

use super::Pipe;
use super::request::Request;
use crate::chain::{InferenceRecord, InputHash, PoolTx, Served, StateView};
use crate::inference::{InferenceCall, InferenceError, Timed};
use crate::llm::{LlmError, LlmRun};
use crate::mempool::Waker;
use crate::tee::{Attestation, Enclaves};

/// A result known by request id.
#[derive(Debug)]
pub(super) struct Known {
    /// The encoded `ModelOutput`, or the revert reason.
    pub(super) result: Result<Bytes, String>,
    pub(super) model: String,
    pub(super) mode: u8,
    /// Whether the request asked for an enclave's attestation.
    pub(super) tee: bool,
    pub(super) input_hash: InputHash,
    pub(super) took: Duration,
    /// The gas of the request ([`Request::gas`]); unknown for a result read
    /// back from a record (its calls then take the slow path).
    pub(super) gas: Option<u64>,
    /// A failure that may not happen again (the model was not registered
    /// yet, the run timed out, the executor was down): kept for the block
    /// being built, then forgotten, and never served to `eth_call`.
    pub(super) transient: bool,
    /// The enclave's attestation of a TEE-mode result.
    pub(super) attestation: Option<Attestation>,
}

impl Known {
    pub(super) fn new(request: &Request, run: Run) -> Self {
        Self {
            transient: run.transient,
            result: run.output,
            model: request.model().to_owned(),
            mode: request.mode(),
            tee: request.is_tee(),
            input_hash: request.input_hash(),
            took: run.took,
            gas: Some(request.gas()),
            attestation: None,
        }
    }

    /// This result attested by `enclave` at `timestamp` when the request
    /// asks for a TEE (PROTOCOL.md A2; the hashes are [`Attestation`]'s).
    /// An enclave that cannot sign fails the request, transiently.
    pub(super) fn attested(mut self, request_id: B256, enclaves: &Enclaves, timestamp: u64) -> Self {
        if !self.tee {
            return self;
        }
        let Ok(output) = &self.result else { return self };
        let attested = enclaves.attest(request_id, keccak256(output), timestamp);
        match attested {
            Ok(attestation) => self.attestation = Some(attestation),
            Err(e) => {
                self.result = Err(e.to_string());
                self.transient = true;
            }
        }
        self
    }

    /// A result read back from a mined transaction's record.
    pub(super) fn from_record(record: &InferenceRecord) -> Self {
        let result = if record.success { Ok(record.output.clone()) } else { Err(revert_reason(&record.output)) };
        Self {
            result,
            model: record.model.clone(),
            mode: record.mode,
            tee: record.attestation.is_some(),
            input_hash: record.input_hash.clone(),
            took: Duration::from_micros(record.duration_us),
            gas: None,
            transient: !record.success,
            attestation: record.attestation.clone(),
        }
    }

    pub(super) fn answer(&self) -> Answer {
        match &self.result {
            Ok(output) => Answer::Return(output.clone()),
            Err(reason) => Answer::Revert(reason.clone()),
        }
    }

    pub(super) fn record(&self, request_id: B256, round: Option<u32>, served: Served) -> InferenceRecord {
        let (success, output) = match &self.result {
            Ok(output) => (true, output.clone()),
            Err(reason) => (false, Revert::from(reason.as_str()).abi_encode().into()),
        };
        InferenceRecord {
            request_id,
            model: self.model.clone(),
            mode: self.mode,
            input_hash: self.input_hash.clone(),
            success,
            output,
            round,
            served,
            duration_us: u64::try_from(self.took.as_micros()).unwrap_or(u64::MAX),
            attestation: self.attestation.clone(),
        }
    }
}

pub(crate) fn revert_reason(data: &[u8]) -> String {
    Revert::abi_decode(data).map(|r| r.reason).unwrap_or_else(|_| "inference failed".to_owned())
}

/// What the precompile answers.
pub(super) enum Answer {
    Return(Bytes),
    Revert(String),
}

/// How one pending transaction was prepared so far (kept across blocks
/// while it waits for its inference).
#[derive(Debug, Default)]
pub(super) struct TxPrep {
    /// The dispatch round that found each request it met (absent: known before).
    pub(super) found: HashMap<B256, u32>,
    /// Rounds of dispatch run for it so far.
    pub(super) rounds: u32,
    /// It met new requests after the last round.
    pub(super) exhausted: bool,
    /// The requests it waits for (running in the background).
    pub(super) awaiting: Vec<B256>,
    /// Its sender and nonce: it is kept while the sender's nonce on chain
    /// has not passed it ([`TxPrep::may_be_pending`]).
    pub(super) sender: Address,
    pub(super) nonce: u64,
}

impl TxPrep {
    /// What nothing was learnt of yet for `tx`.
    pub(super) fn of(tx: &PoolTx) -> Self {
        Self { sender: tx.sender, nonce: tx.nonce(), ..Self::default() }
    }

    /// Whether its transaction may still be pending at `view`: not mined,
    /// nor replaced by a mined one.
    pub(super) fn may_be_pending(&self, view: &StateView) -> bool {
        self.nonce >= view.pool_nonce(self.sender)
    }
}

/// The transaction being included.
#[derive(Debug)]
pub(super) struct Current {
    pub(super) tx: B256,
    pub(super) records: Vec<InferenceRecord>,
    pub(super) may_defer: bool,
    pub(super) defer: bool,
}

#[derive(Default)]
pub(super) struct Shared {
    /// Results by request id, for simulation, inclusion and calls: a cache
    /// of at most `known_limit` results ([`Shared::forget_oldest`]).
    pub(super) known: HashMap<B256, Arc<Known>>,
    /// [`PipeConfig::known_limit`](super::PipeConfig::known_limit).
    pub(super) known_limit: usize,
    /// The results put in `known`, oldest first (an entry whose result has
    /// left `known` or been replaced since is skipped when it comes up).
    pub(super) arrivals: VecDeque<(B256, Weak<Known>)>,
    /// The ids of the transient failures in `known`, with the preparation
    /// that was current when each arrived: a failure serves that preparation
    /// and the next one, then is forgotten (a list, so that a block does not
    /// scan every result).
    pub(super) transient: Vec<(B256, u64)>,
    /// Preparations started so far.
    pub(super) generation: u64,
    /// Called when a background dispatch is done.
    pub(super) waker: Option<Waker>,
    /// The requests running now, by id: whoever meets one waits for its
    /// result instead of running it a second time (B3), be it a concurrent
    /// `eth_call` or a dispatch round.
    pub(super) running: HashMap<B256, Arc<Running>>,
    /// What inclusion served, by request id, for replays (B6): also the
    /// failures that `known` forgets.
    pub(super) recorded: HashMap<B256, Arc<Known>>,
    /// The pending transactions prepared so far, by hash.
    pub(super) prepared: HashMap<B256, TxPrep>,
    /// Transactions of a block being built that waits for their requests
    /// (`evm_mine`), while they run: `prepared` is out of the lock then.
    pub(super) awaiting_in_build: Vec<B256>,
    /// How often each pending transaction was deferred.
    pub(super) defers: HashMap<B256, u32>,
    pub(super) current: Option<Current>,
    pub(super) preparing: usize,
    pub(super) round: Option<u32>,
    pub(super) in_flight: usize,
    pub(super) rounds_run: u64,
}

/// A request being run: its result, once there is one.
#[derive(Debug, Default)]
pub(super) struct Running {
    pub(super) result: Mutex<Option<Arc<Known>>>,
    pub(super) done: Condvar,
}

impl Running {
    pub(super) fn wait(&self) -> Arc<Known> {
        let mut result = self.result.lock();
        loop {
            if let Some(known) = result.as_ref() {
                return Arc::clone(known);
            }
            self.done.wait(&mut result);
        }
    }

    pub(super) fn finish(&self, known: &Arc<Known>) {
        *self.result.lock() = Some(Arc::clone(known));
        self.done.notify_all();
    }
}

/// One run of a request, of either kind, as the store keeps it.
#[derive(Debug)]
pub(super) struct Run {
    /// The encoded answer, or the revert reason.
    pub(super) output: Result<Bytes, String>,
    /// The failure may not happen again ([`Known::transient`]).
    pub(super) transient: bool,
    pub(super) took: Duration,
}

impl Run {
    /// A model run: unknown models, timeouts and an executor that is down
    /// are transient.
    pub(super) fn model(run: Timed) -> Self {
        let transient = matches!(
            run.output,
            Err(InferenceError::UnknownModel { .. }
                | InferenceError::Timeout { .. }
                | InferenceError::Unavailable { .. }
                | InferenceError::ServerUnavailable { .. })
        );
        let output = run.output.map(|o| InferenceCall::encode_model_output(&o).into()).map_err(|e| e.to_string());
        Self { output, transient, took: run.took }
    }

    /// An LLM call ([`LlmError::is_transient`]).
    pub(super) fn llm(run: LlmRun) -> Self {
        let transient = run.output.as_ref().is_err_and(LlmError::is_transient);
        let output = run.output.map(|r| r.encode().into()).map_err(|e| e.to_string());
        Self { output, transient, took: run.took }
    }
}

/// A transient failure that never reached a backend.
pub(super) fn unavailable(reason: &str) -> Run {
    Run { output: Err(reason.to_owned()), transient: true, took: Duration::ZERO }
}

/// Who runs a request: this caller (it claimed it), or another one to wait for.
pub(super) enum Claim {
    Run(Arc<Running>),
    Wait(Arc<Running>),
    /// Known meanwhile (a run that finished since the caller looked).
    Known(Arc<Known>),
}

/// The claims a caller must finish. Whatever is left open when it is
/// dropped (a panic on the way) is finished as a transient failure, so that
/// nobody waits for it forever.
pub(super) struct Claims<'a> {
    pub(super) pipe: &'a Pipe,
    pub(super) open: Vec<(B256, Arc<Running>, Request)>,
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
/// those another caller runs already (waited for). Claims it is dropped
/// with, never run (a dispatch thread that could not start), are finished
/// as transient failures, as [`Claims`] finishes its own.
pub(super) struct Claimed {
    pub(super) pipe: Weak<Pipe>,
    pub(super) run: Vec<(B256, Arc<Running>, Request)>,
    pub(super) others: Vec<Arc<Running>>,
    /// The chain's time of the block the round prepares (what an enclave
    /// puts in its attestations).
    pub(super) timestamp: u64,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if self.run.is_empty() {
            return;
        }
        if let Some(pipe) = self.pipe.upgrade() {
            drop(Claims { pipe: &pipe, open: std::mem::take(&mut self.run) });
        }
    }
}

impl Shared {
    /// Nothing known yet, keeping at most `known_limit` results.
    pub(super) fn new(known_limit: usize) -> Self {
        Self { known_limit, ..Self::default() }
    }

    /// Claims `id` for running, unless somebody runs it already or its
    /// lasting result is known.
    pub(super) fn claim(&mut self, id: B256) -> Claim {
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
    pub(super) fn finish(&mut self, id: B256, running: &Running, known: Arc<Known>) -> Arc<Known> {
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

    /// Keeps `known` for `id`, noting a transient failure for forgetting,
    /// and forgets the oldest results past the bound.
    pub(super) fn insert_known(&mut self, id: B256, known: Arc<Known>) {
        // Listed once, however often it fails before it is forgotten.
        if known.transient && !self.known.get(&id).is_some_and(|k| k.transient) {
            self.transient.push((id, self.generation));
        }
        self.arrivals.push_back((id, Arc::downgrade(&known)));
        self.known.insert(id, known);
        if self.arrivals.len() > self.known_limit.saturating_mul(2).saturating_add(64) {
            // Replaced and forgotten results leave entries behind.
            let known = &self.known;
            self.arrivals.retain(|(id, arrived)| is_current(known, id, arrived));
        }
        self.forget_oldest();
    }

    /// Forgets the oldest results while more than `known_limit` are kept (down to
    /// seven eighths of it, so that this runs once per many results): a
    /// request met again runs again. Spared: the results a pending
    /// transaction's preparation found or awaits, which its next simulation
    /// must find known (or it would meet them as new, round after round);
    /// while a preparation is under way, which holds them itself, nothing
    /// is forgotten. Replays read `recorded`, which keeps what was served.
    pub(super) fn forget_oldest(&mut self) {
        let limit = self.known_limit;
        if self.known.len() <= limit || self.preparing > 0 {
            return;
        }
        let spared: HashSet<B256> =
            self.prepared.values().flat_map(|p| p.found.keys().chain(&p.awaiting)).copied().collect();
        let target = limit - limit / 8;
        let mut kept = Vec::new();
        while self.known.len() > target {
            let Some((id, arrived)) = self.arrivals.pop_front() else { break };
            if !is_current(&self.known, &id, &arrived) {
                continue;
            }
            if spared.contains(&id) {
                kept.push((id, arrived));
            } else {
                self.known.remove(&id);
            }
        }
        for spared in kept.into_iter().rev() {
            self.arrivals.push_front(spared);
        }
    }

    /// Forgets the transient failures older than the last preparation:
    /// they are retried by later blocks.
    pub(super) fn forget_transient(&mut self) {
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
    pub(super) fn is_awaiting(&self, tx: &B256) -> bool {
        self.prepared.get(tx).is_some_and(|p| p.awaiting.iter().any(|id| self.running.contains_key(id)))
    }

    pub(super) fn prep_of_current(&self) -> Option<&TxPrep> {
        self.prepared.get(&self.current.as_ref()?.tx)
    }
}

/// Whether `arrived` is the result `known` keeps for `id` now.
fn is_current(known: &HashMap<B256, Arc<Known>>, id: &B256, arrived: &Weak<Known>) -> bool {
    known.get(id).is_some_and(|k| std::ptr::eq(Arc::as_ptr(k), arrived.as_ptr()))
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("known", &self.known.len()).finish_non_exhaustive()
    }
}
