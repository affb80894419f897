//! A minimal JSON-RPC client over HTTP(S), for whatever talks to a node: the
//! CLI's commands (`nml models` and `nml verify` to a running devnet, `nml
//! deploy` to any chain) and fork mode's reads of a remote chain.
//! Connections are kept alive between calls. A call without a limit of its
//! own may take [`DEFAULT_TIMEOUT`]; one made with [`Retry::within`] stops
//! when that time is spent, its retries and their waits included.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use alloy_primitives::Bytes;
use serde_json::{Value, json};

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RpcError {
    /// The URL is not `http(s)://host:port[/path]`.
    #[error("invalid RPC URL `{0}`: expected http://HOST:PORT or https://HOST[/PATH]")]
    BadUrl(String),
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {reason} (is it running? is the URL right?)")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport error.
        reason: String,
    },
    /// The node answered with an HTTP error status and no JSON-RPC answer.
    #[error("the node at {url} answered HTTP {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The start of the body.
        body: String,
    },
    /// The node did not answer in time: it took the connection but sent no
    /// whole answer within the call's limit.
    #[error("the node at {url} did not answer within {:.1} s", after.as_secs_f64())]
    TimedOut {
        /// The URL.
        url: String,
        /// The limit that passed.
        after: Duration,
    },
    /// The answer is not a JSON-RPC response.
    #[error("the node at {url} sent an invalid answer: {reason}")]
    BadAnswer {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{message} (JSON-RPC error {code})")]
    Remote {
        /// The error code.
        code: i64,
        /// The message.
        message: String,
        /// The error's `data` when it is bytes (an `eth_call`'s revert data).
        data: Option<Bytes>,
    },
}

/// JSON-RPC error codes that public providers use for rate limits
/// (EIP-1474's "limit exceeded", and HTTP 429 echoed as a code).
const RATE_LIMIT_CODES: [i64; 2] = [-32005, 429];

impl RpcError {
    /// Whether trying again later may help (the node was unreachable, slow,
    /// rate limited or failing on its side).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } | Self::TimedOut { .. } => true,
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Remote { code, .. } => RATE_LIMIT_CODES.contains(code),
            Self::BadUrl(_) | Self::BadAnswer { .. } => false,
        }
    }
}

/// How long a call may take, connecting, sending and reading its whole
/// answer, when its caller names no shorter limit.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

static AGENT: LazyLock<ureq::Agent> = LazyLock::new(|| {
    ureq::Agent::config_builder()
        .timeout_global(Some(DEFAULT_TIMEOUT))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .http_status_as_error(false)
        .build()
        .into()
});

/// Calls `method` with `params` on the node at `url` and returns the result.
pub fn call(url: &str, method: &str, params: Value) -> Result<Value, RpcError> {
    call_within(url, method, params, DEFAULT_TIMEOUT)
}

fn call_within(url: &str, method: &str, params: Value, limit: Duration) -> Result<Value, RpcError> {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
    answer_of(url, &post(url, &body, limit)?)
}

/// Calls each `(method, params)` of `calls` on the node at `url` in one
/// JSON-RPC batch (one round trip): each call's result or error, in order.
/// The error of the whole is the transport's, or an answer that is not a
/// batch answer.
pub fn batch(url: &str, calls: &[(&str, Value)]) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
    batch_within(url, calls, DEFAULT_TIMEOUT)
}

fn batch_within(url: &str, calls: &[(&str, Value)], limit: Duration) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
    let body: Vec<Value> = calls
        .iter()
        .enumerate()
        .map(|(id, (method, params))| json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }))
        .collect();
    let answers = post(url, &Value::Array(body), limit)?;
    let bad = |reason: &str| RpcError::BadAnswer { url: url.to_owned(), reason: reason.to_owned() };
    let Value::Array(answers) = answers else {
        // A node that refuses batches answers with one error.
        return Err(answer_of(url, &answers).err().unwrap_or_else(|| bad("not a batch answer")));
    };
    let mut out: Vec<Option<Result<Value, RpcError>>> = (0..calls.len()).map(|_| None).collect();
    for answer in answers {
        let slot = answer.get("id").and_then(Value::as_u64).and_then(|id| out.get_mut(id as usize));
        if let Some(slot) = slot {
            *slot = Some(answer_of(url, &answer));
        }
    }
    out.into_iter().map(|answer| answer.ok_or_else(|| bad("a call of the batch has no answer"))).collect()
}

