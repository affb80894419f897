//! Contract tests on the devnet (what `nml test` runs): each test contract is
//! deployed on its own devnet with the cheatcodes of [`cheatcodes`]
//! installed, its `setUp()` runs, and then every `test*` function runs as a
//! real transaction through the inference mempool — simulation, real
//! inference, re-execution — each on its own fork of the post-`setUp` chain,
//! in parallel.
//!
//! A test passes when its transaction succeeds; a `testFail*` test passes
//! when it reverts. A test with parameters is a fuzz test ([`fuzz`]): it
//! runs many times with drawn arguments. An `invariant…()` function is an
//! invariant test ([`invariant`]): random sequences of calls to the
//! contracts `setUp` deployed, the invariant checked after each. [`revert`]
//! puts revert data in words; [`shard`] splits a suite across CI machines.
//!
//! As in Foundry, the libraries a test contract's code calls are deployed
//! before it and linked into its code ([`link`]); the test contract starts
//! with [`TEST_CONTRACT_BALANCE`].

pub mod artifacts;
pub mod cheatcodes;
pub mod coverage;
pub mod fuzz;
pub mod invariant;
pub mod link;
pub mod revert;
pub mod shard;
pub mod trace;

pub use artifacts::Artifacts;
pub use coverage::Coverage;
pub use fuzz::FuzzConfig;
pub use invariant::{InvariantConfig, InvariantReport};
pub use link::{Libraries, Links};
pub use revert::{RevertDecoder, RevertReason};
pub use shard::Shard;
pub use trace::Traces;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{Address, B256, Bytes, U256, keccak256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::{Revert, SolError};
use parking_lot::Mutex;
use serde::Serialize;

use crate::chain::{ChainConfig, Halt, InferenceRecord, TxReceipt};
use crate::evm::InspectorFactory;
use crate::evm::console::ConsoleSink;
use crate::node::{Devnet, NodeError};
use cheatcodes::{ASSUME_REJECTED, CheatState, CheatcodesFactory, GasCall, SKIPPED};

/// The gas limit of every test transaction (and of the test chain's blocks).
pub const TEST_GAS_LIMIT: u64 = 100_000_000;

/// The chain tests run on: blocks of [`TEST_GAS_LIMIT`], no code size
/// limit (test contracts that deploy what they test are often larger), and,
/// as in Foundry, a base fee of zero that full blocks do not raise: gas
/// costs no ether (invariant tests' senders hold none) and `block.basefee`
/// is zero.
pub fn test_chain() -> ChainConfig {
    ChainConfig {
        gas_limit: TEST_GAS_LIMIT,
        base_fee: 0,
        fixed_base_fee: true,
        unlimited_code_size: true,
        ..ChainConfig::default()
    }
}

/// The balance a test contract gets right after its deployment, as in
/// Foundry: 2^96 − 1 wei (so that a test can send ether).
pub const TEST_CONTRACT_BALANCE: U256 = U256::from_limbs([u64::MAX, u32::MAX as u64, 0, 0]);

/// A compiled test contract.
#[derive(Debug, Clone)]
pub struct TestContract {
    /// The contract's name.
    pub name: String,
    /// Its source file, as the build names it (`test/Pool.t.sol`).
    pub source: String,
    /// Its creation bytecode, with zeros where [`TestContract::links`] puts
    /// library addresses.
    pub bytecode: Bytes,
    /// The libraries its code calls, linked at deployment.
    pub links: Links,
    /// The project's libraries, by which its deployment finds those it
    /// links; `nml test` gives every test contract the same.
    pub libraries: Arc<Libraries>,
    /// Why it cannot run (its artifact is unreadable or malformed): its
    /// one test, `setUp()`, fails with this, and no other contract's do.
    pub broken: Option<String>,
    /// Its functions: signature → selector.
    pub functions: BTreeMap<String, [u8; 4]>,
    /// The errors its reverts are decoded with: its own ABI's and the
    /// stdlib's; `nml test` gives every test contract one decoder that knows
    /// every compiled contract's errors.
    pub errors: Arc<RevertDecoder>,
    /// The signatures of its functions that take an enum (the ABI says
    /// `uint8`; a value past the last variant reverts without data before
    /// the function runs).
    pub takes_enum: BTreeSet<String>,
    /// The project's compiled contracts, by which an invariant test knows
    /// what `setUp` deployed; `nml test` gives every test contract the same.
    pub artifacts: Arc<Artifacts>,
}

impl TestContract {
    /// Reads a Foundry-layout artifact (`abi`, `bytecode.object` and the
    /// `linkReferences` of its code, `methodIdentifiers`).
    pub fn from_artifact(name: &str, source: &str, artifact: &serde_json::Value) -> Result<Self, String> {
        // Abstract contracts and interfaces have no bytecode.
        let (bytecode, links) = Links::of(artifact)?;
        let mut functions = BTreeMap::new();
        if let Some(ids) = artifact["methodIdentifiers"].as_object() {
            for (signature, selector) in ids {
                let bytes = alloy_primitives::hex::decode(selector.as_str().unwrap_or_default())
                    .ok()
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .ok_or_else(|| format!("bad selector for {signature}"))?;
                functions.insert(signature.clone(), bytes);
            }
        }
        let mut errors = RevertDecoder::default();
        errors.add_abi(&artifact["abi"]);
        let takes_enum = enum_functions(&artifact["abi"], &functions);
        Ok(Self {
            name: name.to_owned(),
            source: source.to_owned(),
            bytecode,
            links,
            libraries: Arc::default(),
            broken: None,
            functions,
            errors: Arc::new(errors),
            takes_enum,
            artifacts: Arc::default(),
        })
    }

    /// A test contract that cannot run, for `reason`: its tests are
    /// unknown, and `setUp()` stands for them in the report.
    pub fn broken(name: &str, source: &str, reason: String) -> Self {
        Self {
            name: name.to_owned(),
            source: source.to_owned(),
            bytecode: Bytes::new(),
            links: Links::default(),
            libraries: Arc::default(),
            broken: Some(reason),
            functions: BTreeMap::new(),
            errors: Arc::default(),
            takes_enum: BTreeSet::new(),
            artifacts: Arc::default(),
        }
    }

    /// The test functions' signatures (`testSwap()`, fuzz tests with their
    /// parameters: `testSwap(uint256)`, and invariants: `invariant_supply()`),
    /// in name order; a [broken](TestContract::broken) contract's is
    /// `setUp()`.
    pub fn tests(&self) -> Vec<&str> {
        if self.broken.is_some() {
            return vec!["setUp()"];
        }
        self.functions.keys().filter(|s| s.starts_with("test") || is_invariant(s)).map(String::as_str).collect()
    }

    fn selector(&self, signature: &str) -> Option<[u8; 4]> {
        self.functions.get(signature).copied()
    }
}

/// Whether `signature` is an invariant test's: `invariant…` (one with
/// parameters is listed too, and fails: invariants take none).
pub fn is_invariant(signature: &str) -> bool {
    signature.starts_with("invariant")
}

/// The signatures (of `functions`) of the ABI's functions with an enum
/// among their inputs, at any depth.
fn enum_functions(abi: &serde_json::Value, functions: &BTreeMap<String, [u8; 4]>) -> BTreeSet<String> {
    fn has_enum(params: &serde_json::Value) -> bool {
        params
            .as_array()
            .into_iter()
            .flatten()
            .any(|p| p["internalType"].as_str().is_some_and(|t| t.starts_with("enum ")) || has_enum(&p["components"]))
    }
    abi.as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["type"] == "function" && has_enum(&f["inputs"]))
        .map(signature_of)
        .filter(|signature| functions.contains_key(signature))
        .collect()
}

