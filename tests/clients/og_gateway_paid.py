"""OpenGradient's SDK (`opengradient`, unmodified, with its `x402` client)
pays `nml gateway` on a devnet running Base's chain id, where the OPG token,
Permit2 and x402's proxies are predeployed:

- `og.LLM(private_key, rpc_url)` finds the devnet's own gateway (`nml devnet
  --gateway`) in the devnet's TEE registry as an active LLM proxy, and
  reaches it over TLS pinned to the certificate registered there;

- an unpaid request gets HTTP 402 with the terms OpenGradient's gateway
  offers (`upto` on eip155:8453, OPG, Permit2, the facilitator's address);
- before the Permit2 approval the SDK's payment is refused and nothing moves;
- `ensure_opg_approval` approves OPG to Permit2 on the devnet;
- chat, completion and a streaming chat are paid: the payer's OPG goes to the
  gateway's payment address, at most the cap (`upto`), exactly the price
  (`exact`, a second gateway);
- the answers' hashes settle on the devnet's relay as X-SETTLEMENT-TYPE asks:
  one record (`individual`, named by `x-settlement-tx-hash`), a Merkle batch
  (`batch`, the default, posted when the batch fills or within seconds), or
  nothing (`private`);
- a payment used once is refused the second time, a payment for other terms
  or with a forged signature is refused, and a gateway whose backend is down
  answers 502 and charges nothing.

Usage: python og_gateway_paid.py <devnet-url> <upto-gateway> <exact-gateway> <down-gateway> <payer-key>
"""

import asyncio
import base64
import json
import os
import sys

os.environ["BASE_MAINNET_RPC"] = sys.argv[1]  # read by the SDK at import

import httpx  # noqa: E402
import opengradient as og  # noqa: E402
from eth_account import Account  # noqa: E402
from web3 import Web3  # noqa: E402
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header  # noqa: E402
from opg import ERC20, OPG, PERMIT2  # noqa: E402

RELAY = "0x0000000000000000000000000000000000005E77"
RELAY_ABI = [
    {"name": "isSettled", "type": "function", "stateMutability": "view",
     "inputs": [{"name": "a", "type": "bytes32"}, {"name": "b", "type": "bytes32"},
                {"name": "c", "type": "bytes32"}, {"name": "d", "type": "uint256"}],
     "outputs": [{"name": "", "type": "bool"}]},
]
BATCH_SETTLEMENT = Web3.keccak(text="BatchSettlement(bytes32,uint256,bytes)")
INDIVIDUAL_SETTLEMENT = Web3.keccak(text="IndividualSettlement(bytes32,bytes32,bytes32,uint256,address,bytes,bytes)")
MODEL = "anthropic/claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "What does a devnet do?"}]


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


async def expect_refused(call, words):
    try:
        await call
    except Exception as e:  # the SDK wraps the 402 in RuntimeError
        check(words in str(e), f"refused for {words!r}: {e}")
        return
    raise AssertionError(f"not refused ({words})")


