//! Transactions as the devnet holds them: a signed envelope with its
//! recovered sender, and the checks that need no state.

use alloy_consensus::transaction::SignerRecoverable;
use alloy_consensus::{Signed, Transaction, TxEnvelope, TxType};
use alloy_eips::eip2718::{Decodable2718, Encodable2718};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, keccak256};
use revm::context::TxEnv;
use revm::context_interface::cfg::gas::calculate_initial_tx_gas;
use revm::primitives::hardfork::SpecId;

/// The largest EIP-2718 encoding of a transaction the devnet takes: 128 KiB,
/// geth's `txMaxSize`. A contract deployment with EIP-3860's largest init
/// code (49,152 bytes) fits with room to spare; without a bound one request
/// could park megabytes in the pool.
pub const MAX_TX_SIZE: usize = 128 * 1024;

/// Why a transaction was refused. The messages are geth's, so that clients
/// which match on them (ethers, web3.py, viem) recognise each case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The bytes are not a transaction.
    #[error("failed to decode signed transaction: {0}")]
    Decode(String),
    /// EIP-4844 blob transactions are not supported.
    #[error("transaction type not supported: EIP-4844 blob transactions are not supported by the nml devnet")]
    BlobUnsupported,
    /// EIP-7702 set-code transactions are not supported.
    #[error("transaction type not supported: EIP-7702 set-code transactions are not supported by the nml devnet")]
    SetCodeUnsupported,
    /// The signature does not recover to an address.
    #[error("invalid sender: {0}")]
    InvalidSignature(String),
    /// The transaction is signed for another chain.
    #[error("invalid chain id for signer: have {have} want {want}")]
    ChainId {
        /// The transaction's chain id.
        have: u64,
        /// The devnet's chain id.
        want: u64,
    },
    /// The nonce is 2^64 - 1: the sender's nonce could not be incremented
    /// past it (EIP-2681; geth's `ErrNonceMax`).
    #[error("nonce has max value: address {sender}, nonce: {nonce}")]
    NonceMax {
        /// The transaction's sender.
        sender: Address,
        /// The transaction's nonce.
        nonce: u64,
    },
    /// The encoding is over [`MAX_TX_SIZE`] (geth's `ErrOversizedData`).
    #[error("oversized data: transaction size {size}, limit {limit}")]
    Oversized {
        /// The size of the transaction's EIP-2718 encoding, in bytes.
        size: usize,
        /// The largest size taken.
        limit: usize,
    },
    /// The nonce was used already.
    #[error("nonce too low: next nonce {next}, tx nonce {tx}")]
    NonceTooLow {
        /// The sender's next nonce.
        next: u64,
        /// The transaction's nonce.
        tx: u64,
    },
    /// The sender cannot pay for gas and value.
    #[error("insufficient funds for gas * price + value: balance {balance}, tx cost {cost}, overshot {overshot}")]
    InsufficientFunds {
        /// The sender's balance.
        balance: U256,
        /// gas limit × max fee + value.
        cost: U256,
        /// How much is missing.
        overshot: U256,
    },
    /// The gas limit is below the intrinsic cost.
    #[error("intrinsic gas too low: gas {gas}, minimum needed {needed}")]
    IntrinsicGas {
        /// The transaction's gas limit.
        gas: u64,
        /// Its intrinsic gas.
        needed: u64,
    },
    /// The gas limit exceeds the block gas limit.
    #[error("exceeds block gas limit: gas {gas}, block gas limit {limit}")]
    GasLimit {
        /// The transaction's gas limit.
        gas: u64,
        /// The block gas limit.
        limit: u64,
    },
    /// The max fee is below the base fee of the next block.
    #[error("max fee per gas less than block base fee: maxFeePerGas: {max_fee}, baseFee: {base_fee}")]
    FeeCapTooLow {
        /// The transaction's max fee per gas.
        max_fee: u128,
        /// The next block's base fee.
        base_fee: u64,
    },
    /// The tip exceeds the max fee.
    #[error("max priority fee per gas higher than max fee per gas")]
    TipAboveFeeCap,
    /// A pending transaction with the same sender and nonce pays at least as much.
    #[error("replacement transaction underpriced")]
    ReplacementUnderpriced,
    /// The transaction is in the pool already.
    #[error("already known")]
    AlreadyKnown,
    /// The pool holds as many transactions as it takes.
    #[error("txpool is full: it holds at most {limit} transactions")]
    PoolFull {
        /// The most transactions the pool holds.
        limit: usize,
    },
    /// The pool's transactions take as many bytes (of their encodings) as
    /// it holds in all.
    #[error("txpool is full: its transactions take at most {limit} bytes in all")]
    PoolBytesFull {
        /// The most bytes the pool's transactions take.
        limit: usize,
    },
    /// The pool holds as many queued transactions (behind a nonce gap) as it takes.
    #[error("txpool is full: it holds at most {limit} queued transactions (behind a nonce gap)")]
    QueueFull {
        /// The most queued transactions the pool holds.
        limit: usize,
    },
    /// The sender has as many queued transactions (behind a nonce gap) as
    /// the pool takes from one sender.
    #[error(
        "account limit exceeded: at most {limit} queued transactions (behind a nonce gap) per sender; the next nonce to send is {next}"
    )]
    AccountQueueFull {
        /// The most queued transactions of one sender.
        limit: usize,
        /// The nonce that would make the sender's queued transactions pending.
        next: u64,
    },
    /// The sender is not a dev account nor impersonated (`eth_sendTransaction`).
    #[error("unknown account {0}")]
    UnknownAccount(Address),
}

