//! The gateway against a real devnet (the OPG token, Permit2, x402's
//! proxies and the TEE registry predeployed) served over JSON-RPC.
//!
//! Payments: every refusal is a 402 with x402's reason, nothing is charged
//! for it, nothing is charged twice, and a backend that fails after the
//! payment was verified charges nothing — the payment is released
//! unsettled, and the same signed payment pays for the next request. The
//! backend is a test double; the clients' side is `payment_header` (what
//! x402 clients sign).
//!
//! Registration: the gateway registers its enclave over JSON-RPC, a second
//! registration at the same endpoint keeps it, another endpoint is refused,
//! and each heartbeat moves the registry's `lastHeartbeatAt`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use alloy_primitives::{Address, U256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use nml_gateway::payment::{PAYMENT_REQUIRED, PAYMENT_SIGNATURE, payment_header};
use nml_gateway::{Gateway, GatewayConfig, MAX_BODY, PaymentConfig, Payments, Prices, Scheme};
use nml_runtime::chain::dev_accounts;
use nml_runtime::inference::{OnnxConfig, OnnxExecutor};
use nml_runtime::llm::{LlmBackend, LlmError, LlmRequest, LlmResponse};
use nml_runtime::node::InferenceSetup;
use nml_runtime::predeploys::payments::{IOPGToken, OPG_TOKEN, PERMIT2};
use nml_runtime::tee::Enclave;
use nml_runtime::{Devnet, DevnetConfig};
use serde_json::{Value, json};

const PRICE: u64 = 1_000;
const MODEL: &str = "gpt-4.1-2025-04-14";

/// Test double: fails on the prompt "fail", moves the devnet's clock 400 s
/// on (past a payment's deadline) while answering "late", answers anything
/// else; counts the calls.
#[derive(Debug)]
struct Double {
    devnet: Arc<Devnet>,
    calls: AtomicUsize,
}

impl LlmBackend for Double {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if request.prompt().contains("late") {
            self.devnet.increase_time(400).unwrap();
        }
        if request.prompt().contains("fail") {
            return Err(LlmError::Unavailable {
                model: request.model().to_owned(),
                backend: "the test double".into(),
                reason: "failing on purpose".into(),
            });
        }
        Ok(LlmResponse::text_for(request, "paid for"))
    }

    fn describe(&self) -> String {
        "a test double".into()
    }
}

struct Setup {
    runtime: tokio::runtime::Runtime,
    devnet: Arc<Devnet>,
    _server: nml_runtime::rpc::RpcServer,
    gateway: Gateway,
    payments: Arc<Payments>,
    backend: Arc<Double>,
    url: String,
}

fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    let executor = Arc::new(OnnxExecutor::new(OnnxConfig::new(library)).unwrap());
    let devnet = Arc::new(Devnet::with_inference(DevnetConfig::default(), InferenceSetup::new(executor)).unwrap());
    // Dev account 1 approves OPG to Permit2; dev account 3 does not.
    let approve = IOPGToken::approveCall { spender: PERMIT2, value: U256::MAX }.abi_encode();
    devnet
        .send_transaction(
            TransactionRequest::default().from(dev_accounts(2)[1].address).to(OPG_TOKEN).input(approve.into()),
        )
        .unwrap();
    let server = runtime.block_on(nml_runtime::rpc::serve(devnet.clone(), "127.0.0.1:0".parse().unwrap())).unwrap();
    let payments = Arc::new(Payments::new(PaymentConfig {
        rpc_url: format!("http://{}", server.local_addr),
        chain_id: 31337,
        scheme: Scheme::Exact,
        prices: Prices { per_request: U256::from(PRICE), per_token: U256::ZERO, cap: U256::from(PRICE) },
        model_prices: Default::default(),
        pay_to: dev_accounts(3)[2].address,
        facilitator: dev_accounts(10)[9].signer.clone(),
        max_timeout_seconds: 300,
    }));
    let backend = Arc::new(Double { devnet: Arc::clone(&devnet), calls: AtomicUsize::new(0) });
    let config = GatewayConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        backend: Arc::clone(&backend) as Arc<dyn LlmBackend>,
        concurrency: 4,
        enclave: Enclave::from_seed(0, 0).unwrap(),
        faults: Arc::default(),
        payments: Some(Arc::clone(&payments)),
        settlement: None,
        tls: None,
        ohttp: None,
        body_time: nml_gateway::BODY_TIME,
    };
    let gateway = runtime.block_on(Gateway::start(config)).unwrap();
    let url = format!("http://{}/v1/chat/completions", gateway.local_addr);
    Setup { runtime, devnet, _server: server, gateway, payments, backend, url }
}

