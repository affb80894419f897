//! `nml test`: builds the project with its tests, starts an in-process
//! devnet per test contract with the project's models registered, and runs
//! every `test*` function as a real transaction through the inference
//! mempool (see `nml_runtime::testing`). `nml coverage` runs the same tests
//! on a build without the optimizer, counting what they reach.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{B256, keccak256};
use miette::{IntoDiagnostic, WrapErr, miette};
use nml_compiler::coverage::CoverageMap;
use nml_compiler::diagnostics::Severity;
use nml_compiler::project::Project;
use nml_compiler::solc::CODE_SIZE_WARNING;
use nml_compiler::{Frontend, build};
use nml_runtime::inference::{OnnxConfig, OnnxExecutor};
use nml_runtime::mempool::PipeConfig;
use nml_runtime::node::InferenceSetup;
use nml_runtime::testing::{
    self, Artifacts, FuzzConfig, InvariantConfig, Outcome, RevertDecoder, RunConfig, TestContract, TestResult, Traces,
    printable,
};
use nml_runtime::{Devnet, DevnetConfig, Mining};
use regex::Regex;
use serde_json::json;

use super::common::{
    ms, print_diagnostics, project_remote_models, read_remote_signatures, register_project_models, solc_for,
    with_remote_models,
};
use super::coverage::{self, Report, Tally};
use super::fork_flags::ForkArgs;
use super::gas_snapshot;
use super::llm_flags::LlmArgs;
use crate::toolchain::onnxruntime;

/// Exit status when the project has no tests.
pub const NO_TESTS: u8 = 3;

/// Arguments of `nml test`.
#[derive(Debug, clap::Args)]
pub struct TestArgs {
    /// A project directory (with nml.toml) [default: .]
    pub path: Option<PathBuf>,
    /// Only tests whose name matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub match_test: Option<Regex>,
    /// Only test contracts whose name matches this regular expression.
    #[arg(long, value_name = "RE")]
    pub match_contract: Option<Regex>,
    /// Tests that run at once [default: the cores].
    #[arg(short = 'j', long, value_name = "N")]
    pub jobs: Option<usize>,
    /// One JSON object per test on stdout, instead of the human report.
    #[arg(long)]
    pub json: bool,
    /// Also write a JUnit XML report to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Print the gas of every function the tests called (min, median, max).
    #[arg(long)]
    pub gas_report: bool,
    /// Write each passing test's gas to `.gas-snapshot` in the project
    /// (the lines of tests not run are kept).
    #[arg(long, conflicts_with = "snapshot_check")]
    pub snapshot: bool,
    /// Compare each passing test's gas with `.gas-snapshot`: a change beyond
    /// --snapshot-tolerance, or a test not in it, fails the run.
    #[arg(long)]
    pub snapshot_check: bool,
    /// The change in percent --snapshot-check lets pass [default: 0].
    #[arg(long, value_name = "PCT", default_value_t = 0.0, requires = "snapshot_check", value_parser = percent)]
    pub snapshot_tolerance: f64,
    /// `-v`: show the inference receipts of passing tests too; `-vv`: their
    /// console.log lines too; `-vvv`: the call traces of failing tests;
    /// `-vvvv`: of every test.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Run only shard I of N (1-based): each test belongs to the shard its
    /// name hashes to, the same on every machine (docs/testing.md).
    #[arg(long, value_name = "I/N")]
    pub shard: Option<nml_runtime::testing::Shard>,
    /// Print the tests that would run (after the filters and --shard), one
    /// per line as `source:Contract.test` (`--json`: objects), and exit.
    #[arg(long)]
    pub list: bool,
    /// Passing runs each fuzz test (a test with parameters) must make
    /// [default: `[fuzz] runs`, else 256].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub fuzz_runs: Option<u32>,
    /// Seeds the fuzz tests' draws (with each test's name): the same seed
    /// draws the same arguments on every machine [default: `[fuzz] seed`,
    /// else 0].
    #[arg(long, value_name = "S", value_parser = seed)]
    pub fuzz_seed: Option<u64>,
    /// LLM backends.
    #[command(flatten)]
    pub llm: LlmArgs,
    /// Fork mode: the tests run on a fork of a remote chain (also `[fork]`
    /// in nml.toml).
    #[command(flatten)]
    pub fork: ForkArgs,
    /// The chain id the remote of fork mode must report (`[fork] chain_id`
    /// in nml.toml otherwise).
    #[arg(long, value_name = "ID")]
    pub fork_chain_id: Option<u64>,
}

