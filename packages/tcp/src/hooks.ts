import type { KeepaliveOptions, TcpConnection } from './connection.ts';

/**
 * Socket options that change after a connection exists (setNoDelay, setKeepAlive) and a
 * path MTU that shrinks under it (RFC 8201 / RFC 1191) need the connection's cooperation.
 * TcpConnection takes them only as construction options today, so these adapters use a
 * method of that name when the connection has one and otherwise reach the fields that the
 * construction options set. They live here, in one place, so that when TcpConnection grows
 * the methods (setNoDelay(on), setKeepalive(opts, now), setMss(mss)) nothing else changes.
 */

interface ConnectionInternals {
  setNoDelay?: (on: boolean) => void;
  setKeepalive?: (opts: KeepaliveOptions | false, now: number) => void;
  setMss?: (mss: number) => void;
  o?: { noDelay: boolean };
  keepalive?: Required<KeepaliveOptions> | undefined;
  keepaliveAt?: number | undefined;
  keepaliveProbes?: number;
  cc?: { cwnd: number; setMss(mss: number): void };
}

export function setConnectionNoDelay(conn: TcpConnection, on: boolean): void {
  const c = conn as unknown as ConnectionInternals;
  if (typeof c.setNoDelay === 'function') c.setNoDelay(on);
  else if (c.o) c.o.noDelay = on;
}

/** RFC 1122 §4.2.3.6: keep-alive on (probe after `idle` ms without traffic) or off. */
export function setConnectionKeepalive(
  conn: TcpConnection,
  opts: Required<KeepaliveOptions> | false,
  now: number,
): void {
  const c = conn as unknown as ConnectionInternals;
  if (typeof c.setKeepalive === 'function') {
    c.setKeepalive(opts, now);
    return;
  }
  c.keepalive = opts === false ? undefined : { ...opts };
  c.keepaliveProbes = 0;
  const running = conn.state === 'ESTABLISHED' || conn.state === 'CLOSE-WAIT';
  c.keepaliveAt = opts !== false && running ? now + opts.idle : undefined;
}

/** Lower the effective send MSS (a smaller path MTU was learned); never raises it. */
export function lowerConnectionMss(conn: TcpConnection, mss: number): boolean {
  const m = Math.max(64, Math.floor(mss));
  if (m >= conn.mss) return false;
  const c = conn as unknown as ConnectionInternals;
  if (typeof c.setMss === 'function') {
    c.setMss(m);
    return true;
  }
  conn.mss = m;
  const cc = c.cc;
  if (cc) {
    // setMss also restarts cwnd at the initial window, which a smaller path MTU does not call for.
    const cwnd = cc.cwnd;
    cc.setMss(m);
    cc.cwnd = Math.max(cc.cwnd, cwnd);
  }
  return true;
}
