//! Invariant tests: an `invariant…()` function of a test contract states
//! what must hold whatever anyone does. Each run starts from a fresh fork of
//! the post-`setUp` chain and makes [`InvariantConfig::depth`] random calls
//! — a sender calls a state-changing function of a target contract with
//! drawn arguments — each a transaction through the inference mempool, and
//! checks the invariant (an `eth_call`) after every call that succeeded. A
//! broken invariant is reported with the calls that broke it, shrunk to the
//! fewest that still do ([`SHRINK_BUDGET`]).
//!
//! The targets are the contracts the deployment and `setUp` created, known
//! by their code ([`super::Artifacts`]), unless the test contract names its own
//! through the lists of `StdInvariant` (`stdlib/nml/Invariant.sol`:
//! `targetContract`, `targetSender`, `targetSelector` and their
//! `exclude…`). Senders are a few fixed actors and, one call in four, a
//! drawn address. Calls pay no gas price (the test chain's base fee is
//! zero), so senders need no balance. A call that reverts is counted and
//! skipped, unless [`InvariantConfig::fail_on_revert`]. An
//! `afterInvariant()` function, when the test contract has one, runs at the
//! end of every run and fails the test when it reverts.
//!
//! Draws come from [`fuzz::Draw`], seeded like fuzz tests' (a failure in CI
//! fails the same way on a laptop); the words of the events the calls emit
//! join its dictionary as a run goes, so a value one call logs is one a later
//! call may pass.

use std::collections::BTreeSet;

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{Address, Bytes, U256, keccak256};
use alloy_rpc_types_eth::TransactionRequest;
use serde::Serialize;

use super::artifacts::Function;
use super::{Outcome, Run, TEST_GAS_LIMIT, TestResult, console_lines, fuzz, mined, test_name};
use crate::chain::TxReceipt;
use crate::node::{Devnet, NodeError};

/// How invariant tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvariantConfig {
    /// Runs (each from the post-`setUp` chain) that must keep the invariant.
    pub runs: u32,
    /// Calls in each run.
    pub depth: u32,
    /// Whether a call that reverts fails the test (by default it is
    /// skipped: handlers are called with arguments nobody checked).
    pub fail_on_revert: bool,
}

impl Default for InvariantConfig {
    fn default() -> Self {
        Self { runs: 256, depth: 15, fail_on_revert: false }
    }
}

/// The most replays shrinking a failing sequence of calls may take: half
/// to drop calls, half to simplify the arguments of those left.
pub const SHRINK_BUDGET: u32 = 256;

/// How an invariant test's runs went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InvariantReport {
    /// Runs that kept the invariant.
    pub runs: u32,
    /// Calls made, reverted ones included (shrinking's replays excluded).
    pub calls: u64,
    /// Calls that reverted.
    pub reverts: u64,
    /// Model and LLM calls the calls made (mocked ones excluded).
    pub inferences: u64,
    /// The seed of the draws ([`fuzz::FuzzConfig::seed`]).
    pub seed: u64,
    /// The shrunk calls that broke the invariant, if a run broke it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sequence: Option<Vec<SequenceCall>>,
}

/// One call of a failing sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SequenceCall {
    /// Who made it.
    pub sender: Address,
    /// The contract called.
    pub target: Address,
    /// Its `vm.label`; else the contract whose code it runs (`Token`, or
    /// `Token@0x…` when several targets run that code).
    pub contract: String,
    /// The call in words: `deposit(5, 0x…)`.
    pub call: String,
    /// Its calldata.
    pub calldata: Bytes,
}

/// Functions of a contract, by selector (`StdInvariant.FuzzSelector`).
type Selection = (Address, Vec<[u8; 4]>);

/// A contract the calls go to.
struct Target {
    address: Address,
    name: String,
    functions: Vec<Function>,
}

/// One call of a run: `sender` calls function `function` of target
/// `target` with `args`.
#[derive(Debug, Clone)]
struct Call {
    sender: Address,
    target: usize,
    function: usize,
    args: Vec<DynSolValue>,
}

/// Calls made and reverted, and the inferences they made.
#[derive(Debug, Default)]
struct Tally {
    calls: u64,
    reverts: u64,
    inferences: u64,
}

/// Where and why a sequence of calls failed: after call `at` (the
/// sequence's length for `afterInvariant`).
struct Broken {
    at: usize,
    reason: String,
}

