import { dissect, formatLadderLine, noteFor } from '@stepwire/sim';
import type { TraceBus } from '@stepwire/wire';
import type { TapDirection } from './session.ts';

/** The two ends of the TUN ladder: the kernel in the namespace, and our stack. */
export const KERNEL = 'kernel';
export const US = 'sw';

/** A tap for TunSession that prints each packet as a ladder line, every layer dissected. */
export function ladderTap(
  print: (line: string) => void,
): (dir: TapDirection, p: Uint8Array, t: number) => void {
  return (dir, packet, t) => {
    const [from, to] = dir === 'in' ? [KERNEL, US] : [US, KERNEL];
    print(formatLadderLine({ kind: 'packet', t, from, to, summary: dissect(packet) }));
  };
}

/** Print the stack's notes (drops, ICMP errors handed to sockets, state changes) between the packets. */
export function ladderNotes(trace: TraceBus, print: (line: string) => void): () => void {
  return trace.on((e) => {
    const n = noteFor(e);
    if (n) print(formatLadderLine({ ...n, host: US }));
  });
}
