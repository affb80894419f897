//! The OpenAI-style bodies the gateway speaks: a `/v1/chat/completions` or
//! `/v1/completions` body turned into the [`LlmRequest`] the backends
//! answer, and the answer turned back into the JSON (or the SSE frames)
//! OpenGradient's SDK reads, with the enclave's signature fields.

use alloy_primitives::B256;
use nml_runtime::inference::abi::{ChatMessage, LLMChatRequest, LLMCompletionRequest, ToolDefinition};
use nml_runtime::llm::openai::tool_calls_from_json;
use nml_runtime::llm::{LLM_MODE_TEE, LlmAnswer, LlmRequest, LlmResponse};
use nml_runtime::tee::Attestation;
use serde_json::{Map, Value, json};

use crate::canonical::{self, CanonicalError};

/// The most tokens a request may ask for when it names none.
pub const DEFAULT_MAX_TOKENS: u32 = 100;

/// Which endpoint a body came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    /// `/v1/chat/completions`.
    Chat,
    /// `/v1/completions`.
    Completion,
}

/// A request the gateway will answer: what the backend is asked, what the
/// signature covers, and how the client wants the answer.
#[derive(Debug, Clone)]
pub struct GatewayRequest {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// The model id as the client named it.
    pub model: String,
    /// What the backend answers.
    pub llm: LlmRequest,
    /// `tee_request_hash`: keccak256 of the canonical request.
    pub request_hash: B256,
    /// Server-sent events instead of one JSON body.
    pub stream: bool,
}

/// Parses a body sent to `endpoint`.
pub fn parse(endpoint: Endpoint, body: &[u8]) -> Result<GatewayRequest, CanonicalError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| CanonicalError(format!("the body is not JSON: {e}")))?;
    let Value::Object(body) = value else {
        return Err(CanonicalError("request body must be a JSON object".into()));
    };
    let canonical = match endpoint {
        Endpoint::Chat => canonical::chat_request(&body)?,
        Endpoint::Completion => canonical::completion_request(&body)?,
    };
    let model = canonical["model"].as_str().unwrap_or_default().to_owned();
    let max_tokens = match body.get("max_tokens") {
        None | Some(Value::Null) => DEFAULT_MAX_TOKENS,
        Some(v) => v
            .as_u64()
            .and_then(|m| u32::try_from(m).ok())
            .ok_or_else(|| CanonicalError("'max_tokens' must be a non-negative integer".into()))?,
    };
    let temperature = canonical["temperature"].as_f64().unwrap_or_default();
    if !(0.0..=2.0).contains(&temperature) {
        return Err(CanonicalError(format!("'temperature' must be between 0 and 2, not {temperature}")));
    }
    // The precompile's ABI carries hundredths.
    let temperature = (temperature * 100.0).round() as u32;
    let stop = match body.get("stop") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| CanonicalError("'stop' must be a string or a list of strings".into()))?,
        Some(_) => return Err(CanonicalError("'stop' must be a string or a list of strings".into())),
    };
    let llm = match endpoint {
        Endpoint::Completion => LlmRequest::Completion(LLMCompletionRequest {
            mode: LLM_MODE_TEE,
            modelCID: model.clone(),
            prompt: canonical["prompt"].as_str().unwrap_or_default().to_owned(),
            max_tokens,
            stop_sequence: stop,
            temperature,
        }),
        Endpoint::Chat => LlmRequest::Chat(LLMChatRequest {
            mode: LLM_MODE_TEE,
            modelCID: model.clone(),
            messages: messages(&body)?,
            tools: tools(&body)?,
            tool_choice: match body.get("tool_choice") {
                Some(Value::String(choice)) => choice.clone(),
                Some(Value::Null) | None => String::new(),
                Some(other) => other.to_string(),
            },
            max_tokens,
            stop_sequence: stop,
            temperature,
        }),
    };
    let stream = match body.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(stream)) => *stream,
        Some(other) => return Err(CanonicalError(format!("'stream' must be true or false, not {other}"))),
    };
    Ok(GatewayRequest { endpoint, model, llm, request_hash: canonical::request_hash(&canonical), stream })
}

