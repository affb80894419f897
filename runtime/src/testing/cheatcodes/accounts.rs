//! The cheatcodes that read and write accounts directly, as Foundry's do:
//! keys and signatures (`addr`, `sign`), storage (`store`, `load`), code
//! (`etch`) and nonces (`getNonce`, `setNonce`), and the address a `CREATE`
//! makes (`computeCreateAddress`). Writes go through the
//! transaction's journal, so a reverted call undoes them like any other
//! change.

use alloy_primitives::{Address, B256, Bytes, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use revm::bytecode::Bytecode;
use revm::context::ContextTr;
use revm::context_interface::JournalTr;
use revm::context_interface::journaled_state::account::JournaledAccountTr;

use crate::evm::EvmContext;

/// Why an account cheatcode failed, as the revert reason says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum AccountCheatError {
    /// The private key is zero or not below the curve's order.
    #[error("{0}: the private key must be between 1 and the secp256k1 order minus 1")]
    BadKey(&'static str),
    /// The signer refused (it never does for a valid key and a digest).
    #[error("sign: {0}")]
    Signing(String),
    /// The state behind the journal could not be read (fork mode's remote).
    #[error("{0}: {1}")]
    State(&'static str, String),
    /// A nonce past what an account can hold.
    #[error("computeCreateAddress: a nonce must be below 2^64")]
    NonceTooLarge,
}

fn signer(cheatcode: &'static str, private_key: U256) -> Result<PrivateKeySigner, AccountCheatError> {
    PrivateKeySigner::from_bytes(&B256::from(private_key)).map_err(|_| AccountCheatError::BadKey(cheatcode))
}

/// `addr(privateKey)`: the address of a secp256k1 private key.
pub(super) fn address_of(private_key: U256) -> Result<Address, AccountCheatError> {
    Ok(signer("addr", private_key)?.address())
}

/// `sign(privateKey, digest)`: `(v, r, s)` of the digest itself (no
/// prefix), with `v` 27 or 28 as `ecrecover` takes it.
pub(super) fn sign(private_key: U256, digest: B256) -> Result<(u8, B256, B256), AccountCheatError> {
    let signature =
        signer("sign", private_key)?.sign_hash_sync(&digest).map_err(|e| AccountCheatError::Signing(e.to_string()))?;
    Ok((27 + u8::from(signature.v()), signature.r().into(), signature.s().into()))
}

/// `computeCreateAddress(deployer, nonce)`: the address of the contract
/// `deployer` creates with `CREATE` at that nonce.
pub(super) fn create_address(deployer: Address, nonce: U256) -> Result<Address, AccountCheatError> {
    let nonce = u64::try_from(nonce).map_err(|_| AccountCheatError::NonceTooLarge)?;
    Ok(deployer.create(nonce))
}

fn state(cheatcode: &'static str, e: impl std::fmt::Debug) -> AccountCheatError {
    AccountCheatError::State(cheatcode, format!("{e:?}"))
}

/// `store(target, slot, value)`.
pub(super) fn store(ctx: &mut EvmContext, target: Address, slot: B256, value: B256) -> Result<(), AccountCheatError> {
    let journal = ctx.journal_mut();
    journal.load_account(target).map_err(|e| state("store", e))?;
    journal.sstore(target, slot.into(), value.into()).map_err(|e| state("store", e))?;
    Ok(())
}

/// `load(target, slot)`.
pub(super) fn load(ctx: &mut EvmContext, target: Address, slot: B256) -> Result<B256, AccountCheatError> {
    let journal = ctx.journal_mut();
    journal.load_account(target).map_err(|e| state("load", e))?;
    let value = journal.sload(target, slot.into()).map_err(|e| state("load", e))?;
    Ok(value.data.into())
}

/// `etch(target, code)`: the account's runtime code becomes `code`.
pub(super) fn etch(ctx: &mut EvmContext, target: Address, code: Bytes) -> Result<(), AccountCheatError> {
    let mut account = ctx.journal_mut().load_account_mut(target).map_err(|e| state("etch", e))?;
    account.data.set_code_and_hash_slow(Bytecode::new_raw(code));
    Ok(())
}

/// `getNonce(account)`.
pub(super) fn nonce(ctx: &mut EvmContext, account: Address) -> Result<u64, AccountCheatError> {
    let account = ctx.journal_mut().load_account_mut(account).map_err(|e| state("getNonce", e))?;
    Ok(account.data.nonce())
}

/// `setNonce(account, nonce)`.
pub(super) fn set_nonce(ctx: &mut EvmContext, account: Address, nonce: u64) -> Result<(), AccountCheatError> {
    let mut account = ctx.journal_mut().load_account_mut(account).map_err(|e| state("setNonce", e))?;
    account.data.set_nonce(nonce);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_give_the_addresses_foundry_gives_and_signatures_recover_to_them() {
        // The address of private key 1, as every Ethereum tool derives it.
        let one = address_of(U256::from(1)).unwrap();
        assert_eq!(one, alloy_primitives::address!("7E5F4552091A69125d5DfCb7b8C2659029395Bdf"));
        let digest = alloy_primitives::keccak256(b"nml");
        let (v, r, s) = sign(U256::from(1), digest).unwrap();
        assert!(v == 27 || v == 28);
        let signature = alloy_primitives::Signature::new(r.into(), s.into(), v == 28);
        assert_eq!(signature.recover_address_from_prehash(&digest).unwrap(), one);
        assert_eq!(address_of(U256::ZERO), Err(AccountCheatError::BadKey("addr")));
        assert_eq!(sign(U256::MAX, digest).map(|_| ()), Err(AccountCheatError::BadKey("sign")));
    }

    #[test]
    fn create_addresses_are_the_ones_create_makes() {
        // The first contract key 1's account creates: the RLP of (address, 0) hashed.
        let deployer = alloy_primitives::address!("7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
        let expected =
            alloy_primitives::keccak256(alloy_primitives::hex!("d6947e5f4552091a69125d5dfcb7b8c2659029395bdf80"));
        assert_eq!(create_address(deployer, U256::ZERO).unwrap(), Address::from_slice(&expected[12..]));
        assert_eq!(
            create_address(deployer, U256::from(u64::MAX) + U256::from(1)),
            Err(AccountCheatError::NonceTooLarge)
        );
    }
}
