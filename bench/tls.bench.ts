/**
 * TLS 1.3: full handshakes per second and bulk throughput of our stack, once per crypto
 * provider, against node:tls (OpenSSL) in the same run. Both run over an in-memory Duplex
 * pair (stream.duplexPair), so no TCP is measured: only TLS and its crypto.
 *
 * 'noble' is the all-TypeScript configuration (nobleCrypto for the record layer and key
 * exchange, pki's pureSignatures for certificates); 'node' uses node:crypto for both.
 */
import { type Duplex, duplexPair } from 'node:stream';
import tls from 'node:tls';
import {
  accept,
  CipherSuite,
  type CryptoProvider,
  connect,
  NamedGroup,
  nobleCrypto,
  nodeCrypto,
  type TlsSocket,
} from '@stepwire/tls';
import {
  createStepwireCredentials,
  nodeSignatures,
  pureSignatures,
  type SignatureProvider,
} from '../packages/tls/src/pki/index.ts';
import { pkiSigner, pkiVerifier } from '../test/support/tls-pki.ts';
import { type Benchmark, type BenchResult, result } from './lib.ts';

const { ca, leaf } = createStepwireCredentials(new Date());
const SERVER_NAME = 'stepwire.test';
const MEASURE_MS = 1500;
/**
 * Peer and ours are measured in turns, ROUNDS times each for MEASURE_MS / ROUNDS, and each
 * side's best round counts: on a shared machine other work comes and goes, and a single
 * back-to-back pair of runs can put a load spike on one side only.
 */
const ROUNDS = 3;
/** Bytes per bulk round; rounds repeat until MEASURE_MS has passed. */
const BULK_ROUND = 8 * 1024 * 1024;
const CHUNK = 64 * 1024;

interface Provider {
  name: string;
  crypto: CryptoProvider;
  signatures: SignatureProvider;
}
const PROVIDERS: Provider[] = [
  { name: 'noble', crypto: nobleCrypto, signatures: pureSignatures },
  { name: 'node', crypto: nodeCrypto, signatures: nodeSignatures },
];

const SUITES = [
  ['TLS_AES_128_GCM_SHA256', CipherSuite.TLS_AES_128_GCM_SHA256],
  ['TLS_AES_256_GCM_SHA384', CipherSuite.TLS_AES_256_GCM_SHA384],
  ['TLS_CHACHA20_POLY1305_SHA256', CipherSuite.TLS_CHACHA20_POLY1305_SHA256],
] as const;

/** A connected pair: `client` writes, `server` reads; `close` tears both down. */
interface Pair {
  client: Duplex;
  server: Duplex;
  close(): void;
}

function once(emitter: NodeJS.EventEmitter, event: string): Promise<void> {
  return new Promise((resolve, reject) => {
    emitter.once(event, () => {
      emitter.off('error', reject);
      resolve();
    });
    emitter.once('error', reject);
  });
}

async function ourPair(p: Provider, suite?: number): Promise<Pair> {
  const [a, b] = duplexPair();
  const server: TlsSocket = accept(b, {
    signer: pkiSigner(leaf, p.signatures),
    crypto: p.crypto,
    ...(suite ? { cipherSuites: [suite] } : {}),
  });
  const client: TlsSocket = connect(a, {
    serverName: SERVER_NAME,
    verifier: pkiVerifier(ca, 'serverAuth', p.signatures),
    crypto: p.crypto,
    // Like for like: node:tls (OpenSSL 3.0) negotiates X25519; our default offers the hybrid
    // X25519MLKEM768 first, whose pure-JS ML-KEM would be measured instead of the handshake.
    groups: [NamedGroup.x25519],
    ...(suite ? { cipherSuites: [suite] } : {}),
  });
  await Promise.all([once(client, 'secure'), once(server, 'secure')]);
  return {
    client,
    server,
    close: () => {
      client.destroy();
      server.destroy();
    },
  };
}

const nodeServerContext = tls.createSecureContext({
  cert: leaf.certificatePem,
  key: leaf.privateKeyPem,
  minVersion: 'TLSv1.3',
});

async function nodePair(suite?: string): Promise<Pair> {
  const [a, b] = duplexPair();
  const server = new tls.TLSSocket(b, {
    isServer: true,
    secureContext: suite
      ? tls.createSecureContext({
          cert: leaf.certificatePem,
          key: leaf.privateKeyPem,
          minVersion: 'TLSv1.3',
          ciphers: suite,
        })
      : nodeServerContext,
  });
  const client = tls.connect({
    socket: a,
    servername: SERVER_NAME,
    ca: ca.certificatePem,
    minVersion: 'TLSv1.3',
  });
  await Promise.all([once(client, 'secureConnect'), once(server, 'secure')]);
  return {
    client,
    server,
    close: () => {
      client.destroy();
      server.destroy();
    },
  };
}

