//! Helpers shared by the end-to-end tests and the benches: copying a project
//! and building it with the real compiler and solc.
#![allow(dead_code, unreachable_pub)]

pub mod kserve;
pub mod node;
pub mod openai_double;

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::Command;

use alloy_primitives::Bytes;
use nml::commands::common::solc_for;
use nml_compiler::Frontend;
use nml_compiler::project::Project;

/// Copies a project, following links (the examples link the templates) and
/// leaving out build outputs.
pub fn copy_project(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir").flatten() {
        let name = entry.file_name();
        if name == "out" || name == "cache" {
            continue;
        }
        let target = to.join(&name);
        if std::fs::metadata(entry.path()).is_ok_and(|m| m.is_dir()) {
            copy_project(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// Builds a copy of `project` (with its tests when `tests`) and returns the
/// copy and the creation bytecode of each of `contracts`.
pub fn build(project: &Path, tests: bool, contracts: &[&str]) -> (tempfile::TempDir, Vec<Bytes>) {
    build_field(project, tests, contracts, "bytecode")
}

/// [`build`], returning each contract's runtime bytecode (`deployedBytecode`).
pub fn build_runtime(project: &Path, contracts: &[&str]) -> (tempfile::TempDir, Vec<Bytes>) {
    build_field(project, false, contracts, "deployedBytecode")
}

fn build_field(project: &Path, tests: bool, contracts: &[&str], field: &str) -> (tempfile::TempDir, Vec<Bytes>) {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_project(project, dir.path());
    let opened = if tests { Project::open_with_tests(dir.path()) } else { Project::open(dir.path()) };
    let fe = Frontend::run(opened.expect("open project"));
    let out = nml_compiler::build::build(&fe, &|| solc_for(&fe)).expect("build runs");
    assert!(!out.has_errors(), "build failed: {:#?}", out.diagnostics);
    let codes = contracts
        .iter()
        .map(|contract| {
            let unit = out.contracts.iter().find(|(_, c)| c == contract).expect("contract built");
            let artifact = nml_compiler::solc::artifact_path(&fe.project.out_dir(), &unit.0, contract);
            let json: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&artifact).expect("artifact")).expect("json");
            let hex = json[field]["object"].as_str().expect("bytecode object");
            alloy_primitives::hex::decode(hex).expect("hex bytecode").into()
        })
        .collect();
    (dir, codes)
}

/// `target/client-deps`: where tests install the clients and servers they
/// run (npm and PyPI packages), each under a file lock, reused by later runs.
pub fn deps_dir() -> PathBuf {
    // The test binary is target/<profile>/deps/<name>.
    let exe = std::env::current_exe().expect("the test binary's path");
    let target = exe.ancestors().nth(3).map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("client-deps");
    fs::create_dir_all(&dir).expect("creating target/client-deps");
    dir
}

/// Runs `cmd` and fails the test with its output when it fails.
pub fn run_checked(cmd: &mut Command, what: &str) {
    let output = cmd.output().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Installs `what` once into `dir` with `install`, under a lock; `marker`
/// records success so later runs only check it.
pub fn provision(dir: &Path, marker: &str, install: impl FnOnce(&Path)) {
    let lock = File::create(dir.with_extension("lock")).expect("lock file");
    lock.lock().expect("locking the client cache");
    if !dir.join(marker).exists() {
        let _ = fs::remove_dir_all(dir);
        fs::create_dir_all(dir).expect("cache dir");
        install(dir);
        fs::write(dir.join(marker), b"").expect("marker");
    }
}
