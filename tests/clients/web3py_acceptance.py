"""Drives a running `nml devnet` with web3.py, as a Python script would.

Usage: python web3py_acceptance.py <rpc-url> <full|state-write|state-read> <Counter.json> [expected-balance-wei]
"""

import json
import sys

from web3 import Web3
from web3.exceptions import ContractLogicError

KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ACCOUNT0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
STATE_PROBE = Web3.to_checksum_address("0x000000000000000000000000000000000000beef")


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def full(w3, fixture):
    check(w3.eth.chain_id == 31337, f"chain id {w3.eth.chain_id}")
    accounts = w3.eth.accounts
    check(len(accounts) == 10 and accounts[0] == ACCOUNT0, f"accounts {accounts[:1]}")

    # A transfer signed locally (EIP-1559 fees from the node), and one the node signs.
    account = w3.eth.account.from_key(KEY0)
    to = accounts[1]
    before = w3.eth.get_balance(to)
    base_fee = w3.eth.get_block("latest")["baseFeePerGas"]
    tip = w3.eth.max_priority_fee
    tx = {
        "to": to,
        "value": w3.to_wei(1, "ether"),
        "nonce": w3.eth.get_transaction_count(account.address),
        "gas": 21_000,
        "maxFeePerGas": 2 * base_fee + tip,
        "maxPriorityFeePerGas": tip,
        "chainId": 31337,
    }
    signed = account.sign_transaction(tx)
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction), timeout=30)
    check(receipt.status == 1, "transfer status")
    check(w3.eth.get_balance(to) == before + w3.to_wei(1, "ether"), "transfer balance")
    receipt = w3.eth.wait_for_transaction_receipt(w3.eth.send_transaction({"from": accounts[3], "to": to, "value": 5}))
    check(receipt.status == 1, "eth_sendTransaction status")

    # Deploy the solc-compiled contract from a dev account.
    factory = w3.eth.contract(abi=fixture["abi"], bytecode=fixture["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(5).transact({"from": accounts[0]}))
    check(receipt.status == 1 and receipt.contractAddress, "deploy")
    counter = w3.eth.contract(address=receipt.contractAddress, abi=fixture["abi"])

    # A state-changing call, its event in the receipt, eth_getLogs, and a filter.
    receipt = w3.eth.wait_for_transaction_receipt(counter.functions.increment(3).transact({"from": accounts[0]}))
    events = counter.events.Incremented().process_receipt(receipt)
    check(len(events) == 1 and events[0].args.newCount == 8, "event in receipt")
    logs = counter.events.Incremented.get_logs(from_block=0)
    check(len(logs) == 1 and logs[0].args.by == accounts[0], f"{len(logs)} logs from eth_getLogs")
    raw_logs = w3.eth.get_logs({"address": counter.address, "fromBlock": 0})
    check(len(raw_logs) == 1, "raw eth_getLogs")
    event_filter = counter.events.Incremented.create_filter(from_block="latest")
    w3.eth.wait_for_transaction_receipt(counter.functions.increment(2).transact({"from": accounts[0]}))
    entries = event_filter.get_new_entries()
    check(len(entries) == 1 and entries[0].args.newCount == 10, f"{len(entries)} filter entries")
    check(len(event_filter.get_all_entries()) >= 1, "filter logs")

    # A view and a revert reason.
    check(counter.functions.get().call() == 10, "view")
    try:
        counter.functions.increment(0).call({"from": accounts[0]})
        check(False, "increment(0) must revert")
    except ContractLogicError as error:
        check("by must be positive" in str(error), f"revert reason {error}")

    # Snapshot and revert.
    snapshot = w3.provider.make_request("evm_snapshot", [])["result"]
    w3.eth.wait_for_transaction_receipt(counter.functions.increment(1).transact({"from": accounts[0]}))
    check(counter.functions.get().call() == 11, "after increment")
    check(w3.provider.make_request("evm_revert", [snapshot])["result"] is True, "evm_revert")
    check(counter.functions.get().call() == 10, "after revert")


def state_write(w3):
    accounts = w3.eth.accounts
    tx = w3.eth.send_transaction({"from": accounts[4], "to": STATE_PROBE, "value": w3.to_wei(3, "ether")})
    w3.eth.wait_for_transaction_receipt(tx)
    print(f"BALANCE {w3.eth.get_balance(STATE_PROBE)}")


def state_read(w3, expected):
    balance = w3.eth.get_balance(STATE_PROBE)
    check(str(balance) == expected, f"balance after restart {balance}, expected {expected}")
    print(f"BALANCE {balance}")


def main():
    url, mode, fixture_path = sys.argv[1:4]
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
    with open(fixture_path) as f:
        fixture = json.load(f)
    if mode == "full":
        full(w3, fixture)
    elif mode == "state-write":
        state_write(w3)
    elif mode == "state-read":
        state_read(w3, sys.argv[4])
    else:
        raise SystemExit(f"unknown mode {mode}")
    print("OK")


if __name__ == "__main__":
    main()
