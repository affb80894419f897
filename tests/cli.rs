//! The `nml` binary as users run it: exit codes, messages, the build cache,
//! JSON diagnostics, and `check` deferring to solc.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn nml(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nml")).args(args).current_dir(dir).env("NO_COLOR", "1").output().expect("nml runs")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn project(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, body) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, body).expect("write");
    }
    dir
}

fn example(name: &str) -> tempfile::TempDir {
    let src = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    let dir = tempfile::tempdir().expect("tempdir");
    let mut stack = vec![src.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).expect("read_dir").flatten() {
            let rel = e.path().strip_prefix(&src).expect("prefix").to_owned();
            if rel.starts_with("out") || rel.starts_with("cache") {
                continue;
            }
            if e.path().is_dir() {
                std::fs::create_dir_all(dir.path().join(&rel)).expect("mkdir");
                stack.push(e.path());
            } else {
                std::fs::copy(e.path(), dir.path().join(&rel)).expect("copy");
            }
        }
    }
    dir
}

#[test]
fn manifests_list_models_reached_through_bases_libraries_and_free_functions() {
    let models = r#"pragma nml 0.1;
pragma solidity ^0.8.24;

model V {
    onnx "../models/vol.onnx";
    input  returns: fixed<18>[1, 30];
    output vol: fixed<18>[1];
}

abstract contract Base {
    function b(int256[30] memory r) internal returns (int256) { return (infer V(r)).vol[0]; }
}

library Lib {
    function f(int256[30] memory r) internal returns (int256) { return (infer V(r)).vol[0]; }
}

function free(int256[30] memory r) returns (int256) { return (infer V(r)).vol[0]; }
"#;
    let pool = r#"pragma nml 0.1;
pragma solidity ^0.8.24;

import "./Models.nml";

contract Pool2 is Base {
    function d(int256[30] memory r) external returns (int256) { return b(r); }
}

contract Pool3 {
    function d(int256[30] memory r) external returns (int256) { return Lib.f(r) + free(r); }
}
"#;
    let extra = "pragma solidity ^0.8.24;\nimport \"./Models.nml\";\ncontract SolChild is Base {}\n";
    let dir = project(&[
        ("nml.toml", "[project]\nname = \"reach\"\n"),
        ("src/Models.nml", models),
        ("src/Pool.nml", pool),
        ("src/Extra.sol", extra),
    ]);
    let vol = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("compiler/tests/ui/models/vol.onnx");
    std::fs::create_dir_all(dir.path().join("models")).expect("mkdir");
    std::fs::copy(vol, dir.path().join("models/vol.onnx")).expect("copy vol.onnx");
    let built = nml(&["build"], dir.path());
    assert!(built.status.success(), "{}", text(&built));
    let out = dir.path().join("out");
    for manifest in ["Pool.sol/Pool2", "Pool.sol/Pool3", "Models.sol/Base", "Models.sol/Lib", "Extra.sol/SolChild"] {
        let path = out.join(format!("{manifest}.manifest.json"));
        let json: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
                .expect("json");
        assert_eq!(json["models"][0]["name"], "V", "{manifest}: {json}");
    }
    assert!(!out.join("Models.sol/free.manifest.json").exists(), "a free function has no artifact and no manifest");
}

#[test]
fn build_writes_artifacts_and_a_rebuild_skips_solc() {
    let dir = example("quickstart");
    let first = nml(&["build"], dir.path());
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("Compiled 6 contracts"), "{}", text(&first));
    let out = dir.path().join("out");
    for f in [
        "DynamicFeePool.sol/DynamicFeePool.json",
        "DynamicFeePool.sol/DynamicFeePool.manifest.json",
        "gen/src/DynamicFeePool.sol",
        "gen/src/DynamicFeePool.sol.map.json",
    ] {
        assert!(out.join(f).is_file(), "missing {f}");
    }
    let artifact: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("DynamicFeePool.sol/DynamicFeePool.json")).expect("read"))
            .expect("json");
    for key in ["abi", "bytecode", "deployedBytecode", "methodIdentifiers", "metadata"] {
        assert!(!artifact[key].is_null(), "artifact lacks {key}");
    }
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("DynamicFeePool.sol/DynamicFeePool.manifest.json")).expect("read"),
    )
    .expect("json");
    assert_eq!(manifest["models"][0]["id"], "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51");
    assert_eq!(manifest["models"][0]["mode"], "tee");
    assert_eq!(manifest["models"][0]["onnx"], "models/volatility.onnx");
    assert_eq!(manifest["llms"][0]["model"], "meta-llama/Llama-3.1-8B-Instruct");

    // A no-op rebuild must not even look for solc: point it at one that fails.
    let second = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["build"])
        .current_dir(dir.path())
        .env("NML_SOLC", "/nonexistent/solc")
        .output()
        .expect("runs");
    assert!(second.status.success(), "{}", text(&second));
    assert!(text(&second).contains("No changes: 6 contracts up to date"), "{}", text(&second));

    // A change rebuilds (and here must use that broken solc, and say so).
    let src = dir.path().join("src/DynamicFeePool.nml");
    let body = std::fs::read_to_string(&src).expect("read").replace("fee = 3000", "fee = 3001");
    std::fs::write(&src, body).expect("write");
    let third = Command::new(env!("CARGO_BIN_EXE_nml"))
        .args(["build"])
        .current_dir(dir.path())
        .env("NML_SOLC", "/nonexistent/solc")
        .output()
        .expect("runs");
    assert!(!third.status.success());
    assert!(text(&third).contains("/nonexistent/solc"), "{}", text(&third));
}

