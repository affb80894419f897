// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/nml/Test.sol";
import {DynamicFeePool} from "../src/DynamicFeePool.nml";

/// The LANGUAGE.md example, tested end to end on the devnet: every unmocked
/// call runs the real volatility model through the inference mempool.
contract DynamicFeePoolTest is Test {
    string constant VOLATILITY = "QmQfHBah12d1MgqCvSR9HB4YKAyNYYcFBvca8kkcZG5J51";
    DynamicFeePool pool;

    function setUp() public {
        pool = new DynamicFeePool();
    }

    function hour(int256 r) internal pure returns (int256[30] memory returns_) {
        for (uint256 i = 0; i < 30; i++) returns_[i] = r;
    }

    function testVolatileHourRaisesTheFee() public {
        pool.update(hour(0.1e18)); // volatility 0.1 > 0.05
        assertEq(uint256(pool.fee()), 10000);
    }

    function testCalmHourKeepsTheFee() public {
        pool.update(hour(0.01e18)); // volatility 0.01
        assertEq(uint256(pool.fee()), 3000);
    }

    function testSimulationPassChangesNothing() public {
        ModelOutput memory simulated;
        simulated.is_simulation_result = true;
        vm.mockInference(VOLATILITY, simulated);
        pool.update(hour(0.1e18));
        assertEq(uint256(pool.fee()), 3000);
    }

    function input(int256 r) internal pure returns (ModelInput memory in_) {
        TensorLib.Number[] memory values = new TensorLib.Number[](30);
        for (uint256 i = 0; i < 30; i++) values[i] = TensorLib.Number(int128(r), 18);
        uint32[] memory shape = new uint32[](2);
        shape[0] = 1;
        shape[1] = 30;
        in_.numbers = new TensorLib.MultiDimensionalNumberTensor[](1);
        in_.numbers[0] = TensorLib.MultiDimensionalNumberTensor("returns", values, shape);
    }

    function volatility(int128 vol) internal pure returns (ModelOutput memory out) {
        TensorLib.Number[] memory values = new TensorLib.Number[](1);
        values[0] = TensorLib.Number(vol, 18);
        uint32[] memory shape = new uint32[](1);
        shape[0] = 1;
        out.numbers = new TensorLib.MultiDimensionalNumberTensor[](1);
        out.numbers[0] = TensorLib.MultiDimensionalNumberTensor("vol", values, shape);
    }

    /// A mock for one input wins over a mock for the whole model; clearing
    /// them brings the real model back.
    function testInputMocksWinAndClearRestoresTheModel() public {
        vm.mockInference(VOLATILITY, volatility(0.01e18));
        vm.mockInference(VOLATILITY, input(0.2e18), volatility(0.3e18));
        pool.update(hour(0.2e18));
        assertEq(uint256(pool.fee()), 10000, "the input mock");
        pool.update(hour(0.5e18));
        assertEq(uint256(pool.fee()), 3000, "the model mock");
        vm.clearInferenceMocks();
        pool.update(hour(0.5e18));
        assertEq(uint256(pool.fee()), 10000, "the real model");
    }

    /// A mock made halfway through a test applies from there on only: the
    /// call before it ran the real model (in both mempool passes).
    function testMockMidTestAppliesFromThereOn() public {
        pool.update(hour(0.1e18));
        assertEq(uint256(pool.fee()), 10000, "the real model");
        vm.mockInference(VOLATILITY, volatility(0.01e18));
        pool.update(hour(0.1e18));
        assertEq(uint256(pool.fee()), 3000, "the mock");
    }

    /// `ask` goes through the inference mempool like `infer`: `nml test`
    /// answers it with the embedded model (a real, tiny language model; the
    /// same answer every run at temperature 0), or the LLM that `--llm-url`
    /// points at (docs/llm.md).
    function testAskIsAnsweredByARealModel() public {
        assertAnswered(pool.mood());
    }

    /// A mocked LLM answers what the test says.
    function testAskCanBeMocked() public {
        vm.mockLlm("meta-llama/Llama-3.1-8B-Instruct", "Bullish");
        assertEq(pool.mood(), "Bullish");
    }
}