/// A transaction accepted by the devnet: signed (or sent by an impersonated
/// account), with its sender recovered once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolTx {
    /// The signed transaction.
    pub envelope: TxEnvelope,
    /// Its sender.
    pub sender: Address,
    /// Its hash (for an impersonated transaction, a hash that also covers the sender).
    pub hash: B256,
    /// Whether it was sent for an impersonated account (its signature is a placeholder).
    pub impersonated: bool,
}

impl PoolTx {
    /// Decodes raw EIP-2718 bytes and recovers the sender.
    pub fn decode(raw: &[u8]) -> Result<Self, TxError> {
        let mut slice = raw;
        let envelope = TxEnvelope::decode_2718(&mut slice).map_err(|e| TxError::Decode(e.to_string()))?;
        if !slice.is_empty() {
            return Err(TxError::Decode("trailing bytes after the transaction".into()));
        }
        Self::from_signed(envelope)
    }

    /// Recovers the sender of a signed envelope.
    pub fn from_signed(envelope: TxEnvelope) -> Result<Self, TxError> {
        match envelope.tx_type() {
            TxType::Eip4844 => return Err(TxError::BlobUnsupported),
            TxType::Eip7702 => return Err(TxError::SetCodeUnsupported),
            _ => {}
        }
        let sender = envelope.recover_signer().map_err(|e| TxError::InvalidSignature(e.to_string()))?;
        let hash = *envelope.tx_hash();
        Ok(Self { envelope, sender, hash, impersonated: false })
    }

    /// A transaction sent by an impersonated account: unsigned, with a
    /// placeholder signature and a hash that covers the sender.
    pub fn impersonated(tx: alloy_consensus::TypedTransaction, sender: Address) -> Self {
        let signature = Signature::new(U256::from(1), U256::from(1), false);
        let envelope: TxEnvelope = match tx {
            alloy_consensus::TypedTransaction::Legacy(t) => Signed::new_unhashed(t, signature).into(),
            alloy_consensus::TypedTransaction::Eip2930(t) => Signed::new_unhashed(t, signature).into(),
            alloy_consensus::TypedTransaction::Eip1559(t) => Signed::new_unhashed(t, signature).into(),
            alloy_consensus::TypedTransaction::Eip4844(t) => Signed::new_unhashed(t, signature).into(),
            alloy_consensus::TypedTransaction::Eip7702(t) => Signed::new_unhashed(t, signature).into(),
        };
        let mut preimage = envelope.tx_hash().to_vec();
        preimage.extend_from_slice(sender.as_slice());
        Self { hash: keccak256(preimage), envelope, sender, impersonated: true }
    }

