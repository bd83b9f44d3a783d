// Orders the wasm's function bodies for gzip, after wasm-pack (issue 11, SIZE-NOTES.md step 28).
// gzip finds repeats only within its 32 KB window, and the code section is about 100 KB in the
// order the linker left it. Sorted by their bytes, functions that begin alike (the same locals,
// the same first calls: drop glue, closure shims, the export shims) sit side by side, and the
// gzipped wasm is about 1.3 % smaller. Greedier orders (each next function the one gzip codes
// cheapest after the last few KB, by shingles or by deflate itself) were measured and lost.
//
// This tool only names each function by its rank in that order (a `name` section, replacing any);
// binaryen moves the bodies and drops the names again, as `./dev.sh build` runs it:
//   node tools/order-functions.mjs DIR
//   wasm-opt DIR/vigil_bg.wasm --reorder-functions-by-name -Oz … --strip-debug -o DIR/vigil_bg.wasm
// (the second -Oz after the move saves a little more and does not reorder). What a function does,
// its index in the table and every export stay as they were; only where its body sits changes.

import fs from "node:fs";
import path from "node:path";
import { Reader, importDesc, leb, sections as readSections } from "./wasm-binary.mjs";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node tools/order-functions.mjs DIR");
  process.exit(2);
}
const wasmPath = path.join(dir, "vigil_bg.wasm");

function fail(why) {
  console.error(`order-functions: ${dir}: ${why}`);
  process.exit(1);
}

const bytes = fs.readFileSync(wasmPath);
const sections = readSections(bytes, fail);
const isNames = (s) => s.id === 0 && new Reader(s.body, 0, fail).name() === "name";

// Imported functions come first in the index space.
let importedFunctions = 0;
for (const s of sections.filter((s) => s.id === 2)) {
  const r = new Reader(s.body, 0, fail);
  for (let n = r.u32(); n > 0; n--) {
    r.name(); // module
    r.name(); // field
    const kind = r.u8();
    importDesc(r, kind);
    if (kind === 0) importedFunctions++;
  }
}
const bodies = [];
for (const s of sections.filter((s) => s.id === 10)) {
  const r = new Reader(s.body, 0, fail);
  for (let n = r.u32(); n > 0; n--) bodies.push(r.bytes(r.u32()));
}
if (bodies.length === 0) fail("no code section");

const order = bodies.map((_, i) => i).sort((a, b) => Buffer.compare(bodies[a], bodies[b]) || a - b);
const digits = String(bodies.length).length;
const rankOf = new Array(bodies.length);
order.forEach((fn, rank) => (rankOf[fn] = rank));
// A name map lists functions by index, as the spec asks.
const map = [...leb(bodies.length)];
rankOf.forEach((rank, fn) => {
  const name = Buffer.from("f" + String(rank).padStart(digits, "0"));
  map.push(...leb(importedFunctions + fn), ...leb(name.length), ...name);
});
const payload = [...leb(4), ...Buffer.from("name"), 1, ...leb(map.length), ...map];
const out = [bytes.subarray(0, 8)];
for (const s of sections.filter((s) => !isNames(s))) {
  out.push(Buffer.from([s.id, ...leb(s.body.length)]), s.body);
}
out.push(Buffer.from([0, ...leb(payload.length), ...payload])); // replaces any name section
fs.writeFileSync(wasmPath, Buffer.concat(out));
