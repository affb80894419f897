//! Fuzz tests: a `test…` function with parameters runs [`FuzzConfig::runs`]
//! times, each time with arguments drawn for its parameter types, each run a
//! transaction on its own fork of the post-`setUp` chain. Arguments that
//! `vm.assume` rejects are drawn again; a failing run is shrunk to simpler
//! arguments that still fail ([`Shrink`]) and reported as the counterexample.
//!
//! Draws are deterministic: the generator is seeded from
//! [`FuzzConfig::seed`], the contract's name and the test's signature, so a
//! failure seen in CI is seen again on a laptop; another seed explores
//! other arguments.
//!
//! Numbers are drawn with a uniformly random bit length (small and large
//! values are equally likely), with edges (0, 1, the type's extremes, powers
//! of two and their neighbours) one draw in eight, and a constant of the
//! test contract's code ([`Dictionary`]) one draw in three of the rest;
//! addresses, fixed bytes, `bytes`, `string`, arrays and tuples are drawn
//! part by part.

use alloy_dyn_abi::{DynSolType, DynSolValue};
use alloy_primitives::{Address, B256, Bytes, I256, U256, keccak256};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};

/// How fuzz tests run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuzzConfig {
    /// Runs that must pass (rejected draws do not count).
    pub runs: u32,
    /// Seeds the draws, with the test's name.
    pub seed: u64,
}

impl Default for FuzzConfig {
    fn default() -> Self {
        Self { runs: 256, seed: 0 }
    }
}

impl FuzzConfig {
    /// Draws `vm.assume` may reject before the test fails: ten per run.
    pub fn max_rejects(&self) -> u32 {
        self.runs.saturating_mul(10).max(100)
    }
}

/// The longest `bytes`, `string` or dynamic array a draw makes.
const MAX_DYNAMIC_LEN: u64 = 64;
/// The most elements a drawn dynamic array has.
const MAX_ARRAY_LEN: u64 = 8;
/// The most runs shrinking a counterexample may take.
pub const SHRINK_BUDGET: u32 = 512;

/// Why a test's parameters cannot be fuzzed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FuzzError {
    /// The signature has no parameter list.
    #[error("`{0}` is not a function signature")]
    NotASignature(String),
    /// The parameter list is not made of ABI types.
    #[error("cannot read the parameters of `{signature}`: {reason}")]
    Unreadable {
        /// The signature.
        signature: String,
        /// Why, as the ABI parser says.
        reason: String,
    },
    /// A parameter's type cannot be drawn.
    #[error("cannot draw arguments of type `{0}` (function types are not fuzzed)")]
    Undrawable(String),
}

/// The parameter types of a function signature (`testSwap(uint256,address)`).
pub fn parameters(signature: &str) -> Result<Vec<DynSolType>, FuzzError> {
    let open = signature.find('(').ok_or_else(|| FuzzError::NotASignature(signature.to_owned()))?;
    let types = match DynSolType::parse(&signature[open..]) {
        Ok(DynSolType::Tuple(types)) => types,
        Ok(other) => vec![other],
        Err(e) => return Err(FuzzError::Unreadable { signature: signature.to_owned(), reason: e.to_string() }),
    };
    match types.iter().find(|t| !drawable(t)) {
        Some(t) => Err(FuzzError::Undrawable(t.to_string())),
        None => Ok(types),
    }
}

fn drawable(ty: &DynSolType) -> bool {
    match ty {
        DynSolType::Function => false,
        DynSolType::Array(t) | DynSolType::FixedArray(t, _) => drawable(t),
        DynSolType::Tuple(ts) => ts.iter().all(drawable),
        _ => true,
    }
}

/// The calldata of a run: the selector, then the arguments.
pub fn calldata(selector: [u8; 4], args: &[DynSolValue]) -> Bytes {
    let mut data = selector.to_vec();
    data.extend(DynSolValue::Tuple(args.to_vec()).abi_encode_params());
    data.into()
}

/// Arguments in words, as Solidity would write them: `(5, 0x…, "text")`.
pub fn describe(args: &[DynSolValue]) -> String {
    let parts: Vec<String> = args.iter().map(describe_value).collect();
    format!("({})", parts.join(", "))
}

