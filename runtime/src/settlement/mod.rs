//! Asynchronous settlement (PROTOCOL.md A2, B8): the proofs of TEE-mode
//! results settle on chain some blocks after the results were used, posted
//! by the devnet's relay account to the settlement relay — one record per
//! result, or the Merkle root of a batch, or nothing (private). The window
//! between a result and its settlement is the trust gap a contract must
//! reason about.
//!
//! This module is the relay's bookkeeping, without the chain: [`Book`] learns
//! the attested results of mined blocks, says what is due
//! ([`Book::due`]), and tracks each result's [`Settlement`] as its posting is
//! submitted and mined. `node` drives it (`Devnet::start_settlement`). A
//! loaded chain's book is rebuilt from the chain ([`Book::reloaded`]), from
//! what the relay contract recorded ([`recorded`]) and, for a devnet's own
//! dump, from what its relay still owed ([`Book::duties`]).
//! Everything is timed by the chain: blocks for the delay, block timestamps
//! for the batch flush, so `anvil_mine` and `evm_increaseTime` move it.

pub mod merkle;
mod posting;
mod reload;

use std::collections::{BTreeMap, HashMap, VecDeque};

use alloy_primitives::{B256, U256, keccak256};
use alloy_signer_local::PrivateKeySigner;
use alloy_sol_types::SolValue;
use serde::Serialize;

use crate::tee::Attestation;
use merkle::MerkleTree;
pub use posting::{BatchSettlement, IndividualSettlement, Posting, RecordError, Recorded, calldata, recorded};
pub use reload::LoadedBlock;

/// How results settle (`--settlement`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SettlementMode {
    /// Hashes in a Merkle batch (the chain's default).
    #[default]
    Batch,
    /// One record per result.
    Individual,
    /// Nothing is posted.
    Private,
}

/// When and how results settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SettlementConfig {
    /// The mode.
    pub mode: SettlementMode,
    /// Blocks between the block that used a result and its posting (`--settle-after`).
    pub after_blocks: u64,
    /// A batch is posted when it holds this many results…
    pub batch_size: usize,
    /// …or when no result joined it for this many seconds of chain time…
    pub batch_idle_secs: u64,
    /// …or when its first result is this many seconds old.
    pub batch_age_secs: u64,
}

impl Default for SettlementConfig {
    fn default() -> Self {
        Self { mode: SettlementMode::Batch, after_blocks: 3, batch_size: 20, batch_idle_secs: 300, batch_age_secs: 900 }
    }
}

/// The relay account's key, made from the enclaves' seed.
pub fn relay_signer(seed: u64) -> PrivateKeySigner {
    crate::chain::derived_signer("nml devnet settlement relay", seed)
}

/// The relay's key of a result: `keccak256(abi.encode(teeId, inputHash,
/// outputHash, timestamp))`, as the relay contract indexes individual records.
pub fn result_key(a: &Attestation) -> B256 {
    record_key(a.tee_id, a.input_hash, a.output_hash, U256::from(a.timestamp))
}

/// The relay's key of the record of `(teeId, inputHash, outputHash, timestamp)`.
fn record_key(tee_id: B256, input_hash: B256, output_hash: B256, timestamp: U256) -> B256 {
    keccak256((tee_id, input_hash, output_hash, timestamp).abi_encode_params())
}

/// A result's batch leaf (OpenZeppelin `StandardMerkleTree` of
/// `(bytes32, bytes32, bytes32, bytes, uint256)`).
pub fn batch_leaf(a: &Attestation) -> B256 {
    let values = (a.tee_id, a.input_hash, a.output_hash, a.signature.clone(), U256::from(a.timestamp));
    merkle::leaf(&values.abi_encode_params())
}

/// Where a result's settlement stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum SettlementStatus {
    /// Not posted yet: the trust gap is open.
    Pending,
    /// Posted; the relay's transaction is not mined yet.
    Submitted,
    /// On chain.
    Settled,
    /// Never posted (`--settlement private`).
    Private,
    /// Never posted: the relay withholds it (an injected fault).
    Withheld,
    /// Never posted: it came due before the head of a loaded chain, which
    /// holds no settlement of it, and the dump does not say the relay that
    /// made the chain still owed it (that relay withheld it, or was not a
    /// devnet's). The relay leaves it to the one that made the chain: a
    /// loaded chain's due results are never posted twice.
    Missed,
}

