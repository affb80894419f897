//! The devnet's relay account at work: it follows the mined blocks, and posts
//! the settlement of each TEE-mode result to the settlement relay when the
//! [`Book`] says it is due, as signed transactions that are mined like any
//! other. It also keeps the enclaves' heartbeats fresh in the TEE registry:
//! when the chain's time has moved [`HEARTBEAT_EVERY`] past an enclave's last
//! heartbeat, it sends one, signed by the enclave. `Devnet::start_settlement`
//! runs it on a thread of its own; `Devnet::settle_due` is one step of it.
//! A loaded chain's book is rebuilt from the chain ([`reloaded_book`]) and
//! what the dump says the relay still owed ([`Devnet::chain_and_duties`]).

use std::sync::{Arc, Weak};
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{Address, B256, Bytes, TxKind, keccak256};
use alloy_signer::SignerSync;

use super::{Devnet, Inner, NodeError};
use crate::chain::{Chain, PoolTx, RelayDuties, SealedBlock};
use crate::predeploys::{SETTLEMENT_RELAY, TEE_REGISTRY, heartbeat_call};
use crate::settlement::{Book, LoadedBlock, Posting, SettlementConfig, calldata, recorded};
use crate::tee::Attestation;
use crate::tee::Fault;
use crate::tee::faults::LATE_BY_BLOCKS;

/// What the relay learns of a block: its number, the results it used, and
/// the relay's transactions it mined (hash, success).
type LearntBlock = (u64, Vec<Attestation>, Vec<(B256, bool)>);

/// How much chain time may pass before the operator sends an enclave's next
/// heartbeat (the registry deems a TEE inactive after 1,800 s).
pub const HEARTBEAT_EVERY: u64 = 600;

/// Gas of the relay's postings (a record, or a root)…
const POSTING_GAS: u64 = 500_000;
/// …and of each leaf a batch's blob carries (calldata, the event's data,
/// memory), with room to spare.
const LEAF_GAS: u64 = 1_200;
/// The relay's priority fee.
const RELAY_TIP: u128 = 1_000_000_000;

/// How a chain was replaced under the relay ([`Devnet::replace_chain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ChainReplaced {
    /// By a snapshot of it (`evm_revert`).
    Reverted,
    /// By a state dump (`anvil_loadState`), with what the relay that wrote
    /// it still owed, if it says.
    Loaded(Option<RelayDuties>),
}

impl Devnet {
    /// Learns the blocks mined since the last step and posts what is due;
    /// returns the hashes of the relay's transactions sent.
    pub fn settle_due(&self) -> Result<Vec<B256>, NodeError> {
        let inference = self.inference()?;
        let relay = inference.relay.address();
        let mut book = inference.book.lock();
        let from = book.scanned() + 1;
        let (blocks, head, now) = self.with_chain(|c| {
            let blocks: Vec<LearntBlock> = c
                .built_blocks(from, c.head_number())
                .map(|b| {
                    let used = used(b);
                    let mined = b
                        .transactions
                        .iter()
                        .zip(&b.receipts)
                        .filter(|(tx, _)| tx.sender == relay)
                        .map(|(tx, r)| (tx.hash, r.success))
                        .collect();
                    (b.number(), used, mined)
                })
                .collect();
            (blocks, c.head_number(), c.head().header.timestamp)
        });
        for (number, used, mined) in &blocks {
            book.learn_block(*number, used, mined);
        }
        book.learn_block(head, &[], &[]);
        let faults = inference.pipe.enclaves().faults();
        let late_by = if faults.is_on(Fault::LateSettlement) { LATE_BY_BLOCKS } else { 0 };
        let mut sent = Vec::new();
        for posting in book.due(head, now, late_by, faults.is_on(Fault::WithholdSettlement)) {
            let posted = match &posting {
                Posting::Batch { root, results } if faults.is_on(Fault::WrongRoot) => {
                    Posting::Batch { root: keccak256(root), results: results.clone() }
                }
                _ => posting.clone(),
            };
            let input = calldata(&posted, relay);
            match self.send_signed_call(&inference.relay, SETTLEMENT_RELAY, input, posting_gas(&posted), RELAY_TIP) {
                Ok(hash) => {
                    book.submitted(&posting, hash);
                    sent.push(hash);
                }
                Err(e) => {
                    // E.g. the relay's balance or nonce was edited: tried again after the delay.
                    tracing::warn!(%e, "the settlement relay could not post");
                    book.unsent(posting, head);
                }
            }
        }
        drop(book);
        sent.extend(self.beat(now)?);
        Ok(sent)
    }

