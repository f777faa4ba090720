/**
 * Types shared by the driver (tcp.ts) and the Node-shaped objects it owns (socket.ts,
 * server.ts). Sockets and servers see the driver only through these interfaces, so the
 * imports point one way: tcp.ts -> server.ts -> socket.ts -> types.ts -> endpoint/.
 */
import type { Clock } from '@stepwire/wire';
import type { TcpEndpoint as TcpAddress } from './connection/index.ts';
import type { TcpOpenOptions } from './endpoint/endpoint.ts';
import type { TcpListener, TcpListenOptions } from './endpoint/listener.ts';
import type { Tcb, TcbOwner } from './endpoint/tcb.ts';
import type { TcpSystemError } from './errors.ts';

export type { TcpOpenOptions } from './endpoint/endpoint.ts';
export type { Tcb, TcbOwner } from './endpoint/tcb.ts';

/** What a socket asks of its TCP driver. */
export interface TcpSocketHost {
  /** The driver's clock reading (the `now` of every call a socket makes into its connection). */
  now(): number;
  /** Where a socket arms its idle timer (counted with the stack's other TCP timers). */
  readonly timers: Clock;
  /** Active open; the socket becomes the connection's owner. */
  open(owner: TcbOwner, remote: TcpAddress, opts: TcpOpenOptions): Tcb | TcpSystemError;
  /** Re-arm the connection's wake-up after an option changed its timers (keep-alive). */
  arm(tcb: Tcb): void;
  /** The socket lets go of its connection, which finishes (or is reset) on its own. */
  orphan(tcb: Tcb): void;
}

/** What a server asks of its TCP driver. */
export interface TcpServerHost extends TcpSocketHost {
  listen(opts: TcpListenOptions): TcpListener | TcpSystemError;
  unlisten(l: TcpListener): void;
  /** Take the oldest connection of the listener's accept queue. */
  accept(l: TcpListener): Tcb | undefined;
}
