import { describe, expect, it } from 'vitest';
import { writeChunks64k } from '../src/buffers.ts';
import type { TcpSocket } from '../src/index.ts';
import { collect, once, sha, streamBytes, tcpSim } from './net.ts';

/** `n` bytes of a xorshift stream: every write differs, so a reused buffer shows. */
const bytes = streamBytes;

describe('the socket’s pool of 64 KiB write copies', () => {
  it('gives buffers back once acknowledged and reuses them, every byte intact over a lossy link', async () => {
    // Loss makes segments go again from the send queue: a buffer given back too early
    // would be overwritten by a later write before its retransmission.
    const { a, b, run, sim } = tcpSim({ seed: 7, impairments: { loss: 0.02, delay: 2 } });
    const server = b.createServer((s: TcpSocket) => s.pipe(s));
    server.listen(9);
    await run(once(server, 'listening'));
    const c = a.connect({ host: sim.b.ipv4, port: 9 });
    await run(once(c, 'connect'));
    const got = collect(c);
    const writes: Buffer[] = [];
    // 32-64 KiB writes take pooled copies; 40 of them go round a pool of at most eight.
    for (let i = 0; i < 40; i++) writes.push(bytes(32 * 1024 + i * 700, i + 1));
    const before = writeChunks64k.held;
    for (const w of writes) c.write(w);
    c.end();
    const echoed = await run(got);
    expect(echoed.length).toBe(writes.reduce((n, w) => n + w.length, 0));
    expect(sha(echoed)).toBe(sha(Buffer.concat(writes)));
    // Both sockets' copies (the client's writes, the echo's) came back to the pool.
    expect(writeChunks64k.held).toBeGreaterThan(before);
    expect(writeChunks64k.held).toBeLessThanOrEqual(writeChunks64k.max);
  });
});
