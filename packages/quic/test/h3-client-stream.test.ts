/**
 * The HTTP/3 client's streaming mode: `request(..., { onResponse, onData })` hands the head
 * over as soon as it arrives and each body chunk as it comes, keeping none of it — so a
 * download is bounded by what the caller does with a chunk, not by maxResponseBody, which
 * still protects the collecting mode.
 */
import { pki } from '@stepwire/tls';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { H3RequestError, type H3Response } from '../src/h3/client.ts';
import { closeLoopback, h3Pair } from './support/h3-loopback.ts';

let creds: ReturnType<typeof pki.createStepwireCredentials>;
beforeAll(() => {
  creds = pki.createStepwireCredentials(new Date());
});
afterEach(closeLoopback);

const LIMIT = 64 * 1024;
const TOTAL = 1024 * 1024;

async function pair() {
  return h3Pair(
    creds,
    (_req, res) => {
      res.writeHead(200, { 'content-length': TOTAL });
      for (let i = 0; i < TOTAL / 4096; i++) res.write(Buffer.alloc(4096, i & 0xff));
      res.end();
    },
    { maxResponseBody: LIMIT },
  );
}

describe('Http3Client streaming', () => {
  it('streams a body 16 times maxResponseBody: head first, every chunk in order, nothing kept', async () => {
    const { session } = await pair();
    const seen: string[] = [];
    let received = 0;
    let ok = true;
    const res = await session.client.request({ ':path': '/' }, undefined, [], {
      onResponse: (r: H3Response) => seen.push(`head ${r.status} ${r.body.length}`),
      onData: (chunk) => {
        if (seen.length === 1) seen.push('data');
        for (let i = 0; i < chunk.length; i++) ok &&= chunk[i] === (Math.floor((received + i) / 4096) & 0xff);
        received += chunk.length;
      },
    });
    expect(seen).toEqual(['head 200 0', 'data']);
    expect(received).toBe(TOTAL);
    expect(ok).toBe(true);
    expect(res.status).toBe(200);
    expect(res.body.length).toBe(0);
  });

  it('without onData the same response is refused at maxResponseBody (H3_EXCESSIVE_LOAD)', async () => {
    const { session } = await pair();
    const err = await session.client.request({ ':path': '/' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(H3RequestError);
    expect((err as H3RequestError).message).toMatch(/H3_EXCESSIVE_LOAD: response body exceeds 65536 bytes/);
  });
});