async def main(devnet, upto, exact, down, key):
    w3 = Web3(Web3.HTTPProvider(devnet))
    check(w3.eth.chain_id == 8453, "the devnet runs Base's chain id")
    token = w3.eth.contract(address=OPG, abi=ERC20)
    payer = Account.from_key(key).address
    balance = lambda who: token.functions.balanceOf(Web3.to_checksum_address(who)).call()  # noqa: E731

    # The terms of an unpaid request (the registered gateway serves TLS; the
    # SDK pins its certificate, these raw calls do not check it).
    unpaid = httpx.post(upto + "/v1/chat/completions", json={"model": "m", "messages": MESSAGES}, verify=False)
    check(unpaid.status_code == 402, f"unpaid: {unpaid.status_code}")
    required = decode_payment_required_header(unpaid.headers["payment-required"])
    terms = required.accepts[0]
    check(terms.scheme == "upto" and terms.network == "eip155:8453", f"terms: {terms}")
    check(terms.asset.lower() == OPG.lower() and terms.extra["assetTransferMethod"] == "permit2", f"terms: {terms}")
    check("facilitatorAddress" in terms.extra, "upto names its facilitator")
    pay_to, cap = terms.pay_to, int(terms.amount)

    # Through the registry, as OpenGradient's users reach their gateway.
    llm = og.LLM(private_key=key, rpc_url=devnet)
    signing = httpx.get(upto + "/signing-key", verify=False).json()
    before = balance(payer)
    await expect_refused(llm.chat(model=MODEL, messages=MESSAGES, max_tokens=20), "permit2_allowance_required")
    check(balance(payer) == before, "nothing moved before the approval")

    approval = llm.ensure_opg_approval(min_allowance=5)
    check(approval.tx_hash, f"approval sent: {approval}")
    check(token.functions.allowance(payer, PERMIT2).call() >= 5 * 10**18, "Permit2 may spend 5 OPG")

    # Paid through the upto gateway: chat, completion, stream.
    received = balance(pay_to)
    out = await llm.chat(model=MODEL, messages=MESSAGES, max_tokens=20)
    check(out.chat_output["content"] and out.tee_signature, f"paid chat: {out}")
    check(out.tee_endpoint == upto, f"the registry's endpoint {out.tee_endpoint} is the gateway's {upto}")
    check(("0x" + out.tee_id.removeprefix("0x")).lower() == signing["tee_id"].lower(), f"tee id {out.tee_id}")
    charged = before - balance(payer)
    check(0 < charged <= cap, f"upto charged {charged} of a cap of {cap}")
    check(balance(pay_to) - received == charged, "the gateway's payment address got it")
    print(f"upto chat charged {charged} units")
    done = await llm.completion(model=MODEL, prompt="A devnet", max_tokens=10)
    check(done.completion_output and done.tee_signature, f"paid completion: {done}")
    stream = await llm.chat(model=MODEL, messages=MESSAGES, max_tokens=20, stream=True)
    chunks = [chunk async for chunk in stream]
    check(chunks and chunks[-1].tee_signature, "a paid stream ends signed")
    await llm.close()

    # Private: the payment alone settles; no record.
    private = await llm.chat(
        model=MODEL, messages=MESSAGES, max_tokens=20, x402_settlement_mode=og.x402SettlementMode.PRIVATE
    )
    check(private.data_settlement_transaction_hash is None, "a private answer posts nothing")

    # Batch (the default): the answers above settle in a Merkle batch within seconds.
    start_block = w3.eth.block_number
    batches = []
    for _ in range(40):
        batches = w3.eth.get_logs({"address": RELAY, "fromBlock": 0, "topics": [BATCH_SETTLEMENT.hex()]})
        if batches:
            break
        await asyncio.sleep(0.5)
    check(batches, f"a BatchSettlement on the relay since block {start_block}")
    print(f"batch settled in block {batches[-1]['blockNumber']}")

    # The exact gateway charges its price, exactly.
    exact_terms = decode_payment_required_header(
        httpx.post(exact + "/v1/completions", json={"model": "m", "prompt": "x"}).headers["payment-required"]
    ).accepts[0]
    check(exact_terms.scheme == "exact", f"exact terms: {exact_terms}")
    paying = og.LLM.from_url(private_key=key, llm_server_url=exact)
    start = balance(payer)
    out = await paying.chat(model=MODEL, messages=MESSAGES, max_tokens=20)
    check(out.chat_output["content"], "exact chat")
    check(start - balance(payer) == int(exact_terms.amount), "exact charged its price")
    await paying.close()

    # One payment, used twice; other terms; a forged signature.
    x402 = og.LLM._build_x402_client(key)
    body = {"model": "m", "prompt": "Once", "max_tokens": 5}
    required = decode_payment_required_header(
        httpx.post(exact + "/v1/completions", json=body).headers["payment-required"]
    )
    payload = await x402.create_payment_payload(required)
    header = encode_payment_signature_header(payload)
    individual = {"PAYMENT-SIGNATURE": header, "X-SETTLEMENT-TYPE": "individual"}
    first = httpx.post(exact + "/v1/completions", json=body, headers=individual, timeout=60)
    check(first.status_code == 200 and "payment-response" in first.headers, f"first use: {first.status_code} {first.text}")
    # Its hashes were settled individually, in the transaction the header names.
    answer = first.json()
    posted = w3.eth.get_transaction_receipt(first.headers["x-settlement-tx-hash"])
    check(any(log["topics"][0] == INDIVIDUAL_SETTLEMENT for log in posted["logs"]), "an IndividualSettlement record")
    relay = w3.eth.contract(address=RELAY, abi=RELAY_ABI)
    settled_record = relay.functions.isSettled(
        answer["tee_id"], answer["tee_request_hash"], answer["tee_output_hash"], answer["tee_timestamp"]
    ).call()
    check(settled_record, "the relay knows the answer's record")
    settled = json.loads(base64.b64decode(first.headers["payment-response"]))
    check(settled["success"] and settled["transaction"] == first.headers["x-processing-hash"], f"{settled}")
    check(w3.eth.get_transaction_receipt(settled["transaction"])["status"] == 1, "the settlement is mined")
    spent = balance(payer)
    again = httpx.post(exact + "/v1/completions", json=body, headers={"PAYMENT-SIGNATURE": header}, timeout=60)
    check(again.status_code == 402 and "permit2_nonce_used" in again.text, f"replay: {again.status_code} {again.text}")
    check(balance(payer) == spent, "nothing charged twice")

    def altered(change):
        data = json.loads(base64.b64decode(header))
        change(data)
        return base64.b64encode(json.dumps(data).encode()).decode()

    fresh = encode_payment_signature_header(await x402.create_payment_payload(required))
    header = fresh
    cheaper = altered(lambda d: d["accepted"].update(amount="1"))
    other = httpx.post(exact + "/v1/completions", json=body, headers={"PAYMENT-SIGNATURE": cheaper})
    check(other.status_code == 402 and "payment_requirements_mismatch" in other.text, f"other terms: {other.text}")
    forged = altered(lambda d: d["payload"]["permit2Authorization"].update(nonce="12345"))
    bad = httpx.post(exact + "/v1/completions", json=body, headers={"X-PAYMENT": forged})
    check(bad.status_code == 402 and "invalid_permit2_signature" in bad.text, f"forged: {bad.text}")
    garbage = httpx.post(exact + "/v1/completions", json=body, headers={"PAYMENT-SIGNATURE": "%%%"})
    check(garbage.status_code == 402 and "invalid_payload" in garbage.text, f"garbage: {garbage.text}")
    check(balance(payer) == spent, "refused payments charge nothing")

    # A backend that is down: 502, and the payment is not taken.
    down_required = decode_payment_required_header(
        httpx.post(down + "/v1/completions", json=body).headers["payment-required"]
    )
    down_header = encode_payment_signature_header(await x402.create_payment_payload(down_required))
    failed = httpx.post(down + "/v1/completions", json=body, headers={"PAYMENT-SIGNATURE": down_header}, timeout=60)
    check(failed.status_code == 502, f"backend down: {failed.status_code} {failed.text}")
    check(balance(payer) == spent, "a failed answer charges nothing")
    print("OG GATEWAY PAID OK")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:6]))
