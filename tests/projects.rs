//! `nml new` and `nml test` through the real binary: every template creates
//! a project whose tests pass right away, the examples' tests pass, and bad
//! input (no tests, a test that does not compile, a reverting `setUp`, a test
//! that never ends, an unknown cheatcode, an unknown template, a non-empty
//! directory) gets a clear answer.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

const NML: &str = env!("CARGO_BIN_EXE_nml");

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn nml(dir: &Path, args: &[&str]) -> Output {
    Command::new(NML).args(args).current_dir(dir).output().expect("runs nml")
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A project with `test/Case.t.sol` = `test`, and nothing in `src/`.
fn project_with_test(test: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\n").unwrap();
    std::fs::create_dir_all(dir.path().join("test")).unwrap();
    std::fs::write(dir.path().join("test/Case.t.sol"), test).unwrap();
    dir
}

fn test_contract(body: &str) -> String {
    format!(
        "// SPDX-License-Identifier: MIT\npragma solidity ^0.8.24;\nimport \"@nml/nml/Test.sol\";\n\ncontract CaseTest is Test {{\n{body}\n}}\n"
    )
}

#[test]
fn every_template_passes_its_tests_right_after_nml_new() {
    for template in ["dynamic-fee", "credit-risk", "trading-agent"] {
        let dir = tempfile::tempdir().unwrap();
        let created = nml(dir.path(), &["new", "my-project", "--template", template]);
        assert!(created.status.success(), "{}", text(&created));
        let project = dir.path().join("my-project");
        let toml = std::fs::read_to_string(project.join("nml.toml")).unwrap();
        assert!(toml.contains("name = \"my-project\""), "{toml}");
        let ignored = std::fs::read_to_string(project.join(".gitignore")).unwrap();
        assert_eq!(ignored, "out/\ncache/\nlcov.info\n");
        let run = nml(&project, &["test"]);
        let out = text(&run);
        assert!(run.status.success(), "{template}: {out}");
        assert!(out.contains("0 failed"), "{out}");
        assert!(!out.contains("[FAIL]"), "{out}");
    }
}

#[test]
fn the_language_example_passes_its_tests() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&repo().join("examples/quickstart"), dir.path());
    let run = nml(dir.path(), &["test", "--json"]);
    assert!(run.status.success(), "{}", text(&run));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&run.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 7);
    let ask = lines.iter().find(|l| l["test"] == "testAskIsAnsweredByARealModel").expect("test");
    assert_eq!(ask["outcome"]["status"], "pass");
    let answer = &ask["inferenceReceipts"][0];
    assert_eq!(answer["model"], "meta-llama/Llama-3.1-8B-Instruct");
    assert!(!answer["output"]["answer"].as_str().expect("an LLM answer").is_empty(), "{answer}");
    let volatile = lines.iter().find(|l| l["test"] == "testVolatileHourRaisesTheFee").expect("test");
    assert_eq!(volatile["outcome"]["status"], "pass");
    assert_eq!(volatile["inferences"], 1);
    let receipt = &volatile["inferenceReceipts"][0];
    assert_eq!(receipt["model"], "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51");
    assert_eq!(receipt["output"]["numbers"][0]["name"], "vol");
}

#[test]
fn nml_new_refuses_a_non_empty_directory_and_unknown_templates() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("taken")).unwrap();
    std::fs::write(dir.path().join("taken/notes.txt"), "keep me").unwrap();
    let refused = nml(dir.path(), &["new", "taken"]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("exists and is not empty"), "{}", text(&refused));
    assert_eq!(std::fs::read_to_string(dir.path().join("taken/notes.txt")).unwrap(), "keep me");
    let forced = nml(dir.path(), &["new", "taken", "--force"]);
    assert!(forced.status.success(), "{}", text(&forced));
    assert!(dir.path().join("taken/src/DynamicFeePool.nml").exists());
    assert!(dir.path().join("taken/notes.txt").exists());

    let unknown = nml(dir.path(), &["new", "x", "--template", "yield-farm"]);
    assert!(!unknown.status.success());
    let out = text(&unknown);
    assert!(out.contains("unknown template `yield-farm`") && out.contains("trading-agent"), "{out}");
    let list = nml(dir.path(), &["new", "--list"]);
    assert!(text(&list).contains("credit-risk"));
}

#[test]
fn no_tests_is_a_clear_message_and_exit_code_3() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"empty\"\n").unwrap();
    let run = nml(dir.path(), &["test"]);
    assert_eq!(run.status.code(), Some(3), "{}", text(&run));
    assert!(text(&run).contains("no tests found in test/"), "{}", text(&run));
}

#[test]
fn a_test_that_does_not_compile_gets_build_diagnostics() {
    let dir = project_with_test(&test_contract("    function testX() public { uint256 x = \"no\"; }"));
    let run = nml(dir.path(), &["test"]);
    assert_eq!(run.status.code(), Some(1));
    let out = text(&run);
    assert!(out.contains("test/Case.t.sol:6") && out.contains("the tests do not compile"), "{out}");
}

#[test]
fn failures_are_reported_with_their_reason() {
    let body = r#"
    event Ping(uint256 n);
    function testPasses() public { assertEq(uint256(1 + 1), uint256(2)); }
    function testAssertion() public { assertEq(uint256(3), uint256(4), "sums"); }
    function testFailInverted() public { revert("expected"); }
    function testNeverEnds() public { uint256 i; while (true) { i++; } }
    function testUnknownCheatcode() public { (bool ok, bytes memory data) = address(vm).call(abi.encodeWithSignature("ffi(string[])", new string[](0))); require(ok, abi.decode(_strip(data), (string))); }
    function testEnvAndLabel() public { vm.label(address(0xCAFE), "cafe"); (bool poked,) = address(0xCAFE).call(abi.encodeWithSignature("poke()")); assertTrue(poked); assertEq(vm.envOr("NML_TEST_UNSET_VARIABLE", uint256(7)), 7); assertEq(vm.envOr("NML_TEST_FLAG", false), true); assertEq(vm.envOr("NML_TEST_UNSET_VARIABLE", string("x")), "x"); }
    function testDealAndWarp() public { vm.deal(address(0xCAFE), 7 ether); assertEq(address(0xCAFE).balance, 7 ether); vm.warp(1_000_000); assertEq(block.timestamp, 1_000_000); vm.roll(99); assertEq(block.number, 99); }
    function testExpectEmitSeesTheEvent() public { Emitter e = new Emitter(); vm.expectEmit(); emit Ping(5); e.ping(5); }
    function testExpectEmitMissesTheEvent() public { Emitter e = new Emitter(); vm.expectEmit(); emit Ping(5); e.ping(6); }
    function testExpectRevertWithoutRevert() public { Emitter e = new Emitter(); vm.expectRevert(); e.ping(1); }
    function testExpectRevertNeverFollowed() public { vm.expectRevert(); }
    function testPrankedCreate() public { vm.prank(address(0xB0B)); Owned o = new Owned(); assertEq(o.owner(), address(0xB0B)); assertEq(new Owned().owner(), address(this)); }
    function testExpectRevertOnCreate() public { vm.expectRevert(bytes("no")); new Refuses(); }
    function _strip(bytes memory data) internal pure returns (bytes memory out) { out = new bytes(data.length - 4); for (uint256 i = 0; i < out.length; i++) out[i] = data[i + 4]; }
}

contract Emitter {
    event Ping(uint256 n);
    function ping(uint256 n) external { emit Ping(n); }
}

contract Owned {
    address public owner = msg.sender;
}

contract Refuses {
    constructor() { revert("no"); }
}

abstract contract Inherited is Test {
    function testOnlyInSubcontracts() public { assertTrue(false); }
"#;
    let dir = project_with_test(&test_contract(body));
    let junit = dir.path().join("junit.xml");
    let run = Command::new(NML)
        .args(["test", "--junit", junit.to_str().unwrap(), "--gas-report"])
        .current_dir(dir.path())
        .env("NML_TEST_FLAG", "true")
        .output()
        .unwrap();
    let out = text(&run);
    assert_eq!(run.status.code(), Some(1), "{out}");
    let line = |test: &str| {
        let i = out.find(&format!("] {test}()")).unwrap_or_else(|| panic!("{test} in {out}"));
        out[i - 5..].lines().take(2).collect::<Vec<_>>().join("\n")
    };
    assert!(line("testPasses").starts_with("[PASS"), "{out}");
    assert!(line("testAssertion").contains("sums: assertEq: 3 != 4"), "{out}");
    assert!(line("testFailInverted").starts_with("[PASS"), "{out}");
    assert!(line("testNeverEnds").contains("ran out of gas"), "{out}");
    assert!(line("testUnknownCheatcode").contains("unknown cheatcode 0x"), "{out}");
    assert!(line("testDealAndWarp").starts_with("[PASS"), "{out}");
    assert!(line("testEnvAndLabel").starts_with("[PASS"), "{out}");
    assert!(line("testExpectEmitSeesTheEvent").starts_with("[PASS"), "{out}");
    assert!(line("testExpectEmitMissesTheEvent").contains("expected event was not emitted"), "{out}");
    assert!(line("testExpectRevertWithoutRevert").contains("call did not revert as expected"), "{out}");
    assert!(line("testExpectRevertNeverFollowed").contains("vm.expectRevert() was not followed by a call"), "{out}");
    assert!(line("testPrankedCreate").starts_with("[PASS"), "{out}");
    assert!(line("testExpectRevertOnCreate").starts_with("[PASS"), "{out}");
    assert!(!out.contains("Case.t.sol:Inherited"), "abstract contracts do not run: {out}");
    assert!(out.contains("test result: FAILED. 7 passed; 6 failed"), "{out}");
    assert!(out.contains("| Emitter | ping(uint256) |"), "{out}");
    assert!(out.contains("| cafe | 0x"), "labels name unknown callees in the gas report: {out}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.starts_with("<?xml") && xml.contains("tests=\"13\" failures=\"6\""), "{xml}");
    assert!(xml.contains("<failure message=\"sums: assertEq: 3 != 4\">"), "{xml}");

    let filtered = nml(dir.path(), &["test", "--match-test", "Passes|Inverted"]);
    assert!(filtered.status.success(), "{}", text(&filtered));
    assert!(text(&filtered).contains("2 passed; 0 failed"));
}

