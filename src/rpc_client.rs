//! A minimal JSON-RPC client over HTTP/1.1, for the commands that talk to a
//! running `nml devnet` (`nml models`). One request per connection; plain
//! `http://` only (the devnet serves nothing else).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde_json::{Value, json};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The URL is not `http://host:port[/path]`.
    #[error("invalid RPC URL `{0}`: expected http://HOST:PORT")]
    BadUrl(String),
    /// The node could not be reached.
    #[error("cannot reach the devnet at {url}: {reason} (is `nml devnet` running?)")]
    Unreachable {
        /// The URL.
        url: String,
        /// The OS error.
        reason: String,
    },
    /// The answer is not a JSON-RPC response.
    #[error("the devnet at {url} sent an invalid answer: {reason}")]
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

/// Calls `method` with `params` on the node at `url` and returns the result.
pub fn call(url: &str, method: &str, params: Value) -> Result<Value, RpcError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| RpcError::BadUrl(url.to_owned()))?;
    let (authority, path) = rest.split_once('/').map_or((rest, "/".to_owned()), |(a, p)| (a, format!("/{p}")));
    let unreachable = |reason: String| RpcError::Unreachable { url: url.to_owned(), reason };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| unreachable(e.to_string()))?
        .next()
        .ok_or_else(|| RpcError::BadUrl(url.to_owned()))?;
    let mut stream =
        TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(|e| unreachable(e.to_string()))?;
    stream.set_read_timeout(Some(Duration::from_secs(120))).map_err(|e| unreachable(e.to_string()))?;
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).map_err(|e| unreachable(e.to_string()))?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(|e| unreachable(e.to_string()))?;
    let bad = |reason: &str| RpcError::BadAnswer { url: url.to_owned(), reason: reason.to_owned() };
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no HTTP header"))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let mut payload = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        payload = dechunk(&payload).ok_or_else(|| bad("broken chunked encoding"))?;
    }
    let answer: Value = serde_json::from_slice(&payload).map_err(|e| bad(&e.to_string()))?;
    if let Some(error) = answer.get("error") {
        return Err(RpcError::Remote {
            code: error["code"].as_i64().unwrap_or_default(),
            message: error["message"].as_str().unwrap_or("unknown error").to_owned(),
        });
    }
    answer.get("result").cloned().ok_or_else(|| bad("neither result nor error"))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).ok()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").as_deref(), Some(&b"abcde"[..]));
        assert_eq!(dechunk(b"5\r\nab"), None);
    }

    #[test]
    fn only_http_urls() {
        assert!(matches!(call("https://x:1", "m", json!([])), Err(RpcError::BadUrl(_))));
        let err = call("http://127.0.0.1:1", "m", json!([])).unwrap_err().to_string();
        assert!(err.contains("cannot reach the devnet"), "{err}");
    }
}
