//! The devnet's scheduler account at work: it follows the mined blocks and,
//! for every task of the workflow scheduler (at 0x7179…8eF6) that the chain's
//! time has made due, sends `execute(id)`, a signed transaction mined like
//! any other (through the inference mempool: a workflow's `run()` calls a
//! model), after each block someone else mined (its own blocks start no
//! round: see `Round`). One run per due task per block, however far the
//! time jumped; the next is due `frequency` seconds after it. Tasks, their last runs and
//! failures live in the scheduler's storage, so dumps keep them. The
//! scheduler is asked a page of tasks at a time (what a call of the block gas
//! limit covers), so no call's gas grows with the number of tasks.
//! `Devnet::start_scheduler` runs it on a thread of its own;
//! `Devnet::run_due_tasks` is one step of it.

use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolCall;
use serde::Serialize;

use super::{Devnet, NodeError};
use crate::predeploys::{IWorkflowScheduler, WORKFLOW_SCHEDULER};

/// Gas of an `execute` (the scheduler gives each `run()` 20,000,000), or
/// the block gas limit when that is lower.
const EXECUTE_GAS: u64 = 25_000_000;
/// The scheduler's priority fee.
const SCHEDULER_TIP: u128 = 1_000_000_000;
/// Gas a call spends per task when looking for due ones, with room to
/// spare (two cold storage reads: about 4,500): a page is the call's gas
/// (the block gas limit) over this.
const DUE_GAS_PER_TASK: u64 = 10_000;
/// Gas a call spends per task when listing them, with room to spare (nine
/// cold storage slots and the copy: about 25,000).
const LIST_GAS_PER_TASK: u64 = 50_000;

/// The scheduler account's key, made from the enclaves' seed.
pub fn scheduler_signer(seed: u64) -> PrivateKeySigner {
    crate::chain::derived_signer("nml devnet workflow scheduler", seed)
}

/// A scheduled task (`nml_getTasks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskInfo {
    /// Its id (its index in the scheduler), a hex quantity as every other
    /// number of the answer.
    #[serde(serialize_with = "hex_quantity")]
    pub id: u64,
    /// The contract whose `run()` it calls.
    pub contract_address: Address,
    /// Who registered it.
    pub owner: Address,
    /// Chain time after which it stops.
    pub end_time: U256,
    /// Seconds between runs.
    pub frequency: U256,
    /// Chain time it is next due.
    pub next_run: U256,
    /// Chain time of its last run (0: never).
    pub last_run: U256,
    /// Runs so far.
    pub runs: U256,
    /// Runs that reverted.
    pub failures: U256,
    /// The revert reason of the last run, if it failed.
    pub last_error: Option<String>,
}

impl Devnet {
    /// Calls the scheduler at block `at`.
    fn call_scheduler<C: SolCall>(&self, call: C, at: u64) -> Result<C::Return, NodeError> {
        let request = TransactionRequest::default().to(WORKFLOW_SCHEDULER).input(call.abi_encode().into());
        let out = self.call(request, Some(at.into()), None)?;
        C::abi_decode_returns(&out).map_err(|e| NodeError::Failed(format!("the workflow scheduler answered: {e}")))
    }

    /// Asks the scheduler about every task a page at a time, all at the
    /// head block (so that the pages agree), each page what a call's gas
    /// (the block gas limit) covers at `gas_per_task`: one call over all of
    /// them ran out of gas past a few thousand tasks. `page` asks about the
    /// ids in a range at a block.
    fn scheduler_pages<T>(
        &self,
        gas_per_task: u64,
        mut page: impl FnMut(u64, u64, u64) -> Result<Vec<T>, NodeError>,
    ) -> Result<Vec<T>, NodeError> {
        let size = (self.with_chain(|c| c.config().gas_limit) / gas_per_task).max(1);
        let at = self.block_number();
        let count = self.call_scheduler(IWorkflowScheduler::taskCountCall {}, at)?;
        let count = u64::try_from(count).unwrap_or(u64::MAX);
        let mut all = Vec::new();
        let mut from = 0;
        while from < count {
            let to = from.saturating_add(size).min(count);
            all.extend(page(from, to, at)?);
            from = to;
        }
        Ok(all)
    }

    /// Sends `execute(id)` for every task due at the head's time that is not
    /// already on its way; the hashes sent.
    pub fn run_due_tasks(&self) -> Result<Vec<B256>, NodeError> {
        let inference = self.inference()?;
        let due = self.scheduler_pages(DUE_GAS_PER_TASK, |from, to, at| {
            self.call_scheduler(IWorkflowScheduler::dueTasksInCall { from: U256::from(from), to: U256::from(to) }, at)
        })?;
        let mut sending = inference.scheduled.lock();
        // A run is on its way until it is mined or leaves the pool.
        sending.retain(|_, hash| self.receipt_record(*hash).is_none() && self.transaction(*hash).is_some());
        let gas = EXECUTE_GAS.min(self.with_chain(|c| c.config().gas_limit));
        let mut sent = Vec::new();
        for id in due {
            if sending.contains_key(&id) {
                continue;
            }
            let input: Bytes = IWorkflowScheduler::executeCall { id }.abi_encode().into();
            let hash = self.send_signed_call(&inference.scheduler, WORKFLOW_SCHEDULER, input, gas, SCHEDULER_TIP)?;
            sending.insert(id, hash);
            sent.push(hash);
        }
        Ok(sent)
    }

