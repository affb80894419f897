//! The content id `ipfs add` gives a file, for files of any size: the file
//! is cut into 256 KiB chunks, the chunks are the leaves of a balanced tree
//! of dag-pb nodes with at most 174 links each, and the id is the root's.
//!
//! - **CIDv0** (`ipfs add`, the default): every leaf is a dag-pb node holding
//!   a UnixFS `File` with its chunk; ids are `Qm…` (base58btc of the
//!   sha2-256 multihash).
//! - **CIDv1** (`ipfs add --cid-version 1`, which implies raw leaves): every
//!   leaf is the raw chunk (codec `raw`), the other nodes dag-pb; ids are
//!   `b…` (base32). A file of one chunk is its own raw leaf.
//!
//! A parent node is `PBNode { Links, Data }` in dag-pb's canonical order
//! (links first), each link `{Hash, Name: "", Tsize}` where `Tsize` is the
//! size of the child's whole subtree of blocks, and `Data` a UnixFS `File`
//! with `filesize` and the `blocksizes` of its children. The tests compare
//! with the npm UnixFS importer, the implementation IPFS's JavaScript
//! tools use.

use cid::Cid;
use multihash::Multihash;
use sha2::{Digest, Sha256};

/// The chunk size of `ipfs add` (`size-262144`).
pub const CHUNK_SIZE: usize = 262_144;
/// The most links a node of the balanced layout has.
pub const MAX_LINKS: usize = 174;

const SHA2_256: u64 = 0x12;
const RAW: u64 = 0x55;
const DAG_PB: u64 = 0x70;
/// UnixFS `DataType.File`.
const UNIXFS_FILE: u64 = 2;

/// Which CID version (and so which leaves) to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidVersion {
    /// dag-pb leaves, `Qm…` ids.
    V0,
    /// Raw leaves, `b…` ids.
    V1,
}

/// A node of the tree: its id, the bytes of file it covers, and the total
/// size of its blocks (a link's `Tsize`).
struct Node {
    cid: Cid,
    file_size: u64,
    tree_size: u64,
}

/// The id of a file of `bytes`, as `ipfs add` gives it.
pub fn file_cid(bytes: &[u8], version: CidVersion) -> Cid {
    tree(bytes, version, &mut None)
}

/// The id of a file of `bytes` and every block of its tree, as `ipfs add`
/// stores them (what a gateway serves).
pub fn blocks(bytes: &[u8], version: CidVersion) -> (Cid, Vec<(Cid, Vec<u8>)>) {
    let mut sink = Some(Vec::new());
    let root = tree(bytes, version, &mut sink);
    (root, sink.unwrap_or_default())
}

/// Builds the tree, handing each block to `sink` when there is one.
fn tree(bytes: &[u8], version: CidVersion, sink: &mut Option<Vec<(Cid, Vec<u8>)>>) -> Cid {
    let mut level: Vec<Node> = if bytes.is_empty() {
        vec![leaf(bytes, version, sink)]
    } else {
        bytes.chunks(CHUNK_SIZE).map(|chunk| leaf(chunk, version, sink)).collect()
    };
    while level.len() > 1 {
        level = level.chunks(MAX_LINKS).map(|children| parent(children, version, sink)).collect();
    }
    level.pop().map(|root| root.cid).unwrap_or_else(|| leaf(&[], version, sink).cid)
}

fn keep(sink: &mut Option<Vec<(Cid, Vec<u8>)>>, cid: Cid, block: &[u8]) {
    if let Some(blocks) = sink {
        blocks.push((cid, block.to_vec()));
    }
}

fn sha256(block: &[u8]) -> Multihash<64> {
    Multihash::wrap(SHA2_256, &Sha256::digest(block)).expect("a 32-byte digest fits")
}

fn cid_of(block: &[u8], codec: u64, version: CidVersion) -> Cid {
    match version {
        CidVersion::V0 => Cid::new_v0(sha256(block)).expect("sha2-256 is a valid CIDv0 hash"),
        CidVersion::V1 => Cid::new_v1(codec, sha256(block)),
    }
}

fn leaf(chunk: &[u8], version: CidVersion, sink: &mut Option<Vec<(Cid, Vec<u8>)>>) -> Node {
    let file_size = chunk.len() as u64;
    match version {
        CidVersion::V1 => {
            let cid = cid_of(chunk, RAW, version);
            keep(sink, cid, chunk);
            Node { cid, file_size, tree_size: file_size }
        }
        CidVersion::V0 => {
            let mut data = Vec::with_capacity(chunk.len() + 16);
            varint_field(&mut data, 1, UNIXFS_FILE);
            if !chunk.is_empty() {
                bytes_field(&mut data, 2, chunk);
            }
            varint_field(&mut data, 3, file_size);
            let mut block = Vec::with_capacity(data.len() + 8);
            bytes_field(&mut block, 1, &data);
            let cid = cid_of(&block, DAG_PB, version);
            keep(sink, cid, &block);
            Node { cid, file_size, tree_size: block.len() as u64 }
        }
    }
}

fn parent(children: &[Node], version: CidVersion, sink: &mut Option<Vec<(Cid, Vec<u8>)>>) -> Node {
    let file_size: u64 = children.iter().map(|c| c.file_size).sum();
    let mut data = Vec::new();
    varint_field(&mut data, 1, UNIXFS_FILE);
    varint_field(&mut data, 3, file_size);
    for child in children {
        varint_field(&mut data, 4, child.file_size);
    }
    let mut block = Vec::new();
    for child in children {
        let mut link = Vec::new();
        bytes_field(&mut link, 1, &child.cid.to_bytes());
        bytes_field(&mut link, 2, b"");
        varint_field(&mut link, 3, child.tree_size);
        bytes_field(&mut block, 2, &link);
    }
    bytes_field(&mut block, 1, &data);
    let tree_size = block.len() as u64 + children.iter().map(|c| c.tree_size).sum::<u64>();
    let cid = cid_of(&block, DAG_PB, version);
    keep(sink, cid, &block);
    Node { cid, file_size, tree_size }
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A protobuf varint field.
fn varint_field(out: &mut Vec<u8>, field: u64, value: u64) {
    varint(out, field << 3);
    varint(out, value);
}

/// A protobuf length-delimited field.
fn bytes_field(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    varint(out, (field << 3) | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ids computed by the npm UnixFS importer (ipfs-unixfs-importer 17.1.1;
    /// `tests/model_ids.rs` checks more sizes against it at test time).
    #[test]
    fn small_files_have_the_ids_ipfs_gives() {
        assert_eq!(
            file_cid(b"", CidVersion::V1).to_string(),
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
        // One chunk in CIDv1 is the raw leaf itself.
        let raw = Cid::new_v1(RAW, sha256(b"nml"));
        assert_eq!(file_cid(b"nml", CidVersion::V1), raw);
        assert!(file_cid(b"nml", CidVersion::V0).to_string().starts_with("Qm"));
    }

    #[test]
    fn big_files_are_trees() {
        let big = vec![7u8; CHUNK_SIZE * 3 + 1];
        let v1 = file_cid(&big, CidVersion::V1);
        assert_eq!(v1.codec(), DAG_PB);
        assert_ne!(v1, Cid::new_v1(RAW, sha256(&big)));
        assert_eq!(file_cid(&big, CidVersion::V0).version(), cid::Version::V0);
    }
}
