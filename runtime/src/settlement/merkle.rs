//! OpenZeppelin's `StandardMerkleTree`, byte for byte, so that a proof made by
//! the devnet verifies with OpenZeppelin's `MerkleProof` (and on the real
//! relay): leaves are `keccak256(keccak256(abi.encode(values)))`, sorted; the
//! tree is a complete binary tree in an array (leaves at the end, in reverse
//! order), and each node hashes its two children in sorted order.

use alloy_primitives::{B256, keccak256};

/// `keccak256` of the two hashes in ascending order.
pub fn hash_pair(a: B256, b: B256) -> B256 {
    let (low, high) = if a <= b { (a, b) } else { (b, a) };
    keccak256([low.as_slice(), high.as_slice()].concat())
}

/// The leaf of ABI-encoded `values`: `keccak256(bytes.concat(keccak256(values)))`.
pub fn leaf(abi_encoded: &[u8]) -> B256 {
    keccak256(keccak256(abi_encoded))
}

/// A tree over leaf hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MerkleTree {
    nodes: Vec<B256>,
}

impl MerkleTree {
    /// The tree of `leaves` (at least one), sorted as OpenZeppelin sorts them.
    pub fn new(leaves: &[B256]) -> Option<Self> {
        if leaves.is_empty() {
            return None;
        }
        let mut sorted = leaves.to_vec();
        sorted.sort();
        let n = sorted.len();
        let mut nodes = vec![B256::ZERO; 2 * n - 1];
        for (i, leaf) in sorted.iter().enumerate() {
            nodes[2 * n - 2 - i] = *leaf;
        }
        for i in (0..n - 1).rev() {
            nodes[i] = hash_pair(nodes[2 * i + 1], nodes[2 * i + 2]);
        }
        Some(Self { nodes })
    }

    /// The root.
    pub fn root(&self) -> B256 {
        self.nodes[0]
    }

    /// The leaves, ascending.
    pub fn leaves(&self) -> impl Iterator<Item = &B256> {
        let leaves = self.nodes.len().div_ceil(2);
        self.nodes[self.nodes.len() - leaves..].iter().rev()
    }

    /// The proof of `leaf`, if it is in the tree.
    pub fn proof(&self, leaf: B256) -> Option<Vec<B256>> {
        let leaves = self.nodes.len().div_ceil(2);
        let mut at = (self.nodes.len() - leaves..self.nodes.len()).find(|&i| self.nodes[i] == leaf)?;
        let mut proof = Vec::new();
        while at > 0 {
            let sibling = if at % 2 == 1 { at + 1 } else { at - 1 };
            proof.push(self.nodes[sibling]);
            at = (at - 1) / 2;
        }
        Some(proof)
    }
}

/// OpenZeppelin's `MerkleProof.verify`.
pub fn verify(proof: &[B256], root: B256, leaf: B256) -> bool {
    proof.iter().fold(leaf, |computed, sibling| hash_pair(computed, *sibling)) == root
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_proves_against_the_root_and_nothing_else_does() {
        for n in 1..=9u8 {
            let leaves: Vec<B256> = (0..n).map(|i| leaf(&[i])).collect();
            let tree = MerkleTree::new(&leaves).unwrap();
            for l in &leaves {
                let proof = tree.proof(*l).unwrap();
                assert!(verify(&proof, tree.root(), *l), "{n} leaves");
            }
            assert!(tree.proof(leaf(b"absent")).is_none());
            let mut sorted = leaves.clone();
            sorted.sort();
            assert_eq!(tree.leaves().copied().collect::<Vec<_>>(), sorted);
            assert!(!verify(&[], tree.root(), leaf(b"absent")) || n == 0);
        }
        let one = MerkleTree::new(&[leaf(b"x")]).unwrap();
        assert_eq!(one.root(), leaf(b"x"));
        assert!(MerkleTree::new(&[]).is_none());
    }

    #[test]
    fn the_root_does_not_depend_on_the_order_of_the_leaves() {
        let leaves: Vec<B256> = (0..5u8).map(|i| leaf(&[i])).collect();
        let mut reversed = leaves.clone();
        reversed.reverse();
        assert_eq!(MerkleTree::new(&leaves).unwrap().root(), MerkleTree::new(&reversed).unwrap().root());
    }
}
