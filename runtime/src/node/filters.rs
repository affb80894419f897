//! Installed filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`) and what each has not reported yet.
//!
//! Every filter is bounded. At most [`MAX_FILTERS`] are installed at once; a
//! filter not polled for [`FILTER_TIMEOUT`] is uninstalled (geth's rule),
//! lazily, the next time the filters are touched. A poll reports at most the
//! newest [`MAX_HASHES`] block or transaction hashes, and at most one answer of
//! logs (see `query::matching_logs`): the rest waits for the next poll.
//! Pending transaction hashes are kept once, in one ring of the newest
//! [`MAX_HASHES`] that every pending-transaction filter reads from a cursor of
//! its own, so a transaction costs the same however many filters are
//! installed, and an unpolled filter buffers nothing.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::map::HashMap;
use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{Filter, FilterBlockOption, Log};
use serde::Serialize;

use super::query::{MAX_LOG_RANGE, block_of_hash, check_filter, matching_logs};
use super::{Devnet, Inner, NodeError};
use crate::chain::{Chain, SealedBlock};

/// What `eth_getFilterChanges` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FilterChanges {
    /// New matching logs (log filters).
    Logs(Vec<Log>),
    /// New block hashes or pending transaction hashes.
    Hashes(Vec<B256>),
}

/// How long a filter lives without a poll (geth's timeout).
pub(super) const FILTER_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// The most filters installed at once.
pub(super) const MAX_FILTERS: usize = 10_000;

/// The most block hashes, or pending transaction hashes, one poll reports:
/// the newest ones (older block hashes, reserved by a huge `anvil_mine`, and
/// older transaction hashes are skipped).
pub(super) const MAX_HASHES: usize = 10_000;

#[derive(Debug, Clone)]
enum Kind {
    /// `next_block`: the first block not reported yet.
    Logs {
        filter: Box<Filter>,
        next_block: u64,
    },
    Blocks {
        next_block: u64,
    },
    /// `next_hash`: the sequence number of the first pending hash not reported yet.
    PendingTransactions {
        next_hash: u64,
    },
}

#[derive(Debug, Clone)]
struct Installed {
    kind: Kind,
    /// When it was installed or last polled.
    last_poll: Instant,
}

/// The installed filters of a devnet.
#[derive(Debug, Clone, Default)]
pub(super) struct Filters {
    next_id: u64,
    installed: HashMap<U256, Installed>,
    /// The newest pending transaction hashes, oldest first.
    pending: VecDeque<B256>,
    /// The sequence number of the next pending hash (every hash ever seen counts).
    pending_end: u64,
}

/// A poll's answer, read under the devnet's lock.
#[derive(Debug)]
enum Polled {
    Hashes(Vec<B256>),
    /// The built blocks whose logs a log filter reports, to read after the
    /// lock; the filter's cursor was moved past them.
    Logs {
        filter: Box<Filter>,
        blocks: Vec<Arc<SealedBlock>>,
        cursor: u64,
    },
}

impl Filters {
    /// Records a transaction for the pending-transaction filters.
    pub(super) fn on_pending(&mut self, hash: B256) {
        if self.pending.len() == MAX_HASHES {
            self.pending.pop_front();
        }
        self.pending.push_back(hash);
        self.pending_end += 1;
    }

    /// Installs a filter at `now`, once the expired ones are gone; refused
    /// past [`MAX_FILTERS`].
    fn install(&mut self, kind: Kind, now: Instant) -> Result<U256, NodeError> {
        expire(&mut self.installed, now);
        if self.installed.len() >= MAX_FILTERS {
            return Err(NodeError::LimitExceeded {
                what: "too many filters installed",
                limit: MAX_FILTERS,
                hint: ": uninstall some with eth_uninstallFilter, or let them expire (5 minutes without a poll)",
            });
        }
        self.next_id += 1;
        let id = U256::from(self.next_id);
        self.installed.insert(id, Installed { kind, last_poll: now });
        Ok(id)
    }

    /// Removes a filter; false when there was none (or it expired).
    fn uninstall(&mut self, id: U256, now: Instant) -> bool {
        expire(&mut self.installed, now);
        self.installed.remove(&id).is_some()
    }