/// One value in words, as [`describe`] writes each.
pub fn describe_value(value: &DynSolValue) -> String {
    match value {
        DynSolValue::Bool(b) => b.to_string(),
        DynSolValue::Int(i, _) => i.to_string(),
        DynSolValue::Uint(u, _) => u.to_string(),
        DynSolValue::Address(a) => a.to_checksum(None),
        DynSolValue::FixedBytes(word, size) => format!("0x{}", alloy_primitives::hex::encode(&word[..*size])),
        DynSolValue::Bytes(b) => format!("0x{}", alloy_primitives::hex::encode(b)),
        DynSolValue::String(s) => serde_json::Value::String(s.clone()).to_string(),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) => {
            format!("[{}]", items.iter().map(describe_value).collect::<Vec<_>>().join(", "))
        }
        DynSolValue::Tuple(items) => describe(items),
        DynSolValue::CustomStruct { name, prop_names, tuple } => {
            let fields: Vec<String> = prop_names
                .iter()
                .zip(tuple)
                .map(|(field, value)| format!("{field}: {}", describe_value(value)))
                .collect();
            format!("{name}({{{}}})", fields.join(", "))
        }
        other => format!("{other:?}"),
    }
}

/// Values for draws to pick from (a value a contract compares its input
/// with is one it pushes, or one it stored or logged): the operands of a
/// contract's `PUSH` instructions but those that are jump targets, and for
/// invariant tests the words of the events the calls emit
/// ([`Dictionary::learn`]), at most [`Dictionary::MAX`] of them. The
/// metadata solc appends to code (its hash changes with a comment) is not
/// read, so the draws do not either.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dictionary {
    words: Vec<U256>,
    seen: std::collections::HashSet<U256>,
}

impl Dictionary {
    /// The most values kept.
    pub const MAX: usize = 4096;

    /// The constants of runtime code `code` (which holds the creation code
    /// of the contracts it creates).
    pub fn from_code(code: &[u8]) -> Self {
        let mut dictionary = Self::default();
        dictionary.add_code(code);
        dictionary
    }

    /// Adds the constants of runtime code `code`.
    pub fn add_code(&mut self, code: &[u8]) {
        let instructions = || Instructions { code, at: 0 };
        let jumpdests: std::collections::HashSet<usize> =
            instructions().filter(|(_, op, _)| *op == JUMPDEST).map(|(at, _, _)| at).collect();
        for (_, op, operand) in instructions() {
            if self.words.len() >= Self::MAX {
                return;
            }
            if !(PUSH1..=PUSH32).contains(&op) {
                continue;
            }
            // An operand cut short by the end of the code is read as the EVM
            // reads it: padded with zeros on the right.
            let len = usize::from(op - PUSH1 + 1);
            let mut padded = [0u8; 32];
            padded[..operand.len()].copy_from_slice(operand);
            let word = U256::from_be_slice(&padded[..len]);
            let target = len <= 2 && usize::try_from(word).is_ok_and(|at| jumpdests.contains(&at));
            if !target {
                self.learn(word);
            }
        }
    }

    /// Adds `word`, unless it is already known or the dictionary is full.
    pub fn learn(&mut self, word: U256) {
        if self.words.len() < Self::MAX && self.seen.insert(word) {
            self.words.push(word);
        }
    }

    /// How many values it holds.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

const PUSH1: u8 = 0x60;
const PUSH32: u8 = 0x7f;
const JUMPDEST: u8 = 0x5b;
/// The start of the metadata solc appends (CBOR: `{"ipfs": <34 bytes>,
/// "solc": <3 bytes>}`), and its length with the two length bytes after it.
const METADATA: [u8; 8] = [0xa2, 0x64, b'i', b'p', b'f', b's', 0x58, 0x22];
const METADATA_LEN: usize = 53;

/// The instructions of code, `(offset, opcode, operand)`, without solc's
/// metadata.
struct Instructions<'c> {
    code: &'c [u8],
    at: usize,
}

impl<'c> Iterator for Instructions<'c> {
    type Item = (usize, u8, &'c [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        while self.code[self.at.min(self.code.len())..].starts_with(&METADATA) {
            self.at += METADATA_LEN;
        }
        let at = self.at;
        let op = *self.code.get(at)?;
        let len = if (PUSH1..=PUSH32).contains(&op) { usize::from(op - PUSH1 + 1) } else { 0 };
        let operand = &self.code[(at + 1).min(self.code.len())..(at + 1 + len).min(self.code.len())];
        self.at = at + 1 + len;
        Some((at, op, operand))
    }
}

/// The generator of one fuzz test's arguments.
pub struct Draw {
    rng: ChaCha8Rng,
    dictionary: Dictionary,
}

