//! UI tests: every `tests/ui/compile_failure/*.nml` (or case directory) must
//! give exactly the diagnostics in the `.stderr` file beside it, and every
//! `tests/ui/compile_success/*.nml` must compile with the diagnostics (notes,
//! warnings) in its `.stderr` and generate exactly the Solidity in its
//! `.gen.sol`. Run with `NML_BLESS=1` to write the expected files.
//!
//! These cases stop before solc (the front end alone); cases whose verdict is
//! solc's live in the root package's `tests/ui_solc.rs`.

use std::path::{Path, PathBuf};

use nml_compiler::Frontend;
use nml_compiler::diagnostics::render_human;
use nml_compiler::project::Project;

fn cases(dir: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui").join(dir);
    let mut out: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap_or_else(|e| panic!("{}: {e}", root.display()))
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e == "nml"))
        .collect();
    out.sort();
    out
}

fn frontend(case: &Path) -> Frontend {
    let project = Project::open(case).unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    Frontend::run(project)
}

/// Diagnostics as a user sees them (solang's verdict stands in for solc's).
fn rendered(fe: &Frontend) -> String {
    let mut diags = fe.diagnostics.clone();
    diags.extend(fe.solang_rejections.iter().cloned());
    render_human(&fe.project.db, &diags, false, 100)
}

fn expected_path(case: &Path, ext: &str) -> PathBuf {
    let mut name = case.file_stem().unwrap_or_default().to_os_string();
    name.push(ext);
    case.with_file_name(name)
}

/// Compares `actual` with the file, or writes it when blessing; returns a
/// readable failure.
fn compare(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("NML_BLESS").is_some() {
        std::fs::write(path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let mut diff = format!("--- {} (expected)\n+++ actual\n", path.display());
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    for i in 0..e.len().max(a.len()) {
        match (e.get(i), a.get(i)) {
            (Some(x), Some(y)) if x == y => {}
            (x, y) => {
                if let Some(x) = x {
                    diff.push_str(&format!("-{x}\n"));
                }
                if let Some(y) = y {
                    diff.push_str(&format!("+{y}\n"));
                }
            }
        }
    }
    Some(diff)
}

#[test]
fn compile_failure() {
    let mut failures = Vec::new();
    for case in cases("compile_failure") {
        let fe = frontend(&case);
        let text = rendered(&fe);
        if !fe.has_errors() && fe.solang_rejections.is_empty() {
            failures.push(format!("{}: expected an error, got none\n{text}", case.display()));
            continue;
        }
        failures.extend(compare(&expected_path(&case, ".stderr"), &text));
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn compile_success() {
    let mut failures = Vec::new();
    for case in cases("compile_success") {
        let fe = frontend(&case);
        let text = rendered(&fe);
        if fe.has_errors() || !fe.solang_rejections.is_empty() {
            failures.push(format!("{}: expected success\n{text}", case.display()));
            continue;
        }
        failures.extend(compare(&expected_path(&case, ".stderr"), &text));
        let generated: String = fe
            .units
            .iter()
            .filter(|u| u.unit_name.ends_with(".nml"))
            .map(|u| format!("// ==== {} ====\n{}\n", u.unit_name, u.text))
            .collect();
        failures.extend(compare(&expected_path(&case, ".gen.sol"), &generated));
    }
    assert!(failures.is_empty(), "{} case(s) failed:\n{}", failures.len(), failures.join("\n"));
}

/// Hostile inputs generated on the fly: each must give a diagnostic, never a
/// panic or a stack overflow.
#[test]
fn hostile_inputs_give_diagnostics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = vec![0u8; 1 << 20];
    for b in &mut random {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let alphabet = b" {}()[];,.=+-*/\"'abcxyz019\n";
    let ascii_noise: Vec<u8> = random.iter().map(|b| alphabet[*b as usize % alphabet.len()]).collect();
    let inputs: Vec<(&str, Vec<u8>)> = vec![
        ("random.nml", random),
        ("noise.nml", ascii_noise),
        ("braces.nml", "{".repeat(100_000).into_bytes()),
        ("parens.nml", format!("contract C {{ function f() public {{ {} }} }}", "(".repeat(100_000)).into_bytes()),
        ("closing.nml", "}".repeat(100_000).into_bytes()),
        ("comment.nml", b"/* never closed".to_vec()),
        ("string.nml", b"contract C { string s = \"never closed; }".to_vec()),
        ("infer_only.nml", b"contract C { function f() public { infer".to_vec()),
        // Unclosed `ask X(` inside one another: exponential backtracking
        // without the parser's call budget (the fuzzer's 2 KB case took 51 s).
        ("tangled.nml", format!("contract C {{ function f() public {{ {}", "x = ask A(1, ".repeat(40)).into_bytes()),
    ];
    for (name, bytes) in inputs {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).expect("write");
        let started = std::time::Instant::now();
        let fe = frontend(&path);
        // Generous for a debug build on a loaded machine; without the budget
        // `tangled.nml` runs for hours.
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "{name}: {:?}", started.elapsed());
        assert!(fe.has_errors() || !fe.solang_rejections.is_empty(), "{name}: expected a diagnostic, got none");
        // Rendering must not panic either.
        let _ = rendered(&fe);
    }
}
