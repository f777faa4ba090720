/**
 * An incremental UTF-8 validator (RFC 3629 §4, the well-formed byte sequences table).
 * WebSocket text must be valid UTF-8 (RFC 6455 §5.6, §8.1), and a receiver should fail
 * as soon as a byte cannot continue a valid sequence, also when a code point is split
 * across fragments or TCP segments; so the validator keeps its state between chunks.
 */
export class Utf8Validator {
  /** Continuation bytes still expected in the current sequence. */
  private need = 0;
  /** Allowed range of the next continuation byte (narrowed after E0, ED, F0, F4). */
  private lo = 0x80;
  private hi = 0xbf;

  /** False as soon as a byte cannot be part of well-formed UTF-8. */
  update(bytes: Uint8Array): boolean {
    let { need, lo, hi } = this;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] as number;
      if (need > 0) {
        if (b < lo || b > hi) return false;
        need--;
        lo = 0x80;
        hi = 0xbf;
        continue;
      }
      if (b < 0x80) continue;
      if (b >= 0xc2 && b <= 0xdf) need = 1;
      else if (b === 0xe0) {
        need = 2;
        lo = 0xa0; // no overlong 3-byte forms
      } else if ((b >= 0xe1 && b <= 0xec) || b === 0xee || b === 0xef) need = 2;
      else if (b === 0xed) {
        need = 2;
        hi = 0x9f; // no surrogates (RFC 3629 §3)
      } else if (b === 0xf0) {
        need = 3;
        lo = 0x90; // no overlong 4-byte forms
      } else if (b >= 0xf1 && b <= 0xf3) need = 3;
      else if (b === 0xf4) {
        need = 3;
        hi = 0x8f; // nothing past U+10FFFF
      } else return false;
    }
    this.need = need;
    this.lo = lo;
    this.hi = hi;
    return true;
  }

  /** True when no sequence is left open (end of message). */
  get complete(): boolean {
    return this.need === 0;
  }

  reset(): void {
    this.need = 0;
    this.lo = 0x80;
    this.hi = 0xbf;
  }
}

export function isValidUtf8(bytes: Uint8Array): boolean {
  const v = new Utf8Validator();
  return v.update(bytes) && v.complete;
}
