//! The devnet's workflow scheduler thread (`Devnet::start_scheduler`), as
//! `nml devnet` runs it: due tasks run after blocks others mine, and its
//! own blocks never keep the chain mining by themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use alloy_primitives::{Address, Bytes, U256};
use alloy_rpc_types_eth::TransactionRequest;
use alloy_sol_types::SolCall;
use nml_runtime::inference::{Executor, OnnxConfig, OnnxExecutor};
use nml_runtime::node::InferenceSetup;
use nml_runtime::predeploys::{IWorkflowScheduler, WORKFLOW_SCHEDULER};
use nml_runtime::{Devnet, DevnetConfig};

/// A devnet with inference, so with the workflow scheduler predeployed.
fn devnet() -> Arc<Devnet> {
    let library = nml::toolchain::onnxruntime::resolve(false).unwrap_or_else(|e| panic!("{e}")).path;
    let onnx = OnnxExecutor::new(OnnxConfig::new(library)).expect("ONNX Runtime");
    let setup = InferenceSetup::new(Arc::new(onnx) as Arc<dyn Executor>);
    Arc::new(Devnet::with_inference(DevnetConfig::default(), setup).unwrap())
}

/// Registers `count` tasks that run `code` (installed at `target`) every
/// `frequency` seconds for an hour, and waits until they are.
fn register(devnet: &Devnet, target: Address, code: &'static [u8], count: usize, frequency: u64) {
    devnet.set_code(target, Bytes::from_static(code));
    let now = devnet.with_chain(|c| c.head().header.timestamp);
    let register = IWorkflowScheduler::registerTaskCall {
        contractAddress: target,
        endTime: U256::from(now + 3_600),
        frequency: U256::from(frequency),
    };
    let request = TransactionRequest::default()
        .from(devnet.accounts()[0])
        .to(WORKFLOW_SCHEDULER)
        .input(Bytes::from(register.abi_encode()).into())
        .gas_limit(300_000);
    let sent: Vec<_> = (0..count).map(|_| devnet.send_transaction(request.clone()).expect("sent")).collect();
    devnet.wait_for_receipt(*sent.last().expect("one at least"), Duration::from_secs(60)).expect("registered");
}

/// Twelve tasks due every 10 s: under automine a round of their `execute`
/// transactions is twelve blocks a second apart, so each task was due again
/// before the round ended, and the scheduler kept mining rounds on its own
/// (thousands of blocks in seconds) until the tasks' end time.
#[test]
fn a_round_of_tasks_does_not_keep_the_chain_mining() {
    const TASKS: usize = 12;
    let devnet = devnet();
    register(&devnet, Address::repeat_byte(0x61), &[0x00], TASKS, 10);
    let _scheduler = devnet.start_scheduler().unwrap();
    // The registrations' blocks ran ahead of the clock: past every first run.
    devnet.increase_time(30).unwrap();
    devnet.mine(None).unwrap();
    let runs = || devnet.tasks().unwrap().iter().map(|t| t.runs.to::<u64>()).collect::<Vec<_>>();
    let started = Instant::now();
    while runs().contains(&0) {
        assert!(started.elapsed() < Duration::from_secs(60), "not every task ran: {:?}", runs());
        std::thread::sleep(Duration::from_millis(20));
    }
    // Quiet from here: a runaway mined hundreds of blocks in this time.
    let head = devnet.block_number();
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(devnet.block_number(), head, "the scheduler mined on by itself");
    assert_eq!(runs(), vec![1; TASKS], "each task ran once");
    // A block someone else mines runs the tasks due by then.
    devnet.increase_time(30).unwrap();
    devnet.mine(None).unwrap();
    let started = Instant::now();
    while runs().iter().any(|r| *r < 2) {
        assert!(started.elapsed() < Duration::from_secs(60), "the next round did not run: {:?}", runs());
        std::thread::sleep(Duration::from_millis(20));
    }
    // With automine off every block is someone else's: each `evm_mine`
    // that includes a round's transactions steps the scheduler too.
    devnet.set_automine(false);
    for round in 3..=4 {
        devnet.increase_time(30).unwrap();
        devnet.mine(None).unwrap();
        let started = Instant::now();
        while runs().iter().any(|r| *r < round) {
            assert!(started.elapsed() < Duration::from_secs(60), "round {round} did not run: {:?}", runs());
            devnet.mine(None).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A failed run's revert data is kept to 256 bytes: every listing of the
/// tasks copies it, and kilobytes of it made the listing run out of gas.
#[test]
fn a_failed_runs_long_revert_data_is_kept_short() {
    let devnet = devnet();
    // PUSH2 1000 PUSH1 0 REVERT: 1,000 zero bytes of revert data.
    register(&devnet, Address::repeat_byte(0x62), &[0x61, 0x03, 0xe8, 0x60, 0x00, 0xfd], 1, 60);
    devnet.increase_time(61).unwrap();
    devnet.mine(None).unwrap();
    for hash in devnet.run_due_tasks().unwrap() {
        devnet.wait_for_receipt(hash, Duration::from_secs(60)).expect("ran");
    }
    let tasks = devnet.tasks().unwrap();
    assert_eq!(tasks[0].failures, U256::from(1));
    assert_eq!(tasks[0].last_error.as_deref(), Some(format!("0x{}", "00".repeat(256)).as_str()));
}