/// The canonical signature of an ABI function entry (`swap(uint256,(address,bytes)[])`).
fn signature_of(function: &serde_json::Value) -> String {
    fn canonical(param: &serde_json::Value) -> String {
        let ty = param["type"].as_str().unwrap_or_default();
        match ty.strip_prefix("tuple") {
            Some(dims) => {
                let parts: Vec<String> = param["components"].as_array().into_iter().flatten().map(canonical).collect();
                format!("({}){dims}", parts.join(","))
            }
            None => ty.to_owned(),
        }
    }
    let inputs: Vec<String> = function["inputs"].as_array().into_iter().flatten().map(canonical).collect();
    format!("{}({})", function["name"].as_str().unwrap_or_default(), inputs.join(","))
}

/// How a test ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It failed, for this reason.
    Fail {
        /// Why, in words.
        reason: String,
    },
    /// It skipped itself (`vm.skip(true)`).
    Skip,
}

/// The result of one test.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TestResult {
    /// The test contract.
    pub contract: String,
    /// Its source file.
    pub source: String,
    /// The test function's name (`testFeeRises`).
    pub test: String,
    /// Its signature (`testFeeRises()`, a fuzz test's with its parameter
    /// types: `testSwap(uint256,address)`).
    #[serde(skip)]
    pub signature: String,
    /// How it ended.
    #[serde(flatten)]
    pub outcome: Outcome,
    /// Gas the test transaction used.
    pub gas: u64,
    /// Calls to the inference precompile (mocked calls excluded).
    pub inferences: usize,
    /// Wall time of the test, setup of its fork included.
    #[serde(serialize_with = "micros")]
    pub duration: Duration,
    /// The inference records of the test transaction.
    #[serde(skip)]
    pub records: Vec<InferenceRecord>,
    /// The test transaction (zero when none was mined).
    #[serde(skip)]
    pub tx_hash: B256,
    /// The calls the test contract made, with the code hash and code size
    /// of each callee.
    #[serde(skip)]
    pub calls: Vec<(GasCall, B256, usize)>,
    /// The names `vm.label` gave to addresses (setUp's included).
    #[serde(skip)]
    pub labels: BTreeMap<Address, String>,
    /// A fuzz test's runs (`None` for a test without parameters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fuzz: Option<FuzzReport>,
    /// An invariant test's runs (`None` for other tests).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invariant: Option<InvariantReport>,
    /// Its call trees, written out ([`RunConfig::traces`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace: Option<String>,
    /// The `console.log` lines of `setUp` and of the run reported (a fuzz
    /// test's counterexample or last run), in order.
    pub logs: Vec<String>,
}

