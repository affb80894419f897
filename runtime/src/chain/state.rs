//! World state: the accounts, their storage and the contract codes at the head
//! of the chain, the per-block undo records that rebuild older states, and the
//! read-only views that revm executes against.
//!
//! In fork mode the state is laid over a [`ForkSource`]: what the devnet
//! never wrote is read from the remote chain (once, then cached there), and
//! an account is copied into the local state the first time it is written.
//! Reads can then fail (the remote is down), hence [`ForkError`] in the
//! signatures; without a fork they never do.

use std::collections::VecDeque;
use std::sync::Arc;

use alloy_primitives::map::{DefaultHashBuilder, HashMap, HashSet};
use alloy_primitives::{Address, B256, U256};
use revm::DatabaseRef;
use revm::bytecode::Bytecode;
use revm::primitives::KECCAK_EMPTY;
use revm::state::{AccountInfo, EvmState};
use serde::{Deserialize, Serialize};

use crate::fork::{ForkAccount, ForkError, ForkSource};

/// A persistent hash map: cloning it is O(1) and a clone shares its nodes
/// until either side writes, which copies only the path it writes. The head
/// state's accounts are one: a read-only view (an `eth_call`, a
/// simulation), a snapshot or a test's fork shares the state, and the next
/// block then writes beside it instead of copying every account. A write
/// copies the map's node that holds the account, with its neighbours; their
/// storage is behind an `Arc`, so a neighbour costs a reference count, and
/// only the account whose slots are written has its storage copied (once
/// while it is shared). Storage stays a plain map: a persistent one per
/// account cost memory and time on every block for a case that copies one
/// account.
pub type SharedMap<K, V> = imbl::GenericHashMap<K, V, DefaultHashBuilder, imbl::shared_ptr::DefaultSharedPtr>;

/// One account of the world state.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DbAccount {
    /// Balance in wei.
    pub balance: U256,
    /// Number of transactions sent (or, for a contract, contracts created).
    pub nonce: u64,
    /// keccak256 of the code; [`KECCAK_EMPTY`] for an account without code.
    pub code_hash: B256,
    /// Storage slots that are not zero; shared with the copies of this
    /// account until one of them writes a slot.
    storage: Arc<HashMap<U256, U256>>,
    /// The sum (mod 2^256) of `keccak256(slot ‖ value)` over `storage`, kept
    /// as slots change so that digesting the account never walks its storage.
    storage_sum: U256,
    /// What this account added to [`StateDb`]'s digest sum when it was last
    /// folded in (see [`StateDb::digest`]).
    folded: U256,
    /// In fork mode, an account copied from the remote: a slot that
    /// `storage` does not hold is read from the remote, so `storage` keeps
    /// zeros written over the remote's values.
    remote_storage: bool,
}

/// `keccak256(a ‖ b)` as a number, the unit of the state digest's sums.
fn pair_hash(a: &[u8], b: &[u8]) -> U256 {
    let mut hasher = alloy_primitives::Keccak256::new();
    hasher.update(a);
    hasher.update(b);
    U256::from_be_bytes(hasher.finalize().0)
}

impl DbAccount {
    /// Storage slots that are not zero (in fork mode, also the slots
    /// written to zero over a remote value).
    pub fn storage(&self) -> &HashMap<U256, U256> {
        &self.storage
    }

    /// Sets one storage slot (zero removes it, unless the remote may hold a
    /// value under it).
    pub fn set_slot(&mut self, slot: U256, value: U256) {
        let key = slot.to_be_bytes::<32>();
        let storage = Arc::make_mut(&mut self.storage);
        let previous =
            if value.is_zero() && !self.remote_storage { storage.remove(&slot) } else { storage.insert(slot, value) };
        if let Some(old) = previous.filter(|old| !old.is_zero()) {
            self.storage_sum = self.storage_sum.wrapping_sub(pair_hash(&key, &old.to_be_bytes::<32>()));
        }
        if !value.is_zero() {
            self.storage_sum = self.storage_sum.wrapping_add(pair_hash(&key, &value.to_be_bytes::<32>()));
        }
    }

