"""OpenGradient's own SDK (`opengradient`, installed from PyPI, unmodified)
deploys and runs a price-history workflow on a running `nml devnet`: the SDK's
own `PriceHistoryInference` contract, whose `run()` calls the price-history
precompile at 0x…F5 (candles from the devnet's synthetic feed), then
`run_workflow`, `read_workflow_result`, `read_workflow_history`; with
scheduler parameters, the devnet's scheduler at 0x7179…8eF6 runs it after the
chain's time moves on.

Usage: python og_workflow.py <rpc-url> <private-key> <model-id> <input-name> <candles> <scheduled: 0|1>
"""

import sys
import time

import opengradient as og
from web3 import Web3


def check(condition, message):
    if not condition:
        raise AssertionError(f"check failed: {message}")


def main():
    url, key, model, input_name, candles, scheduled = sys.argv[1:7]
    alpha = og.Alpha(private_key=key, rpc_url=url, api_url=url)
    query = og.HistoricalInputQuery(
        base="ETH",
        quote="USD",
        total_candles=int(candles),
        candle_duration_in_mins=30,
        order=og.CandleOrder.ASCENDING,
        candle_types=[og.CandleType.OPEN, og.CandleType.HIGH, og.CandleType.LOW, og.CandleType.CLOSE],
    )
    params = og.SchedulerParams(frequency=60, duration_hours=1) if scheduled == "1" else None
    address = alpha.new_workflow(model, query, input_name, scheduler_params=params)
    check(Web3.is_address(address), f"deployed at {address}")

    result = alpha.run_workflow(address)
    check(len(result.numbers) > 0, f"run_workflow gave outputs: {result}")
    again = alpha.read_workflow_result(address)
    check(again.numbers.keys() == result.numbers.keys(), "read_workflow_result reads what run stored")
    history = alpha.read_workflow_history(address, 1)
    check(len(history) == 1, f"one result in the history, got {len(history)}")

    if scheduled == "1":
        web3 = Web3(Web3.HTTPProvider(url))
        web3.provider.make_request("evm_increaseTime", [120])
        web3.provider.make_request("evm_mine", [])
        deadline = time.time() + 60
        while time.time() < deadline:
            if len(alpha.read_workflow_history(address, 5)) >= 2:
                break
            web3.provider.make_request("evm_mine", [])
            time.sleep(0.2)
        check(len(alpha.read_workflow_history(address, 5)) >= 2, "the scheduler ran the workflow")
    print("OG WORKFLOW OK", list(result.numbers.keys()))


if __name__ == "__main__":
    main()
