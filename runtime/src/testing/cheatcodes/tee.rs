//! The TEE cheatcodes: attest as the devnet's enclave (`teeAttest`), read
//! an enclave's attestation of a request (`teeAttestation`), settle results
//! on the relay now (`teeSettle`, `teeSettleBatch`,
//! `teeAdvanceToSettlement`), expect a settlement (`expectSettlement`) and
//! inject faults (`teeFault`). Settling writes the relay contract's own
//! records, as its postings would.

use alloy_primitives::{B256, U256, keccak256};
use alloy_sol_types::{Revert, SolError, SolValue};
use revm::context::ContextTr;
use revm::context_interface::JournalTr;
use revm::interpreter::{CallInputs, CallOutcome, InstructionResult, InterpreterResult};

use super::{Cheatcodes, Vm, ok, revert};
use crate::evm::EvmContext;
use crate::predeploys::SETTLEMENT_RELAY;
use crate::settlement::{SettlementConfig, result_key};
use crate::tee::Fault;

/// The storage slots of the settlement relay's `individualSettledAt` and
/// `batchSettledAt` mappings (runtime/predeploys/src/InferenceSettlementRelay.sol).
const RELAY_INDIVIDUAL_SLOT: u64 = 2;
const RELAY_BATCH_SLOT: u64 = 3;

/// Marks `key` settled at `now` in the relay's mapping at `slot`, as the
/// relay's own posting would.
fn settle(ctx: &mut EvmContext, key: alloy_primitives::B256, slot: u64, now: U256) -> Result<(), String> {
    let entry = keccak256((key, U256::from(slot)).abi_encode_params());
    let journal = ctx.journal_mut();
    journal.load_account(SETTLEMENT_RELAY).map_err(|e| format!("{e:?}"))?;
    journal.sstore(SETTLEMENT_RELAY, entry.into(), now.max(U256::from(1))).map_err(|e| format!("{e:?}"))?;
    Ok(())
}

/// The relay's key of an individual result (its `individualSettledAt` entry).
pub(super) fn individual_key(tee_id: B256, input_hash: B256, output_hash: B256, timestamp: U256) -> B256 {
    keccak256((tee_id, input_hash, output_hash, timestamp).abi_encode_params())
}

/// Marks the individual result `key` settled now.
pub(super) fn settle_individual(ctx: &mut EvmContext, key: B256) -> Result<(), String> {
    let now = ctx.block.timestamp;
    settle(ctx, key, RELAY_INDIVIDUAL_SLOT, now)
}

/// Marks the batch `root` settled now.
pub(super) fn settle_batch(ctx: &mut EvmContext, root: B256) -> Result<(), String> {
    let now = ctx.block.timestamp;
    settle(ctx, root, RELAY_BATCH_SLOT, now)
}

impl Cheatcodes {
    /// `teeAttest`: signs as the devnet's first enclave.
    pub(super) fn tee_attest(&self, inputs: &CallInputs, c: &Vm::teeAttestCall) -> CallOutcome {
        let enclaves = self.pipe.as_ref().map(|p| p.enclaves());
        let Some(enclave) = enclaves.and_then(|e| e.all().ok()).and_then(|all| all.first().cloned()) else {
            return revert(inputs, "teeAttest: this devnet has no enclaves (it runs without inference)");
        };
        let Ok(timestamp) = u64::try_from(c.timestamp) else {
            return revert(inputs, "teeAttest: the timestamp does not fit in 64 bits");
        };
        match enclave.attest(c.inputHash, c.outputHash, timestamp) {
            Ok(a) => ok(inputs, (a.tee_id, a.signature).abi_encode_params()),
            Err(e) => revert(inputs, &format!("teeAttest: {e}")),
        }
    }

    /// `teeAttestation`: the enclave's attestation of a request's result;
    /// zeros in the mempool's simulation pass, so the test runs on.
    pub(super) fn tee_attestation(&self, inputs: &CallInputs, c: &Vm::teeAttestationCall) -> CallOutcome {
        let a = self.pipe.as_ref().and_then(|p| p.attestation(c.requestId)).unwrap_or_default();
        let values = (a.tee_id, a.input_hash, a.output_hash, U256::from(a.timestamp), a.signature);
        ok(inputs, values.abi_encode_params())
    }

    /// `teeAdvanceToSettlement`: as the relay would after `--settle-after`
    /// blocks, each result this test's chain has attested, by its own record.
    pub(super) fn tee_advance_to_settlement(&mut self, ctx: &mut EvmContext) -> Result<(), String> {
        let after = SettlementConfig::default().after_blocks;
        let number = ctx.block.number.saturating_add(U256::from(after));
        self.local.env.roll(ctx, number);
        for a in self.pipe.as_ref().map(|p| p.attestations()).unwrap_or_default() {
            settle_individual(ctx, result_key(&a))?;
        }
        Ok(())
    }

    /// `teeFault`: switches a fault of this test's enclaves.
    pub(super) fn tee_fault(&self, c: &Vm::teeFaultCall) -> Result<(), String> {
        let Some(enclaves) = self.pipe.as_ref().map(|p| p.enclaves()) else {
            return Err("this devnet has no enclaves (it runs without inference)".to_owned());
        };
        let fault = c.fault.parse::<Fault>().map_err(|e| e.to_string())?;
        enclaves.faults().set(fault, c.on);
        Ok(())
    }

    /// Fails a test that ends before the results it expects are settled on
    /// the relay (`vm.expectSettlement`).
    pub(super) fn check_expected_settlements(&mut self, ctx: &mut EvmContext, result: &mut InterpreterResult) {
        let expected = std::mem::take(&mut self.expected_settlements);
        if expected.is_empty() || !result.result.is_ok() {
            return;
        }
        let journal = ctx.journal_mut();
        if journal.load_account(SETTLEMENT_RELAY).is_err() {
            return;
        }
        for key in expected {
            let slot = keccak256((key, U256::from(RELAY_INDIVIDUAL_SLOT)).abi_encode_params());
            let settled = journal.sload(SETTLEMENT_RELAY, slot.into()).map(|v| !v.data.is_zero()).unwrap_or(false);
            if !settled {
                result.result = InstructionResult::Revert;
                let reason = format!("vm.expectSettlement: result {key} was not settled on the relay");
                result.output = Revert::from(reason).abi_encode().into();
                return;
            }
        }
    }
}
