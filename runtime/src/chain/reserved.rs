//! Reserved ranges: runs of empty blocks that are appended in constant time
//! and built only when read, so that `anvil_mine 0xffffffffffff` answers at
//! once (what Hardhat does).
//!
//! A range is the header its first block has (the template), a count and an
//! interval. Block `first + i` is the template with number `first + i`,
//! timestamp `template.timestamp + i * interval`, the base fee the
//! template's falls to after `i` empty blocks (EIP-1559, exactly as mining
//! them one by one would give: it falls by an eighth a block until it stops
//! at 7 wei, so at most a few hundred steps are ever computed), the parent
//! hash of the block before it, and `mixHash` = keccak256 of that parent hash
//! (as a built block's `prevrandao`). Its state is the state at the range's
//! start: empty blocks change nothing.
//!
//! A real hash chain over 2^48 blocks cannot be computed, so the hash of a
//! reserved block is synthetic (`docs/rpc.md`, "Reserved blocks"): the first
//! 24 bytes of `keccak256(TAG ‖ seed ‖ number)` followed by the number as 8
//! big-endian bytes, where `seed = keccak256(rlp(template) ‖ interval)`.
//! The headers' `parentHash` links hold; a reserved block's hash is not the
//! keccak256 of its header. The number in the last bytes locates the block
//! of any such hash without an index, so nothing is stored per block read.

use std::sync::Arc;

use alloy_consensus::Header;
use alloy_primitives::{B256, Keccak256, keccak256};

use super::fee::next_base_fee;
use super::{ChainError, SealedBlock};

/// The domain tag of reserved block hashes.
const TAG: &[u8] = b"nml-devnet reserved block";

/// The highest block number and timestamp a reservation may reach: 2^53 - 1,
/// the largest integer JavaScript clients (ethers, viem) read exactly.
pub const MAX_RESERVED: u64 = (1 << 53) - 1;

/// Checks that `count` empty blocks after block `parent_number`, the first
/// at `first_timestamp` (`None`: past `u64`) and the others `interval`
/// seconds apart, keep their numbers and timestamps within [`MAX_RESERVED`].
pub(super) fn check_reservation(
    parent_number: u64,
    first_timestamp: Option<u64>,
    count: u64,
    interval: u64,
) -> Result<(), ChainError> {
    // Nothing reserved: no number or timestamp moves, whatever the interval.
    if count == 0 {
        return Ok(());
    }
    let last_number = parent_number.checked_add(count);
    let last_timestamp = count
        .saturating_sub(1)
        .checked_mul(interval)
        .and_then(|span| first_timestamp.and_then(|first| first.checked_add(span)));
    let beyond = |value: Option<u64>| value.is_none_or(|v| v > MAX_RESERVED);
    if beyond(last_number) {
        return Err(ChainError::ReservationTooLarge { count, what: "block number" });
    }
    if beyond(last_timestamp) {
        return Err(ChainError::ReservationTooLarge { count, what: "timestamp" });
    }
    Ok(())
}

/// A run of empty blocks that exist without having been built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ReservedRange {
    template: Header,
    count: u64,
    interval: u64,
    seed: B256,
    /// The last block, built once: it is the head while nothing follows.
    last: Arc<SealedBlock>,
}

impl ReservedRange {
    /// `count` (at least one) blocks whose first has the header `template`,
    /// `interval` seconds apart. The caller has checked the range with
    /// [`check_reservation`].
    pub(super) fn new(template: Header, count: u64, interval: u64) -> Self {
        let mut seed = Keccak256::new();
        seed.update(alloy_rlp::encode(&template));
        seed.update(interval.to_be_bytes());
        let seed = seed.finalize();
        let count = count.max(1);
        let last = Arc::new(build(&template, &seed, interval, template.number + (count - 1)));
        Self { template, count, interval, seed, last }
    }

    /// The header of the first block.
    pub(super) fn template(&self) -> &Header {
        &self.template
    }

    /// How many blocks the range holds.
    pub(super) fn count(&self) -> u64 {
        self.count
    }

    /// Seconds between two blocks of the range.
    pub(super) fn interval(&self) -> u64 {
        self.interval
    }

    /// The number of the first block.
    pub(super) fn first_number(&self) -> u64 {
        self.template.number
    }

    /// The number of the last block.
    pub(super) fn last_number(&self) -> u64 {
        self.template.number + (self.count - 1)
    }

    /// Whether block `number` is in the range.
    pub(super) fn contains(&self, number: u64) -> bool {
        (self.first_number()..=self.last_number()).contains(&number)
    }

    /// The last block.
    pub(super) fn last(&self) -> &Arc<SealedBlock> {
        &self.last
    }

