import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import type { PacketInfo } from '../src/link.ts';
import { MemoryLink } from '../src/memory.ts';

/** MemoryLink's offloads: what a veth pair with checksum offload and TSO does with them. */
describe('MemoryLink offloads', () => {
  it('offers none by default, so the simulated network is as it always was', () => {
    const [a, b] = MemoryLink.pair({ clock: new VirtualClock() });
    expect(a.offloads).toBeUndefined();
    expect(b.offloads).toBeUndefined();
  });

  it('carries a super-segment up to tsoMax whole, with its PacketInfo, and counts it', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, mtu: 1500, offloads: { checksum: true, tsoMax: 65535 } });
    expect(a.offloads).toEqual({ checksum: true, tsoMax: 65535 });
    const got: [Uint8Array, PacketInfo | undefined][] = [];
    b.onPacket((p, info) => got.push([p, info]));
    const big = new Uint8Array(20000).map((_, i) => i & 0xff);
    const info: PacketInfo = {
      gso: { type: 'tcpv4', size: 1448, hdrLen: 52 },
      csum: { kind: 'partial', start: 20, offset: 16 },
    };
    a.send(big, info);
    a.send(new Uint8Array(70000), { gso: { type: 'tcpv4', size: 1448, hdrLen: 52 } });
    a.send(new Uint8Array(1501));
    clock.runUntilIdle();
    expect(got).toHaveLength(1);
    expect(got[0]?.[0]).toEqual(big);
    expect(got[0]?.[1]).toEqual(info);
    expect(a.counters.get('tx.gso')).toBe(1);
    expect(a.counters.get('tx.csum-partial')).toBe(1);
    expect(a.counters.get('drop.mtu')).toBe(2);
    expect(b.counters.get('rx.gro')).toBe(1);
  });

  it('refuses a partial checksum when it offers no checksum offload (nobody would complete it)', () => {
    const clock = new VirtualClock();
    const [a, b] = MemoryLink.pair({ clock, offloads: { tsoMax: 0 } });
    let n = 0;
    b.onPacket(() => n++);
    a.send(new Uint8Array(100), { csum: { kind: 'partial', start: 20, offset: 16 } });
    clock.runUntilIdle();
    expect(n).toBe(0);
    expect(a.counters.get('drop.csum-offload')).toBe(1);
  });

  it('keeps packets of all the links of a clock in the order they were sent', () => {
    const clock = new VirtualClock();
    const [a1, b1] = MemoryLink.pair({ clock, name: 'one' });
    const [a2, b2] = MemoryLink.pair({ clock, name: 'two' });
    const log: string[] = [];
    b1.onPacket((p) => log.push(`one:${p[0]}`));
    b2.onPacket((p) => log.push(`two:${p[0]}`));
    a1.send(Uint8Array.of(1));
    a2.send(Uint8Array.of(2));
    a1.send(Uint8Array.of(3));
    clock.runUntilIdle();
    expect(log).toEqual(['one:1', 'two:2', 'one:3']);
  });
});
