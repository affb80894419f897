//! Installed filters (`eth_newFilter`, `eth_newBlockFilter`,
//! `eth_newPendingTransactionFilter`) and what each has not reported yet.

use alloy_primitives::map::HashMap;
use alloy_primitives::{B256, U256};
use alloy_rpc_types_eth::{Filter, Log};
use serde::Serialize;

use super::{Devnet, NodeError};

/// What `eth_getFilterChanges` reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FilterChanges {
    /// New matching logs (log filters).
    Logs(Vec<Log>),
    /// New block hashes or pending transaction hashes.
    Hashes(Vec<B256>),
}

#[derive(Debug, Clone)]
enum Kind {
    Logs(Box<Filter>),
    Blocks,
    PendingTransactions(Vec<B256>),
}

#[derive(Debug, Clone)]
struct Installed {
    kind: Kind,
    /// The first block not reported yet.
    next_block: u64,
}

/// The installed filters of a devnet.
#[derive(Debug, Clone, Default)]
pub(super) struct Filters {
    next_id: u64,
    installed: HashMap<U256, Installed>,
}

impl Filters {
    fn install(&mut self, kind: Kind, next_block: u64) -> U256 {
        self.next_id += 1;
        let id = U256::from(self.next_id);
        self.installed.insert(id, Installed { kind, next_block });
        id
    }

    /// Records a transaction for the pending-transaction filters.
    pub(super) fn on_pending(&mut self, hash: B256) {
        for filter in self.installed.values_mut() {
            if let Kind::PendingTransactions(seen) = &mut filter.kind {
                seen.push(hash);
            }
        }
    }
}

/// The most block hashes one poll of a block filter reports: the newest ones
/// (older ones, reserved by a huge `anvil_mine`, are skipped).
const MAX_BLOCK_HASHES: u64 = 10_000;

fn not_found() -> NodeError {
    NodeError::Failed("filter not found".into())
}

impl Devnet {
    /// Installs a log filter; changes start after the current head.
    pub fn new_filter(&self, filter: Filter) -> U256 {
        let mut inner = self.lock();
        let next = inner.chain.head_number() + 1;
        inner.filters.install(Kind::Logs(Box::new(filter)), next)
    }

    /// Installs a new-block filter.
    pub fn new_block_filter(&self) -> U256 {
        let mut inner = self.lock();
        let next = inner.chain.head_number() + 1;
        inner.filters.install(Kind::Blocks, next)
    }

    /// Installs a pending-transaction filter.
    pub fn new_pending_transaction_filter(&self) -> U256 {
        let mut inner = self.lock();
        let next = inner.chain.head_number() + 1;
        inner.filters.install(Kind::PendingTransactions(Vec::new()), next)
    }

    /// Removes a filter; false when there was none.
    pub fn uninstall_filter(&self, id: U256) -> bool {
        self.lock().filters.installed.remove(&id).is_some()
    }

    /// What a filter has not reported yet (`eth_getFilterChanges`).
    pub fn filter_changes(&self, id: U256) -> Result<FilterChanges, NodeError> {
        let (kind, from, head) = {
            let mut inner = self.lock();
            let head = inner.chain.head_number();
            let filter = inner.filters.installed.get_mut(&id).ok_or_else(not_found)?;
            // After an `evm_revert` the head can be behind the cursor.
            let from = filter.next_block.min(head + 1);
            filter.next_block = head + 1;
            let kind = match &mut filter.kind {
                Kind::PendingTransactions(seen) => Kind::PendingTransactions(std::mem::take(seen)),
                other => other.clone(),
            };
            (kind, from, head)
        };
        Ok(match kind {
            Kind::Blocks => {
                // After a huge `anvil_mine`, only the newest blocks are reported.
                let from = from.max((head + 1).saturating_sub(MAX_BLOCK_HASHES));
                FilterChanges::Hashes(self.with_chain(|c| (from..=head).filter_map(|n| c.block_hash(n)).collect()))
            }
            Kind::PendingTransactions(seen) => FilterChanges::Hashes(seen),
            Kind::Logs(filter) => {
                if from > head {
                    return Ok(FilterChanges::Logs(Vec::new()));
                }
                let (lo, hi) = self.with_chain(|c| self.filter_range(c, &filter))?;
                let (lo, hi) = (lo.max(from), hi.min(head));
                FilterChanges::Logs(self.with_chain(|c| self.logs_in(c, &filter, lo, hi)))
            }
        })
    }

    /// Every log a log filter matches (`eth_getFilterLogs`).
    pub fn filter_logs(&self, id: U256) -> Result<Vec<Log>, NodeError> {
        let filter = {
            let inner = self.lock();
            match &inner.filters.installed.get(&id).ok_or_else(not_found)?.kind {
                Kind::Logs(filter) => filter.clone(),
                _ => return Err(NodeError::Failed("filter is not a log filter".into())),
            }
        };
        self.logs(&filter)
    }
}
