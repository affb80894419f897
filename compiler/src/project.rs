//! Projects: `nml.toml`, the source files, and import resolution.
//!
//! Every file gets a *source unit name* — its path relative to the project
//! root with `/` separators — which is also its name in solc's standard JSON,
//! so that solc resolves the same imports to the same files as nml does.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::diagnostics::{Diagnostic, FileId, SourceDb};
use crate::stdlib;
use crate::syntax::{self, ast};

/// The name of a project's manifest file.
pub const MANIFEST: &str = "nml.toml";

/// `nml.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `[project]`
    #[serde(default)]
    pub project: ProjectConfig,
    /// `[devnet]`: read by the devnet, passed through here.
    #[serde(default)]
    pub devnet: Option<toml::Table>,
    /// `[llm]`: the LLM backends of `nml test` and `nml devnet --project`
    /// (docs/llm.md), read by the runtime, passed through here.
    #[serde(default)]
    pub llm: Option<toml::Table>,
    /// `[models.<Name>]`: settings of a `model` declaration, by its name.
    #[serde(default)]
    pub models: BTreeMap<String, ModelConfig>,
    /// `[deploy]`: where and how `nml deploy` deploys.
    #[serde(default)]
    pub deploy: Option<DeployConfig>,
    /// `[fork]`: the remote chain `nml test` forks when no `--fork-url` is given.
    #[serde(default)]
    pub fork: Option<ForkTable>,
    /// `[fuzz]`: how `nml test` runs fuzz tests (its flags win).
    #[serde(default)]
    pub fuzz: FuzzTable,
    /// `[invariant]`: how `nml test` runs invariant tests.
    #[serde(default)]
    pub invariant: InvariantTable,
    /// `[gateway]`: the prices of `nml gateway --project` and `nml devnet
    /// --project --gateway` (docs/gateway.md), read by the CLI, passed
    /// through here.
    #[serde(default)]
    pub gateway: Option<toml::Table>,
}

/// `[fuzz]`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FuzzTable {
    /// Passing runs each fuzz test must make (`--fuzz-runs`).
    pub runs: Option<u32>,
    /// The seed of the draws (`--fuzz-seed`).
    pub seed: Option<u64>,
}

/// `[invariant]`.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvariantTable {
    /// Runs each invariant test must make.
    pub runs: Option<u32>,
    /// Calls in each run.
    pub depth: Option<u32>,
    /// Whether a call that reverts fails the test.
    pub fail_on_revert: Option<bool>,
}

/// `[fork]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForkTable {
    /// The remote chain's JSON-RPC URL.
    pub url: String,
    /// The block to fork at (default: the remote's latest).
    pub block: Option<u64>,
    /// The chain id the remote must report.
    pub chain_id: Option<u64>,
}

/// `[deploy]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// The chain's JSON-RPC URL (`--rpc-url` wins).
    pub rpc_url: Option<String>,
    /// The chain id expected (`--chain-id` wins).
    pub chain_id: Option<u64>,
    /// Constructor arguments by contract name, as `--arg` takes them.
    #[serde(default)]
    pub args: BTreeMap<String, Vec<String>>,
    /// `[deploy.contracts.<Name>]`: named deployments, so that one contract
    /// can be deployed more than once (two tokens of a pool) and an argument
    /// `@Name` can stand for another deployment's address.
    #[serde(default)]
    pub contracts: BTreeMap<String, DeploymentConfig>,
}

/// `[deploy.contracts.<Name>]`: one named deployment.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// The contract it deploys (default: the deployment's name).
    pub contract: Option<String>,
    /// Its constructor arguments, as `--arg` takes them; `@Name` is the
    /// address of the deployment `Name`.
    #[serde(default)]
    pub args: Vec<String>,
}

/// `[models.<Name>]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// The model is served by this Open Inference Protocol (KServe v2)
    /// endpoint, `http://host:port/v2/models/NAME[/versions/V]`, instead of
    /// the embedded ONNX Runtime; without an `onnx` file, its declaration is
    /// checked against the signature the server reports.
    pub endpoint: Option<String>,
}

