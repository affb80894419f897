//! UI tests whose verdict is solc's: `tests/ui-solc/*.nml` are built with
//! real solc and their diagnostics compared with the `.stderr` beside them
//! (`NML_BLESS=1` writes them). Every front-end success case of the
//! compiler's UI tests must also compile with solc.

use std::path::{Path, PathBuf};

use nml::commands::common::solc_for;
use nml_compiler::Frontend;
use nml_compiler::build::{self, BuildOutput};
use nml_compiler::diagnostics::render_human;
use nml_compiler::project::Project;

fn copy_case(case: &Path, into: &Path) -> PathBuf {
    // The case and its siblings (imports, models) keep their relative paths.
    let dir = case.parent().expect("case dir");
    for entry in std::fs::read_dir(dir).expect("read_dir").flatten() {
        if entry.path().is_file() {
            std::fs::copy(entry.path(), into.join(entry.file_name())).expect("copy");
        }
    }
    let models = dir.parent().expect("ui dir").join("models");
    if models.is_dir() {
        let target = into.parent().expect("parent").join("models");
        std::fs::create_dir_all(&target).expect("mkdir");
        for entry in std::fs::read_dir(models).expect("models").flatten() {
            std::fs::copy(entry.path(), target.join(entry.file_name())).expect("copy model");
        }
    }
    into.join(case.file_name().expect("name"))
}

fn build_case(case: &Path) -> (Frontend, BuildOutput) {
    let tmp = tempfile::tempdir().expect("tempdir").keep();
    let dir = tmp.join("case");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let file = copy_case(case, &dir);
    let fe = Frontend::run(Project::open(&file).expect("open"));
    let out = build::build(&fe, &|| solc_for(&fe)).expect("build runs");
    (fe, out)
}

fn cases(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("read_dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "nml"))
        .collect();
    out.sort();
    out
}

#[test]
fn solc_verdicts_match_snapshots() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui-solc");
    let mut failures = Vec::new();
    for case in cases(&root) {
        let (fe, out) = build_case(&case);
        let rendered = render_human(&fe.project.db, &out.diagnostics, false, 100);
        let expected_path = case.with_extension("stderr");
        if std::env::var_os("NML_BLESS").is_some() {
            std::fs::write(&expected_path, &rendered).expect("bless");
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        let name = case.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if name.ends_with("_accepted") && out.has_errors() {
            failures.push(format!("{name}: solc accepts this, nml must too:\n{rendered}"));
        } else if expected != rendered {
            failures.push(format!("{name}: expected\n{expected}\ngot\n{rendered}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn front_end_successes_compile_with_solc() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/ui/compile_success");
    for case in cases(&root) {
        let (fe, out) = build_case(&case);
        assert!(
            !out.has_errors(),
            "{}: solc rejected the generated Solidity:\n{}",
            case.display(),
            render_human(&fe.project.db, &out.diagnostics, false, 100)
        );
    }
}