/// Senders when the test contract names none: fixed, so that a run's calls
/// often come from one sender (a deposit, then its withdrawal).
fn actors() -> [Address; 3] {
    [1u8, 2, 3].map(|i| Address::from_word(keccak256([b"nml.invariant.sender.".as_slice(), &[i]].concat())))
}

/// An invariant test's campaign: what it calls and who calls.
struct Campaign<'r, 'a> {
    run: &'r Run<'a>,
    targets: Vec<Target>,
    /// The senders the test contract names (empty: the actors, and drawn ones).
    senders: Vec<Address>,
    /// Addresses that never send: the excluded senders, and every contract
    /// of the test's chain.
    not_senders: BTreeSet<Address>,
    after: Option<[u8; 4]>,
}

impl Run<'_> {
    /// An invariant test: [`InvariantConfig::runs`] runs that keep the
    /// invariant, or the first that breaks it, its calls shrunk.
    pub(super) fn invariant(&self, config: &InvariantConfig, seed: u64, result: &mut TestResult) -> Outcome {
        let mut report = InvariantReport { runs: 0, calls: 0, reverts: 0, inferences: 0, seed, sequence: None };
        result.logs = self.base.logs.clone();
        let outcome = match Campaign::new(self) {
            Err(reason) => Outcome::Fail { reason },
            Ok(campaign) => campaign.go(config, &mut report, &mut result.logs),
        };
        result.invariant = Some(report);
        outcome
    }
}

impl<'r, 'a> Campaign<'r, 'a> {
    fn new(run: &'r Run<'a>) -> Result<Self, String> {
        let base = run.base;
        if let Err(reason) = check(run, &base.devnet) {
            return Err(format!("the invariant does not hold after setUp: {reason}"));
        }
        let targeted = run.addresses("targetContracts()")?;
        let excluded: BTreeSet<Address> = run.addresses("excludeContracts()")?.into_iter().collect();
        let selected = run.selections("targetSelectors()")?;
        let unselected = run.selections("excludeSelectors()")?;
        let chosen = !targeted.is_empty() || !selected.is_empty();
        let mut candidates = if chosen { targeted } else { base.created.clone() };
        for (address, _) in &selected {
            if !candidates.contains(address) {
                candidates.push(*address);
            }
        }
        let mut targets = Vec::new();
        for address in candidates {
            if excluded.contains(&address) || address == base.address || address == super::cheatcodes::VM_ADDRESS {
                continue;
            }
            let code = base.devnet.code(address, Default::default()).map_err(|e| e.to_string())?;
            let Some(artifact) = run.contract.artifacts.identify(&code) else {
                if chosen {
                    return Err(format!(
                        "cannot call {address}: its code is none of the project's contracts (an invariant test calls \
                         contracts whose ABI it knows)"
                    ));
                }
                continue;
            };
            let mut functions = match selected.iter().find(|(a, _)| *a == address) {
                None => artifact.functions.iter().filter(|f| f.mutates).cloned().collect(),
                Some((_, selectors)) => {
                    let mut functions = Vec::new();
                    for selector in selectors {
                        let function =
                            artifact.functions.iter().find(|f| f.selector == *selector).ok_or_else(|| {
                                format!(
                                    "targetSelector: {} has no function with selector 0x{}",
                                    artifact.name,
                                    alloy_primitives::hex::encode(selector)
                                )
                            })?;
                        functions.push(function.clone());
                    }
                    functions
                }
            };
            if let Some((_, selectors)) = unselected.iter().find(|(a, _)| *a == address) {
                functions.retain(|f| !selectors.contains(&f.selector));
            }
            if !functions.is_empty() {
                targets.push(Target { address, name: artifact.name.clone(), functions });
            }
        }
        if targets.is_empty() {
            return Err(if chosen {
                "no function to call: the targeted contracts have no state-changing function left to call".to_owned()
            } else {
                "no contract to call: setUp deploys no contract of the project with a state-changing function \
                 (or name one with targetContract)"
                    .to_owned()
            });
        }
        let mut not_senders: BTreeSet<Address> = run.addresses("excludeSenders()")?.into_iter().collect();
        not_senders.extend(base.created.iter().copied());
        not_senders.extend([base.address, super::cheatcodes::VM_ADDRESS, Address::ZERO]);
        let senders: Vec<Address> =
            run.addresses("targetSenders()")?.into_iter().filter(|s| !not_senders.contains(s)).collect();
        let after = run.contract.selector("afterInvariant()");
        Ok(Self { run, targets, senders, not_senders, after })
    }

