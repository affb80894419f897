//! The cheatcodes of `nml test`: a revm inspector that answers calls to the
//! conventional `Vm` address (0x7109709ECfa91a80626fF3989D68f67F5b1DD12D)
//! as `stdlib/nml/Test.sol` declares them, and serves mocked inference.
//!
//! Per-transaction state (pranks, expected reverts and events, state
//! snapshots) lives in the inspector and ends with the transaction. What
//! outlives a transaction — inference and call mocks, labels, the block and
//! transaction overrides (`warp`, `roll`, `fee`, `chainId`, …), the next
//! snapshot id — is a [`CheatState`]: each
//! inspector starts from the shared copy and works on its own, and only the
//! inclusion pass publishes its copy when the transaction ends. So mocks and
//! warps made in `setUp` hold in every test, and a mock made halfway through a
//! test does not leak from the mempool's simulation pass into the calls
//! before it at inclusion.
//!
//! This file holds the inspector, the dispatch of every cheatcode and the
//! expectations (reverts, events, calls); the rest have rooms of their own:
//! [`vm`] the interface, `accounts` keys, storage, code and nonces, `block`
//! the block and transaction environment, `calls` mocked, expected and
//! recorded calls and logs, `mocks` mocked inference and LLM calls,
//! `snapshots` state snapshots (and why a revert to one keeps revm's
//! journal consistent), `tee` the enclave and settlement cheatcodes, `text`
//! `toString` and environment variables.

use std::collections::BTreeMap;
use std::sync::Arc;

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{Address, B256, Bytes, Log, U256, address, keccak256};
use alloy_sol_types::{Revert, SolError, SolInterface, SolValue};
use parking_lot::Mutex;
use revm::Inspector;
use revm::context::ContextTr;
use revm::context_interface::JournalTr;
use revm::context_interface::journaled_state::account::JournaledAccountTr;
use revm::interpreter::{
    CallInputs, CallOutcome, CreateInputs, CreateOutcome, Gas, InstructionResult, InterpreterResult,
};

use crate::evm::console::CONSOLE_ADDRESS;
use crate::evm::{DynInspector, EvmContext, InspectorFactory, Phase};
use crate::mempool::INFERENCE_PRECOMPILE;
use crate::mempool::Pipe;
use crate::testing::revert::RevertDecoder;

mod accounts;
mod block;
mod calls;
mod files;
mod mocks;
mod snapshots;
mod tee;
mod text;
mod vm;

pub use vm::Vm;

use block::{EnvOverrides, TxEnvAtStart};
use calls::{CallMock, ExpectedCall};
use mocks::{LlmMock, Mock, MockAnswer};
use snapshots::{AfterRevert, Frames, Snapshots};

/// The revert reason of `vm.assume(false)`: a fuzz test's runner draws
/// other arguments instead of failing the test.
pub const ASSUME_REJECTED: &str = "vm.assume: these arguments are rejected";

/// The revert reason of `vm.skip(true)`: the runner reports the test as
/// skipped.
pub const SKIPPED: &str = "vm.skip: the test skips itself";

/// The address of the `Vm` contract, as in Foundry.
pub const VM_ADDRESS: Address = address!("7109709ECfa91a80626fF3989D68f67F5b1DD12D");

/// Cheatcode state that outlives one transaction: inference, LLM and call
/// mocks, labels, block and transaction overrides, the next snapshot id.
#[derive(Debug, Clone, Default)]
pub struct CheatState {
    mocks: Vec<Mock>,
    llm_mocks: Vec<LlmMock>,
    labels: BTreeMap<Address, String>,
    /// `mockCall` and `mockCallRevert`.
    call_mocks: Vec<CallMock>,
    /// `warp`, `roll`, `fee`, `coinbase`, `prevrandao`, `chainId`,
    /// `txGasPrice`: what transactions see from then on.
    env: EnvOverrides,
    /// The id of the next `snapshotState` (they count on from `setUp`, as in Foundry).
    next_snapshot_id: U256,
    /// The project's root: where `readFile` and the like read.
    root: Option<Arc<std::path::Path>>,
}

impl CheatState {
    /// The names `vm.label` gave to addresses.
    pub fn labels(&self) -> &BTreeMap<Address, String> {
        &self.labels
    }
}

/// Makes a [`Cheatcodes`] inspector for every EVM of one test, all sharing
/// one [`CheatState`].
#[derive(Debug, Clone, Default)]
pub struct CheatcodesFactory {
    state: Arc<Mutex<CheatState>>,
    calls: Arc<Mutex<Vec<GasCall>>>,
    /// The devnet's inference mempool: its enclaves (`teeAttest`,
    /// `teeFault`) and their attestations (`teeAttestation`).
    pipe: Option<Arc<Pipe>>,
    /// Names the reverts a `vm.expectRevert` did not expect.
    errors: Arc<RevertDecoder>,
}

/// A call the test contract made at inclusion, for the gas report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GasCall {
    /// The contract called.
    pub address: Address,
    /// The function's selector.
    pub selector: [u8; 4],
    /// Gas the call used.
    pub gas: u64,
}

impl CheatcodesFactory {
    /// A factory whose inspectors share `state`.
    pub fn new(state: CheatState) -> Self {
        Self { state: Arc::new(Mutex::new(state)), calls: Arc::default(), pipe: None, errors: Arc::default() }
    }

    /// Lets `readFile` and the like read the files under `root` (the
    /// project's); without one they revert.
    pub fn with_root(self, root: Option<Arc<std::path::Path>>) -> Self {
        self.state.lock().root = root;
        self
    }

    /// Decodes the reverts a `vm.expectRevert` did not expect with `errors`
    /// (the default knows the stdlib's errors only).
    pub fn with_errors(mut self, errors: Arc<RevertDecoder>) -> Self {
        self.errors = errors;
        self
    }

