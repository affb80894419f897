//! A block build that panics (a bug of nml's, here a test double's inspector)
//! drops the transaction that causes it with the panic's message, ends the
//! wait for its receipt at once, and the devnet mines on for everyone else.

mod common;

use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, B256, U256, address};
use alloy_rpc_types_eth::TransactionRequest;
use common::http::rpc;
use nml_runtime::evm::{DynInspector, EvmContext, InspectorFactory, Phase};
use nml_runtime::{Devnet, DevnetConfig, Mining};
use revm::Inspector;
use revm::interpreter::interpreter::EthInterpreter;
use revm::interpreter::{CallInputs, CallOutcome};
use serde_json::{Value, json};

/// The address whose calls make the test double panic.
const POISON: Address = address!("0x00000000000000000000000000000000deadbeef");

/// What the test double panics with.
const PANIC: &str = "test double: an inspector bug";

/// How long a wait that a drop ends may take at most (the test runner's
/// waits are 600 s).
const PROMPTLY: Duration = Duration::from_secs(10);

/// A test double of a buggy inspector: each EVM's inspector panics on its
/// `after + 1`th call to [`POISON`], in every phase.
#[derive(Debug)]
struct PanicsOnCallToPoison {
    after: usize,
}

impl InspectorFactory for PanicsOnCallToPoison {
    fn inspector(&self, _phase: Phase) -> DynInspector {
        Box::new(PanickingInspector { left: self.after })
    }
}

/// The inspector of [`PanicsOnCallToPoison`]: the calls to [`POISON`] it
/// still lets through.
struct PanickingInspector {
    left: usize,
}

impl Inspector<EvmContext, EthInterpreter> for PanickingInspector {
    fn call(&mut self, _context: &mut EvmContext, inputs: &mut CallInputs) -> Option<CallOutcome> {
        if inputs.target_address == POISON {
            match self.left.checked_sub(1) {
                Some(left) => self.left = left,
                None => panic!("{PANIC}"),
            }
        }
        None
    }
}

/// A devnet mining as `mining` whose inspector panics on the `after + 1`th
/// call to [`POISON`] of an EVM.
fn devnet(mining: Mining, after: usize) -> Devnet {
    let mut devnet = Devnet::new(DevnetConfig { mining, ..DevnetConfig::default() }).unwrap();
    devnet.set_inspectors(Arc::new(PanicsOnCallToPoison { after })).unwrap();
    devnet
}

/// Sends a transfer of 1 wei from dev account `from` to `to`, with its gas
/// limit given (estimating it would run the inspector on the request's thread).
fn send(devnet: &Devnet, from: usize, to: Address) -> B256 {
    let from = devnet.accounts()[from];
    let request = TransactionRequest::default().from(from).to(to).value(U256::from(1)).gas_limit(21_000);
    devnet.send_transaction(request).unwrap()
}

/// Asserts that `hash` was dropped because nml hit an internal error, with
/// the panic's message.
fn assert_dropped_for_the_panic(devnet: &Devnet, hash: B256) {
    let why = devnet.dropped_reason(hash).expect("the transaction was dropped");
    assert!(why.starts_with("nml hit an internal error"), "{why}");
    assert!(why.contains(PANIC), "{why}");
    assert!(devnet.receipt(hash).is_none());
}

/// Waits for the receipt of `hash` as the test runner does (600 s), and
/// asserts that the wait ended promptly without one.
fn assert_wait_ends_promptly(devnet: &Devnet, hash: B256) {
    let started = Instant::now();
    assert!(devnet.wait_for_receipt(hash, Duration::from_secs(600)).is_none());
    assert!(started.elapsed() < PROMPTLY, "the wait took {:?}", started.elapsed());
}

#[test]
fn under_automine_the_transaction_that_panics_is_dropped_and_the_others_are_mined() {
    let devnet = devnet(Mining::Auto, 0);
    let [alice, bob] = [devnet.accounts()[1], devnet.accounts()[2]];
    let before = send(&devnet, 0, alice);
    assert!(devnet.wait_for_receipt(before, PROMPTLY).expect("mined").success);

    let poisoned = send(&devnet, 1, POISON);
    assert_wait_ends_promptly(&devnet, poisoned);
    assert_dropped_for_the_panic(&devnet, poisoned);
    assert_eq!(devnet.block_number(), 1, "the read answers, and no block holds the dropped transaction");

    // The same sender's nonce is free again, and the miner serves everyone.
    let after = send(&devnet, 1, bob);
    assert!(devnet.wait_for_receipt(after, PROMPTLY).expect("mined").success);
    let again = send(&devnet, 0, bob);
    assert!(devnet.wait_for_receipt(again, PROMPTLY).expect("mined").success);
    assert_eq!(devnet.block_number(), 3);
    assert_eq!(devnet.pool_counts().pending, 0);
    // A transaction mined has no drop to tell of.
    assert_eq!(devnet.dropped_reason(after), None);
}

