import type { TraceEvent } from '@stepwire/wire';

/**
 * A ladder: one line per packet that crossed the wire, in time order, with the state
 * changes and notes of each host between the packets that caused them.
 *
 *    time  dir     summary
 *   0.000  A→B     IPv4 198.18.0.1→198.18.0.2 ICMP echo request id=1 seq=1 len=84
 *   0.000  A       tcp CLOSED → SYN-SENT
 */
export interface LadderPacket {
  kind: 'packet';
  t: number;
  from: string;
  to: string;
  summary: string;
  /** Set when the link dropped it (loss, MTU, corruption detected at the receiver). */
  dropped?: string;
  /** The IP packet itself (for the layer tree of `demo --step`), when the ladder keeps it. */
  packet?: Uint8Array;
}

export interface LadderNote {
  kind: 'note';
  t: number;
  host: string;
  text: string;
  /** The layer that emitted it ('tcp', 'tls', 'ipv4', 'link', ...) and the rule it cites. */
  layer?: string;
  rfc?: string;
}

export type LadderLine = LadderPacket | LadderNote;

export function formatLadderLine(l: LadderLine): string {
  const time = (l.t / 1000).toFixed(3).padStart(7);
  if (l.kind === 'packet') {
    const dir = `${l.from}→${l.to}`.padEnd(6);
    const drop = l.dropped ? `  ✗ ${l.dropped}` : '';
    return `${time}  ${dir}  ${l.summary}${drop}`;
  }
  return `${time}  ${l.host.padEnd(6)}  · ${l.text}`;
}

export function ladderHeader(): string {
  return `${'time'.padStart(7)}  ${'dir'.padEnd(6)}  summary`;
}

/** The trace events a ladder shows as notes: state changes, handshake messages, drops. */
export function noteFor(e: TraceEvent): LadderNote | undefined {
  const note = (text: string): LadderNote => ({
    kind: 'note',
    t: e.t,
    host: e.host,
    text,
    layer: e.layer,
    ...(e.rfc ? { rfc: e.rfc } : {}),
  });
  if (e.state) return note(`${e.layer} ${e.state.from} → ${e.state.to}`);
  if (e.dir === 'drop') return note(`${e.layer} dropped: ${e.summary}`);
  // Messages inside a byte stream (TLS handshake messages): shown where they are written,
  // so a reader sees what the next segments carry.
  if (e.dir === 'out' && e.layer === 'tls') return note(`tls → ${e.summary}`);
  // QUIC packets (with their frames) and HTTP/3 frames: shown as they are built, so a reader
  // sees what the next datagram carries — several coalesced packets each get a line.
  if (e.dir === 'out' && (e.layer === 'quic' || e.layer === 'h3')) return note(`${e.layer} → ${e.summary}`);
  // Key-schedule steps are for the HTML view's TLS panel; the ladder keeps to what happened.
  if (e.fields?.keySchedule !== undefined) return undefined;
  if (e.dir === 'local') return note(`${e.layer} ${e.summary}`);
  return undefined;
}
