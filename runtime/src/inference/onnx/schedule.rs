//! When runs start and when they are stopped: the run slots that cap how
//! many requests run at once, and the watchdog that stops a run at its
//! deadline, on a worker or on a calling thread alike.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use ort::session::RunOptions;

use crate::inference::error::InferenceError;

/// The run slots: how many more requests may start now. Workers wait for
/// one; a caller only takes one that is free.
#[derive(Debug)]
pub(super) struct Slots {
    state: Mutex<SlotState>,
    freed: Condvar,
}

#[derive(Debug)]
struct SlotState {
    free: usize,
    waiting: usize,
}

impl Slots {
    pub(super) fn new(count: usize) -> Self {
        Self { state: Mutex::new(SlotState { free: count, waiting: 0 }), freed: Condvar::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes a slot if one is free and no worker waits for one (a worker
    /// holds a queued request that is older than the caller's).
    pub(super) fn try_take(&self) -> bool {
        let mut state = self.lock();
        let free = state.free > 0 && state.waiting == 0;
        if free {
            state.free -= 1;
        }
        free
    }

    /// Takes a slot, waiting for one.
    pub(super) fn take(&self) {
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
    pub(super) fn give(&self) {
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
pub(super) struct Watchdog {
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
    pub(super) fn start(timeout: Duration) -> Result<Arc<Self>, InferenceError> {
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
    pub(super) fn watch(&self, cancel: Arc<RunOptions>) -> (u64, Instant) {
        let mut state = self.lock();
        let (key, deadline) = (state.next, Instant::now() + self.timeout);
        state.next += 1;
        state.runs.push_back(Watched { key, deadline, cancel });
        (key, deadline)
    }

    pub(super) fn unwatch(&self, key: u64) {
        let mut state = self.lock();
        if let Ok(at) = state.runs.binary_search_by_key(&key, |w| w.key) {
            state.runs.remove(at);
        }
    }
}
