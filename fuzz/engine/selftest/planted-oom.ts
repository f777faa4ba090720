/** An input that allocates without bound (the engine must report memory and name the input). */
export function fuzz(d: Uint8Array): void {
  if (d.length >= 2 && d[0] === 0x4d) {
    if (d[1] === 0x4d) {
      const keep: number[][] = [];
      for (;;) keep.push(new Array(1 << 16).fill(keep.length));
    }
  }
}
