//! LLM calls without the chain: the two requests of the inference precompile
//! (`runLLMCompletion`, `runLLMChat`) as one [`LlmRequest`], the
//! [`LlmBackend`] trait that answers them, and the backends.
//!
//! The mempool identifies, deduplicates, dispatches and records an LLM
//! request exactly as it does a model request (PROTOCOL.md B1–B7); this layer
//! only answers. The rooms, each using only the ones before it:
//! [`embedded`] (a small character-level model run by ONNX Runtime
//! in-process, the default), [`openai`] (any OpenAI-compatible server),
//! [`router`] (which backend answers which model id, and the checks every
//! request passes first), [`cassette`] (answers recorded to a file and
//! replayed) and [`config`] (the `[llm]` table of `nml.toml` and the flags
//! that build the whole stack). [`answer_all`] runs a round of requests with
//! a bounded number of backend calls at once.

pub mod cassette;
pub mod config;
pub mod embedded;
pub mod openai;
pub mod router;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_primitives::{B256, keccak256};
use alloy_sol_types::{SolCall, SolValue};

use crate::inference::abi::{
    ChatMessage, LLMChatRequest, LLMChatResponse, LLMCompletionRequest, LLMCompletionResponse, runLLMChatCall,
    runLLMCompletionCall,
};

pub use cassette::{Cassette, CassetteMode};
pub use config::{CassetteConfig, LlmConfig, LlmConfigError, LlmStack, ServerConfig};
pub use embedded::EmbeddedLlm;
pub use openai::OpenAiBackend;
pub use router::LlmRouter;

/// The mode byte of an LLM request that asks for an enclave's attestation
/// (`VANILLA = 0`, `TEE = 1`, as published; model requests number theirs
/// differently).
pub const LLM_MODE_TEE: u8 = 1;

/// A call to an LLM, as a contract made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmRequest {
    /// `runLLMCompletion`.
    Completion(LLMCompletionRequest),
    /// `runLLMChat`.
    Chat(LLMChatRequest),
}

impl LlmRequest {
    /// Its identity: `keccak256(abi.encode(request))`, the hash of the
    /// call's argument data as solc writes it (as for model requests; the
    /// three request tuples never encode alike).
    pub fn id(&self) -> B256 {
        match self {
            Self::Completion(r) => keccak256(r.abi_encode()),
            Self::Chat(r) => keccak256(r.abi_encode()),
        }
    }

    /// The LLM's id as the contract names it.
    pub fn model(&self) -> &str {
        match self {
            Self::Completion(r) => &r.modelCID,
            Self::Chat(r) => &r.modelCID,
        }
    }

    /// The mode byte (`VANILLA = 0`, `TEE = 1`).
    pub fn mode(&self) -> u8 {
        match self {
            Self::Completion(r) => r.mode,
            Self::Chat(r) => r.mode,
        }
    }

    /// The most tokens to generate; 0 leaves it to the backend.
    pub fn max_tokens(&self) -> u32 {
        match self {
            Self::Completion(r) => r.max_tokens,
            Self::Chat(r) => r.max_tokens,
        }
    }

    /// The stop sequences.
    pub fn stop(&self) -> &[String] {
        match self {
            Self::Completion(r) => &r.stop_sequence,
            Self::Chat(r) => &r.stop_sequence,
        }
    }

    /// The sampling temperature in hundredths: 0..=100 through the
    /// precompile, 0..=200 (0 to 2.0) through the gateway.
    pub fn temperature(&self) -> u32 {
        match self {
            Self::Completion(r) => r.temperature,
            Self::Chat(r) => r.temperature,
        }
    }

    /// Refuses what the inference precompile's ABI does not allow
    /// (PROTOCOL.md): a temperature over 100 hundredths.
    pub fn check_precompile_bounds(&self) -> Result<(), LlmError> {
        let max = router::PRECOMPILE_MAX_TEMPERATURE;
        if self.temperature() > max {
            let reason = format!(
                "temperature {} is out of range: the precompile takes hundredths, 0..={max}",
                self.temperature()
            );
            return Err(LlmError::Refused { model: self.model().to_owned(), reason });
        }
        Ok(())
    }