/// The text of a message's content: a string, or the text parts of a list.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).collect::<Vec<_>>().join("")
        }
        _ => String::new(),
    }
}

fn text_field(value: Option<&Value>) -> String {
    value.and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn messages(body: &Map<String, Value>) -> Result<Vec<ChatMessage>, CanonicalError> {
    let items = body.get("messages").and_then(Value::as_array).cloned().unwrap_or_default();
    Ok(items
        .iter()
        .map(|m| {
            let role = match m["role"].as_str().unwrap_or_default() {
                "developer" => "system",
                other => other,
            };
            ChatMessage {
                role: role.to_owned(),
                content: content_text(m.get("content")),
                name: text_field(m.get("name")),
                tool_call_id: text_field(m.get("tool_call_id")),
                tool_calls: tool_calls_from_json(m.get("tool_calls")),
            }
        })
        .collect())
}

fn tools(body: &Map<String, Value>) -> Result<Vec<ToolDefinition>, CanonicalError> {
    let Some(tools) = body.get("tools").and_then(Value::as_array) else { return Ok(Vec::new()) };
    tools
        .iter()
        .map(|tool| {
            let function = tool.get("function").unwrap_or(tool);
            let name = function.get("name").and_then(Value::as_str);
            let name = name.ok_or_else(|| CanonicalError("each tool needs a function name".into()))?;
            Ok(ToolDefinition {
                description: text_field(function.get("description")),
                name: name.to_owned(),
                parameters: function.get("parameters").map(Value::to_string).unwrap_or_default(),
            })
        })
        .collect()
}

/// An answer, ready to be signed and sent.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The generated text.
    pub text: String,
    /// The tool calls, in OpenAI's JSON form, when the model called tools.
    pub tool_calls: Option<Value>,
    /// Why generation stopped.
    pub finish_reason: String,
}

impl Answer {
    /// The backend's answer in the gateway's terms.
    pub fn from_answer(answer: &LlmAnswer) -> Self {
        // A backend that names no reason stopped on its own.
        let finish_reason = match answer.finish_reason() {
            "" => "stop".to_owned(),
            reason => reason.to_owned(),
        };
        match answer.response() {
            LlmResponse::Completion(c) => Self { text: c.answer.clone(), tool_calls: None, finish_reason },
            LlmResponse::Chat(chat) => {
                let calls = &chat.message.tool_calls;
                let tool_calls = (!calls.is_empty()).then(|| {
                    Value::Array(
                        calls
                            .iter()
                            .map(|c| {
                                json!({
                                    "id": c.id,
                                    "type": "function",
                                    "function": { "name": c.name, "arguments": c.arguments },
                                })
                            })
                            .collect(),
                    )
                });
                let finish_reason = if tool_calls.is_some() { "tool_calls".to_owned() } else { finish_reason };
                Self { text: chat.message.content.clone(), tool_calls, finish_reason }
            }
        }
    }

    /// `tee_output_hash`.
    pub fn output_hash(&self) -> B256 {
        canonical::output_hash(&self.text, self.tool_calls.as_ref())
    }
}

/// A rough token count (a token is about four bytes of English), for
/// `usage`: the backends answer text, not token counts.
fn tokens(text: &str) -> u64 {
    text.len().div_ceil(4) as u64
}

/// The tokens of a request and its answer, as `usage` counts them (what
/// `upto` payments charge by).
pub fn tokens_of(request: &GatewayRequest, answer: &Answer) -> u64 {
    request.llm.text_len().div_ceil(4) as u64 + tokens(&answer.text)
}

