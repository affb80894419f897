//! Which backend answers which LLM id, and the checks every request passes
//! before any backend sees it: the mode, the temperature's range and the
//! size of the text.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::{LLM_MODE_TEE, LlmAnswer, LlmBackend, LlmError, LlmRequest, LlmResponse};

/// The highest temperature any request may ask for, in hundredths: 2.0,
/// OpenAI's bound, which the gateway's OpenAI-style endpoints accept. The
/// precompile's own bound is lower ([`PRECOMPILE_MAX_TEMPERATURE`]).
pub const MAX_TEMPERATURE: u32 = 200;

/// The highest temperature the inference precompile takes, in hundredths
/// (PROTOCOL.md: 0..=100), checked by [`super::answer_all`], the
/// precompile's way to the backends.
pub const PRECOMPILE_MAX_TEMPERATURE: u32 = 100;

/// The default limit on a request's text ([`LlmRequest::text_len`]): 64 KiB.
pub const DEFAULT_MAX_PROMPT_BYTES: usize = 64 * 1024;

/// Answers each request with the backend routed for its id, or the default
/// backend; an id with neither is an unknown LLM.
pub struct LlmRouter {
    routes: BTreeMap<String, Arc<dyn LlmBackend>>,
    default: Option<Arc<dyn LlmBackend>>,
    max_prompt_bytes: usize,
}

impl LlmRouter {
    /// A router that sends every id to `default` (none: every id is unknown
    /// until routed).
    pub fn new(default: Option<Arc<dyn LlmBackend>>) -> Self {
        Self { routes: BTreeMap::new(), default, max_prompt_bytes: DEFAULT_MAX_PROMPT_BYTES }
    }

    /// Sends requests for `model` to `backend`.
    pub fn route(mut self, model: impl Into<String>, backend: Arc<dyn LlmBackend>) -> Self {
        self.routes.insert(model.into(), backend);
        self
    }

    /// Refuses requests whose text is over `bytes`.
    pub fn max_prompt_bytes(mut self, bytes: usize) -> Self {
        self.max_prompt_bytes = bytes;
        self
    }

    /// The backend that answers `model`, if any.
    pub fn backend_for(&self, model: &str) -> Option<&Arc<dyn LlmBackend>> {
        self.routes.get(model).or(self.default.as_ref())
    }

    /// Checks what no backend should see: the mode, the temperature, the size.
    fn check(&self, request: &LlmRequest) -> Result<(), LlmError> {
        let model = request.model().to_owned();
        if request.mode() > LLM_MODE_TEE {
            return Err(LlmError::InvalidMode { model, mode: request.mode() });
        }
        if request.temperature() > MAX_TEMPERATURE {
            let reason = format!(
                "temperature {} is out of range: at most {}",
                f64::from(request.temperature()) / 100.0,
                f64::from(MAX_TEMPERATURE) / 100.0
            );
            return Err(LlmError::Refused { model, reason });
        }
        let len = request.text_len();
        if len > self.max_prompt_bytes {
            return Err(LlmError::TooLong { model, bytes: len, limit: self.max_prompt_bytes });
        }
        Ok(())
    }
}

impl LlmBackend for LlmRouter {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.answer_with_finish_reason(request).map(LlmAnswer::into_response)
    }

    fn answer_with_finish_reason(&self, request: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        self.check(request)?;
        let Some(backend) = self.backend_for(request.model()) else {
            let hint = if self.routes.is_empty() {
                "no LLM backend is configured: pass --llm-url or set `[llm]` in nml.toml".to_owned()
            } else {
                format!("routed ids: {}", self.routes.keys().cloned().collect::<Vec<_>>().join(", "))
            };
            return Err(LlmError::UnknownModel { model: request.model().to_owned(), hint });
        };
        let answer = backend.answer_with_finish_reason(request)?;
        if !answer.response().fits(request) {
            return Err(LlmError::Malformed {
                model: request.model().to_owned(),
                backend: backend.describe(),
                reason: format!("it answered {} with the other kind of response", request.function()),
            });
        }
        Ok(answer)
    }

    fn describe(&self) -> String {
        let mut parts: Vec<String> = self.routes.iter().map(|(id, r)| format!("{id} → {}", r.describe())).collect();
        if let Some(default) = &self.default {
            parts.push(format!("* → {}", default.describe()));
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::abi::LLMCompletionRequest;

    /// A test double that answers its own name.
    struct Named(&'static str);

    impl LlmBackend for Named {
        fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
            Ok(LlmResponse::text_for(request, self.0))
        }

        fn describe(&self) -> String {
            self.0.to_owned()
        }
    }

    fn ask(model: &str, mode: u8, temperature: u32, prompt: &str) -> LlmRequest {
        LlmRequest::Completion(LLMCompletionRequest {
            mode,
            modelCID: model.into(),
            prompt: prompt.into(),
            temperature,
            ..Default::default()
        })
    }

    #[test]
    fn routes_win_over_the_default() {
        let router = LlmRouter::new(Some(Arc::new(Named("default")))).route("gpt", Arc::new(Named("server")));
        assert_eq!(router.answer(&ask("gpt", 0, 0, "")).unwrap().text(), "server");
        assert_eq!(router.answer(&ask("llama", 1, 0, "")).unwrap().text(), "default");
    }

    #[test]
    fn without_a_default_an_unrouted_id_is_unknown() {
        let router = LlmRouter::new(None).route("gpt", Arc::new(Named("server")));
        let err = router.answer(&ask("llama", 0, 0, "")).unwrap_err();
        assert!(matches!(err, LlmError::UnknownModel { .. }), "{err}");
        assert!(err.to_string().contains("routed ids: gpt"), "{err}");
        assert!(!err.is_transient());
    }

    #[test]
    fn bad_modes_temperatures_and_sizes_are_refused_before_any_backend() {
        let router = LlmRouter::new(Some(Arc::new(Named("d")))).max_prompt_bytes(4);
        assert!(matches!(router.answer(&ask("m", 2, 0, "")), Err(LlmError::InvalidMode { mode: 2, .. })));
        let hot = router.answer(&ask("m", 0, 201, "")).unwrap_err();
        assert!(hot.to_string().contains("temperature 2.01 is out of range: at most 2"), "{hot}");
        let long = router.answer(&ask("m", 0, 0, "12345")).unwrap_err();
        assert!(matches!(long, LlmError::TooLong { bytes: 5, limit: 4, .. }), "{long}");
        // The router takes what the gateway does, up to 2.0; the precompile's
        // bound (1.0) is answer_all's.
        assert!(router.answer(&ask("m", 0, 200, "1234")).is_ok());
    }
}
