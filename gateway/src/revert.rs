//! Why a settlement reverted, in words: the revert data of a Permit2
//! transfer through x402's proxies decoded — Permit2's custom errors, the
//! proxies', the token's (OpenZeppelin's and the devnet's OPG), Solidity's
//! `Error(string)` and `Panic(uint256)`. Anything else is named by its
//! selector; a transaction that used all its gas is [`Revert::OutOfGas`]
//! (its receipt tells, not revert data). Decoding reads only the
//! fixed-size words each error declares: short or malformed data is
//! [`Revert::Unknown`], never a panic.

use alloy_primitives::{Address, Bytes, U256};
use alloy_sol_types::{SolError, sol};

sol! {
    // Permit2 (Uniswap's SignatureTransfer and nml's predeploy).
    error SignatureExpired(uint256 signatureDeadline);
    error InvalidNonce();
    error InvalidSigner();
    error InvalidSignature();
    error InvalidSignatureLength();
    error InvalidContractSignature();
    error InvalidAmount(uint256 maxAmount);
    error TransferFailed();
    // x402's Permit2 proxies.
    error NotYetValid(uint256 validAfter);
    error NotTheFacilitator(address facilitator);
    error OverTheCap(uint256 cap);
    // The token: OpenZeppelin 5's ERC-20 errors, and the devnet's OPG.
    error ERC20InsufficientBalance(address sender, uint256 balance, uint256 needed);
    error ERC20InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
    error InsufficientBalance(address from, uint256 balance, uint256 needed);
    error InsufficientAllowance(address spender, uint256 allowance, uint256 needed);
}

/// A decoded revert.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Revert {
    /// Permit2: the block's timestamp is past the permit's deadline.
    #[error("SignatureExpired({deadline}): the permit's deadline passed before the settlement was mined")]
    SignatureExpired {
        /// The permit's deadline.
        deadline: U256,
    },
    /// Permit2: the nonce was used already.
    #[error("InvalidNonce(): the permit's nonce was already used")]
    InvalidNonce,
    /// Permit2: the signature is malformed or not the owner's.
    #[error("{0}(): the permit's signature is not the payer's")]
    BadSignature(&'static str),
    /// Permit2: more was asked than the permit allows.
    #[error("InvalidAmount({max}): more than the permit's {max} was asked for")]
    InvalidAmount {
        /// The permit's amount.
        max: U256,
    },
    /// Permit2: the token's `transferFrom` failed without a reason.
    #[error("TransferFailed(): the token refused the transfer")]
    TransferFailed,
    /// The proxy: the block's timestamp is before the witness's `validAfter`.
    #[error("NotYetValid({valid_after}): the payment is not valid yet")]
    NotYetValid {
        /// The witness's `validAfter`.
        valid_after: U256,
    },
    /// The `upto` proxy: the settlement came from another account than the witness names.
    #[error("NotTheFacilitator({facilitator}): the payment names another facilitator")]
    NotTheFacilitator {
        /// The facilitator the witness names.
        facilitator: Address,
    },
    /// The `upto` proxy: the amount is over the permit's.
    #[error("OverTheCap({cap}): the amount is over the signed cap")]
    OverTheCap {
        /// The cap.
        cap: U256,
    },
    /// The token: the payer holds too little.
    #[error("{error}: the payer holds {balance} token units, the transfer needs {needed}")]
    InsufficientBalance {
        /// The error's name.
        error: &'static str,
        /// What the payer holds.
        balance: U256,
        /// What the transfer needs.
        needed: U256,
    },
    /// The token: the payer's allowance to Permit2 is too small.
    #[error("{error}: the payer allows Permit2 {allowance} token units, the transfer needs {needed}")]
    InsufficientAllowance {
        /// The error's name.
        error: &'static str,
        /// The allowance.
        allowance: U256,
        /// What the transfer needs.
        needed: U256,
    },
    /// `Error(string)`: a `require` or `revert` with a message.
    #[error("{0:?}")]
    Message(String),
    /// `Panic(uint256)`: an assertion, an overflow…
    #[error("Panic(0x{0:x})")]
    Panic(U256),
    /// The transaction used all the gas it was sent with and failed: it ran
    /// out of gas (or halted as badly, which also takes all of it).
    #[error("ran out of gas: it used all of its gas limit of {gas_limit}")]
    OutOfGas {
        /// The transaction's gas limit.
        gas_limit: u64,
    },
    /// A revert without data.
    #[error("reverted without a reason")]
    Empty,
    /// Data of an error not known here.
    #[error("an unknown error (revert data {0})")]
    Unknown(Bytes),
}