    /// Removes every storage slot (the remote's too, in fork mode).
    pub fn clear_storage(&mut self) {
        self.storage = Arc::default();
        self.storage_sum = U256::ZERO;
        self.remote_storage = false;
    }

    fn header(&self) -> AccountHeader {
        AccountHeader { balance: self.balance, nonce: self.nonce, code_hash: self.code_hash }
    }

    /// This account's share of the state digest.
    fn digest_share(&self, address: &Address) -> U256 {
        let mut hasher = alloy_primitives::Keccak256::new();
        hasher.update(address);
        hasher.update(self.balance.to_be_bytes::<32>());
        hasher.update(self.nonce.to_be_bytes());
        hasher.update(self.code_hash);
        hasher.update(self.storage_sum.to_be_bytes::<32>());
        U256::from_be_bytes(hasher.finalize().0)
    }
}

/// The balance, nonce and code hash of an account, without its storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountHeader {
    /// Balance in wei.
    pub balance: U256,
    /// Nonce.
    pub nonce: u64,
    /// Code hash.
    pub code_hash: B256,
}

impl From<ForkAccount> for AccountHeader {
    fn from(account: ForkAccount) -> Self {
        Self { balance: account.balance, nonce: account.nonce, code_hash: account.code_hash }
    }
}

impl AccountHeader {
    fn info(&self) -> AccountInfo {
        AccountInfo {
            balance: self.balance,
            nonce: self.nonce,
            code_hash: self.code_hash,
            code: None,
            ..Default::default()
        }
    }
}

/// The world state at the head of the chain.
///
/// It keeps a digest of itself up to date as it changes (see
/// [`StateDb::digest`]): the cost of a block's digest is what the block
/// touched, whatever the size of the state.
#[derive(Debug, Clone, Default)]
pub struct StateDb {
    accounts: SharedMap<Address, DbAccount>,
    codes: SharedMap<B256, Bytecode>,
    /// The sum (mod 2^256) of every account's folded digest share.
    digest_sum: U256,
    /// Accounts changed since the digest was last taken.
    dirty: HashSet<Address>,
    /// In fork mode, the remote state under this one.
    fork: Option<Arc<ForkSource>>,
    /// In fork mode, accounts removed here that the remote may still hold.
    deleted: SharedMap<Address, ()>,
}

/// What a block changed, as the values before it: applying a block's undo to
/// the state after it gives the state before it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BlockUndo {
    accounts: Vec<(Address, Option<AccountHeader>)>,
    storage: Vec<(Address, U256, U256)>,
}

impl StateDb {
    /// An empty state laid over the remote state `fork`.
    pub fn forked(fork: Arc<ForkSource>) -> Self {
        Self { fork: Some(fork), ..Self::default() }
    }

    /// The remote state under this one, in fork mode.
    pub fn fork(&self) -> Option<&Arc<ForkSource>> {
        self.fork.as_ref()
    }

    /// The account at `address`, if this state holds it (in fork mode, the
    /// remote may hold one that was never copied here: see [`StateDb::header`]).
    pub fn account(&self, address: &Address) -> Option<&DbAccount> {
        self.accounts.get(address)
    }

    /// Every account this state holds, in no particular order.
    pub fn accounts(&self) -> impl Iterator<Item = (&Address, &DbAccount)> {
        self.accounts.iter()
    }

    /// The code stored under `hash` in this state.
    pub fn code(&self, hash: &B256) -> Option<&Bytecode> {
        self.codes.get(hash)
    }

    /// Balance, nonce and code hash of `address`; `None` if it does not
    /// exist (here, or in fork mode on the remote).
    pub fn header(&self, address: &Address) -> Result<Option<AccountHeader>, ForkError> {
        match self.accounts.get(address) {
            Some(account) => Ok(Some(account.header())),
            None => self.remote_account(address).map(|a| a.map(AccountHeader::from)),
        }
    }

