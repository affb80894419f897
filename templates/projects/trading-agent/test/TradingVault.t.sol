// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/nml/Test.sol";
import {Answers} from "@nml/nml/Answers.sol";
import {Token} from "../src/Token.sol";
import {Market} from "../src/Market.sol";
import {TradingVault} from "../src/TradingVault.nml";

contract TradingVaultTest is Test {
    string constant RISK_OFFICER = "meta-llama/Llama-3.1-8B-Instruct";
    Token usd;
    Token weth;
    Market market;
    TradingVault vault;
    address investor = address(0x1417);

    function setUp() public {
        usd = new Token("Dollar", "USD");
        weth = new Token("Wrapped Ether", "WETH");
        market = new Market(usd, weth, 2_000e18);
        usd.mint(address(market), 10_000_000e18);
        weth.mint(address(market), 10_000e18);
        vault = new TradingVault(market);
        usd.mint(investor, 100_000e18);
        vm.startPrank(investor);
        usd.approve(address(vault), type(uint256).max);
        vault.deposit(100_000e18);
        vm.stopPrank();
        // The risk officer lets trades through unless a test says otherwise.
        vm.mockLlm(RISK_OFFICER, "No.");
    }

    function trend(int256 r) internal pure returns (int256[8] memory out) {
        for (uint256 i = 0; i < 8; i++) out[i] = r;
    }

    /// The real model: +2% returns give sigmoid(2) = 0.88 → bullish; the
    /// first rebalance buys 10% of the vault (the trade limit).
    function testUptrendBuysWithinTheTradeLimit() public {
        vault.rebalance(trend(0.02e18));
        assertApproxEqAbs(vault.lastSignal(), 0.8808e18, 0.0001e18);
        assertEq(vault.targetWeight(), 0.75e18);
        assertEq(weth.balanceOf(address(vault)), 5e18); // 10,000 USD at 2,000
        assertEq(usd.balanceOf(address(vault)), 90_000e18);
        assertEq(vault.totalValue(), 100_000e18);
    }

    /// Repeated bullish signals stop at the target weight (75%).
    function testRebalancingStopsAtTheTarget() public {
        for (uint256 i = 0; i < 9; i++) vault.rebalance(trend(0.02e18));
        assertEq(vault.assetWeight(), 0.75e18);
    }

    /// The real model: -2% returns → bearish (0.12): sell back toward 25%.
    function testDowntrendSells() public {
        for (uint256 i = 0; i < 5; i++) vault.rebalance(trend(0.02e18)); // 50% asset
        vault.rebalance(trend(-0.02e18));
        assertEq(vault.targetWeight(), 0.25e18);
        assertEq(vault.assetWeight(), 0.4e18);
    }

    function testOnlyTheAgentRebalances() public {
        vm.prank(investor);
        vm.expectRevert(TradingVault.NotAgent.selector);
        vault.rebalance(trend(0.02e18));
    }

    function testWithdrawPaysBothHoldings() public {
        vault.rebalance(trend(0.02e18));
        vm.prank(investor);
        (uint256 baseOut, uint256 assetOut) = vault.withdraw(50_000e18);
        assertEq(baseOut, 45_000e18);
        assertEq(assetOut, 2.5e18);
        assertEq(usd.balanceOf(investor), 45_000e18);
    }

    /// An extreme mocked signal still respects the position limits.
    function testExtremeSignalRespectsTheLimits() public {
        ModelOutput memory certain = _signal(1e18);
        vm.mockInference(vault.modelId(), certain);
        vault.rebalance(trend(0.5e18));
        assertEq(weth.balanceOf(address(vault)), 5e18);
    }

    function testSimulationPassTradesNothing() public {
        ModelOutput memory simulated;
        simulated.is_simulation_result = true;
        vm.mockInference(vault.modelId(), simulated);
        vault.rebalance(trend(0.02e18));
        assertEq(weth.balanceOf(address(vault)), 0);
        assertEq(vault.targetWeight(), 0);
    }

    function testModelFailureTradesNothing() public {
        vm.failInference(vault.modelId(), "direction model timed out");
        vm.expectRevert(bytes("direction model timed out"));
        vault.rebalance(trend(0.02e18));
        assertEq(weth.balanceOf(address(vault)), 0);
    }

    /// The risk officer vetoes: no trade, and the vault says why.
    function testTheRiskOfficerVetoesATrade() public {
        vm.mockLlm(RISK_OFFICER, "Yes, the position is too large.");
        vm.expectEmit();
        emit TradingVault.Vetoed(true, 10_000e18, "Yes, the position is too large.");
        vault.rebalance(trend(0.02e18));
        assertEq(weth.balanceOf(address(vault)), 0);
        assertEq(vault.lastVerdict(), "Yes, the position is too large.");
    }

    /// A veto for one trade only: the officer is asked about this exact
    /// trade, and other prompts still get the default "No.".
    function testTheVetoAnswersTheExactTradeAsked() public {
        vm.mockLlm(RISK_OFFICER, "Trade review. Veto this buy of 10000 USD of the asset? Answer yes or no:", "yes");
        vault.rebalance(trend(0.02e18));
        assertEq(weth.balanceOf(address(vault)), 0);
        vm.mockLlm(RISK_OFFICER, "Trade review. Veto this buy of 10000 USD of the asset? Answer yes or no:", "no");
        vault.rebalance(trend(0.02e18));
        assertEq(weth.balanceOf(address(vault)), 5e18);
    }

    /// A risk officer that is down stops the trade with its reason.
    function testAnLlmFailureTradesNothing() public {
        vm.failLlm(RISK_OFFICER, "LLM backend unavailable");
        vm.expectRevert(bytes("LLM backend unavailable"));
        vault.rebalance(trend(0.02e18));
    }

    /// Unmocked, the risk officer is a real model: the embedded one under
    /// `nml test` (or the LLM that `--llm-url` points at). Its answer is
    /// kept, and the trade goes ahead unless it said yes.
    function testTheRealRiskOfficerIsAsked() public {
        vm.clearLlmMocks();
        vault.rebalance(trend(0.02e18));
        string memory verdict = vault.lastVerdict();
        assertAnswered(verdict);
        bool vetoed = weth.balanceOf(address(vault)) == 0;
        assertEq(vetoed, Answers.isYes(verdict));
    }

    function _signal(int128 up) internal pure returns (ModelOutput memory out) {
        out.numbers = new TensorLib.MultiDimensionalNumberTensor[](1);
        TensorLib.Number[] memory values = new TensorLib.Number[](1);
        values[0] = TensorLib.Number(up, 18);
        uint32[] memory shape = new uint32[](1);
        shape[0] = 1;
        out.numbers[0] = TensorLib.MultiDimensionalNumberTensor("up", values, shape);
    }
}
