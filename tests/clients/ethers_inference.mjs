// The LANGUAGE.md example (examples/quickstart), compiled by `nml build`, run
// end to end with real inference on a running `nml devnet`, driven by ethers v6.
// Usage: node ethers_inference.mjs <rpc-url> <DynamicFeePool.json> <volatility.onnx> <model-cid>
import { readFileSync } from "node:fs";
import { Contract, ContractFactory, JsonRpcProvider, Wallet, hexlify } from "ethers";

const [url, artifactPath, onnxPath, cid] = process.argv.slice(2);
const KEY0 = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80";

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}

const provider = new JsonRpcProvider(url, undefined, { pollingInterval: 50, cacheTimeout: -1 });
const wallet = new Wallet(KEY0, provider);

// The model the contract names, registered under its hub id.
const info = await provider.send("nml_registerModel", [hexlify(readFileSync(onnxPath)), cid]);
check(info.id === cid, `registered as ${info.id}`);
const models = await provider.send("nml_listModels", []);
const listed = models.find((m) => m.id === cid);
check(listed && listed.inputs[0].type === "float32[1, 30]", `listed: ${JSON.stringify(listed)}`);

const artifact = JSON.parse(readFileSync(artifactPath, "utf8"));
const factory = new ContractFactory(artifact.abi, artifact.bytecode.object, wallet);
const pool = await factory.deploy();
await pool.waitForDeployment();
check((await pool.fee()) === 3000n, "initial fee");

// Returns of 0.1 (18 decimals): volatility sqrt(mean(r^2)) = 0.1 > 0.05 → high fee.
const tx = await pool.update(Array(30).fill(10n ** 17n));
const receipt = await tx.wait();
check(receipt.status === 1, "update status");
check((await pool.fee()) === 10000n, `fee after a volatile hour: ${await pool.fee()}`);
const event = receipt.logs.map((l) => pool.interface.parseLog(l)).find((e) => e && e.name === "FeeUpdated");
check(event && event.args.fee === 10000n, "FeeUpdated event");
const vol = event.args.vol;
// float32 holds 0.1 as 0.100000001490116…: compare to 1 part in 10^6.
check(vol > 999999n * 10n ** 11n && vol < 1000001n * 10n ** 11n, `vol ${vol} ≈ 0.1 at 18 decimals`);

const records = await provider.send("nml_getInferenceReceipts", [tx.hash]);
check(records.length === 1, `${records.length} inference records`);
const [record] = records;
check(record.model === cid && record.mode === 2, `model and TEE mode: ${JSON.stringify(record)}`);
check(record.success && record.output.numbers[0].name === "vol", "decoded output");
check(["preExecuted", "cached"].includes(record.served), `served ${record.served}`);

// A calm hour: returns of 0.01 → the low fee again.
const calm = await (await pool.update(Array(30).fill(10n ** 16n))).wait();
check(calm.status === 1 && (await pool.fee()) === 3000n, "fee after a calm hour");

// The LLM call is answered by the devnet's embedded model (eth_call runs it
// at once), the same answer every time at temperature 0.
const mood = await pool.mood.staticCall();
check(typeof mood === "string" && mood.length > 0, `mood(): ${JSON.stringify(mood)}`);
check((await pool.mood.staticCall()) === mood, "the same answer again");

const status = await provider.send("nml_mempoolStatus", []);
check(status.inferencesRun >= 2, `status ${JSON.stringify(status)}`);
console.log("OK");
