/**
 * Datagram Packetization Layer PMTU Discovery (RFC 9000 §14.3, RFC 8899): once the path is
 * validated, probe packets of PING and PADDING above 1200 bytes search, by halving the
 * interval, for the largest UDP payload the path carries, up to min(the peer's
 * max_udp_payload_size, ours); an acknowledged probe raises the size the connection sends
 * (RFC 8899 §5.2). Probe loss is no congestion signal (RFC 9000 §14.4). Full-size packets
 * lost while smaller ones get through mean a black hole: back to the base size (RFC 8899
 * §4.3), searched again after the raise interval.
 */

import { AEAD_TAG_LENGTH } from '../crypto/protect.ts';
import type { Frame } from '../frames/frame.ts';
import { effectiveTransportParameters } from '../transport-parameters.ts';
import type { ConnectionCore } from './core.ts';
import { addPadding, frameLength } from './frames.ts';
import { headerFor, headerLength, seal } from './send.ts';

/** RFC 8899 §5.2 states (DISABLED when our side allows nothing above the base). */
export type PmtuState = 'disabled' | 'base' | 'searching' | 'search-complete';
export type PmtuInput = 'path-validated' | 'converged' | 'black-hole' | 'raise-timer' | 'new-path';

interface PmtuRow {
  from: readonly PmtuState[];
  input: PmtuInput;
  to: PmtuState;
  rfc: string;
}

export const PMTU_TRANSITIONS: readonly PmtuRow[] = [
  { from: ['base'], input: 'path-validated', to: 'searching', rfc: 'RFC 8899 §5.2 (BASE → SEARCHING)' },
  { from: ['searching'], input: 'converged', to: 'search-complete', rfc: 'RFC 8899 §5.3.1' },
  {
    from: ['searching', 'search-complete'],
    input: 'black-hole',
    to: 'base',
    rfc: 'RFC 8899 §4.3, RFC 9000 §14.3',
  },
  {
    from: ['search-complete', 'base'],
    input: 'raise-timer',
    to: 'searching',
    rfc: 'RFC 8899 §5.1.1 PMTU_RAISE_TIMER',
  },
  { from: ['searching', 'search-complete'], input: 'new-path', to: 'base', rfc: 'RFC 9000 §14.3 (per path)' },
];

/** RFC 8899 §5.1.2 MAX_PROBES: a size is given up after this many lost probes. */
export const PMTU_MAX_PROBES = 3;
/** The search stops when the interval left is narrower than this (bytes). */
export const PMTU_SEARCH_STEP = 16;
/** Full-size packets lost in a row, none acknowledged in between, that mean a black hole. */
export const PMTU_BLACK_HOLE_LOSSES = 6;
/** RFC 8899 §5.1.1 PMTU_RAISE_TIMER: 600 s. */
export const PMTU_RAISE_INTERVAL = 600_000;

export class PathMtu {
  state: PmtuState;
  /** The UDP payload size the connection sends now (RFC 8899's PLPMTU). */
  current: number;
  /** Largest size known to work, and the largest not yet known to fail, of the search. */
  private low: number;
  private high: number;
  /** The probe in flight: its id and size. */
  outstanding: { id: number; size: number } | undefined = undefined;
  private lostAtSize = 0;
  private nextId = 0;
  /** Full-size (above the base) packets lost since one was last acknowledged. */
  private largeLosses = 0;
  /** When the search starts again (PMTU_RAISE_TIMER). */
  raiseAt: number | undefined = undefined;
  onTransition: ((from: PmtuState, to: PmtuState, rfc: string) => void) | undefined = undefined;

  constructor(
    /** RFC 8899's BASE_PLPMTU: the size every path must carry (at least 1200, RFC 9000 §14). */
    private readonly base: number,
    /** Our own limit: the first hop's MTU less the IP and UDP headers. */
    private readonly localMax: number,
    private readonly raiseInterval = PMTU_RAISE_INTERVAL,
  ) {
    this.current = base;
    this.low = base;
    this.high = base;
    this.state = localMax >= base + PMTU_SEARCH_STEP ? 'base' : 'disabled';
  }

  private go(input: PmtuInput): boolean {
    const row = PMTU_TRANSITIONS.find((r) => r.input === input && r.from.includes(this.state));
    if (!row) return false;
    const from = this.state;
    this.state = row.to;
    this.onTransition?.(from, row.to, row.rfc);
    return true;
  }

  /** The path is validated and the peer's limit known: start searching up to `target`. */
  start(peerMax: number): void {
    if (this.state !== 'base') return;
    if (this.raiseAt !== undefined) return;
    this.low = this.current;
    this.high = Math.min(this.localMax, peerMax);
    if (this.high - this.low < PMTU_SEARCH_STEP) return;
    this.lostAtSize = 0;
    this.tryTop = true;
    this.go('path-validated');
  }