    /// Sends the heartbeats due at chain time `now`.
    fn beat(&self, now: u64) -> Result<Vec<B256>, NodeError> {
        let inference = self.inference()?;
        if inference.pipe.enclaves().faults().is_on(Fault::NoHeartbeat) {
            return Ok(Vec::new());
        }
        let mut enclaves = inference.pipe.enclaves().all().map_err(|e| NodeError::Failed(e.to_string()))?.to_vec();
        enclaves.extend(inference.operated.lock().iter().cloned());
        let mut sent = Vec::new();
        for enclave in &enclaves {
            let last = *inference.heartbeats.lock().entry(enclave.id()).or_insert(now);
            if now < last.saturating_add(HEARTBEAT_EVERY) {
                continue;
            }
            let call = heartbeat_call(enclave, now).map_err(|e| NodeError::Failed(e.to_string()))?;
            match self.send_signed_call(&inference.relay, TEE_REGISTRY, call, POSTING_GAS, RELAY_TIP) {
                Ok(hash) => {
                    sent.push(hash);
                    inference.heartbeats.lock().insert(enclave.id(), now);
                }
                // Tried again at the next step.
                Err(e) => tracing::warn!(%e, "the operator could not send a heartbeat"),
            }
        }
        Ok(sent)
    }

    /// Signs and submits a call from `signer` (an account of the devnet's
    /// own: the relay, the scheduler) with `gas` and priority fee `tip`, at
    /// its next pending nonce.
    pub(super) fn send_signed_call(
        &self,
        signer: &alloy_signer_local::PrivateKeySigner,
        to: Address,
        input: Bytes,
        gas: u64,
        tip: u128,
    ) -> Result<B256, NodeError> {
        let nonce = self.transaction_count(signer.address(), BlockNumberOrTag::Pending.into())?;
        let base_fee = self.with_chain(|c| c.next_base_fee());
        let tx = TxEip1559 {
            chain_id: self.chain_id(),
            nonce,
            gas_limit: gas,
            max_fee_per_gas: u128::from(base_fee) * 2 + tip,
            max_priority_fee_per_gas: tip,
            to: TxKind::Call(to),
            value: Default::default(),
            access_list: Default::default(),
            input,
        };
        let signature = signer.sign_hash_sync(&tx.signature_hash()).map_err(|e| NodeError::Failed(e.to_string()))?;
        self.submit(PoolTx::from_signed(tx.into_signed(signature).into())?)
    }

