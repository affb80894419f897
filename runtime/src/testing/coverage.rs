//! Coverage's hit counts (`nml coverage`): how often each instruction of
//! each code the tests ran was executed, by program counter. Which source
//! line an instruction stands for is the compiler's business
//! (`nml_compiler::coverage`); the runner only counts.
//!
//! Counted: every transaction a test devnet includes (the deployment,
//! `setUp`, each test, each fuzz and invariant run and shrink step) and
//! every `eth_call` (invariants are checked by one). Not counted: the
//! mempool's simulation pass, where an inference answers the simulation
//! result instead of the model's output, so a contract may take a path the
//! chain never keeps; a test that only reaches a line there does not cover it.

use std::sync::Arc;

use alloy_primitives::Bytes;
use alloy_primitives::map::B256HashMap;
use parking_lot::Mutex;
use revm::Inspector;
use revm::interpreter::Interpreter;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::interpreter_types::Jumps;

use crate::evm::{DynInspector, EvmContext, InspectorFactory, Phase};

/// How often each instruction of one code ran.
#[derive(Debug, Clone)]
pub struct CodeHits {
    /// The code (creation code with its constructor's arguments).
    pub code: Bytes,
    /// `hits[pc]`: how often the instruction at `pc` ran.
    pub hits: Vec<u32>,
}

/// The hits of every code the runs counted, gathered from every test's
/// devnet (they run in parallel).
#[derive(Debug, Default)]
pub struct Coverage {
    codes: Mutex<B256HashMap<CodeHits>>,
}

impl Coverage {
    /// Every code counted so far, with its hits.
    pub fn codes(&self) -> Vec<CodeHits> {
        self.codes.lock().values().cloned().collect()
    }

    fn merge(&self, counted: B256HashMap<CodeHits>) {
        let mut codes = self.codes.lock();
        for (hash, counted) in counted {
            let Some(code) = codes.get_mut(&hash) else {
                codes.insert(hash, counted);
                continue;
            };
            for (total, hits) in code.hits.iter_mut().zip(&counted.hits) {
                *total = total.saturating_add(*hits);
            }
        }
    }
}

/// `inner`'s inspectors, with a hit counter beside them where coverage
/// counts (see the module's documentation).
#[derive(Debug)]
pub(super) struct Counted {
    pub(super) inner: Arc<dyn InspectorFactory>,
    pub(super) coverage: Arc<Coverage>,
}

impl InspectorFactory for Counted {
    fn inspector(&self, phase: Phase) -> DynInspector {
        let inner = self.inner.inspector(phase);
        match phase {
            Phase::Simulation | Phase::Replay => inner,
            Phase::Call | Phase::Inclusion => {
                Box::new((inner, HitCounter { codes: B256HashMap::default(), coverage: Arc::clone(&self.coverage) }))
            }
        }
    }
}

/// Counts one EVM's steps; hands them to the [`Coverage`] when dropped.
struct HitCounter {
    codes: B256HashMap<CodeHits>,
    coverage: Arc<Coverage>,
}

impl Drop for HitCounter {
    fn drop(&mut self) {
        if !self.codes.is_empty() {
            self.coverage.merge(std::mem::take(&mut self.codes));
        }
    }
}

impl Inspector<EvmContext, EthInterpreter> for HitCounter {
    fn step(&mut self, interp: &mut Interpreter, _context: &mut EvmContext) {
        // Known for code read from state; hashed once per frame otherwise.
        let hash = interp.bytecode.get_or_calculate_hash();
        let pc = interp.bytecode.pc();
        let code = self.codes.entry(hash).or_insert_with(|| {
            let code = interp.bytecode.original_bytes();
            CodeHits { hits: vec![0; code.len() + 1], code }
        });
        if let Some(hit) = code.hits.get_mut(pc) {
            *hit = hit.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_from_several_devnets_add_up() {
        let coverage = Coverage::default();
        let hits = |hits: Vec<u32>| CodeHits { code: Bytes::from_static(&[0x60, 0x01, 0x00]), hits };
        let hash = alloy_primitives::keccak256([0x60, 0x01, 0x00]);
        coverage.merge(B256HashMap::from_iter([(hash, hits(vec![1, 0, 1, 0]))]));
        coverage.merge(B256HashMap::from_iter([(hash, hits(vec![2, 0, 0, 0]))]));
        let codes = coverage.codes();
        assert_eq!(codes.len(), 1);
        assert_eq!(codes[0].hits, [3, 0, 1, 0]);
    }
}
