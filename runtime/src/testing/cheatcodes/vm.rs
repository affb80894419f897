//! The `Vm` interface the runner serves: the same functions as
//! `stdlib/nml/Test.sol` declares (a test checks that the selectors agree),
//! with Foundry's signatures where Foundry has the cheatcode.

use alloy_sol_types::sol;

sol! {
    /// The cheatcodes `stdlib/nml/Test.sol` declares.
    #[derive(Debug)]
    interface Vm {
        struct Number { int128 value; int128 decimals; }
        struct MultiDimensionalNumberTensor { string name; Number[] values; uint32[] shape; }
        struct StringTensor { string name; string[] values; }
        struct Log { bytes32[] topics; bytes data; address emitter; }
        struct JsonScalar { string name; string value; }
        struct ModelInput { MultiDimensionalNumberTensor[] numbers; StringTensor[] strings; }
        struct ModelOutput {
            MultiDimensionalNumberTensor[] numbers;
            StringTensor[] strings;
            JsonScalar[] jsons;
            bool is_simulation_result;
        }

        function prank(address sender) external;
        function startPrank(address sender) external;
        function stopPrank() external;
        function deal(address account, uint256 newBalance) external;
        function warp(uint256 newTimestamp) external;
        function roll(uint256 newHeight) external;
        function expectRevert() external;
        function expectRevert(bytes calldata revertData) external;
        function expectRevert(bytes4 revertData) external;
        function expectEmit() external;
        function addr(uint256 privateKey) external pure returns (address keyAddr);
        function sign(uint256 privateKey, bytes32 digest) external pure returns (uint8 v, bytes32 r, bytes32 s);
        function store(address target, bytes32 slot, bytes32 value) external;
        function load(address target, bytes32 slot) external view returns (bytes32 data);
        function etch(address target, bytes calldata newRuntimeBytecode) external;
        function getNonce(address account) external view returns (uint64 nonce);
        function setNonce(address account, uint64 newNonce) external;
        function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData) external;
        function expectEmit(bool checkTopic1, bool checkTopic2, bool checkTopic3, bool checkData, address emitter) external;
        function expectEmit(address emitter) external;
        function expectCall(address callee, bytes calldata data) external;
        function assume(bool condition) external pure;
        function skip(bool skipTest) external;
        function mockCall(address callee, bytes calldata data, bytes calldata returnData) external;
        function mockCallRevert(address callee, bytes calldata data, bytes calldata revertData) external;
        function clearMockedCalls() external;
        function recordLogs() external;
        function getRecordedLogs() external returns (Log[] memory logs);
        function label(address account, string calldata newLabel) external;
        function envOr(string calldata name, uint256 defaultValue) external view returns (uint256 value);
        function envOr(string calldata name, bool defaultValue) external view returns (bool value);
        function envOr(string calldata name, string calldata defaultValue) external view returns (string memory value);
        function mockInference(string calldata modelId, ModelOutput calldata output) external;
        function mockInference(string calldata modelId, ModelInput calldata input, ModelOutput calldata output) external;
        function failInference(string calldata modelId, string calldata reason) external;
        function clearInferenceMocks() external;
        function mockLlm(string calldata modelId, string calldata answer) external;
        function mockLlm(string calldata modelId, string calldata prompt, string calldata answer) external;
        function failLlm(string calldata modelId, string calldata reason) external;
        function clearLlmMocks() external;
        function teeAttest(bytes32 inputHash, bytes32 outputHash, uint256 timestamp) external returns (bytes32 teeId, bytes memory signature);
        function teeSettle(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp) external;
        function teeSettleBatch(bytes32 merkleRoot) external;
        function teeFault(string calldata fault, bool on) external;
        function teeAttestation(bytes32 requestId) external returns (bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp, bytes memory signature);
        function teeAdvanceToSettlement() external;
        function expectSettlement(bytes32 teeId, bytes32 inputHash, bytes32 outputHash, uint256 timestamp) external;
        function prank(address msgSender, address txOrigin) external;
        function startPrank(address msgSender, address txOrigin) external;
        function snapshotState() external returns (uint256 snapshotId);
        function revertToState(uint256 snapshotId) external returns (bool success);
        function revertToStateAndDelete(uint256 snapshotId) external returns (bool success);
        function deleteStateSnapshot(uint256 snapshotId) external returns (bool success);
        function deleteStateSnapshots() external;
        function snapshot() external returns (uint256 snapshotId);
        function revertTo(uint256 snapshotId) external returns (bool success);
        function revertToAndDelete(uint256 snapshotId) external returns (bool success);
        function deleteSnapshot(uint256 snapshotId) external returns (bool success);
        function deleteSnapshots() external;
        function chainId(uint256 newChainId) external;
        function fee(uint256 newBasefee) external;
        function coinbase(address newCoinbase) external;
        function prevrandao(bytes32 newPrevrandao) external;
        function prevrandao(uint256 newPrevrandao) external;
        function txGasPrice(uint256 newGasPrice) external;
        function getBlockNumber() external view returns (uint256 height);
        function getBlockTimestamp() external view returns (uint256 timestamp);
        function toString(address value) external pure returns (string memory stringifiedValue);
        function toString(bytes calldata value) external pure returns (string memory stringifiedValue);
        function toString(bytes32 value) external pure returns (string memory stringifiedValue);
        function toString(bool value) external pure returns (string memory stringifiedValue);
        function toString(uint256 value) external pure returns (string memory stringifiedValue);
        function toString(int256 value) external pure returns (string memory stringifiedValue);
        function computeCreateAddress(address deployer, uint256 nonce) external pure returns (address);
        function envUint(string calldata name) external view returns (uint256 value);
        function envInt(string calldata name) external view returns (int256 value);
        function envAddress(string calldata name) external view returns (address value);
        function envBool(string calldata name) external view returns (bool value);
        function envString(string calldata name) external view returns (string memory value);
        function envBytes32(string calldata name) external view returns (bytes32 value);
        function envOr(string calldata name, address defaultValue) external view returns (address value);
        function envOr(string calldata name, int256 defaultValue) external view returns (int256 value);
        function envOr(string calldata name, bytes32 defaultValue) external view returns (bytes32 value);
        function projectRoot() external view returns (string memory path);
        function readFile(string calldata path) external view returns (string memory data);
        function readFileBinary(string calldata path) external view returns (bytes memory data);
        function exists(string calldata path) external view returns (bool result);
        function keyExistsJson(string calldata json, string calldata key) external view returns (bool);
        function parseJsonUint(string calldata json, string calldata key) external pure returns (uint256);
        function parseJsonInt(string calldata json, string calldata key) external pure returns (int256);
        function parseJsonBool(string calldata json, string calldata key) external pure returns (bool);
        function parseJsonAddress(string calldata json, string calldata key) external pure returns (address);
        function parseJsonString(string calldata json, string calldata key) external pure returns (string memory);
        function parseJsonBytes32(string calldata json, string calldata key) external pure returns (bytes32);
        function parseJsonBytes(string calldata json, string calldata key) external pure returns (bytes memory);
        function parseJsonUintArray(string calldata json, string calldata key) external pure returns (uint256[] memory);
        function parseJsonIntArray(string calldata json, string calldata key) external pure returns (int256[] memory);
        function parseJsonBoolArray(string calldata json, string calldata key) external pure returns (bool[] memory);
        function parseJsonAddressArray(string calldata json, string calldata key) external pure returns (address[] memory);
        function parseJsonStringArray(string calldata json, string calldata key) external pure returns (string[] memory);
        function parseJsonBytes32Array(string calldata json, string calldata key) external pure returns (bytes32[] memory);
        function parseJsonFixed(string calldata json, string calldata key, uint8 decimals) external pure returns (int256);
        function parseJsonFixedArray(string calldata json, string calldata key, uint8 decimals) external pure returns (int256[] memory);
    }
}