/// Arguments of `nml coverage`.
#[derive(Debug, clap::Args)]
pub struct CoverageArgs {
    /// Which tests run, and how.
    #[command(flatten)]
    pub test: TestArgs,
    /// The reports to write (repeat the flag for several).
    #[arg(long, value_enum, default_values_t = [Report::Summary])]
    pub report: Vec<Report>,
    /// Where the LCOV report goes [default: lcov.info in the project].
    #[arg(long, value_name = "FILE")]
    pub report_file: Option<PathBuf>,
}

/// A seed: decimal, or hex with `0x` (as Foundry takes it).
fn seed(text: &str) -> Result<u64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => text.parse(),
    };
    parsed.map_err(|_| format!("`{text}` is not a seed (a number below 2^64, decimal or 0x-hex)"))
}

/// A percentage: a finite number, 0 or more.
fn percent(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(p) if p.is_finite() && p >= 0.0 => Ok(p),
        _ => Err(format!("`{text}` is not a percentage (a number, 0 or more)")),
    }
}

/// Runs `nml test`.
pub fn run(args: TestArgs) -> miette::Result<ExitCode> {
    run_tests(args, None)
}

/// Runs `nml coverage`: the tests, then the reports of what they reached.
pub fn coverage(args: CoverageArgs) -> miette::Result<ExitCode> {
    if args.test.snapshot || args.test.snapshot_check {
        return Err(miette!(
            help = "take gas snapshots with `nml test --snapshot`",
            "coverage builds without the optimizer, so its gas is not the contracts' gas: --snapshot and --snapshot-check are `nml test`'s"
        ));
    }
    let CoverageArgs { test, report, report_file } = args;
    if report_file.is_some() && !report.contains(&Report::Lcov) {
        return Err(miette!(help = "add --report lcov", "--report-file names the LCOV report's file"));
    }
    let mut kinds = Vec::new();
    for kind in report {
        if !kinds.contains(&kind) {
            kinds.push(kind);
        }
    }
    run_tests(test, Some(Reports { kinds, lcov_file: report_file }))
}

/// What `nml coverage` reports, and where.
struct Reports {
    kinds: Vec<Report>,
    lcov_file: Option<PathBuf>,
}

/// A contract compiled for the tests: its source unit, name and artifact
/// (or why it could not be read).
type Compiled = (String, String, Result<serde_json::Value, String>);