#[test]
fn errors_exit_nonzero_with_rustc_style_reports() {
    let dir = project(&[(
        "src/C.nml",
        "pragma nml 0.1;\ncontract C {\n    function f() external returns (string memory) {\n        return ask Oracle(\"x\");\n    }\n}\n",
    )]);
    let o = nml(&["build"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let t = text(&o);
    assert!(t.contains("nml::E0010"), "{t}");
    assert!(t.contains("unknown llm `Oracle`"), "{t}");
    assert!(t.contains("src/C.nml:4:20"), "{t}");
    assert!(t.contains("error: build failed with 1 error"), "{t}");
}

#[test]
fn json_diagnostics_are_one_object_per_line() {
    let dir = project(&[("src/C.nml", "pragma nml 0.1;\ncontract C { uint256 ask; }\n")]);
    let o = nml(&["check", "--message-format", "json"], dir.path());
    assert_eq!(o.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&o.stdout);
    let lines: Vec<serde_json::Value> =
        stdout.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let d = &lines[0];
    assert_eq!(d["code"], "nml::E0004");
    assert_eq!(d["severity"], "error");
    assert_eq!(d["file"], "src/C.nml");
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(2), Some(22)));
    assert!(d["help"].as_str().is_some_and(|h| h.contains("rename")));
}

#[test]
fn check_defers_to_solc_when_solang_rejects() {
    // `transient` is valid Solidity (0.8.28+) that solang-parser rejects.
    let ok = project(&[(
        "src/Lock.nml",
        "pragma nml 0.1;\npragma solidity ^0.8.28;\ncontract Lock { bool transient locked; }\n",
    )]);
    let o = nml(&["check"], ok.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("no errors"), "{}", text(&o));

    let bad = project(&[(
        "src/C.nml",
        "pragma nml 0.1;\npragma solidity ^0.8.24;\ncontract C {\n    function f() external { uint x = 1 +; }\n}\n",
    )]);
    let o = nml(&["check"], bad.path());
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("src/C.nml:4:41"), "{}", text(&o));
}

#[test]
fn bad_paths_are_clear_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = nml(&["build", "no/such/dir"], dir.path());
    assert!(!o.status.success());
    assert!(text(&o).contains("does not exist"), "{}", text(&o));
    std::fs::write(dir.path().join("notes.txt"), "hi").expect("write");
    let o = nml(&["build", "notes.txt"], dir.path());
    assert!(text(&o).contains("neither a project directory nor an .nml or .sol file"), "{}", text(&o));
    std::fs::write(dir.path().join("nml.toml"), "[project]\nsrcc = \"x\"\n").expect("write");
    let o = nml(&["build"], dir.path());
    assert!(!o.status.success());
    assert!(text(&o).contains("unknown field `srcc`"), "{}", text(&o));
}

/// Every line `nml check --message-format json` printed, parsed.
fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    let stdout = String::from_utf8_lossy(&o.stdout);
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

#[test]
fn project_errors_and_warnings_are_json_lines_too() {
    let bad = project(&[("nml.toml", "[project]\nsrcc = \"src\"\n")]);
    for command in ["check", "build"] {
        let o = nml(&[command, "--message-format", "json"], bad.path());
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let lines = json_lines(&o);
        assert_eq!(lines.len(), 1, "{}", text(&o));
        assert_eq!(lines[0]["code"], "nml::E0061");
        assert_eq!(lines[0]["file"], "nml.toml");
        assert_eq!((lines[0]["line"].as_u64(), lines[0]["column"].as_u64()), (Some(2), Some(1)));
        assert!(!String::from_utf8_lossy(&o.stderr).contains("srcc"), "{}", text(&o));
    }

    let empty = project(&[("nml.toml", "[project]\nname = \"x\"\n"), ("src/A.nml", "// nothing yet\n")]);
    let o = nml(&["check", "--message-format", "json"], empty.path());
    let lines = json_lines(&o);
    assert_eq!(lines.len(), 1, "{}", text(&o));
    assert_eq!(lines[0]["code"], "nml::W0001");
    assert_eq!(lines[0]["file"], "src/A.nml");
    assert_eq!(lines[0]["line"], 1);
}

#[test]
fn a_source_folder_that_does_not_exist_is_an_error() {
    let dir = project(&[("nml.toml", "[project]\nsrc = \"nope\"\n")]);
    for command in ["check", "build"] {
        let o = nml(&[command], dir.path());
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        let t = text(&o);
        assert!(t.contains("nml::E0062") && t.contains("the src folder `nope` does not exist"), "{t}");
        assert!(t.contains("nml.toml:2:7"), "{t}");
    }
}

#[test]
fn a_single_file_builds_without_a_project() {
    let dir = project(&[("Counter.nml", "pragma solidity ^0.8.24;\ncontract Counter { uint256 public n; }\n")]);
    let o = nml(&["build", "Counter.nml"], dir.path());
    assert!(o.status.success(), "{}", text(&o));
    assert!(dir.path().join("out/Counter.sol/Counter.json").is_file());
}
