//! The dev accounts: keys derived from the well-known test mnemonic, so every
//! tool's default keys (Hardhat, Anvil, Foundry, ethers) work unchanged.

use std::sync::OnceLock;

use alloy_primitives::Address;
use alloy_signer_local::{MnemonicBuilder, PrivateKeySigner, coins_bip39::English};

/// The mnemonic every Ethereum dev tool uses.
pub const DEV_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// The parent path of the dev keys; key `i` is `m/44'/60'/0'/0/i`.
const DERIVATION_PATH: &str = "m/44'/60'/0'/0/0";

/// The key of one of the devnet's own accounts (the settlement relay, the
/// workflow scheduler): `keccak256(label ‖ seed)`, re-hashed until it is a
/// valid secp256k1 scalar (astronomically likely at once). The same label
/// and seed give the same account on every machine.
pub fn derived_signer(label: &str, seed: u64) -> PrivateKeySigner {
    let mut material = label.as_bytes().to_vec();
    material.extend_from_slice(&seed.to_be_bytes());
    let mut key = alloy_primitives::keccak256(material);
    while PrivateKeySigner::from_bytes(&key).is_err() {
        key = alloy_primitives::keccak256(key);
    }
    PrivateKeySigner::from_bytes(&key).expect("a valid key")
}

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