/// The `[project]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// The project's name.
    #[serde(default)]
    pub name: Option<String>,
    /// An exact solc version; otherwise chosen from the sources' pragmas.
    #[serde(default)]
    pub solc: Option<String>,
    /// Optimizer runs; the optimizer is off when absent.
    #[serde(default)]
    pub optimizer_runs: Option<u32>,
    /// The EVM version solc targets (solc's default when absent).
    #[serde(default)]
    pub evm_version: Option<String>,
    /// Compile through solc's IR pipeline (`viaIR`), which moves what does
    /// not fit on the stack to memory ("Stack too deep").
    #[serde(default)]
    pub via_ir: bool,
    /// Source folder.
    #[serde(default = "default_src")]
    pub src: String,
    /// Test folder.
    #[serde(default = "default_test")]
    pub test: String,
    /// Artifact folder.
    #[serde(default = "default_out")]
    pub out: String,
    /// Import remappings, `prefix=target`, as solc takes them.
    #[serde(default)]
    pub remappings: Vec<String>,
}

impl Default for ProjectConfig {
    fn default() -> Self {
        Self {
            name: None,
            solc: None,
            optimizer_runs: None,
            evm_version: None,
            via_ir: false,
            src: default_src(),
            test: default_test(),
            out: default_out(),
            remappings: Vec::new(),
        }
    }
}

fn default_src() -> String {
    "src".into()
}
fn default_test() -> String {
    "test".into()
}
fn default_out() -> String {
    "out".into()
}

/// Whether a file is NML (rewritten) or plain Solidity (passed through).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `.nml`
    Nml,
    /// `.sol`
    Solidity,
}

/// A resolved import.
#[derive(Debug, Clone)]
pub struct Import {
    /// The import as written.
    pub path: ast::StrLit,
    /// What it resolved to.
    pub target: ImportTarget,
}

/// Where an import leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportTarget {
    /// A file of the project (index into [`Project::files`]).
    File(usize),
    /// A stdlib file (`@nml/...`), supplied from memory.
    Stdlib,
    /// Not found (already reported).
    Missing,
}

/// One loaded file.
#[derive(Debug, Clone)]
pub struct LoadedFile {
    /// Its id in the source db.
    pub id: FileId,
    /// Its source unit name.
    pub unit_name: String,
    /// NML or Solidity.
    pub kind: FileKind,
    /// The parsed tree; `None` when a `.sol` file could not be tokenized
    /// (solc judges it) or an `.nml` file had a syntax error (reported).
    pub ast: Option<ast::SourceUnit>,
    /// Its imports, resolved.
    pub imports: Vec<Import>,
    /// Whether it was named by the user or found through an import.
    pub is_entry: bool,
}

/// A loaded project: configuration, files, and the diagnostics of loading.
#[derive(Debug, Clone)]
pub struct Project {
    /// The project root (where nml.toml is, or the single file's folder).
    pub root: PathBuf,
    /// `nml.toml`, or defaults.
    pub config: Config,
    /// All source texts.
    pub db: SourceDb,
    /// Files in load order; entries first.
    pub files: Vec<LoadedFile>,
    /// Errors and warnings found while loading.
    pub diagnostics: Vec<Diagnostic>,
    /// Signatures of `model` declarations served remotely, by declaration
    /// name, as their servers report them (the CLI reads them before the
    /// analysis; a declaration without an `onnx` file is checked against its).
    pub remote_signatures: BTreeMap<String, crate::sema::onnx::OnnxSignature>,
    /// Where pulled models are kept as `<id>.onnx` (`nml models pull`): a
    /// declaration with a `cid` and no `onnx` file uses the file there.
    pub model_cache: Option<PathBuf>,
}