/// How a fuzz test's runs went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FuzzReport {
    /// Runs that passed.
    pub runs: u32,
    /// Draws `vm.assume` rejected.
    pub rejected: u32,
    /// The seed of the draws ([`FuzzConfig::seed`]).
    pub seed: u64,
    /// The mean gas of the passing runs (the test's `gas` is their median).
    pub mean_gas: u64,
    /// The shrunk arguments of the failing run, if one failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counterexample: Option<Counterexample>,
}

/// The arguments a fuzz test failed with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counterexample {
    /// In words: `(1000, 0x…)`.
    pub args: String,
    /// The test transaction's calldata.
    pub calldata: Bytes,
}

fn micros<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

impl TestResult {
    /// Whether it passed.
    pub fn passed(&self) -> bool {
        self.outcome == Outcome::Pass
    }

    /// Whether it failed (a skipped test neither passed nor failed).
    pub fn failed(&self) -> bool {
        matches!(self.outcome, Outcome::Fail { .. })
    }
}

/// How to run a suite.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Tests that run at once (default: the cores).
    pub jobs: usize,
    /// How fuzz tests run (their seed seeds invariant tests too).
    pub fuzz: FuzzConfig,
    /// How invariant tests run.
    pub invariant: InvariantConfig,
    /// Which tests are traced.
    pub traces: Traces,
    /// Where the instructions every run executes are counted (`nml
    /// coverage`), if anywhere.
    pub coverage: Option<Arc<Coverage>>,
    /// The project's root: tests read fixtures under it (`vm.readFile`).
    pub root: Option<Arc<std::path::Path>>,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            jobs: std::thread::available_parallelism().map_or(1, usize::from),
            fuzz: FuzzConfig::default(),
            invariant: InvariantConfig::default(),
            traces: Traces::None,
            coverage: None,
            root: None,
        }
    }
}

