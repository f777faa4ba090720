// UDP holds its addresses as bytes (parsed once at bind/connect, or the interface's own) and
// checks and writes checksums from them (ip/src/types.ts). Against the text: a datagram the
// codec encodes with byte addresses is the one it encodes with text, and what a socket puts
// on the wire through a real Host is byte for byte what text-only encoding would build.
import { fc, test as fcTest } from '@fast-check/vitest';
import { decodeIpv4, decodeIpv6, encodeIpv4, encodeIpv6, Host, parseIp } from '@stepwire/ip';
import { arbitraryIpv4Address, arbitraryIpv6Address } from '@stepwire/ip/testing';
import { Prng, VirtualClock } from '@stepwire/wire';
import { describe, expect } from 'vitest';
import { decodeUdp, encodeUdp } from '../src/datagram.ts';
import { Udp } from '../src/socket.ts';
import { arbitraryPseudoHeader, arbitraryUdpDatagram } from '../src/testing.ts';
import { pipe } from './pipe.ts';

const A4 = '198.18.0.1';
const B4 = '198.18.0.2';
const A6 = 'fd00:5757::1';
const B6 = 'fd00:5757::2';

describe('UDP codec: the pseudo-header as bytes or text', () => {
  fcTest.prop([arbitraryUdpDatagram, arbitraryPseudoHeader], { numRuns: 300 })(
    'encodes the same datagram, and decodes it with either',
    (d, pseudo) => {
      const bytes = { src: parseIp(pseudo.src), dst: parseIp(pseudo.dst) };
      const wire = encodeUdp(d, pseudo);
      expect([...encodeUdp(d, bytes)]).toEqual([...wire]);
      expect(decodeUdp(wire, bytes)).toEqual(decodeUdp(wire, pseudo));
    },
  );
});

/** Two Hosts on a pipe, UDP on both; A's interface holds `extra` too, for a bound-address case. */
function net() {
  const clock = new VirtualClock();
  const [la, lb] = pipe(clock, 9000, 1);
  const a = new Host({ name: 'A', clock, prng: new Prng(3) });
  const b = new Host({ name: 'B', clock, prng: new Prng(4) });
  a.addInterface({ link: la, ipv4: `${A4}/24`, ipv6: `${A6}/64` });
  b.addInterface({ link: lb, ipv4: `${B4}/24`, ipv6: `${B6}/64` });
  a.addRoute('0.0.0.0/0', la.name);
  a.addRoute('::/0', la.name);
  return { clock, a, la, ua: new Udp(a), ub: new Udp(b) };
}

/** The packet text-only encoding builds from a sent packet's header fields and UDP value. */
function byText(packet: Uint8Array): Uint8Array {
  if (packet[0]! >> 4 === 4) {
    const ip = decodeIpv4(packet);
    const udp = decodeUdp(ip.payload, { src: ip.src, dst: ip.dst });
    return encodeIpv4({ ...ip, payload: encodeUdp(udp, { src: ip.src, dst: ip.dst }) });
  }
  const ip = decodeIpv6(packet);
  const udp = decodeUdp(ip.payload, { src: ip.src, dst: ip.dst });
  return encodeIpv6({ ...ip, payload: encodeUdp(udp, { src: ip.src, dst: ip.dst }) });
}

const arbitraryPeer = fc.oneof(
  fc.record({ type: fc.constant('udp4' as const), peer: arbitraryIpv4Address }),
  fc.record({ type: fc.constant('udp6' as const), peer: arbitraryIpv6Address }),
);

describe('UDP sockets over a Host: sent with bytes, as if sent with text', () => {
  fcTest.prop(
    [
      arbitraryPeer.filter(({ peer }) => {
        // Unicast peers a send is allowed to (no multicast or broadcast, not our own).
        const b = parseIp(peer);
        return b[0]! < 224 && b[0] !== 0xff && b[0] !== 127 && ![A4, A6, '::', '::1'].includes(peer);
      }),
      fc.integer({ min: 1, max: 0xffff }),
      fc.uint8Array({ maxLength: 1400 }),
      fc.constantFrom('unconnected', 'connected', 'bound'),
    ],
    { numRuns: 150 },
  )('each datagram on the wire equals text-only encoding of it', ({ type, peer }, port, payload, how) => {
    const { clock, la, ua } = net();
    const s = ua.createSocket(type);
    if (how === 'bound') s.bindSync(0, type === 'udp4' ? A4 : A6);
    if (how === 'connected') {
      s.connect(port, peer);
      s.send(payload);
    } else {
      s.send(payload, port, peer);
    }
    clock.runUntilIdle();
    expect(la.sent).toHaveLength(1);
    const packet = la.sent[0]!;
    expect([...packet]).toEqual([...byText(packet)]);
    // And it went where the text said, from our address.
    const ip = packet[0]! >> 4 === 4 ? decodeIpv4(packet) : decodeIpv6(packet);
    expect([...parseIp(ip.dst)]).toEqual([...parseIp(peer)]);
    expect(ip.src).toBe(type === 'udp4' ? A4 : A6);
  });
});