impl Draw {
    /// The draws of `signature` in `contract` under `seed`, picking
    /// constants from `dictionary` too.
    pub fn new(seed: u64, contract: &str, signature: &str, dictionary: Dictionary) -> Self {
        let key = keccak256([&seed.to_be_bytes()[..], contract.as_bytes(), b".", signature.as_bytes()].concat());
        Self { rng: ChaCha8Rng::from_seed(key.0), dictionary }
    }

    /// A constant of the dictionary, one draw in three (none when it is empty).
    fn constant(&mut self) -> Option<U256> {
        if self.dictionary.is_empty() || !self.one_in(3) {
            return None;
        }
        let i = self.below(self.dictionary.len() as u64) as usize;
        Some(self.dictionary.words[i])
    }

    /// Adds `word` to the values draws pick from.
    pub fn learn(&mut self, word: U256) {
        self.dictionary.learn(word);
    }

    /// An index below `n` (zero when `n` is zero).
    pub fn pick(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    /// One set of arguments for `types`.
    pub fn args(&mut self, types: &[DynSolType]) -> Vec<DynSolValue> {
        types.iter().map(|t| self.value(t)).collect()
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.rng.next_u64() % n }
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    fn word(&mut self) -> U256 {
        let mut bytes = [0u8; 32];
        self.rng.fill_bytes(&mut bytes);
        U256::from_be_bytes(bytes)
    }

    /// A number of at most `bits` bits: a random bit length, then a random
    /// value of that length; an edge one time in eight.
    fn unsigned(&mut self, bits: usize) -> U256 {
        let max = if bits >= 256 { U256::MAX } else { (U256::from(1) << bits) - U256::from(1) };
        if self.one_in(8) {
            let k = self.below(bits as u64) as usize;
            let power = U256::from(1) << k;
            let edges =
                [U256::ZERO, U256::from(1), U256::from(2), max, max - U256::from(1), power, power - U256::from(1)];
            return edges[self.below(edges.len() as u64) as usize].min(max);
        }
        if let Some(word) = self.constant() {
            return word & max;
        }
        let length = self.below(bits as u64 + 1) as usize;
        if length == 0 {
            return U256::ZERO;
        }
        let mask = if length >= 256 { U256::MAX } else { (U256::from(1) << length) - U256::from(1) };
        self.word() & mask
    }

    fn signed(&mut self, bits: usize) -> I256 {
        let max = I256::MAX >> (256 - bits);
        let min = -max - I256::ONE;
        if self.one_in(8) {
            let edges = [I256::ZERO, I256::ONE, I256::MINUS_ONE, max, min, max - I256::ONE, min + I256::ONE];
            return edges[self.below(edges.len() as u64) as usize];
        }
        if let Some(word) = self.constant() {
            // A constant as it was pushed (two's complement when it is
            // negative), when it fits the type; else its low bits, positive.
            let value = I256::from_raw(word);
            return if value >= min && value <= max { value } else { I256::from_raw(word & max.into_raw()) };
        }
        let magnitude = I256::from_raw(self.unsigned(bits - 1));
        if self.one_in(2) { -magnitude - I256::ONE } else { magnitude }
    }

    fn bytes(&mut self) -> Vec<u8> {
        let len = if self.one_in(4) { 0 } else { 1 + self.below(MAX_DYNAMIC_LEN) };
        let mut bytes = vec![0u8; len as usize];
        self.rng.fill_bytes(&mut bytes);
        bytes
    }

    fn text(&mut self) -> String {
        const WIDE: [char; 5] = ['é', '€', '漢', '🦀', '\u{0}'];
        let len = if self.one_in(4) { 0 } else { 1 + self.below(MAX_DYNAMIC_LEN / 2) };
        (0..len)
            .map(|_| {
                if self.one_in(8) {
                    WIDE[self.below(WIDE.len() as u64) as usize]
                } else {
                    char::from(b' ' + self.below(95) as u8)
                }
            })
            .collect()
    }

    fn value(&mut self, ty: &DynSolType) -> DynSolValue {
        match ty {
            DynSolType::Bool => DynSolValue::Bool(self.one_in(2)),
            DynSolType::Uint(bits) => DynSolValue::Uint(self.unsigned(*bits), *bits),
            DynSolType::Int(bits) => DynSolValue::Int(self.signed(*bits), *bits),
            DynSolType::Address => {
                let address = match (self.below(8), self.constant()) {
                    (0, _) => Address::ZERO,
                    (1, _) => Address::with_last_byte(1 + self.below(10) as u8),
                    (_, Some(word)) => Address::from_word(B256::from(word)),
                    (_, None) => Address::from_word(B256::from(self.word())),
                };
                DynSolValue::Address(address)
            }
            DynSolType::FixedBytes(size) => {
                let mut word = B256::ZERO;
                if let Some(constant) = self.constant().filter(|c| c.byte_len() <= *size) {
                    // `bytesN` constants are pushed as their N bytes.
                    word[..*size].copy_from_slice(&constant.to_be_bytes::<32>()[32 - *size..]);
                } else if !self.one_in(8) {
                    self.rng.fill_bytes(&mut word[..*size]);
                }
                DynSolValue::FixedBytes(word, *size)
            }
            DynSolType::Bytes => DynSolValue::Bytes(self.bytes()),
            DynSolType::String => DynSolValue::String(self.text()),
            DynSolType::Array(item) => {
                let len = if self.one_in(4) { 0 } else { 1 + self.below(MAX_ARRAY_LEN) };
                DynSolValue::Array((0..len).map(|_| self.value(item)).collect())
            }
            DynSolType::FixedArray(item, len) => DynSolValue::FixedArray((0..*len).map(|_| self.value(item)).collect()),
            DynSolType::Tuple(items) => DynSolValue::Tuple(items.iter().map(|t| self.value(t)).collect()),
            // `parameters` refuses the rest.
            _ => DynSolValue::Bool(false),
        }
    }
}

/// Shrinks a failing run's arguments to simpler ones that still fail. First
/// each number among the arguments is bisected on its magnitude (the
/// smallest that fails, when failing grows with it: a threshold is found
/// exactly). Then passes over every argument try simpler forms, simplest
/// first, keeping the first that fails, until a pass changes nothing:
/// numbers nearer zero, `false`, the zero address and zero bytes; `bytes`,
/// strings and arrays emptied, halved or one shorter; and the elements of
/// arrays and tuples, each shrunk the same way. `fails` runs the test;
/// every run counts against [`SHRINK_BUDGET`].
pub struct Shrink<'a> {
    fails: &'a mut dyn FnMut(&[DynSolValue]) -> bool,
    budget: u32,
}