/// A test contract deployed and set up, ready to fork for each test.
struct Deployed<'a> {
    contract: &'a TestContract,
    base: Result<Base, SetUpFailed>,
}

/// The chain after a test contract's `setUp`.
struct Base {
    devnet: Devnet,
    /// The test contract.
    address: Address,
    /// The cheatcodes' state after `setUp` (mocks, labels, warps).
    cheats: CheatState,
    /// The contracts the deployment and `setUp` created, in address order.
    created: Vec<Address>,
    /// Where its forks count the instructions they run, if anywhere.
    coverage: Option<Arc<Coverage>>,
    /// The `console.log` lines of the deployment and `setUp`.
    logs: Vec<String>,
}

/// Runs the tests of `contracts` that `select(contract, test)` accepts.
/// `devnet` makes a fresh devnet (with the project's models registered) for
/// each contract, on a [`test_chain`].
pub fn run(
    contracts: &[TestContract],
    select: &(dyn Fn(&str, &str) -> bool + Sync),
    devnet: &(dyn Fn() -> Result<Devnet, NodeError> + Sync),
    config: &RunConfig,
) -> Vec<TestResult> {
    let contracts: Vec<&TestContract> = contracts
        .iter()
        .filter(|c| {
            (c.broken.is_some() || !c.bytecode.is_empty()) && c.tests().iter().any(|t| select(&c.name, test_name(t)))
        })
        .collect();
    let jobs = config.jobs.max(1);
    // Deploy and set up every contract, in parallel.
    let deployed: Vec<Deployed<'_>> =
        parallel(&contracts, jobs, |c| Deployed { contract: c, base: deploy(c, devnet, config) })
            .into_iter()
            .zip(&contracts)
            .map(|(p, c)| p.unwrap_or_else(|| Deployed { contract: c, base: Err(PANICKED.to_owned().into()) }))
            .collect();
    // Then every test on its own fork, in parallel.
    let work: Vec<(&Deployed<'_>, &str)> = deployed
        .iter()
        .flat_map(|p| {
            p.contract.tests().into_iter().filter(|t| select(&p.contract.name, test_name(t))).map(move |t| (p, t))
        })
        .collect();
    parallel(&work, jobs, |(p, signature)| run_one(p, signature, config))
        .into_iter()
        .zip(&work)
        .map(|(r, (p, signature))| r.unwrap_or_else(|| failed(p.contract, signature, PANICKED)))
        .collect()
}

/// The reason given for a test whose run panicked (a bug of nml's).
const PANICKED: &str = "the test runner panicked on this test (a bug in nml: please report it)";

/// `f` over `items` on `jobs` threads; results in item order, `None` where
/// `f` panicked (one panic costs one item, never the others).
fn parallel<T: Sync, R: Send>(items: &[T], jobs: usize, f: impl Fn(&T) -> R + Sync) -> Vec<Option<R>> {
    let next = AtomicUsize::new(0);
    let mut results: Vec<(usize, Option<R>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..jobs.min(items.len()).max(1))
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(item) = items.get(i) else { break };
                        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(item)));
                        done.push((i, result.ok()));
                    }
                    done
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_default()).collect()
    });
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn failed(contract: &TestContract, signature: &str, reason: &str) -> TestResult {
    TestResult {
        contract: contract.name.clone(),
        source: contract.source.clone(),
        test: test_name(signature).to_owned(),
        signature: signature.to_owned(),
        outcome: Outcome::Fail { reason: reason.to_owned() },
        gas: 0,
        inferences: 0,
        duration: Duration::ZERO,
        records: Vec::new(),
        tx_hash: B256::ZERO,
        calls: Vec::new(),
        labels: BTreeMap::new(),
        fuzz: None,
        invariant: None,
        trace: None,
        logs: Vec::new(),
    }
}

/// `text` with its control characters escaped (`\n`, `\u{1b}`): a revert
/// reason or a string argument must not break a report's lines or color
/// the terminal.
pub fn printable(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { c.escape_default().to_string() } else { c.to_string() }).collect()
}

