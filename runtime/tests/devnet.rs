//! The devnet as a library: chain semantics, validity checks, mining, pool,
//! snapshots, time, dumps, tracing, and the extension points.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alloy_consensus::{TxEip2930, TxEip4844, TxEip7702, TxLegacy, TypedTransaction};
use alloy_eips::{BlockId, BlockNumberOrTag};
use alloy_primitives::{Address, B256, Bytes, Signature, TxKind, U256, address};
use alloy_rpc_types_eth::{Filter, TransactionRequest};
use alloy_sol_types::{SolCall, SolEvent};
use common::*;
use nml_runtime::chain::{ChainConfig, ChainError};
use nml_runtime::evm::{EthereumPrecompiles, EvmContext, EvmPrecompiles, Phase, PrecompileFactory};
use nml_runtime::mempool::{PreExecution, Prepared, StageContext};
use nml_runtime::{Devnet, DevnetConfig, Mining, NodeError};

fn devnet() -> Devnet {
    Devnet::new(DevnetConfig::default()).unwrap()
}

fn manual() -> Devnet {
    Devnet::new(DevnetConfig { mining: Mining::Manual, ..Default::default() }).unwrap()
}

fn latest() -> BlockId {
    BlockId::latest()
}

fn err(result: Result<B256, NodeError>) -> String {
    result.expect_err("the transaction must be refused").to_string()
}

#[test]
fn genesis_funds_the_mnemonic_accounts() {
    let d = devnet();
    let accounts = d.accounts();
    assert_eq!(accounts.len(), 10);
    assert_eq!(accounts[0], address!("f39Fd6e51aad88F6F4ce6aB8827279cffFb92266"));
    assert_eq!(accounts[9], address!("a0Ee7A142d267C1f36714E4a8F75612F20a79720"));
    assert_eq!(
        d.balance(accounts[0], latest()).unwrap(),
        U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18))
    );
    assert_eq!(d.block_number(), 0);
    assert_eq!(d.chain_id(), 31337);
}

#[test]
fn every_supported_type_is_mined_with_a_receipt() {
    let d = devnet();
    let to = address(1);
    let h0 = d.send_raw_transaction(&sign(legacy(0, to, 1), &signer(0))).unwrap();
    let h1 = d
        .send_raw_transaction(&sign(
            TxEip2930 {
                chain_id: CHAIN_ID,
                nonce: 1,
                gas_price: 10 * GWEI,
                gas_limit: 21_000,
                to: TxKind::Call(to),
                value: U256::from(2),
                ..Default::default()
            },
            &signer(0),
        ))
        .unwrap();
    let h2 = d.send_raw_transaction(&sign(transfer(2, to, 3), &signer(0))).unwrap();
    assert_eq!(d.block_number(), 3);
    for (i, hash) in [h0, h1, h2].into_iter().enumerate() {
        let receipt = d.receipt(hash).expect("a receipt");
        assert!(receipt.status());
        assert_eq!(receipt.gas_used, 21_000);
        assert_eq!(receipt.block_number, Some(i as u64 + 1));
        assert_eq!(receipt.from, address(0));
        assert!(receipt.effective_gas_price > 0);
    }
    assert_eq!(
        d.balance(to, latest()).unwrap(),
        U256::from(10_000u64) * U256::from(10u64).pow(U256::from(18)) + U256::from(6)
    );
    // Real header hashes: each block's hash is keccak(rlp(header)) and the next block's parent.
    let b1 = d.block(BlockNumberOrTag::Number(1).into(), false).unwrap();
    let b2 = d.block(BlockNumberOrTag::Number(2).into(), false).unwrap();
    assert_eq!(b1.header.hash, b1.header.inner.hash_slow());
    assert_eq!(b2.header.inner.parent_hash, b1.header.hash);
    assert_ne!(b1.header.inner.transactions_root, b2.header.inner.transactions_root);
}

#[test]
fn blob_and_set_code_transactions_are_refused_clearly() {
    let d = devnet();
    let blob = TxEip4844 {
        chain_id: CHAIN_ID,
        gas_limit: 21_000,
        max_fee_per_gas: 10 * GWEI,
        max_fee_per_blob_gas: 1,
        blob_versioned_hashes: vec![B256::repeat_byte(1)],
        to: address(1),
        ..Default::default()
    };
    let message = err(d.send_raw_transaction(&sign(TypedTransaction::Eip4844(blob.into()), &signer(0))));
    assert!(message.contains("EIP-4844"), "{message}");
    let set_code = TxEip7702 {
        chain_id: CHAIN_ID,
        gas_limit: 50_000,
        max_fee_per_gas: 10 * GWEI,
        to: address(1),
        ..Default::default()
    };
    let message = err(d.send_raw_transaction(&sign(set_code, &signer(0))));
    assert!(message.contains("EIP-7702"), "{message}");
}

