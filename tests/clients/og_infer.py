"""OpenGradient's own SDK (`opengradient`, installed from PyPI, unmodified)
runs on-chain inference on a running `nml devnet`: `og.Alpha.infer` sends a
transaction to the inference hub at 0x8383…6FaE and reads the model's output
from the hub's `InferenceResult` event, in VANILLA and TEE modes; the output
must equal what ONNX Runtime gives for the same input (run by the test and
passed in). The precompile's `ModelInferenceEvent` is in the same receipt.

Usage: python og_infer.py <rpc-url> <private-key> <model-id> <input JSON> <expected JSON>
"""

import json
import sys

import numpy as np
import opengradient as og
from web3 import Web3

PRECOMPILE = "0x00000000000000000000000000000000000000F4"


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
        served = [log for log in receipt["logs"] if log["address"].lower() == PRECOMPILE.lower()]
        check(len(served) == 1, f"{mode.name}: one ModelInferenceEvent, got {len(served)}")
    print("OG INFER OK")


if __name__ == "__main__":
    main()
