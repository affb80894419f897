//! Faults the devnet can inject into its enclaves, operator and relay, so a
//! contract, a test or `nml verify` can see what happens when a proof is
//! wrong, late or never comes (`--tee-fault`, `nml_setTeeFault`). Each is
//! caught by a named check of `nml verify` (docs/verification.md).

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use alloy_primitives::{B256, keccak256};
use serde::Serialize;

/// One kind of fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fault {
    /// The enclave signs a different output than the one it returned
    /// (caught by the `output` check).
    WrongOutput,
    /// Attestations carry a timestamp two hours old (caught by `timestamp`).
    StaleTimestamp,
    /// Attestations carry a timestamp ten minutes ahead (caught by `timestamp`).
    FutureTimestamp,
    /// The operator stops sending heartbeats (caught by `active` once 30
    /// minutes of chain time have passed).
    NoHeartbeat,
    /// Settlements come ten blocks later than `--settle-after`
    /// (`settlement` stays pending meanwhile).
    LateSettlement,
    /// Settlements never come (`settlement`: withheld).
    WithholdSettlement,
    /// The relay posts a root that is not the batch's (`settlement`: the
    /// proof fails against the posted root).
    WrongRoot,
}

/// Every fault, in the order `nml_getTeeFaults` lists them.
pub const ALL: [Fault; 7] = [
    Fault::WrongOutput,
    Fault::StaleTimestamp,
    Fault::FutureTimestamp,
    Fault::NoHeartbeat,
    Fault::LateSettlement,
    Fault::WithholdSettlement,
    Fault::WrongRoot,
];

/// The extra blocks of [`Fault::LateSettlement`].
pub const LATE_BY_BLOCKS: u64 = 10;
/// How far back [`Fault::StaleTimestamp`] dates an attestation.
pub const STALE_BY_SECS: u64 = 2 * 3600;
/// How far ahead [`Fault::FutureTimestamp`] dates an attestation.
pub const AHEAD_BY_SECS: u64 = 600;

/// An unknown fault name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown TEE fault `{0}` (known: wrong-output, stale-timestamp, future-timestamp, no-heartbeat, late-settlement, withhold-settlement, wrong-root)"
)]
pub struct UnknownFault(pub String);

impl FromStr for Fault {
    type Err = UnknownFault;

    fn from_str(s: &str) -> Result<Self, UnknownFault> {
        ALL.into_iter().find(|f| f.name() == s).ok_or_else(|| UnknownFault(s.to_owned()))
    }
}

impl Fault {
    /// Its name (`--tee-fault NAME`).
    pub fn name(self) -> &'static str {
        match self {
            Self::WrongOutput => "wrong-output",
            Self::StaleTimestamp => "stale-timestamp",
            Self::FutureTimestamp => "future-timestamp",
            Self::NoHeartbeat => "no-heartbeat",
            Self::LateSettlement => "late-settlement",
            Self::WithholdSettlement => "withhold-settlement",
            Self::WrongRoot => "wrong-root",
        }
    }

    fn bit(self) -> u64 {
        1 << ALL.iter().position(|f| *f == self).unwrap_or_default()
    }
}

/// The faults switched on now: shared by the enclaves (signing), the
/// operator (heartbeats) and the relay (postings), changed at run time.
#[derive(Debug, Default)]
pub struct Faults {
    on: AtomicU64,
    /// Set once any fault was ever switched on (a cheap check on the hot path).
    ever: AtomicBool,
}

impl Faults {
    /// Switches `fault` on or off.
    pub fn set(&self, fault: Fault, on: bool) {
        if on {
            self.ever.store(true, Ordering::Relaxed);
            self.on.fetch_or(fault.bit(), Ordering::Relaxed);
        } else {
            self.on.fetch_and(!fault.bit(), Ordering::Relaxed);
        }
    }

    /// Whether `fault` is on.
    pub fn is_on(&self, fault: Fault) -> bool {
        self.ever.load(Ordering::Relaxed) && self.on.load(Ordering::Relaxed) & fault.bit() != 0
    }

    /// Independent faults, starting as these are.
    pub fn fork(&self) -> Self {
        Self {
            on: AtomicU64::new(self.on.load(Ordering::Relaxed)),
            ever: AtomicBool::new(self.ever.load(Ordering::Relaxed)),
        }
    }

    /// What a faulty enclave signs in place of `output_hash` at
    /// `timestamp`: another output with [`Fault::WrongOutput`], a misdated
    /// attestation with the timestamp faults; the same values without.
    pub fn misattest(&self, output_hash: B256, timestamp: u64) -> (B256, u64) {
        let output_hash = if self.is_on(Fault::WrongOutput) { keccak256(output_hash) } else { output_hash };
        let timestamp = if self.is_on(Fault::StaleTimestamp) {
            timestamp.saturating_sub(STALE_BY_SECS)
        } else if self.is_on(Fault::FutureTimestamp) {
            timestamp.saturating_add(AHEAD_BY_SECS)
        } else {
            timestamp
        };
        (output_hash, timestamp)
    }

    /// The faults that are on.
    pub fn active(&self) -> Vec<Fault> {
        ALL.into_iter().filter(|f| self.is_on(*f)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_switch_on_and_off_by_name() {
        let faults = Faults::default();
        assert!(faults.active().is_empty());
        faults.set("wrong-root".parse().unwrap(), true);
        faults.set(Fault::NoHeartbeat, true);
        assert_eq!(faults.active(), vec![Fault::NoHeartbeat, Fault::WrongRoot]);
        faults.set(Fault::NoHeartbeat, false);
        assert!(!faults.is_on(Fault::NoHeartbeat) && faults.is_on(Fault::WrongRoot));
        assert!("bogus".parse::<Fault>().unwrap_err().to_string().contains("wrong-output"));
    }
}
