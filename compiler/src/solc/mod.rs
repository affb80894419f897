//! solc, driven through foundry-compilers: one standard-JSON call for every
//! source of a build, Foundry's artifact layout under `out/`, and the content
//! hash that lets a no-op rebuild skip solc.
//!
//! This module never looks for or installs solc: the caller passes the path of
//! an executable that speaks solc's command line (a native solc or nml's Node
//! shim around the npm package, see the CLI's `toolchain::solc`).

mod artifacts;
mod version;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use foundry_compilers::artifacts::output_selection::{ContractOutputSelection, OutputSelection};
use foundry_compilers::artifacts::{
    CompilerOutput, ConfigurableContractArtifact, EvmVersion, Optimizer, Remapping, Settings, SolcInput, SolcLanguage,
    Source, Sources,
};
use foundry_compilers::solc::Solc;
use foundry_compilers::{ArtifactOutput, ConfigurableArtifacts};
use sha2::{Digest, Sha256};

use crate::diagnostics::Severity;

pub use artifacts::{artifact_path, artifact_stem, manifest_path, write_artifacts, write_atomic};

/// A solc executable, with its version when the caller knows it already:
/// then solc is not started once more just to be asked (125 ms through the
/// Node shim of an npm solc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolcBinary {
    /// The executable.
    pub path: PathBuf,
    /// Its version as `solc --version` prints it, when known.
    pub version: Option<semver::Version>,
}

impl SolcBinary {
    /// An executable whose version is to be asked.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), version: None }
    }
}
pub use version::{SolidityVersionReq, VersionReqError, satisfies_all};

/// Everything solc needs for one build.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolcJob {
    /// Source unit name → content, e.g. `src/Pool.nml` (the generated
    /// Solidity) and `@nml/og/OGInference.sol` (the stdlib). Every file of the
    /// build should be here; files that are not are read from disk through
    /// `base_path`.
    pub sources: BTreeMap<String, String>,
    /// Optimizer runs; the optimizer is off when `None`.
    pub optimizer_runs: Option<u32>,
    /// The EVM version to target, e.g. `cancun`; solc's default when `None`.
    pub evm_version: Option<String>,
    /// Whether solc compiles through its IR pipeline (`viaIR`).
    pub via_ir: bool,
    /// Import remappings, `prefix=target`, as solc takes them.
    pub remappings: Vec<String>,
    /// The project root: solc's `--base-path` and working directory, from
    /// which imports of files that are not in `sources` are read.
    pub base_path: Option<PathBuf>,
    /// Whether solc also returns each source's AST (coverage wants it).
    pub ast: bool,
}

/// What solc produced.
#[derive(Debug, Clone)]
pub struct SolcOutput {
    /// The full version solc reported, e.g. `0.8.37+commit.f401782d.Emscripten.clang`.
    pub solc_version: String,
    /// One artifact per contract, interface and library, sorted by source unit
    /// and name. Empty when solc reported an error.
    pub contracts: Vec<Artifact>,
    /// solc's errors, warnings and infos, in solc's order.
    pub diagnostics: Vec<SolcDiagnostic>,
    /// Every source unit solc compiled, by name: the id its source maps
    /// call it by, and its AST when the job asked for it.
    pub sources: BTreeMap<String, CompiledSource>,
}

/// A source unit as solc compiled it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CompiledSource {
    /// The index source maps give it (their `f` field).
    pub id: u32,
    /// solc's AST of it (compact JSON), when asked for.
    pub ast: Option<serde_json::Value>,
}

impl SolcOutput {
    /// Whether solc reported an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.severity == Severity::Error)
    }
}

/// One compiled contract.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Artifact {
    /// The source unit it was declared in.
    pub source: String,
    /// The contract's name.
    pub name: String,
    /// The Foundry artifact: abi, bytecode and deployedBytecode (object,
    /// sourceMap, linkReferences), methodIdentifiers, rawMetadata, metadata, id.
    pub artifact: ConfigurableContractArtifact,
}

/// An error, warning or info from solc, located in a source unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolcDiagnostic {
    /// Error, warning or note (solc's `info`).
    pub severity: Severity,
    /// solc's error code, e.g. `7407`.
    pub code: Option<String>,
    /// solc's kind of error, e.g. `TypeError`, `ParserError`, `Warning`.
    pub kind: String,
    /// The message without location.
    pub message: String,
    /// The source unit the diagnostic points into.
    pub source: Option<String>,
    /// Start byte offset into that source unit.
    pub start: Option<usize>,
    /// End byte offset (exclusive) into that source unit.
    pub end: Option<usize>,
    /// solc's own rendering, with the source excerpt.
    pub formatted: String,
}

