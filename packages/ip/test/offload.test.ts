import { MemoryLink, type MemoryLinkOptions } from '@stepwire/link';
import { finishChecksum, sum16, VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { pseudoHeaderSum } from '../src/checksum.ts';
import { Host } from '../src/host.ts';
import { encodeIpv4 } from '../src/ipv4.ts';
import { ipv4Packet } from '../src/testing.ts';
import { IPPROTO_TCP, type IpDelivery } from '../src/types.ts';

/**
 * IP's side of the link offloads: a TCP super-segment (gso) may exceed the MTU up to the
 * link's tsoMax and a coalesced one (GRO) is accepted whole; without gso the MTU rules as
 * before; a checksum left partial is completed by IP when the link cannot do it.
 */
function hosts(offloads?: MemoryLinkOptions['offloads']) {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, mtu: 1500, ...(offloads ? { offloads } : {}) });
  const a = new Host({ name: 'A', clock });
  const b = new Host({ name: 'B', clock });
  a.addInterface({ link: la, ipv4: '198.18.0.1/24' });
  const ib = b.addInterface({ link: lb, ipv4: '198.18.0.2/24' });
  const got: IpDelivery[] = [];
  b.registerProtocol(IPPROTO_TCP, { receive: (d) => got.push(d) });
  return { clock, a, b, la, lb, ib, got };
}

/** A stand-in TCP segment: 20 header bytes (checksum field at 16), then data. */
function segment(n: number): Uint8Array {
  const s = new Uint8Array(n);
  for (let i = 0; i < n; i++) s[i] = (i * 7 + 3) & 0xff;
  s[16] = 0;
  s[17] = 0;
  return s;
}

describe('IP with link offloads', () => {
  it('a super-segment larger than the MTU goes with gso over a TSO link and arrives whole (GRO)', () => {
    const t = hosts({ checksum: true, tsoMax: 65535 });
    const payload = segment(20 + 7 * 1460);
    const r = t.a.send({
      dst: '198.18.0.2',
      protocol: IPPROTO_TCP,
      payload,
      dontFragment: true,
      gso: { size: 1460, transportHeaderLength: 20 },
    });
    expect(r).toEqual({ ok: true });
    t.clock.runUntilIdle();
    expect(t.got).toHaveLength(1);
    expect(t.got[0]?.payload).toEqual(payload);
    expect(t.a.counters.get('ip.tx.gso')).toBe(1);
    expect(t.b.counters.get('ip.rx.gro')).toBe(1);
    expect(t.la.counters.get('drop.mtu')).toBe(0);
  });

  it('a packet larger than the MTU without gso is refused with DF and fragmented without', () => {
    const t = hosts({ checksum: true, tsoMax: 65535 });
    const payload = segment(20 + 7 * 1460);
    const r = t.a.send({ dst: '198.18.0.2', protocol: IPPROTO_TCP, payload, dontFragment: true });
    expect(r).toEqual({ ok: false, error: 'too-big', mtu: 1500 });
    expect(t.la.counters.get('tx')).toBe(0);
    expect(t.a.send({ dst: '198.18.0.2', protocol: IPPROTO_TCP, payload })).toEqual({ ok: true });
    t.clock.runUntilIdle();
    expect(t.a.counters.get('ipv4.tx.fragments')).toBeGreaterThan(1);
    expect(t.got).toHaveLength(1);
    expect(t.got[0]?.payload).toEqual(payload);
    // The link itself still drops an oversize packet that claims no super-segment.
    t.la.send(encodeIpv4({ ...ipv4Of(payload), dontFragment: true }));
    expect(t.la.counters.get('drop.mtu')).toBe(1);
  });

  it('gso toward a link without TSO is refused and counted, nothing is sent', () => {
    const t = hosts();
    const r = t.a.send({
      dst: '198.18.0.2',
      protocol: IPPROTO_TCP,
      payload: segment(20 + 4 * 1460),
      dontFragment: true,
      gso: { size: 1460, transportHeaderLength: 20 },
    });
    expect(r.ok).toBe(false);
    expect(t.a.counters.get('ipv4.send.gso-unsupported')).toBe(1);
    expect(t.la.counters.get('tx')).toBe(0);
  });

  it('a coalesced packet handed up by a link with gso info is delivered though larger than the MTU', () => {
    const t = hosts({ checksum: true, tsoMax: 65535 });
    const payload = segment(20 + 20 * 1448);
    const packet = encodeIpv4(ipv4Of(payload));
    expect(packet.length).toBeGreaterThan(t.lb.mtu);
    t.b.receive(packet, t.ib, { gso: { type: 'tcpv4', size: 1448, hdrLen: 40 }, csum: { kind: 'valid' } });
    t.clock.runUntilIdle();
    expect(t.got).toHaveLength(1);
    expect(t.got[0]?.payload.length).toBe(payload.length);
    expect(t.got[0]?.csum).toBe('valid');
    expect(t.b.counters.get('ip.rx.gro')).toBe(1);
    expect(t.b.counters.get('ip.rx.csum-valid')).toBe(1);
  });

  for (const checksum of [true, false]) {
    it(`a partial checksum goes partial over a link that completes it (${checksum}), else IP completes it`, () => {
      const t = hosts({ checksum });
      const payload = segment(20 + 1000);
      const pseudo = pseudoHeaderSum('198.18.0.1', '198.18.0.2', IPPROTO_TCP, payload.length);
      const folded = ~finishChecksum(pseudo) & 0xffff;
      payload[16] = folded >> 8;
      payload[17] = folded & 0xff;
      const r = t.a.send({
        dst: '198.18.0.2',
        protocol: IPPROTO_TCP,
        payload,
        dontFragment: true,
        csumOffset: 16,
      });
      if (!checksum) {
        expect(r).toEqual({ ok: true });
        t.clock.runUntilIdle();
        expect(t.a.counters.get('ip.tx.csum-completed')).toBe(1);
        const d = t.got[0] as IpDelivery;
        expect(d.csum).toBeUndefined();
        // Completed: the segment verifies over its pseudo-header.
        expect(finishChecksum(sum16(d.payload, pseudo))).toBe(0);
      } else {
        t.clock.runUntilIdle();
        expect(t.a.counters.get('ip.tx.csum-partial')).toBe(1);
        expect(t.got[0]?.csum).toBe('partial');
        expect(t.b.counters.get('ip.rx.csum-partial')).toBe(1);
      }
    });
  }
});

function ipv4Of(payload: Uint8Array) {
  return ipv4Packet({
    dontFragment: false,
    protocol: IPPROTO_TCP,
    src: '198.18.0.1',
    dst: '198.18.0.2',
    payload,
  });
}
