//! The pending pool: transactions waiting for a block, per sender in nonce
//! order, with a queue for future nonces and fee-bumped replacement.

use std::collections::{BTreeMap, BinaryHeap};
use std::sync::Arc;

use alloy_primitives::map::HashMap;
use alloy_primitives::{Address, B256};

use crate::chain::{PoolTx, TxError};

/// The fee increase, in percent, a replacement must offer (geth's default).
pub const REPLACEMENT_BUMP_PERCENT: u128 = 10;

/// Where an added transaction went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Added {
    /// Executable now: its nonce follows the sender's.
    Pending,
    /// Waiting for lower nonces to arrive.
    Queued,
    /// It replaced the pending transaction with this hash.
    Replaced(B256),
}

/// One sender's transactions by nonce, and the run of consecutive nonces
/// that starts at the lowest one, kept as transactions come and go so that
/// adding one and asking for the pending nonce cost no walk of the queue.
#[derive(Debug, Clone, Default)]
struct SenderTxs {
    txs: BTreeMap<u64, Arc<PoolTx>>,
    /// The nonce after the run that starts at the lowest nonce held; `None`
    /// after a change that breaks the run, until it is next asked for.
    run_end: Option<u64>,
}

impl SenderTxs {
    fn first(&self) -> Option<u64> {
        self.txs.first_key_value().map(|(n, _)| *n)
    }

    /// The run of consecutive nonces from the lowest held: `[first, end)`.
    fn run(&mut self) -> Option<(u64, u64)> {
        let first = self.first()?;
        let mut end = self.run_end.map_or(first, |end| end.max(first));
        while self.txs.contains_key(&end) {
            end += 1;
        }
        self.run_end = Some(end);
        Some((first, end))
    }

    fn insert(&mut self, nonce: u64, tx: Arc<PoolTx>) {
        if self.first().is_some_and(|first| nonce < first) {
            self.run_end = None;
        }
        // A nonce at the run's end extends it (`run` walks on from there).
        self.txs.insert(nonce, tx);
    }

    fn remove(&mut self, nonce: u64) {
        let first = self.first();
        self.txs.remove(&nonce);
        // Taking the lowest (a block mined it) keeps the rest of the run;
        // anything else may break it.
        if first != Some(nonce) || self.run_end.is_some_and(|end| end <= nonce) {
            self.run_end = None;
        }
    }

    /// The nonce after the executable run, starting at `state_nonce`.
    fn pending_end(&mut self, state_nonce: u64) -> u64 {
        match self.run() {
            Some((first, end)) if first <= state_nonce && state_nonce < end => end,
            // Stale nonces below the sender's (not pruned yet, e.g. after
            // `anvil_setNonce`) and a gap before `state_nonce`: walk from it.
            Some((first, _)) if first < state_nonce => {
                let mut next = state_nonce;
                while self.txs.contains_key(&next) {
                    next += 1;
                }
                next
            }
            _ => state_nonce,
        }
    }
}

/// Transactions waiting for inclusion.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    senders: HashMap<Address, SenderTxs>,
    by_hash: HashMap<B256, (Arc<PoolTx>, u64)>,
    next_seq: u64,
}