#[test]
fn validity_checks_use_geths_messages() {
    let d = devnet();
    let to = address(1);
    // Wrong chain id.
    let mut wrong_chain = transfer(0, to, 1);
    wrong_chain.chain_id = 1;
    assert_eq!(
        err(d.send_raw_transaction(&sign(wrong_chain, &signer(0)))),
        "invalid chain id for signer: have 1 want 31337"
    );
    // Nonce too low.
    d.send_raw_transaction(&sign(transfer(0, to, 1), &signer(0))).unwrap();
    assert_eq!(
        err(d.send_raw_transaction(&sign(transfer(0, to, 2), &signer(0)))),
        "nonce too low: next nonce 1, tx nonce 0"
    );
    // Insufficient funds.
    let mut rich = transfer(1, to, 0);
    rich.value = U256::from(10u64).pow(U256::from(30));
    assert!(
        err(d.send_raw_transaction(&sign(rich, &signer(0)))).starts_with("insufficient funds for gas * price + value")
    );
    // Gas above the block limit.
    let mut heavy = transfer(1, to, 1);
    heavy.gas_limit = 30_000_001;
    assert_eq!(
        err(d.send_raw_transaction(&sign(heavy, &signer(0)))),
        "exceeds block gas limit: gas 30000001, block gas limit 30000000"
    );
    // Intrinsic gas.
    let mut light = transfer(1, to, 1);
    light.gas_limit = 20_000;
    assert!(err(d.send_raw_transaction(&sign(light, &signer(0)))).starts_with("intrinsic gas too low"));
    // Fee cap below the base fee.
    let mut cheap = transfer(1, to, 1);
    cheap.max_fee_per_gas = 1;
    cheap.max_priority_fee_per_gas = 1;
    assert!(
        err(d.send_raw_transaction(&sign(cheap, &signer(0)))).starts_with("max fee per gas less than block base fee")
    );
    // Tip above the fee cap.
    let mut tip = transfer(1, to, 1);
    tip.max_priority_fee_per_gas = tip.max_fee_per_gas + 1;
    assert_eq!(
        err(d.send_raw_transaction(&sign(tip, &signer(0)))),
        "max priority fee per gas higher than max fee per gas"
    );
    // A signature that recovers to nothing.
    let typed: TypedTransaction = transfer(1, to, 1).into();
    let bogus = typed.into_envelope(Signature::new(U256::ZERO, U256::ZERO, false));
    let raw = alloy_eips::eip2718::Encodable2718::encoded_2718(&bogus);
    assert!(err(d.send_raw_transaction(&raw)).starts_with("invalid sender"));
    // Garbage.
    assert!(err(d.send_raw_transaction(&[0xde, 0xad])).starts_with("failed to decode signed transaction"));
    // The node still works.
    d.send_raw_transaction(&sign(transfer(1, to, 1), &signer(0))).unwrap();
    assert_eq!(d.block_number(), 2);
}

#[test]
fn future_nonces_wait_until_the_gap_fills() {
    let d = devnet();
    let to = address(1);
    let h2 = d.send_raw_transaction(&sign(transfer(2, to, 1), &signer(0))).unwrap();
    let h1 = d.send_raw_transaction(&sign(transfer(1, to, 1), &signer(0))).unwrap();
    assert_eq!(d.block_number(), 0);
    let content = d.pool_content();
    assert_eq!(content.queued.values().map(Vec::len).sum::<usize>(), 2);
    d.send_raw_transaction(&sign(transfer(0, to, 1), &signer(0))).unwrap();
    assert!(d.receipt(h1).is_some() && d.receipt(h2).is_some());
    assert_eq!(d.transaction_count(address(0), latest()).unwrap(), 3);
}

#[test]
fn pool_orders_by_nonce_then_fee_and_replacement_needs_a_bump() {
    let d = manual();
    let low = d.send_raw_transaction(&sign(transfer(0, address(5), 1), &signer(1))).unwrap();
    let mut rich = transfer(0, address(5), 1);
    rich.max_priority_fee_per_gas = 3 * GWEI;
    let high = d.send_raw_transaction(&sign(rich.clone(), &signer(2))).unwrap();
    let next = d.send_raw_transaction(&sign(transfer(1, address(5), 1), &signer(2))).unwrap();
    // Same fee again: underpriced. 10% more on both fees: replaces.
    let mut same = rich.clone();
    same.value = U256::from(2);
    assert_eq!(err(d.send_raw_transaction(&sign(same, &signer(2)))), "replacement transaction underpriced");
    assert_eq!(err(d.send_raw_transaction(&sign(transfer(0, address(5), 1), &signer(1)))), "already known");
    let mut bumped = transfer(0, address(5), 1);
    bumped.max_fee_per_gas = 11 * GWEI;
    bumped.max_priority_fee_per_gas = GWEI * 11 / 10;
    let replacement = d.send_raw_transaction(&sign(bumped, &signer(1))).unwrap();
    assert_eq!(d.pool_content().pending.values().map(Vec::len).sum::<usize>(), 3);
    assert_eq!(d.transaction_count(address(2), BlockNumberOrTag::Pending.into()).unwrap(), 2);

    let block = d.mine(None).unwrap();
    let order: Vec<B256> = block.transactions.iter().map(|t| t.hash).collect();
    // Across senders the higher tip goes first; within one, nonce order.
    assert_eq!(order, vec![high, replacement, next]);
    assert!(d.receipt(low).is_none());
}

#[test]
fn base_fee_follows_eip1559() {
    let d = devnet();
    let genesis = d.block(BlockNumberOrTag::Number(0).into(), false).unwrap();
    assert_eq!(genesis.header.inner.base_fee_per_gas, Some(1_000_000_000));
    d.send_raw_transaction(&sign(transfer(0, address(1), 1), &signer(0))).unwrap();
    let b1 = d.block(BlockNumberOrTag::Number(1).into(), false).unwrap();
    // An empty parent lowers the base fee by 1/8.
    assert_eq!(b1.header.inner.base_fee_per_gas, Some(875_000_000));
    let expected = b1.header.inner.next_block_base_fee(alloy_eips::eip1559::BaseFeeParams::ethereum()).unwrap();
    d.mine(None).unwrap();
    let b2 = d.block(BlockNumberOrTag::Number(2).into(), false).unwrap();
    assert_eq!(b2.header.inner.base_fee_per_gas, Some(expected));
    let history = d.fee_history(2, BlockNumberOrTag::Latest, Some(&[50.0])).unwrap();
    assert_eq!(history.oldest_block, 1);
    assert_eq!(history.base_fee_per_gas.len(), 3);
}

