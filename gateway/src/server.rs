//! The HTTP server: routes, limits, and errors in OpenAI's shape. Every
//! request is answered: bad input with 4xx and a message, a backend failure
//! with 502 or 504, and a panic in a handler is caught (500) while the
//! server keeps serving everyone else.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use nml_runtime::llm::{LlmBackend, LlmError};
use nml_runtime::tee::{Enclave, Faults};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};

use crate::data_settlement::{self, DataSettlement, SettlementType};
use crate::ohttp::{self, OhttpKey};
use crate::openai::{self, Answer, Endpoint};
use crate::payment::{self, Payments, Verified};

/// The largest request body accepted, in bytes.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long a request's body may take to arrive by default ([`GatewayConfig::body_time`]).
pub const BODY_TIME: Duration = Duration::from_secs(30);

/// What the gateway serves with.
#[derive(Clone)]
pub struct GatewayConfig {
    /// Where to listen (127.0.0.1 by default in the CLI).
    pub addr: SocketAddr,
    /// Answers every LLM call.
    pub backend: Arc<dyn LlmBackend>,
    /// Backend calls at once; later requests wait their turn.
    pub concurrency: usize,
    /// The enclave that signs the answers.
    pub enclave: Arc<Enclave>,
    /// The TEE faults injected into its signatures (`--tee-fault`; shared
    /// with the devnet's enclaves under `nml devnet --gateway`).
    pub faults: Arc<Faults>,
    /// x402 payments; every request is answered free without.
    pub payments: Option<Arc<Payments>>,
    /// Data settlement on the chain's relay; none without.
    pub settlement: Option<Arc<DataSettlement>>,
    /// Serve HTTPS with this identity; plain HTTP without.
    pub tls: Option<TlsIdentity>,
    /// The enclave's Oblivious HTTP key: the private path
    /// (`/api/v1/chat/ohttp`) is served with it; not at all without.
    pub ohttp: Option<Arc<OhttpKey>>,
    /// How long a request's body may take to arrive ([`BODY_TIME`]); a
    /// client that stops sending it is answered 408 and its connection freed.
    pub body_time: Duration,
}

/// A TLS server identity: a certificate (DER; the chain is this one
/// certificate, as the registry pins it) and its private key (PKCS#8 DER).
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate.
    pub certificate: Vec<u8>,
    /// Its private key.
    pub private_key: Vec<u8>,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsIdentity").field("certificate", &self.certificate.len()).finish_non_exhaustive()
    }
}

impl TlsIdentity {
    fn acceptor(&self) -> std::io::Result<tokio_rustls::TlsAcceptor> {
        use tokio_rustls::rustls;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .and_then(|b| {
                b.with_no_client_auth().with_single_cert(
                    vec![rustls::pki_types::CertificateDer::from(self.certificate.clone())],
                    rustls::pki_types::PrivateKeyDer::Pkcs8(self.private_key.clone().into()),
                )
            })
            .map_err(std::io::Error::other)?;
        Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
    }
}

impl std::fmt::Debug for GatewayConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatewayConfig")
            .field("addr", &self.addr)
            .field("backend", &self.backend.describe())
            .field("concurrency", &self.concurrency)
            .field("tee_id", &self.enclave.id())
            .field("payments", &self.payments.as_ref().map(|p| p.config().prices))
            .field("settlement", &self.settlement.is_some())
            .field("tls", &self.tls.is_some())
            .field("ohttp", &self.ohttp)
            .finish()
    }
}

/// What a request handler shares.
struct Shared {
    backend: Arc<dyn LlmBackend>,
    enclave: Arc<Enclave>,
    faults: Arc<Faults>,
    slots: Semaphore,
    payments: Option<Arc<Payments>>,
    settlement: Option<Arc<DataSettlement>>,
    ohttp: Option<Arc<OhttpKey>>,
    body_time: Duration,
    /// `https` or `http`, and where it listens: the URLs its 402s name.
    scheme: &'static str,
    local_addr: SocketAddr,
}