/// Posts `body` to the node and parses its JSON answer, all within `limit`.
fn post(url: &str, body: &Value, limit: Duration) -> Result<Value, RpcError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
        return Err(RpcError::BadUrl(url.to_owned()));
    }
    let failed = |e: ureq::Error| match e {
        // A connection that could not be made is an unreachable node; one
        // made whose answer did not come is a slow (or stuck) node.
        ureq::Error::Timeout(ureq::Timeout::Connect | ureq::Timeout::Resolve) => {
            RpcError::Unreachable { url: url.to_owned(), reason: e.to_string() }
        }
        ureq::Error::Timeout(_) => RpcError::TimedOut { url: url.to_owned(), after: limit },
        other => RpcError::Unreachable { url: url.to_owned(), reason: other.to_string() },
    };
    let mut response = AGENT
        .post(url)
        .header("content-type", "application/json")
        .config()
        .timeout_global(Some(limit))
        .timeout_connect(Some(limit.min(CONNECT_TIMEOUT)))
        .build()
        .send(body.to_string().as_bytes())
        .map_err(failed)?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().map_err(failed)?;
    match serde_json::from_str::<Value>(&text) {
        // An HTTP error with a JSON body that is no JSON-RPC answer (a web
        // server's own error object) is an HTTP error, not a JSON-RPC one.
        Ok(answer) if !(200..300).contains(&status) && !is_json_rpc(&answer) => {
            let body: String = text.trim().chars().take(200).collect();
            Err(RpcError::Status { url: url.to_owned(), status, body })
        }
        Ok(answer) => Ok(answer),
        Err(_) if status != 200 => {
            let body: String = text.trim().chars().take(200).collect();
            Err(RpcError::Status { url: url.to_owned(), status, body })
        }
        Err(e) => Err(RpcError::BadAnswer { url: url.to_owned(), reason: e.to_string() }),
    }
}

/// Whether `answer` is a JSON-RPC answer (or a batch of them).
fn is_json_rpc(answer: &Value) -> bool {
    answer.is_array() || answer.get("jsonrpc").is_some()
}

/// The result of one JSON-RPC answer, or its error.
fn answer_of(url: &str, answer: &Value) -> Result<Value, RpcError> {
    if let Some(error) = answer.get("error") {
        return Err(RpcError::Remote {
            code: error["code"].as_i64().unwrap_or_default(),
            message: error["message"].as_str().unwrap_or("unknown error").to_owned(),
            data: error["data"].as_str().and_then(|hex| hex.parse().ok()),
        });
    }
    answer
        .get("result")
        .cloned()
        .ok_or_else(|| RpcError::BadAnswer { url: url.to_owned(), reason: "neither result nor error".to_owned() })
}

/// How [`call_with_retries`] and [`batch_with_retries`] try again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// The wait before the second attempt; it doubles after each.
    pub first_wait: Duration,
    /// The time the whole call may take, every attempt and every wait
    /// included: each attempt may take what is left, and no attempt starts
    /// once it is spent. `None`: each attempt may take [`DEFAULT_TIMEOUT`].
    pub within: Option<Duration>,
}

impl Default for Retry {
    fn default() -> Self {
        Self { attempts: 4, first_wait: Duration::from_millis(500), within: None }
    }
}

