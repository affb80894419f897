//! solc provisioning: finds a solc for the sources' `pragma solidity`
//! requirements, installing one into nml's cache when none is at hand.
//!
//! The order: `NML_SOLC` (a path) wins; then a native `solc` on `PATH` whose
//! version satisfies the requirements (or equals the pin); else
//! `<cache>/solc/<version>/solc`, installed on first use from the npm package
//! `solc@<version>` and run through nml's Node shim (`solc-shim.js`), which
//! speaks the native command line that foundry-compilers drives.
//!
//! An install takes a file lock per version (parallel tests and builds each
//! provision), happens in a temporary directory that is renamed into place
//! (a killed install leaves no half cache), and a later call only checks the
//! cache: no npm, no network.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use nml_compiler::solc::{SolidityVersionReq, VersionReqError, satisfies_all};
use semver::Version;

/// The solc nml installs when the sources allow it: the newest 0.8 release
/// the npm registry serves.
pub const DEFAULT_VERSION: &str = "0.8.37";

/// `ETXTBSY` on Linux and the BSDs.
const ETXTBSY: i32 = 26;

/// The shim installed beside each npm solc.
const SHIM: &str = include_str!("solc-shim.js");

/// A solc ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SolcInstall {
    /// The executable (for an npm install, a `sh` wrapper around the shim).
    pub path: PathBuf,
    /// Its release, `major.minor.patch`.
    pub version: Version,
    /// The full version it reports, e.g. `0.8.37+commit.f401782d.Emscripten.clang`
    /// (for a cached install, the one recorded when it was installed).
    pub long_version: String,
    /// Where it came from.
    pub origin: Origin,
}

impl SolcInstall {
    /// The executable for the compiler, with its version known so that it is
    /// not asked again: the full version when it parses as semver (an npm
    /// solc's `0.8.37+commit.f401782d.Emscripten.clang` does; a native
    /// `…Linux.g++` does not), else the release.
    pub fn binary(&self) -> nml_compiler::solc::SolcBinary {
        let version = Version::parse(&self.long_version).unwrap_or_else(|_| self.version.clone());
        nml_compiler::solc::SolcBinary { path: self.path.clone(), version: Some(version) }
    }
}

/// Where a [`SolcInstall`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `NML_SOLC` environment variable.
    EnvOverride,
    /// A native `solc` on `PATH`.
    Path,
    /// nml's cache, installed earlier.
    Cache,
    /// nml's cache, installed by this call.
    Installed,
}

/// Why no solc could be provided. Every message says what to do by hand.
#[derive(Debug, thiserror::Error)]
pub enum ToolchainError {
    /// `NML_SOLC` does not name a working solc.
    #[error("NML_SOLC={} is not a usable solc: {reason}\nhelp: point NML_SOLC at a solc executable, or unset it to let nml find or install one", path.display())]
    BadOverride {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A `pragma solidity` requirement nml cannot read.
    #[error("{0}\nhelp: write the requirement as solc accepts it, e.g. `pragma solidity ^0.8.24;`")]
    BadRequirement(#[from] VersionReqError),
    /// The pinned version is not an exact version.
    #[error(
        "the solc version pinned in nml.toml, `{pin}`, is not an exact version\nhelp: pin a release such as solc = \"{DEFAULT_VERSION}\""
    )]
    BadPin {
        /// The pin as written.
        pin: String,
    },
    /// The pinned version contradicts a pragma.
    #[error(
        "nml.toml pins solc {pin}, but the sources require {}\nhelp: pin a version that satisfies every `pragma solidity`, or remove the pin",
        requirements.join(" and ")
    )]
    PinConflict {
        /// The pin.
        pin: Version,
        /// The sources' requirements.
        requirements: Vec<String>,
    },
    /// No release satisfies every requirement.
    #[error(
        "no solc release satisfies {} (newest on npm: {})\nhelp: relax the `pragma solidity` requirements, or install a matching solc on PATH or set NML_SOLC=/path/to/solc",
        requirements.join(" and "),
        newest.as_ref().map_or_else(|| "none".to_owned(), Version::to_string)
    )]
    NoMatchingVersion {
        /// The sources' requirements.
        requirements: Vec<String>,
        /// The newest release npm offered.
        newest: Option<Version>,
    },
    /// None of `NML_HOME`, `XDG_CACHE_HOME`, `HOME` is set.
    #[error(
        "nml has nowhere to install solc: none of NML_HOME, XDG_CACHE_HOME, HOME is set\nhelp: set NML_HOME=/some/dir, or install solc {version} on PATH, or set NML_SOLC=/path/to/solc"
    )]
    NoCacheDir {
        /// The version that would have been installed.
        version: String,
    },
    /// Looking up or installing solc from npm failed.
    #[error(
        "cannot install solc {version} from npm: {reason}\nhelp: install solc {version} on PATH (https://docs.soliditylang.org/en/latest/installing-solidity.html) or set NML_SOLC=/path/to/solc; nml's own install needs Node.js ≥ 18 and npm on PATH and access to the npm registry"
    )]
    Install {
        /// The version wanted (`0.8.x` while it is still being chosen).
        version: String,
        /// What failed.
        reason: String,
    },
}