    /// The runs, until one breaks the invariant.
    /// Runs the campaign; a failing sequence's `console.log` lines go to
    /// `logs` (after `setUp`'s).
    fn go(&self, config: &InvariantConfig, report: &mut InvariantReport, logs: &mut Vec<String>) -> Outcome {
        let run = self.run;
        let mut dictionary = fuzz::Dictionary::from_code(&run.runtime_code());
        for target in &self.targets {
            if let Ok(code) = run.base.devnet.code(target.address, Default::default()) {
                dictionary.add_code(&code);
            }
        }
        let mut draw = fuzz::Draw::new(report.seed, &run.contract.name, run.signature, dictionary);
        let mut tally = Tally::default();
        let outcome = loop {
            if report.runs >= config.runs {
                break Outcome::Pass;
            }
            let mut calls = Vec::new();
            let broken = self.fork().and_then(|devnet| {
                for _ in 0..config.depth {
                    let call = self.draw_call(&mut draw);
                    calls.push(call);
                    let at = calls.len() - 1;
                    self.step(&devnet, &calls[at], config, &mut tally, Some(&mut draw))
                        .map_err(|reason| Broken { at, reason })?;
                }
                self.after(&devnet).map_err(|reason| Broken { at: calls.len(), reason })
            });
            match broken {
                Ok(()) => report.runs += 1,
                Err(broken) => {
                    let (calls, reason) = self.shrink(calls, broken, config);
                    let n = calls.len();
                    let plural = if n == 1 { "" } else { "s" };
                    report.sequence = Some(calls.iter().map(|c| self.describe(c)).collect());
                    logs.extend(self.logged(&calls, config));
                    break Outcome::Fail {
                        reason: format!(
                            "{reason}; after {n} call{plural} (shrunk), in run {} of {}",
                            report.runs + 1,
                            config.runs
                        ),
                    };
                }
            }
        };
        report.calls = tally.calls;
        report.reverts = tally.reverts;
        report.inferences = tally.inferences;
        outcome
    }

    /// A fresh fork of the post-`setUp` chain, for one run.
    fn fork(&self) -> Result<Devnet, Broken> {
        self.run.fork().map(|(devnet, _)| devnet).map_err(|reason| Broken { at: 0, reason })
    }

    fn draw_call(&self, draw: &mut fuzz::Draw) -> Call {
        let sender = self.draw_sender(draw);
        let target = draw.pick(self.targets.len());
        let function = draw.pick(self.targets[target].functions.len());
        let args = draw.args(&self.targets[target].functions[function].types);
        Call { sender, target, function, args }
    }

    fn draw_sender(&self, draw: &mut fuzz::Draw) -> Address {
        if !self.senders.is_empty() {
            return self.senders[draw.pick(self.senders.len())];
        }
        let actors = actors();
        for _ in 0..8 {
            let candidate = match draw.pick(4) {
                0 => match draw.args(&[DynSolType::Address]).pop() {
                    Some(DynSolValue::Address(a)) => a,
                    _ => continue,
                },
                _ => actors[draw.pick(actors.len())],
            };
            // Precompiles and system addresses sit below 2^16.
            let low = candidate.0[..18].iter().all(|b| *b == 0);
            if !low && !self.not_senders.contains(&candidate) {
                return candidate;
            }
        }
        actors.into_iter().find(|a| !self.not_senders.contains(a)).unwrap_or(actors[0])
    }

    /// Makes `call` on `devnet`, then checks the invariant if it succeeded;
    /// `Err` says why the test fails. The words of its events join `draw`'s
    /// dictionary.
    fn step(
        &self,
        devnet: &Devnet,
        call: &Call,
        config: &InvariantConfig,
        tally: &mut Tally,
        draw: Option<&mut fuzz::Draw>,
    ) -> Result<(), String> {
        let target = &self.targets[call.target];
        let function = &target.functions[call.function];
        let calldata = fuzz::calldata(function.selector, &call.args);
        let receipt = send_as(devnet, call.sender, target.address, calldata)?;
        tally.calls += 1;
        tally.inferences += receipt.inference.len() as u64;
        if !receipt.success && receipt.output.as_ref() == super::reverted_with(super::cheatcodes::ASSUME_REJECTED) {
            // A handler's `vm.assume` discards the call: neither a revert
            // nor a failure.
            return Ok(());
        }
        if !receipt.success {
            tally.reverts += 1;
            if config.fail_on_revert {
                let why = super::failure(self.run.contract, &receipt);
                return Err(format!("{}.{} reverted: {why} (fail_on_revert is on)", target.name, function.signature));
            }
            return Ok(());
        }
        if let Some(draw) = draw {
            for log in &receipt.logs {
                for topic in log.topics().iter().skip(1) {
                    draw.learn(U256::from_be_bytes(topic.0));
                }
                for word in log.data.data.chunks_exact(32).take(8) {
                    draw.learn(U256::from_be_slice(word));
                }
            }
        }
        check(self.run, devnet)
    }