impl<'a> Shrink<'a> {
    /// A shrinker that runs the test with `fails`.
    pub fn new(fails: &'a mut dyn FnMut(&[DynSolValue]) -> bool) -> Self {
        Self::with_budget(fails, SHRINK_BUDGET)
    }

    /// A shrinker that runs the test with `fails` at most `budget` times.
    pub fn with_budget(fails: &'a mut dyn FnMut(&[DynSolValue]) -> bool, budget: u32) -> Self {
        Self { fails, budget }
    }

    fn try_args(&mut self, args: &[DynSolValue]) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.budget -= 1;
        (self.fails)(args)
    }

    /// `args`, shrunk: cheap passes first (containers shorter, numbers to
    /// 0–9), then every number left, at any depth, bisected, then passes
    /// with every simpler form while the budget lasts.
    pub fn shrink(mut self, mut args: Vec<DynSolValue>) -> Vec<DynSolValue> {
        self.passes(&mut args, Numbers::Small);
        self.bisect_numbers(&mut args);
        self.passes(&mut args, Numbers::Nearer);
        args
    }

    /// Passes over every argument, each taking the simplest form that still
    /// fails, until a pass changes nothing.
    fn passes(&mut self, args: &mut [DynSolValue], numbers: Numbers) {
        loop {
            let mut changed = false;
            for i in 0..args.len() {
                while let Some(simpler) = self.first_failing(args, i, numbers) {
                    args[i] = simpler;
                    changed = true;
                }
            }
            if !changed || self.budget == 0 {
                return;
            }
        }
    }

    /// The simplest form of argument `i` that still fails, if any.
    fn first_failing(&mut self, args: &[DynSolValue], i: usize, numbers: Numbers) -> Option<DynSolValue> {
        let mut trial = args.to_vec();
        for candidate in simpler(&args[i], numbers) {
            trial[i] = candidate;
            if self.try_args(&trial) {
                return Some(trial.swap_remove(i));
            }
            if self.budget == 0 {
                break;
            }
        }
        None
    }

    /// Bisects every number among `args`, at any depth, on its magnitude.
    fn bisect_numbers(&mut self, args: &mut [DynSolValue]) {
        let mut paths = Vec::new();
        for (i, arg) in args.iter().enumerate() {
            number_paths(arg, &mut vec![i], &mut paths);
        }
        for path in paths {
            let make: Box<dyn Fn(U256) -> DynSolValue> = match at(args, &path) {
                Some(DynSolValue::Uint(_, bits)) => {
                    let bits = *bits;
                    Box::new(move |m| DynSolValue::Uint(m, bits))
                }
                Some(DynSolValue::Int(v, bits)) => {
                    let (v, bits) = (*v, *bits);
                    Box::new(move |m| DynSolValue::Int(signed_like(v, m), bits))
                }
                _ => continue,
            };
            let magnitude = match at(args, &path) {
                Some(DynSolValue::Uint(v, _)) => *v,
                Some(DynSolValue::Int(v, _)) => v.unsigned_abs(),
                _ => continue,
            };
            let with = |m: U256| {
                let mut trial = args.to_vec();
                if let Some(leaf) = at_mut(&mut trial, &path) {
                    *leaf = make(m);
                }
                trial
            };
            let smallest = self.smallest(magnitude, with);
            if let Some(leaf) = at_mut(args, &path) {
                *leaf = make(smallest);
            }
        }
    }

    /// The smallest magnitude in `0..=failing` whose arguments (`with`
    /// makes them) fail, by bisection: `failing` is known to fail.
    fn smallest(&mut self, failing: U256, with: impl Fn(U256) -> Vec<DynSolValue>) -> U256 {
        if failing.is_zero() || self.try_args(&with(U256::ZERO)) {
            return U256::ZERO;
        }
        let (mut passing, mut failing) = (U256::ZERO, failing);
        while failing - passing > U256::from(1) && self.budget > 0 {
            let mid = passing + (failing - passing) / U256::from(2);
            if self.try_args(&with(mid)) { failing = mid } else { passing = mid }
        }
        failing
    }
}

