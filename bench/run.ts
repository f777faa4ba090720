import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { h2Benchmarks } from './h2.bench.ts';
import { hpackBenchmarks } from './hpack.bench.ts';
import { httpBenchmarks } from './http.bench.ts';
import { httpClientBenchmarks } from './http-client.bench.ts';
import { ipBenchmarks } from './ip.bench.ts';
import type { Benchmark, BenchResult } from './lib.ts';
import { loadBenchmarks } from './load.bench.ts';
import { quicBenchmarks } from './quic.bench.ts';
import { tcpBenchmarks } from './tcp.bench.ts';
import { tcpTunBenchmarks } from './tcp-tun.bench.ts';
import { tlsBenchmarks } from './tls.bench.ts';
import { tunBenchmarks } from './tun.bench.ts';
import { wireBenchmarks } from './wire.bench.ts';
import { workersBenchmarks } from './workers.bench.ts';

const { values } = parseArgs({
  options: { json: { type: 'string' }, filter: { type: 'string' } },
  allowPositionals: false,
});

const all: Benchmark[] = [
  ...wireBenchmarks,
  ...ipBenchmarks,
  ...tunBenchmarks,
  ...tcpBenchmarks,
  ...tcpTunBenchmarks,
  ...tlsBenchmarks,
  ...quicBenchmarks,
  ...httpBenchmarks,
  ...httpClientBenchmarks,
  ...hpackBenchmarks,
  ...h2Benchmarks,
  ...loadBenchmarks,
  ...workersBenchmarks,
];
const chosen = values.filter ? all.filter((b) => b.name.includes(values.filter!)) : all;

const results: BenchResult[] = [];
const fmt = (n: number | null): string =>
  n === null ? '-' : n >= 100 ? n.toFixed(0) : n >= 1 ? n.toFixed(2) : n.toPrecision(3);

console.log(
  `${'benchmark'.padEnd(44)} ${'value'.padStart(12)} unit        ${'peer'.padEnd(28)} ${'peer value'.padStart(12)}  ratio`,
);
for (const b of chosen) {
  const missing = b.requires?.();
  if (missing) {
    console.log(`${b.name.padEnd(44)} not run: ${missing}`);
    continue;
  }
  for (const r of await b.run()) {
    results.push(r);
    console.log(
      `${r.name.padEnd(44)} ${fmt(r.value).padStart(12)} ${r.unit.padEnd(11)} ${(r.peer ?? '-').padEnd(28)} ${fmt(r.peerValue).padStart(12)}  ${r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`}`,
    );
  }
}
for (const r of results) {
  console.log(
    `BENCH ${r.name} ${r.value} ${r.unit} ${r.peer ?? '-'} ${r.peerValue ?? '-'} ${r.ratio ?? '-'}`,
  );
}
if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