/// A test's name: its signature without the parameters.
pub fn test_name(signature: &str) -> &str {
    signature.split_once('(').map_or(signature, |(name, _)| name)
}

/// Why a test contract could not be deployed and set up, and what its
/// constructor and `setUp` logged before (`console.log`).
struct SetUpFailed {
    reason: String,
    logs: Vec<String>,
}

impl From<String> for SetUpFailed {
    fn from(reason: String) -> Self {
        Self { reason, logs: Vec::new() }
    }
}

fn deploy(
    contract: &TestContract,
    devnet: &dyn Fn() -> Result<Devnet, NodeError>,
    config: &RunConfig,
) -> Result<Base, SetUpFailed> {
    let coverage = config.coverage.as_ref();
    if let Some(reason) = &contract.broken {
        return Err(reason.clone().into());
    }
    let mut devnet = devnet().map_err(|e| format!("cannot start the test devnet: {e}"))?;
    let cheats = CheatcodesFactory::default().with_errors(Arc::clone(&contract.errors)).with_root(config.root.clone());
    let served = Arc::new(cheats.clone().with_pipe(devnet.pipe()));
    install(&mut devnet, served, coverage)?;
    let logs = console_lines(&devnet);
    let set_up = set_up(contract, &devnet);
    // Forks start with no console of their own: a run that wants its lines
    // gives it one.
    if let Some(pipe) = devnet.pipe() {
        pipe.set_console(None);
    }
    let logs = std::mem::take(&mut *logs.lock());
    match set_up {
        Ok((address, created)) => {
            Ok(Base { devnet, address, cheats: cheats.state(), created, coverage: coverage.cloned(), logs })
        }
        Err(reason) => Err(SetUpFailed { reason, logs }),
    }
}

/// Deploys the test contract (its libraries first) and runs its `setUp`:
/// its address, and the contracts both created.
fn set_up(contract: &TestContract, devnet: &Devnet) -> Result<(Address, Vec<Address>), String> {
    // Solidity checks that a callee has code before calling a function that
    // returns nothing; the inspector answers before the code would run.
    devnet.set_code(cheatcodes::VM_ADDRESS, Bytes::from_static(&[0xfe]));
    let deployer = devnet.accounts()[0];
    let bytecode = link::link(devnet, deployer, contract)?;
    // The libraries are not among the contracts the test deployed (an
    // invariant test's targets).
    let before = with_code(devnet);
    let hash = send(devnet, deployer, None, bytecode)?;
    let receipt = mined(devnet, hash, "the deployment")?;
    let address = match (receipt.success, receipt.contract_address) {
        (true, Some(address)) => address,
        _ => return Err(format!("deployment failed: {}", failure(contract, &receipt))),
    };
    devnet.set_balance(address, TEST_CONTRACT_BALANCE);
    if let Some(selector) = contract.selector("setUp()") {
        let hash = send(devnet, deployer, Some(address), selector.to_vec().into())?;
        let receipt = mined(devnet, hash, "setUp")?;
        if !receipt.success {
            return Err(format!("setUp() failed: {}", failure(contract, &receipt)));
        }
    }
    let created = with_code(devnet).difference(&before).copied().filter(|a| *a != address).collect();
    Ok((address, created))
}

/// The accounts with code in the devnet's own state (in fork mode, the
/// remote's are not among them unless the devnet touched them).
fn with_code(devnet: &Devnet) -> BTreeSet<Address> {
    devnet.with_chain(|chain| {
        chain
            .state()
            .accounts()
            .filter(|(_, account)| account.code_hash != revm::primitives::KECCAK_EMPTY)
            .map(|(address, _)| *address)
            .collect()
    })
}

