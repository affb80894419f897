//! The `[llm]` table of `nml.toml` (and the flags of `nml devnet` and
//! `nml test`, which fill the same struct) and how it builds the backend
//! the mempool asks: the embedded model and the servers behind a router,
//! with a cassette in front when one is configured.
//!
//! ```toml
//! [llm]
//! default = "embedded"        # ids no server lists: "embedded", "none" or a server's name
//! concurrency = 8             # backend calls at once
//! max_prompt_bytes = 65536
//!
//! [llm.servers.local]         # any OpenAI-compatible server
//! url = "http://127.0.0.1:8080/v1"
//! api_key_env = "LOCAL_LLM_KEY"   # read from the environment, never written anywhere
//! timeout_secs = 60
//! models = { "meta-llama/Llama-3.1-8B-Instruct" = "llama-3.1-8b" }   # routed here, by the server's name
//!
//! [llm.cassette]
//! path = "test/cassettes/llm.json"
//! mode = "replay"             # replay, record or auto
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::LlmBackend;
use super::cassette::{Cassette, CassetteError, CassetteMode};
use super::embedded::EmbeddedLlm;
use super::openai::{self, ApiKey, OpenAiBackend};
use super::router::{DEFAULT_MAX_PROMPT_BYTES, LlmRouter};
use crate::inference::InferenceError;

/// The default number of backend calls at once.
pub const DEFAULT_CONCURRENCY: usize = 8;

/// `[llm]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    /// The backend of ids that no server lists: `embedded` (the default),
    /// `none`, or the name of a server.
    pub default: Option<String>,
    /// Backend calls at once (default 8).
    pub concurrency: Option<usize>,
    /// The most bytes of text one request may send (default 64 KiB).
    pub max_prompt_bytes: Option<usize>,
    /// OpenAI-compatible servers by name.
    #[serde(default)]
    pub servers: BTreeMap<String, ServerConfig>,
    /// Recorded answers.
    pub cassette: Option<CassetteConfig>,
}

/// `[llm.servers.NAME]`: an OpenAI-compatible server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Its base URL, with `/v1`.
    pub url: String,
    /// The environment variable that holds its API key.
    pub api_key_env: Option<String>,
    /// The per-request timeout in seconds (default 60).
    pub timeout_secs: Option<f64>,
    /// The LLM ids routed to it, each with the server's name for it.
    #[serde(default)]
    pub models: BTreeMap<String, String>,
}

/// `[llm.cassette]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CassetteConfig {
    /// The file, relative to the project.
    pub path: PathBuf,
    /// How it serves (default `replay`).
    #[serde(default)]
    pub mode: CassetteMode,
}

