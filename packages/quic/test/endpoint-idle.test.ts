/**
 * A connection that ends by its idle timeout (RFC 9000 §10.1) is drained and forgotten by the
 * endpoint in the same handleTimeout; the driver must still hand its application the final
 * 'closed' event. (Before, the event stayed in a connection the driver no longer visited:
 * a server never heard that a peer which vanished had gone.)
 */
import { SIM_EPOCH } from '@stepwire/sim';
import { pki } from '@stepwire/tls';
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnectionEvent } from '../src/connection/types.ts';
import { QuicDriver } from '../src/endpoint/driver.ts';
import { QuicEndpoint } from '../src/endpoint/endpoint.ts';
import { simSockets } from './support/sim-endpoints.ts';
import { quicClientTls, quicServerTls } from './support/tls.ts';

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date(SIM_EPOCH));
});

describe('idle timeout through the endpoint and driver', () => {
  it("the server's application gets 'closed' (idle-timeout) when the client vanishes, and nothing is left", async () => {
    const { sim, random, serverSocket: ss, clientSocket: cs } = simSockets(5);
    const serverEvents: QuicConnectionEvent[] = [];
    const server = new QuicDriver(
      new QuicEndpoint({
        random,
        tlsEpoch: SIM_EPOCH,
        server: {
          tls: quicServerTls(creds.leaf, 'hq'),
          transport: { maxIdleTimeout: 2000 },
        },
      }),
      ss,
      sim.clock,
      { onEvent: (_c, e) => serverEvents.push(e) },
    );
    let connected!: () => void;
    const ready = new Promise<void>((r) => {
      connected = r;
    });
    const client = new QuicDriver(new QuicEndpoint({ random, tlsEpoch: SIM_EPOCH }), cs, sim.clock, {
      onEvent: (_c, e) => {
        if (e.type === 'connected') connected();
      },
    });
    client.connect(
      { address: sim.b.ipv4, port: 4433 },
      {
        tls: quicClientTls(creds.ca.certificatePem, 'hq'),
      },
    );
    await sim.run(ready, 10_000);
    // The client vanishes without a CONNECTION_CLOSE: its driver stops, its socket closes.
    client.close();
    cs.close();
    await sim.run(new Promise<void>((r) => sim.clock.setTimer(sim.clock.now() + 10_000, r)));
    const closed = serverEvents.filter((e) => e.type === 'closed');
    expect(closed).toHaveLength(1);
    expect(closed[0]).toMatchObject({ type: 'closed', error: { source: 'idle-timeout' } });
    expect(server.endpoint.connections).toHaveLength(0);
    expect(server.timers.armed).toBe(0);
    server.close();
  });
});
