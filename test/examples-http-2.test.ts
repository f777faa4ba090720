/**
 * The HTTP pattern examples, part 2 (publish/subscribe, idempotency, resumable upload, Nagle
 * with delayed ACK, also over TUN against the kernel as root): run() imported and its results checked against what each header
 * promises; and one example started as a user would (`pnpm example`), so the
 * program-vs-import switch is covered too.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { netnsExists } from '@stepwire/link';
import { describe, expect, it } from 'vitest';
import { run as idempotency } from '../examples/http-idempotency.ts';
import { PUBLISH, run as pubsub, REDELIVER_MS } from '../examples/http-pubsub.ts';
import { CHUNK, FILE_BYTES, run as upload } from '../examples/http-resumable-upload.ts';
import { run as nagle } from '../examples/tcp-nagle-delayed-ack.ts';

const root = join(import.meta.dirname, '..');

describe('examples: HTTP patterns (2)', () => {
  it('pubsub: fan-out by topic to SSE and WebSocket subscribers, unacknowledged messages redelivered after 1 s, duplicates recognised', async () => {
    const r = await pubsub();
    const topics = (t: string) => PUBLISH.filter(([, topic]) => topic === t).map((_, i) => `${t}-${i + 1}`);
    // The dashboard subscribed to orders only; the worker to both.
    expect(r.processed.dashboard).toEqual(topics('orders'));
    expect([...(r.processed.worker ?? [])].sort()).toEqual([...topics('orders'), ...topics('prices')].sort());
    expect(
      r.deliveries.filter((d) => d.subscriber === 'dashboard').every((d) => d.id.startsWith('orders')),
    ).toBe(true);
    // Exactly the two messages without an acknowledgement came again, REDELIVER_MS later.
    expect(r.redeliveries.map((d) => [d.subscriber, d.id, d.attempt])).toEqual([
      ['dashboard', 'orders-1', 2],
      ['worker', 'orders-2', 2],
    ]);
    for (const d of r.redeliveries) {
      const first = r.deliveries.find(
        (x) => x.subscriber === d.subscriber && x.id === d.id && x.attempt === 1,
      );
      expect(d.at - (first?.at ?? 0)).toBe(REDELIVER_MS);
    }
    // The lost ack made a duplicate (processed once); the crash made none.
    expect(r.duplicates).toEqual({ dashboard: ['orders-1'], worker: [] });
    expect(r.pending).toBe(0);
  });

  it('idempotency: N retries and N concurrent copies charge once and get the stored response; a reused key is refused', async () => {
    const r = await idempotency();
    expect(r.charges.map((c) => c.key)).toEqual(['key-1', 'key-2']);
    // The first attempt timed out on the client; both retries got the one payment.
    expect(r.retries.map((x) => x.status)).toEqual([0, 201, 201]);
    expect(r.retries.slice(1).every((x) => x.replayed)).toBe(true);
    expect(new Set(r.retries.slice(1).map((x) => x.body))).toEqual(new Set(['{"id":"pay_1","amount":40}']));
    expect(r.concurrent.map((x) => x.status)).toEqual([201, 201, 201]);
    expect(new Set(r.concurrent.map((x) => x.body))).toEqual(new Set(['{"id":"pay_2","amount":75}']));
    expect(r.concurrent.filter((x) => !x.replayed)).toHaveLength(1);
    expect(r.mismatch.status).toBe(422);
  });

  it.each([
    [1, 2],
    [7, 0],
    [3, 4],
  ])(
    'resumable upload (seed %i, cut in chunk %i): resumes from the last acknowledged chunk, resends at most one chunk, sha256 matches',
    async (seed, cutInChunk) => {
      const r = await upload({ seed, cutInChunk });
      expect(r.failures).toBe(1);
      expect(r.connections).toBe(2);
      expect(r.serverSha).toBe(r.clientSha);
      expect(r.bytes).toBe(FILE_BYTES);
      expect(r.resent).toBeGreaterThan(0);
      expect(r.resent).toBeLessThanOrEqual(CHUNK);
      expect(r.receivedTwice).toBeGreaterThan(0);
      expect(r.receivedTwice).toBeLessThanOrEqual(CHUNK);
      // After the cut the client asked (HEAD) and resumed at the chunk boundary it had been acked.
      const resume = r.timeline.find((m) => m.text.startsWith('← HEAD'));
      expect(resume?.text).toContain(`Upload-Offset: ${cutInChunk * CHUNK}`);
    },
  );

  it('Nagle with delayed ACK: the body waits ≥ 40 ms behind its header with Nagle on, not at all with noDelay', async () => {
    const r = await nagle({ rounds: 4 });
    // From the second exchange on (the first is ACKed at once after the handshake).
    for (const x of r.nagle.slice(1)) {
      expect(x.bodyAfterAck).toBe(true);
      expect(x.bodyLagMs ?? -1).toBeGreaterThanOrEqual(40);
      expect(x.bodyLagMs ?? -1).toBeLessThanOrEqual(200 + 10);
    }
    for (const x of r.noDelay) {
      expect(x.bodyAfterAck).toBe(false);
      expect(x.bodyLagMs).toBe(0);
      expect(x.ms).toBe(10);
    }
    for (const [i, x] of r.nagle.entries())
      expect(x.ms - (r.noDelay[i]?.ms ?? 0)).toBeGreaterThanOrEqual(i === 0 ? 0 : 40);
  });

  it('Nagle with delayed ACK over TUN (root): the Linux kernel’s delayed ACK holds our body ≥ 40 ms; noDelay sends it at once', async () => {
    expect(process.getuid?.()).toBe(0);
    const r = await nagle({ tun: true, rounds: 4 });
    // Linux's delayed-ACK floor is 40 ms (TCP_DELACK_MIN); after its first quick ACKs the
    // kernel waits for a reply to carry the ACK, and the reply needs our held body.
    for (const x of r.nagle.slice(1)) {
      expect(x.bodyAfterAck).toBe(true);
      expect(x.ms).toBeGreaterThanOrEqual(40);
    }
    for (const x of r.noDelay) expect(x.bodyAfterAck).toBe(false);
    expect(netnsExists(`sw-nagle-${process.pid}`)).toBe(false);
  });

  it('deterministic by seed: the same seed gives the same timeline (and upload bytes); another seed another file', async () => {
    for (const run of [pubsub, idempotency]) {
      const a = await run({ seed: 9 });
      expect((await run({ seed: 9 })).timeline).toEqual(a.timeline);
    }
    const u = await upload({ seed: 9 });
    expect(await upload({ seed: 9 })).toEqual(u);
    expect((await upload({ seed: 10 })).clientSha).not.toBe(u.clientSha);
    expect(await nagle({ seed: 9 })).toEqual(await nagle({ seed: 9 }));
  });

  it('`pnpm example http-long-polling` runs as a program and prints its timeline', () => {
    const r = spawnSync(
      process.execPath,
      ['--import', 'tsx', join(root, 'scripts/example.ts'), 'http-long-polling'],
      {
        cwd: root,
        encoding: 'utf8',
        timeout: 60_000,
      },
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/1500\.0 ms +server +→ 200 after holding/);
    expect(r.stdout).toMatch(/→ 204 after holding 5000 ms/);
    expect(r.stdout).toMatch(/message 3: published 9000 ms, seen 9005 ms \(\+5 ms\)/);
  });
});
