"""Checks the TEE attestations of a running `nml devnet` with Python's own
cryptography (the `cryptography` package, OpenSSL underneath, and `cbor2`),
independently of nml's code: each enclave's attestation document (COSE_Sign1,
ES384, its certificate chain to the devnet root, the keys it binds, its
PCRs), the enclave's key and id, the hashes, the RSA-PSS signature, and the
verifier precompile at 0x…0900 answering through web3.py.

Usage: python python_tee_verify.py <rpc-url> <DynamicFeePool.json> <volatility.onnx> <model-cid> <tees>
"""

import hashlib
import json
import sys
import time

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from eth_abi import encode as abi_encode
from eth_hash.auto import keccak
from web3 import Web3

VERIFIER = Web3.to_checksum_address("0x0000000000000000000000000000000000000900")
VERIFIER_ABI = [
    {
        "type": "function",
        "name": "verifyRSAPSS",
        "stateMutability": "view",
        "inputs": [
            {"name": "publicKeyDER", "type": "bytes"},
            {"name": "messageHash", "type": "bytes32"},
            {"name": "signature", "type": "bytes"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
    },
    {
        "type": "function",
        "name": "verifyAttestation",
        "stateMutability": "view",
        "inputs": [
            {"name": "attestationDocument", "type": "bytes"},
            {"name": "signingPublicKey", "type": "bytes"},
            {"name": "tlsCertificate", "type": "bytes"},
            {"name": "rootCertificate", "type": "bytes"},
        ],
        "outputs": [{"name": "valid", "type": "bool"}, {"name": "pcrHash", "type": "bytes32"}],
    },
]
RELAY = Web3.to_checksum_address("0x0000000000000000000000000000000000005E77")
RELAY_ABI = [
    {
        "type": "function",
        "name": "isSettledInBatch",
        "stateMutability": "view",
        "inputs": [
            {"name": "proof", "type": "bytes32[]"},
            {"name": "root", "type": "bytes32"},
            {"name": "leaf", "type": "bytes32"},
        ],
        "outputs": [{"name": "", "type": "bool"}],
    }
]
PSS = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def rpc(w3, method, params):
    answer = w3.provider.make_request(method, params)
    check("error" not in answer, f"{method}: {answer.get('error')}")
    return answer["result"]


def signed_by(der, message, signature):
    key = serialization.load_der_public_key(der)
    try:
        key.verify(signature, message, PSS, hashes.SHA256())
        return True
    except InvalidSignature:
        return False


def check_document(tee):
    """The Nitro checks, written from AWS's description of the format."""
    doc = cbor2.loads(bytes.fromhex(tee["attestationDocument"][2:]))
    if isinstance(doc, cbor2.CBORTag):
        doc = doc.value
    protected, _unprotected, payload, signature = doc
    check(cbor2.loads(protected) == {1: -35}, "ES384")
    body = cbor2.loads(payload)
    check(body["digest"] == "SHA384", "digest")
    root = bytes.fromhex(tee["rootCertificate"][2:])
    check(body["cabundle"][0] == root, "the bundle starts at the devnet root")
    chain = [x509.load_der_x509_certificate(c) for c in body["cabundle"] + [body["certificate"]]]
    for issuer, cert in zip(chain, chain[1:]):
        issuer.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
        check(cert.issuer == issuer.subject, "issuer names chain")
    r, s = int.from_bytes(signature[:48], "big"), int.from_bytes(signature[48:], "big")
    to_sign = cbor2.dumps(["Signature1", protected, b"", payload])
    chain[-1].public_key().verify(encode_dss_signature(r, s), to_sign, ec.ECDSA(hashes.SHA384()))
    check(body["public_key"] == bytes.fromhex(tee["publicKey"][2:]), "the document binds the signing key")
    tls = bytes.fromhex(tee["tlsCertificate"][2:])
    check(body["user_data"] == hashlib.sha256(tls).digest(), "the document binds the TLS certificate")
    pcr_hash = keccak(body["pcrs"][0] + body["pcrs"][1] + body["pcrs"][2])
    check(pcr_hash == bytes.fromhex(tee["pcrHash"][2:]), "pcrHash = keccak256(pcr0 ‖ pcr1 ‖ pcr2)")
    return pcr_hash


def main():
    url, artifact_path, onnx_path, cid, tees = sys.argv[1:6]
    w3 = Web3(Web3.HTTPProvider(url))
    w3.eth.default_account = w3.eth.accounts[0]
    with open(onnx_path, "rb") as f:
        rpc(w3, "nml_registerModel", ["0x" + f.read().hex(), cid])
    with open(artifact_path) as f:
        artifact = json.load(f)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"]["object"])
    deployed = w3.eth.wait_for_transaction_receipt(factory.constructor().transact(), timeout=60)
    pool = w3.eth.contract(address=deployed.contractAddress, abi=artifact["abi"])
    tx = pool.functions.update([10**17] * 30).transact()
    receipt = w3.eth.wait_for_transaction_receipt(tx, timeout=60)
    check(receipt.status == 1, "update status")

    listed = rpc(w3, "nml_getTees", [])
    enclaves = {bytes.fromhex(t["teeId"][2:]): bytes.fromhex(t["publicKey"][2:]) for t in listed}
    check(len(enclaves) == int(tees), f"{len(enclaves)} enclaves, asked for {tees}")
    verifier = w3.eth.contract(address=VERIFIER, abi=VERIFIER_ABI)
    for tee in listed:
        pcr_hash = check_document(tee)
        args = [bytes.fromhex(tee[k][2:]) for k in ("attestationDocument", "publicKey", "tlsCertificate", "rootCertificate")]
        valid, answered = verifier.functions.verifyAttestation(*args).call()
        check(valid and answered == pcr_hash, "0x…0900 accepts the document and names its PCRs")
        other_root = bytes.fromhex(listed[-1 - listed.index(tee)]["tlsCertificate"][2:])
        valid, _ = verifier.functions.verifyAttestation(args[0], args[1], args[2], other_root).call()
        check(not valid, "0x…0900 refuses another root")
    for tee_id, der in enclaves.items():
        key = serialization.load_der_public_key(der)
        check(key.key_size == 2048, f"RSA-2048, got {key.key_size}")
        check(keccak(der) == tee_id, "teeId = keccak256(DER SubjectPublicKeyInfo)")

    [record] = rpc(w3, "nml_getInferenceReceipts", [tx.hex()])
    [attestation] = rpc(w3, "nml_getAttestations", [tx.hex()])
    check(record["mode"] == 2 and attestation["mode"] == 2, "a TEE-mode request")
    tee_id = bytes.fromhex(attestation["teeId"][2:])
    check(tee_id in enclaves, "signed by one of the devnet's enclaves")
    input_hash = bytes.fromhex(attestation["inputHash"][2:])
    output_hash = bytes.fromhex(attestation["outputHash"][2:])
    check(input_hash == bytes.fromhex(record["requestId"][2:]), "inputHash is the request id")
    check(output_hash == keccak(bytes.fromhex(record["rawOutput"][2:])), "outputHash is keccak256 of the output")
    timestamp = attestation["timestamp"]
    block = w3.eth.get_block(receipt.blockNumber)
    check(0 <= block.timestamp - timestamp <= 5, f"signed at {timestamp}, mined at {block.timestamp}")

    message = keccak(input_hash + output_hash + timestamp.to_bytes(32, "big"))
    signature = bytes.fromhex(attestation["signature"][2:])
    der = enclaves[tee_id]
    check(signed_by(der, message, signature), "the RSA-PSS signature verifies")
    forged = bytearray(signature)
    forged[7] ^= 1
    check(not signed_by(der, message, bytes(forged)), "a tampered signature does not")
    later = keccak(input_hash + output_hash + (timestamp + 1).to_bytes(32, "big"))
    check(not signed_by(der, later, signature), "another timestamp does not")
    for other_id, other in enclaves.items():
        if other_id != tee_id:
            check(not signed_by(other, message, signature), "another enclave's key does not")

    check(verifier.functions.verifyRSAPSS(der, message, signature).call() is True, "0x…0900 says yes")
    check(verifier.functions.verifyRSAPSS(der, message, bytes(forged)).call() is False, "0x…0900 says no to a forgery")
    check(verifier.functions.verifyRSAPSS(b"junk", message, signature).call() is False, "0x…0900 says no to junk")
    check_batch_settlement(w3, pool, tx, attestation)
    print(f"FIRST_TX 0x{tx.hex().removeprefix('0x')}")
    print(f"PCR_HASH {listed[0]['pcrHash']}")
    print("TEE OK")


def leaf_of(a):
    """OpenZeppelin StandardMerkleTree leaf of (teeId, inputHash, outputHash, signature, timestamp)."""
    values = [bytes.fromhex(a[k][2:]) for k in ("teeId", "inputHash", "outputHash", "signature")]
    encoded = abi_encode(["bytes32", "bytes32", "bytes32", "bytes", "uint256"], values + [a["timestamp"]])
    return keccak(keccak(encoded))


def check_batch_settlement(w3, pool, first_tx, first):
    """With --settle-after 1 --batch-size 2: a second result, one more block,
    and the relay posts both in one batch, whose root and proofs are
    recomputed here and checked on the relay contract."""
    check(first["settlement"]["status"] == "pending", f"in the trust gap: {first['settlement']}")
    second_tx = pool.functions.update([10**16] * 30).transact()
    check(w3.eth.wait_for_transaction_receipt(second_tx, timeout=60).status == 1, "second update")
    rpc(w3, "evm_mine", [])
    deadline = time.time() + 30
    while True:
        [a] = rpc(w3, "nml_getAttestations", [first_tx.hex()])
        [b] = rpc(w3, "nml_getAttestations", [second_tx.hex()])
        if a["settlement"]["status"] == b["settlement"]["status"] == "settled":
            break
        check(time.time() < deadline, f"settled within 30 s: {a['settlement']} {b['settlement']}")
        time.sleep(0.1)
    leaves = [leaf_of(a), leaf_of(b)]
    root = keccak(min(leaves) + max(leaves))
    for att, other in ((a, leaves[1]), (b, leaves[0])):
        s = att["settlement"]
        check(s["mode"] == "batch" and bytes.fromhex(s["merkleRoot"][2:]) == root, f"root {s['merkleRoot']}")
        check([bytes.fromhex(p[2:]) for p in s["proof"]] == [other], "the proof is the other leaf")
    relay = w3.eth.contract(address=RELAY, abi=RELAY_ABI)
    check(relay.functions.isSettledInBatch([leaves[1]], root, leaves[0]).call(), "the relay holds the root")
    check(not relay.functions.isSettledInBatch([leaves[0]], root, leaves[0]).call(), "a wrong proof fails")
    posting = w3.eth.get_transaction(a["settlement"]["txHash"])
    check(posting["to"] == RELAY, "posted to the relay")


if __name__ == "__main__":
    main()
