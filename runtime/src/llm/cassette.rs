//! Cassettes: LLM answers recorded to a file by request id, and served from
//! it, so that CI runs LLM-calling tests with no LLM server and always gets
//! the same answers.
//!
//! The file is JSON, one entry per request, sorted by request id and
//! pretty-printed, so that a re-recording shows in a diff as the answers
//! that changed (docs/llm.md documents the format):
//!
//! ```json
//! { "version": 1, "answers": [
//!   { "id": "0x…", "function": "runLLMCompletion", "model": "…", "prompt": "…",
//!     "request": { … }, "response": { "answer": "…" } } ] }
//! ```
//!
//! `prompt` is there for the reader; the request and response are the ABI
//! structs field by field. Only answers are recorded: a failure is not.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use alloy_primitives::B256;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::{LlmAnswer, LlmBackend, LlmError, LlmRequest, LlmResponse};
use crate::inference::abi::{LLMChatRequest, LLMCompletionRequest};

/// The version of the file format.
pub const CASSETTE_VERSION: u32 = 1;

/// How a cassette serves requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CassetteMode {
    /// Serve only from the file; a request that is not in it fails.
    #[default]
    Replay,
    /// Ask the backend every time and write each answer to the file.
    Record,
    /// Serve what the file has; ask the backend for the rest and record it.
    Auto,
}

impl std::str::FromStr for CassetteMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "replay" => Ok(Self::Replay),
            "record" => Ok(Self::Record),
            "auto" => Ok(Self::Auto),
            other => Err(format!("unknown cassette mode `{other}` (replay, record or auto)")),
        }
    }
}

/// Why a cassette could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum CassetteError {
    /// The file could not be read.
    #[error("cannot read cassette {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a cassette.
    #[error("cassette {path} is not a cassette file: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// One recorded answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    id: B256,
    function: String,
    model: String,
    prompt: String,
    request: serde_json::Value,
    response: LlmResponse,
}

#[derive(Debug, Serialize, Deserialize)]
struct File {
    version: u32,
    answers: Vec<Entry>,
}

/// Answers from a file, in front of the backend that records them.
pub struct Cassette {
    path: PathBuf,
    mode: CassetteMode,
    inner: Option<Arc<dyn LlmBackend>>,
    entries: Mutex<BTreeMap<B256, Entry>>,
}

impl std::fmt::Debug for Cassette {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cassette").field("path", &self.path).field("mode", &self.mode).finish_non_exhaustive()
    }
}

impl Cassette {
    /// Opens the cassette at `path` (a missing file is an empty cassette)
    /// in `mode`, recording from `inner` (none: only replaying works).
    pub fn open(path: &Path, mode: CassetteMode, inner: Option<Arc<dyn LlmBackend>>) -> Result<Self, CassetteError> {
        let entries = match std::fs::read(path) {
            Ok(bytes) => {
                let file: File = serde_json::from_slice(&bytes)
                    .map_err(|e| CassetteError::Format { path: path.to_owned(), reason: e.to_string() })?;
                if file.version != CASSETTE_VERSION {
                    return Err(CassetteError::Format {
                        path: path.to_owned(),
                        reason: format!("version {} (this nml reads version {CASSETTE_VERSION})", file.version),
                    });
                }
                file.answers.into_iter().map(|e| (e.id, e)).collect()
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(source) => return Err(CassetteError::Read { path: path.to_owned(), source }),
        };
        Ok(Self { path: path.to_owned(), mode, inner, entries: Mutex::new(entries) })
    }

    /// How many answers it holds.
    pub fn len(&self) -> usize {
        self.entries.lock().len()
    }

    /// Whether it holds no answer.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Its mode.
    pub fn mode(&self) -> CassetteMode {
        self.mode
    }

    fn recorded(&self, request: &LlmRequest, id: B256) -> Option<LlmResponse> {
        self.entries.lock().get(&id).map(|e| e.response.clone()).filter(|r| r.fits(request))
    }

    /// Keeps `response` and rewrites the file (to a temporary file, then
    /// renamed over it, so that a crash never leaves half a cassette).
    fn record(&self, request: &LlmRequest, id: B256, response: &LlmResponse) -> Result<(), LlmError> {
        let request_json = match request {
            LlmRequest::Completion(r) => serde_json::to_value::<&LLMCompletionRequest>(r),
            LlmRequest::Chat(r) => serde_json::to_value::<&LLMChatRequest>(r),
        };
        let failed = |reason: String| LlmError::Cassette {
            model: request.model().to_owned(),
            cassette: self.path.display().to_string(),
            reason,
        };
        let entry = Entry {
            id,
            function: request.function().to_owned(),
            model: request.model().to_owned(),
            prompt: request.prompt().to_owned(),
            request: request_json.map_err(|e| failed(e.to_string()))?,
            response: response.clone(),
        };
        let mut entries = self.entries.lock();
        entries.insert(id, entry);
        let file = File { version: CASSETTE_VERSION, answers: entries.values().cloned().collect() };
        let mut text = serde_json::to_string_pretty(&file).map_err(|e| failed(e.to_string()))?;
        text.push('\n');
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| failed(e.to_string()))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| failed(e.to_string()))
    }
}

