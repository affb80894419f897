//! The batch deadline: a batch runs its calls one after another, and a call
//! that would start more than [`super::ServerLimits::batch_time`] after its
//! batch arrived is answered `-32005` without running.
//!
//! Without it a batch could hold its connection for hours: 1,000
//! `eth_sendRawTransactionSync` calls wait up to a minute each. With it a
//! batch answers within the batch time plus the one call running when the
//! time runs out (at most a minute for a wait, see docs/rpc.md).
//!
//! The middleware stamps each call of a batch with the deadline (a
//! [`BatchDeadline`] in its extensions); each method checks it before it
//! runs ([`check_deadline`], called by `dispatch`).

use std::future::Future;
use std::time::{Duration, Instant};

use jsonrpsee::Extensions;
use jsonrpsee::core::middleware::{Batch, BatchEntry, Notification, RpcServiceT};
use jsonrpsee::types::{ErrorObjectOwned, Request};

use super::LIMIT_EXCEEDED;

/// When the calls of one batch must have started by.
#[derive(Debug, Clone, Copy)]
pub(super) struct BatchDeadline {
    at: Instant,
    time: Duration,
}

/// Stamps every call of a batch with its deadline, then hands the batch on.
#[derive(Debug, Clone)]
pub(super) struct StampDeadline<S> {
    pub(super) inner: S,
    /// How long after its arrival a batch may start calls.
    pub(super) time: Duration,
}

impl<S: RpcServiceT + Send + Sync> RpcServiceT for StampDeadline<S> {
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = S::MethodResponse> + Send + 'a {
        self.inner.call(request)
    }

    fn batch<'a>(&self, mut requests: Batch<'a>) -> impl Future<Output = S::BatchResponse> + Send + 'a {
        let deadline = BatchDeadline { at: Instant::now() + self.time, time: self.time };
        for entry in requests.iter_mut().flatten() {
            if let BatchEntry::Call(request) = entry {
                request.extensions_mut().insert(deadline);
            }
        }
        self.inner.batch(requests)
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = S::NotificationResponse> + Send + 'a {
        self.inner.notification(n)
    }
}

/// Refuses a call of a batch whose deadline has passed (`-32005`); a call
/// sent alone has none.
pub(super) fn check_deadline(extensions: &Extensions) -> Result<(), ErrorObjectOwned> {
    match extensions.get::<BatchDeadline>() {
        Some(deadline) if Instant::now() >= deadline.at => Err(ErrorObjectOwned::owned(
            LIMIT_EXCEEDED,
            format!(
                "batch time exceeded: a batch runs its calls one after another, and this one would start more \
                 than {} ms after the batch arrived; send it again, alone or in a smaller batch",
                deadline.time.as_millis()
            ),
            None::<()>,
        )),
        _ => Ok(()),
    }
}
