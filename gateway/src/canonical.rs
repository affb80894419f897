//! What an answer's signature covers, byte for byte as OpenGradient's SDK
//! recomputes it (`tee_verify`): the canonical request (a fixed subset of
//! the request's fields, messages reshaped per role) serialised as Python's
//! `json.dumps(obj, sort_keys=True)` writes it, and the answer's text (or its
//! tool calls, serialised the same way). Their keccak256 hashes are the
//! `tee_request_hash` and `tee_output_hash` the enclave signs.

use alloy_primitives::{B256, keccak256};
use serde_json::{Map, Value};

/// Why a request cannot be put in canonical form (the gateway answers 400).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct CanonicalError(pub String);

fn refuse(why: impl Into<String>) -> CanonicalError {
    CanonicalError(why.into())
}

/// `value` as Python's `json.dumps(value, sort_keys=True)` writes it:
/// separators `", "` and `": "`, keys sorted, every character outside
/// printable ASCII escaped (`ensure_ascii`), floats as Python's `repr`.
pub fn python_json(value: &Value) -> String {
    let mut out = String::new();
    write_value(&mut out, value);
    out
}

fn write_value(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => out.push_str(&i.to_string()),
            (None, Some(u)) => out.push_str(&u.to_string()),
            // Python reads an integer literal of any size as an exact int:
            // its digits, kept as written (serde_json's `arbitrary_precision`).
            (None, None) => match n.to_string() {
                text if is_integer_literal(&text) => out.push_str(&text),
                // A float as Python reads it: past f64's range, infinite.
                text => out.push_str(&text.parse::<f64>().map_or(text, python_float)),
            },
        },
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_value(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            // Python sorts str keys by code point, which is UTF-8 byte order.
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_string(out, key);
                out.push_str(": ");
                write_value(out, &map[key]);
            }
            out.push('}');
        }
    }
}

/// Whether a JSON number is written as an integer (no fraction, no
/// exponent): Python's `json` reads it as an `int`, of any size.
fn is_integer_literal(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            other => {
                let mut units = [0u16; 2];
                for unit in other.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// `repr(x)` of a Python float: the shortest digits that read back as `x`,
/// positional for decimal exponents from -4 to 15 (`0.0001`, `100.0`),
/// scientific otherwise (`1e-05`, `1e+16`).
pub fn python_float(x: f64) -> String {
    if x.is_nan() {
        return "NaN".to_owned();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest round-trip digits: `-1.5e-7`, `1e16`.
    let sci = format!("{x:e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if (-4..16).contains(&exponent) {
        let point = exponent + 1;
        let body = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}.0", "0".repeat(point as usize - digits.len()))
        } else {
            format!("{}.{}", &digits[..point as usize], &digits[point as usize..])
        };
        format!("{sign}{body}")
    } else {
        let body = if digits.len() > 1 { format!("{}.{}", &digits[..1], &digits[1..]) } else { digits };
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        format!("{sign}{body}e{exp_sign}{:02}", exponent.unsigned_abs())
    }
}

/// Python's truth value of a JSON value.
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// `float(value)` as Python computes it for a number or a numeric string.
fn python_float_of(value: &Value, field: &str) -> Result<f64, CanonicalError> {
    match value {
        Value::Number(n) => n.as_f64().ok_or_else(|| refuse(format!("'{field}' is not a number"))),
        Value::Bool(b) => Ok(f64::from(u8::from(*b))),
        Value::String(s) => s.trim().parse().map_err(|_| refuse(format!("'{field}' is not a number: {s:?}"))),
        _ => Err(refuse(format!("'{field}' is not a number"))),
    }
}

fn float_value(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}

/// A user message's content as it is hashed: text kept, attachments reduced
/// to their type (and file name).
fn canonical_user_content(content: Option<&Value>) -> Value {
    match content {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) => Value::Array(
            parts
                .iter()
                .map(|part| match part {
                    Value::Object(p) if p.get("type") == Some(&Value::String("text".into())) => {
                        let text = p.get("text").filter(|t| truthy(t)).cloned().unwrap_or(Value::String(String::new()));
                        serde_json::json!({ "type": "text", "text": text })
                    }
                    Value::Object(p) => {
                        let mut entry = Map::new();
                        entry.insert("type".into(), p.get("type").cloned().unwrap_or(Value::Null));
                        let filename = p
                            .get("file")
                            .and_then(|f| f.get("filename"))
                            .filter(|f| truthy(f))
                            .or_else(|| p.get("filename"))
                            .filter(|f| truthy(f));
                        if let Some(filename) = filename {
                            entry.insert("filename".into(), filename.clone());
                        }
                        Value::Object(entry)
                    }
                    other => serde_json::json!({ "type": "text", "text": python_str(other) }),
                })
                .collect(),
        ),
        Some(other) => Value::String(python_str(other)),
        None => Value::String("None".into()),
    }
}