fn deploy(d: &Devnet) -> Address {
    let hash = d.send_raw_transaction(&sign(deploy_tx(0, 5), &signer(0))).unwrap();
    let receipt = d.receipt(hash).unwrap();
    assert!(receipt.status());
    receipt.contract_address.expect("a created contract")
}

#[test]
fn contracts_deploy_emit_logs_and_revert_with_reasons() {
    let d = devnet();
    let counter = deploy(&d);
    assert!(!d.code(counter, latest()).unwrap().is_empty());
    let input = Counter::incrementCall { by: U256::from(3) }.abi_encode();
    let hash = d.send_raw_transaction(&sign(call_tx(1, counter, input.into()), &signer(0))).unwrap();
    let receipt = d.receipt(hash).unwrap();
    assert!(receipt.status());
    let logs = receipt.inner.logs();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].topics()[0], Counter::Incremented::SIGNATURE_HASH);
    assert!(receipt.inner.logs_bloom().contains_input(alloy_primitives::BloomInput::Raw(counter.as_slice())));

    // eth_getLogs by address and by topic.
    let by_topic = d.logs(&Filter::new().from_block(0).event_signature(Counter::Incremented::SIGNATURE_HASH)).unwrap();
    assert_eq!(by_topic.len(), 1);
    assert_eq!(by_topic[0].transaction_hash, Some(hash));
    assert!(d.logs(&Filter::new().from_block(0).address(address(3))).unwrap().is_empty());

    // A view.
    let get = TransactionRequest::default().to(counter).input(Counter::getCall {}.abi_encode().into());
    let out = d.call(get.clone(), None, None).unwrap();
    assert_eq!(U256::from_be_slice(&out), U256::from(8));
    // The same view at the block before the increment (historical state).
    let out = d.call(get, Some(BlockNumberOrTag::Number(1).into()), None).unwrap();
    assert_eq!(U256::from_be_slice(&out), U256::from(5));

    // Reverts carry the reason, in eth_call, eth_estimateGas and the receipt.
    let bad = TransactionRequest::default()
        .from(address(0))
        .to(counter)
        .input(Counter::incrementCall { by: U256::ZERO }.abi_encode().into());
    match d.call(bad.clone(), None, None) {
        Err(NodeError::Reverted { message, data }) => {
            assert_eq!(message, "execution reverted: by must be positive");
            assert!(!data.is_empty());
        }
        other => panic!("expected a revert, got {other:?}"),
    }
    assert!(matches!(d.estimate_gas(bad, None, None), Err(NodeError::Reverted { .. })));
    let failed = d
        .send_raw_transaction(&sign(
            call_tx(2, counter, Counter::incrementCall { by: U256::ZERO }.abi_encode().into()),
            &signer(0),
        ))
        .unwrap();
    assert!(!d.receipt(failed).unwrap().status());
}

#[test]
fn estimate_gas_is_exact_for_transfers_and_enough_for_calls() {
    let d = devnet();
    let transfer = TransactionRequest::default().from(address(0)).to(address(1)).value(U256::from(1));
    assert_eq!(d.estimate_gas(transfer, None, None).unwrap(), 21_000);
    let counter = deploy(&d);
    let input: Bytes = Counter::incrementCall { by: U256::from(1) }.abi_encode().into();
    let req = TransactionRequest::default().from(address(0)).to(counter).input(input.clone().into());
    let gas = d.estimate_gas(req, None, None).unwrap();
    let mut tx = call_tx(1, counter, input);
    tx.gas_limit = gas;
    let hash = d.send_raw_transaction(&sign(tx, &signer(0))).unwrap();
    assert!(d.receipt(hash).unwrap().status());
}

#[test]
fn call_state_overrides_apply_only_to_the_call() {
    let d = devnet();
    let counter = deploy(&d);
    let get = TransactionRequest::default().to(counter).input(Counter::getCall {}.abi_encode().into());
    let mut overrides = alloy_rpc_types_eth::state::StateOverride::default();
    overrides.insert(
        counter,
        alloy_rpc_types_eth::state::AccountOverride {
            state_diff: Some([(B256::ZERO, B256::from(U256::from(42)))].into_iter().collect()),
            ..Default::default()
        },
    );
    let out = d.call(get.clone(), None, Some(overrides)).unwrap();
    assert_eq!(U256::from_be_slice(&out), U256::from(42));
    assert_eq!(U256::from_be_slice(&d.call(get, None, None).unwrap()), U256::from(5));
}

#[test]
fn snapshots_revert_blocks_state_and_pool() {
    let d = devnet();
    let before = d.balance(address(1), latest()).unwrap();
    let id = d.snapshot().unwrap();
    d.send_raw_transaction(&sign(transfer(0, address(1), 1000), &signer(0))).unwrap();
    assert_eq!(d.block_number(), 1);
    assert!(d.revert(id));
    assert_eq!(d.block_number(), 0);
    assert_eq!(d.balance(address(1), latest()).unwrap(), before);
    assert!(!d.revert(id), "a snapshot is consumed by reverting to it");
    // The same transaction is accepted again after the revert.
    d.send_raw_transaction(&sign(transfer(0, address(1), 1000), &signer(0))).unwrap();
    assert_eq!(d.block_number(), 1);
}

