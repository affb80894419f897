//! Data settlement: the hashes of each signed answer posted to the chain's
//! settlement relay, in the mode the client asks for with
//! `X-SETTLEMENT-TYPE` — `private` (nothing), `batch` (the default: a
//! Merkle root for every batch of answers, OpenZeppelin's
//! `StandardMerkleTree` of `(teeId, inputHash, outputHash, signature,
//! timestamp)` as the devnet's relay builds it) or `individual` (one record
//! per answer). The transaction that carries an answer's hashes is named by
//! `x-settlement-tx-hash`: at once for `individual`, on the answer that
//! fills a batch for `batch`.
//!
//! An individual posting the relay refuses as a repeat names the
//! transaction of the record it repeats, found in the relay's log by
//! `eth_getLogs` over at most [`LOG_WINDOW`] blocks at a time (hosted nodes
//! refuse wider ranges), from the record's own block: the relay keeps its
//! timestamp, and bisecting block timestamps finds it.

use std::collections::HashMap;
use std::sync::Arc;

use alloy_primitives::{Address, B256, U256, keccak256};
use alloy_sol_types::{SolCall, SolEvent};
use nml_runtime::predeploys::{ISettlementRelay, SETTLEMENT_RELAY};
use nml_runtime::rpc_client;
use nml_runtime::settlement::merkle::MerkleTree;
use nml_runtime::settlement::{IndividualSettlement, Posting, batch_leaf, calldata, result_key};
use nml_runtime::tee::Attestation;
use parking_lot::Mutex;
use serde_json::json;

use crate::chain::{ChainAccount, ChainError};

/// The request header that picks the mode.
pub const SETTLEMENT_TYPE: &str = "x-settlement-type";
/// The answer header naming the settlement transaction.
pub const SETTLEMENT_TX_HASH: &str = "x-settlement-tx-hash";

/// The gas of one posting.
const POST_GAS: u64 = 300_000;

/// The most blocks one `eth_getLogs` of the relay's log asks about: hosted
/// nodes refuse wider ranges (many past 10,000 blocks, some far fewer).
pub const LOG_WINDOW: u64 = 500;

/// How an answer's hashes settle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettlementType {
    /// Nothing is posted (the payment alone settles).
    Private,
    /// The answer's leaf joins a Merkle batch.
    Batch,
    /// One record for the answer.
    Individual,
}

impl SettlementType {
    /// The mode a header names (the SDK's values, and the CLI's spellings);
    /// `batch` when there is none.
    pub fn from_header(value: Option<&str>) -> Result<Self, String> {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(Self::Batch),
            Some(v) => match v.as_str() {
                "private" => Ok(Self::Private),
                "batch" | "batch-hashed" | "batch_hashed" => Ok(Self::Batch),
                "individual" | "individual-full" | "individual_full" => Ok(Self::Individual),
                other => Err(format!("X-SETTLEMENT-TYPE {other:?} is not private, batch or individual")),
            },
        }
    }
}

/// What identifies an individual settlement on the relay (which refuses a
/// second one): `(teeId, inputHash, outputHash, timestamp)`.
type IndividualKey = (B256, B256, B256, u64);

/// How far back (in the answers' seconds) the individual settlements this
/// gateway posted are remembered: a repeat must share the timestamp.
const REMEMBERED_SECS: u64 = 60;

/// The poster of an account holding the relay's `SETTLEMENT_RELAY_ROLE`.
#[derive(Debug)]
pub struct DataSettlement {
    account: Arc<ChainAccount>,
    batch_size: usize,
    batch: Mutex<Vec<Attestation>>,
    /// The individual settlements posted lately, and their transactions:
    /// an identical answer in the same second is the same record, which
    /// the relay holds already.
    individual: Mutex<HashMap<IndividualKey, B256>>,
}

fn relay_role() -> B256 {
    keccak256("SETTLEMENT_RELAY_ROLE")
}