/**
 * A rate both per wall-clock second and per CPU-second of this process. Both ends of both
 * stacks run in this process over an in-memory pair, so CPU time is all the work there is;
 * per CPU-second, the figure does not move with what else the machine is doing.
 */
interface Rate {
  wall: number;
  cpu: number;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

async function handshakeRate(make: () => Promise<Pair>, ms: number): Promise<Rate> {
  (await make()).close();
  let ops = 0;
  const start = performance.now();
  const cpu0 = cpuSeconds();
  while (performance.now() - start < ms) {
    (await make()).close();
    ops++;
  }
  return { wall: ops / ((performance.now() - start) / 1000), cpu: ops / (cpuSeconds() - cpu0) };
}

/** [peer, ours]: each side's best of ROUNDS alternating rounds, per wall and per CPU second. */
async function inTurns(
  peer: (ms: number) => Promise<Rate>,
  ours: (ms: number) => Promise<Rate>,
): Promise<[Rate, Rate]> {
  const best: [Rate, Rate] = [
    { wall: 0, cpu: 0 },
    { wall: 0, cpu: 0 },
  ];
  for (let i = 0; i < ROUNDS; i++) {
    for (const [side, run] of [peer, ours].entries()) {
      const r = await run(MEASURE_MS / ROUNDS);
      const b = best[side] as Rate;
      b.wall = Math.max(b.wall, r.wall);
      b.cpu = Math.max(b.cpu, r.cpu);
    }
  }
  return best;
}

/** Pushes `bytes` from client to server with backpressure; resolves when the server has read them all. */
function transfer(pair: Pair, bytes: number): Promise<void> {
  const chunk = Buffer.alloc(CHUNK, 0x5a);
  return new Promise((resolve, reject) => {
    let received = 0;
    const onData = (d: Buffer): void => {
      received += d.length;
      if (received >= bytes) {
        pair.server.off('data', onData);
        pair.server.off('error', reject);
        resolve();
      }
    };
    pair.server.on('data', onData);
    pair.server.once('error', reject);
    let sent = 0;
    const pump = (): void => {
      while (sent < bytes) {
        const n = Math.min(CHUNK, bytes - sent);
        sent += n;
        if (!pair.client.write(n === CHUNK ? chunk : chunk.subarray(0, n))) {
          pair.client.once('drain', pump);
          return;
        }
      }
    };
    pump();
  });
}

/** Bulk throughput in MB/s (10^6 bytes) over one connection, per wall and per CPU second. */
async function bulkRate(make: () => Promise<Pair>, ms: number): Promise<Rate> {
  const pair = await make();
  await transfer(pair, 1024 * 1024);
  const start = performance.now();
  const cpu0 = cpuSeconds();
  let bytes = 0;
  while (performance.now() - start < ms) {
    await transfer(pair, BULK_ROUND);
    bytes += BULK_ROUND;
  }
  const seconds = (performance.now() - start) / 1000;
  const cpu = cpuSeconds() - cpu0;
  pair.close();
  return { wall: bytes / seconds / 1e6, cpu: bytes / cpu / 1e6 };
}

export const tlsBenchmarks: Benchmark[] = [
  {
    name: 'tls handshake',
    async run() {
      const out: BenchResult[] = [];
      for (const p of PROVIDERS) {
        // The peer is measured next to each of ours, in turns: the machine's load drifts during a run.
        const [peer, ours] = await inTurns(
          (ms) => handshakeRate(() => nodePair(), ms),
          (ms) => handshakeRate(() => ourPair(p), ms),
        );
        const name = `tls full handshake P-256 (${p.name})`;
        out.push(result(name, ours.wall, 'hs/s', 'node:tls', peer.wall));
        out.push(result(`${name} cpu`, ours.cpu, 'hs/cpu-s', 'node:tls', peer.cpu));
      }
      return out;
    },
  },
  {
    name: 'tls bulk',
    async run() {
      const out: BenchResult[] = [];
      for (const [name, code] of SUITES) {
        for (const p of PROVIDERS) {
          const [peer, ours] = await inTurns(
            (ms) => bulkRate(() => nodePair(name), ms),
            (ms) => bulkRate(() => ourPair(p, code), ms),
          );
          const label = `tls bulk ${name} (${p.name})`;
          out.push(result(label, ours.wall, 'MB/s', 'node:tls', peer.wall));
          out.push(result(`${label} cpu`, ours.cpu, 'MB/cpu-s', 'node:tls', peer.cpu));
        }
      }
      return out;
    },
  },
];
