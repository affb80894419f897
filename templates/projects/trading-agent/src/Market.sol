// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Token} from "./Token.sol";

/// A market maker that trades an asset against a base token at an oracle
/// price, from its own inventory (a stand-in for a DEX in the template).
contract Market {
    Token public immutable base;
    Token public immutable asset;
    address public immutable owner;
    /// Base tokens per asset token (18 decimals).
    uint256 public price;

    error NotOwner();

    constructor(Token base_, Token asset_, uint256 price_) {
        base = base_;
        asset = asset_;
        price = price_;
        owner = msg.sender;
    }

    function setPrice(uint256 price_) external {
        if (msg.sender != owner) revert NotOwner();
        price = price_;
    }

    /// Sells `baseIn` base tokens for assets; returns the assets bought.
    function buy(uint256 baseIn) external returns (uint256 assetOut) {
        assetOut = baseIn * 1e18 / price;
        base.transferFrom(msg.sender, address(this), baseIn);
        asset.transfer(msg.sender, assetOut);
    }

    /// Sells `assetIn` assets for base tokens; returns the base tokens received.
    function sell(uint256 assetIn) external returns (uint256 baseOut) {
        baseOut = assetIn * price / 1e18;
        asset.transferFrom(msg.sender, address(this), assetIn);
        base.transfer(msg.sender, baseOut);
    }
}
