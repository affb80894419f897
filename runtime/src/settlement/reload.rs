//! The book of a loaded chain (`--state`, `anvil_loadState`), rebuilt from
//! the chain itself in one pass over its blocks: the results its receipts
//! used (PROTOCOL.md B6) and the settlements the relay contract recorded
//! ([`super::recorded`]). A settled result shows `settled` with its
//! transaction (and its batch's root and proof), whatever else is said of
//! it; a result still inside the delay at the loaded head waits to be posted
//! as if the book had followed the chain; one that came due without a
//! settlement on chain is [`SettlementStatus::Missed`] and is never posted:
//! the relay that made the chain may have posted or withheld it, and a
//! result is never settled twice.
//!
//! A devnet's own dump also says what its relay still owed ([`RelayDuties`],
//! written from [`Book::duties`]), which the chain alone cannot tell from a
//! withheld result: the results waiting for the delay, in the open batch,
//! or in a posting whose transaction was lost with the pool. Those the
//! chain did not settle are owed again: a waiting one is posted when due
//! (at once when it is due already), the open batch goes on as it was, and
//! a lost posting is made again at the next step. A result the dump names
//! withheld stays withheld.

use std::collections::HashMap;

use alloy_primitives::B256;

use super::merkle::MerkleTree;
use super::{
    Book, Posting, Recorded, Settlement, SettlementConfig, SettlementMode, SettlementStatus, Waiting, batch_leaf,
    result_key,
};
use crate::chain::{OpenBatch, RelayDuties};
use crate::tee::Attestation;

/// What a loaded chain's block says of settlement.
#[derive(Debug, Clone, Default)]
pub struct LoadedBlock {
    /// Its number.
    pub number: u64,
    /// The results it used (the attestations of its receipts' inference
    /// records), in order.
    pub used: Vec<Attestation>,
    /// The settlements the relay contract recorded in it, with the
    /// transaction of each.
    pub settled: Vec<(B256, Recorded)>,
}

/// Where each result the chain's settlements name settled.
#[derive(Default)]
struct OnChain {
    /// Individual records: their transaction, by result key.
    individual: HashMap<B256, B256>,
    /// Batches: their transaction and tree, in chain order…
    batches: Vec<(B256, MerkleTree)>,
    /// …and the first batch that holds each leaf.
    leaves: HashMap<B256, usize>,
}

impl OnChain {
    fn learn(&mut self, tx: B256, recorded: Recorded) {
        match recorded {
            Recorded::Individual(key) => {
                self.individual.entry(key).or_insert(tx);
            }
            Recorded::Batch(tree) => {
                let index = self.batches.len();
                for leaf in tree.leaves() {
                    self.leaves.entry(*leaf).or_insert(index);
                }
                self.batches.push((tx, tree));
            }
        }
    }

    /// The settlement of `attestation` on chain, if any.
    fn settlement(&self, attestation: &Attestation) -> Option<Settlement> {
        if let Some(tx) = self.individual.get(&result_key(attestation)) {
            return Some(settled(SettlementMode::Individual, *tx, None, Vec::new()));
        }
        let leaf = batch_leaf(attestation);
        let (tx, tree) = &self.batches[*self.leaves.get(&leaf)?];
        Some(settled(SettlementMode::Batch, *tx, Some(tree.root()), tree.proof(leaf).unwrap_or_default()))
    }
}

fn settled(mode: SettlementMode, tx: B256, merkle_root: Option<B256>, proof: Vec<B256>) -> Settlement {
    Settlement { status: SettlementStatus::Settled, mode, tx_hash: Some(tx), merkle_root, proof }
}

/// What a dump's [`RelayDuties`] say of a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Duty {
    /// Waiting for the delay.
    Waiting,
    /// In the open batch.
    Batched,
    /// In a posting lost with the pool.
    Submitted,
    /// Withheld: never posted.
    Withheld,
}

