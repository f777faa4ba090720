/**
 * A bug behind five nested checks, one of them a 16-bit compare: blind random inputs would
 * need about 2^48 tries; coverage feedback (each level is a new edge) and the dictionary
 * (0x1234 is a literal here) find it in thousands. The engine's self-test.
 */
export function fuzz(d: Uint8Array): void {
  if (d.length >= 6 && d[0] === 0x46) {
    if (d[1] === 0x55) {
      if (d[2] === 0x5a) {
        if (((d[3]! << 8) | d[4]!) === 0x1234) {
          if (d[5] === 0x7f) throw new TypeError('planted bug reached');
        }
      }
    }
  }
}
