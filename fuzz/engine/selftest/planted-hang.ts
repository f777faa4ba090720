/** An input that never returns (the engine must call it a hang and name the input). */
export function fuzz(d: Uint8Array): void {
  if (d.length >= 2 && d[0] === 0x42) {
    if (d[1] === 0x43) for (;;);
  }
}