impl LlmBackend for Cassette {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.answer_with_finish_reason(request).map(LlmAnswer::into_response)
    }

    /// A live answer keeps its backend's reason; a replayed completion
    /// says `stop` (a cassette holds the protocol's responses only).
    fn answer_with_finish_reason(&self, request: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        let id = request.id();
        if self.mode != CassetteMode::Record
            && let Some(response) = self.recorded(request, id)
        {
            return Ok(LlmAnswer::from(response));
        }
        let inner = match (&self.inner, self.mode) {
            (Some(inner), CassetteMode::Record | CassetteMode::Auto) => inner,
            _ => {
                return Err(LlmError::NotRecorded {
                    model: request.model().to_owned(),
                    cassette: self.path.display().to_string(),
                    id,
                    what: request.describe(),
                });
            }
        };
        let answer = inner.answer_with_finish_reason(request)?;
        self.record(request, id, answer.response())?;
        Ok(answer)
    }

    fn describe(&self) -> String {
        let mode = match self.mode {
            CassetteMode::Replay => "replay",
            CassetteMode::Record => "record",
            CassetteMode::Auto => "auto",
        };
        match &self.inner {
            Some(inner) => format!("cassette {} ({mode}) over {}", self.path.display(), inner.describe()),
            None => format!("cassette {} ({mode})", self.path.display()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::abi::ChatMessage;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A test double that answers how many times it was asked.
    #[derive(Default)]
    struct Counter(AtomicUsize);

    impl LlmBackend for Counter {
        fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(LlmResponse::text_for(request, &format!("answer {n}")))
        }

        fn describe(&self) -> String {
            "counter".into()
        }
    }

    fn ask(prompt: &str) -> LlmRequest {
        LlmRequest::Completion(LLMCompletionRequest {
            modelCID: "m".into(),
            prompt: prompt.into(),
            ..Default::default()
        })
    }

    fn chat(content: &str) -> LlmRequest {
        LlmRequest::Chat(LLMChatRequest {
            modelCID: "m".into(),
            messages: vec![ChatMessage { role: "user".into(), content: content.into(), ..Default::default() }],
            ..Default::default()
        })
    }

    #[test]
    fn record_then_replay_round_trips_without_the_backend() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cassettes/llm.json");
        let counter: Arc<dyn LlmBackend> = Arc::new(Counter::default());
        let recorder = Cassette::open(&path, CassetteMode::Record, Some(counter)).unwrap();
        assert_eq!(recorder.answer(&ask("a")).unwrap().text(), "answer 1");
        assert_eq!(recorder.answer(&chat("b")).unwrap().text(), "answer 2");
        // Record mode asks again and keeps the newest answer.
        assert_eq!(recorder.answer(&ask("a")).unwrap().text(), "answer 3");

        let player = Cassette::open(&path, CassetteMode::Replay, None).unwrap();
        assert_eq!(player.len(), 2);
        assert_eq!(player.answer(&ask("a")).unwrap().text(), "answer 3");
        let chat_answer = player.answer(&chat("b")).unwrap();
        assert_eq!(chat_answer, LlmResponse::chat_text("answer 2", "stop"));
        let missing = player.answer(&ask("c")).unwrap_err();
        assert!(matches!(missing, LlmError::NotRecorded { .. }));
        assert!(!missing.is_transient());
        assert!(missing.to_string().contains("--cassette-mode record"), "{missing}");
        assert!(missing.to_string().contains("\"c\""), "{missing}");

        // The file is diff-friendly: sorted, pretty, one entry per request.
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"version\": 1") && text.contains("\"prompt\": \"a\""), "{text}");
        assert!(text.ends_with("}\n"));
    }

    #[test]
    fn auto_replays_what_it_has_and_records_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llm.json");
        let counter = Arc::new(Counter::default());
        let auto = Cassette::open(&path, CassetteMode::Auto, Some(counter.clone() as Arc<dyn LlmBackend>)).unwrap();
        assert_eq!(auto.answer(&ask("a")).unwrap().text(), "answer 1");
        assert_eq!(auto.answer(&ask("a")).unwrap().text(), "answer 1");
        assert_eq!(auto.answer(&ask("b")).unwrap().text(), "answer 2");
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_file_that_is_not_a_cassette_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("llm.json");
        std::fs::write(&path, "{\"version\": 9, \"answers\": []}").unwrap();
        let err = Cassette::open(&path, CassetteMode::Replay, None).unwrap_err();
        assert!(err.to_string().contains("version 9"), "{err}");
        std::fs::write(&path, "not json").unwrap();
        assert!(Cassette::open(&path, CassetteMode::Replay, None).is_err());
    }
}
