// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// What an invariant test's random calls aim at, as a test contract chooses
/// in `setUp` (`Test` inherits it). `nml test` reads the lists through the
/// public functions below after `setUp`; an empty list means the default:
/// every contract `setUp` deployed, every function of theirs that is not
/// `view` or `pure`, and a handful of senders (docs/testing.md, "Invariant
/// tests").
abstract contract StdInvariant {
    /// Functions of one contract, by selector.
    struct FuzzSelector {
        address addr;
        bytes4[] selectors;
    }

    struct Targets {
        address[] contracts;
        address[] excludedContracts;
        address[] senders;
        address[] excludedSenders;
        FuzzSelector[] selectors;
        FuzzSelector[] excludedSelectors;
    }

    /// The lists live at a slot of their own (keccak256("nml.invariant.targets")),
    /// so a test contract's own storage still starts at slot 0.
    function nmlTargets() private pure returns (Targets storage targets) {
        bytes32 slot = keccak256("nml.invariant.targets");
        assembly {
            targets.slot := slot
        }
    }

    /// Calls go to `target` (and the other targets) only.
    function targetContract(address target) internal {
        nmlTargets().contracts.push(target);
    }

    /// No calls go to `excluded`.
    function excludeContract(address excluded) internal {
        nmlTargets().excludedContracts.push(excluded);
    }

    /// Calls are made by `sender` (and the other targeted senders) only.
    function targetSender(address sender) internal {
        nmlTargets().senders.push(sender);
    }

    /// No call is made by `excluded`.
    function excludeSender(address excluded) internal {
        nmlTargets().excludedSenders.push(excluded);
    }

    /// Calls to `selection.addr` call these functions only.
    function targetSelector(FuzzSelector memory selection) internal {
        nmlTargets().selectors.push(selection);
    }

    /// Calls to `selection.addr` never call these functions.
    function excludeSelector(FuzzSelector memory selection) internal {
        nmlTargets().excludedSelectors.push(selection);
    }

    function targetContracts() public view returns (address[] memory) {
        return nmlTargets().contracts;
    }

    function excludeContracts() public view returns (address[] memory) {
        return nmlTargets().excludedContracts;
    }

    function targetSenders() public view returns (address[] memory) {
        return nmlTargets().senders;
    }

    function excludeSenders() public view returns (address[] memory) {
        return nmlTargets().excludedSenders;
    }

    function targetSelectors() public view returns (FuzzSelector[] memory) {
        return nmlTargets().selectors;
    }

    function excludeSelectors() public view returns (FuzzSelector[] memory) {
        return nmlTargets().excludedSelectors;
    }
}
