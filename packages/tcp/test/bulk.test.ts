import { describe, expect, it } from 'vitest';
import { Pair } from './harness.ts';

/**
 * Bulk data over a 1%-loss link (100 MiB with NewReno, 20 MiB with CUBIC): integrity, every
 * byte compared against the generator, and both sides closed cleanly. Throughput is a
 * benchmark's business (bench/), not a test's: no wall-clock bound here.
 */
function pattern(off: number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = ((off + i) * 2654435761) >>> 24;
  return out;
}

describe('bulk transfer', () => {
  for (const cc of ['newreno', 'cubic'] as const) {
    const TOTAL = cc === 'newreno' ? 100 * 1024 * 1024 : 20 * 1024 * 1024;
    it(`moves ${TOTAL / 1048576} MiB over a 1%-loss link intact (${cc}, SACK, timestamps)`, () => {
      const opts = {
        receiveBuffer: 4 * 1024 * 1024,
        rto: { min: 200 },
        congestion: cc,
        sendHighWater: 4 * 1024 * 1024,
      };
      const p = new Pair(opts, opts, 42, { loss: 0.01, delay: 5 });
      let written = 0;
      let checked = 0;
      let bad = -1;
      const CHUNK = 256 * 1024;
      const chunks: Uint8Array[] = [];
      // Writes reuse a few pre-made chunks so the test measures TCP, not the generator.
      for (let i = 0; i < 4; i++) chunks.push(pattern(i * CHUNK, CHUNK));
      const expectByte = (off: number) => ((off % (4 * CHUNK)) * 2654435761) >>> 24;
      p.onData = (_side, data) => {
        for (let i = 0; i < data.length; i++) {
          if (data[i] !== expectByte(checked + i)) {
            if (bad < 0) bad = checked + i;
            break;
          }
        }
        checked += data.length;
      };
      p.received.b = []; // keep no copies
      const pump = () => {
        const c = p.conns.a;
        while (written < TOTAL && c.sendQueued < 2 * 1024 * 1024) {
          const n = Math.min(CHUNK, TOTAL - written);
          const chunk = chunks[(written / CHUNK) % 4]!;
          p.send('a', n === CHUNK ? chunk : chunk.subarray(0, n));
          written += n;
        }
        if (written === TOTAL && c.state === 'ESTABLISHED') p.close('a');
      };
      p.open();
      p.run(100);
      const origHandle = p.handle.bind(p);
      p.handle = (side, out) => {
        origHandle(side, out);
        if (side === 'a' && out.events.some((e) => e.type === 'writable' || e.type === 'acked')) pump();
      };
      pump();
      let guard = 0;
      while (checked < TOTAL && guard++ < 50_000_000) {
        const at = p.clock.nextTimerAt();
        if (at === undefined) break;
        p.clock.advanceTo(at);
        if (p.conns.a.sendQueued < 2 * 1024 * 1024 && written < TOTAL) pump();
        if (guard % 1024 === 0) p.received.b.length = 0;
      }
      const st = p.conns.a.stats;
      console.log(
        `bulk ${cc}: ${TOTAL / 1048576} MiB in virtual ${(p.clock.now() / 1000).toFixed(1)} s, segments out ${st.segmentsOut}, ` +
          `retransmits ${st.retransmits}, fast ${st.fastRetransmits}, timeouts ${st.timeouts}`,
      );
      expect(bad).toBe(-1);
      expect(checked).toBe(TOTAL);
      p.close('b');
      p.run(10_000_000);
      expect(p.conns.a.state).toBe('CLOSED');
      expect(p.conns.b.state).toBe('CLOSED');
    }, 300_000);
  }
});