/// Which simpler forms of a number a pass tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Numbers {
    /// 0 to 9 only: cheap passes, before bisection (which a failure that
    /// does not grow with the number would lead astray).
    Small,
    /// Zero, then nearer and nearer to the number ([`nearer_zero`]).
    Nearer,
}

/// The paths (argument index, then element indices) of every number in
/// `value`, which is at `path`.
fn number_paths(value: &DynSolValue, path: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
    match value {
        DynSolValue::Uint(..) | DynSolValue::Int(..) => out.push(path.clone()),
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => {
            for (i, item) in items.iter().enumerate() {
                path.push(i);
                number_paths(item, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn at<'v>(args: &'v [DynSolValue], path: &[usize]) -> Option<&'v DynSolValue> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(args.get(*first)?, |value, i| match value {
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => items.get(*i),
        _ => None,
    })
}

fn at_mut<'v>(args: &'v mut [DynSolValue], path: &[usize]) -> Option<&'v mut DynSolValue> {
    let (first, rest) = path.split_first()?;
    rest.iter().try_fold(args.get_mut(*first)?, |value, i| match value {
        DynSolValue::Array(items) | DynSolValue::FixedArray(items) | DynSolValue::Tuple(items) => items.get_mut(*i),
        _ => None,
    })
}

/// The number of `v`'s sign with magnitude `m` (at most `v`'s own, so it
/// fits: `type(int256).min`'s magnitude is its own).
fn signed_like(v: I256, m: U256) -> I256 {
    if v.is_negative() { I256::from_raw(m).wrapping_neg() } else { I256::from_raw(m) }
}

/// Magnitudes nearer zero than `m`, nearest zero first: 0 to 9 (a failure
/// that does not grow with the number, `x % 7 == 3`, is often met by a
/// small one), then `m` less a half, a quarter, … of it (so repeated
/// passes close in on a threshold), down to `m - 1`.
fn nearer_zero(m: U256) -> Vec<U256> {
    let mut out = Vec::new();
    if m.is_zero() {
        return out;
    }
    out.extend((0..10u64).map(U256::from).take_while(|small| *small < m));
    let mut step: U256 = m >> 1usize;
    while !step.is_zero() {
        let candidate = m - step;
        if out.last().is_none_or(|last| *last < candidate) {
            out.push(candidate);
        }
        step >>= 1usize;
    }
    if out.last() != Some(&(m - U256::from(1))) {
        out.push(m - U256::from(1));
    }
    out
}