#[test]
fn snapshots_kept_at_once_are_bounded_and_a_revert_frees_them() {
    let d = devnet();
    let first = d.snapshot().unwrap();
    for _ in 1..nml_runtime::node::MAX_SNAPSHOTS {
        d.snapshot().unwrap();
    }
    let refused = d.snapshot().unwrap_err();
    assert!(matches!(refused, NodeError::LimitExceeded { limit: 1_000, .. }), "{refused}");
    assert!(d.revert(first + 1), "the second and every later one are consumed");
    d.snapshot().unwrap();
}

#[test]
fn time_controls_set_block_timestamps() {
    let d = manual();
    let t0 = d.block(BlockNumberOrTag::Latest.into(), false).unwrap().header.inner.timestamp;
    d.set_next_block_timestamp(t0 + 1_000).unwrap();
    let b = d.mine(None).unwrap();
    assert_eq!(b.header.timestamp, t0 + 1_000);
    d.increase_time(3_600).unwrap();
    let b = d.mine(None).unwrap();
    assert!(b.header.timestamp >= t0 + 4_600);
    assert!(d.set_next_block_timestamp(t0).is_err());
    // Past 2^53 - 1 (and at 2^64 - 1, where the next block's would wrap).
    for past in [(1 << 53), u64::MAX] {
        let refused = d.set_next_block_timestamp(past);
        assert!(matches!(refused, Err(NodeError::Chain(ChainError::TimestampTooHigh(t))) if t == past), "{refused:?}");
    }
    d.mine_many(3, Some(60)).unwrap();
    let last = d.block(BlockNumberOrTag::Latest.into(), false).unwrap().header.inner.timestamp;
    let prev = d.block(BlockNumberOrTag::Number(d.block_number() - 1).into(), false).unwrap().header.inner.timestamp;
    assert_eq!(last - prev, 60);
}

fn header(d: &Devnet, number: u64) -> alloy_rpc_types_eth::Header {
    d.block(BlockNumberOrTag::Number(number).into(), false).unwrap_or_else(|| panic!("block {number}")).header
}

#[test]
fn huge_mines_answer_at_once_with_consistent_blocks() {
    let d = devnet();
    let counter = deploy(&d);
    let before = d.balance(address(0), latest()).unwrap();
    let started = std::time::Instant::now();
    d.mine_many(0xffff_ffff_ffff, None).unwrap();
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let head = 1 + 0xffff_ffff_ffff;
    assert_eq!(d.block_number(), head);

    // A block in the middle: one second after its parent, linked by hash.
    let middle = 1 << 47;
    let (block, parent) = (header(&d, middle), header(&d, middle - 1));
    assert_eq!(block.inner.parent_hash, parent.hash);
    assert_eq!(block.inner.timestamp, parent.inner.timestamp + 1);
    assert_eq!(block.inner.base_fee_per_gas, Some(7), "empty blocks bring the base fee down to 7 wei");
    assert_eq!(block.inner.state_root, parent.inner.state_root);
    // Hashes a client got find their blocks.
    let by_hash = d.block(BlockId::from(block.hash), false).unwrap();
    assert_eq!(by_hash.header.inner.number, middle);
    assert_eq!(d.block(BlockId::from(block.inner.parent_hash), false).unwrap().header.inner.number, middle - 1);
    assert!(d.block(BlockId::from(B256::repeat_byte(1)), false).is_none());
    // The first reserved block follows the mined one; timestamps count on.
    let (first, mined) = (header(&d, 2), header(&d, 1));
    assert_eq!(first.inner.parent_hash, mined.hash);
    assert_eq!(header(&d, head).inner.timestamp, mined.inner.timestamp + 0xffff_ffff_ffff);
    // Every reserved block has the state the range started with.
    assert_eq!(d.balance(address(0), BlockNumberOrTag::Number(middle).into()).unwrap(), before);
    let get = TransactionRequest::default().to(counter).input(Counter::getCall {}.abi_encode().into());
    let out = d.call(get, Some(BlockNumberOrTag::Number(middle).into()), None).unwrap();
    assert_eq!(U256::from_be_slice(&out), U256::from(5));

    // A transfer after the range: its block's parent is the range's last block.
    let hash = d.send_raw_transaction(&sign(transfer(1, address(1), 1), &signer(0))).unwrap();
    let receipt = d.receipt(hash).unwrap();
    assert!(receipt.status());
    assert_eq!(receipt.block_number, Some(head + 1));
    assert_eq!(header(&d, head + 1).inner.parent_hash, header(&d, head).hash);
    // Logs and fee history over the range read only what exists.
    let input = Counter::incrementCall { by: U256::from(1) }.abi_encode();
    d.send_raw_transaction(&sign(call_tx(2, counter, input.into()), &signer(0))).unwrap();
    let logs = d.logs(&Filter::new().from_block(0).event_signature(Counter::Incremented::SIGNATURE_HASH)).unwrap();
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0].block_number, Some(head + 2));
    let history = d.fee_history(1024, BlockNumberOrTag::Number(middle), None).unwrap();
    assert_eq!(history.oldest_block, middle - 1023);
    assert!(history.base_fee_per_gas.iter().all(|fee| *fee == 7));
}

