"""OpenGradient's confidential client (`og.ConfidentialLLM`, the SDK's
Oblivious HTTP path, unmodified) chats privately through `nml gateway
--register` on a devnet running Base's chain id:

- the gateway registered itself in the devnet's TEE registry over JSON-RPC,
  and the registry holds its TLS certificate and OHTTP key configuration
  (X25519 / HKDF-SHA256 / ChaCha20-Poly1305, the enclave's own signature
  checked by the registry), and `ConfidentialLLM` finds it there;
- a chat and a streaming chat are sealed to the enclave with HPKE, answered
  sealed back (one piece; chunked with a final marker), and the SDK verifies
  the enclave's signature before it returns anything;
- the relay pays: its x402 payment rides outside the sealed request (the
  gateway is priced), the relay's OPG goes to the gateway's payment address,
  and an unpaid relay gets 402 with the terms;
- a request sealed to another key, or altered on the way, is a 400; a sealed
  chat that is malformed is answered sealed, with its status inside.

Usage: python og_ohttp.py <devnet-url> <relay-key>
"""

import asyncio
import json
import os
import sys

os.environ["BASE_MAINNET_RPC"] = sys.argv[1]  # read by the SDK at import

import requests  # noqa: E402
from requests.adapters import HTTPAdapter  # noqa: E402
import opengradient as og  # noqa: E402
from opengradient.client.tee_ohttp import decrypt_response, encapsulate_request  # noqa: E402
from opengradient.client.tee_ohttp_client import RelayError  # noqa: E402
from opengradient.client.tee_registry import build_ssl_context_from_der  # noqa: E402
from web3 import Web3  # noqa: E402
from x402.http.utils import decode_payment_required_header, encode_payment_signature_header  # noqa: E402
from opg import ERC20, OPG  # noqa: E402

REGISTRY = "0x703cB174AEadB35D611858369B4b1111dC9Abda6"
MESSAGES = [{"role": "user", "content": "Tell no one: what does a devnet do?"}]


def same_id(a, b):
    return a.lower().removeprefix("0x") == b.lower().removeprefix("0x")


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


class Pinned(HTTPAdapter):
    """TLS that trusts only the certificate the registry pinned (as og.LLM does)."""

    def __init__(self, der):
        self.context = build_ssl_context_from_der(der)
        super().__init__()

    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = self.context
        kwargs["assert_hostname"] = False
        return super().init_poolmanager(*args, **kwargs)


def main(devnet, key):
    registry = og.TEERegistry(rpc_url=devnet, registry_address=REGISTRY)
    tee = registry.get_llm_tee_ohttp_config()
    check(tee is not None, "the registry names a gateway with an OHTTP key")
    config = tee.ohttp_config
    check((config.key_id, config.kem_id, config.kdf_id, config.aead_id) == (1, 0x20, 1, 3), f"suite {config}")
    check(len(config.public_key) == 32 and config.key_config[3:35] == config.public_key, "the key config holds the key")
    check(config.registered_at > 0, "registered")
    print("registry:", tee.endpoint, tee.tee_id, config.public_key.hex())

    session = requests.Session()
    session.mount("https://", Pinned(tee.tls_cert_der))
    url = tee.endpoint + "/api/v1/chat/ohttp"

    # The relay's payment: the gateway's terms (a 402 to an unpaid relay),
    # then a fresh x402 payload per request after a Permit2 approval.
    chat = json.dumps({"model": "claude-haiku-4-5", "messages": MESSAGES}).encode()
    probe = encapsulate_request(config.public_key, chat)
    unpaid = session.post(url, data=probe.wire, headers={"Content-Type": "message/ohttp-req"})
    check(unpaid.status_code == 402, f"unpaid: {unpaid.status_code} {unpaid.text}")
    required = decode_payment_required_header(unpaid.headers["PAYMENT-REQUIRED"])
    relay = og.LLM(private_key=key, rpc_url=devnet)
    relay.ensure_opg_approval(min_allowance=5)
    x402 = og.LLM._build_x402_client(key)

    def pay():
        payload = asyncio.run(x402.create_payment_payload(required))
        return {"PAYMENT-SIGNATURE": encode_payment_signature_header(payload)}

    web3 = Web3(Web3.HTTPProvider(devnet))
    token = web3.eth.contract(address=OPG, abi=ERC20)
    payer = web3.eth.account.from_key(key).address
    before = token.functions.balanceOf(payer).call()

    client = og.ConfidentialLLM(relay_url=tee.endpoint, rpc_url=devnet, registry_address=REGISTRY,
                                auth_headers=pay, session=session)
    check(client.relay_url == url, client.relay_url)
    out = client.chat(model="anthropic/claude-haiku-4-5", messages=MESSAGES, max_tokens=24)
    check(isinstance(out.content, str) and out.content, f"content: {out}")
    check(same_id(out.proof.tee_id, tee.tee_id), f"signed by {out.proof.tee_id}")
    print("private chat verified:", json.dumps(out.content))

    streamed = client.chat(model="anthropic/claude-haiku-4-5", messages=MESSAGES, max_tokens=24, stream=True)
    check(streamed.stream_frames and streamed.content == out.content, f"stream: {streamed}")
    check(same_id(streamed.proof.tee_id, tee.tee_id), "the stream is signed by the enclave")
    print("private stream verified:", len(streamed.stream_frames), "frames")

    paid = before - token.functions.balanceOf(payer).call()
    check(paid > 0, f"the relay paid for two chats: {paid}")
    print("the relay paid", paid)

    # What the gateway cannot open is a 400 in the clear.
    other = encapsulate_request(os.urandom(32), json.dumps({"model": "m", "messages": MESSAGES}).encode())
    refused = session.post(url, data=other.wire, headers={"Content-Type": "message/ohttp-req", **pay()})
    check(refused.status_code == 400, f"sealed to another key: {refused.status_code} {refused.text}")
    sealed = encapsulate_request(config.public_key, json.dumps({"model": "m", "messages": MESSAGES}).encode())
    altered = sealed.wire[:-1] + bytes([sealed.wire[-1] ^ 1])
    refused = session.post(url, data=altered, headers={"Content-Type": "message/ohttp-req", **pay()})
    check(refused.status_code == 400, f"altered: {refused.status_code} {refused.text}")

    # A malformed chat is answered sealed, its status inside.
    malformed = encapsulate_request(config.public_key, json.dumps({"model": "m"}).encode())
    answer = session.post(url, data=malformed.wire, headers={"Content-Type": "message/ohttp-req", **pay()})
    check(answer.status_code == 200, f"sealed error: {answer.status_code} {answer.text}")
    inner = json.loads(decrypt_response(malformed.response_secret, malformed.enc, answer.content))
    check(inner["status"] == 400 and "messages" in json.dumps(inner["body"]), f"inner: {inner}")

    # Through the client, an unpaid relay's refusal surfaces as the SDK's RelayError.
    unpaid_client = og.ConfidentialLLM.from_tee(tee.endpoint, tee, session=session)
    try:
        unpaid_client.chat(model="anthropic/claude-haiku-4-5", messages=MESSAGES)
        raise AssertionError("an unpaid relay was answered")
    except RelayError as e:
        check(e.status_code == 402, f"unpaid: {e}")
    print("OG OHTTP OK")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
