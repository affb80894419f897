//! Reading a UnixFS file back from its blocks, trusting no one: every block
//! is checked against the id that names it (its sha2-256 digest) before it
//! is used, so a file fetched from any IPFS gateway by its id is the file
//! the id names, or an error. The inverse of [`crate::unixfs`] for the
//! layouts `ipfs add` writes: raw leaves, dag-pb leaves with UnixFS `File`
//! (or `Raw`) data, and dag-pb parents whose `Data` may carry bytes before
//! their children's.

use cid::Cid;
use sha2::{Digest, Sha256};

const SHA2_256: u64 = 0x12;
const RAW: u64 = 0x55;
const DAG_PB: u64 = 0x70;

/// The largest file read (models are big; a lie about size is not).
pub const MAX_FILE: u64 = 4 << 30;

/// The deepest tree read.
const MAX_DEPTH: usize = 32;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The root id is not a CID.
    #[error("`{id}` is not a CID: {reason}")]
    BadId {
        /// The id given.
        id: String,
        /// Why.
        reason: String,
    },
    /// Fetching a block failed.
    #[error("block {cid}: {reason}")]
    Fetch {
        /// The block's id.
        cid: Cid,
        /// Why.
        reason: String,
    },
    /// A block is not what its id names.
    #[error("block {cid} does not match its id (its sha2-256 is {actual}): the gateway sent other bytes")]
    Mismatch {
        /// The block's id.
        cid: Cid,
        /// The digest of what arrived, hex.
        actual: String,
    },
    /// An id nml cannot check or a block it cannot read.
    #[error("block {cid}: {reason}")]
    Unsupported {
        /// The block's id.
        cid: Cid,
        /// What is not supported.
        reason: String,
    },
}

/// What fetches a block by its id (the CID's string form).
pub type Fetch<'a> = dyn FnMut(&str) -> Result<Vec<u8>, String> + 'a;

/// Reads the file the CID `root` names, fetching each block with `fetch`.
pub fn read_file(root: &str, fetch: &mut Fetch<'_>) -> Result<Vec<u8>, ReadError> {
    let root: Cid = root.parse().map_err(|e| ReadError::BadId { id: root.to_owned(), reason: format!("{e}") })?;
    let mut out = Vec::new();
    read_node(&root, fetch, &mut out, 0)?;
    Ok(out)
}

fn read_node(cid: &Cid, fetch: &mut Fetch<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), ReadError> {
    let unsupported = |reason: &str| ReadError::Unsupported { cid: *cid, reason: reason.to_owned() };
    if depth > MAX_DEPTH {
        return Err(unsupported("the tree is deeper than any file nml reads"));
    }
    if cid.hash().code() != SHA2_256 {
        return Err(unsupported("only sha2-256 ids can be checked"));
    }
    let block = fetch(&cid.to_string()).map_err(|reason| ReadError::Fetch { cid: *cid, reason })?;
    let digest = Sha256::digest(&block);
    if digest[..] != *cid.hash().digest() {
        return Err(ReadError::Mismatch { cid: *cid, actual: hex(&digest) });
    }
    match cid.codec() {
        RAW => append(out, &block, cid),
        DAG_PB => {
            let node = PbNode::decode(&block).map_err(|e| unsupported(&format!("not a dag-pb node: {e}")))?;
            if let Some(data) = &node.data {
                let file = unixfs_data(data).map_err(|e| unsupported(&format!("not UnixFS data: {e}")))?;
                append(out, file, cid)?;
            }
            for link in &node.links {
                let child = Cid::try_from(link.as_slice()).map_err(|e| unsupported(&format!("a bad link: {e}")))?;
                read_node(&child, fetch, out, depth + 1)?;
            }
            Ok(())
        }
        other => Err(unsupported(&format!("codec 0x{other:x} is not raw or dag-pb"))),
    }
}

