//! Splitting a test suite across CI machines (`nml test --shard i/n`).
//!
//! A test belongs to the shard its name hashes to: `keccak256("Contract.test")`
//! read as a number, modulo `n`. The split is the same on every machine and
//! run, needs no coordination, and is stable under adding or removing a
//! test: no other test changes shard (a split by position would move every
//! test after it). The shards are balanced only on average, which for a
//! suite worth sharding is close enough.

use alloy_primitives::keccak256;

/// One of `count` shards: `index` counts from 1, as `--shard 1/4` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

impl Shard {
    /// Shard `index` of `count` (1-based), or why not.
    pub fn new(index: u64, count: u64) -> Result<Self, String> {
        if count == 0 || index == 0 || index > count {
            return Err(format!("shard {index}/{count}: expected i/n with 1 <= i <= n"));
        }
        Ok(Self { index, count })
    }

    /// Whether test `test` of contract `contract` runs in this shard.
    pub fn contains(&self, contract: &str, test: &str) -> bool {
        let hash = keccak256(format!("{contract}.{test}"));
        let value = u64::from_be_bytes(hash[..8].try_into().unwrap_or_default());
        value % self.count == self.index - 1
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (i, n) = s.split_once('/').ok_or_else(|| format!("shard `{s}`: expected i/n, e.g. 1/4"))?;
        let parse = |x: &str| x.trim().parse::<u64>().map_err(|_| format!("shard `{s}`: expected i/n, e.g. 1/4"));
        Self::new(parse(i)?, parse(n)?)
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("C{}", i % 7), format!("test{i}"))).collect()
    }

    #[test]
    fn every_test_is_in_exactly_one_shard() {
        let shards: Vec<Shard> = (1..=4).map(|i| Shard::new(i, 4).unwrap()).collect();
        for (contract, test) in names(500) {
            assert_eq!(shards.iter().filter(|s| s.contains(&contract, &test)).count(), 1);
        }
        let sizes: Vec<usize> =
            shards.iter().map(|s| names(500).iter().filter(|(c, t)| s.contains(c, t)).count()).collect();
        assert!(sizes.iter().all(|&n| (90..=160).contains(&n)), "{sizes:?}");
    }

    #[test]
    fn adding_a_test_moves_no_other() {
        let shard = Shard::new(2, 3).unwrap();
        let before: Vec<bool> = names(200).iter().map(|(c, t)| shard.contains(c, t)).collect();
        let after: Vec<bool> = names(201).iter().take(200).map(|(c, t)| shard.contains(c, t)).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn shards_parse_and_bad_ones_are_named() {
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard::new(1, 4).unwrap());
        assert_eq!("3/3".parse::<Shard>().unwrap().to_string(), "3/3");
        for bad in ["0/4", "5/4", "1/0", "a/b", "2"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(Shard::new(1, 1).map(|s| s.contains("C", "t")), Ok(true));
    }
}
