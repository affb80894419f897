//! Per-contract manifests list every model and llm a contract can reach:
//! its own calls, its bases' (transitively), and those of the libraries and
//! free functions it names; and only contracts, libraries and interfaces get
//! one.

use std::path::Path;

use nml_compiler::Frontend;
use nml_compiler::emit::Manifest;
use nml_compiler::project::Project;

const MODELS: &str = r#"pragma nml 0.1;
pragma solidity ^0.8.24;

model V {
    onnx "../models/vol.onnx";
    input  returns: fixed<18>[1, 30];
    output vol: fixed<18>[1];
}

model W {
    onnx "../models/graph_names.onnx";
    input  returns "input:0": fixed<18>[1, 30];
    output vol "output.1": fixed<18>[1];
}

llm A {
    model "meta-llama/Llama-3.1-8B-Instruct";
}

struct Point { int256 x; }

abstract contract Base {
    function b(int256[30] memory r) internal returns (int256) { return (infer V(r)).vol[0]; }
}

library Lib {
    function f(int256[30] memory r) internal returns (int256) { return (infer V(r)).vol[0]; }
    function g() internal returns (string memory) { return talk(); }
}

function free(int256[30] memory r) returns (int256) { return (infer V(r)).vol[0]; }

function talk() returns (string memory) { return ask A("hi"); }
"#;

const POOL: &str = r#"pragma nml 0.1;
pragma solidity ^0.8.24;

import "./Models.nml";

contract Pool2 is Base {
    function d(int256[30] memory r) external returns (int256) { return b(r); }
}

contract Grandchild is Pool2 {}

contract UsesLibrary {
    function d(int256[30] memory r) external returns (int256) { return Lib.f(r); }
}

contract UsesLibraryTransitively {
    function d() external returns (string memory) { return Lib.g(); }
}

contract UsesFree {
    function d(int256[30] memory r) external returns (int256) { return free(r); }
}

contract Plain {
    function d() external pure returns (uint256) { return 1; }
}

contract UsesGraphNames {
    function d(int256[30] memory r) external returns (int256) { return (infer W { returns: r }).vol[0]; }
}
"#;

/// Plain Solidity: a contract with an `.nml` base gets a manifest, one
/// without any model gets none (as before).
const EXTRA: &str = r#"pragma solidity ^0.8.24;

import "./Models.nml";

contract SolChild is Base {}

contract SolPlain {}
"#;

fn frontend() -> (tempfile::TempDir, Frontend) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("src")).expect("mkdir src");
    std::fs::create_dir_all(root.join("models")).expect("mkdir models");
    std::fs::write(root.join("nml.toml"), "[project]\nname = \"manifests\"\n").expect("nml.toml");
    std::fs::write(root.join("src/Models.nml"), MODELS).expect("Models.nml");
    std::fs::write(root.join("src/Pool.nml"), POOL).expect("Pool.nml");
    std::fs::write(root.join("src/Extra.sol"), EXTRA).expect("Extra.sol");
    for model in ["vol.onnx", "graph_names.onnx"] {
        let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui/models").join(model);
        std::fs::copy(from, root.join("models").join(model)).expect("copy a model");
    }
    let fe = Frontend::run(Project::open(root).expect("open project"));
    assert!(!fe.diagnostics.iter().any(|d| d.is_error()), "{:#?}", fe.diagnostics);
    (dir, fe)
}

fn manifest<'a>(fe: &'a Frontend, contract: &str) -> &'a Manifest {
    fe.manifests.iter().find(|m| m.contract == contract).unwrap_or_else(|| panic!("no manifest for {contract}"))
}

/// The names of a manifest's models and llms.
fn reached(fe: &Frontend, contract: &str) -> (Vec<String>, Vec<String>) {
    let m = manifest(fe, contract);
    (m.models.iter().map(|m| m.name.clone()).collect(), m.llms.iter().map(|l| l.name.clone()).collect())
}

#[test]
fn a_contract_reaches_the_models_of_its_bases() {
    let (_dir, fe) = frontend();
    assert_eq!(reached(&fe, "Base"), (vec!["V".to_owned()], vec![]));
    assert_eq!(reached(&fe, "Pool2"), (vec!["V".to_owned()], vec![]));
    assert_eq!(reached(&fe, "Grandchild"), (vec!["V".to_owned()], vec![]));
    assert_eq!(manifest(&fe, "Pool2").source, "src/Pool.nml");
    assert_eq!(reached(&fe, "SolChild"), (vec!["V".to_owned()], vec![]));
    assert_eq!(manifest(&fe, "SolChild").source, "src/Extra.sol");
}

#[test]
fn a_contract_reaches_the_models_of_the_libraries_and_free_functions_it_names() {
    let (_dir, fe) = frontend();
    assert_eq!(reached(&fe, "UsesLibrary"), (vec!["V".to_owned()], vec!["A".to_owned()]));
    assert_eq!(reached(&fe, "UsesLibraryTransitively"), (vec!["V".to_owned()], vec!["A".to_owned()]));
    assert_eq!(reached(&fe, "UsesFree"), (vec!["V".to_owned()], vec![]));
    assert_eq!(reached(&fe, "Lib"), (vec!["V".to_owned()], vec!["A".to_owned()]));
    assert_eq!(reached(&fe, "Plain"), (vec![], vec![]));
}

#[test]
fn only_contracts_libraries_and_interfaces_get_manifests() {
    let (_dir, fe) = frontend();
    let mut names: Vec<&str> = fe.manifests.iter().map(|m| m.contract.as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "Base",
            "Grandchild",
            "Lib",
            "Plain",
            "Pool2",
            "SolChild",
            "UsesFree",
            "UsesGraphNames",
            "UsesLibrary",
            "UsesLibraryTransitively"
        ]
    );
}

#[test]
fn manifest_tensors_carry_the_graph_names() {
    let (_dir, fe) = frontend();
    let m = &manifest(&fe, "UsesGraphNames").models[0];
    assert_eq!(m.name, "W");
    assert_eq!(m.inputs, [("input:0".to_owned(), "fixed<18>[1, 30]".to_owned())]);
    assert_eq!(m.outputs, [("output.1".to_owned(), "fixed<18>[1]".to_owned())]);
}
