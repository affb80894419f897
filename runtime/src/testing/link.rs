//! Libraries of `nml test`: as in Foundry, the libraries a test contract's
//! code calls (those with `public` or `external` functions) are deployed
//! before it from the deployer account, and their addresses linked into its
//! code. [`Links`] is where a contract's code holds them, [`Libraries`] the
//! project's contracts among which they are found, [`link`] the deployment.

use std::collections::{BTreeMap, BTreeSet};

use alloy_primitives::{Address, Bytes, keccak256};
use alloy_rpc_types_eth::BlockId;

use super::{TestContract, failure, mined, send};
use crate::node::Devnet;

/// Where a contract's creation code holds the addresses of the libraries
/// it calls. Solidity leaves a placeholder there (`__$`, the first 34 hex
/// digits of keccak256(`file:Name`), `$__`) for the deployer to fill in.
#[derive(Debug, Clone, Default)]
pub struct Links {
    /// Byte offsets of each library's address, by the library's
    /// `file:Name` (`src/Math.sol:MathLib`).
    at: BTreeMap<String, Vec<usize>>,
    /// Every library the code links: those of `at`, and those of the
    /// runtime code.
    needs: BTreeSet<String>,
}

impl Links {
    /// An artifact's creation code, with zeros in its placeholders, and
    /// where they are (`bytecode.linkReferences`:
    /// `{file: {Name: [{start, length}]}}`).
    pub(super) fn of(artifact: &serde_json::Value) -> Result<(Bytes, Self), String> {
        let bytecode = &artifact["bytecode"];
        let hex = bytecode["object"].as_str().unwrap_or_default();
        let mut hex = hex.strip_prefix("0x").unwrap_or(hex).to_owned();
        let mut links = Self::default();
        for (library, start) in references(&bytecode["linkReferences"]) {
            let placeholder = format!("__${}$__", &alloy_primitives::hex::encode(keccak256(&library))[..34]);
            let range = usize::try_from(start)
                .ok()
                .and_then(|start| start.checked_mul(2))
                .and_then(|from| Some(from..from.checked_add(placeholder.len())?))
                .filter(|range| hex.get(range.clone()) == Some(placeholder.as_str()));
            let Some(range) = range else {
                return Err(format!("bad bytecode: no placeholder of the library {library} at byte {start}"));
            };
            links.at.entry(library).or_default().push(range.start / 2);
            hex.replace_range(range, &"0".repeat(placeholder.len()));
        }
        // A placeholder no link reference names is left, and is bad hex.
        let code = alloy_primitives::hex::decode(&hex).map_err(|e| format!("bad bytecode: {e}"))?;
        // solc appends the runtime code to the creation code, so its
        // libraries are among `at`'s already; the union does not rely on it.
        let runtime = references(&artifact["deployedBytecode"]["linkReferences"]).map(|(library, _)| library);
        links.needs = links.at.keys().cloned().chain(runtime).collect();
        Ok((code.into(), links))
    }

    /// `code` (that [`Links::of`] read) with the address of each library
    /// it links, from `addresses`, in its place.
    fn link(&self, code: &[u8], addresses: &BTreeMap<&str, Address>) -> Result<Bytes, String> {
        let mut code = code.to_vec();
        for (library, offsets) in &self.at {
            let address =
                addresses.get(library.as_str()).ok_or_else(|| format!("the library {library} was not deployed"))?;
            for &start in offsets {
                code[start..start + Address::len_bytes()].copy_from_slice(address.as_slice());
            }
        }
        Ok(code.into())
    }
}

/// The link references of `references` (`{file: {Name: [{start, …}]}}`):
/// each library's `file:Name`, with the byte offset of one of its
/// placeholders.
fn references(references: &serde_json::Value) -> impl Iterator<Item = (String, u64)> + '_ {
    references.as_object().into_iter().flatten().flat_map(|(file, libraries)| {
        libraries.as_object().into_iter().flatten().flat_map(move |(name, at)| {
            // A reference without a start points nowhere: past any code.
            at.as_array()
                .into_iter()
                .flatten()
                .map(move |at| (format!("{file}:{name}"), at["start"].as_u64().unwrap_or(u64::MAX)))
        })
    })
}

/// The project's compiled contracts by `file:Name`, among which a test
/// contract's deployment finds the libraries it links (and those they
/// link).
#[derive(Debug, Default)]
pub struct Libraries {
    /// Each contract's creation code and links, or why its artifact's code
    /// cannot be read (which matters only if a test links it).
    code: BTreeMap<String, Result<(Bytes, Links), String>>,
}

impl Libraries {
    /// Adds the Foundry-layout artifact of the contract `name` of the
    /// source file `source` (as the build names it: `src/Math.sol`).
    pub fn add(&mut self, source: &str, name: &str, artifact: &serde_json::Value) {
        self.code.insert(format!("{source}:{name}"), Links::of(artifact));
    }

