/**
 * The HTTP/2 multiplexing examples (examples/h2-*.ts): each example's run() is imported and
 * what it returns — connections, retransmissions, virtual times, answers checked against
 * their requests — is held to what the example's header promises. Everything runs on the
 * seeded simulated network, so a seed gives the same numbers every time.
 */
import { describe, expect, it } from 'vitest';
import {
  CLIENT_SOCKETS,
  check,
  run as frontProxy,
  PROXY_POOL,
  type Sent,
  WORK_MS,
} from '../examples/h2-front-proxy.ts';
import { run as headOfLine, MAX_SOCKETS, RESOURCES } from '../examples/h2-head-of-line.ts';

describe('examples: h2-head-of-line', () => {
  const delay = 30;
  const rtt = 2 * delay;

  it('clean link: h2 on 1 connection, HTTP/1.1 on 6, every resource intact, h2 done first', async () => {
    const { clean } = await headOfLine({ seed: 1, delay });
    for (const o of [clean.h1, clean.h2]) {
      expect(o.intact).toBe(RESOURCES);
      expect(o.retransmits).toBe(0);
      expect(o.doneAt.filter((t) => t !== undefined)).toHaveLength(RESOURCES);
    }
    expect(clean.h1.connections).toBe(MAX_SOCKETS);
    expect(clean.h2.connections).toBe(1);
    // HTTP/1.1 carries one exchange at a time per connection (RFC 9112 §9.3): some
    // connection carries ceil(50/6) = 9 of them, each a round trip, after its handshake.
    expect(clean.h1.ms).toBeGreaterThanOrEqual((1 + Math.ceil(RESOURCES / MAX_SOCKETS)) * rtt);
    // ... and only six resources can be done after the first exchange.
    const firstWave = Math.min(...clean.h1.doneAt);
    expect(firstWave).toBeGreaterThanOrEqual(2 * rtt);
    expect(clean.h1.doneAt.filter((t) => t === firstWave).length).toBeLessThanOrEqual(MAX_SOCKETS);
    // h2 needs one handshake and one round trip plus what slow start takes for ~225 KiB.
    expect(clean.h2.ms).toBeGreaterThanOrEqual(2 * rtt);
    // The first resource of each is done after the handshake and one exchange...
    expect(Math.min(...clean.h1.doneAt)).toBe(2 * rtt);
    expect(clean.h2.doneAt[0]).toBe(2 * rtt);
    // ... and h2's server sends responses of one urgency one at a time in stream order
    // (RFC 9218 §10), each ending with its last DATA frame: they finish in request order,
    // spread over the transfer, not all at the end.
    expect(clean.h2.doneAt).toEqual([...clean.h2.doneAt].sort((a, b) => a - b));
    expect(clean.h2.doneAt.filter((t) => t < clean.h2.ms).length).toBeGreaterThanOrEqual(RESOURCES / 2);
    expect(clean.h2.ms).toBeLessThan(clean.h1.ms);
  });

  it('lossy link (2%): both deliver all 50 intact, h2 on exactly 1 connection, HTTP/1.1 on at most 6', async () => {
    const faster: string[] = [];
    for (const seed of [1, 2, 3, 4]) {
      const { lossy } = await headOfLine({ seed, delay, loss: 0.02 });
      expect(lossy.h1.intact, `seed ${seed}`).toBe(RESOURCES);
      expect(lossy.h2.intact, `seed ${seed}`).toBe(RESOURCES);
      expect(lossy.h2.connections, `seed ${seed}`).toBe(1);
      expect(lossy.h1.connections, `seed ${seed}`).toBeGreaterThanOrEqual(1);
      expect(lossy.h1.connections, `seed ${seed}`).toBeLessThanOrEqual(MAX_SOCKETS);
      faster.push(
        `seed ${seed}: HTTP/1.1 ${lossy.h1.ms} ms (${lossy.h1.lost} lost, ${lossy.h1.retransmits} rtx), ` +
          `h2 ${lossy.h2.ms} ms (${lossy.h2.lost} lost, ${lossy.h2.retransmits} rtx): ` +
          `${lossy.h1.ms < lossy.h2.ms ? 'HTTP/1.1' : lossy.h2.ms < lossy.h1.ms ? 'h2' : 'neither'} faster`,
      );
    }
    // Which wins depends on where the losses fall; the numbers are reported, not asserted.
    console.info(`h2-head-of-line on a 2% lossy link:\n  ${faster.join('\n  ')}`);
  });

  it('the losses are real: seed 1 at 2% makes TCP retransmit, and the same seed gives the same numbers', async () => {
    const a = await headOfLine({ seed: 1, delay, loss: 0.02 });
    expect(a.clean.h1.lost + a.clean.h2.lost).toBe(0);
    expect(a.lossy.h1.lost).toBeGreaterThan(0);
    expect(a.lossy.h2.lost).toBeGreaterThan(0);
    expect(a.lossy.h1.retransmits).toBeGreaterThan(0);
    expect(a.lossy.h2.retransmits).toBeGreaterThan(0);
    // Repairs cost time: each protocol is slower than on the clean link with this seed.
    expect(a.lossy.h1.ms).toBeGreaterThan(a.clean.h1.ms);
    expect(a.lossy.h2.ms).toBeGreaterThan(a.clean.h2.ms);
    const b = await headOfLine({ seed: 1, delay, loss: 0.02 });
    expect(b).toEqual(a);
  });
});