fn append(out: &mut Vec<u8>, bytes: &[u8], cid: &Cid) -> Result<(), ReadError> {
    if out.len() as u64 + bytes.len() as u64 > MAX_FILE {
        return Err(ReadError::Unsupported { cid: *cid, reason: format!("the file is larger than {MAX_FILE} bytes") });
    }
    out.extend_from_slice(bytes);
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A dag-pb node: its links' hashes in order, and its data.
struct PbNode {
    links: Vec<Vec<u8>>,
    data: Option<Vec<u8>>,
}

impl PbNode {
    fn decode(block: &[u8]) -> Result<Self, String> {
        let mut node = Self { links: Vec::new(), data: None };
        for (field, value) in fields(block)? {
            match (field, value) {
                (1, Field::Bytes(data)) => node.data = Some(data.to_vec()),
                (2, Field::Bytes(link)) => {
                    let hash = fields(link)?
                        .into_iter()
                        .find_map(|(f, v)| match (f, v) {
                            (1, Field::Bytes(h)) => Some(h.to_vec()),
                            _ => None,
                        })
                        .ok_or("a link without a hash")?;
                    node.links.push(hash);
                }
                _ => return Err(format!("unexpected field {field}")),
            }
        }
        Ok(node)
    }
}

/// The file bytes of a UnixFS `Data` message (type `Raw` = 0 or `File` = 2).
fn unixfs_data(data: &[u8]) -> Result<&[u8], String> {
    let mut kind = None;
    let mut bytes: &[u8] = &[];
    for (field, value) in fields(data)? {
        match (field, value) {
            (1, Field::Varint(t)) => kind = Some(t),
            (2, Field::Bytes(b)) => bytes = b,
            _ => {}
        }
    }
    match kind {
        Some(0 | 2) => Ok(bytes),
        Some(t) => Err(format!("UnixFS type {t} is not a file")),
        None => Err("no UnixFS type".to_owned()),
    }
}

enum Field<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
}

/// The fields of a protobuf message (varints and length-delimited only).
fn fields(mut bytes: &[u8]) -> Result<Vec<(u64, Field<'_>)>, String> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let key = varint(&mut bytes)?;
        let value = match key & 7 {
            0 => Field::Varint(varint(&mut bytes)?),
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).map_err(|e| e.to_string())?;
                let (value, rest) = bytes.split_at_checked(len).ok_or("a field runs past the end")?;
                bytes = rest;
                Field::Bytes(value)
            }
            wire => return Err(format!("wire type {wire}")),
        };
        out.push((key >> 3, value));
    }
    Ok(out)
}

fn varint(bytes: &mut &[u8]) -> Result<u64, String> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or("a varint runs past the end")?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(value);
        }
    }
    Err("a varint longer than 64 bits".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::unixfs::{CHUNK_SIZE, CidVersion, blocks};
    use std::collections::HashMap;

    fn store(bytes: &[u8], version: CidVersion) -> (Cid, HashMap<Cid, Vec<u8>>) {
        let (root, blocks) = blocks(bytes, version);
        (root, blocks.into_iter().collect())
    }

    #[test]
    fn files_of_every_layout_read_back() {
        for size in [0, 1, CHUNK_SIZE, CHUNK_SIZE + 1, CHUNK_SIZE * 3 + 7] {
            let file: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
            for version in [CidVersion::V0, CidVersion::V1] {
                let (root, blocks) = store(&file, version);
                let read = read_file(&root.to_string(), &mut |cid| {
                    blocks.get(&cid.parse::<Cid>().unwrap()).cloned().ok_or_else(|| "missing".to_owned())
                });
                assert_eq!(read.unwrap(), file, "{size} bytes, {version:?}");
            }
        }
    }

    #[test]
    fn a_tampered_block_is_refused() {
        let file = vec![5u8; CHUNK_SIZE + 10];
        let (root, mut blocks) = store(&file, CidVersion::V1);
        let leaf = *blocks.keys().find(|c| c.codec() == RAW).unwrap();
        blocks.get_mut(&leaf).unwrap()[0] ^= 1;
        let err = read_file(&root.to_string(), &mut |cid| {
            blocks.get(&cid.parse::<Cid>().unwrap()).cloned().ok_or_else(|| "missing".to_owned())
        });
        assert!(matches!(err, Err(ReadError::Mismatch { cid, .. }) if cid == leaf));
    }
}