/// Why a project could not be opened at all.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The path does not exist.
    #[error("{0} does not exist")]
    NotFound(PathBuf),
    /// The path is neither a project directory nor an .nml/.sol file.
    #[error("{0} is neither a project directory nor an .nml or .sol file")]
    NotAProject(PathBuf),
    /// nml.toml is malformed.
    #[error("{path}: {message}")]
    BadManifest {
        /// The manifest.
        path: PathBuf,
        /// Its text, which `span` points into.
        text: String,
        /// What is wrong.
        message: String,
        /// Where, when the TOML parser says.
        span: Option<Range<usize>>,
    },
    /// Reading failed.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl OpenError {
    /// The error as a diagnostic, so that it is printed like the front
    /// end's in either message format: `nml::E0061` located in nml.toml
    /// (added to `db`) for a malformed manifest, `nml::E0060` otherwise.
    pub fn diagnostic(&self, db: &mut SourceDb) -> Diagnostic {
        match self {
            Self::NotFound(_) | Self::NotAProject(_) => Diagnostic::error("E0060", self.to_string())
                .help("give a project directory (with nml.toml) or an .nml or .sol file"),
            Self::Io { .. } => Diagnostic::error("E0060", self.to_string()),
            Self::BadManifest { path, text, message, span } => {
                // toml's messages read `what is wrong, expected what is right`.
                let message = message.trim().replace('\n', "; ");
                let (what, expected) = match message.split_once(", expected ") {
                    Some((what, expected)) => (what.to_owned(), Some(expected)),
                    None => (message.clone(), None),
                };
                let mut d =
                    Diagnostic::error("E0061", format!("invalid {MANIFEST}: {what}")).help(expected.map_or_else(
                        || format!("see docs/cli.md for the keys {MANIFEST} takes"),
                        |e| format!("expected {e}"),
                    ));
                if let Some(span) = span {
                    let id = db.add(path.clone(), MANIFEST.to_owned(), Arc::from(text.as_str()));
                    d = d.at(id, span.clone(), what);
                }
                d
            }
        }
    }
}

