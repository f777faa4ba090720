import { SIM_EPOCH } from '@stepwire/sim';
import { pki } from '@stepwire/tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { simSockets } from './support/sim-endpoints.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

/**
 * DATAGRAM frames (RFC 9221) through QuicEndpoint and QuicDriver on the simulated network,
 * with our TLS: the transport option reaches the transport parameters of both ends, and a
 * server echoes every datagram it gets. With loss on the link, what is lost stays lost.
 */

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(SIM_EPOCH));
});
const ALPN = 'stepwire-dgram';

function echoDatagrams(seed: number, loss: number, count: number) {
  const { sim, random, serverSocket: ss, clientSocket: cs } = simSockets(seed, { delay: 5, loss });
  const transport = { maxDatagramFrameSize: 1200 };
  const server = new QuicDriver(
    new QuicEndpoint({
      random,
      tlsEpoch: SIM_EPOCH,
      server: {
        transport,
        tls: quicServerTls(creds.leaf, ALPN),
      },
    }),
    ss,
    sim.clock,
    { onEvent: (conn, e) => e.type === 'datagram' && conn.sendDatagram(e.data) },
  );
  const echoed: number[] = [];
  let conn: QuicConnection | undefined;
  const done = new Promise<void>((resolve) => {
    const client = new QuicDriver(new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH }), cs, sim.clock, {
      onEvent: (c, e) => {
        if (e.type === 'connected') {
          // One every 10 ms, then a second of quiet for anything resent to show.
          for (let i = 0; i < count; i++)
            sim.clock.setTimer(sim.clock.now() + i * 10, () => {
              c.sendDatagram(new Uint8Array([i, ...new Uint8Array(200)]));
              client.flush();
            });
          sim.clock.setTimer(sim.clock.now() + count * 10 + 1000, resolve);
        }
        if (e.type === 'datagram') echoed.push(e.data[0] ?? -1);
      },
    });
    conn = client.connect(
      { address: sim.b.ipv4, port: 4433 },
      {
        transport,
        tls: quicClientTls(creds.ca.certificatePem, ALPN),
      },
    );
  });
  return { sim, done, echoed, server, conn: () => conn };
}

describe('DATAGRAM through the endpoint and driver (RFC 9221)', () => {
  it('a server echoes every datagram on a clean link', async () => {
    const w = echoDatagrams(1, 0, 40);
    await w.sim.run(w.done, 60_000);
    expect(w.conn()?.peerParams?.max_datagram_frame_size).toBe(1200);
    expect(w.echoed).toEqual(Array.from({ length: 40 }, (_, i) => i));
  });

  it('with 10% loss each way, some are lost and none arrives twice', async () => {
    const w = echoDatagrams(2, 0.1, 60);
    await w.sim.run(w.done, 60_000);
    expect(w.echoed.length).toBeLessThan(60);
    expect(w.echoed.length).toBeGreaterThan(20);
    expect(new Set(w.echoed).size).toBe(w.echoed.length);
    expect(w.conn()?.counters.get('quic.tx.datagram')).toBe(60);
    expect(w.conn()?.state).toBe('established');
  });
});
