//! `nml test` speed (`cargo bench --bench test_runner`):
//!
//! - the wall time of `nml test` (the release binary: build, ONNX Runtime
//!   start, every test) on every example: the first run on a fresh copy
//!   (solc compiles) and the median of three more (the build cache skips solc);
//! - the runner's own overhead per test: 200 empty tests (no inference, a
//!   few hundred gas of EVM), each forked from the post-`setUp` chain,
//!   signed, pooled, simulated, mined and read back; median and p90 of the
//!   per-test times, with 1 job and with the cores;
//! - a fuzz test's runs: one test with three parameters run 256 times (each
//!   run a fork, a transaction, a receipt, as a unit test), per run against
//!   the empty unit tests' per test, in the same run;
//! - an invariant test's calls: 64 runs of 16 calls to a counter (each call a
//!   transaction and a receipt, each followed by the invariant's `eth_call`),
//!   per call against the empty unit tests' per test, in the same run;
//! - `nml coverage` against `nml test` on every example (medians of 3,
//!   alternating), and the coverage build alone (solc without the optimizer,
//!   with ASTs: it is not cached). `NML_BENCH_COVERAGE_ONLY=1` runs this
//!   table alone.
//!
//! Prints markdown tables for docs/benchmarks.md.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nml::commands::common::solc_for;
use nml_compiler::Frontend;
use nml_compiler::project::Project;
use nml_runtime::inference::{OnnxConfig, OnnxExecutor};
use nml_runtime::node::InferenceSetup;
use nml_runtime::testing::{self, RunConfig, TestContract};
use nml_runtime::{Devnet, DevnetConfig, Mining};

#[path = "../tests/common/mod.rs"]
mod common;

const EMPTY_TESTS: usize = 200;
const FUZZ_RUNS: u32 = 256;
const INVARIANT_RUNS: u32 = 64;
const INVARIANT_DEPTH: u32 = 16;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&examples)
        .expect("examples/")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    if std::env::var_os("NML_BENCH_COVERAGE_ONLY").is_some() {
        coverage_table(&examples, &names);
        return;
    }

    println!("| example | tests | `nml test`, first run (solc builds) | `nml test`, build cached (median of 3) |");
    println!("| --- | --- | --- | --- |");
    for name in &names {
        let (tests, cold, warm) = nml_test_wall(&examples.join(name));
        println!("| {name} | {tests} | {:.0} ms | {:.0} ms |", cold.as_secs_f64() * 1e3, warm.as_secs_f64() * 1e3);
    }

    let contract = empty_tests();
    let library = nml::toolchain::onnxruntime::resolve(true).unwrap_or_else(|e| panic!("{e}")).path;
    let executor = Arc::new(OnnxExecutor::new(OnnxConfig::new(library)).unwrap_or_else(|e| panic!("{e}")));
    let setup = InferenceSetup::new(executor);
    let devnet = || {
        Devnet::with_inference(
            DevnetConfig { chain: testing::test_chain(), mining: Mining::Auto, state_file: None, fork: None },
            setup.clone(),
        )
    };
    let mut unit_medians = Vec::new();
    println!();
    println!("| {EMPTY_TESTS} empty tests | jobs | wall | per test, median (p90) |");
    println!("| --- | --- | --- | --- |");
    for jobs in [1, cores] {
        let mut per_test = Vec::new();
        let mut walls = Vec::new();
        for _ in 0..3 {
            let started = Instant::now();
            let results = testing::run(
                std::slice::from_ref(&contract),
                &|_, _| true,
                &devnet,
                &RunConfig { jobs, ..RunConfig::default() },
            );
            walls.push(started.elapsed());
            assert_eq!(results.len(), EMPTY_TESTS);
            assert!(results.iter().all(|r| r.passed()));
            per_test.extend(results.iter().map(|r| r.duration));
        }
        walls.sort();
        per_test.sort();
        unit_medians.push(per_test[per_test.len() / 2]);
        println!(
            "| {EMPTY_TESTS} | {jobs} | {:.0} ms | {:.0} µs ({:.0} µs) |",
            walls[1].as_secs_f64() * 1e3,
            per_test[per_test.len() / 2].as_secs_f64() * 1e6,
            per_test[per_test.len() * 9 / 10].as_secs_f64() * 1e6
        );
    }

    let fuzzed = contract_with(
        "FuzzTest",
        "    function testFuzz(uint256 a, address b, bytes calldata c) public { x = a % 1000 + uint160(b) % 7 + c.length; }\n",
    );
    let mut per_run = Vec::new();
    for _ in 0..3 {
        let config = RunConfig {
            jobs: 1,
            fuzz: testing::FuzzConfig { runs: FUZZ_RUNS, ..testing::FuzzConfig::default() },
            ..RunConfig::default()
        };
        let started = Instant::now();
        let results = testing::run(std::slice::from_ref(&fuzzed), &|_, _| true, &devnet, &config);
        let wall = started.elapsed();
        assert!(results.len() == 1 && results[0].passed(), "{results:?}");
        assert_eq!(results[0].fuzz.as_ref().map(|f| f.runs), Some(FUZZ_RUNS));
        per_run.push(wall / FUZZ_RUNS);
    }
    per_run.sort();
    let run_us = per_run[1].as_secs_f64() * 1e6;
    let unit_us = unit_medians[0].as_secs_f64() * 1e6;
    println!();
    println!("| fuzz test, {FUZZ_RUNS} runs, 1 job (median of 3) | per run | an empty unit test, 1 job | ratio |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| {:.0} ms | {run_us:.0} µs | {unit_us:.0} µs | {:.2}× |",
        per_run[1].as_secs_f64() * 1e3 * f64::from(FUZZ_RUNS),
        run_us / unit_us
    );

    let counter =
        "contract Counter {\n    uint256 public count;\n    function add(uint256 a) external { count += a % 10; }\n}\n";
    let invariant = contract_in(
        counter,
        "InvariantTest",
        "    Counter counter = new Counter();\n    function invariant_small() public view { require(counter.count() < 1e9); }\n",
    );
    let calls = u64::from(INVARIANT_RUNS * INVARIANT_DEPTH);
    let mut per_call = Vec::new();
    for _ in 0..3 {
        let config = RunConfig {
            jobs: 1,
            invariant: testing::InvariantConfig {
                runs: INVARIANT_RUNS,
                depth: INVARIANT_DEPTH,
                ..testing::InvariantConfig::default()
            },
            ..RunConfig::default()
        };
        let started = Instant::now();
        let results = testing::run(std::slice::from_ref(&invariant), &|_, _| true, &devnet, &config);
        let wall = started.elapsed();
        assert!(results.len() == 1 && results[0].passed(), "{results:?}");
        assert_eq!(results[0].invariant.as_ref().map(|i| i.calls), Some(calls));
        per_call.push(wall / calls as u32);
    }
    per_call.sort();
    let call_us = per_call[1].as_secs_f64() * 1e6;
    println!();
    println!(
        "| invariant test, {INVARIANT_RUNS} runs × {INVARIANT_DEPTH} calls, 1 job (median of 3) | per call (and its check) | an empty unit test, 1 job | ratio |"
    );
    println!("| --- | --- | --- | --- |");
    println!(
        "| {:.0} ms | {call_us:.0} µs | {unit_us:.0} µs | {:.2}× |",
        per_call[1].as_secs_f64() * 1e3 * calls as f64,
        call_us / unit_us
    );
}