impl Project {
    /// Opens a project directory (with or without nml.toml) or a single file,
    /// then loads every source file and, transitively, their imports.
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, false)
    }

    /// [`Project::open`], and also every `.sol`/`.nml` file of the project's
    /// test folder (`test/` unless `nml.toml` says otherwise): what `nml test` builds.
    pub fn open_with_tests(path: &Path) -> Result<Self, OpenError> {
        Self::open_with(path, true)
    }

    fn open_with(path: &Path, tests: bool) -> Result<Self, OpenError> {
        if !path.exists() {
            return Err(OpenError::NotFound(path.to_owned()));
        }
        let mut db = SourceDb::default();
        let mut diagnostics = Vec::new();
        let (root, config, entries) = if path.is_dir() {
            let root = path.to_owned();
            let (config, manifest) = read_config(&root)?;
            let folders = manifest.as_deref().map(FolderKeys::read).unwrap_or_default();
            let mut wanted = vec![("src", &config.project.src, folders.src)];
            if tests {
                wanted.push(("test", &config.project.test, folders.test));
            }
            let mut entries = Vec::new();
            for (key, folder, set_at) in wanted {
                let dir = root.join(folder);
                // A folder nml.toml names must exist; the default ones may
                // be absent (a project of tests only has no `src/`).
                match (set_at, manifest.as_deref()) {
                    (Some(span), Some(text)) if !dir.is_dir() => {
                        let id = match db.find(&root.join(MANIFEST)) {
                            Some(id) => id,
                            None => db.add(root.join(MANIFEST), MANIFEST.to_owned(), Arc::from(text)),
                        };
                        diagnostics.push(missing_folder(id, key, folder, &dir, span));
                    }
                    _ => entries.extend(source_files(&dir)?),
                }
            }
            (root, config, entries)
        } else if matches!(path.extension().and_then(|e| e.to_str()), Some("nml" | "sol")) {
            let root = path.parent().map_or_else(|| PathBuf::from("."), Path::to_owned);
            let root = if root.as_os_str().is_empty() { PathBuf::from(".") } else { root };
            (root, Config::default(), vec![path.to_owned()])
        } else {
            return Err(OpenError::NotAProject(path.to_owned()));
        };
        let mut project = Self {
            root,
            config,
            db,
            files: Vec::new(),
            diagnostics,
            remote_signatures: BTreeMap::new(),
            model_cache: None,
        };
        let mut index = HashMap::new();
        for entry in entries {
            project.load(&entry, true, &mut index);
        }
        // Resolve imports breadth-first; `load` appends newly found files.
        let mut i = 0;
        while i < project.files.len() {
            project.resolve_imports(i, &mut index);
            i += 1;
        }
        project.check_cycles();
        Ok(project)
    }

    /// The folder artifacts go to.
    pub fn out_dir(&self) -> PathBuf {
        self.root.join(&self.config.project.out)
    }

    /// Remappings as `(prefix, target)` pairs.
    pub fn remappings(&self) -> Vec<(String, String)> {
        self.config
            .project
            .remappings
            .iter()
            .filter_map(|r| r.split_once('=').map(|(a, b)| (a.to_owned(), b.to_owned())))
            .collect()
    }

    fn unit_name(&self, path: &Path) -> String {
        let rel = path.strip_prefix(&self.root).unwrap_or(path);
        normalize(rel).to_string_lossy().replace('\\', "/")
    }

    fn load(&mut self, path: &Path, is_entry: bool, index: &mut HashMap<PathBuf, usize>) -> Option<usize> {
        let path = normalize(path);
        if let Some(&i) = index.get(&path) {
            return Some(i);
        }
        let unit_name = self.unit_name(&path);
        let kind = if path.extension().is_some_and(|e| e == "nml") { FileKind::Nml } else { FileKind::Solidity };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                self.diagnostics.push(Diagnostic::error("E0030", format!("cannot read {unit_name}: {e}")));
                return None;
            }
        };
        let (text, utf8_error) = match String::from_utf8(bytes) {
            Ok(t) => (t, None),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                (String::from_utf8_lossy(e.as_bytes()).into_owned(), Some(at))
            }
        };
        let id = self.db.add(path.clone(), unit_name.clone(), Arc::from(text.as_str()));
        let ast = if let Some(at) = utf8_error {
            // Lossy decoding keeps offsets up to the first bad byte exact.
            self.diagnostics.push(
                Diagnostic::error("E0002", format!("{unit_name} is not valid UTF-8"))
                    .at(id, at..at, "invalid UTF-8 starts here")
                    .help("save the file as UTF-8"),
            );
            None
        } else {
            match syntax::parse(id, &text) {
                Ok(unit) => Some(unit),
                // A .sol file that nml's tokenizer cannot read is solc's to judge.
                Err(_) if kind == FileKind::Solidity => None,
                Err(d) => {
                    self.diagnostics.push(*d);
                    None
                }
            }
        };
        let i = self.files.len();
        self.files.push(LoadedFile { id, unit_name, kind, ast, imports: Vec::new(), is_entry });
        index.insert(path, i);
        Some(i)
    }

    fn resolve_imports(&mut self, i: usize, index: &mut HashMap<PathBuf, usize>) {
        let Some(ast) = self.files[i].ast.clone() else { return };
        let from = self.db.get(self.files[i].id).path.clone();
        let file_id = self.files[i].id;
        let mut imports = Vec::new();
        for item in &ast.items {
            let ast::Item::Import { path, .. } = item else { continue };
            let target = if path.value.starts_with("@nml/") {
                if stdlib::source(&path.value).is_some() {
                    ImportTarget::Stdlib
                } else {
                    self.diagnostics.push(
                        Diagnostic::error("E0041", format!("`{}` is not in nml's standard library", path.value))
                            .at(file_id, path.span.range(), "no such stdlib file")
                            .help(format!("the stdlib has: {}", stdlib::names().join(", "))),
                    );
                    ImportTarget::Missing
                }
            } else {
                let candidate = self.import_path(&from, &path.value);
                if candidate.is_file() {
                    match self.load(&candidate, false, index) {
                        Some(j) => ImportTarget::File(j),
                        None => ImportTarget::Missing,
                    }
                } else {
                    // Shown relative to the project root: the same on every machine.
                    let shown = candidate.strip_prefix(&self.root).unwrap_or(&candidate).display().to_string();
                    self.diagnostics.push(
                        Diagnostic::error("E0041", format!("cannot find import `{}`", path.value))
                            .at(file_id, path.span.range(), format!("no file at {shown}"))
                            .help("imports are relative to the importing file when they start with `./` or `../`, else to the project root (after remappings)"),
                    );
                    ImportTarget::Missing
                }
            };
            imports.push(Import { path: path.clone(), target });
        }
        self.files[i].imports = imports;
    }

    /// Resolves an import the way solc does with this project's base path.
    fn import_path(&self, from: &Path, import: &str) -> PathBuf {
        if import.starts_with("./") || import.starts_with("../") {
            return normalize(&from.parent().unwrap_or(Path::new("")).join(import));
        }
        for (prefix, target) in self.remappings() {
            if let Some(rest) = import.strip_prefix(&prefix) {
                return normalize(&self.root.join(format!("{target}{rest}")));
            }
        }
        normalize(&self.root.join(import))
    }

    /// Reports cycles among `.nml` imports (Solidity allows cycles in `.sol`).
    fn check_cycles(&mut self) {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            New,
            Active,
            Done,
        }
        let mut marks = vec![Mark::New; self.files.len()];
        let mut found = Vec::new();
        for start in 0..self.files.len() {
            if marks[start] != Mark::New || self.files[start].kind != FileKind::Nml {
                continue;
            }
            // Iterative DFS: (file, next import index); the stack is the path.
            let mut stack = vec![(start, 0usize)];
            marks[start] = Mark::Active;
            while let Some(&mut (f, ref mut next)) = stack.last_mut() {
                let imports = &self.files[f].imports;
                if *next == imports.len() {
                    marks[f] = Mark::Done;
                    stack.pop();
                    continue;
                }
                let import = &imports[*next];
                *next += 1;
                let ImportTarget::File(t) = import.target else { continue };
                if self.files[t].kind != FileKind::Nml {
                    continue;
                }
                match marks[t] {
                    Mark::New => {
                        marks[t] = Mark::Active;
                        stack.push((t, 0));
                    }
                    Mark::Active => {
                        let pos = stack.iter().position(|(g, _)| *g == t).unwrap_or(0);
                        let cycle: Vec<String> = stack[pos..]
                            .iter()
                            .map(|(g, _)| self.files[*g].unit_name.clone())
                            .chain(std::iter::once(self.files[t].unit_name.clone()))
                            .collect();
                        found.push((self.files[f].id, import.path.span, cycle));
                    }
                    Mark::Done => {}
                }
            }
        }
        for (file, span, cycle) in found {
            self.diagnostics.push(
                Diagnostic::error("E0042", "import cycle between .nml files")
                    .at(file, span.range(), "this import closes the cycle")
                    .help(format!("{}; move the shared declarations into a file that both import", cycle.join(" → "))),
            );
        }
    }

    /// The files that a file can see: itself and, transitively, its imports
    /// (a plain Solidity import brings in every file-level name).
    pub fn visible_files(&self, i: usize) -> Vec<usize> {
        let mut seen = vec![false; self.files.len()];
        let mut order = Vec::new();
        let mut stack = vec![i];
        while let Some(f) = stack.pop() {
            if std::mem::replace(&mut seen[f], true) {
                continue;
            }
            order.push(f);
            for import in &self.files[f].imports {
                if let ImportTarget::File(t) = import.target {
                    stack.push(t);
                }
            }
        }
        order
    }

    /// The `pragma solidity` requirements of every file.
    pub fn solidity_pragmas(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .files
            .iter()
            .filter_map(|f| f.ast.as_ref())
            .flat_map(|a| a.items.iter())
            .filter_map(|item| match item {
                ast::Item::Pragma { name, value: Some(v), .. } if name.value == "solidity" => Some(v.value.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// The texts of all project files by source unit name (for solc).
    pub fn texts(&self) -> BTreeMap<String, Arc<str>> {
        self.files.iter().map(|f| (f.unit_name.clone(), Arc::clone(&self.db.get(f.id).text))).collect()
    }
}

/// nml.toml's configuration and text; the defaults and `None` without one.
fn read_config(root: &Path) -> Result<(Config, Option<String>), OpenError> {
    let path = root.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Config::default(), None)),
        Err(source) => return Err(OpenError::Io { path, source }),
    };
    match toml::from_str(&text) {
        Ok(config) => Ok((config, Some(text))),
        Err(e) => Err(OpenError::BadManifest { path, message: e.message().to_owned(), span: e.span(), text }),
    }
}

