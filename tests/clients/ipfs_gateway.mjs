// A local IPFS trustless gateway for `nml models pull`'s test: IPFS's own
// JavaScript UnixFS importer adds the given files (CIDv0 and CIDv1, as
// `ipfs add` does) to an in-memory blockstore, and a plain HTTP server answers
// `GET /ipfs/<cid>?format=raw` (or `Accept: application/vnd.ipld.raw`) with
// the block's bytes, 404 for an unknown block. With TAMPER=1 it flips a byte
// of every leaf it serves, as a lying gateway would.
// Prints "<file> <v0> <v1>" per file, then "listening <port>".
// Usage: node ipfs_gateway.mjs FILE...
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { importer } from "ipfs-unixfs-importer";
import { fixedSize } from "ipfs-unixfs-importer/chunker";
import { balanced } from "ipfs-unixfs-importer/layout";
import { MemoryBlockstore } from "blockstore-core/memory";
import { CID } from "multiformats/cid";

const store = new MemoryBlockstore();
const common = { chunker: fixedSize({ chunkSize: 262144 }), layout: balanced({ maxChildrenPerNode: 174 }) };
async function add(content, options) {
  for await (const entry of importer([{ content }], store, { ...common, ...options })) {
    return entry.cid.toString();
  }
}
for (const path of process.argv.slice(2)) {
  const content = readFileSync(path);
  const v0 = await add(content, { cidVersion: 0, rawLeaves: false, leafType: "file" });
  const v1 = await add(content, { cidVersion: 1, rawLeaves: true });
  console.log(`${path} ${v0} ${v1}`);
}
const tamper = process.env.TAMPER === "1";
const server = createServer(async (req, res) => {
  const url = new URL(req.url, "http://gateway");
  const match = url.pathname.match(/^\/ipfs\/([^/]+)$/);
  const raw = url.searchParams.get("format") === "raw" || (req.headers.accept ?? "").includes("application/vnd.ipld.raw");
  if (!match || !raw) {
    res.writeHead(400).end("only trustless raw block requests");
    return;
  }
  try {
    const cid = CID.parse(match[1]);
    // blockstore-core 7 yields a block as chunks.
    const chunks = [];
    for await (const chunk of store.get(cid)) chunks.push(chunk);
    const block = Buffer.concat(chunks);
    if (tamper && cid.code === 0x55) block[0] ^= 1;
    res.writeHead(200, { "content-type": "application/vnd.ipld.raw" }).end(block);
  } catch (e) {
    res.writeHead(404).end(`no block: ${e.message}`);
  }
});
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