    /// One storage slot of `address`.
    pub fn slot(&self, address: &Address, slot: U256) -> Result<U256, ForkError> {
        let remote = match self.accounts.get(address) {
            Some(account) => match account.storage.get(&slot) {
                Some(value) => return Ok(*value),
                None => account.remote_storage,
            },
            None => !self.deleted.contains_key(address),
        };
        match &self.fork {
            Some(fork) if remote => fork.storage(*address, slot),
            _ => Ok(U256::ZERO),
        }
    }

    /// The code stored under `hash`, here or (in fork mode) read from the remote.
    fn code_owned(&self, hash: &B256) -> Option<Bytecode> {
        self.codes.get(hash).cloned().or_else(|| self.fork.as_ref().and_then(|f| f.code(hash)))
    }

    /// In fork mode, the remote's account at `address` unless it was removed here.
    fn remote_account(&self, address: &Address) -> Result<Option<ForkAccount>, ForkError> {
        match &self.fork {
            Some(fork) if !self.deleted.contains_key(address) => fork.account(*address),
            _ => Ok(None),
        }
    }

    /// The account at `address`, created if absent: copied from the remote
    /// in fork mode, empty otherwise.
    pub fn account_mut(&mut self, address: Address) -> &mut DbAccount {
        self.dirty.insert(address);
        if !self.accounts.contains_key(&address) {
            let remote = self.remote_account(&address).unwrap_or_else(|e| {
                tracing::warn!(%address, %e, "fork: the account is taken as empty");
                None
            });
            self.deleted.remove(&address);
            let account = match remote {
                Some(remote) => DbAccount {
                    balance: remote.balance,
                    nonce: remote.nonce,
                    code_hash: remote.code_hash,
                    remote_storage: true,
                    ..Default::default()
                },
                None => DbAccount { code_hash: KECCAK_EMPTY, ..Default::default() },
            };
            self.accounts.insert(address, account);
        }
        // Inserted above when absent.
        self.accounts.get_mut(&address).expect("the account exists")
    }

    /// Removes the account at `address` with its storage.
    fn remove_account(&mut self, address: &Address) {
        if let Some(removed) = self.accounts.remove(address) {
            self.digest_sum = self.digest_sum.wrapping_sub(removed.folded);
        }
        if self.fork.is_some() {
            self.deleted.insert(*address, ());
        }
    }

    /// [`StateDb::header`] for the bookkeeping of a write, which has no
    /// caller to fail to: the values were read (and cached) by the execution
    /// that wrote them, so a remote failure here is only logged.
    fn header_for_undo(&self, address: &Address) -> Option<AccountHeader> {
        self.header(address).unwrap_or_else(|e| {
            tracing::warn!(%address, %e, "fork: the account's earlier state is taken as empty");
            None
        })
    }

    fn slot_for_undo(&self, address: &Address, slot: U256) -> U256 {
        self.slot(address, slot).unwrap_or_else(|e| {
            tracing::warn!(%address, %slot, %e, "fork: the slot's earlier value is taken as zero");
            U256::ZERO
        })
    }

    /// A digest of the whole state, for the header's `stateRoot` field.
    ///
    /// It is not the Merkle-Patricia root (that would cost a trie per
    /// block): it is `keccak256` of the sum, mod 2^256, of one hash per
    /// account (`keccak256(address ‖ balance ‖ nonce ‖ codeHash ‖ Σ
    /// keccak256(slot ‖ value))`). It changes when the state does, which is
    /// what tools comparing blocks rely on, and taking it costs only the
    /// accounts changed since it was last taken.
    pub fn digest(&mut self) -> B256 {
        for address in std::mem::take(&mut self.dirty) {
            if let Some(account) = self.accounts.get_mut(&address) {
                let share = account.digest_share(&address);
                self.digest_sum = self.digest_sum.wrapping_sub(account.folded).wrapping_add(share);
                account.folded = share;
            }
        }
        alloy_primitives::keccak256(self.digest_sum.to_be_bytes::<32>())
    }