/// A result's settlement (`nml_getAttestations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settlement {
    /// Where it stands.
    pub status: SettlementStatus,
    /// How it settles.
    pub mode: SettlementMode,
    /// The relay's transaction, once posted.
    pub tx_hash: Option<B256>,
    /// The batch's root (batch mode, once posted).
    pub merkle_root: Option<B256>,
    /// The leaf's proof against the root (batch mode, once posted).
    pub proof: Vec<B256>,
}

#[derive(Debug, Clone)]
struct Waiting {
    attestation: Attestation,
    used_in: u64,
}

/// The relay's bookkeeping.
#[derive(Debug, Default)]
pub struct Book {
    config: SettlementConfig,
    /// The head when the book started: results used up to it are not settled.
    start: u64,
    /// The last block whose results were learnt.
    scanned: u64,
    waiting: VecDeque<Waiting>,
    batch: Vec<Attestation>,
    /// Chain times the open batch got its first and last result.
    batch_opened: u64,
    batch_touched: u64,
    status: HashMap<B256, Settlement>,
    /// The results each block used first, by key: a rewind splits off the
    /// blocks that are gone instead of walking every result ever learnt.
    used_in: BTreeMap<u64, Vec<B256>>,
    /// Postings submitted and not mined yet: their results.
    submitted: HashMap<B256, Vec<Attestation>>,
    /// Postings to make at the next step: those a loaded dump's relay had
    /// submitted, whose transactions were lost with the pool.
    again: Vec<Posting>,
}

impl Book {
    /// A book for `config`, starting after block `head`: results of earlier
    /// blocks are not settled (a fork's, whose parent settles them). A
    /// loaded chain's book is [`Book::reloaded`] from the chain instead.
    pub fn new(config: SettlementConfig, head: u64) -> Self {
        Self { config, start: head, scanned: head, ..Self::default() }
    }

    /// The configuration.
    pub fn config(&self) -> SettlementConfig {
        self.config
    }

    /// The last block learnt.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Learns block `number`: the results it used, and the relay's
    /// transactions it mined (`(hash, success)`).
    pub fn learn_block(&mut self, number: u64, used: &[Attestation], mined: &[(B256, bool)]) {
        self.scanned = self.scanned.max(number);
        for attestation in used {
            let key = result_key(attestation);
            if self.status.contains_key(&key) {
                continue;
            }
            let status = if self.config.mode == SettlementMode::Private {
                SettlementStatus::Private
            } else {
                self.waiting.push_back(Waiting { attestation: attestation.clone(), used_in: number });
                SettlementStatus::Pending
            };
            self.status.insert(
                key,
                Settlement { status, mode: self.config.mode, tx_hash: None, merkle_root: None, proof: vec![] },
            );
            self.used_in.entry(number).or_default().push(key);
        }
        for (hash, success) in mined {
            let Some(results) = self.submitted.remove(hash) else { continue };
            if *success {
                for result in &results {
                    if let Some(s) = self.status.get_mut(&result_key(result)) {
                        s.status = SettlementStatus::Settled;
                    }
                }
            } else {
                // A posting that reverted is posted again after the delay.
                self.requeue(results, number);
            }
        }
    }

    /// Puts results whose posting failed back in the queue, as if used in
    /// block `from`: pending, without a transaction, root or proof.
    fn requeue(&mut self, results: Vec<Attestation>, from: u64) {
        for attestation in results {
            let Some(s) = self.status.get_mut(&result_key(&attestation)) else { continue };
            *s =
                Settlement { status: SettlementStatus::Pending, tx_hash: None, merkle_root: None, proof: vec![], ..*s };
            self.waiting.push_back(Waiting { attestation, used_in: from });
        }
        self.waiting.make_contiguous().sort_by_key(|w| w.used_in);
    }

