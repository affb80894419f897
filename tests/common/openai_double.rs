//! A test double of an OpenAI-compatible server (named as one: the real
//! server of `tests/llm_server.rs` is llama.cpp's). It answers
//! `/v1/completions` and `/v1/chat/completions` with an echo of what it was
//! asked, after a set latency, or misbehaves as told; it keeps every
//! request body and `authorization` header it received, so tests can check
//! what nml sent.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// How the double answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// `echo[model]: prompt` (a chat: its last message; with tools, a call of the first).
    Echo,
    /// This status with this body.
    Status(u16, String),
    /// A 200 whose body is not JSON.
    Malformed,
    /// A 200 with `"choices": []`.
    EmptyChoices,
}

#[derive(Debug)]
struct State {
    behaviour: Behaviour,
    latency: Duration,
    requests: Vec<(String, Value, Option<String>)>,
}

/// A running double; it stops with the process.
#[derive(Clone)]
pub struct OpenAiDouble {
    pub url: String,
    state: Arc<Mutex<State>>,
    served: Arc<AtomicUsize>,
}

impl OpenAiDouble {
    /// Starts one on a free port.
    pub fn start(latency: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}/v1", listener.local_addr().expect("addr"));
        let state = Arc::new(Mutex::new(State { behaviour: Behaviour::Echo, latency, requests: Vec::new() }));
        let served = Arc::new(AtomicUsize::new(0));
        let double = Self { url, state, served };
        let me = double.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let me = me.clone();
                std::thread::spawn(move || me.serve(stream));
            }
        });
        double
    }

    pub fn set(&self, behaviour: Behaviour) {
        self.state.lock().unwrap().behaviour = behaviour;
    }

    pub fn set_latency(&self, latency: Duration) {
        self.state.lock().unwrap().latency = latency;
    }

    /// `(path, body, authorization)` of every request so far.
    pub fn requests(&self) -> Vec<(String, Value, Option<String>)> {
        self.state.lock().unwrap().requests.clone()
    }

    /// Requests answered so far.
    pub fn served(&self) -> usize {
        self.served.load(Ordering::SeqCst)
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone"));
        let mut writer = stream;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
            let mut length = 0;
            let mut auth = None;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 {
                    return;
                }
                let header = header.trim_end();
                if header.is_empty() {
                    break;
                }
                let (name, value) = header.split_once(':').unwrap_or((header, ""));
                match name.to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "authorization" => auth = Some(value.trim().to_owned()),
                    _ => {}
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            let (behaviour, latency) = {
                let mut s = self.state.lock().unwrap();
                s.requests.push((path.clone(), body.clone(), auth));
                (s.behaviour.clone(), s.latency)
            };
            std::thread::sleep(latency);
            let (status, text) = match behaviour {
                Behaviour::Echo => (200, echo(&path, &body).to_string()),
                Behaviour::Status(status, text) => (status, text),
                Behaviour::Malformed => (200, "{\"choices\": [".to_owned()),
                Behaviour::EmptyChoices => (200, json!({ "choices": [] }).to_string()),
            };
            self.served.fetch_add(1, Ordering::SeqCst);
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{text}",
                text.len()
            );
            if writer.write_all(response.as_bytes()).is_err() {
                return;
            }
        }
    }
}

fn echo(path: &str, body: &Value) -> Value {
    let model = body["model"].as_str().unwrap_or_default();
    if path.ends_with("/chat/completions") {
        let last = body["messages"].as_array().and_then(|m| m.last()).cloned().unwrap_or(Value::Null);
        if let Some(tool) = body["tools"].as_array().and_then(|t| t.first()) {
            let name = tool["function"]["name"].clone();
            return json!({ "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [{ "id": "call_1", "type": "function", "function": { "name": name, "arguments": "{\"x\":1}" } }]
            } }] });
        }
        let text = format!("echo[{model}]: {}", last["content"].as_str().unwrap_or_default());
        json!({ "choices": [{ "index": 0, "finish_reason": "stop", "message": { "role": "assistant", "content": text } }] })
    } else {
        let text = format!("echo[{model}]: {}", body["prompt"].as_str().unwrap_or_default());
        json!({ "choices": [{ "index": 0, "finish_reason": "stop", "text": text }] })
    }
}