    /// The precompile function it came through.
    pub fn function(&self) -> &'static str {
        match self {
            Self::Completion(_) => "runLLMCompletion",
            Self::Chat(_) => "runLLMChat",
        }
    }

    /// The bytes of text it sends: the prompt, or every message's content,
    /// name and tool-call arguments, and the tool definitions.
    pub fn text_len(&self) -> usize {
        match self {
            Self::Completion(r) => r.prompt.len(),
            Self::Chat(r) => {
                let messages: usize = r
                    .messages
                    .iter()
                    .map(|m| {
                        m.role.len()
                            + m.content.len()
                            + m.name.len()
                            + m.tool_call_id.len()
                            + m.tool_calls.iter().map(|c| c.id.len() + c.name.len() + c.arguments.len()).sum::<usize>()
                    })
                    .sum();
                let tools: usize =
                    r.tools.iter().map(|t| t.name.len() + t.description.len() + t.parameters.len()).sum();
                messages + tools
            }
        }
    }

    /// The text a prompt-specific mock or a log line names it by: the
    /// prompt, or the content of the chat's last message.
    pub fn prompt(&self) -> &str {
        match self {
            Self::Completion(r) => &r.prompt,
            Self::Chat(r) => r.messages.last().map_or("", |m| m.content.as_str()),
        }
    }

    /// What the precompile answers in the mempool's simulation pass: an
    /// empty completion, or a chat response with an empty `finish_reason`
    /// and an empty message (a real chat response always has a finish
    /// reason). See docs/llm.md.
    pub fn simulation(&self) -> LlmResponse {
        match self {
            Self::Completion(_) => LlmResponse::Completion(LLMCompletionResponse::default()),
            Self::Chat(_) => LlmResponse::Chat(LLMChatResponse::default()),
        }
    }

    /// A short description for error messages: the model and the prompt's
    /// start.
    pub fn describe(&self) -> String {
        let prompt = self.prompt();
        let mut cut: String = prompt.chars().take(48).collect();
        if cut.len() < prompt.len() {
            cut.push('…');
        }
        format!("{} of `{}` for {cut:?}", self.function(), self.model())
    }
}

/// An LLM's answer, as the precompile returns it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum LlmResponse {
    /// The answer to `runLLMCompletion`.
    Completion(LLMCompletionResponse),
    /// The answer to `runLLMChat`.
    Chat(LLMChatResponse),
}

impl LlmResponse {
    /// A chat answer of `text` by the assistant.
    pub fn chat_text(text: &str, finish_reason: &str) -> Self {
        Self::Chat(LLMChatResponse {
            finish_reason: finish_reason.to_owned(),
            message: ChatMessage { role: "assistant".to_owned(), content: text.to_owned(), ..ChatMessage::default() },
        })
    }

    /// `text` as the answer to `request`'s kind: a completion, or an
    /// assistant message that finished with `stop`.
    pub fn text_for(request: &LlmRequest, text: &str) -> Self {
        match request {
            LlmRequest::Completion(_) => Self::Completion(LLMCompletionResponse { answer: text.to_owned() }),
            LlmRequest::Chat(_) => Self::chat_text(text, "stop"),
        }
    }

    /// The precompile's return data: the ABI encoding of the response as
    /// the function's single return value.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Completion(r) => runLLMCompletionCall::abi_encode_returns(r),
            Self::Chat(r) => runLLMChatCall::abi_encode_returns(r),
        }
    }

    /// Whether it answers a request of `request`'s kind.
    pub fn fits(&self, request: &LlmRequest) -> bool {
        matches!(
            (self, request),
            (Self::Completion(_), LlmRequest::Completion(_)) | (Self::Chat(_), LlmRequest::Chat(_))
        )
    }

    /// The generated text.
    pub fn text(&self) -> &str {
        match self {
            Self::Completion(r) => &r.answer,
            Self::Chat(r) => &r.message.content,
        }
    }
}