fn run_one(deployed: &Deployed<'_>, signature: &str, config: &RunConfig) -> TestResult {
    let started = Instant::now();
    let contract = deployed.contract;
    let mut result = failed(contract, signature, "");
    let outcome = match (&deployed.base, &fuzz::parameters(signature)) {
        (Err(failed), _) => {
            result.logs = failed.logs.clone();
            Outcome::Fail { reason: failed.reason.clone() }
        }
        (_, Err(e)) => Outcome::Fail { reason: e.to_string() },
        (Ok(base), Ok(types)) => {
            let run = Run { contract, base, selector: contract.selector(signature).unwrap_or_default(), signature };
            let outcome = if is_invariant(signature) && !types.is_empty() {
                Outcome::Fail {
                    reason: "an invariant takes no parameters (the calls before it draw the arguments)".to_owned(),
                }
            } else if is_invariant(signature) {
                run.invariant(&config.invariant, config.fuzz.seed, &mut result)
            } else if types.is_empty() {
                run.unit(&mut result)
            } else {
                run.fuzz(types, &config.fuzz, &mut result)
            };
            let wanted = match config.traces {
                Traces::None => false,
                Traces::Failing => matches!(outcome, Outcome::Fail { .. }),
                Traces::All => outcome != Outcome::Skip,
            };
            if wanted {
                result.trace = run.traced(&result);
            }
            outcome
        }
    };
    result.outcome = outcome;
    result.duration = started.elapsed();
    result
}

/// How one run of a test ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Pass,
    Fail(String),
    /// `vm.assume` rejected its arguments.
    Rejected,
    /// `vm.skip(true)`.
    Skipped,
}

/// What one run of a test did: its transaction on a fresh fork of the
/// post-`setUp` chain.
struct Case {
    verdict: Verdict,
    gas: u64,
    records: Vec<InferenceRecord>,
    tx_hash: B256,
    calls: Vec<(GasCall, B256, usize)>,
    labels: BTreeMap<Address, String>,
    logs: Vec<String>,
}

impl Case {
    /// Puts what the run did into `result` (its outcome aside).
    fn report(self, result: &mut TestResult) {
        result.gas = self.gas;
        result.inferences = self.records.len();
        result.records = self.records;
        result.tx_hash = self.tx_hash;
        result.labels = self.labels;
        result.calls = self.calls;
        result.logs = self.logs;
    }
}

/// The runs of one test.
struct Run<'a> {
    contract: &'a TestContract,
    base: &'a Base,
    selector: [u8; 4],
    signature: &'a str,
}

