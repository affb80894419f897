//! A running `nml` node for the end-to-end tests (the real binary, stopped
//! by SIGTERM or killed when dropped), and JSON-RPC over a bare connection.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::run_checked;

/// Waits for `child` at most `limit`, killing it past that.
pub fn wait(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// A running `nml devnet` (or `nml gateway`), killed when dropped.
pub struct Node {
    pub child: Child,
    pub url: String,
    /// What it printed before its address.
    pub banner: Vec<String>,
    /// What it printed after its address, so far.
    pub output: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Node {
    /// Starts `nml devnet --port 0` with `args`.
    pub fn start(args: &[&str]) -> Self {
        Self::spawn(&[&["devnet", "--port", "0"], args].concat())
    }

    /// Starts `nml <args>` and waits for its `Listening on ADDR` line.
    pub fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nml"))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("starting nml devnet");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut node = Node { child, url: String::new(), banner: Vec::new(), output: Default::default() };
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match rx.recv_timeout(left) {
                Ok(line) => {
                    node.banner.push(line.clone());
                    if let Some(rest) = line.strip_prefix("Listening on ") {
                        let addr = rest.split_whitespace().next().unwrap_or_default();
                        assert!(addr.starts_with("127.0.0.1:"), "binds 127.0.0.1 by default: {line}");
                        node.url = format!("http://{addr}");
                        // Keep draining stdout so the node never blocks on a
                        // full pipe; the lines are kept for `output`.
                        let output = std::sync::Arc::clone(&node.output);
                        std::thread::spawn(move || {
                            while let Ok(line) = rx.recv() {
                                output.lock().unwrap().push(line);
                            }
                        });
                        return node;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("nml {} did not report its address within 60 s", args[0]);
    }

    /// The URL of the gateway a devnet started with `--gateway` serves.
    pub fn gateway_url(&self) -> String {
        self.banner
            .iter()
            .find_map(|line| line.strip_prefix("Gateway on ").and_then(|rest| rest.split_whitespace().next()))
            .expect("the devnet's banner names its gateway")
            .to_owned()
    }

    /// Stops the node with SIGTERM (as Ctrl-C would) and waits for it.
    pub fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        run_checked(Command::new("kill").args(["-TERM", &pid]), "kill -TERM");
        wait(&mut self.child, Duration::from_secs(30)).expect("nml devnet exits on SIGTERM")
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One JSON-RPC call over a plain HTTP/1.1 connection: its result.
pub fn rpc(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    rpc_answer(url, method, params)["result"].clone()
}

/// One JSON-RPC call over a plain HTTP/1.1 connection: the whole answer.
pub fn rpc_answer(url: &str, method: &str, params: serde_json::Value) -> serde_json::Value {
    use std::io::{Read, Write};
    let body = serde_json::json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params }).to_string();
    let addr = url.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let json = response.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or_default();
    serde_json::from_str(json).expect("a JSON answer")
}