/// A running gateway.
#[derive(Debug)]
pub struct Gateway {
    /// The address it listens on (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
    settlement: Option<Arc<DataSettlement>>,
}

impl Gateway {
    /// Starts serving `config`. Call from a tokio runtime.
    pub async fn start(config: GatewayConfig) -> std::io::Result<Self> {
        let acceptor = config.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
        let listener = TcpListener::bind(config.addr).await?;
        let local_addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            backend: config.backend,
            enclave: config.enclave,
            faults: config.faults,
            slots: Semaphore::new(config.concurrency.max(1)),
            payments: config.payments,
            settlement: config.settlement,
            ohttp: config.ohttp,
            body_time: config.body_time,
            scheme: if acceptor.is_some() { "https" } else { "http" },
            local_addr,
        });
        let settlement = shared.settlement.clone();
        if let Some(settlement) = &settlement {
            tokio::spawn(flush_batches(Arc::clone(settlement)));
        }
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    accepted = listener.accept() => accepted,
                    _ = stopped.changed() => break,
                };
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        tracing::warn!(%e, "gateway: accept failed");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let shared = Arc::clone(&shared);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let shared = Arc::clone(&shared);
                        async move { Ok::<_, Infallible>(handle(shared, request).await) }
                    });
                    let served = match acceptor {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => http1::Builder::new().serve_connection(TokioIo::new(tls), service).await,
                            Err(e) => {
                                tracing::debug!(%e, "gateway: TLS handshake failed");
                                return;
                            }
                        },
                        None => http1::Builder::new().serve_connection(TokioIo::new(stream), service).await,
                    };
                    if let Err(e) = served {
                        tracing::debug!(%e, "gateway: connection ended");
                    }
                });
            }
        });
        Ok(Self { local_addr, stop, task, settlement })
    }

    /// Stops accepting connections, waits for the accept loop to end, and
    /// posts the batch in progress.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        if let Some(settlement) = self.settlement
            && let Ok(Err(e)) = tokio::task::spawn_blocking(move || settlement.flush()).await
        {
            log_posting_failed(SettlementType::Batch, &e);
        }
    }
}

type Reply = Response<Full<Bytes>>;