impl DataSettlement {
    /// Posts through `account`, which must hold the relay role; when it does
    /// not and `admin` is an account the node signs for (a devnet's dev
    /// account 0), the admin grants it (blocking).
    pub fn connect(account: Arc<ChainAccount>, admin: Option<Address>, batch_size: usize) -> Result<Self, ChainError> {
        let has_role = |account: &ChainAccount| -> Result<bool, ChainError> {
            let call = ISettlementRelay::hasRoleCall { role: relay_role(), account: account.address() };
            Ok(!account.call_uint(SETTLEMENT_RELAY, call.abi_encode())?.is_zero())
        };
        if !has_role(&account)? {
            if let Some(admin) = admin {
                let grant = ISettlementRelay::grantRoleCall { role: relay_role(), account: account.address() };
                let data = alloy_primitives::Bytes::from(grant.abi_encode());
                let tx = json!({ "from": admin, "to": SETTLEMENT_RELAY, "data": data });
                let hash = rpc_client::call(account.rpc_url(), "eth_sendTransaction", json!([tx]))?;
                let hash: B256 =
                    serde_json::from_value(hash).map_err(|_| ChainError::BadAnswer("eth_sendTransaction"))?;
                for _ in 0..600 {
                    if !rpc_client::call(account.rpc_url(), "eth_getTransactionReceipt", json!([hash]))?.is_null() {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            if !has_role(&account)? {
                return Err(ChainError::Unauthorized {
                    account: account.address(),
                    role: "SETTLEMENT_RELAY_ROLE",
                    contract: SETTLEMENT_RELAY,
                });
            }
        }
        Ok(Self { account, batch_size: batch_size.max(1), batch: Mutex::default(), individual: Mutex::default() })
    }

    /// Settles `attestation` as `kind` asks: the transaction that carries
    /// it, when one was sent now (blocking).
    pub fn record(
        &self,
        kind: SettlementType,
        attestation: Attestation,
        payer: Address,
    ) -> Result<Option<B256>, ChainError> {
        match kind {
            SettlementType::Private => Ok(None),
            SettlementType::Individual => self.post_individual(attestation, payer).map(Some),
            SettlementType::Batch => {
                let full = {
                    let mut batch = self.batch.lock();
                    batch.push(attestation);
                    (batch.len() >= self.batch_size).then(|| std::mem::take(&mut *batch))
                };
                match full {
                    Some(results) => self.post_batch(results).map(Some),
                    None => Ok(None),
                }
            }
        }
    }

    /// Posts `attestation` individually: the transaction that carries it.
    /// The relay holds one record per `(teeId, inputHash, outputHash,
    /// timestamp)`, so an identical answer in the same second is already
    /// settled: its transaction is the one this gateway remembers, or, when
    /// the relay refuses the posting as a repeat (another poster's, or one
    /// sent at the same time), the one the relay's log names.
    fn post_individual(&self, attestation: Attestation, payer: Address) -> Result<B256, ChainError> {
        let key = (attestation.tee_id, attestation.input_hash, attestation.output_hash, attestation.timestamp);
        if let Some(hash) = self.individual.lock().get(&key) {
            return Ok(*hash);
        }
        let record = result_key(&attestation);
        let data = calldata(&Posting::Individual(attestation), payer);
        let hash = match self.account.send(SETTLEMENT_RELAY, data.to_vec(), POST_GAS) {
            Ok(hash) => hash,
            Err(refused @ ChainError::Reverted { .. }) => self.settled_by(key, record)?.ok_or(refused)?,
            Err(e) => return Err(e),
        };
        let mut individual = self.individual.lock();
        individual.retain(|(.., timestamp), _| timestamp.saturating_add(REMEMBERED_SECS) >= key.3);
        individual.insert(key, hash);
        Ok(hash)
    }

    /// The transaction of the relay's record of `key` (whose relay key is
    /// `record`), from its `IndividualSettlement` log: none when the relay
    /// has no such record. The relay keeps the timestamp of the block that
    /// recorded it, so that block is found by bisecting block timestamps
    /// (blocks are in time order), and the log is read from it forward,
    /// [`LOG_WINDOW`] blocks at a time, while blocks still have that
    /// timestamp: a few calls however old the record.
    fn settled_by(&self, key: IndividualKey, record: B256) -> Result<Option<B256>, ChainError> {
        let (tee_id, input_hash, output_hash, timestamp) = key;
        let settled_at = self
            .account
            .call_uint(SETTLEMENT_RELAY, ISettlementRelay::individualSettledAtCall { key: record }.abi_encode())?;
        if settled_at.is_zero() {
            return Ok(None);
        }
        let latest = self.account.block_number()?;
        let mut from = self.first_block_at(settled_at, latest)?;
        let timestamp = B256::from(U256::from(timestamp));
        loop {
            let to = from.saturating_add(LOG_WINDOW - 1).min(latest);
            let filter = json!({
                "address": SETTLEMENT_RELAY,
                "fromBlock": format!("{from:#x}"),
                "toBlock": format!("{to:#x}"),
                "topics": [IndividualSettlement::SIGNATURE_HASH, tee_id, input_hash],
            });
            let logs = rpc_client::call(self.account.rpc_url(), "eth_getLogs", json!([filter]))?;
            let logs = logs.as_array().ok_or(ChainError::BadAnswer("eth_getLogs"))?;
            let found = logs.iter().find_map(|log| {
                // The data's first words: outputHash, timestamp.
                let data: alloy_primitives::Bytes = serde_json::from_value(log["data"].clone()).ok()?;
                let ours = data.get(..32)? == output_hash.as_slice() && data.get(32..64)? == timestamp.as_slice();
                ours.then(|| serde_json::from_value(log["transactionHash"].clone()).ok()).flatten()
            });
            if found.is_some() || to == latest || U256::from(self.account.block_timestamp(to)?) > settled_at {
                return Ok(found);
            }
            from = to + 1;
        }
    }

    /// The first block up to `latest` whose timestamp is at least `at`
    /// (`latest` when none is), by bisection.
    fn first_block_at(&self, at: U256, latest: u64) -> Result<u64, ChainError> {
        let (mut low, mut high) = (0, latest);
        while low < high {
            let mid = low + (high - low) / 2;
            if U256::from(self.account.block_timestamp(mid)?) >= at { high = mid } else { low = mid + 1 }
        }
        Ok(low)
    }

    /// Posts the batch in progress, if any (on a timer, and when stopping).
    pub fn flush(&self) -> Result<Option<B256>, ChainError> {
        let results = std::mem::take(&mut *self.batch.lock());
        if results.is_empty() {
            return Ok(None);
        }
        self.post_batch(results).map(Some)
    }

    fn post_batch(&self, results: Vec<Attestation>) -> Result<B256, ChainError> {
        let leaves: Vec<B256> = results.iter().map(batch_leaf).collect();
        let root = MerkleTree::new(&leaves).map(|t| t.root()).unwrap_or_default();
        let data = calldata(&Posting::Batch { root, results }, Address::ZERO);
        self.account.send(SETTLEMENT_RELAY, data.to_vec(), POST_GAS)
    }

    /// How many answers wait in the batch in progress.
    pub fn pending(&self) -> usize {
        self.batch.lock().len()
    }
}