    /// Runs the relay on a thread of its own until the devnet is dropped:
    /// a step whenever a block is mined (and at least every 200 ms).
    pub fn start_settlement(self: &Arc<Self>) -> std::io::Result<std::thread::JoinHandle<()>> {
        let devnet: Weak<Self> = Arc::downgrade(self);
        let mut blocks = self.subscribe_blocks();
        std::thread::Builder::new().name("nml-settlement".into()).spawn(move || {
            let mut idle = 0;
            loop {
                let Some(devnet) = devnet.upgrade() else { return };
                let mined =
                    matches!(blocks.try_recv(), Ok(_) | Err(tokio::sync::broadcast::error::TryRecvError::Lagged(_)));
                if mined || idle >= 20 {
                    idle = 0;
                    if let Err(e) = devnet.settle_due() {
                        tracing::warn!(%e, "the settlement relay could not post");
                    }
                } else {
                    idle += 1;
                }
                drop(devnet);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    }

    /// Replaces the chain by `replace`, run under the devnet's lock, with
    /// the relay's book following it in the same step: the book is locked
    /// first, the order `settle_due` takes them in, so the relay never reads
    /// the new chain with the old book. `None` when `replace` replaces
    /// nothing; else what it took out, for the caller to free outside both
    /// locks. The operator's heartbeat times start over. A loaded chain's
    /// book is rebuilt from it after the devnet's lock is let go (the chain
    /// is copied in constant time), with the book still locked.
    pub(super) fn replace_chain<T>(
        &self,
        how: ChainReplaced,
        replace: impl FnOnce(&mut Inner) -> Option<T>,
    ) -> Option<T> {
        let mut book = self.inference.as_ref().map(|inference| inference.book.lock());
        let mut inner = self.lock();
        let replaced = replace(&mut inner)?;
        let mut loaded = None;
        if let Some(book) = book.as_deref_mut() {
            let chain = &inner.chain;
            match how {
                // The relay forgets what the lost blocks used and posts
                // again what they mined.
                ChainReplaced::Reverted => book.rewind(chain.head_number(), |tx| chain.tx_location(&tx).is_some()),
                // As a devnet started on that state (`--state`) starts it:
                // nothing learnt of the chain it replaced applies to it.
                ChainReplaced::Loaded(duties) => loaded = Some((chain.clone(), duties)),
            }
        }
        drop(inner);
        if let (Some(book), Some((chain, duties))) = (book.as_deref_mut(), loaded) {
            *book = reloaded_book(&chain, book.config(), duties);
        }
        drop(book);
        if let Some(inference) = &self.inference {
            inference.heartbeats.lock().clear();
        }
        Some(replaced)
    }

    /// A copy of the chain, and what the relay still owes of it (`None`
    /// without a relay, or when it owes nothing), for a dump. Both are read
    /// with the book locked, so that the relay neither posts nor learns a
    /// block between the two reads: each posting the duties name is either
    /// mined in the copy (which then settles its results, whatever the
    /// duties say) or lost with the pool.
    pub(super) fn chain_and_duties(&self) -> (Chain, Option<RelayDuties>) {
        let book = self.inference.as_ref().map(|inference| inference.book.lock());
        // A copy of the chain takes constant time (persistent structures).
        let chain = self.lock().chain.clone();
        (chain, book.and_then(|book| book.duties()))
    }

    /// The book of the relay (statuses), read-only.
    pub(super) fn with_book<T>(&self, f: impl FnOnce(&Book) -> T) -> Result<T, NodeError> {
        Ok(f(&self.inference()?.book.lock()))
    }
}

/// The gas the relay gives `posting`.
pub(super) fn posting_gas(posting: &Posting) -> u64 {
    match posting {
        Posting::Individual(_) => POSTING_GAS,
        Posting::Batch { results, .. } => {
            let leaves = u64::try_from(results.len()).unwrap_or(u64::MAX);
            POSTING_GAS.saturating_add(LEAF_GAS.saturating_mul(leaves))
        }
    }
}

/// The relay's book of a loaded chain (`--state`, `anvil_loadState`),
/// rebuilt in one pass over its built blocks' receipts: the results they
/// used and the settlements the relay contract recorded, and what the
/// dump's relay still owed (`Book::reloaded`).
pub(super) fn reloaded_book(chain: &Chain, config: SettlementConfig, duties: Option<RelayDuties>) -> Book {
    let blocks = chain.built_blocks(0, chain.head_number()).map(|b| {
        let settled = b
            .transactions
            .iter()
            .zip(&b.receipts)
            .filter(|(_, r)| r.success)
            .flat_map(|(tx, r)| r.logs.iter().map(move |log| (tx.hash, log)))
            .filter_map(|(tx, log)| match recorded(log) {
                Ok(found) => found.map(|settlement| (tx, settlement)),
                Err(e) => {
                    tracing::warn!(%e, %tx, "a settlement on the loaded chain is not attributed to its results");
                    None
                }
            })
            .collect();
        LoadedBlock { number: b.number(), used: used(b), settled }
    });
    Book::reloaded(config, chain.head_number(), blocks, duties)
}

/// The results `block` used: the attestations of its inference records.
fn used(block: &SealedBlock) -> Vec<Attestation> {
    block.receipts.iter().flat_map(|r| r.inference.iter().filter_map(|i| i.attestation.clone())).collect()
}