    /// Gives the TEE cheatcodes the devnet's inference mempool.
    pub fn with_pipe(mut self, pipe: Option<Arc<Pipe>>) -> Self {
        self.pipe = pipe;
        self
    }

    /// The calls test contracts made so far, in the inclusion pass.
    pub fn calls(&self) -> Vec<GasCall> {
        self.calls.lock().clone()
    }

    /// A copy of the shared state (to start another test from it).
    pub fn state(&self) -> CheatState {
        self.state.lock().clone()
    }
}

impl InspectorFactory for CheatcodesFactory {
    fn inspector(&self, phase: Phase) -> DynInspector {
        let inclusion = phase == Phase::Inclusion;
        let calls = inclusion.then(|| Arc::clone(&self.calls));
        let local = self.state.lock().clone();
        Box::new(Cheatcodes {
            shared: Arc::clone(&self.state),
            local,
            publish: inclusion,
            calls,
            pipe: self.pipe.clone(),
            errors: Arc::clone(&self.errors),
            ..Cheatcodes::default()
        })
    }
}

#[derive(Debug, Clone, Copy)]
struct Prank {
    sender: Address,
    /// `tx.origin` during the pranked calls, if the prank sets it.
    origin: Option<Address>,
    /// The pranking contract and the depth it calls from.
    caller: Address,
    depth: usize,
    once: bool,
}

#[derive(Debug, Clone)]
enum RevertMatch {
    Any,
    Data(Bytes),
    Selector([u8; 4]),
}

#[derive(Debug, Clone)]
struct ExpectedRevert {
    matcher: RevertMatch,
    depth: usize,
}

#[derive(Debug, Clone)]
struct ExpectedEmit {
    /// The test contract and its depth.
    emitter: Address,
    depth: usize,
    /// Which of topics 1–3 and the data must match (topic 0, the event's
    /// signature, always does).
    checks: [bool; 4],
    /// The contract that must emit it, if any.
    address: Option<Address>,
    /// The event the test emitted after `expectEmit()`.
    expected: Option<Log>,
    /// Whether the checked call is running, and whether it emitted it.
    in_call: bool,
    found: bool,
}

impl ExpectedEmit {
    /// Whether `log` is the `expected` event, on the parts this expectation checks.
    fn matches(&self, expected: &Log, log: &Log) -> bool {
        let (want, got) = (expected.topics(), log.topics());
        want.len() == got.len()
            && want.first() == got.first()
            && (1..want.len()).all(|i| !self.checks[i - 1] || want[i] == got[i])
            && (!self.checks[3] || expected.data.data == log.data.data)
            && self.address.is_none_or(|a| a == log.address)
    }
}

/// The cheatcode inspector of one EVM.
#[derive(Debug, Default)]
pub struct Cheatcodes {
    shared: Arc<Mutex<CheatState>>,
    /// This EVM's copy of the shared state.
    local: CheatState,
    /// Whether to publish `local` when a transaction ends (inclusion only).
    publish: bool,
    /// The running transaction's own environment, from when `local`'s
    /// overrides were applied to it (at its first call) until it ends.
    tx_start: Option<TxEnvAtStart>,
    /// The call frames running, for snapshots.
    frames: Frames,
    /// This transaction's state snapshots.
    snapshots: Snapshots,
    /// Where to record the test contract's calls (inclusion only).
    calls: Option<Arc<Mutex<Vec<GasCall>>>>,
    prank: Option<Prank>,
    /// The depth a prank that set `tx.origin` called from, and the origin
    /// to put back when that call ends.
    pranked_origin: Option<(usize, Address)>,
    expected_revert: Option<ExpectedRevert>,
    /// `expectEmit`s of this transaction, in the order the events must come.
    expected_emits: Vec<ExpectedEmit>,
    /// `expectCall`s of this transaction.
    expected_calls: Vec<ExpectedCall>,
    /// The logs emitted since `recordLogs`, if it was called.
    recording: Option<Vec<Log>>,
    /// Results (relay keys) that must be settled when the test ends.
    expected_settlements: Vec<alloy_primitives::B256>,
    pipe: Option<Arc<Pipe>>,
    errors: Arc<RevertDecoder>,
}

fn outcome(inputs: &CallInputs, result: InstructionResult, output: Bytes, gas_used: u64) -> CallOutcome {
    let mut gas = Gas::new(inputs.gas_limit);
    let _ = gas.record_regular_cost(gas_used.min(inputs.gas_limit));
    CallOutcome::new(InterpreterResult::new(result, output, gas), inputs.return_memory_offset.clone())
}

fn revert(inputs: &CallInputs, reason: &str) -> CallOutcome {
    outcome(inputs, InstructionResult::Revert, Revert::from(reason).abi_encode().into(), 0)
}

/// A cheatcode's answer: `value` encoded (nothing for `()`), or a revert
/// with the reason it failed.
fn answer<T: SolValue, E: std::fmt::Display>(inputs: &CallInputs, result: Result<T, E>) -> CallOutcome {
    match result {
        Ok(value) => ok(inputs, value.abi_encode()),
        Err(e) => revert(inputs, &e.to_string()),
    }
}

fn ok(inputs: &CallInputs, output: Vec<u8>) -> CallOutcome {
    outcome(inputs, InstructionResult::Return, output.into(), 0)
}

/// A `string` a cheatcode returns.
fn text_answer(inputs: &CallInputs, text: String) -> CallOutcome {
    ok(inputs, (text,).abi_encode_params())
}

/// `envUint` and the like: the variable `name` as a `ty`, or a revert that names it.
fn env_answer(inputs: &CallInputs, cheatcode: &str, name: &str, ty: DynSolType) -> CallOutcome {
    match text::env_var(name, &ty) {
        Ok(value) => ok(inputs, value.abi_encode()),
        Err(e) => revert(inputs, &format!("vm.{cheatcode}: {e}")),
    }
}

