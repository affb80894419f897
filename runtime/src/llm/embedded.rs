//! The embedded LLM: a small character-level neural language model that
//! ships inside nml and runs on ONNX Runtime in-process, so that `ask` and
//! `chat` are answered with no setup and no network.
//!
//! It is not a chat model: `tools/make_llm.py` trains it, deterministically,
//! on nml's own documentation (an MLP over the last characters, in the
//! style of Bengio et al. 2003), and its answers are that model's real
//! continuations of the prompt — fluent-looking fragments of nml's docs,
//! not knowledge. It is there so that contracts and tests run end to end;
//! a team points the devnet at a real LLM with `--llm-url` (see docs/llm.md).
//!
//! The graph takes `context: int64[1, K]` (the last K character ids, left-
//! padded with id 0) and returns `logits: float32[1, V]`; its metadata
//! gives `nml.context` (K), `nml.vocab` (the characters of ids 1..V, in
//! order: id 0, padding, is not written, since ONNX Runtime reads metadata
//! as C strings) and `nml.about`.
//!
//! Decoding: the prompt (a chat is rendered as `role: content` lines and
//! `assistant:`, and a newline then ends the answer) is cut to the model's
//! window; each step runs the graph once and picks the next character,
//! greedily at temperature 0, else sampled from the softmax at that
//! temperature with a ChaCha20 stream seeded by the request id, so that one
//! request always gets one answer. `max_tokens` counts characters (0: 64);
//! a stop sequence ends the answer and is not part of it.

use std::path::Path;

use alloy_primitives::B256;
use ort::session::Session;
use ort::value::Tensor;
use parking_lot::Mutex;
use rand_chacha::ChaCha20Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

use super::{LlmAnswer, LlmBackend, LlmError, LlmRequest, LlmResponse};
use crate::inference::InferenceError;
use crate::inference::onnx::environment;

/// The model's bytes (written by `tools/make_llm.py`).
const MODEL: &[u8] = include_bytes!("nml-char-lm.onnx");

/// What the embedded model calls itself in status lines and errors.
pub const EMBEDDED_NAME: &str = "nml-char-lm";

/// Characters written when a request leaves `max_tokens` at 0.
pub const DEFAULT_MAX_TOKENS: u32 = 64;

/// The most characters one answer may ask for.
pub const MAX_TOKENS_LIMIT: u32 = 8192;

/// The embedded model, with a pool of sessions (one per concurrent call).
pub struct EmbeddedLlm {
    library: std::path::PathBuf,
    /// The characters of ids 1.. (id 0 is padding).
    vocab: Vec<char>,
    /// The id of the space, for characters outside the vocabulary.
    space: i64,
    window: usize,
    about: String,
    idle: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for EmbeddedLlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedLlm").field("window", &self.window).field("vocab", &self.vocab.len()).finish()
    }
}

/// What one generation produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generation {
    /// The text, without the stop sequence that ended it.
    pub text: String,
    /// `stop` (a stop sequence or the end of a chat turn) or `length`.
    pub finish_reason: &'static str,
    /// Graph runs made (characters generated).
    pub tokens: u32,
}

impl EmbeddedLlm {
    /// Loads the model on the ONNX Runtime library at `library` (the one
    /// the executor uses; a process loads one).
    pub fn new(library: &Path) -> Result<Self, InferenceError> {
        let load = |reason: String| InferenceError::LoadModel { model: EMBEDDED_NAME.to_owned(), reason };
        let session = Self::session(library)?;
        let metadata = session.metadata().map_err(|e| load(e.to_string()))?;
        let vocab: Vec<char> =
            metadata.custom("nml.vocab").ok_or_else(|| load("no `nml.vocab` metadata".to_owned()))?.chars().collect();
        let window: usize = metadata
            .custom("nml.context")
            .and_then(|c| c.parse().ok())
            .ok_or_else(|| load("no `nml.context` metadata".to_owned()))?;
        let about = metadata.custom("nml.about").unwrap_or_default();
        drop(metadata);
        let space =
            vocab.iter().position(|&c| c == ' ').ok_or_else(|| load("no space in the vocabulary".to_owned()))?;
        Ok(Self {
            library: library.to_owned(),
            vocab,
            space: space as i64,
            window,
            about,
            idle: Mutex::new(vec![session]),
        })
    }

    fn session(library: &Path) -> Result<Session, InferenceError> {
        let load = |reason: String| InferenceError::LoadModel { model: EMBEDDED_NAME.to_owned(), reason };
        let environment = environment(library)?;
        Session::builder(&environment)
            .map_err(|e| load(e.to_string()))?
            .with_intra_threads(1)
            .map_err(|e| load(e.to_string()))?
            .with_intra_op_spinning(false)
            .map_err(|e| load(e.to_string()))?
            .commit_from_memory(MODEL)
            .map_err(|e| load(e.to_string()))
    }

    /// What the model is, in its own metadata's words.
    pub fn about(&self) -> &str {
        &self.about
    }

    fn token(&self, c: char) -> i64 {
        // The vocabulary is tiny: a scan is as fast as a map.
        self.vocab.iter().position(|&v| v == c).map_or(self.space, |i| i as i64 + 1)
    }