/// Foundry's everyday cheatcodes and fuzz tests: keys and signatures,
/// storage, code and nonces, mocked and expected calls, recorded logs,
/// `expectEmit` with checks, forge-std's helpers; a fuzz test runs its
/// runs, `vm.assume` rejects draws, and a failing one is shrunk to the
/// smallest counterexample, the same on every run with the same seed.
#[test]
fn foundry_cheatcodes_and_fuzz_tests() {
    let body = r#"
    event Moved(address indexed from, address indexed to, uint256 amount);
    Token token;
    function setUp() public { token = new Token(); vm.mockCall(address(token), abi.encodeWithSelector(Token.price.selector), abi.encode(uint256(42))); }
    function testKeysAndSignatures() public {
        assertEq(vm.addr(1), 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf);
        (address alice, uint256 key) = makeAddrAndKey("alice");
        bytes32 digest = keccak256("nml");
        (uint8 v, bytes32 r, bytes32 s) = vm.sign(key, digest);
        assertEq(ecrecover(digest, v, r, s), alice);
    }
    function testStorageCodeAndNonces() public {
        vm.store(address(token), bytes32(uint256(0)), bytes32(uint256(77)));
        assertEq(token.supply(), 77);
        assertEq(vm.load(address(token), bytes32(uint256(0))), bytes32(uint256(77)));
        vm.etch(address(0xC0DE), hex"602a60005260206000f3");
        (bool ok, bytes memory out) = address(0xC0DE).call("");
        assertTrue(ok);
        assertEq(abi.decode(out, (uint256)), 42);
        vm.setNonce(address(0xB0B), 9);
        assertEq(uint256(vm.getNonce(address(0xB0B))), 9);
    }
    function testMockedCallsFromSetUp() public {
        assertEq(token.price(), 42);
        vm.mockCallRevert(address(token), abi.encodeWithSelector(Token.price.selector), abi.encodeWithSignature("Error(string)", "closed"));
        vm.expectRevert(bytes("closed"));
        token.price();
        vm.clearMockedCalls();
        assertEq(token.price(), 1);
    }
    function testExpectCall() public { vm.expectCall(address(token), abi.encodeWithSelector(Token.move.selector)); token.move(address(1), 5); }
    function testExpectCallUnmet() public { vm.expectCall(address(token), abi.encodeWithSelector(Token.move.selector, address(2))); token.move(address(1), 5); }
    function testExpectEmitChecksOnlyWhatItIsTold() public {
        vm.expectEmit(true, false, false, true, address(token));
        emit Moved(address(this), address(999), 5);
        token.move(address(1), 5);
    }
    function testExpectEmitWrongEmitter() public {
        vm.expectEmit(address(0xDEAD));
        emit Moved(address(this), address(1), 5);
        token.move(address(1), 5);
    }
    function testRecordedLogs() public {
        vm.recordLogs();
        token.move(address(1), 5);
        Vm.Log[] memory logs = vm.getRecordedLogs();
        assertEq(logs.length, 1);
        assertEq(logs[0].emitter, address(token));
        assertEq(logs[0].topics[0], keccak256("Moved(address,address,uint256)"));
        assertEq(abi.decode(logs[0].data, (uint256)), 5);
    }
    function testHelpers() public {
        address bob = makeAddr("bob");
        hoax(bob, 3 ether);
        token.move(address(1), 1);
        assertEq(token.lastSender(), bob);
        assertEq(bob.balance, 3 ether);
        uint256 t = block.timestamp;
        skip(100);
        assertEq(block.timestamp, t + 100);
        assertEq(bound(uint256(5), 10, 20), 16);
        assertEq(bound(uint256(11), 1, 10), 1);
        assertEq(bound(uint256(0), 10, 20), 10);
        assertEq(bound(uint256(3), 10, 20), 13);
        assertEq(bound(type(uint256).max, 1, 1e24), 1e24);
        assertEq(bound(type(uint256).max - 2, 1, 1e24), 1e24 - 2);
        assertEq(bound(uint256(7), 7, 7), 7);
        assertEq(bound(uint256(8), 7, 7), 7);
        assertEq(bound(type(int256).max, -5, 5), 5);
        assertEq(bound(type(int256).min, -5, 5), -5);
        int256 b = bound(int256(-3), -1, 1);
        assertTrue(b >= -1 && b <= 1);
        assertEq(bound(int256(-3), -5, 5), -3);
    }
    function testFuzzSumsCommute(uint128 a, uint128 b, address who, bytes calldata data) public {
        assertEq(uint256(a) + uint256(b), uint256(b) + uint256(a));
        token.move(who, data.length);
    }
    function testFuzzAssume(uint8 x) public { vm.assume(x % 2 == 0); assertEq(uint256(x % 2), 0); }
    function testFuzzThreshold(uint256 x, bool flag) public { flag; assertLt(x, 1000); }
    function testFuzzRejectsEverything(uint256 x) public { vm.assume(x == 7 && x == 8); }
    function testAssumeWithoutParameters() public { vm.assume(false); }
    function testSkipsItself() public { vm.skip(false); vm.skip(true); revert("never reached"); }
    event A(uint256 v);
    event B(uint256 v);
    function testExpectEmitInOrder() public { Pair p = new Pair(); vm.expectEmit(); emit A(1); vm.expectEmit(); emit B(2); p.ab(); }
    function testExpectEmitOutOfOrder() public { Pair p = new Pair(); vm.expectEmit(); emit B(2); vm.expectEmit(); emit A(1); p.ab(); }
    function testExpectEmitOneEventTwice() public { Pair p = new Pair(); vm.expectEmit(); emit A(1); vm.expectEmit(); emit A(1); p.ab(); }
}

contract Pair {
    event A(uint256 v);
    event B(uint256 v);
    function ab() external { emit A(1); emit B(2); }
}

contract Token {
    uint256 public supply;
    address public lastSender;
    event Moved(address indexed from, address indexed to, uint256 amount);
    function price() external pure returns (uint256) { return 1; }
    function move(address to, uint256 amount) external { lastSender = msg.sender; emit Moved(msg.sender, to, amount); }
"#;
    let dir = project_with_test(&test_contract(body));
    // The runs from nml.toml; the seed from the flag, below.
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\n\n[fuzz]\nruns = 64\n").unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["test", "--json"];
        args.extend_from_slice(extra);
        let run = nml(dir.path(), &args);
        assert_eq!(run.status.code(), Some(1), "{}", text(&run));
        let lines: std::collections::BTreeMap<String, serde_json::Value> = String::from_utf8_lossy(&run.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
            .map(|v| (v["test"].as_str().unwrap().to_owned(), v))
            .collect();
        lines
    };
    let results = run(&[]);
    let passed = |test: &str| results[test]["outcome"]["status"] == "pass";
    let reason = |test: &str| results[test]["outcome"]["reason"].as_str().unwrap_or_default().to_owned();
    for test in [
        "testKeysAndSignatures",
        "testStorageCodeAndNonces",
        "testMockedCallsFromSetUp",
        "testExpectCall",
        "testExpectEmitChecksOnlyWhatItIsTold",
        "testRecordedLogs",
        "testHelpers",
        "testFuzzSumsCommute",
        "testFuzzAssume",
    ] {
        assert!(passed(test), "{test}: {}", results[test]);
    }
    assert!(reason("testExpectCallUnmet").contains("vm.expectCall: no call to"), "{}", reason("testExpectCallUnmet"));
    assert!(reason("testExpectEmitWrongEmitter").contains("expected event was not emitted"));
    assert_eq!(results["testFuzzSumsCommute"]["fuzz"]["runs"], 64);
    assert!(results["testFuzzAssume"]["fuzz"]["rejected"].as_u64().unwrap() > 0, "{}", results["testFuzzAssume"]);
    let threshold = &results["testFuzzThreshold"];
    assert_eq!(threshold["fuzz"]["counterexample"]["args"], "(1000, false)", "{threshold}");
    assert!(
        reason("testFuzzThreshold").contains("1000 >= 1000")
            || reason("testFuzzThreshold").contains("counterexample: (1000, false)"),
        "{threshold}"
    );
    assert!(
        reason("testFuzzRejectsEverything").contains("vm.assume rejected"),
        "{}",
        reason("testFuzzRejectsEverything")
    );
    assert!(reason("testAssumeWithoutParameters").contains("no other arguments"));
    assert_eq!(results["testSkipsItself"]["outcome"]["status"], "skip", "{}", results["testSkipsItself"]);
    assert!(passed("testExpectEmitInOrder"), "{}", results["testExpectEmitInOrder"]);
    for test in ["testExpectEmitOutOfOrder", "testExpectEmitOneEventTwice"] {
        assert!(reason(test).contains("1 of 2 expected, in order, were not"), "{test}: {}", results[test]);
    }
    // The same seed draws the same arguments; the counterexample is the
    // smallest whatever the seed.
    let again = run(&[]);
    assert_eq!(again["testFuzzThreshold"]["fuzz"], threshold["fuzz"]);
    let other = run(&["--fuzz-seed", "7", "--match-test", "Threshold"]);
    assert_eq!(other["testFuzzThreshold"]["fuzz"]["counterexample"]["args"], "(1000, false)");
    assert_eq!(other["testFuzzThreshold"]["fuzz"]["seed"], 7);
    let hex = run(&["--fuzz-seed", "0x7", "--match-test", "Threshold"]);
    assert_eq!(hex["testFuzzThreshold"]["fuzz"], other["testFuzzThreshold"]["fuzz"]);
}

