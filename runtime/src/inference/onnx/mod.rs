//! The ONNX Runtime backend: [`OnnxExecutor`] runs ONNX models in-process on
//! ONNX Runtime (through `ort`, with the library loaded at run time from a
//! path the CLI provisions), and its [`ModelRegistry`] holds the models with
//! their session pools.
//!
//! One job per file:
//! - this file: the executor, its queue and workers, and where each request
//!   runs (a worker or the calling thread);
//! - `config.rs`: [`OnnxConfig`], [`Device`], [`GraphOptimization`];
//! - `schedule.rs`: the run slots and the watchdog;
//! - `run.rs`: one run of a request on a session of the model's pool;
//! - `session.rs`: the process's ONNX Runtime environment and [`OnnxSessions`],
//!   which builds sessions and reads signatures;
//! - `convert.rs`: tensors ⇄ ONNX Runtime values;
//! - `cuda.rs`: the CUDA execution provider.
//!
//! # Parallelism
//!
//! ONNX Runtime's `Session::run` takes `&mut self`, so one session runs one
//! request at a time. The executor keeps a pool of sessions per model (grown
//! on demand to the number of workers running that model at once) and a
//! fixed set of worker threads ([`OnnxConfig::workers`], default: the
//! machine's cores) that take requests from one queue. Requests of different
//! transactions are never batched into one run: ONNX Runtime gives different
//! results for different batch sizes on some operators.
//!
//! # Determinism
//!
//! ONNX Runtime is not bit-reproducible across machines (the chain records
//! results instead, PROTOCOL.md B6), but on one machine every session runs
//! the same way:
//! - sequential execution mode, one inter-op thread;
//! - a fixed number of intra-op threads per session ([`OnnxConfig::intra_threads`],
//!   default 1), with spinning off;
//! - graph optimisation [`GraphOptimization::Basic`] by default: only
//!   semantics-preserving rewrites (constant folding, redundant node
//!   elimination). The extended and layout levels fuse nodes into kernels
//!   chosen by the CPU's instruction set, which changes the last bits of
//!   results from one machine to the next;
//! - deterministic compute on (it matters on CUDA, where kernel selection
//!   would otherwise be timed).
//!
//! # Timeout
//!
//! A caller waits at most [`OnnxConfig::timeout`] from submitting a request,
//! queueing included; then it gets [`InferenceError::Timeout`], the run is
//! told to stop (ONNX Runtime checks between nodes) and a request still in
//! the queue is dropped unrun. The node never hangs on a model.
//!
//! # Where a request runs
//!
//! At most [`OnnxConfig::workers`] requests run at once. A caller whose last
//! (or only) request finds a run slot free runs it on its own thread instead
//! of handing it to a worker and sleeping until the worker answers: the
//! common case of one transaction with one request then costs no thread
//! hand-off (two wake-ups, about 30 µs on a 2-core VM). A watchdog thread
//! stops such a run at its deadline as it would a worker's; the caller then
//! returns when ONNX Runtime reaches the next node boundary.
//!
//! # CUDA
//!
//! [`Device::Cuda`] needs the `cuda` cargo feature and a GPU build of the
//! library (the `onnxruntime-gpu` wheel); the CUDA provider is registered with
//! `error_on_failure`, so a session that cannot use the GPU is an error,
//! never a silent run on the CPU.

mod config;
mod convert;
mod cuda;
mod run;
mod schedule;
mod session;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nml_protocol::ModelId;
use ort::session::{RunOptions, Session};

use self::run::{run_caught, runtime_error};
use self::schedule::{Slots, Watchdog};
pub(crate) use self::session::environment;
use super::abi::{ModelInput, ModelOutput};
use super::error::InferenceError;
use super::executor::{Executor, Timed};
use super::registry::{LoadedModel, Registry};
use super::tensor::{self, Tensor};

pub use self::config::{Device, GraphOptimization, OnnxConfig};
pub use self::session::OnnxSessions;

/// The models an [`OnnxExecutor`] serves, each with its pool of ONNX Runtime
/// sessions.
pub type ModelRegistry = Registry<OnnxSessions>;

/// A registered model with its idle ONNX Runtime sessions.
type Model = LoadedModel<Session>;