#[test]
fn evm_mine_drops_only_the_transaction_that_panics_from_a_block_of_several() {
    let devnet = devnet(Mining::Manual, 0);
    let [alice, bob] = [devnet.accounts()[1], devnet.accounts()[2]];
    let mut sent = vec![send(&devnet, 0, alice), send(&devnet, 3, bob), send(&devnet, 4, alice)];
    let poisoned = send(&devnet, 5, POISON);
    sent.extend([send(&devnet, 6, bob), send(&devnet, 7, alice)]);
    thread::scope(|scope| {
        // Someone waits for the poisoned transaction while the block is built.
        let waiter = scope.spawn(|| assert_wait_ends_promptly(&devnet, poisoned));
        let block = devnet.mine(None).unwrap();
        let mined: Vec<B256> = block.transactions.iter().map(|tx| tx.hash).collect();
        assert_eq!(mined, sent);
        waiter.join().unwrap();
    });
    assert_dropped_for_the_panic(&devnet, poisoned);
    assert_eq!(devnet.block_number(), 1);
    assert_eq!(devnet.pool_counts().pending, 0);
    // The next evm_mine builds a block as usual.
    let next = send(&devnet, 5, alice);
    assert_eq!(devnet.mine(None).unwrap().transactions[0].hash, next);
}

#[test]
fn a_panic_that_needs_the_transactions_before_it_blames_the_one_that_brings_it() {
    // Each EVM lets one call to the poisoned address through: a block with
    // two panics at the second, and either alone builds.
    let devnet = devnet(Mining::Manual, 1);
    let first = send(&devnet, 0, POISON);
    let second = send(&devnet, 1, POISON);
    let other = send(&devnet, 2, devnet.accounts()[3]);
    let block = devnet.mine(None).unwrap();
    let mined: Vec<B256> = block.transactions.iter().map(|tx| tx.hash).collect();
    assert_eq!(mined, [first, other]);
    assert_dropped_for_the_panic(&devnet, second);
    // Sent again, it is mined in a block of its own.
    let resent = send(&devnet, 1, POISON);
    assert_eq!(devnet.mine(None).unwrap().transactions[0].hash, resent);
}

#[test]
fn interval_mining_drops_the_transaction_that_panics_and_mines_the_rest() {
    let devnet = Arc::new(devnet(Mining::Interval(Duration::from_millis(50)), 0));
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    runtime.spawn(Arc::clone(&devnet).run_interval_miner());
    let transfer = send(&devnet, 0, devnet.accounts()[1]);
    let poisoned = send(&devnet, 1, POISON);
    assert_wait_ends_promptly(&devnet, poisoned);
    assert_dropped_for_the_panic(&devnet, poisoned);
    assert!(devnet.wait_for_receipt(transfer, PROMPTLY).expect("mined").success);
    // Blocks keep coming.
    let later = send(&devnet, 1, devnet.accounts()[2]);
    assert!(devnet.wait_for_receipt(later, PROMPTLY).expect("mined").success);
    devnet.set_interval(None);
    runtime.shutdown_background();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_json_rpc_the_dropped_transaction_has_no_receipt_and_reads_keep_answering() {
    let devnet = Arc::new(devnet(Mining::Auto, 0));
    let server = nml_runtime::rpc::serve(Arc::clone(&devnet), "127.0.0.1:0".parse().unwrap()).await.unwrap();
    let addr = server.local_addr;
    let accounts = devnet.accounts();
    let send = |from: Address, to: Address| {
        let tx = json!([{ "from": from, "to": to, "value": "0x1", "gas": "0x5208" }]);
        async move {
            let answer = rpc(addr, "eth_sendTransaction", tx).await;
            answer["result"].as_str().unwrap_or_else(|| panic!("{answer}")).to_owned()
        }
    };
    let receipt = |hash: String| async move { rpc(addr, "eth_getTransactionReceipt", json!([hash])).await };

    let before = send(accounts[0], accounts[1]).await;
    assert_eq!(receipt(before).await["result"]["status"], "0x1");
    let poisoned = send(accounts[1], POISON).await;
    let started = Instant::now();
    let answer = receipt(poisoned.clone()).await;
    assert_eq!(answer["result"], Value::Null, "{answer}");
    assert!(started.elapsed() < PROMPTLY);
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x1");
    let after = send(accounts[1], accounts[2]).await;
    assert_eq!(receipt(after).await["result"]["status"], "0x1");
    assert_eq!(rpc(addr, "eth_blockNumber", json!([])).await["result"], "0x2");
    // Asked again, the dropped one still has none.
    assert_eq!(receipt(poisoned).await["result"], Value::Null);
}