/// [`call`], tried again after a transient failure (see
/// [`RpcError::is_transient`]) as `retry` says; `on_retry` hears each failure
/// that is tried again and the wait before the next attempt.
pub fn call_with_retries(
    url: &str,
    method: &str,
    params: &Value,
    retry: Retry,
    on_retry: impl FnMut(&RpcError, Duration),
) -> Result<Value, RpcError> {
    retrying(retry, on_retry, |limit| call_within(url, method, params.clone(), limit))
}

/// [`batch`], tried again as [`call_with_retries`] is, when the batch as a
/// whole fails (a call of it that fails is not tried again).
pub fn batch_with_retries(
    url: &str,
    calls: &[(&str, Value)],
    retry: Retry,
    on_retry: impl FnMut(&RpcError, Duration),
) -> Result<Vec<Result<Value, RpcError>>, RpcError> {
    retrying(retry, on_retry, |limit| batch_within(url, calls, limit))
}

/// Runs `attempt` (given the time it may take) until it passes, fails for
/// good, or `retry`'s attempts or time are spent.
fn retrying<T>(
    retry: Retry,
    mut on_retry: impl FnMut(&RpcError, Duration),
    mut attempt: impl FnMut(Duration) -> Result<T, RpcError>,
) -> Result<T, RpcError> {
    let deadline = retry.within.map(|within| Instant::now() + within);
    let left = || deadline.map_or(DEFAULT_TIMEOUT, |deadline| deadline.saturating_duration_since(Instant::now()));
    let mut wait = retry.first_wait;
    let mut tried = 1;
    loop {
        match attempt(left()) {
            // A retry is worth its wait only when time is left after it.
            Err(e) if e.is_transient() && tried < retry.attempts && left() > wait => {
                on_retry(&e, wait);
                std::thread::sleep(wait);
                wait *= 2;
                tried += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls() {
        assert!(matches!(call("ws://x:1", "m", json!([])), Err(RpcError::BadUrl(_))));
        let err = call("http://127.0.0.1:1", "m", json!([])).unwrap_err();
        assert!(err.is_transient());
        assert!(err.to_string().contains("cannot reach the node"), "{err}");
    }

    #[test]
    fn retries_only_what_may_pass_later() {
        let mut heard = 0;
        let retry = Retry { attempts: 3, first_wait: Duration::from_millis(1), within: None };
        let err = call_with_retries("http://127.0.0.1:1", "m", &json!([]), retry, |_, _| heard += 1).unwrap_err();
        assert!(matches!(err, RpcError::Unreachable { .. }));
        assert_eq!(heard, 2);
        let mut heard = 0;
        let err = call_with_retries("ftp://x", "m", &json!([]), retry, |_, _| heard += 1).unwrap_err();
        assert!(matches!(err, RpcError::BadUrl(_)));
        assert_eq!(heard, 0);
        let limited = RpcError::Remote { code: -32005, message: "limit exceeded".into(), data: None };
        assert!(limited.is_transient());
        let status = |status| RpcError::Status { url: String::new(), status, body: String::new() };
        assert!(status(429).is_transient() && status(503).is_transient() && !status(404).is_transient());
    }

    #[test]
    fn a_node_that_never_answers_fails_within_the_time_given() {
        // It takes the connection (the backlog does) and never answers.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let within = Duration::from_millis(300);
        let retry = Retry { attempts: 5, first_wait: Duration::from_millis(50), within: Some(within) };
        let started = Instant::now();
        let mut heard = 0;
        let err = call_with_retries(&url, "m", &json!([]), retry, |_, _| heard += 1).unwrap_err();
        assert!(matches!(err, RpcError::TimedOut { .. }), "{err}");
        assert!(err.to_string().contains("did not answer within"), "{err}");
        assert_eq!(heard, 0, "the first attempt took all the time there was");
        // Far less than the default's 120 s an attempt.
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        let err = batch_with_retries(&url, &[("m", json!([]))], retry, |_, _| ()).unwrap_err();
        assert!(matches!(err, RpcError::TimedOut { .. }), "{err}");
    }
}
