// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import "@nml/nml/Test.sol";
import {Token} from "../src/Token.sol";
import {PayoutVault} from "../src/PayoutVault.nml";
import {SETTLEMENT_RELAY} from "@nml/og/TEEVerifier.sol";

contract PayoutVaultTest is Test {
    Token usd;
    PayoutVault vault;
    address alice = address(0xA11CE);

    function setUp() public {
        usd = new Token("Dollar", "USD");
        vault = new PayoutVault(usd, 10_000e18, 1_000e18);
        usd.mint(address(vault), 1_000_000e18);
    }

    function claimHashes(uint256 id) internal view returns (bytes32 inputHash, bytes32 outputHash, uint256 assessedAt) {
        (,,, inputHash, outputHash, assessedAt) = vault.claims(id);
    }

    /// A large claim: features scoring sigmoid(-4 + 1 + 1.5 + 1 + 1) = 0.6225
    /// with the real model, so 6,225 USD, of which 1,000 are paid at once.
    function largeClaim() internal returns (uint256 id) {
        id = vault.assess(alice, [int256(0.5e18), 0.5e18, 2e18, 0.25e18]);
        assertApproxEqAbs(usd.balanceOf(alice), 1_000e18, 1);
        (, uint256 amount, uint256 paid,,,) = vault.claims(id);
        assertApproxEqAbs(amount, 6_225e18, 1e18);
        assertEq(paid, 1_000e18);
    }

    /// The enclave's attestation of the claim's result (signed as the
    /// devnet's enclave signs, with the key the registry holds).
    function attest(uint256 id) internal returns (bytes32 teeId, uint256 signedAt, bytes memory signature) {
        (bytes32 inputHash, bytes32 outputHash, uint256 assessedAt) = claimHashes(id);
        signedAt = assessedAt;
        (teeId, signature) = vm.teeAttest(inputHash, outputHash, signedAt);
    }

    function testASmallClaimIsPaidAtOnce() public {
        uint256 id = vault.assess(alice, [int256(0.1e18), 0, 0, 0]); // sigmoid(-3.8) = 0.0219
        (, uint256 amount, uint256 paid,,,) = vault.claims(id);
        assertApproxEqAbs(amount, 219e18, 1e18);
        assertEq(paid, amount);
        vm.expectRevert(abi.encodeWithSelector(PayoutVault.NothingHeld.selector, id));
        vault.release(id, bytes32(0), 0, "");
    }

    function testTheRestIsReleasedOnceTheResultHasSettled() public {
        uint256 id = largeClaim();
        (bytes32 teeId, uint256 signedAt, bytes memory signature) = attest(id);
        vm.expectRevert(PayoutVault.NotSettled.selector);
        vault.release(id, teeId, signedAt, signature);
        (bytes32 inputHash, bytes32 outputHash,) = claimHashes(id);
        vm.teeSettle(teeId, inputHash, outputHash, signedAt);
        vault.release(id, teeId, signedAt, signature);
        assertApproxEqAbs(usd.balanceOf(alice), 6_225e18, 1e18);
    }

    function testALateSettlementStillReleasesTheFunds() public {
        uint256 id = largeClaim();
        (bytes32 teeId, uint256 signedAt, bytes memory signature) = attest(id);
        vm.warp(block.timestamp + 1 days);
        vm.expectRevert(PayoutVault.NotSettled.selector);
        vault.release(id, teeId, signedAt, signature);
        (bytes32 inputHash, bytes32 outputHash,) = claimHashes(id);
        vm.teeSettle(teeId, inputHash, outputHash, signedAt);
        vault.release(id, teeId, signedAt, signature);
        assertApproxEqAbs(usd.balanceOf(alice), 6_225e18, 1e18);
    }

    function testAWithheldSettlementHoldsTheFundsForever() public {
        uint256 id = largeClaim();
        (bytes32 teeId, uint256 signedAt, bytes memory signature) = attest(id);
        vm.warp(block.timestamp + 365 days);
        vm.expectRevert(PayoutVault.NotSettled.selector);
        vault.release(id, teeId, signedAt, signature);
        assertEq(usd.balanceOf(alice), 1_000e18);
    }

    function testAForgedAttestationIsRefusedEvenWhenSettled() public {
        uint256 id = largeClaim();
        (bytes32 teeId, uint256 signedAt, bytes memory signature) = attest(id);
        (bytes32 inputHash, bytes32 outputHash,) = claimHashes(id);
        vm.teeSettle(teeId, inputHash, outputHash, signedAt);
        signature[10] = bytes1(uint8(signature[10]) ^ 1);
        vm.expectRevert(PayoutVault.ForgedAttestation.selector);
        vault.release(id, teeId, signedAt, signature);
    }

    function testAnAttestationSignedLongAfterTheClaimIsStale() public {
        uint256 id = largeClaim();
        (bytes32 inputHash, bytes32 outputHash, uint256 assessedAt) = claimHashes(id);
        uint256 later = assessedAt + 2 hours;
        (bytes32 teeId, bytes memory signature) = vm.teeAttest(inputHash, outputHash, later);
        vm.expectRevert(abi.encodeWithSelector(PayoutVault.StaleAttestation.selector, later, assessedAt));
        vault.release(id, teeId, later, signature);
    }

    /// The attestation the devnet's enclave really made for the claim's
    /// inference (what `nml_getAttestations` reports), settled: released.
    function testTheEnclavesOwnAttestationReleasesTheFunds() public {
        uint256 id = largeClaim();
        (bytes32 inputHash, bytes32 outputHash,) = claimHashes(id);
        (bytes32 teeId, bytes32 attestedInput, bytes32 attestedOutput, uint256 signedAt, bytes memory signature) =
            vm.teeAttestation(inputHash);
        assertEq(attestedInput, inputHash);
        assertEq(attestedOutput, outputHash);
        vm.teeSettle(teeId, inputHash, outputHash, signedAt);
        vault.release(id, teeId, signedAt, signature);
        assertApproxEqAbs(usd.balanceOf(alice), 6_225e18, 1e18);
    }

    /// An enclave that signs another output than the one it returned: its
    /// attestation, even settled, does not release the claim.
    function testAnEnclaveThatSignsAnotherOutputIsCaught() public {
        vm.teeFault("wrong-output", true);
        uint256 id = largeClaim();
        (bytes32 inputHash, bytes32 outputHash,) = claimHashes(id);
        (bytes32 teeId,, bytes32 attestedOutput, uint256 signedAt, bytes memory signature) = vm.teeAttestation(inputHash);
        assertTrue(attestedOutput != outputHash, "the enclave signed another output");
        vm.teeSettle(teeId, inputHash, attestedOutput, signedAt);
        vm.expectRevert(PayoutVault.ForgedAttestation.selector);
        vault.release(id, teeId, signedAt, signature);
    }

    /// The relay's delay passes: every attested result settles, and the
    /// claim is released with the enclave's own attestation.
    function testAdvancingToSettlementReleasesTheFunds() public {
        uint256 id = largeClaim();
        (bytes32 inputHash,,) = claimHashes(id);
        (bytes32 teeId, bytes32 attestedInput, bytes32 attestedOutput, uint256 signedAt, bytes memory signature) =
            vm.teeAttestation(inputHash);
        vm.expectSettlement(teeId, attestedInput, attestedOutput, signedAt);
        uint256 before = block.number;
        vm.teeAdvanceToSettlement();
        assertEq(block.number, before + 3);
        vault.release(id, teeId, signedAt, signature);
        assertApproxEqAbs(usd.balanceOf(alice), 6_225e18, 1e18);
    }

    /// A settlement that was expected but never came fails the test.
    function testFailAnExpectedSettlementThatNeverComes() public {
        uint256 id = largeClaim();
        (bytes32 teeId, uint256 signedAt,) = attest(id);
        (bytes32 inputHash, bytes32 outputHash,) = claimHashes(id);
        vm.expectSettlement(teeId, inputHash, outputHash, signedAt);
    }

    function testABatchSettlementReleasesWithAMerkleProof() public {
        uint256 id = largeClaim();
        (bytes32 teeId, uint256 signedAt, bytes memory signature) = attest(id);
        (bytes32 inputHash, bytes32 outputHash,) = claimHashes(id);
        bytes32 leaf = SETTLEMENT_RELAY.leafOf(teeId, inputHash, outputHash, signature, signedAt);
        bytes32 other = keccak256("another result of the batch");
        bytes32 root = leaf < other ? keccak256(abi.encodePacked(leaf, other)) : keccak256(abi.encodePacked(other, leaf));
        bytes32[] memory proof = new bytes32[](1);
        proof[0] = other;
        vm.expectRevert(PayoutVault.NotSettled.selector);
        vault.releaseBatched(id, teeId, signedAt, signature, proof, root);
        vm.teeSettleBatch(root);
        vault.releaseBatched(id, teeId, signedAt, signature, proof, root);
        assertApproxEqAbs(usd.balanceOf(alice), 6_225e18, 1e18);
    }
}
