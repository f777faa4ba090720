import { describe, it } from 'vitest';
import { keepAliveLoad } from './load/run.ts';

describe('load: keep-alive requests on our TCP in a small heap', () => {
  it('node:http on our sockets: 200,000 requests over 8 connections, timers bounded, back to idle', async () => {
    await keepAliveLoad('node');
  }, 300_000);
});