/// The duty of each result a dump's section names; the first one named
/// wins (a hand-written section may name a result twice).
fn duties_by_key(duties: &RelayDuties) -> HashMap<B256, Duty> {
    let batch = duties.batch.iter().flat_map(|b| &b.results);
    let named = (duties.pending.iter().map(|k| (k, Duty::Waiting)))
        .chain(batch.map(|k| (k, Duty::Batched)))
        .chain(duties.submitted.iter().flatten().map(|k| (k, Duty::Submitted)))
        .chain(duties.withheld.iter().map(|k| (k, Duty::Withheld)));
    let mut by_key = HashMap::new();
    for (key, duty) in named {
        by_key.entry(*key).or_insert(duty);
    }
    by_key
}

impl Book {
    /// What the relay still owes, for a dump (`None` when it owes nothing
    /// and withheld nothing): the results waiting, the open batch, and the
    /// postings not mined yet (submitted, or to be made again), each
    /// result by its key; and the results it withheld.
    pub fn duties(&self) -> Option<RelayDuties> {
        let keys = |results: &[Attestation]| results.iter().map(result_key).collect::<Vec<_>>();
        // In a stable order: a dump of the same devnet is the same file.
        let mut submitted: Vec<(&B256, &Vec<Attestation>)> = self.submitted.iter().collect();
        submitted.sort_by_key(|(tx, _)| **tx);
        let mut withheld: Vec<B256> =
            self.status.iter().filter(|(_, s)| s.status == SettlementStatus::Withheld).map(|(key, _)| *key).collect();
        withheld.sort();
        let duties = RelayDuties {
            pending: self.waiting.iter().map(|w| result_key(&w.attestation)).collect(),
            batch: (!self.batch.is_empty()).then(|| OpenBatch {
                opened: self.batch_opened,
                touched: self.batch_touched,
                results: keys(&self.batch),
            }),
            submitted: (self.again.iter().map(|p| keys(p.results())))
                .chain(submitted.into_iter().map(|(_, results)| keys(results)))
                .collect(),
            withheld,
        };
        (duties != RelayDuties::default()).then_some(duties)
    }

    /// The book of a loaded chain whose head is block `head`, from its
    /// `blocks` in ascending order and, for a devnet's own dump, what its
    /// relay still owed (see the module's doc).
    pub fn reloaded(
        config: SettlementConfig,
        head: u64,
        blocks: impl IntoIterator<Item = LoadedBlock>,
        duties: Option<RelayDuties>,
    ) -> Self {
        let duties = duties.unwrap_or_default();
        let by_key = duties_by_key(&duties);
        let mut on_chain = OnChain::default();
        let mut used = Vec::new();
        for block in blocks {
            for (tx, recorded) in block.settled {
                on_chain.learn(tx, recorded);
            }
            used.extend(block.used.into_iter().map(|a| (block.number, a)));
        }
        // Every result of the loaded chain is tracked: the book starts at
        // genesis, having learnt up to the head.
        let mut book = Self { config, scanned: head, ..Self::default() };
        // The owed results that go in the open batch or a posting made
        // again, by key, once every result is known.
        let mut owed = HashMap::new();
        for (number, attestation) in used {
            let key = result_key(&attestation);
            if book.status.contains_key(&key) {
                continue;
            }
            let settlement = on_chain.settlement(&attestation).unwrap_or_else(|| {
                let inside_delay = number.saturating_add(config.after_blocks) > head;
                let status = match (config.mode, by_key.get(&key)) {
                    (SettlementMode::Private, _) => SettlementStatus::Private,
                    (_, Some(Duty::Withheld)) => SettlementStatus::Withheld,
                    (_, Some(Duty::Batched | Duty::Submitted)) => {
                        owed.insert(key, attestation);
                        SettlementStatus::Pending
                    }
                    (_, None) if !inside_delay => SettlementStatus::Missed,
                    // Owed, or inside the delay: posted when due.
                    (_, Some(Duty::Waiting) | None) => {
                        book.waiting.push_back(Waiting { attestation, used_in: number });
                        SettlementStatus::Pending
                    }
                };
                Settlement { status, mode: config.mode, tx_hash: None, merkle_root: None, proof: Vec::new() }
            });
            book.status.insert(key, settlement);
            book.used_in.entry(number).or_default().push(key);
        }
        book.owe_again(duties, owed);
        book
    }