/// Where to look for solc and where to install it. [`Resolver::from_env`]
/// reads the environment; tests build one by hand.
#[derive(Debug, Clone, Default)]
pub struct Resolver {
    /// A solc that wins over everything (`NML_SOLC`).
    pub env_override: Option<PathBuf>,
    /// The directories searched for a native `solc` (`PATH`); none when `None`.
    pub search_path: Option<OsString>,
    /// nml's cache directory (see [`super::cache_dir`]); npm installs go to
    /// `<cache_dir>/solc/<version>/`.
    pub cache_dir: Option<PathBuf>,
    /// Whether to draw a spinner on stderr while installing.
    pub progress: bool,
}

/// Finds or installs a solc for `requirements` (the `pragma solidity` values
/// of all sources, e.g. `^0.8.24`, `>=0.8.0 <0.9.0`) and `pinned` (an exact
/// version from `nml.toml`), reading `NML_SOLC`, `PATH` and the cache
/// location from the environment. `progress` draws a spinner on stderr while
/// installing.
pub fn resolve(requirements: &[String], pinned: Option<&str>, progress: bool) -> Result<SolcInstall, ToolchainError> {
    Resolver::from_env(progress).resolve(requirements, pinned)
}

impl Resolver {
    /// `NML_SOLC`, `PATH` and [`super::cache_dir`] from the environment.
    pub fn from_env(progress: bool) -> Self {
        Self {
            env_override: std::env::var_os("NML_SOLC").filter(|v| !v.is_empty()).map(PathBuf::from),
            search_path: std::env::var_os("PATH"),
            cache_dir: super::cache_dir(),
            progress,
        }
    }

    /// Finds or installs a solc; see [`resolve`].
    pub fn resolve(&self, requirements: &[String], pinned: Option<&str>) -> Result<SolcInstall, ToolchainError> {
        let reqs = requirements.iter().map(|r| SolidityVersionReq::parse(r)).collect::<Result<Vec<_>, _>>()?;
        let pin = pinned.map(parse_pin).transpose()?;
        if let Some(pin) = &pin
            && !satisfies_all(&reqs, pin)
        {
            return Err(ToolchainError::PinConflict { pin: pin.clone(), requirements: requirements.to_vec() });
        }
        let fits = |v: &Version| match &pin {
            Some(pin) => same_release(v, pin),
            None => satisfies_all(&reqs, v),
        };

        if let Some(path) = &self.env_override {
            let (version, long_version) =
                query_version(path).map_err(|reason| ToolchainError::BadOverride { path: path.clone(), reason })?;
            return Ok(SolcInstall { path: path.clone(), version, long_version, origin: Origin::EnvOverride });
        }
        if let Some(path) = self.search_path.as_deref().and_then(find_on_path)
            && let Ok((version, long_version)) = query_version(&path)
            && fits(&version)
        {
            return Ok(SolcInstall { path, version, long_version, origin: Origin::Path });
        }

        let Some(cache) = &self.cache_dir else {
            let version = pin.map_or_else(|| DEFAULT_VERSION.to_owned(), |p| p.to_string());
            return Err(ToolchainError::NoCacheDir { version });
        };
        let root = cache.join("solc");
        let version = match pin {
            Some(pin) => pin,
            None => self.choose_version(&root, &reqs, requirements)?,
        };
        self.ensure_installed(&root, &version)
    }