/// A file or JSON cheatcode's answer: the value, or a revert that says
/// why there is none.
fn fixture<T: SolValue>(inputs: &CallInputs, cheatcode: &str, value: Result<T, files::FixtureError>) -> CallOutcome {
    match value {
        Ok(value) => ok(inputs, (value,).abi_encode_params()),
        Err(e) => revert(inputs, &format!("vm.{cheatcode}: {e}")),
    }
}

/// A JSON cheatcode's answer: the value read, or a revert that says why
/// there is none.
fn json_answer(inputs: &CallInputs, cheatcode: &str, value: Result<DynSolValue, files::FixtureError>) -> CallOutcome {
    match value {
        Ok(value) => ok(inputs, DynSolValue::Tuple(vec![value]).abi_encode_params()),
        Err(e) => revert(inputs, &format!("vm.{cheatcode}: {e}")),
    }
}

/// `envOr(name, default)`.
fn env_or_answer(inputs: &CallInputs, name: &str, default: DynSolValue) -> CallOutcome {
    ok(inputs, text::env_or(name, default).abi_encode())
}

impl Cheatcodes {
    fn cheatcode(&mut self, ctx: &mut EvmContext, inputs: &CallInputs) -> CallOutcome {
        let data = inputs.input.bytes(ctx);
        let depth = ctx.journal().depth();
        let call = match Vm::VmCalls::abi_decode_validate(&data) {
            Ok(call) => call,
            Err(_) => {
                let selector = data.get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok());
                if let Some(signature) = selector.and_then(Vm::VmCalls::signature_by_selector) {
                    return revert(inputs, &format!("vm.{signature}: the arguments cannot be decoded"));
                }
                let selector = selector.map(alloy_primitives::hex::encode).unwrap_or_default();
                return revert(
                    inputs,
                    &format!("unknown cheatcode 0x{selector}: nml's Vm does not implement it (see docs/testing.md)"),
                );
            }
        };
        let caller = inputs.caller;
        let prank = |sender, origin, once| Some(Prank { sender, origin, caller, depth, once });
        match call {
            Vm::VmCalls::prank_0(c) => self.prank = prank(c.sender, None, true),
            Vm::VmCalls::prank_1(c) => self.prank = prank(c.msgSender, Some(c.txOrigin), true),
            Vm::VmCalls::startPrank_0(c) => self.prank = prank(c.sender, None, false),
            Vm::VmCalls::startPrank_1(c) => self.prank = prank(c.msgSender, Some(c.txOrigin), false),
            Vm::VmCalls::stopPrank(_) => self.prank = None,
            Vm::VmCalls::deal(c) => match ctx.journal_mut().load_account_mut(c.account) {
                Ok(mut account) => account.data.set_balance(c.newBalance),
                Err(e) => return revert(inputs, &format!("deal: {e:?}")),
            },
            Vm::VmCalls::warp(c) => self.local.env.warp(ctx, c.newTimestamp),
            Vm::VmCalls::roll(c) => self.local.env.roll(ctx, c.newHeight),
            Vm::VmCalls::fee(c) => return answer(inputs, self.local.env.set_basefee(ctx, c.newBasefee)),
            Vm::VmCalls::chainId(c) => return answer(inputs, self.local.env.set_chain_id(ctx, c.newChainId)),
            Vm::VmCalls::txGasPrice(c) => return answer(inputs, self.local.env.set_gas_price(ctx, c.newGasPrice)),
            Vm::VmCalls::coinbase(c) => self.local.env.set_coinbase(ctx, c.newCoinbase),
            Vm::VmCalls::prevrandao_0(c) => return answer(inputs, self.local.env.set_prevrandao(ctx, c.newPrevrandao)),
            Vm::VmCalls::prevrandao_1(c) => {
                return answer(inputs, self.local.env.set_prevrandao(ctx, B256::from(c.newPrevrandao)));
            }
            Vm::VmCalls::getBlockNumber(_) => return ok(inputs, ctx.block.number.abi_encode()),
            Vm::VmCalls::getBlockTimestamp(_) => return ok(inputs, ctx.block.timestamp.abi_encode()),
            Vm::VmCalls::snapshotState(_) | Vm::VmCalls::snapshot(_) => {
                let running = self.frames.at(depth);
                let id = self.snapshots.take(ctx, &self.local.env, running, &mut self.local.next_snapshot_id);
                return ok(inputs, id.abi_encode());
            }
            Vm::VmCalls::revertToState(c) => {
                return self.revert_to_snapshot(ctx, inputs, "revertToState", c.snapshotId, AfterRevert::Keep);
            }
            Vm::VmCalls::revertTo(c) => {
                return self.revert_to_snapshot(ctx, inputs, "revertTo", c.snapshotId, AfterRevert::Keep);
            }
            Vm::VmCalls::revertToStateAndDelete(c) => {
                let id = c.snapshotId;
                return self.revert_to_snapshot(ctx, inputs, "revertToStateAndDelete", id, AfterRevert::Delete);
            }
            Vm::VmCalls::revertToAndDelete(c) => {
                return self.revert_to_snapshot(ctx, inputs, "revertToAndDelete", c.snapshotId, AfterRevert::Delete);
            }
            Vm::VmCalls::deleteStateSnapshot(c) => {
                return answer(inputs, self.snapshots.delete("deleteStateSnapshot", c.snapshotId));
            }
            Vm::VmCalls::deleteSnapshot(c) => {
                return answer(inputs, self.snapshots.delete("deleteSnapshot", c.snapshotId));
            }
            Vm::VmCalls::deleteStateSnapshots(_) | Vm::VmCalls::deleteSnapshots(_) => self.snapshots.delete_all(),
            Vm::VmCalls::expectRevert_0(_) => {
                self.expected_revert = Some(ExpectedRevert { matcher: RevertMatch::Any, depth });
            }
            Vm::VmCalls::expectRevert_1(c) => {
                self.expected_revert = Some(ExpectedRevert { matcher: RevertMatch::Data(c.revertData), depth });
            }
            Vm::VmCalls::expectRevert_2(c) => {
                self.expected_revert = Some(ExpectedRevert { matcher: RevertMatch::Selector(c.revertData.0), depth });
            }
            Vm::VmCalls::expectEmit_0(_) => self.expect_emit(caller, depth, [true; 4], None),
            Vm::VmCalls::expectEmit_1(c) => {
                self.expect_emit(caller, depth, [c.checkTopic1, c.checkTopic2, c.checkTopic3, c.checkData], None);
            }
            Vm::VmCalls::expectEmit_2(c) => {
                let checks = [c.checkTopic1, c.checkTopic2, c.checkTopic3, c.checkData];
                self.expect_emit(caller, depth, checks, Some(c.emitter));
            }
            Vm::VmCalls::expectEmit_3(c) => self.expect_emit(caller, depth, [true; 4], Some(c.emitter)),
            Vm::VmCalls::expectCall(c) => {
                self.expected_calls.push(ExpectedCall { callee: c.callee, data: c.data, seen: false });
            }
            Vm::VmCalls::assume(c) => {
                if !c.condition {
                    return revert(inputs, ASSUME_REJECTED);
                }
            }
            Vm::VmCalls::skip(c) => {
                if c.skipTest {
                    return revert(inputs, SKIPPED);
                }
            }
            Vm::VmCalls::addr(c) => return answer(inputs, accounts::address_of(c.privateKey)),
            Vm::VmCalls::sign(c) => {
                return match accounts::sign(c.privateKey, c.digest) {
                    // uint8 is encoded as any uint.
                    Ok((v, r, s)) => ok(inputs, (U256::from(v), r, s).abi_encode_params()),
                    Err(e) => revert(inputs, &e.to_string()),
                };
            }
            Vm::VmCalls::store(c) => return answer(inputs, accounts::store(ctx, c.target, c.slot, c.value)),
            Vm::VmCalls::load(c) => return answer(inputs, accounts::load(ctx, c.target, c.slot)),
            Vm::VmCalls::etch(c) => return answer(inputs, accounts::etch(ctx, c.target, c.newRuntimeBytecode)),
            Vm::VmCalls::getNonce(c) => return answer(inputs, accounts::nonce(ctx, c.account)),
            Vm::VmCalls::setNonce(c) => return answer(inputs, accounts::set_nonce(ctx, c.account, c.newNonce)),
            Vm::VmCalls::computeCreateAddress(c) => {
                return answer(inputs, accounts::create_address(c.deployer, c.nonce));
            }
            Vm::VmCalls::mockCall(c) => {
                self.local.call_mocks.push(CallMock { callee: c.callee, data: c.data, answer: Ok(c.returnData) });
            }
            Vm::VmCalls::mockCallRevert(c) => {
                self.local.call_mocks.push(CallMock { callee: c.callee, data: c.data, answer: Err(c.revertData) });
            }
            Vm::VmCalls::clearMockedCalls(_) => self.local.call_mocks.clear(),
            Vm::VmCalls::recordLogs(_) => self.recording = Some(Vec::new()),
            Vm::VmCalls::getRecordedLogs(_) => {
                let logs: Vec<Vm::Log> = self
                    .recording
                    .as_mut()
                    .map(std::mem::take)
                    .unwrap_or_default()
                    .iter()
                    .map(calls::recorded)
                    .collect();
                return ok(inputs, (logs,).abi_encode_params());
            }
            Vm::VmCalls::label(c) => {
                self.local.labels.insert(c.account, c.newLabel);
            }
            Vm::VmCalls::teeAttest(c) => return self.tee_attest(inputs, &c),
            Vm::VmCalls::teeAttestation(c) => return self.tee_attestation(inputs, &c),
            Vm::VmCalls::teeAdvanceToSettlement(_) => {
                if let Err(reason) = self.tee_advance_to_settlement(ctx) {
                    return revert(inputs, &format!("teeAdvanceToSettlement: {reason}"));
                }
            }
            Vm::VmCalls::expectSettlement(c) => {
                self.expected_settlements.push(tee::individual_key(c.teeId, c.inputHash, c.outputHash, c.timestamp));
            }
            Vm::VmCalls::teeSettle(c) => {
                let key = tee::individual_key(c.teeId, c.inputHash, c.outputHash, c.timestamp);
                if let Err(reason) = tee::settle_individual(ctx, key) {
                    return revert(inputs, &format!("teeSettle: {reason}"));
                }
            }
            Vm::VmCalls::teeSettleBatch(c) => {
                if let Err(reason) = tee::settle_batch(ctx, c.merkleRoot) {
                    return revert(inputs, &format!("teeSettleBatch: {reason}"));
                }
            }
            Vm::VmCalls::teeFault(c) => {
                if let Err(reason) = self.tee_fault(&c) {
                    return revert(inputs, &format!("teeFault: {reason}"));
                }
            }
            Vm::VmCalls::envOr_0(c) => return env_or_answer(inputs, &c.name, DynSolValue::Uint(c.defaultValue, 256)),
            Vm::VmCalls::envOr_1(c) => return env_or_answer(inputs, &c.name, DynSolValue::Bool(c.defaultValue)),
            Vm::VmCalls::envOr_2(c) => return env_or_answer(inputs, &c.name, DynSolValue::String(c.defaultValue)),
            Vm::VmCalls::envOr_3(c) => return env_or_answer(inputs, &c.name, DynSolValue::Address(c.defaultValue)),
            Vm::VmCalls::envOr_4(c) => return env_or_answer(inputs, &c.name, DynSolValue::Int(c.defaultValue, 256)),
            Vm::VmCalls::envOr_5(c) => {
                return env_or_answer(inputs, &c.name, DynSolValue::FixedBytes(c.defaultValue, 32));
            }
            Vm::VmCalls::envUint(c) => return env_answer(inputs, "envUint", &c.name, DynSolType::Uint(256)),
            Vm::VmCalls::envInt(c) => return env_answer(inputs, "envInt", &c.name, DynSolType::Int(256)),
            Vm::VmCalls::envAddress(c) => return env_answer(inputs, "envAddress", &c.name, DynSolType::Address),
            Vm::VmCalls::envBool(c) => return env_answer(inputs, "envBool", &c.name, DynSolType::Bool),
            Vm::VmCalls::envString(c) => return env_answer(inputs, "envString", &c.name, DynSolType::String),
            Vm::VmCalls::envBytes32(c) => {
                return env_answer(inputs, "envBytes32", &c.name, DynSolType::FixedBytes(32));
            }
            Vm::VmCalls::projectRoot(_) => {
                let root = self.local.root.as_ref().map(|r| r.display().to_string());
                return match root {
                    Some(root) => text_answer(inputs, root),
                    None => revert(inputs, &format!("vm.projectRoot: {}", files::FixtureError::NoRoot)),
                };
            }
            Vm::VmCalls::readFile(c) => {
                return fixture(inputs, "readFile", files::read_text(self.local.root.as_deref(), &c.path));
            }
            Vm::VmCalls::readFileBinary(c) => {
                let read = files::read(self.local.root.as_deref(), &c.path).map(Bytes::from);
                return fixture(inputs, "readFileBinary", read);
            }
            Vm::VmCalls::exists(c) => {
                return fixture(inputs, "exists", files::exists(self.local.root.as_deref(), &c.path));
            }
            Vm::VmCalls::keyExistsJson(c) => {
                return fixture(inputs, "keyExistsJson", files::key_exists(&c.json, &c.key));
            }
            Vm::VmCalls::parseJsonUint(c) => {
                return json_answer(inputs, "parseJsonUint", files::parse(&c.json, &c.key, &DynSolType::Uint(256)));
            }
            Vm::VmCalls::parseJsonInt(c) => {
                return json_answer(inputs, "parseJsonInt", files::parse(&c.json, &c.key, &DynSolType::Int(256)));
            }
            Vm::VmCalls::parseJsonBool(c) => {
                return json_answer(inputs, "parseJsonBool", files::parse(&c.json, &c.key, &DynSolType::Bool));
            }
            Vm::VmCalls::parseJsonAddress(c) => {
                return json_answer(inputs, "parseJsonAddress", files::parse(&c.json, &c.key, &DynSolType::Address));
            }
            Vm::VmCalls::parseJsonString(c) => {
                return json_answer(inputs, "parseJsonString", files::parse(&c.json, &c.key, &DynSolType::String));
            }
            Vm::VmCalls::parseJsonBytes32(c) => {
                return json_answer(
                    inputs,
                    "parseJsonBytes32",
                    files::parse(&c.json, &c.key, &DynSolType::FixedBytes(32)),
                );
            }
            Vm::VmCalls::parseJsonBytes(c) => {
                return json_answer(inputs, "parseJsonBytes", files::parse(&c.json, &c.key, &DynSolType::Bytes));
            }
            Vm::VmCalls::parseJsonUintArray(c) => {
                return json_answer(
                    inputs,
                    "parseJsonUintArray",
                    files::parse_array(&c.json, &c.key, &DynSolType::Uint(256)),
                );
            }
            Vm::VmCalls::parseJsonIntArray(c) => {
                return json_answer(
                    inputs,
                    "parseJsonIntArray",
                    files::parse_array(&c.json, &c.key, &DynSolType::Int(256)),
                );
            }
            Vm::VmCalls::parseJsonBoolArray(c) => {
                return json_answer(
                    inputs,
                    "parseJsonBoolArray",
                    files::parse_array(&c.json, &c.key, &DynSolType::Bool),
                );
            }
            Vm::VmCalls::parseJsonAddressArray(c) => {
                return json_answer(
                    inputs,
                    "parseJsonAddressArray",
                    files::parse_array(&c.json, &c.key, &DynSolType::Address),
                );
            }
            Vm::VmCalls::parseJsonStringArray(c) => {
                return json_answer(
                    inputs,
                    "parseJsonStringArray",
                    files::parse_array(&c.json, &c.key, &DynSolType::String),
                );
            }
            Vm::VmCalls::parseJsonBytes32Array(c) => {
                return json_answer(
                    inputs,
                    "parseJsonBytes32Array",
                    files::parse_array(&c.json, &c.key, &DynSolType::FixedBytes(32)),
                );
            }
            Vm::VmCalls::parseJsonFixed(c) => {
                return fixture(inputs, "parseJsonFixed", files::parse_fixed(&c.json, &c.key, c.decimals));
            }
            Vm::VmCalls::parseJsonFixedArray(c) => {
                return fixture(inputs, "parseJsonFixedArray", files::parse_fixed_array(&c.json, &c.key, c.decimals));
            }
            Vm::VmCalls::toString_0(c) => return text_answer(inputs, text::address(c.value)),
            Vm::VmCalls::toString_1(c) => return text_answer(inputs, text::hex_string(&c.value)),
            Vm::VmCalls::toString_2(c) => return text_answer(inputs, text::hex_string(c.value.as_slice())),
            Vm::VmCalls::toString_3(c) => return text_answer(inputs, c.value.to_string()),
            Vm::VmCalls::toString_4(c) => return text_answer(inputs, c.value.to_string()),
            Vm::VmCalls::toString_5(c) => return text_answer(inputs, c.value.to_string()),
            Vm::VmCalls::mockInference_0(c) => {
                let answer = MockAnswer::Output((c.output,).abi_encode_params().into());
                self.local.mocks.push(Mock { model: c.modelId, input: None, answer });
            }
            Vm::VmCalls::mockInference_1(c) => {
                let answer = MockAnswer::Output((c.output,).abi_encode_params().into());
                let input = Some(keccak256(c.input.abi_encode()));
                self.local.mocks.push(Mock { model: c.modelId, input, answer });
            }
            Vm::VmCalls::failInference(c) => {
                let answer = MockAnswer::Fail(c.reason);
                self.local.mocks.push(Mock { model: c.modelId, input: None, answer });
            }
            Vm::VmCalls::clearInferenceMocks(_) => self.local.mocks.clear(),
            Vm::VmCalls::mockLlm_0(c) => {
                self.local.llm_mocks.push(LlmMock { model: c.modelId, prompt: None, answer: Ok(c.answer) });
            }
            Vm::VmCalls::mockLlm_1(c) => {
                self.local.llm_mocks.push(LlmMock { model: c.modelId, prompt: Some(c.prompt), answer: Ok(c.answer) });
            }
            Vm::VmCalls::failLlm(c) => {
                self.local.llm_mocks.push(LlmMock { model: c.modelId, prompt: None, answer: Err(c.reason) });
            }
            Vm::VmCalls::clearLlmMocks(_) => self.local.llm_mocks.clear(),
        }
        ok(inputs, Vec::new())
    }

    /// `revertToState` and the like (`cheatcode`), from the code running now.
    fn revert_to_snapshot(
        &mut self,
        ctx: &mut EvmContext,
        inputs: &CallInputs,
        cheatcode: &'static str,
        id: U256,
        after: AfterRevert,
    ) -> CallOutcome {
        let running = self.frames.at(ctx.journal().depth());
        answer(inputs, self.snapshots.revert(cheatcode, id, after, ctx, &mut self.local.env, running))
    }

    /// The sender of a call that `caller` makes from `depth`, if a prank
    /// applies to it; a prank that sets `tx.origin` sets it for the call.
    fn pranked_sender(&mut self, ctx: &mut EvmContext, depth: usize, caller: Address) -> Option<Address> {
        let prank = self.prank.filter(|p| p.depth == depth && p.caller == caller)?;
        if prank.once {
            self.prank = None;
        }
        if let Some(origin) = prank.origin {
            self.pranked_origin = Some((depth, ctx.tx.caller));
            ctx.tx.caller = origin;
        }
        Some(prank.sender)
    }

    /// A call (or create) from `depth` ended: the `tx.origin` a prank set for it ends with it.
    fn end_pranked_origin(&mut self, ctx: &mut EvmContext, depth: usize) {
        if let Some((_, origin)) = self.pranked_origin.take_if(|(at, _)| *at == depth) {
            ctx.tx.caller = origin;
        }
    }

    fn expect_emit(&mut self, caller: Address, depth: usize, checks: [bool; 4], address: Option<Address>) {
        self.expected_emits.push(ExpectedEmit {
            emitter: caller,
            depth,
            checks,
            address,
            expected: None,
            in_call: false,
            found: false,
        });
    }

    /// The answer of a `mockCall` that applies to this call, if any.
    fn mocked_call(&self, ctx: &mut EvmContext, inputs: &CallInputs) -> Option<CallOutcome> {
        if self.local.call_mocks.is_empty() {
            return None;
        }
        let input = inputs.input.bytes(ctx);
        Some(match calls::mocked_call(&self.local.call_mocks, inputs.target_address, &input)? {
            Ok(data) => outcome(inputs, InstructionResult::Return, data.clone(), 0),
            Err(data) => outcome(inputs, InstructionResult::Revert, data.clone(), 0),
        })
    }

    /// At the transaction's first call: the block and transaction
    /// overrides, over the transaction's own environment (kept to put back).
    fn begin_transaction(&mut self, ctx: &mut EvmContext) {
        if self.tx_start.is_none() {
            self.tx_start = Some(TxEnvAtStart::capture(ctx));
            self.local.env.apply(ctx);
            self.snapshots.begin(self.local.next_snapshot_id);
        }
    }

    /// When the transaction's top-level call ends: an expectation nothing
    /// met fails the test, the transaction's own environment is back for
    /// revm to settle it with, and the inclusion pass publishes its state.
    fn end_transaction(&mut self, ctx: &mut EvmContext, result: &mut InterpreterResult) {
        let pending = match (&self.expected_revert, self.expected_emits.first()) {
            (Some(_), _) => Some("vm.expectRevert() was not followed by a call"),
            (None, _) if self.expected_emits.iter().any(|e| e.expected.is_none()) => {
                Some("vm.expectEmit() was not followed by an event")
            }
            (None, Some(_)) => Some("vm.expectEmit() was not followed by a call"),
            (None, None) => None,
        };
        let unmet_call = self.expected_calls.iter().find(|c| !c.seen).map(ExpectedCall::unmet);
        if let Some(reason) = pending.map(str::to_owned).or(unmet_call)
            && result.result.is_ok()
        {
            result.result = InstructionResult::Revert;
            result.output = Revert::from(reason).abi_encode().into();
        }
        self.expected_revert = None;
        self.expected_emits.clear();
        self.expected_calls.clear();
        self.recording = None;
        self.prank = None;
        self.pranked_origin = None;
        self.snapshots.end();
        if let Some(start) = self.tx_start.take() {
            start.restore(ctx);
        }
        if self.publish {
            *self.shared.lock() = self.local.clone();
        }
    }

    /// Checks the expected revert of the call (or create) ending at `depth`.
    fn check_expected_revert(&mut self, depth: usize, result: &mut InterpreterResult) {
        let Some(expected) = self.expected_revert.take_if(|e| e.depth == depth) else { return };
        let reverted = result.result.is_revert();
        if reverted && revert_matches(&expected.matcher, &result.output) {
            // The caller goes on as if the call returned: zeros decode as
            // any return type (0, false, empty arrays and strings).
            result.result = InstructionResult::Return;
            result.output = Bytes::from(vec![0u8; 32 * 32]);
        } else {
            let reason = if reverted {
                let data = self.errors.decode(&result.output).data();
                format!("call reverted with `{data}`, which is not the expected revert")
            } else {
                "call did not revert as expected".to_owned()
            };
            result.result = InstructionResult::Revert;
            result.output = Revert::from(reason).abi_encode().into();
        }
    }
}