/// Where nml.toml sets the source and test folders, if it does.
#[derive(Debug, Default)]
struct FolderKeys {
    src: Option<Range<usize>>,
    test: Option<Range<usize>>,
}

impl FolderKeys {
    /// Reads them from an nml.toml that [`Config`] already accepted.
    fn read(text: &str) -> Self {
        #[derive(Deserialize)]
        struct Manifest {
            project: Option<Folders>,
        }
        #[derive(Deserialize)]
        struct Folders {
            src: Option<toml::Spanned<String>>,
            test: Option<toml::Spanned<String>>,
        }
        let folders = toml::from_str::<Manifest>(text).ok().and_then(|m| m.project);
        folders.map_or_else(Self::default, |f| Self { src: f.src.map(|s| s.span()), test: f.test.map(|s| s.span()) })
    }
}

/// `nml::E0062`: the folder `key` names in nml.toml (at `span`) is missing.
fn missing_folder(manifest: FileId, key: &str, folder: &str, dir: &Path, span: Range<usize>) -> Diagnostic {
    let (message, label) = match dir.exists() {
        true => (format!("the {key} folder `{folder}` is not a folder"), "not a folder"),
        false => (format!("the {key} folder `{folder}` does not exist"), "no such folder"),
    };
    Diagnostic::error("E0062", message)
        .at(manifest, span, label)
        .help(format!("`{key}` is relative to the project root: create the folder or correct the path"))
}