/// A backend's answer and why its generation stopped (`stop`, `length`,
/// `tool_calls`…, OpenAI's words). A chat response carries its reason; a
/// completion's is kept beside the response, outside the protocol's
/// structs: it is reported (by the gateway), never hashed or signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlmAnswer {
    response: LlmResponse,
    /// A completion's finish reason (a chat's is its response's).
    completion_finish_reason: String,
}

impl LlmAnswer {
    /// `text` as a completion that stopped for `finish_reason`.
    pub fn completion(text: &str, finish_reason: &str) -> Self {
        Self {
            response: LlmResponse::Completion(LLMCompletionResponse { answer: text.to_owned() }),
            completion_finish_reason: finish_reason.to_owned(),
        }
    }

    /// The answer, as the precompile returns it.
    pub fn response(&self) -> &LlmResponse {
        &self.response
    }

    /// The answer, as the precompile returns it, without the reason.
    pub fn into_response(self) -> LlmResponse {
        self.response
    }

    /// Why generation stopped: a chat's reason as its response says it
    /// (empty when the backend gave none), a completion's as its backend
    /// said.
    pub fn finish_reason(&self) -> &str {
        match &self.response {
            LlmResponse::Chat(chat) => &chat.finish_reason,
            LlmResponse::Completion(_) => &self.completion_finish_reason,
        }
    }
}

impl From<LlmResponse> for LlmAnswer {
    /// `response` with its own reason, or `stop` for a completion.
    fn from(response: LlmResponse) -> Self {
        Self { response, completion_finish_reason: "stop".to_owned() }
    }
}

/// Why an LLM call was not answered. [`LlmError::is_transient`] tells a
/// failure that may pass (retried by a later block) from one that will not
/// (the precompile reverts with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// A mode other than `VANILLA = 0` and `TEE = 1`.
    #[error("LLM `{model}`: unknown mode {mode} (VANILLA = 0, TEE = 1)")]
    InvalidMode {
        /// The LLM's id.
        model: String,
        /// The mode byte given.
        mode: u8,
    },
    /// No backend on this devnet serves the id.
    #[error("unknown LLM `{model}`: no backend on this devnet serves it ({hint})")]
    UnknownModel {
        /// The id asked for.
        model: String,
        /// The routes that exist.
        hint: String,
    },
    /// The request asks for what the backend cannot do (tools of the
    /// embedded model, a temperature out of range), or the backend refused
    /// it (HTTP 4xx).
    #[error("LLM `{model}`: {reason}")]
    Refused {
        /// The LLM's id.
        model: String,
        /// Why, in the backend's words where it gave some.
        reason: String,
    },
    /// The request's text ([`LlmRequest::text_len`]) is over the limit
    /// (`[llm] max_prompt_bytes`).
    #[error("LLM `{model}`: the request's text is {bytes} bytes, over the limit of {limit} (`[llm] max_prompt_bytes`)")]
    TooLong {
        /// The LLM's id.
        model: String,
        /// The text's size.
        bytes: usize,
        /// The limit.
        limit: usize,
    },
    /// The backend cannot be reached or failed on its side (HTTP 5xx, 429).
    #[error("LLM `{model}`: the backend at {backend} is unavailable: {reason}")]
    Unavailable {
        /// The LLM's id.
        model: String,
        /// Where the backend is.
        backend: String,
        /// What went wrong.
        reason: String,
    },
    /// The backend did not answer in time.
    #[error("LLM `{model}`: the backend at {backend} did not answer within {timeout:?}")]
    Timeout {
        /// The LLM's id.
        model: String,
        /// Where the backend is.
        backend: String,
        /// The per-request timeout.
        timeout: Duration,
    },
    /// The backend answered something that is not an answer (not JSON, no
    /// choices, a missing field).
    #[error("LLM `{model}`: the backend at {backend} answered malformed: {reason}")]
    Malformed {
        /// The LLM's id.
        model: String,
        /// Where the backend is.
        backend: String,
        /// What is wrong with the answer.
        reason: String,
    },
    /// A replaying cassette has no answer for the request.
    #[error(
        "LLM `{model}`: cassette {cassette} has no answer for request {id} ({what}); record it with `--cassette-mode record` (or `auto`) and a backend that can answer"
    )]
    NotRecorded {
        /// The LLM's id.
        model: String,
        /// The cassette file.
        cassette: String,
        /// The request id.
        id: B256,
        /// The request described.
        what: String,
    },
    /// The answer could not be written to the cassette.
    #[error("LLM `{model}`: cannot record the answer to cassette {cassette}: {reason}")]
    Cassette {
        /// The LLM's id.
        model: String,
        /// The cassette file.
        cassette: String,
        /// The I/O error.
        reason: String,
    },
}

