//! The OpenAI-compatible HTTP backend: `POST {base}/completions` and
//! `{base}/chat/completions`, as vLLM, llama.cpp's server, Ollama, LiteLLM
//! and hosted providers serve them.
//!
//! A request maps onto the wire faithfully: `max_tokens` (0: the server's
//! default), `stop`, `temperature` in hundredths → a float, chat roles,
//! names, tool calls and tool results, tool definitions (their parameters
//! must be JSON) and `tool_choice` (`auto`, `none`, `required`, or a tool's
//! name). What the server refuses (HTTP 4xx) becomes the revert reason, in
//! its own words; a server that is down, overloaded (429, 5xx), slow or
//! garbled is a transient failure that a later block retries.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use super::{LlmAnswer, LlmBackend, LlmError, LlmRequest, LlmResponse};
use crate::inference::abi::{ChatMessage, LLMChatResponse, ToolCall};

/// The default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// An API key: never printed, logged, recorded or dumped.
#[derive(Clone)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key.
    pub fn new(key: String) -> Self {
        Self(key)
    }
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiKey(…)")
    }
}

/// Answers through an OpenAI-compatible server.
pub struct OpenAiBackend {
    base: String,
    key: Option<ApiKey>,
    /// The contract's LLM id → the server's model name; unlisted ids are
    /// sent as they are.
    names: BTreeMap<String, String>,
    timeout: Duration,
    agent: ureq::Agent,
}

impl std::fmt::Debug for OpenAiBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiBackend").field("base", &self.base).field("names", &self.names).finish_non_exhaustive()
    }
}

impl OpenAiBackend {
    /// A backend for the server at `base` (with its `/v1`, as OpenAI's
    /// clients take it; a bare `http://host:port` gets `/v1` added).
    pub fn new(base: &str, key: Option<ApiKey>, timeout: Duration) -> Self {
        let mut base = base.trim_end_matches('/').to_owned();
        let has_path = base.split_once("://").is_some_and(|(_, rest)| rest.contains('/'));
        if !has_path {
            base.push_str("/v1");
        }
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .http_status_as_error(false)
            .max_idle_connections_per_host(64)
            .build()
            .into();
        Self { base, key, names: BTreeMap::new(), timeout, agent }
    }

    /// Sends `id` to the server as `name`.
    pub fn name(mut self, id: impl Into<String>, name: impl Into<String>) -> Self {
        self.names.insert(id.into(), name.into());
        self
    }

    /// The server's name for the contract's LLM id.
    fn server_name<'a>(&'a self, model: &'a str) -> &'a str {
        self.names.get(model).map_or(model, String::as_str)
    }

    /// The JSON body and path of `request`.
    fn body(&self, request: &LlmRequest) -> Result<(&'static str, Value), LlmError> {
        let model = self.server_name(request.model());
        let mut body = json!({ "model": model });
        let fields = body.as_object_mut().expect("an object");
        match request {
            LlmRequest::Completion(r) => {
                fields.insert("prompt".into(), json!(r.prompt));
            }
            LlmRequest::Chat(r) => {
                fields.insert("messages".into(), Value::Array(r.messages.iter().map(message_json).collect()));
                if !r.tools.is_empty() {
                    let tools = r
                        .tools
                        .iter()
                        .map(|t| {
                            let parameters: Value = if t.parameters.trim().is_empty() {
                                json!({ "type": "object", "properties": {} })
                            } else {
                                serde_json::from_str(&t.parameters).map_err(|e| LlmError::Refused {
                                    model: request.model().to_owned(),
                                    reason: format!("tool `{}`: its parameters are not JSON: {e}", t.name),
                                })?
                            };
                            Ok(json!({ "type": "function", "function": {
                                "name": t.name, "description": t.description, "parameters": parameters } }))
                        })
                        .collect::<Result<Vec<_>, LlmError>>()?;
                    fields.insert("tools".into(), Value::Array(tools));
                }
                match r.tool_choice.as_str() {
                    "" => {}
                    "auto" | "none" | "required" => {
                        fields.insert("tool_choice".into(), json!(r.tool_choice));
                    }
                    name => {
                        fields
                            .insert("tool_choice".into(), json!({ "type": "function", "function": { "name": name } }));
                    }
                }
            }
        }
        if request.max_tokens() > 0 {
            fields.insert("max_tokens".into(), json!(request.max_tokens()));
        }
        if !request.stop().is_empty() {
            fields.insert("stop".into(), json!(request.stop()));
        }
        fields.insert("temperature".into(), json!(f64::from(request.temperature()) / 100.0));
        let path = match request {
            LlmRequest::Completion(_) => "/completions",
            LlmRequest::Chat(_) => "/chat/completions",
        };
        Ok((path, body))
    }
}

