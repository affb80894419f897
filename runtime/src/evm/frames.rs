//! Reused call-frame stacks. revm gives every new EVM eight preallocated
//! frames, each with a 32 KiB operand stack: about 300 KiB allocated and
//! initialised per EVM, which the devnet creates per block, per simulation
//! and per `eth_call`. A stack handed back here when an executor is dropped
//! is given to the next one on the same thread; revm reinitialises a frame
//! before each call, so a reused stack behaves as a fresh one.

use std::cell::RefCell;

use revm::context::FrameStack;
use revm::handler::EthFrame;
use revm::interpreter::interpreter::EthInterpreter;

/// The frame stack of the devnet's EVM.
pub(super) type Frames = FrameStack<EthFrame<EthInterpreter>>;

/// How many stacks a thread keeps (executors alive at once on one thread).
const KEPT: usize = 4;

/// revm's own preallocation.
const PREALLOCATED: usize = 8;

thread_local! {
    static KEEP: RefCell<Vec<Frames>> = const { RefCell::new(Vec::new()) };
}

/// A stack from this thread's pool, or a new one.
pub(super) fn take() -> Frames {
    KEEP.with(|keep| keep.borrow_mut().pop()).unwrap_or_else(|| FrameStack::new_prealloc(PREALLOCATED))
}

/// Gives `frames` back to this thread's pool.
pub(super) fn give(frames: Frames) {
    KEEP.with(|keep| {
        let mut keep = keep.borrow_mut();
        if keep.len() < KEPT {
            keep.push(frames);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stack_given_back_is_taken_again_on_the_same_thread() {
        let frames = take();
        let before = KEEP.with(|k| k.borrow().len());
        give(frames);
        assert_eq!(KEEP.with(|k| k.borrow().len()), before + 1);
        let _again = take();
        assert_eq!(KEEP.with(|k| k.borrow().len()), before);
    }

    #[test]
    fn the_pool_is_bounded() {
        for _ in 0..KEPT + 3 {
            give(FrameStack::new_prealloc(1));
        }
        assert_eq!(KEEP.with(|k| k.borrow().len()), KEPT);
    }
}
