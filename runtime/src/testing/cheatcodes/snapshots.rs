//! State snapshots inside one transaction: `snapshotState`, `revertToState`,
//! `revertToStateAndDelete`, `deleteStateSnapshot`, `deleteStateSnapshots`,
//! and their older names (`snapshot`, `revertTo`, …).
//!
//! # How a revert stays consistent with revm's journal
//!
//! revm 43 keeps a transaction's changes in its journal
//! (`JournalInner`): the current `state` (every account and slot loaded so
//! far, with its present value), `transient_storage`, and `journal`, the
//! list of entries that undo each change, newest last. A call frame starts
//! with a `JournalCheckpoint` — the journal's, the logs' and the
//! self-destructs' lengths at that moment — and reverting the frame undoes
//! the entries past its checkpoint, newest first. The checkpoints live in
//! revm's frame stack, which an inspector cannot reach.
//!
//! A snapshot is a copy of `state`, `transient_storage`, `journal` and
//! `selfdestructed_addresses`, with the block environment, the chain id and
//! the block overrides of the cheatcodes, and the list of frames that were
//! running. Reverting to it puts those copies back; the logs (as Foundry
//! keeps them) and the journal's depth stay as they are.
//!
//! That is sound for every frame that was already running when the
//! snapshot was taken: its checkpoint counts entries the snapshot's journal
//! holds unchanged (entries below a running frame's checkpoint are never
//! rewritten while it runs), and the snapshot's entries past it, undone
//! newest first, lead from the snapshot's state back to the frame's start.
//! So a frame that reverts after a revert to a snapshot still lands where it
//! began.
//!
//! It is not sound for a frame that began *after* the snapshot and is still
//! running: its checkpoint counts entries of a journal that the revert
//! replaced, so its own revert would undo the wrong changes (or none), and
//! the contract it runs may not even exist in the snapshot's state. Such a
//! revert is refused with a reason ([`SnapshotError::LaterFrame`]): revert
//! from the frame that took the snapshot, or from one of its callers that
//! was running then (in a test, the test function itself). To tell frames
//! apart, the inspector numbers every call and create it sees
//! ([`Frames`]). (Rewriting the restore as journaled writes, one per
//! account and slot that differs, would let such a frame revert it too,
//! but not bring back a frame's own contract that the snapshot predates;
//! Foundry swaps the journal whole, as here, and does not check.)
//!
//! A snapshot taken in a call that has since returned, or reverted, can be
//! reverted to from its caller: the frames running then still are, and the
//! state comes back as it was when the snapshot was taken, that call's
//! changes included. Events emitted since stay (as in Foundry), and
//! nothing outside the journal comes back: the inspector's own state
//! (mocks, pranks, expectations, recorded logs) and the inference
//! mempool's records stay as they are.
//!
//! A snapshot lasts the transaction that took it: the next transaction runs
//! on a machine whose journal the snapshot knows nothing of. Ids go on
//! counting across transactions, as Foundry's do from `setUp` into a test
//! (the next id is part of [`super::CheatState`]), so a revert to a
//! snapshot of `setUp` is told apart from one to an unknown id and refused
//! with a reason ([`SnapshotError::EarlierTransaction`]) rather than
//! answering `false`.

use std::collections::BTreeMap;

use alloy_primitives::{Address, U256};
use revm::context::{BlockEnv, JournalEntry};
use revm::state::{EvmState, TransientStorage};

use super::block::EnvOverrides;
use crate::evm::EvmContext;

/// Why a snapshot cheatcode refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum SnapshotError {
    /// The snapshot was taken in an earlier transaction.
    #[error(
        "vm.{cheatcode}: snapshot {id} was taken in an earlier transaction (in setUp, say); in nml a snapshot \
         lasts only the transaction that took it"
    )]
    EarlierTransaction { cheatcode: &'static str, id: U256 },
    /// The revert runs in a call that began after the snapshot was taken.
    #[error(
        "vm.{cheatcode}: this call began after snapshot {id} was taken, and a revert to it here would leave the \
         call's own changes out of its revert; revert from the contract that took the snapshot (or a caller \
         of it that was running then), e.g. the test function"
    )]
    LaterFrame { cheatcode: &'static str, id: U256 },
}

/// The call frames running now, each numbered when it began.
#[derive(Debug, Clone, Default)]
pub(super) struct Frames {
    /// The numbers of the frames at journal depths 1, 2, …
    running: Vec<u64>,
    next: u64,
}

impl Frames {
    /// A call or create is about to begin from code at journal depth
    /// `depth` (0: the transaction's own call). It runs at `depth + 1`, if
    /// it runs at all; a call that never makes a frame (a cheatcode, a
    /// mock) leaves a number that the next call from `depth` replaces.
    pub(super) fn enter(&mut self, depth: usize) {
        self.running.truncate(depth);
        self.running.push(self.next);
        self.next += 1;
    }

    /// The frames running code at journal depth `depth` and below, outermost first.
    pub(super) fn at(&self, depth: usize) -> &[u64] {
        &self.running[..depth.min(self.running.len())]
    }
}

