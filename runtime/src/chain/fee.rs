//! EIP-1559's base fee, computed so that no parent header overflows it: a
//! long run of full blocks, or a loaded dump's header, meets a ceiling
//! ([`MAX_BASE_FEE`]) instead of a `u64` overflow.

use alloy_eips::eip1559::BaseFeeParams;

/// The highest base fee, in wei: 2^60, about 1.15 ether a gas, a price no
/// one pays. A base fee that would rise past it stops there (about 200 full
/// blocks in a row from 1 gwei would pass `u64::MAX`), and a genesis base fee
/// or a dump's above it is refused or lowered to it, so that every base fee
/// a block carries leaves room in 64 bits for the EIP-1559 update (an eighth
/// more) and for a client's `2 × baseFee + tip`.
pub const MAX_BASE_FEE: u64 = 1 << 60;

/// The base fee of the block after one of base fee `base_fee` that used
/// `gas_used` of its `gas_limit` gas: EIP-1559 with Ethereum's parameters
/// (alloy's `calc_next_block_base_fee`), computed in 128 bits, and at most
/// [`MAX_BASE_FEE`]. Any three values give an answer, a gas use over the
/// limit included.
pub(crate) fn next_base_fee(base_fee: u64, gas_used: u64, gas_limit: u64) -> u64 {
    let params = BaseFeeParams::ethereum();
    let target = u128::from(gas_limit) / params.elasticity_multiplier;
    let (fee, used) = (u128::from(base_fee), u128::from(gas_used));
    let next = if target == 0 {
        // A limit without a target (under 2 gas): nothing to steer by.
        fee
    } else if used > target {
        let step = fee * (used - target) / (target * params.max_change_denominator);
        fee + step.max(1)
    } else {
        fee - fee * (target - used) / (target * params.max_change_denominator)
    };
    u64::try_from(next).unwrap_or(u64::MAX).min(MAX_BASE_FEE)
}

#[cfg(test)]
mod tests {
    use alloy_eips::eip1559::calc_next_block_base_fee;

    use super::*;

    #[test]
    fn below_the_ceiling_it_is_eip_1559s_base_fee() {
        let limits = [0, 1, 2, 3, 21_000, 30_000_000, 30_000_001, 100_000_000];
        let fees = [0, 1, 7, 8, 9, 1_000_000_000, 123_456_789_012, MAX_BASE_FEE / 2];
        for gas_limit in limits {
            for base_fee in fees {
                for gas_used in
                    [0, 1, gas_limit / 4, gas_limit / 2, gas_limit / 2 + 1, gas_limit - gas_limit / 8, gas_limit]
                {
                    assert_eq!(
                        next_base_fee(base_fee, gas_used, gas_limit),
                        calc_next_block_base_fee(gas_used, gas_limit, base_fee, BaseFeeParams::ethereum()),
                        "base fee {base_fee}, {gas_used} of {gas_limit} gas"
                    );
                }
            }
        }
    }

    #[test]
    fn full_blocks_raise_it_to_the_ceiling_and_no_header_overflows_it() {
        // 1 gwei grows past u64::MAX within 200 full blocks; it stops at the ceiling.
        let mut fee = 1_000_000_000;
        for _ in 0..400 {
            fee = next_base_fee(fee, 30_000_000, 30_000_000);
        }
        assert_eq!(fee, MAX_BASE_FEE);
        // Values no chain of ours writes (a crafted dump's header) have an answer too.
        assert_eq!(next_base_fee(u64::MAX, u64::MAX, 30_000_000), MAX_BASE_FEE);
        assert_eq!(next_base_fee(u64::MAX, 0, u64::MAX), MAX_BASE_FEE);
        assert_eq!(next_base_fee(u64::MAX, u64::MAX, u64::MAX), MAX_BASE_FEE);
        assert_eq!(next_base_fee(MAX_BASE_FEE, 0, 30_000_000), MAX_BASE_FEE - MAX_BASE_FEE / 8);
    }
}
