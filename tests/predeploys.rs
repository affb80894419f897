//! The devnet's predeployed contracts are built from their Solidity
//! (`runtime/predeploys/`) by nml's solc: the runtime bytecode committed in
//! `runtime/src/predeploys/` must be what that Solidity compiles to (the
//! trailing CBOR metadata aside). `NML_BLESS=1` rewrites the committed files.

use std::path::PathBuf;

mod common;

/// `(contract, committed file)` of every predeploy.
const PREDEPLOYS: &[(&str, &str)] = &[
    ("TEERegistry", "TEERegistry.hex"),
    ("InferenceSettlementRelay", "InferenceSettlementRelay.hex"),
    ("InferenceHub", "InferenceHub.hex"),
    ("WorkflowScheduler", "WorkflowScheduler.hex"),
    ("OPGToken", "OPGToken.hex"),
    ("Permit2", "Permit2.hex"),
    ("X402ExactPermit2Proxy", "X402ExactPermit2Proxy.hex"),
    ("X402UptoPermit2Proxy", "X402UptoPermit2Proxy.hex"),
];

/// The bytecode without solc's trailing CBOR metadata (its length is in the last two bytes).
fn without_metadata(code: &[u8]) -> &[u8] {
    let Some(len) = code.len().checked_sub(2).map(|at| usize::from(u16::from_be_bytes([code[at], code[at + 1]])))
    else {
        return code;
    };
    code.get(..code.len().saturating_sub(len + 2)).unwrap_or(code)
}

#[test]
fn the_committed_predeploys_are_what_their_solidity_compiles_to() {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let names: Vec<&str> = PREDEPLOYS.iter().map(|(name, _)| *name).collect();
    let (_dir, codes) = common::build_runtime(&repo.join("runtime/predeploys"), &names);
    let bless = std::env::var_os("NML_BLESS").is_some();
    for ((name, file), built) in PREDEPLOYS.iter().zip(codes) {
        let path = repo.join("runtime/src/predeploys").join(file);
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        let committed = alloy_primitives::hex::decode(committed.trim()).unwrap_or_default();
        if without_metadata(&committed) == without_metadata(&built) {
            continue;
        }
        if bless {
            std::fs::write(&path, format!("{}\n", alloy_primitives::hex::encode(&built))).expect("writing");
        } else {
            panic!(
                "{} is not what runtime/predeploys/src/{name}.sol compiles to: rebuild it with \
                 `NML_BLESS=1 cargo test --test predeploys`",
                path.display()
            );
        }
    }
}