impl Revert {
    /// Decodes revert `data`.
    pub fn decode(data: &[u8]) -> Self {
        if data.is_empty() {
            return Self::Empty;
        }
        let Some(selector) = data.get(..4) else { return Self::Unknown(Bytes::copy_from_slice(data)) };
        let decoded = match <[u8; 4]>::try_from(selector).unwrap_or_default() {
            SignatureExpired::SELECTOR => {
                SignatureExpired::abi_decode(data).map(|e| Self::SignatureExpired { deadline: e.signatureDeadline })
            }
            InvalidNonce::SELECTOR => Ok(Self::InvalidNonce),
            InvalidSigner::SELECTOR => Ok(Self::BadSignature("InvalidSigner")),
            InvalidSignature::SELECTOR => Ok(Self::BadSignature("InvalidSignature")),
            InvalidSignatureLength::SELECTOR => Ok(Self::BadSignature("InvalidSignatureLength")),
            InvalidContractSignature::SELECTOR => Ok(Self::BadSignature("InvalidContractSignature")),
            InvalidAmount::SELECTOR => {
                InvalidAmount::abi_decode(data).map(|e| Self::InvalidAmount { max: e.maxAmount })
            }
            TransferFailed::SELECTOR => Ok(Self::TransferFailed),
            NotYetValid::SELECTOR => {
                NotYetValid::abi_decode(data).map(|e| Self::NotYetValid { valid_after: e.validAfter })
            }
            NotTheFacilitator::SELECTOR => {
                NotTheFacilitator::abi_decode(data).map(|e| Self::NotTheFacilitator { facilitator: e.facilitator })
            }
            OverTheCap::SELECTOR => OverTheCap::abi_decode(data).map(|e| Self::OverTheCap { cap: e.cap }),
            ERC20InsufficientBalance::SELECTOR => ERC20InsufficientBalance::abi_decode(data).map(|e| {
                Self::InsufficientBalance { error: "ERC20InsufficientBalance", balance: e.balance, needed: e.needed }
            }),
            InsufficientBalance::SELECTOR => InsufficientBalance::abi_decode(data).map(|e| Self::InsufficientBalance {
                error: "InsufficientBalance",
                balance: e.balance,
                needed: e.needed,
            }),
            ERC20InsufficientAllowance::SELECTOR => {
                ERC20InsufficientAllowance::abi_decode(data).map(|e| Self::InsufficientAllowance {
                    error: "ERC20InsufficientAllowance",
                    allowance: e.allowance,
                    needed: e.needed,
                })
            }
            InsufficientAllowance::SELECTOR => InsufficientAllowance::abi_decode(data).map(|e| {
                Self::InsufficientAllowance { error: "InsufficientAllowance", allowance: e.allowance, needed: e.needed }
            }),
            alloy_sol_types::Revert::SELECTOR => {
                alloy_sol_types::Revert::abi_decode(data).map(|e| Self::Message(e.reason))
            }
            alloy_sol_types::Panic::SELECTOR => alloy_sol_types::Panic::abi_decode(data).map(|e| Self::Panic(e.code)),
            _ => return Self::Unknown(Bytes::copy_from_slice(data)),
        };
        decoded.unwrap_or_else(|_| Self::Unknown(Bytes::copy_from_slice(data)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permit2_token_and_solidity_errors_are_named() {
        let expired = SignatureExpired { signatureDeadline: U256::from(1_700_000_000u64) }.abi_encode();
        assert_eq!(Revert::decode(&expired), Revert::SignatureExpired { deadline: U256::from(1_700_000_000u64) });
        assert!(Revert::decode(&expired).to_string().starts_with("SignatureExpired(1700000000)"));
        assert_eq!(Revert::decode(&InvalidNonce {}.abi_encode()), Revert::InvalidNonce);
        let short = ERC20InsufficientBalance { sender: Address::ZERO, balance: U256::from(1), needed: U256::from(5) };
        assert_eq!(
            Revert::decode(&short.abi_encode()).to_string(),
            "ERC20InsufficientBalance: the payer holds 1 token units, the transfer needs 5"
        );
        let message = alloy_sol_types::Revert::from("TRANSFER_FROM_FAILED").abi_encode();
        assert_eq!(Revert::decode(&message), Revert::Message("TRANSFER_FROM_FAILED".into()));
        assert_eq!(Revert::decode(&[]), Revert::Empty);
        // Truncated or unknown data is named, never a panic.
        assert!(matches!(Revert::decode(&expired[..10]), Revert::Unknown(_)));
        assert!(matches!(Revert::decode(&[1, 2]), Revert::Unknown(_)));
        assert!(matches!(Revert::decode(&[1, 2, 3, 4]), Revert::Unknown(_)));
    }
}
