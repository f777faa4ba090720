import { execFileSync } from 'node:child_process';

/** Preferences that make tshark check every checksum it can, so a bad one is reported. */
const CHECK_ALL = [
  '-o',
  'ip.check_checksum:TRUE',
  '-o',
  'udp.check_checksum:TRUE',
  '-o',
  'tcp.check_checksum:TRUE',
];

/**
 * Run tshark over a pcap and return one record per frame with the requested fields
 * (multiple occurrences joined with ','). Throws — never skips — when tshark is missing.
 */
export function tsharkFields(
  pcap: string,
  fields: string[],
  opts: { filter?: string; extra?: string[] } = {},
): Record<string, string>[] {
  const args = [
    '-r',
    pcap,
    '-n',
    ...CHECK_ALL,
    ...(opts.extra ?? []),
    '-T',
    'fields',
    '-E',
    'separator=\t',
    '-E',
    'occurrence=a',
    '-E',
    'aggregator=,',
  ];
  if (opts.filter) args.push('-Y', opts.filter);
  for (const f of fields) args.push('-e', f);
  const out = execFileSync('tshark', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  return out
    .split('\n')
    .filter((l) => l.length > 0)
    .map((line) => {
      const cols = line.split('\t');
      return Object.fromEntries(fields.map((f, i) => [f, cols[i] ?? '']));
    });
}

/**
 * Frames tshark flags as malformed, or with a warning/error expert item (bad checksums
 * included once CHECK_ALL is on). An empty list is what an honest encoder produces.
 */
export function tsharkProblems(pcap: string, extra: string[] = []): string[] {
  return tsharkFields(pcap, ['frame.number', '_ws.col.Protocol', '_ws.expert.message', '_ws.col.Info'], {
    filter: '_ws.malformed || _ws.expert.severity >= warning',
    extra,
  }).map(
    (r) => `#${r['frame.number']} ${r['_ws.col.Protocol']} ${r['_ws.expert.message']} | ${r['_ws.col.Info']}`,
  );
}