    /// Runs `afterInvariant()`, if the test contract has one.
    fn after(&self, devnet: &Devnet) -> Result<(), String> {
        let Some(selector) = self.after else { return Ok(()) };
        let receipt = super::send(devnet, devnet.accounts()[0], Some(self.run.base.address), selector.to_vec().into())
            .and_then(|hash| mined(devnet, hash, "afterInvariant()"))?;
        if receipt.success {
            Ok(())
        } else {
            Err(format!("afterInvariant() failed: {}", super::failure(self.run.contract, &receipt)))
        }
    }

    /// Replays `calls` on a fresh fork: where and why they fail, if they do.
    fn replay(&self, calls: &[Call], config: &InvariantConfig) -> Option<Broken> {
        let devnet = match self.fork() {
            Ok(devnet) => devnet,
            Err(broken) => return Some(broken),
        };
        let mut tally = Tally::default();
        for (at, call) in calls.iter().enumerate() {
            if let Err(reason) = self.step(&devnet, call, config, &mut tally, None) {
                return Some(Broken { at, reason });
            }
        }
        self.after(&devnet).err().map(|reason| Broken { at: calls.len(), reason })
    }

    /// The `console.log` lines of `calls` (a failing sequence), replayed
    /// once more on a fork that keeps them.
    fn logged(&self, calls: &[Call], config: &InvariantConfig) -> Vec<String> {
        let Ok(devnet) = self.fork() else { return Vec::new() };
        let lines = console_lines(&devnet);
        let mut tally = Tally::default();
        for call in calls {
            if self.step(&devnet, call, config, &mut tally, None).is_err() {
                break;
            }
        }
        std::mem::take(&mut *lines.lock())
    }

    /// The fewest and simplest of `calls` found that still fail, and why
    /// they fail: passes that drop one call at a time, then each call's
    /// arguments shrunk as a fuzz test's are, while the budget lasts.
    fn shrink(&self, mut calls: Vec<Call>, broken: Broken, config: &InvariantConfig) -> (Vec<Call>, String) {
        calls.truncate(broken.at + 1);
        let mut reason = broken.reason;
        let mut budget = SHRINK_BUDGET / 2;
        loop {
            let mut changed = false;
            let mut i = 0;
            while i < calls.len() && budget > 0 {
                let mut trial = calls.clone();
                trial.remove(i);
                budget -= 1;
                match self.replay(&trial, config) {
                    Some(broken) => {
                        trial.truncate(broken.at + 1);
                        calls = trial;
                        reason = broken.reason;
                        changed = true;
                    }
                    None => i += 1,
                }
            }
            if !changed || budget == 0 {
                break;
            }
        }
        let each = (SHRINK_BUDGET / 2 / calls.len().max(1) as u32).max(8);
        for i in 0..calls.len() {
            let mut fails = |args: &[DynSolValue]| {
                let mut trial = calls.clone();
                trial[i].args = args.to_vec();
                self.replay(&trial, config).is_some()
            };
            let args = fuzz::Shrink::with_budget(&mut fails, each).shrink(calls[i].args.clone());
            calls[i].args = args;
        }
        // The reason of the sequence as it is now (a smaller argument may
        // break the invariant sooner, or differently).
        if let Some(broken) = self.replay(&calls, config) {
            calls.truncate(broken.at + 1);
            reason = broken.reason;
        }
        (calls, reason)
    }

