import { describe, it } from 'vitest';
import { keepAliveLoad } from './load/run.ts';

describe('load: keep-alive requests on our TCP in a small heap', () => {
  it('our HTTP/1.1 server on our sockets: 200,000 requests over 8 connections, timers bounded, back to idle', async () => {
    await keepAliveLoad('ours');
  }, 300_000);
});