impl LlmError {
    /// Whether the failure may not happen again (the backend was down,
    /// slow, overloaded or garbled): the mempool forgets it after the block
    /// it failed in, and a later block asks again.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Timeout { .. } | Self::Malformed { .. } | Self::Cassette { .. })
    }
}

/// Answers LLM requests. Implementations must be callable from many
/// threads at once; a call may block for as long as the backend takes (the
/// mempool bounds how many run at once).
pub trait LlmBackend: Send + Sync {
    /// Answers `request`, or says why not.
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError>;

    /// Answers `request` with why its generation stopped. The protocol's
    /// completion response holds no finish reason, so a backend that knows
    /// one (a completion cut at `max_tokens` is `length`) overrides this and
    /// answers [`LlmBackend::answer`] with its response; by default a
    /// completion says `stop`.
    fn answer_with_finish_reason(&self, request: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        self.answer(request).map(LlmAnswer::from)
    }

    /// Where the answers come from, for status lines and errors (never a
    /// secret).
    fn describe(&self) -> String;
}

impl std::fmt::Debug for dyn LlmBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LlmBackend({})", self.describe())
    }
}

/// One answered request and how long it took.
#[derive(Debug, Clone)]
pub struct LlmRun {
    /// The answer, or why there is none.
    pub output: Result<LlmResponse, LlmError>,
    /// How long the backend took.
    pub took: Duration,
}