    /// The libraries `links` names and, at any depth, those they link,
    /// each once, in name order.
    fn needed<'a>(&'a self, links: &'a Links) -> Result<Vec<(&'a str, &'a Bytes, &'a Links)>, String> {
        let mut found = BTreeMap::new();
        let mut queue: Vec<&str> = links.needs.iter().map(String::as_str).collect();
        while let Some(library) = queue.pop() {
            if found.contains_key(library) {
                continue;
            }
            let Some((library, code)) = self.code.get_key_value(library) else {
                return Err(format!(
                    "cannot link the library {library}: it is not among the build's artifacts (is its file compiled?)"
                ));
            };
            let (code, links) = code.as_ref().map_err(|e| format!("cannot link the library {library}: {e}"))?;
            if code.is_empty() {
                return Err(format!("cannot link the library {library}: it has no code"));
            }
            queue.extend(links.needs.iter().map(String::as_str));
            found.insert(library.as_str(), (code, links));
        }
        Ok(found.into_iter().map(|(library, (code, links))| (library, code, links)).collect())
    }
}

/// Deploys the libraries `contract` links, and those they link, from
/// `deployer`, and returns its creation code linked to them. Each library
/// is at the address of one of the deployer's next nonces, in name order:
/// the same on every run, and known before any is deployed, so libraries
/// that link each other link too.
pub(super) fn link(devnet: &Devnet, deployer: Address, contract: &TestContract) -> Result<Bytes, String> {
    let libraries = contract.libraries.needed(&contract.links)?;
    let nonce = devnet
        .transaction_count(deployer, BlockId::pending())
        .map_err(|e| format!("cannot read the deployer's nonce: {e}"))?;
    let addresses: BTreeMap<&str, Address> =
        libraries.iter().zip(nonce..).map(|((library, ..), nonce)| (*library, deployer.create(nonce))).collect();
    for (library, code, links) in &libraries {
        let hash = send(devnet, deployer, None, links.link(code, &addresses)?)?;
        let receipt = mined(devnet, hash, &format!("the deployment of the library {library}"))?;
        if !receipt.success {
            return Err(format!("the deployment of the library {library} failed: {}", failure(contract, &receipt)));
        }
        if receipt.contract_address != addresses.get(library).copied() {
            return Err(format!("the library {library} was not deployed at the address its users link"));
        }
    }
    contract.links.link(&contract.bytecode, &addresses)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// An artifact whose creation code is `60`, then a placeholder of each
    /// of `links` (`file:Name`), then `00`.
    fn artifact(links: &[&str]) -> serde_json::Value {
        let mut hex = "0x60".to_owned();
        let mut references = serde_json::Map::new();
        for (i, library) in links.iter().enumerate() {
            hex.push_str(&format!("__${}$__", &alloy_primitives::hex::encode(keccak256(library))[..34]));
            let (file, name) = library.split_once(':').expect("file:Name");
            references.insert(file.to_owned(), json!({ name: [{ "start": 1 + 20 * i, "length": 20 }] }));
        }
        hex.push_str("00");
        json!({ "bytecode": { "object": hex, "linkReferences": references }, "deployedBytecode": { "object": "0x" } })
    }

    #[test]
    fn placeholders_are_read_and_linked_with_the_libraries_addresses() {
        let (code, links) = Links::of(&artifact(&["src/A.sol:A", "src/B.sol:B"])).expect("links");
        assert_eq!(code.len(), 42);
        assert!(code[1..41].iter().all(|b| *b == 0));
        let (a, b) = (Address::repeat_byte(0xaa), Address::repeat_byte(0xbb));
        let linked = links.link(&code, &BTreeMap::from([("src/A.sol:A", a), ("src/B.sol:B", b)])).expect("linked");
        assert_eq!(&linked[1..21], a.as_slice());
        assert_eq!(&linked[21..41], b.as_slice());
        assert_eq!((linked[0], linked[41]), (0x60, 0x00));
        let unlinked = links.link(&code, &BTreeMap::from([("src/A.sol:A", a)])).expect_err("B is missing");
        assert_eq!(unlinked, "the library src/B.sol:B was not deployed");
    }

    #[test]
    fn a_placeholder_without_its_reference_is_bad_bytecode() {
        let mut stray = artifact(&["src/A.sol:A"]);
        stray["bytecode"]["linkReferences"] = json!({});
        assert!(Links::of(&stray).expect_err("stray").starts_with("bad bytecode: "));
        let mut misplaced = artifact(&["src/A.sol:A"]);
        misplaced["bytecode"]["linkReferences"]["src/A.sol"]["A"][0]["start"] = json!(u64::MAX);
        let error = Links::of(&misplaced).expect_err("misplaced");
        assert!(error.contains("no placeholder of the library src/A.sol:A"), "{error}");
    }

    #[test]
    fn the_libraries_needed_are_found_at_any_depth_once_each_and_missing_ones_named() {
        let mut libraries = Libraries::default();
        // B and C link each other: each is deployed once.
        libraries.add("src/B.sol", "B", &artifact(&["src/C.sol:C"]));
        libraries.add("src/C.sol", "C", &artifact(&["src/B.sol:B"]));
        libraries.add("src/A.sol", "A", &artifact(&["src/C.sol:C"]));
        let (_, links) = Links::of(&artifact(&["src/A.sol:A"])).expect("links");
        let needed = libraries.needed(&links).expect("found");
        let names: Vec<&str> = needed.iter().map(|(library, ..)| *library).collect();
        assert_eq!(names, ["src/A.sol:A", "src/B.sol:B", "src/C.sol:C"]);
        let (_, links) = Links::of(&artifact(&["src/D.sol:D"])).expect("links");
        let error = libraries.needed(&links).expect_err("D is not built");
        assert!(error.starts_with("cannot link the library src/D.sol:D: it is not among the build's artifacts"));
    }
}
