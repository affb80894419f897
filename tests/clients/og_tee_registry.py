"""OpenGradient's own SDK (`opengradient`, installed from PyPI, unmodified)
reads the TEE registry of a running `nml devnet`, as `og.LLM` does to find an
enclave: `TEERegistry.get_active_tees_by_type`, then its `tee_verify` helpers.

Usage: python og_tee_registry.py <rpc-url> <nml_getTees JSON>
"""

import json
import sys

from opengradient.client.tee_registry import TEERegistry
from opengradient.client.tee_verify import pem_from_der, tee_id_for_key

REGISTRY = "0x703cB174AEadB35D611858369B4b1111dC9Abda6"
VALIDATOR = 1


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def main():
    url, listed = sys.argv[1], json.loads(sys.argv[2])
    expected = {t["teeId"].lower(): t for t in listed}
    registry = TEERegistry(url, REGISTRY)
    tees = registry.get_active_tees_by_type(VALIDATOR)
    check(len(tees) == len(expected), f"{len(tees)} active validator TEEs, the devnet runs {len(expected)}")
    for tee in tees:
        tee_id = "0x" + tee.tee_id.removeprefix("0x").lower()
        check(tee_id in expected, f"{tee_id} is one of the devnet's enclaves")
        want = expected[tee_id]
        check(tee.signing_public_key_der.hex() == want["publicKey"][2:], "signing key")
        check(tee.tls_cert_der.hex() == want["tlsCertificate"][2:], "pinned TLS certificate")
        check(tee.pcr_hash.lower() == want["pcrHash"].lower(), "pcrHash")
        check(tee.endpoint and int(tee.payment_address, 16) != 0, "endpoint and payment address")
        check(tee_id_for_key(pem_from_der(tee.signing_public_key_der)) == tee_id, "the SDK derives the same TEE id")
    check(registry.get_active_tees_by_type(0) == [], "no LLM proxy yet")
    print("OG OK")


if __name__ == "__main__":
    main()