/// Simpler forms of `value`, simplest first (see [`Shrink`]).
fn simpler(value: &DynSolValue, numbers: Numbers) -> Vec<DynSolValue> {
    let magnitudes = |m: U256| match numbers {
        Numbers::Small => (0..10u64).map(U256::from).take_while(|small| *small < m).collect(),
        Numbers::Nearer => nearer_zero(m),
    };
    match value {
        DynSolValue::Uint(v, bits) => magnitudes(*v).into_iter().map(|m| DynSolValue::Uint(m, *bits)).collect(),
        DynSolValue::Int(v, bits) => {
            magnitudes(v.unsigned_abs()).into_iter().map(|m| DynSolValue::Int(signed_like(*v, m), *bits)).collect()
        }
        DynSolValue::Bool(true) => vec![DynSolValue::Bool(false)],
        DynSolValue::Address(a) if !a.is_zero() => vec![DynSolValue::Address(Address::ZERO)],
        DynSolValue::FixedBytes(word, size) if !word.is_zero() => vec![DynSolValue::FixedBytes(B256::ZERO, *size)],
        DynSolValue::Bytes(b) if !b.is_empty() => {
            let mut out: Vec<Vec<u8>> = shorter(b);
            if b.iter().any(|x| *x != 0) {
                out.push(vec![0; b.len()]);
            }
            out.into_iter().map(DynSolValue::Bytes).collect()
        }
        DynSolValue::String(s) if !s.is_empty() => {
            let chars: Vec<char> = s.chars().collect();
            shorter(&chars).into_iter().map(|c| DynSolValue::String(c.into_iter().collect())).collect()
        }
        DynSolValue::Array(items) => {
            let mut out: Vec<DynSolValue> = shorter(items).into_iter().map(DynSolValue::Array).collect();
            out.extend(each_simpler(items, numbers).into_iter().map(DynSolValue::Array));
            out
        }
        DynSolValue::FixedArray(items) => {
            each_simpler(items, numbers).into_iter().map(DynSolValue::FixedArray).collect()
        }
        DynSolValue::Tuple(items) => each_simpler(items, numbers).into_iter().map(DynSolValue::Tuple).collect(),
        _ => Vec::new(),
    }
}

/// `items` (not empty) shorter: emptied, each half, and, for a few items,
/// each without one of them (else without the first or the last).
fn shorter<T: Clone>(items: &[T]) -> Vec<Vec<T>> {
    let mut out = vec![Vec::new()];
    let n = items.len();
    if n > 2 {
        out.push(items[..n / 2].to_vec());
        out.push(items[n / 2..].to_vec());
    }
    if n > 1 {
        let without = |i: usize| [&items[..i], &items[i + 1..]].concat();
        if n <= MAX_ARRAY_LEN as usize {
            out.extend((0..n).map(without));
        } else {
            out.push(without(0));
            out.push(without(n - 1));
        }
    }
    out
}

