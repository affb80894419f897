// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/nml/Test.sol";
import {Token} from "../src/Token.sol";
import {DynamicFeePool} from "../src/DynamicFeePool.nml";

contract DynamicFeePoolTest is Test {
    Token token0;
    Token token1;
    DynamicFeePool pool;
    address trader = address(0xBEEF);

    function setUp() public {
        token0 = new Token("Token A", "A");
        token1 = new Token("Token B", "B");
        pool = new DynamicFeePool(token0, token1);
        token0.mint(address(this), 1_000_000e18);
        token1.mint(address(this), 1_000_000e18);
        token0.approve(address(pool), type(uint256).max);
        token1.approve(address(pool), type(uint256).max);
        pool.addLiquidity(100_000e18, 100_000e18);
        token0.mint(trader, 1_000e18);
    }

    function returnsOf(int256 r) internal pure returns (int256[30] memory out) {
        for (uint256 i = 0; i < 30; i++) out[i] = i % 2 == 0 ? r : -r;
    }

    /// The real model: returns of ±1% are calm (volatility 0.01 < 0.05).
    function testCalmMarketKeepsTheBaseFee() public {
        pool.updateFee(returnsOf(1e16));
        assertEq(uint256(pool.fee()), uint256(pool.BASE_FEE()));
        assertApproxEqRel(pool.lastVolatility(), 1e16, 1e12);
    }

    /// The real model: returns of ±10% are volatile (0.1 > 0.05).
    function testVolatileMarketRaisesTheFee() public {
        pool.updateFee(returnsOf(1e17));
        assertEq(uint256(pool.fee()), uint256(pool.HIGH_FEE()));
        assertApproxEqRel(pool.lastVolatility(), 1e17, 1e12);
    }

    /// Two recorded hours (`test/fixtures/hours.json`, returns as Python
    /// wrote them), scaled to the model's 18 decimals by the test.
    function recordedHour(string memory name) internal view returns (int256[30] memory out) {
        string memory json = vm.readFile("test/fixtures/hours.json");
        int256[] memory r = vm.parseJsonFixedArray(json, string.concat(".", name), 18);
        assertEq(r.length, 30);
        for (uint256 i = 0; i < 30; i++) out[i] = r[i];
    }

    /// The real model on recorded hours: a calm one keeps the base fee, a
    /// volatile one raises it.
    function testRecordedHoursSetTheFee() public {
        pool.updateFee(recordedHour("calm"));
        assertEq(uint256(pool.fee()), uint256(pool.BASE_FEE()));
        pool.updateFee(recordedHour("volatile"));
        assertEq(uint256(pool.fee()), uint256(pool.HIGH_FEE()));
    }

    function testSwapsPayTheCurrentFee() public {
        uint256 calm = pool.quote(true, 1_000e18);
        pool.updateFee(returnsOf(1e17));
        uint256 volatile_ = pool.quote(true, 1_000e18);
        assertLt(volatile_, calm);

        vm.startPrank(trader);
        token0.approve(address(pool), type(uint256).max);
        uint256 out = pool.swap(true, 1_000e18, volatile_);
        vm.stopPrank();
        assertEq(out, volatile_);
        assertEq(token1.balanceOf(trader), out);
        assertEq(pool.reserve0(), 101_000e18);
        assertEq(pool.reserve1(), 100_000e18 - out);
    }

    function testSlippageLimitReverts() public {
        uint256 expected = pool.quote(true, 1_000e18);
        vm.prank(trader);
        token0.approve(address(pool), type(uint256).max);
        vm.prank(trader);
        vm.expectRevert(abi.encodeWithSelector(DynamicFeePool.Slippage.selector, expected, expected + 1));
        pool.swap(true, 1_000e18, expected + 1);
    }

    /// The mempool's simulation pass answers with no tensors and the flag
    /// set: the pool must leave its fee alone.
    function testSimulationPassLeavesTheFee() public {
        ModelOutput memory simulated;
        simulated.is_simulation_result = true;
        vm.mockInference(pool.modelId(), simulated);
        pool.updateFee(returnsOf(1e17));
        assertEq(uint256(pool.fee()), uint256(pool.BASE_FEE()));
        assertEq(pool.lastVolatility(), 0);
    }

    /// A model that is down makes the update revert; the fee stays.
    function testModelFailureKeepsTheFee() public {
        vm.failInference(pool.modelId(), "model offline");
        vm.expectRevert(bytes("model offline"));
        pool.updateFee(returnsOf(1e17));
        assertEq(uint256(pool.fee()), uint256(pool.BASE_FEE()));
    }
}