/// `nml test`, and `nml coverage` when `reports` is given.
fn run_tests(args: TestArgs, reports: Option<Reports>) -> miette::Result<ExitCode> {
    let started = Instant::now();
    let path = args.path.clone().unwrap_or_else(|| PathBuf::from("."));
    let mut project = Project::open_with_tests(&path).map_err(|e| miette!("{e}"))?;
    read_remote_signatures(&mut project)?;
    let fe = Frontend::run(project);
    let (diagnostics, compiled, map) = compile(&fe, reports.is_some())?;
    // Notes (derived ids) and the code size warning of test contracts are
    // `nml build`'s business; errors and other warnings are shown.
    let shown: Vec<_> = diagnostics
        .iter()
        .filter(|d| d.severity != Severity::Note || args.verbose > 0)
        .filter(|d| d.code != CODE_SIZE_WARNING)
        .cloned()
        .collect();
    print_diagnostics(&fe.project.db, &shown, Default::default());
    if diagnostics.iter().any(|d| d.is_error()) {
        eprintln!("error: the tests do not compile");
        return Ok(ExitCode::FAILURE);
    }
    let test_dir = format!("{}/", fe.project.config.project.test.trim_end_matches('/'));
    let mut contracts = Vec::new();
    let mut artifacts: Vec<(String, serde_json::Value)> = Vec::new();
    // A test's revert may come from any contract it calls: every compiled
    // contract's errors are named in its report.
    let mut errors = RevertDecoder::default();
    // An invariant test knows the contracts setUp deploys by their code.
    let mut known = Artifacts::default();
    // A test contract's deployment links the libraries it calls.
    let mut libraries = testing::Libraries::default();
    // A contract whose artifact is bad fails its own tests, not the run.
    for (unit, name, artifact) in compiled {
        let artifact = match artifact {
            Ok(artifact) => artifact,
            Err(reason) if unit.starts_with(&test_dir) => {
                contracts.push(TestContract::broken(&name, &unit, reason));
                continue;
            }
            Err(reason) => {
                eprintln!("warning: {reason}: the tests do not know {name}");
                continue;
            }
        };
        if unit.starts_with(&test_dir) {
            match TestContract::from_artifact(&name, &unit, &artifact) {
                // Abstract contracts and interfaces have no code: their tests
                // run in the contracts that inherit them.
                Ok(contract) if contract.bytecode.is_empty() || contract.tests().is_empty() => {}
                Ok(contract) => contracts.push(contract),
                Err(e) => contracts.push(TestContract::broken(&name, &unit, format!("{name}: {e}"))),
            }
        }
        errors.add_abi(&artifact["abi"]);
        known.add(&name, &artifact);
        libraries.add(&unit, &name, &artifact);
        artifacts.push((name, artifact));
    }
    let (errors, known, libraries) = (Arc::new(errors), Arc::new(known), Arc::new(libraries));
    for contract in &mut contracts {
        contract.errors = Arc::clone(&errors);
        contract.artifacts = Arc::clone(&known);
        contract.libraries = Arc::clone(&libraries);
    }
    let select = |contract: &str, test: &str| {
        args.match_contract.as_ref().is_none_or(|re| re.is_match(contract))
            && args.match_test.as_ref().is_none_or(|re| re.is_match(test))
            && args.shard.is_none_or(|shard| shard.contains(contract, test))
    };
    let selected =
        contracts.iter().filter(|c| c.tests().iter().any(|t| select(&c.name, testing::test_name(t)))).count();
    if selected == 0
        && let Some(shard) = args.shard
        && contracts.iter().any(|c| !c.tests().is_empty())
    {
        // A small suite split many ways leaves some shards empty: that is
        // not a failure of the CI job that runs one.
        eprintln!("no tests in shard {shard}");
        return Ok(ExitCode::SUCCESS);
    }
    if selected == 0 {
        // (A shard of a suite that has tests returned above.)
        let filtered = args.match_test.is_some() || args.match_contract.is_some();
        eprintln!(
            "error: no tests found in {test_dir} (a test is a `test…` or `invariant…()` function of a contract in {test_dir}*.t.sol{})",
            if filtered { " that matches the filters" } else { "" }
        );
        return Ok(ExitCode::from(NO_TESTS));
    }
    if args.list {
        let mut stdout = std::io::stdout().lock();
        for contract in &contracts {
            for test in contract.tests() {
                let signature = test;
                let test = testing::test_name(test);
                if !select(&contract.name, test) {
                    continue;
                }
                let line = if args.json {
                    json!({ "contract": contract.name, "source": contract.source, "test": test, "signature": signature })
                        .to_string()
                } else {
                    format!("{}:{}.{}", contract.source, contract.name, listed_name(signature))
                };
                writeln!(stdout, "{line}").into_diagnostic()?;
            }
        }
        return Ok(ExitCode::SUCCESS);
    }

    let setup = inference_setup(&fe, &args.llm)?;
    let fork = args.fork.connect(fe.project.config.fork.as_ref(), args.fork_chain_id)?;
    if fork.is_none() && args.fork_chain_id.is_some() {
        return Err(miette!(
            help = "pass --fork-url URL, or set [fork] url in nml.toml",
            "--fork-chain-id needs a chain to fork"
        ));
    }
    let devnet = || {
        let config =
            DevnetConfig { chain: testing::test_chain(), mining: Mining::Auto, state_file: None, fork: fork.clone() };
        Devnet::with_inference(config, setup.clone())
    };
    if fe.project.config.fuzz.runs == Some(0) {
        return Err(miette!(help = "runs = 1 or more", "nml.toml: [fuzz] runs must be at least 1"));
    }
    let invariant = fe.project.config.invariant;
    if invariant.runs == Some(0) || invariant.depth == Some(0) {
        return Err(miette!(
            help = "runs and depth = 1 or more",
            "nml.toml: [invariant] runs and depth must be at least 1"
        ));
    }
    let config = RunConfig {
        jobs: args.jobs.unwrap_or_else(|| RunConfig::default().jobs),
        fuzz: {
            let (table, default) = (fe.project.config.fuzz, FuzzConfig::default());
            FuzzConfig {
                runs: args.fuzz_runs.or(table.runs).unwrap_or(default.runs),
                seed: args.fuzz_seed.or(table.seed).unwrap_or(default.seed),
            }
        },
        traces: match args.verbose {
            0..=2 => Traces::None,
            3 => Traces::Failing,
            _ => Traces::All,
        },
        invariant: {
            let default = InvariantConfig::default();
            InvariantConfig {
                runs: invariant.runs.unwrap_or(default.runs),
                depth: invariant.depth.unwrap_or(default.depth),
                fail_on_revert: invariant.fail_on_revert.unwrap_or(default.fail_on_revert),
            }
        },
        coverage: map.as_ref().map(|_| Arc::default()),
        root: Some(Arc::from(std::path::absolute(&fe.project.root).unwrap_or_else(|_| fe.project.root.clone()))),
    };
    let results = testing::run(&contracts, &select, &devnet, &config);
    let elapsed = started.elapsed();

    if args.json {
        let mut stdout = std::io::stdout().lock();
        for r in &results {
            let line = json!({
                "contract": r.contract, "source": r.source, "test": r.test, "signature": r.signature, "outcome": r.outcome,
                "gas": r.gas, "inferences": r.inferences, "durationUs": r.duration.as_micros() as u64,
                "inferenceReceipts": r.records.iter().map(nml_runtime::rpc::record_json).collect::<Vec<_>>(),
                "logs": r.logs,
            });
            let mut line = line;
            if let Some(fuzz) = &r.fuzz {
                line["fuzz"] = json!(fuzz);
            }
            if let Some(invariant) = &r.invariant {
                line["invariant"] = json!(invariant);
            }
            if let Some(trace) = &r.trace {
                line["trace"] = json!(trace);
            }
            let _ = writeln!(stdout, "{line}");
        }
    } else {
        print_human(&results, args.verbose, elapsed);
    }
    if let Some(file) = &args.junit {
        nml_compiler::solc::write_atomic(file, junit(&results, elapsed).as_bytes())
            .into_diagnostic()
            .wrap_err_with(|| format!("writing {}", file.display()))?;
    }
    if args.gas_report {
        let report = gas_report(&results, &artifacts);
        let out = if args.json { gas_report_json(&report) } else { gas_report_table(&report) };
        let _ = std::io::stdout().lock().write_all(out.as_bytes());
    }
    if let (Some(reports), Some(map), Some(counted)) = (&reports, &map, &config.coverage) {
        write_reports(reports, &Tally::new(map, counted), &fe.project.root, args.json)?;
    }
    let snapshot_failed =
        if args.snapshot || args.snapshot_check { !snapshot(&fe.project.root, &results, &args)? } else { false };
    let failed = results.iter().any(TestResult::failed) || snapshot_failed;
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The project of `fe` built for `nml test` (`nml build`'s artifacts, read
/// back from `out/`) or for `nml coverage` (its own build, and the map of
/// what its code covers): the diagnostics and the compiled contracts.
fn compile(
    fe: &Frontend,
    coverage: bool,
) -> miette::Result<(Vec<nml_compiler::diagnostics::Diagnostic>, Vec<Compiled>, Option<CoverageMap>)> {
    Ok(if coverage {
        let out = build::build_for_coverage(fe, &|| solc_for(fe)).map_err(|e| miette!("{e}"))?;
        let src = format!("{}/", fe.project.config.project.src.trim_end_matches('/'));
        let map = CoverageMap::new(fe, &out.output, |unit| unit.starts_with(&src));
        let compiled: Vec<Compiled> = out
            .output
            .contracts
            .iter()
            .map(|a| {
                let artifact = serde_json::to_value(&a.artifact).map_err(|e| format!("its artifact: {e}"));
                (a.source.clone(), a.name.clone(), artifact)
            })
            .collect();
        (out.diagnostics, compiled, Some(map))
    } else {
        let out = build::build(fe, &|| solc_for(fe)).map_err(|e| miette!("{e}"))?;
        let out_dir = fe.project.out_dir();
        let compiled: Vec<Compiled> = out
            .contracts
            .iter()
            .map(|(unit, name)| {
                let path = nml_compiler::solc::artifact_path(&out_dir, unit, name);
                let artifact = std::fs::read(&path)
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .ok_or_else(|| format!("cannot read the artifact {}", path.display()));
                (unit.clone(), name.clone(), artifact)
            })
            .collect();
        (out.diagnostics, compiled, None)
    })
}

/// Prints the summary and writes the LCOV file that `reports` asks for.
/// With `json`, the summary is a JSON line.
fn write_reports(reports: &Reports, tally: &Tally<'_>, root: &Path, json: bool) -> miette::Result<()> {
    for kind in &reports.kinds {
        match kind {
            Report::Summary => {
                let summary =
                    if json { coverage::summary_json(tally) } else { format!("\n{}", coverage::summary(tally)) };
                let _ = std::io::stdout().lock().write_all(summary.as_bytes());
            }
            Report::Lcov => {
                let file = reports.lcov_file.clone().unwrap_or_else(|| root.join("lcov.info"));
                nml_compiler::solc::write_atomic(&file, coverage::lcov(tally).as_bytes())
                    .into_diagnostic()
                    .wrap_err_with(|| format!("writing {}", file.display()))?;
                eprintln!("wrote the LCOV report to {}", file.display());
            }
        }
    }
    Ok(())
}

/// Writes or checks the gas snapshot (`--snapshot`, `--snapshot-check`):
/// whether the run matches it (always, when writing).
fn snapshot(root: &Path, results: &[TestResult], args: &TestArgs) -> miette::Result<bool> {
    let path = root.join(gas_snapshot::FILE);
    // A run of every test writes the file anew; one with filters or a shard
    // rewrites its own lines and keeps the others.
    let whole = args.match_test.is_none() && args.match_contract.is_none() && args.shard.is_none();
    let old = match std::fs::read_to_string(&path) {
        _ if args.snapshot && whole => BTreeMap::new(),
        Ok(text) => gas_snapshot::parse(&text).map_err(|e| miette!("{e}"))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.snapshot => BTreeMap::new(),
        Err(e) => {
            return Err(miette!(help = "write one with `nml test --snapshot`", "cannot read {}: {e}", path.display()));
        }
    };
    let new = gas_snapshot::entries(results);
    if args.snapshot {
        let text = gas_snapshot::merged(old, new);
        nml_compiler::solc::write_atomic(&path, text.as_bytes())
            .into_diagnostic()
            .wrap_err_with(|| format!("writing {}", path.display()))?;
        return Ok(true);
    }
    let differences = gas_snapshot::differences(&old, &new, args.snapshot_tolerance);
    for difference in &differences {
        eprintln!("{difference}");
    }
    if differences.is_empty() {
        let plural = if new.len() == 1 { "" } else { "s" };
        eprintln!("{}: {} test{plural} match", gas_snapshot::FILE, new.len());
    } else {
        eprintln!("error: {} of {} tests differ from {}", differences.len(), new.len(), gas_snapshot::FILE);
    }
    Ok(differences.is_empty())
}

/// ONNX Runtime with the project's models (see [`register_project_models`]).
fn inference_setup(fe: &Frontend, llm: &LlmArgs) -> miette::Result<InferenceSetup> {
    let library = onnxruntime::resolve(std::io::stderr().is_terminal()).map_err(|e| miette!("{e}"))?.path;
    let config = OnnxConfig::new(library.clone());
    let onnx = Arc::new(OnnxExecutor::new(config.clone()).map_err(|e| miette!("{e}"))?);
    register_project_models(onnx.registry(), fe)?;
    let registry = Some(Arc::clone(onnx.registry()));
    let executor = with_remote_models(
        onnx,
        project_remote_models(fe)?,
        config.timeout,
        nml_runtime::inference::remote::DEFAULT_CONCURRENCY,
    )?;
    let project = &fe.project;
    let llm = llm.stack(project.config.llm.as_ref(), &project.root, &library)?;
    let pipe = PipeConfig { llm_concurrency: llm.concurrency, ..PipeConfig::default() };
    Ok(InferenceSetup { registry, llm: llm.backend, pipe, ..InferenceSetup::new(executor) })
}

/// `verbose`: `-v` shows passing tests' inference receipts, `-vv` their
/// console.log lines (a failing test shows both always).
fn print_human(results: &[TestResult], verbose: u8, elapsed: Duration) {
    let mut out = String::new();
    let mut by_contract: BTreeMap<(&str, &str), Vec<&TestResult>> = BTreeMap::new();
    for r in results {
        by_contract.entry((&r.source, &r.contract)).or_default().push(r);
    }
    for ((source, contract), tests) in &by_contract {
        let n = tests.len();
        out.push_str(&format!("\nRunning {n} test{} for {source}:{contract}\n", if n == 1 { "" } else { "s" }));
        for r in tests {
            let status = match r.outcome {
                Outcome::Pass => "PASS",
                Outcome::Fail { .. } => "FAIL",
                Outcome::Skip => "SKIP",
            };
            let runs = match &r.fuzz {
                Some(fuzz) if fuzz.rejected > 0 => format!("runs: {}, rejected: {}, ", fuzz.runs, fuzz.rejected),
                Some(fuzz) => format!("runs: {}, ", fuzz.runs),
                None => String::new(),
            };
            // A fuzz test's gas is the median of its passing runs.
            let gas = if r.fuzz.is_some() && r.passed() { "~" } else { "" };
            let figures = match &r.invariant {
                Some(i) => {
                    format!(
                        "runs: {}, calls: {}, reverts: {}, inferences: {}",
                        i.runs, i.calls, i.reverts, i.inferences
                    )
                }
                None => format!("{runs}gas: {gas}{}, inferences: {}", r.gas, r.inferences),
            };
            out.push_str(&format!("[{status}] {} ({figures}, {:.1} ms)\n", r.signature, ms(r.duration)));
            if let Outcome::Fail { reason } = &r.outcome {
                out.push_str(&format!("       {}\n", printable(reason)));
            }
            for (i, call) in r.invariant.iter().flat_map(|i| i.sequence.iter().flatten()).enumerate() {
                out.push_str(&format!(
                    "       {:>3}. {} → {}.{}\n",
                    i + 1,
                    call.sender,
                    call.contract,
                    printable(&call.call)
                ));
            }
            if !r.logs.is_empty() && (r.failed() || verbose >= 2) {
                out.push_str("       Logs:\n");
                for line in &r.logs {
                    out.push_str(&format!("         {}\n", printable(line)));
                }
            }
            if r.failed() || verbose > 0 {
                for record in &r.records {
                    let what = if record.success {
                        "ok".to_owned()
                    } else {
                        nml_runtime::rpc::record_json(record)["error"].as_str().unwrap_or_default().to_owned()
                    };
                    let round = record.round.map_or("-".to_owned(), |r| r.to_string());
                    out.push_str(&format!(
                        "       inference {} mode {} round {round} {:?} {} µs: {what}\n",
                        record.model, record.mode, record.served, record.duration_us
                    ));
                }
            }
            if let Some(trace) = &r.trace {
                out.push_str("       Traces:\n");
                for line in trace.lines() {
                    out.push_str(&format!("         {line}\n"));
                }
            }
        }
    }
    let passed = results.iter().filter(|r| r.passed()).count();
    let skipped = results.iter().filter(|r| r.outcome == Outcome::Skip).count();
    let failed = results.len() - passed - skipped;
    let verdict = if failed == 0 { "ok" } else { "FAILED" };
    out.push_str(&format!(
        "\ntest result: {verdict}. {passed} passed; {failed} failed; {skipped} skipped; finished in {:.2}s\n",
        elapsed.as_secs_f64()
    ));
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
}

/// A test as lists and reports name it: its name, or a fuzz test's
/// signature (`testSwap(uint256)`), so that overloads stay apart.
fn listed_name(signature: &str) -> &str {
    signature.strip_suffix("()").unwrap_or(signature)
}

/// `s` as XML 1.0 text or attribute value. Characters XML 1.0 does not
/// allow at all, not even as a reference (control characters other than tab,
/// LF and CR, U+FFFE and U+FFFF), are written as `\u{…}`; tab, LF and CR
/// are references, so attribute values keep them.
fn xml_escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            '\'' => "&apos;".to_owned(),
            '\t' | '\n' | '\r' => format!("&#{};", c as u32),
            c if c < ' ' || c == '\u{fffe}' || c == '\u{ffff}' => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A JUnit XML report: one `<testsuite>` per test contract.
fn junit(results: &[TestResult], elapsed: Duration) -> String {
    let mut suites: BTreeMap<(&str, &str), Vec<&TestResult>> = BTreeMap::new();
    for r in results {
        suites.entry((&r.source, &r.contract)).or_default().push(r);
    }
    let failures = results.iter().filter(|r| r.failed()).count();
    let mut xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"nml test\" tests=\"{}\" failures=\"{failures}\" time=\"{:.3}\">\n",
        results.len(),
        elapsed.as_secs_f64()
    );
    for ((source, contract), tests) in suites {
        let failed = tests.iter().filter(|r| r.failed()).count();
        let skipped = tests.iter().filter(|r| r.outcome == Outcome::Skip).count();
        let time: f64 = tests.iter().map(|r| r.duration.as_secs_f64()).sum();
        xml.push_str(&format!(
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"{skipped}\" time=\"{time:.3}\">\n",
            xml_escape(&format!("{source}:{contract}")),
            tests.len()
        ));
        for r in tests {
            xml.push_str(&format!(
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                xml_escape(listed_name(&r.signature)),
                xml_escape(contract),
                r.duration.as_secs_f64()
            ));
            let inner = match &r.outcome {
                Outcome::Pass => String::new(),
                Outcome::Skip => "      <skipped/>\n".to_owned(),
                Outcome::Fail { reason } => {
                    format!("      <failure message=\"{}\">{}</failure>\n", xml_escape(reason), xml_escape(reason))
                }
            };
            // The test's console.log lines, where CI services show a test's output.
            let logs = if r.logs.is_empty() {
                String::new()
            } else {
                format!("      <system-out>{}</system-out>\n", xml_escape(&(r.logs.join("\n") + "\n")))
            };
            if inner.is_empty() && logs.is_empty() {
                xml.push_str("/>\n");
            } else {
                xml.push_str(&format!(">\n{inner}{logs}    </testcase>\n"));
            }
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// The gas of one called function over a run's tests.
struct GasRow {
    contract: String,
    function: String,
    /// The gas of every call, in ascending order (never empty).
    gas: Vec<u64>,
}

impl GasRow {
    fn min(&self) -> u64 {
        self.gas[0]
    }

    fn median(&self) -> u64 {
        self.gas[self.gas.len() / 2]
    }

    fn max(&self) -> u64 {
        self.gas[self.gas.len() - 1]
    }
}

/// Gas per called function, by contract and function. A callee is named by
/// its runtime code: the artifact with the same code hash, else the only
/// artifact with that function and code size (immutables change the hash,
/// not the size).
fn gas_report(results: &[TestResult], artifacts: &[(String, serde_json::Value)]) -> Vec<GasRow> {
    struct Known<'a> {
        name: &'a str,
        hash: B256,
        size: usize,
        functions: BTreeMap<[u8; 4], String>,
    }
    let known: Vec<Known<'_>> = artifacts
        .iter()
        // Abstract contracts and interfaces have no code to be called at.
        .filter(|(_, artifact)| artifact["deployedBytecode"]["object"].as_str().is_some_and(|h| h.len() > 2))
        .map(|(name, artifact)| {
            let code = artifact["deployedBytecode"]["object"].as_str().map(unlinked).unwrap_or_default();
            let functions = artifact["methodIdentifiers"]
                .as_object()
                .into_iter()
                .flatten()
                .filter_map(|(signature, selector)| {
                    let bytes = alloy_primitives::hex::decode(selector.as_str()?).ok()?;
                    Some((<[u8; 4]>::try_from(bytes).ok()?, signature.clone()))
                })
                .collect();
            Known { name, hash: keccak256(&code), size: code.len(), functions }
        })
        .collect();
    let mut gas: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for r in results {
        for (call, hash, size) in &r.calls {
            let by_hash = known.iter().find(|k| k.hash == *hash);
            let by_shape = || {
                let mut fits = known.iter().filter(|k| k.size == *size && k.functions.contains_key(&call.selector));
                match (fits.next(), fits.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            };
            let (contract, function) = match by_hash.or_else(by_shape) {
                Some(k) => (
                    k.name.to_owned(),
                    k.functions.get(&call.selector).cloned().unwrap_or_else(|| hex_selector(call.selector)),
                ),
                // A contract no artifact matches: its `vm.label`, else its address.
                None => (
                    r.labels.get(&call.address).cloned().unwrap_or_else(|| call.address.to_string()),
                    hex_selector(call.selector),
                ),
            };
            gas.entry((contract, function)).or_default().push(call.gas);
        }
    }
    gas.into_iter()
        .map(|((contract, function), mut gas)| {
            gas.sort_unstable();
            GasRow { contract, function, gas }
        })
        .collect()
}

/// Code in hex whose library placeholders (`__$…$__`, 40 characters) are
/// read as zeros: its size is the linked code's.
fn unlinked(hex: &str) -> Vec<u8> {
    nml_protocol::bytecode::unlinked_code(hex).into_iter().map(|b| b.unwrap_or(0)).collect()
}

/// The gas report as a Markdown table.
fn gas_report_table(report: &[GasRow]) -> String {
    let mut out = String::from("\n| contract | function | calls | min | median | max |\n|---|---|---|---|---|---|\n");
    for row in report {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.contract,
            row.function,
            row.gas.len(),
            row.min(),
            row.median(),
            row.max()
        ));
    }
    out
}

/// The gas report as one JSON line, `{"gasReport": [{contract, function,
/// calls, min, median, max}, …]}`: `--json`'s stdout stays JSON lines, and
/// the report's shape tells it from the tests' (which have `test`).
fn gas_report_json(report: &[GasRow]) -> String {
    let rows: Vec<serde_json::Value> = report
        .iter()
        .map(|row| {
            json!({
                "contract": row.contract, "function": row.function, "calls": row.gas.len(),
                "min": row.min(), "median": row.median(), "max": row.max(),
            })
        })
        .collect();
    format!("{}\n", json!({ "gasReport": rows }))
}

fn hex_selector(selector: [u8; 4]) -> String {
    format!("0x{}", alloy_primitives::hex::encode(selector))
}