/// What a snapshot brings back.
#[derive(Debug, Clone)]
struct Snapshot {
    state: EvmState,
    transient_storage: TransientStorage,
    journal: Vec<JournalEntry>,
    selfdestructed: Vec<Address>,
    block: BlockEnv,
    chain_id: u64,
    /// The block overrides of the cheatcodes (`warp` and the like).
    overrides: EnvOverrides,
    /// The frames running when it was taken, outermost first.
    frames: Vec<u64>,
}

/// Whether a revert keeps the snapshot (`revertToState`) or deletes it
/// (`revertToStateAndDelete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AfterRevert {
    Keep,
    Delete,
}

/// The snapshots of one transaction.
#[derive(Debug, Clone, Default)]
pub(super) struct Snapshots {
    taken: BTreeMap<U256, Snapshot>,
    /// The id of this transaction's first snapshot: lower ids are earlier transactions'.
    first: U256,
}

impl Snapshots {
    /// A transaction begins; its first snapshot will be `next_id`.
    pub(super) fn begin(&mut self, next_id: U256) {
        self.taken.clear();
        self.first = next_id;
    }

    /// The transaction ended: its snapshots with it.
    pub(super) fn end(&mut self) {
        self.taken.clear();
    }

    /// `snapshotState()`, from code running in the frames `running`
    /// ([`Frames::at`]): takes snapshot `*next_id` and counts on.
    pub(super) fn take(
        &mut self,
        ctx: &EvmContext,
        overrides: &EnvOverrides,
        running: &[u64],
        next_id: &mut U256,
    ) -> U256 {
        let inner = &ctx.journaled_state.inner;
        let snapshot = Snapshot {
            state: inner.state.clone(),
            transient_storage: inner.transient_storage.clone(),
            journal: inner.journal.clone(),
            selfdestructed: inner.selfdestructed_addresses.clone(),
            block: ctx.block.clone(),
            chain_id: ctx.cfg.chain_id,
            overrides: *overrides,
            frames: running.to_vec(),
        };
        let id = *next_id;
        self.taken.insert(id, snapshot);
        *next_id = id.saturating_add(U256::from(1));
        id
    }

    /// `revertToState(id)` (and the like, named `cheatcode`), from code
    /// running in the frames `running`: `false` when there is no such
    /// snapshot (never taken, or deleted). The gas price of `txGasPrice` is
    /// a transaction field and stays, as in Foundry.
    pub(super) fn revert(
        &mut self,
        cheatcode: &'static str,
        id: U256,
        after: AfterRevert,
        ctx: &mut EvmContext,
        overrides: &mut EnvOverrides,
        running: &[u64],
    ) -> Result<bool, SnapshotError> {
        self.check_id(cheatcode, id)?;
        let Some(snapshot) = self.taken.get(&id) else { return Ok(false) };
        if !snapshot.frames.starts_with(running) {
            return Err(SnapshotError::LaterFrame { cheatcode, id });
        }
        let snapshot = match after {
            AfterRevert::Keep => snapshot.clone(),
            AfterRevert::Delete => match self.taken.remove(&id) {
                Some(snapshot) => snapshot,
                None => return Ok(false),
            },
        };
        let inner = &mut ctx.journaled_state.inner;
        inner.state = snapshot.state;
        inner.transient_storage = snapshot.transient_storage;
        inner.journal = snapshot.journal;
        inner.selfdestructed_addresses = snapshot.selfdestructed;
        ctx.block = snapshot.block;
        ctx.cfg.chain_id = snapshot.chain_id;
        *overrides = EnvOverrides { gas_price: overrides.gas_price, ..snapshot.overrides };
        Ok(true)
    }

    /// `deleteStateSnapshot(id)`: whether there was such a snapshot.
    pub(super) fn delete(&mut self, cheatcode: &'static str, id: U256) -> Result<bool, SnapshotError> {
        self.check_id(cheatcode, id)?;
        Ok(self.taken.remove(&id).is_some())
    }

    /// `deleteStateSnapshots()`.
    pub(super) fn delete_all(&mut self) {
        self.taken.clear();
    }

    fn check_id(&self, cheatcode: &'static str, id: U256) -> Result<(), SnapshotError> {
        if id < self.first {
            return Err(SnapshotError::EarlierTransaction { cheatcode, id });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_the_running_calls_and_a_call_that_ended_is_replaced() {
        let mut frames = Frames::default();
        frames.enter(0); // the transaction's call: 0, at depth 1
        frames.enter(1); // a cheatcode from depth 1: 1, never runs
        assert_eq!(frames.at(1), &[0]);
        frames.enter(1); // a call from the test: 2, at depth 2
        frames.enter(2); // and one from it: 3, at depth 3
        assert_eq!(frames.at(3), &[0, 2, 3]);
        frames.enter(1); // both ended; the test calls again: 4
        assert_eq!(frames.at(2), &[0, 4]);
        assert!(![0u64, 2, 3].starts_with(frames.at(2)), "a frame begun since is not one of the snapshot's");
        assert!([0u64, 2, 3].starts_with(frames.at(1)), "the test function was running then");
    }
}