/// Fuzz draws pick the constants of the test contract's code: a value the
/// code compares its input with is found, where a uniform draw would never
/// hit it.
#[test]
fn fuzz_draws_find_the_codes_magic_values() {
    let body = r#"
    function testFuzzMagic(uint256 x) public pure { require(x != 0x5eed5eed5eed, "found the magic number"); }
    function testFuzzMagicAddress(address a) public pure { require(a != 0x00000000000000000000000000000000DeaDBeef, "found the magic address"); }
"#;
    let dir = project_with_test(&test_contract(body));
    let run = nml(dir.path(), &["test", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let lines: Vec<serde_json::Value> =
        String::from_utf8_lossy(&run.stdout).lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    let found = |test: &str| {
        let line = lines.iter().find(|l| l["test"] == test).expect("the test ran");
        line["fuzz"]["counterexample"]["args"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(found("testFuzzMagic"), format!("({})", 0x5eed_5eed_5eed_u64));
    assert_eq!(found("testFuzzMagicAddress"), "(0x00000000000000000000000000000000DeaDBeef)");
}

/// Overloaded tests stay apart in every report; an enum parameter's
/// out-of-range draw is explained; a known cheatcode with arguments that
/// cannot be decoded says so; zero fuzz runs are refused.
#[test]
fn fuzz_reports_keep_overloads_apart_and_explain_what_fails_before_the_test() {
    let body = r#"
    enum Color { Red, Green, Blue }
    function testOver() public pure {}
    function testOver(uint256 a) public pure { assertLt(a, 10); }
    function testEnum(Color c) public pure { c; }
    function testMalformedCheatcodeReason() public { vm.expectRevert(bytes("vm.addr(uint256): the arguments cannot be decoded")); (bool ok,) = address(this).call(abi.encodeWithSignature("callMalformed()")); ok; }
    function callMalformed() external { (bool ok, bytes memory out) = address(vm).call(abi.encodePacked(Vm.addr.selector, uint8(1))); if (!ok) assembly { revert(add(out, 32), mload(out)) } }
"#;
    let dir = project_with_test(&test_contract(body));
    let junit = dir.path().join("junit.xml");
    let run = nml(dir.path(), &["test", "--json", "--fuzz-runs", "16", "--junit", junit.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let lines: std::collections::BTreeMap<String, serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .map(|v| (v["signature"].as_str().expect("a signature").to_owned(), v))
        .collect();
    assert_eq!(lines["testOver()"]["outcome"]["status"], "pass");
    assert_eq!(lines["testOver(uint256)"]["outcome"]["status"], "fail");
    assert_eq!(lines["testOver(uint256)"]["test"], "testOver");
    let reason = |signature: &str| lines[signature]["outcome"]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason("testEnum(uint8)").contains("an enum argument past the enum's last variant"),
        "{}",
        reason("testEnum(uint8)")
    );
    assert_eq!(
        lines["testMalformedCheatcodeReason()"]["outcome"]["status"], "pass",
        "{}",
        lines["testMalformedCheatcodeReason()"]
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains("name=\"testOver\"") && xml.contains("name=\"testOver(uint256)\""), "{xml}");
    let list = nml(dir.path(), &["test", "--list"]);
    let listed = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(listed.contains("CaseTest.testOver\n") && listed.contains("CaseTest.testOver(uint256)\n"), "{listed}");

    let none = nml(dir.path(), &["test", "--fuzz-runs", "0"]);
    assert_eq!(none.status.code(), Some(2), "{}", text(&none));
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\n[fuzz]\nruns = 0\n").unwrap();
    let none = nml(dir.path(), &["test"]);
    assert!(!none.status.success() && text(&none).contains("[fuzz] runs must be at least 1"), "{}", text(&none));
}

fn json_lines(output: &Output) -> std::collections::BTreeMap<String, serde_json::Value> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .map(|v| {
            (format!("{}.{}", v["contract"].as_str().unwrap_or_default(), v["test"].as_str().unwrap_or_default()), v)
        })
        .collect()
}

/// An invariant test calls the contracts setUp deployed with random
/// senders and arguments, finds the call that breaks the invariant, and
/// shrinks the sequence to it (the other calls keep the invariant).
#[test]
fn invariant_tests_find_a_breaking_call_and_shrink_the_sequence_to_it() {
    let test = r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@nml/nml/Test.sol";

contract Vault {
    mapping(address => uint256) public balanceOf;
    uint256 public total;
    uint256 public deposited;
    uint256 public withdrawn;

    function deposit(uint256 amount) external {
        amount %= 1e6;
        balanceOf[msg.sender] += amount;
        total += amount;
        deposited += amount;
    }

    function withdraw(uint256 amount) external {
        require(balanceOf[msg.sender] >= amount, "insufficient");
        balanceOf[msg.sender] -= amount;
        total -= amount;
        withdrawn += amount;
    }

    function skim(uint256 x) external {
        if (x % 7 == 3) total += 1;
    }
}

contract CaseTest is Test {
    Vault vault;

    function setUp() public {
        vault = new Vault();
    }

    function invariant_accounted() public view {
        assertEq(vault.total(), vault.deposited() - vault.withdrawn(), "total drifted");
    }
}
"#;
    let dir = project_with_test(test);
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\n[invariant]\nruns = 32\ndepth = 10\n")
        .unwrap();
    let run = nml(dir.path(), &["test", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let lines = json_lines(&run);
    let line = &lines["CaseTest.invariant_accounted"];
    assert_eq!(line["outcome"]["status"], "fail", "{line}");
    let reason = line["outcome"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("total drifted") && reason.contains("after 1 call (shrunk)"), "{reason}");
    let sequence = line["invariant"]["sequence"].as_array().expect("a sequence");
    assert_eq!(sequence.len(), 1, "{line}");
    assert_eq!(sequence[0]["contract"], "Vault");
    let call = sequence[0]["call"].as_str().unwrap_or_default();
    let x: alloy_primitives::U256 =
        call.strip_prefix("skim(").and_then(|c| c.strip_suffix(')')).and_then(|c| c.parse().ok()).expect(call);
    assert_eq!(x % alloy_primitives::U256::from(7), alloy_primitives::U256::from(3), "{call}");
    // The argument is shrunk too, as a fuzz test's.
    assert_eq!(call, "skim(3)", "{line}");
    assert!(line["invariant"]["calls"].as_u64().unwrap_or_default() >= 1, "{line}");

    // The human report lists the calls; the same seed finds the same sequence.
    let human = nml(dir.path(), &["test"]);
    let out = text(&human);
    assert!(out.contains("[FAIL] invariant_accounted() (runs: ") && out.contains("  1. 0x"), "{out}");
    assert!(out.contains(&format!("→ Vault.{call}")), "{out}");
}

/// The test contract's `targetSelector`, `targetSender` and
/// `excludeContract` choose what is called and by whom; `afterInvariant`
/// runs after every run; a reverting call is skipped and counted, or fails
/// the test with `fail_on_revert`; `[invariant]` sets runs and depth.
#[test]
fn invariant_targets_senders_and_hooks_follow_the_test_contract() {
    let test = r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@nml/nml/Test.sol";

contract Counter {
    uint256 public adds;
    uint256 public subs;
    address public lastSender;

    function add(uint256) external {
        adds++;
        lastSender = msg.sender;
    }

    function sub(uint256) external {
        subs++;
        lastSender = msg.sender;
    }

    function fail(bool) external pure {
        revert("always");
    }
}

contract Ignored {
    uint256 public touched;

    function touch() external {
        touched++;
    }
}

contract ChosenTest is Test {
    Counter counter;
    Ignored ignored;
    address alice = address(0xA11CE);

    function setUp() public {
        counter = new Counter();
        ignored = new Ignored();
        excludeContract(address(ignored));
        bytes4[] memory selectors = new bytes4[](1);
        selectors[0] = Counter.add.selector;
        targetSelector(FuzzSelector({addr: address(counter), selectors: selectors}));
        targetSender(alice);
    }

    function invariant_onlyAliceAdds() public view {
        assertEq(counter.subs(), 0, "sub was called");
        assertEq(ignored.touched(), 0, "an excluded contract was called");
        require(counter.adds() == 0 || counter.lastSender() == alice, "a sender other than alice");
    }

    function afterInvariant() public view {
        require(counter.adds() == 5, "each run makes its five calls");
    }
}

/// A handler whose `vm.assume` discards calls (not reverts, even with fail_on_revert).
contract Picky is Test {
    uint256 public kept;

    function pick(uint256 x) external {
        vm.assume(x % 2 == 0);
        kept++;
    }
}

contract PickyTest is Test {
    Picky picky;

    function setUp() public {
        picky = new Picky();
        targetContract(address(picky));
    }

    function invariant_picky() public view {}
}

contract ParamsTest is Test {
    function invariant_withParameters(uint256 x) public pure {
        x;
    }
}

contract RevertsTest is Test {
    Counter counter;

    function setUp() public {
        counter = new Counter();
        bytes4[] memory selectors = new bytes4[](1);
        selectors[0] = Counter.fail.selector;
        targetSelector(FuzzSelector({addr: address(counter), selectors: selectors}));
    }

    function invariant_nothing() public pure {}
}
"#;
    let dir = project_with_test(test);
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\n[invariant]\nruns = 8\ndepth = 5\n")
        .unwrap();
    let run = nml(dir.path(), &["test", "--json", "--match-contract", "^(Chosen|Reverts|Picky)Test$"]);
    assert!(run.status.success(), "{}", text(&run));
    let lines = json_lines(&run);
    let chosen = &lines["ChosenTest.invariant_onlyAliceAdds"];
    assert_eq!(chosen["outcome"]["status"], "pass", "{chosen}");
    assert_eq!(chosen["invariant"]["runs"], 8, "{chosen}");
    assert_eq!(chosen["invariant"]["calls"], 40, "{chosen}");
    assert_eq!(chosen["invariant"]["reverts"], 0, "{chosen}");
    let reverts = &lines["RevertsTest.invariant_nothing"];
    assert_eq!(reverts["outcome"]["status"], "pass", "{reverts}");
    assert_eq!(reverts["invariant"]["reverts"], 40, "{reverts}");

    std::fs::write(
        dir.path().join("nml.toml"),
        "[project]\nname = \"case\"\n[invariant]\nruns = 8\ndepth = 5\nfail_on_revert = true\n",
    )
    .unwrap();
    let run = nml(dir.path(), &["test", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let lines = json_lines(&run);
    assert_eq!(lines["ChosenTest.invariant_onlyAliceAdds"]["outcome"]["status"], "pass");
    let params = &lines["ParamsTest.invariant_withParameters"];
    assert!(params["outcome"]["reason"].as_str().unwrap_or_default().contains("an invariant takes no parameters"));
    let picky = &lines["PickyTest.invariant_picky"];
    assert_eq!(picky["outcome"]["status"], "pass", "{picky}");
    assert_eq!(picky["invariant"]["reverts"], 0, "{picky}");
    let failed = &lines["RevertsTest.invariant_nothing"];
    let reason = failed["outcome"]["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("Counter.fail(bool) reverted: always (fail_on_revert is on)"), "{reason}");
    assert_eq!(failed["invariant"]["sequence"].as_array().map(Vec::len), Some(1), "{failed}");

    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\n[invariant]\ndepth = 0\n").unwrap();
    let none = nml(dir.path(), &["test"]);
    assert!(!none.status.success() && text(&none).contains("[invariant] runs and depth must be at least 1"));
}

/// `-vvv` prints the call tree of every failing test (names from the
/// project's contracts and `vm.label`, arguments, events, returns and the
/// revert), `-vvvv` of passing tests too; `--json` carries it as `trace`.
#[test]
fn traces_show_the_call_tree_of_failing_tests() {
    let test = r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@nml/nml/Test.sol";

contract Bank {
    event Paid(address indexed who, uint256 amount);

    function pay(uint256 amount) external returns (uint256) {
        emit Paid(msg.sender, amount);
        require(amount < 10, "too much");
        return amount * 2;
    }
}

contract CaseTest is Test {
    Bank bank;

    function setUp() public {
        bank = new Bank();
    }

    function testPays() public {
        assertEq(bank.pay(4), 8);
    }

    function testOverpays() public {
        vm.label(address(bank), "TheBank");
        Bank fresh = new Bank();
        fresh.pay(1);
        vm.expectRevert(bytes("too much"));
        bank.pay(11);
        bank.pay(3);
        bank.pay(20);
    }
}
"#;
    let dir = project_with_test(test);
    let run = nml(dir.path(), &["test", "-vvv"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let out = text(&run);
    let traces: Vec<&str> = out.split("Traces:").collect();
    assert_eq!(traces.len(), 2, "one test failed, one trace: {out}");
    let trace = traces[1].split("[PASS]").next().unwrap_or_default();
    for part in [
        "CaseTest::testOverpays()",
        "VM::label(",
        "TheBank::pay(3)",
        // Created in the test (whose revert leaves no code behind): still named.
        "Bank::pay(1)",
        "emit Paid(who: 0x",
        "amount: 3)",
        "← [Return] 6",
        "TheBank::pay(20)",
        "← [Revert] too much",
    ] {
        assert!(trace.contains(part), "{part:?} missing from {trace}");
    }
    assert!(!trace.contains("testPays"), "{trace}");
    // The call vm.expectRevert expected shows its revert (the root's, pay(20)'s, and pay(11)'s).
    assert_eq!(trace.matches("← [Revert] too much").count(), 3, "{trace}");

    let all = nml(dir.path(), &["test", "-vvvv", "--json"]);
    let lines = json_lines(&all);
    let passing = lines["CaseTest.testPays"]["trace"].as_str().unwrap_or_default();
    assert!(passing.contains("Bank::pay(4)") && passing.contains("← [Return] 8"), "{passing}");
    let quiet = nml(dir.path(), &["test", "--json"]);
    assert!(json_lines(&quiet)["CaseTest.testOverpays"].get("trace").is_none());
}

/// `--snapshot` writes each passing test's gas to `.gas-snapshot`;
/// `--snapshot-check` fails on a change beyond the tolerance, or a test
/// the snapshot does not have, and keeps passing on an unchanged run.
#[test]
fn gas_snapshots_are_written_and_checked() {
    let body = r#"
    uint256 stored;
    function testStore() public { stored = 7; }
    function testFuzzStore(uint8 x) public { stored = x; }
"#;
    let dir = project_with_test(&test_contract(body));
    let snapshot = dir.path().join(".gas-snapshot");
    let missing = nml(dir.path(), &["test", "--snapshot-check"]);
    assert!(!missing.status.success() && text(&missing).contains("write one with `nml test --snapshot`"));
    let write = nml(dir.path(), &["test", "--snapshot", "--fuzz-runs", "8"]);
    assert!(write.status.success(), "{}", text(&write));
    let written = std::fs::read_to_string(&snapshot).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines.len(), 2, "{written}");
    assert!(lines[0].starts_with("CaseTest:testFuzzStore(uint8) (runs: 8, μ: "), "{written}");
    assert!(lines[1].starts_with("CaseTest:testStore() (gas: "), "{written}");
    let same = nml(dir.path(), &["test", "--snapshot-check", "--fuzz-runs", "8"]);
    assert!(same.status.success() && text(&same).contains(".gas-snapshot: 2 tests match"), "{}", text(&same));

    let gas: u64 = lines[1].trim_end_matches(')').rsplit(' ').next().unwrap().parse().unwrap();
    std::fs::write(&snapshot, format!("{}\nCaseTest:testStore() (gas: {})\n", lines[0], gas - 100)).unwrap();
    let changed = nml(dir.path(), &["test", "--snapshot-check", "--fuzz-runs", "8"]);
    assert_eq!(changed.status.code(), Some(1), "{}", text(&changed));
    assert!(text(&changed).contains(&format!("CaseTest:testStore(): gas {} → {gas}", gas - 100)), "{}", text(&changed));
    let tolerated = nml(dir.path(), &["test", "--snapshot-check", "--snapshot-tolerance", "5", "--fuzz-runs", "8"]);
    assert!(tolerated.status.success(), "{}", text(&tolerated));

    std::fs::write(&snapshot, format!("{}\n", lines[0])).unwrap();
    let new = nml(dir.path(), &["test", "--snapshot-check", "--fuzz-runs", "8"]);
    assert_eq!(new.status.code(), Some(1));
    assert!(text(&new).contains("CaseTest:testStore(): not in .gas-snapshot"), "{}", text(&new));
    // A filtered run rewrites its own line and keeps the others.
    let partial = nml(dir.path(), &["test", "--snapshot", "--match-test", "testStore"]);
    assert!(partial.status.success());
    assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), written);
    // A run of every test writes the file anew: stale and malformed lines go.
    std::fs::write(
        &snapshot,
        "CaseTest:testGone() (gas: 1)
not a line
",
    )
    .unwrap();
    let full = nml(dir.path(), &["test", "--snapshot", "--fuzz-runs", "8"]);
    assert!(full.status.success(), "{}", text(&full));
    assert_eq!(std::fs::read_to_string(&snapshot).unwrap(), written);
    let nan = nml(dir.path(), &["test", "--snapshot-check", "--snapshot-tolerance", "NaN"]);
    assert_eq!(nan.status.code(), Some(2), "{}", text(&nan));
}

/// A fuzz test with more parameters than the stack holds compiles with
/// `via_ir = true` (solc's IR pipeline moves them to memory), and not
/// without it.
#[test]
fn many_parameters_compile_through_the_ir_pipeline() {
    let params: Vec<String> = (0..14).map(|i| format!("uint8 a{i}")).collect();
    let sum: Vec<String> = (0..14).map(|i| format!("uint256(a{i})")).collect();
    let body = format!(
        "    function testMany({}) public pure {{ assertLt({}, 14 * 256); }}\n",
        params.join(", "),
        sum.join(" + ")
    );
    let dir = project_with_test(&test_contract(&body));
    let legacy = nml(dir.path(), &["test", "--fuzz-runs", "4"]);
    assert_eq!(legacy.status.code(), Some(1), "{}", text(&legacy));
    assert!(text(&legacy).contains("Stack too deep"), "{}", text(&legacy));
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\nvia_ir = true\noptimizer_runs = 200\n")
        .unwrap();
    let ir = nml(dir.path(), &["test", "--fuzz-runs", "4"]);
    assert!(ir.status.success(), "{}", text(&ir));
    assert!(text(&ir).contains("runs: 4"), "{}", text(&ir));
}

#[test]
fn a_reverting_set_up_fails_every_test_with_its_reason() {
    let body = r#"
    function setUp() public { require(false, "no funds"); }
    function testA() public {}
    function testB() public {}
"#;
    let dir = project_with_test(&test_contract(body));
    let run = nml(dir.path(), &["test"]);
    let out = text(&run);
    assert_eq!(run.status.code(), Some(1), "{out}");
    assert_eq!(out.matches("setUp() failed: no funds").count(), 2, "{out}");
}

#[test]
fn warp_and_mocks_in_set_up_hold_in_every_test() {
    let body = r#"
    function setUp() public { vm.warp(5_000); vm.roll(77); }
    function testTime() public { assertEq(block.timestamp, 5_000); assertEq(block.number, 77); }
    function testTimeAgain() public { vm.warp(9_000); assertEq(block.timestamp, 9_000); }
"#;
    let dir = project_with_test(&test_contract(body));
    let run = nml(dir.path(), &["test"]);
    assert!(run.status.success(), "{}", text(&run));
}

/// `stdlib/nml/Test.sol` declares the `Vm` interface for Solidity and the
/// runner's inspector decodes calls with its own `sol!` copy: the two must
/// name the same functions, or a cheatcode would be "unknown" at run time.
#[test]
fn the_vm_that_test_sol_declares_is_the_one_the_runner_serves() {
    let dir = project_with_test(&test_contract("function test_nothing() public {}"));
    let (built, _) = common::build(dir.path(), true, &[]);
    let mut found = Vec::new();
    let mut stack = vec![built.path().join("out")];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).expect("out dir").flatten() {
            if entry.path().is_dir() {
                stack.push(entry.path());
            } else if entry.file_name() == "Vm.json" {
                found.push(entry.path());
            }
        }
    }
    assert_eq!(found.len(), 1, "one Vm artifact: {found:?}");
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&found[0]).unwrap()).unwrap();
    let mut solidity: Vec<String> = json["methodIdentifiers"]
        .as_object()
        .expect("methodIdentifiers")
        .values()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    let mut served: Vec<String> =
        nml_runtime::testing::cheatcodes::Vm::VmCalls::SELECTORS.iter().map(alloy_primitives::hex::encode).collect();
    solidity.sort();
    served.sort();
    assert!(!served.is_empty());
    assert_eq!(solidity, served);
}

/// `nml test`'s LLM flags and `[llm]`: a cassette is recorded from the
/// embedded model, then replayed; a replay without the answer fails the
/// test that asks, by name; `default = "none"` leaves the id unknown.
#[test]
fn nml_test_records_and_replays_llm_cassettes() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&repo().join("examples/quickstart"), dir.path());
    let project = dir.path().to_str().unwrap();
    let cassette = dir.path().join("test/cassettes/llm.json");
    let cassette = cassette.to_str().unwrap();

    let lonely = nml(dir.path(), &["test", project, "--cassette-mode", "record"]);
    assert_eq!(lonely.status.code(), Some(1), "{}", text(&lonely));
    assert!(text(&lonely).contains("--cassette-mode needs a cassette"), "{}", text(&lonely));

    let empty = nml(dir.path(), &["test", project, "--cassette", cassette]);
    assert_eq!(empty.status.code(), Some(1), "{}", text(&empty));
    let out = text(&empty);
    assert!(out.contains("[FAIL] testAskIsAnsweredByARealModel()"), "{out}");
    assert!(out.contains("has no answer for request 0x"), "{out}");
    assert!(out.contains("[PASS] testAskCanBeMocked()"), "mocks need no cassette: {out}");

    let record = nml(dir.path(), &["test", project, "--cassette", cassette, "--cassette-mode", "record"]);
    assert!(record.status.success(), "{}", text(&record));
    let taped: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cassette).unwrap()).unwrap();
    let answers = taped["answers"].as_array().expect("answers");
    assert_eq!(answers.len(), 1, "{taped}");
    assert_eq!(answers[0]["prompt"], "One word for ETH's trend this week:");
    assert_eq!(answers[0]["model"], "meta-llama/Llama-3.1-8B-Instruct");

    let replay = nml(dir.path(), &["test", project, "--cassette", cassette]);
    assert!(replay.status.success(), "{}", text(&replay));

    let toml = dir.path().join("nml.toml");
    let mut config = std::fs::read_to_string(&toml).unwrap();
    config.push_str("\n[llm]\ndefault = \"none\"\n");
    std::fs::write(&toml, config).unwrap();
    let none = nml(dir.path(), &["test", project]);
    assert_eq!(none.status.code(), Some(1), "{}", text(&none));
    assert!(text(&none).contains("unknown LLM `meta-llama/Llama-3.1-8B-Instruct`"), "{}", text(&none));
}