impl Run<'_> {
    fn expects_failure(&self) -> bool {
        test_name(self.signature).starts_with("testFail")
    }

    /// A test without parameters: one run.
    fn unit(&self, result: &mut TestResult) -> Outcome {
        let case = self.case(self.selector.to_vec().into());
        let outcome = match &case.verdict {
            Verdict::Pass => Outcome::Pass,
            Verdict::Fail(reason) => Outcome::Fail { reason: reason.clone() },
            Verdict::Rejected => Outcome::Fail {
                reason: format!("{ASSUME_REJECTED}, and a test without parameters has no other arguments to draw"),
            },
            Verdict::Skipped => Outcome::Skip,
        };
        case.report(result);
        outcome
    }

    /// A test with parameters: [`FuzzConfig::runs`] passing runs, or the
    /// first failing one, shrunk.
    fn fuzz(&self, types: &[DynSolType], config: &FuzzConfig, result: &mut TestResult) -> Outcome {
        let dictionary = fuzz::Dictionary::from_code(&self.runtime_code());
        let mut draw = fuzz::Draw::new(config.seed, &self.contract.name, self.signature, dictionary);
        let mut report = FuzzReport { runs: 0, rejected: 0, seed: config.seed, mean_gas: 0, counterexample: None };
        let (mut gas, mut calls) = (Vec::new(), Vec::new());
        let mut last = None;
        let outcome = loop {
            if report.runs >= config.runs {
                break Outcome::Pass;
            }
            let args = draw.args(types);
            let mut case = self.case(fuzz::calldata(self.selector, &args));
            match &case.verdict {
                Verdict::Pass => {
                    report.runs += 1;
                    gas.push(case.gas);
                    calls.append(&mut case.calls);
                    last = Some(case);
                }
                Verdict::Skipped => break Outcome::Skip,
                Verdict::Rejected => {
                    report.rejected += 1;
                    if report.rejected > config.max_rejects() {
                        break Outcome::Fail {
                            reason: format!(
                                "vm.assume rejected {} draws ({} runs passed): loosen the assumption, or bound the arguments",
                                report.rejected, report.runs
                            ),
                        };
                    }
                }
                Verdict::Fail(_) => {
                    let (args, failing) = self.shrink(args, case);
                    let reason = match &failing.verdict {
                        Verdict::Fail(reason) => reason.clone(),
                        _ => String::new(),
                    };
                    let calldata = fuzz::calldata(self.selector, &args);
                    let args = fuzz::describe(&args);
                    let example = format!("counterexample: {args} after {} passing runs", report.runs);
                    let reason = if reason.is_empty() { example } else { format!("{reason}; {example}") };
                    report.counterexample = Some(Counterexample { args, calldata });
                    last = Some(failing);
                    break Outcome::Fail { reason };
                }
            }
        };
        if let Some(case) = last {
            case.report(result);
        }
        // The gas report counts the calls of every passing run too.
        result.calls.splice(0..0, calls);
        if !gas.is_empty() && matches!(outcome, Outcome::Pass) {
            gas.sort_unstable();
            result.gas = gas[gas.len() / 2];
            report.mean_gas = (gas.iter().map(|g| u128::from(*g)).sum::<u128>() / gas.len() as u128) as u64;
        }
        result.fuzz = Some(report);
        outcome
    }

    /// The simplest arguments found that still fail, and their run.
    fn shrink(&self, args: Vec<DynSolValue>, failing: Case) -> (Vec<DynSolValue>, Case) {
        let mut last = failing;
        let mut fails = |args: &[DynSolValue]| {
            let case = self.case(fuzz::calldata(self.selector, args));
            let failed = matches!(case.verdict, Verdict::Fail(_));
            if failed {
                last = case;
            }
            failed
        };
        let args = fuzz::Shrink::new(&mut fails).shrink(args);
        (args, last)
    }

    /// A fresh fork of the post-`setUp` chain, its cheatcodes installed.
    fn fork(&self) -> Result<(Devnet, CheatcodesFactory), String> {
        let mut devnet = self.base.devnet.fork();
        let cheats = self.cheats(&devnet);
        install(&mut devnet, Arc::new(cheats.clone()), self.base.coverage.as_ref())?;
        Ok((devnet, cheats))
    }

    /// The test contract's runtime code, as deployed.
    fn runtime_code(&self) -> Bytes {
        self.base.devnet.code(self.base.address, Default::default()).unwrap_or_default()
    }

    /// The cheatcodes of a fork of the post-`setUp` chain, from `setUp`'s state.
    fn cheats(&self, fork: &Devnet) -> CheatcodesFactory {
        CheatcodesFactory::new(self.base.cheats.clone())
            .with_errors(Arc::clone(&self.contract.errors))
            .with_pipe(fork.pipe())
    }

    /// One run: the test's transaction with `calldata` on a fresh fork.
    fn case(&self, calldata: Bytes) -> Case {
        let mut case = Case {
            verdict: Verdict::Pass,
            gas: 0,
            records: Vec::new(),
            tx_hash: B256::ZERO,
            calls: Vec::new(),
            labels: self.base.cheats.labels().clone(),
            logs: self.base.logs.clone(),
        };
        let (devnet, cheats) = match self.fork() {
            Ok(fork) => fork,
            Err(reason) => {
                case.verdict = Verdict::Fail(reason);
                return case;
            }
        };
        let logs = console_lines(&devnet);
        let sent = send(&devnet, devnet.accounts()[0], Some(self.base.address), calldata)
            .and_then(|hash| mined(&devnet, hash, "the test transaction").map(|r| (hash, r)));
        case.labels = cheats.state().labels().clone();
        case.verdict = match sent {
            Err(reason) => Verdict::Fail(reason),
            Ok((hash, receipt)) => {
                case.tx_hash = hash;
                case.gas = receipt.gas_used;
                case.records = receipt.inference.clone();
                self.verdict(&receipt)
            }
        };
        case.logs.append(&mut logs.lock());
        case.calls = cheats
            .calls()
            .into_iter()
            .map(|call| {
                let code = devnet.code(call.address, Default::default()).unwrap_or_default();
                (call, keccak256(&code), code.len())
            })
            .collect();
        case
    }

    fn verdict(&self, receipt: &TxReceipt) -> Verdict {
        if !receipt.success && receipt.halt_reason.is_none() {
            if receipt.output.as_ref() == reverted_with(ASSUME_REJECTED).as_slice() {
                return Verdict::Rejected;
            }
            if receipt.output.as_ref() == reverted_with(SKIPPED).as_slice() {
                return Verdict::Skipped;
            }
        }
        match (receipt.success, self.expects_failure()) {
            (true, false) | (false, true) => Verdict::Pass,
            (true, true) => Verdict::Fail("the test was expected to fail (testFail*) but passed".into()),
            (false, false) if receipt.output.is_empty() && self.contract.takes_enum.contains(self.signature) => {
                Verdict::Fail(format!(
                    "{} (an enum argument past the enum's last variant reverts so, before the test runs: \
                     take a uint8 and convert it with `Color(x % count)`)",
                    failure(self.contract, receipt)
                ))
            }
            (false, false) => Verdict::Fail(failure(self.contract, receipt)),
        }
    }
}

