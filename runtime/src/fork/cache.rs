//! The disk cache of one fork: a file per chain id and block, named by the
//! block's number and hash (`<root>/<chain id>/<number>-<hash>.jsonl`), with
//! one JSON line per value read from the remote, appended (in one write) as
//! it is read. What a remote chain held at a block never changes, so a
//! second run at the same block reads nothing twice, and two devnets forking
//! the same block at once append the same facts. The first line names the
//! block again: a file that does not begin with it is started afresh.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use alloy_primitives::{Address, B256, Bytes, U256};
use parking_lot::Mutex;
use revm::bytecode::Bytecode;
use serde::{Deserialize, Serialize};

use super::{ForkAccount, Known};

/// One value read from the remote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub(super) enum Entry {
    /// The first line: the block the file caches.
    Block { number: u64, hash: B256 },
    /// An account (`None`: it does not exist).
    Account { address: Address, account: Option<ForkAccount> },
    /// A code.
    Code { hash: B256, code: Bytes },
    /// A storage slot.
    Slot { address: Address, slot: U256, value: U256 },
    /// The hash of an earlier block.
    Hash { number: u64, hash: B256 },
}

impl Entry {
    /// Adds this value to what is known.
    pub(super) fn learn(self, known: &mut Known) {
        match self {
            Self::Block { .. } => {}
            Self::Account { address, account } => {
                known.accounts.insert(address, account);
            }
            Self::Code { hash, code } => {
                known.codes.insert(hash, Bytecode::new_raw(code));
            }
            Self::Slot { address, slot, value } => {
                known.slots.insert((address, slot), value);
            }
            Self::Hash { number, hash } => {
                known.hashes.insert(number, hash);
            }
        }
    }
}

/// The open cache file, appended to under a lock.
#[derive(Debug)]
pub(super) struct DiskCache {
    file: Mutex<File>,
}

impl DiskCache {
    /// Opens (or creates) the cache of block `number` with hash `hash` at
    /// `path`, returning what it holds. A line that does not parse (the end
    /// of a run that was killed mid-write) is skipped.
    pub(super) fn open(path: &Path, number: u64, hash: B256) -> std::io::Result<(Self, Vec<Entry>)> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let mut entries = Vec::new();
        if let Ok(file) = File::open(path) {
            let mut lines = BufReader::new(file).lines().map_while(Result::ok);
            let first = lines.next().and_then(|line| serde_json::from_str::<Entry>(&line).ok());
            if first == Some(Entry::Block { number, hash }) {
                entries.extend(lines.filter_map(|line| serde_json::from_str(&line).ok()));
            } else if first.is_some() {
                tracing::warn!(path = %path.display(), "fork: the cache file does not begin with its block; starting afresh");
            }
        }
        let file = if entries.is_empty() {
            let mut file = File::create(path)?;
            writeln!(file, "{}", json_line(&Entry::Block { number, hash }))?;
            file
        } else {
            let torn = std::fs::read(path)?.last() != Some(&b'\n');
            let mut file = OpenOptions::new().append(true).open(path)?;
            if torn {
                file.write_all(b"\n")?;
            }
            file
        };
        Ok((Self { file: Mutex::new(file) }, entries))
    }

    /// Appends one value; a failed write only costs a later run a read.
    pub(super) fn append(&self, entry: &Entry) {
        let line = format!("{}\n", json_line(entry));
        if let Err(e) = self.file.lock().write_all(line.as_bytes()) {
            tracing::warn!(%e, "fork: cannot write the disk cache");
        }
    }
}

fn json_line(entry: &Entry) -> String {
    // Serialising these plain values cannot fail.
    serde_json::to_string(entry).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cache_reads_back_what_was_appended_and_only_for_its_block() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1").join("7.jsonl");
        let hash = B256::repeat_byte(7);
        let slot = Entry::Slot { address: Address::repeat_byte(1), slot: U256::from(2), value: U256::from(3) };
        let account = Entry::Account {
            address: Address::repeat_byte(1),
            account: Some(ForkAccount { balance: U256::from(5), nonce: 1, code_hash: B256::repeat_byte(9) }),
        };
        let (cache, entries) = DiskCache::open(&path, 7, hash).unwrap();
        assert!(entries.is_empty());
        cache.append(&slot);
        cache.append(&account);
        drop(cache);
        // A torn last line is skipped.
        std::fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(b"{\"kind\":\"slo").unwrap();
        let (_, entries) = DiskCache::open(&path, 7, hash).unwrap();
        assert_eq!(entries, vec![slot.clone(), account]);
        // The same number with another hash: nothing is trusted.
        let (_, entries) = DiskCache::open(&path, 7, B256::repeat_byte(8)).unwrap();
        assert!(entries.is_empty());
    }
}