    /// Sets the code of `address` (an empty `code` removes it).
    pub fn set_code(&mut self, address: Address, code: Bytecode) {
        let hash = if code.is_empty() { KECCAK_EMPTY } else { code.hash_slow() };
        if hash != KECCAK_EMPTY {
            self.codes.insert(hash, code);
        }
        self.account_mut(address).code_hash = hash;
    }

    /// Sets one storage slot of `address`.
    pub fn set_storage(&mut self, address: Address, slot: U256, value: U256) {
        self.account_mut(address).set_slot(slot, value);
    }

    /// Applies the state changes of executed transactions, returning the undo
    /// record that restores the state before them.
    pub fn commit(&mut self, changes: EvmState) -> BlockUndo {
        let mut undo = BlockUndo::default();
        for (address, account) in changes {
            if !account.is_touched() {
                continue;
            }
            undo.accounts.push((address, self.header_for_undo(&address)));
            let wipe = account.is_selfdestructed() || account.is_created();
            if wipe && let Some(previous) = self.accounts.get(&address) {
                undo.storage.extend(previous.storage.iter().map(|(slot, value)| (address, *slot, *value)));
            }
            if account.is_selfdestructed() {
                self.remove_account(&address);
                continue;
            }
            if let Some(code) = account.info.code.as_ref()
                && account.info.code_hash != KECCAK_EMPTY
            {
                self.codes.entry(account.info.code_hash).or_insert_with(|| code.clone());
            }
            // Compared with what this state holds, not with revm's
            // `original_value`: that is re-baselined whenever a later
            // transaction of the same machine touches the slot, so a slot
            // written by one transaction and only read by a later one would
            // look unchanged.
            let written: Vec<(U256, U256, U256)> = account
                .storage
                .iter()
                .filter_map(|(slot, v)| {
                    let held = if wipe { U256::ZERO } else { self.slot_for_undo(&address, *slot) };
                    (v.present_value != held).then_some((*slot, v.present_value, held))
                })
                .collect();
            if !wipe {
                undo.storage.extend(written.iter().map(|(slot, _, held)| (address, *slot, *held)));
            }
            let entry = self.account_mut(address);
            entry.balance = account.info.balance;
            entry.nonce = account.info.nonce;
            entry.code_hash = account.info.code_hash;
            if wipe {
                entry.clear_storage();
            }
            for (slot, value, _) in written {
                entry.set_slot(slot, value);
            }
        }
        undo
    }

    /// Records the current value of everything `address` holds, for an undo
    /// of a direct edit (`anvil_setBalance` and the like).
    pub fn undo_of(&self, address: Address, slots: &[U256]) -> BlockUndo {
        BlockUndo {
            accounts: vec![(address, self.header_for_undo(&address))],
            storage: slots.iter().map(|slot| (address, *slot, self.slot_for_undo(&address, *slot))).collect(),
        }
    }
}

impl BlockUndo {
    /// Adds the entries of `other` recorded after `self` (so `self`'s older
    /// values win when both hold the same key).
    pub fn extend_newer(&mut self, other: BlockUndo) {
        self.accounts.extend(other.accounts);
        self.storage.extend(other.storage);
    }
}

/// Differences laid over a [`StateDb`]: an older state rebuilt from undo
/// records, the state overrides of an `eth_call`, or both.
#[derive(Debug, Clone, Default)]
pub struct Overlay {
    accounts: HashMap<Address, Option<AccountHeader>>,
    storage: HashMap<(Address, U256), U256>,
    cleared: HashSet<Address>,
    codes: HashMap<B256, Bytecode>,
}

impl Overlay {
    /// Applies one block's undo record; apply the newest block first.
    pub fn apply_undo(&mut self, undo: &BlockUndo) {
        // Entries are recorded oldest first; the oldest value of a key wins.
        for (address, account) in undo.accounts.iter().rev() {
            self.accounts.insert(*address, *account);
        }
        for (address, slot, value) in undo.storage.iter().rev() {
            self.storage.insert((*address, *slot), *value);
        }
    }

