// IpCore alone (sans-I/O): what it does is a function of its inputs. Fed the same packets at
// the same `now` values, two cores built from the same seed give the same actions, byte for
// byte, and nothing they are fed makes them throw; after every deadline has been served,
// nothing is left waiting.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { IpAction } from '../src/host/core.ts';
import { encodeIpv4 } from '../src/ipv4.ts';
import { encodeIpv6 } from '../src/ipv6.ts';
import { arbitraryIpv4Packet, arbitraryIpv6Packet } from '../src/testing.ts';
import { A4, A6, B4, B6, makeCore } from './core-harness.ts';

/** Packets addressed to the core (so they get past the not-for-us check), or raw bytes. */
const arbitraryInput: fc.Arbitrary<Uint8Array> = fc.oneof(
  arbitraryIpv4Packet(96).map((p) => encodeIpv4({ ...p, src: B4, dst: A4 })),
  arbitraryIpv4Packet(96).map((p) =>
    encodeIpv4({
      ...p,
      src: B4,
      dst: A4,
      moreFragments: true,
      fragmentOffset: p.fragmentOffset & 7,
      dontFragment: false,
    }),
  ),
  arbitraryIpv6Packet(96).map((p) => encodeIpv6({ ...p, src: B6, dst: A6 })),
  fc.uint8Array({ maxLength: 80 }),
);

/** Actions as comparable data: the interface by index, packets as arrays. */
function plain(out: IpAction[]): unknown[] {
  return out.map((a) =>
    a.kind === 'transmit' ? { kind: a.kind, iface: a.iface.index, packet: [...a.packet] } : a,
  );
}

describe('IpCore properties (sans-I/O)', () => {
  it('is deterministic, never throws, and serves every deadline it gives', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(arbitraryInput, fc.integer({ min: 0, max: 20_000 })), { maxLength: 25 }),
        fc.boolean(),
        (inputs, traced) => {
          const run = () => {
            const { core } = makeCore({ trace: { enabled: traced }, reassemblyTimeoutV4Ms: 15_000 });
            core.registerProtocol(17);
            const log: unknown[] = [];
            let now = 0;
            for (const [packet, gap] of inputs) {
              now += gap;
              const out: IpAction[] = [];
              const due = core.nextTimeout();
              if (due !== undefined && due <= now) core.handleTimeout(now, out);
              core.receive(packet, undefined, now, out);
              log.push(plain(out));
            }
            // Serve the deadlines until none is left; each one moves time forward.
            for (
              let due = core.nextTimeout(), n = 0;
              due !== undefined && n < 1000;
              due = core.nextTimeout(), n++
            ) {
              expect(due).toBeGreaterThanOrEqual(now);
              now = due;
              const out: IpAction[] = [];
              core.handleTimeout(now, out);
              log.push(plain(out));
            }
            expect(core.nextTimeout()).toBeUndefined();
            expect(core.stats.reassemblyDatagrams).toBe(0);
            return log;
          };
          expect(run()).toEqual(run());
        },
      ),
      { numRuns: 60 },
    );
  });
});
