//! The dev accounts: keys derived from the well-known test mnemonic, so every
//! tool's default keys (Hardhat, Anvil, Foundry, ethers) work unchanged.

use std::sync::OnceLock;

use alloy_primitives::Address;
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};

/// The mnemonic every Ethereum dev tool uses.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// The parent path of the dev keys; key `i` is `m/44'/60'/0'/0/i`.
const DERIVATION_PATH: &str = "m/44'/60'/0'/0/0";

/// A funded account whose key the devnet holds.
#[derive(Debug, Clone)]
pub struct DevAccount {
    /// The account's address.
    pub address: Address,
    /// The signer holding its private key.
    pub signer: PrivateKeySigner,
}

/// The first `count` dev accounts (`m/44'/60'/0'/0/0` onwards).
pub fn dev_accounts(count: usize) -> Vec<DevAccount> {
    // Deriving the seed runs PBKDF2 with 2048 rounds: do it once per process.
    static PARENT: OnceLock<Option<alloy_signer_local::MnemonicKey>> = OnceLock::new();
    let parent = PARENT.get_or_init(|| {
        MnemonicBuilder::<English>::default()
            .phrase(DEV_MNEMONIC)
            .derivation_path(DERIVATION_PATH)
            .and_then(|b| b.build_parent_key())
            .ok()
    });
    let Some(parent) = parent else { return Vec::new() };
    (0..count)
        .filter_map(|i| u32::try_from(i).ok())
        .filter_map(|i| parent.child(i).ok())
        .map(|key| {
            let signer = key.signer();
            DevAccount { address: signer.address(), signer }
        })
        .collect()
}
