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

/// Transactions waiting for inclusion.
#[derive(Debug, Clone, Default)]
pub struct Pool {
    senders: HashMap<Address, BTreeMap<u64, Arc<PoolTx>>>,
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
        if let Some(existing) = queue.get(&nonce) {
            let bumped = |old: u128, new: u128| new * 100 >= old * (100 + REPLACEMENT_BUMP_PERCENT) && new > old;
            if !bumped(existing.max_fee(), tx.max_fee()) || !bumped(existing.max_tip(), tx.max_tip()) {
                return Err(TxError::ReplacementUnderpriced);
            }
            replaced = Some(existing.hash);
        }
        queue.insert(nonce, tx.clone());
        // Executable when every nonce from the sender's on chain up to this
        // one is here: walked down from this one, so the cost is the length
        // of the run (not a lookup per nonce), and a gap ends it at once.
        let mut expected = nonce;
        for (&held, _) in queue.range(state_nonce..nonce).rev() {
            if held + 1 != expected {
                break;
            }
            expected = held;
        }
        let pending = expected == state_nonce;
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
        self.senders.get(sender).and_then(|q| q.last_key_value()).map(|(n, _)| *n)
    }

    /// The nonce after `sender`'s executable run in the pool, starting at
    /// its on-chain nonce `state_nonce` (the `pending` nonce).
    pub fn pending_nonce(&self, sender: &Address, state_nonce: u64) -> u64 {
        let mut next = state_nonce;
        if let Some(queue) = self.senders.get(sender) {
            while queue.contains_key(&next) {
                next += 1;
            }
        }
        next
    }

    /// The executable transactions in block order: each sender's in nonce
    /// order from its on-chain nonce, without gaps, and across senders the
    /// highest tip at `base_fee` first (arrival order on ties). A sender's
    /// run stops at a transaction whose max fee is below `base_fee`.
    pub fn ready(&self, nonce_of: impl Fn(&Address) -> u64, base_fee: u64) -> Vec<Arc<PoolTx>> {
        #[derive(PartialEq, Eq, PartialOrd, Ord)]
        struct Head {
            tip: u128,
            earlier: std::cmp::Reverse<u64>,
            sender: Address,
            nonce: u64,
        }
        let head = |tx: &Arc<PoolTx>| -> Option<Head> {
            let tip = tx.effective_tip(base_fee)?;
            let seq = self.by_hash.get(&tx.hash).map(|(_, s)| *s).unwrap_or_default();
            Some(Head { tip, earlier: std::cmp::Reverse(seq), sender: tx.sender, nonce: tx.nonce() })
        };
        let mut heap = BinaryHeap::new();
        for (sender, queue) in &self.senders {
            if let Some(tx) = queue.get(&nonce_of(sender))
                && let Some(h) = head(tx)
            {
                heap.push(h);
            }
        }
        let mut out = Vec::new();
        while let Some(Head { sender, nonce, .. }) = heap.pop() {
            let Some(queue) = self.senders.get(&sender) else { continue };
            if let Some(tx) = queue.get(&nonce) {
                out.push(tx.clone());
            }
            if let Some(next) = queue.get(&(nonce + 1))
                && let Some(h) = head(next)
            {
                heap.push(h);
            }
        }
        out
    }

    /// Removes a transaction.
    pub fn remove(&mut self, hash: &B256) -> Option<Arc<PoolTx>> {
        let (tx, _) = self.by_hash.remove(hash)?;
        if let Some(queue) = self.senders.get_mut(&tx.sender) {
            queue.remove(&tx.nonce());
            if queue.is_empty() {
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
            stale.extend(queue.range(..next).map(|(_, tx)| tx.hash));
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
            for (nonce, tx) in queue {
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

/// The pool split by executability (`txpool_content`).
#[derive(Debug, Clone, Default)]
pub struct PoolContent {
    /// Executable transactions, per sender in nonce order.
    pub pending: BTreeMap<Address, Vec<Arc<PoolTx>>>,
    /// Transactions behind a nonce gap.
    pub queued: BTreeMap<Address, Vec<Arc<PoolTx>>>,
}
