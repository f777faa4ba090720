/**
 * HTTPS for `stepwire serve`: our TLS 1.3 (@stepwire/tls createServer) over our TCP, with
 * our HTTP/1.1 server and the routes of http-app.ts on top (the same as port 80).
 *
 * The certificate comes from a small CA that serve makes on first use and keeps, so that
 * `curl --cacert ~/.stepwire/ca/ca.pem https://198.18.0.2/` verifies it run after run:
 *
 *   $STEPWIRE_HOME/ca/ (default ~/.stepwire/ca/)
 *     ca.pem   ca.key     the CA (P-256, 10 years); made when missing, unreadable or expired
 *     leaf.pem leaf.key   stepwire.test, 198.18.0.2, fd00:5757::2 (ECDSA P-256); made again
 *                         when missing, expired (or within a day of it), or not issued by ca.pem
 *     leaf-rsa.pem leaf-rsa.key           the same names, RSA 2048 (RSA-PSS signatures)
 *     leaf-ed25519.pem leaf-ed25519.key   the same names, Ed25519
 * The server holds all three and each handshake takes the one the client's
 * signature_algorithms can verify (as nginx and rustls do), so a client that offers only
 * RSA-PSS, say, still connects.
 * Keys are written with mode 0600 (the directory 0700), each file atomically (write, rename).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { HttpServer } from '@stepwire/http';
import { systemError, type Tcp, type TcpSocket } from '@stepwire/tcp';
import { createServer, pki, type SecureServer, type SecureSocket } from '@stepwire/tls';
import type { TraceBus } from '@stepwire/wire';
import { createHttpApp } from './http-app.ts';

const DAY = 86_400_000;

export interface TlsIdentity {
  /** Certificate chain PEM, leaf first. */
  certPem: string;
  keyPem: string;
  /** Where the CA certificate lies, for `curl --cacert`; absent for user-supplied certificates. */
  caPath?: string;
  /** The CA certificate PEM, when we made it. */
  caPem?: string;
  /** More certificates (other key types) besides certPem/keyPem, chosen per handshake by signature_algorithms. */
  more?: { certPem: string; keyPem: string }[];
}

/** The leaves serve holds: file stem and key type, the first is certPem/keyPem. */
const LEAF_KINDS = [
  { stem: 'leaf', keyType: 'P-256' },
  { stem: 'leaf-rsa', keyType: 'rsa2048' },
  { stem: 'leaf-ed25519', keyType: 'ed25519' },
] as const;

/** $STEPWIRE_HOME/ca, or ~/.stepwire/ca. */
export function defaultCaDir(env: NodeJS.ProcessEnv = process.env): string {
  const home = env.STEPWIRE_HOME ?? path.join(os.homedir(), '.stepwire');
  return path.join(home, 'ca');
}

function writeAtomic(file: string, text: string, mode: number): void {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, text, { mode });
  // writeFileSync's mode only applies to new files; the rename target takes the tmp file's mode.
  fs.chmodSync(tmp, mode);
  fs.renameSync(tmp, file);
}

