// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import {ModelInput, ModelOutput} from "../og/OGInference.sol";
import {TensorLib} from "../og/TensorLib.sol";
import {Answers} from "./Answers.sol";
import {StdInvariant} from "./Invariant.sol";
import {console} from "./console.sol";

/// The cheatcodes of `nml test`, at Foundry's conventional address; served by
/// the test runner's inspector (runtime/src/testing/cheatcodes/). An
/// unknown cheatcode reverts with a reason naming it.
interface Vm {
    /// An event, as `getRecordedLogs` returns it.
    struct Log {
        bytes32[] topics;
        bytes data;
        address emitter;
    }

    /// The next call from this contract is made by `sender`.
    function prank(address sender) external;
    /// Every call from this contract is made by `sender` until `stopPrank`.
    function startPrank(address sender) external;
    /// Ends `startPrank`.
    function stopPrank() external;
    /// Sets the balance of `account`.
    function deal(address account, uint256 newBalance) external;
    /// Sets `block.timestamp`.
    function warp(uint256 newTimestamp) external;
    /// Sets `block.number`.
    function roll(uint256 newHeight) external;
    /// The next call must revert (any reason).
    function expectRevert() external;
    /// The next call must revert with exactly `revertData`.
    function expectRevert(bytes calldata revertData) external;
    /// The next call must revert with this selector (a custom error).
    function expectRevert(bytes4 revertData) external;
    /// The next event this contract emits is expected from the call after it.
    function expectEmit() external;
    /// As `expectEmit()`, checking only the chosen topics (topic 0, the
    /// event's signature, always) and data.
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
    /// As above, and the event must come from `emitter`.
    function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter)
        external;
    /// As `expectEmit()`, and the event must come from `emitter`.
    function expectEmit(address emitter) external;
    /// The test fails unless a call to `callee` whose calldata starts with
    /// `data` is made before it ends.
    function expectCall(address callee, bytes calldata data) external;
    /// Rejects a fuzz test's arguments when `condition` is false: the runner
    /// draws others (a test without parameters fails).
    function assume(bool condition) external pure;
    /// With `true`, ends the test here and reports it skipped.
    function skip(bool skipTest) external;
    /// The address of a private key.
    function addr(uint256 privateKey) external pure returns (address keyAddr);
    /// Signs `digest` itself (no prefix) with a private key; `v` is 27 or 28.
    function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
    /// Writes a storage slot of any account.
    function store(address target, bytes32 slot, bytes32 value) external;
    /// Reads a storage slot of any account.
    function load(address target, bytes32 slot) external view returns (bytes32 data);
    /// Replaces an account's runtime code.
    function etch(address target, bytes calldata newRuntimeBytecode) external;
    /// An account's nonce.
    function getNonce(address account) external view returns (uint64 nonce);
    /// Sets an account's nonce.
    function setNonce(address account, uint64 newNonce) external;
    /// Calls to `callee` whose calldata starts with `data` return
    /// `returnData` without running its code (the longest matching `data`
    /// wins); for the rest of the test, or of every test when made in `setUp`.
    function mockCall(address callee, bytes calldata data, bytes calldata returnData) external;
    /// As `mockCall`, reverting with `revertData`.
    function mockCallRevert(address callee, bytes calldata data, bytes calldata revertData) external;
    /// Removes every `mockCall`.
    function clearMockedCalls() external;
    /// Records the events emitted from now on, for `getRecordedLogs`.
    function recordLogs() external;
    /// The events recorded since `recordLogs` (or the last `getRecordedLogs`).
    function getRecordedLogs() external returns (Log[] memory logs);
    /// Names an address in reports.
    function label(address account, string calldata newLabel) external;
    /// The environment variable `name` as a number, or `defaultValue`.
    function envOr(string calldata name, uint256 defaultValue) external view returns (uint256 value);
    /// The environment variable `name` as a bool, or `defaultValue`.
    function envOr(string calldata name, bool defaultValue) external view returns (bool value);
    /// The environment variable `name`, or `defaultValue`.
    function envOr(string calldata name, string calldata defaultValue) external view returns (string memory value);
    /// Every request of `modelId` answers `output` (in both mempool passes).
    function mockInference(string calldata modelId, ModelOutput calldata output) external;
    /// Requests of `modelId` with exactly `input` answer `output`.
    function mockInference(string calldata modelId, ModelInput calldata input, ModelOutput calldata output) external;
    /// Every request of `modelId` reverts with `reason`, as a failed model would.
    function failInference(string calldata modelId, string calldata reason) external;
    /// Removes every inference mock.
    function clearInferenceMocks() external;
    /// Every `ask`/`chat` of the LLM `modelId` answers `answer` (a chat: an
    /// assistant message that finished with "stop"), in both mempool passes.
    function mockLlm(string calldata modelId, string calldata answer) external;
    /// Calls of `modelId` whose prompt (a chat: its last message) is exactly
    /// `prompt` answer `answer`; they win over a mock for any prompt.
    function mockLlm(string calldata modelId, string calldata prompt, string calldata answer) external;
    /// Every call of the LLM `modelId` reverts with `reason`, as a failed backend would.
    function failLlm(string calldata modelId, string calldata reason) external;
    /// Removes every LLM mock.
    function clearLlmMocks() external;
    /// Attests a result as the devnet's first enclave does: an RSA-PSS
    /// signature over keccak256(inputHash ‖ outputHash ‖ timestamp), by the
    /// key the TEE registry holds for `teeId` (docs/verification.md).
    function teeAttest(bytes32 inputHash, bytes32 outputHash, uint256 timestamp)
        external
        returns (bytes32 teeId, bytes memory signature);
    /// Settles a result by its own record on the settlement relay now, as
    /// the relay's posting would (`isSettled` answers true from here on).
    function teeSettle(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp) external;
    /// Settles a batch root on the relay now (`isSettledInBatch` with a valid proof answers true).
    function teeSettleBatch(bytes32 merkleRoot) external;
    /// Switches a fault of this test's enclaves on or off (docs/verification.md,
    /// "Faults"): e.g. "wrong-output", "stale-timestamp", "future-timestamp".
    function teeFault(string calldata fault, bool on) external;
    /// The devnet enclave's own attestation of the result of request
    /// `requestId` (`TEEAttestation.inputHash(request)`), as
    /// `nml_getAttestations` reports it; zeros while it is not known yet.
    function teeAttestation(bytes32 requestId)
        external
        returns (bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp, bytes memory signature);
    /// Moves the block number on by the devnet's default `--settle-after` (3)
    /// and settles, each by its own record, every result this test's chain
    /// has attested so far: what the relay would have done by then.
    function teeAdvanceToSettlement() external;
    /// The test fails unless this result is settled on the relay (by its own
    /// record) when it ends.
    function expectSettlement(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp) external;
    /// As `prank(msgSender)`, and `tx.origin` is `txOrigin` during that call.
    function prank(address msgSender, address txOrigin) external;
    /// As `startPrank(msgSender)`, and `tx.origin` is `txOrigin` during those calls.
    function startPrank(address msgSender, address txOrigin) external;
    /// Snapshots the state and the block (within this test's transaction); returns its id.
    function snapshotState() external returns (uint256 snapshotId);
    /// Back to snapshot `snapshotId`, which stays; false if there is none.
    function revertToState(uint256 snapshotId) external returns (bool success);
    /// Back to snapshot `snapshotId`, and deletes it; false if there is none.
    function revertToStateAndDelete(uint256 snapshotId) external returns (bool success);
    /// Deletes snapshot `snapshotId`; false if there is none.
    function deleteStateSnapshot(uint256 snapshotId) external returns (bool success);
    /// Deletes every snapshot.
    function deleteStateSnapshots() external;
    /// The older name of `snapshotState`.
    function snapshot() external returns (uint256 snapshotId);
    /// The older name of `revertToState`.
    function revertTo(uint256 snapshotId) external returns (bool success);
    /// The older name of `revertToStateAndDelete`.
    function revertToAndDelete(uint256 snapshotId) external returns (bool success);
    /// The older name of `deleteStateSnapshot`.
    function deleteSnapshot(uint256 snapshotId) external returns (bool success);
    /// The older name of `deleteStateSnapshots`.
    function deleteSnapshots() external;
    /// Sets `block.chainid`.
    function chainId(uint256 newChainId) external;
    /// Sets `block.basefee`.
    function fee(uint256 newBasefee) external;
    /// Sets `block.coinbase`.
    function coinbase(address newCoinbase) external;
    /// Sets `block.prevrandao`.
    function prevrandao(bytes32 newPrevrandao) external;
    /// Sets `block.prevrandao`.
    function prevrandao(uint256 newPrevrandao) external;
    /// Sets `tx.gasprice`.
    function txGasPrice(uint256 newGasPrice) external;
    /// `block.number`, as the chain has it (the optimizer may cache `block.number`).
    function getBlockNumber() external view returns (uint256 height);
    /// `block.timestamp`, as the chain has it (the optimizer may cache `block.timestamp`).
    function getBlockTimestamp() external view returns (uint256 timestamp);
    /// The address, checksummed.
    function toString(address value) external pure returns (string memory stringifiedValue);
    /// The bytes as `0x` and lowercase hex.
    function toString(bytes calldata value) external pure returns (string memory stringifiedValue);
    /// The word as `0x` and lowercase hex.
    function toString(bytes32 value) external pure returns (string memory stringifiedValue);
    /// "true" or "false".
    function toString(bool value) external pure returns (string memory stringifiedValue);
    /// The number in decimal.
    function toString(uint256 value) external pure returns (string memory stringifiedValue);
    /// The number in decimal, with a "-" when negative.
    function toString(int256 value) external pure returns (string memory stringifiedValue);
    /// The address of the contract `deployer` creates with `CREATE` at `nonce`.
    function computeCreateAddress(address deployer, uint256 nonce) external pure returns (address);
    /// The environment variable `name` as a number; reverts if it is not set or not one.
    function envUint(string calldata name) external view returns (uint256 value);
    /// The environment variable `name` as a signed number; reverts if it is not set or not one.
    function envInt(string calldata name) external view returns (int256 value);
    /// The environment variable `name` as an address; reverts if it is not set or not one.
    function envAddress(string calldata name) external view returns (address value);
    /// The environment variable `name` as a bool; reverts if it is not set or not one.
    function envBool(string calldata name) external view returns (bool value);
    /// The environment variable `name`; reverts if it is not set.
    function envString(string calldata name) external view returns (string memory value);
    /// The environment variable `name` as a 32-byte word; reverts if it is not set or not one.
    function envBytes32(string calldata name) external view returns (bytes32 value);
    /// The environment variable `name` as an address, or `defaultValue`.
    function envOr(string calldata name, address defaultValue) external view returns (address value);
    /// The environment variable `name` as a signed number, or `defaultValue`.
    function envOr(string calldata name, int256 defaultValue) external view returns (int256 value);
    /// The environment variable `name` as a 32-byte word, or `defaultValue`.
    function envOr(string calldata name, bytes32 defaultValue) external view returns (bytes32 value);
    /// The project's root directory (files are read relative to it).
    function projectRoot() external view returns (string memory path);
    /// A text file of the project (paths are relative to its root; a test reads only inside it).
    function readFile(string calldata path) external view returns (string memory data);
    /// A file of the project, as bytes.
    function readFileBinary(string calldata path) external view returns (bytes memory data);
    /// Whether a path of the project exists.
    function exists(string calldata path) external view returns (bool result);
    /// Whether `key` (a JSON path: `.`, `$`, `.name`, `[index]`) names a value of `json`.
    function keyExistsJson(string calldata json, string calldata key) external view returns (bool);
    /// The number at `key` of `json` (a JSON integer, or a string: decimal, 0x hex, ether units).
    function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
    /// The signed number at `key` of `json`.
    function parseJsonInt(string calldata json, string calldata key) external pure returns (int256);
    /// The bool at `key` of `json`.
    function parseJsonBool(string calldata json, string calldata key) external pure returns (bool);
    /// The address at `key` of `json`.
    function parseJsonAddress(string calldata json, string calldata key) external pure returns (address);
    /// The string at `key` of `json`.
    function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
    /// The 32-byte word at `key` of `json`.
    function parseJsonBytes32(string calldata json, string calldata key) external pure returns (bytes32);
    /// The bytes (0x hex) at `key` of `json`.
    function parseJsonBytes(string calldata json, string calldata key) external pure returns (bytes memory);
    /// The numbers of the array at `key` of `json`.
    function parseJsonUintArray(string calldata json, string calldata key) external pure returns (uint256[] memory);
    /// The signed numbers of the array at `key` of `json`.
    function parseJsonIntArray(string calldata json, string calldata key) external pure returns (int256[] memory);
    /// The bools of the array at `key` of `json`.
    function parseJsonBoolArray(string calldata json, string calldata key) external pure returns (bool[] memory);
    /// The addresses of the array at `key` of `json`.
    function parseJsonAddressArray(string calldata json, string calldata key) external pure returns (address[] memory);
    /// The strings of the array at `key` of `json`.
    function parseJsonStringArray(string calldata json, string calldata key) external pure returns (string[] memory);
    /// The 32-byte words of the array at `key` of `json`.
    function parseJsonBytes32Array(string calldata json, string calldata key) external pure returns (bytes32[] memory);
    /// nml: the decimal number at `key` of `json` (`0.0123`, `"-1.5e-3"`) times 10^decimals, rounded
    /// half away from zero: a model's test vector as Python wrote it, in a `fixed<decimals>` tensor's units.
    function parseJsonFixed(string calldata json, string calldata key, uint8 decimals) external pure returns (int256);
    /// nml: each number of the array at `key` of `json`, as `parseJsonFixed` reads one.
    function parseJsonFixedArray(string calldata json, string calldata key, uint8 decimals)
        external
        pure
        returns (int256[] memory);
}