fn usage(request: &GatewayRequest, answer: &Answer) -> Value {
    let prompt = request.llm.text_len().div_ceil(4) as u64;
    let completion = tokens(&answer.text);
    json!({ "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion })
}

/// The signature fields every answer carries.
fn sign_fields(out: &mut Map<String, Value>, attestation: &Attestation) {
    use base64::Engine;
    out.insert("tee_id".into(), json!(attestation.tee_id));
    out.insert("tee_request_hash".into(), json!(attestation.input_hash));
    out.insert("tee_output_hash".into(), json!(attestation.output_hash));
    out.insert("tee_timestamp".into(), json!(attestation.timestamp));
    out.insert("tee_signature".into(), json!(base64::engine::general_purpose::STANDARD.encode(&attestation.signature)));
}

fn completion_id(request: &GatewayRequest) -> String {
    let prefix = match request.endpoint {
        Endpoint::Chat => "chatcmpl",
        Endpoint::Completion => "cmpl",
    };
    format!("{prefix}-{}", &alloy_primitives::hex::encode(request.request_hash)[..24])
}

/// The JSON body of a non-streaming answer.
pub fn body(request: &GatewayRequest, answer: &Answer, attestation: &Attestation) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), json!(completion_id(request)));
    out.insert("created".into(), json!(attestation.timestamp));
    out.insert("model".into(), json!(request.model));
    match request.endpoint {
        Endpoint::Chat => {
            let mut message = json!({ "role": "assistant", "content": answer.text });
            if let Some(calls) = &answer.tool_calls {
                message["tool_calls"] = calls.clone();
            }
            out.insert("object".into(), json!("chat.completion"));
            out.insert(
                "choices".into(),
                json!([{ "index": 0, "message": message, "finish_reason": answer.finish_reason }]),
            );
        }
        Endpoint::Completion => {
            out.insert("object".into(), json!("text_completion"));
            out.insert(
                "choices".into(),
                json!([{ "index": 0, "text": answer.text, "finish_reason": answer.finish_reason }]),
            );
            // What OpenGradient's SDK reads.
            out.insert("completion".into(), json!(answer.text));
        }
    }
    out.insert("usage".into(), usage(request, answer));
    sign_fields(&mut out, attestation);
    Value::Object(out)
}

/// The server-sent events of a streaming answer: the content, then a final
/// frame with the finish reason, the usage and the signature fields, then
/// `[DONE]` (chat chunks carry a `delta`, completion chunks a `text`). The
/// backends answer whole, so the events are written once the answer is in.
pub fn events(request: &GatewayRequest, answer: &Answer, attestation: &Attestation) -> String {
    let id = completion_id(request);
    let chat = request.endpoint == Endpoint::Chat;
    let chunk = |delta: Value, finish: Value, extra: Option<(&Value, &Attestation)>| {
        let mut frame = Map::new();
        frame.insert("id".into(), json!(id));
        frame.insert("object".into(), json!(if chat { "chat.completion.chunk" } else { "text_completion" }));
        frame.insert("created".into(), json!(attestation.timestamp));
        frame.insert("model".into(), json!(request.model));
        let choice = if chat {
            json!({ "index": 0, "delta": delta, "finish_reason": finish })
        } else {
            json!({ "index": 0, "text": delta["content"].as_str().unwrap_or_default(), "finish_reason": finish })
        };
        frame.insert("choices".into(), json!([choice]));
        if let Some((usage, attestation)) = extra {
            frame.insert("usage".into(), usage.clone());
            sign_fields(&mut frame, attestation);
        }
        format!("data: {}\n\n", Value::Object(frame))
    };
    let mut delta = json!({ "role": "assistant", "content": answer.text });
    if let Some(calls) = &answer.tool_calls {
        delta["tool_calls"] = calls.clone();
    }
    let mut out = chunk(delta, Value::Null, None);
    let usage = usage(request, answer);
    out.push_str(&chunk(json!({}), json!(answer.finish_reason), Some((&usage, attestation))));
    out.push_str("data: [DONE]\n\n");
    out
}
