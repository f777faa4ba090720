import { it } from 'vitest';
import { runScenario } from '/work/main/packages/tcp/test/stream.property.test.ts';

it('dbg', () => {
  const s = JSON.parse(process.env.SC!);
  const p = runScenario(s, true);
  console.log(p.wire.slice(-Number(process.env.N ?? 30)).join('\n'));
  console.log(p.conns.a.stats, p.conns.b.stats, p.receivedBytes);
});