    /// The EIP-2718 encoding.
    pub fn encoded(&self) -> Bytes {
        self.envelope.encoded_2718().into()
    }

    /// The length of the EIP-2718 encoding, in bytes (computed without encoding).
    pub fn encoded_len(&self) -> usize {
        self.envelope.encode_2718_len()
    }

    /// The nonce.
    pub fn nonce(&self) -> u64 {
        self.envelope.nonce()
    }

    /// The gas limit.
    pub fn gas_limit(&self) -> u64 {
        self.envelope.gas_limit()
    }

    /// The max fee per gas (the gas price of a legacy transaction).
    pub fn max_fee(&self) -> u128 {
        self.envelope.max_fee_per_gas()
    }

    /// The max priority fee per gas (the gas price of a legacy transaction).
    pub fn max_tip(&self) -> u128 {
        self.envelope.max_priority_fee_per_gas().unwrap_or_else(|| self.max_fee())
    }

    /// The tip per gas the block producer gets at `base_fee`; `None` when the
    /// max fee is below the base fee.
    pub fn effective_tip(&self, base_fee: u64) -> Option<u128> {
        self.envelope.effective_tip_per_gas(base_fee)
    }

    /// The price per gas paid at `base_fee`.
    pub fn effective_gas_price(&self, base_fee: u64) -> u128 {
        self.envelope.effective_gas_price(Some(base_fee))
    }

    /// gas limit × max fee + value: what the sender must hold. A sum past
    /// 2^256 - 1 is that (no balance covers it); it never wraps round.
    pub fn max_cost(&self) -> U256 {
        (U256::from(self.gas_limit()) * U256::from(self.max_fee())).saturating_add(self.envelope.value())
    }

    /// The smallest gas limit this transaction may carry under `spec`.
    pub fn intrinsic_gas(&self, spec: SpecId) -> u64 {
        let (accounts, slots) = self
            .envelope
            .access_list()
            .map(|list| list.iter().fold((0u64, 0u64), |(a, s), item| (a + 1, s + item.storage_keys.len() as u64)))
            .unwrap_or_default();
        let gas =
            calculate_initial_tx_gas(spec, self.envelope.input(), self.envelope.is_create(), accounts, slots, 0, None);
        (gas.initial_regular_gas + gas.initial_state_gas).max(gas.floor_gas)
    }

    /// The checks that need no state: size (unless the chain lifts the
    /// code size limit, as `nml test` does), nonce, chain id, fee fields,
    /// intrinsic gas and the block gas limit.
    pub fn check_stateless(&self, config: &super::ChainConfig) -> Result<(), TxError> {
        let (chain_id, spec, block_gas_limit) = (config.chain_id, config.spec, config.gas_limit);
        let size = self.encoded_len();
        if size > MAX_TX_SIZE && !config.unlimited_code_size {
            return Err(TxError::Oversized { size, limit: MAX_TX_SIZE });
        }
        if self.nonce() == u64::MAX {
            return Err(TxError::NonceMax { sender: self.sender, nonce: self.nonce() });
        }
        if let Some(have) = self.envelope.chain_id()
            && have != chain_id
        {
            return Err(TxError::ChainId { have, want: chain_id });
        }
        if self.envelope.is_dynamic_fee() && self.max_tip() > self.max_fee() {
            return Err(TxError::TipAboveFeeCap);
        }
        if self.gas_limit() > block_gas_limit {
            return Err(TxError::GasLimit { gas: self.gas_limit(), limit: block_gas_limit });
        }
        let needed = self.intrinsic_gas(spec);
        if self.gas_limit() < needed {
            return Err(TxError::IntrinsicGas { gas: self.gas_limit(), needed });
        }
        Ok(())
    }