fn message_json(m: &ChatMessage) -> Value {
    let mut message = json!({ "role": m.role, "content": m.content });
    let fields = message.as_object_mut().expect("an object");
    if !m.name.is_empty() {
        fields.insert("name".into(), json!(m.name));
    }
    if !m.tool_call_id.is_empty() {
        fields.insert("tool_call_id".into(), json!(m.tool_call_id));
    }
    if !m.tool_calls.is_empty() {
        let calls: Vec<Value> = m
            .tool_calls
            .iter()
            .map(
                |c| json!({ "id": c.id, "type": "function", "function": { "name": c.name, "arguments": c.arguments } }),
            )
            .collect();
        fields.insert("tool_calls".into(), Value::Array(calls));
    }
    message
}

/// The error message in an error body (`{"error": {"message": …}}`,
/// `{"error": "…"}`, `{"detail": …}`), else the body's start.
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    let message = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("error"))
            .or_else(|| v.get("detail"))
            .or_else(|| v.get("message"))
            .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_owned))
    });
    message.unwrap_or_else(|| {
        let mut cut: String = body.trim().chars().take(200).collect();
        if cut.is_empty() {
            cut = "(no body)".to_owned();
        }
        cut
    })
}

impl LlmBackend for OpenAiBackend {
    fn answer(&self, request: &LlmRequest) -> Result<LlmResponse, LlmError> {
        self.answer_with_finish_reason(request).map(LlmAnswer::into_response)
    }

    fn answer_with_finish_reason(&self, request: &LlmRequest) -> Result<LlmAnswer, LlmError> {
        let model = request.model().to_owned();
        let (path, body) = self.body(request)?;
        let url = format!("{}{path}", self.base);
        let mut call = self.agent.post(&url).header("content-type", "application/json");
        if let Some(ApiKey(key)) = &self.key {
            call = call.header("authorization", &format!("Bearer {key}"));
        }
        let unavailable =
            |reason: String| LlmError::Unavailable { model: model.clone(), backend: self.base.clone(), reason };
        let response = call.send(body.to_string().as_bytes());
        let mut response = match response {
            Ok(response) => response,
            Err(ureq::Error::Timeout(_)) => {
                return Err(LlmError::Timeout { model, backend: self.base.clone(), timeout: self.timeout });
            }
            Err(e) => return Err(unavailable(e.to_string())),
        };
        let status = response.status().as_u16();
        let text = match response.body_mut().read_to_string() {
            Ok(text) => text,
            Err(ureq::Error::Timeout(_)) => {
                return Err(LlmError::Timeout { model, backend: self.base.clone(), timeout: self.timeout });
            }
            Err(ureq::Error::BodyExceedsLimit(limit)) => {
                let reason = format!("the answer is larger than {limit} bytes, the most an answer may be");
                return Err(LlmError::Malformed { model, backend: self.base.clone(), reason });
            }
            Err(e) => return Err(unavailable(format!("reading the answer: {e}"))),
        };
        if status == 408 || status == 409 || status == 429 || status >= 500 {
            return Err(unavailable(format!("HTTP {status}: {}", error_message(&text))));
        }
        if !(200..300).contains(&status) {
            let reason = format!("the server refused the request (HTTP {status}): {}", error_message(&text));
            return Err(LlmError::Refused { model, reason });
        }
        let malformed =
            |reason: String| LlmError::Malformed { model: model.clone(), backend: self.base.clone(), reason };
        let value: Value = serde_json::from_str(&text).map_err(|e| malformed(format!("not JSON: {e}")))?;
        let choice = value
            .get("choices")
            .and_then(Value::as_array)
            .ok_or_else(|| malformed("no `choices` list".to_owned()))?
            .first()
            .ok_or_else(|| malformed("an empty `choices` list".to_owned()))?;
        let finish_reason = choice.get("finish_reason").and_then(Value::as_str).unwrap_or("stop").to_owned();
        match request {
            LlmRequest::Completion(_) => {
                let answer = choice
                    .get("text")
                    .and_then(Value::as_str)
                    .ok_or_else(|| malformed("a choice without `text`".into()))?;
                Ok(LlmAnswer::completion(answer, &finish_reason))
            }
            LlmRequest::Chat(_) => {
                let message = choice.get("message").ok_or_else(|| malformed("a choice without `message`".into()))?;
                let text = |key: &str| message.get(key).and_then(Value::as_str).unwrap_or_default().to_owned();
                let tool_calls = tool_calls_from_json(message.get("tool_calls"));
                let role = Some(text("role")).filter(|r| !r.is_empty()).unwrap_or_else(|| "assistant".to_owned());
                Ok(LlmAnswer::from(LlmResponse::Chat(LLMChatResponse {
                    finish_reason,
                    message: ChatMessage {
                        role,
                        content: text("content"),
                        name: text("name"),
                        tool_call_id: String::new(),
                        tool_calls,
                    },
                })))
            }
        }
    }

