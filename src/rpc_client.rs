//! A minimal JSON-RPC client over HTTP(S), for the commands that talk to a
//! node: a running `nml devnet` (`nml models`, `nml verify`) or any chain
//! (`nml deploy`). Connections are kept alive between calls.

use std::sync::LazyLock;
use std::time::Duration;

use serde_json::{Value, json};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The URL is not `http(s)://host:port[/path]`.
    #[error("invalid RPC URL `{0}`: expected http://HOST:PORT or https://HOST[/PATH]")]
    BadUrl(String),
    /// The node could not be reached.
    #[error("cannot reach the node at {url}: {reason} (is `nml devnet` running? is the URL right?)")]
    Unreachable {
        /// The URL.
        url: String,
        /// The transport error.
        reason: String,
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
    },
}

impl RpcError {
    /// Whether trying again later may help (the node was unreachable, rate
    /// limited or failing on its side).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Unreachable { .. } => true,
            Self::BadAnswer { reason, .. } => reason.starts_with("HTTP 429") || reason.starts_with("HTTP 5"),
            _ => false,
        }
    }
}

static AGENT: LazyLock<ureq::Agent> = LazyLock::new(|| {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(120)))
        .timeout_connect(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
});

/// Calls `method` with `params` on the node at `url` and returns the result.
pub fn call(url: &str, method: &str, params: Value) -> Result<Value, RpcError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() <= "https://".len() {
        return Err(RpcError::BadUrl(url.to_owned()));
    }
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let unreachable = |reason: String| RpcError::Unreachable { url: url.to_owned(), reason };
    let bad = |reason: String| RpcError::BadAnswer { url: url.to_owned(), reason };
    let mut response = AGENT
        .post(url)
        .header("content-type", "application/json")
        .send(body.as_bytes())
        .map_err(|e| unreachable(e.to_string()))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().map_err(|e| unreachable(e.to_string()))?;
    let answer: Value = match serde_json::from_str(&text) {
        Ok(answer) => answer,
        Err(_) if status != 200 => return Err(bad(format!("HTTP {status}: {}", text.trim()))),
        Err(e) => return Err(bad(e.to_string())),
    };
    if let Some(error) = answer.get("error") {
        return Err(RpcError::Remote {
            code: error["code"].as_i64().unwrap_or_default(),
            message: error["message"].as_str().unwrap_or("unknown error").to_owned(),
        });
    }
    answer.get("result").cloned().ok_or_else(|| bad("neither result nor error".to_owned()))
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
}
