//! KServe's Python model server (the `kserve` package from PyPI, installed
//! into `target/client-deps/kserve` under a lock), serving ONNX files through
//! `tests/clients/kserve_onnx.py`: the real Open Inference Protocol server of
//! the remote-model tests and benchmark.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The pinned server (a cold install takes about 40 s here).
const PACKAGES: [&str; 2] = ["kserve==0.21.0", "onnxruntime==1.32.0"];

/// The server's Python, installed once per target directory.
pub fn python() -> PathBuf {
    let dir = super::deps_dir().join("kserve");
    super::provision(&dir, ".installed-kserve-0.21.0", |dir| {
        let venv = dir.join("venv");
        super::run_checked(Command::new("python3").args(["-m", "venv"]).arg(&venv), "python3 -m venv");
        super::run_checked(
            Command::new(venv.join("bin/pip")).args(["install", "-q", "--no-cache-dir"]).args(PACKAGES),
            "pip install kserve onnxruntime",
        );
    });
    dir.join("venv/bin/python")
}

/// A running server; killed when dropped.
pub struct KServe {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

impl KServe {
    /// Serves `models` (each under its file stem), each run delayed by `delay`.
    pub fn start(models: &[&Path], delay: Duration) -> Self {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/kserve_onnx.py");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().unwrap().port();
        let child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .args(models)
            .env("SERVE_DELAY_MS", delay.as_millis().to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting the KServe model server");
        let mut server = Self { child, url: format!("http://127.0.0.1:{port}") };
        let started = Instant::now();
        let ready = format!("{}/v2/health/ready", server.url);
        loop {
            if let Some(status) = server.child.try_wait().expect("wait") {
                panic!("the KServe model server exited with {status}");
            }
            if ureq::get(&ready).call().is_ok_and(|r| r.status() == 200) {
                return server;
            }
            assert!(started.elapsed() < Duration::from_secs(60), "the KServe model server did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The URL of a served model.
    pub fn model(&self, name: &str) -> String {
        format!("{}/v2/models/{name}", self.url)
    }

    /// Stops the server now.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for KServe {
    fn drop(&mut self) {
        self.stop();
    }
}
