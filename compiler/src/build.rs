//! `nml build`: the front end, then one solc call for every source, with a
//! content-hash cache so that a rebuild of unchanged sources never starts solc.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::diagnostics::{Diagnostic, Severity};
use crate::solc::{self, SolcJob, artifact_path, manifest_path};
use crate::{Frontend, gen_path};

/// Where the build cache lives, relative to the project root.
pub const CACHE_FILE: &str = "cache/nml-build.json";

/// What a build did.
#[derive(Debug)]
pub struct BuildOutput {
    /// All diagnostics: the front end's, then solc's mapped to `.nml` spans.
    pub diagnostics: Vec<Diagnostic>,
    /// `(source unit, contract)` of every artifact written or up to date.
    pub contracts: Vec<(String, String)>,
    /// True when nothing changed and solc was not started.
    pub up_to_date: bool,
    /// Time spent in solc (zero when up to date).
    pub solc_time: Duration,
    /// Total time.
    pub total_time: Duration,
}

impl BuildOutput {
    /// Whether the build failed.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Why a build could not run (as opposed to diagnostics in the sources).
/// `E` is the error of the caller's solc resolver, kept whole.
#[derive(Debug, thiserror::Error)]
pub enum BuildError<E> {
    /// No solc could be found or installed: the resolver's error.
    #[error(transparent)]
    Toolchain(E),
    /// solc failed to run.
    #[error(transparent)]
    Solc(#[from] solc::SolcError),
    /// Writing outputs failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct CacheRecord {
    fingerprint: String,
    contracts: Vec<(String, String)>,
}

/// Builds the project of `fe`. `resolve_solc` is called only when solc must
/// run, so a no-op rebuild costs neither a solc start nor a toolchain lookup;
/// its error comes back as [`BuildError::Toolchain`].
pub fn build<E: std::error::Error + 'static>(
    fe: &Frontend,
    resolve_solc: &dyn Fn() -> Result<solc::SolcBinary, E>,
) -> Result<BuildOutput, BuildError<E>> {
    let started = Instant::now();
    let mut diagnostics = fe.diagnostics.clone();
    if fe.has_errors() {
        return Ok(BuildOutput {
            diagnostics,
            contracts: Vec::new(),
            up_to_date: false,
            solc_time: Duration::ZERO,
            total_time: started.elapsed(),
        });
    }
    let root = &fe.project.root;
    let out_dir = fe.project.out_dir();
    let job = job(fe);
    let pins = format!(
        "{}|{}",
        fe.project.solidity_pragmas().join(";"),
        fe.project.config.project.solc.as_deref().unwrap_or("")
    );
    let fingerprint = solc::fingerprint(&job, &pins);
    let cache_path = root.join(CACHE_FILE);
    if let Some(record) = read_cache(&cache_path)
        && record.fingerprint == fingerprint
        && record.contracts.iter().all(|(unit, name)| artifact_path(&out_dir, unit, name).is_file())
    {
        return Ok(BuildOutput {
            diagnostics,
            contracts: record.contracts,
            up_to_date: true,
            solc_time: Duration::ZERO,
            total_time: started.elapsed(),
        });
    }

    write_generated(fe, &out_dir)?;
    let solc = resolve_solc().map_err(BuildError::Toolchain)?;
    let solc_started = Instant::now();
    let output = solc::compile(&solc, &job)?;
    let solc_time = solc_started.elapsed();

    diagnostics.extend(solc_diagnostics(fe, &output));
    let failed = diagnostics.iter().any(|d| d.severity == Severity::Error);
    let mut contracts = Vec::new();
    if !failed {
        let written = solc::write_artifacts(&out_dir, &output)
            .map_err(|source| BuildError::Io { path: out_dir.clone(), source })?;
        contracts = written;
        write_manifests(fe, &out_dir)?;
        let record = CacheRecord { fingerprint, contracts: contracts.clone() };
        write_atomic(&cache_path, &serde_json::to_vec_pretty(&record).unwrap_or_default())?;
    }
    Ok(BuildOutput { diagnostics, contracts, up_to_date: false, solc_time, total_time: started.elapsed() })
}

/// A build for `nml coverage`: nothing under `out/` and not `nml build`'s
/// cache changes, so the next `nml build` finds its own artifacts; it is
/// kept in a cache of its own ([`COVERAGE_CACHE_FILE`]) for the next
/// `nml coverage` of the same sources.
#[derive(Debug)]
pub struct CoverageBuild {
    /// All diagnostics: the front end's, then solc's mapped to `.nml` spans.
    pub diagnostics: Vec<Diagnostic>,
    /// solc's artifacts and every source's id and AST (empty on errors).
    pub output: solc::SolcOutput,
}

impl CoverageBuild {
    /// Whether the build failed.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Compiles the project of `fe` for coverage: the project's settings but
/// with the optimizer off (it merges and moves the code of statements, so
/// that an instruction would no longer say which line it runs for), and
/// every source's AST, from which the lines, statements, branches and
/// functions that coverage counts are read (`crate::coverage`).
pub fn build_for_coverage<E: std::error::Error + 'static>(
    fe: &Frontend,
    resolve_solc: &dyn Fn() -> Result<solc::SolcBinary, E>,
) -> Result<CoverageBuild, BuildError<E>> {
    let mut diagnostics = fe.diagnostics.clone();
    let empty = || solc::SolcOutput {
        solc_version: String::new(),
        contracts: Vec::new(),
        diagnostics: Vec::new(),
        sources: Default::default(),
    };
    if fe.has_errors() {
        return Ok(CoverageBuild { diagnostics, output: empty() });
    }
    let job = SolcJob { optimizer_runs: None, ast: true, ..job(fe) };
    let pins = format!(
        "{}|{}",
        fe.project.solidity_pragmas().join(";"),
        fe.project.config.project.solc.as_deref().unwrap_or("")
    );
    let fingerprint = solc::fingerprint(&job, &pins);
    let cache_path = fe.project.root.join(COVERAGE_CACHE_FILE);
    if let Some(cached) = std::fs::read(&cache_path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<CoverageCache>(&bytes).ok())
        .filter(|cached| cached.fingerprint == fingerprint)
    {
        let output = solc::SolcOutput {
            solc_version: cached.solc_version,
            contracts: cached.contracts,
            diagnostics: Vec::new(),
            sources: cached.sources,
        };
        return Ok(CoverageBuild { diagnostics, output });
    }
    let solc = resolve_solc().map_err(BuildError::Toolchain)?;
    let mut output = solc::compile(&solc, &job)?;
    diagnostics.extend(solc_diagnostics(fe, &output));
    if diagnostics.iter().any(Diagnostic::is_error) {
        output.contracts.clear();
        return Ok(CoverageBuild { diagnostics, output });
    }
    // Each artifact carries its file's AST too: `sources` has them once.
    for contract in &mut output.contracts {
        contract.artifact.ast = None;
    }
    // The standard library's ASTs are large and never covered: not kept.
    let sources = output
        .sources
        .iter()
        .map(|(unit, source)| {
            let ast = if unit.starts_with('@') { None } else { source.ast.clone() };
            (unit.clone(), solc::CompiledSource { id: source.id, ast })
        })
        .collect();
    let cache = CoverageCache {
        fingerprint,
        solc_version: output.solc_version.clone(),
        contracts: output.contracts.clone(),
        sources,
    };
    write_atomic(&cache_path, &serde_json::to_vec(&cache).unwrap_or_default())?;
    Ok(CoverageBuild { diagnostics, output })
}

/// Where the coverage build is kept, relative to the project root.
pub const COVERAGE_CACHE_FILE: &str = "cache/nml-coverage.json";

/// The last coverage build, for the next with the same fingerprint.
#[derive(Debug, Serialize, Deserialize)]
struct CoverageCache {
    fingerprint: String,
    solc_version: String,
    contracts: Vec<solc::Artifact>,
    sources: std::collections::BTreeMap<String, solc::CompiledSource>,
}

/// The solc job of the project of `fe`, as `nml build` runs it.
fn job(fe: &Frontend) -> SolcJob {
    let config = &fe.project.config.project;
    SolcJob {
        sources: fe.solc_sources(),
        optimizer_runs: config.optimizer_runs,
        evm_version: config.evm_version.clone(),
        via_ir: config.via_ir,
        remappings: config.remappings.clone(),
        base_path: Some(fe.project.root.clone()),
        ast: false,
    }
}

/// solc's diagnostics, mapped to the `.nml` spans they come from.
fn solc_diagnostics(fe: &Frontend, output: &solc::SolcOutput) -> Vec<Diagnostic> {
    output
        .diagnostics
        .iter()
        .map(|d| {
            let span = d.start.zip(d.end);
            let unit = d.source.as_deref().unwrap_or("");
            fe.map_diagnostic(unit, span, d.severity, &d.diagnostic_code(), d.message.clone())
        })
        .collect()
}

fn read_cache(path: &Path) -> Option<CacheRecord> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

fn write_generated<E>(fe: &Frontend, out_dir: &Path) -> Result<(), BuildError<E>> {
    for unit in &fe.units {
        if !unit.unit_name.ends_with(".nml") {
            continue;
        }
        let path = out_dir.join("gen").join(gen_path(&unit.unit_name));
        let header = format!(
            "// Generated by nml {} from {}; solc compiles it as `{}`. Do not edit.\n",
            env!("CARGO_PKG_VERSION"),
            unit.unit_name,
            unit.unit_name
        );
        write_atomic(&path, format!("{header}{}", unit.text).as_bytes())?;
        let map = serde_json::to_vec(&unit.map).unwrap_or_default();
        write_atomic(&path.with_extension("sol.map.json"), &map)?;
    }
    Ok(())
}

fn write_manifests<E>(fe: &Frontend, out_dir: &Path) -> Result<(), BuildError<E>> {
    for m in &fe.manifests {
        let json = serde_json::to_vec_pretty(m).unwrap_or_default();
        write_atomic(&manifest_path(out_dir, &m.source, &m.contract), &json)?;
    }
    Ok(())
}

/// Writes a file atomically (see [`solc::write_atomic`]), naming it on error.
fn write_atomic<E>(path: &Path, bytes: &[u8]) -> Result<(), BuildError<E>> {
    solc::write_atomic(path, bytes).map_err(|source| BuildError::Io { path: path.to_owned(), source })
}