fn chat(prompt: &str) -> String {
    json!({ "model": MODEL, "messages": [{"role": "user", "content": prompt}], "max_tokens": 8 }).to_string()
}

/// POSTs `body` with `payment`: the status and x402's reason of a refusal.
fn post(url: &str, body: &str, payment: Option<&str>) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut request = agent.post(url).header("content-type", "application/json");
    if let Some(payment) = payment {
        request = request.header(PAYMENT_SIGNATURE, payment);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    let offered = response.headers().contains_key(PAYMENT_REQUIRED);
    let text = response.body_mut().read_to_string().unwrap_or_default();
    // A 402 carries its terms in the header, and the same JSON as its body.
    assert_eq!(status == 402, offered, "a 402 and only a 402 offers terms: {text}");
    match status {
        402 => (status, serde_json::from_str::<Value>(&text).unwrap()["error"].as_str().unwrap_or_default().to_owned()),
        _ => (status, text),
    }
}

fn balance(devnet: &Devnet, who: Address) -> U256 {
    let call = IOPGToken::balanceOfCall { owner: who }.abi_encode();
    let out = devnet.call(TransactionRequest::default().to(OPG_TOKEN).input(call.into()), None, None).unwrap();
    U256::from_be_slice(&out)
}

#[test]
fn bad_payments_are_refused_with_their_reason_and_nothing_is_charged_twice() {
    let s = setup();
    let payer = dev_accounts(2)[1].signer.clone();
    let terms = s.payments.requirements(Some(MODEL));
    let sign = |who: &PrivateKeySigner, chain: u64, terms: &Value, nonce: u64| {
        payment_header(who, chain, terms, U256::from(nonce)).unwrap()
    };
    let before = balance(&s.devnet, payer.address());
    let refused = |payment: Option<&str>, reason: &str| {
        let (status, said) = post(&s.url, &chat("hello"), payment);
        assert_eq!(status, 402, "{reason}: {said}");
        assert!(said.contains(reason), "expected {reason}, got {said}");
    };

    refused(None, "Payment required");
    refused(Some("not base64 JSON!"), "invalid_payload");
    // Terms of its own: another amount, another network, signed for another chain.
    refused(Some(&sign(&payer, 31337, &with(&terms, "amount", json!("1")), 1)), "payment_requirements_mismatch");
    refused(Some(&sign(&payer, 31337, &with(&terms, "network", json!("eip155:1")), 2)), "network_mismatch");
    refused(Some(&sign(&payer, 1, &terms, 3)), "invalid_permit2_signature");
    // Expired: a deadline with less than the gateway's margin left.
    refused(Some(&sign(&payer, 31337, &with(&terms, "maxTimeoutSeconds", json!(1)), 4)), "permit2_deadline_expired");
    // A payer without OPG; a payer with OPG who never approved Permit2.
    let stranger = PrivateKeySigner::random();
    refused(Some(&sign(&stranger, 31337, &terms, 5)), "insufficient_funds");
    refused(Some(&sign(&dev_accounts(4)[3].signer, 31337, &terms, 6)), "permit2_allowance_required");
    assert_eq!(balance(&s.devnet, payer.address()), before, "no refusal charged anything");

    // A backend failing after the payment was verified: 502, not charged,
    // and the same payment then pays for an answer, once.
    let payment = sign(&payer, 31337, &terms, 7);
    let (status, said) = post(&s.url, &chat("please fail"), Some(&payment));
    assert_eq!(status, 502, "{said}");
    assert_eq!(balance(&s.devnet, payer.address()), before, "a failed backend charges nothing");
    let (status, said) = post(&s.url, &chat("hello"), Some(&payment));
    assert_eq!(status, 200, "{said}");
    assert_eq!(balance(&s.devnet, payer.address()), before - U256::from(PRICE), "charged once");
    // Replayed: already settled.
    refused(Some(&payment), "permit2_nonce_used");
    assert_eq!(balance(&s.devnet, payer.address()), before - U256::from(PRICE), "never twice");

    // A body over the limit is refused before anything else.
    let huge = chat(&"x".repeat(MAX_BODY));
    assert_eq!(post(&s.url, &huge, Some(&sign(&payer, 31337, &terms, 8))).0, 413);
    // And the gateway goes on serving.
    assert_eq!(post(&s.url, &chat("hello"), Some(&sign(&payer, 31337, &terms, 9))).0, 200);
    s.runtime.block_on(s.gateway.stop());
}

