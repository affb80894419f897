//! The HTTP layer that keeps the node awake while a client talks to it:
//! every request tells the devnet ([`Devnet::keep_awake`]), whose miner
//! thread then waits for the next one awake, not asleep (see the `miner`
//! module of `node` for why that matters on a virtual machine).

use std::sync::Arc;
use std::task::{Context, Poll};

use crate::node::Devnet;

/// Wraps the JSON-RPC service in [`KeepAwake`].
#[derive(Debug, Clone)]
pub(super) struct KeepAwakeLayer {
    pub(super) devnet: Arc<Devnet>,
}

impl<S> tower::Layer<S> for KeepAwakeLayer {
    type Service = KeepAwake<S>;

    fn layer(&self, inner: S) -> KeepAwake<S> {
        KeepAwake { inner, devnet: Arc::clone(&self.devnet) }
    }
}

/// [`KeepAwakeLayer`]'s service: tells the devnet of each request, then
/// hands it on unchanged.
#[derive(Debug, Clone)]
pub(super) struct KeepAwake<S> {
    inner: S,
    devnet: Arc<Devnet>,
}

impl<S: tower::Service<R>, R> tower::Service<R> for KeepAwake<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.devnet.keep_awake();
        self.inner.call(request)
    }
}