/// `str(value)` for the values a client may send where text belongs.
fn python_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "True" } else { "False" }.into(),
        other => other.to_string(),
    }
}

fn or_null(value: Option<&Value>) -> Value {
    value.cloned().unwrap_or(Value::Null)
}

/// One chat message reshaped as the gateway hashes it.
fn canonical_message(message: &Map<String, Value>) -> Result<Value, CanonicalError> {
    let role = message.get("role").and_then(Value::as_str);
    let content = message.get("content");
    Ok(match role {
        Some("system" | "developer") => serde_json::json!({ "role": "system", "content": or_null(content) }),
        Some("user") => serde_json::json!({ "role": "user", "content": canonical_user_content(content) }),
        Some("assistant") => {
            let text = content.filter(|c| truthy(c)).cloned().unwrap_or(Value::String(String::new()));
            let mut out = serde_json::json!({ "role": "assistant", "content": text });
            if let Some(Value::Array(calls)) = message.get("tool_calls").filter(|c| truthy(c)) {
                let str_or_empty = |v: Option<&Value>| v.cloned().unwrap_or(Value::String(String::new()));
                let calls: Vec<Value> = calls
                    .iter()
                    .map(|call| {
                        let function = call.get("function");
                        serde_json::json!({
                            "id": str_or_empty(call.get("id")),
                            "type": call.get("type").cloned().unwrap_or(Value::String("function".into())),
                            "function": {
                                "name": str_or_empty(function.and_then(|f| f.get("name"))),
                                "arguments": str_or_empty(function.and_then(|f| f.get("arguments"))),
                            },
                        })
                    })
                    .collect();
                out["tool_calls"] = Value::Array(calls);
            }
            out
        }
        Some("tool") => serde_json::json!({
            "role": "tool", "content": or_null(content), "tool_call_id": or_null(message.get("tool_call_id")),
        }),
        Some("function") => serde_json::json!({
            "role": "function", "content": or_null(content), "name": or_null(message.get("name")),
        }),
        _ => return Err(refuse(format!("unknown message role: {}", python_repr_role(message.get("role"))))),
    })
}

fn python_repr_role(role: Option<&Value>) -> String {
    match role {
        Some(Value::String(s)) => format!("'{s}'"),
        other => python_str(&or_null(other)),
    }
}

