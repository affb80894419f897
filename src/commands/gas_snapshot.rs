//! Gas snapshots of `nml test`: `--snapshot` writes each passing test's gas
//! to `.gas-snapshot` in the project (Foundry's file and line format), and
//! `--snapshot-check` compares a run with it, so that CI fails when a change
//! costs gas nobody meant to spend.
//!
//! A line is `Contract:signature (figures)`: `(gas: N)` for a unit test,
//! `(runs: R, μ: M, ~: N)` for a fuzz test (the mean and the median of its
//! runs; the median is compared), `(runs: R,
//! calls: C, reverts: V)` for an invariant test (no gas of its own). Lines
//! are sorted; a run with filters or a shard rewrites the lines of the tests
//! it ran and keeps the others.

use std::collections::BTreeMap;
use std::fmt;

use nml_runtime::testing::TestResult;

/// The snapshot's file name, in the project's root.
pub(super) const FILE: &str = ".gas-snapshot";

/// One test's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// `Contract:signature`.
    pub(super) key: String,
    /// What the parentheses hold.
    pub(super) figures: String,
    /// The gas compared (`None` for an invariant test).
    pub(super) gas: Option<u64>,
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.key, self.figures)
    }
}

/// Why a snapshot cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("{FILE} line {line}: `{text}` is not `Contract:test() (figures)`")]
pub(super) struct SnapshotError {
    line: usize,
    text: String,
}

/// The lines of the passing tests of a run.
pub(super) fn entries(results: &[TestResult]) -> Vec<Entry> {
    results
        .iter()
        .filter(|r| r.passed())
        .map(|r| {
            let key = format!("{}:{}", r.contract, r.signature);
            match (&r.fuzz, &r.invariant) {
                (_, Some(i)) => Entry {
                    key,
                    figures: format!("runs: {}, calls: {}, reverts: {}", i.runs, i.calls, i.reverts),
                    gas: None,
                },
                (Some(fuzz), None) => Entry {
                    key,
                    figures: format!("runs: {}, μ: {}, ~: {}", fuzz.runs, fuzz.mean_gas, r.gas),
                    gas: Some(r.gas),
                },
                (None, None) => Entry { key, figures: format!("gas: {}", r.gas), gas: Some(r.gas) },
            }
        })
        .collect()
}

/// Reads a snapshot's text.
pub(super) fn parse(text: &str) -> Result<BTreeMap<String, Entry>, SnapshotError> {
    let mut entries = BTreeMap::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let bad = || SnapshotError { line: i + 1, text: line.to_owned() };
        let (key, rest) = line.rsplit_once(" (").ok_or_else(bad)?;
        let figures = rest.strip_suffix(')').ok_or_else(bad)?;
        if !key.contains(':') {
            return Err(bad());
        }
        let gas = figures
            .split(", ")
            .find_map(|f| f.strip_prefix("~: ").or_else(|| f.strip_prefix("gas: ")))
            .map(|n| n.parse::<u64>().map_err(|_| bad()))
            .transpose()?;
        entries.insert(key.to_owned(), Entry { key: key.to_owned(), figures: figures.to_owned(), gas });
    }
    Ok(entries)
}

/// The snapshot after a run: `old`'s lines, those of the tests in `new`
/// replaced, sorted.
pub(super) fn merged(mut old: BTreeMap<String, Entry>, new: Vec<Entry>) -> String {
    for entry in new {
        old.insert(entry.key.clone(), entry);
    }
    old.values().map(|e| format!("{e}\n")).collect()
}

/// A way a run differs from the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Difference {
    /// The gas changed by more than the tolerance.
    Changed {
        /// `Contract:signature`.
        key: String,
        /// The snapshot's gas.
        was: u64,
        /// The run's.
        now: u64,
    },
    /// The test is not in the snapshot.
    New {
        /// `Contract:signature`.
        key: String,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Changed { key, was, now } => {
                let change = (*now as f64 - *was as f64) / (*was).max(1) as f64 * 100.0;
                write!(f, "{key}: gas {was} → {now} ({change:+.2}%)")
            }
            Self::New { key } => write!(f, "{key}: not in {FILE} (run `nml test --snapshot`)"),
        }
    }
}

/// How the run's `new` lines differ from the snapshot `old`, beyond
/// `tolerance` percent of the snapshot's gas. Tests the run did not run
/// (filters, shards) are not compared.
pub(super) fn differences(old: &BTreeMap<String, Entry>, new: &[Entry], tolerance: f64) -> Vec<Difference> {
    new.iter()
        .filter_map(|entry| match old.get(&entry.key) {
            None => Some(Difference::New { key: entry.key.clone() }),
            Some(before) => match (before.gas, entry.gas) {
                (Some(was), Some(now)) if (now as f64 - was as f64).abs() > was as f64 * tolerance / 100.0 => {
                    Some(Difference::Changed { key: entry.key.clone(), was, now })
                }
                _ => None,
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: &str, figures: &str, gas: Option<u64>) -> Entry {
        Entry { key: key.to_owned(), figures: figures.to_owned(), gas }
    }

    #[test]
    fn a_snapshot_reads_back_what_it_wrote_and_keeps_the_lines_of_tests_not_run() {
        let old = parse("B:testB() (gas: 100)\nA:testFuzz(uint256) (runs: 256, ~: 2000)\n\nC:invariant_x() (runs: 1, calls: 15, reverts: 0)\n").unwrap();
        assert_eq!(old["A:testFuzz(uint256)"].gas, Some(2000));
        assert_eq!(old["C:invariant_x()"].gas, None);
        let text =
            merged(old, vec![entry("B:testB()", "gas: 120", Some(120)), entry("A:testNew()", "gas: 5", Some(5))]);
        assert_eq!(
            text,
            "A:testFuzz(uint256) (runs: 256, ~: 2000)\nA:testNew() (gas: 5)\nB:testB() (gas: 120)\nC:invariant_x() (runs: 1, calls: 15, reverts: 0)\n"
        );
        assert_eq!(parse(&text).unwrap().len(), 4);
    }

    #[test]
    fn a_check_reports_gas_beyond_the_tolerance_and_new_tests() {
        let old = parse("A:testA() (gas: 1000)\nA:testB() (gas: 1000)\n").unwrap();
        let new = [
            entry("A:testA()", "gas: 1010", Some(1010)),
            entry("A:testB()", "gas: 1100", Some(1100)),
            entry("A:testC()", "gas: 1", Some(1)),
        ];
        let found = differences(&old, &new, 5.0);
        assert_eq!(
            found,
            [
                Difference::Changed { key: "A:testB()".into(), was: 1000, now: 1100 },
                Difference::New { key: "A:testC()".into() }
            ]
        );
        assert_eq!(found[0].to_string(), "A:testB(): gas 1000 → 1100 (+10.00%)");
        assert_eq!(differences(&old, &new, 0.0).len(), 3);
    }

    #[test]
    fn a_malformed_line_is_named() {
        let e = parse("A:testA() (gas: 1)\nnonsense\n").unwrap_err();
        assert_eq!(e.to_string(), ".gas-snapshot line 2: `nonsense` is not `Contract:test() (figures)`");
        assert!(parse("A:testA() (gas: lots)").is_err());
    }
}