    /// Overrides the balance, nonce or code of `address` as seen through `base`.
    pub fn set_account(&mut self, base: &StateView, address: Address, edit: impl FnOnce(&mut AccountHeader)) {
        let mut header = match self.accounts.get(&address).copied().flatten() {
            Some(existing) => existing,
            None => match base.basic_ref(address) {
                Ok(Some(info)) => AccountHeader { balance: info.balance, nonce: info.nonce, code_hash: info.code_hash },
                _ => AccountHeader { balance: U256::ZERO, nonce: 0, code_hash: KECCAK_EMPTY },
            },
        };
        edit(&mut header);
        self.accounts.insert(address, Some(header));
    }

    /// Overrides the code of `address`.
    pub fn set_code(&mut self, base: &StateView, address: Address, code: Bytecode) {
        let hash = if code.is_empty() { KECCAK_EMPTY } else { code.hash_slow() };
        self.codes.insert(hash, code);
        self.set_account(base, address, |a| a.code_hash = hash);
    }

    /// Overrides one storage slot.
    pub fn set_storage(&mut self, address: Address, slot: U256, value: U256) {
        self.storage.insert((address, slot), value);
    }

    /// Makes every slot of `address` read as zero unless overridden.
    pub fn clear_storage(&mut self, address: Address) {
        self.cleared.insert(address);
        self.storage.retain(|(a, _), _| *a != address);
    }
}

/// The recent block hashes the `BLOCKHASH` opcode may read.
#[derive(Debug, Clone, Default)]
pub struct RecentHashes {
    /// Number of the first hash.
    pub first: u64,
    /// Consecutive hashes from `first` on (at most 256).
    pub hashes: VecDeque<B256>,
}

/// A read-only world state for revm: the head state, optionally with an
/// [`Overlay`] on top. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StateView {
    base: Arc<StateDb>,
    overlay: Option<Arc<Overlay>>,
    hashes: Arc<RecentHashes>,
}

impl StateView {
    /// A view of `base`, with `overlay` on top when given.
    pub fn new(base: Arc<StateDb>, overlay: Option<Arc<Overlay>>, hashes: Arc<RecentHashes>) -> Self {
        Self { base, overlay, hashes }
    }

    /// The same view with `overlay` laid over it (merged over any overlay it has).
    pub fn with_overlay(&self, mut overlay: Overlay) -> Self {
        if let Some(existing) = &self.overlay {
            let mut merged = (**existing).clone();
            merged.accounts.extend(overlay.accounts.drain());
            for address in overlay.cleared.drain() {
                merged.clear_storage(address);
            }
            merged.storage.extend(overlay.storage.drain());
            merged.codes.extend(overlay.codes.drain());
            overlay = merged;
        }
        Self { base: self.base.clone(), overlay: Some(Arc::new(overlay)), hashes: self.hashes.clone() }
    }

    /// Balance, nonce and code hash of `address`; `None` if it does not exist.
    pub fn header(&self, address: Address) -> Result<Option<AccountHeader>, ForkError> {
        if let Some(overlay) = &self.overlay
            && let Some(account) = overlay.accounts.get(&address)
        {
            return Ok(*account);
        }
        self.base.header(&address)
    }

    /// The nonce of `address` (0 for an account that does not exist).
    pub fn nonce(&self, address: Address) -> Result<u64, ForkError> {
        Ok(self.header(address)?.map(|a| a.nonce).unwrap_or_default())
    }

    /// The nonce of `address` for the pool's bookkeeping, which has no caller
    /// to fail to: a sender's account was read when its transaction was
    /// admitted, so only a remote that is down and an account never read
    /// make this 0 (logged).
    pub fn pool_nonce(&self, address: Address) -> u64 {
        self.nonce(address).unwrap_or_else(|e| {
            tracing::warn!(%address, %e, "fork: the nonce is taken as 0");
            0
        })
    }

    /// The code of `address` (empty when it has none).
    pub fn code_of(&self, address: Address) -> Result<Bytecode, ForkError> {
        match self.header(address)? {
            Some(h) if h.code_hash != KECCAK_EMPTY => self.code_by_hash_ref(h.code_hash),
            _ => Ok(Bytecode::default()),
        }
    }

