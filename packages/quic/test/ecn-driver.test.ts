import { SIM_EPOCH } from '@stepwire/sim';
import { pki } from '@stepwire/tls';
import { concatBytes, Prng, TraceBus } from '@stepwire/wire';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { simSockets } from './support/sim-endpoints.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

/**
 * ECN through QuicDriver (RFC 9000 §13.4): on our UDP the driver passes the IP ECN field up
 * (rinfo.ecn) and down (setEcn), so `transport: { ecn: true }` works end to end on the
 * simulated network, CE marks included.
 */

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(SIM_EPOCH));
});

async function echo(seed: number, ceMark: number) {
  const { sim, random, serverSocket: ss, clientSocket: cs } = simSockets(seed, { delay: 10, ceMark });
  const trace = new TraceBus();
  const lines: string[] = [];
  trace.on((e) => lines.push(`${e.host} ${e.dir} ${e.summary}`));
  const server = new QuicDriver(
    new QuicEndpoint({
      random,
      tlsEpoch: SIM_EPOCH,
      trace,
      host: 'B',
      server: {
        transport: { ecn: true },
        tls: quicServerTls(creds.leaf, 'e'),
      },
    }),
    ss,
    sim.clock,
    { onEvent: (conn, e) => e.type === 'stream-data' && conn.write(e.id, e.data, e.fin) },
  );
  const body = new Prng(seed).bytes(150_000);
  let got: Uint8Array = new Uint8Array(0);
  let conn: QuicConnection | undefined;
  const done = new Promise<void>((resolve) => {
    const client = new QuicDriver(
      new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH, trace, host: 'A' }),
      cs,
      sim.clock,
      {
        onEvent: (c, e) => {
          if (e.type === 'connected') c.write(c.openStream('bidi'), body, true);
          if (e.type === 'stream-data') {
            got = concatBytes(got, e.data);
            if (e.fin) resolve();
          }
        },
      },
    );
    conn = client.connect(
      { address: sim.b.ipv4, port: 4433 },
      {
        transport: { ecn: true },
        tls: quicClientTls(creds.ca.certificatePem, 'e'),
      },
    );
  });
  await sim.run(done, 60_000);
  return { got, body, lines, conn, server: server.endpoint.connections[0] };
}

describe('ECN through QuicDriver on our UDP (RFC 9000 §13.4)', () => {
  it('both ends validate ECN and their ACKs carry counts', async () => {
    const r = await echo(1, 0);
    expect(r.got).toEqual(r.body);
    expect(r.conn?.ecnState).toBe('capable');
    expect(r.server?.ecnState).toBe('capable');
    expect(r.lines.some((l) => l.startsWith('A out') && / ecn=\d+\/0\/0/.test(l))).toBe(true);
    expect(r.lines.some((l) => l.startsWith('B out') && / ecn=\d+\/0\/0/.test(l))).toBe(true);
  });
  it('CE marks on the wire come back as CE counts', async () => {
    const r = await echo(2, 0.05);
    expect(r.got).toEqual(r.body);
    const ce = r.lines.filter((l) => / ecn=\d+\/0\/[1-9]/.test(l));
    expect(ce.length).toBeGreaterThan(0);
    expect(r.conn?.ecnState).toBe('capable');
  });
});
