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
import { type Benchmark, type BenchResult, rateAsync, result } from './lib.ts';

const { ca, leaf } = createStepwireCredentials(new Date());
const SERVER_NAME = 'stepwire.test';
const MEASURE_MS = 1500;
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

async function handshakeRate(make: () => Promise<Pair>): Promise<number> {
  return rateAsync(async () => {
    const pair = await make();
    pair.close();
    return 1;
  }, MEASURE_MS);
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

/** Bulk throughput in MB/s (10^6 bytes) over one connection. */
async function bulkRate(make: () => Promise<Pair>): Promise<number> {
  const pair = await make();
  await transfer(pair, 1024 * 1024);
  const start = performance.now();
  let bytes = 0;
  while (performance.now() - start < MEASURE_MS) {
    await transfer(pair, BULK_ROUND);
    bytes += BULK_ROUND;
  }
  const seconds = (performance.now() - start) / 1000;
  pair.close();
  return bytes / seconds / 1e6;
}

export const tlsBenchmarks: Benchmark[] = [
  {
    name: 'tls handshake',
    async run() {
      const out: BenchResult[] = [];
      for (const p of PROVIDERS) {
        // The peer is measured next to each of ours: the machine's load drifts during a run.
        const peer = await handshakeRate(() => nodePair());
        const ours = await handshakeRate(() => ourPair(p));
        out.push(result(`tls full handshake P-256 (${p.name})`, ours, 'hs/s', 'node:tls', peer));
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
          const peer = await bulkRate(() => nodePair(name));
          const ours = await bulkRate(() => ourPair(p, code));
          out.push(result(`tls bulk ${name} (${p.name})`, ours, 'MB/s', 'node:tls', peer));
        }
      }
      return out;
    },
  },
];
