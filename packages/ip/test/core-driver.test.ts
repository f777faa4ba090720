// Host as the driver of IpCore: it carries out the core's actions in order, also when a
// handler sends while its own delivery is being carried out, and a handler that throws
// leaves the host working.
import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { Host } from '../src/host.ts';
import { decodeIpv4 } from '../src/ipv4.ts';
import type { IpDelivery } from '../src/types.ts';
import { pipe } from './pipe.ts';

const UDP = 17;

function pair() {
  const clock = new VirtualClock();
  const [la, lb] = pipe(clock);
  const a = new Host({ name: 'A', clock });
  const b = new Host({ name: 'B', clock });
  a.addInterface({ link: la, ipv4: '198.18.0.1/24' });
  b.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
  return { clock, a, b, la, lb };
}

describe('Host driving IpCore', () => {
  it('a handler that answers inside its delivery sends in order, nested sends included', () => {
    const { clock, a, b, lb } = pair();
    // B answers each datagram with two sends from inside its delivery: they run while the
    // receive's own action list is still being carried out, so each needs its own list.
    b.registerProtocol(UDP, {
      receive: (d: IpDelivery) => {
        const n = d.payload[0] ?? 0;
        b.send({ dst: d.src, protocol: UDP, payload: new Uint8Array([n, 1]) });
        b.send({ dst: d.src, protocol: UDP, payload: new Uint8Array([n, 2]) });
      },
    });
    const got: number[][] = [];
    a.registerProtocol(UDP, { receive: (d) => got.push([...d.payload]) });
    for (let i = 0; i < 3; i++) a.send({ dst: '198.18.0.2', protocol: UDP, payload: new Uint8Array([i]) });
    clock.runUntilIdle();
    expect(got).toEqual([
      [0, 1],
      [0, 2],
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ]);
    expect(lb.sent.map((p) => [...decodeIpv4(p).payload])).toEqual(got);
  });

  it('a handler that throws takes its packet down with it, and the host keeps working', async () => {
    const { clock, a, b } = pair();
    let calls = 0;
    b.registerProtocol(UDP, {
      receive: () => {
        calls++;
        if (calls === 1) throw new Error('handler bug');
      },
    });
    const first = a.send({ dst: '198.18.0.2', protocol: UDP, payload: new Uint8Array(1) });
    expect(first).toEqual({ ok: true });
    expect(() => clock.runUntilIdle()).toThrow('handler bug');
    a.send({ dst: '198.18.0.2', protocol: UDP, payload: new Uint8Array(1) });
    clock.runUntilIdle();
    expect(calls).toBe(2);
    const r = a.ping('198.18.0.2');
    clock.runUntilIdle();
    expect((await r).from).toBe('198.18.0.2');
    expect(b.stats.timersArmed).toBe(0);
  });

  it('ping rides on the core: one timer per pending echo, none left after replies and timeouts', async () => {
    const { clock, a } = pair();
    const pings = [a.ping('198.18.0.2'), a.ping('198.18.0.2'), a.ping('198.18.0.9', { timeoutMs: 300 })];
    expect(a.stats.timersArmed).toBe(3);
    expect(a.core.stats.pendingEchoes).toBe(3);
    expect(a.core.nextTimeout()).toBe(300);
    clock.runUntilIdle();
    const settled = await Promise.allSettled(pings);
    expect(settled.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected']);
    const lost = settled[2];
    expect(lost?.status === 'rejected' ? (lost.reason as Error).message : undefined).toBe(
      'no echo reply from 198.18.0.9 within 300 ms',
    );
    expect(a.stats.timersArmed).toBe(0);
    expect(a.core.stats.pendingEchoes).toBe(0);
  });
});
