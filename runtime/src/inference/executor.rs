//! Executors: what runs a model request. [`OnnxExecutor`] runs ONNX models
//! in-process on ONNX Runtime (through `ort`, with the library loaded at run
//! time from a path the CLI provisions).
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

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use nml_protocol::{Dim, ElementType, ModelId};
use ort::environment::Environment;
use ort::session::builder::{GraphOptimizationLevel, SessionBuilder};
use ort::session::{RunOptions, Session};
use ort::value::{DynValue, TensorElementType, ValueType};

use super::abi::{InferenceMode, ModelInferenceRequest, ModelInput, ModelOutput};
use super::error::InferenceError;
use super::registry::{LoadedModel, ModelRegistry};
use super::tensor::{self, ModelSignature, Tensor, TensorData, TensorSpec};

/// The default inference timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs model requests. Implementations must be callable from many threads
/// at once.
pub trait Executor: Send + Sync {
    /// Runs `model` on `input` and returns its outputs (with
    /// `is_simulation_result = false`), or why it could not.
    fn run(&self, model: &ModelId, input: &ModelInput) -> Result<ModelOutput, InferenceError>;

    /// Runs several requests side by side; the results are in request order.
    /// The default runs each on its own scoped thread; [`OnnxExecutor`]
    /// queues them all on its workers instead.
    fn run_all(&self, requests: &[(&ModelId, &ModelInput)]) -> Vec<Result<ModelOutput, InferenceError>> {
        std::thread::scope(|scope| {
            let handles: Vec<_> =
                requests.iter().map(|&(model, input)| scope.spawn(move || self.run(model, input))).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(InferenceError::Unavailable { reason: "an inference thread panicked".to_owned() })
                    })
                })
                .collect()
        })
    }

    /// [`Executor::run_all`] with how long each model ran. The default times
    /// each run on its own scoped thread (queueing included); [`OnnxExecutor`]
    /// reports the time its worker spent on the run.
    fn run_all_timed(&self, requests: &[(&ModelId, &ModelInput)]) -> Vec<Timed> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = requests
                .iter()
                .map(|&(model, input)| {
                    scope.spawn(move || {
                        let start = Instant::now();
                        let output = self.run(model, input);
                        Timed { output, took: start.elapsed() }
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| Timed {
                        output: Err(InferenceError::Unavailable { reason: "an inference thread panicked".to_owned() }),
                        took: Duration::ZERO,
                    })
                })
                .collect()
        })
    }

    /// Runs a request as the precompile receives it: checks the mode and the
    /// model id, then runs the model.
    fn run_request(&self, request: &ModelInferenceRequest) -> Result<ModelOutput, InferenceError> {
        InferenceMode::try_from(request.mode)?;
        self.run(&ModelId::parse(&request.modelCID)?, &request.input)
    }

    /// [`Executor::run_request`] for several requests side by side, through
    /// [`Executor::run_all`]; the results are in request order.
    fn run_all_requests(&self, requests: &[&ModelInferenceRequest]) -> Vec<Result<ModelOutput, InferenceError>> {
        self.run_all_requests_timed(requests).into_iter().map(|t| t.output).collect()
    }

    /// [`Executor::run_all_requests`] with how long each model ran (zero for
    /// a request refused before it reached a model).
    fn run_all_requests_timed(&self, requests: &[&ModelInferenceRequest]) -> Vec<Timed> {
        let ids: Vec<Result<ModelId, InferenceError>> = requests
            .iter()
            .map(|r| {
                InferenceMode::try_from(r.mode).and_then(|_| ModelId::parse(&r.modelCID).map_err(InferenceError::from))
            })
            .collect();
        let valid: Vec<(&ModelId, &ModelInput)> =
            ids.iter().zip(requests).filter_map(|(id, r)| id.as_ref().ok().map(|id| (id, &r.input))).collect();
        let mut results = self.run_all_timed(&valid).into_iter();
        ids.into_iter()
            .map(|id| match id {
                Ok(_) => results.next().unwrap_or_else(|| Timed {
                    output: Err(InferenceError::Unavailable {
                        reason: "the executor returned too few results".to_owned(),
                    }),
                    took: Duration::ZERO,
                }),
                Err(e) => Timed { output: Err(e), took: Duration::ZERO },
            })
            .collect()
    }
}

