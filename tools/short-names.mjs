// Shortens the names the wasm and its JS glue agree on, after wasm-pack (issue 11, SIZE-NOTES.md
// step 14). wasm-bindgen names every import `__wbg_<name>_<16 hex digits>` and every import
// carries its module's path; the hashes hardly compress, and each name is paid twice, in the
// wasm and in the glue. This renames, in both files at once:
//   - the glue's own imports (module "./vigil_bg.js"): to `a`, `b`, … (keys of its import object);
//   - every import module: to `0`, `1`, … (keys of the object passed to WebAssembly.instantiate;
//     a snippet keeps its real path in the glue's `import` lines and its real export names);
//   - every export but `memory`: to short names (`wasm.<name>` in the glue; the class and function
//     names a page uses are the glue's own and do not change; `init()` still resolves to the
//     exports, and their `memory` keeps its name, which pages read);
// and drops the custom sections (`producers`, `target_features`), which nothing reads.
//
// Usage: node tools/short-names.mjs DIR   (DIR holds vigil_bg.wasm, vigil.js, vigil_bg.wasm.d.ts)
// It checks its own work: the rewritten module must compile, every renamed import and module
// must have been found in the glue, no old import name may be left, and every `wasm.<name>` the
// glue uses must be an export of the new module; otherwise it exits non-zero and writes nothing.

import fs from "node:fs";
import path from "node:path";
import { Reader, encodeName, importDesc, leb, sections as readSections } from "./wasm-binary.mjs";

const dir = process.argv[2];
if (!dir) {
  console.error("usage: node tools/short-names.mjs DIR");
  process.exit(2);
}
const wasmPath = path.join(dir, "vigil_bg.wasm");
const gluePath = path.join(dir, "vigil.js");
const typesPath = path.join(dir, "vigil_bg.wasm.d.ts");
const GLUE_MODULE = "./vigil_bg.js";

function fail(why) {
  console.error(`short-names: ${dir}: ${why}`);
  process.exit(1);
}

// --- the wasm binary: tools/wasm-binary.mjs ----------------------------------------------------

// a, b, …, z, A, …, Z, aa, ab, … (never a JS keyword: all keywords are longer than two letters
// except `do`, `if`, `in`, which are skipped).
function* shortNames() {
  const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  for (const a of letters) yield a;
  for (const a of letters)
    for (const b of letters) {
      const s = a + b;
      if (s !== "do" && s !== "if" && s !== "in") yield s;
    }
  fail("more than 2,700 names");
}

const wasm = fs.readFileSync(wasmPath);
const sections = readSections(wasm, fail);
const header = [...wasm.subarray(0, 8)];

const moduleNames = new Map(); // old module path -> new
const importNames = new Map(); // old glue import name -> new
const exportNames = new Map(); // old export name -> new
const importNext = shortNames();
const exportNext = shortNames();

// A section that is a vector of entries, each rewritten by `entry(reader)` into bytes.
function rewriteVector(bytes, entry) {
  const r = new Reader(bytes, 0, fail);
  const count = r.u32();
  const out = leb(count);
  for (let i = 0; i < count; i++) out.push(...entry(r));
  return out;
}

function importEntry(r) {
  const module = r.name();
  const name = r.name();
  const kind = r.u8();
  const desc = importDesc(r, kind);
  if (!moduleNames.has(module)) moduleNames.set(module, String(moduleNames.size));
  if (module === GLUE_MODULE && !importNames.has(name)) importNames.set(name, importNext.next().value);
  const newName = module === GLUE_MODULE ? importNames.get(name) : name;
  return [...encodeName(moduleNames.get(module)), ...encodeName(newName), kind, ...desc];
}

function exportEntry(r) {
  const name = r.name();
  const kind = r.u8();
  const index = r.u32();
  // `memory` keeps its name: pages read it from what `init()` resolves to.
  const newName = name === "memory" ? name : exportNext.next().value;
  exportNames.set(name, newName);
  return [...encodeName(newName), kind, ...leb(index)];
}

const out = [Uint8Array.from(header)];
for (const s of sections) {
  if (s.id === 0) continue; // custom sections: producers, target_features
  const body =
    s.id === 2 ? rewriteVector(s.body, importEntry) : s.id === 7 ? rewriteVector(s.body, exportEntry) : s.body;
  out.push(Uint8Array.from([s.id, ...leb(body.length)]), Uint8Array.from(body));
}
const newWasm = Buffer.concat(out);
try {
  new WebAssembly.Module(newWasm);
} catch (e) {
  fail(`the rewritten module does not compile: ${e.message}`);
}

// --- the glue ---------------------------------------------------------------------------------

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
let glue = fs.readFileSync(gluePath, "utf8");
const replace = (pattern, to, what) => {
  let n = 0;
  glue = glue.replace(pattern, (...m) => {
    n++;
    return to(...m);
  });
  if (n === 0) fail(`${what} not found in vigil.js`);
};

// The import object: `function __wbg_get_imports() { … return { "./vigil_bg.js": import0, … } }`.
for (const [old, short] of importNames) {
  replace(new RegExp(`(\\n\\s+)${escape(old)}(: function)`, "g"), (_, a, b) => a + short + b, old);
}
for (const [old, short] of moduleNames) {
  replace(new RegExp(`(\\n\\s+)"${escape(old)}"(: import\\d+,)`, "g"), (_, a, b) => `${a}"${short}"${b}`, old);
}
for (const [old, short] of exportNames) {
  // The glue uses an export only as `wasm.<name>` (a call, or `wasm.memory.buffer`); it need
  // not use every export.
  glue = glue.replace(new RegExp(`\\bwasm\\.${escape(old)}\\b`, "g"), `wasm.${short}`);
}
for (const old of importNames.keys()) {
  if (new RegExp(`\\b${escape(old)}\\b`).test(glue)) fail(`${old} is still used in vigil.js`);
}
const exported = new Set(exportNames.values());
for (const [, name] of glue.matchAll(/\bwasm\.([A-Za-z_$][\w$]*)/g)) {
  if (!exported.has(name)) fail(`vigil.js uses wasm.${name}, which the rewritten module does not export`);
}

// The wasm module's own types, for bundlers that read them.
let types = fs.existsSync(typesPath) ? fs.readFileSync(typesPath, "utf8") : null;
if (types !== null) {
  for (const [old, short] of exportNames) {
    types = types.replace(new RegExp(`(export const )${escape(old)}(:)`, "g"), `$1${short}$2`);
  }
}

fs.writeFileSync(wasmPath, newWasm);
fs.writeFileSync(gluePath, glue);
if (types !== null) fs.writeFileSync(typesPath, types);
console.log(
  `short-names: ${dir}: ${importNames.size} imports, ${moduleNames.size} modules, ` +
    `${exportNames.size} exports renamed; wasm ${wasm.length} -> ${newWasm.length} bytes`,
);