/// The revert data of a cheatcode that reverts with `reason`.
fn reverted_with(reason: &str) -> Vec<u8> {
    Revert::from(reason).abi_encode()
}

fn failure(contract: &TestContract, receipt: &TxReceipt) -> String {
    match &receipt.halt_reason {
        Some(Halt::OutOfGas(_)) => {
            format!("ran out of gas (the test gas limit is {TEST_GAS_LIMIT}): does it end?")
        }
        Some(halt) => format!("the EVM halted: {}", halt.name()),
        None => contract.errors.decode(&receipt.output).to_string(),
    }
}

/// Collects the `console.log` lines of `devnet`'s mined transactions from
/// now on (its mempool's console), in order.
fn console_lines(devnet: &Devnet) -> Arc<Mutex<Vec<String>>> {
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    if let Some(pipe) = devnet.pipe() {
        let sink = Arc::clone(&lines);
        pipe.set_console(Some(ConsoleSink(Arc::new(move |line: &str| sink.lock().push(line.to_owned())))));
    }
    lines
}

/// Installs `inspectors` in a test devnet, with a hit counter beside them
/// when `coverage` counts.
fn install(
    devnet: &mut Devnet,
    inspectors: Arc<dyn InspectorFactory>,
    coverage: Option<&Arc<Coverage>>,
) -> Result<(), String> {
    let inspectors: Arc<dyn InspectorFactory> = match coverage {
        Some(coverage) => Arc::new(coverage::Counted { inner: inspectors, coverage: Arc::clone(coverage) }),
        None => inspectors,
    };
    devnet.set_inspectors(inspectors).map_err(|_| "the test devnet already has an inspector".to_owned())
}

/// The receipt of a sent transaction, once mined (its inference may run for
/// up to the executor's timeout, which this wait outlasts).
/// `what` names the transaction in the error: why the devnet dropped it,
/// if it did.
fn mined(devnet: &Devnet, hash: B256, what: &str) -> Result<TxReceipt, String> {
    devnet.wait_for_receipt(hash, Duration::from_secs(600)).ok_or_else(|| match devnet.dropped_reason(hash) {
        Some(why) => format!("{what} was dropped: {why}"),
        None => format!("{what} was not mined"),
    })
}

fn send(devnet: &Devnet, from: Address, to: Option<Address>, input: Bytes) -> Result<B256, String> {
    let mut request = TransactionRequest::default().from(from).input(input.into()).gas_limit(TEST_GAS_LIMIT);
    if let Some(to) = to {
        request = request.to(to);
    }
    devnet.send_transaction(request).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_test_contracts_balance_is_two_to_the_96_minus_one() {
        assert_eq!(TEST_CONTRACT_BALANCE, (U256::from(1) << 96) - U256::from(1));
    }
}
