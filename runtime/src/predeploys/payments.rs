//! The contracts x402 payments run on, at the addresses unmodified x402
//! clients and OpenGradient's SDK use: the OPG token (its Base address),
//! Permit2, and x402's `exact` and `upto` Permit2 proxies — our own
//! Solidity in `runtime/predeploys/src/` (`OPGToken.sol`, `Permit2.sol`,
//! `X402Permit2Proxies.sol`). The devnet mints OPG to its dev accounts at
//! genesis; a gateway's facilitator verifies payments against these and
//! settles them through the proxies.

use std::sync::LazyLock;

use alloy_primitives::{Address, Bytes, U256, address};
use alloy_sol_types::sol;

use super::SystemCall;

/// The OPG token (18 decimals), at its Base address.
pub const OPG_TOKEN: Address = address!("FbC2051AE2265686a469421b2C5A2D5462FbF5eB");
/// Permit2, at its address on every chain.
pub const PERMIT2: Address = address!("000000000022D473030F116dDEE9F6B43aC78BA3");
/// x402's `exact` Permit2 proxy.
pub const X402_EXACT_PROXY: Address = address!("402085c248EeA27D92E8b30b2C58ed07f9E20001");
/// x402's `upto` Permit2 proxy.
pub const X402_UPTO_PROXY: Address = address!("4020A4f3b7b90ccA423B9fabCc0CE57C6C240002");

/// The OPG each dev account holds at genesis: one million.
pub fn genesis_opg() -> U256 {
    U256::from(1_000_000u64) * U256::from(10u64).pow(U256::from(18u64))
}

sol! {
    /// The OPG token: an ERC-20.
    interface IOPGToken {
        function initialize(address[] holders, uint256 amount) external;
        function balanceOf(address owner) external view returns (uint256);
        function allowance(address owner, address spender) external view returns (uint256);
        function approve(address spender, uint256 value) external returns (bool);
        function transfer(address to, uint256 value) external returns (bool);
        function name() external view returns (string);
        function decimals() external view returns (uint8);
    }

    /// Permit2's signature-transfer half.
    interface IPermit2 {
        struct TokenPermissions { address token; uint256 amount; }
        struct PermitTransferFrom { TokenPermissions permitted; uint256 nonce; uint256 deadline; }
        function nonceBitmap(address owner, uint256 word) external view returns (uint256);
        function DOMAIN_SEPARATOR() external view returns (bytes32);
    }

    /// x402's `exact` proxy.
    interface IX402ExactProxy {
        struct Witness { address to; uint256 validAfter; }
        function settle(IPermit2.PermitTransferFrom permit, address owner, Witness witness, bytes signature) external;
    }

    /// x402's `upto` proxy.
    interface IX402UptoProxy {
        struct Witness { address to; address facilitator; uint256 validAfter; }
        function settle(IPermit2.PermitTransferFrom permit, uint256 amount, address owner, Witness witness, bytes signature) external;
    }
}

fn code(hex: &str) -> Bytes {
    alloy_primitives::hex::decode(hex.trim()).unwrap_or_default().into()
}

/// The predeploys of payments: `(address, runtime bytecode)`.
pub fn payment_codes() -> Vec<(Address, Bytes)> {
    static CODES: LazyLock<Vec<(Address, Bytes)>> = LazyLock::new(|| {
        vec![
            (OPG_TOKEN, code(include_str!("OPGToken.hex"))),
            (PERMIT2, code(include_str!("Permit2.hex"))),
            (X402_EXACT_PROXY, code(include_str!("X402ExactPermit2Proxy.hex"))),
            (X402_UPTO_PROXY, code(include_str!("X402UptoPermit2Proxy.hex"))),
        ]
    });
    CODES.clone()
}

/// The system call that mints [`genesis_opg`] to each of `holders`.
pub fn opg_setup(holders: Vec<Address>) -> Vec<SystemCall> {
    vec![SystemCall::new(OPG_TOKEN, IOPGToken::initializeCall { holders, amount: genesis_opg() })]
}
