//! Unit tests of the inference mempool with test-double executors.

use std::sync::atomic::AtomicUsize;

use alloy_primitives::{Bytes, keccak256};
use alloy_sol_types::{Revert, SolCall, SolError};
use revm::interpreter::InstructionResult;

use super::memo::Hashed;
use super::*;
use crate::inference::abi::{LLMCompletionRequest, ModelOutput};
use crate::inference::abi::{MultiDimensionalNumberTensor, Number};
use crate::inference::{InferenceError, ModelId, ModelInput, request_id};
use crate::llm::{LlmError, LlmResponse, LlmRouter};

/// No LLM backend: every LLM id is unknown.
fn no_llm() -> Arc<dyn LlmBackend> {
    Arc::new(LlmRouter::new(None))
}

/// Test double: answers every LLM call with how many calls it has had
/// (after `delay`).
#[derive(Default)]
struct CountingLlm {
    calls: AtomicUsize,
    delay: Duration,
}

impl LlmBackend for CountingLlm {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        std::thread::sleep(self.delay);
        Ok(LlmResponse::text_for(request, &format!("answer {n}")))
    }

    fn describe(&self) -> String {
        "counting".into()
    }
}

/// Test double: answers every request with one fixed tensor (after
/// `delay`) and counts runs.
#[derive(Default)]
struct CountingExecutor {
    runs: AtomicUsize,
    delay: Duration,
}

impl Executor for CountingExecutor {
    fn run(&self, _model: &ModelId, _input: &ModelInput) -> Result<ModelOutput, InferenceError> {
        self.runs.fetch_add(1, Ordering::Relaxed);
        std::thread::sleep(self.delay);
        let y = MultiDimensionalNumberTensor {
            name: "y".into(),
            values: vec![Number { value: 7, decimals: 0 }],
            shape: vec![1],
        };
        Ok(ModelOutput { numbers: vec![y], ..ModelOutput::default() })
    }
}

fn request() -> ModelInferenceRequest {
    let x = MultiDimensionalNumberTensor {
        name: "x".into(),
        values: vec![Number { value: 1, decimals: 0 }],
        shape: vec![1],
    };
    ModelInferenceRequest {
        mode: 0,
        modelCID: "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51".into(),
        input: ModelInput { numbers: vec![x], strings: vec![] },
    }
}

#[test]
fn the_input_hash_read_from_the_request_encoding_is_the_input_s_own() {
    use crate::inference::abi::StringTensor;
    use alloy_sol_types::SolValue;
    let mut big = request();
    big.modelCID = "a model id long enough to take three words of its own, and then some".into();
    big.input.numbers.push(MultiDimensionalNumberTensor {
        name: "y".into(),
        values: (0..64).map(|i| Number { value: i - 32, decimals: 2 }).collect(),
        shape: vec![1, 64],
    });
    big.input.strings.push(StringTensor { name: "s".into(), values: vec!["one".into(), String::new()] });
    let empty = ModelInferenceRequest { input: ModelInput { numbers: vec![], strings: vec![] }, ..request() };
    let call = |args: &[u8]| {
        let calldata = [&runModelInferenceCall::SELECTOR[..], args].concat();
        Request::of_call(&calldata, Some(Hashed { args: Bytes::copy_from_slice(args), hash: keccak256(args) })).unwrap()
    };
    for r in [request(), big, empty] {
        let args = r.abi_encode();
        let (read, id) = call(&args);
        assert_eq!(id, request_id(&r));
        assert_eq!(read.input_hash().get(), keccak256(r.input.abi_encode()));
        assert_eq!(read, Request::from_model(r.clone()));
        // Arguments in another valid encoding: the same id and input hash.
        let mut other = alloy_primitives::U256::from(0x40).to_be_bytes::<32>().to_vec();
        other.extend_from_slice(&[0u8; 32]);
        other.extend_from_slice(&args[32..]);
        let (again, id) = call(&other);
        assert_eq!((again, id), (read, request_id(&r)));
    }
}

#[test]
fn non_canonical_calldata_names_the_same_request() {
    let executor = Arc::new(CountingExecutor::default());
    let pipe = Pipe::new(executor.clone(), no_llm(), PipeConfig::default(), Arc::default());
    let canonical = runModelInferenceCall { request: request() }.abi_encode();
    let first = pipe.answer(Phase::Call, &canonical, 1_000_000, None, 0);
    assert_eq!(first.result, InstructionResult::Return);
    // The same request with its tuple 32 bytes further on: valid ABI, other bytes.
    let mut other = canonical[..4].to_vec();
    other.extend_from_slice(&alloy_primitives::U256::from(0x40).to_be_bytes::<32>());
    other.extend_from_slice(&[0u8; 32]);
    other.extend_from_slice(&canonical[36..]);
    assert_ne!(keccak256(&other[4..]), keccak256(&canonical[4..]));
    let second = pipe.answer(Phase::Call, &other, 1_000_000, None, 0);
    assert_eq!(second.output, first.output);
    assert_eq!(executor.runs.load(Ordering::Relaxed), 1, "served as the known request");
    assert_eq!(pipe.status().inferences_run, 1);
}