/// The devnet's workflow scheduler, as tests drive it (see `Test.runDueTasks`).
interface IWorkflowScheduler {
    function registerTask(address contractAddress, uint256 endTime, uint256 frequency) external;
    function dueTasks() external view returns (uint256[] memory ids);
    function execute(uint256 id) external;
    function executor() external view returns (address);
}

/// Number formatting for assertion messages.
library NmlStrings {
    function toString(uint256 value) internal pure returns (string memory) {
        if (value == 0) return "0";
        uint256 digits;
        for (uint256 v = value; v != 0; v /= 10) digits++;
        bytes memory out = new bytes(digits);
        for (; value != 0; value /= 10) out[--digits] = bytes1(uint8(48 + (value % 10)));
        return string(out);
    }

    function toString(int256 value) internal pure returns (string memory) {
        if (value >= 0) return toString(uint256(value));
        // -type(int256).min does not fit an int256; its magnitude fits a uint256.
        return string.concat("-", toString(uint256(-(value + 1)) + 1));
    }

    function toString(bool value) internal pure returns (string memory) {
        return value ? "true" : "false";
    }

    function toHex(bytes memory data) internal pure returns (string memory) {
        bytes memory digits = "0123456789abcdef";
        bytes memory out = new bytes(2 + data.length * 2);
        out[0] = "0";
        out[1] = "x";
        for (uint256 i = 0; i < data.length; i++) {
            out[2 + 2 * i] = digits[uint8(data[i]) >> 4];
            out[3 + 2 * i] = digits[uint8(data[i]) & 0x0f];
        }
        return string(out);
    }

    function toString(address value) internal pure returns (string memory) {
        return toHex(abi.encodePacked(value));
    }

    function toString(bytes32 value) internal pure returns (string memory) {
        return toHex(abi.encodePacked(value));
    }
}

