// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/nml/Test.sol";
import {Token} from "../src/Token.sol";
import {LendingPool} from "../src/LendingPool.nml";

contract LendingPoolTest is Test {
    Token collateral;
    Token stable;
    LendingPool pool;
    address alice = address(0xA11CE);
    address liquidator = address(0x11001D);

    function setUp() public {
        collateral = new Token("Wrapped Ether", "WETH");
        stable = new Token("Dollar", "USD");
        pool = new LendingPool(collateral, stable, 2_000e18); // 1 WETH = 2,000 USD
        stable.mint(address(pool), 1_000_000e18);
        collateral.mint(alice, 10e18);
        stable.mint(liquidator, 100_000e18);
        vm.startPrank(alice);
        collateral.approve(address(pool), type(uint256).max);
        pool.deposit(10e18); // 20,000 USD of collateral
        vm.stopPrank();
    }

    function ltvOf(address who) internal view returns (uint256 ltv) {
        (,, ltv,) = pool.positions(who);
    }

    /// The real model: a clean borrower scores sigmoid(-4 + 2*0.1) = 0.0219,
    /// so their LTV is 0.8 - 0.0109 = 78.9%.
    function testLowRiskBorrowerGetsAHighLimit() public {
        pool.assess(alice, 0.1e18, 0);
        assertApproxEqAbs(ltvOf(alice), 0.789e18, 0.001e18);
        vm.prank(alice);
        pool.borrow(15_000e18);
        assertEq(stable.balanceOf(alice), 15_000e18);
    }

    /// The real model: two missed payments and a volatile collateral score
    /// sigmoid(-4 + 1.8 + 0 + 1 + 2) = sigmoid(0.8) = 0.69: LTV 45.5%.
    function testRiskyBorrowerGetsALowLimit() public {
        pool.recordMissedPayment(alice);
        pool.recordMissedPayment(alice);
        pool.assess(alice, 0.9e18, 0.5e18);
        assertApproxEqAbs(ltvOf(alice), 0.455e18, 0.001e18);
        uint256 limit = pool.borrowLimit(alice);
        vm.prank(alice);
        vm.expectRevert(abi.encodeWithSelector(LendingPool.OverLimit.selector, 15_000e18, limit));
        pool.borrow(15_000e18);
    }

    function testBorrowingNeedsAnAssessment() public {
        vm.prank(alice);
        vm.expectRevert(LendingPool.NotAssessed.selector);
        pool.borrow(1e18);
    }

    /// A price drop pushes the debt over the threshold; a liquidator repays
    /// it and takes collateral worth 105% of the debt.
    function testPriceDropAllowsLiquidation() public {
        pool.assess(alice, 0.1e18, 0);
        vm.prank(alice);
        pool.borrow(15_000e18);

        vm.prank(liquidator);
        stable.approve(address(pool), type(uint256).max);
        vm.prank(liquidator);
        vm.expectRevert(LendingPool.Healthy.selector);
        pool.liquidate(alice);

        // Collateral now worth 17,000 USD: the threshold (78.9% + 5%) is 14,263.
        pool.setPrice(1_700e18);
        vm.prank(liquidator);
        pool.liquidate(alice);
        uint256 seized = uint256(15_000e18) * 1.05e18 / 1_700e18; // 9.26 WETH
        assertEq(collateral.balanceOf(liquidator), seized);
        assertEq(stable.balanceOf(liquidator), 85_000e18);
        (uint256 left, uint256 debt,,) = pool.positions(alice);
        assertEq(debt, 0);
        assertEq(left, 10e18 - seized);
    }

    /// The simulation pass must not set an LTV.
    function testSimulationPassGrantsNothing() public {
        ModelOutput memory simulated;
        simulated.is_simulation_result = true;
        vm.mockInference(pool.modelId(), simulated);
        pool.assess(alice, 0.1e18, 0);
        assertEq(ltvOf(alice), 0);
    }

    /// A model that is down: no assessment, so no borrowing.
    function testModelFailureBlocksBorrowing() public {
        vm.failInference(pool.modelId(), "risk model unavailable");
        vm.expectRevert(bytes("risk model unavailable"));
        pool.assess(alice, 0.1e18, 0);
        assertEq(ltvOf(alice), 0);
    }
}