/// The canonical form of a `/v1/chat/completions` body: what the SDK's
/// `build_inner_request` computes, field for field.
pub fn chat_request(body: &Map<String, Value>) -> Result<Value, CanonicalError> {
    let model = body.get("model").and_then(Value::as_str).filter(|m| !m.is_empty());
    let model = model.ok_or_else(|| refuse("request is missing a 'model'"))?;
    let messages = match body.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        _ => return Err(refuse("request is missing 'messages'")),
    };
    let messages = messages
        .iter()
        .map(|m| match m {
            Value::Object(m) => canonical_message(m),
            _ => Err(refuse("each message must be a JSON object")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut canonical = common_fields(body, model)?;
    canonical.insert("messages".into(), Value::Array(messages));
    // Refused whatever its truth value (`{}` too); hashed only when not empty.
    if let Some(tools) = body.get("tools").filter(|t| !t.is_null()) {
        if !tools.is_array() {
            return Err(refuse("'tools' must be a list"));
        }
        if truthy(tools) {
            canonical.insert("tools".into(), tools.clone());
        }
    }
    if let Some(format) = body.get("response_format").filter(|f| truthy(f)) {
        canonical.insert("response_format".into(), format.clone());
    }
    if body.get("web_search").is_some_and(truthy) {
        canonical.insert("web_search".into(), Value::Bool(true));
    }
    Ok(Value::Object(canonical))
}

/// The canonical form of a `/v1/completions` body. The SDK verifies only
/// chats; a completion is hashed the same way with `prompt` in place of
/// `messages` (nml's answer where the protocol is silent).
pub fn completion_request(body: &Map<String, Value>) -> Result<Value, CanonicalError> {
    let model = body.get("model").and_then(Value::as_str).filter(|m| !m.is_empty());
    let model = model.ok_or_else(|| refuse("request is missing a 'model'"))?;
    let prompt = match body.get("prompt") {
        Some(Value::String(p)) => p.clone(),
        _ => return Err(refuse("request is missing a 'prompt' (a string)")),
    };
    let mut canonical = common_fields(body, model)?;
    canonical.insert("prompt".into(), Value::String(prompt));
    Ok(Value::Object(canonical))
}

fn common_fields(body: &Map<String, Value>, model: &str) -> Result<Map<String, Value>, CanonicalError> {
    let mut canonical = Map::new();
    canonical.insert("model".into(), Value::String(model.to_owned()));
    let temperature = match body.get("temperature") {
        None | Some(Value::Null) => 0.0,
        Some(t) => python_float_of(t, "temperature")?,
    };
    canonical.insert("temperature".into(), float_value(temperature));
    if let Some(max) = body.get("max_tokens").filter(|m| !m.is_null()) {
        canonical.insert("max_tokens".into(), max.clone());
    }
    if let Some(stop) = body.get("stop").filter(|s| truthy(s)) {
        canonical.insert("stop".into(), stop.clone());
    }
    Ok(canonical)
}

/// `tee_request_hash`: keccak256 of the canonical request's Python JSON.
pub fn request_hash(canonical: &Value) -> B256 {
    keccak256(python_json(canonical).as_bytes())
}

/// `tee_output_hash` of an answer: keccak256 of its text, or of its tool
/// calls' Python JSON when it finished by calling tools.
pub fn output_hash(text: &str, tool_calls: Option<&Value>) -> B256 {
    match tool_calls {
        Some(calls) => keccak256(python_json(calls).as_bytes()),
        None => keccak256(text.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_json_matches_json_dumps_sort_keys() {
        // Each right-hand side is what CPython 3.11 prints for
        // json.dumps(json.loads(left), sort_keys=True).
        let cases = [
            (r#"{"b": 1, "a": [true, null, 1.5]}"#, r#"{"a": [true, null, 1.5], "b": 1}"#),
            (r#"{"t": "é\n\"x\"\u0001😀\u007f"}"#, r#"{"t": "\u00e9\n\"x\"\u0001\ud83d\ude00\u007f"}"#),
            (
                r#"[0.0, -0.0, 100.0, 1e16, 1e-5, 0.0001, 123456789012345.6, 2.5e-7, 1.0e22]"#,
                r#"[0.0, -0.0, 100.0, 1e+16, 1e-05, 0.0001, 123456789012345.6, 2.5e-07, 1e+22]"#,
            ),
            (r#"{"Z": {}, "a": [], "B": ""}"#, r#"{"B": "", "Z": {}, "a": []}"#),
            (r#"[1, -7, 18446744073709551615]"#, r#"[1, -7, 18446744073709551615]"#),
            // Integers past 64 bits stay exact, as Python's ints do; -0 is 0.
            (
                r#"[18446744073709551616, 1000000000000000000000000000000, -9223372036854775809, -0]"#,
                r#"[18446744073709551616, 1000000000000000000000000000000, -9223372036854775809, 0]"#,
            ),
            (r#"[1E5, 1e400, 2.50]"#, r#"[100000.0, Infinity, 2.5]"#),
        ];
        for (input, python) in cases {
            let value: Value = serde_json::from_str(input).unwrap();
            assert_eq!(python_json(&value), python, "{input}");
        }
        assert_eq!(python_float(0.7), "0.7");
        assert_eq!(python_float(1e15), "1000000000000000.0");
    }

    #[test]
    fn a_chat_is_canonicalised_as_the_sdk_does() {
        let body = json!({
            "model": "gpt-4.1", "temperature": 1, "max_tokens": 50, "stop": [], "tool_choice": "auto", "n": 2,
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "file", "file": {"filename": "a.pdf", "data": "…"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "content": "42", "tool_call_id": "c1"},
            ],
        });
        let canonical = chat_request(body.as_object().unwrap()).unwrap();
        assert_eq!(
            python_json(&canonical),
            r#"{"max_tokens": 50, "messages": [{"content": "be brief", "role": "system"}, {"content": [{"text": "hi", "type": "text"}, {"filename": "a.pdf", "type": "file"}], "role": "user"}, {"content": "", "role": "assistant", "tool_calls": [{"function": {"arguments": "{}", "name": "f"}, "id": "c1", "type": "function"}]}, {"content": "42", "role": "tool", "tool_call_id": "c1"}], "model": "gpt-4.1", "temperature": 1.0}"#
        );
        // Integers past 64 bits in a hashed field: the bytes the SDK's
        // build_inner_request and json.dumps(sort_keys=True) give.
        let big = r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"x","v":18446744073709551616,"w":1000000000000000000000000000000,"n":-9223372036854775809}}"#;
        let big: Value = serde_json::from_str(big).unwrap();
        assert_eq!(
            python_json(&chat_request(big.as_object().unwrap()).unwrap()),
            r#"{"messages": [{"content": "hi", "role": "user"}], "model": "m", "response_format": {"n": -9223372036854775809, "type": "x", "v": 18446744073709551616, "w": 1000000000000000000000000000000}, "temperature": 0.0}"#
        );
        let unknown = json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]});
        assert_eq!(chat_request(unknown.as_object().unwrap()).unwrap_err().0, "unknown message role: 'robot'");
        for tools in [json!({"a": 1}), json!({}), json!("")] {
            let bad_tools = json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "tools": tools});
            assert!(chat_request(bad_tools.as_object().unwrap()).is_err(), "{tools}");
        }
    }
}
