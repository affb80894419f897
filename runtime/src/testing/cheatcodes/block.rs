//! The block and transaction a test sees: `warp`, `roll`, `fee`,
//! `coinbase`, `prevrandao`, `chainId` and `txGasPrice` override them;
//! `getBlockNumber` and `getBlockTimestamp` read them back.
//!
//! An override outlives its transaction, as a [`super::CheatState`] field
//! ([`EnvOverrides`]): made in `setUp`, it holds in every test, applied
//! when each transaction makes its first call. The fields revm settles a
//! transaction with — the base fee, the gas price, the coinbase, the
//! sender (`tx.origin`, which a prank may change) — and the chain id the
//! next transaction is validated against are put back when the
//! transaction's top-level call ends, before revm refunds the sender and
//! pays the coinbase ([`TxEnvAtStart`]). So a test that changes them is
//! charged what its real transaction costs, the block's own coinbase earns
//! the fee, and a later transaction in the same block is not refused for a
//! chain id or base fee that only the test saw.

use alloy_primitives::{Address, B256, U256};
use revm::primitives::hardfork::SpecId;

use crate::evm::EvmContext;

/// Why a block or transaction cheatcode refused its argument.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum EnvError {
    /// The value does not fit the field revm keeps it in.
    #[error("vm.{0}: {1} must be below 2^64")]
    TooLarge(&'static str, &'static str),
    /// `prevrandao` before the Merge (`DIFFICULTY` is not `PREVRANDAO` yet).
    #[error("vm.prevrandao: the chain's hard fork predates the Merge, which brought prevrandao (EIP-4399)")]
    BeforeMerge,
}

/// The block and transaction fields the test overrode, for the rest of the
/// test (or of every test, when made in `setUp`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct EnvOverrides {
    /// `warp`.
    pub(super) timestamp: Option<U256>,
    /// `roll`.
    pub(super) number: Option<U256>,
    /// `fee`.
    pub(super) basefee: Option<u64>,
    /// `coinbase`.
    pub(super) coinbase: Option<Address>,
    /// `prevrandao`.
    pub(super) prevrandao: Option<B256>,
    /// `chainId`.
    pub(super) chain_id: Option<u64>,
    /// `txGasPrice`.
    pub(super) gas_price: Option<u64>,
}

impl EnvOverrides {
    /// Applies every override to the running transaction.
    pub(super) fn apply(&self, ctx: &mut EvmContext) {
        if let Some(timestamp) = self.timestamp {
            ctx.block.timestamp = timestamp;
        }
        if let Some(number) = self.number {
            ctx.block.number = number;
        }
        if let Some(basefee) = self.basefee {
            ctx.block.basefee = basefee;
        }
        if let Some(coinbase) = self.coinbase {
            ctx.block.beneficiary = coinbase;
        }
        if let Some(prevrandao) = self.prevrandao {
            ctx.block.prevrandao = Some(prevrandao);
        }
        if let Some(chain_id) = self.chain_id {
            ctx.cfg.chain_id = chain_id;
        }
        if let Some(gas_price) = self.gas_price {
            set_gas_price(ctx, gas_price);
        }
    }

    /// `warp(newTimestamp)`.
    pub(super) fn warp(&mut self, ctx: &mut EvmContext, timestamp: U256) {
        self.timestamp = Some(timestamp);
        ctx.block.timestamp = timestamp;
    }

    /// `roll(newHeight)`.
    pub(super) fn roll(&mut self, ctx: &mut EvmContext, number: U256) {
        self.number = Some(number);
        ctx.block.number = number;
    }

    /// `fee(newBasefee)`.
    pub(super) fn set_basefee(&mut self, ctx: &mut EvmContext, basefee: U256) -> Result<(), EnvError> {
        let basefee = u64::try_from(basefee).map_err(|_| EnvError::TooLarge("fee", "a base fee"))?;
        self.basefee = Some(basefee);
        ctx.block.basefee = basefee;
        Ok(())
    }

    /// `chainId(newChainId)`.
    pub(super) fn set_chain_id(&mut self, ctx: &mut EvmContext, chain_id: U256) -> Result<(), EnvError> {
        let chain_id = u64::try_from(chain_id).map_err(|_| EnvError::TooLarge("chainId", "a chain id"))?;
        self.chain_id = Some(chain_id);
        ctx.cfg.chain_id = chain_id;
        Ok(())
    }

    /// `txGasPrice(newGasPrice)`.
    pub(super) fn set_gas_price(&mut self, ctx: &mut EvmContext, gas_price: U256) -> Result<(), EnvError> {
        let gas_price = u64::try_from(gas_price).map_err(|_| EnvError::TooLarge("txGasPrice", "a gas price"))?;
        self.gas_price = Some(gas_price);
        set_gas_price(ctx, gas_price);
        Ok(())
    }

    /// `coinbase(newCoinbase)`.
    pub(super) fn set_coinbase(&mut self, ctx: &mut EvmContext, coinbase: Address) {
        self.coinbase = Some(coinbase);
        ctx.block.beneficiary = coinbase;
    }

    /// `prevrandao(newPrevrandao)`, either overload.
    pub(super) fn set_prevrandao(&mut self, ctx: &mut EvmContext, prevrandao: B256) -> Result<(), EnvError> {
        if !ctx.cfg.spec.is_enabled_in(SpecId::MERGE) {
            return Err(EnvError::BeforeMerge);
        }
        self.prevrandao = Some(prevrandao);
        ctx.block.prevrandao = Some(prevrandao);
        Ok(())
    }
}

/// `tx.gasprice` is the transaction's effective price: without a priority
/// fee, revm takes the gas price as it is, whatever the transaction's type.
fn set_gas_price(ctx: &mut EvmContext, gas_price: u64) {
    ctx.tx.gas_price = u128::from(gas_price);
    ctx.tx.gas_priority_fee = None;
}

/// The fields of a transaction's environment that revm settles it with, as
/// they were before the cheatcodes changed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct TxEnvAtStart {
    basefee: u64,
    coinbase: Address,
    chain_id: u64,
    gas_price: u128,
    gas_priority_fee: Option<u128>,
    origin: Address,
}

impl TxEnvAtStart {
    /// The running transaction's.
    pub(super) fn capture(ctx: &EvmContext) -> Self {
        Self {
            basefee: ctx.block.basefee,
            coinbase: ctx.block.beneficiary,
            chain_id: ctx.cfg.chain_id,
            gas_price: ctx.tx.gas_price,
            gas_priority_fee: ctx.tx.gas_priority_fee,
            origin: ctx.tx.caller,
        }
    }

    /// Puts them back.
    pub(super) fn restore(self, ctx: &mut EvmContext) {
        ctx.block.basefee = self.basefee;
        ctx.block.beneficiary = self.coinbase;
        ctx.cfg.chain_id = self.chain_id;
        ctx.tx.gas_price = self.gas_price;
        ctx.tx.gas_priority_fee = self.gas_priority_fee;
        ctx.tx.caller = self.origin;
    }
}
