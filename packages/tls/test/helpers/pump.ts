import type { TlsEvent, TlsOutput } from '../../src/connection.ts';

export interface Endpoint {
  receive(bytes: Uint8Array, now: number): TlsOutput;
}

/**
 * Move bytes between two sans-I/O endpoints until neither has anything to say. `chunk`
 * cuts every transfer into pieces of that size to exercise reassembly; `tap` may change
 * bytes in flight. Returns each side's events.
 */
export function pump(
  a: Endpoint,
  b: Endpoint,
  first: TlsOutput,
  opts: { chunk?: number; now?: number; tap?: (from: 'a' | 'b', bytes: Uint8Array) => Uint8Array } = {},
): { a: TlsEvent[]; b: TlsEvent[] } {
  const events = { a: [] as TlsEvent[], b: [] as TlsEvent[] };
  events.a.push(...first.events);
  let queue: { to: 'a' | 'b'; bytes: Uint8Array }[] = first.data.map((bytes) => ({
    to: 'b' as const,
    bytes,
  }));
  for (let steps = 0; queue.length > 0; steps++) {
    if (steps > 10_000) throw new Error('pump: no quiescence');
    const next: typeof queue = [];
    for (const { to, bytes: raw } of queue) {
      const bytes = opts.tap ? opts.tap(to === 'b' ? 'a' : 'b', raw) : raw;
      const target = to === 'a' ? a : b;
      const pieces: Uint8Array[] = [];
      const n = opts.chunk ?? bytes.length;
      for (let i = 0; i < bytes.length; i += Math.max(1, n))
        pieces.push(bytes.subarray(i, i + Math.max(1, n)));
      for (const p of pieces) {
        const out = target.receive(p, opts.now ?? 0);
        events[to].push(...out.events);
        for (const d of out.data) next.push({ to: to === 'a' ? 'b' : 'a', bytes: d });
      }
    }
    queue = next;
  }
  return events;
}

/** Deliver one side's output to the other and collect the result. */
export function deliver(to: Endpoint, out: TlsOutput, now = 0): TlsOutput {
  const data: Uint8Array[] = [];
  const events: TlsEvent[] = [];
  for (const d of out.data) {
    const o = to.receive(d, now);
    data.push(...o.data);
    events.push(...o.events);
  }
  return { data, events };
}
