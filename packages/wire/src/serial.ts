/**
 * 32-bit serial-number arithmetic (RFC 1982 with SERIAL_BITS = 32), as TCP uses for
 * sequence numbers (RFC 9293 §3.4). Comparisons are defined only when the two numbers
 * are less than 2^31 apart; the difference is taken as a signed 32-bit value.
 */
export const seqAdd = (a: number, n: number): number => (a + n) >>> 0;
/** a - b as a signed distance. */
export const seqDiff = (a: number, b: number): number => (a - b) | 0;
export const seqLt = (a: number, b: number): boolean => ((a - b) | 0) < 0;
export const seqLeq = (a: number, b: number): boolean => ((a - b) | 0) <= 0;
export const seqGt = (a: number, b: number): boolean => ((a - b) | 0) > 0;
export const seqGeq = (a: number, b: number): boolean => ((a - b) | 0) >= 0;
/** lo <= x < hi in sequence space. */
export const seqInWindow = (x: number, lo: number, hi: number): boolean => seqLeq(lo, x) && seqLt(x, hi);
export const seqMax = (a: number, b: number): number => (seqGt(a, b) ? a : b);
export const seqMin = (a: number, b: number): number => (seqLt(a, b) ? a : b);