#[test]
fn reserved_blocks_cost_no_memory_and_survive_dumps_and_snapshots() {
    let d = devnet();
    let id = d.snapshot().unwrap();
    d.mine_many(1_000_000, Some(12)).unwrap();
    let dump = d.dump().unwrap().to_json();
    // A range is one entry, however many blocks it holds.
    assert!(dump.len() < 16 * 1024, "{} bytes", dump.len());
    let reloaded = Devnet::new(DevnetConfig::default()).unwrap();
    reloaded.load(nml_runtime::chain::StateDump::from_json(&dump).unwrap()).unwrap();
    assert_eq!(reloaded.block_number(), 1_000_000);
    for n in [1, 2, 500_000, 1_000_000] {
        assert_eq!(header(&reloaded, n), header(&d, n), "block {n}");
    }
    assert_eq!(header(&d, 500_001).inner.timestamp - header(&d, 500_000).inner.timestamp, 12);
    // Mining continues after the reloaded range.
    reloaded.send_raw_transaction(&sign(transfer(0, address(1), 1), &signer(0))).unwrap();
    assert_eq!(header(&reloaded, 1_000_001).inner.parent_hash, header(&d, 1_000_000).hash);
    assert!(d.revert(id));
    assert_eq!(d.block_number(), 0);
    assert!(d.block(BlockNumberOrTag::Number(2).into(), false).is_none());
}

#[test]
fn reserving_blocks_gives_what_mining_them_one_by_one_gives() {
    let config = DevnetConfig {
        chain: ChainConfig { genesis_timestamp: Some(1_700_000_000), ..Default::default() },
        mining: Mining::Manual,
        ..Default::default()
    };
    let (one_by_one, reserved) = (Devnet::new(config.clone()).unwrap(), Devnet::new(config).unwrap());
    for d in [&one_by_one, &reserved] {
        d.set_balance(address(5), U256::from(5));
        d.set_next_block_timestamp(1_800_000_000).unwrap();
    }
    one_by_one.mine(None).unwrap();
    for n in 2..=40 {
        one_by_one.set_next_block_timestamp(1_800_000_000 + (n - 1) * 5).unwrap();
        one_by_one.mine(None).unwrap();
    }
    reserved.mine_many(40, Some(5)).unwrap();
    assert_eq!(reserved.block_number(), 40);
    for n in 1..=40 {
        let (a, b) = (header(&one_by_one, n).inner, header(&reserved, n).inner);
        // Everything but the hashes (synthetic for reserved blocks).
        let unhashed =
            |h: alloy_consensus::Header| alloy_consensus::Header { parent_hash: B256::ZERO, mix_hash: B256::ZERO, ..h };
        assert_eq!(unhashed(a), unhashed(b), "block {n}");
    }
    let next = |d: &Devnet| {
        d.mine(None).unwrap();
        header(d, 41).inner
    };
    let (a, b) = (next(&one_by_one), next(&reserved));
    assert_eq!((a.base_fee_per_gas, a.state_root), (b.base_fee_per_gas, b.state_root));
}

#[test]
fn mines_past_2_pow_53_are_refused_and_change_nothing() {
    let d = devnet();
    let err = d.mine_many(1 << 53, None).unwrap_err();
    assert!(err.to_string().contains("past 9007199254740991"), "{err}");
    assert_eq!(d.block_number(), 0);
    let err = d.mine_many(3, Some(u64::MAX / 2)).unwrap_err();
    assert!(err.to_string().contains("timestamp"), "{err}");
    assert_eq!(d.block_number(), 0);
    // `evm_mine {timestamp, blocks}` refused for its count pins no timestamp.
    let pinned = d.block(BlockNumberOrTag::Latest.into(), false).unwrap().header.inner.timestamp + 1_000_000;
    let err = d.mine_many_from(1 << 53, None, Some(pinned)).unwrap_err();
    assert!(matches!(err, NodeError::Chain(ChainError::ReservationTooLarge { .. })), "{err}");
    assert_eq!(d.block_number(), 0);
    assert_ne!(d.mine(None).unwrap().header.timestamp, pinned);
}

#[test]
fn automine_off_then_on_mines_the_pool() {
    let d = devnet();
    d.set_automine(false);
    d.send_raw_transaction(&sign(transfer(0, address(1), 1), &signer(0))).unwrap();
    assert_eq!(d.block_number(), 0);
    d.set_automine(true);
    assert_eq!(d.block_number(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interval_mining_produces_blocks() {
    let d = Arc::new(
        Devnet::new(DevnetConfig { mining: Mining::Interval(Duration::from_millis(50)), ..Default::default() })
            .unwrap(),
    );
    let miner = tokio::spawn(d.clone().run_interval_miner());
    let mut waited = 0;
    while d.block_number() < 2 && waited < 200 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
    }
    assert!(d.block_number() >= 2);
    d.set_interval(None);
    miner.abort();
}

#[test]
fn dumps_round_trip_and_damaged_files_are_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let config = DevnetConfig { state_file: Some(path.clone()), ..Default::default() };
    let d = Devnet::new(config.clone()).unwrap();
    let counter = deploy(&d);
    d.send_raw_transaction(&sign(transfer(1, address(7), 12345), &signer(0))).unwrap();
    d.save_state().unwrap();
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "no temporary file is left behind");

    let reloaded = Devnet::new(config.clone()).unwrap();
    assert_eq!(reloaded.block_number(), 2);
    assert_eq!(reloaded.balance(address(7), latest()).unwrap(), d.balance(address(7), latest()).unwrap());
    assert_eq!(reloaded.code(counter, latest()).unwrap(), d.code(counter, latest()).unwrap());
    assert_eq!(
        reloaded.block(BlockNumberOrTag::Latest.into(), false).unwrap().header.hash,
        d.block(BlockNumberOrTag::Latest.into(), false).unwrap().header.hash
    );
    // Mining continues from the loaded head.
    reloaded.send_raw_transaction(&sign(transfer(2, address(7), 1), &signer(0))).unwrap();
    assert_eq!(reloaded.block_number(), 3);

    // A damaged file: a clear error, and the file is left as it was.
    std::fs::write(&path, b"{\"version\": 1, \"chainId\": ").unwrap();
    let message = Devnet::new(config.clone()).unwrap_err().to_string();
    assert!(message.contains("not a valid nml devnet state dump"), "{message}");
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"version\": 1, \"chainId\": ");

    // Another chain's dump.
    std::fs::write(&path, d.dump().unwrap().to_json()).unwrap();
    let other = DevnetConfig { chain: ChainConfig { chain_id: 5, ..Default::default() }, ..config };
    assert!(Devnet::new(other).unwrap_err().to_string().contains("chain id 31337"));
}