    /// Puts the owed results of a dump's open batch and lost postings
    /// (`owed`, by key) back. In batch mode the batch reopens as it was (and
    /// is posted when full, idle or old, as before) and each lost posting is
    /// made again as a batch at the next step; in individual mode each of
    /// them is posted on its own at the next step.
    fn owe_again(&mut self, duties: RelayDuties, mut owed: HashMap<B256, Attestation>) {
        let mut take = |keys: Vec<B256>| keys.into_iter().filter_map(|key| owed.remove(&key)).collect::<Vec<_>>();
        let batch = duties.batch.map(|b| (b.opened, b.touched, take(b.results)));
        let lost: Vec<Vec<Attestation>> = duties.submitted.into_iter().map(&mut take).collect();
        match self.config.mode {
            SettlementMode::Batch => {
                if let Some((opened, touched, results)) = batch.filter(|(_, _, results)| !results.is_empty()) {
                    (self.batch_opened, self.batch_touched, self.batch) = (opened, touched, results);
                }
                for results in lost {
                    let posting = self.seal(results);
                    self.again.extend(posting);
                }
            }
            SettlementMode::Individual => {
                let batched = batch.map(|(_, _, results)| results).unwrap_or_default();
                self.again.extend(batched.into_iter().chain(lost.into_iter().flatten()).map(Posting::Individual));
            }
            // Nothing is owed under `--settlement private`.
            SettlementMode::Private => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settlement::tests::att;
    use crate::settlement::{Posting, merkle};

    fn block(number: u64, used: &[Attestation], settled: Vec<(B256, Recorded)>) -> LoadedBlock {
        LoadedBlock { number, used: used.to_vec(), settled }
    }

    fn batch(results: &[Attestation]) -> MerkleTree {
        MerkleTree::new(&results.iter().map(batch_leaf).collect::<Vec<_>>()).unwrap()
    }

    fn status(book: &Book, a: &Attestation, used_in: u64) -> SettlementStatus {
        book.settlement(a, used_in).expect("tracked").status
    }

    #[test]
    fn settled_results_keep_their_transaction_root_and_proof() {
        let config = SettlementConfig { after_blocks: 2, ..Default::default() };
        let tree = batch(&[att(1), att(2)]);
        let blocks = vec![
            block(1, &[att(1)], vec![]),
            block(2, &[att(2), att(3)], vec![]),
            block(4, &[], vec![(B256::repeat_byte(7), Recorded::Batch(tree.clone()))]),
            block(5, &[], vec![(B256::repeat_byte(8), Recorded::Individual(result_key(&att(3))))]),
        ];
        let mut book = Book::reloaded(config, 6, blocks, None);
        for a in [att(1), att(2)] {
            let s = book.settlement(&a, 1).unwrap();
            assert_eq!(
                (s.status, s.mode, s.tx_hash),
                (SettlementStatus::Settled, SettlementMode::Batch, Some(B256::repeat_byte(7)))
            );
            assert_eq!(s.merkle_root, Some(tree.root()));
            assert!(merkle::verify(&s.proof, tree.root(), batch_leaf(&a)));
        }
        let s = book.settlement(&att(3), 2).unwrap();
        assert_eq!(
            (s.status, s.mode, s.tx_hash),
            (SettlementStatus::Settled, SettlementMode::Individual, Some(B256::repeat_byte(8)))
        );
        assert!(book.due(100, 100_000, 0, false).is_empty(), "nothing is posted again");
    }

    #[test]
    fn results_inside_the_delay_are_posted_when_due_and_due_ones_are_missed() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 3, ..Default::default() };
        let blocks =
            vec![block(6, &[att(1)], vec![]), block(8, &[att(2), att(1)], vec![]), block(9, &[att(3)], vec![])];
        let mut book = Book::reloaded(config, 9, blocks, None);
        assert_eq!(status(&book, &att(1), 6), SettlementStatus::Missed, "due at block 9, not settled");
        assert_eq!(status(&book, &att(2), 8), SettlementStatus::Pending);
        assert!(book.due(10, 0, 0, false).is_empty());
        assert_eq!(book.due(11, 0, 0, false), vec![Posting::Individual(att(2))]);
        assert_eq!(book.due(12, 0, 0, false), vec![Posting::Individual(att(3))]);
        assert!(book.due(100, 0, 0, false).is_empty(), "each once, the missed one never");
        // A rewind into the loaded chain forgets what the lost blocks used.
        book.rewind(8, |_| true);
        assert!(book.settlement(&att(3), 9).is_some_and(|s| s.status == SettlementStatus::Pending));
        assert!(!book.status.contains_key(&result_key(&att(3))));
    }

