//! The pending pool: transactions waiting for a block, per sender in nonce
//! order, with a queue for future nonces and fee-bumped replacement.
//!
//! Two ways to read what is executable: [`Pool::ready`], all of it in block
//! order, read as it is ordered (a heap of senders); and [`Pool::best`], the
//! first of that order alone (automine's one transaction a block). Both take
//! each sender's nonce as the pool was last told it ([`Pool::add`],
//! [`Pool::prune_senders`]), and both find the senders to look at from two
//! indexes of the senders that have an executable transaction: by its max
//! tip, and by its max fee. A transaction's effective tip is the lower of
//! its max tip and its max fee less the base fee, so either index bounds
//! what the senders it has not reached yet could pay, one closely for an
//! EIP-1559 transaction that pays its whole tip and the other for a legacy
//! one (or one capped by its max fee); reading stops once either bound is
//! below the best found. A block of a pool of many senders looks at those
//! that could come first, not at every sender, and a sender with only
//! queued transactions is in neither index.
//!
//! The pool is bounded as geth's is, with room for a devnet bench that sends
//! tens of thousands of transactions with automine off: at most
//! [`MAX_QUEUED_PER_SENDER`] queued transactions (behind a nonce gap) per
//! sender, [`MAX_QUEUED`] queued in all, [`MAX_TXS`] in all, and
//! [`MAX_BYTES`] of their encodings in all (a transaction is at most
//! [`MAX_TX_SIZE`](crate::chain::MAX_TX_SIZE), but 60,000 of those would be
//! 7.5 GiB). A transaction past one is refused; a replacement takes no room
//! but the bytes it adds.
//!
//! A nonce of 2^64 − 1 is refused ([`TxError::NonceMax`]): no transaction
//! could follow it, and the runs of consecutive nonces the pool keeps end
//! before it, so every step from one nonce to the next stays in range.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, btree_set};
use std::iter::Peekable;
use std::sync::Arc;

use alloy_primitives::map::{HashMap, HashSet};
use alloy_primitives::{Address, B256, U256};

use crate::chain::{PoolTx, TxError};

/// The fee increase, in percent, a replacement must offer (geth's default).
pub const REPLACEMENT_BUMP_PERCENT: u128 = 10;

/// The most queued transactions (behind a nonce gap) one sender may have
/// (geth's `AccountQueue`).
const MAX_QUEUED_PER_SENDER: usize = 64;

/// The most queued transactions the pool holds (geth's `GlobalQueue` is 1,024).
const MAX_QUEUED: usize = 10_000;

/// The most transactions the pool holds: with the queued ones at their
/// bound, room for 50,000 pending (geth's `GlobalSlots` is 5,120).
const MAX_TXS: usize = 60_000;

/// The most bytes the pool's transactions take, by their EIP-2718
/// encodings: 256 MiB (2,048 transactions of the largest size).
const MAX_BYTES: usize = 256 << 20;

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
    /// Its nonce on chain, as the pool was last told (by [`Pool::add`] and
    /// [`Pool::prune_senders`]): its executable transaction is the one at
    /// this nonce. And how many of its transactions are not executable from
    /// it (queued, or stale below it): its part of [`Pool::queued`].
    base: u64,
    queued: usize,
    /// Its executable transaction as [`Pool::by_tip`] and [`Pool::by_fee`]
    /// have it filed; `None` while it has none (it is in neither).
    filed: Option<Filed>,
}

/// A sender's executable transaction as the pool's indexes file it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Filed {
    tip: u128,
    fee: u128,
    arrival: u64,
}

/// A sender in one of the pool's indexes: a price of its executable
/// transaction (its max tip, or its max fee), highest first, then that
/// transaction's arrival, earliest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Entry {
    price: Reverse<u128>,
    arrival: u64,
    sender: Address,
}