#[test]
fn traces_use_the_struct_logger_and_call_tracer() {
    let d = devnet();
    let counter = deploy(&d);
    let input = Counter::incrementCall { by: U256::from(1) }.abi_encode();
    let hash = d.send_raw_transaction(&sign(call_tx(1, counter, input.into()), &signer(0))).unwrap();
    let default = d.trace_transaction(hash, Default::default()).unwrap();
    let json = serde_json::to_value(&default).unwrap();
    assert!(json["structLogs"].as_array().is_some_and(|l| l.iter().any(|s| s["op"] == "SSTORE")));
    assert_eq!(json["failed"], false);
    let opts: alloy_rpc_types_trace::geth::GethDebugTracingOptions =
        serde_json::from_value(serde_json::json!({ "tracer": "callTracer" })).unwrap();
    let call = serde_json::to_value(d.trace_transaction(hash, opts).unwrap()).unwrap();
    assert_eq!(call["type"], "CALL");
    assert_eq!(call["to"].as_str().unwrap().to_lowercase(), counter.to_string().to_lowercase());
    let unsupported: alloy_rpc_types_trace::geth::GethDebugTracingOptions =
        serde_json::from_value(serde_json::json!({ "tracer": "prestateTracer" })).unwrap();
    assert!(d.trace_transaction(hash, unsupported).is_err());

    // geth's `limit` keeps the first steps.
    let limited: alloy_rpc_types_trace::geth::GethDebugTracingOptions =
        serde_json::from_value(serde_json::json!({ "limit": 5 })).unwrap();
    let json = serde_json::to_value(d.trace_transaction(hash, limited).unwrap()).unwrap();
    assert_eq!(json["structLogs"].as_array().map(Vec::len), Some(5));
}

#[test]
fn a_trace_longer_than_the_bound_is_refused_clearly() {
    let d = devnet();
    // Initcode that loops until its gas runs out: JUMPDEST, PUSH1 0, JUMP;
    // 12 gas per 3 steps, so 5M gas are about 1.25M steps.
    let spin = alloy_consensus::TxEip1559 {
        gas_limit: 5_000_000,
        input: Bytes::from_static(&[0x5b, 0x60, 0x00, 0x56]),
        ..deploy_tx(0, 0)
    };
    let hash = d.send_raw_transaction(&sign(spin, &signer(0))).unwrap();
    assert!(!d.receipt(hash).unwrap().status());
    let quiet: alloy_rpc_types_trace::geth::GethDebugTracingOptions =
        serde_json::from_value(serde_json::json!({ "disableStack": true })).unwrap();
    let message = d.trace_transaction(hash, quiet).unwrap_err().to_string();
    assert!(message.contains("trace too large") && message.contains("1000000 steps"), "{message}");
    // The call tracer records no steps: it is not bounded by them.
    let opts: alloy_rpc_types_trace::geth::GethDebugTracingOptions =
        serde_json::from_value(serde_json::json!({ "tracer": "callTracer" })).unwrap();
    assert!(d.trace_transaction(hash, opts).is_ok());
}