/// `items` with one of them simpler, for each item and each of its simpler forms.
fn each_simpler(items: &[DynSolValue], numbers: Numbers) -> Vec<Vec<DynSolValue>> {
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        for candidate in simpler(item, numbers) {
            let mut changed = items.to_vec();
            changed[i] = candidate;
            out.push(changed);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_read_from_the_signature_and_function_types_refused() {
        let types = parameters("testSwap(uint256,address,(bool,bytes32)[],string)").unwrap();
        assert_eq!(types.len(), 4);
        assert_eq!(types[2].to_string(), "(bool,bytes32)[]");
        assert_eq!(parameters("testX()").unwrap(), Vec::<DynSolType>::new());
        assert_eq!(parameters("testF(function)"), Err(FuzzError::Undrawable("function".into())));
        assert_eq!(parameters("testF"), Err(FuzzError::NotASignature("testF".into())));
    }

    #[test]
    fn draws_are_deterministic_per_seed_and_test_and_fit_their_types() {
        let types = parameters("t(uint8,int16,bytes4,address,bytes,string,uint256[],bool[2])").unwrap();
        let draw = |seed, name| {
            let mut d = Draw::new(seed, "C", name, Dictionary::default());
            (0..50).map(|_| d.args(&types)).collect::<Vec<_>>()
        };
        assert_eq!(draw(0, "t"), draw(0, "t"));
        assert_ne!(draw(0, "t"), draw(1, "t"));
        assert_ne!(draw(0, "t"), draw(0, "u"));
        for args in draw(3, "t") {
            for (value, ty) in args.iter().zip(&types) {
                assert!(ty.matches(value), "{value:?} is not a {ty}");
            }
            let DynSolValue::Uint(small, _) = args[0] else { unreachable!() };
            assert!(small <= U256::from(255));
            let DynSolValue::Int(i, _) = args[1] else { unreachable!() };
            assert!(i >= I256::try_from(-32768).unwrap() && i <= I256::try_from(32767).unwrap(), "{i}");
            // Encodable as calldata.
            assert!(calldata([0; 4], &args).len() > 4);
        }
    }

    #[test]
    fn draws_reach_small_large_and_edge_numbers() {
        let mut d = Draw::new(0, "C", "t", Dictionary::default());
        let values: Vec<U256> = (0..2000).map(|_| d.unsigned(256)).collect();
        assert!(values.iter().any(|v| *v < U256::from(1000)));
        assert!(values.iter().any(|v| *v > U256::MAX >> 8));
        assert!(values.contains(&U256::MAX) && values.contains(&U256::ZERO));
    }

    #[test]
    fn the_dictionary_holds_the_codes_constants_and_draws_pick_them() {
        // PUSH4 0xdeadbeef, PUSH1 0x40, PUSH32 (1 << 255), PUSH2 0x03e8,
        // PUSH1 0x2d (a jump target: the JUMPDEST at 45), JUMPDEST, solc's
        // metadata (whose PUSHes are not read), PUSH3 0x123456 cut short by
        // the end of the code.
        let mut code = vec![0x63, 0xde, 0xad, 0xbe, 0xef, 0x60, 0x40, 0x7f, 0x80];
        code.extend([0u8; 31]);
        code.extend([0x61, 0x03, 0xe8, 0x60, 0x2d, 0x5b]);
        assert_eq!(code[45], JUMPDEST);
        code.extend(METADATA);
        code.extend([0x7f; METADATA_LEN - METADATA.len()]);
        code.extend([0x62, 0x12]);
        let dictionary = Dictionary::from_code(&code);
        assert_eq!(
            dictionary.words,
            vec![
                U256::from(0xdeadbeef_u64),
                U256::from(0x40),
                U256::from(1) << 255,
                U256::from(1000),
                U256::from(0x12_0000)
            ]
        );
        let mut d = Draw::new(0, "C", "t", dictionary);
        let types = parameters("t(uint256,uint32,bytes4,int256)").unwrap();
        let draws: Vec<Vec<DynSolValue>> = (0..200).map(|_| d.args(&types)).collect();
        let magic = U256::from(0xdeadbeef_u64);
        assert!(draws.iter().any(|a| a[0] == DynSolValue::Uint(magic, 256)));
        assert!(draws.iter().any(|a| a[1] == DynSolValue::Uint(magic, 32)));
        let mut want = B256::ZERO;
        want[..4].copy_from_slice(&[0xde, 0xad, 0xbe, 0xef]);
        assert!(draws.iter().any(|a| a[2] == DynSolValue::FixedBytes(want, 4)));
        assert!(draws.iter().any(|a| a[3] == DynSolValue::Int(I256::MIN, 256)), "1 << 255 is int256's minimum");
        for args in &draws {
            for (value, ty) in args.iter().zip(&types) {
                assert!(ty.matches(value), "{value:?} is not a {ty}");
            }
        }
    }

    #[test]
    fn shrinking_finds_the_threshold_of_a_monotone_failure() {
        let mut runs = 0;
        let mut fails = |args: &[DynSolValue]| {
            runs += 1;
            matches!(args[0], DynSolValue::Uint(v, _) if v >= U256::from(1000))
                && matches!(args[1], DynSolValue::Int(i, _) if i <= I256::try_from(-5).unwrap())
        };
        let args = vec![
            DynSolValue::Uint(U256::from(1) << 200, 256),
            DynSolValue::Int(-(I256::ONE << 100usize), 256),
            DynSolValue::String("abc".into()),
        ];
        let shrunk = Shrink::new(&mut fails).shrink(args);
        assert_eq!(describe(&shrunk), "(1000, -5, \"\")");
        assert!(runs <= SHRINK_BUDGET as usize);
    }

    #[test]
    fn shrinking_finds_a_small_number_for_a_failure_that_does_not_grow_with_it() {
        let mut fails =
            |args: &[DynSolValue]| matches!(args[0], DynSolValue::Uint(v, _) if v % U256::from(7) == U256::from(3));
        let shrunk =
            Shrink::with_budget(&mut fails, 64).shrink(vec![DynSolValue::Uint(U256::from(3_221_225_472_u64), 256)]);
        assert_eq!(describe(&shrunk), "(3)");
    }

    #[test]
    fn shrinking_reaches_inside_arrays_tuples_and_bytes() {
        // Fails when some element is at least 500, the tuple's number at
        // least 300, and the bytes hold at least 3 of them.
        let mut fails = |args: &[DynSolValue]| {
            let big = |v: &DynSolValue, at: u64| matches!(v, DynSolValue::Uint(n, _) if *n >= U256::from(at));
            let DynSolValue::Array(items) = &args[0] else { return false };
            let DynSolValue::Tuple(parts) = &args[1] else { return false };
            let DynSolValue::Bytes(bytes) = &args[2] else { return false };
            items.iter().any(|v| big(v, 500)) && big(&parts[0], 300) && bytes.len() >= 3
        };
        let word = |v: u64| DynSolValue::Uint(U256::from(v) << 100, 256);
        let args = vec![
            DynSolValue::Array(vec![word(7), word(9), word(1), word(3)]),
            DynSolValue::Tuple(vec![DynSolValue::Uint(U256::from(65_000), 16), DynSolValue::Bool(true)]),
            DynSolValue::Bytes(vec![0xff; 40]),
        ];
        let shrunk = Shrink::new(&mut fails).shrink(args);
        assert_eq!(describe(&shrunk), "([500], (300, false), 0x000000)");
    }

    #[test]
    fn shrinking_bisects_numbers_inside_containers_and_drops_any_element() {
        let uint = |v: U256| DynSolValue::Uint(v, 256);
        let small = |v: u64| DynSolValue::Uint(U256::from(v), 8);
        // Any element at least 500: one huge element, as an edge draws it.
        let mut fails = |args: &[DynSolValue]| {
            let DynSolValue::Array(items) = &args[0] else { return false };
            items.iter().any(|v| matches!(v, DynSolValue::Uint(n, _) if *n >= U256::from(500)))
        };
        let shrunk = Shrink::new(&mut fails).shrink(vec![DynSolValue::Array(vec![uint(U256::MAX - U256::from(3))])]);
        assert_eq!(describe(&shrunk), "([500])");
        // Nested arrays: leading empty ones and other elements go.
        let mut fails = |args: &[DynSolValue]| {
            let DynSolValue::Array(rows) = &args[0] else { return false };
            rows.iter().any(|row| match row {
                DynSolValue::Array(items) => {
                    items.iter().any(|v| matches!(v, DynSolValue::Uint(n, _) if *n >= U256::from(100)))
                }
                _ => false,
            })
        };
        let row = |v: &[u64]| DynSolValue::Array(v.iter().map(|x| small(*x)).collect());
        let nested = DynSolValue::Array(vec![row(&[]), row(&[]), row(&[0, 32, 0, 99, 255, 1, 0])]);
        assert_eq!(describe(&Shrink::new(&mut fails).shrink(vec![nested])), "([[100]])");
        // A struct's other fields go to their simplest.
        let mut fails = |args: &[DynSolValue]| matches!(&args[0], DynSolValue::Tuple(parts) if matches!(parts[0], DynSolValue::Uint(n, _) if n >= U256::from(1000)));
        let record = DynSolValue::Tuple(vec![
            uint(U256::from(1) << 200),
            DynSolValue::Address(Address::repeat_byte(7)),
            DynSolValue::Bytes(vec![1, 2, 3]),
        ]);
        assert_eq!(
            describe(&Shrink::new(&mut fails).shrink(vec![record])),
            "((1000, 0x0000000000000000000000000000000000000000, 0x))"
        );
    }

    #[test]
    fn the_most_negative_number_shrinks_without_overflow() {
        let mut fails = |args: &[DynSolValue]| matches!(args[0], DynSolValue::Int(i, _) if i == I256::MIN);
        let shrunk = Shrink::new(&mut fails).shrink(vec![DynSolValue::Int(I256::MIN, 256)]);
        assert_eq!(shrunk, vec![DynSolValue::Int(I256::MIN, 256)]);
        let mut fails =
            |args: &[DynSolValue]| matches!(args[0], DynSolValue::Int(i, _) if i <= I256::try_from(-7).unwrap());
        let shrunk = Shrink::new(&mut fails).shrink(vec![DynSolValue::Int(I256::MIN, 256)]);
        assert_eq!(describe(&shrunk), "(-7)");
    }
}