    /// One storage slot.
    pub fn storage_at(&self, address: Address, slot: U256) -> Result<U256, ForkError> {
        self.storage_ref(address, slot)
    }
}

impl DatabaseRef for StateView {
    type Error = ForkError;

    fn basic_ref(&self, address: Address) -> Result<Option<AccountInfo>, Self::Error> {
        Ok(self.header(address)?.map(|a| a.info()))
    }

    fn code_by_hash_ref(&self, code_hash: B256) -> Result<Bytecode, Self::Error> {
        if let Some(overlay) = &self.overlay
            && let Some(code) = overlay.codes.get(&code_hash)
        {
            return Ok(code.clone());
        }
        Ok(self.base.code_owned(&code_hash).unwrap_or_default())
    }

    fn storage_ref(&self, address: Address, index: U256) -> Result<U256, Self::Error> {
        if let Some(overlay) = &self.overlay {
            if let Some(value) = overlay.storage.get(&(address, index)) {
                return Ok(*value);
            }
            if overlay.cleared.contains(&address) {
                return Ok(U256::ZERO);
            }
        }
        self.base.slot(&address, index)
    }

    fn block_hash_ref(&self, number: u64) -> Result<B256, Self::Error> {
        let hashes = &self.hashes;
        let recent = number
            .checked_sub(hashes.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| hashes.hashes.get(i).copied());
        match (recent, &self.base.fork) {
            (Some(hash), _) => Ok(hash),
            // Before the fork block: the remote's.
            (None, Some(fork)) if number < fork.number() && number < hashes.first => fork.block_hash(number),
            (None, _) => Ok(B256::ZERO),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(accounts: u64) -> StateDb {
        let mut state = StateDb::default();
        for i in 0..accounts {
            let address = Address::left_padding_from(&i.to_be_bytes());
            state.account_mut(address).balance = U256::from(i);
            state.set_storage(address, U256::from(1), U256::from(i + 1));
        }
        state
    }

    #[test]
    fn a_view_keeps_its_state_while_the_head_moves_on() {
        let mut head = Arc::new(state_with(1_000));
        let before = Arc::make_mut(&mut head).digest();
        let view = Arc::clone(&head);
        let one = Address::left_padding_from(&1u64.to_be_bytes());
        let state = Arc::make_mut(&mut head);
        state.account_mut(one).balance = U256::from(7);
        state.set_storage(one, U256::from(1), U256::from(9));
        assert_eq!(head.account(&one).map(|a| a.balance), Some(U256::from(7)));
        assert_eq!(head.account(&one).and_then(|a| a.storage().get(&U256::from(1)).copied()), Some(U256::from(9)));
        // The view shares what did not change and still reads the old values.
        assert_eq!(view.account(&one).map(|a| a.balance), Some(U256::from(1)));
        assert_eq!(view.account(&one).and_then(|a| a.storage().get(&U256::from(1)).copied()), Some(U256::from(2)));
        assert_eq!((*view).clone().digest(), before);
        assert_ne!(Arc::make_mut(&mut head).digest(), before);
        assert_eq!(view.accounts().count(), 1_000);
    }

    #[test]
    fn writing_a_shared_account_copies_only_its_own_storage() {
        let mut head = Arc::new(state_with(10));
        let view = Arc::clone(&head);
        let one = Address::left_padding_from(&1u64.to_be_bytes());
        Arc::make_mut(&mut head).set_storage(one, U256::from(1), U256::from(9));
        // The ten accounts share a node of the map, copied whole by the
        // write: the other nine still share their storage with the view.
        for i in 0..10u64 {
            let address = Address::left_padding_from(&i.to_be_bytes());
            let (now, then) = (head.account(&address).unwrap().storage(), view.account(&address).unwrap().storage());
            assert_eq!(std::ptr::eq(now, then), address != one, "account {i}");
        }
    }
}