function readIf(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The stored credentials if both files parse, belong together and are valid `margin` ms from now. */
function loadValid(
  certFile: string,
  keyFile: string,
  now: Date,
  margin: number,
): pki.Credentials | undefined {
  const cert = readIf(certFile);
  const key = readIf(keyFile);
  if (cert === undefined || key === undefined) return undefined;
  try {
    const c = pki.credentialsFromPem(cert, key);
    const t = now.getTime();
    if (c.certificate.notBefore.getTime() > t || c.certificate.notAfter.getTime() < t + margin)
      return undefined;
    return c;
  } catch {
    return undefined;
  }
}

export interface CaStoreResult extends TlsIdentity {
  caPath: string;
  caPem: string;
  /** What was made on this call (for the start-up lines). */
  made: { ca: boolean; leaf: boolean };
}

/**
 * The serve CA and its leaf from `dir`, made or renewed as needed (see the file comment).
 * Throws the file system's error when `dir` cannot be written.
 */
export function loadOrCreateServeIdentity(dir: string = defaultCaDir(), now = new Date()): CaStoreResult {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Two serves starting at once must not each write half of a CA (one's ca.pem, the other's ca.key).
  return withLock(path.join(dir, '.lock'), () => loadOrCreateLocked(dir, now));
}

/** A 10-second bound on waiting for another process's lock; an older lock is taken as abandoned. */
const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 30_000;

function withLock<T>(lock: string, fn: () => T): T {
  const end = Date.now() + LOCK_WAIT_MS;
  const nap = new Int32Array(new SharedArrayBuffer(4));
  for (;;) {
    try {
      fs.closeSync(fs.openSync(lock, 'wx', 0o600));
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const age = Date.now() - (fs.statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > LOCK_STALE_MS) fs.rmSync(lock, { force: true });
      else if (Date.now() > end)
        throw new Error(`${lock} is held by another stepwire; remove it if none runs`);
      else Atomics.wait(nap, 0, 0, 50);
    }
  }
  try {
    return fn();
  } finally {
    fs.rmSync(lock, { force: true });
  }
}

function loadOrCreateLocked(dir: string, now: Date): CaStoreResult {
  const files = {
    ca: path.join(dir, 'ca.pem'),
    caKey: path.join(dir, 'ca.key'),
  };
  let ca = loadValid(files.ca, files.caKey, now, DAY);
  const madeCa = ca === undefined;
  if (!ca) {
    ca = pki.createCertificateAuthority({ now, commonName: `stepwire serve CA (${os.hostname()})` });
    writeAtomic(files.caKey, ca.privateKeyPem, 0o600);
    writeAtomic(files.ca, ca.certificatePem, 0o644);
  }
  let madeLeaf = false;
  const leaves: pki.Credentials[] = [];
  for (const kind of LEAF_KINDS) {
    const certFile = path.join(dir, `${kind.stem}.pem`);
    const keyFile = path.join(dir, `${kind.stem}.key`);
    let leaf = madeCa ? undefined : loadValid(certFile, keyFile, now, DAY);
    if (leaf) {
      // The leaf must chain to this CA and still name every address serve answers on.
      try {
        for (const hostname of [
          ...pki.STEPWIRE_SERVER_NAMES.dnsNames,
          ...pki.STEPWIRE_SERVER_NAMES.ipAddresses,
        ])
          pki.verifyCertificateChain(leaf.certificate, [], { trustAnchors: [ca.certificate], now, hostname });
      } catch {
        leaf = undefined;
      }
    }
    if (!leaf) {
      madeLeaf = true;
      leaf = pki.createLeafCertificate(ca, {
        now,
        dnsNames: [...pki.STEPWIRE_SERVER_NAMES.dnsNames],
        ipAddresses: [...pki.STEPWIRE_SERVER_NAMES.ipAddresses],
        validDays: 90,
        extKeyUsage: ['serverAuth'],
        keyType: kind.keyType,
      });
      writeAtomic(keyFile, leaf.privateKeyPem, 0o600);
      writeAtomic(certFile, leaf.certificatePem, 0o644);
    }
    leaves.push(leaf);
  }
  const [first, ...more] = leaves as [pki.Credentials, ...pki.Credentials[]];
  return {
    certPem: first.certificatePem + ca.certificatePem,
    keyPem: first.privateKeyPem,
    more: more.map((l) => ({ certPem: l.certificatePem + ca.certificatePem, keyPem: l.privateKeyPem })),
    caPath: files.ca,
    caPem: ca.certificatePem,
    made: { ca: madeCa, leaf: madeLeaf },
  };
}

/** A fresh in-memory CA and leaf (nothing written): for services started without a configured identity. */
export function ephemeralServeIdentity(now = new Date()): TlsIdentity {
  const { ca, leaf } = pki.createStepwireCredentials(now);
  const more = LEAF_KINDS.slice(1).map((kind) => {
    const l = pki.createLeafCertificate(ca, {
      now,
      dnsNames: [...pki.STEPWIRE_SERVER_NAMES.dnsNames],
      ipAddresses: [...pki.STEPWIRE_SERVER_NAMES.ipAddresses],
      extKeyUsage: ['serverAuth'],
      keyType: kind.keyType,
    });
    return { certPem: l.certificatePem + ca.certificatePem, keyPem: l.privateKeyPem };
  });
  return {
    certPem: leaf.certificatePem + ca.certificatePem,
    keyPem: leaf.privateKeyPem,
    more,
    caPem: ca.certificatePem,
  };
}

/** The user's own --cert/--key files; a key that is not the certificate's is a one-line error. */
export function identityFromFiles(certFile: string, keyFile: string): TlsIdentity {
  const certPem = fs.readFileSync(certFile, 'utf8');
  const keyPem = fs.readFileSync(keyFile, 'utf8');
  // Parse now, so a wrong file fails at start-up rather than at the first handshake.
  pki.credentialsFromPem(certPem, keyPem);
  return { certPem, keyPem };
}

export interface HttpsOptions {
  identity: TlsIdentity;
  /** Receives each NSS key log line (SSLKEYLOGFILE) of every connection. */
  keylog?: (line: string) => void;
  /** Handshake messages and state changes of every connection, as host `traceHost`. */
  trace?: TraceBus;
  traceHost?: string;
  app?: HttpServer;
  /** Accept data in the SYN with a valid Fast Open cookie (RFC 7413). */
  fastOpen?: boolean;
}

export interface HttpsService {
  readonly port: number;
  readonly tls: SecureServer;
  readonly app: HttpServer;
  /** TCP connections accepted, handshakes completed, handshakes failed. */
  readonly connections: number;
  readonly handshakes: number;
  readonly tlsErrors: number;
  close(): void;
}

/** HTTPS on `port` of our TCP (both families): TLS 1.3 with ALPN h2 or http/1.1, then the HTTP app (both versions). */
export function httpsOverTcp(tcp: Tcp, port: number, options: HttpsOptions): HttpsService {
  const app = options.app ?? createHttpApp();
  const counts = { connections: 0, handshakes: 0, tlsErrors: 0 };
  const secure = createServer(
    {
      certificates: [
        { cert: options.identity.certPem, key: options.identity.keyPem },
        ...(options.identity.more ?? []).map((m) => ({ cert: m.certPem, key: m.keyPem })),
      ],
      // h2 first, as browsers and curl prefer it; the app serves both (RFC 9113 §3.2).
      ALPNProtocols: ['h2', 'http/1.1'],
      ...(options.keylog ? { keylog: options.keylog } : {}),
      ...(options.trace ? { trace: options.trace, hostName: options.traceHost ?? 'https' } : {}),
    },
    (s: SecureSocket) => {
      counts.handshakes++;
      app.emit('connection', s);
    },
  );
  // A client that refuses our certificate (curl without --cacert) ends only its own connection.
  secure.on('tlsClientError', () => {
    counts.tlsErrors++;
  });
  const open = new Set<TcpSocket>();
  const server = tcp.createServer({ fastOpen: options.fastOpen === true }, (s) => {
    counts.connections++;
    open.add(s);
    s.once('close', () => open.delete(s));
    s.on('error', () => {});
    secure.emit('connection', s);
  });
  server.on('error', () => {});
  server.listen(port, '::');
  if (!server.listening) throw systemError('listen', 'EADDRINUSE', '::', port);
  return {
    port,
    tls: secure,
    app,
    get connections() {
      return counts.connections;
    },
    get handshakes() {
      return counts.handshakes;
    },
    get tlsErrors() {
      return counts.tlsErrors;
    },
    close() {
      secure.close(true);
      server.close();
      for (const s of open) s.destroy();
      open.clear();
    },
  };
}
