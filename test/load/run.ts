import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { expect } from 'vitest';

const run = promisify(execFile);

interface Report {
  requests: number;
  done: number;
  failed: number;
  peakTimers: number;
  peakClockPending: number;
  before: unknown;
  after: unknown;
  busy: { serverTcp: { connections: number; timersArmed: number } };
}

/**
 * Issue 15: `serve` died of a timer leak (one idle-timer chain per keep-alive request).
 * 200,000 keep-alive requests in a child process with a 96 MB heap must finish, hold a
 * bounded number of timers throughout, and leave every count at its idle value.
 */
export async function keepAliveLoad(server: 'node' | 'ours'): Promise<void> {
  const { stdout } = await run(
    process.execPath,
    [
      '--max-old-space-size=96',
      '--import',
      'tsx',
      new URL('./keepalive.ts', import.meta.url).pathname,
      '200000',
      '8',
      server,
    ],
    { timeout: 240_000, maxBuffer: 1 << 20 },
  );
  const r = JSON.parse(stdout.trim().split('\n').pop()!) as Report;
  expect(r.done).toBe(200_000);
  expect(r.failed).toBe(0);
  // Per connection on both sides: its retransmission/ACK timer and one idle timer; the
  // listener's accept timer; the links' deliveries. Nothing that grows with requests.
  expect(r.peakTimers).toBeLessThanOrEqual(8 * 4);
  expect(r.peakClockPending).toBeLessThanOrEqual(8 * 8);
  expect(r.busy.serverTcp.connections).toBe(8);
  expect(r.after).toEqual(r.before);
}