/// `.nml` and `.sol` files under `dir`, sorted, recursively.
fn source_files(dir: &Path) -> Result<Vec<PathBuf>, OpenError> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let entries = match std::fs::read_dir(&d) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && d == dir => return Ok(out),
            Err(source) => return Err(OpenError::Io { path: d, source }),
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if matches!(p.extension().and_then(|e| e.to_str()), Some("nml" | "sol")) {
                out.push(p);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Removes `.` and resolves `..` lexically (like solc does for unit names).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project_dir(manifest: &str, folders: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(MANIFEST), manifest).expect("write");
        for folder in folders {
            std::fs::create_dir_all(dir.path().join(folder)).expect("mkdir");
        }
        dir
    }

    #[test]
    fn a_malformed_manifest_is_a_diagnostic_at_the_key() {
        let dir = project_dir("[project]\nsrcc = \"src\"\n", &[]);
        let err = Project::open(dir.path()).expect_err("unknown key");
        let mut db = SourceDb::default();
        let d = err.diagnostic(&mut db);
        assert_eq!(d.code, "nml::E0061");
        assert!(d.message.contains("unknown field `srcc`"), "{}", d.message);
        let (file, span) = d.location.expect("located in nml.toml");
        assert_eq!(db.get(file).display, MANIFEST);
        assert_eq!(&db.get(file).text[span], "srcc");
    }

    #[test]
    fn a_source_folder_named_in_the_manifest_must_exist() {
        let dir = project_dir("[project]\nsrc = \"nope\"\n", &[]);
        let project = Project::open(dir.path()).expect("opens");
        let [d] = project.diagnostics.as_slice() else { panic!("{:?}", project.diagnostics) };
        assert_eq!(d.code, "nml::E0062");
        assert!(d.message.contains("`nope`"), "{}", d.message);
        let (file, span) = d.location.clone().expect("located in nml.toml");
        assert_eq!(&project.db.get(file).text[span], "\"nope\"");

        // The test folder too, when the tests are opened.
        let dir = project_dir("[project]\ntest = \"tests\"\n", &["src"]);
        assert!(Project::open(dir.path()).expect("opens").diagnostics.is_empty());
        let project = Project::open_with_tests(dir.path()).expect("opens");
        assert_eq!(project.diagnostics.iter().map(|d| d.code.as_str()).collect::<Vec<_>>(), ["nml::E0062"]);
    }

    #[test]
    fn default_folders_may_be_missing() {
        // A project of tests only has no `src/`.
        let dir = project_dir("[project]\nname = \"x\"\n", &["test"]);
        let project = Project::open_with_tests(dir.path()).expect("opens");
        assert!(project.diagnostics.is_empty(), "{:?}", project.diagnostics);
    }

    #[test]
    fn normalize_resolves_dots() {
        assert_eq!(normalize(Path::new("src/./a/../b.nml")), PathBuf::from("src/b.nml"));
        assert_eq!(normalize(Path::new("../x")), PathBuf::from("../x"));
    }
}
