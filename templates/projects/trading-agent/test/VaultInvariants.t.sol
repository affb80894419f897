// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/nml/Test.sol";
import {Token} from "../src/Token.sol";
import {Market} from "../src/Market.sol";
import {TradingVault} from "../src/TradingVault.nml";

/// What the invariant test's random calls do: investors deposit and
/// withdraw, and the agent rebalances on drawn returns — each rebalance asks
/// the real Direction model (docs/testing.md, "Invariant tests").
contract VaultHandler is Test {
    TradingVault public immutable vault;
    Token public immutable usd;
    /// The test contract: the tokens' owner and the vault's agent.
    address public immutable admin;
    address[3] public investors = [address(0x1001), address(0x1002), address(0x1003)];

    constructor(TradingVault vault_, Token usd_, address admin_) {
        vault = vault_;
        usd = usd_;
        admin = admin_;
    }

    function deposit(uint256 who, uint256 amount) external {
        address investor = investors[who % investors.length];
        amount = bound(amount, 1e18, 50_000e18);
        vm.prank(admin);
        usd.mint(investor, amount);
        vm.startPrank(investor);
        usd.approve(address(vault), amount);
        vault.deposit(amount);
        vm.stopPrank();
    }

    function withdraw(uint256 who, uint256 amount) external {
        address investor = investors[who % investors.length];
        uint256 held = vault.shares(investor);
        if (held == 0) return;
        vm.prank(investor);
        vault.withdraw(bound(amount, 1, held));
    }

    function rebalance(int256 r) external {
        int256 step = bound(r, -0.05e18, 0.05e18);
        int256[8] memory returns_;
        for (uint256 i = 0; i < 8; i++) returns_[i] = step;
        vm.prank(admin);
        vault.rebalance(returns_);
    }
}

contract VaultInvariantsTest is Test {
    Token usd;
    Token weth;
    TradingVault vault;
    VaultHandler handler;
    address founder = address(0x1417);

    function setUp() public {
        usd = new Token("Dollar", "USD");
        weth = new Token("Wrapped Ether", "WETH");
        Market market = new Market(usd, weth, 2_000e18);
        usd.mint(address(market), 10_000_000e18);
        weth.mint(address(market), 10_000e18);
        vault = new TradingVault(market);
        usd.mint(founder, 100_000e18);
        vm.startPrank(founder);
        usd.approve(address(vault), type(uint256).max);
        vault.deposit(100_000e18);
        vm.stopPrank();
        vm.mockLlm("meta-llama/Llama-3.1-8B-Instruct", "No.");
        handler = new VaultHandler(vault, usd, address(this));
        targetContract(address(handler));
    }

    /// Whatever the model says, the asset never exceeds the position limit.
    function invariant_assetWeightWithinTheLimit() public view {
        assertLe(vault.assetWeight(), vault.MAX_ASSET_WEIGHT(), "asset weight above the limit");
    }

    /// Every share belongs to someone.
    function invariant_sharesAddUp() public view {
        uint256 held = vault.shares(founder);
        for (uint256 i = 0; i < 3; i++) held += vault.shares(handler.investors(i));
        assertEq(held, vault.totalShares(), "shares do not add up");
    }
}