/// The ONNX executor: a registry of models with session pools, and worker
/// threads that run requests from a queue. Dropping it stops the workers once
/// their current run ends.
pub struct OnnxExecutor {
    registry: Arc<ModelRegistry>,
    queue: Sender<Job>,
    timeout: Duration,
    workers: usize,
    slots: Arc<Slots>,
    watchdog: Arc<Watchdog>,
}

impl std::fmt::Debug for OnnxExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxExecutor")
            .field("workers", &self.workers)
            .field("timeout", &self.timeout)
            .field("registry", &self.registry)
            .finish_non_exhaustive()
    }
}

/// A queued request: where its result arrives, how to stop it, and when the
/// caller stops waiting.
struct Pending {
    result: Receiver<Timed>,
    cancel: Arc<RunOptions>,
    deadline: Instant,
    /// The watchdog's key.
    key: u64,
}

/// A request ready to run: the model, its inputs, the handle that stops it.
type ReadyRun = (Arc<Model>, Vec<Tensor>, Arc<RunOptions>);

struct Job {
    model: Arc<Model>,
    inputs: Vec<Tensor>,
    deadline: Instant,
    cancel: Arc<RunOptions>,
    reply: SyncSender<Timed>,
}

impl OnnxExecutor {
    /// Loads ONNX Runtime (once per process) and starts the workers. The
    /// registry starts empty.
    pub fn new(config: OnnxConfig) -> Result<Self, InferenceError> {
        let environment = environment(&config.library)?;
        let factory = Arc::new(OnnxSessions::new(environment, &config)?);
        let registry = Arc::new(ModelRegistry::new(factory));
        let (queue, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        let workers = config.workers.max(1);
        let slots = Arc::new(Slots::new(workers));
        for i in 0..workers {
            let jobs = Arc::clone(&jobs);
            let registry = Arc::clone(&registry);
            let slots = Arc::clone(&slots);
            std::thread::Builder::new()
                .name(format!("nml-inference-{i}"))
                .spawn(move || work(&jobs, &registry, &slots))
                .map_err(|e| InferenceError::Unavailable {
                    reason: format!("cannot start an inference worker: {e}"),
                })?;
        }
        let watchdog = Watchdog::start(config.timeout)?;
        Ok(Self { registry, queue, timeout: config.timeout, workers, slots, watchdog })
    }

    /// The models this executor serves; register models through it.
    pub fn registry(&self) -> &Arc<ModelRegistry> {
        &self.registry
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// The inference timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Converts the inputs and queues the run; the receiver gets the result.
    fn submit(&self, model: &ModelId, input: &ModelInput) -> Result<Pending, InferenceError> {
        let (loaded, inputs, cancel) = self.prepare(model, input)?;
        let (reply, result) = mpsc::sync_channel(1);
        // Watched from before it is queued: the watchdog stops it at its
        // deadline even while the caller is busy running a request itself.
        let (key, deadline) = self.watchdog.watch(Arc::clone(&cancel));
        let job = Job { model: loaded, inputs, deadline, cancel: Arc::clone(&cancel), reply };
        if self.queue.send(job).is_err() {
            self.watchdog.unwatch(key);
            return Err(InferenceError::Unavailable { reason: "the workers have stopped".to_owned() });
        }
        Ok(Pending { result, cancel, deadline, key })
    }

    /// Runs a request on the calling thread, which holds a run slot (given
    /// back here), under the watchdog.
    fn run_here(&self, model: &ModelId, input: &ModelInput) -> Timed {
        /// Gives the slot back however the run ends, a panic included.
        struct Held<'a>(&'a Slots);
        impl Drop for Held<'_> {
            fn drop(&mut self) {
                self.0.give();
            }
        }
        let _held = Held(&self.slots);
        self.run_here_holding_slot(model, input)
    }

    /// The model, its inputs as tensors, and the handle that stops its run.
    fn prepare(&self, model: &ModelId, input: &ModelInput) -> Result<ReadyRun, InferenceError> {
        let loaded = self.registry.loaded(model)?;
        let inputs = tensor::decode_inputs(model, &loaded.info.signature, input)?;
        let cancel = Arc::new(RunOptions::new().map_err(|e| runtime_error(model, &e))?);
        Ok((loaded, inputs, cancel))
    }

