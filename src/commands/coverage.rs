//! `nml coverage`'s reports: the hits the test runner counted
//! (`nml_runtime::testing::Coverage`), turned into the lines, statements,
//! branches and functions of the project's sources
//! (`nml_compiler::coverage::CoverageMap`), and written as Foundry writes
//! them: a summary table, or LCOV for CI services and editors.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use nml_compiler::coverage::{CoverageMap, ItemKind};
use nml_runtime::testing::Coverage;

/// The reports `nml coverage --report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Report {
    /// A table on stdout: per file, the share of lines, statements,
    /// branches and functions the tests reached.
    Summary,
    /// An LCOV tracefile (`--report-file`, default `lcov.info`).
    Lcov,
}

/// Every item's count, once the runs' hits are in.
#[derive(Debug)]
pub struct Tally<'a> {
    map: &'a CoverageMap,
    counts: Vec<u64>,
}

impl<'a> Tally<'a> {
    /// Adds up what `coverage` counted, code by code. Codes that are none
    /// of the project's contracts (tests, the standard library) count for
    /// nothing.
    pub fn new(map: &'a CoverageMap, coverage: &Coverage) -> Self {
        let mut counts = map.zero();
        for code in coverage.codes() {
            map.add(&mut counts, &code.code, &code.hits);
        }
        Self { map, counts: map.resolve(&counts) }
    }

    /// Each item of `file` with its count, in source order.
    fn items(&self, file: usize) -> impl Iterator<Item = (&'a nml_compiler::coverage::Item, u64)> + '_ {
        let span = self.map.span(file);
        self.map.items()[span.clone()].iter().zip(&self.counts[span]).map(|(i, c)| (i, *c))
    }

    /// Line → its count: the most of the statements that start on it.
    fn lines(&self, file: usize) -> BTreeMap<usize, u64> {
        let mut lines: BTreeMap<usize, u64> = BTreeMap::new();
        for (item, count) in self.items(file).filter(|(i, _)| i.kind == ItemKind::Statement) {
            let line = lines.entry(item.line).or_default();
            *line = (*line).max(count);
        }
        lines
    }
}

/// Reached and total, as the summary shows them.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Ratio {
    hit: usize,
    total: usize,
}

impl Ratio {
    fn of(counts: impl Iterator<Item = u64>) -> Self {
        counts.fold(Self::default(), |r, c| Self { hit: r.hit + usize::from(c > 0), total: r.total + 1 })
    }

    fn add(self, other: Self) -> Self {
        Self { hit: self.hit + other.hit, total: self.total + other.total }
    }
}

impl std::fmt::Display for Ratio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Nothing to reach is all of it reached, as Foundry shows it.
        let percent = if self.total == 0 { 100.0 } else { self.hit as f64 * 100.0 / self.total as f64 };
        write!(f, "{percent:.2}% ({}/{})", self.hit, self.total)
    }
}

/// Per covered file, its lines, statements, branches and functions reached.
fn ratios(tally: &Tally<'_>) -> Vec<(String, [Ratio; 4])> {
    let mut rows = Vec::new();
    for (file, covered) in tally.map.files().iter().enumerate() {
        let items: Vec<_> = tally.items(file).collect();
        let of = |want: fn(&ItemKind) -> bool| Ratio::of(items.iter().filter(|(i, _)| want(&i.kind)).map(|(_, c)| *c));
        let ratios = [
            Ratio::of(tally.lines(file).into_values()),
            of(|k| *k == ItemKind::Statement),
            of(|k| matches!(k, ItemKind::Branch { .. })),
            of(|k| matches!(k, ItemKind::Function(_))),
        ];
        rows.push((covered.unit.clone(), ratios));
    }
    rows
}

/// The summary table: a row per covered file and a total.
pub fn summary(tally: &Tally<'_>) -> String {
    let mut rows: Vec<[String; 5]> = Vec::new();
    let mut total = [Ratio::default(); 4];
    for (unit, ratios) in ratios(tally) {
        for (total, ratio) in total.iter_mut().zip(ratios) {
            *total = total.add(ratio);
        }
        rows.push([unit, ratios[0].to_string(), ratios[1].to_string(), ratios[2].to_string(), ratios[3].to_string()]);
    }
    rows.push([
        "Total".to_owned(),
        total[0].to_string(),
        total[1].to_string(),
        total[2].to_string(),
        total[3].to_string(),
    ]);
    let header = ["File", "% Lines", "% Statements", "% Branches", "% Funcs"].map(str::to_owned);
    let widths: Vec<usize> =
        (0..5).map(|c| rows.iter().chain([&header]).map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let line = |row: &[String; 5]| {
        let cells: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!(" {cell:<w$} ")).collect();
        format!("|{}|\n", cells.join("|"))
    };
    let rule = format!("|{}|\n", widths.iter().map(|w| "-".repeat(w + 2)).collect::<Vec<_>>().join("|"));
    let mut out = line(&header);
    out.push_str(&rule);
    for row in &rows {
        out.push_str(&line(row));
    }
    out
}

/// The summary as one JSON line (`--json`): `{"coverage": [{"file",
/// "lines", "statements", "branches", "functions"}, …]}`, each figure
/// `{"hit", "total"}`.
pub fn summary_json(tally: &Tally<'_>) -> String {
    let files: Vec<serde_json::Value> = ratios(tally)
        .into_iter()
        .map(|(file, [lines, statements, branches, functions])| {
            let figure = |r: Ratio| serde_json::json!({ "hit": r.hit, "total": r.total });
            serde_json::json!({
                "file": file, "lines": figure(lines), "statements": figure(statements),
                "branches": figure(branches), "functions": figure(functions),
            })
        })
        .collect();
    format!("{}\n", serde_json::json!({ "coverage": files }))
}

/// An LCOV tracefile: a record per covered file, with its functions
/// (`FN`, `FNDA`), branches (`BRDA`) and lines (`DA`).
pub fn lcov(tally: &Tally<'_>) -> String {
    let mut out = String::new();
    for (file, covered) in tally.map.files().iter().enumerate() {
        let _ = writeln!(out, "TN:\nSF:{}", covered.unit);
        let functions: Vec<_> = tally
            .items(file)
            .filter_map(|(item, count)| match &item.kind {
                ItemKind::Function(name) => Some((item.line, name.as_str(), count)),
                _ => None,
            })
            .collect();
        for (line, name, _) in &functions {
            let _ = writeln!(out, "FN:{line},{name}");
        }
        for (_, name, count) in &functions {
            let _ = writeln!(out, "FNDA:{count},{name}");
        }
        let _ = writeln!(out, "FNF:{}\nFNH:{}", functions.len(), functions.iter().filter(|f| f.2 > 0).count());
        let branches: Vec<_> = tally
            .items(file)
            .filter_map(|(item, count)| match item.kind {
                ItemKind::Branch { group, path } => Some((item.line, group, path, count)),
                _ => None,
            })
            .collect();
        for (line, group, path, count) in &branches {
            let _ = writeln!(out, "BRDA:{line},{group},{path},{count}");
        }
        let _ = writeln!(out, "BRF:{}\nBRH:{}", branches.len(), branches.iter().filter(|b| b.3 > 0).count());
        let lines = tally.lines(file);
        for (line, count) in &lines {
            let _ = writeln!(out, "DA:{line},{count}");
        }
        let _ = writeln!(out, "LF:{}\nLH:{}\nend_of_record", lines.len(), lines.values().filter(|c| **c > 0).count());
    }
    out
}
