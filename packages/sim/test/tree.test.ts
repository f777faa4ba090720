/**
 * The layer tree of `demo --step`: every field it shows lies inside the packet and agrees
 * with our decoders; on arbitrary bytes it returns (a 'malformed' layer at worst), never throws.
 */
import { decodeIpv4, decodeIpv6, encodeIpv4 } from '@stepwire/ip';
import { arbitraryIpv4Packet } from '@stepwire/ip/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type LadderLine, packetTree, runScenario, SCENARIOS, type TreeLayer } from '../src/index.ts';

/** Every packet of a few scenarios, as the stepper sees them. */
async function packetsOf(names: string[]): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const name of names) {
    const s = SCENARIOS.find((x) => x.name === name);
    if (!s) throw new Error(name);
    await runScenario(s, {
      onLine: (l: LadderLine) => {
        if (l.kind === 'packet' && l.packet) out.push(l.packet.slice());
      },
    });
  }
  return out;
}

const field = (layers: TreeLayer[], layer: string, name: string) =>
  layers.find((l) => l.layer === layer)?.fields.find((f) => f.name === name);

describe('packetTree', () => {
  it('shows fields inside the packet that agree with the decoders, for real exchanges', async () => {
    const packets = await packetsOf(['tcp-handshake', 'ping-pmtu', 'fragmentation', 'tls-full']);
    expect(packets.length).toBeGreaterThan(40);
    const seen = new Set<string>();
    for (const p of packets) {
      const layers = packetTree(p);
      for (const l of layers) {
        seen.add(l.layer);
        for (const f of l.fields) {
          expect(f.offset).toBeGreaterThanOrEqual(0);
          expect(f.offset + f.length).toBeLessThanOrEqual(p.length);
        }
      }
      if ((p[0] ?? 0) >> 4 === 4) {
        const d = decodeIpv4(p, { verifyChecksum: false });
        expect(field(layers, 'ipv4', 'Source Address')?.value).toBe(d.src);
        expect(field(layers, 'ipv4', 'Time to Live')?.value).toBe(`${d.ttl} hops left`);
      } else {
        const d = decodeIpv6(p);
        expect(field(layers, 'ipv6', 'Destination Address')?.value).toBe(d.dst);
      }
    }
    // Every kind of layer the scenarios carry was shown.
    expect([...seen].sort()).toEqual(['data', 'icmp', 'ipv4', 'ipv6', 'tcp', 'tls', 'udp']);
  });

  it('names the MTU in a fragmentation-needed and the handshake type inside a TLS record', async () => {
    const packets = await packetsOf(['ping-pmtu', 'tls-full']);
    const trees = packets.map(packetTree);
    expect(trees.some((t) => field(t, 'icmp', 'MTU')?.value.startsWith('1280:'))).toBe(true);
    expect(trees.some((t) => /^1 client_hello/.test(field(t, 'tls', 'HandshakeType')?.value ?? ''))).toBe(
      true,
    );
  });

  it('never throws, on generated IPv4 packets and on arbitrary bytes', () => {
    fc.assert(
      fc.property(arbitraryIpv4Packet(64), (p) => {
        const layers = packetTree(encodeIpv4(p));
        expect(layers[0]?.layer).toBe('ipv4');
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
        expect(packetTree(bytes).length).toBeGreaterThan(0);
      }),
    );
  });
});