    /// The revm transaction environment that executes this transaction.
    pub fn tx_env(&self) -> TxEnv {
        let tx = &self.envelope;
        TxEnv {
            tx_type: tx.tx_type() as u8,
            caller: self.sender,
            gas_limit: tx.gas_limit(),
            gas_price: tx.max_fee_per_gas(),
            kind: tx.kind(),
            value: tx.value(),
            data: tx.input().clone(),
            nonce: tx.nonce(),
            chain_id: tx.chain_id(),
            access_list: tx.access_list().cloned().unwrap_or_default(),
            gas_priority_fee: tx.max_priority_fee_per_gas().filter(|_| tx.is_dynamic_fee()),
            ..Default::default()
        }
    }

    /// The recipient, `None` for a contract creation.
    pub fn to(&self) -> Option<Address> {
        match self.envelope.kind() {
            TxKind::Call(to) => Some(to),
            TxKind::Create => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use alloy_consensus::{TxEip1559, TypedTransaction};
    use alloy_primitives::address;

    use super::*;

    const ALICE: Address = address!("0x00000000000000000000000000000000000a11ce");

    /// A transaction carrying `input`, a deployment when `create`.
    fn tx(nonce: u64, input: Vec<u8>, create: bool) -> PoolTx {
        let eip1559 = TxEip1559 {
            chain_id: 31337,
            nonce,
            gas_limit: 30_000_000,
            max_fee_per_gas: 1_000_000_000,
            to: if create { TxKind::Create } else { TxKind::Call(ALICE) },
            input: input.into(),
            ..Default::default()
        };
        PoolTx::impersonated(TypedTransaction::Eip1559(eip1559), ALICE)
    }

    fn check(tx: &PoolTx) -> Result<(), TxError> {
        let config = crate::chain::ChainConfig { gas_limit: 30_000_000, ..Default::default() };
        tx.check_stateless(&config)
    }

    #[test]
    fn a_nonce_of_2_64_minus_1_is_refused_before_the_pool() {
        let refused = check(&tx(u64::MAX, Vec::new(), false));
        assert_eq!(refused, Err(TxError::NonceMax { sender: ALICE, nonce: u64::MAX }));
        assert_eq!(
            refused.unwrap_err().to_string(),
            format!("nonce has max value: address {ALICE}, nonce: 18446744073709551615")
        );
        assert_eq!(check(&tx(u64::MAX - 1, Vec::new(), false)), Ok(()));
    }

    #[test]
    fn a_transaction_over_128_kib_is_refused_and_the_largest_init_code_is_not() {
        // EIP-3860's largest init code, and a few KB of calldata (an inference request).
        assert_eq!(check(&tx(0, vec![0x60; 49_152], true)), Ok(()));
        assert_eq!(check(&tx(0, vec![1; 8_192], false)), Ok(()));
        let oversized = tx(0, vec![0; MAX_TX_SIZE], false);
        let size = oversized.encoded_len();
        assert_eq!(size, oversized.encoded().len());
        assert_eq!(check(&oversized), Err(TxError::Oversized { size, limit: 131_072 }));
        assert_eq!(
            TxError::Oversized { size, limit: MAX_TX_SIZE }.to_string(),
            format!("oversized data: transaction size {size}, limit 131072")
        );
        // The bound is on the whole encoding (the calldata's and the list's
        // length prefixes grow by 3 bytes each), and takes it at its limit.
        let overhead = tx(0, Vec::new(), false).encoded_len() + 6;
        let at_limit = tx(0, vec![0; MAX_TX_SIZE - overhead], false);
        assert_eq!(at_limit.encoded_len(), MAX_TX_SIZE);
        assert_eq!(check(&at_limit), Ok(()));
        // A chain without the code size limit (`nml test`) takes it.
        let unlimited = crate::chain::ChainConfig { unlimited_code_size: true, ..Default::default() };
        assert_eq!(oversized.check_stateless(&unlimited), Ok(()));
    }
}