    /// Polls filter `id` at `now` against `chain`. A failed poll moves no
    /// cursor: what it did not report is reported by the next one.
    fn poll(&mut self, id: U256, chain: &Chain, now: Instant) -> Result<Polled, NodeError> {
        let head = chain.head_number();
        let Self { installed, pending, pending_end, .. } = self;
        let pending_end = *pending_end;
        let filter = touch(installed, id, now)?;
        // After an `evm_revert` the head can be behind a block cursor.
        Ok(match &mut filter.kind {
            Kind::Blocks { next_block } => {
                let newest = (head + 1).saturating_sub(MAX_HASHES as u64);
                let from = (*next_block).min(head + 1).max(newest);
                *next_block = head + 1;
                Polled::Hashes((from..=head).filter_map(|n| chain.block_hash(n)).collect())
            }
            Kind::PendingTransactions { next_hash } => {
                let oldest = pending_end - pending.len() as u64;
                let skip = usize::try_from(next_hash.saturating_sub(oldest)).unwrap_or(usize::MAX);
                *next_hash = pending_end;
                Polled::Hashes(pending.iter().skip(skip).copied().collect())
            }
            Kind::Logs { filter, next_block } => {
                // The blocks since the last poll, within the filter's own range.
                let (own_from, own_to) = own_range(chain, filter)?;
                let from = (*next_block).min(head + 1).max(own_from);
                let to = head.min(own_to);
                let blocks: Vec<Arc<SealedBlock>> = if from <= to {
                    chain.built_blocks(from, to).take(MAX_LOG_RANGE as usize).cloned().collect()
                } else {
                    Vec::new()
                };
                // A poll reads at most `MAX_LOG_RANGE` built blocks; the next goes on after them.
                let cursor = match blocks.last() {
                    Some(last) if blocks.len() as u64 == MAX_LOG_RANGE => last.number() + 1,
                    _ => head + 1,
                };
                *next_block = cursor;
                Polled::Logs { filter: filter.clone(), blocks, cursor }
            }
        })
    }

    /// Moves log filter `id`'s cursor back to `block`, unless another poll
    /// moved it from `cursor` meanwhile.
    fn rewind(&mut self, id: U256, cursor: u64, block: u64) {
        if let Some(Installed { kind: Kind::Logs { next_block, .. }, .. }) = self.installed.get_mut(&id)
            && *next_block == cursor
        {
            *next_block = block;
        }
    }
}

/// Uninstalls the filters not polled for [`FILTER_TIMEOUT`] at `now`.
fn expire(installed: &mut HashMap<U256, Installed>, now: Instant) {
    installed.retain(|_, f| now.saturating_duration_since(f.last_poll) < FILTER_TIMEOUT);
}

/// The live filter `id`, its timeout restarted at `now`.
fn touch(installed: &mut HashMap<U256, Installed>, id: U256, now: Instant) -> Result<&mut Installed, NodeError> {
    expire(installed, now);
    let filter = installed.get_mut(&id).ok_or_else(not_found)?;
    filter.last_poll = now;
    Ok(filter)
}

/// The blocks a log filter names, as bounds that hold at any head: a bound
/// that is absent, `latest`, `pending`, `safe` or `finalized` follows the head.
fn own_range(chain: &Chain, filter: &Filter) -> Result<(u64, u64), NodeError> {
    use alloy_eips::BlockNumberOrTag::{Earliest, Number};
    match filter.block_option {
        FilterBlockOption::AtBlockHash(hash) => block_of_hash(chain, hash).map(|n| (n, n)),
        FilterBlockOption::Range { from_block, to_block } => {
            let bound = |tag, open| match tag {
                Some(Earliest) => 0,
                Some(Number(n)) => n,
                _ => open,
            };
            Ok((bound(from_block, 0), bound(to_block, u64::MAX)))
        }
    }
}

fn not_found() -> NodeError {
    NodeError::Failed("filter not found".into())
}

impl Devnet {
    /// Installs a log filter; changes start after the current head.
    pub fn new_filter(&self, filter: Filter) -> Result<U256, NodeError> {
        check_filter(&filter)?;
        let mut inner = self.lock();
        let next_block = inner.chain.head_number() + 1;
        inner.filters.install(Kind::Logs { filter: Box::new(filter), next_block }, Instant::now())
    }

    /// Installs a new-block filter.
    pub fn new_block_filter(&self) -> Result<U256, NodeError> {
        let mut inner = self.lock();
        let next_block = inner.chain.head_number() + 1;
        inner.filters.install(Kind::Blocks { next_block }, Instant::now())
    }

    /// Installs a pending-transaction filter.
    pub fn new_pending_transaction_filter(&self) -> Result<U256, NodeError> {
        let mut inner = self.lock();
        let next_hash = inner.filters.pending_end;
        inner.filters.install(Kind::PendingTransactions { next_hash }, Instant::now())
    }

    /// Removes a filter; false when there was none.
    pub fn uninstall_filter(&self, id: U256) -> bool {
        self.lock().filters.uninstall(id, Instant::now())
    }

