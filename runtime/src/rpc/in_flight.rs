//! The bound on calls in flight per connection: a WebSocket client may send
//! any number of requests without waiting for answers, and jsonrpsee starts
//! each one at once, so one client could fill tokio's blocking pool with slow
//! `eth_call`s and keep every other client's slow calls waiting. Past
//! [`super::ServerLimits::calls_in_flight`] calls (a batch counts as one),
//! a connection's further calls wait their turn, in order. (So with that
//! many `eth_sendRawTransactionSync` calls waiting for a block, an
//! `evm_mine` sent after them on the same connection waits until one of
//! them times out.)
//!
//! The calls waiting their turn are bounded too ([`MAX_WAITING`]): past it a
//! call is answered `-32005` at once, without running ([`check_waiting`],
//! called by `dispatch`), so a client cannot pile up requests in memory.
//!
//! jsonrpsee builds the middleware once per WebSocket connection and once
//! per HTTP request, so each holds its own count.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use jsonrpsee::Extensions;
use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObjectOwned, Request};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::LIMIT_EXCEEDED;

/// The most calls (a batch counts as one) of one connection that wait for
/// their turn at once.
pub(super) const MAX_WAITING: usize = 1_024;

/// The mark of a call refused because too many wait already.
#[derive(Debug, Clone, Copy)]
struct TooManyWaiting;

/// Lets at most a fixed number of calls of one connection run at once.
#[derive(Debug, Clone)]
pub(super) struct BoundInFlight<S> {
    inner: S,
    permits: Arc<Semaphore>,
    waiting: Arc<AtomicUsize>,
}

impl<S> BoundInFlight<S> {
    /// At most `calls` calls of the connection that `inner` serves at once.
    pub(super) fn new(inner: S, calls: NonZeroUsize) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(calls.get())), waiting: Arc::default() }
    }
}

impl<S> BoundInFlight<S> {
    /// A call's turn, counted as waiting from now (its arrival) until it has
    /// it: the permit to hold while it runs, or `None` when [`MAX_WAITING`]
    /// calls wait already (it is then refused).
    fn turn(&self) -> impl Future<Output = Option<OwnedSemaphorePermit>> + Send + 'static {
        let (waiting, permits) = (Waiting::start(&self.waiting), Arc::clone(&self.permits));
        async move {
            let waiting = waiting?;
            // The semaphore is never closed, so the wait always ends with a permit.
            let permit = permits.acquire_owned().await.ok();
            drop(waiting);
            permit
        }
    }
}

/// Counts a call waiting for its turn while it lives.
struct Waiting(Arc<AtomicUsize>);

impl Waiting {
    /// `None` when [`MAX_WAITING`] calls wait already.
    fn start(count: &Arc<AtomicUsize>) -> Option<Self> {
        if count.fetch_add(1, Ordering::SeqCst) >= MAX_WAITING {
            count.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        Some(Self(Arc::clone(count)))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Refuses a call marked by [`BoundInFlight`] as one too many waiting (`-32005`).
pub(super) fn check_waiting(extensions: &Extensions) -> Result<(), ErrorObjectOwned> {
    match extensions.get::<TooManyWaiting>() {
        Some(_) => Err(ErrorObjectOwned::owned(
            LIMIT_EXCEEDED,
            format!(
                "too many calls waiting on this connection (at most {MAX_WAITING} wait for their turn behind the \
                 calls running); wait for answers before sending more"
            ),
            None::<()>,
        )),
        None => Ok(()),
    }
}

impl<S: RpcServiceT + Clone + Send + Sync + 'static> RpcServiceT for BoundInFlight<S> {
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, mut request: Request<'a>) -> impl Future<Output = S::MethodResponse> + Send + 'a {
        let (inner, turn) = (self.inner.clone(), self.turn());
        async move {
            let permit = turn.await;
            if permit.is_none() {
                request.extensions_mut().insert(TooManyWaiting);
            }
            inner.call(request).await
        }
    }

    fn batch<'a>(&self, mut requests: Batch<'a>) -> impl Future<Output = S::BatchResponse> + Send + 'a {
        let (inner, turn) = (self.inner.clone(), self.turn());
        async move {
            let permit = turn.await;
            if permit.is_none() {
                for entry in requests.iter_mut().flatten() {
                    if let BatchEntry::Call(request) = entry {
                        request.extensions_mut().insert(TooManyWaiting);
                    }
                }
            }
            inner.batch(requests).await
        }
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = S::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