/// Why the LLM configuration cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum LlmConfigError {
    /// A server's key variable is not set.
    #[error("[llm.servers.{server}]: the environment variable {var} (api_key_env) is not set")]
    MissingKey {
        /// The server's name.
        server: String,
        /// The variable.
        var: String,
    },
    /// `default` names no server.
    #[error("[llm] default = \"{name}\": not `embedded`, `none` or a server of [llm.servers] ({known})")]
    UnknownDefault {
        /// The name given.
        name: String,
        /// The servers there are.
        known: String,
    },
    /// A server's URL or timeout is not usable.
    #[error("[llm.servers.{server}]: {reason}")]
    BadServer {
        /// The server's name.
        server: String,
        /// What is wrong.
        reason: String,
    },
    /// The embedded model could not be loaded.
    #[error("the embedded LLM cannot be loaded: {0}")]
    Embedded(#[from] InferenceError),
    /// The cassette could not be opened.
    #[error(transparent)]
    Cassette(#[from] CassetteError),
}

/// The backend the mempool asks, and how many calls it may make at once.
#[derive(Debug, Clone)]
pub struct LlmStack {
    /// Answers every LLM request.
    pub backend: Arc<dyn LlmBackend>,
    /// Backend calls at once.
    pub concurrency: usize,
}

impl LlmConfig {
    /// Builds the backends: servers and the embedded model (on the ONNX
    /// Runtime at `library`) behind a router, a cassette (its path relative
    /// to `root`) in front.
    pub fn build(&self, root: &Path, library: &Path) -> Result<LlmStack, LlmConfigError> {
        let mut servers: BTreeMap<&str, Arc<dyn LlmBackend>> = BTreeMap::new();
        let mut routes: Vec<(String, Arc<dyn LlmBackend>)> = Vec::new();
        for (name, server) in &self.servers {
            let bad = |reason: String| LlmConfigError::BadServer { server: name.clone(), reason };
            if !(server.url.starts_with("http://") || server.url.starts_with("https://")) {
                return Err(bad(format!("url `{}` is not an http:// or https:// URL", server.url)));
            }
            let timeout = match server.timeout_secs {
                None => openai::DEFAULT_TIMEOUT,
                Some(secs) => Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| bad(format!("timeout_secs = {secs} is not a positive number of seconds")))?,
            };
            let key = match &server.api_key_env {
                None => None,
                Some(var) => Some(ApiKey::new(
                    std::env::var(var)
                        .map_err(|_| LlmConfigError::MissingKey { server: name.clone(), var: var.clone() })?,
                )),
            };
            let mut backend = OpenAiBackend::new(&server.url, key, timeout);
            for (id, server_name) in &server.models {
                backend = backend.name(id.clone(), server_name.clone());
            }
            let backend: Arc<dyn LlmBackend> = Arc::new(backend);
            routes.extend(server.models.keys().map(|id| (id.clone(), Arc::clone(&backend))));
            servers.insert(name, backend);
        }
        let default: Option<Arc<dyn LlmBackend>> = match self.default.as_deref().unwrap_or("embedded") {
            "embedded" => Some(Arc::new(EmbeddedLlm::new(library)?)),
            "none" => None,
            name => Some(Arc::clone(servers.get(name).ok_or_else(|| LlmConfigError::UnknownDefault {
                name: name.to_owned(),
                known: if servers.is_empty() {
                    "none are configured".to_owned()
                } else {
                    servers.keys().copied().collect::<Vec<_>>().join(", ")
                },
            })?)),
        };
        let mut router =
            LlmRouter::new(default).max_prompt_bytes(self.max_prompt_bytes.unwrap_or(DEFAULT_MAX_PROMPT_BYTES));
        for (id, backend) in routes {
            router = router.route(id, backend);
        }
        let router: Arc<dyn LlmBackend> = Arc::new(router);
        let backend = match &self.cassette {
            None => router,
            Some(cassette) => {
                let path = root.join(&cassette.path);
                let inner = (cassette.mode != CassetteMode::Replay).then_some(router);
                Arc::new(Cassette::open(&path, cassette.mode, inner)?)
            }
        };
        Ok(LlmStack { backend, concurrency: self.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_key_and_an_unknown_default_are_named() {
        let mut config = LlmConfig { default: Some("none".into()), ..LlmConfig::default() };
        config.servers.insert(
            "hosted".into(),
            ServerConfig {
                url: "https://api.example.com/v1".into(),
                api_key_env: Some("NML_TEST_SURELY_UNSET_KEY".into()),
                ..ServerConfig::default()
            },
        );
        let err = config.build(Path::new("."), Path::new("/nonexistent")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "[llm.servers.hosted]: the environment variable NML_TEST_SURELY_UNSET_KEY (api_key_env) is not set"
        );
        let config = LlmConfig { default: Some("gpu".into()), ..LlmConfig::default() };
        let err = config.build(Path::new("."), Path::new("/nonexistent")).unwrap_err();
        assert!(err.to_string().contains("default = \"gpu\""), "{err}");
    }

    #[test]
    fn a_server_url_must_be_http() {
        let mut config = LlmConfig { default: Some("none".into()), ..LlmConfig::default() };
        config.servers.insert("s".into(), ServerConfig { url: "localhost:8080".into(), ..ServerConfig::default() });
        let err = config.build(Path::new("."), Path::new("/nonexistent")).unwrap_err();
        assert!(err.to_string().contains("is not an http:// or https:// URL"), "{err}");
    }

    #[test]
    fn the_table_parses_from_json_shaped_toml() {
        let value = serde_json::json!({
            "default": "local", "concurrency": 4,
            "servers": { "local": { "url": "http://127.0.0.1:1/v1", "models": { "a/b": "b" } } },
            "cassette": { "path": "test/cassettes/llm.json", "mode": "auto" }
        });
        let config: LlmConfig = serde_json::from_value(value).unwrap();
        assert_eq!(config.cassette.as_ref().unwrap().mode, CassetteMode::Auto);
        let stack = config.build(Path::new("/tmp"), Path::new("/nonexistent")).unwrap();
        assert_eq!(stack.concurrency, 4);
        assert!(stack.backend.describe().contains("cassette /tmp/test/cassettes/llm.json (auto)"));
    }
}