    /// What a filter has not reported yet (`eth_getFilterChanges`). A log
    /// filter reports the logs of the blocks mined since its last poll that
    /// its own range holds, at most one answer's worth (`MAX_LOGS`, whole
    /// blocks) at a time; the rest comes with the next poll.
    pub fn filter_changes(&self, id: U256) -> Result<FilterChanges, NodeError> {
        let polled = {
            let mut inner = self.lock();
            let Inner { chain, filters, .. } = &mut *inner;
            filters.poll(id, chain, Instant::now())?
        };
        match polled {
            Polled::Hashes(hashes) => Ok(FilterChanges::Hashes(hashes)),
            Polled::Logs { filter, blocks, cursor } => {
                // Read after the lock: a long scan does not hold up the node.
                let (logs, read) = matching_logs(&filter, &blocks);
                if let Some(rest) = blocks.get(read) {
                    self.lock().filters.rewind(id, cursor, rest.number());
                }
                Ok(FilterChanges::Logs(logs))
            }
        }
    }

    /// Every log a log filter matches (`eth_getFilterLogs`).
    pub fn filter_logs(&self, id: U256) -> Result<Vec<Log>, NodeError> {
        self.logs(&self.log_filter(id)?)
    }

    /// What the log filter `id` matches, as installed (polling it: it does
    /// not expire now).
    pub fn log_filter(&self, id: U256) -> Result<Filter, NodeError> {
        let mut inner = self.lock();
        match &touch(&mut inner.filters.installed, id, Instant::now())?.kind {
            Kind::Logs { filter, .. } => Ok((**filter).clone()),
            _ => Err(NodeError::Failed("filter is not a log filter".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::ChainConfig;

    fn blocks(filters: &mut Filters, now: Instant) -> Result<U256, NodeError> {
        filters.install(Kind::Blocks { next_block: 1 }, now)
    }

    fn hashes(filters: &mut Filters, id: U256, chain: &Chain, now: Instant) -> Result<Vec<B256>, NodeError> {
        match filters.poll(id, chain, now)? {
            Polled::Hashes(hashes) => Ok(hashes),
            Polled::Logs { .. } => panic!("a hash filter answered logs"),
        }
    }

    #[test]
    fn a_filter_not_polled_for_the_timeout_expires() {
        let chain = Chain::genesis(ChainConfig::default());
        let mut filters = Filters::default();
        let start = Instant::now();
        let polled = blocks(&mut filters, start).unwrap();
        let idle = blocks(&mut filters, start).unwrap();
        let just_before = start + FILTER_TIMEOUT - Duration::from_secs(1);
        assert!(hashes(&mut filters, polled, &chain, just_before).is_ok());
        // Each poll restarts the timeout; the filter never polled is gone.
        let later = just_before + FILTER_TIMEOUT - Duration::from_secs(1);
        assert!(hashes(&mut filters, polled, &chain, later).is_ok());
        assert!(matches!(hashes(&mut filters, idle, &chain, later), Err(NodeError::Failed(_))));
        assert!(!filters.uninstall(idle, later));
        assert!(!filters.uninstall(polled, later + FILTER_TIMEOUT));
        assert!(filters.installed.is_empty());
    }

    #[test]
    fn installs_past_the_cap_are_refused_until_filters_expire() {
        let mut filters = Filters::default();
        let start = Instant::now();
        for _ in 0..MAX_FILTERS {
            blocks(&mut filters, start).unwrap();
        }
        let refused = blocks(&mut filters, start).unwrap_err();
        assert!(matches!(refused, NodeError::LimitExceeded { limit: MAX_FILTERS, .. }), "{refused}");
        assert!(blocks(&mut filters, start + FILTER_TIMEOUT).is_ok());
        assert_eq!(filters.installed.len(), 1);
    }

    #[test]
    fn a_pending_filter_reports_the_newest_hashes_once() {
        let chain = Chain::genesis(ChainConfig::default());
        let mut filters = Filters::default();
        let now = Instant::now();
        let early = filters.install(Kind::PendingTransactions { next_hash: filters.pending_end }, now).unwrap();
        let hash = |i: usize| B256::from(U256::from(i));
        for i in 0..MAX_HASHES + 5 {
            filters.on_pending(hash(i));
        }
        let late = filters.install(Kind::PendingTransactions { next_hash: filters.pending_end }, now).unwrap();
        filters.on_pending(hash(MAX_HASHES + 5));
        let reported = hashes(&mut filters, early, &chain, now).unwrap();
        assert_eq!(reported.len(), MAX_HASHES);
        assert_eq!((reported[0], reported[MAX_HASHES - 1]), (hash(6), hash(MAX_HASHES + 5)));
        assert!(hashes(&mut filters, early, &chain, now).unwrap().is_empty());
        assert_eq!(hashes(&mut filters, late, &chain, now).unwrap(), vec![hash(MAX_HASHES + 5)]);
        assert_eq!(filters.pending.len(), MAX_HASHES);
    }
}
