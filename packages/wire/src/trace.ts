/**
 * Structured trace events. Every layer emits them; the CLI renders a ladder, tests
 * assert on them, the pcap writer keeps the raw bytes alongside.
 *
 * Cost when no one listens: emitters check `trace.enabled` before building an event.
 */
export type TraceDirection = 'in' | 'out' | 'drop' | 'local';

export interface TraceEvent {
  /** Milliseconds on the emitting host's clock. */
  t: number;
  host: string;
  /** 'link' | 'ipv4' | 'ipv6' | 'icmp' | 'udp' | 'tcp' | 'tls' | 'http' | ... */
  layer: string;
  dir: TraceDirection;
  /** One line a ladder can print, e.g. 'SYN seq=4096 win=65535 mss=1460'. */
  summary: string;
  /** Peer host name, when known, so a ladder can draw the arrow. */
  peer?: string;
  fields?: Record<string, unknown>;
  state?: { from: string; to: string };
  /** The rule that produced this event, e.g. 'RFC 9293 §3.10.7.4'. */
  rfc?: string;
  /** For drops: the counter name that was incremented. */
  reason?: string;
}

export type TraceListener = (e: TraceEvent) => void;

export class TraceBus {
  private listeners: TraceListener[] = [];

  get enabled(): boolean {
    return this.listeners.length > 0;
  }

  on(listener: TraceListener): () => void {
    this.listeners = [...this.listeners, listener];
    return () => {
      this.listeners = this.listeners.filter((l) => l !== listener);
    };
  }

  emit(e: TraceEvent): void {
    for (const l of this.listeners) l(e);
  }
}

/** A bus with no listeners ever, for components built without tracing. */
export const silentTrace = new TraceBus();

/** One named count, held by a hot path that increments it without looking its name up. */
export interface Counter {
  value: number;
}

/**
 * Named counters, e.g. drop reasons. Always on: counting is cheap and tests rely on it.
 * Each name maps to a Counter object, so an increment is one lookup (not a get and a set
 * of a number), and a layer that counts every packet holds its Counter and skips even
 * that (a string-keyed lookup per counter per packet was 2% of TCP's bulk profile).
 */
export class Counters {
  private readonly m = new Map<string, Counter>();
  inc(name: string, by = 1): void {
    const c = this.m.get(name);
    if (c === undefined) this.m.set(name, { value: by });
    else c.value += by;
  }
  /**
   * The Counter behind `name`, for incrementing in place. Taking it counts as a first
   * increment by 0 (the name shows in snapshot() from then on), so a hot path takes it
   * lazily, on the first event it counts: `(this.tx ??= counters.counter('tx')).value++`.
   */
  counter(name: string): Counter {
    let c = this.m.get(name);
    if (c === undefined) {
      c = { value: 0 };
      this.m.set(name, c);
    }
    return c;
  }
  get(name: string): number {
    return this.m.get(name)?.value ?? 0;
  }
  /** Sum of every counter whose name starts with prefix. */
  total(prefix = ''): number {
    let n = 0;
    for (const [k, c] of this.m) if (k.startsWith(prefix)) n += c.value;
    return n;
  }
  snapshot(): Record<string, number> {
    return Object.fromEntries(
      [...this.m].map(([k, c]) => [k, c.value] as const).sort(([a], [b]) => a.localeCompare(b)),
    );
  }
}

/**
 * Something dropped (a malformed packet, a segment no one wants, a send that failed):
 * counted always under `reason`, and traced as a 'drop' event with that reason when
 * someone listens — the event is only built then. Every layer drops through here, so a
 * drop reads the same in a ladder and in the counters whichever layer made it.
 */
export function countDrop(
  counters: Counters,
  trace: TraceBus,
  reason: string,
  event: () => Omit<TraceEvent, 'dir' | 'reason'>,
): void {
  counters.inc(reason);
  if (trace.enabled) trace.emit({ ...event(), dir: 'drop', reason });
}
