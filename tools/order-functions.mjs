// Orders the wasm's function bodies for gzip, after wasm-pack (issue 11, SIZE-NOTES.md step 28).
// gzip finds repeats only within its 32 KB window, and the code section is about 100 KB in the
// order the linker left it. Sorted by their bytes, functions that begin alike (the same locals,
// the same first calls: drop glue, closure shims, the export shims) sit side by side, and the
// gzipped wasm is about 2 % smaller. Greedier orders (each next function the one gzip codes
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
let at = 8;
function u32() {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (at >= bytes.length) fail("truncated wasm");
    const byte = bytes[at++];
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7;
  }
}
function skip(n) {
  at += n;
}
function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

// Sections, the count of imported functions (they come first in the index space) and the bodies.
let importedFunctions = 0;
const bodies = [];
const kept = [bytes.subarray(0, 8)];
while (at < bytes.length) {
  const start = at;
  const id = bytes[at++];
  const size = u32();
  const content = at;
  const end = at + size;
  if (id === 0) {
    const nameLength = u32();
    const name = bytes.subarray(at, at + nameLength).toString();
    if (name === "name") {
      at = end;
      continue; // replaced below
    }
  }
  if (id === 2) {
    for (let n = u32(); n > 0; n--) {
      skip(u32()); // module
      skip(u32()); // field
      const kind = bytes[at++];
      if (kind === 0) {
        u32();
        importedFunctions++;
      } else if (kind === 1) {
        at++;
        if (bytes[at++] & 1) u32();
        u32();
      } else if (kind === 2) {
        if (bytes[at++] & 1) u32();
        u32();
      } else if (kind === 3) {
        at += 2;
      } else if (kind === 4) {
        at++;
        u32();
      } else {
        fail(`unknown import kind ${kind}`);
      }
    }
  }
  if (id === 10) {
    at = content;
    for (let n = u32(); n > 0; n--) {
      const length = u32();
      bodies.push(bytes.subarray(at, at + length));
      at += length;
    }
  }
  kept.push(bytes.subarray(start, end));
  at = end;
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
kept.push(Buffer.from([0, ...leb(payload.length), ...payload]));
fs.writeFileSync(wasmPath, Buffer.concat(kept));