impl Pool {
    /// Adds `tx`, whose sender's next nonce on chain is `state_nonce`.
    pub fn add(&mut self, tx: Arc<PoolTx>, state_nonce: u64) -> Result<Added, TxError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(TxError::AlreadyKnown);
        }
        let nonce = tx.nonce();
        if nonce < state_nonce {
            return Err(TxError::NonceTooLow { next: state_nonce, tx: nonce });
        }
        let queue = self.senders.entry(tx.sender).or_default();
        let mut replaced = None;
        if let Some(existing) = queue.txs.get(&nonce) {
            let bumped = |old: u128, new: u128| new * 100 >= old * (100 + REPLACEMENT_BUMP_PERCENT) && new > old;
            if !bumped(existing.max_fee(), tx.max_fee()) || !bumped(existing.max_tip(), tx.max_tip()) {
                return Err(TxError::ReplacementUnderpriced);
            }
            replaced = Some(existing.hash);
        }
        queue.insert(nonce, tx.clone());
        // Executable when every nonce from the sender's on chain up to this one is here.
        let pending = nonce < queue.pending_end(state_nonce);
        if let Some(old) = replaced {
            self.by_hash.remove(&old);
        }
        self.by_hash.insert(tx.hash, (tx, self.next_seq));
        self.next_seq += 1;
        Ok(match (replaced, pending) {
            (Some(old), _) => Added::Replaced(old),
            (None, true) => Added::Pending,
            (None, false) => Added::Queued,
        })
    }

    /// The transaction with that hash.
    pub fn get(&self, hash: &B256) -> Option<&Arc<PoolTx>> {
        self.by_hash.get(hash).map(|(tx, _)| tx)
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The highest nonce `sender` has in the pool, if any.
    pub fn last_nonce(&self, sender: &Address) -> Option<u64> {
        self.senders.get(sender).and_then(|q| q.txs.last_key_value()).map(|(n, _)| *n)
    }

    /// The nonce after `sender`'s executable run in the pool, starting at
    /// its on-chain nonce `state_nonce` (the `pending` nonce).
    pub fn pending_nonce(&mut self, sender: &Address, state_nonce: u64) -> u64 {
        self.senders.get_mut(sender).map_or(state_nonce, |queue| queue.pending_end(state_nonce))
    }

    /// The executable transactions in block order: each sender's in nonce
    /// order from its on-chain nonce, without gaps, and across senders the
    /// highest tip at `base_fee` first (arrival order on ties). A sender's
    /// run stops at a transaction whose max fee is below `base_fee`.
    ///
    /// Ordered as it is read ([`Ready`]): the first costs a look at each
    /// sender, and each next one a step of a heap of senders, so a miner
    /// that takes one transaction per block (automine) does not order the
    /// whole pool for each.
    pub fn ready(&self, nonce_of: impl Fn(&Address) -> u64, base_fee: u64) -> Ready<'_> {
        let mut ready = Ready { pool: self, base_fee, heads: BinaryHeap::new() };
        for (sender, queue) in &self.senders {
            if let Some(tx) = queue.txs.get(&nonce_of(sender)) {
                ready.push(tx);
            }
        }
        ready
    }

    /// Removes a transaction.
    pub fn remove(&mut self, hash: &B256) -> Option<Arc<PoolTx>> {
        let (tx, _) = self.by_hash.remove(hash)?;
        if let Some(queue) = self.senders.get_mut(&tx.sender) {
            queue.remove(tx.nonce());
            if queue.txs.is_empty() {
                self.senders.remove(&tx.sender);
            }
        }
        Some(tx)
    }

    /// Drops every transaction whose nonce is below its sender's on-chain nonce.
    pub fn prune(&mut self, nonce_of: impl Fn(&Address) -> u64) {
        let mut stale = Vec::new();
        for (sender, queue) in &self.senders {
            let next = nonce_of(sender);
            stale.extend(queue.txs.range(..next).map(|(_, tx)| tx.hash));
        }
        for hash in stale {
            self.remove(&hash);
        }
    }

    /// Splits the pool into pending (executable) and queued (behind a nonce gap)
    /// transactions, per sender in nonce order.
    pub fn content(&self, nonce_of: impl Fn(&Address) -> u64) -> PoolContent {
        let mut content = PoolContent::default();
        for (sender, queue) in &self.senders {
            let mut expected = nonce_of(sender);
            for (nonce, tx) in &queue.txs {
                if *nonce == expected {
                    content.pending.entry(*sender).or_default().push(tx.clone());
                    expected += 1;
                } else {
                    content.queued.entry(*sender).or_default().push(tx.clone());
                }
            }
        }
        content
    }

    /// Every transaction, in arrival order.
    pub fn all(&self) -> Vec<Arc<PoolTx>> {
        let mut all: Vec<_> = self.by_hash.values().collect();
        all.sort_unstable_by_key(|(_, seq)| *seq);
        all.into_iter().map(|(tx, _)| tx.clone()).collect()
    }
}

/// The pool's executable transactions in block order ([`Pool::ready`]).
#[derive(Debug)]
pub struct Ready<'a> {
    pool: &'a Pool,
    base_fee: u64,
    /// The next transaction of each sender, best first.
    heads: BinaryHeap<Head>,
}

/// A sender's next transaction as [`Ready`] orders them.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    tip: u128,
    earlier: std::cmp::Reverse<u64>,
    sender: Address,
    nonce: u64,
}

impl Ready<'_> {
    /// Queues `tx` as its sender's next, unless its max fee is below the base fee.
    fn push(&mut self, tx: &PoolTx) {
        let Some(tip) = tx.effective_tip(self.base_fee) else { return };
        let seq = self.pool.by_hash.get(&tx.hash).map(|(_, s)| *s).unwrap_or_default();
        self.heads.push(Head { tip, earlier: std::cmp::Reverse(seq), sender: tx.sender, nonce: tx.nonce() });
    }
}

impl Iterator for Ready<'_> {
    type Item = Arc<PoolTx>;

    fn next(&mut self) -> Option<Arc<PoolTx>> {
        loop {
            let Head { sender, nonce, .. } = self.heads.pop()?;
            let Some(queue) = self.pool.senders.get(&sender) else { continue };
            if let Some(next) = queue.txs.get(&(nonce + 1)) {
                self.push(next);
            }
            if let Some(tx) = queue.txs.get(&nonce) {
                return Some(Arc::clone(tx));
            }
        }
    }
}

