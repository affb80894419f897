//! What the devnet's HTTP port does before JSON-RPC sees a request: it lets
//! browsers call it (CORS, as anvil and Hardhat do: any origin), and it
//! closes a request whose body stops arriving for a while (no part of it in
//! [`EdgeLayer::body_idle`]), so that clients that start a body and stop
//! cannot hold every connection the server allows. (A client that trickles
//! a byte just inside the idle time is bounded only by the body size limit
//! and the connection limit.)
//! It also names the server's subscriptions as geth does ([`HexIds`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode, header};
use http_body::{Body, Frame, SizeHint};
use jsonrpsee::core::traits::IdProvider;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::SubscriptionId;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long a preflight's answer may be cached by a browser.
const PREFLIGHT_MAX_AGE: HeaderValue = HeaderValue::from_static("86400");

/// The HTTP layer in front of JSON-RPC (and of the result API).
#[derive(Debug, Clone)]
pub(super) struct EdgeLayer {
    /// How long a request's body may stop arriving before the request is
    /// closed.
    pub(super) body_idle: Duration,
}

impl<S> tower::Layer<S> for EdgeLayer {
    type Service = Edge<S>;

    fn layer(&self, inner: S) -> Edge<S> {
        Edge { inner, body_idle: self.body_idle }
    }
}

/// [`EdgeLayer`]'s service.
#[derive(Debug, Clone)]
pub(super) struct Edge<S> {
    inner: S,
    body_idle: Duration,
}

impl<S> tower::Service<HttpRequest> for Edge<S>
where
    S: tower::Service<HttpRequest, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest) -> Self::Future {
        if request.method() == Method::OPTIONS {
            return Box::pin(std::future::ready(preflight(&request)));
        }
        let idle = self.body_idle;
        let request = request.map(|body| HttpBody::new(IdleDeadline { inner: body, idle, timer: None }));
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
            Ok(response)
        })
    }
}

/// The answer to a browser's CORS preflight: any origin, the methods the
/// port serves, and the headers the page asked to send.
fn preflight(request: &HttpRequest) -> Result<HttpResponse, BoxError> {
    let asked = request.headers().get(header::ACCESS_CONTROL_REQUEST_HEADERS).cloned();
    let mut response = HttpResponse::builder()
        .status(StatusCode::NO_CONTENT)
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")
        .header(header::ACCESS_CONTROL_ALLOW_METHODS, "POST, GET, OPTIONS")
        .header(header::ACCESS_CONTROL_MAX_AGE, PREFLIGHT_MAX_AGE)
        .body(HttpBody::empty())?;
    let headers = asked.unwrap_or_else(|| HeaderValue::from_static("content-type"));
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_HEADERS, headers);
    Ok(response)
}

/// Why a request's body was given up.
#[derive(Debug, thiserror::Error)]
#[error("the request body stopped arriving for {0:?}")]
struct BodyStalled(Duration);

/// A request body that fails once no part of it has arrived for `idle`.
/// The timer exists only while the body waits for its client, so a body
/// that is there at once costs nothing more.
struct IdleDeadline {
    inner: HttpBody,
    idle: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Body for IdleDeadline {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame)
            }
            Poll::Pending => {
                let idle = this.idle;
                let timer = this.timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyStalled(idle).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Subscription ids as geth and anvil write them: `0x` and 32 hex digits, a
/// JSON string (Go's `ethclient` reads the id into a string): a random half
/// drawn once per server, and a count.
#[derive(Debug)]
pub(super) struct HexIds {
    random: u64,
    count: AtomicU64,
}

impl HexIds {
    pub(super) fn new() -> Self {
        let random = std::hash::BuildHasher::hash_one(&std::hash::RandomState::new(), std::process::id());
        Self { random, count: AtomicU64::new(1) }
    }
}

impl IdProvider for HexIds {
    fn next_id(&self) -> SubscriptionId<'static> {
        let count = self.count.fetch_add(1, Ordering::Relaxed);
        SubscriptionId::Str(format!("0x{:016x}{count:016x}", self.random).into())
    }
}