#[test]
fn a_trace_past_the_byte_bound_is_refused_under_the_step_bound() {
    let d = devnet();
    let opts = |json: serde_json::Value| -> alloy_rpc_types_trace::geth::GethDebugTracingOptions {
        serde_json::from_value(json).unwrap()
    };
    let steps = |hash: B256, json: serde_json::Value| -> Result<usize, String> {
        let trace = d.trace_transaction(hash, opts(json)).map_err(|e| e.to_string())?;
        let json = serde_json::to_value(trace).unwrap();
        Ok(json["structLogs"].as_array().map_or(0, Vec::len))
    };
    let bytes_refused = |message: String| message.contains("trace too large") && message.contains("268435456 bytes");
    // Initcode run until its gas runs out, far under a million steps.
    let spin = |nonce: u64, gas_limit: u64, code: &[u8]| {
        let tx = alloy_consensus::TxEip1559 { gas_limit, input: Bytes::copy_from_slice(code), ..deploy_tx(nonce, 0) };
        let hash = d.send_raw_transaction(&sign(tx, &signer(0))).unwrap();
        assert!(!d.receipt(hash).unwrap().status());
        hash
    };

    // A stack of 1,000 words (PUSH0s), then a loop (JUMPDEST, PUSH2 1000,
    // JUMP): 32 KB a step, past 256 MiB after about 8,400 of its 30,000 steps.
    let mut deep = vec![0x5f; 1000];
    deep.extend([0x5b, 0x61, 0x03, 0xe8, 0x56]);
    let deep = spin(0, 200_000, &deep);
    let message = steps(deep, serde_json::json!({})).unwrap_err();
    assert!(bytes_refused(message.clone()), "{message}");
    let without_stack = steps(deep, serde_json::json!({ "disableStack": true })).unwrap();
    assert!((20_000..1_000_000).contains(&without_stack), "{without_stack}");

    // 64 KiB of memory (PUSH2 0xffe0, MLOAD, POP), then a loop: with
    // `enableMemory`, 64 KiB a step, past the bound after about 4,100 steps.
    let wide = spin(1, 200_000, &[0x61, 0xff, 0xe0, 0x51, 0x50, 0x5b, 0x60, 0x05, 0x56]);
    let message = steps(wide, serde_json::json!({ "enableMemory": true })).unwrap_err();
    assert!(bytes_refused(message.clone()), "{message}");
    // geth's `limit` keeps the first steps, which fit; so does the trace without memory.
    assert_eq!(steps(wide, serde_json::json!({ "enableMemory": true, "limit": 50 })), Ok(50));
    let without_memory = steps(wide, serde_json::json!({})).unwrap();
    assert!((20_000..1_000_000).contains(&without_memory), "{without_memory}");

    // 1,000 storage slots loaded, then slot 0 loaded again and again: the
    // struct logger shows all 1,000 slots at each load, 64 KB a step.
    let slots = [
        0x61, 0x03, 0xe8, // PUSH2 1000: the slots left
        0x5b, 0x60, 0x01, 0x90, 0x03, // JUMPDEST; PUSH1 1, SWAP1, SUB
        0x80, 0x54, 0x50, // DUP1, SLOAD, POP
        0x80, 0x60, 0x03, 0x57, // DUP1, PUSH1 3, JUMPI: until none is left
        0x5b, 0x5f, 0x54, 0x50, 0x60, 0x0f, 0x56, // JUMPDEST; PUSH0, SLOAD, POP; PUSH1 15, JUMP
    ];
    let loads = spin(2, 3_000_000, &slots);
    let message = steps(loads, serde_json::json!({})).unwrap_err();
    assert!(bytes_refused(message.clone()), "{message}");
    let without_storage = steps(loads, serde_json::json!({ "disableStorage": true })).unwrap();
    assert!((20_000..1_000_000).contains(&without_storage), "{without_storage}");
}

#[test]
fn send_transaction_signs_for_dev_and_impersonated_accounts() {
    let d = devnet();
    let req = TransactionRequest::default().from(address(0)).to(address(1)).value(U256::from(5));
    let hash = d.send_transaction(req).unwrap();
    assert!(d.receipt(hash).unwrap().status());
    let whale = address!("00000000000000000000000000000000000000aa");
    d.set_balance(whale, U256::from(10u64).pow(U256::from(20)));
    let from_whale = TransactionRequest::default().from(whale).to(address(1)).value(U256::from(7));
    assert!(d.send_transaction(from_whale.clone()).unwrap_err().to_string().contains("unknown account"));
    d.impersonate(whale);
    let hash = d.send_transaction(from_whale).unwrap();
    let receipt = d.receipt(hash).unwrap();
    assert_eq!(receipt.from, whale);
    assert_eq!(d.transaction(hash).unwrap().0.sender, whale);
    // Signing: eth_sign recovers to the account.
    let sig = d.sign(address(0), b"hello").unwrap();
    let sig = Signature::try_from(sig.as_ref()).unwrap();
    assert_eq!(sig.recover_address_from_msg(b"hello").unwrap(), address(0));
}

#[test]
fn state_edits_are_visible_and_history_keeps_old_values() {
    let d = devnet();
    let a = address!("00000000000000000000000000000000000000bb");
    d.mine(None).unwrap();
    d.set_balance(a, U256::from(99));
    d.set_nonce(a, 7);
    d.set_code(a, Bytes::from_static(&[0x60, 0x00]));
    d.set_storage_at(a, U256::from(1), U256::from(2));
    assert_eq!(d.balance(a, latest()).unwrap(), U256::from(99));
    assert_eq!(d.transaction_count(a, latest()).unwrap(), 7);
    assert_eq!(d.code(a, latest()).unwrap().len(), 2);
    assert_eq!(d.storage_at(a, U256::from(1), latest()).unwrap(), B256::from(U256::from(2)));
    assert_eq!(d.balance(a, BlockNumberOrTag::Number(0).into()).unwrap(), U256::ZERO);
}

#[test]
fn a_nonce_edit_settles_that_senders_pending_transactions_only() {
    let d = manual();
    let (zero, one) = (signer(0).address(), signer(1).address());
    let to = address!("00000000000000000000000000000000000000cc");
    let hashes: Vec<_> = [(0, 0), (0, 1), (1, 5)]
        .into_iter()
        .map(|(who, nonce)| d.send_raw_transaction(&sign(transfer(nonce, to, 1), &signer(who))).unwrap())
        .collect();
    let listed = |d: &Devnet| {
        let content = d.pool_content();
        let hashes = |txs: &std::collections::BTreeMap<Address, Vec<_>>| {
            let mut hashes: Vec<_> =
                txs.values().flatten().map(|tx: &std::sync::Arc<nml_runtime::chain::PoolTx>| tx.hash).collect();
            hashes.sort();
            hashes
        };
        (hashes(&content.pending), hashes(&content.queued))
    };
    let sorted = |mut v: Vec<_>| {
        v.sort();
        v
    };
    assert_eq!(listed(&d), (sorted(vec![hashes[0], hashes[1]]), vec![hashes[2]]));
    // A balance edit moves no nonce; a nonce edit drops what it made stale
    // and makes what waited behind the gap pending.
    d.set_balance(one, U256::from(10u64.pow(18)));
    d.set_nonce(zero, 1);
    assert_eq!(listed(&d), (vec![hashes[1]], vec![hashes[2]]));
    d.set_nonce(one, 5);
    assert_eq!(listed(&d), (sorted(vec![hashes[1], hashes[2]]), vec![]));
    assert_eq!(d.mine(None).unwrap().transactions.len(), 2);
}

