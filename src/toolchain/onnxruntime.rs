//! ONNX Runtime provisioning: finds the `libonnxruntime` shared library the
//! devnet's executor loads, installing it into nml's cache when none is given.
//!
//! The order: `ORT_DYLIB_PATH` (a path to the library) wins; else
//! `<cache>/onnxruntime/<VERSION>/<library>`, installed on first use from the
//! `onnxruntime` wheel on PyPI: `pip download --no-deps --only-binary=:all:
//! onnxruntime==<VERSION>` into a temporary directory, then the library is
//! taken out of the wheel (a zip) with Python's `zipfile`.
//!
//! As for solc, an install takes a file lock (parallel tests and builds each
//! provision), happens in a temporary directory that is renamed into place (a
//! killed install leaves no half cache), and a later call only checks the
//! cache: no pip, no network. The tests of the runtime provision through this
//! same code.

use std::ffi::OsString;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// The ONNX Runtime release nml installs (the executor needs 1.24 or newer).
pub const VERSION: &str = "1.31.1";

/// The library's file name in the wheel and in the cache.
#[cfg(target_os = "macos")]
pub const LIBRARY: &str = "libonnxruntime.1.31.1.dylib";
/// The library's file name in the wheel and in the cache.
#[cfg(not(target_os = "macos"))]
pub const LIBRARY: &str = "libonnxruntime.so.1.31.1";

/// A library ready to load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnnxRuntimeInstall {
    /// The shared library.
    pub path: PathBuf,
    /// Where it came from.
    pub origin: Origin,
}

/// Where an [`OnnxRuntimeInstall`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The `ORT_DYLIB_PATH` environment variable.
    EnvOverride,
    /// nml's cache, installed earlier.
    Cache,
    /// nml's cache, installed by this call.
    Installed,
}

/// Why no ONNX Runtime could be provided. Every message says what to do by hand.
#[derive(Debug, thiserror::Error)]
pub enum OnnxRuntimeError {
    /// `ORT_DYLIB_PATH` does not name a file.
    #[error("ORT_DYLIB_PATH={} is not a usable ONNX Runtime library: {reason}\nhelp: point ORT_DYLIB_PATH at libonnxruntime (1.24 or newer), or unset it to let nml install ONNX Runtime {VERSION}", path.display())]
    BadOverride {
        /// The path given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// None of `NML_HOME`, `XDG_CACHE_HOME`, `HOME` is set.
    #[error(
        "nml has nowhere to install ONNX Runtime: none of NML_HOME, XDG_CACHE_HOME, HOME is set\nhelp: set NML_HOME=/some/dir, or set ORT_DYLIB_PATH=/path/to/{LIBRARY}"
    )]
    NoCacheDir,
    /// Downloading or extracting the wheel failed.
    #[error(
        "cannot install ONNX Runtime {VERSION} from PyPI: {reason}\nhelp: install it by hand with `pip install onnxruntime=={VERSION}` and set ORT_DYLIB_PATH=<site-packages>/onnxruntime/capi/{LIBRARY}; nml's own install needs python3 with pip on PATH and access to PyPI"
    )]
    Install {
        /// What failed.
        reason: String,
    },
}

/// Where to look for the library and where to install it.
/// [`Resolver::from_env`] reads the environment; tests build one by hand.
#[derive(Debug, Clone)]
pub struct Resolver {
    /// A library that wins over the cache (`ORT_DYLIB_PATH`).
    pub env_override: Option<PathBuf>,
    /// nml's cache directory (see [`super::cache_dir`]); installs go to
    /// `<cache_dir>/onnxruntime/<VERSION>/`.
    pub cache_dir: Option<PathBuf>,
    /// The Python that runs pip and zipfile.
    pub python: OsString,
    /// Whether to draw a spinner on stderr while installing.
    pub progress: bool,
}

/// Finds or installs ONNX Runtime, reading `ORT_DYLIB_PATH` and the cache
/// location from the environment. `progress` draws a spinner on stderr while
/// installing.
pub fn resolve(progress: bool) -> Result<OnnxRuntimeInstall, OnnxRuntimeError> {
    Resolver::from_env(progress).resolve()
}

