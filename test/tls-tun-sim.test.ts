/**
 * The HTTPS service that `stepwire serve --tun` runs (the 'https' entry of its service
 * table), here on the simulated network so it runs without root: our TLS client on our TCP
 * against our TLS server on our TCP, node:http on both ends, over a clean wire and over one
 * that loses, duplicates and reorders packets (TCP must repair it before TLS sees a byte:
 * one bad byte would fail a record's AEAD tag). The same service against curl and openssl
 * on TUN: tls-tun.test.ts and tls-tun-serve.test.ts.
 */
import http from 'node:http';
import { Sim } from '@stepwire/sim';
import { connect } from '@stepwire/tls';
import { describe, expect, it } from 'vitest';
import { ephemeralServeIdentity } from '../packages/cli/src/services/https.ts';
import { SERVICES, startServices } from '../packages/cli/src/tun/services.ts';
import { patternSha256, sha256 } from './support/tcp-tun.ts';

function get(sim: Sim, dst: string, path: string, ca: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        path,
        host: 'stepwire.test',
        createConnection: () =>
          connect({
            socket: sim.a.tcp.connect({ host: dst, port: 443 }),
            servername: dst,
            ca,
            ALPNProtocols: ['http/1.1'],
          }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (d: Buffer) => chunks.push(d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('the serve HTTPS service on the simulated network', () => {
  it.each([
    ['a clean wire', {}],
    [
      'a wire losing 2%, duplicating 1% and reordering 2% of packets',
      { loss: 0.02, duplicate: 0.01, reorder: 0.02 },
    ],
  ])('GET / and /bytes/300000 over both families on %s', async (_name, impairments) => {
    const sim = new Sim({ seed: 21, impairments });
    const identity = ephemeralServeIdentity();
    const services = startServices(
      { host: sim.b.host, udp: sim.b.udp, tcp: sim.b.tcp, tls: { identity } },
      SERVICES.filter((s) => s.name === 'https'),
    );
    try {
      for (const dst of [sim.b.ipv4, sim.b.ipv6]) {
        const page = await sim.run(get(sim, dst, '/', identity.caPem!));
        expect(page.status).toBe(200);
        expect(page.body.toString()).toMatch(/^Hello from stepwire/);
        const bytes = await sim.run(get(sim, dst, '/bytes/300000', identity.caPem!));
        expect(sha256(bytes.body)).toBe(patternSha256(300_000));
      }
      const c = (k: string) => sim.links[0].counters.get(k) + sim.links[1].counters.get(k);
      // The impaired run really was impaired.
      if ('loss' in impairments)
        for (const k of ['drop.loss', 'duplicate', 'reorder']) expect(c(k), k).toBeGreaterThan(0);
    } finally {
      services.close();
      sim.close();
    }
  });
});