    fn describe(&self) -> String {
        self.base.clone()
    }
}

/// The tool calls of an OpenAI-style message (`[{id, type, function:
/// {name, arguments}}]`); arguments given as JSON rather than as a string
/// are kept as their JSON text. The gateway reads its clients' the same way.
pub fn tool_calls_from_json(calls: Option<&Value>) -> Vec<ToolCall> {
    calls
        .and_then(Value::as_array)
        .map(|calls| {
            calls
                .iter()
                .map(|c| ToolCall {
                    id: c.get("id").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    name: c.pointer("/function/name").and_then(Value::as_str).unwrap_or_default().to_owned(),
                    arguments: c
                        .pointer("/function/arguments")
                        .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_owned))
                        .unwrap_or_default(),
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inference::abi::{LLMChatRequest, LLMCompletionRequest, ToolDefinition};

    #[test]
    fn a_completion_maps_every_field() {
        let backend = OpenAiBackend::new("http://127.0.0.1:9", None, DEFAULT_TIMEOUT).name("meta/llama", "llama");
        let request = LlmRequest::Completion(LLMCompletionRequest {
            mode: 0,
            modelCID: "meta/llama".into(),
            prompt: "Hi".into(),
            max_tokens: 12,
            stop_sequence: vec!["\n".into()],
            temperature: 70,
        });
        let (path, body) = backend.body(&request).unwrap();
        assert_eq!(path, "/completions");
        assert_eq!(
            body,
            json!({ "model": "llama", "prompt": "Hi", "max_tokens": 12, "stop": ["\n"], "temperature": 0.7 })
        );
        assert_eq!(backend.base, "http://127.0.0.1:9/v1");
    }

    #[test]
    fn a_chat_maps_tools_and_tool_calls() {
        let backend = OpenAiBackend::new("http://h/api/v1/", None, DEFAULT_TIMEOUT);
        let request = LlmRequest::Chat(LLMChatRequest {
            modelCID: "gpt".into(),
            messages: vec![
                ChatMessage { role: "user".into(), content: "price?".into(), ..Default::default() },
                ChatMessage {
                    role: "assistant".into(),
                    tool_calls: vec![ToolCall { id: "c1".into(), name: "price".into(), arguments: "{}".into() }],
                    ..Default::default()
                },
                ChatMessage {
                    role: "tool".into(),
                    content: "42".into(),
                    tool_call_id: "c1".into(),
                    ..Default::default()
                },
            ],
            tools: vec![ToolDefinition {
                description: "a price".into(),
                name: "price".into(),
                parameters: r#"{"type":"object"}"#.into(),
            }],
            tool_choice: "price".into(),
            ..Default::default()
        });
        let (path, body) = backend.body(&request).unwrap();
        assert_eq!(path, "/chat/completions");
        assert_eq!(backend.base, "http://h/api/v1");
        assert_eq!(body["messages"][1]["tool_calls"][0]["function"]["name"], "price");
        assert_eq!(body["messages"][2]["tool_call_id"], "c1");
        assert_eq!(body["tools"][0]["function"]["parameters"], json!({ "type": "object" }));
        assert_eq!(body["tool_choice"], json!({ "type": "function", "function": { "name": "price" } }));
        assert!(body.get("max_tokens").is_none() && body.get("stop").is_none());
    }

    #[test]
    fn tool_parameters_that_are_not_json_are_refused() {
        let backend = OpenAiBackend::new("http://h", None, DEFAULT_TIMEOUT);
        let request = LlmRequest::Chat(LLMChatRequest {
            modelCID: "gpt".into(),
            tools: vec![ToolDefinition { name: "t".into(), parameters: "{oops".into(), ..Default::default() }],
            ..Default::default()
        });
        let err = backend.body(&request).unwrap_err();
        assert!(err.to_string().contains("tool `t`: its parameters are not JSON"), "{err}");
    }

    #[test]
    fn error_messages_are_read_from_the_usual_shapes() {
        assert_eq!(error_message(r#"{"error":{"message":"no such model"}}"#), "no such model");
        assert_eq!(error_message(r#"{"error":"bad"}"#), "bad");
        assert_eq!(error_message(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(error_message("plain"), "plain");
        assert_eq!(error_message(""), "(no body)");
    }

    #[test]
    fn the_key_never_prints() {
        let key = ApiKey::new("sk-secret".into());
        assert!(!format!("{key:?}").contains("secret"));
        let backend = OpenAiBackend::new("http://h", Some(key), DEFAULT_TIMEOUT);
        assert!(!format!("{backend:?}").contains("secret"));
        assert!(!backend.describe().contains("secret"));
    }
}
