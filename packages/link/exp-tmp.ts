import { Netns } from './src/netns.ts';

const ns = Netns.create({ name: 'sw-exp', device: 'swx0' });
const t0 = performance.now();
ns.link.onPacket((p) =>
  console.log(
    ((performance.now() - t0) / 1000).toFixed(2),
    'pkt',
    p.length,
    Buffer.from(p.subarray(0, 48)).toString('hex'),
  ),
);
await new Promise((r) => setTimeout(r, 8000));
await ns.close();
