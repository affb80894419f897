//! The pre-execution stage: simulation rounds over a batch, the dispatch of
//! what they met (blocking for `evm_mine`, in the background otherwise),
//! and the inclusion hooks that put records on receipts.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use alloy_primitives::{Address, B256};
use parking_lot::Mutex;

use super::OnMiss;
use super::Pipe;
use super::precompile::{Met, SimulationPrecompiles};
use super::request::Request;
use super::store::{Claim, Claimed, Claims, Current, Known, Run, Running, TxPrep, unavailable};
use crate::chain::{InferenceRecord, PoolTx, Served};
use crate::evm::{Checkpoint, InvalidTx, TxOutcome};

use crate::mempool::{Inclusion, InferenceWait, PreExecution, PreIncluded, Prepared, StageContext, Waker};

/// The most pending transactions whose preparation is kept while they are
/// not in the block being prepared; past it, only those in the block are.
const PREPARED_LIMIT: usize = 4096;

impl Pipe {
    /// Claims the requests of round `round`, preparing a block at chain
    /// time `timestamp`: those nobody runs are this round's to run.
    pub(super) fn claim_round(&self, round: u32, requests: Vec<(B256, Request)>, timestamp: u64) -> Claimed {
        let mut claimed = Claimed { pipe: self.me.clone(), run: Vec::new(), others: Vec::new(), timestamp };
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
    pub(super) fn dispatch(&self, round: u32, requests: Vec<(B256, Request)>, timestamp: u64) {
        let _dispatch = tracing::trace_span!("dispatch").entered();
        let claimed = self.claim_round(round, requests, timestamp);
        self.run_round(claimed);
    }

    /// Runs what [`Pipe::claim_round`] claimed, then waits for the others.
    pub(super) fn run_round(&self, mut claimed: Claimed) {
        let (others, timestamp) = (std::mem::take(&mut claimed.others), claimed.timestamp);
        let mut claims = Claims { pipe: self, open: std::mem::take(&mut claimed.run) };
        let count = claims.open.len();
        let refs: Vec<&Request> = claims.open.iter().map(|(_, _, r)| r).collect();
        let runs = self.run_claimed(&refs);
        self.runs.fetch_add(count as u64, Ordering::Relaxed);
        let results: Vec<_> = claims
            .open
            .iter()
            .zip(self.attest_all(&claims.open, runs, timestamp))
            .map(|((id, running, _), known)| (*id, Arc::clone(running), Arc::new(known)))
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

    /// The results of a round's runs as the pipe keeps them, TEE-mode ones
    /// attested: the signatures (an RSA private-key operation each) are
    /// made side by side on the machine's cores, as each enclave signs on
    /// its own inference node, not one after another by the block builder.
    fn attest_all(&self, open: &[(B256, Arc<Running>, Request)], runs: Vec<Run>, timestamp: u64) -> Vec<Known> {
        let keep = |((id, _, request), run): (&(B256, Arc<Running>, Request), Run)| {
            Known::new(request, run).attested(*id, &self.enclaves, timestamp)
        };
        let signing = open.iter().filter(|(_, _, r)| r.is_tee()).count();
        let threads = self.cores.min(signing);
        if threads <= 1 {
            return open.iter().zip(runs).map(keep).collect();
        }
        let chunk = open.len().div_ceil(threads);
        let mut runs = runs.into_iter();
        let parts: Vec<Vec<Run>> = open.chunks(chunk).map(|part| runs.by_ref().take(part.len()).collect()).collect();
        std::thread::scope(|scope| {
            let handles: Vec<_> = open
                .chunks(chunk)
                .zip(parts)
                .map(|(part, runs)| scope.spawn(move || part.iter().zip(runs).map(keep).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .zip(open.chunks(chunk))
                .flat_map(|(h, part)| {
                    h.join().unwrap_or_else(|_| {
                        part.iter()
                            .map(|(_, _, request)| Known::new(request, unavailable("an enclave thread panicked")))
                            .collect()
                    })
                })
                .collect()
        })
    }

    /// Claims the requests now and runs them on a thread of their own; the
    /// waker is called when they are done. The caller goes on at once.
    pub(super) fn dispatch_in_background(&self, round: u32, requests: Vec<(B256, Request)>, timestamp: u64) {
        let claimed = self.claim_round(round, requests, timestamp);
        let Some(pipe) = self.me.upgrade() else { return };
        let spawned = std::thread::Builder::new().name("nml-dispatch".into()).spawn(move || {
            /// Wakes the miner however the round ends, a panic included:
            /// the transactions it held are then prepared again.
            struct Wake(Arc<Pipe>);
            impl Drop for Wake {
                fn drop(&mut self) {
                    let waker = self.0.shared.lock().waker.clone();
                    if let Some(wake) = waker {
                        wake();
                    }
                }
            }
            let wake = Wake(pipe);
            wake.0.run_round(claimed);
        });
        if let Err(e) = spawned {
            // The claims were moved into the closure that failed to start
            // and dropped with it: they finished as transient failures
            // (`Claimed`'s drop); the next block prepares them again.
            tracing::error!(%e, "cannot start an inference dispatch thread");
            let waker = self.shared.lock().waker.clone();
            if let Some(wake) = waker {
                wake();
            }
        }
    }

    /// Simulates one transaction on this thread; returns what it met, and
    /// its outcome and state (a stand-in for its inclusion as the block's
    /// first transaction).
    pub(super) fn simulate_one(
        &self,
        ctx: &StageContext<'_>,
        tx: &PoolTx,
    ) -> (Met, Result<TxOutcome, InvalidTx>, Checkpoint) {
        let _simulate = tracing::trace_span!("simulate").entered();
        let met = Arc::new(Mutex::new(Met::default()));
        let precompiles = SimulationPrecompiles { pipe: self.me.clone(), met: Arc::clone(&met) };
        let (outcome, state) = ctx.simulate_alone_with(tx, &precompiles);
        drop(precompiles);
        let met = Arc::try_unwrap(met).map(Mutex::into_inner).unwrap_or_else(|met| std::mem::take(&mut *met.lock()));
        (met, outcome, state)
    }

    /// Simulates one transaction on this thread; returns what it met.
    pub(super) fn simulate_tx(&self, ctx: &StageContext<'_>, tx: &PoolTx) -> Met {
        // An invalid transaction is the builder's to drop; it met nothing.
        self.simulate_one(ctx, tx).0
    }

    /// Simulates `txs`, each on its own, side by side on the machine's cores
    /// (one transaction is simulated on the calling thread); results in order.
    pub(super) fn simulate_all(&self, ctx: &StageContext<'_>, txs: &[&Arc<PoolTx>]) -> Vec<Met> {
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

/// Takes a waiting build's transactions out of `nml_mempoolStatus` once
/// their round is done, however it ends.
struct ClearOnDrop<'a>(&'a Pipe);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0.shared.lock().awaiting_in_build.clear();
    }
}

impl PreExecution for Pipe {
    fn prepare(&self, ctx: &StageContext<'_>, batch: Vec<Arc<PoolTx>>) -> Prepared {
        let _prepare = tracing::trace_span!("prepare").entered();
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
            // Automine's batch is one transaction: what the others learnt
            // (their rounds, where their requests were found) is kept while
            // they may be pending, within a bound. Past it, those whose
            // inference runs are kept too: the miner leaves them out of the
            // batch, and this is what holds them back.
            if prepared.len() > PREPARED_LIMIT {
                let running = &s.running;
                prepared.retain(|hash, prep| {
                    live.contains(hash) || prep.awaiting.iter().any(|id| running.contains_key(id))
                });
            } else {
                prepared.retain(|hash, prep| live.contains(hash) || prep.may_be_pending(ctx.view));
            }
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
        // Each transaction of the batch that runs code is simulated: a batch
        // is at most what a block could include (the miner bounds it by the
        // block's gas limit), not the pool, however deep that is.
        let mut todo: Vec<&Arc<PoolTx>> = batch.iter().filter(|tx| ctx.runs_code(tx)).collect();
        for tx in &todo {
            prepared.entry(tx.hash).or_insert_with(|| TxPrep::of(tx));
        }
        let mut found_in: HashMap<B256, u32> = HashMap::new();
        // The block's first transaction starts from the head state: its last
        // simulation can stand as its inclusion (one EVM pass fewer).
        let first = batch.first().filter(|tx| todo.first() == Some(tx) && ctx.simulation_is_inclusion(tx));
        let mut first_done: Option<(Result<TxOutcome, InvalidTx>, Checkpoint, Vec<B256>)> = None;
        // Transactions whose requests now run in the background.
        let mut waiting: HashSet<B256> = HashSet::new();
        for round in 1..=self.config.round_limit.saturating_add(1) {
            let mut unknown: Vec<(B256, Request)> = Vec::new();
            let mut seen: HashSet<B256> = HashSet::new();
            let mut again = Vec::new();
            let (lead, rest): (Vec<&Arc<PoolTx>>, Vec<&Arc<PoolTx>>) =
                todo.iter().partition(|tx| first.is_some_and(|f| f.hash == tx.hash));
            let mut simulations = self.simulate_all(ctx, &rest);
            if let Some(tx) = lead.first() {
                let (met, outcome, state) = self.simulate_one(ctx, tx);
                if met.unknown.is_empty() && !met.logged {
                    first_done = Some((outcome, state, met.ids.clone()));
                }
                simulations.insert(0, met);
            }
            let order: Vec<&Arc<PoolTx>> = lead.into_iter().chain(rest).collect();
            for (tx, Met { ids: met, unknown: misses, .. }) in order.into_iter().zip(simulations) {
                let prep = prepared.entry(tx.hash).or_insert_with(|| TxPrep::of(tx));
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
                let mut requests: HashMap<B256, Request> = unknown.into_iter().collect();
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
                self.dispatch_in_background(last_round, dispatch, ctx.next.timestamp);
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
            found_in.extend(unknown.iter().map(|(id, _)| (*id, round)));
            self.shared.lock().awaiting_in_build = again.iter().map(|tx| tx.hash).collect();
            let shown = ClearOnDrop(self);
            self.dispatch(round, unknown, ctx.next.timestamp);
            drop(shown);
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
        // What arrived while this preparation held the prepared transactions.
        s.forget_oldest();
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
