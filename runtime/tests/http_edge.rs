//! The HTTP port's edge: browsers may call the devnet (CORS), a request body
//! that stops arriving frees its connection, and subscription ids are hex
//! strings as geth writes them.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::http::post;
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use nml_runtime::rpc::{RpcServer, ServerLimits};
use nml_runtime::{Devnet, DevnetConfig};
use serde_json::{Value, json};

async fn start(limits: &ServerLimits) -> (Arc<Devnet>, SocketAddr, RpcServer) {
    let devnet = Arc::new(Devnet::new(DevnetConfig::default()).unwrap());
    let server = nml_runtime::rpc::serve_with(devnet.clone(), "127.0.0.1:0".parse().unwrap(), limits).await.unwrap();
    (devnet, server.local_addr, server)
}

/// Sends `request` as it is and reads the answer's head (status line and
/// headers), lower-cased.
fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).to_lowercase()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_page_may_call_the_devnet() {
    let (_d, addr, _server) = start(&ServerLimits::default()).await;
    let preflight = exchange(
        addr,
        "OPTIONS / HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\nAccess-Control-Request-Method: POST\r\n\
         Access-Control-Request-Headers: content-type\r\n\r\n",
    );
    assert!(preflight.starts_with("http/1.1 204"), "{preflight}");
    assert!(preflight.contains("access-control-allow-origin: *"), "{preflight}");
    assert!(preflight.contains("access-control-allow-methods: post, get, options"), "{preflight}");
    assert!(preflight.contains("access-control-allow-headers: content-type"), "{preflight}");
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}"#;
    let call = exchange(
        addr,
        &format!(
            "POST / HTTP/1.1\r\nHost: x\r\nOrigin: http://localhost:3000\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert!(call.starts_with("http/1.1 200"), "{call}");
    assert!(call.contains("access-control-allow-origin: *"), "{call}");
}

/// Clients that start a body and never finish it held every connection the
/// server allows, and everyone else was answered 429 until they left: now
/// the server gives such a request up and closes its connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_that_stop_arriving_do_not_lock_other_clients_out() {
    let limits = ServerLimits { max_connections: 4, body_idle: Duration::from_millis(500), ..ServerLimits::default() };
    let (_d, addr, _server) = start(&limits).await;
    let closed = tokio::task::spawn_blocking(move || {
        let stalled: Vec<TcpStream> = (0..4)
            .map(|_| {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                s.write_all(
                    b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"json",
                )
                .unwrap();
                s
            })
            .collect();
        // Each is answered or closed by the server; a read that times out
        // (30 s) means the connection was held.
        let started = Instant::now();
        for mut s in stalled {
            let mut buf = [0u8; 256];
            let read = s.read(&mut buf);
            assert!(read.is_ok(), "held: {read:?}");
        }
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(closed < Duration::from_secs(25), "closed after {closed:?}");
    // And everyone else is served.
    let body = json!({ "jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": [] }).to_string();
    let (status, answer) = tokio::task::spawn_blocking(move || post(addr, body.as_bytes())).await.unwrap();
    assert_eq!(status, 200, "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscription_ids_are_hex_strings() {
    let (_d, addr, _server) = start(&ServerLimits::default()).await;
    let client = WsClientBuilder::default().build(format!("ws://{addr}")).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let subscription =
            client.subscribe::<Value, _>("eth_subscribe", rpc_params!["newHeads"], "eth_unsubscribe").await.unwrap();
        let id = match subscription.kind() {
            jsonrpsee::core::client::SubscriptionKind::Subscription(id) => id.clone().into_owned(),
            other => panic!("not a subscription: {other:?}"),
        };
        let jsonrpsee::types::SubscriptionId::Str(text) = &id else { panic!("a number: {id:?}") };
        assert!(text.len() == 34 && text.starts_with("0x"), "{text}");
        assert!(text[2..].chars().all(|c| c.is_ascii_hexdigit()), "{text}");
        ids.push(text.to_string());
    }
    assert_ne!(ids[0], ids[1]);
}