  /** The size of the next probe, when one is due. */
  probeSize(): number | undefined {
    if (this.state !== 'searching' || this.outstanding) return undefined;
    if (this.high - this.low < PMTU_SEARCH_STEP) {
      this.go('converged');
      this.raiseAt = undefined;
      return undefined;
    }
    // The top of the interval first (a path that carries everything is found with one
    // probe), then halving it.
    return this.tryTop ? this.high : Math.ceil((this.low + this.high) / 2);
  }
  /** The next probe tries the top of the interval. */
  private tryTop = true;

  onProbeSent(size: number): number {
    const id = this.nextId++;
    this.outstanding = { id, size };
    return id;
  }

  /** RFC 8899 §5.2: an acknowledged probe confirms its size. */
  onProbeAcked(id: number): void {
    const o = this.outstanding;
    if (!o || o.id !== id) return;
    this.outstanding = undefined;
    this.low = o.size;
    this.current = Math.max(this.current, o.size);
    this.lostAtSize = 0;
    this.largeLosses = 0;
  }

  /** A lost probe: after MAX_PROBES at one size, everything from it up is out of the search. */
  onProbeLost(id: number): void {
    const o = this.outstanding;
    if (!o || o.id !== id) return;
    this.outstanding = undefined;
    if (++this.lostAtSize >= PMTU_MAX_PROBES) {
      this.high = o.size - 1;
      this.lostAtSize = 0;
      this.tryTop = false;
    }
  }

  /** A sent packet of `size` bytes (not a probe) was acknowledged. */
  onAcked(size: number): void {
    if (size > this.base) this.largeLosses = 0;
  }

  /**
   * A sent packet of `size` bytes (not a probe) was lost; returns true when that means a
   * black hole: several in a row above the base size, none of them acknowledged in between.
   */
  onLost(size: number, now: number): boolean {
    if (size <= this.base) return false;
    if (this.current <= this.base) return false;
    if (++this.largeLosses < PMTU_BLACK_HOLE_LOSSES) return false;
    this.largeLosses = 0;
    this.current = this.base;
    this.outstanding = undefined;
    this.raiseAt = now + this.raiseInterval;
    this.go('black-hole');
    return true;
  }

  /** PMTU_RAISE_TIMER: search again (the path may have changed). */
  onRaiseTimer(peerMax: number): void {
    this.raiseAt = undefined;
    this.low = this.current;
    this.high = Math.min(this.localMax, peerMax);
    this.lostAtSize = 0;
    this.tryTop = true;
    if (this.high - this.low >= PMTU_SEARCH_STEP) this.go('raise-timer');
  }

  /** RFC 9000 §14.3: a new path starts from the base size. */
  onNewPath(): void {
    if (this.state === 'disabled') return;
    this.current = this.base;
    this.outstanding = undefined;
    this.raiseAt = undefined;
    this.largeLosses = 0;
    this.go('new-path');
  }
}

/** The peer's max_udp_payload_size (RFC 9000 §18.2; 65527 when absent). */
function peerMaxUdpPayload(c: ConnectionCore): number {
  return effectiveTransportParameters(c.peerParams ?? {}).max_udp_payload_size;
}

/**
 * Whether probing may go on: the handshake confirmed and the path validated (RFC 9000
 * §14.3: probes go on a validated path); starts the search the first time.
 */
export function pmtuReady(c: ConnectionCore): boolean {
  const pmtu = c.pmtu;
  if (pmtu.state === 'disabled' || !c.hs.confirmed || !c.path.validated || !c.keys.oneRtt) return false;
  if (pmtu.state === 'base') pmtu.start(peerMaxUdpPayload(c));
  return true;
}

/** A probe: a 1-RTT packet of PING and PADDING exactly `size` bytes long (RFC 9000 §14.4). */
export function pmtuProbeDatagram(c: ConnectionCore, size: number, now: number): Uint8Array | undefined {
  const pmtu = c.pmtu;
  const space = c.spaces.ApplicationData;
  const header = headerFor(c, space);
  const overhead = headerLength(header) + AEAD_TAG_LENGTH;
  const frames: Frame[] = [{ type: 'PING' }];
  const pad = size - overhead - frameLength({ type: 'PING' });
  if (pad <= 0) return undefined;
  addPadding(frames, pad);
  const id = pmtu.onProbeSent(size);
  c.counters.inc('quic.pmtu.probe');
  return seal(
    c,
    {
      space,
      header,
      frames,
      items: [{ k: 'pmtu-probe', id, size }],
      size,
      ackEliciting: true,
      padded: true,
      pmtuProbe: true,
    },
    now,
  );
}

/** The raise timer, in pollTimeout (only while PMTUD runs). */
export function pmtuDeadline(c: ConnectionCore): number | undefined {
  return c.pmtu.raiseAt;
}

export function onPmtuTimeout(c: ConnectionCore, now: number): void {
  if (c.pmtu.raiseAt !== undefined && now >= c.pmtu.raiseAt) c.pmtu.onRaiseTimer(peerMaxUdpPayload(c));
}
