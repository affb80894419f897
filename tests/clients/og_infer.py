"""OpenGradient's own SDK (`opengradient`, installed from PyPI, unmodified)
runs on-chain inference on a running `nml devnet`: `og.Alpha.infer` sends a
transaction to the inference hub at 0x8383…6FaE and reads the model's output
from the hub's `InferenceResult` event, in VANILLA and TEE modes; the output
must equal what ONNX Runtime gives for the same input (run by the test and
passed in). The precompile's `ModelInferenceEvent` is in the same receipt,
and the SDK's fallback — the node's result API, asked by the event's
inference id — answers the same output; an unknown id is an HTTP 404.

Usage: python og_infer.py <rpc-url> <private-key> <model-id> <input JSON> <expected JSON>
"""

import json
import sys

import numpy as np
import opengradient as og
from opengradient.client._conversions import convert_to_model_output
from web3 import Web3
from web3.logs import DISCARD

PRECOMPILE = "0x00000000000000000000000000000000000000F4"
HUB = "0x8383C9bD7462F12Eb996DD02F78234C0421A6FaE"


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def main():
    url, key, model, inputs, expected = sys.argv[1:6]
    inputs, expected = json.loads(inputs), json.loads(expected)
    alpha = og.Alpha(private_key=key, rpc_url=url, api_url=url)
    web3 = Web3(Web3.HTTPProvider(url))
    for mode in (og.InferenceMode.VANILLA, og.InferenceMode.TEE):
        result = alpha.infer(model, mode, inputs)
        for name, want in expected.items():
            got = np.asarray(result.model_output[name], dtype=np.float32)
            want = np.asarray(want, dtype=np.float32)
            check(got.shape == want.shape, f"{mode.name} {name}: shape {got.shape} != {want.shape}")
            check(np.array_equal(got, want), f"{mode.name} {name}: {got.tolist()} != {want.tolist()}")
        receipt = web3.eth.get_transaction_receipt(result.transaction_hash)
        precompile = web3.eth.contract(address=Web3.to_checksum_address(PRECOMPILE), abi=alpha.precompile_abi)
        served = precompile.events.ModelInferenceEvent().process_receipt(receipt, errors=DISCARD)
        check(len(served) == 1, f"{mode.name}: one ModelInferenceEvent, got {len(served)}")
        inference_id = served[0]["args"]["inferenceID"]
        from_node = convert_to_model_output(alpha._get_inference_result_from_node(inference_id, mode))
        for name, want in expected.items():
            got = np.asarray(from_node[name], dtype=np.float32)
            check(np.array_equal(got, np.asarray(want, dtype=np.float32)), f"{mode.name} {name} from the node: {got}")
    try:
        alpha._get_inference_result_from_node("0x" + "ab" * 32, og.InferenceMode.VANILLA)
        check(False, "an unknown inference id is refused")
    except RuntimeError as e:
        check("HTTP 404" in str(e), f"unknown id: {e}")
    # The hub's LLM functions, through the SDK's own `inference.abi` (the SDK
    # has no Python wrapper for them): answered by the devnet's embedded model.
    account = web3.eth.account.from_key(key)
    hub = web3.eth.contract(address=Web3.to_checksum_address(HUB), abi=alpha.inference_abi)
    request = (0, "meta-llama/Llama-3.1-8B-Instruct", "The devnet ", 16, [], 0)
    tx = hub.functions.runLLMCompletion(request).build_transaction(
        {"from": account.address, "nonce": web3.eth.get_transaction_count(account.address, "pending"), "gas": 3_000_000}
    )
    tx_hash = web3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
    receipt = web3.eth.wait_for_transaction_receipt(tx_hash, timeout=60)
    check(receipt["status"] == 1, "runLLMCompletion mined")
    answers = hub.events.LLMCompletionResult().process_receipt(receipt, errors=DISCARD)
    check(len(answers) == 1 and answers[0]["args"]["response"]["answer"], f"an answer: {answers}")
    print("OG INFER OK")


if __name__ == "__main__":
    main()