    #[test]
    fn a_private_devnet_posts_nothing_of_a_loaded_chain() {
        let config = SettlementConfig { mode: SettlementMode::Private, after_blocks: 3, ..Default::default() };
        let blocks = vec![
            block(1, &[att(1)], vec![(B256::repeat_byte(1), Recorded::Individual(result_key(&att(1))))]),
            block(2, &[att(2)], vec![]),
        ];
        let mut book = Book::reloaded(config, 2, blocks, None);
        assert_eq!(status(&book, &att(1), 1), SettlementStatus::Settled, "settled on chain before");
        assert_eq!(status(&book, &att(2), 2), SettlementStatus::Private);
        assert!(book.due(100, 100_000, 0, false).is_empty());
    }

    #[test]
    fn a_dumps_open_batch_and_lost_postings_are_owed_again_unless_the_chain_settled_them() {
        let config = SettlementConfig { after_blocks: 1, batch_size: 2, ..Default::default() };
        let mut relay = Book::new(config, 0);
        relay.learn_block(1, &[att(1), att(2), att(3), att(4), att(5)], &[]);
        let [first, second] = relay.due(2, 100, 0, false).try_into().expect("two full batches");
        relay.submitted(&first, B256::repeat_byte(1));
        relay.submitted(&second, B256::repeat_byte(2));
        relay.learn_block(3, &[att(6)], &[]);
        // Dumped at block 3: the second batch was mined there (not learnt
        // yet), the first was still in the pool, att(5) in the open batch.
        let duties = relay.duties().expect("owes");
        assert_eq!(duties.pending, keys_of(&[6]));
        assert_eq!(duties.batch, Some(OpenBatch { opened: 100, touched: 100, results: keys_of(&[5]) }));
        assert_eq!(duties.submitted, vec![keys_of(&[1, 2]), keys_of(&[3, 4])]);
        let tree = batch(&[att(3), att(4)]);
        assert_eq!(second, Posting::Batch { root: tree.root(), results: vec![att(3), att(4)] });
        let blocks = vec![
            block(1, &[att(1), att(2), att(3), att(4), att(5)], vec![]),
            block(3, &[att(6)], vec![(B256::repeat_byte(2), Recorded::Batch(tree))]),
        ];
        let mut book = Book::reloaded(config, 3, blocks, Some(duties));
        for (n, expected) in
            [(1, SettlementStatus::Pending), (3, SettlementStatus::Settled), (5, SettlementStatus::Pending)]
        {
            assert_eq!(status(&book, &att(n), 1), expected, "att({n})");
        }
        // The lost posting is made again at once, the same batch; the open
        // batch waits, as before, and takes att(6) when it comes due.
        assert_eq!(book.due(3, 150, 0, false), vec![first]);
        let s = book.settlement(&att(1), 1).unwrap();
        let root = batch(&[att(1), att(2)]).root();
        assert_eq!((s.status, s.merkle_root), (SettlementStatus::Pending, Some(root)));
        assert!(merkle::verify(&s.proof, root, batch_leaf(&att(1))));
        let due = book.due(4, 200, 0, false);
        assert_eq!(due, vec![Posting::Batch { root: batch(&[att(5), att(6)]).root(), results: vec![att(5), att(6)] }]);
        assert!(book.due(100, 100_000, 0, false).is_empty(), "each once, the settled ones never");
    }