    fn describe(&self, call: &Call) -> SequenceCall {
        let target = &self.targets[call.target];
        let function = &target.functions[call.function];
        // Its label; else its name, with its address when another target
        // has the same.
        let shared = self.targets.iter().filter(|t| t.name == target.name).count() > 1;
        let contract = match self.run.base.cheats.labels().get(&target.address) {
            Some(label) => label.clone(),
            None if shared => format!("{}@{}", target.name, target.address),
            None => target.name.clone(),
        };
        SequenceCall {
            sender: call.sender,
            target: target.address,
            contract,
            call: format!("{}{}", test_name(&function.signature), fuzz::describe(&call.args)),
            calldata: fuzz::calldata(function.selector, &call.args),
        }
    }
}

impl Run<'_> {
    /// A list of addresses the test contract names (`targetContracts()`),
    /// empty when it has no such function.
    fn addresses(&self, signature: &str) -> Result<Vec<Address>, String> {
        let Some(answer) = self.ask(signature)? else { return Ok(Vec::new()) };
        let decoded = DynSolType::Array(Box::new(DynSolType::Address))
            .abi_decode(&answer)
            .map_err(|e| format!("{signature} answered what is not an address[]: {e}"))?;
        Ok(decoded.as_array().unwrap_or_default().iter().filter_map(DynSolValue::as_address).collect())
    }

    /// A list of `(address, selectors)` the test contract names
    /// (`targetSelectors()`), empty when it has no such function.
    fn selections(&self, signature: &str) -> Result<Vec<Selection>, String> {
        let Some(answer) = self.ask(signature)? else { return Ok(Vec::new()) };
        let ty = DynSolType::Array(Box::new(DynSolType::Tuple(vec![
            DynSolType::Address,
            DynSolType::Array(Box::new(DynSolType::FixedBytes(4))),
        ])));
        let decoded =
            ty.abi_decode(&answer).map_err(|e| format!("{signature} answered what is not a FuzzSelector[]: {e}"))?;
        let mut selections = Vec::new();
        for item in decoded.as_array().unwrap_or_default() {
            if let Some([DynSolValue::Address(address), DynSolValue::Array(selectors)]) = item.as_tuple() {
                let selectors = selectors
                    .iter()
                    .filter_map(|s| match s {
                        DynSolValue::FixedBytes(word, 4) => word[..4].try_into().ok(),
                        _ => None,
                    })
                    .collect();
                selections.push((*address, selectors));
            }
        }
        Ok(selections)
    }

    /// What the test contract's view `signature` answers after `setUp`;
    /// `None` when it has no such function.
    fn ask(&self, signature: &str) -> Result<Option<Bytes>, String> {
        let Some(selector) = self.contract.selector(signature) else { return Ok(None) };
        let devnet = &self.base.devnet;
        let request = TransactionRequest::default()
            .from(devnet.accounts()[0])
            .to(self.base.address)
            .input(Bytes::from(selector.to_vec()).into());
        devnet.call(request, None, None).map(Some).map_err(|e| format!("{signature} failed: {e}"))
    }
}

/// Checks the invariant on `devnet`'s latest state: `Err` says why it
/// does not hold.
fn check(run: &Run<'_>, devnet: &Devnet) -> Result<(), String> {
    let request = TransactionRequest::default()
        .from(devnet.accounts()[0])
        .to(run.base.address)
        .input(Bytes::from(run.selector.to_vec()).into());
    match devnet.call(request, None, None) {
        Ok(_) => Ok(()),
        Err(NodeError::Reverted { data, .. }) => Err(run.contract.errors.decode(&data).to_string()),
        Err(e) => Err(format!("{}: {e}", run.signature)),
    }
}

/// Sends a call from `sender` (impersonated; it pays no gas price) and
/// waits for its receipt.
pub(super) fn send_as(devnet: &Devnet, sender: Address, to: Address, calldata: Bytes) -> Result<TxReceipt, String> {
    devnet.impersonate(sender);
    let price = devnet.with_chain(|c| c.min_gas_price());
    let request = TransactionRequest::default()
        .from(sender)
        .to(to)
        .input(calldata.into())
        .gas_limit(TEST_GAS_LIMIT)
        .gas_price(price);
    let hash =
        devnet.send_transaction(request).map_err(|e| format!("the call from {sender} could not be sent: {e}"))?;
    mined(devnet, hash, &format!("the call from {sender}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actors_are_distinct_ordinary_addresses() {
        let actors = actors();
        assert_eq!(actors.iter().collect::<BTreeSet<_>>().len(), 3);
        assert!(actors.iter().all(|a| !a.0[..18].iter().all(|b| *b == 0)));
    }
}
