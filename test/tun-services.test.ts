/**
 * The service registry behind `stepwire serve`, on the simulated network (no root needed):
 * every registered service answers, the printed lines name them, and a set that cannot
 * start leaves nothing half-running.
 */
import { Sim } from '@stepwire/sim';
import { describe, expect, it } from 'vitest';
import {
  describeService,
  SERVICES,
  type ServiceContext,
  type ServiceSpec,
  startServices,
} from '../packages/cli/src/tun/services.ts';

/** Everything a service may need from a simulated host (built apart from the call, so any transport fits). */
function context(sim: Sim): ServiceContext {
  const ctx = { host: sim.b.host, udp: sim.b.udp, tcp: sim.b.tcp };
  return ctx;
}

describe('serve services', () => {
  it('the default set answers ping and UDP echo on both families', async () => {
    const sim = new Sim({ seed: 3 });
    const services = startServices(context(sim));
    try {
      const lines = services.running.map((r) => describeService(r.spec));
      expect(lines).toContain('icmp echo (ping), IPv4 and IPv6 (RFC 792, RFC 4443 §4)');
      expect(lines).toContain('udp 7 echo, IPv4 and IPv6 (RFC 862)');
      // Each (protocol, port) once: a table with a port twice could never start.
      const ports = SERVICES.filter((x) => x.port !== undefined).map((x) => `${x.protocol}/${x.port}`);
      expect(new Set(ports).size).toBe(ports.length);
      for (const dst of [sim.b.ipv4, sim.b.ipv6]) {
        expect((await sim.run(sim.a.host.ping(dst))).from).toBe(dst);
        const sock = sim.a.udp.createSocket(dst.includes(':') ? 'udp6' : 'udp4');
        sock.bindSync(0);
        const back = sim.run(
          new Promise<Buffer>((resolve) => sock.once('message', (m) => resolve(Buffer.from(m)))),
        );
        sock.send(Buffer.from(`echo ${dst}`), 7, dst);
        expect((await back).toString()).toBe(`echo ${dst}`);
        sock.close();
      }
    } finally {
      services.close();
      sim.close();
    }
    // Closed: the port is free again.
    startServices(context(sim)).close();
  });

  it('when one service cannot start, those already started are closed and the error is thrown', () => {
    const sim = new Sim({ seed: 4 });
    const udpEcho = SERVICES.find((x) => x.name === 'udp-echo')!;
    const clash: ServiceSpec = { ...udpEcho, name: 'udp-echo-again' };
    expect(() => startServices(context(sim), [...SERVICES, clash])).toThrow(
      expect.objectContaining({ code: 'EADDRINUSE' }),
    );
    // Nothing was left bound: the whole set starts now.
    expect(sim.b.udp.boundSockets()).toEqual([]);
    startServices(context(sim)).close();
    sim.close();
  });
});
