//! The chain's bounds: the clock and the base fee stay in range whatever
//! requests and headers ask of them.

use super::*;

fn chain() -> Chain {
    Chain::genesis(ChainConfig { genesis_timestamp: Some(1_000), ..ChainConfig::default() })
}

/// Appends an empty block that claims to have used `gas_used` gas.
fn append_using(chain: &mut Chain, gas_used: u64) {
    let next = chain.pending_block();
    let receipt = TxReceipt {
        success: true,
        gas_used,
        cumulative_gas_used: gas_used,
        logs: Vec::new(),
        logs_bloom: Bloom::default(),
        contract_address: None,
        effective_gas_price: 0,
        output: Bytes::new(),
        halt_reason: None,
        inference: Vec::new(),
    };
    chain.append(&next, BlockBody::new(Vec::new(), vec![receipt]), EvmState::default());
}

#[test]
fn increase_time_past_2_53_is_refused_and_changes_nothing() {
    let mut chain = chain();
    assert_eq!(chain.increase_time(3_600), Ok(3_600));
    let refused = chain.increase_time(i64::MAX);
    assert!(matches!(refused, Err(ChainError::TimestampTooHigh(t)) if t > MAX_RESERVED), "{refused:?}");
    let to_the_bound = i64::try_from(MAX_RESERVED - now()).unwrap();
    assert!(matches!(chain.increase_time(to_the_bound), Err(ChainError::TimestampTooHigh(_))));
    assert_eq!(chain.clock.offset, 3_600);
    // Up to the bound is taken, and the blocks after it stay within it.
    let offset = chain.increase_time(to_the_bound - 3_600 - 10).unwrap();
    assert!(now().saturating_add_signed(offset) <= MAX_RESERVED);
    for _ in 0..3 {
        append_using(&mut chain, 0);
        assert!(chain.head().header.timestamp <= MAX_RESERVED);
    }
    // A step back stops where the clock would read before 1970.
    assert_eq!(chain.increase_time(i64::MIN), Ok(-i64::try_from(MAX_RESERVED).unwrap()));
    assert_eq!(chain.increase_time(0), Ok(-i64::try_from(MAX_RESERVED).unwrap()));
}

#[test]
fn the_pending_block_never_overflows_and_the_clock_reads_at_most_2_53_minus_1() {
    // An offset as far as the old saturating sum left it.
    let mut chain = chain();
    chain.clock.offset = i64::MAX;
    assert_eq!(chain.pending_block().timestamp, MAX_RESERVED);
    // A head at the end of time (what a crafted dump held).
    let at_the_end = NextBlock { timestamp: u64::MAX, number: MAX_RESERVED, ..chain.pending_block() };
    let header = empty_header(&at_the_end, EMPTY_ROOT_HASH);
    let blocks = vec![SealedBlock::seal(header, Vec::new(), Vec::new())];
    let chain =
        Chain::from_parts(ChainConfig::default(), StateDb::default(), blocks, Vec::new(), Clock::default(), None);
    let pending = chain.pending_block();
    assert_eq!((pending.timestamp, pending.number), (u64::MAX, MAX_RESERVED + 1));
}

#[test]
fn full_blocks_raise_the_base_fee_to_its_ceiling_without_overflow() {
    let mut chain = chain();
    let gas_limit = chain.config().gas_limit;
    for _ in 0..250 {
        append_using(&mut chain, gas_limit);
    }
    assert_eq!(chain.next_base_fee(), MAX_BASE_FEE);
    assert_eq!(chain.head().header.base_fee_per_gas, Some(MAX_BASE_FEE));
    // Empty blocks bring it down again.
    append_using(&mut chain, 0);
    assert_eq!(chain.next_base_fee(), MAX_BASE_FEE - MAX_BASE_FEE / 8);
}

#[test]
fn a_fixed_base_fee_stays_whatever_the_blocks_use() {
    let mut chain = Chain::genesis(ChainConfig { base_fee: 0, fixed_base_fee: true, ..ChainConfig::default() });
    let gas_limit = chain.config().gas_limit;
    for _ in 0..3 {
        append_using(&mut chain, gas_limit);
        assert_eq!(chain.next_base_fee(), 0);
        assert_eq!(chain.head().header.base_fee_per_gas, Some(0));
    }
    // Without it, one full block raises a zero base fee.
    let mut chain = Chain::genesis(ChainConfig { base_fee: 0, ..ChainConfig::default() });
    append_using(&mut chain, gas_limit);
    assert_eq!(chain.next_base_fee(), 1);
}

#[test]
fn a_genesis_base_fee_over_the_ceiling_is_the_ceiling() {
    let chain = Chain::genesis(ChainConfig { base_fee: u64::MAX, ..ChainConfig::default() });
    assert_eq!(chain.head().header.base_fee_per_gas, Some(MAX_BASE_FEE));
    assert_eq!(chain.next_base_fee(), MAX_BASE_FEE - MAX_BASE_FEE / 8);
}

#[test]
fn partition_point_over_a_persistent_vector_matches_the_slices() {
    for len in 0..70u64 {
        let items: Vec<u64> = (0..len).map(|i| i * 3).collect();
        let vector: Vector<u64> = items.iter().copied().collect();
        for bound in 0..=len * 3 + 1 {
            assert_eq!(partition_point(&vector, |x| *x < bound), items.partition_point(|x| *x < bound));
            assert_eq!(partition_point(&vector, |x| *x <= bound), items.partition_point(|x| *x <= bound));
        }
    }
}

#[test]
fn a_copy_of_the_chain_keeps_its_blocks_while_the_original_grows() {
    let mut chain = chain();
    let copy = chain.clone();
    for _ in 0..100 {
        append_using(&mut chain, 0);
    }
    chain.reserve(1_000, None).expect("a reservation");
    assert_eq!((copy.head_number(), chain.head_number()), (0, 1_100));
    assert!(copy.block(1).is_none() && copy.view_at(1).is_err());
    // Older states stay readable on the original through its undo records.
    assert_eq!(chain.built_count(0, 1_100), 101);
    assert!(chain.view_at(50).is_ok() && chain.block(1_050).is_some());
    let hash = chain.block(100).expect("block 100").hash;
    assert!(copy.block_by_hash(&hash).is_none() && chain.block_by_hash(&hash).is_some());
}

#[test]
fn blockhash_reads_the_256_blocks_before_the_next_one_while_the_chain_grows() {
    use revm::DatabaseRef;
    let mut chain = chain();
    let mut held = chain.latest();
    for n in 1..=300u64 {
        append_using(&mut chain, 0);
        if n == 100 {
            // A view taken now keeps block 100's window, however the chain grows.
            held = chain.latest();
        }
        let view = chain.latest();
        let oldest = (n + 1).saturating_sub(256);
        for m in [oldest, oldest + 1, n - 1, n] {
            assert_eq!(view.block_hash_ref(m).unwrap(), chain.block_hash(m).unwrap(), "block {m} after {n}");
        }
        if oldest > 0 {
            assert_eq!(view.block_hash_ref(oldest - 1).unwrap(), B256::ZERO);
        }
        assert_eq!(view.block_hash_ref(n + 1).unwrap(), B256::ZERO);
    }
    assert_eq!(held.block_hash_ref(100).unwrap(), chain.block_hash(100).unwrap());
    assert_eq!(held.block_hash_ref(101).unwrap(), B256::ZERO);
}