/// Permit2 checks a payment's deadline and `validAfter` against the block's
/// timestamp, so the gateway does too: the chain's clock, not its own. A
/// payment whose deadline the chain has passed (`evm_increaseTime`) is
/// refused before the backend runs; one with too little time left is "too
/// close"; and a settlement that reverts all the same says why.
#[test]
fn payments_are_checked_against_the_chains_clock_and_a_reverted_settlement_says_why() {
    let s = setup();
    let payer = dev_accounts(2)[1].signer.clone();
    let terms = s.payments.requirements(Some(MODEL));
    let sign = |terms: &Value, nonce: u64| payment_header(&payer, 31337, terms, U256::from(nonce)).unwrap();
    let before = balance(&s.devnet, payer.address());
    let calls = || s.backend.calls.load(Ordering::SeqCst);

    let (status, said) = post(&s.url, &chat("hello"), Some(&sign(&with(&terms, "maxTimeoutSeconds", json!(3)), 1)));
    assert_eq!(status, 402, "{said}");
    assert!(said.starts_with("permit2_deadline_expired") && said.contains("too close"), "{said}");

    // The chain's clock passes the deadline while the backend answers: the
    // settlement reverts in Permit2, and the 402 names its error.
    let (status, said) = post(&s.url, &chat("late"), Some(&sign(&terms, 2)));
    assert_eq!(status, 402, "{said}");
    assert!(said.starts_with("settlement_failed") && said.contains("SignatureExpired("), "{said}");
    assert_eq!(balance(&s.devnet, payer.address()), before, "a reverted settlement moves nothing");

    // The chain is now 400 s ahead of this machine's clock, past a payment
    // signed by it for 300 s: refused before anything runs.
    let ran = calls();
    let (status, said) = post(&s.url, &chat("hello"), Some(&sign(&terms, 3)));
    assert_eq!(status, 402, "{said}");
    assert!(said.starts_with("permit2_deadline_expired") && said.contains("before the chain's time"), "{said}");
    assert_eq!(calls(), ran, "the backend never ran for an expired payment");
    assert_eq!(balance(&s.devnet, payer.address()), before);
    s.runtime.block_on(s.gateway.stop());
}

