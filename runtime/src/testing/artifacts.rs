//! The project's compiled contracts, as `nml test` knows them: a deployed
//! contract by its code (invariant tests' targets, traces' names), a
//! function by its selector, an event by its topic.

use std::collections::HashMap;

use alloy_dyn_abi::DynSolType;
use alloy_json_abi::{Event, JsonAbi};
use alloy_primitives::{B256, keccak256};

use super::{fuzz, signature_of};

/// The project's compiled contracts, by which invariant tests and traces
/// know what a deployed contract is: its runtime code equals one's, but for
/// the bytes an artifact leaves open (immutables, library addresses).
#[derive(Debug, Default)]
pub struct Artifacts {
    artifacts: Vec<Artifact>,
    /// Every event of every ABI, by its topic (the first one seen).
    events: HashMap<B256, Event>,
}

#[derive(Debug)]
pub(super) struct Artifact {
    pub(super) name: String,
    /// The runtime code (empty for an interface or an abstract contract);
    /// `None` where a deployed contract's bytes differ from the artifact's
    /// (immutables, unlinked library addresses).
    code: Vec<Option<u8>>,
    pub(super) abi: JsonAbi,
    /// Its functions whose parameters can be drawn.
    pub(super) functions: Vec<Function>,
}

/// A function of an artifact, as invariant tests call it.
#[derive(Debug, Clone)]
pub(super) struct Function {
    pub(super) signature: String,
    pub(super) selector: [u8; 4],
    pub(super) types: Vec<DynSolType>,
    /// Neither `view` nor `pure`: called unless the test contract chooses
    /// its functions (`targetSelector` may choose any).
    pub(super) mutates: bool,
}

impl Artifacts {
    /// Adds a Foundry-layout artifact (`abi`, `deployedBytecode.object` and
    /// its `immutableReferences`).
    pub fn add(&mut self, name: &str, artifact: &serde_json::Value) {
        let deployed = &artifact["deployedBytecode"];
        // An unlinked library's placeholder stands for whatever address is
        // linked there.
        let mut code = nml_protocol::bytecode::unlinked_code(deployed["object"].as_str().unwrap_or_default());
        let references = deployed["immutableReferences"].as_object().into_iter().flat_map(|m| m.values());
        for reference in references.filter_map(|r| r.as_array()).flatten() {
            let start = reference["start"].as_u64().unwrap_or(0) as usize;
            let length = reference["length"].as_u64().unwrap_or(0) as usize;
            for byte in code.iter_mut().skip(start).take(length) {
                *byte = None;
            }
        }
        let functions = artifact["abi"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["type"] == "function")
            .filter_map(|f| {
                let signature = signature_of(f);
                let types = fuzz::parameters(&signature).ok()?;
                let selector = keccak256(signature.as_bytes())[..4].try_into().ok()?;
                let mutates = !matches!(f["stateMutability"].as_str(), Some("view" | "pure"));
                Some(Function { signature, selector, types, mutates })
            })
            .collect();
        let abi: JsonAbi = serde_json::from_value(artifact["abi"].clone()).unwrap_or_default();
        for event in abi.events().filter(|e| !e.anonymous) {
            self.events.entry(event.selector()).or_insert_with(|| event.clone());
        }
        self.artifacts.push(Artifact { name: name.to_owned(), code, abi, functions });
    }

    /// The artifact whose runtime code `code` is.
    pub(super) fn identify(&self, code: &[u8]) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| {
            !a.code.is_empty()
                && a.code.len() == code.len()
                && a.code.iter().zip(code).all(|(want, got)| want.is_none_or(|w| w == *got))
        })
    }

    /// The artifact named `name` (an interface too).
    pub(super) fn named(&self, name: &str) -> Option<&Artifact> {
        self.artifacts.iter().find(|a| a.name == name)
    }

    /// The event whose topic is `topic`.
    pub(super) fn event(&self, topic: &B256) -> Option<&Event> {
        self.events.get(topic)
    }

    /// A function of any ABI with `selector` (the first one seen).
    pub(super) fn function(&self, selector: [u8; 4]) -> Option<&alloy_json_abi::Function> {
        self.artifacts.iter().flat_map(|a| a.abi.functions()).find(|f| f.selector() == selector)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(code: &str, immutables: serde_json::Value) -> serde_json::Value {
        serde_json::json!({
            "abi": [
                {"type": "function", "name": "deposit", "stateMutability": "payable",
                 "inputs": [{"name": "a", "type": "uint256"}], "outputs": []},
                {"type": "function", "name": "total", "stateMutability": "view", "inputs": [], "outputs": []},
                {"type": "function", "name": "set", "stateMutability": "nonpayable",
                 "inputs": [{"name": "p", "type": "tuple", "components": [{"name": "x", "type": "address"}, {"name": "y", "type": "bytes"}]}],
                 "outputs": []},
            ],
            "deployedBytecode": {"object": code, "immutableReferences": immutables},
        })
    }

    #[test]
    fn a_deployed_contract_is_known_by_its_code_with_immutables_and_libraries_left_open() {
        let mut artifacts = Artifacts::default();
        // Bytes 2–3 an immutable, bytes 5–24 a library's placeholder.
        let immutables = serde_json::json!({"7": [{"start": 2, "length": 2}]});
        artifacts.add("Vault", &artifact(&format!("0x6001aaaa60__${}$__00", "ab".repeat(17)), immutables));
        artifacts.add("Other", &artifact("0x6001aaaa60", serde_json::json!({})));
        artifacts.add("Interface", &artifact("0x", serde_json::json!({})));
        let deployed = alloy_primitives::hex::decode("6001bbbb60").unwrap();
        assert_eq!(
            artifacts.identify(&deployed).map(|a| a.name.as_str()),
            None,
            "an immutable differs from Other's code"
        );
        let vault = alloy_primitives::hex::decode(format!("6001123460{}00", "ff".repeat(20))).unwrap();
        let found = artifacts.identify(&vault).expect("Vault");
        assert_eq!(found.name, "Vault");
        // The tuple's signature is canonical; the view function is called
        // only when chosen.
        let signatures: Vec<(&str, bool)> = found.functions.iter().map(|f| (f.signature.as_str(), f.mutates)).collect();
        assert_eq!(signatures, [("deposit(uint256)", true), ("total()", false), ("set((address,bytes))", true)]);
        assert_eq!(found.functions[0].selector, keccak256("deposit(uint256)")[..4]);
        let exact = alloy_primitives::hex::decode("6001aaaa60").unwrap();
        assert_eq!(artifacts.identify(&exact).map(|a| a.name.as_str()), Some("Other"));
        // A byte that is not left open must match.
        let wrong = alloy_primitives::hex::decode(format!("6002123460{}00", "ff".repeat(20))).unwrap();
        assert!(artifacts.identify(&wrong).is_none());
    }
}
