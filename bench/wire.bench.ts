import { internetChecksum } from '@stepwire/wire';
import { type Benchmark, rate, result } from './lib.ts';

/** The peer: the RFC 1071 definition as a plain loop over bytes, one word at a time. */
function byteLoopChecksum(data: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i + 1 < data.length; i += 2) {
    sum += (data[i]! << 8) | data[i + 1]!;
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (data.length & 1) sum += data[data.length - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

export const wireBenchmarks: Benchmark[] = [
  {
    name: 'checksum',
    async run() {
      const data = new Uint8Array(1500).map((_, i) => (i * 31) & 0xff);
      let sink = 0;
      const ours =
        rate(() => {
          sink ^= internetChecksum(data);
        }) * data.length;
      const peer =
        rate(() => {
          sink ^= byteLoopChecksum(data);
        }) * data.length;
      if (sink === -1) console.log(sink);
      return [result('checksum 1500 B', ours / 1e9, 'GB/s', 'plain byte loop', peer / 1e9)];
    },
  },
];