impl SolcDiagnostic {
    /// The code nml's diagnostics give it: `solc::` and solc's error code
    /// (`solc::7407`), or `solc` when solc gave none.
    pub fn diagnostic_code(&self) -> String {
        self.code.as_deref().map_or_else(|| "solc".to_owned(), |c| format!("solc::{c}"))
    }
}

/// The diagnostic code (see [`SolcDiagnostic::diagnostic_code`]) of solc's
/// warning that a contract's deployed code exceeds EIP-170's 24576 bytes.
pub const CODE_SIZE_WARNING: &str = "solc::5574";

/// solc could not be run or its answer could not be read. Errors in the
/// sources are not `SolcError`s: they come back as [`SolcDiagnostic`]s.
#[derive(Debug, thiserror::Error)]
pub enum SolcError {
    /// The executable failed to start, exited with an error, or its output
    /// was not the JSON solc writes.
    #[error("solc at {path} failed: {message}")]
    Run {
        /// The executable.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// A setting solc would not understand (from `nml.toml`).
    #[error("invalid solc setting {setting} = {value:?}: {reason}")]
    Setting {
        /// The setting's name.
        setting: &'static str,
        /// The value given.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
}

/// Compiles every source of `job` in one standard-JSON call to the solc at
/// `solc`.
pub fn compile(solc: &SolcBinary, job: &SolcJob) -> Result<SolcOutput, SolcError> {
    let driver = driver(solc, job.base_path.as_deref())?;
    // abi, bytecode and deployedBytecode (object, sourceMap, linkReferences)
    // and methodIdentifiers are foundry-compilers' basic selection; metadata
    // is the extra.
    let extras = ConfigurableArtifacts::new([ContractOutputSelection::Metadata], []);
    let mut settings = Settings {
        optimizer: Optimizer {
            enabled: Some(job.optimizer_runs.is_some()),
            runs: job.optimizer_runs.map(|r| r as usize),
            details: None,
        },
        evm_version: job.evm_version.as_deref().map(parse_evm_version).transpose()?,
        via_ir: job.via_ir.then_some(true),
        remappings: job.remappings.iter().map(|r| parse_remapping(r)).collect::<Result<_, _>>()?,
        output_selection: OutputSelection::default(),
        ..Settings::default()
    };
    settings.set_output_selection(extras.output_selection());
    if job.ast {
        // The AST is a file-level output: the empty contract name.
        for selection in settings.output_selection.0.values_mut() {
            selection.insert(String::new(), vec!["ast".to_owned()]);
        }
    }
    let output = run(&driver, &job.sources, settings)?;

    let diagnostics = diagnostics(&output);
    let mut contracts = Vec::new();
    if !diagnostics.iter().any(|d| d.severity == Severity::Error) {
        for (file, by_name) in output.contracts {
            let unit = file.to_string_lossy().into_owned();
            let source_file = output.sources.get(&file);
            for (name, contract) in by_name {
                let artifact = extras.contract_to_artifact(&file, &name, contract, source_file);
                contracts.push(Artifact { source: unit.clone(), name, artifact });
            }
        }
    }
    let sources = output
        .sources
        .iter()
        .map(|(file, source)| {
            let ast = source.ast.as_ref().and_then(|ast| serde_json::to_value(ast).ok());
            (file.to_string_lossy().into_owned(), CompiledSource { id: source.id, ast })
        })
        .collect();
    Ok(SolcOutput { solc_version: driver.version.to_string(), contracts, diagnostics, sources })
}

/// Asks solc only to parse `sources` (`settings.stopAfter = "parsing"`) and
/// returns its verdict. solc is the final authority on Solidity syntax: the
/// front end uses this when solang-parser rejects something.
pub fn parse_only(solc: &SolcBinary, sources: &BTreeMap<String, String>) -> Result<Vec<SolcDiagnostic>, SolcError> {
    let driver = driver(solc, None)?;
    // solc refuses any output selection together with stopAfter.
    let settings = Settings {
        stop_after: Some("parsing".to_owned()),
        output_selection: OutputSelection::default(),
        evm_version: None,
        ..Settings::default()
    };
    let output = run(&driver, sources, settings)?;
    Ok(diagnostics(&output))
}

/// A hex SHA-256 over everything that decides solc's output: the sources,
/// the settings, nml's version and `solc_key` (whatever names the compiler
/// choice: its version, or the pragmas and pin it will be chosen from).
/// Equal fingerprints mean a rebuild may reuse the previous artifacts.
pub fn fingerprint(job: &SolcJob, solc_key: &str) -> String {
    let SolcJob { sources, optimizer_runs, evm_version, via_ir, remappings, base_path, ast } = job;
    let mut hasher = Sha256::new();
    let mut field = |bytes: &[u8]| {
        // Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        hasher.update((bytes.len() as u64).to_le_bytes());
        hasher.update(bytes);
    };
    field(b"nml-solc-fingerprint-v1");
    field(env!("CARGO_PKG_VERSION").as_bytes());
    field(solc_key.as_bytes());
    field(format!("{optimizer_runs:?}|{evm_version:?}|{via_ir}|{base_path:?}|{ast}").as_bytes());
    for remapping in remappings {
        field(remapping.as_bytes());
    }
    field(&(sources.len() as u64).to_le_bytes());
    for (name, content) in sources {
        field(name.as_bytes());
        field(content.as_bytes());
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A foundry-compilers handle on the executable; asks it for its version
/// unless it is known (foundry-compilers remembers the answer for the rest
/// of the process).
fn driver(solc: &SolcBinary, base_path: Option<&Path>) -> Result<Solc, SolcError> {
    let mut driver = match &solc.version {
        Some(version) => Solc::new_with_version(&solc.path, version.clone()),
        None => Solc::new(&solc.path).map_err(|e| run_error(&solc.path, e))?,
    };
    if let Some(base) = base_path {
        // solc runs in the base path; a relative one would then point
        // elsewhere.
        let base = std::path::absolute(base).map_err(|e| SolcError::Run {
            path: solc.path.clone(),
            message: format!("base path {}: {e}", base.display()),
        })?;
        driver.base_path = Some(base);
    }
    Ok(driver)
}

/// One standard-JSON round trip.
fn run(driver: &Solc, sources: &BTreeMap<String, String>, settings: Settings) -> Result<CompilerOutput, SolcError> {
    let sources: Sources =
        sources.iter().map(|(name, text)| (PathBuf::from(name), Source::new(text.as_str()))).collect();
    let settings = settings.sanitized(&driver.version, SolcLanguage::Solidity);
    let input = SolcInput::new(SolcLanguage::Solidity, sources, settings);
    let raw = driver.compile_output(&input).map_err(|e| run_error(&driver.solc, e))?;
    serde_json::from_slice(&raw).map_err(|e| SolcError::Run {
        path: driver.solc.clone(),
        message: format!("its standard-JSON output ({} bytes) is not valid JSON ({e}); a truncated output points at a broken solc wrapper", raw.len()),
    })
}

fn diagnostics(output: &CompilerOutput) -> Vec<SolcDiagnostic> {
    use foundry_compilers::artifacts::Severity as SolcSeverity;
    output
        .errors
        .iter()
        .map(|e| {
            let location = e.source_location.as_ref();
            let offset = |o: i32| usize::try_from(o).ok();
            SolcDiagnostic {
                severity: match e.severity {
                    SolcSeverity::Error => Severity::Error,
                    SolcSeverity::Warning => Severity::Warning,
                    SolcSeverity::Info => Severity::Note,
                },
                code: e.error_code.map(|c| c.to_string()),
                kind: e.r#type.clone(),
                message: e.message.clone(),
                source: location.map(|l| l.file.clone()),
                start: location.and_then(|l| offset(l.start)),
                end: location.and_then(|l| offset(l.end)),
                formatted: e.formatted_message.clone().unwrap_or_else(|| e.message.clone()),
            }
        })
        .collect()
}

fn run_error(path: &Path, error: foundry_compilers::error::SolcError) -> SolcError {
    SolcError::Run { path: path.to_owned(), message: error.to_string().trim().to_owned() }
}

fn parse_evm_version(value: &str) -> Result<EvmVersion, SolcError> {
    value.parse().map_err(|reason| SolcError::Setting { setting: "evm_version", value: value.to_owned(), reason })
}

fn parse_remapping(value: &str) -> Result<Remapping, SolcError> {
    value.parse().map_err(|e: foundry_compilers::artifacts::RemappingError| SolcError::Setting {
        setting: "remappings",
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> SolcJob {
        SolcJob {
            sources: BTreeMap::from([
                ("src/A.sol".to_owned(), "contract A {}".to_owned()),
                ("src/B.nml".to_owned(), "contract B {}".to_owned()),
            ]),
            ..SolcJob::default()
        }
    }

    #[test]
    fn fingerprint_follows_every_input() {
        let base = fingerprint(&job(), "0.8.37");
        assert_eq!(base, fingerprint(&job(), "0.8.37"));
        assert_eq!(base.len(), 64);
        assert_ne!(base, fingerprint(&job(), "0.8.36"));
        let mut changed = job();
        changed.sources.insert("src/A.sol".to_owned(), "contract A { }".to_owned());
        assert_ne!(base, fingerprint(&changed, "0.8.37"));
        let mut moved = job();
        let text = moved.sources.remove("src/A.sol").unwrap();
        moved.sources.insert("src/C.sol".to_owned(), text);
        assert_ne!(base, fingerprint(&moved, "0.8.37"));
        for tweak in [
            |j: &mut SolcJob| j.optimizer_runs = Some(200),
            |j: &mut SolcJob| j.evm_version = Some("cancun".to_owned()),
            |j: &mut SolcJob| j.via_ir = true,
            |j: &mut SolcJob| j.remappings.push("a/=b/".to_owned()),
            |j: &mut SolcJob| j.base_path = Some(PathBuf::from("/p")),
        ] {
            let mut j = job();
            tweak(&mut j);
            assert_ne!(base, fingerprint(&j, "0.8.37"));
        }
    }

    #[test]
    fn fingerprint_separates_fields() {
        let a = SolcJob { sources: BTreeMap::from([("ab".to_owned(), "c".to_owned())]), ..SolcJob::default() };
        let b = SolcJob { sources: BTreeMap::from([("a".to_owned(), "bc".to_owned())]), ..SolcJob::default() };
        assert_ne!(fingerprint(&a, ""), fingerprint(&b, ""));
    }

    #[test]
    fn diagnostics_keep_solc_locations() {
        let output: CompilerOutput = serde_json::from_value(serde_json::json!({
            "errors": [
                {
                    "component": "general", "errorCode": "9574", "formattedMessage": "TypeError: nope\n --> src/A.sol:1:20:",
                    "message": "nope", "severity": "error", "type": "TypeError",
                    "sourceLocation": { "file": "src/A.sol", "start": 19, "end": 26 }
                },
                {
                    "component": "general", "errorCode": "3420", "message": "no pragma", "severity": "warning",
                    "type": "Warning", "sourceLocation": { "file": "src/A.sol", "start": -1, "end": -1 }
                },
                { "component": "general", "message": "hello", "severity": "info", "type": "Info" }
            ]
        }))
        .unwrap();
        let d = diagnostics(&output);
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].severity, Severity::Error);
        assert_eq!(d[0].code.as_deref(), Some("9574"));
        assert_eq!(d[0].kind, "TypeError");
        assert_eq!((d[0].source.as_deref(), d[0].start, d[0].end), (Some("src/A.sol"), Some(19), Some(26)));
        assert!(d[0].formatted.starts_with("TypeError: nope"));
        assert_eq!((d[1].severity, d[1].start, d[1].end), (Severity::Warning, None, None));
        assert_eq!((d[2].severity, d[2].source.as_deref(), d[2].formatted.as_str()), (Severity::Note, None, "hello"));
    }

    #[test]
    fn bad_settings_are_named() {
        let err = parse_evm_version("frontier-ish").unwrap_err();
        assert!(err.to_string().contains("evm_version"), "{err}");
        let err = parse_remapping("no-equals-sign").unwrap_err();
        assert!(err.to_string().contains("remappings"), "{err}");
        assert!(parse_evm_version("cancun").is_ok());
        assert!(parse_remapping("@oz/=lib/oz/").is_ok());
    }

    #[test]
    fn a_missing_solc_is_a_run_error() {
        let err = compile(&SolcBinary::at("/nonexistent/solc"), &job()).unwrap_err();
        assert!(matches!(err, SolcError::Run { .. }), "{err}");
        assert!(err.to_string().contains("/nonexistent/solc"), "{err}");
    }
}
