// The few pieces of the wasm binary format the build's tools read and write (short-names.mjs,
// order-functions.mjs): a reader of bytes and LEB128 numbers, LEB128 and name encoding, the
// module's sections, and an import's description. Every malformed input ends in `fail(why)`,
// which the calling tool provides (it reports and exits without writing anything).

export class Reader {
  constructor(bytes, at, fail) {
    this.b = bytes;
    this.at = at;
    this.fail = fail;
  }
  u8() {
    if (this.at >= this.b.length) this.fail("truncated wasm");
    return this.b[this.at++];
  }
  u32() {
    let result = 0;
    let shift = 0;
    for (;;) {
      const byte = this.u8();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) return result;
      shift += 7;
    }
  }
  bytes(n) {
    const out = this.b.subarray(this.at, this.at + n);
    if (out.length !== n) this.fail("truncated wasm");
    this.at += n;
    return out;
  }
  name() {
    return new TextDecoder().decode(this.bytes(this.u32()));
  }
}

export function leb(n) {
  const out = [];
  do {
    let byte = n & 0x7f;
    n = Math.floor(n / 128);
    if (n !== 0) byte |= 0x80;
    out.push(byte);
  } while (n !== 0);
  return out;
}

export function encodeName(s) {
  const b = new TextEncoder().encode(s);
  return [...leb(b.length), ...b];
}

/** The module's sections after its 8-byte header: `{ id, body }`, in order. */
export function sections(bytes, fail) {
  if (bytes.length < 8 || bytes.readUInt32LE(0) !== 0x6d736100) fail("not a wasm module");
  const r = new Reader(bytes, 8, fail);
  const out = [];
  while (r.at < bytes.length) {
    const id = r.u8();
    const size = r.u32();
    out.push({ id, body: r.bytes(size) });
  }
  return out;
}

/** Skips an import's description (function, table, memory, global or tag), returning its bytes. */
export function importDesc(r, kind) {
  const start = r.at;
  const limits = () => {
    const flags = r.u8();
    r.u32();
    if (flags & 1) r.u32();
  };
  switch (kind) {
    case 0: // function: type index
      r.u32();
      break;
    case 1: // table: reference type, limits
      r.u8();
      limits();
      break;
    case 2: // memory: limits
      limits();
      break;
    case 3: // global: value type, mutability
      r.u8();
      r.u8();
      break;
    case 4: // tag: attribute, type index
      r.u8();
      r.u32();
      break;
    default:
      r.fail(`unknown import kind ${kind}`);
  }
  return [...r.b.subarray(start, r.at)];
}
