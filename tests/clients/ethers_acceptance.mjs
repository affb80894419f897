// Drives a running `nml devnet` with ethers v6, as a dapp or script would.
// Usage: node ethers_acceptance.mjs <rpc-url> <full|state-write|state-read> <Counter.json> [expected-balance-wei]
import { readFileSync } from "node:fs";
import { ContractFactory, JsonRpcProvider, Wallet, getAddress, parseEther } from "ethers";

const [url, mode, fixturePath, expected] = process.argv.slice(2);
const KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";
const ACCOUNT0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266";
const STATE_PROBE = "0x000000000000000000000000000000000000dEaD";

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

// ethers caches identical requests for 250 ms by default; a devnet mines
// faster than that, so a cached `eth_getTransactionCount` would hand out a
// stale nonce. Turn the cache off, as one does against any automining node.
const provider = new JsonRpcProvider(url, undefined, { pollingInterval: 50, cacheTimeout: -1 });
const wallet = new Wallet(KEY0, provider);

async function full() {
  const network = await provider.getNetwork();
  check(network.chainId === 31337n, `chain id ${network.chainId}`);
  const accounts = await provider.send("eth_accounts", []);
  check(accounts.length === 10, `${accounts.length} accounts`);
  check(getAddress(accounts[0]) === ACCOUNT0, `account 0 is ${accounts[0]}`);

  // An ETH transfer signed locally, and one signed by the node (eth_sendTransaction).
  const to = getAddress(accounts[1]);
  const before = await provider.getBalance(to);
  const tx = await wallet.sendTransaction({ to, value: parseEther("1.5") });
  const receipt = await tx.wait();
  check(receipt.status === 1, "transfer status");
  check((await provider.getBalance(to)) === before + parseEther("1.5"), "transfer balance");
  const nodeSigner = await provider.getSigner(2);
  const tx2 = await nodeSigner.sendTransaction({ to, value: 7n });
  check((await tx2.wait()).status === 1, "eth_sendTransaction status");

  // Deploy the solc-compiled contract.
  const fixture = JSON.parse(readFileSync(fixturePath, "utf8"));
  const factory = new ContractFactory(fixture.abi, fixture.bytecode, wallet);
  const counter = await factory.deploy(5n);
  await counter.waitForDeployment();
  const address = await counter.getAddress();
  check((await provider.getCode(address)).length > 2, "deployed code");

  // A state-changing call and its event.
  const incremented = await (await counter.increment(3n)).wait();
  check(incremented.status === 1, "increment status");
  const parsed = incremented.logs.map((l) => counter.interface.parseLog(l)).filter(Boolean);
  check(parsed.length === 1 && parsed[0].args.newCount === 8n, "event in receipt");

  // The event through eth_getLogs, through the contract's query, and through a filter.
  const topic = counter.interface.getEvent("Incremented").topicHash;
  const logs = await provider.getLogs({ address, topics: [topic], fromBlock: 0 });
  check(logs.length === 1, `${logs.length} logs from eth_getLogs`);
  const queried = await counter.queryFilter("Incremented", 0);
  check(queried.length === 1 && queried[0].args.by === ACCOUNT0, "queryFilter");
  const filterId = await provider.send("eth_newFilter", [{ address, topics: [topic] }]);
  await (await counter.increment(2n)).wait();
  const changes = await provider.send("eth_getFilterChanges", [filterId]);
  check(changes.length === 1, `${changes.length} filter changes`);
  check(counter.interface.parseLog(changes[0]).args.newCount === 10n, "filter log content");

  // A view, and a revert reason ethers decodes.
  check((await counter.get()) === 10n, "view");
  try {
    await counter.increment.staticCall(0n);
    check(false, "increment(0) must revert");
  } catch (e) {
    check(e.reason === "by must be positive", `revert reason ${e.reason}`);
  }

  // Snapshot and revert.
  const snapshot = await provider.send("evm_snapshot", []);
  await (await counter.increment(1n)).wait();
  check((await counter.get()) === 11n, "after increment");
  check((await provider.send("evm_revert", [snapshot])) === true, "evm_revert");
  check((await counter.get()) === 10n, "after revert");
}

async function stateWrite() {
  const tx = await wallet.sendTransaction({ to: STATE_PROBE, value: parseEther("2.25") });
  await tx.wait();
  console.log(`BALANCE ${await provider.getBalance(STATE_PROBE)}`);
}

async function stateRead() {
  const balance = await provider.getBalance(STATE_PROBE);
  check(balance.toString() === expected, `balance after restart ${balance}, expected ${expected}`);
  console.log(`BALANCE ${balance}`);
}

try {
  if (mode === "full") await full();
  else if (mode === "state-write") await stateWrite();
  else if (mode === "state-read") await stateRead();
  else throw new Error(`unknown mode ${mode}`);
  console.log("OK");
  provider.destroy();
} catch (e) {
  console.error(e);
  process.exit(1);
}
