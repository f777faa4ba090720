/**
 * The bulk of RFC 1071's sum in WebAssembly SIMD: sixteen bytes a step, as eight 16-bit
 * words added pairwise into four 32-bit lanes. A packet's bytes are copied into the
 * module's memory first (one memcpy); even so a 1480-byte packet takes about 90 ns where
 * the best JavaScript loop over 32-bit words takes about 220 (issue 13: the checksum was
 * a sixth of a plain bulk transfer, summed twice per segment, on send and on receive).
 *
 * The module, in text form (its bytes are below, section by section):
 *
 *   (module
 *     (memory (export "mem") 1)                       ;; 64 KiB: the longest input
 *     (func (export "sum") (param $n i32) (result i32)  ;; $n: a multiple of 16
 *       (local $i i32) (local $acc v128)
 *       (block $done
 *         (loop $step
 *           (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
 *           (local.set $acc (i32x4.add (local.get $acc)
 *             (i32x4.extadd_pairwise_i16x8_u (v128.load (local.get $i)))))
 *           (local.set $i (i32.add (local.get $i) (i32.const 16)))
 *           (br $step)))
 *       (i32.add (i32.add (i32.add (i32x4.extract_lane 0 (local.get $acc))
 *                                  (i32x4.extract_lane 1 (local.get $acc)))
 *                         (i32x4.extract_lane 2 (local.get $acc)))
 *                (i32x4.extract_lane 3 (local.get $acc)))))
 *
 * WebAssembly memory is little-endian on every host, so the words are summed byte-swapped
 * and the folded total is swapped back once (RFC 1071 §2(B)). Bounds: 4096 steps at most,
 * each adding at most 2 × 65535 to a lane, so a lane stays below 2^30 and the four lanes'
 * total below 2^32 (read back unsigned).
 */
const MODULE = new Uint8Array([
  // Header: magic, version 1.
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  // Type section: one type, (i32) -> i32.
  0x01, 0x06, 0x01, 0x60, 0x01, 0x7f, 0x01, 0x7f,
  // Function section: one function of type 0.
  0x03, 0x02, 0x01, 0x00,
  // Memory section: one memory, at least 1 page.
  0x05, 0x03, 0x01, 0x00, 0x01,
  // Export section: "mem" (memory 0), "sum" (function 0).
  0x07, 0x0d, 0x02, 0x03, 0x6d, 0x65, 0x6d, 0x02, 0x00, 0x03, 0x73, 0x75, 0x6d, 0x00, 0x00,
  // Code section: one body of 0x42 bytes; locals: 1 i32 ($i), 1 v128 ($acc).
  0x0a, 0x44, 0x01, 0x42, 0x02, 0x01, 0x7f, 0x01, 0x7b,
  // block, loop
  0x02, 0x40, 0x03, 0x40,
  // br_if $done (i32.ge_u $i $n)
  0x20, 0x01, 0x20, 0x00, 0x4f, 0x0d, 0x01,
  // $acc = i32x4.add($acc, i32x4.extadd_pairwise_i16x8_u(v128.load align=16 $i))
  0x20, 0x02, 0x20, 0x01, 0xfd, 0x00, 0x04, 0x00, 0xfd, 0x7f, 0xfd, 0xae, 0x01, 0x21, 0x02,
  // $i += 16
  0x20, 0x01, 0x41, 0x10, 0x6a, 0x21, 0x01,
  // br $step, end loop, end block
  0x0c, 0x00, 0x0b, 0x0b,
  // lane 0 + lane 1 + lane 2 + lane 3
  0x20, 0x02, 0xfd, 0x1b, 0x00, 0x20, 0x02, 0xfd, 0x1b, 0x01, 0x6a, 0x20, 0x02, 0xfd, 0x1b, 0x02, 0x6a, 0x20,
  0x02, 0xfd, 0x1b, 0x03, 0x6a,
  // end function
  0x0b,
]);

/** Longest input the module's memory holds (one 64 KiB page). */
export const SIMD_SUM_MAX = 65536;

/**
 * RFC 1071's sum of `data` (at most SIMD_SUM_MAX bytes) in network byte order, folded to at
 * most 17 bits, as sum16 of it with no initial sum gives after folding; undefined where
 * WebAssembly SIMD is not available (sum16 then sums in JavaScript).
 */
export const simdSum16: ((data: Uint8Array) => number) | undefined = load();

/** What this file needs of the WebAssembly API (the workspace's TypeScript lib has no DOM types). */
interface WasmApi {
  validate(bytes: Uint8Array): boolean;
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: { mem: { buffer: ArrayBuffer }; sum: (n: number) => number } };
}

function load(): ((data: Uint8Array) => number) | undefined {
  const wasm = (globalThis as { WebAssembly?: WasmApi }).WebAssembly;
  if (wasm === undefined || !wasm.validate(MODULE)) return undefined;
  const { exports } = new wasm.Instance(new wasm.Module(MODULE));
  const memory = new Uint8Array(exports.mem.buffer);
  const sum = exports.sum;
  return (data: Uint8Array): number => {
    const n = data.length;
    memory.set(data);
    const whole = n & ~15;
    let acc = sum(whole) >>> 0;
    while (acc > 0xffff) acc = (acc & 0xffff) + (acc >>> 16);
    // Back to network byte order; then the last 0-15 bytes as big-endian words.
    let s = ((acc & 0xff) << 8) | (acc >>> 8);
    let j = whole;
    for (; j + 1 < n; j += 2) s += ((data[j] as number) << 8) | (data[j + 1] as number);
    if (j < n) s += (data[j] as number) << 8;
    return s;
  };
}
