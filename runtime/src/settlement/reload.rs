//! The book of a loaded chain (`--state`, `anvil_loadState`), rebuilt from
//! the chain itself in one pass over its blocks: the results its receipts
//! used (PROTOCOL.md B6) and the settlements the relay contract recorded
//! ([`super::recorded`]). A settled result shows `settled` with its
//! transaction (and its batch's root and proof); a result still inside the
//! delay at the loaded head waits to be posted as if the book had followed
//! the chain; one that came due without a settlement on chain is
//! [`SettlementStatus::Missed`] and is never posted: the relay that made the
//! chain may have posted or withheld it, and a result is never settled twice.

use std::collections::HashMap;

use alloy_primitives::B256;

use super::merkle::MerkleTree;
use super::{
    Book, Recorded, Settlement, SettlementConfig, SettlementMode, SettlementStatus, Waiting, batch_leaf, result_key,
};
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

impl Book {
    /// The book of a loaded chain whose head is block `head`, from its
    /// `blocks` in ascending order (see the module's doc).
    pub fn reloaded(config: SettlementConfig, head: u64, blocks: impl IntoIterator<Item = LoadedBlock>) -> Self {
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
        for (number, attestation) in used {
            let key = result_key(&attestation);
            if book.status.contains_key(&key) {
                continue;
            }
            let settlement = on_chain.settlement(&attestation).unwrap_or_else(|| {
                let status = if config.mode == SettlementMode::Private {
                    SettlementStatus::Private
                } else if number.saturating_add(config.after_blocks) > head {
                    book.waiting.push_back(Waiting { attestation, used_in: number });
                    SettlementStatus::Pending
                } else {
                    SettlementStatus::Missed
                };
                Settlement { status, mode: config.mode, tx_hash: None, merkle_root: None, proof: Vec::new() }
            });
            book.status.insert(key, settlement);
            book.used_in.entry(number).or_default().push(key);
        }
        book
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
        let mut book = Book::reloaded(config, 6, blocks);
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
        let mut book = Book::reloaded(config, 9, blocks);
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
        let mut book = Book::reloaded(config, 2, blocks);
        assert_eq!(status(&book, &att(1), 1), SettlementStatus::Settled, "settled on chain before");
        assert_eq!(status(&book, &att(2), 2), SettlementStatus::Private);
        assert!(book.due(100, 100_000, 0, false).is_empty());
    }
}
