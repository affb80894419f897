//! JSON-RPC over a bare HTTP/1.1 connection, for the tests of the server.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use serde_json::{Value, json};

/// POSTs `body` and returns the HTTP status and the body.
pub fn post(addr: SocketAddr, body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body.
    let _ = stream.write_all(body);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    // Chunked bodies: keep the JSON part.
    let body = match (body.find(['{', '[']), body.rfind(['}', ']'])) {
        (Some(start), Some(end)) if start <= end => body[start..=end].to_owned(),
        _ => body,
    };
    (status, body)
}

/// One JSON-RPC call over HTTP, on a blocking thread (the test's runtime
/// may be the server's).
pub async fn rpc(addr: SocketAddr, method: &str, params: Value) -> Value {
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    tokio::task::spawn_blocking(move || {
        let (_, body) = post(addr, body.as_bytes());
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"))
    })
    .await
    .unwrap()
}

/// The code and message of a JSON-RPC error answer.
pub fn error(response: &Value) -> (i64, String) {
    let e = &response["error"];
    (
        e["code"].as_i64().unwrap_or_else(|| panic!("no error in {response}")),
        e["message"].as_str().unwrap_or_default().to_owned(),
    )
}