impl Resolver {
    /// `ORT_DYLIB_PATH` and [`super::cache_dir`] from the environment; `python3`.
    pub fn from_env(progress: bool) -> Self {
        Self {
            env_override: std::env::var_os("ORT_DYLIB_PATH").filter(|v| !v.is_empty()).map(PathBuf::from),
            cache_dir: super::cache_dir(),
            python: OsString::from("python3"),
            progress,
        }
    }

    /// Finds or installs the library; see [`resolve`].
    pub fn resolve(&self) -> Result<OnnxRuntimeInstall, OnnxRuntimeError> {
        if let Some(path) = &self.env_override {
            return match fs::metadata(path) {
                Ok(meta) if meta.is_file() => {
                    Ok(OnnxRuntimeInstall { path: path.clone(), origin: Origin::EnvOverride })
                }
                Ok(_) => {
                    Err(OnnxRuntimeError::BadOverride { path: path.clone(), reason: "it is not a file".to_owned() })
                }
                Err(e) => {
                    Err(OnnxRuntimeError::BadOverride { path: path.clone(), reason: format!("cannot read it: {e}") })
                }
            };
        }
        let root = self.cache_dir.as_ref().ok_or(OnnxRuntimeError::NoCacheDir)?.join("onnxruntime");
        let dir = root.join(VERSION);
        if let Some(path) = cached(&dir) {
            return Ok(OnnxRuntimeInstall { path, origin: Origin::Cache });
        }
        let install_error = |reason: String| OnnxRuntimeError::Install { reason };
        fs::create_dir_all(&root).map_err(|e| install_error(format!("cannot create {}: {e}", root.display())))?;
        let lock_path = root.join(format!("{VERSION}.lock"));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| install_error(format!("cannot open {}: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            let spinner = self.spinner(&format!("Waiting for another nml to finish installing ONNX Runtime {VERSION}"));
            let locked = lock.lock();
            spinner.finish_and_clear();
            locked.map_err(|e| install_error(format!("cannot lock {}: {e}", lock_path.display())))?;
        }
        // Someone else may have installed it while we waited.
        if let Some(path) = cached(&dir) {
            return Ok(OnnxRuntimeInstall { path, origin: Origin::Cache });
        }
        let started = Instant::now();
        let spinner = self.spinner(&format!("Installing ONNX Runtime {VERSION} from PyPI"));
        let installed = install(&self.python, &root, &dir);
        spinner.finish_and_clear();
        installed.map_err(install_error)?;
        if self.progress {
            eprintln!(
                "Installed ONNX Runtime {VERSION} into {} in {:.1} s",
                dir.display(),
                started.elapsed().as_secs_f64()
            );
        }
        Ok(OnnxRuntimeInstall { path: dir.join(LIBRARY), origin: Origin::Installed })
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

/// The library in `dir`, if the install is complete. Installs are renamed
/// into place whole, so a present library is a complete one.
fn cached(dir: &Path) -> Option<PathBuf> {
    let path = dir.join(LIBRARY);
    fs::metadata(&path).is_ok_and(|m| m.is_file() && m.len() > 0).then_some(path)
}

/// Installs the library into `dir` through a temporary sibling; the caller
/// holds the version's lock.
fn install(python: &OsString, root: &Path, dir: &Path) -> Result<(), String> {
    // Leftovers of killed installs (we hold the lock, so no live install owns them).
    let stale_prefix = format!(".tmp-{VERSION}-");
    if let Ok(entries) = fs::read_dir(root) {
        for entry in entries.filter_map(|e| e.ok()) {
            if entry.file_name().to_string_lossy().starts_with(&stale_prefix) {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let tmp = root.join(format!("{stale_prefix}{}", std::process::id()));
    let result = install_into(python, &tmp).and_then(|()| {
        if dir.exists() {
            // An incomplete directory not made by nml.
            fs::remove_dir_all(dir).map_err(|e| format!("cannot replace {}: {e}", dir.display()))?;
        }
        fs::rename(&tmp, dir).map_err(|e| format!("cannot move {} to {}: {e}", tmp.display(), dir.display()))
    });
    if result.is_err() {
        let _ = fs::remove_dir_all(&tmp);
    }
    result
}

fn install_into(python: &OsString, tmp: &Path) -> Result<(), String> {
    let wheels = tmp.join("wheel");
    fs::create_dir_all(&wheels).map_err(|e| format!("cannot create {}: {e}", wheels.display()))?;
    let pip = Command::new(python)
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--disable-pip-version-check",
            "--no-input",
        ])
        .arg("--dest")
        .arg(&wheels)
        .arg(format!("onnxruntime=={VERSION}"))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {} -m pip: {e}", python.to_string_lossy()))?;
    if !pip.status.success() {
        return Err(format!("`pip download onnxruntime=={VERSION}` failed: {}", tail(&pip)));
    }
    let wheel = fs::read_dir(&wheels)
        .map_err(|e| format!("cannot read {}: {e}", wheels.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "whl"))
        .ok_or_else(|| format!("pip downloaded no wheel into {}", wheels.display()))?;
    let library = tmp.join(LIBRARY);
    let member = format!("onnxruntime/capi/{LIBRARY}");
    let extract = Command::new(python)
        .args([
            "-c",
            "import sys, zipfile; open(sys.argv[3], 'wb').write(zipfile.ZipFile(sys.argv[1]).read(sys.argv[2]))",
        ])
        .arg(&wheel)
        .arg(&member)
        .arg(&library)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.to_string_lossy()))?;
    if !extract.status.success() {
        return Err(format!("cannot take {member} out of {}: {}", wheel.display(), tail(&extract)));
    }
    fs::remove_dir_all(&wheels).map_err(|e| format!("cannot remove {}: {e}", wheels.display()))?;
    match fs::metadata(&library) {
        Ok(meta) if meta.len() > 0 => Ok(()),
        _ => Err(format!("{member} is empty in {}", wheel.display())),
    }
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

    fn resolver(cache_dir: Option<PathBuf>) -> Resolver {
        Resolver { env_override: None, cache_dir, python: OsString::from("python3"), progress: false }
    }

    #[test]
    fn the_override_wins_and_must_be_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let library = dir.path().join("libonnxruntime.so");
        fs::write(&library, b"\x7fELF").unwrap();
        let found = Resolver { env_override: Some(library.clone()), ..resolver(None) }.resolve().unwrap();
        assert_eq!(found, OnnxRuntimeInstall { path: library, origin: Origin::EnvOverride });

        let err = Resolver { env_override: Some(dir.path().to_path_buf()), ..resolver(None) }.resolve().unwrap_err();
        assert!(matches!(err, OnnxRuntimeError::BadOverride { .. }), "{err}");
        assert!(err.to_string().contains("ORT_DYLIB_PATH=") && err.to_string().contains("not a file"), "{err}");
    }

    #[test]
    fn a_complete_cache_is_used_without_pip() {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("onnxruntime").join(VERSION);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(LIBRARY), b"\x7fELF").unwrap();
        // A Python that does not exist proves pip is not run.
        let resolver =
            Resolver { python: OsString::from("/nonexistent/python3"), ..resolver(Some(cache.path().to_path_buf())) };
        assert_eq!(resolver.resolve().unwrap(), OnnxRuntimeInstall { path: dir.join(LIBRARY), origin: Origin::Cache });
    }

    #[test]
    fn a_failed_install_says_what_to_install_by_hand_and_leaves_no_cache() {
        let cache = tempfile::tempdir().unwrap();
        let resolver =
            Resolver { python: OsString::from("/nonexistent/python3"), ..resolver(Some(cache.path().to_path_buf())) };
        let err = resolver.resolve().unwrap_err().to_string();
        assert!(err.contains("pip install onnxruntime==1.31.1") && err.contains("ORT_DYLIB_PATH="), "{err}");
        let root = cache.path().join("onnxruntime");
        let left: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(left, vec![OsString::from(format!("{VERSION}.lock"))]);
    }

    #[test]
    fn no_cache_dir_says_what_to_set() {
        let err = resolver(None).resolve().unwrap_err().to_string();
        assert!(err.contains("NML_HOME") && err.contains("ORT_DYLIB_PATH="), "{err}");
    }
}
