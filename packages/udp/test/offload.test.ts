/**
 * UDP under link checksum offload: a datagram whose checksum the link (or the kernel behind a
 * TUN device with IFF_VNET_HDR) verified, or left partial because the sender on that machine
 * never finished it, is delivered without checking it again — as Linux does for
 * CHECKSUM_UNNECESSARY and CHECKSUM_PARTIAL skbs. Without such word from the link, a bad
 * checksum is still dropped (RFC 1122 §4.1.3.4).
 */
import { encodeIpv4, Host } from '@stepwire/ip';
import { ipv4Packet } from '@stepwire/ip/testing';
import { MemoryLink, type PacketInfo } from '@stepwire/link';
import { VirtualClock } from '@stepwire/wire';
import { describe, expect, it } from 'vitest';
import { encodeUdp } from '../src/datagram.ts';
import { Udp } from '../src/socket.ts';

const A4 = '198.18.0.1';
const B4 = '198.18.0.2';

function setup() {
  const clock = new VirtualClock();
  const [la, lb] = MemoryLink.pair({ clock, mtu: 1500, offloads: { checksum: true } });
  const b = new Host({ name: 'B', clock });
  b.addInterface({ link: lb, ipv4: `${B4}/24` });
  const ub = new Udp(b);
  const sock = ub.createSocket('udp4');
  sock.bindSync(9000);
  const got: string[] = [];
  sock.on('message', (m) => got.push(m.toString()));
  return { clock, la, b, got };
}

/** An IPv4 packet from A to B:9000 carrying `text`, its UDP checksum spoiled when `spoil`. */
function packet(text: string, spoil: boolean): Uint8Array {
  const udp = encodeUdp(
    { srcPort: 4000, dstPort: 9000, payload: new TextEncoder().encode(text) },
    { src: A4, dst: B4 },
  );
  if (spoil) udp[7] = (udp[7]! + 1) & 0xff;
  return encodeIpv4(
    ipv4Packet({
      protocol: 17,
      src: A4,
      dst: B4,
      payload: udp,
    }),
  );
}

describe('UDP with link checksum offload', () => {
  it("delivers datagrams the link marks 'valid' or 'partial' without verifying, and still drops a bad one it vouched nothing for", () => {
    const { clock, la, b, got } = setup();
    const partial: PacketInfo = { csum: { kind: 'partial', start: 20, offset: 6 } };
    la.send(packet('partial', true), partial);
    la.send(packet('valid', true), { csum: { kind: 'valid' } });
    la.send(packet('plain', false));
    la.send(packet('corrupt', true));
    clock.runUntilIdle();
    expect(got).toEqual(['partial', 'valid', 'plain']);
    const c = b.counters.snapshot();
    expect(c['udp.rx.csum-partial']).toBe(1);
    expect(c['udp.rx.csum-valid']).toBe(1);
    expect(c['udp.drop.checksum']).toBe(1);
  });
});
