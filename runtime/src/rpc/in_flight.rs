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
//! jsonrpsee builds the middleware once per WebSocket connection and once
//! per HTTP request, so each holds its own count.

use std::future::Future;
use std::num::NonZeroUsize;
use std::sync::Arc;

use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::types::Request;
use tokio::sync::Semaphore;

/// Lets at most a fixed number of calls of one connection run at once.
#[derive(Debug, Clone)]
pub(super) struct BoundInFlight<S> {
    inner: S,
    permits: Arc<Semaphore>,
}

impl<S> BoundInFlight<S> {
    /// At most `calls` calls of the connection that `inner` serves at once.
    pub(super) fn new(inner: S, calls: NonZeroUsize) -> Self {
        Self { inner, permits: Arc::new(Semaphore::new(calls.get())) }
    }
}

impl<S: RpcServiceT + Clone + Send + Sync + 'static> RpcServiceT for BoundInFlight<S> {
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = S::MethodResponse> + Send + 'a {
        let (inner, permits) = (self.inner.clone(), Arc::clone(&self.permits));
        async move {
            // The semaphore is never closed, so the wait always ends with a permit.
            let _permit = permits.acquire_owned().await;
            inner.call(request).await
        }
    }

    fn batch<'a>(&self, requests: Batch<'a>) -> impl Future<Output = S::BatchResponse> + Send + 'a {
        let (inner, permits) = (self.inner.clone(), Arc::clone(&self.permits));
        async move {
            let _permit = permits.acquire_owned().await;
            inner.batch(requests).await
        }
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = S::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}
