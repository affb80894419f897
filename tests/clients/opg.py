"""The devnet's payment contracts as the client scripts address them: the
OPG token (its Base address), Permit2, and the slice of ERC-20 they call."""

OPG = "0xFbC2051AE2265686a469421b2C5A2D5462FbF5eB"
PERMIT2 = "0x000000000022D473030F116dDEE9F6B43aC78BA3"
ERC20 = [
    {"name": "balanceOf", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "allowance", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "address"}, {"name": "b", "type": "address"}],
     "outputs": [{"name": "", "type": "uint256"}]},
    {"name": "approve", "type": "function", "stateMutability": "nonpayable",
     "inputs": [{"name": "s", "type": "address"}, {"name": "v", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
]