/// The result of one run and how long the model ran.
#[derive(Debug, Clone)]
pub struct Timed {
    /// The outputs, or why there are none.
    pub output: Result<ModelOutput, InferenceError>,
    /// How long the run took.
    pub took: Duration,
}

impl std::fmt::Debug for dyn Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("dyn Executor")
    }
}

/// Where models run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Device {
    /// The CPU.
    #[default]
    Cpu,
    /// An NVIDIA GPU through ONNX Runtime's CUDA provider (cargo feature `cuda`).
    Cuda {
        /// The CUDA device ordinal.
        device_id: i32,
    },
}

/// ONNX Runtime's graph optimisation levels.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GraphOptimization {
    /// No rewrites.
    Disabled,
    /// Semantics-preserving rewrites only (the default; see the module docs).
    #[default]
    Basic,
    /// Also node fusions (machine-dependent results).
    Extended,
    /// Everything, layout transformations included (machine-dependent results).
    All,
}

/// How [`OnnxExecutor`] runs models.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxConfig {
    /// The ONNX Runtime shared library (`libonnxruntime.so.1.31.1`), version
    /// 1.24 or newer.
    pub library: PathBuf,
    /// Where models run.
    pub device: Device,
    /// Worker threads, i.e. how many requests run at once (default: the
    /// machine's available parallelism).
    pub workers: usize,
    /// ONNX Runtime intra-op threads per session (default 1: parallelism
    /// comes from running requests side by side).
    pub intra_threads: usize,
    /// How long a caller waits for a request, queueing included (default
    /// [`DEFAULT_TIMEOUT`]).
    pub timeout: Duration,
    /// Graph optimisation (default [`GraphOptimization::Basic`]).
    pub optimization: GraphOptimization,
    /// Shared libraries to load, in order and with `RTLD_GLOBAL`, before the
    /// CUDA provider is registered: the CUDA and cuDNN libraries of the
    /// `nvidia-*` wheels, which the loader does not find by itself.
    pub cuda_preload: Vec<PathBuf>,
}

impl OnnxConfig {
    /// The defaults, running on the CPU with `library`.
    pub fn new(library: impl Into<PathBuf>) -> Self {
        Self {
            library: library.into(),
            device: Device::Cpu,
            workers: std::thread::available_parallelism().map_or(1, usize::from),
            intra_threads: 1,
            timeout: DEFAULT_TIMEOUT,
            optimization: GraphOptimization::Basic,
            cuda_preload: Vec::new(),
        }
    }
}

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

/// The run slots: how many more requests may start now. Workers wait for
/// one; a caller only takes one that is free.
#[derive(Debug)]
struct Slots {
    state: Mutex<SlotState>,
    freed: Condvar,
}

#[derive(Debug)]
struct SlotState {
    free: usize,
    waiting: usize,
}