impl Entry {
    fn new(price: u128, arrival: u64, sender: Address) -> Self {
        Self { price: Reverse(price), arrival, sender }
    }
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
            // `add` takes no nonce of 2^64 - 1, so the run ends before it.
            let Some(next) = end.checked_add(1) else { break };
            end = next;
        }
        self.run_end = Some(end);
        Some((first, end))
    }

    /// Adds `tx` at a free nonce.
    fn insert(&mut self, nonce: u64, tx: Arc<PoolTx>) {
        if self.first().is_some_and(|first| nonce < first) {
            self.run_end = None;
        }
        // A nonce at the run's end extends it (`run` walks on from there).
        self.txs.insert(nonce, tx);
    }

    /// Removes the transaction at `nonce`.
    fn remove(&mut self, nonce: u64) {
        let first = self.first();
        self.txs.remove(&nonce);
        // Taking the lowest (a block mined it) keeps the rest of the run;
        // anything else may break it.
        if first != Some(nonce) || self.run_end.is_some_and(|end| end <= nonce) {
            self.run_end = None;
        }
    }

    /// Its executable transaction: the one at its nonce on chain.
    fn executable(&self) -> Option<&Arc<PoolTx>> {
        self.txs.get(&self.base)
    }

    /// How many of its transactions are not executable from `state_nonce`.
    fn count_queued(&mut self, state_nonce: u64) -> usize {
        let pending = self.pending_end(state_nonce) - state_nonce;
        self.txs.len().saturating_sub(usize::try_from(pending).unwrap_or(usize::MAX))
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
                    let Some(after) = next.checked_add(1) else { break };
                    next = after;
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
    /// The senders with an executable transaction, by its max tip and by
    /// its max fee (see the module's doc).
    by_tip: BTreeSet<Entry>,
    by_fee: BTreeSet<Entry>,
    /// The transactions not executable from their senders' nonces, as last
    /// counted (the sum of [`SenderTxs::queued`]).
    queued: usize,
    /// The bytes of the transactions' encodings, in all.
    bytes: usize,
}

impl Pool {
    /// Adds `tx`, whose sender's next nonce on chain is `state_nonce`.
    /// Every check comes before any change: a refused transaction leaves
    /// the pool as it was.
    pub fn add(&mut self, tx: Arc<PoolTx>, state_nonce: u64) -> Result<Added, TxError> {
        if self.by_hash.contains_key(&tx.hash) {
            return Err(TxError::AlreadyKnown);
        }
        let nonce = tx.nonce();
        if nonce == u64::MAX {
            return Err(TxError::NonceMax { sender: tx.sender, nonce });
        }
        if nonce < state_nonce {
            return Err(TxError::NonceTooLow { next: state_nonce, tx: nonce });
        }
        let existing = self.senders.get(&tx.sender).and_then(|queue| queue.txs.get(&nonce)).cloned();
        match &existing {
            Some(existing) => {
                // In 256 bits: a fee near 2^128 times 110 would overflow a u128.
                let bumped = |old: u128, new: u128| {
                    U256::from(new) * U256::from(100) >= U256::from(old) * U256::from(100 + REPLACEMENT_BUMP_PERCENT)
                        && new > old
                };
                if !bumped(existing.max_fee(), tx.max_fee()) || !bumped(existing.max_tip(), tx.max_tip()) {
                    return Err(TxError::ReplacementUnderpriced);
                }
            }
            None => self.check_room(tx.sender, nonce, state_nonce)?,
        }
        let size = tx.encoded_len();
        let freed = existing.as_ref().map_or(0, |old| old.encoded_len());
        if (self.bytes - freed).saturating_add(size) > MAX_BYTES {
            return Err(TxError::PoolBytesFull { limit: MAX_BYTES });
        }
        let queue = self.senders.entry(tx.sender).or_default();
        queue.base = state_nonce;
        let replaced = existing.map(|old| old.hash);
        if let Some(old) = replaced
            && self.by_hash.remove(&old).is_some()
        {
            queue.remove(nonce);
            self.bytes -= freed;
        }
        let arrival = self.next_seq;
        self.next_seq += 1;
        self.bytes += size;
        queue.insert(nonce, tx.clone());
        // Executable when every nonce from the sender's on chain up to this one is here.
        let pending = nonce < queue.pending_end(state_nonce);
        let sender = tx.sender;
        self.by_hash.insert(tx.hash, (tx, arrival));
        self.refile(sender);
        Ok(match (replaced, pending) {
            (Some(old), _) => Added::Replaced(old),
            (None, true) => Added::Pending,
            (None, false) => Added::Queued,
        })
    }

    /// Refuses a transaction at a nonce `sender` does not hold yet (its
    /// nonce on chain is `state_nonce`) when the pool has no room for it.
    fn check_room(&mut self, sender: Address, nonce: u64, state_nonce: u64) -> Result<(), TxError> {
        let (end, queued, counted) = match self.senders.get_mut(&sender) {
            Some(queue) => (queue.pending_end(state_nonce), queue.count_queued(state_nonce), queue.queued),
            None => (state_nonce, 0, 0),
        };
        // Queued unless it extends the executable run (a transaction that
        // fills a gap turns queued ones pending: it takes no queued room).
        if nonce != end {
            if queued >= MAX_QUEUED_PER_SENDER {
                return Err(TxError::AccountQueueFull { limit: MAX_QUEUED_PER_SENDER, next: end });
            }
            if self.queued - counted + queued >= MAX_QUEUED {
                return Err(TxError::QueueFull { limit: MAX_QUEUED });
            }
        }
        if self.by_hash.len() >= MAX_TXS {
            return Err(TxError::PoolFull { limit: MAX_TXS });
        }
        Ok(())
    }

