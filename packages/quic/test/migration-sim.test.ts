import { SIM_EPOCH } from '@stepwire/sim';
import { pki } from '@stepwire/tls';
import { bytesEqual, concatBytes, Prng, TraceBus } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { simSockets } from './support/sim-endpoints.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

/**
 * Client-initiated migration (RFC 9000 §9) on the simulated network: mid-transfer our
 * client's driver moves to a new local port (QuicDriver.rebind); the connection switches to
 * an unused connection ID (§9.5) and probes with PATH_CHALLENGE; our server sees a new
 * address, validates it (§9.3) and answers there; the transfer completes. With
 * `migrate: false` the same port change is a NAT rebinding: same connection ID, the server
 * still follows.
 */

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(SIM_EPOCH));
});
const ALPN = 'stepwire-echo';

function setup(seed: number) {
  const { sim, random, serverSocket: ss, clientSocket: cs } = simSockets(seed, { delay: 5 });
  const trace = new TraceBus();
  const cs2 = sim.a.udp.createSocket('udp4');
  const newPort = cs2.bindSync(0, sim.a.ipv4).port;
  const serverEp = new QuicEndpoint({
    random,
    tlsEpoch: SIM_EPOCH,
    trace,
    host: 'B',
    server: {
      tls: quicServerTls(creds.leaf, ALPN),
    },
  });
  const server = new QuicDriver(serverEp, ss, sim.clock, {
    onEvent: (conn, e) => {
      if (e.type === 'stream-data') conn.write(e.id, e.data, e.fin);
    },
  });
  const clientEp = new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH, trace, host: 'A' });
  const clientTls = quicClientTls(creds.ca.certificatePem, ALPN);
  return { sim, trace, ss, cs, cs2, newPort, server, clientEp, clientTls };
}

/** Echoes `body`, calling `move` once `after` bytes have come back; resolves with what came back. */
function echoWithMove(
  s: ReturnType<typeof setup>,
  body: Uint8Array,
  after: number,
  move: (driver: QuicDriver) => void,
): Promise<{ conn: QuicConnection; got: Uint8Array; driver: QuicDriver }> {
  return new Promise((resolve, reject) => {
    let got: Uint8Array = new Uint8Array(0);
    let moved = false;
    const driver: QuicDriver = new QuicDriver(s.clientEp, s.cs, s.sim.clock, {
      onEvent: (c, e) => {
        if (e.type === 'connected') c.write(c.openStream('bidi'), body, true);
        if (e.type === 'stream-data') {
          got = concatBytes(got, e.data);
          // After the event handler returns: rebind flushes, and a flush is running now.
          if (!moved && got.length >= after && c.isHandshakeConfirmed) {
            moved = true;
            queueMicrotask(() => move(driver));
          }
          if (e.fin) resolve({ conn: c, got, driver });
        }
        if (e.type === 'closed') reject(new Error(`closed: ${JSON.stringify(e.error)}`));
      },
    });
    driver.connect({ address: s.sim.b.ipv4, port: 4433 }, { tls: s.clientTls });
  });
}

describe('client migration over the simulated network (RFC 9000 §9)', () => {
  it('moves to a new port and connection ID mid-transfer; the server validates the path; the echo completes', async () => {
    const s = setup(1);
    const lines: string[] = [];
    s.trace.on((e) => lines.push(`${e.host} ${e.dir} ${e.summary}`));
    const body = new Prng(11).bytes(300_000);
    let dcidBefore: Uint8Array | undefined;
    const r = await s.sim.run(
      echoWithMove(s, body, 60_000, (d) => {
        const conn = s.clientEp.connections[0];
        dcidBefore = conn?.remoteCid;
        d.rebind(s.cs2);
        // The old path is gone for good: nothing may depend on it any more.
        s.cs.close();
      }),
      120_000,
    );
    expect(bytesEqual(r.got, body)).toBe(true);
    expect(r.driver.socket).toBe(s.cs2);
    // §9.5: a connection ID not used before on the new path.
    expect(dcidBefore).toBeDefined();
    expect(bytesEqual(r.conn.remoteCid, dcidBefore ?? new Uint8Array(0))).toBe(false);
    expect(r.conn.counters.get('quic.path.client-migrated')).toBe(1);
    // Our PATH_CHALLENGE went out at once, not held behind the old path's bytes in flight (§9.4).
    expect(r.conn.counters.get('quic.path.validation-failed')).toBe(0);
    // The server followed: it sends to the new port and validated it (§8.2, §9.3).
    const sconn = s.server.endpoint.connections[0];
    expect(sconn?.remote?.port).toBe(s.newPort);
    expect(sconn?.counters.get('quic.path.migrated')).toBe(1);
    expect(sconn?.counters.get('quic.path.validation-failed')).toBe(0);
    expect(lines.some((l) => l.startsWith('B local path validated'))).toBe(true);
    expect(lines.some((l) => l.startsWith('A local path validated'))).toBe(true);
  });

  it('a NAT rebinding (rebind without migrate): same connection ID, the server follows the new port', async () => {
    const s = setup(2);
    const body = new Prng(12).bytes(200_000);
    let dcidBefore: Uint8Array | undefined;
    const r = await s.sim.run(
      echoWithMove(s, body, 40_000, (d) => {
        dcidBefore = s.clientEp.connections[0]?.remoteCid;
        d.rebind(s.cs2, { migrate: false });
      }),
      120_000,
    );
    expect(bytesEqual(r.got, body)).toBe(true);
    expect(bytesEqual(r.conn.remoteCid, dcidBefore ?? new Uint8Array(0))).toBe(true);
    expect(r.conn.counters.get('quic.path.client-migrated')).toBe(0);
    const sconn = s.server.endpoint.connections[0];
    expect(sconn?.remote?.port).toBe(s.newPort);
    expect(sconn?.counters.get('quic.path.migrated')).toBe(1);
  });
});
