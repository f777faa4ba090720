import type { Field, HttpParseError, RequestHead, ResponseHead } from './codec.ts';
import type { Framing, RequestInfo } from './framing.ts';
import type { Http1Limits, Http1Timeouts, TimeoutKind } from './limits.ts';
import type { Role } from './state.ts';

/**
 * What goes into and comes out of the sans-I/O connection (connection.ts): the events a
 * peer's bytes turn into, and the events a caller sends to be turned into bytes.
 */

export type Http1Event =
  | ({ type: 'request'; head: RequestHead } & RequestInfo)
  | { type: 'informational'; head: ResponseHead }
  | { type: 'response'; head: ResponseHead; framing: Framing }
  | { type: 'data'; data: Uint8Array }
  | { type: 'trailers'; fields: Field[] }
  | { type: 'end' }
  /** The peer accepted a switch (101, or 2xx to CONNECT): the rest is raw bytes of the new protocol. */
  | { type: 'upgrade'; head: ResponseHead; rest: Uint8Array }
  | { type: 'error'; error: HttpParseError }
  | { type: 'timeout'; kind: TimeoutKind }
  /** The peer closed its sending side. */
  | { type: 'closed' };

export type Http1SendEvent =
  | { type: 'request'; head: RequestHead }
  | { type: 'informational'; head: ResponseHead }
  | { type: 'response'; head: ResponseHead }
  | { type: 'data'; data: Uint8Array }
  | { type: 'end'; trailers?: readonly Field[] };

export interface Http1ConnectionOptions {
  role: Role;
  limits?: Partial<Http1Limits>;
  timeouts?: Partial<Http1Timeouts>;
  /** Time of the connection's start, for the first request's headers timeout. */
  now?: number;
  /**
   * Complete limits and timeouts that the caller shares among its connections and never
   * writes (a server's, merged with the defaults once): taken as they are, where `limits`
   * and `timeouts` are merged with the defaults into a copy per connection (a client's
   * driver writes its copy).
   */
  shared?: { limits: Http1Limits; timeouts: Http1Timeouts };
}