describe('examples: h2-front-proxy', () => {
  it.each([
    ['a clean link', 0],
    ['a link losing 2%', 0.02],
  ])(
    'h1→h2: N client connections in, exactly 1 h2 connection out, every answer its own (%s)',
    async (_n, loss) => {
      const clients = 8;
      const { h1ToH2 } = await frontProxy({ seed: 3, clients, requestsPerClient: 6, loss });
      expect(h1ToH2.mismatches).toEqual([]);
      expect(h1ToH2.matched).toBe(clients * 6);
      expect(h1ToH2.backendRequests).toBe(clients * 6);
      // Each client has 6 requests at once and a pool of 2: it opens both.
      expect(h1ToH2.inbound).toBe(clients * CLIENT_SOCKETS);
      expect(h1ToH2.outbound).toBe(1);
      expect(h1ToH2.backendVersions).toEqual(['2.0']);
      expect(h1ToH2.backendVia).toEqual(['1.1 proxy']);
      // The one connection really multiplexes: many requests at once on it, but never more
      // than the client connections in (each carries one exchange at a time).
      expect(h1ToH2.backendConcurrency).toBeGreaterThan(1);
      expect(h1ToH2.backendConcurrency).toBeLessThanOrEqual(h1ToH2.inbound);
      // Each client connection carries its 3 requests one after another.
      expect(h1ToH2.ms).toBeGreaterThanOrEqual(3 * WORK_MS);
    },
  );

  it.each([
    ['a clean link', 0],
    ['a link losing 2%', 0.02],
  ])(
    'h2→h1: one h2 connection per client in, a pool of at most 4 HTTP/1.1 out, every answer its own (%s)',
    async (_n, loss) => {
      const clients = 8;
      const { h2ToH1 } = await frontProxy({ seed: 3, clients, requestsPerClient: 6, loss });
      expect(h2ToH1.mismatches).toEqual([]);
      expect(h2ToH1.matched).toBe(clients * 6);
      expect(h2ToH1.backendRequests).toBe(clients * 6);
      expect(h2ToH1.inbound).toBe(clients);
      // 48 requests at once against a pool of 4: the pool fills, and never goes past 4.
      expect(h2ToH1.outbound).toBe(PROXY_POOL);
      expect(h2ToH1.backendVersions).toEqual(['1.1']);
      expect(h2ToH1.backendVia).toEqual(['2.0 proxy']);
      // The pool bounds the backend's load; 48 requests of 20 ms, 4 at a time, take 12 turns.
      expect(h2ToH1.backendConcurrency).toBe(PROXY_POOL);
      expect(h2ToH1.ms).toBeGreaterThanOrEqual(((clients * 6) / PROXY_POOL) * WORK_MS);
    },
  );

  it("the clients' check catches an answer meant for another request", () => {
    const sent: Sent = { id: 'c1-0', method: 'POST', path: '/items/1/0?q=c1-0', body: Buffer.from('abc') };
    const answer = (over: Record<string, unknown>) =>
      Buffer.from(
        JSON.stringify({
          method: 'POST',
          path: '/items/1/0?q=c1-0',
          id: 'c1-0',
          // sha256('abc'), FIPS 180-2 Appendix B.1.
          sha256: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
          length: 3,
          version: '2.0',
          via: '1.1 proxy',
          ...over,
        }),
      );
    expect(check(sent, 200, 'c1-0', answer({}))).toBeUndefined();
    expect(check(sent, 200, 'c1-1', answer({}))).toMatch(/x-request-id/);
    expect(check(sent, 200, 'c1-0', answer({ id: 'c2-0', path: '/items/2/0?q=c2-0' }))).toMatch(/answer for/);
    expect(check(sent, 200, 'c1-0', answer({ sha256: '00' }))).toMatch(/hash/);
    expect(check(sent, 502, 'c1-0', answer({}))).toMatch(/status 502/);
  });
});
