//! `nml gateway` side by side with the bare operation:
//!
//! 1. **Added latency per request**: a chat through the gateway over HTTP
//!    (keep-alive, one client) against the bare backend call it makes, with a
//!    backend that answers at once (a test double). The gateway's share —
//!    HTTP, parsing, the canonical request and its hash, the enclave's
//!    RSA-PSS signature, the JSON answer — is the difference of the medians.
//! 2. **Requests per second**: 64 clients at once against a backend with a
//!    fixed 50 ms latency and 64 backend calls at once.
//! 3. **Paid** (x402 `exact` over Permit2, settled on an in-process devnet
//!    served over JSON-RPC): the same chat with a payment signed ahead of
//!    time — verification (terms, EIP-712 recovery, three `eth_call`s) before
//!    the answer, settlement (a transaction, mined) after it — against the
//!    free chat of row 1; and row 2 paid.
//!
//! `cargo bench --bench gateway`; results in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::U256;
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::SolCall;
use nml_gateway::payment::payment_header;
use nml_gateway::{Gateway, GatewayConfig, PaymentConfig, Payments, Prices, Scheme};
use nml_runtime::chain::dev_accounts;
use nml_runtime::inference::abi::{ChatMessage, LLMChatRequest};
use nml_runtime::inference::{OnnxConfig, OnnxExecutor};
use nml_runtime::llm::{LlmBackend, LlmError, LlmRequest, LlmResponse};
use nml_runtime::node::InferenceSetup;
use nml_runtime::predeploys::payments::{IOPGToken, OPG_TOKEN, PERMIT2};
use nml_runtime::tee::Enclave;
use nml_runtime::{Devnet, DevnetConfig};

/// Test double: answers every request with the same text after a fixed delay.
#[derive(Debug)]
struct FixedLatency(Duration);

impl LlmBackend for FixedLatency {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        if !self.0.is_zero() {
            std::thread::sleep(self.0);
        }
        Ok(LlmResponse::text_for(request, "The devnet answers at once."))
    }

    fn describe(&self) -> String {
        format!("a test double answering after {:?}", self.0)
    }
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples[samples.len() / 2]
}

fn start(runtime: &tokio::runtime::Runtime, latency: Duration, concurrency: usize) -> Gateway {
    start_paid(runtime, latency, concurrency, None)
}

fn start_paid(
    runtime: &tokio::runtime::Runtime,
    latency: Duration,
    concurrency: usize,
    payments: Option<Arc<Payments>>,
) -> Gateway {
    let config = GatewayConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        backend: Arc::new(FixedLatency(latency)),
        concurrency,
        enclave: Enclave::from_seed(0, 0).expect("enclave"),
        faults: Arc::default(),
        payments,
        settlement: None,
        tls: None,
        body_time: nml_gateway::BODY_TIME,
        ohttp: None,
    };
    runtime.block_on(Gateway::start(config)).expect("gateway")
}

fn body(i: usize) -> String {
    serde_json::json!({
        "model": "gpt-4.1-2025-04-14",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": format!("Question {i}?")}],
        "max_tokens": 64,
        "temperature": 0.0,
    })
    .to_string()
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    let free = added_latency(&runtime);
    throughput(&runtime, None);
    let chain = PaidChain::start(&runtime);
    paid_latency(&runtime, &chain, free);
    throughput(&runtime, Some(&chain));
}

/// A devnet with the payment contracts, served over JSON-RPC, where dev
/// account 1 has approved OPG to Permit2.
struct PaidChain {
    url: String,
    _server: nml_runtime::rpc::RpcServer,
    _devnet: Arc<Devnet>,
}

impl PaidChain {
    fn start(runtime: &tokio::runtime::Runtime) -> Self {
        let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
        let executor = Arc::new(OnnxExecutor::new(OnnxConfig::new(library)).expect("ORT"));
        let devnet =
            Arc::new(Devnet::with_inference(DevnetConfig::default(), InferenceSetup::new(executor)).expect("devnet"));
        let approve = IOPGToken::approveCall { spender: PERMIT2, value: U256::MAX }.abi_encode();
        let payer = dev_accounts(2)[1].address;
        devnet
            .send_transaction(TransactionRequest::default().from(payer).to(OPG_TOKEN).input(approve.into()))
            .expect("approve");
        let server = runtime
            .block_on(nml_runtime::rpc::serve(devnet.clone(), "127.0.0.1:0".parse().expect("addr")))
            .expect("serve");
        Self { url: format!("http://{}", server.local_addr), _server: server, _devnet: devnet }
    }

    fn payments(&self) -> Arc<Payments> {
        Arc::new(Payments::new(PaymentConfig {
            rpc_url: self.url.clone(),
            chain_id: 31337,
            scheme: Scheme::Exact,
            prices: Prices { per_request: U256::from(1_000u64), per_token: U256::ZERO, cap: U256::from(1_000u64) },
            model_prices: Default::default(),
            pay_to: dev_accounts(3)[2].address,
            facilitator: dev_accounts(10)[9].signer.clone(),
            // The devnet's clock runs one second a block when blocks come
            // faster than that: an hour covers the bench's ~1,600 blocks.
            max_timeout_seconds: 3_600,
        }))
    }
}

