//! `console.log` (`@nml/nml/console.sol`) through the real binary: `nml
//! devnet` prints the lines of mined transactions (not of `eth_call`s), and
//! `nml test` shows a test's lines (its `setUp`'s first, also when `setUp`
//! fails; an invariant test's failing sequence's) under a failing test, under every test with `-vv`, in `--json`
//! and in JUnit's `<system-out>`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use alloy_sol_types::{SolCall, sol};

mod common;

use common::node::{Node, rpc};

sol! {
    function log(string message, uint256 value);
}

/// The console's address: the bytes of "console.log".
const CONSOLE: &str = "0x000000000000000000636f6e736f6c652e6c6f67";

#[test]
fn the_devnet_prints_the_console_lines_of_mined_transactions() {
    let node = Node::start(&[]);
    let from = rpc(&node.url, "eth_accounts", serde_json::json!([]))[0].clone();
    let data = |message: &str| {
        let call = logCall { message: message.into(), value: alloy_primitives::U256::from(42) };
        alloy_primitives::hex::encode_prefixed(call.abi_encode())
    };
    let called = rpc(
        &node.url,
        "eth_call",
        serde_json::json!([{"from": from, "to": CONSOLE, "data": data("called %s")}, "latest"]),
    );
    assert_eq!(called, "0x", "the console answers nothing");
    let hash = rpc(
        &node.url,
        "eth_sendTransaction",
        serde_json::json!([{"from": from, "to": CONSOLE, "data": data("mined with %s")}]),
    );
    assert!(hash.is_string(), "{hash}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let printed = loop {
        let output = node.output.lock().unwrap().clone();
        if output.iter().any(|l| l.contains("mined with")) || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(printed.contains(&"console.log: mined with 42".to_owned()), "{printed:?}");
    // The eth_call ran before the transaction was sent, and printed nothing.
    assert!(!printed.iter().any(|l| l.contains("called")), "{printed:?}");
    let receipt = rpc(&node.url, "eth_getTransactionReceipt", serde_json::json!([hash]));
    assert_eq!(receipt["status"], "0x1", "{receipt}");

    // A contract that logs in its constructor, deployed alone in its block
    // under automine: code that runs is simulated first, and a simulation
    // that logged must not stand as the block's execution (it prints none).
    let payload = logCall { message: "deployed %s".into(), value: alloy_primitives::U256::from(7) }.abi_encode();
    // CODECOPY the payload (after these 40 bytes) to memory, STATICCALL the
    // console with it, STOP.
    let length = payload.len();
    let init = format!(
        "60{length:02x}60286000396000600060{length:02x}600073000000000000000000636f6e736f6c652e6c6f675afa5000{}",
        alloy_primitives::hex::encode(&payload)
    );
    let hash = rpc(&node.url, "eth_sendTransaction", serde_json::json!([{"from": from, "data": format!("0x{init}")}]));
    assert!(hash.is_string(), "{hash}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let printed = loop {
        let output = node.output.lock().unwrap().clone();
        if output.iter().any(|l| l.contains("deployed")) || Instant::now() > deadline {
            break output;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(printed.contains(&"console.log: deployed 7".to_owned()), "{printed:?}");
    let receipt = rpc(&node.url, "eth_getTransactionReceipt", serde_json::json!([hash]));
    assert_eq!(receipt["status"], "0x1", "{receipt}");
}

fn nml(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nml")).args(args).current_dir(dir).output().expect("runs nml")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn a_tests_console_lines_are_shown_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("nml.toml"), "[project]\nname = \"console\"\n").unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    std::fs::create_dir_all(root.join("test")).unwrap();
    // A pure function logs too.
    std::fs::write(
        root.join("src/Fee.sol"),
        r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import {console} from "@nml/nml/console.sol";

contract Fee {
    function quote(uint256 amount) external pure returns (uint256 fee) {
        fee = amount / 100;
        console.log("quote %s -> fee %d", amount, fee);
    }
}
"#,
    )
    .unwrap();
    std::fs::write(
        root.join("test/Fee.t.sol"),
        r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@nml/nml/Test.sol";
import "../src/Fee.sol";

contract FeeTest is Test {
    Fee fee;

    function setUp() public {
        fee = new Fee();
        console.log("set up", true);
    }

    function testQuote() public view {
        assertEq(fee.quote(1000), 10);
    }

    function testWrongQuote() public view {
        console.logInt(-5);
        assertEq(fee.quote(1000), 11);
    }
}
"#,
    )
    .unwrap();
    // A setUp that fails shows what it logged first.
    std::fs::write(
        root.join("test/Broken.t.sol"),
        r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@nml/nml/Test.sol";

contract BrokenTest is Test {
    function setUp() public {
        console.log("about to fail");
        revert("boom");
    }

    function testNothing() public {}
}
"#,
    )
    .unwrap();
    // An invariant test shows the lines of its failing (shrunk) sequence.
    std::fs::write(
        root.join("test/Inv.t.sol"),
        r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@nml/nml/Test.sol";

contract Tally {
    uint256 public n;

    function inc() external {
        n += 1;
        console.log("inc %s", n);
    }
}

contract TallyTest is Test {
    Tally tally;

    function setUp() public {
        tally = new Tally();
    }

    function invariant_small() public view {
        assertLt(tally.n(), 2);
    }
}
"#,
    )
    .unwrap();
    let junit = root.join("junit.xml");
    let run = nml(root, &["test", "--junit", junit.to_str().unwrap()]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(1), "{out}");
    // The failing test shows its lines, setUp's first; the passing one not.
    let failing = out.split("[FAIL] testWrongQuote()").nth(1).expect("the failing test is reported");
    assert!(failing.contains("Logs:\n         set up true\n         -5\n         quote 1000 -> fee 10\n"), "{out}");
    let invariant = out.split("[FAIL] invariant_small()").nth(1).expect("the invariant fails");
    assert!(invariant.contains("Logs:\n         inc 1\n         inc 2\n"), "{out}");
    let broken = out.split("[FAIL] testNothing()").nth(1).expect("the broken setUp is reported");
    assert!(broken.contains("setUp() failed: boom\n       Logs:\n         about to fail\n"), "{out}");
    let passing = out.split("[PASS] testQuote()").nth(1).unwrap().split("[FAIL]").next().unwrap();
    assert!(!passing.contains("Logs:"), "{out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("<system-out>set up true&#10;-5&#10;quote 1000 -&gt; fee 10&#10;</system-out>"), "{xml}");

    let verbose = nml(root, &["test", "-vv", "--match-test", "testQuote$"]);
    assert!(verbose.status.success(), "{}", text(&verbose));
    assert!(
        text(&verbose).contains("Logs:\n         set up true\n         quote 1000 -> fee 10\n"),
        "{}",
        text(&verbose)
    );

    // A trace names the console's calls by what they printed.
    let traced = nml(root, &["test", "-vvvv", "--match-test", "testQuote$"]);
    assert!(text(&traced).contains("console::log(\"quote 1000 -> fee 10\")"), "{}", text(&traced));

    let json = nml(root, &["test", "--json", "--match-test", "testQuote$"]);
    let line: serde_json::Value = serde_json::from_slice(&json.stdout).expect("one JSON line");
    assert_eq!(line["logs"], serde_json::json!(["set up true", "quote 1000 -> fee 10"]));
}
