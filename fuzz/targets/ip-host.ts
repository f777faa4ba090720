/**
 * An IP host (packages/ip/src/host.ts) fed arbitrary packets on one interface: reassembly of
 * IPv4 and IPv6 fragments, ICMP errors quoting our datagrams (the truncated decode in
 * context), echo, protocol dispatch, ICMP error generation. Each chunk (2-byte length) is a
 * packet preceded by one control byte: bit 0 fixes the IPv4 header checksum and the IPv4
 * Total Length / IPv6 Payload Length, bit 1 fixes the ICMP/ICMPv6 checksum (so mutations
 * reach the code behind the checks), bits 2-7 advance the clock (timers: reassembly expiry).
 * receive() must not throw; the reassembly buffers stay within their configured limits.
 */

import { pseudoHeaderSum } from '../../packages/ip/src/checksum.ts';
import { Host } from '../../packages/ip/src/host.ts';
import type { IpDelivery } from '../../packages/ip/src/types.ts';
import type { Link } from '../../packages/link/src/link.ts';
import { finishChecksum, sum16 } from '../../packages/wire/src/checksum.ts';
import { VirtualClock } from '../../packages/wire/src/clock.ts';
import { Counters } from '../../packages/wire/src/trace.ts';
import { chunks } from './expect.ts';

export const HOST_V4 = '198.18.0.2';
export const HOST_V6 = 'fd00:5757::2';
const MAX_BYTES = 64 * 1024;

class SinkLink implements Link {
  readonly name = 'fuzz0';
  readonly mtu = 1500;
  readonly counters = new Counters();
  sent = 0;
  send(): void {
    this.sent++;
  }
  onPacket(): void {}
  close(): void {}
}

function fixUp(b: Uint8Array, flags: number): void {
  if (b.length < 1) return;
  const v = b[0]! >> 4;
  if (v === 4 && b.length >= 20) {
    const ihl = Math.max(20, Math.min(b.length, (b[0]! & 0x0f) * 4));
    if (flags & 1) {
      b[2] = b.length >> 8;
      b[3] = b.length & 0xff;
      b[10] = 0;
      b[11] = 0;
      const ck = finishChecksum(sum16(b.subarray(0, ihl)));
      b[10] = ck >> 8;
      b[11] = ck & 0xff;
    }
    if (flags & 2 && b[9] === 1 && b.length >= ihl + 4) {
      b[ihl + 2] = 0;
      b[ihl + 3] = 0;
      const ck = finishChecksum(sum16(b.subarray(ihl)));
      b[ihl + 2] = ck >> 8;
      b[ihl + 3] = ck & 0xff;
    }
  } else if (v === 6 && b.length >= 40) {
    if (flags & 1) {
      b[4] = (b.length - 40) >> 8;
      b[5] = (b.length - 40) & 0xff;
    }
    // Only when ICMPv6 follows the fixed header directly (no extension headers).
    if (flags & 2 && b[6] === 58 && b.length >= 44) {
      b[42] = 0;
      b[43] = 0;
      const pseudo = pseudoHeaderSum(b.subarray(8, 24), b.subarray(24, 40), 58, b.length - 40);
      const ck = finishChecksum(sum16(b.subarray(40), pseudo));
      b[42] = ck >> 8;
      b[43] = ck & 0xff;
    }
  }
}

export function fuzz(data: Uint8Array): void {
  const clock = new VirtualClock();
  const host = new Host({
    name: 'B',
    clock,
    maxReassemblyBytesTotal: MAX_BYTES,
    maxReassemblyBytesPerSource: MAX_BYTES / 2,
    maxReassemblyDatagramsPerSource: 8,
    maxReassemblyFragmentsPerSource: 64,
  });
  const link = new SinkLink();
  const iface = host.addInterface({ link, ipv4: `${HOST_V4}/24`, ipv6: `${HOST_V6}/64` });
  // A transport on UDP that takes deliveries and ICMP errors, as udp/tcp do.
  host.registerProtocol(17, { receive: (_d: IpDelivery) => {}, receiveIcmpError: () => {} });
  for (const c of chunks(data)) {
    if (c.length === 0) continue;
    const flags = c[0]!;
    const packet = c.slice(1);
    fixUp(packet, flags);
    host.receive(packet, iface);
    clock.advance((flags >> 2) * 500);
    const s = host.stats;
    if (s.reassemblyBytes > MAX_BYTES)
      throw new Error(`reassembly holds ${s.reassemblyBytes} bytes, limit ${MAX_BYTES}`);
    if (s.reassemblyDatagrams > 2 * 8 * 16)
      throw new Error(`${s.reassemblyDatagrams} datagrams in reassembly`);
  }
  host.close();
}
