/**
 * HTTP/3 response backpressure: a handler that writes faster than QUIC can send is held by
 * its Writable (res.write returns false, 'drain' comes later) instead of the server queueing
 * the whole body in the connection's send buffers — a 1 GiB `GET /bytes/N` must not become
 * 1 GiB of memory (hostile input never grows memory without bound).
 */

import { pki } from '@stepwire/tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { QuicConnection } from '../src/connection/connection.ts';
import { H3_WRITE_HIGH_WATER } from '../src/h3/index.ts';
import { closeLoopback, h3Pair } from './support/h3-loopback.ts';

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});
afterEach(closeLoopback);

describe('HTTP/3 response backpressure', () => {
  it('a 8 MiB body written in 64 KiB chunks: writes are held, the stream never holds much more than the high water mark unsent', async () => {
    const CHUNK = 64 * 1024;
    const TOTAL = 8 * 1024 * 1024;
    let maxUnsent = 0;
    let held = 0;
    let falseWrites = 0;
    let quic: QuicConnection | undefined;
    const { service, session, conns } = await h3Pair(creds, (_req, res) => {
      let sent = 0;
      const chunk = Buffer.alloc(CHUNK, 0x61);
      const pump = () => {
        while (sent < TOTAL) {
          sent += CHUNK;
          const ok = res.write(chunk);
          const c = conns[0];
          if (c) held = Math.max(held, c.heldWrites);
          if (quic) maxUnsent = Math.max(maxUnsent, quic.streamUnsent(0));
          if (!ok) {
            falseWrites++;
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    quic = service.driver.endpoint.connections[0];
    const res = await session.client.request({ ':path': '/big' });
    expect(res.body.length).toBe(TOTAL);
    expect(res.body.every((b) => b === 0x61)).toBe(true);
    // The handler was held back: writes returned false and waited for 'drain'.
    expect(falseWrites).toBeGreaterThan(0);
    expect(held).toBeGreaterThan(0);
    // The stream's unsent bytes stayed near the high water mark, never near the body's size.
    expect(maxUnsent).toBeLessThan(H3_WRITE_HIGH_WATER + 2 * CHUNK + 64 * 1024);
    expect(conns[0]?.heldWrites).toBe(0);
  });
});