/// `--list` prints what would run; `--shard i/n` splits it into disjoint
/// parts that cover every test, and each shard runs (and reports) its own.
#[test]
fn shards_split_a_suite_and_list_prints_it() {
    let dir = tempfile::tempdir().unwrap();
    common::copy_project(&repo().join("examples/trading-agent"), dir.path());
    let list = |extra: &[&str]| {
        let mut args = vec!["test", "--list"];
        args.extend_from_slice(extra);
        let run = nml(dir.path(), &args);
        assert!(run.status.success(), "{}", text(&run));
        String::from_utf8_lossy(&run.stdout).lines().map(str::to_owned).collect::<Vec<_>>()
    };
    let all = list(&[]);
    assert_eq!(all.len(), 14, "{all:?}");
    assert!(all.contains(&"test/TradingVault.t.sol:TradingVaultTest.testDowntrendSells".to_owned()), "{all:?}");
    let shards: Vec<Vec<String>> = (1..=3).map(|i| list(&["--shard", &format!("{i}/3")])).collect();
    let mut union: Vec<String> = shards.concat();
    union.sort();
    let mut sorted = all.clone();
    sorted.sort();
    assert_eq!(union, sorted, "the shards are disjoint and cover the suite");
    assert_eq!(list(&["--shard", "2/3"]), shards[1], "the split is deterministic");

    let junit = dir.path().join("shard-2.xml");
    let run = nml(dir.path(), &["test", "--shard", "2/3", "--json", "--junit", junit.to_str().unwrap()]);
    assert!(run.status.success(), "{}", text(&run));
    let ran: Vec<String> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .map(|v| {
            format!(
                "{}:{}.{}",
                v["source"].as_str().unwrap(),
                v["contract"].as_str().unwrap(),
                v["test"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(ran.len(), shards[1].len());
    assert!(ran.iter().all(|t| shards[1].contains(t)), "{ran:?}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(xml.contains(&format!("tests=\"{}\"", shards[1].len())), "{xml}");

    let bad = nml(dir.path(), &["test", "--shard", "4/3"]);
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(text(&bad).contains("expected i/n with 1 <= i <= n"), "{}", text(&bad));
}

/// The workflow scheduler in `nml test`: tasks registered, due after
/// `vm.warp`, run by `runDueTasks()`; a task that reverts does not stop the
/// others.
#[test]
fn nml_test_runs_scheduled_tasks() {
    let dir = project_with_test(&test_contract(
        r#"
    function testDueTasksRun() public {
        Counter good = new Counter();
        Counter bad = new Counter();
        bad.breakIt();
        scheduler.registerTask(address(bad), block.timestamp + 3600, 60);
        scheduler.registerTask(address(good), block.timestamp + 3600, 60);
        assertEq(runDueTasks(), 0, "nothing is due yet");
        vm.warp(block.timestamp + 61);
        assertEq(runDueTasks(), 2, "both are due");
        assertEq(good.runs(), 1);
        assertEq(runDueTasks(), 0, "the next run is a minute away");
        vm.warp(block.timestamp + 3700);
        assertEq(runDueTasks(), 0, "past the end time");
    }
}

contract Counter {
    uint256 public runs;
    bool broken;
    function breakIt() external { broken = true; }
    function run() external {
        require(!broken, "broken task");
        runs++;
    }"#,
    ));
    let run = nml(dir.path(), &["test"]);
    assert!(run.status.success(), "{}", text(&run));
    assert!(text(&run).contains("[PASS] testDueTasksRun()"), "{}", text(&run));
}

/// A project made by `nml new --template dynamic-fee` whose test contract
/// has `extra` added at its end.
fn dynamic_fee_with(extra: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let created = nml(dir.path(), &["new", "x", "--template", "dynamic-fee"]);
    assert!(created.status.success(), "{}", text(&created));
    let project = dir.path().join("x");
    let file = project.join("test/DynamicFeePool.t.sol");
    let source = std::fs::read_to_string(&file).unwrap();
    let end = source.rfind('}').expect("the test contract's end");
    std::fs::write(&file, format!("{}{extra}\n{}", &source[..end], &source[end..])).unwrap();
    (dir, project)
}

/// The `reason` of every test of a `--json` run, by test name.
fn json_reasons(run: &Output) -> std::collections::BTreeMap<String, String> {
    String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap_or_else(|e| panic!("{e}: a JSON line: {l}")))
        .map(|v| (v["test"].as_str().unwrap().to_owned(), v["outcome"]["reason"].as_str().unwrap_or("").to_owned()))
        .collect()
}

/// The `message` of every `<failure>` of a JUnit file, read by a real XML
/// parser (Python's), by test name.
fn junit_failures(file: &Path) -> std::collections::BTreeMap<String, String> {
    let script = "import json, sys, xml.dom.minidom as m\n\
                  cases = m.parse(sys.argv[1]).getElementsByTagName('testcase')\n\
                  print(json.dumps({c.getAttribute('name'): f.getAttribute('message') \
                  for c in cases for f in c.getElementsByTagName('failure')}))";
    let parsed = Command::new("python3").args(["-c", script]).arg(file).output().expect("runs python3");
    let xml = std::fs::read_to_string(file).unwrap();
    assert!(parsed.status.success(), "not valid XML: {}\n{xml}", String::from_utf8_lossy(&parsed.stderr));
    serde_json::from_slice(&parsed.stdout).expect("the parsed failures")
}

/// A revert with a custom error of a contract the test calls (not of the
/// test contract) is named, in every report and in `vm.expectRevert`'s
/// mismatch; its selector's bytes are never shown as text.
#[test]
fn reverts_are_named_by_the_errors_of_every_compiled_contract() {
    let (_dir, project) = dynamic_fee_with(
        r#"
    function testPoolError() public { pool.swap(true, 0, 0); }
    function testExpectRevertMismatch() public { vm.expectRevert(bytes("other")); pool.swap(true, 0, 0); }"#,
    );
    let junit = project.join("junit.xml");
    let run =
        nml(&project, &["test", "--match-test", "PoolError|Mismatch", "--json", "--junit", junit.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let reasons = json_reasons(&run);
    assert_eq!(reasons["testPoolError"], "ZeroAmount()", "{reasons:?}");
    let mismatch = "call reverted with `ZeroAmount()`, which is not the expected revert";
    assert_eq!(reasons["testExpectRevertMismatch"], mismatch, "{reasons:?}");
    let failures = junit_failures(&junit);
    assert_eq!(failures["testPoolError"], "ZeroAmount()", "{failures:?}");
    assert_eq!(failures["testExpectRevertMismatch"], mismatch, "{failures:?}");
    let human = nml(&project, &["test", "--match-test", "PoolError"]);
    let out = text(&human);
    assert!(out.contains("[FAIL] testPoolError()") && out.contains("       ZeroAmount()\n"), "{out}");
}

/// Revert data no ABI names is the raw data in hex, though its bytes are
/// valid UTF-8; a message with control characters still makes valid XML.
#[test]
fn undecodable_revert_data_is_hex_and_the_junit_report_is_always_xml() {
    let body = r#"
    function testRawRevert() public { new Raw().fail(); }
    function testRawInExpectRevert() public { Raw raw = new Raw(); vm.expectRevert(bytes("other")); raw.fail(); }
    function testControlCharacters() public { revert(string(hex"1f2a20050b0c7f")); }
}

contract Raw {
    /// The selector of `ZeroAmount()`, which nothing here declares.
    function fail() external pure { assembly { mstore(0, shl(224, 0x1f2a2005)) revert(0, 4) } }"#;
    let dir = project_with_test(&test_contract(body));
    let junit = dir.path().join("junit.xml");
    let run = nml(dir.path(), &["test", "--json", "--junit", junit.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let reasons = json_reasons(&run);
    assert_eq!(reasons["testRawRevert"], "reverted with 0x1f2a2005", "{reasons:?}");
    let mismatch = "call reverted with `0x1f2a2005`, which is not the expected revert";
    assert_eq!(reasons["testRawInExpectRevert"], mismatch, "{reasons:?}");
    assert_eq!(reasons["testControlCharacters"], "\u{1f}* \u{5}\u{b}\u{c}\u{7f}", "an Error(string) is its text");
    let failures = junit_failures(&junit);
    assert_eq!(failures["testRawRevert"], "reverted with 0x1f2a2005", "{failures:?}");
    assert_eq!(failures["testRawInExpectRevert"], mismatch, "{failures:?}");
    assert_eq!(failures["testControlCharacters"], "\\u{1f}* \\u{5}\\u{b}\\u{c}\u{7f}", "{failures:?}");
}

/// `--json --gas-report`: stdout stays JSON lines, one per test, and the gas
/// report is one more line of its own shape (`gasReport`).
#[test]
fn the_gas_report_of_a_json_run_is_a_json_line() {
    let body = r#"
    function testPing() public { Emitter e = new Emitter(); e.ping(1); e.ping(2); }
    function testNothing() public {}
}

contract Emitter {
    event Ping(uint256 n);
    function ping(uint256 n) external { emit Ping(n); }"#;
    let dir = project_with_test(&test_contract(body));
    let run = nml(dir.path(), &["test", "--json", "--gas-report"]);
    assert!(run.status.success(), "{}", text(&run));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&run.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: stdout is JSON lines: {l}")))
        .collect();
    assert_eq!(lines.iter().filter(|l| l.get("test").is_some()).count(), 2, "{lines:?}");
    let report: Vec<&serde_json::Value> = lines.iter().filter_map(|l| l.get("gasReport")).collect();
    assert_eq!(report.len(), 1, "{lines:?}");
    let ping = report[0]
        .as_array()
        .expect("an array of functions")
        .iter()
        .find(|f| f["contract"] == "Emitter" && f["function"] == "ping(uint256)")
        .unwrap_or_else(|| panic!("Emitter.ping in {}", report[0]));
    assert_eq!(ping["calls"], 2, "{ping}");
    let (min, median, max) = (ping["min"].as_u64(), ping["median"].as_u64(), ping["max"].as_u64());
    assert!(min.is_some_and(|min| min > 0 && Some(min) <= median && median <= max), "{ping}");
}

/// nml's runtime errors (stdlib/nml/Tensors.sol) are named with their
/// arguments: from a contract that uses a model, and from revert data that
/// no compiled ABI declares.
#[test]
fn nmls_own_errors_are_named_with_their_arguments() {
    let (_dir, project) = dynamic_fee_with(
        r#"
    function testMissingOutput() public {
        ModelOutput memory none;
        vm.mockInference(pool.modelId(), none);
        pool.updateFee(returnsOf(1e16));
    }

    function testShapeMismatch() public view {
        uint32[] memory expected = new uint32[](1);
        expected[0] = 1;
        uint32[] memory actual = new uint32[](2);
        bytes memory data = abi.encodeWithSignature(
            "NmlShapeMismatch(string,string,uint32[],uint32[])", pool.modelId(), "vol", expected, actual
        );
        assembly { revert(add(data, 32), mload(data)) }
    }"#,
    );
    let run = nml(&project, &["test", "--match-test", "MissingOutput|ShapeMismatch", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let reasons = json_reasons(&run);
    assert_eq!(reasons["testMissingOutput"], r#"NmlMissingOutput("Volatility", "vol")"#, "{reasons:?}");
    let id = reasons["testShapeMismatch"].split('"').nth(1).unwrap_or_default().to_owned();
    assert!(!id.is_empty(), "{reasons:?}");
    assert_eq!(reasons["testShapeMismatch"], format!(r#"NmlShapeMismatch("{id}", "vol", [1], [0, 0])"#));
}

/// Exit status as docs/testing.md gives it: a regular expression that does
/// not parse is a usage error (2); a `--list` that finds nothing exits 3, as
/// a run would, except for an empty shard (0).
#[test]
fn bad_filters_and_empty_lists_have_the_documented_exit_status() {
    let dir = project_with_test(&test_contract("    function testOnly() public {}"));
    for flag in ["--match-test", "--match-contract"] {
        let bad = nml(dir.path(), &["test", flag, "("]);
        assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
        assert!(text(&bad).contains(flag), "{}", text(&bad));
    }
    let none = nml(dir.path(), &["test", "--list", "--match-test", "NoSuch"]);
    assert_eq!(none.status.code(), Some(3), "{}", text(&none));
    assert!(none.stdout.is_empty() && text(&none).contains("no tests found"), "{}", text(&none));
    let all = nml(dir.path(), &["test", "--list", "--json"]);
    assert!(all.status.success(), "{}", text(&all));
    assert_eq!(String::from_utf8_lossy(&all.stdout).lines().count(), 1, "{}", text(&all));
    let shards: Vec<Output> =
        (1..=2).map(|i| nml(dir.path(), &["test", "--list", "--shard", &format!("{i}/2")])).collect();
    assert!(shards.iter().all(|s| s.status.success()), "an empty shard is no failure");
    let listed: Vec<usize> = shards.iter().map(|s| String::from_utf8_lossy(&s.stdout).lines().count()).collect();
    assert_eq!(listed.iter().sum::<usize>(), 1, "{listed:?}");
}

/// A `models/*.onnx` that does not load stops `nml test` and `nml devnet
/// --models` with an error that names the file as well as its id.
#[test]
fn an_unloadable_model_file_is_named_by_its_path() {
    let dir = project_with_test(&test_contract("    function testNothing() public {}"));
    std::fs::create_dir_all(dir.path().join("models")).unwrap();
    std::fs::write(dir.path().join("models/empty.onnx"), b"").unwrap();
    let id = nml_runtime::inference::ModelId::derive(b"").to_string();
    let file = Path::new("models").join("empty.onnx");
    // The words of the report, which miette wraps at its width.
    let words = |s: &str| s.split_whitespace().filter(|w| *w != "│").collect::<Vec<_>>().join(" ");
    for args in [&["test"][..], &["devnet", "--models", "models"][..]] {
        let run = nml(dir.path(), args);
        let out = words(&text(&run));
        assert_eq!(run.status.code(), Some(1), "{args:?}: {out}");
        let named = format!("{}: model `{id}` cannot be loaded", file.display());
        assert!(out.contains(&named), "{args:?} names the file and the id: {out}");
    }
}

/// Asserts which tests pass, and that each of the others fails with a
/// reason that contains its expected words.
fn assert_outcomes(
    results: &std::collections::BTreeMap<String, serde_json::Value>,
    pass: &[&str],
    fail: &[(&str, &str)],
) {
    for test in pass {
        let result = results.get(*test).unwrap_or_else(|| panic!("{test} ran: {results:?}"));
        assert_eq!(result["outcome"]["status"], "pass", "{test}: {result}");
    }
    for (test, words) in fail {
        let result = results.get(*test).unwrap_or_else(|| panic!("{test} ran: {results:?}"));
        let reason = result["outcome"]["reason"].as_str().unwrap_or_default();
        assert!(result["outcome"]["status"] == "fail" && reason.contains(words), "{test}: {result}");
    }
    assert_eq!(results.len(), pass.len() + fail.len(), "{results:?}");
}

/// `snapshotState` and `revertToState` within a test: storage, balances,
/// code and the block (`warp`, `roll`, `fee`, `chainId`) come back; a
/// snapshot stays until deleted and a deleted one cannot be reverted to;
/// a caller's revert after a revert to a snapshot still undoes everything
/// since the caller began; a snapshot of `setUp`, and a revert from a call
/// that began after the snapshot, are refused with a reason.
#[test]
fn state_snapshots_bring_back_storage_balances_and_the_block() {
    let body = r#"
    Counter counter;
    uint256 setUpSnapshot;
    function setUp() public { counter = new Counter(); setUpSnapshot = vm.snapshotState(); }
    function testRevertBringsBackStorageBalancesCodeAndTheBlock() public {
        counter.bump();
        vm.deal(address(0xA11CE), 1 ether);
        vm.warp(1_000);
        vm.roll(50);
        vm.fee(3 gwei);
        vm.chainId(7);
        uint256 snap = vm.snapshotState();
        counter.bump();
        counter.bump();
        vm.deal(address(0xA11CE), 5 ether);
        vm.warp(9_000);
        vm.roll(90);
        vm.fee(8 gwei);
        vm.chainId(8);
        vm.store(address(counter), bytes32(uint256(7)), bytes32(uint256(1)));
        Counter later = new Counter();
        assertEq(counter.count(), 3);
        assertTrue(vm.revertToState(snap));
        assertEq(counter.count(), 1);
        assertEq(address(0xA11CE).balance, 1 ether);
        assertEq(vm.getBlockTimestamp(), 1_000);
        assertEq(vm.getBlockNumber(), 50);
        assertEq(block.basefee, 3 gwei);
        assertEq(block.chainid, 7);
        assertEq(vm.load(address(counter), bytes32(uint256(7))), bytes32(0));
        assertEq(address(later).code.length, 0);
        // It stays for another revert…
        counter.bump();
        vm.warp(9_999);
        assertTrue(vm.revertToState(snap));
        assertEq(counter.count(), 1);
        assertEq(vm.getBlockTimestamp(), 1_000);
        // …until a revert deletes it.
        counter.bump();
        assertTrue(vm.revertToStateAndDelete(snap));
        assertEq(counter.count(), 1);
        counter.bump();
        assertFalse(vm.revertToState(snap));
        assertEq(counter.count(), 2);
    }
    function testDeletedSnapshotsCannotBeRevertedTo() public {
        uint256 a = vm.snapshotState();
        uint256 b = vm.snapshot();
        assertEq(b, a + 1);
        counter.bump();
        assertTrue(vm.deleteStateSnapshot(a));
        assertFalse(vm.deleteStateSnapshot(a));
        assertFalse(vm.revertToState(a));
        assertEq(counter.count(), 1);
        assertTrue(vm.revertTo(b));
        assertEq(counter.count(), 0);
        counter.bump();
        vm.deleteStateSnapshots();
        assertFalse(vm.revertTo(b));
        assertEq(counter.count(), 1);
        uint256 c = vm.snapshot();
        vm.deleteSnapshots();
        assertFalse(vm.revertToAndDelete(c));
        uint256 d = vm.snapshot();
        assertTrue(vm.deleteSnapshot(d));
        assertFalse(vm.revertToStateAndDelete(d));
        assertFalse(vm.revertToState(d + 100));
        assertEq(counter.count(), 1);
    }
    function testACallerRevertStillUndoesEverythingAfterARevertToASnapshot() public {
        try this.bumpRevertToAndFail() {} catch {}
        assertEq(counter.count(), 0);
        assertEq(address(0xD0D0).balance, 0);
        counter.bump();
        assertEq(counter.count(), 1);
    }
    function bumpRevertToAndFail() external {
        counter.bump();
        vm.deal(address(0xD0D0), 1 ether);
        uint256 snap = vm.snapshotState();
        counter.bump();
        // Accounts first touched after the snapshot: their journal entries
        // must not outlive the revert to it.
        new Counter();
        vm.deal(address(0xE0E0), 1 ether);
        assertTrue(vm.revertToState(snap));
        assertEq(counter.count(), 1);
        assertEq(address(0xD0D0).balance, 1 ether);
        counter.bump();
        revert("undo it all");
    }
    function testRevertToASnapshotACalleeTook() public {
        Snapshotter s = new Snapshotter();
        counter.bump();
        uint256 snap = s.take();
        counter.bump();
        assertTrue(vm.revertToState(snap));
        assertEq(counter.count(), 1);
    }
    function testSnapshotIdsCountOnFromSetUp() public { assertEq(vm.snapshotState(), setUpSnapshot + 1); }
    function testASnapshotOfSetUpIsRefused() public { vm.revertToState(setUpSnapshot); }
    function testARevertFromACallBegunSinceIsRefused() public {
        Snapshotter s = new Snapshotter();
        uint256 snap = vm.snapshotState();
        s.revertTo(snap);
    }
}

contract Counter {
    uint256 public count;
    function bump() external { count += 1; }
}

contract Snapshotter {
    Vm constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);
    function take() external returns (uint256) { return vm.snapshotState(); }
    function revertTo(uint256 snap) external { vm.revertToState(snap); }
"#;
    let dir = project_with_test(&test_contract(body));
    let run = nml(dir.path(), &["test", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert_outcomes(
        &json_lines(&run),
        &[
            "CaseTest.testRevertBringsBackStorageBalancesCodeAndTheBlock",
            "CaseTest.testDeletedSnapshotsCannotBeRevertedTo",
            "CaseTest.testACallerRevertStillUndoesEverythingAfterARevertToASnapshot",
            "CaseTest.testRevertToASnapshotACalleeTook",
            "CaseTest.testSnapshotIdsCountOnFromSetUp",
        ],
        &[
            (
                "CaseTest.testASnapshotOfSetUpIsRefused",
                "vm.revertToState: snapshot 0 was taken in an earlier transaction",
            ),
            ("CaseTest.testARevertFromACallBegunSinceIsRefused", "vm.revertToState: this call began after snapshot 1"),
        ],
    );
}

/// `prank`/`startPrank` with an origin, the block and transaction
/// cheatcodes (also from `setUp`), `toString`, `computeCreateAddress` and
/// the environment variables, as Foundry answers them.
#[test]
fn pranked_origins_block_overrides_strings_and_environment_variables() {
    let body = r#"
    function testPrankSetsTheOriginForOneCall() public {
        Probe p = new Probe();
        address origin = tx.origin;
        vm.prank(address(0xB0B), address(0xCAFE));
        p.probe();
        assertEq(p.lastSender(), address(0xB0B));
        assertEq(p.lastOrigin(), address(0xCAFE));
        assertEq(tx.origin, origin);
        p.probe();
        assertEq(p.lastSender(), address(this));
        assertEq(p.lastOrigin(), origin);
    }
    function testStartPrankSetsTheOriginUntilStopPrank() public {
        Probe p = new Probe();
        address origin = tx.origin;
        vm.startPrank(address(0xB0B), address(0xCAFE));
        p.probe();
        assertEq(tx.origin, origin);
        assertEq(p.lastOrigin(), address(0xCAFE));
        new Probe();
        p.probe();
        assertEq(p.lastSender(), address(0xB0B));
        vm.stopPrank();
        p.probe();
        assertEq(p.lastSender(), address(this));
        assertEq(p.lastOrigin(), origin);
    }
    function testBlockAndTransactionCheatcodes() public {
        vm.chainId(4242);
        assertEq(block.chainid, 4242);
        vm.fee(7 gwei);
        assertEq(block.basefee, 7 gwei);
        vm.coinbase(address(0xC0FFEE));
        assertEq(block.coinbase, address(0xC0FFEE));
        vm.prevrandao(bytes32(uint256(123)));
        assertEq(block.prevrandao, 123);
        vm.prevrandao(uint256(456));
        assertEq(block.prevrandao, 456);
        vm.txGasPrice(3 gwei);
        assertEq(tx.gasprice, 3 gwei);
        vm.warp(777);
        vm.roll(888);
        assertEq(vm.getBlockTimestamp(), 777);
        assertEq(vm.getBlockNumber(), 888);
    }
    function testTooLargeAChainIdIsRefused() public { vm.chainId(uint256(type(uint64).max) + 1); }
    function testToString() public {
        assertEq(vm.toString(address(0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf)), "0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf");
        bytes memory data = hex"DEADbeef";
        assertEq(vm.toString(data), "0xdeadbeef");
        assertEq(vm.toString(bytes32(uint256(0xAB))), "0x00000000000000000000000000000000000000000000000000000000000000ab");
        assertEq(vm.toString(true), "true");
        assertEq(vm.toString(false), "false");
        assertEq(vm.toString(uint256(1234567890)), "1234567890");
        assertEq(vm.toString(int256(-42)), "-42");
        assertEq(vm.toString(type(int256).min), "-57896044618658097711785492504343953926634992332820282019728792003956564819968");
    }
    function testComputeCreateAddress() public {
        address predicted = vm.computeCreateAddress(address(this), vm.getNonce(address(this)));
        Probe p = new Probe();
        assertEq(address(p), predicted);
        assertTrue(vm.computeCreateAddress(address(this), 1) != vm.computeCreateAddress(address(this), 2));
    }
    function testEnvironmentVariables() public {
        assertEq(vm.envUint("NML_CASE_UINT"), 42);
        assertEq(vm.envInt("NML_CASE_INT"), -17);
        assertEq(vm.envAddress("NML_CASE_ADDRESS"), 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf);
        assertTrue(vm.envBool("NML_CASE_BOOL"));
        assertEq(vm.envString("NML_CASE_STRING"), "hello world");
        assertEq(vm.envBytes32("NML_CASE_BYTES32"), bytes32(uint256(1)));
        assertEq(vm.envOr("NML_CASE_ADDRESS", address(0)), 0x7E5F4552091A69125d5DfCb7b8C2659029395Bdf);
        assertEq(vm.envOr("NML_CASE_UNSET", address(0xBEEF)), address(0xBEEF));
        assertEq(vm.envOr("NML_CASE_INT", int256(5)), -17);
        assertEq(vm.envOr("NML_CASE_NOT_A_NUMBER", int256(5)), 5);
        assertEq(vm.envOr("NML_CASE_BYTES32", bytes32(0)), bytes32(uint256(1)));
        assertEq(vm.envOr("NML_CASE_UNSET", bytes32(uint256(9))), bytes32(uint256(9)));
    }
    function testAnUnsetVariableReverts() public { vm.envUint("NML_CASE_UNSET"); }
    function testAnUnparsableVariableReverts() public { vm.envAddress("NML_CASE_NOT_A_NUMBER"); }
}

contract EnvironmentFromSetUpTest is Test {
    function setUp() public {
        vm.chainId(4242);
        vm.fee(7 gwei);
        vm.coinbase(address(0xC0FFEE));
        vm.prevrandao(bytes32(uint256(123)));
        vm.txGasPrice(3 gwei);
    }
    function testSetUpsBlockAndTransactionHold() public {
        assertEq(block.chainid, 4242);
        assertEq(block.basefee, 7 gwei);
        assertEq(block.coinbase, address(0xC0FFEE));
        assertEq(block.prevrandao, 123);
        assertEq(tx.gasprice, 3 gwei);
    }
}

contract Probe {
    address public lastSender;
    address public lastOrigin;
    function probe() external { lastSender = msg.sender; lastOrigin = tx.origin; }
"#;
    let dir = project_with_test(&test_contract(body));
    let run = Command::new(NML)
        .args(["test", "--json"])
        .current_dir(dir.path())
        .env("NML_CASE_UINT", " 42 ")
        .env("NML_CASE_INT", "-17")
        .env("NML_CASE_ADDRESS", "0x7e5f4552091a69125d5dfcb7b8c2659029395bdf")
        .env("NML_CASE_BOOL", "TRUE")
        .env("NML_CASE_STRING", "hello world")
        .env("NML_CASE_BYTES32", format!("0x{:064x}", 1))
        .env("NML_CASE_NOT_A_NUMBER", "forty-two")
        .env_remove("NML_CASE_UNSET")
        .output()
        .expect("runs nml");
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert_outcomes(
        &json_lines(&run),
        &[
            "CaseTest.testPrankSetsTheOriginForOneCall",
            "CaseTest.testStartPrankSetsTheOriginUntilStopPrank",
            "CaseTest.testBlockAndTransactionCheatcodes",
            "CaseTest.testToString",
            "CaseTest.testComputeCreateAddress",
            "CaseTest.testEnvironmentVariables",
            "EnvironmentFromSetUpTest.testSetUpsBlockAndTransactionHold",
        ],
        &[
            ("CaseTest.testTooLargeAChainIdIsRefused", "vm.chainId: a chain id must be below 2^64"),
            ("CaseTest.testAnUnsetVariableReverts", "vm.envUint: environment variable `NML_CASE_UNSET` is not set"),
            (
                "CaseTest.testAnUnparsableVariableReverts",
                "vm.envAddress: environment variable `NML_CASE_NOT_A_NUMBER` is not a valid address",
            ),
        ],
    );
}

/// Libraries with `public` functions, and the libraries those call, are
/// deployed at the same addresses on every run and linked into the test
/// contract and into what it deploys (which an invariant test still knows
/// by its code); the test contract holds 2^96 − 1 wei. A library without
/// an artifact, or a test contract whose artifact is bad, fails only its
/// own contract's tests.
#[test]
fn libraries_are_deployed_and_linked_and_a_missing_one_fails_only_its_contract() {
    let dir = project_with_test(
        r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
import "@nml/nml/Test.sol";
import "../src/Libs.sol";

contract LibTest is Test {
    UsesLib u;

    function setUp() public {
        u = new UsesLib();
    }

    function testCallsGoThroughTheLinkedLibraries() public {
        u.bump(3);
        assertEq(u.v(), 12);
        assertEq(MathLib.twice(5), 10);
    }

    function testLibrariesComeFirstInNameOrder() public view {
        assertEq(address(MathLib), vm.computeCreateAddress(tx.origin, 0));
        assertEq(address(QuadLib), vm.computeCreateAddress(tx.origin, 1));
        assertEq(address(this), vm.computeCreateAddress(tx.origin, 2));
    }

    function testTheTestContractHoldsEther() public {
        assertEq(address(this).balance, 2 ** 96 - 1);
        payable(address(0xBEEF)).transfer(1);
        assertEq(address(0xBEEF).balance, 1);
    }

    function invariant_untouched() public view {
        assertEq(u.v(), 0, "v moved");
    }
}

contract Unrelated is Test {
    function testA() public pure {}
}
"#,
    );
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(
        dir.path().join("src/Libs.sol"),
        r#"// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;
library MathLib {
    function twice(uint256 x) public pure returns (uint256) { return x * 2; }
}
library QuadLib {
    function quad(uint256 x) public pure returns (uint256) { return MathLib.twice(MathLib.twice(x)); }
}
contract UsesLib {
    uint256 public v;
    function bump(uint256 x) public { v = QuadLib.quad(x % 1000); }
}
"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("nml.toml"), "[project]\nname = \"case\"\n[invariant]\nruns = 8\ndepth = 4\n")
        .unwrap();
    let run = nml(dir.path(), &["test", "--json"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let lines = json_lines(&run);
    assert_outcomes(
        &lines,
        &[
            "LibTest.testCallsGoThroughTheLinkedLibraries",
            "LibTest.testLibrariesComeFirstInNameOrder",
            "LibTest.testTheTestContractHoldsEther",
            "Unrelated.testA",
        ],
        &[("LibTest.invariant_untouched", "v moved")],
    );
    // The contract that links a library is a target, by its code; the
    // libraries are not.
    let sequence = lines["LibTest.invariant_untouched"]["invariant"]["sequence"].as_array().expect("a sequence");
    assert!(sequence.iter().all(|call| call["contract"] == "UsesLib"), "{sequence:?}");
    // The gas report names the contract that links a library.
    let report = nml(dir.path(), &["test", "--gas-report", "--match-test", "testCallsGoThroughTheLinkedLibraries"]);
    assert!(text(&report).contains("| UsesLib |"), "{}", text(&report));

    // The build is up to date: bad artifacts stay as they are written.
    let out = dir.path().join("out");
    std::fs::write(out.join("Libs.sol/MathLib.json"), "not json").unwrap();
    let run = nml(dir.path(), &["test", "--json", "--match-test", "^test"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    let missing = "cannot link the library src/Libs.sol:MathLib: it is not among the build's artifacts";
    assert_outcomes(
        &json_lines(&run),
        &["Unrelated.testA"],
        &[
            ("LibTest.testCallsGoThroughTheLinkedLibraries", missing),
            ("LibTest.testLibrariesComeFirstInNameOrder", missing),
            ("LibTest.testTheTestContractHoldsEther", missing),
        ],
    );
    std::fs::write(out.join("Case.t.sol/Unrelated.json"), "not json").unwrap();
    let run = nml(dir.path(), &["test", "--json", "--match-contract", "Unrelated"]);
    assert_eq!(run.status.code(), Some(1), "{}", text(&run));
    assert_outcomes(&json_lines(&run), &[], &[("Unrelated.setUp", "cannot read the artifact")]);
}

/// `vm.readFile` and the JSON cheatcodes: a model's test vectors as Python
/// wrote them, read in a test and scaled to fixed point; a test reads only
/// the project's files, and a key that names the wrong type says so.
#[test]
fn tests_read_fixtures_from_the_project() {
    let body = r#"
    function testVectors() public {
        string memory json = vm.readFile("test/fixtures/vectors.json");
        int256[] memory r = vm.parseJsonFixedArray(json, ".returns", 18);
        assertEq(r.length, 3);
        assertEq(r[0], 12345678901234568);
        assertEq(r[1], -5e17);
        assertEq(r[2], 1e13);
        assertEq(vm.parseJsonFixed(json, ".threshold", 4), 500);
        assertEq(vm.parseJsonUint(json, ".expected.fee"), 3000);
        assertEq(vm.parseJsonInt(json, ".expected.delta"), -7);
        assertEq(vm.parseJsonAddress(json, ".expected.owner"), address(0xaa));
        assertEq(vm.parseJsonStringArray(json, ".names")[1], "volatile");
        assertEq(vm.parseJsonUintArray(json, ".sizes")[2], 1e18);
        assertTrue(vm.parseJsonBool(json, ".enabled"));
        assertTrue(vm.keyExistsJson(json, ".expected.fee") && !vm.keyExistsJson(json, ".nothing"));
        assertTrue(vm.exists("test/fixtures/vectors.json") && !vm.exists("test/fixtures/none.json"));
        assertEq(vm.readFileBinary("test/fixtures/bytes.bin"), hex"00ff10");
    }
    function testOutsideTheProject() public { vm.readFile("../outside.json"); }
    function testWrongType() public { vm.parseJsonUint(vm.readFile("test/fixtures/vectors.json"), ".names"); }
    function testNotJson() public { vm.parseJsonUint("{oops", ".a"); }
"#;
    let dir = project_with_test(&test_contract(body));
    std::fs::create_dir_all(dir.path().join("test/fixtures")).unwrap();
    std::fs::write(
        dir.path().join("test/fixtures/vectors.json"),
        r#"{"returns": [0.012345678901234568, -0.5, "1e-5"], "threshold": 0.05,
            "expected": {"fee": 3000, "delta": -7, "owner": "0x00000000000000000000000000000000000000aa"},
            "names": ["calm", "volatile"], "sizes": [1, "0x10", "1 ether"], "enabled": true}"#,
    )
    .unwrap();
    std::fs::write(dir.path().join("test/fixtures/bytes.bin"), [0x00, 0xff, 0x10]).unwrap();
    std::fs::write(dir.path().parent().unwrap().join("outside.json"), "{}").ok();
    let run = nml(dir.path(), &["test", "--json"]);
    let reasons = json_reasons(&run);
    assert_eq!(reasons.get("testVectors").map(String::as_str), Some(""), "{}", text(&run));
    assert!(reasons["testOutsideTheProject"].contains("outside the project"), "{reasons:?}");
    assert!(
        reasons["testWrongType"]
            .contains("vm.parseJsonUint: key `.names`: [\"calm\",\"volatile\"] is not a valid uint256"),
        "{reasons:?}"
    );
    assert!(reasons["testNotJson"].contains("vm.parseJsonUint: not JSON"), "{reasons:?}");
}
