// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {Permit2} from "./Permit2.sol";

/// @title X402ExactPermit2Proxy
/// @notice The spender of x402's `exact` scheme over Permit2, predeployed by the
///         nml devnet at 0x402085c248EeA27D92E8b30b2C58ed07f9E20001 (the x402
///         packages' address): anyone may settle a signed payment, and the
///         signed witness fixes who is paid and from when, so the whole signed
///         amount goes to `witness.to` and nowhere else.
contract X402ExactPermit2Proxy {
    struct Witness {
        address to;
        uint256 validAfter;
    }

    Permit2 public constant PERMIT2 = Permit2(0x000000000022D473030F116dDEE9F6B43aC78BA3);
    bytes32 public constant WITNESS_TYPEHASH = keccak256("Witness(address to,uint256 validAfter)");
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)";

    event Settled(address indexed owner, address indexed to, address indexed token, uint256 amount);

    error NotYetValid(uint256 validAfter);

    function settle(Permit2.PermitTransferFrom calldata permit, address owner, Witness calldata witness, bytes calldata signature)
        external
    {
        if (block.timestamp < witness.validAfter) revert NotYetValid(witness.validAfter);
        bytes32 witnessHash = keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.validAfter));
        PERMIT2.permitWitnessTransferFrom(
            permit,
            Permit2.SignatureTransferDetails({to: witness.to, requestedAmount: permit.permitted.amount}),
            owner,
            witnessHash,
            WITNESS_TYPE_STRING,
            signature
        );
        emit Settled(owner, witness.to, permit.permitted.token, permit.permitted.amount);
    }
}

/// @title X402UptoPermit2Proxy
/// @notice The spender of x402's `upto` scheme over Permit2, predeployed by the
///         nml devnet at 0x4020A4f3b7b90ccA423B9fabCc0CE57C6C240002: the payer
///         signs a cap, and only the facilitator the witness names may settle,
///         charging any amount up to the cap to `witness.to`.
contract X402UptoPermit2Proxy {
    struct Witness {
        address to;
        address facilitator;
        uint256 validAfter;
    }

    Permit2 public constant PERMIT2 = Permit2(0x000000000022D473030F116dDEE9F6B43aC78BA3);
    bytes32 public constant WITNESS_TYPEHASH =
        keccak256("Witness(address to,address facilitator,uint256 validAfter)");
    string public constant WITNESS_TYPE_STRING =
        "Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,address facilitator,uint256 validAfter)";

    event Settled(address indexed owner, address indexed to, address indexed token, uint256 amount);

    error NotYetValid(uint256 validAfter);
    error NotTheFacilitator(address facilitator);
    error OverTheCap(uint256 cap);

    function settle(
        Permit2.PermitTransferFrom calldata permit,
        uint256 amount,
        address owner,
        Witness calldata witness,
        bytes calldata signature
    ) external {
        if (block.timestamp < witness.validAfter) revert NotYetValid(witness.validAfter);
        if (msg.sender != witness.facilitator) revert NotTheFacilitator(witness.facilitator);
        if (amount > permit.permitted.amount) revert OverTheCap(permit.permitted.amount);
        bytes32 witnessHash =
            keccak256(abi.encode(WITNESS_TYPEHASH, witness.to, witness.facilitator, witness.validAfter));
        PERMIT2.permitWitnessTransferFrom(
            permit,
            Permit2.SignatureTransferDetails({to: witness.to, requestedAmount: amount}),
            owner,
            witnessHash,
            WITNESS_TYPE_STRING,
            signature
        );
        emit Settled(owner, witness.to, permit.permitted.token, amount);
    }
}
