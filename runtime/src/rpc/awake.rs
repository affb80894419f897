//! The RPC middleware that keeps the node awake while a client talks to it:
//! every call, batch and notification, over HTTP or WebSocket, tells the
//! devnet ([`Devnet::keep_awake`]), whose miner thread then waits for the
//! next one awake, not asleep (see the `miner` module of `node` for why that
//! matters on a virtual machine).

use std::future::Future;
use std::sync::Arc;

use jsonrpsee::core::middleware::{Batch, Notification, RpcServiceT};
use jsonrpsee::types::Request;

use crate::node::Devnet;

/// Tells the devnet of each call, then hands it on unchanged.
#[derive(Debug, Clone)]
pub(super) struct KeepAwake<S> {
    pub(super) inner: S,
    pub(super) devnet: Arc<Devnet>,
}

impl<S: RpcServiceT + Send + Sync> RpcServiceT for KeepAwake<S> {
    type MethodResponse = S::MethodResponse;
    type NotificationResponse = S::NotificationResponse;
    type BatchResponse = S::BatchResponse;

    fn call<'a>(&self, request: Request<'a>) -> impl Future<Output = S::MethodResponse> + Send + 'a {
        self.devnet.keep_awake();
        self.inner.call(request)
    }

    fn batch<'a>(&self, requests: Batch<'a>) -> impl Future<Output = S::BatchResponse> + Send + 'a {
        self.devnet.keep_awake();
        self.inner.batch(requests)
    }

    fn notification<'a>(&self, n: Notification<'a>) -> impl Future<Output = S::NotificationResponse> + Send + 'a {
        self.devnet.keep_awake();
        self.inner.notification(n)
    }
}