/// The relay holds one individual record per `(teeId, inputHash,
/// outputHash, timestamp)`: two identical answers in the same second are
/// one record, and both name its transaction — the gateway that posted it
/// remembers it, another poster finds it in the relay's log.
#[test]
fn identical_individual_settlements_in_one_second_name_the_same_transaction() {
    use alloy_primitives::B256;
    use nml_gateway::chain::ChainAccount;
    use nml_gateway::{DataSettlement, SettlementType};

    let s = setup();
    let rpc = s.payments.config().rpc_url.clone();
    let account = || Arc::new(ChainAccount::new(rpc.clone(), 31337, dev_accounts(10)[9].signer.clone()));
    let admin = Some(dev_accounts(1)[0].address);
    let (first, second) = (
        DataSettlement::connect(account(), admin, 20).unwrap(),
        DataSettlement::connect(account(), admin, 20).unwrap(),
    );
    let attestation =
        Enclave::from_seed(0, 0).unwrap().attest(B256::repeat_byte(1), B256::repeat_byte(2), 1_700_000_000).unwrap();
    let payer = dev_accounts(2)[1].address;
    let posted = first.record(SettlementType::Individual, attestation.clone(), payer).unwrap().unwrap();
    assert_eq!(first.record(SettlementType::Individual, attestation.clone(), payer).unwrap(), Some(posted));
    assert_eq!(second.record(SettlementType::Individual, attestation, payer).unwrap(), Some(posted));
    s.runtime.block_on(s.gateway.stop());
}

/// `terms` with `key` changed to `value`.
fn with(terms: &Value, key: &str, value: Value) -> Value {
    let mut changed = terms.clone();
    changed[key] = value;
    changed
}

#[test]
fn the_gateway_registers_over_json_rpc_and_keeps_its_heartbeat() {
    use nml_gateway::chain::ChainAccount;
    use nml_gateway::ohttp::OhttpKey;
    use nml_gateway::registration::{Registration, RegistrationError};
    use nml_runtime::predeploys::{ITEERegistry, TEE_REGISTRY};
    use nml_runtime::tee::{GATEWAY_ENCLAVE, nitro};

    let s = setup();
    let rpc = s.payments.config().rpc_url.clone();
    let account = |i: usize| Arc::new(ChainAccount::new(rpc.clone(), 31337, dev_accounts(10)[i].signer.clone()));
    let enclave = Enclave::from_seed(0, GATEWAY_ENCLAVE).unwrap();
    let (certificate, _) = nitro::self_signed_tls(0, GATEWAY_ENCLAVE).unwrap();
    let ohttp = OhttpKey::from_seed(0, GATEWAY_ENCLAVE);
    let register = |endpoint: &str| {
        Registration::register(
            &account(0),
            account(8),
            Arc::clone(&enclave),
            (0, GATEWAY_ENCLAVE),
            &certificate,
            endpoint,
            &ohttp,
        )
    };
    let info = || {
        let call = ITEERegistry::getTEECall { teeId: enclave.id() }.abi_encode();
        let out = s.devnet.call(TransactionRequest::default().to(TEE_REGISTRY).input(call.into()), None, None).unwrap();
        ITEERegistry::getTEECall::abi_decode_returns(&out).unwrap()
    };

    let registration = register("https://127.0.0.1:9443").unwrap();
    let registered = info();
    assert_eq!(registered.endpoint, "https://127.0.0.1:9443");
    assert_eq!(registered.teeType, 0, "an LLM proxy");
    assert_eq!(registered.ohttpConfig.publicKey[..], ohttp.public_key()[..]);
    // Registering again at the same endpoint keeps it; another is refused.
    assert!(register("https://127.0.0.1:9443").is_ok());
    assert!(matches!(register("https://127.0.0.1:9999"), Err(RegistrationError::RegisteredElsewhere { .. })));
    // Each heartbeat is newer than the last.
    registration.beat().unwrap();
    let first = info().lastHeartbeatAt;
    assert!(first > registered.lastHeartbeatAt, "{first} after {}", registered.lastHeartbeatAt);
    registration.beat().unwrap();
    assert!(info().lastHeartbeatAt > first);
    s.runtime.block_on(s.gateway.stop());
}
