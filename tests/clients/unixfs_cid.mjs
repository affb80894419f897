// The ids IPFS's JavaScript UnixFS importer gives files, as `ipfs add` does:
// CIDv0 (dag-pb leaves) and CIDv1 (raw leaves), 256 KiB chunks, balanced
// layout with 174 links per node. Prints "<file> <v0> <v1>" per file.
// Usage: node unixfs_cid.mjs FILE...
import { readFileSync } from "node:fs";
import { importer } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import { MemoryBlockstore } from "blockstore-core/memory";

const common = { chunker: fixedSize({ chunkSize: 262144 }), layout: balanced({ maxChildrenPerNode: 174 }) };
async function cid(content, options) {
  for await (const entry of importer([{ content }], new MemoryBlockstore(), { ...common, ...options })) {
    return entry.cid.toString();
  }
}
for (const path of process.argv.slice(2)) {
  const content = readFileSync(path);
  const v0 = await cid(content, { cidVersion: 0, rawLeaves: false, leafType: "file" });
  const v1 = await cid(content, { cidVersion: 1, rawLeaves: true });
  console.log(`${path} ${v0} ${v1}`);
}
