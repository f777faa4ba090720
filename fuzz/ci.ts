/**
 * The CI fuzz budget: every target in exactly one group, one vitest file per group
 * (test/fuzz-<group>.test.ts) so the groups run in parallel. Each target stops after `runs`
 * executions or its share of the group's `seconds`, whichever comes first; the seed is fixed
 * (override with STEPWIRE_FUZZ_SEED) so a CI failure replays with `pnpm fuzz <target> --seed S
 * --runs N`. Together the groups stay within 90 s of wall time on two cores (45 s of
 * fuzzing plus about a second per target to build it, even when vitest runs the files one
 * after another, as it does on two cores).
 */
export interface CiGroup {
  seconds: number;
  targets: Record<string, { runs: number }>;
}

export const CI_SEED = Number(process.env.STEPWIRE_FUZZ_SEED ?? 20261206);

export const CI_GROUPS: Record<string, CiGroup> = {
  ip: {
    seconds: 9,
    targets: {
      ipv4: { runs: 40_000 },
      'ipv4-quoted': { runs: 40_000 },
      ipv6: { runs: 40_000 },
      'ipv6-quoted': { runs: 40_000 },
      icmpv4: { runs: 40_000 },
      icmpv6: { runs: 40_000 },
      udp: { runs: 20_000 },
      pcap: { runs: 40_000 },
      pcapng: { runs: 20_000 },
      'ip-host': { runs: 10_000 },
    },
  },
  tcp: {
    seconds: 9,
    targets: {
      'tcp-segment': { runs: 40_000 },
      'tcp-options': { runs: 40_000 },
      'tcp-machine': { runs: 15_000 },
    },
  },
  'tls-codecs': {
    seconds: 10,
    targets: {
      'tls-record': { runs: 40_000 },
      'tls-handshake': { runs: 40_000 },
      'tls-extensions': { runs: 40_000 },
      'tls-session': { runs: 30_000 },
      der: { runs: 30_000 },
      x509: { runs: 15_000 },
      pem: { runs: 15_000 },
      pkcs8: { runs: 15_000 },
    },
  },
  'http-quic': {
    seconds: 11,
    targets: {
      'h1-codec': { runs: 20_000 },
      hpack: { runs: 30_000 },
      'h2-frames': { runs: 30_000 },
      ws: { runs: 30_000 },
      'quic-packet': { runs: 30_000 },
      'quic-frames': { runs: 30_000 },
      qpack: { runs: 30_000 },
      'h1-connection': { runs: 10_000 },
      'h2-connection': { runs: 10_000 },
    },
  },
  'tls-machines': {
    seconds: 8,
    targets: {
      'tls-server': { runs: 4_000 },
      'tls-client': { runs: 4_000 },
    },
  },
};