#[test]
fn concurrent_calls_with_the_same_unknown_request_run_it_once() {
    let executor = Arc::new(CountingExecutor { delay: Duration::from_millis(200), ..Default::default() });
    let pipe = Pipe::new(executor.clone(), no_llm(), PipeConfig::default(), Arc::default());
    let calldata = runModelInferenceCall { request: request() }.abi_encode();
    let outputs: Vec<Bytes> = std::thread::scope(|scope| {
        let calls: Vec<_> =
            (0..4).map(|_| scope.spawn(|| pipe.answer(Phase::Call, &calldata, 1_000_000, None, 0).output)).collect();
        // A dispatch round meeting the same request while the calls run it.
        std::thread::sleep(Duration::from_millis(50));
        pipe.dispatch(1, vec![(request_id(&request()), Request::from_model(request()))], 0);
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    assert_eq!(executor.runs.load(Ordering::Relaxed), 1, "one run for all of them");
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    let output = runModelInferenceCall::abi_decode_returns(&outputs[0]).unwrap();
    assert_eq!(output.numbers[0].values[0].value, 7);
    assert!(pipe.shared.lock().running.is_empty());
}

/// Test double: an executor that panics after a while.
struct PanickingExecutor;

impl Executor for PanickingExecutor {
    fn run(&self, _model: &ModelId, _input: &ModelInput) -> Result<ModelOutput, InferenceError> {
        std::thread::sleep(Duration::from_millis(100));
        panic!("test double: the executor panics");
    }
}

#[test]
fn a_panicking_executor_still_answers_everyone_waiting() {
    let pipe = Pipe::new(Arc::new(PanickingExecutor), no_llm(), PipeConfig::default(), Arc::default());
    let calldata = runModelInferenceCall { request: request() }.abi_encode();
    let answers: Vec<_> = std::thread::scope(|scope| {
        let calls: Vec<_> =
            (0..3).map(|_| scope.spawn(|| pipe.answer(Phase::Call, &calldata, 1_000_000, None, 0))).collect();
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    // One run, one failure, the same answer for all three.
    assert!(answers.windows(2).all(|w| w[0].output == w[1].output));
    for answer in answers {
        assert_eq!(answer.result, InstructionResult::Revert);
        let reason = Revert::abi_decode(&answer.output).unwrap().reason;
        assert!(reason.contains("panicked"), "{reason}");
    }
    assert!(pipe.shared.lock().running.is_empty());
}

#[test]
fn gas_is_charged_by_input_size_and_a_short_limit_halts() {
    let pipe = Pipe::new(Arc::new(CountingExecutor::default()), no_llm(), PipeConfig::default(), Arc::default());
    let calldata = runModelInferenceCall { request: request() }.abi_encode();
    let gas = request_gas(&request());
    assert_eq!(gas, GAS_BASE + GAS_PER_ELEMENT);
    let ok = pipe.answer(Phase::Call, &calldata, gas, None, 0);
    assert_eq!((ok.result, ok.gas.remaining()), (InstructionResult::Return, 0));
    let short = pipe.answer(Phase::Call, &calldata, gas - 1, None, 0);
    assert_eq!(short.result, InstructionResult::PrecompileOOG);
}

#[test]
fn simulation_answers_unknown_requests_with_the_empty_flagged_output() {
    let executor = Arc::new(CountingExecutor::default());
    let pipe = Pipe::new(executor.clone(), no_llm(), PipeConfig::default(), Arc::default());
    let calldata = runModelInferenceCall { request: request() }.abi_encode();
    let met = Mutex::new(Met::default());
    let answer = pipe.answer(Phase::Simulation, &calldata, 1_000_000, Some(&met), 0);
    let output = runModelInferenceCall::abi_decode_returns(&answer.output).unwrap();
    assert!(output.is_simulation_result && output.numbers.is_empty());
    let met = met.into_inner();
    assert_eq!(met.unknown.len(), 1);
    assert_eq!(met.unknown[0].0, request_id(&request()));
    assert_eq!(executor.runs.load(Ordering::Relaxed), 0, "a simulation never runs a model");
    // A replay of a request never recorded reverts instead of running it.
    let replay = pipe.answer(Phase::Replay, &calldata, 1_000_000, None, 0);
    assert_eq!(replay.result, InstructionResult::Revert);
    assert_eq!(executor.runs.load(Ordering::Relaxed), 0);
}

fn completion(prompt: &str) -> Vec<u8> {
    let request = LLMCompletionRequest { modelCID: "m".into(), prompt: prompt.into(), ..Default::default() };
    runLLMCompletionCall { request }.abi_encode()
}

fn answer_of(output: &[u8]) -> String {
    runLLMCompletionCall::abi_decode_returns(output).unwrap().answer
}

#[test]
fn an_llm_call_is_asked_once_and_served_from_the_result_after() {
    let llm = Arc::new(CountingLlm::default());
    let pipe = Pipe::new(Arc::new(CountingExecutor::default()), llm.clone(), PipeConfig::default(), Arc::default());
    let first = pipe.answer(Phase::Call, &completion("hi"), 1_000_000, None, 0);
    assert_eq!(first.result, InstructionResult::Return);
    assert_eq!(answer_of(&first.output), "answer 1");
    // Inclusion and replays serve the same answer: an LLM is never asked twice.
    for phase in [Phase::Call, Phase::Inclusion, Phase::Simulation] {
        let again = pipe.answer(phase, &completion("hi"), 1_000_000, None, 0);
        assert_eq!(answer_of(&again.output), "answer 1", "{phase:?}");
    }
    assert_eq!(llm.calls.load(Ordering::SeqCst), 1);
    // Gas: the base and 8 per byte of text.
    assert_eq!(first.gas.total_gas_spent(), GAS_BASE + 2 * GAS_PER_TEXT_BYTE);
}

#[test]
fn a_simulation_meets_an_unknown_llm_call_and_answers_it_empty() {
    let llm = Arc::new(CountingLlm::default());
    let pipe = Pipe::new(Arc::new(CountingExecutor::default()), llm.clone(), PipeConfig::default(), Arc::default());
    let met = Mutex::new(Met::default());
    let out = pipe.answer(Phase::Simulation, &completion("q"), 1_000_000, Some(&met), 0);
    assert_eq!(out.result, InstructionResult::Return);
    assert_eq!(answer_of(&out.output), "");
    let met = met.into_inner();
    assert_eq!(met.unknown.len(), 1);
    assert_eq!(llm.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn an_unconfigured_llm_reverts_with_a_reason() {
    let pipe = Pipe::new(Arc::new(CountingExecutor::default()), no_llm(), PipeConfig::default(), Arc::default());
    let out = pipe.answer(Phase::Call, &completion("hi"), 1_000_000, None, 0);
    assert_eq!(out.result, InstructionResult::Revert);
    let reason = Revert::abi_decode(&out.output).unwrap().reason;
    assert!(reason.starts_with("unknown LLM `m`: no backend on this devnet serves it"), "{reason}");
}

#[test]
fn model_and_llm_requests_of_a_round_run_side_by_side() {
    let executor = Arc::new(CountingExecutor { delay: Duration::from_millis(150), ..Default::default() });
    let llm = Arc::new(CountingLlm { delay: Duration::from_millis(150), ..Default::default() });
    let pipe = Pipe::new(executor.clone(), llm.clone(), PipeConfig::default(), Arc::default());
    let model = Request::from_model(request());
    let asks: Vec<Request> = (0..4)
        .map(|i| {
            Request::Llm(LlmRequest::Completion(LLMCompletionRequest {
                modelCID: "m".into(),
                prompt: format!("p{i}"),
                ..Default::default()
            }))
        })
        .collect();
    let mut all: Vec<&Request> = asks.iter().collect();
    all.insert(2, &model);
    let started = std::time::Instant::now();
    let runs = pipe.run_claimed(&all);
    let took = started.elapsed();
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r.output.is_ok()));
    // The model's output sits at its own place among the answers.
    let model_output = runs[2].output.as_ref().unwrap();
    assert!(runModelInferenceCall::abi_decode_returns(model_output).is_ok());
    assert!(took < Duration::from_millis(290), "{took:?}: the model and the four calls ran one after another");
    assert_eq!(llm.calls.load(Ordering::SeqCst), 4);
}

#[test]
fn a_spliced_event_is_the_decoded_one() {
    use crate::inference::abi::{ChatMessage, LLMChatRequest, LLMChatResponse, LLMCompletionResponse, runLLMChatCall};
    use precompile::{served_event, spliced_event};

    let mut model = request();
    model.input.numbers[0].values = (0..64).map(|i| Number { value: i * 1_000 - 7, decimals: 18 }).collect();
    model.input.numbers[0].shape = vec![1, 64];
    let output = CountingExecutor::default().run(&ModelId::parse(&model.modelCID).unwrap(), &model.input).unwrap();
    let chat = LLMChatRequest {
        modelCID: "m".into(),
        messages: vec![ChatMessage { role: "user".into(), content: "hi".into(), ..Default::default() }],
        stop_sequence: vec!["\n".into()],
        max_tokens: 100,
        ..Default::default()
    };
    let reply = ChatMessage { role: "assistant".into(), content: "hello there".into(), ..Default::default() };
    let cases = [
        (runModelInferenceCall { request: model }.abi_encode(), runModelInferenceCall::abi_encode_returns(&output)),
        (completion("prompt"), runLLMCompletionCall::abi_encode_returns(&LLMCompletionResponse { answer: "a".into() })),
        (
            runLLMChatCall { request: chat }.abi_encode(),
            runLLMChatCall::abi_encode_returns(&LLMChatResponse { finish_reason: "stop".into(), message: reply }),
        ),
    ];
    for (calldata, output) in cases {
        let id = keccak256(&calldata[4..]);
        let decoded = served_event(&calldata, &output).expect("an event");
        assert_eq!(spliced_event(id, &calldata, &output), Some(decoded));
    }
    // Anything but the precompile's calls (or a non-canonical answer) is not spliced.
    assert_eq!(spliced_event(B256::ZERO, &[1, 2, 3, 4, 5], &[]), None);
    let calldata = completion("p");
    assert_eq!(spliced_event(B256::ZERO, &calldata, &[0; 31]), None);
}

/// The request of `n`: `request()` with its one value set to `n`.
fn request_of(n: i128) -> ModelInferenceRequest {
    let mut r = request();
    r.input.numbers[0].values[0].value = n;
    r
}

#[test]
fn known_results_past_the_limit_are_forgotten_oldest_first_and_run_again() {
    let executor = Arc::new(CountingExecutor::default());
    let config = PipeConfig { known_limit: 8, ..PipeConfig::default() };
    let pipe = Pipe::new(executor.clone(), no_llm(), config, Arc::default());
    let call = |n: i128| {
        let calldata = runModelInferenceCall { request: request_of(n) }.abi_encode();
        assert_eq!(pipe.answer(Phase::Call, &calldata, 1_000_000, None, 0).result, InstructionResult::Return);
    };
    for n in 0..100 {
        call(n);
        assert!(pipe.status().known_results <= 8, "{} after {n}", pipe.status().known_results);
    }
    assert_eq!(executor.runs.load(Ordering::Relaxed), 100);
    // The newest is still known; the oldest was forgotten and runs again.
    call(99);
    assert_eq!(executor.runs.load(Ordering::Relaxed), 100);
    call(0);
    assert_eq!(executor.runs.load(Ordering::Relaxed), 101);
}

#[test]
fn a_pending_transactions_results_outlive_the_limit() {
    let executor = Arc::new(CountingExecutor::default());
    let config = PipeConfig { known_limit: 8, ..PipeConfig::default() };
    let pipe = Pipe::new(executor.clone(), no_llm(), config, Arc::default());
    let calldata = |n: i128| runModelInferenceCall { request: request_of(n) }.abi_encode();
    // A transaction's preparation found the result of request 0 and awaits
    // that of request 1 (as a simulation round and a background dispatch leave it).
    pipe.answer(Phase::Call, &calldata(0), 1_000_000, None, 0);
    pipe.answer(Phase::Call, &calldata(1), 1_000_000, None, 0);
    {
        let mut s = pipe.shared.lock();
        let prep = s.prepared.entry(B256::repeat_byte(1)).or_default();
        prep.found.insert(request_id(&request_of(0)), 1);
        prep.awaiting.push(request_id(&request_of(1)));
    }
    for n in 2..100 {
        pipe.answer(Phase::Call, &calldata(n), 1_000_000, None, 0);
    }
    let s = pipe.shared.lock();
    assert!(s.known.len() <= 8, "{}", s.known.len());
    assert!(s.known.contains_key(&request_id(&request_of(0))));
    assert!(s.known.contains_key(&request_id(&request_of(1))));
    // Forgotten and replaced entries do not pile up behind the bound.
    assert!(s.arrivals.len() <= 2 * 8 + 64, "{}", s.arrivals.len());
}

#[test]
fn claims_of_a_round_that_never_ran_are_finished_as_transient_failures() {
    // A background dispatch whose thread could not start drops its
    // `Claimed` unrun: whoever waits for those requests must be answered.
    let pipe = Pipe::new(Arc::new(CountingExecutor::default()), no_llm(), PipeConfig::default(), Arc::default());
    let request = Request::from_model(request());
    let id = B256::repeat_byte(7);
    let claimed = pipe.claim_round(1, vec![(id, request)], 0);
    let running = Arc::clone(&claimed.run[0].1);
    assert!(pipe.shared.lock().running.contains_key(&id));
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(running.wait().transient));
    drop(claimed);
    let transient = rx.recv_timeout(Duration::from_secs(10)).expect("the claim was left open: its waiter hangs");
    assert!(transient);
    assert!(pipe.shared.lock().running.is_empty());
}