impl Slots {
    fn new(count: usize) -> Self {
        Self { state: Mutex::new(SlotState { free: count, waiting: 0 }), freed: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot if one is free and no worker waits for one (a worker
    /// holds a queued request that is older than the caller's).
    fn try_take(&self) -> bool {
        let mut state = self.lock();
        let free = state.free > 0 && state.waiting == 0;
        if free {
            state.free -= 1;
        }
        free
    }

    /// Takes a slot, waiting for one.
    fn take(&self) {
        let mut state = self.lock();
        while state.free == 0 {
            state.waiting += 1;
            state = self.freed.wait(state).unwrap_or_else(PoisonError::into_inner);
            state.waiting -= 1;
        }
        state.free -= 1;
    }

    /// Gives a slot back, waking a waiting worker (only when one waits: a
    /// wake-up is a system call).
    fn give(&self) {
        let mut state = self.lock();
        state.free += 1;
        if state.waiting > 0 {
            self.freed.notify_one();
        }
    }
}

/// Stops runs at their deadlines, on workers and calling threads alike.
/// Every deadline is "registration + timeout", taken under the lock, so
/// deadlines come in registration order and a watchdog that sleeps at most
/// one timeout is awake for each of them without being woken: registering
/// costs a lock, never a system call.
struct Watchdog {
    state: Mutex<Watches>,
    timeout: Duration,
}

/// The runs being watched, in key order (and so in deadline order).
#[derive(Default)]
struct Watches {
    next: u64,
    runs: VecDeque<Watched>,
}

struct Watched {
    key: u64,
    deadline: Instant,
    cancel: Arc<RunOptions>,
}

impl Watchdog {
    /// A watchdog and its thread, which ends once the executor is dropped.
    fn start(timeout: Duration) -> Result<Arc<Self>, InferenceError> {
        let watchdog = Arc::new(Self { state: Mutex::default(), timeout });
        let weak = Arc::downgrade(&watchdog);
        std::thread::Builder::new()
            .name("nml-inference-watchdog".into())
            .spawn(move || Self::watch_loop(&weak))
            .map_err(|e| InferenceError::Unavailable { reason: format!("cannot start the inference watchdog: {e}") })?;
        Ok(watchdog)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Watches> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn watch_loop(weak: &Weak<Self>) {
        loop {
            let Some(watchdog) = weak.upgrade() else { return };
            let now = Instant::now();
            let sleep = {
                let mut state = watchdog.lock();
                while state.runs.front().is_some_and(|w| w.deadline <= now) {
                    if let Some(expired) = state.runs.pop_front() {
                        let _ = expired.cancel.terminate();
                    }
                }
                state.runs.front().map_or(watchdog.timeout, |w| w.deadline - now)
            };
            drop(watchdog);
            std::thread::sleep(sleep.max(Duration::from_millis(1)));
        }
    }

    /// Watches a run until the returned key is given to [`Watchdog::unwatch`];
    /// its deadline is one timeout from now.
    fn watch(&self, cancel: Arc<RunOptions>) -> (u64, Instant) {
        let mut state = self.lock();
        let (key, deadline) = (state.next, Instant::now() + self.timeout);
        state.next += 1;
        state.runs.push_back(Watched { key, deadline, cancel });
        (key, deadline)
    }

    fn unwatch(&self, key: u64) {
        let mut state = self.lock();
        if let Ok(at) = state.runs.binary_search_by_key(&key, |w| w.key) {
            state.runs.remove(at);
        }
    }
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
type Prepared = (Arc<LoadedModel>, Vec<Tensor>, Arc<RunOptions>);

struct Job {
    model: Arc<LoadedModel>,
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
        let factory = Arc::new(SessionFactory::new(environment, &config)?);
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
    fn prepare(&self, model: &ModelId, input: &ModelInput) -> Result<Prepared, InferenceError> {
        let loaded = self.registry.loaded(model)?;
        let inputs = tensor::decode_inputs(model, &loaded.info.signature, input)?;
        let cancel = Arc::new(RunOptions::new().map_err(|e| runtime_error(model, &e))?);
        Ok((loaded, inputs, cancel))
    }

    fn run_here_holding_slot(&self, model: &ModelId, input: &ModelInput) -> Timed {
        let (loaded, inputs, cancel) = match self.prepare(model, input) {
            Ok(prepared) => prepared,
            Err(e) => return Timed { output: Err(e), took: Duration::ZERO },
        };
        let (key, deadline) = self.watchdog.watch(Arc::clone(&cancel));
        let started = Instant::now();
        let output = run_caught(&loaded, inputs, &cancel, &self.registry);
        let took = started.elapsed();
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
        let started = Instant::now();
        let output = if started >= deadline {
            // The caller has given up; do not start it.
            Err(InferenceError::Timeout { model: model.info.id.to_string(), timeout: Duration::ZERO })
        } else {
            run_caught(&model, inputs, &cancel, registry)
        };
        let took = started.elapsed();
        slots.give();
        // The caller may have timed out and gone.
        let _ = reply.send(Timed { output, took });
    }
}

/// [`run_job`], with a panic turned into a runtime error.
fn run_caught(
    model: &LoadedModel,
    inputs: Vec<Tensor>,
    cancel: &RunOptions,
    registry: &ModelRegistry,
) -> Result<ModelOutput, InferenceError> {
    let run = std::panic::AssertUnwindSafe(|| run_job(model, inputs, cancel, registry));
    std::panic::catch_unwind(run).unwrap_or_else(|_| {
        Err(InferenceError::Runtime { model: model.info.id.to_string(), reason: "the run panicked".to_owned() })
    })
}

fn run_job(
    model: &LoadedModel,
    inputs: Vec<Tensor>,
    cancel: &RunOptions,
    registry: &ModelRegistry,
) -> Result<ModelOutput, InferenceError> {
    let id = &model.info.id;
    let inputs = inputs
        .into_iter()
        .map(|t| to_value(t.data, &t.shape).map(|v| (t.name, v)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| runtime_error(id, &e))?;
    let mut session = model.checkout(registry.factory())?;
    let outputs = run_session(&mut session, id, &model.info.signature, inputs, cancel);
    model.checkin(session);
    tensor::encode_outputs(id, outputs?)
}

fn run_session(
    session: &mut Session,
    id: &ModelId,
    signature: &ModelSignature,
    inputs: Vec<(String, DynValue)>,
    cancel: &RunOptions,
) -> Result<Vec<Tensor>, InferenceError> {
    let outputs = session.run_with_options(inputs, cancel).map_err(|e| runtime_error(id, &e))?;
    signature
        .outputs
        .iter()
        .map(|spec| {
            let value = outputs.get(&spec.name).ok_or_else(|| InferenceError::Runtime {
                model: id.to_string(),
                reason: format!("the run returned no output `{}`", spec.name),
            })?;
            from_value(&spec.name, value).map_err(|e| runtime_error(id, &e))
        })
        .collect()
}

fn runtime_error(id: &ModelId, e: &impl std::fmt::Display) -> InferenceError {
    InferenceError::Runtime { model: id.to_string(), reason: e.to_string() }
}

fn to_value(data: TensorData, shape: &[usize]) -> ort::Result<DynValue> {
    use ort::value::Tensor as OrtTensor;
    let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
    Ok(match data {
        TensorData::Float16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::BFloat16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Float32(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Float64(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int8(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int32(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Int64(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint8(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint16(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint32(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Uint64(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::Bool(v) => OrtTensor::from_array((shape, v))?.into_dyn(),
        TensorData::String(v) => OrtTensor::from_string_array((shape, v.as_slice()))?.into_dyn(),
    })
}

fn from_value(name: &str, value: &DynValue) -> ort::Result<Tensor> {
    let ty = value.dtype().tensor_type().ok_or_else(|| ort::Error::new(format!("output `{name}` is not a tensor")))?;
    macro_rules! extract {
        ($variant:ident, $ty:ty) => {{
            let (shape, data) = value.try_extract_tensor::<$ty>()?;
            (shape.iter().map(|&d| d as usize).collect(), TensorData::$variant(data.to_vec()))
        }};
    }
    let (shape, data) = match ty {
        TensorElementType::Float16 => extract!(Float16, half::f16),
        TensorElementType::Bfloat16 => extract!(BFloat16, half::bf16),
        TensorElementType::Float32 => extract!(Float32, f32),
        TensorElementType::Float64 => extract!(Float64, f64),
        TensorElementType::Int8 => extract!(Int8, i8),
        TensorElementType::Int16 => extract!(Int16, i16),
        TensorElementType::Int32 => extract!(Int32, i32),
        TensorElementType::Int64 => extract!(Int64, i64),
        TensorElementType::Uint8 => extract!(Uint8, u8),
        TensorElementType::Uint16 => extract!(Uint16, u16),
        TensorElementType::Uint32 => extract!(Uint32, u32),
        TensorElementType::Uint64 => extract!(Uint64, u64),
        TensorElementType::Bool => extract!(Bool, bool),
        TensorElementType::String => {
            let (shape, data) = value.try_extract_strings()?;
            (shape.iter().map(|&d| d as usize).collect(), TensorData::String(data))
        }
        other => {
            return Err(ort::Error::new(format!("output `{name}` has type {other}, which TensorLib cannot carry")));
        }
    };
    Ok(Tensor { name: name.to_owned(), shape, data })
}

fn element_type(ty: TensorElementType) -> Option<ElementType> {
    Some(match ty {
        TensorElementType::Float16 => ElementType::Float16,
        TensorElementType::Bfloat16 => ElementType::BFloat16,
        TensorElementType::Float32 => ElementType::Float32,
        TensorElementType::Float64 => ElementType::Float64,
        TensorElementType::Int8 => ElementType::Int8,
        TensorElementType::Int16 => ElementType::Int16,
        TensorElementType::Int32 => ElementType::Int32,
        TensorElementType::Int64 => ElementType::Int64,
        TensorElementType::Uint8 => ElementType::Uint8,
        TensorElementType::Uint16 => ElementType::Uint16,
        TensorElementType::Uint32 => ElementType::Uint32,
        TensorElementType::Uint64 => ElementType::Uint64,
        TensorElementType::Bool => ElementType::Bool,
        TensorElementType::String => ElementType::String,
        _ => return None,
    })
}

/// The process's ONNX Runtime environment. `ort` allows one per process and
/// loads one library; a second executor shares both, and asking for another
/// library afterwards is an error.
static ENVIRONMENT: Mutex<Option<(PathBuf, Environment)>> = Mutex::new(None);

fn environment(library: &Path) -> Result<Environment, InferenceError> {
    let mut slot = ENVIRONMENT.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((loaded, environment)) = slot.as_ref() {
        return if same_file(loaded, library) {
            Ok(environment.clone())
        } else {
            Err(InferenceError::Library {
                path: library.to_path_buf(),
                reason: format!("this process has already loaded ONNX Runtime from {}", loaded.display()),
            })
        };
    }
    let library_error = |reason: String| InferenceError::Library { path: library.to_path_buf(), reason };
    if !library.is_file() {
        return Err(library_error("no such file".to_owned()));
    }
    let builder = ort::init_from(library).map_err(|e| library_error(e.to_string()))?;
    let environment =
        builder.with_name("nml").with_telemetry(false).build().map_err(|e| library_error(e.to_string()))?;
    // Every failure reaches the caller as an error carrying ONNX Runtime's
    // message (and becomes a revert reason); logging it again on stderr
    // would only duplicate it.
    environment.set_log_level(ort::logging::LogLevel::Fatal);
    *slot = Some((library.to_path_buf(), environment.clone()));
    Ok(environment)
}

fn same_file(a: &Path, b: &Path) -> bool {
    a == b || matches!((a.canonicalize(), b.canonicalize()), (Ok(a), Ok(b)) if a == b)
}

/// Creates sessions with the executor's settings.
pub(crate) struct SessionFactory {
    environment: Environment,
    device: Device,
    intra_threads: usize,
    optimization: GraphOptimization,
}

impl SessionFactory {
    fn new(environment: Environment, config: &OnnxConfig) -> Result<Self, InferenceError> {
        let factory = Self {
            environment,
            device: config.device,
            intra_threads: config.intra_threads.max(1),
            optimization: config.optimization,
        };
        if let Device::Cuda { .. } = config.device {
            cuda::prepare(&config.library, &config.cuda_preload)?;
            // Registering the provider loads its library and CUDA's: fail
            // here, before any model, when they are missing.
            factory.builder().map_err(|e| match e {
                BuildError::Cuda(e) => e,
                BuildError::Ort(reason) => InferenceError::Cuda { reason },
            })?;
        }
        Ok(factory)
    }

    fn builder(&self) -> Result<SessionBuilder, BuildError> {
        let level = match self.optimization {
            GraphOptimization::Disabled => GraphOptimizationLevel::Disable,
            GraphOptimization::Basic => GraphOptimizationLevel::Level1,
            GraphOptimization::Extended => GraphOptimizationLevel::Level2,
            GraphOptimization::All => GraphOptimizationLevel::All,
        };
        let ort = |e: ort::Error<SessionBuilder>| BuildError::Ort(e.to_string());
        let builder = Session::builder(&self.environment)
            .map_err(|e| BuildError::Ort(e.to_string()))?
            .with_optimization_level(level)
            .map_err(ort)?
            .with_parallel_execution(false)
            .map_err(ort)?
            .with_inter_threads(1)
            .map_err(ort)?
            .with_intra_threads(self.intra_threads)
            .map_err(ort)?
            .with_intra_op_spinning(false)
            .map_err(ort)?
            .with_deterministic_compute(true)
            .map_err(ort)?;
        match self.device {
            Device::Cpu => Ok(builder),
            Device::Cuda { device_id } => cuda::register(builder, device_id).map_err(BuildError::Cuda),
        }
    }

    /// A new session for a model's bytes.
    pub(crate) fn create(&self, id: &ModelId, bytes: &[u8]) -> Result<Session, InferenceError> {
        let load_error = |reason: String| InferenceError::LoadModel { model: id.to_string(), reason };
        let mut builder = self.builder().map_err(|e| match e {
            BuildError::Cuda(e) => e,
            BuildError::Ort(reason) => load_error(reason),
        })?;
        builder.commit_from_memory(bytes).map_err(|e| match self.device {
            Device::Cpu => load_error(e.to_string()),
            Device::Cuda { .. } => InferenceError::Cuda { reason: format!("model `{id}`: {e}") },
        })
    }

    /// A loaded model's inputs and outputs.
    pub(crate) fn signature(&self, id: &ModelId, session: &Session) -> Result<ModelSignature, InferenceError> {
        let spec = |kind: &str, outlet: &ort::value::Outlet| {
            let unsupported = |ty: String| InferenceError::UnsupportedType {
                model: id.to_string(),
                tensor: format!("{kind} `{}`", outlet.name()),
                ty,
            };
            let ValueType::Tensor { ty, shape, dimension_symbols } = outlet.dtype() else {
                return Err(unsupported(outlet.dtype().to_string()));
            };
            let element = element_type(*ty).ok_or_else(|| unsupported(ty.to_string()))?;
            let shape = shape
                .iter()
                .enumerate()
                .map(|(i, &d)| match u64::try_from(d) {
                    Ok(d) => Dim::Fixed(d),
                    Err(_) => Dim::Symbolic(dimension_symbols.get(i).filter(|s| !s.is_empty()).cloned()),
                })
                .collect();
            Ok(TensorSpec { name: outlet.name().to_owned(), element, shape })
        };
        Ok(ModelSignature {
            inputs: session.inputs().iter().map(|o| spec("input", o)).collect::<Result<_, _>>()?,
            outputs: session.outputs().iter().map(|o| spec("output", o)).collect::<Result<_, _>>()?,
        })
    }
}

enum BuildError {
    Ort(String),
    Cuda(InferenceError),
}

#[cfg(feature = "cuda")]
mod cuda {
    use std::path::{Path, PathBuf};

    use ort::ep::{CUDA, ExecutionProvider};
    use ort::session::builder::SessionBuilder;

    use crate::inference::error::InferenceError;

    /// Preloads the CUDA libraries and checks that the library has the CUDA provider.
    pub(super) fn prepare(library: &Path, preload: &[PathBuf]) -> Result<(), InferenceError> {
        for path in preload {
            // SAFETY: loading a shared library runs its initialisers; these are
            // NVIDIA's CUDA libraries, named by the user or the CLI.
            let loaded = unsafe {
                libloading::os::unix::Library::open(
                    Some(path),
                    libloading::os::unix::RTLD_NOW | libloading::os::unix::RTLD_GLOBAL,
                )
            };
            let library = loaded
                .map_err(|e| InferenceError::Cuda { reason: format!("cannot preload {}: {e}", path.display()) })?;
            // Kept loaded for the life of the process, as the provider expects.
            std::mem::forget(library);
        }
        match CUDA::is_available() {
            Ok(true) => Ok(()),
            Ok(false) => Err(InferenceError::Cuda {
                reason: format!(
                    "the ONNX Runtime library {} has no CUDA provider\nhelp: use the library of the `onnxruntime-gpu` wheel (onnxruntime/capi/libonnxruntime.so.*, with libonnxruntime_providers_cuda.so beside it), or run on the CPU",
                    library.display()
                ),
            }),
            Err(e) => Err(InferenceError::Cuda { reason: e.to_string() }),
        }
    }

    /// Registers the CUDA provider on `builder`; a failure is an error, never a fallback.
    pub(super) fn register(builder: SessionBuilder, device_id: i32) -> Result<SessionBuilder, InferenceError> {
        builder
            .with_execution_providers([CUDA::default().with_device_id(device_id).build().error_on_failure()])
            .map_err(|e| InferenceError::Cuda {
                reason: format!("cannot register the CUDA provider on device {device_id}: {e}\nhelp: check that a GPU is present (nvidia-smi) and that the CUDA 13 and cuDNN 9 libraries are preloaded or on the loader's path"),
            })
    }
}

#[cfg(not(feature = "cuda"))]
mod cuda {
    use std::path::{Path, PathBuf};

    use ort::session::builder::SessionBuilder;

    use crate::inference::error::InferenceError;

    fn unsupported() -> InferenceError {
        InferenceError::Cuda {
            reason: "this build of nml has no CUDA support\nhelp: rebuild with the `cuda` feature of nml-runtime (`cargo build --release --features nml-runtime/cuda`), or run on the CPU".to_owned(),
        }
    }

    pub(super) fn prepare(_library: &Path, _preload: &[PathBuf]) -> Result<(), InferenceError> {
        Err(unsupported())
    }

    pub(super) fn register(_builder: SessionBuilder, _device_id: i32) -> Result<SessionBuilder, InferenceError> {
        Err(unsupported())
    }
}