/// OpenAI's error shape.
fn error(status: StatusCode, kind: &str, message: impl std::fmt::Display) -> Reply {
    let body = json!({ "error": { "message": message.to_string(), "type": kind, "code": status.as_u16() } });
    reply(status, "application/json", body.to_string())
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Reply {
    reply_bytes(status, content_type, body.into_bytes())
}

fn reply_bytes(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Reply {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A 402 offering this gateway's terms, with `error` saying what was wrong.
fn payment_required(payments: &Payments, resource: &str, model: Option<&str>, error: &str) -> Reply {
    let (body, header) = payments.payment_required(resource, model, error);
    let mut response = reply(StatusCode::PAYMENT_REQUIRED, "application/json", body.to_string());
    if let Ok(value) = HeaderValue::from_str(&header) {
        response.headers_mut().insert(payment::PAYMENT_REQUIRED, value);
    }
    response
}

/// Where a request goes.
enum Route {
    /// An OpenAI-style request in the clear.
    Plain(Endpoint),
    /// A chat sealed to the enclave (Oblivious HTTP).
    Oblivious,
}

/// The path of OpenGradient Chat's private (Oblivious HTTP) endpoint.
pub const OHTTP_PATH: &str = "/api/v1/chat/ohttp";

async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Reply {
    let path = request.uri().path().to_owned();
    let route = match (request.method(), path.as_str()) {
        (&Method::POST, "/v1/chat/completions") => Route::Plain(Endpoint::Chat),
        (&Method::POST, "/v1/completions") => Route::Plain(Endpoint::Completion),
        (&Method::POST, OHTTP_PATH) => Route::Oblivious,
        (&Method::GET, "/signing-key") => return signing_key(&shared.enclave),
        (&Method::GET, "/ohttp-keys") => return ohttp_keys(&shared),
        (&Method::GET, "/health") => {
            return reply(StatusCode::OK, "application/json", json!({"status": "ok"}).to_string());
        }
        (_, "/v1/chat/completions" | "/v1/completions" | "/signing-key" | "/health" | "/ohttp-keys" | OHTTP_PATH) => {
            return error(StatusCode::METHOD_NOT_ALLOWED, "invalid_request_error", "method not allowed");
        }
        (_, path) => return error(StatusCode::NOT_FOUND, "invalid_request_error", format!("no endpoint {path}")),
    };
    let (parts, body) = request.into_parts();
    // What a 402 names: the URL the client asked for.
    let host = parts.headers.get(hyper::header::HOST).and_then(|v| v.to_str().ok());
    let local = shared.local_addr.to_string();
    let resource = format!("{}://{}{path}", shared.scheme, host.unwrap_or(&local));
    let Ok(read) = tokio::time::timeout(shared.body_time, Limited::new(body, MAX_BODY).collect()).await else {
        return error(
            StatusCode::REQUEST_TIMEOUT,
            "invalid_request_error",
            format!("the body did not arrive within {:?}", shared.body_time),
        );
    };
    let body = match read {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request_error",
                format!("the body is over the gateway's limit of {MAX_BODY} bytes"),
            );
        }
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", format!("cannot read the body: {e}")),
    };
    match route {
        Route::Plain(endpoint) => {
            let parsed = match openai::parse(endpoint, &body) {
                Ok(parsed) => parsed,
                Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", e),
            };
            match serve(&shared, &resource, &parts.headers, &parsed, Some(&parsed.model)).await {
                Ok(served) => {
                    let mut response = if parsed.stream {
                        reply(
                            StatusCode::OK,
                            "text/event-stream",
                            openai::events(&parsed, &served.answer, &served.attestation),
                        )
                    } else {
                        let body = openai::body(&parsed, &served.answer, &served.attestation);
                        reply(StatusCode::OK, "application/json", body.to_string())
                    };
                    response.headers_mut().extend(served.headers);
                    response
                }
                Err(refusal) => refusal.reply(),
            }
        }
        Route::Oblivious => oblivious(&shared, &resource, &parts.headers, &body).await,
    }
}

/// Why [`serve`] did not answer.
enum Refusal {
    /// About the exchange, not the chat: a 402 with the payment's terms, a
    /// header that does not parse. Said in the clear on every route.
    Clear(Reply),
    /// About the chat (the backend failed, the enclave could not sign):
    /// sealed on the private path.
    Failed {
        /// The status.
        status: StatusCode,
        /// OpenAI's error type.
        kind: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl Refusal {
    fn failed(status: StatusCode, kind: &'static str, message: impl std::fmt::Display) -> Self {
        Self::Failed { status, kind, message: message.to_string() }
    }

    fn reply(self) -> Reply {
        match self {
            Self::Clear(reply) => reply,
            Self::Failed { status, kind, message } => error(status, kind, message),
        }
    }
}

/// An answered request: the answer, its attestation, and the headers of
/// its payment and settlement.
struct Served {
    answer: Answer,
    attestation: nml_runtime::tee::Attestation,
    headers: HeaderMap,
}

/// Runs `parsed` as `headers` ask: the payment checked before anything
/// runs, the backend's answer signed, the payment settled, the answer's
/// hashes posted. It is priced as `priced_as` says: the model's own prices,
/// or (`None`) the gateway's.
async fn serve(
    shared: &Shared,
    resource: &str,
    headers: &HeaderMap,
    parsed: &openai::GatewayRequest,
    priced_as: Option<&str>,
) -> Result<Served, Refusal> {
    let settlement_type =
        SettlementType::from_header(headers.get(data_settlement::SETTLEMENT_TYPE).and_then(|v| v.to_str().ok()))
            .map_err(|e| Refusal::Clear(error(StatusCode::BAD_REQUEST, "invalid_request_error", e)))?;
    let required =
        |payments: &Payments, why: &str| Refusal::Clear(payment_required(payments, resource, priced_as, why));
    let paid_with = [payment::PAYMENT_SIGNATURE, payment::X_PAYMENT]
        .iter()
        .find_map(|name| headers.get(*name))
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    // The payment is checked before anything runs, and settled only once
    // the answer is ready.
    let verified = match (&shared.payments, paid_with) {
        (None, _) => None,
        (Some(payments), None) => return Err(required(payments, "Payment required")),
        (Some(payments), Some(header)) => {
            let checking = Arc::clone(payments);
            let model = priced_as.map(str::to_owned);
            match tokio::task::spawn_blocking(move || checking.verify(&header, model.as_deref())).await {
                Ok(Ok(verified)) => Some(verified),
                Ok(Err(e)) => return Err(required(payments, &e.to_string())),
                Err(e) => return Err(Refusal::failed(StatusCode::INTERNAL_SERVER_ERROR, "server_error", e)),
            }
        }
    };
    let answer = match ask(shared, parsed).await {
        Ok(answer) => answer,
        Err(refusal) => {
            // Nothing is charged for a request that was not answered.
            if let (Some(payments), Some(v)) = (&shared.payments, &verified) {
                payments.release(v);
            }
            return Err(refusal);
        }
    };
    // The answer is in: the enclave signs it while the payment settles
    // (signing cannot fail but for a broken enclave, which is logged with
    // the settlement to refund).
    let payer = verified.as_ref().map(Verified::payer).unwrap_or_default();
    let settling = async {
        let (Some(payments), Some(v)) = (&shared.payments, verified) else { return Ok(HeaderMap::new()) };
        let settling = Arc::clone(payments);
        let amount = payments.charge(priced_as, openai::tokens_of(parsed, &answer));
        let mut out = HeaderMap::new();
        match tokio::task::spawn_blocking(move || settling.settle(&v, amount)).await {
            Ok(Ok(settled)) => {
                if let Ok(value) = HeaderValue::from_str(&payments.payment_response(&settled)) {
                    out.insert(payment::PAYMENT_RESPONSE, value);
                }
                if let Ok(value) = HeaderValue::from_str(&settled.transaction.to_string()) {
                    out.insert(payment::PROCESSING_HASH, value);
                }
                Ok(out)
            }
            Ok(Err(e)) => Err(required(payments, &e.to_string())),
            Err(e) => Err(Refusal::failed(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("settling: {e}"))),
        }
    };
    let (attestation, settled) = tokio::join!(attest(shared, parsed, &answer), settling);
    let mut out = settled?;
    let attestation = attestation.inspect_err(|_| {
        if let Some(hash) = out.get(payment::PROCESSING_HASH) {
            tracing::error!(?hash, "gateway: the enclave could not sign an answer that was paid for");
        }
    })?;
    if let Some(settlement) = &shared.settlement {
        // The answer is paid for and goes out whatever happens here; a
        // posting that fails is logged.
        let posting = Arc::clone(settlement);
        let attested = attestation.clone();
        match tokio::task::spawn_blocking(move || posting.record(settlement_type, attested, payer)).await {
            Ok(Ok(Some(hash))) => {
                if let Ok(value) = HeaderValue::from_str(&hash.to_string()) {
                    out.insert(data_settlement::SETTLEMENT_TX_HASH, value);
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => log_posting_failed(settlement_type, &e),
            Err(e) => log_posting_failed(settlement_type, &e),
        }
    }
    Ok(Served { answer, attestation, headers: out })
}

/// The private path: the chat inside an Oblivious HTTP request, answered
/// sealed to the client — in one piece, or as a chunked stream of its
/// server-sent events. What the relay may see stays outside: the payment
/// (the relay pays), its 402, and the settlement's headers. What is about
/// the chat (a malformed one, a backend's failure) is sealed inside, as
/// `{status, body}`.
async fn oblivious(shared: &Shared, resource: &str, headers: &HeaderMap, body: &[u8]) -> Reply {
    let Some(key) = &shared.ohttp else {
        return error(StatusCode::NOT_FOUND, "invalid_request_error", "this gateway has no Oblivious HTTP key");
    };
    let media_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if media_type.split(';').next().map(str::trim) != Some(ohttp::REQUEST_MEDIA_TYPE) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid_request_error",
            format!("an Oblivious HTTP request is {}, not {media_type:?}", ohttp::REQUEST_MEDIA_TYPE),
        );
    }
    let (plaintext, keys) = match key.decapsulate(body) {
        Ok(opened) => opened,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request_error", e),
    };
    let sealed_error = |status: StatusCode, message: String| {
        let inner = json!({ "status": status.as_u16(), "body": { "error": message } });
        reply_bytes(StatusCode::OK, ohttp::RESPONSE_MEDIA_TYPE, keys.seal(inner.to_string().as_bytes()))
    };
    let parsed = match openai::parse(Endpoint::Chat, &plaintext) {
        Ok(parsed) => parsed,
        Err(e) => return sealed_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    // Priced as the gateway, never as the model: the relay that pays cannot
    // see the model, and a price of its own would tell it.
    let served = match serve(shared, resource, headers, &parsed, None).await {
        Ok(served) => served,
        Err(Refusal::Clear(reply)) => return reply,
        Err(Refusal::Failed { status, message, .. }) => return sealed_error(status, message),
    };
    let mut response = if parsed.stream {
        let events = openai::events(&parsed, &served.answer, &served.attestation);
        // One chunk per event, then an empty final one.
        let chunks: Vec<&[u8]> =
            events.split_inclusive("\n\n").map(str::as_bytes).chain(std::iter::once(&b""[..])).collect();
        reply_bytes(StatusCode::OK, ohttp::CHUNKED_RESPONSE_MEDIA_TYPE, keys.seal_chunked(chunks))
    } else {
        let inner = json!({ "status": 200, "body": openai::body(&parsed, &served.answer, &served.attestation) });
        reply_bytes(StatusCode::OK, ohttp::RESPONSE_MEDIA_TYPE, keys.seal(inner.to_string().as_bytes()))
    };
    response.headers_mut().extend(served.headers);
    response
}

/// This gateway's key configurations (RFC 9540), for clients that do not
/// read them from the registry.
fn ohttp_keys(shared: &Shared) -> Reply {
    match &shared.ohttp {
        Some(key) => reply_bytes(StatusCode::OK, ohttp::KEYS_MEDIA_TYPE, key.key_configs()),
        None => error(StatusCode::NOT_FOUND, "invalid_request_error", "this gateway has no Oblivious HTTP key"),
    }
}

/// A posting of data settlement that failed: on stderr, the gateway's log
/// (the answer, already paid for, goes out all the same).
fn log_posting_failed(kind: SettlementType, e: &dyn std::fmt::Display) {
    tracing::warn!(%e, ?kind, "gateway: data settlement failed");
    eprintln!("warning: the gateway's {kind:?} data settlement failed: {e}");
}

/// Posts the batch in progress every ten seconds, so a quiet gateway's
/// answers settle too.
async fn flush_batches(settlement: Arc<DataSettlement>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(10));
    every.tick().await;
    loop {
        every.tick().await;
        if settlement.pending() == 0 {
            continue;
        }
        let flushing = Arc::clone(&settlement);
        match tokio::task::spawn_blocking(move || flushing.flush()).await {
            Ok(Err(e)) => log_posting_failed(SettlementType::Batch, &e),
            Err(e) => log_posting_failed(SettlementType::Batch, &e),
            Ok(Ok(_)) => {}
        }
    }
}

/// The backend's answer to `parsed`.
async fn ask(shared: &Shared, parsed: &openai::GatewayRequest) -> Result<Answer, Refusal> {
    // A backend call blocks for as long as the backend takes: on the
    // blocking pool, a bounded number at once.
    let Ok(_slot) = shared.slots.acquire().await else {
        return Err(Refusal::failed(StatusCode::SERVICE_UNAVAILABLE, "server_error", "the gateway is stopping"));
    };
    let backend = Arc::clone(&shared.backend);
    let llm = parsed.llm.clone();
    match tokio::task::spawn_blocking(move || backend.answer_with_finish_reason(&llm)).await {
        Ok(Ok(answer)) => Ok(Answer::from_answer(&answer)),
        Ok(Err(e)) => Err(backend_error(&e)),
        Err(e) => {
            tracing::error!(%e, "gateway: the backend call panicked");
            Err(Refusal::failed(StatusCode::INTERNAL_SERVER_ERROR, "server_error", "the backend call failed"))
        }
    }
}

/// The enclave's signature of `answer` to `parsed`.
async fn attest(
    shared: &Shared,
    parsed: &openai::GatewayRequest,
    answer: &Answer,
) -> Result<nml_runtime::tee::Attestation, Refusal> {
    let timestamp = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default();
    let enclave = Arc::clone(&shared.enclave);
    // A faulty enclave signs another output, or misdates its signature.
    let (output_hash, timestamp) = shared.faults.misattest(answer.output_hash(), timestamp);
    let request_hash = parsed.request_hash;
    match tokio::task::spawn_blocking(move || enclave.attest(request_hash, output_hash, timestamp)).await {
        Ok(Ok(attestation)) => Ok(attestation),
        Ok(Err(e)) => {
            Err(Refusal::failed(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("signing failed: {e}")))
        }
        Err(e) => {
            Err(Refusal::failed(StatusCode::INTERNAL_SERVER_ERROR, "server_error", format!("signing failed: {e}")))
        }
    }
}

/// The status of a backend failure: the client's fault (400, 404), or the
/// backend's (502, 504).
fn backend_error(e: &LlmError) -> Refusal {
    let (status, kind) = match e {
        LlmError::TooLong { bytes, limit, .. } => {
            let message = format!(
                "the request's text is {bytes} bytes, over this gateway's limit of {limit} (`[llm] max_prompt_bytes`)"
            );
            return Refusal::failed(StatusCode::BAD_REQUEST, "invalid_request_error", message);
        }
        LlmError::InvalidMode { .. } | LlmError::Refused { .. } => (StatusCode::BAD_REQUEST, "invalid_request_error"),
        LlmError::UnknownModel { .. } => (StatusCode::NOT_FOUND, "invalid_request_error"),
        LlmError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "server_error"),
        LlmError::Unavailable { .. }
        | LlmError::Malformed { .. }
        | LlmError::NotRecorded { .. }
        | LlmError::Cassette { .. } => (StatusCode::BAD_GATEWAY, "server_error"),
    };
    Refusal::failed(status, kind, e)
}

/// The enclave's signing key: its id, DER (hex) and PEM.
fn signing_key(enclave: &Enclave) -> Reply {
    use base64::Engine;
    let der = enclave.public_key();
    let encoded = base64::engine::general_purpose::STANDARD.encode(der);
    let mut pem = String::from("-----BEGIN PUBLIC KEY-----\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(line).unwrap_or_default());
        pem.push('\n');
    }
    pem.push_str("-----END PUBLIC KEY-----\n");
    let body: Value = json!({ "tee_id": enclave.id(), "public_key_der": der, "public_key_pem": pem });
    reply(StatusCode::OK, "application/json", body.to_string())
}