    /// The default if it fits, else the newest cached release that fits, else
    /// the newest release on npm that fits.
    fn choose_version(
        &self,
        root: &Path,
        reqs: &[SolidityVersionReq],
        texts: &[String],
    ) -> Result<Version, ToolchainError> {
        let default = Version::parse(DEFAULT_VERSION).expect("DEFAULT_VERSION is a version");
        if satisfies_all(reqs, &default) {
            return Ok(default);
        }
        if let Some(cached) = cached_versions(root).into_iter().filter(|v| satisfies_all(reqs, v)).max() {
            return Ok(cached);
        }
        let spinner = self.spinner("Looking up solc releases on npm");
        let available = npm_versions();
        spinner.finish_and_clear();
        let available = available?;
        pick_version(reqs, &available).ok_or_else(|| ToolchainError::NoMatchingVersion {
            requirements: texts.to_vec(),
            newest: available.into_iter().max(),
        })
    }

    /// Returns the cached install of `version`, installing it first if needed.
    fn ensure_installed(&self, root: &Path, version: &Version) -> Result<SolcInstall, ToolchainError> {
        let dir = root.join(version.to_string());
        if let Some(install) = cached_install(&dir, version) {
            return Ok(install);
        }
        let install_error = |reason: String| ToolchainError::Install { version: version.to_string(), reason };
        fs::create_dir_all(root).map_err(|e| install_error(format!("cannot create {}: {e}", root.display())))?;
        let lock_path = root.join(format!("{version}.lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| install_error(format!("cannot open {}: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            let spinner = self.spinner(&format!("Waiting for another nml to finish installing solc {version}"));
            let locked = lock.lock();
            spinner.finish_and_clear();
            locked.map_err(|e| install_error(format!("cannot lock {}: {e}", lock_path.display())))?;
        }
        // Someone else may have installed it while we waited.
        if let Some(install) = cached_install(&dir, version) {
            return Ok(install);
        }
        let started = Instant::now();
        let spinner = self.spinner(&format!("Installing solc {version} from npm"));
        let installed = install(root, &dir, version);
        spinner.finish_and_clear();
        let long_version = installed.map_err(install_error)?;
        if self.progress {
            eprintln!(
                "Installed solc {long_version} into {} in {:.1} s",
                dir.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(SolcInstall { path: dir.join("solc"), version: version.clone(), long_version, origin: Origin::Installed })
        // The lock is released when `lock` drops.
    }

    fn spinner(&self, message: &str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let spinner = ProgressBar::new_spinner().with_message(message.to_owned());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
            spinner.set_style(style);
        }
        spinner.enable_steady_tick(Duration::from_millis(100));
        spinner
    }
}

/// The newest of `available` that satisfies every requirement.
fn pick_version(reqs: &[SolidityVersionReq], available: &[Version]) -> Option<Version> {
    available.iter().filter(|v| v.pre.is_empty() && satisfies_all(reqs, v)).max().cloned()
}

fn parse_pin(pin: &str) -> Result<Version, ToolchainError> {
    let pin_text = pin.trim().trim_start_matches('=').trim_start_matches('v');
    Version::parse(pin_text).map_err(|_| ToolchainError::BadPin { pin: pin.to_owned() })
}

fn same_release(a: &Version, b: &Version) -> bool {
    (a.major, a.minor, a.patch) == (b.major, b.minor, b.patch)
}

/// The first `solc` on `path` that is an executable file.
fn find_on_path(path: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(path).map(|dir| dir.join("solc")).find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// Runs `<solc> --version` and reads the `Version:` line.
fn query_version(solc: &Path) -> Result<(Version, String), String> {
    let meta = fs::metadata(solc).map_err(|e| format!("cannot read it: {e}"))?;
    if !meta.is_file() {
        return Err("it is not a file".to_owned());
    }
    let run = || Command::new(solc).arg("--version").stdin(Stdio::null()).output();
    let mut output = run();
    // A file just written (a wrapper, a test's fake) can be briefly busy
    // while a concurrent fork still holds it open for writing.
    for _ in 0..5 {
        if !matches!(&output, Err(e) if e.raw_os_error() == Some(ETXTBSY)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
        output = run();
    }
    let output = output.map_err(|e| format!("cannot run it: {e}"))?;
    if !output.status.success() {
        return Err(format!("`{} --version` failed ({}): {}", solc.display(), output.status, tail(&output)));
    }
    parse_version_output(&String::from_utf8_lossy(&output.stdout))
        .ok_or_else(|| format!("`{} --version` printed no `Version: x.y.z` line", solc.display()))
}

/// Reads solc's `--version` output: `Version: 0.8.28+commit.7893614a.Linux.g++`.
fn parse_version_output(stdout: &str) -> Option<(Version, String)> {
    let long = stdout.lines().find_map(|l| l.trim().strip_prefix("Version:"))?.trim();
    let core = long.split(['+', '-']).next()?;
    let version = Version::parse(core).ok()?;
    Some((version, long.to_owned()))
}

/// The releases installed in the cache (complete installs only).
fn cached_versions(root: &Path) -> Vec<Version> {
    let Ok(entries) = fs::read_dir(root) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Version::parse(&e.file_name().to_string_lossy()).ok())
        .filter(|v| cached_install(&root.join(v.to_string()), v).is_some())
        .collect()
}

/// The install in `dir`, if it is complete. Installs are renamed into place
/// whole, so a complete directory stays complete.
fn cached_install(dir: &Path, version: &Version) -> Option<SolcInstall> {
    let path = dir.join("solc");
    if !path.is_file() || !dir.join("node_modules/solc/soljson.js").is_file() {
        return None;
    }
    let long_version = fs::read_to_string(dir.join("solc-version.txt")).ok()?.trim().to_owned();
    Some(SolcInstall { path, version: version.clone(), long_version, origin: Origin::Cache })
}

/// All releases of the npm package `solc`.
fn npm_versions() -> Result<Vec<Version>, ToolchainError> {
    let error = |reason: String| ToolchainError::Install { version: "0.8.x".to_owned(), reason };
    let output = Command::new("npm")
        .args(["view", "solc", "versions", "--json", "--no-update-notifier"])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| error(format!("cannot run npm: {e}")))?;
    if !output.status.success() {
        return Err(error(format!("`npm view solc versions` failed: {}", tail(&output))));
    }
    // npm prints a bare string instead of a list when there is one version.
    let json: serde_json::Value = serde_json::from_slice(&output.stdout)
        .map_err(|e| error(format!("`npm view solc versions --json` printed something else than JSON: {e}")))?;
    let texts = match json {
        serde_json::Value::Array(items) => items.into_iter().filter_map(|v| v.as_str().map(str::to_owned)).collect(),
        serde_json::Value::String(one) => vec![one],
        _ => Vec::new(),
    };
    Ok(texts.iter().filter_map(|t| Version::parse(t).ok()).collect())
}

/// Installs `solc@<version>` from npm into `dir` through a temporary sibling;
/// the caller holds the version's lock. Returns the full version.
fn install(root: &Path, dir: &Path, version: &Version) -> Result<String, String> {
    // Leftovers of killed installs of this version (we hold its lock, so no
    // live install owns them).
    let stale_prefix = format!(".tmp-{version}-");
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_name().to_string_lossy().starts_with(&stale_prefix) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let tmp = root.join(format!("{stale_prefix}{}", std::process::id()));
    let result = install_into(&tmp, dir, version).and_then(|long_version| {
        if dir.exists() {
            // An incomplete directory not made by nml (complete ones were
            // returned before taking the lock).
            fs::remove_dir_all(dir).map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
        }
        fs::rename(&tmp, dir).map_err(|e| format!("cannot move {} to {}: {e}", tmp.display(), dir.display()))?;
        Ok(long_version)
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn install_into(tmp: &Path, dir: &Path, version: &Version) -> Result<String, String> {
    fs::create_dir_all(tmp).map_err(|e| format!("cannot create {}: {e}", tmp.display()))?;
    let node = Command::new("node").arg("--version").stdin(Stdio::null()).output();
    if !node.as_ref().is_ok_and(|o| o.status.success()) {
        return Err("Node.js is not installed (no working `node` on PATH)".to_owned());
    }
    let npm = Command::new("npm")
        .arg("install")
        .arg("--prefix")
        .arg(tmp)
        .args(["--no-audit", "--no-fund", "--no-update-notifier", "--ignore-scripts", "--loglevel=error"])
        .arg(format!("solc@{version}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run npm: {e}"))?;
    if !npm.status.success() {
        return Err(format!("`npm install solc@{version}` failed: {}", tail(&npm)));
    }
    let shim = tmp.join("solc-shim.js");
    fs::write(&shim, SHIM).map_err(|e| format!("cannot write {}: {e}", shim.display()))?;
    // The wrapper names the final location: it only runs after the rename.
    let wrapper = tmp.join("solc");
    let script = format!("#!/bin/sh\nexec node {} \"$@\"\n", shell_quote(&dir.join("solc-shim.js")));
    fs::write(&wrapper, script).map_err(|e| format!("cannot write {}: {e}", wrapper.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&wrapper, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("cannot make {} executable: {e}", wrapper.display()))?;
    }
    // Ask the compiler itself, which also proves the install works.
    let check = Command::new("node")
        .arg(&shim)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    let (got, long_version) = parse_version_output(&String::from_utf8_lossy(&check.stdout))
        .ok_or_else(|| format!("the installed compiler does not start: {}", tail(&check)))?;
    if !same_release(&got, version) {
        return Err(format!("npm installed solc {got} instead of {version}"));
    }
    let record = tmp.join("solc-version.txt");
    fs::write(&record, format!("{long_version}\n")).map_err(|e| format!("cannot write {}: {e}", record.display()))?;
    Ok(long_version)
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.to_string_lossy().replace('\'', r"'\''"))
}

/// The last lines of a failed command's stderr (or stdout), for an error.
fn tail(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr);
    let text = if stderr.trim().is_empty() { String::from_utf8_lossy(&output.stdout) } else { stderr };
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reqs(texts: &[&str]) -> Vec<SolidityVersionReq> {
        texts.iter().map(|t| t.parse().unwrap()).collect()
    }

    fn versions(texts: &[&str]) -> Vec<Version> {
        texts.iter().map(|t| Version::parse(t).unwrap()).collect()
    }

    #[test]
    fn version_output_of_native_and_shim() {
        let (v, long) = parse_version_output(
            "solc, the solidity compiler commandline interface\nVersion: 0.8.28+commit.7893614a.Linux.g++\n",
        )
        .unwrap();
        assert_eq!((v, long.as_str()), (Version::new(0, 8, 28), "0.8.28+commit.7893614a.Linux.g++"));
        let (v, _) = parse_version_output("Version: 0.8.37+commit.f401782d.Emscripten.clang").unwrap();
        assert_eq!(v, Version::new(0, 8, 37));
        assert!(parse_version_output("solcjs 0.8.37").is_none());
    }

    #[test]
    fn picks_the_newest_release_that_fits() {
        let available = versions(&["0.8.19", "0.8.20", "0.8.29", "0.8.30", "0.8.37", "0.9.0-nightly.1"]);
        assert_eq!(pick_version(&reqs(&["^0.8.20", "<0.8.30"]), &available), Some(Version::new(0, 8, 29)));
        assert_eq!(pick_version(&reqs(&[]), &available), Some(Version::new(0, 8, 37)));
        assert_eq!(pick_version(&reqs(&["^0.9.0"]), &available), None);
    }

    #[test]
    fn default_is_taken_without_asking_npm() {
        let dir = tempfile::tempdir().unwrap();
        let resolver = Resolver::default();
        let v = resolver.choose_version(dir.path(), &reqs(&["^0.8.24", ">=0.8.0 <0.9.0"]), &[]).unwrap();
        assert_eq!(v.to_string(), DEFAULT_VERSION);
    }

    #[test]
    fn pins_are_exact_and_must_fit() {
        assert_eq!(parse_pin("0.8.28").unwrap(), Version::new(0, 8, 28));
        assert_eq!(parse_pin("=0.8.28").unwrap(), Version::new(0, 8, 28));
        assert!(matches!(parse_pin("^0.8.28"), Err(ToolchainError::BadPin { .. })));
        let err = Resolver::default().resolve(&["^0.8.24".to_owned()], Some("0.8.20")).unwrap_err();
        assert!(matches!(err, ToolchainError::PinConflict { .. }), "{err}");
        assert!(err.to_string().contains("pins solc 0.8.20") && err.to_string().contains("^0.8.24"), "{err}");
    }

    #[test]
    fn bad_requirements_are_reported() {
        let err = Resolver::default().resolve(&["^banana".to_owned()], None).unwrap_err();
        assert!(matches!(err, ToolchainError::BadRequirement(_)), "{err}");
    }

    #[test]
    fn no_cache_dir_says_what_to_set() {
        let err = Resolver::default().resolve(&[], None).unwrap_err();
        assert!(err.to_string().contains("NML_HOME") && err.to_string().contains("NML_SOLC=/path/to/solc"), "{err}");
    }

    #[test]
    fn wrapper_paths_are_quoted() {
        assert_eq!(shell_quote(Path::new("/a b/it's")), r"'/a b/it'\''s'");
    }
}
