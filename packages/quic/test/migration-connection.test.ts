import { bytesEqual, TraceBus } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import type { QuicConnectionOptions } from '../src/connection/types.ts';
import { confirmedPair, connectionPair } from './connection-helpers.ts';

/**
 * QuicConnection.migrate (RFC 9000 §9.2): the client's side of a deliberate move, without a
 * network — its preconditions, the connection ID it switches to (§9.5), the PATH_CHALLENGE
 * the server answers (§8.2), and the congestion and RTT state a new path starts with (§9.4).
 */

function established(seed: number, extra: Partial<QuicConnectionOptions> = {}) {
  return confirmedPair(seed, extra);
}

/** Both connections, millisecond by millisecond, datagrams handed over at once. */
function step(a: QuicConnection, b: QuicConnection, from: number, until: number): void {
  for (let t = from; t <= until; t++) {
    for (const c of [a, b]) {
      const due = c.pollTimeout();
      if (due !== undefined && due <= t) c.handleTimeout(t);
    }
    for (let i = 0, any = true; any && i < 100; i++) {
      any = false;
      for (const [from, to] of [
        [a, b],
        [b, a],
      ] as const) {
        const d = from.pollTransmit(t);
        if (d) {
          to.handle(d, t);
          any = true;
        }
      }
    }
  }
}

describe('QuicConnection.migrate (client, RFC 9000 §9)', () => {
  it('switches to an unused connection ID, retires the old one, and the server answers its PATH_CHALLENGE', () => {
    const trace = new TraceBus();
    const lines: string[] = [];
    trace.on((e) => lines.push(`${e.host} ${e.dir} ${e.summary}`));
    const p = established(1, { trace });
    const before = p.client.remoteCid;
    p.client.migrate(p.now);
    expect(bytesEqual(p.client.remoteCid, before)).toBe(false);
    expect(p.client.counters.get('quic.path.client-migrated')).toBe(1);
    // The server routes the new ID to the same connection: it issued it (§5.1).
    expect(p.server.activeLocalCids.some((c) => bytesEqual(c, p.client.remoteCid))).toBe(true);
    lines.length = 0;
    step(p.client, p.server, p.now, p.now + 500);
    expect(lines.some((l) => /^client out .*PATH_CHALLENGE/.test(l))).toBe(true);
    expect(lines.some((l) => /^server out .*PATH_RESPONSE/.test(l))).toBe(true);
    expect(lines).toContain('client local path validated');
    expect(lines.some((l) => /^client out .*RETIRE_CONNECTION_ID/.test(l))).toBe(true);
    // The server forgot our old ID on RETIRE_CONNECTION_ID (§19.16) and issued another.
    expect(p.server.activeLocalCids.some((c) => bytesEqual(c, before))).toBe(false);
    expect(p.client.counters.get('quic.path.validation-failed')).toBe(0);
    expect(p.client.state).toBe('established');
  });

  it('resets congestion control and RTT for a new path, keeps them when only the port changed (§9.4)', () => {
    const moved = established(2);
    const srtt = moved.client.stats().srtt;
    expect(srtt).not.toBe(333);
    moved.client.migrate(moved.now);
    expect(moved.client.stats().srtt).toBe(333); // kInitialRtt, RFC 9002 §6.2.2
    const port = established(2);
    port.client.migrate(port.now, { portOnly: true });
    expect(port.client.stats().srtt).toBe(srtt);
  });

  it('is refused before the handshake is confirmed, on a server, and without an unused connection ID', () => {
    const p = connectionPair(3);
    expect(() => p.client.migrate(0)).toThrow(/handshake is confirmed/);
    const q = established(4, { transport: { activeConnectionIdLimit: 2 } });
    expect(() => q.server.migrate(q.now)).toThrow(/only a client/);
    // With active_connection_id_limit 2 the server issued one spare ID: one move, then none left (§9.5).
    q.client.migrate(q.now);
    expect(() => q.client.migrate(q.now)).toThrow(/no unused connection ID/);
  });

  it('is refused when the server sent disable_active_migration (RFC 9000 §18.2)', () => {
    const p = established(5, { transport: { disableActiveMigration: true } });
    expect(p.client.peerParams?.disable_active_migration).toBe(true);
    const before = p.client.remoteCid;
    expect(() => p.client.migrate(p.now)).toThrow(/disable_active_migration/);
    expect(bytesEqual(p.client.remoteCid, before)).toBe(true);
  });
});