    /// Continues `prompt` with at most `max_tokens` characters (0: the
    /// default) at `temperature` (hundredths), seeded by `seed`, until a
    /// `stop` sequence.
    pub fn generate(
        &self,
        prompt: &str,
        max_tokens: u32,
        temperature: u32,
        stop: &[String],
        seed: B256,
    ) -> Result<Generation, String> {
        let max_tokens = if max_tokens == 0 { DEFAULT_MAX_TOKENS } else { max_tokens };
        if max_tokens > MAX_TOKENS_LIMIT {
            return Err(format!(
                "max_tokens {max_tokens} is over the embedded model's limit of {MAX_TOKENS_LIMIT} characters"
            ));
        }
        let stop: Vec<&str> = stop.iter().map(String::as_str).filter(|s| !s.is_empty()).collect();
        let mut context: Vec<i64> = vec![0; self.window];
        for c in prompt.chars() {
            context.remove(0);
            context.push(self.token(c));
        }
        let mut rng = ChaCha20Rng::from_seed(seed.0);
        let mut session = match self.idle.lock().pop() {
            Some(session) => session,
            None => Self::session(&self.library).map_err(|e| e.to_string())?,
        };
        let mut text = String::new();
        let mut tokens = 0;
        let mut finish_reason = "length";
        let result = (|| {
            while tokens < max_tokens {
                let input = Tensor::from_array(([1usize, self.window], context.clone().into_boxed_slice()))
                    .map_err(|e| e.to_string())?;
                let outputs = session.run(ort::inputs!["context" => input]).map_err(|e| e.to_string())?;
                let (_, logits) = outputs["logits"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
                let next = pick(logits, temperature, &mut rng);
                tokens += 1;
                context.remove(0);
                context.push(next as i64);
                text.push(self.vocab.get(next - 1).copied().unwrap_or(' '));
                if let Some(s) = stop.iter().find(|s| text.ends_with(**s)) {
                    text.truncate(text.len() - s.len());
                    finish_reason = "stop";
                    break;
                }
            }
            Ok::<(), String>(())
        })();
        self.idle.lock().push(session);
        result.map(|()| Generation { text, finish_reason, tokens })
    }
}

/// The next character's id: the most likely at temperature 0, else one
/// drawn from the softmax at `temperature` hundredths. Never padding (id 0).
fn pick(logits: &[f32], temperature: u32, rng: &mut ChaCha20Rng) -> usize {
    let candidates = logits.iter().enumerate().skip(1);
    if temperature == 0 {
        return candidates.fold((1, f32::NEG_INFINITY), |best, (i, &l)| if l > best.1 { (i, l) } else { best }).0;
    }
    let t = temperature as f32 / 100.0;
    let top = logits[1..].iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let weights: Vec<f32> = logits[1..].iter().map(|&l| ((l - top) / t).exp()).collect();
    let total: f32 = weights.iter().sum();
    let mut draw = (rng.next_u32() as f32 / u32::MAX as f32) * total;
    for (i, w) in weights.iter().enumerate() {
        draw -= w;
        if draw <= 0.0 {
            return i + 1;
        }
    }
    weights.len()
}

/// A chat as the embedded model reads it: `role: content` lines, then the
/// assistant's turn.
fn render_chat(messages: &[crate::inference::abi::ChatMessage]) -> String {
    let mut text = String::new();
    for m in messages {
        text.push_str(&m.role);
        text.push_str(": ");
        text.push_str(&m.content.replace('\n', " "));
        text.push('\n');
    }
    text.push_str("assistant:");
    text
}

impl LlmBackend for EmbeddedLlm {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.answer_with_finish_reason(request).map(LlmAnswer::into_response)
    }

    fn answer_with_finish_reason(&self, request: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        let refused = |reason: String| LlmError::Refused { model: request.model().to_owned(), reason };
        let seed = request.id();
        match request {
            LlmRequest::Completion(r) => {
                let g =
                    self.generate(&r.prompt, r.max_tokens, r.temperature, &r.stop_sequence, seed).map_err(refused)?;
                Ok(LlmAnswer::completion(&g.text, g.finish_reason))
            }
            LlmRequest::Chat(r) => {
                // `tool_choice: "none"` asks for no tool call, which it never makes.
                if !r.tools.is_empty() || !(r.tool_choice.is_empty() || r.tool_choice == "none") {
                    return Err(refused(format!(
                        "the embedded model ({EMBEDDED_NAME}) cannot call tools: route `{}` to an OpenAI-compatible server (`--llm-url`, or `[llm.servers]` in nml.toml)",
                        r.modelCID
                    )));
                }
                let mut stop = r.stop_sequence.clone();
                stop.push("\n".to_owned());
                let g = self
                    .generate(&render_chat(&r.messages), r.max_tokens, r.temperature, &stop, seed)
                    .map_err(refused)?;
                Ok(LlmAnswer::from(LlmResponse::chat_text(g.text.trim(), g.finish_reason)))
            }
        }
    }

    fn describe(&self) -> String {
        format!("the embedded model {EMBEDDED_NAME}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_picks_the_largest_non_padding_logit() {
        let mut rng = ChaCha20Rng::from_seed([0; 32]);
        assert_eq!(pick(&[9.0, 1.0, 3.0, 2.0], 0, &mut rng), 2);
    }

    #[test]
    fn sampling_is_seeded_and_follows_the_weights() {
        let logits = [0.0, 0.0, 5.0, 0.0];
        let draws = |seed| {
            let mut rng = ChaCha20Rng::from_seed([seed; 32]);
            (0..200).map(|_| pick(&logits, 100, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(draws(1), draws(1));
        assert_ne!(draws(1), draws(2));
        let twos = draws(1).iter().filter(|&&i| i == 2).count();
        assert!(twos > 150, "{twos}");
        assert!(draws(3).iter().all(|&i| i != 0));
    }

    #[test]
    fn a_chat_renders_as_turns() {
        use crate::inference::abi::ChatMessage;
        let m = |role: &str, content: &str| ChatMessage {
            role: role.into(),
            content: content.into(),
            ..Default::default()
        };
        assert_eq!(
            render_chat(&[m("system", "be brief"), m("user", "hi\nthere")]),
            "system: be brief\nuser: hi there\nassistant:"
        );
    }
}