/// Runs the release `nml test` on a fresh copy of `project`, then three
/// more times on the built copy: the first wall time, and the median of the others.
fn nml_test_wall(project: &Path) -> (usize, Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    common::copy_project(project, dir.path());
    let mut walls = Vec::new();
    let mut tests = 0;
    for _ in 0..4 {
        let started = Instant::now();
        let out =
            Command::new(env!("CARGO_BIN_EXE_nml")).arg("test").arg("--json").arg(dir.path()).output().expect("nml");
        walls.push(started.elapsed());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        tests = String::from_utf8_lossy(&out.stdout).lines().count();
    }
    let cold = walls.remove(0);
    walls.sort();
    (tests, cold, walls[1])
}

/// `nml coverage` against `nml test` (its build cached) on each example.
fn coverage_table(examples: &Path, names: &[String]) {
    println!("| example | `nml test`, build cached | `nml coverage` | of which the coverage build | ratio |");
    println!("| --- | --- | --- | --- | --- |");
    for name in names {
        let dir = tempfile::tempdir().expect("tempdir");
        common::copy_project(&examples.join(name), dir.path());
        let wall = |args: &[&str], ok: bool| {
            let started = Instant::now();
            let out = Command::new(env!("CARGO_BIN_EXE_nml")).args(args).arg(dir.path()).output().expect("nml");
            assert!(out.status.success() == ok, "{}", String::from_utf8_lossy(&out.stderr));
            started.elapsed()
        };
        wall(&["test"], true);
        let (mut test, mut coverage, mut build) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..3 {
            test.push(wall(&["test"], true));
            coverage.push(wall(&["coverage"], true));
            // No test matches: the build, and nothing run.
            build.push(wall(&["coverage", "--match-test", "^no test has this name$"], false));
        }
        let median = |mut v: Vec<Duration>| {
            v.sort();
            v[1].as_secs_f64() * 1e3
        };
        let (test, coverage, build) = (median(test), median(coverage), median(build));
        println!("| {name} | {test:.0} ms | {coverage:.0} ms | {build:.0} ms | {:.1}× |", coverage / test);
    }
}

/// A test contract with `EMPTY_TESTS` empty tests, built by solc.
fn empty_tests() -> TestContract {
    let tests: String = (0..EMPTY_TESTS).map(|i| format!("    function test{i:03}() public {{}}\n")).collect();
    contract_with("EmptyTest", &tests)
}

/// A test contract `name` (with a state variable `x` that `setUp` sets)
/// whose functions are `tests`, built by solc.
fn contract_with(name: &str, tests: &str) -> TestContract {
    contract_in("", name, tests)
}

/// As [`contract_with`], after the contracts of `before` in the same file
/// (known to invariant tests by their code).
fn contract_in(before: &str, name: &str, tests: &str) -> TestContract {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"bench\"\n").expect("toml");
    std::fs::create_dir_all(dir.path().join("test")).expect("mkdir");
    let source = format!(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\nimport \"@nml/nml/Test.sol\";\n{before}contract {name} is Test {{\n    uint256 x;\n    function setUp() public {{ x = 1; }}\n{tests}}}\n"
    );
    std::fs::write(dir.path().join("test/Case.t.sol"), source).expect("write");
    let fe = Frontend::run(Project::open_with_tests(dir.path()).expect("project"));
    let out = nml_compiler::build::build(&fe, &|| solc_for(&fe)).expect("build");
    assert!(!out.has_errors(), "{:#?}", out.diagnostics);
    let path = nml_compiler::solc::artifact_path(&fe.project.out_dir(), "test/Case.t.sol", name);
    let read = |path: std::path::PathBuf| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(path).expect("artifact")).expect("json")
    };
    let mut contract = TestContract::from_artifact(name, "test/Case.t.sol", &read(path)).expect("contract");
    let mut known = testing::Artifacts::default();
    for (unit, other) in &out.contracts {
        known.add(other, &read(nml_compiler::solc::artifact_path(&fe.project.out_dir(), unit, other)));
    }
    contract.artifacts = Arc::new(known);
    contract
}
