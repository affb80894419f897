// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// Plain Solidity imported by an .nml file; `ask` is an ordinary name here.
abstract contract Shared {
    uint256 public ask;
}