    fn run_here_holding_slot(&self, model: &ModelId, input: &ModelInput) -> Timed {
        let (loaded, inputs, cancel) = match self.prepare(model, input) {
            Ok(ready) => ready,
            Err(e) => return Timed { output: Err(e), took: Duration::ZERO },
        };
        let (key, deadline) = self.watchdog.watch(Arc::clone(&cancel));
        let Timed { output, took } = run_caught(&loaded, inputs, &cancel, &self.registry);
        self.watchdog.unwatch(key);
        let output = match output {
            // Stopped by the watchdog (or past the deadline anyway).
            Err(_) if Instant::now() >= deadline => {
                Err(InferenceError::Timeout { model: model.to_string(), timeout: self.timeout })
            }
            output => output,
        };
        Timed { output, took }
    }

    fn wait(&self, model: &ModelId, Pending { result, cancel, deadline, key }: Pending) -> Timed {
        let started = Instant::now();
        let received = result.recv_timeout(deadline.saturating_duration_since(started));
        self.watchdog.unwatch(key);
        match received {
            // A run the watchdog stopped fails with ONNX Runtime's "terminate"
            // error: past the deadline, any failure is the timeout.
            Ok(Timed { output: Err(_), took }) if Instant::now() >= deadline => {
                Timed { output: Err(InferenceError::Timeout { model: model.to_string(), timeout: self.timeout }), took }
            }
            Ok(timed) => timed,
            Err(RecvTimeoutError::Timeout) => {
                // Stops the run at the next node; the worker then moves on.
                let _ = cancel.terminate();
                let output = Err(InferenceError::Timeout { model: model.to_string(), timeout: self.timeout });
                Timed { output, took: started.elapsed() }
            }
            Err(RecvTimeoutError::Disconnected) => Timed {
                output: Err(InferenceError::Unavailable {
                    reason: format!("the worker running model `{model}` stopped"),
                }),
                took: Duration::ZERO,
            },
        }
    }
}

impl Executor for OnnxExecutor {
    fn model_id(&self, text: &str) -> Result<ModelId, InferenceError> {
        self.registry.id(text).map_or_else(|| Ok(ModelId::parse(text)?), Ok)
    }

    fn signature(&self, model: &ModelId) -> Option<super::tensor::ModelSignature> {
        self.registry.get(model).map(|info| info.signature)
    }

    fn run(&self, model: &ModelId, input: &ModelInput) -> Result<ModelOutput, InferenceError> {
        self.run_all_timed(&[(model, input)]).pop().map_or_else(
            || Err(InferenceError::Unavailable { reason: "the executor returned no result".to_owned() }),
            |t| t.output,
        )
    }

    fn run_all(&self, requests: &[(&ModelId, &ModelInput)]) -> Vec<Result<ModelOutput, InferenceError>> {
        self.run_all_timed(requests).into_iter().map(|t| t.output).collect()
    }

    fn run_all_timed(&self, requests: &[(&ModelId, &ModelInput)]) -> Vec<Timed> {
        let Some((&(last_model, last_input), rest)) = requests.split_last() else { return Vec::new() };
        // The others go to the workers first, so that they start at once.
        let pending: Vec<_> = rest.iter().map(|&(model, input)| self.submit(model, input)).collect();
        // The caller would only sleep until the last one is done: with a
        // slot free, it runs that one itself.
        let last = if self.slots.try_take() { Some(self.run_here(last_model, last_input)) } else { None };
        let last_pending = last.is_none().then(|| self.submit(last_model, last_input));
        let mut results: Vec<Timed> = pending
            .into_iter()
            .chain(last_pending)
            .zip(requests)
            .map(|(p, &(model, _))| match p {
                Ok(p) => self.wait(model, p),
                Err(e) => Timed { output: Err(e), took: Duration::ZERO },
            })
            .collect();
        results.extend(last);
        results
    }
}

/// A worker: takes jobs until the executor is dropped.
fn work(jobs: &Mutex<Receiver<Job>>, registry: &ModelRegistry, slots: &Slots) {
    loop {
        let job = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(Job { model, inputs, deadline, cancel, reply }) = job else { return };
        slots.take();
        let timed = if Instant::now() >= deadline {
            // The caller has given up; do not start it.
            let timeout = InferenceError::Timeout { model: model.info.id.to_string(), timeout: Duration::ZERO };
            Timed { output: Err(timeout), took: Duration::ZERO }
        } else {
            run_caught(&model, inputs, &cancel, registry)
        };
        slots.give();
        // The caller may have timed out and gone.
        let _ = reply.send(timed);
    }
}