    #[test]
    fn owed_results_due_already_are_posted_at_once_and_withheld_ones_never() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 1, ..Default::default() };
        let mut relay = Book::new(config, 0);
        relay.learn_block(1, &[att(1), att(2)], &[]);
        assert!(relay.due(2, 0, 0, true).is_empty(), "withheld");
        relay.learn_block(2, &[att(3)], &[]);
        relay.learn_block(3, &[att(4)], &[]);
        assert!(relay.due(4, 0, 10, false).is_empty(), "late: att(3) is due, not posted yet");
        let duties = relay.duties().expect("owes");
        assert_eq!(duties.withheld.len(), 2);
        // Block 4, which the relay had not learnt, used att(5): due, and not
        // known to be owed.
        let blocks = || {
            vec![
                block(1, &[att(1), att(2)], vec![]),
                block(2, &[att(3)], vec![]),
                block(3, &[att(4)], vec![]),
                block(4, &[att(5)], vec![]),
            ]
        };
        let mut book = Book::reloaded(config, 5, blocks(), Some(duties.clone()));
        let statuses: Vec<SettlementStatus> = (1..=5).map(|n| status(&book, &att(n), 1)).collect();
        use SettlementStatus::{Missed, Pending, Withheld};
        assert_eq!(statuses, [Withheld, Withheld, Pending, Pending, Missed]);
        assert_eq!(book.due(5, 0, 0, false), vec![Posting::Individual(att(3)), Posting::Individual(att(4))]);
        assert!(book.due(100, 0, 0, false).is_empty());
        // Withheld stays withheld under a longer delay too; without the
        // section the chain alone decides (all inside the delay).
        let longer = SettlementConfig { after_blocks: 10, ..config };
        let book = Book::reloaded(longer, 5, blocks(), Some(duties));
        assert_eq!(status(&book, &att(1), 1), Withheld);
        let book = Book::reloaded(longer, 5, blocks(), None);
        assert_eq!(status(&book, &att(1), 1), Pending);
    }

    #[test]
    fn under_another_mode_owed_results_are_posted_as_that_mode_posts() {
        let batch_config = SettlementConfig { after_blocks: 0, batch_size: 3, ..Default::default() };
        let mut relay = Book::new(batch_config, 0);
        relay.learn_block(1, &[att(1), att(2)], &[]);
        assert!(relay.due(1, 0, 0, false).is_empty(), "in the open batch");
        let blocks = || vec![block(1, &[att(1), att(2)], vec![])];
        let individual = SettlementConfig { mode: SettlementMode::Individual, ..batch_config };
        let mut book = Book::reloaded(individual, 1, blocks(), relay.duties());
        assert_eq!(book.due(1, 0, 0, false), vec![Posting::Individual(att(1)), Posting::Individual(att(2))]);
        let private = SettlementConfig { mode: SettlementMode::Private, ..batch_config };
        let mut book = Book::reloaded(private, 1, blocks(), relay.duties());
        assert_eq!(status(&book, &att(1), 1), SettlementStatus::Private);
        assert!(book.due(100, 100_000, 0, false).is_empty());
        // A smaller batch size: the reopened batch is full already.
        let small = SettlementConfig { batch_size: 2, ..batch_config };
        let mut book = Book::reloaded(small, 1, blocks(), relay.duties());
        assert_eq!(book.due(1, 0, 0, false).len(), 1);
    }

    #[test]
    fn a_section_naming_results_the_chain_did_not_use_posts_nothing() {
        let config = SettlementConfig { mode: SettlementMode::Individual, after_blocks: 1, ..Default::default() };
        let strangers = keys_of(&[7, 8]);
        // A hand-written section: nothing of it names a result of the chain.
        let duties = RelayDuties {
            pending: strangers.clone(),
            batch: Some(OpenBatch { opened: 0, touched: 0, results: strangers.clone() }),
            submitted: vec![strangers],
            withheld: Vec::new(),
        };
        let mut book = Book::reloaded(config, 5, vec![block(1, &[att(1)], vec![])], Some(duties));
        assert_eq!(status(&book, &att(1), 1), SettlementStatus::Missed);
        assert!(book.due(100, 100_000, 0, false).is_empty());
        assert_eq!(book.duties(), None, "owes nothing");
    }

    fn keys_of(n: &[u8]) -> Vec<B256> {
        n.iter().map(|i| result_key(&att(*i))).collect()
    }
}