    /// Puts the results of a posting that could not be sent back in the queue.
    pub fn unsent(&mut self, posting: Posting, head: u64) {
        self.requeue(posting.results().to_vec(), head);
    }

    /// Follows the chain back to block `head` (`evm_revert`, a loaded
    /// state): results used in the blocks that are gone are forgotten (a
    /// block that uses them again is learnt anew), and a posting whose
    /// transaction is gone (`mined` says which are still on chain) is made
    /// again after the delay.
    pub fn rewind(&mut self, head: u64, mined: impl Fn(B256) -> bool) {
        if self.scanned <= head {
            return;
        }
        self.scanned = head;
        let gone = head.checked_add(1).map(|after| self.used_in.split_off(&after)).unwrap_or_default();
        for key in gone.values().flatten() {
            self.status.remove(key);
        }
        self.waiting.retain(|w| w.used_in <= head);
        let status = &self.status;
        self.batch.retain(|a| status.contains_key(&result_key(a)));
        // The postings to make again are left: their results are a loaded
        // chain's, used at or before its head, and a revert never goes back
        // past a load (the snapshots are cleared).
        let lost: Vec<B256> = self.submitted.keys().filter(|tx| !mined(**tx)).copied().collect();
        for tx in lost {
            let results: Vec<Attestation> = self
                .submitted
                .remove(&tx)
                .unwrap_or_default()
                .into_iter()
                .filter(|a| self.status.contains_key(&result_key(a)))
                .collect();
            self.requeue(results, head);
        }
    }

    /// What the relay must post now, the chain's head being block `head` at
    /// time `now`: due results `late_by` blocks later than configured, and
    /// none at all when it `withholds` them (injected faults). Postings to
    /// make again after a reload come first: they were due already.
    pub fn due(&mut self, head: u64, now: u64, late_by: u64, withhold: bool) -> Vec<Posting> {
        let mut postings = Vec::new();
        for posting in std::mem::take(&mut self.again) {
            if withhold {
                self.withhold(posting.results());
            } else {
                postings.push(posting);
            }
        }
        let after = self.config.after_blocks.saturating_add(late_by);
        while self.waiting.front().is_some_and(|w| w.used_in.saturating_add(after) <= head) {
            let Some(Waiting { attestation, .. }) = self.waiting.pop_front() else { break };
            if withhold {
                self.withhold(std::slice::from_ref(&attestation));
                continue;
            }
            match self.config.mode {
                SettlementMode::Individual => postings.push(Posting::Individual(attestation)),
                SettlementMode::Batch => {
                    if self.batch.is_empty() {
                        self.batch_opened = now;
                    }
                    self.batch_touched = now;
                    self.batch.push(attestation);
                    if self.batch.len() >= self.config.batch_size {
                        postings.extend(self.close_batch());
                    }
                }
                SettlementMode::Private => {}
            }
        }
        let idle = now.saturating_sub(self.batch_touched) >= self.config.batch_idle_secs;
        let old = now.saturating_sub(self.batch_opened) >= self.config.batch_age_secs;
        // Full already: a reloaded batch, under a smaller `--batch-size`.
        let full = self.batch.len() >= self.config.batch_size;
        if !self.batch.is_empty() && (idle || old || full) {
            postings.extend(self.close_batch());
        }
        postings
    }

    /// Marks `results` withheld: never posted.
    fn withhold(&mut self, results: &[Attestation]) {
        for result in results {
            if let Some(s) = self.status.get_mut(&result_key(result)) {
                s.status = SettlementStatus::Withheld;
            }
        }
    }

    fn close_batch(&mut self) -> Option<Posting> {
        let results = std::mem::take(&mut self.batch);
        self.seal(results)
    }

