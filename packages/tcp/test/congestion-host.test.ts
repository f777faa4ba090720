/**
 * Which of our controllers stands for a Linux host's (congestion/host.ts): TUN sessions
 * read /proc/sys/net/ipv4/tcp_congestion_control and use the same one.
 */
import { describe, expect, it } from 'vitest';
import { congestionFromLinux } from '../src/congestion/host.ts';

describe('congestionFromLinux', () => {
  it('maps bbr, cubic and reno to ours, and anything else to CUBIC', () => {
    expect(congestionFromLinux('bbr\n')).toBe('bbr');
    expect(congestionFromLinux('cubic\n')).toBe('cubic');
    expect(congestionFromLinux('reno\n')).toBe('newreno');
    // Controllers we do not have: the nearest loss-based one, Linux's default.
    for (const other of ['htcp', 'vegas', 'dctcp', 'bbr2', 'BBR', '', '  '])
      expect(congestionFromLinux(other)).toBe('cubic');
    expect(congestionFromLinux(undefined)).toBe('cubic');
  });
});
