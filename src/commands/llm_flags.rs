//! The LLM flags that `nml devnet` and `nml test` share, and how they
//! combine with a project's `[llm]` table into the backend the mempool asks
//! (docs/llm.md).

use std::path::{Path, PathBuf};

use miette::miette;
use nml_runtime::llm::{CassetteConfig, CassetteMode, LlmConfig, LlmStack, ServerConfig};

/// The name the server given by `--llm-url` goes by.
const FLAG_SERVER: &str = "cli";

/// LLM backends (docs/llm.md). Without any, LLM calls are answered by the
/// embedded model.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct LlmArgs {
    /// An OpenAI-compatible server (its base URL with /v1) that answers
    /// every LLM id: vLLM, llama.cpp's server, Ollama, LiteLLM, a hosted API.
    #[arg(long, value_name = "URL")]
    pub llm_url: Option<String>,
    /// The environment variable that holds the --llm-url server's API key.
    #[arg(long, value_name = "VAR", requires = "llm_url")]
    pub llm_key_env: Option<String>,
    /// The --llm-url server's name for an LLM id (repeatable), e.g.
    /// `meta-llama/Llama-3.1-8B-Instruct=llama3.1`.
    #[arg(long = "llm-model", value_name = "ID=NAME", requires = "llm_url")]
    pub llm_models: Vec<String>,
    /// Seconds one LLM call may take before it fails (transiently).
    #[arg(long, value_name = "SECS", requires = "llm_url")]
    pub llm_timeout: Option<f64>,
    /// LLM calls sent to the backends at once [default: 8].
    #[arg(long, value_name = "N")]
    pub llm_concurrency: Option<usize>,
    /// The backend of LLM ids that no server lists: `embedded`, `none`, or a
    /// server of `[llm.servers]` [default: embedded].
    #[arg(long, value_name = "BACKEND", conflicts_with = "llm_url")]
    pub llm_default: Option<String>,
    /// A cassette file of recorded LLM answers (see --cassette-mode).
    #[arg(long, value_name = "FILE")]
    pub cassette: Option<PathBuf>,
    /// How the cassette serves: `replay` (only what it holds), `record`
    /// (ask the backend, write every answer) or `auto` (replay what it
    /// holds, record the rest) [default: replay].
    #[arg(long, value_name = "MODE")]
    pub cassette_mode: Option<CassetteMode>,
}

impl LlmArgs {
    /// The project's `[llm]` (from `root`) with the flags applied on top.
    pub fn config(&self, table: Option<&toml::Table>) -> miette::Result<LlmConfig> {
        let mut config: LlmConfig = match table {
            Some(table) => toml::Value::Table(table.clone())
                .try_into()
                .map_err(|e| miette!("nml.toml [llm]: {}", e.to_string().trim()))?,
            None => LlmConfig::default(),
        };
        if let Some(url) = &self.llm_url {
            let mut models = std::collections::BTreeMap::new();
            for pair in &self.llm_models {
                let (id, name) = pair
                    .split_once('=')
                    .filter(|(id, name)| !id.is_empty() && !name.is_empty())
                    .ok_or_else(|| miette!("--llm-model {pair}: expected ID=NAME"))?;
                models.insert(id.to_owned(), name.to_owned());
            }
            let server = ServerConfig {
                url: url.clone(),
                api_key_env: self.llm_key_env.clone(),
                timeout_secs: self.llm_timeout,
                models,
            };
            config.servers.insert(FLAG_SERVER.to_owned(), server);
            config.default = Some(FLAG_SERVER.to_owned());
        }
        if let Some(default) = &self.llm_default {
            config.default = Some(default.clone());
        }
        if let Some(n) = self.llm_concurrency {
            config.concurrency = Some(n);
        }
        if let Some(path) = &self.cassette {
            let path = std::path::absolute(path).map_err(|e| miette!("--cassette {}: {e}", path.display()))?;
            let mode = config.cassette.as_ref().map(|c| c.mode).unwrap_or_default();
            config.cassette = Some(CassetteConfig { path, mode });
        }
        if let Some(mode) = self.cassette_mode {
            let cassette = config.cassette.as_mut().ok_or_else(|| {
                miette!("--cassette-mode needs a cassette: pass --cassette FILE or set [llm.cassette] in nml.toml")
            })?;
            cassette.mode = mode;
        }
        Ok(config)
    }

    /// The backend stack: the project's `[llm]` and the flags, relative
    /// paths from `root`, the embedded model on the ONNX Runtime at `library`.
    pub fn stack(&self, table: Option<&toml::Table>, root: &Path, library: &Path) -> miette::Result<LlmStack> {
        self.config(table)?.build(root, library).map_err(|e| miette!("{e}"))
    }
}