fn revert_matches(matcher: &RevertMatch, data: &[u8]) -> bool {
    match matcher {
        RevertMatch::Any => true,
        // Raw revert data, or the message of an `Error(string)`.
        RevertMatch::Data(expected) => {
            expected.as_ref() == data
                || Revert::abi_decode(data).is_ok_and(|r| r.reason.as_bytes() == expected.as_ref())
        }
        RevertMatch::Selector(selector) => data.get(..4) == Some(selector.as_slice()),
    }
}

impl Inspector<EvmContext> for Cheatcodes {
    fn call(&mut self, ctx: &mut EvmContext, inputs: &mut CallInputs) -> Option<CallOutcome> {
        self.begin_transaction(ctx);
        let depth = ctx.journal().depth();
        self.frames.enter(depth);
        if inputs.target_address == VM_ADDRESS {
            return Some(self.cheatcode(ctx, inputs));
        }
        if let Some(sender) = self.pranked_sender(ctx, depth, inputs.caller) {
            inputs.caller = sender;
        }
        // The call after the expected events: each must come out of it.
        for emit in &mut self.expected_emits {
            if emit.expected.is_some() && emit.depth == depth && !emit.in_call {
                emit.in_call = true;
            }
        }
        if !self.expected_calls.is_empty() {
            let input = inputs.input.bytes(ctx);
            for expected in &mut self.expected_calls {
                expected.observe(inputs.target_address, &input);
            }
        }
        if inputs.bytecode_address == INFERENCE_PRECOMPILE {
            return self.mocked_inference(ctx, inputs);
        }
        self.mocked_call(ctx, inputs)
    }