    /// The transaction with that hash.
    pub fn get(&self, hash: &B256) -> Option<&Arc<PoolTx>> {
        self.by_hash.get(hash).map(|(tx, _)| tx)
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// How many transactions are pending and queued, as
    /// [`PoolContent`] would list them: counted as transactions come and go,
    /// so asking costs the same whatever the pool holds.
    pub fn counts(&self) -> PoolCounts {
        PoolCounts { pending: self.by_hash.len() - self.queued, queued: self.queued }
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
    /// order from its nonce on chain (as the pool was last told it), without
    /// gaps, and across senders the highest tip at `base_fee` first (arrival
    /// order on ties). A sender's run stops at a transaction whose max fee
    /// is below `base_fee`, and at the first one `skip` rules out: the
    /// sender's later nonces cannot go before it.
    ///
    /// Ordered as it is read ([`Ready`]): each transaction costs a step of a
    /// heap of senders and a look at the senders that could pay more (see
    /// the module's doc), so a miner that takes one transaction, or one
    /// block's worth, does not look at the whole pool.
    pub fn ready<S: FnMut(&PoolTx) -> bool>(&self, base_fee: u64, skip: S) -> Ready<'_, S> {
        Ready {
            pool: self,
            base_fee,
            skip,
            heads: BinaryHeap::new(),
            by_tip: self.by_tip.iter().peekable(),
            by_fee: self.by_fee.iter().peekable(),
            pulled: HashSet::default(),
        }
    }

    /// The first transaction of [`Pool::ready`]'s order that `skip` does not
    /// rule out.
    pub fn best(&self, base_fee: u64, skip: impl FnMut(&PoolTx) -> bool) -> Option<Arc<PoolTx>> {
        self.ready(base_fee, skip).next()
    }

    /// Files `sender` again by its executable transaction (in no index
    /// while it has none; and once it has no transaction left, it goes),
    /// and counts its queued transactions again.
    fn refile(&mut self, sender: Address) {
        let Some(queue) = self.senders.get_mut(&sender) else { return };
        let queued = queue.count_queued(queue.base);
        self.queued = self.queued - queue.queued + queued;
        queue.queued = queued;
        let filed = queue.executable().and_then(|tx| {
            let (_, arrival) = self.by_hash.get(&tx.hash)?;
            Some(Filed { tip: tx.max_tip(), fee: tx.max_fee(), arrival: *arrival })
        });
        if filed != queue.filed {
            if let Some(old) = queue.filed.take() {
                self.by_tip.remove(&Entry::new(old.tip, old.arrival, sender));
                self.by_fee.remove(&Entry::new(old.fee, old.arrival, sender));
            }
            if let Some(new) = filed {
                self.by_tip.insert(Entry::new(new.tip, new.arrival, sender));
                self.by_fee.insert(Entry::new(new.fee, new.arrival, sender));
            }
            queue.filed = filed;
        }
        if queue.txs.is_empty() {
            self.senders.remove(&sender);
        }
    }

    /// Removes a transaction.
    pub fn remove(&mut self, hash: &B256) -> Option<Arc<PoolTx>> {
        let tx = self.take(hash)?;
        self.refile(tx.sender);
        Some(tx)
    }

    /// Removes a transaction, leaving its sender to be filed again.
    fn take(&mut self, hash: &B256) -> Option<Arc<PoolTx>> {
        let (tx, _) = self.by_hash.remove(hash)?;
        self.bytes -= tx.encoded_len();
        if let Some(queue) = self.senders.get_mut(&tx.sender) {
            queue.remove(tx.nonce());
        }
        Some(tx)
    }

    /// Drops every transaction of `senders` whose nonce is below the
    /// sender's on-chain nonce, and takes that nonce as the sender's (after
    /// a block: those whose nonces it moved; after an edit: the edited one).
    pub fn prune_senders(&mut self, senders: &[Address], nonce_of: impl Fn(&Address) -> u64) {
        let mut stale = Vec::new();
        for sender in senders {
            if let Some(queue) = self.senders.get_mut(sender) {
                queue.base = nonce_of(sender);
                stale.extend(queue.txs.range(..queue.base).map(|(_, tx)| tx.hash));
            }
        }
        for hash in stale {
            self.take(&hash);
        }
        // Once, after the stale ones went: moved nonces make queued
        // transactions pending.
        for sender in senders {
            self.refile(*sender);
        }
    }

    /// Splits the pool into pending (executable) and queued (behind a nonce gap)
    /// transactions, per sender in nonce order, from each sender's nonce as
    /// the pool was last told it (as [`Pool::ready`] and [`Pool::counts`]).
    pub fn content(&self) -> PoolContent {
        let mut content = PoolContent::default();
        for (sender, queue) in &self.senders {
            let mut expected = queue.base;
            for (nonce, tx) in &queue.txs {
                if *nonce == expected {
                    content.pending.entry(*sender).or_default().push(tx.clone());
                    expected = expected.saturating_add(1);
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
pub struct Ready<'a, S> {
    pool: &'a Pool,
    base_fee: u64,
    skip: S,
    /// The next transaction of each sender taken from the indexes, best first.
    heads: BinaryHeap<Head>,
    /// Where the walks of the two indexes are, and the senders they took.
    by_tip: Peekable<btree_set::Iter<'a, Entry>>,
    by_fee: Peekable<btree_set::Iter<'a, Entry>>,
    pulled: HashSet<Address>,
}

/// A sender's next transaction as [`Ready`] orders them.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Head {
    tip: u128,
    earlier: Reverse<u64>,
    sender: Address,
    nonce: u64,
}

impl<S> Ready<'_, S> {
    /// Queues `tx` as its sender's next, unless its max fee is below the base fee.
    fn push(&mut self, tx: &PoolTx) {
        let Some(tip) = tx.effective_tip(self.base_fee) else { return };
        let seq = self.pool.by_hash.get(&tx.hash).map(|(_, s)| *s).unwrap_or_default();
        self.heads.push(Head { tip, earlier: Reverse(seq), sender: tx.sender, nonce: tx.nonce() });
    }

    /// Takes senders from the indexes until none left in them could come
    /// before the best queued: a sender the walk of an index has not
    /// reached pays at most that index's next price (less the base fee, in
    /// the fees' index), and arrived later if it pays as much. The walk
    /// steps the index whose bound is lower, the closer one.
    fn pull(&mut self) {
        loop {
            let best = self.heads.peek().map(|head| (head.tip, head.earlier));
            let tip = self.by_tip.peek().map(|e| (e.price.0, Reverse(e.arrival)));
            // A sender whose max fee is below the base fee pays nothing.
            let fee = self
                .by_fee
                .peek()
                .and_then(|e| Some((e.price.0.checked_sub(u128::from(self.base_fee))?, Reverse(e.arrival))));
            let (Some(tip), Some(fee)) = (tip, fee) else { return };
            if best.is_some_and(|best| tip < best || fee < best) {
                return;
            }
            let entry = if fee <= tip { self.by_fee.next() } else { self.by_tip.next() };
            let Some(entry) = entry else { return };
            if self.pulled.insert(entry.sender)
                && let Some(tx) = self.pool.senders.get(&entry.sender).and_then(SenderTxs::executable)
            {
                self.push(tx);
            }
        }
    }
}

impl<S: FnMut(&PoolTx) -> bool> Iterator for Ready<'_, S> {
    type Item = Arc<PoolTx>;

    fn next(&mut self) -> Option<Arc<PoolTx>> {
        loop {
            self.pull();
            let Head { sender, nonce, .. } = self.heads.pop()?;
            let Some(queue) = self.pool.senders.get(&sender) else { continue };
            let Some(tx) = queue.txs.get(&nonce) else { continue };
            if (self.skip)(tx) {
                // Passed over with its later nonces: none of them is queued.
                continue;
            }
            if let Some(next) = nonce.checked_add(1).and_then(|next| queue.txs.get(&next)) {
                self.push(next);
            }
            return Some(Arc::clone(tx));
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

/// The pool's transactions, counted ([`Pool::counts`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolCounts {
    /// Executable from their senders' nonces, as the pool was last told them.
    pub pending: usize,
    /// Not executable from them: behind a gap, or stale below them.
    pub queued: usize,
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use alloy_consensus::{TxLegacy, TypedTransaction};
    use alloy_primitives::{Address, Bytes, address};

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
        assert_eq!(pool.ready(0, |_| false).count(), 4);
    }

    #[test]
    fn ready_is_each_senders_run_in_nonce_order_best_tip_first() {
        let mut pool = Pool::default();
        let alice: Vec<_> = [(0, 12), (1, 30), (2, 40), (3, 5)].map(|(n, p)| tx_from(ALICE, n, p)).into();
        let bob: Vec<_> = [(0, 20), (1, 20), (3, 90)].map(|(n, p)| tx_from(BOB, n, p)).into();
        for t in alice.iter().chain(&bob) {
            pool.add(t.clone(), 0).unwrap();
        }
        let order = |base_fee| pool.ready(base_fee, |_| false).map(|t| t.hash).collect::<Vec<_>>();
        // Bob's two 20s before Alice's 12, and her 30 and 40 behind her 12
        // (nonce order first); Bob's nonce 3 waits behind a gap.
        let hashes = |txs: &[&Arc<PoolTx>]| txs.iter().map(|t| t.hash).collect::<Vec<_>>();
        assert_eq!(order(0), hashes(&[&bob[0], &bob[1], &alice[0], &alice[1], &alice[2], &alice[3]]));
        // A fee below the base fee ends its sender's run there.
        assert_eq!(order(10), hashes(&[&bob[0], &bob[1], &alice[0], &alice[1], &alice[2]]));
        assert_eq!(order(15), hashes(&[&bob[0], &bob[1]]));
        // Read one at a time, it starts the same.
        assert_eq!(pool.ready(0, |_| false).next().map(|t| t.hash), Some(bob[0].hash));
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
        // Only the one at the sender's nonce is executable.
        assert_eq!(pool.best(0, |_| false).map(|t| t.nonce()), Some(5));
        assert_eq!(pool.ready(0, |_| false).count(), 1);
        assert_eq!(counts(&pool), (1, 2));
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

    #[test]
    fn a_replacement_of_fees_near_the_top_of_a_u128_is_weighed_without_overflow() {
        let mut pool = Pool::default();
        let first = tx(0, u128::MAX / 100);
        pool.add(first.clone(), 0).unwrap();
        // 1% more: times 100 and times 110 are both past 2^128.
        assert!(matches!(
            pool.add(tx(0, u128::MAX / 100 + u128::MAX / 10_000), 0),
            Err(TxError::ReplacementUnderpriced)
        ));
        let bumped = tx(0, u128::MAX / 100 + u128::MAX / 500);
        assert_eq!(pool.add(bumped, 0).unwrap(), Added::Replaced(first.hash));
    }

    #[test]
    fn the_cost_of_a_value_near_2_256_is_that_not_a_wrapped_sum() {
        let legacy = TxLegacy { gas_price: 1, gas_limit: 21_000, value: U256::MAX, ..Default::default() };
        let tx = PoolTx::impersonated(TypedTransaction::Legacy(legacy), ALICE);
        assert_eq!(tx.max_cost(), U256::MAX);
    }

    /// The `n`-th of many senders.
    fn sender(n: usize) -> Address {
        Address::left_padding_from(&n.to_be_bytes())
    }

    #[test]
    fn a_sender_queues_at_most_64_behind_a_gap() {
        let mut pool = Pool::default();
        for nonce in 1..=64 {
            assert_eq!(pool.add(tx(nonce, 100), 0).unwrap(), Added::Queued);
        }
        assert_eq!(pool.add(tx(65, 100), 0), Err(TxError::AccountQueueFull { limit: 64, next: 0 }));
        let message = TxError::AccountQueueFull { limit: 64, next: 0 }.to_string();
        assert!(message.starts_with("account limit exceeded: at most 64 queued"), "{message}");
        // A replacement takes no room, other senders have their own, and
        // the missing nonce makes the queue pending.
        assert!(matches!(pool.add(tx(5, 110), 0), Ok(Added::Replaced(_))));
        assert_eq!(pool.add(tx_from(BOB, 1, 100), 0).unwrap(), Added::Queued);
        assert_eq!(pool.add(tx(0, 100), 0).unwrap(), Added::Pending);
        assert_eq!(pool.add(tx(66, 100), 0).unwrap(), Added::Queued);
        assert_eq!(pool.pending_nonce(&ALICE, 0), 65);
    }

    #[test]
    fn the_pool_queues_at_most_10000_in_all() {
        let mut pool = Pool::default();
        for n in 0..MAX_QUEUED {
            let queued = tx_from(sender(n / 64), 1 + (n % 64) as u64, 1);
            assert_eq!(pool.add(queued, 0).unwrap(), Added::Queued);
        }
        let late = sender(MAX_QUEUED);
        assert_eq!(pool.add(tx_from(late, 1, 1), 0), Err(TxError::QueueFull { limit: 10_000 }));
        assert_eq!(TxError::QueueFull { limit: 10_000 }.to_string().split(':').next(), Some("txpool is full"));
        // Pending transactions still have room, and one that fills a gap
        // turns queued ones pending, which makes room in the queue.
        assert_eq!(pool.add(tx_from(late, 0, 1), 0).unwrap(), Added::Pending);
        assert_eq!(pool.add(tx_from(sender(0), 0, 1), 0).unwrap(), Added::Pending);
        assert_eq!(pool.add(tx_from(late, 2, 1), 0).unwrap(), Added::Queued);
    }

    #[test]
    fn the_pool_holds_at_most_60000_and_one_sender_may_send_them_all() {
        let mut pool = Pool::default();
        let txs: Vec<_> = (0..MAX_TXS as u64).map(|nonce| tx(nonce, 1)).collect();
        for t in &txs {
            assert_eq!(pool.add(t.clone(), 0).unwrap(), Added::Pending);
        }
        let full = Err(TxError::PoolFull { limit: 60_000 });
        assert_eq!(pool.add(tx(MAX_TXS as u64, 1), 0), full);
        assert_eq!(pool.add(tx_from(BOB, 0, 1), 0), full);
        assert_eq!(pool.add(tx_from(BOB, 1, 1), 0), full);
        assert!(TxError::PoolFull { limit: 60_000 }.to_string().starts_with("txpool is full"));
        // A replacement takes no room; a mined transaction leaves some.
        assert!(matches!(pool.add(tx(7, 2), 0), Ok(Added::Replaced(_))));
        pool.remove(&txs[0].hash);
        pool.prune_senders(&[ALICE], |_| 1);
        assert_eq!(pool.add(tx_from(BOB, 0, 1), 0).unwrap(), Added::Pending);
    }

    #[test]
    fn a_nonce_of_2_64_minus_1_is_refused_and_leaves_the_pool_whole() {
        // `anvil_setNonce(a, u64::MAX)`, then a send at that nonce.
        let mut pool = Pool::default();
        let max = Err(TxError::NonceMax { sender: ALICE, nonce: u64::MAX });
        assert_eq!(pool.add(tx(u64::MAX, 1), u64::MAX), max);
        assert!(pool.is_empty());
        assert_eq!(pool.pending_nonce(&ALICE, u64::MAX), u64::MAX);
        // A run up to the last nonce that can be used.
        assert_eq!(pool.add(tx(u64::MAX - 2, 1), u64::MAX - 2).unwrap(), Added::Pending);
        assert_eq!(pool.add(tx(u64::MAX - 1, 1), u64::MAX - 2).unwrap(), Added::Pending);
        assert_eq!(pool.add(tx(u64::MAX, 1), u64::MAX - 2), max);
        assert_eq!(pool.pending_nonce(&ALICE, u64::MAX - 2), u64::MAX);
        assert_eq!(pool.ready(0, |_| false).count(), 2);
        assert_eq!(pool.content().pending[&ALICE].len(), 2);
        assert_eq!(pool.add(tx_from(BOB, 0, 1), 0).unwrap(), Added::Pending);
        prune(&mut pool, |a| if *a == ALICE { u64::MAX } else { 0 });
        assert_eq!(pool.len(), 1);
        assert_eq!(pool.pending_nonce(&ALICE, u64::MAX), u64::MAX);
    }

    /// A legacy transaction carrying `data` (which all of them share), with
    /// a hash made up from sender, nonce and price: hashing thousands of
    /// 128 KiB encodings would be most of a test's time.
    fn carrying(sender: Address, nonce: u64, gas_price: u128, data: &Bytes) -> Arc<PoolTx> {
        use alloy_consensus::Signed;
        use alloy_primitives::{Signature, keccak256};

        let legacy = TxLegacy { nonce, gas_price, gas_limit: 21_000, input: data.clone(), ..Default::default() };
        let hash = keccak256([sender.as_slice(), &nonce.to_be_bytes(), &gas_price.to_be_bytes()].concat());
        let signature = Signature::new(U256::from(1), U256::from(1), false);
        let envelope = Signed::new_unchecked(legacy, signature, hash).into();
        Arc::new(PoolTx { envelope, sender, hash, impersonated: true })
    }

    #[test]
    fn the_pools_transactions_take_at_most_256_mib() {
        // Data that makes each encoding the largest taken, 128 KiB: 2,048 fill the pool.
        let max = crate::chain::MAX_TX_SIZE;
        let probe = Bytes::from(vec![1; max - 100]);
        let data = Bytes::from(vec![1; 2 * max - 100 - carrying(ALICE, 0, 1, &probe).encoded_len()]);
        assert_eq!(carrying(ALICE, 0, 1, &data).encoded_len(), max);
        let mut pool = Pool::default();
        let txs: Vec<_> = (0..2_048).map(|n| carrying(sender(n), 0, 1, &data)).collect();
        for t in &txs {
            assert_eq!(pool.add(t.clone(), 0).unwrap(), Added::Pending);
        }
        let full = Err(TxError::PoolBytesFull { limit: 268_435_456 });
        assert_eq!(pool.add(tx_from(BOB, 0, 1), 0), full);
        assert!(TxError::PoolBytesFull { limit: MAX_BYTES }.to_string().starts_with("txpool is full"));
        // A replacement counts the bytes it adds, no more.
        let first = sender(0);
        assert!(matches!(pool.add(carrying(first, 0, 2, &data), 0), Ok(Added::Replaced(_))));
        let larger = Bytes::from(vec![1; data.len() + 1]);
        assert_eq!(pool.add(carrying(first, 0, 4, &larger), 0), full);
        // A mined transaction leaves room.
        pool.remove(&txs[1].hash);
        assert_eq!(pool.add(carrying(BOB, 0, 1, &data), 0).unwrap(), Added::Pending);
        let held: usize = pool.all().iter().map(|t| t.encoded_len()).sum();
        assert_eq!((pool.bytes, pool.len()), (held, 2_048));
    }

    /// An EIP-1559 transfer of `sender` at nonce 0.
    fn eip1559(sender: Address, max_fee_per_gas: u128, max_priority_fee_per_gas: u128) -> Arc<PoolTx> {
        use alloy_consensus::TxEip1559;

        let tx = TxEip1559 { max_fee_per_gas, max_priority_fee_per_gas, gas_limit: 21_000, ..Default::default() };
        Arc::new(PoolTx::impersonated(TypedTransaction::Eip1559(tx), sender))
    }

    #[test]
    fn a_block_looks_only_at_the_senders_that_could_come_first() {
        // 10,000 senders at one price, as a bench sends, at a base fee of 10:
        // legacy transactions (which pay their price less the base fee, below
        // the tip they offer), EIP-1559 ones that pay their whole tip, and ones
        // capped by their max fee.
        type Make = fn(Address) -> Arc<PoolTx>;
        let kinds: [(&str, Make); 3] = [
            ("legacy", |s| tx_from(s, 0, 20)),
            ("paying their tip", |s| eip1559(s, 100, 1)),
            ("capped by their max fee", |s| eip1559(s, 15, 10)),
        ];
        for (kind, make) in kinds {
            let mut pool = Pool::default();
            // Arrived first: 1,000 senders with only queued transactions.
            for n in 0..1_000 {
                assert_eq!(pool.add(tx_from(sender(n), 1, 20), 0).unwrap(), Added::Queued);
            }
            for n in 1_000..11_000 {
                pool.add(make(sender(n)), 0).unwrap();
            }
            let mut ready = pool.ready(10, |_| false);
            assert_eq!(ready.next().map(|t| t.sender), Some(sender(1_000)), "{kind}");
            assert!(ready.pulled.len() <= 2, "{kind}: the first looked at {} senders", ready.pulled.len());
            // A block's worth looks at about as many senders.
            assert_eq!(ready.by_ref().take(99).count(), 99);
            assert!(ready.pulled.len() <= 101, "{kind}: 100 looked at {} senders", ready.pulled.len());
            assert_eq!(pool.best(10, |_| false).map(|t| t.sender), Some(sender(1_000)), "{kind}");
        }
    }

    #[test]
    fn best_is_the_first_of_the_ready_order_not_skipped() {
        use alloy_consensus::TxEip1559;
        use rand_chacha::ChaCha8Rng;
        use rand_chacha::rand_core::{RngCore, SeedableRng};

        let mut rng = ChaCha8Rng::seed_from_u64(8);
        let mut pick = |n: u64| rng.next_u64() % n;
        let senders: Vec<Address> = (1..=6u8).map(Address::repeat_byte).collect();
        for _ in 0..400 {
            let mut pool = Pool::default();
            let mut state: HashMap<Address, u64> = senders.iter().map(|s| (*s, pick(3))).collect();
            for _ in 0..pick(40) {
                let sender = senders[pick(6) as usize];
                let nonce = pick(7);
                let tx = if pick(2) == 0 {
                    tx_from(sender, nonce, 1 + u128::from(pick(40)))
                } else {
                    let max_fee = 1 + u128::from(pick(60));
                    let eip1559 = TxEip1559 {
                        nonce,
                        max_fee_per_gas: max_fee,
                        max_priority_fee_per_gas: (1 + u128::from(pick(20))).min(max_fee),
                        gas_limit: 21_000,
                        ..Default::default()
                    };
                    Arc::new(PoolTx::impersonated(TypedTransaction::Eip1559(eip1559), sender))
                };
                let _ = pool.add(tx, state[&sender]);
                if pick(6) == 0 {
                    let all = pool.all();
                    if !all.is_empty() {
                        pool.remove(&all[pick(all.len() as u64) as usize].hash);
                    }
                }
            }
            let content = listed(&pool, |a| state[a]);
            assert_eq!(hashes(&pool.content()), hashes(&content), "listed from the nonces the pool was told");
            assert_eq!(counts(&pool), counts_of(&content), "counted as transactions come and go");
            let bytes = pool.all().iter().map(|t| t.encoded_len()).sum::<usize>();
            assert_eq!(pool.bytes, bytes, "bytes counted as transactions come and go");
            // Nonces moved on chain since, and the pool is told, as it is
            // after a block or an edit.
            for nonce in state.values_mut() {
                *nonce += pick(2);
            }
            let nonce_of = |a: &Address| state[a];
            prune(&mut pool, nonce_of);
            let content = listed(&pool, nonce_of);
            assert_eq!(hashes(&pool.content()), hashes(&content), "listed again as nonces move");
            assert_eq!(counts(&pool), counts_of(&content), "counted again as nonces move");
            for queue in pool.senders.values() {
                let filed = queue.filed.map(|f| (f.tip, f.fee));
                let executable = queue.executable().map(|tx| (tx.max_tip(), tx.max_fee()));
                assert_eq!(filed, executable, "filed by its executable transaction");
            }
            // Only senders with an executable transaction are indexed.
            assert_eq!((pool.by_tip.len(), pool.by_fee.len()), (content.pending.len(), content.pending.len()));
            for base_fee in [0, 5, 15, 30] {
                let skipped: Vec<Address> = senders.iter().copied().filter(|_| pick(4) == 0).collect();
                let skip = |tx: &PoolTx| skipped.contains(&tx.sender);
                let expected = block_order(&pool, &content, base_fee, skip);
                let ready: Vec<B256> = pool.ready(base_fee, skip).map(|t| t.hash).collect();
                assert_eq!(ready, expected, "base fee {base_fee}");
                assert_eq!(pool.best(base_fee, skip).map(|t| t.hash), expected.first().copied());
            }
        }
    }

    /// The pool's pending and queued transactions, as it counts them.
    fn counts(pool: &Pool) -> (usize, usize) {
        let PoolCounts { pending, queued } = pool.counts();
        (pending, queued)
    }

    /// The pool's content worked out the long way, from the test's own
    /// record of the senders' nonces rather than the pool's.
    fn listed(pool: &Pool, nonce_of: impl Fn(&Address) -> u64) -> PoolContent {
        let mut content = PoolContent::default();
        for (sender, queue) in &pool.senders {
            let mut expected = nonce_of(sender);
            for (nonce, tx) in &queue.txs {
                if *nonce == expected {
                    content.pending.entry(*sender).or_default().push(tx.clone());
                    expected = expected.saturating_add(1);
                } else {
                    content.queued.entry(*sender).or_default().push(tx.clone());
                }
            }
        }
        content
    }

    /// A content's transactions by hash, pending and queued.
    fn hashes(content: &PoolContent) -> [BTreeMap<Address, Vec<B256>>; 2] {
        let of = |m: &BTreeMap<Address, Vec<Arc<PoolTx>>>| {
            m.iter().map(|(sender, txs)| (*sender, txs.iter().map(|tx| tx.hash).collect())).collect()
        };
        [of(&content.pending), of(&content.queued)]
    }

    /// [`Pool::prune_senders`] for every sender.
    fn prune(pool: &mut Pool, nonce_of: impl Fn(&Address) -> u64) {
        let senders: Vec<Address> = pool.senders.keys().copied().collect();
        pool.prune_senders(&senders, nonce_of);
    }

    /// The same, as [`Pool::content`] lists them.
    fn counts_of(content: &PoolContent) -> (usize, usize) {
        let count = |m: &BTreeMap<Address, Vec<Arc<PoolTx>>>| m.values().map(Vec::len).sum::<usize>();
        (count(&content.pending), count(&content.queued))
    }

    /// [`Pool::ready`]'s order worked out the long way from `content`: of
    /// the senders' next pending transactions (a run cut at a max fee below
    /// the base fee), the highest tip, then the earliest, again and again; a
    /// sender whose transaction `skip` rules out is passed over whole.
    fn block_order(
        pool: &Pool,
        content: &PoolContent,
        base_fee: u64,
        mut skip: impl FnMut(&PoolTx) -> bool,
    ) -> Vec<B256> {
        let executable = |tx: &&Arc<PoolTx>| tx.effective_tip(base_fee).is_some();
        let mut runs: Vec<VecDeque<&Arc<PoolTx>>> =
            content.pending.values().map(|run| run.iter().take_while(executable).collect()).collect();
        let rank = |tx: &PoolTx| (tx.effective_tip(base_fee), Reverse(pool.by_hash[&tx.hash].1));
        let mut order = Vec::new();
        while let Some(run) = runs.iter_mut().filter(|run| !run.is_empty()).max_by_key(|run| rank(run[0])) {
            let Some(tx) = run.pop_front() else { break };
            if skip(tx) {
                run.clear();
            } else {
                order.push(tx.hash);
            }
        }
        order
    }
}