    /// The batch posting of `results`: each result's settlement gets the
    /// batch's root and its leaf's proof. `None` for no results.
    fn seal(&mut self, results: Vec<Attestation>) -> Option<Posting> {
        let leaves: Vec<B256> = results.iter().map(batch_leaf).collect();
        let tree = MerkleTree::new(&leaves)?;
        for (result, leaf) in results.iter().zip(&leaves) {
            if let Some(s) = self.status.get_mut(&result_key(result)) {
                s.merkle_root = Some(tree.root());
                s.proof = tree.proof(*leaf).unwrap_or_default();
            }
        }
        Some(Posting::Batch { root: tree.root(), results })
    }

    /// Notes that `posting` was submitted in transaction `tx`.
    pub fn submitted(&mut self, posting: &Posting, tx: B256) {
        let results = posting.results().to_vec();
        for result in &results {
            if let Some(s) = self.status.get_mut(&result_key(result)) {
                s.status = SettlementStatus::Submitted;
                s.tx_hash = Some(tx);
            }
        }
        self.submitted.insert(tx, results);
    }

    /// The settlement of a result used in block `used_in`: as tracked, or
    /// not posted yet when the block is not learnt yet; `None` for a result
    /// used before a [`Book::new`] started (a fork's parent's).
    pub fn settlement(&self, attestation: &Attestation, used_in: u64) -> Option<Settlement> {
        if let Some(known) = self.status.get(&result_key(attestation)) {
            return Some(known.clone());
        }
        let status = match self.config.mode {
            SettlementMode::Private => SettlementStatus::Private,
            _ => SettlementStatus::Pending,
        };
        (used_in > self.start).then(|| Settlement {
            status,
            mode: self.config.mode,
            tx_hash: None,
            merkle_root: None,
            proof: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A result of the tests: distinct per `i`, all from one enclave.
    pub(super) fn att(i: u8) -> Attestation {
        Attestation {
            tee_id: keccak256([1]),
            input_hash: keccak256([i]),
            output_hash: keccak256([i, i]),
            timestamp: 1_000 + u64::from(i),
            signature: vec![i; 256].into(),
        }
    }

    #[test]
    fn individual_results_settle_after_the_delay_then_when_mined() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 3, ..Default::default() };
        let mut book = Book::new(config, 0);
        book.learn_block(5, &[att(1)], &[]);
        assert_eq!(book.settlement(&att(1), 1).unwrap().status, SettlementStatus::Pending);
        assert!(book.due(7, 0, 0, false).is_empty(), "two blocks later: still in the gap");
        let due = book.due(8, 0, 0, false);
        assert_eq!(due, vec![Posting::Individual(att(1))]);
        book.submitted(&due[0], B256::repeat_byte(9));
        assert_eq!(book.settlement(&att(1), 1).unwrap().status, SettlementStatus::Submitted);
        book.learn_block(9, &[], &[(B256::repeat_byte(9), true)]);
        let s = book.settlement(&att(1), 5).unwrap();
        assert_eq!((s.status, s.tx_hash), (SettlementStatus::Settled, Some(B256::repeat_byte(9))));
    }

    #[test]
    fn batches_flush_when_full_idle_or_old_with_proofs_against_their_root() {
        let config = SettlementConfig { after_blocks: 0, batch_size: 3, ..Default::default() };
        let mut book = Book::new(config, 0);
        book.learn_block(1, &[att(1), att(2), att(3), att(4)], &[]);
        let due = book.due(1, 100, 0, false);
        let [Posting::Batch { root, results }] = due.as_slice() else { panic!("one full batch: {due:?}") };
        assert_eq!(results.len(), 3);
        for a in results {
            let s = book.settlement(a, 1).unwrap();
            assert_eq!(s.merkle_root, Some(*root));
            assert!(merkle::verify(&s.proof, *root, batch_leaf(a)));
        }
        assert!(book.due(1, 100 + 299, 0, false).is_empty(), "the fourth waits: not idle yet");
        assert_eq!(book.due(1, 100 + 300, 0, false).len(), 1, "idle for 5 minutes: flushed");
        // Age: results keep arriving every 200 s, so the batch is never idle.
        let mut book = Book::new(SettlementConfig { after_blocks: 0, batch_size: 100, ..Default::default() }, 0);
        let mut flushed = 0;
        for i in 0..6u8 {
            book.learn_block(u64::from(i) + 1, &[att(10 + i)], &[]);
            flushed += book.due(u64::from(i) + 1, u64::from(i) * 200, 0, false).len();
        }
        assert_eq!(flushed, 1, "flushed once at 15 minutes of age");
    }

    #[test]
    fn late_and_withheld_settlements() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 1, ..Default::default() };
        let mut book = Book::new(config, 0);
        book.learn_block(1, &[att(1), att(2)], &[]);
        assert!(book.due(5, 0, 10, false).is_empty(), "late: not yet after 4 blocks");
        assert!(book.due(11, 0, 10, false).is_empty(), "late: not yet after 10 blocks");
        assert_eq!(book.due(12, 0, 10, true).len(), 0, "withheld");
        assert_eq!(book.settlement(&att(1), 1).unwrap().status, SettlementStatus::Withheld);
    }

    #[test]
    fn a_posting_that_reverts_or_cannot_be_sent_is_made_again_after_the_delay() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 2, ..Default::default() };
        let mut book = Book::new(config, 0);
        book.learn_block(1, &[att(1)], &[]);
        let [posting] = book.due(3, 0, 0, false).try_into().unwrap();
        book.submitted(&posting, B256::repeat_byte(1));
        book.learn_block(4, &[], &[(B256::repeat_byte(1), false)]);
        let s = book.settlement(&att(1), 1).unwrap();
        assert_eq!((s.status, s.tx_hash), (SettlementStatus::Pending, None));
        assert!(book.due(5, 0, 0, false).is_empty());
        let [again] = book.due(6, 0, 0, false).try_into().unwrap();
        book.unsent(again, 6);
        assert_eq!(book.due(8, 0, 0, false).len(), 1, "unsent: made again two blocks later");
    }

    #[test]
    fn rewinding_forgets_what_the_lost_blocks_used_and_reposts_lost_postings() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 1, ..Default::default() };
        let mut book = Book::new(config, 0);
        book.learn_block(1, &[att(1)], &[]);
        let [posting] = book.due(2, 0, 0, false).try_into().unwrap();
        book.submitted(&posting, B256::repeat_byte(1));
        book.learn_block(3, &[att(2)], &[]);
        // Back to block 2: att(2)'s block and the posting's transaction are gone.
        book.rewind(2, |_| false);
        assert!(book.settlement(&att(2), 3).is_some_and(|s| s.status == SettlementStatus::Pending));
        assert_eq!(book.scanned(), 2);
        assert_eq!(book.due(3, 0, 0, false), vec![Posting::Individual(att(1))], "posted again");
        // A block that uses att(2) again is learnt anew.
        book.learn_block(3, &[att(2)], &[]);
        assert_eq!(book.due(4, 0, 0, false), vec![Posting::Individual(att(2))]);
    }

    #[test]
    fn a_rewind_forgets_exactly_the_blocks_after_the_head() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 10, ..Default::default() };
        let mut book = Book::new(config, 0);
        for n in 1..=5u8 {
            book.learn_block(u64::from(n), &[att(n)], &[]);
        }
        book.rewind(3, |_| true);
        let tracked: Vec<bool> = (1..=5u8).map(|n| book.status.contains_key(&result_key(&att(n)))).collect();
        assert_eq!(tracked, [true, true, true, false, false]);
        // Learnt again in a new block 4, a forgotten result is tracked anew.
        book.learn_block(4, &[att(5)], &[]);
        assert!(book.status.contains_key(&result_key(&att(5))));
        book.rewind(3, |_| true);
        assert!(!book.status.contains_key(&result_key(&att(5))));
    }

    #[test]
    fn private_results_are_never_posted() {
        let mut book =
            Book::new(SettlementConfig { mode: SettlementMode::Private, after_blocks: 0, ..Default::default() }, 0);
        book.learn_block(1, &[att(1)], &[]);
        assert!(book.due(100, 100_000, 0, false).is_empty());
        assert_eq!(book.settlement(&att(1), 1).unwrap().status, SettlementStatus::Private);
    }
}
