"""x402's reference client (Coinbase's `x402` package from PyPI, unmodified,
through its public API) pays `nml gateway` on a devnet running Base's chain
id, in both of x402's EVM schemes over Permit2:

- before the payer approves OPG to Permit2 the gateway refuses the signed
  payment (402) and nothing moves;
- `upto` (the devnet's own gateway): the client signs the cap, the gateway
  charges what the answer used, at most the cap, and answers with a
  PAYMENT-RESPONSE the client decodes, naming a settlement mined on the
  devnet;
- `exact` (a standalone `nml gateway` whose project's `[gateway]` table
  asks for `exact`): the price exactly — 0.002 OPG, and 0.003 for the model
  priced apart.

The client's default spend controls admit only the package's built-in
assets (USDC and the like on known chains), so OPG on a devnet is let
through explicitly — a client setting, not a change to the package.

Usage: python x402_reference.py <devnet-url> <upto-gateway> <exact-gateway> <payer-key>
"""

import sys

import requests
from eth_account import Account
from web3 import Web3
from x402 import x402ClientSync
from x402.http import x402HTTPClientSync
from x402.http.clients import wrapRequestsWithPayment
from x402.mechanisms.evm.exact import ExactEvmScheme
from x402.mechanisms.evm.upto import UptoEvmScheme
from opg import ERC20, OPG, PERMIT2

CHAT = {"model": "claude-haiku-4-5", "messages": [{"role": "user", "content": "Who pays?"}], "max_tokens": 16}


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def main(devnet, upto, exact, key):
    account = Account.from_key(key)
    client = x402ClientSync()
    client.register("eip155:*", ExactEvmScheme(account))
    client.register("eip155:*", UptoEvmScheme(account))
    client.set_spend_controls(False)
    http = x402HTTPClientSync(client)
    session = wrapRequestsWithPayment(requests.Session(), client)

    web3 = Web3(Web3.HTTPProvider(devnet))
    token = web3.eth.contract(address=OPG, abi=ERC20)

    def balance():
        return token.functions.balanceOf(account.address).call()

    # Without the Permit2 approval: refused, nothing moves.
    before = balance()
    refused = session.post(upto + "/v1/chat/completions", json=CHAT, timeout=60)
    check(refused.status_code == 402, f"before the approval: {refused.status_code} {refused.text}")
    check("allowance" in refused.text, f"the refusal names the allowance: {refused.text}")
    check(balance() == before, "nothing moved before the approval")

    approve = token.functions.approve(PERMIT2, 10**24).build_transaction(
        {"from": account.address, "nonce": web3.eth.get_transaction_count(account.address), "chainId": web3.eth.chain_id}
    )
    sent = web3.eth.send_raw_transaction(account.sign_transaction(approve).raw_transaction)
    check(web3.eth.wait_for_transaction_receipt(sent)["status"] == 1, "the approval is mined")

    cases = (
        ("upto", upto, CHAT, None),
        ("exact", exact, dict(CHAT, model="gpt-4.1-2025-04-14"), 2 * 10**15),
        ("exact, priced apart", exact, CHAT, 3 * 10**15),
    )
    for name, url, chat, price in cases:
        before = balance()
        response = session.post(url + "/v1/chat/completions", json=chat, timeout=60)
        check(response.status_code == 200, f"{name}: {response.status_code} {response.text}")
        answer = response.json()
        check(answer["choices"][0]["message"]["content"] and answer.get("tee_signature"), f"{name}: {answer}")
        settled = http.get_payment_settle_response(response.headers.get)
        check(settled.success and settled.network == "eip155:8453", f"{name}: {settled}")
        receipt = web3.eth.get_transaction_receipt(settled.transaction)
        check(receipt["status"] == 1, f"{name}: the settlement {settled.transaction} is mined")
        charged = before - balance()
        check(charged > 0 and (price is None or charged == price), f"{name}: the payer paid {charged}")
        print(f"{name}: paid {charged}, settled in {settled.transaction}")
    print("X402 REFERENCE OK")


if __name__ == "__main__":
    main(*sys.argv[1:5])
