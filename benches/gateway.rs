//! `nml gateway` side by side with the bare operation:
//!
//! 1. **Added latency per request**: a chat through the gateway over HTTP
//!    (keep-alive, one client) against the bare backend call it makes, with a
//!    backend that answers at once (a test double). The gateway's share —
//!    HTTP, parsing, the canonical request and its hash, the enclave's
//!    RSA-PSS signature, the JSON answer — is the difference of the medians.
//! 2. **Requests per second**: 64 clients at once against a backend with a
//!    fixed 50 ms latency and 64 backend calls at once.
//!
//! `cargo bench --bench gateway`; results in docs/benchmarks.md.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nml_gateway::{Gateway, GatewayConfig};
use nml_runtime::inference::abi::{ChatMessage, LLMChatRequest};
use nml_runtime::llm::{LlmBackend, LlmError, LlmRequest, LlmResponse};
use nml_runtime::tee::Enclave;

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
    let config = GatewayConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        backend: Arc::new(FixedLatency(latency)),
        concurrency,
        enclave: Enclave::from_seed(0, 0).expect("enclave"),
        payments: None,
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
    added_latency(&runtime);
    throughput(&runtime);
}

fn added_latency(runtime: &tokio::runtime::Runtime) {
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
}

fn throughput(runtime: &tokio::runtime::Runtime) {
    const CLIENTS: usize = 64;
    const PER_CLIENT: usize = 20;
    let latency = Duration::from_millis(50);
    let gateway = start(runtime, latency, CLIENTS);
    let url = format!("http://{}/v1/chat/completions", gateway.local_addr);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..CLIENTS {
            let url = url.clone();
            scope.spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
                for i in 0..PER_CLIENT {
                    let mut response = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(body(c * PER_CLIENT + i))
                        .expect("sent");
                    let _ = response.body_mut().read_to_string().expect("body");
                }
            });
        }
    });
    let elapsed = started.elapsed();
    let total = CLIENTS * PER_CLIENT;
    let ideal = CLIENTS as f64 / latency.as_secs_f64();
    println!(
        "throughput: {total} chats from {CLIENTS} clients, backend latency {latency:?}: {:.0} requests/s in {:.2} s (a backend-bound ideal: {ideal:.0}/s)",
        total as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64(),
    );
    runtime.block_on(gateway.stop());
}
