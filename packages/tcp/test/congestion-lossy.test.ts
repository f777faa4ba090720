/**
 * The impaired TUN benchmark's link on the simulated network (issue 13): 2% loss and 2%
 * reordering by 5 ms in each direction, here behind a 50 Mbit/s bottleneck with a 2 ms
 * round trip. A controller that halves per loss is held by the Mathis bound,
 * MSS/RTT x sqrt(3/2)/sqrt(p) (Mathis et al., CCR 1997); ours must come near it, which
 * they can only if reordering does not count as loss — RACK's reordering window, DupThresh
 * raised by D-SACKs and the undo of spurious recoveries (RFC 3708/4015) see to that. BBR,
 * for which loss is not congestion, must keep the bottleneck busy. Secrets are fixed so the
 * sequence numbers, and so every run, are the same.
 */
import { describe, expect, it } from 'vitest';
import { Pair } from './harness.ts';
import { bulkTransfer } from './support/bulk-path.ts';

const RATE = 50_000_000;
const LOSS = 0.02;
const PATH = { loss: LOSS, reorder: 0.02, reorderDelay: 5 };
const SIZE = 2_000_000;

async function transfer(congestion: 'bbr' | 'cubic' | 'newreno', softwareGso: boolean) {
  const r = await bulkTransfer({
    congestion,
    softwareGso,
    size: SIZE,
    forward: { rateBps: RATE, delay: 1, queueLimit: 1000, ...PATH, seed: 5 },
    reverse: { delay: 1, ...PATH, seed: 6 },
    maxSteps: 1_000_000,
  });
  const st = r.conn.stats;
  const srtt = st.srtt ?? Number.NaN;
  // bytes per ms -> bit/s
  const mathis = (st.mss / srtt) * Math.sqrt(1.5 / LOSS) * 8000;
  // With software GSO TCP really sent super-segments: far fewer segments than MSS-sized
  // pieces of data (0.4-0.7 measured: ACK-clocked sends are often two); without it, at least one each.
  const segmentsPerMss = st.segmentsOut / (SIZE / st.mss);
  if (softwareGso) expect(segmentsPerMss).toBeLessThan(0.9);
  else expect(segmentsPerMss).toBeGreaterThanOrEqual(1);
  return { got: r.got, bps: r.bps, mathis, st, drops: r.forward.counters.get('drop.loss') };
}

// With software GSO our TCP sends 64 KB super-segments, cut into packets below it: loss
// recovery must work on the pieces (a SACK edge inside a sent entry splits it, RFC 8985
// §6.1's per-segment state), with the same results as one segment per packet.
for (const gso of [false, true]) {
  describe(`congestion control on the impaired link (2% loss + 2% reordering each way${gso ? ', super-segments cut by software GSO' : ''})`, () => {
    for (const cc of ['cubic', 'newreno'] as const) {
      it(`${cc} comes near the Mathis bound at its RTT; reordering is not taken for loss`, async () => {
        const r = await transfer(cc, gso);
        console.log(
          `${cc}${gso ? ' gso' : ''}: ${(r.bps / 1e6).toFixed(1)} Mbit/s, Mathis bound at srtt ${r.st.srtt?.toFixed(2)} ms ${(r.mathis / 1e6).toFixed(1)} Mbit/s; fast retransmits ${r.st.fastRetransmits}, retransmits ${r.st.retransmits}, timeouts ${r.st.timeouts}, undone ${r.st.spuriousRecoveries}, D-SACKs ${r.st.dsacksReceived}, link drops ${r.drops}, segments out ${r.st.segmentsOut}`,
        );
        expect(r.got).toBe(SIZE);
        expect(r.st.timeouts).toBe(0);
        // Bounds from what the code does (2026-12-07, seeds 5/6 here: 0.82-0.87 of the bound,
        // 26-28 reductions that stood for 30 drops; seed pairs 1/2 to 13/14: 0.82-1.26 and
        // 0.89-0.96 of the drops), with a modest margin so that a regression fails.
        expect(r.bps).toBeGreaterThan(0.75 * r.mathis);
        // Window reductions that stood: about the real losses (2% of ~1400 segments); were
        // each reordered segment a loss too there would be about twice as many.
        expect(r.st.fastRetransmits - r.st.spuriousRecoveries).toBeLessThan(1.1 * r.drops);
      });
    }

    it('bbr keeps the 50 Mbit/s bottleneck busy (over 85%), retransmitting little that was not lost', async () => {
      const r = await transfer('bbr', gso);
      console.log(
        `bbr${gso ? ' gso' : ''}: ${(r.bps / 1e6).toFixed(1)} Mbit/s; retransmits ${r.st.retransmits}, timeouts ${r.st.timeouts}, D-SACKs ${r.st.dsacksReceived}, link drops ${r.drops}, segments out ${r.st.segmentsOut}`,
      );
      expect(r.got).toBe(SIZE);
      expect(r.st.timeouts).toBe(0);
      // Spurious retransmissions (each comes back as a D-SACK) are about the reordered segments
      // (2%), not a multiple of the losses: the ACK of a first copy still queued behind the others
      // in Startup is not taken for the ACK of its retransmission (RFC 8985 §6.2 step 2's
      // ambiguity, settled by the echoed timestamp), which would mark a whole flight lost.
      // Measured 2026-12-07: 17 D-SACKs (14 with GSO) and 54-56 retransmissions for 30 drops
      // here, at most 0.65 and 2.1 times the drops over seed pairs 1/2 to 13/14 (29 D-SACKs
      // here before RK's RACK changes of that day, a bound of 0.8 fails them).
      expect(r.st.dsacksReceived).toBeLessThan(0.8 * r.drops);
      expect(r.st.retransmits).toBeLessThan(2.3 * r.drops);
      expect(r.bps).toBeGreaterThan(0.85 * RATE);
    });
  });
}

describe('RACK at the tail of a transfer', () => {
  it('a loss just before our FIN is found from the SACK of the FIN segment, not by the RTO', () => {
    // Seven segments and a FIN; the sixth is lost once. The seventh carries the FIN, and the
    // receiver's SACK block covers its data (a SACK never covers a FIN, RFC 2018 §3): that
    // must count as its delivery for RACK (RFC 8985 §6.2), or only the RTO finds the hole.
    const p = new Pair({ iss: 1000, minRto: 1000 }, {}, 1, { delay: 5 });
    p.open();
    p.run(100);
    const mss = p.conns.a.stats.mss;
    const data = new Uint8Array(6 * mss + 100).fill(7);
    const lostSeq = 1001 + 5 * mss;
    let dropped = 0;
    p.dropFilter = (from, seg) => {
      if (from !== 'a' || seg.seq !== lostSeq || seg.payload.length === 0 || dropped > 0) return false;
      dropped++;
      return true;
    };
    p.send('a', data);
    p.close('a');
    // Well within the 1 s RTO.
    p.run(300);
    expect(dropped).toBe(1);
    expect(p.receivedBytes.b).toBe(data.length);
    expect(p.conns.a.stats.timeouts).toBe(0);
    expect(p.conns.a.stats.retransmits).toBeGreaterThanOrEqual(1);
  });
});