/// Answers the precompile's `requests` on `backend` with at most
/// `concurrency` calls at once; results in request order. Each is held to
/// the precompile's bounds first ([`LlmRequest::check_precompile_bounds`]),
/// which are narrower than what the backends take from the gateway. A
/// backend that panics answers that request with an
/// [`LlmError::Unavailable`].
pub fn answer_all(backend: &dyn LlmBackend, requests: &[&LlmRequest], concurrency: usize) -> Vec<LlmRun> {
    let one = |request: &LlmRequest| {
        let start = Instant::now();
        let run = std::panic::AssertUnwindSafe(|| {
            request.check_precompile_bounds()?;
            backend.answer(request)
        });
        let output = std::panic::catch_unwind(run).unwrap_or_else(|_| {
            Err(LlmError::Unavailable {
                model: request.model().to_owned(),
                backend: backend.describe(),
                reason: "the backend panicked".to_owned(),
            })
        });
        LlmRun { output, took: start.elapsed() }
    };
    let workers = concurrency.max(1).min(requests.len());
    if workers <= 1 {
        return requests.iter().map(|r| one(r)).collect();
    }
    let next = AtomicUsize::new(0);
    let mut runs: Vec<Option<LlmRun>> = vec![None; requests.len()];
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(request) = requests.get(i) else { break };
                        done.push((i, one(request)));
                    }
                    done
                })
            })
            .collect();
        for handle in handles {
            for (i, run) in handle.join().unwrap_or_default() {
                runs[i] = Some(run);
            }
        }
    });
    runs.into_iter()
        .zip(requests)
        .map(|(run, request)| {
            run.unwrap_or_else(|| LlmRun {
                output: Err(LlmError::Unavailable {
                    model: request.model().to_owned(),
                    backend: backend.describe(),
                    reason: "an LLM dispatch thread failed".to_owned(),
                }),
                took: Duration::ZERO,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A test double: answers the prompt reversed after `delay`, counting
    /// how many calls run at once.
    struct Echo {
        delay: Duration,
        now: AtomicUsize,
        most: AtomicUsize,
    }

    impl LlmBackend for Echo {
        fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
            let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
            self.most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(self.delay);
            self.now.fetch_sub(1, Ordering::SeqCst);
            if request.prompt() == "panic" {
                panic!("a backend bug");
            }
            Ok(LlmResponse::text_for(request, &request.prompt().chars().rev().collect::<String>()))
        }

        fn describe(&self) -> String {
            "echo".to_owned()
        }
    }

    fn ask(prompt: &str) -> LlmRequest {
        LlmRequest::Completion(LLMCompletionRequest {
            prompt: prompt.into(),
            modelCID: "m".into(),
            ..Default::default()
        })
    }

    #[test]
    fn answer_all_keeps_order_and_bounds_concurrency() {
        let echo = Echo { delay: Duration::from_millis(20), now: AtomicUsize::new(0), most: AtomicUsize::new(0) };
        let requests: Vec<LlmRequest> = (0..12).map(|i| ask(&format!("p{i}"))).collect();
        let refs: Vec<&LlmRequest> = requests.iter().collect();
        let runs = answer_all(&echo, &refs, 4);
        let answers: Vec<String> = runs.iter().map(|r| r.output.as_ref().unwrap().text().to_owned()).collect();
        let expected: Vec<String> = (0..12).map(|i| format!("p{i}").chars().rev().collect()).collect();
        assert_eq!(answers, expected);
        assert_eq!(echo.most.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_panicking_backend_answers_unavailable() {
        let echo = Echo { delay: Duration::ZERO, now: AtomicUsize::new(0), most: AtomicUsize::new(0) };
        let requests = [ask("panic"), ask("ok")];
        let runs = answer_all(&echo, &requests.iter().collect::<Vec<_>>(), 2);
        assert!(matches!(&runs[0].output, Err(e @ LlmError::Unavailable { .. }) if e.is_transient()));
        assert_eq!(runs[1].output.as_ref().unwrap().text(), "ko");
    }

    #[test]
    fn the_precompile_takes_hundredths_up_to_100_and_never_reaches_the_backend_past_them() {
        let echo = Echo { delay: Duration::ZERO, now: AtomicUsize::new(0), most: AtomicUsize::new(0) };
        let at = |temperature| {
            LlmRequest::Completion(LLMCompletionRequest { prompt: "ok".into(), temperature, ..Default::default() })
        };
        let (hot, warm) = (at(150), at(100));
        let runs = answer_all(&echo, &[&hot, &warm], 1);
        let refused = runs[0].output.as_ref().unwrap_err();
        assert!(matches!(refused, LlmError::Refused { .. }), "{refused}");
        assert!(refused.to_string().contains("temperature 150 is out of range"), "{refused}");
        assert_eq!(runs[1].output.as_ref().unwrap().text(), "ko");
    }

    #[test]
    fn ids_differ_by_kind_and_content() {
        let chat = LlmRequest::Chat(LLMChatRequest { modelCID: "m".into(), ..Default::default() });
        assert_ne!(ask("a").id(), ask("b").id());
        assert_ne!(ask("").id(), chat.id());
        assert_eq!(ask("a").id(), ask("a").id());
    }

    #[test]
    fn the_simulation_answer_is_empty_and_encodes_as_the_abi_says() {
        let sim = ask("x").simulation();
        assert_eq!(sim.text(), "");
        let decoded = runLLMCompletionCall::abi_decode_returns(&sim.encode()).unwrap();
        assert_eq!(decoded.answer, "");
        let chat = LlmRequest::Chat(LLMChatRequest::default()).simulation();
        let decoded = runLLMChatCall::abi_decode_returns(&chat.encode()).unwrap();
        assert_eq!(decoded.finish_reason, "");
    }
}