    fn call_end(&mut self, ctx: &mut EvmContext, inputs: &CallInputs, outcome: &mut CallOutcome) {
        if inputs.target_address == VM_ADDRESS {
            return;
        }
        let depth = ctx.journal().depth();
        self.end_pranked_origin(ctx, depth);
        if let Some(calls) = &self.calls
            && depth == 1
            && inputs.bytecode_address != INFERENCE_PRECOMPILE
            && inputs.bytecode_address != CONSOLE_ADDRESS
            && let Some(selector) = inputs.input.bytes(ctx).get(..4).and_then(|s| <[u8; 4]>::try_from(s).ok())
        {
            let gas = outcome.result.gas.total_gas_spent();
            calls.lock().push(GasCall { address: inputs.target_address, selector, gas });
        }
        self.check_expected_revert(depth, &mut outcome.result);
        let checked = self.expected_emits.iter().filter(|e| e.in_call && e.depth == depth).count();
        if checked > 0 {
            let missed = self.expected_emits.iter().filter(|e| e.in_call && e.depth == depth && !e.found).count();
            self.expected_emits.retain(|e| !(e.in_call && e.depth == depth));
            if missed > 0 && outcome.result.result.is_ok() {
                outcome.result.result = InstructionResult::Revert;
                let reason = if checked == 1 {
                    "expected event was not emitted".to_owned()
                } else {
                    format!("expected event was not emitted ({missed} of {checked} expected, in order, were not)")
                };
                outcome.result.output = Revert::from(reason).abi_encode().into();
            }
        }
        if depth == 0 {
            self.check_expected_settlements(ctx, &mut outcome.result);
            self.end_transaction(ctx, &mut outcome.result);
        }
    }