    /// The hash of block `number` (in the range).
    pub(super) fn hash(&self, number: u64) -> B256 {
        hash(&self.seed, number)
    }

    /// The block number a reserved block hash names (its last 8 bytes); the
    /// hash is one only if the range holding that number gives it.
    pub(super) fn number_in(hash: &B256) -> u64 {
        let mut number = [0u8; 8];
        number.copy_from_slice(&hash[24..]);
        u64::from_be_bytes(number)
    }

    /// Block `number` (in the range).
    pub(super) fn block(&self, number: u64) -> Arc<SealedBlock> {
        if number == self.last_number() {
            self.last.clone()
        } else {
            Arc::new(build(&self.template, &self.seed, self.interval, number))
        }
    }
}

fn hash(seed: &B256, number: u64) -> B256 {
    let mut hasher = Keccak256::new();
    hasher.update(TAG);
    hasher.update(seed);
    hasher.update(number.to_be_bytes());
    let mut hash = hasher.finalize();
    hash[24..].copy_from_slice(&number.to_be_bytes());
    hash
}

/// Block `number` of the range whose first block has the header `template`.
fn build(template: &Header, seed: &B256, interval: u64, number: u64) -> SealedBlock {
    let offset = number - template.number;
    let parent_hash = if offset == 0 { template.parent_hash } else { hash(seed, number - 1) };
    let header = Header {
        parent_hash,
        number,
        timestamp: template.timestamp + offset * interval,
        base_fee_per_gas: template.base_fee_per_gas.map(|fee| base_fee_after(fee, template.gas_limit, offset)),
        mix_hash: keccak256(parent_hash),
        ..template.clone()
    };
    SealedBlock { hash: hash(seed, number), header, transactions: Vec::new(), receipts: Vec::new() }
}

/// The base fee `fee` falls to after `empty` empty blocks of `gas_limit`.
fn base_fee_after(mut fee: u64, gas_limit: u64, empty: u64) -> u64 {
    for _ in 0..empty {
        let next = next_base_fee(fee, 0, gas_limit);
        // A fixed point (7 wei, or a gas limit without a target) stays.
        if next == fee {
            break;
        }
        fee = next;
    }
    fee
}

#[cfg(test)]
mod tests {
    use alloy_eips::eip1559::{BaseFeeParams, calc_next_block_base_fee};

    use super::*;

    fn range(count: u64, interval: u64) -> ReservedRange {
        let template = Header {
            number: 5,
            timestamp: 1_000,
            gas_limit: 30_000_000,
            base_fee_per_gas: Some(1_000_000_000),
            parent_hash: B256::repeat_byte(7),
            ..Default::default()
        };
        ReservedRange::new(template, count, interval)
    }

    #[test]
    fn blocks_link_by_hash_and_count_time() {
        let r = range(1 << 40, 12);
        let n = 5 + (1 << 39);
        let block = r.block(n);
        assert_eq!(block.hash, r.hash(n));
        assert_eq!(block.header.parent_hash, r.block(n - 1).hash);
        assert_eq!(block.header.timestamp, 1_000 + (1 << 39) * 12);
        assert_eq!(ReservedRange::number_in(&block.hash), n);
        assert_eq!(r.block(5).header.parent_hash, B256::repeat_byte(7));
        assert_eq!(r.last().header.number, r.last_number());
        assert_ne!(range(10, 1).hash(6), range(10, 2).hash(6), "the interval is part of the seed");
    }

    #[test]
    fn base_fee_falls_as_empty_blocks_make_it_fall() {
        let r = range(1_000, 1);
        let mut fee = 1_000_000_000;
        for n in 5..400 {
            assert_eq!(r.block(n).header.base_fee_per_gas, Some(fee), "block {n}");
            fee = calc_next_block_base_fee(0, 30_000_000, fee, BaseFeeParams::ethereum());
        }
        assert_eq!(fee, 7);
        assert_eq!(r.last().header.base_fee_per_gas, Some(7));
    }

    #[test]
    fn reservations_past_the_limit_are_refused() {
        assert!(check_reservation(0, Some(1_000), MAX_RESERVED, 1).is_err(), "timestamps pass 2^53 - 1");
        assert!(check_reservation(0, Some(0), MAX_RESERVED, 0).is_ok());
        assert!(check_reservation(1, Some(0), MAX_RESERVED, 0).is_err());
        assert!(check_reservation(0, Some(1), 2, u64::MAX).is_err());
        assert!(check_reservation(0, None, 1, 1).is_err());
        assert!(check_reservation(10, Some(1_700_000_000), 0xffff_ffff_ffff, 1).is_ok());
    }
}
