//! The devnet's relay account at work: it follows the mined blocks, and posts
//! the settlement of each TEE-mode result to the settlement relay when the
//! [`Book`] says it is due, as signed transactions that are mined like any
//! other. `Devnet::start_settlement` runs it on a thread of its own;
//! `Devnet::settle_due` is one step of it.

use std::sync::{Arc, Weak};
use std::time::Duration;

use alloy_consensus::{SignableTransaction, TxEip1559};
use alloy_eips::BlockNumberOrTag;
use alloy_primitives::{B256, TxKind};
use alloy_signer::SignerSync;

use super::{Devnet, NodeError};
use crate::chain::PoolTx;
use crate::predeploys::SETTLEMENT_RELAY;
use crate::settlement::{Book, Posting, calldata};
use crate::tee::Attestation;

/// What the relay learns of a block: its number, the results it used, and
/// the relay's transactions it mined (hash, success).
type LearntBlock = (u64, Vec<Attestation>, Vec<(B256, bool)>);

/// Gas of the relay's postings (a record, or a root).
const POSTING_GAS: u64 = 500_000;
/// The relay's priority fee.
const RELAY_TIP: u128 = 1_000_000_000;

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
                    let used = b
                        .receipts
                        .iter()
                        .flat_map(|r| r.inference.iter().filter_map(|i| i.attestation.clone()))
                        .collect();
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
        let mut sent = Vec::new();
        for posting in book.due(head, now) {
            let hash = self.post(&posting)?;
            book.submitted(&posting, hash);
            sent.push(hash);
        }
        Ok(sent)
    }

    /// Signs and submits one posting from the relay account.
    fn post(&self, posting: &Posting) -> Result<B256, NodeError> {
        let inference = self.inference()?;
        let relay = &inference.relay;
        let nonce = self.transaction_count(relay.address(), BlockNumberOrTag::Pending.into())?;
        let base_fee = self.with_chain(|c| c.next_base_fee());
        let tx = TxEip1559 {
            chain_id: self.chain_id(),
            nonce,
            gas_limit: POSTING_GAS,
            max_fee_per_gas: u128::from(base_fee) * 2 + RELAY_TIP,
            max_priority_fee_per_gas: RELAY_TIP,
            to: TxKind::Call(SETTLEMENT_RELAY),
            value: Default::default(),
            access_list: Default::default(),
            input: calldata(posting, relay.address()),
        };
        let signature = relay.sign_hash_sync(&tx.signature_hash()).map_err(|e| NodeError::Failed(e.to_string()))?;
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

    /// The book of the relay (statuses), read-only.
    pub(super) fn with_book<T>(&self, f: impl FnOnce(&Book) -> T) -> Result<T, NodeError> {
        Ok(f(&self.inference()?.book.lock()))
    }
}
