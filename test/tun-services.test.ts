/**
 * The service registry behind `stepwire serve`, on the simulated network (no root needed):
 * every registered service answers, the printed lines name them, and a set that cannot
 * start leaves nothing half-running.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeIpv4 } from '@stepwire/ip';
import { decodePcap } from '@stepwire/link';
import { Sim } from '@stepwire/sim';
import { ACK, decodeSegment, SYN } from '@stepwire/tcp';
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

  it('HTTP (80) and HTTPS (443) take data in the SYN from a client holding a Fast Open cookie (RFC 7413)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sw-serve-tfo-'));
    const pcap = join(dir, 'tfo.pcap');
    const sim = new Sim({ seed: 5, pcapPath: pcap });
    const services = startServices(context(sim));
    try {
      for (const port of [80, 443])
        for (let i = 0; i < 2; i++) {
          const c = sim.a.tcp.connect({ host: sim.b.ipv4, port, fastOpen: true });
          const closed = new Promise<void>((r) => c.once('close', () => r()));
          c.on('error', () => {});
          c.on('data', () => {});
          // Port 443 gets bytes that are no ClientHello: the TLS server's alert ends it; the SYN is what counts.
          c.end(port === 80 ? 'GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n' : 'not tls');
          await sim.run(closed, 10_000);
        }
    } finally {
      services.close();
      sim.close();
    }
    // From the capture: the first SYN to port 80 asks for a cookie and carries nothing; every
    // later SYN carries its bytes (the cookie belongs to the server's address, RFC 7413 §4.1.2,
    // so port 443 takes the one port 80 gave), and our SYN-ACK acknowledges them (ISN + 1 + length).
    const syns = new Map<number, { len: number; seq: number }[]>();
    const synAcks = new Map<number, number[]>();
    for (const rec of decodePcap(readFileSync(pcap)).records) {
      const ip = decodeIpv4(rec.data);
      if (ip.protocol !== 6) continue;
      const seg = decodeSegment(ip.payload, { src: ip.src, dst: ip.dst });
      if ((seg.flags & (SYN | ACK)) === SYN)
        syns.set(seg.dstPort, [...(syns.get(seg.dstPort) ?? []), { len: seg.payload.length, seq: seg.seq }]);
      if ((seg.flags & (SYN | ACK)) === (SYN | ACK))
        synAcks.set(seg.srcPort, [...(synAcks.get(seg.srcPort) ?? []), seg.ack]);
    }
    rmSync(dir, { recursive: true, force: true });
    const all = [...(syns.get(80) ?? []), ...(syns.get(443) ?? [])];
    const acks = [...(synAcks.get(80) ?? []), ...(synAcks.get(443) ?? [])];
    expect(all.map((x) => x.len > 0)).toEqual([false, true, true, true]);
    expect(acks).toEqual(all.map((x) => (x.seq + 1 + x.len) >>> 0));
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
