//! `nml coverage` through the real binary: what the tests reach, line by
//! line, branch by branch and function by function, in `.sol` and `.nml`
//! files (whose lines are the ones the user wrote, not the generated
//! Solidity's), as a summary and as LCOV; nothing under `out/` changes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const NML: &str = env!("CARGO_BIN_EXE_nml");

fn nml(dir: &Path, args: &[&str]) -> Output {
    Command::new(NML).args(args).current_dir(dir).output().expect("runs nml")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A copy of `tests/fixtures/coverage` (a bank and a counter, and tests that
/// reach some of each).
fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let fixture = repo().join("tests/fixtures/coverage");
    for sub in ["", "src", "test"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in std::fs::read_dir(fixture.join(sub)).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_file() {
                std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    dir
}

/// The LCOV records by file.
fn records(lcov: &str) -> std::collections::BTreeMap<String, Vec<String>> {
    let mut records = std::collections::BTreeMap::new();
    let mut file = String::new();
    for line in lcov.lines() {
        if let Some(name) = line.strip_prefix("SF:") {
            file = name.to_owned();
        } else if line != "TN:" && line != "end_of_record" {
            records.entry(file.clone()).or_insert_with(Vec::new).push(line.to_owned());
        }
    }
    records
}

#[test]
fn coverage_counts_lines_branches_and_functions_where_the_user_wrote_them() {
    let dir = project();
    let run = nml(dir.path(), &["coverage", "--report", "summary", "--report", "lcov"]);
    let out = text(&run);
    assert!(run.status.success(), "{out}");
    assert!(out.contains("4 passed; 0 failed"), "{out}");
    // The summary: a row per source file (not the tests, not the stdlib).
    let rows: Vec<&str> = out.lines().filter(|l| l.starts_with("| src/") || l.starts_with("| Total")).collect();
    assert_eq!(rows.len(), 4, "{out}");
    assert!(rows[0].contains("src/Bank.sol") && rows[0].contains("55.56% (5/9)"), "{out}");
    assert!(rows[0].contains("75.00% (3/4)") && rows[0].contains("66.67% (4/6)"), "{out}");
    assert!(rows[1].contains("src/Counter.nml") && rows[1].contains("66.67% (2/3)"), "{out}");
    assert!(rows[2].contains("src/Ledger.sol") && rows[2].contains("100.00% (2/2)"), "{out}");
    assert!(rows[3].contains("64.29% (9/14)"), "{out}");

    let lcov = std::fs::read_to_string(dir.path().join("lcov.info")).unwrap();
    let records = records(&lcov);
    assert_eq!(records.keys().collect::<Vec<_>>(), ["src/Bank.sol", "src/Counter.nml", "src/Ledger.sol"], "{lcov}");
    // The bank: the library function and `deposit` ran three times (one
    // test deposits once, the other twice), the constructor once (in
    // `setUp`, before each test's fork), `sweep` and its modifier never.
    // `deposit`'s `if` never held; `tier`'s `?:` went each way once. The
    // modifier's `_` is no line of its own.
    let bank = [
        "FN:5,Fees.cut",
        "FN:14,Bank.constructor",
        "FN:18,Bank.onlyOwner",
        "FN:23,Bank.deposit",
        "FN:30,Bank.tier",
        "FN:34,Bank.sweep",
        "FNDA:3,Fees.cut",
        "FNDA:1,Bank.constructor",
        "FNDA:0,Bank.onlyOwner",
        "FNDA:3,Bank.deposit",
        "FNDA:2,Bank.tier",
        "FNDA:0,Bank.sweep",
        "FNF:6",
        "FNH:4",
        "BRDA:24,0,0,0",
        "BRDA:24,0,1,3",
        "BRDA:31,1,0,1",
        "BRDA:31,1,1,1",
        "BRF:4",
        "BRH:3",
        "DA:6,3",
        "DA:15,1",
        "DA:19,0",
        "DA:24,3",
        "DA:25,0",
        "DA:27,3",
        "DA:31,2",
        "DA:35,0",
        "DA:36,0",
        "LF:9",
        "LH:5",
    ];
    assert_eq!(records["src/Bank.sol"], bank, "{lcov}");
    // The `.nml` file's lines are its own: `pragma nml` became imports in
    // the Solidity solc compiled, which moved every line.
    let counter = [
        "FN:8,Counter.bump",
        "FNDA:1,Counter.bump",
        "FNF:1",
        "FNH:1",
        "BRDA:9,0,0,0",
        "BRDA:9,0,1,1",
        "BRF:2",
        "BRH:1",
        "DA:9,1",
        "DA:10,0",
        "DA:12,1",
        "LF:3",
        "LH:2",
    ];
    assert_eq!(records["src/Counter.nml"], counter, "{lcov}");
    // A linked library's public function (its deployed code holds its own
    // address) and `receive` (entered with no instruction of its own).
    let ledger = [
        "FN:5,Tally.add",
        "FN:13,Ledger.receive",
        "FNDA:1,Tally.add",
        "FNDA:1,Ledger.receive",
        "FNF:2",
        "FNH:2",
        "BRF:0",
        "BRH:0",
        "DA:6,1",
        "DA:14,1",
        "LF:2",
        "LH:2",
    ];
    assert_eq!(records["src/Ledger.sol"], ledger, "{lcov}");
    // Coverage builds apart: `nml build`'s artifacts and cache are not
    // touched (none were there); its own cache is kept for the next run.
    assert!(!dir.path().join("out").exists() && !dir.path().join("cache/nml-build.json").exists());
    assert!(dir.path().join("cache/nml-coverage.json").is_file());

    // A filter runs fewer tests, and reaches less.
    let file = dir.path().join("bump.lcov");
    let filtered = nml(
        dir.path(),
        &["coverage", "--match-test", "testBump", "--report", "lcov", "--report-file", file.to_str().unwrap()],
    );
    assert!(filtered.status.success(), "{}", text(&filtered));
    let records = self::records(&std::fs::read_to_string(&file).unwrap());
    assert!(records["src/Bank.sol"].contains(&"FNDA:0,Bank.deposit".to_owned()));
    assert!(records["src/Bank.sol"].contains(&"FNDA:1,Bank.constructor".to_owned()));
    assert_eq!(records["src/Counter.nml"], counter);

    // A changed source is compiled again (the cache follows the sources):
    // a line added at the top moves every line down.
    let source = dir.path().join("src/Counter.nml");
    std::fs::write(&source, format!("\n{}", std::fs::read_to_string(&source).unwrap())).unwrap();
    let moved = nml(
        dir.path(),
        &["coverage", "--match-test", "testBump", "--report", "lcov", "--report-file", file.to_str().unwrap()],
    );
    assert!(moved.status.success(), "{}", text(&moved));
    let records = self::records(&std::fs::read_to_string(&file).unwrap());
    assert!(records["src/Counter.nml"].contains(&"DA:13,1".to_owned()), "{:?}", records["src/Counter.nml"]);

    // `--json`: the tests' lines, then the summary as one more JSON line.
    let json = nml(dir.path(), &["coverage", "--json", "--match-test", "testBump"]);
    assert!(json.status.success(), "{}", text(&json));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&json.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let counter = &lines[1]["coverage"][1];
    assert_eq!(counter["file"], "src/Counter.nml");
    assert_eq!(counter["lines"], serde_json::json!({"hit": 2, "total": 3}));
    // The LCOV file is named only for an LCOV report.
    let stray = nml(dir.path(), &["coverage", "--report-file", "x.info"]);
    assert_eq!(stray.status.code(), Some(1), "{}", text(&stray));
    assert!(text(&stray).contains("--report-file names the LCOV report's file"), "{}", text(&stray));
}

#[test]
fn a_failing_test_fails_the_run_but_the_report_is_written() {
    let dir = project();
    let test = dir.path().join("test/Bank.t.sol");
    let broken =
        std::fs::read_to_string(&test).unwrap().replace("assertEq(counter.count(), 3)", "assertEq(counter.count(), 4)");
    std::fs::write(&test, broken).unwrap();
    let run = nml(dir.path(), &["coverage", "--report", "lcov"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert!(text(&run).contains("[FAIL] testBump()"), "{}", text(&run));
    let lcov = std::fs::read_to_string(dir.path().join("lcov.info")).unwrap();
    // The failing test's calls reverted with it, and still ran.
    assert!(records(&lcov)["src/Counter.nml"].contains(&"FNDA:1,Counter.bump".to_owned()), "{lcov}");

    // Gas snapshots are `nml test`'s: coverage's build has no optimizer.
    let snapshot = nml(dir.path(), &["coverage", "--snapshot"]);
    assert!(!snapshot.status.success());
    assert!(text(&snapshot).contains("take gas snapshots with `nml test --snapshot`"), "{}", text(&snapshot));
}

#[test]
fn a_model_declarations_generated_code_is_not_counted_as_the_users_lines() {
    let dir = tempfile::tempdir().unwrap();
    let created = nml(dir.path(), &["new", "pool", "--template", "dynamic-fee"]);
    assert!(created.status.success(), "{}", text(&created));
    let project = dir.path().join("pool");
    let run = nml(&project, &["coverage", "--report", "lcov"]);
    assert!(run.status.success(), "{}", text(&run));
    let lcov = std::fs::read_to_string(project.join("lcov.info")).unwrap();
    let source = std::fs::read_to_string(project.join("src/DynamicFeePool.nml")).unwrap();
    let lines: Vec<&str> = source.lines().collect();
    let record = &records(&lcov)["src/DynamicFeePool.nml"];
    // No counted line is in a `model` or `llm` declaration (nml turned
    // them into libraries whose code every inference runs).
    let mut declared = vec![false; lines.len() + 1];
    let mut inside = false;
    for (i, line) in lines.iter().enumerate() {
        inside |= line.starts_with("model ") || line.starts_with("llm ");
        declared[i + 1] = inside;
        inside &= line.trim() != "}";
    }
    assert!(declared.iter().filter(|d| **d).count() > 5, "the template declares a model and an llm");
    for da in record.iter().filter_map(|l| l.strip_prefix("DA:")) {
        let line: usize = da.split(',').next().unwrap().parse().unwrap();
        assert!(!declared[line], "line {line} is a declaration's: {}\n{lcov}", lines[line - 1]);
    }
    // The line of the `infer` expression ran in every test that updates.
    let infer = lines.iter().position(|l| l.contains("infer Volatility")).expect("an infer line") + 1;
    let hits = record.iter().find_map(|l| l.strip_prefix(&format!("DA:{infer},"))).expect("the infer line is counted");
    assert!(hits.parse::<u64>().unwrap() > 0, "{lcov}");
    assert!(
        record
            .iter()
            .any(|l| l.starts_with("FNDA:") && l.ends_with(",DynamicFeePool.updateFee") && !l.starts_with("FNDA:0,"))
    );
}