    /// The scheduler's tasks.
    pub fn tasks(&self) -> Result<Vec<TaskInfo>, NodeError> {
        self.inference()?;
        let tasks = self.scheduler_pages(LIST_GAS_PER_TASK, |from, to, at| {
            self.call_scheduler(IWorkflowScheduler::getTasksInCall { from: U256::from(from), to: U256::from(to) }, at)
        })?;
        Ok(tasks
            .into_iter()
            .enumerate()
            .map(|(id, t)| TaskInfo {
                id: id as u64,
                contract_address: t.contractAddress,
                owner: t.owner,
                end_time: t.endTime,
                frequency: t.frequency,
                next_run: t.nextRun,
                last_run: t.lastRun,
                runs: t.runs,
                failures: t.failures,
                last_error: (!t.lastError.is_empty()).then(|| run_error(&t.lastError)),
            })
            .collect())
    }

    /// Runs the scheduler on a thread of its own until the devnet is
    /// dropped: a step whenever a block is mined by someone else than the
    /// scheduler itself (see [`Round`]).
    pub fn start_scheduler(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let devnet: Weak<Self> = Arc::downgrade(self);
        let mut blocks = self.subscribe_blocks();
        std::thread::Builder::new().name("nml-scheduler".into()).spawn(move || {
            let mut last: Option<Round> = None;
            loop {
                let Some(node) = devnet.upgrade() else { return };
                let mined =
                    matches!(blocks.try_recv(), Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)));
                if mined && last.as_ref().is_none_or(|round| round.others_mined_since(&node)) {
                    let head = node.block_number();
                    match node.run_due_tasks() {
                        Ok(sent) => last = Some(Round { head, sent }),
                        Err(e) => tracing::warn!(%e, "the workflow scheduler could not run its tasks"),
                    }
                }
                drop(node);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    }
}

/// The scheduler's last step: the head it was taken at, and the `execute`
/// transactions it sent. Under automine each of those is a block of its own,
/// a second after the one before; were the scheduler to step after its own
/// blocks too, tasks due more often than the seconds a round of them takes
/// would keep the chain mining by itself, its clock racing ahead, until
/// their end time. It steps after blocks that someone else mined: a
/// transaction, `evm_mine`, interval mining.
struct Round {
    head: u64,
    sent: Vec<B256>,
}

impl Round {
    /// Whether a block past `head` is someone else's: without automine
    /// every block is (interval mining, `evm_mine`: the scheduler's sends
    /// make none); under automine, a block that holds anything but this
    /// round's transactions (an empty block counts; a chain that went back
    /// too).
    fn others_mined_since(&self, devnet: &Devnet) -> bool {
        let now = devnet.block_number();
        if now < self.head || (now > self.head && !devnet.automine()) {
            return true;
        }
        // Each block of the round's own holds one of its transactions at least.
        if now - self.head > self.sent.len() as u64 {
            return true;
        }
        let own: HashSet<&B256> = self.sent.iter().collect();
        devnet.with_chain(|c| {
            (self.head + 1..=now).any(|number| {
                c.block(number).is_none_or(|block| {
                    block.transactions.is_empty() || block.transactions.iter().any(|tx| !own.contains(&tx.hash))
                })
            })
        })
    }
}

fn hex_quantity<S: serde::Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format!("{value:#x}"))
}

/// What a task's failed `run()` reverted with: its reason (`Error(string)`,
/// `Panic(uint256)`), or the revert data in hex (a custom error).
/// (alloy's `decode_revert_reason` would show any UTF-8 data as text.)
fn run_error(data: &[u8]) -> String {
    use alloy_sol_types::{Panic, Revert, SolError};
    if let Ok(revert) = Revert::abi_decode(data) {
        return revert.reason;
    }
    if let Ok(panic) = Panic::abi_decode(data) {
        return panic.to_string();
    }
    alloy_primitives::hex::encode_prefixed(data)
}

#[cfg(test)]
mod tests {
    use alloy_sol_types::{Revert, SolError};

    use super::run_error;

    #[test]
    fn a_tasks_id_is_a_hex_quantity_like_its_other_numbers() {
        use alloy_primitives::{Address, U256};
        let task = super::TaskInfo {
            id: 26,
            contract_address: Address::ZERO,
            owner: Address::ZERO,
            end_time: U256::from(5),
            frequency: U256::from(60),
            next_run: U256::ZERO,
            last_run: U256::ZERO,
            runs: U256::ZERO,
            failures: U256::ZERO,
            last_error: None,
        };
        let json = serde_json::to_value(&task).unwrap();
        assert_eq!((json["id"].as_str(), json["frequency"].as_str()), (Some("0x1a"), Some("0x3c")));
    }

    #[test]
    fn a_failed_runs_error_is_its_reason_or_its_data() {
        let reason = Revert::from("price feed stale").abi_encode();
        assert_eq!(run_error(&reason), "price feed stale");
        // A custom error's selector alone (it was "inference failed").
        assert_eq!(run_error(&[0x1f, 0x2a, 0x20, 0x05]), "0x1f2a2005");
    }
}
