"""OpenGradient's own SDK (`opengradient`, installed from PyPI, unmodified)
talks to a running `nml gateway`: `og.LLM.from_url(...)` sends a chat, a
completion and a streaming chat; every answer's signature is checked with
the SDK's own `tee_verify` against the key the gateway publishes at
/signing-key — the request hash recomputed by the SDK from what it sent,
the output hash from what it received. The canonical form of a raw chat
(the SDK's `build_inner_request`) must hash to the gateway's
`tee_request_hash`, and bad input gets the status the clients expect. A
second gateway, started with `--tee-fault wrong-output`, signs another
output than it returns: the SDK's verification refuses its answers.

Usage: python og_gateway.py <gateway-url> <private-key> <faulty-gateway-url>
"""

import asyncio
import json
import sys

import httpx
import opengradient as og
from opengradient.client.tee_verify import (
    build_inner_request,
    response_content_for_hash,
    tee_id_for_key,
    verify_response,
)

MODEL = "openai/gpt-4.1-2025-04-14"


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def verify(canonical, body, content, pem):
    """The SDK's verification of one answer; raises on any mismatch."""
    return verify_response(canonical_request=canonical, response_body=body, response_content=content, signing_key_pem=pem)


async def main(url, key, faulty):
    key_info = httpx.get(url + "/signing-key").json()
    pem = key_info["public_key_pem"]
    tee_id = tee_id_for_key(pem)
    check(tee_id.lower() == key_info["tee_id"].lower(), f"tee id {tee_id} vs {key_info['tee_id']}")

    # A raw chat, verified field for field as the SDK's chat app does.
    body = {
        "model": "gpt-4.1-2025-04-14",
        "messages": [
            {"role": "developer", "content": "Answer in one word."},
            {"role": "user", "content": [{"type": "text", "text": "Which chain? é"}]},
        ],
        "max_tokens": 24,
        "temperature": 0,
        "stop": ["\n"],
        "tool_choice": "none",
    }
    wire, canonical = build_inner_request(body)
    raw = httpx.post(url + "/v1/chat/completions", json=wire, timeout=60)
    check(raw.status_code == 200, f"raw chat: {raw.status_code} {raw.text}")
    answer = raw.json()
    proof = verify(canonical, answer, response_content_for_hash(answer), pem)
    check(proof.tee_id.lower() == tee_id.lower(), "the raw chat's tee id")
    print("raw chat verified:", json.dumps(answer["choices"][0]["message"]["content"]))

    llm = og.LLM.from_url(private_key=key, llm_server_url=url)
    messages = [{"role": "user", "content": "Say something about the devnet."}]

    # chat() through the SDK's own client and x402 HTTP stack.
    out = await llm.chat(model=MODEL, messages=messages, max_tokens=30, temperature=0.0)
    content = out.chat_output["content"]
    check(isinstance(content, str) and content, f"chat output: {out}")
    check(out.finish_reason in ("stop", "length"), f"finish reason {out.finish_reason}")
    sent = {"model": MODEL.split("/")[1], "messages": messages, "max_tokens": 30, "temperature": 0.0}
    _, canonical = build_inner_request(sent)
    signed = {
        "tee_signature": out.tee_signature,
        "tee_timestamp": out.tee_timestamp,
        "tee_id": tee_id,
        # verify_response recomputes both hashes from what was sent and
        # received; the signature only verifies if the gateway signed those.
        "tee_request_hash": proof_hash(canonical),
        "tee_output_hash": output_hash(content),
    }
    verify(canonical, signed, content, pem)
    print("sdk chat verified:", json.dumps(content))

    # completion()
    done = await llm.completion(model=MODEL, prompt="The devnet", max_tokens=12, temperature=0.0)
    check(isinstance(done.completion_output, str) and done.completion_output, f"completion: {done}")
    check(done.tee_signature and done.tee_timestamp, "the completion is signed")
    print("sdk completion:", json.dumps(done.completion_output))

    # A streaming chat: content chunks, then a final chunk with the signature.
    stream = await llm.chat(model=MODEL, messages=messages, max_tokens=30, temperature=0.0, stream=True)
    text, final = "", None
    async for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
        if chunk.is_final:
            final = chunk
    check(final is not None and final.tee_signature, "the stream ends with a signed chunk")
    check(text == content, f"the stream says what the chat said: {text!r} vs {content!r}")
    signed_stream = dict(signed, tee_signature=final.tee_signature, tee_timestamp=final.tee_timestamp)
    verify(canonical, signed_stream, text, pem)
    print("sdk stream verified")

    # A tampered answer fails the SDK's verification.
    try:
        verify(canonical, signed, content + "!", pem)
        raise AssertionError("a tampered answer verified")
    except Exception as e:  # VerificationError
        check("hash mismatch" in str(e), f"tamper: {e}")

    # Bad input.
    bad = httpx.post(url + "/v1/chat/completions", content=b"{not json", timeout=30)
    check(bad.status_code == 400 and "not JSON" in bad.json()["error"]["message"], f"bad json: {bad.text}")
    role = httpx.post(url + "/v1/chat/completions", json={"model": "m", "messages": [{"role": "robot", "content": "x"}]})
    check(role.status_code == 400 and "unknown message role" in role.text, f"bad role: {role.text}")
    big = httpx.post(url + "/v1/completions", content=b"x" * (2 * 1024 * 1024), timeout=30)
    check(big.status_code == 413, f"too large: {big.status_code}")
    missing = httpx.get(url + "/v1/models")
    check(missing.status_code == 404, f"unknown path: {missing.status_code}")
    await llm.close()

    # An enclave that signs another output than it returns is caught.
    faulty_pem = httpx.get(faulty + "/signing-key").json()["public_key_pem"]
    wire, canonical = build_inner_request(body)
    wrong = httpx.post(faulty + "/v1/chat/completions", json=wire, timeout=60)
    check(wrong.status_code == 200, f"faulty gateway: {wrong.status_code}")
    try:
        verify(canonical, wrong.json(), response_content_for_hash(wrong.json()), faulty_pem)
        raise AssertionError("a wrong-output signature verified")
    except Exception as e:
        check("output hash mismatch" in str(e), f"wrong output: {e}")
    print("OG GATEWAY OK")


def proof_hash(canonical):
    from opengradient.client.tee_verify import canonical_request_bytes
    from eth_hash.auto import keccak

    return keccak(canonical_request_bytes(canonical)).hex()


def output_hash(content):
    from eth_hash.auto import keccak

    return keccak(content.encode("utf-8")).hex()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