/// `count` payment headers for `payments`' terms, signed ahead of time by
/// dev account 1, with nonces from `first`.
fn headers(payments: &Payments, first: u64, count: usize) -> Vec<String> {
    let payer = dev_accounts(2)[1].signer.clone();
    let terms = payments.requirements(Some("gpt-4.1-2025-04-14"));
    (0..count as u64).map(|i| payment_header(&payer, 31337, &terms, U256::from(first + i)).expect("signed")).collect()
}

fn paid_latency(runtime: &tokio::runtime::Runtime, chain: &PaidChain, free: Duration) {
    const N: usize = 300;
    let payments = chain.payments();
    let gateway = start_paid(runtime, Duration::ZERO, 8, Some(Arc::clone(&payments)));
    let url = format!("http://{}/v1/chat/completions", gateway.local_addr);
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let signed = headers(&payments, 1, N);
    let samples: Vec<Duration> = signed
        .iter()
        .enumerate()
        .map(|(i, header)| {
            let started = Instant::now();
            let mut response = agent
                .post(&url)
                .header("content-type", "application/json")
                .header("payment-signature", header)
                .send(body(i))
                .expect("sent");
            let text = response.body_mut().read_to_string().unwrap_or_default();
            assert_eq!(response.status(), 200, "paid request {i}: {text}");
            assert!(response.headers().get("payment-response").is_some());
            started.elapsed()
        })
        .collect();
    let paid = median(samples);
    println!(
        "paid: {N} paid chats (exact, Permit2, settled on the devnet) median {:.1} µs, free {:.1} µs: the payment's share {:.1} µs",
        paid.as_secs_f64() * 1e6,
        free.as_secs_f64() * 1e6,
        paid.saturating_sub(free).as_secs_f64() * 1e6,
    );
    runtime.block_on(gateway.stop());
}

fn added_latency(runtime: &tokio::runtime::Runtime) -> Duration {
    const N: usize = 1_000;
    let gateway = start(runtime, Duration::ZERO, 8);
    let url = format!("http://{}/v1/chat/completions", gateway.local_addr);
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let ask = |i: usize| {
        let mut response = agent.post(&url).header("content-type", "application/json").send(body(i)).expect("sent");
        let text = response.body_mut().read_to_string().expect("body");
        assert!(text.contains("tee_signature"), "{text}");
    };
    for i in 0..50 {
        ask(i);
    }
    let through: Vec<Duration> = (0..N)
        .map(|i| {
            let started = Instant::now();
            ask(i);
            started.elapsed()
        })
        .collect();
    let backend = FixedLatency(Duration::ZERO);
    let bare: Vec<Duration> = (0..N)
        .map(|i| {
            let request = LlmRequest::Chat(LLMChatRequest {
                mode: 1,
                modelCID: "gpt-4.1-2025-04-14".into(),
                messages: vec![ChatMessage {
                    role: "user".into(),
                    content: format!("Question {i}?"),
                    ..Default::default()
                }],
                max_tokens: 64,
                ..Default::default()
            });
            let started = Instant::now();
            let answer = backend.answer(&request).expect("answer");
            std::hint::black_box(answer);
            started.elapsed()
        })
        .collect();
    let (through, bare) = (median(through), median(bare));
    println!(
        "added latency: {N} chats through the gateway median {:.1} µs, the bare backend call {:.1} µs, the gateway's share {:.1} µs",
        through.as_secs_f64() * 1e6,
        bare.as_secs_f64() * 1e6,
        (through.saturating_sub(bare)).as_secs_f64() * 1e6,
    );
    runtime.block_on(gateway.stop());
    through
}

fn throughput(runtime: &tokio::runtime::Runtime, paid: Option<&PaidChain>) {
    const CLIENTS: usize = 64;
    const PER_CLIENT: usize = 20;
    let latency = Duration::from_millis(50);
    let payments = paid.map(PaidChain::payments);
    let gateway = start_paid(runtime, latency, CLIENTS, payments.clone());
    let url = format!("http://{}/v1/chat/completions", gateway.local_addr);
    let signed = payments.as_ref().map(|p| headers(p, 1_000_000, CLIENTS * PER_CLIENT)).unwrap_or_default();
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let url = url.clone();
            let signed = &signed;
            scope.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                for i in 0..PER_CLIENT {
                    let n = c * PER_CLIENT + i;
                    let mut request = agent.post(&url).header("content-type", "application/json");
                    if let Some(header) = signed.get(n) {
                        request = request.header("payment-signature", header);
                    }
                    let mut response = request.send(body(n)).expect("sent");
                    let _ = response.body_mut().read_to_string().expect("body");
                    assert_eq!(response.status(), 200);
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let total = CLIENTS * PER_CLIENT;
    let ideal = CLIENTS as f64 / latency.as_secs_f64();
    println!(
        "throughput{}: {total} chats from {CLIENTS} clients, backend latency {latency:?}: {:.0} requests/s in {:.2} s (a backend-bound ideal: {ideal:.0}/s)",
        if paid.is_some() { " (paid)" } else { "" },
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
    );
    runtime.block_on(gateway.stop());
}
