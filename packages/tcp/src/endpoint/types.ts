import type { IpStack } from '@stepwire/ip';
import type { TcpConnectionOptions, TcpState } from '../connection/index.ts';
import type { TcpSegment } from '../segment.ts';
import type { TcpListener, TcpListenerStats } from './listener.ts';
import type { Tcb } from './tcb.ts';

// The endpoint's vocabulary, in a file of its own so that endpoint.ts and passive.ts
// (and the driver) share it without importing each other.

/** Connection options a Tcp applies to every connection unless a socket or listener says otherwise. */
export type TcpConnectionDefaults = Partial<
  Omit<TcpConnectionOptions, 'local' | 'remote' | 'iss' | 'trace' | 'hostName' | 'fastOpenServer'>
>;

export interface TcpEndpointOptions {
  connection?: TcpConnectionDefaults;
  /** Secret of the RFC 6528 ISN function; random by default. */
  isnSecret?: Uint8Array;
  /** Secret of the SYN cookie hash (RFC 4987 §3.6); random by default. */
  synCookieSecret?: Uint8Array;
  /** Key of the Fast Open cookie MAC (RFC 7413 §4.1.2); random by default. */
  fastOpenKey?: Uint8Array;
  /** Most connections kept in TIME-WAIT (Linux tcp_max_tw_buckets); beyond that a closing
   *  connection skips TIME-WAIT. Default 32768. */
  maxTimeWait?: number;
  /** How long a connection its socket gave up on may sit in FIN-WAIT-2 (Linux tcp_fin_timeout). Default 60 s. */
  finTimeout?: number;
  /** Ephemeral port range, inclusive (RFC 6335 §6 by default: 49152-65535). */
  ephemeralPorts?: [number, number];
}

/**
 * What the endpoint asks of its host's IP layer: its name, counters, trace bus and seeded
 * PRNG, and three questions about addresses. No clock, no send: an `IpStack` fits, and so
 * does a plain object in a test.
 */
export type EndpointIp = Pick<
  IpStack,
  'name' | 'counters' | 'trace' | 'prng' | 'isLocalAddress' | 'sourceFor' | 'mtuFor' | 'offloadsFor'
>;

/**
 * Where the endpoint's output goes. The driver implements it: it encodes and sends
 * segments, keeps one timer per connection and one accept callback per listener.
 * Segments and wake-ups are handed over in the order the endpoint makes them, at once:
 * a socket that hears an event may write before the next event is handled, and a
 * seeded run's ladder depends on that order.
 */
export interface EndpointSink {
  /** Send a segment from `src` to `dst` (`tcb` when it belongs to a connection; `ecn`: its codepoint). */
  transmit(src: string, dst: string, seg: TcpSegment, tcb: Tcb | undefined, ecn: number | undefined): void;
  /** Wake the connection at `at` (calling `TcpEndpoint.onTimeout`), replacing any earlier wake-up. */
  wake(tcb: Tcb, at: number): void;
  /** Forget the connection's wake-up (it left the table). */
  cancelWake(tcb: Tcb): void;
  /** The listener's accept queue gained a connection: call its onAcceptable soon. */
  acceptReady(l: TcpListener): void;
}

export function tupleKey(
  localAddr: string,
  localPort: number,
  remoteAddr: string,
  remotePort: number,
): string {
  return `${localAddr}|${localPort}|${remoteAddr}|${remotePort}`;
}

export interface TcpEndpointStats {
  connections: number;
  byState: Partial<Record<TcpState, number>>;
  listeners: TcpListenerStats[];
  /** Bytes held for the peer (queued or in flight) and for the application (unread). */
  sendBuffered: number;
  receiveBuffered: number;
}

/** Options of an active open. */
export interface TcpOpenOptions {
  localAddress?: string | undefined;
  localPort?: number | undefined;
  connection?: Partial<TcpConnectionOptions>;
  fastOpen?: boolean;
  /** Bytes for the SYN when a Fast Open cookie is cached; returned unsent otherwise. */
  takeSynData?: () => Uint8Array | undefined;
}