/// The base of a test contract: `contract PoolTest is Test { function setUp() public {...} function testX() public {...} }`.
/// Every assertion reverts with a message that says what differed.
abstract contract Test is StdInvariant {
    using NmlStrings for uint256;
    using NmlStrings for int256;
    using NmlStrings for bool;
    using NmlStrings for address;
    using NmlStrings for bytes32;

    /// The cheatcodes.
    Vm internal constant vm = Vm(0x7109709ECfa91a80626fF3989D68f67F5b1DD12D);

    /// OpenGradient's workflow scheduler, predeployed by the devnet.
    IWorkflowScheduler internal constant scheduler = IWorkflowScheduler(0x7179724De4e7FF9271FA40C0337c7f90C0508eF6);

    /// Runs every scheduled task that is due at this block's time (after
    /// `vm.warp`), as the devnet's scheduler account does after each block;
    /// returns how many ran. A task whose `run()` reverts is recorded as
    /// failed and does not stop the others.
    function runDueTasks() internal returns (uint256 ran) {
        uint256[] memory due = scheduler.dueTasks();
        address executor = scheduler.executor();
        for (uint256 i = 0; i < due.length; i++) {
            vm.prank(executor);
            scheduler.execute(due[i]);
        }
        return due.length;
    }

    /// A fresh address named `name` in reports: the address of the key
    /// `keccak256(name)`.
    function makeAddr(string memory name) internal returns (address account) {
        (account,) = makeAddrAndKey(name);
    }

    /// `makeAddr`, and the address's private key (for `vm.sign`).
    function makeAddrAndKey(string memory name) internal returns (address account, uint256 privateKey) {
        privateKey = uint256(keccak256(bytes(name)));
        account = vm.addr(privateKey);
        vm.label(account, name);
    }

    /// `x` moved into `[min, max]` (for fuzz arguments): unchanged when
    /// inside; the smallest numbers (0–3) to the range's smallest and the
    /// largest (`type(uint256).max` and the three below) to its largest, so
    /// the fuzzer's edge draws reach the range's edges; the rest wrapped
    /// around the range (`max + 1` is `min`, `min - 1` is `max`).
    function bound(uint256 x, uint256 min, uint256 max) internal pure returns (uint256) {
        require(min <= max, "bound: min is above max");
        if (x >= min && x <= max) return x;
        uint256 span = max - min; // the range's size less one
        if (x < 4 && x <= span) return min + x;
        uint256 fromTop = type(uint256).max - x;
        if (fromTop < 4 && fromTop <= span) return max - fromTop;
        if (x > max) return min + (x - max - 1) % (span + 1);
        return max - (min - x - 1) % (span + 1);
    }

    /// `bound` for signed numbers.
    function bound(int256 x, int256 min, int256 max) internal pure returns (int256) {
        require(min <= max, "bound: min is above max");
        if (x >= min && x <= max) return x;
        // Shift to unsigned order (flip the sign bit), bound, shift back.
        uint256 flip = uint256(1) << 255;
        uint256 bounded = bound(uint256(x) ^ flip, uint256(min) ^ flip, uint256(max) ^ flip);
        return int256(bounded ^ flip);
    }

    /// The next call is made by `who`, which gets 2^128 wei first.
    function hoax(address who) internal {
        hoax(who, 1 << 128);
    }

    /// The next call is made by `who`, which gets `give` wei first.
    function hoax(address who, uint256 give) internal {
        vm.deal(who, give);
        vm.prank(who);
    }

    /// Every call is made by `who` until `vm.stopPrank()`; `who` gets 2^128 wei first.
    function startHoax(address who) internal {
        vm.deal(who, 1 << 128);
        vm.startPrank(who);
    }

    /// Moves `block.timestamp` forward by `time` seconds.
    function skip(uint256 time) internal {
        vm.warp(block.timestamp + time);
    }

    /// Moves `block.timestamp` back by `time` seconds.
    function rewind(uint256 time) internal {
        vm.warp(block.timestamp - time);
    }

    function fail(string memory message) internal pure {
        revert(message);
    }

    function _fail(string memory message, string memory what) private pure {
        revert(bytes(message).length == 0 ? what : string.concat(message, ": ", what));
    }

    function _differ(string memory kind, string memory left, string memory op, string memory right)
        private
        pure
        returns (string memory)
    {
        return string.concat(kind, ": ", left, " ", op, " ", right);
    }

    function assertTrue(bool condition) internal pure {
        assertTrue(condition, "");
    }

    function assertTrue(bool condition, string memory message) internal pure {
        if (!condition) _fail(message, "assertTrue: false");
    }

    function assertFalse(bool condition) internal pure {
        assertFalse(condition, "");
    }

    function assertFalse(bool condition, string memory message) internal pure {
        if (condition) _fail(message, "assertFalse: true");
    }

    function assertEq(uint256 left, uint256 right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(uint256 left, uint256 right, string memory message) internal pure {
        if (left != right) _fail(message, _differ("assertEq", left.toString(), "!=", right.toString()));
    }

    function assertEq(int256 left, int256 right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(int256 left, int256 right, string memory message) internal pure {
        if (left != right) _fail(message, _differ("assertEq", left.toString(), "!=", right.toString()));
    }

    function assertEq(bool left, bool right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(bool left, bool right, string memory message) internal pure {
        if (left != right) _fail(message, _differ("assertEq", left.toString(), "!=", right.toString()));
    }

    function assertEq(address left, address right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(address left, address right, string memory message) internal pure {
        if (left != right) _fail(message, _differ("assertEq", left.toString(), "!=", right.toString()));
    }

    function assertEq(bytes32 left, bytes32 right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(bytes32 left, bytes32 right, string memory message) internal pure {
        if (left != right) _fail(message, _differ("assertEq", left.toString(), "!=", right.toString()));
    }

    function assertEq(string memory left, string memory right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(string memory left, string memory right, string memory message) internal pure {
        if (keccak256(bytes(left)) != keccak256(bytes(right))) {
            _fail(message, string.concat("assertEq: \"", left, "\" != \"", right, "\""));
        }
    }

    /// The answer contains `part` (case-insensitive).
    function assertContains(string memory answer, string memory part) internal pure {
        assertContains(answer, part, "");
    }

    function assertContains(string memory answer, string memory part, string memory message) internal pure {
        if (!Answers.containsIgnoreCase(answer, part)) {
            _fail(message, string.concat("assertContains: \"", answer, "\" does not contain \"", part, "\""));
        }
    }

    /// The answer says yes ([`Answers.isYes`]).
    function assertYes(string memory answer) internal pure {
        if (!Answers.isYes(answer)) _fail("", string.concat("assertYes: \"", answer, "\" does not say yes"));
    }

    /// The answer says no ([`Answers.isNo`]).
    function assertNo(string memory answer) internal pure {
        if (!Answers.isNo(answer)) _fail("", string.concat("assertNo: \"", answer, "\" does not say no"));
    }

    /// The answer is not empty (the simulation pass answers `""`).
    function assertAnswered(string memory answer) internal pure {
        if (bytes(answer).length == 0) _fail("", "assertAnswered: the answer is empty");
    }

    function assertEq(bytes memory left, bytes memory right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(bytes memory left, bytes memory right, string memory message) internal pure {
        if (keccak256(left) != keccak256(right)) {
            _fail(message, _differ("assertEq", NmlStrings.toHex(left), "!=", NmlStrings.toHex(right)));
        }
    }

    function assertEq(uint256[] memory left, uint256[] memory right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(uint256[] memory left, uint256[] memory right, string memory message) internal pure {
        if (left.length != right.length) {
            _fail(message, _differ("assertEq: lengths", left.length.toString(), "!=", right.length.toString()));
        }
        for (uint256 i = 0; i < left.length; i++) {
            if (left[i] != right[i]) {
                _fail(message, _differ(string.concat("assertEq: [", i.toString(), "]"), left[i].toString(), "!=", right[i].toString()));
            }
        }
    }

    function assertEq(int256[] memory left, int256[] memory right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(int256[] memory left, int256[] memory right, string memory message) internal pure {
        if (left.length != right.length) {
            _fail(message, _differ("assertEq: lengths", left.length.toString(), "!=", right.length.toString()));
        }
        for (uint256 i = 0; i < left.length; i++) {
            if (left[i] != right[i]) {
                _fail(message, _differ(string.concat("assertEq: [", i.toString(), "]"), left[i].toString(), "!=", right[i].toString()));
            }
        }
    }

    function assertEq(address[] memory left, address[] memory right) internal pure {
        assertEq(left, right, "");
    }

    function assertEq(address[] memory left, address[] memory right, string memory message) internal pure {
        if (left.length != right.length) {
            _fail(message, _differ("assertEq: lengths", left.length.toString(), "!=", right.length.toString()));
        }
        for (uint256 i = 0; i < left.length; i++) {
            if (left[i] != right[i]) {
                _fail(message, _differ(string.concat("assertEq: [", i.toString(), "]"), left[i].toString(), "!=", right[i].toString()));
            }
        }
    }

    function assertApproxEqAbs(uint256 left, uint256 right, uint256 maxDelta) internal pure {
        assertApproxEqAbs(left, right, maxDelta, "");
    }

    function assertApproxEqAbs(uint256 left, uint256 right, uint256 maxDelta, string memory message) internal pure {
        uint256 delta = left > right ? left - right : right - left;
        if (delta > maxDelta) {
            _fail(message, string.concat(_differ("assertApproxEqAbs", left.toString(), "!~", right.toString()), " (delta ", delta.toString(), " > ", maxDelta.toString(), ")"));
        }
    }

    function assertApproxEqAbs(int256 left, int256 right, uint256 maxDelta) internal pure {
        assertApproxEqAbs(left, right, maxDelta, "");
    }

    function assertApproxEqAbs(int256 left, int256 right, uint256 maxDelta, string memory message) internal pure {
        uint256 delta = _absDiff(left, right);
        if (delta > maxDelta) {
            _fail(message, string.concat(_differ("assertApproxEqAbs", left.toString(), "!~", right.toString()), " (delta ", delta.toString(), " > ", maxDelta.toString(), ")"));
        }
    }

    /// `maxPercentDelta` is a fraction at 18 decimals: 1e16 is 1%.
    function assertApproxEqRel(uint256 left, uint256 right, uint256 maxPercentDelta) internal pure {
        assertApproxEqRel(left, right, maxPercentDelta, "");
    }

    function assertApproxEqRel(uint256 left, uint256 right, uint256 maxPercentDelta, string memory message) internal pure {
        if (right == 0) return assertEq(left, right, message);
        uint256 delta = left > right ? left - right : right - left;
        uint256 rel = delta * 1e18 / right;
        if (rel > maxPercentDelta) {
            _fail(message, string.concat(_differ("assertApproxEqRel", left.toString(), "!~", right.toString()), " (relative delta ", rel.toString(), "e-18 > ", maxPercentDelta.toString(), "e-18)"));
        }
    }

    function assertApproxEqRel(int256 left, int256 right, uint256 maxPercentDelta) internal pure {
        assertApproxEqRel(left, right, maxPercentDelta, "");
    }

    function assertApproxEqRel(int256 left, int256 right, uint256 maxPercentDelta, string memory message) internal pure {
        if (right == 0) return assertEq(left, right, message);
        uint256 rel = _absDiff(left, right) * 1e18 / _absDiff(right, 0);
        if (rel > maxPercentDelta) {
            _fail(message, string.concat(_differ("assertApproxEqRel", left.toString(), "!~", right.toString()), " (relative delta ", rel.toString(), "e-18 > ", maxPercentDelta.toString(), "e-18)"));
        }
    }

    function _absDiff(int256 a, int256 b) private pure returns (uint256) {
        return a > b ? uint256(a - b) : uint256(b - a);
    }

    function assertGt(uint256 left, uint256 right) internal pure {
        if (left <= right) _fail("", _differ("assertGt", left.toString(), "<=", right.toString()));
    }

    function assertGt(int256 left, int256 right) internal pure {
        if (left <= right) _fail("", _differ("assertGt", left.toString(), "<=", right.toString()));
    }

    function assertGe(uint256 left, uint256 right) internal pure {
        if (left < right) _fail("", _differ("assertGe", left.toString(), "<", right.toString()));
    }

    function assertGe(int256 left, int256 right) internal pure {
        if (left < right) _fail("", _differ("assertGe", left.toString(), "<", right.toString()));
    }

    function assertLt(uint256 left, uint256 right) internal pure {
        if (left >= right) _fail("", _differ("assertLt", left.toString(), ">=", right.toString()));
    }

    function assertLt(int256 left, int256 right) internal pure {
        if (left >= right) _fail("", _differ("assertLt", left.toString(), ">=", right.toString()));
    }

    function assertLe(uint256 left, uint256 right) internal pure {
        if (left > right) _fail("", _differ("assertLe", left.toString(), ">", right.toString()));
    }

    function assertLe(int256 left, int256 right) internal pure {
        if (left > right) _fail("", _differ("assertLe", left.toString(), ">", right.toString()));
    }

    function assertGt(uint256 left, uint256 right, string memory message) internal pure {
        if (left <= right) _fail(message, _differ("assertGt", left.toString(), "<=", right.toString()));
    }

    function assertGt(int256 left, int256 right, string memory message) internal pure {
        if (left <= right) _fail(message, _differ("assertGt", left.toString(), "<=", right.toString()));
    }

    function assertGe(uint256 left, uint256 right, string memory message) internal pure {
        if (left < right) _fail(message, _differ("assertGe", left.toString(), "<", right.toString()));
    }

    function assertGe(int256 left, int256 right, string memory message) internal pure {
        if (left < right) _fail(message, _differ("assertGe", left.toString(), "<", right.toString()));
    }

    function assertLt(uint256 left, uint256 right, string memory message) internal pure {
        if (left >= right) _fail(message, _differ("assertLt", left.toString(), ">=", right.toString()));
    }

    function assertLt(int256 left, int256 right, string memory message) internal pure {
        if (left >= right) _fail(message, _differ("assertLt", left.toString(), ">=", right.toString()));
    }

    function assertLe(uint256 left, uint256 right, string memory message) internal pure {
        if (left > right) _fail(message, _differ("assertLe", left.toString(), ">", right.toString()));
    }

    function assertLe(int256 left, int256 right, string memory message) internal pure {
        if (left > right) _fail(message, _differ("assertLe", left.toString(), ">", right.toString()));
    }
}