    fn create(&mut self, ctx: &mut EvmContext, inputs: &mut CreateInputs) -> Option<CreateOutcome> {
        self.begin_transaction(ctx);
        let depth = ctx.journal().depth();
        self.frames.enter(depth);
        if let Some(sender) = self.pranked_sender(ctx, depth, inputs.caller()) {
            inputs.set_call(sender);
        }
        None
    }

    fn create_end(&mut self, ctx: &mut EvmContext, _inputs: &CreateInputs, outcome: &mut CreateOutcome) {
        let depth = ctx.journal().depth();
        self.end_pranked_origin(ctx, depth);
        self.check_expected_revert(depth, &mut outcome.result);
        if depth == 0 {
            self.check_expected_settlements(ctx, &mut outcome.result);
            self.end_transaction(ctx, &mut outcome.result);
        }
    }

    fn log(&mut self, _ctx: &mut EvmContext, log: Log) {
        if let Some(recording) = &mut self.recording {
            recording.push(log.clone());
        }
        // An expectation without its event takes the test's next one…
        if let Some(emit) = self.expected_emits.iter_mut().find(|e| e.expected.is_none()) {
            if log.address == emit.emitter {
                emit.expected = Some(log);
            }
            return;
        }
        // …and during the checked call, each log meets only the first
        // expectation not met yet: events come in order, each once.
        if let Some(emit) = self.expected_emits.iter_mut().find(|e| e.in_call && !e.found)
            && let Some(expected) = &emit.expected
            && emit.matches(expected, &log)
        {
            emit.found = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overloaded_cheatcodes_have_foundrys_selectors() {
        use alloy_sol_types::SolCall;
        assert_eq!(Vm::prank_0Call::SELECTOR, [0xca, 0x66, 0x9f, 0xa7]);
        assert_eq!(Vm::expectRevert_0Call::SELECTOR, [0xf4, 0x84, 0x48, 0x14]);
        assert_eq!(Vm::dealCall::SELECTOR, [0xc8, 0x8a, 0x5e, 0x6d]);
        assert_eq!(Vm::warpCall::SELECTOR, [0xe5, 0xd6, 0xbf, 0x02]);
        assert_eq!(Vm::addrCall::SELECTOR, [0xff, 0xa1, 0x86, 0x49]);
        assert_eq!(Vm::signCall::SELECTOR, [0xe3, 0x41, 0xea, 0xa4]);
        assert_eq!(Vm::storeCall::SELECTOR, [0x70, 0xca, 0x10, 0xbb]);
        assert_eq!(Vm::loadCall::SELECTOR, [0x66, 0x7f, 0x9d, 0x70]);
        assert_eq!(Vm::etchCall::SELECTOR, [0xb4, 0xd6, 0xc7, 0x82]);
        assert_eq!(Vm::assumeCall::SELECTOR, [0x4c, 0x63, 0xe5, 0x62]);
        assert_eq!(Vm::skipCall::SELECTOR, [0xdd, 0x82, 0xd1, 0x3e]);
        assert_eq!(Vm::expectEmit_1Call::SELECTOR, [0x49, 0x1c, 0xc7, 0xc2]);
        assert_eq!(Vm::expectCallCall::SELECTOR, [0xbd, 0x6a, 0xf4, 0x34]);
        assert_eq!(Vm::mockCallCall::SELECTOR, [0xb9, 0x62, 0x13, 0xe4]);
        assert_eq!(Vm::recordLogsCall::SELECTOR, [0x41, 0xaf, 0x2f, 0x52]);
        assert_eq!(Vm::getRecordedLogsCall::SELECTOR, [0x19, 0x15, 0x53, 0xa4]);
        // forge-std's Vm.sol, compiled: its `methodIdentifiers`.
        assert_eq!(Vm::prank_1Call::SELECTOR, [0x47, 0xe5, 0x0c, 0xce]);
        assert_eq!(Vm::startPrank_1Call::SELECTOR, [0x45, 0xb5, 0x60, 0x78]);
        assert_eq!(Vm::snapshotStateCall::SELECTOR, [0x9c, 0xd2, 0x38, 0x35]);
        assert_eq!(Vm::revertToStateCall::SELECTOR, [0xc2, 0x52, 0x74, 0x05]);
        assert_eq!(Vm::revertToStateAndDeleteCall::SELECTOR, [0x3a, 0x19, 0x85, 0xdc]);
        assert_eq!(Vm::deleteStateSnapshotCall::SELECTOR, [0x08, 0xd6, 0xb3, 0x7a]);
        assert_eq!(Vm::deleteStateSnapshotsCall::SELECTOR, [0xe0, 0x93, 0x3c, 0x74]);
        assert_eq!(Vm::snapshotCall::SELECTOR, [0x97, 0x11, 0x71, 0x5a]);
        assert_eq!(Vm::revertToCall::SELECTOR, [0x44, 0xd7, 0xf0, 0xa4]);
        assert_eq!(Vm::revertToAndDeleteCall::SELECTOR, [0x03, 0xe0, 0xac, 0xa9]);
        assert_eq!(Vm::deleteSnapshotCall::SELECTOR, [0xa6, 0x36, 0x85, 0x57]);
        assert_eq!(Vm::deleteSnapshotsCall::SELECTOR, [0x42, 0x1a, 0xe4, 0x69]);
        assert_eq!(Vm::chainIdCall::SELECTOR, [0x40, 0x49, 0xdd, 0xd2]);
        assert_eq!(Vm::feeCall::SELECTOR, [0x39, 0xb3, 0x7a, 0xb0]);
        assert_eq!(Vm::coinbaseCall::SELECTOR, [0xff, 0x48, 0x3c, 0x54]);
        assert_eq!(Vm::prevrandao_0Call::SELECTOR, [0x3b, 0x92, 0x55, 0x49]);
        assert_eq!(Vm::prevrandao_1Call::SELECTOR, [0x9c, 0xb1, 0xc0, 0xd4]);
        assert_eq!(Vm::txGasPriceCall::SELECTOR, [0x48, 0xf5, 0x0c, 0x0f]);
        assert_eq!(Vm::getBlockNumberCall::SELECTOR, [0x42, 0xcb, 0xb1, 0x5c]);
        assert_eq!(Vm::getBlockTimestampCall::SELECTOR, [0x79, 0x6b, 0x89, 0xb9]);
        assert_eq!(Vm::toString_0Call::SELECTOR, [0x56, 0xca, 0x62, 0x3e]);
        assert_eq!(Vm::toString_1Call::SELECTOR, [0x71, 0xaa, 0xd1, 0x0d]);
        assert_eq!(Vm::toString_2Call::SELECTOR, [0xb1, 0x1a, 0x19, 0xe8]);
        assert_eq!(Vm::toString_3Call::SELECTOR, [0x71, 0xdc, 0xe7, 0xda]);
        assert_eq!(Vm::toString_4Call::SELECTOR, [0x69, 0x00, 0xa3, 0xae]);
        assert_eq!(Vm::toString_5Call::SELECTOR, [0xa3, 0x22, 0xc4, 0x0e]);
        assert_eq!(Vm::computeCreateAddressCall::SELECTOR, [0x74, 0x63, 0x7a, 0x7a]);
        assert_eq!(Vm::envUintCall::SELECTOR, [0xc1, 0x97, 0x8d, 0x1f]);
        assert_eq!(Vm::envIntCall::SELECTOR, [0x89, 0x2a, 0x0c, 0x61]);
        assert_eq!(Vm::envAddressCall::SELECTOR, [0x35, 0x0d, 0x56, 0xbf]);
        assert_eq!(Vm::envBoolCall::SELECTOR, [0x7e, 0xd1, 0xec, 0x7d]);
        assert_eq!(Vm::envStringCall::SELECTOR, [0xf8, 0x77, 0xcb, 0x19]);
        assert_eq!(Vm::envBytes32Call::SELECTOR, [0x97, 0x94, 0x90, 0x42]);
        assert_eq!(Vm::envOr_3Call::SELECTOR, [0x56, 0x1f, 0xe5, 0x40]);
        assert_eq!(Vm::envOr_4Call::SELECTOR, [0xbb, 0xcb, 0x71, 0x3e]);
        assert_eq!(Vm::envOr_5Call::SELECTOR, [0xb4, 0xa8, 0x58, 0x92]);
    }
}
