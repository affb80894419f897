//! Helpers shared by the runtime's integration tests: dev keys, signing,
//! the Counter fixture.
#![allow(dead_code, unreachable_pub)]

pub mod http;

use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy, TypedTransaction};
use alloy_eips::eip2718::Encodable2718;
use alloy_primitives::{Address, Bytes, TxKind, U256};
use alloy_signer::SignerSync;
use alloy_signer_local::PrivateKeySigner;
use nml_runtime::chain::dev_accounts;

pub const CHAIN_ID: u64 = 31337;
pub const GWEI: u128 = 1_000_000_000;

pub fn signer(i: usize) -> PrivateKeySigner {
    dev_accounts(i + 1).pop().expect("dev account").signer
}

pub fn address(i: usize) -> Address {
    signer(i).address()
}

pub fn sign(tx: impl Into<TypedTransaction>, signer: &PrivateKeySigner) -> Vec<u8> {
    let typed: TypedTransaction = tx.into();
    let signature = signer.sign_hash_sync(&typed.signature_hash()).expect("signing");
    typed.into_envelope(signature).encoded_2718()
}

pub fn transfer(nonce: u64, to: Address, value: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..Default::default()
    }
}

pub fn legacy(nonce: u64, to: Address, value: u64) -> TxLegacy {
    TxLegacy {
        chain_id: Some(CHAIN_ID),
        nonce,
        gas_price: 10 * GWEI,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(value),
        ..Default::default()
    }
}

/// The Counter contract compiled by solc (tests/clients/fixtures/Counter.json).
pub fn counter_bytecode(start: u64) -> Bytes {
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("../../../tests/clients/fixtures/Counter.json")).expect("fixture");
    let code = fixture["bytecode"].as_str().expect("bytecode");
    let mut bytes = alloy_primitives::hex::decode(code).expect("hex");
    bytes.extend_from_slice(&U256::from(start).to_be_bytes::<32>());
    bytes.into()
}

alloy_sol_types::sol! {
    contract Counter {
        event Incremented(address indexed by, uint256 newCount);
        function increment(uint256 by) external;
        function get() external view returns (uint256);
        function count() external view returns (uint256);
    }
}

pub fn deploy_tx(nonce: u64, start: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 1_000_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Create,
        input: counter_bytecode(start),
        ..Default::default()
    }
}

pub fn call_tx(nonce: u64, to: Address, input: Bytes) -> TxEip1559 {
    TxEip1559 {
        chain_id: CHAIN_ID,
        nonce,
        gas_limit: 200_000,
        max_fee_per_gas: 10 * GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(to),
        input,
        ..Default::default()
    }
}