/// A precompile at 0x…F4 that returns its input reversed, and a stage that
/// records the batches it sees and drops transactions to one address.
#[derive(Debug, Default)]
struct Reverser;

#[derive(Debug)]
struct ReverserProvider {
    eth: revm::handler::EthPrecompiles,
    addresses: revm::primitives::AddressSet,
}

const F4: Address = address!("00000000000000000000000000000000000000F4");

impl revm::handler::PrecompileProvider<EvmContext> for ReverserProvider {
    type Output = revm::interpreter::InterpreterResult;
    fn set_spec(&mut self, spec: revm::primitives::hardfork::SpecId) -> bool {
        <revm::handler::EthPrecompiles as revm::handler::PrecompileProvider<EvmContext>>::set_spec(&mut self.eth, spec)
    }
    fn run(
        &mut self,
        context: &mut EvmContext,
        inputs: &revm::interpreter::CallInputs,
    ) -> Result<Option<Self::Output>, String> {
        if inputs.bytecode_address != F4 {
            return self.eth.run(context, inputs);
        }
        let mut data = inputs.input.bytes(context).to_vec();
        data.reverse();
        let mut gas = revm::interpreter::Gas::new(inputs.gas_limit);
        let _ = gas.record_regular_cost(100);
        Ok(Some(revm::interpreter::InterpreterResult::new(
            revm::interpreter::InstructionResult::Return,
            data.into(),
            gas,
        )))
    }
    fn warm_addresses(&self) -> &revm::primitives::AddressSet {
        &self.addresses
    }
}

impl PrecompileFactory for Reverser {
    fn precompiles(&self, spec: revm::primitives::hardfork::SpecId, _phase: Phase) -> EvmPrecompiles {
        let eth = revm::handler::EthPrecompiles::new(spec);
        let mut addresses = eth.warm_addresses().clone();
        addresses.insert(F4);
        Box::new(ReverserProvider { eth, addresses })
    }
}

#[derive(Debug, Default)]
struct Recorder {
    batches: Mutex<Vec<usize>>,
}

impl PreExecution for Recorder {
    fn prepare(&self, ctx: &StageContext<'_>, batch: Vec<Arc<nml_runtime::chain::PoolTx>>) -> Prepared {
        self.batches.lock().unwrap().push(batch.len());
        let simulated = ctx.simulate(&batch);
        assert!(simulated.iter().all(Result::is_ok));
        let (drop, include): (Vec<_>, Vec<_>) = batch.into_iter().partition(|tx| tx.to() == Some(address(9)));
        Prepared {
            include,
            drop: drop.into_iter().map(|tx| (tx, "refused by the stage".into())).collect(),
            ..Default::default()
        }
    }
}

#[test]
fn precompiles_and_the_pre_execution_stage_plug_in() {
    let stage = Arc::new(Recorder::default());
    let d = Devnet::with_extensions(
        DevnetConfig { mining: Mining::Manual, ..Default::default() },
        Arc::new(Reverser),
        stage.clone(),
    )
    .unwrap();
    let out =
        d.call(TransactionRequest::default().to(F4).input(Bytes::from_static(&[1, 2, 3]).into()), None, None).unwrap();
    assert_eq!(out.as_ref(), &[3, 2, 1]);
    d.send_raw_transaction(&sign(transfer(0, address(1), 1), &signer(0))).unwrap();
    let dropped = d.send_raw_transaction(&sign(transfer(0, address(9), 1), &signer(1))).unwrap();
    let block = d.mine(None).unwrap();
    assert_eq!(block.transactions.len(), 1);
    assert_eq!(*stage.batches.lock().unwrap(), vec![2]);
    assert!(d.receipt(dropped).is_none());
    assert!(d.transaction(dropped).is_none(), "a dropped transaction leaves the pool");
    // The default set is Ethereum's.
    let _ = EthereumPrecompiles;
    let _ = TxLegacy::default();
}

/// A write by one transaction survives a later transaction of the same
/// block that only reads the slot (revm re-baselines a slot's original value
/// when a later transaction touches it; the commit must not take that for
/// "unchanged").
#[test]
fn a_write_survives_a_later_read_in_the_same_block() {
    let d = manual();
    // Runtime: with calldata, sstore(0, calldataload(0)); without, sstore(1, sload(0)).
    let runtime = "36600b57600054600155005b600035600055 00".replace(' ', "");
    let initcode = format!("6013600c60003960136000f3{runtime}");
    let from = d.accounts()[0];
    let create =
        TransactionRequest::default().from(from).input(alloy_primitives::hex::decode(&initcode).unwrap().into());
    d.send_transaction(create.gas_limit(200_000)).unwrap();
    d.mine(None).unwrap();
    let contract = from.create(0);
    assert_eq!(d.code(contract, latest()).unwrap().len(), 19);
    let write = TransactionRequest::default()
        .from(from)
        .to(contract)
        .input(U256::from(42).to_be_bytes::<32>().to_vec().into())
        .gas_limit(100_000);
    let read = TransactionRequest::default().from(d.accounts()[1]).to(contract).gas_limit(100_000);
    d.send_transaction(write).unwrap();
    d.send_transaction(read).unwrap();
    let block = d.mine(None).unwrap();
    assert_eq!(block.transactions.len(), 2);
    let slot = |i: u64| U256::from_be_bytes(d.storage_at(contract, U256::from(i), latest()).unwrap().0);
    assert_eq!((slot(0), slot(1)), (U256::from(42), U256::from(42)));
}