/// The pool split by executability (`txpool_content`).
#[derive(Debug, Clone, Default)]
pub struct PoolContent {
    /// Executable transactions, per sender in nonce order.
    pub pending: BTreeMap<Address, Vec<Arc<PoolTx>>>,
    /// Transactions behind a nonce gap.
    pub queued: BTreeMap<Address, Vec<Arc<PoolTx>>>,
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{TxLegacy, TypedTransaction};
    use alloy_primitives::{Address, address};

    use super::*;

    const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");

    const BOB: Address = address!("0x0000000000000000000000000000000000000b0b");

    fn tx(nonce: u64, gas_price: u128) -> Arc<PoolTx> {
        tx_from(ALICE, nonce, gas_price)
    }

    fn tx_from(sender: Address, nonce: u64, gas_price: u128) -> Arc<PoolTx> {
        let legacy = TxLegacy { nonce, gas_price, gas_limit: 21_000, ..Default::default() };
        Arc::new(PoolTx::impersonated(TypedTransaction::Legacy(legacy), sender))
    }

    #[test]
    fn a_gap_queues_and_filling_it_makes_the_run_pending() {
        let mut pool = Pool::default();
        assert_eq!(pool.add(tx(0, 1), 0).unwrap(), Added::Pending);
        assert_eq!(pool.add(tx(2, 1), 0).unwrap(), Added::Queued);
        assert_eq!(pool.pending_nonce(&ALICE, 0), 1);
        assert_eq!(pool.add(tx(1, 1), 0).unwrap(), Added::Pending);
        assert_eq!(pool.pending_nonce(&ALICE, 0), 3);
        assert_eq!(pool.add(tx(3, 1), 0).unwrap(), Added::Pending);
        assert_eq!(pool.ready(|_| 0, 0).count(), 4);
    }

    #[test]
    fn ready_is_each_senders_run_in_nonce_order_best_tip_first() {
        let mut pool = Pool::default();
        let alice: Vec<_> = [(0, 12), (1, 30), (2, 40), (3, 5)].map(|(n, p)| tx_from(ALICE, n, p)).into();
        let bob: Vec<_> = [(0, 20), (1, 20), (3, 90)].map(|(n, p)| tx_from(BOB, n, p)).into();
        for t in alice.iter().chain(&bob) {
            pool.add(t.clone(), 0).unwrap();
        }
        let order = |base_fee| pool.ready(|_| 0, base_fee).map(|t| t.hash).collect::<Vec<_>>();
        // Bob's two 20s before Alice's 12, and her 30 and 40 behind her 12
        // (nonce order first); Bob's nonce 3 waits behind a gap.
        let hashes = |txs: &[&Arc<PoolTx>]| txs.iter().map(|t| t.hash).collect::<Vec<_>>();
        assert_eq!(order(0), hashes(&[&bob[0], &bob[1], &alice[0], &alice[1], &alice[2], &alice[3]]));
        // A fee below the base fee ends its sender's run there.
        assert_eq!(order(10), hashes(&[&bob[0], &bob[1], &alice[0], &alice[1], &alice[2]]));
        assert_eq!(order(15), hashes(&[&bob[0], &bob[1]]));
        // Read one at a time, it starts the same.
        assert_eq!(pool.ready(|_| 0, 0).next().map(|t| t.hash), Some(bob[0].hash));
    }

    #[test]
    fn mining_the_lowest_keeps_the_run_and_a_hole_breaks_it() {
        let mut pool = Pool::default();
        let txs: Vec<_> = (0..4).map(|n| tx(n, 1)).collect();
        for t in &txs {
            pool.add(t.clone(), 0).unwrap();
        }
        pool.remove(&txs[0].hash);
        assert_eq!(pool.pending_nonce(&ALICE, 1), 4);
        pool.remove(&txs[2].hash);
        assert_eq!(pool.pending_nonce(&ALICE, 1), 2);
        assert_eq!(pool.add(tx(4, 1), 1).unwrap(), Added::Queued);
    }

    #[test]
    fn stale_nonces_below_the_senders_do_not_hide_a_pending_one() {
        // Nonces 0 and 1 are still held (not pruned) when the sender's
        // nonce jumps to 5, e.g. after `anvil_setNonce`.
        let mut pool = Pool::default();
        pool.add(tx(0, 1), 0).unwrap();
        pool.add(tx(1, 1), 0).unwrap();
        assert_eq!(pool.add(tx(5, 1), 5).unwrap(), Added::Pending);
        assert_eq!(pool.pending_nonce(&ALICE, 5), 6);
        assert_eq!(pool.pending_nonce(&ALICE, 3), 3);
    }

    #[test]
    fn a_replacement_needs_the_bump() {
        let mut pool = Pool::default();
        let first = tx(0, 100);
        pool.add(first.clone(), 0).unwrap();
        assert!(matches!(pool.add(tx(0, 105), 0), Err(TxError::ReplacementUnderpriced)));
        assert_eq!(pool.add(tx(0, 110), 0).unwrap(), Added::Replaced(first.hash));
        assert_eq!(pool.pending_nonce(&ALICE, 0), 1);
    }
}
