/**
 * The TLS 1.3 interop proving ground: certificate fixtures on disk and the independent peers
 * (OpenSSL's s_server/s_client, GnuTLS's gnutls-serv/gnutls-cli, curl) run as child processes
 * on loopback, with what each says about a handshake parsed into plain facts.
 *
 *   const fx = tlsFixtures();                                     // once per test run, PEM on disk
 *   const srv = await startOpensslServer({ ...fx.server['P-256'].leaf, mode: 'rev', groups: 'P-256' });
 *   const run = await runOpensslClient({ port: srv.port, caFile: fx.server['P-256'].ca.certFile,
 *                                        input: 'hello\n', until: /olleh/ });
 *   run.facts.cipher; run.facts.group; run.facts.reused; run.facts.earlyData; run.facts.verifyOk
 *   afterAll(stopAllPeers);
 *
 * Every peer is bounded: servers are killed by PID on stop() (and at process exit), clients
 * are killed by PID when their timeout runs out. A missing program is an error that names
 * scripts/install-peers.sh, never a skipped test.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type Credentials,
  createCertificateAuthority,
  createLeafCertificate,
  credentialsFromPem,
} from '../../packages/tls/src/pki/index.ts';

// ---------------------------------------------------------------------------------------------
// Names: TLS 1.3 cipher suites and groups as each peer spells them
// ---------------------------------------------------------------------------------------------

/** The three TLS 1.3 cipher suites everybody implements (RFC 8446 §9.1 plus ChaCha20). */
export const SUITES = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
] as const;
export type SuiteName = (typeof SUITES)[number];

/** The key-exchange groups the interop matrix covers. */
export const GROUPS = ['x25519', 'P-256'] as const;
export type GroupName = (typeof GROUPS)[number];

/** OpenSSL's -groups / -curves names. */
export const OPENSSL_GROUP: Record<GroupName, string> = { x25519: 'X25519', 'P-256': 'P-256' };
/** GnuTLS priority-string group keywords. */
export const GNUTLS_GROUP: Record<GroupName, string> = { x25519: 'GROUP-X25519', 'P-256': 'GROUP-SECP256R1' };
/** GnuTLS priority-string cipher keywords. */
export const GNUTLS_CIPHER: Record<SuiteName, string> = {
  TLS_AES_128_GCM_SHA256: 'AES-128-GCM',
  TLS_AES_256_GCM_SHA384: 'AES-256-GCM',
  TLS_CHACHA20_POLY1305_SHA256: 'CHACHA20-POLY1305',
};
/** IANA code points (RFC 8446 §B.4, §4.2.7), for comparing with our stack's numbers. */
export const SUITE_CODE: Record<SuiteName, number> = {
  TLS_AES_128_GCM_SHA256: 0x1301,
  TLS_AES_256_GCM_SHA384: 0x1302,
  TLS_CHACHA20_POLY1305_SHA256: 0x1303,
};
export const GROUP_CODE: Record<GroupName, number> = { x25519: 0x001d, 'P-256': 0x0017 };

/** Group names as the peers print them -> our names. */
const GROUP_ALIASES: Record<string, string> = {
  x25519: 'x25519',
  ecdh_x25519: 'x25519',
  'ecdhe-x25519': 'x25519',
  prime256v1: 'P-256',
  secp256r1: 'P-256',
  'p-256': 'P-256',
  'ecdhe-secp256r1': 'P-256',
  secp384r1: 'P-384',
  'ecdhe-secp384r1': 'P-384',
  secp521r1: 'P-521',
  x448: 'x448',
  'ecdhe-x448': 'x448',
};
export function normalizeGroup(name: string): string {
  return GROUP_ALIASES[name.toLowerCase()] ?? name;
}

const GNUTLS_CIPHER_TO_SUITE: Record<string, SuiteName> = {
  'AES-128-GCM': 'TLS_AES_128_GCM_SHA256',
  'AES-256-GCM': 'TLS_AES_256_GCM_SHA384',
  'CHACHA20-POLY1305': 'TLS_CHACHA20_POLY1305_SHA256',
};

/**
 * A GnuTLS priority string for TLS 1.3 only, optionally narrowed to some suites and groups
 * (the order given is the preference order, which decides what a gnutls-serv picks).
 */
export function gnutlsPriority(
  opts: { suites?: readonly SuiteName[]; groups?: readonly GroupName[] } = {},
): string {
  let p = 'NORMAL:-VERS-ALL:+VERS-TLS1.3';
  if (opts.suites) p += `:-CIPHER-ALL${opts.suites.map((s) => `:+${GNUTLS_CIPHER[s]}`).join('')}`;
  if (opts.groups) p += `:-GROUP-ALL${opts.groups.map((g) => `:+${GNUTLS_GROUP[g]}`).join('')}`;
  return p;
}

// ---------------------------------------------------------------------------------------------
// Peer programs: present, or a loud error
// ---------------------------------------------------------------------------------------------

export type PeerProgram = 'openssl' | 'gnutls-serv' | 'gnutls-cli' | 'curl';

/** Throws (never skips) when a peer program is not on PATH. */
export function requirePeer(program: PeerProgram): void {
  const r = spawnSync('/bin/sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  if (r.status !== 0) {
    throw new Error(
      `TLS interop needs '${program}', which is not installed: run 'bash scripts/install-peers.sh' (as root)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Certificate fixtures
// ---------------------------------------------------------------------------------------------

export type KeyKind = 'P-256' | 'ed25519' | 'rsa2048';
export const KEY_KINDS: readonly KeyKind[] = ['P-256', 'ed25519', 'rsa2048'];

/** A certificate and its key, on disk (PEM) and in memory. */
export interface PemIdentity {
  /** Path of the certificate PEM (just this certificate). */
  certFile: string;
  /** Path of the PKCS#8 private key PEM. */
  keyFile: string;
  certPem: string;
  keyPem: string;
  /** The same, decoded by our pki (for our own TLS stack). */
  credentials: Credentials;
}

export interface TlsFixtures {
  dir: string;
  /** For each key type, a CA of that type and a server leaf of that type it signed. */
  server: Record<KeyKind, { ca: PemIdentity; leaf: PemIdentity }>;
  /** Every server CA in one PEM bundle. */
  serverCaBundle: string;
  /** A separate P-256 CA and a client (clientAuth) leaf for mutual TLS; rsaLeaf: an RSA-2048 one (a bigger flight). */
  client: { ca: PemIdentity; leaf: PemIdentity; rsaLeaf: PemIdentity };
  /** A leaf signed by the P-256 server CA but for 'other.test' only: a name mismatch. */
  wrongName: PemIdentity;
  /** A CA nobody's certificate chains to: trusting only it must fail verification. */
  unrelatedCa: PemIdentity;
  /** The names every server leaf carries in subjectAltName. */
  names: { dns: string; ips: string[] };
}

const FIXTURE_VERSION = 2;
const FIXTURE_PREFIX = `stepwire-tls-fixtures-v${FIXTURE_VERSION}-`;
export const SERVER_NAME = 'stepwire.test';
const SERVER_IPS = ['127.0.0.1', '198.18.0.2', '::1'];

interface Manifest {
  created: string;
}

function files(dir: string, name: string): { certFile: string; keyFile: string } {
  return { certFile: join(dir, `${name}.pem`), keyFile: join(dir, `${name}.key`) };
}

function writeIdentity(dir: string, name: string, c: Credentials): void {
  const f = files(dir, name);
  writeFileSync(f.certFile, c.certificatePem);
  writeFileSync(f.keyFile, c.privateKeyPem, { mode: 0o600 });
}

function loadIdentity(dir: string, name: string): PemIdentity {
  const f = files(dir, name);
  const certPem = readFileSync(f.certFile, 'utf8');
  const keyPem = readFileSync(f.keyFile, 'utf8');
  return { ...f, certPem, keyPem, credentials: credentialsFromPem(certPem, keyPem) };
}

function buildFixtures(dir: string): void {
  const now = new Date();
  for (const kind of KEY_KINDS) {
    const ca = createCertificateAuthority({ now, keyType: kind, commonName: `stepwire test CA (${kind})` });
    const leaf = createLeafCertificate(ca, {
      now,
      dnsNames: [SERVER_NAME],
      ipAddresses: SERVER_IPS,
      keyType: kind,
      extKeyUsage: ['serverAuth'],
    });
    writeIdentity(dir, `${kind}-ca`, ca);
    writeIdentity(dir, `${kind}-leaf`, leaf);
    if (kind === 'P-256') {
      const wrong = createLeafCertificate(ca, { now, dnsNames: ['other.test'], extKeyUsage: ['serverAuth'] });
      writeIdentity(dir, 'wrong-name', wrong);
    }
  }
  const clientCa = createCertificateAuthority({ now, commonName: 'stepwire test client CA' });
  const client = createLeafCertificate(clientCa, {
    now,
    dnsNames: ['client.stepwire.test'],
    commonName: 'stepwire test client',
    extKeyUsage: ['clientAuth'],
  });
  writeIdentity(dir, 'client-ca', clientCa);
  writeIdentity(dir, 'client-leaf', client);
  writeIdentity(
    dir,
    'client-rsa-leaf',
    createLeafCertificate(clientCa, {
      now,
      dnsNames: ['client.stepwire.test'],
      commonName: 'stepwire test RSA client',
      keyType: 'rsa2048',
      extKeyUsage: ['clientAuth'],
    }),
  );
  writeIdentity(dir, 'unrelated-ca', createCertificateAuthority({ now, commonName: 'nobody we know' }));
  writeFileSync(
    join(dir, 'server-cas.pem'),
    KEY_KINDS.map((k) => readFileSync(join(dir, `${k}-ca.pem`), 'utf8')).join(''),
  );
  writeFileSync(
    join(dir, 'manifest.json'),
    JSON.stringify({ created: now.toISOString() } satisfies Manifest),
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Removes fixture directories whose test run (the owning parent process) has ended. */
function sweepStaleFixtures(): void {
  const pattern = /^stepwire-tls-fixtures-v\d+-(\d+)(?:\.tmp-(\d+))?$/;
  for (const name of readdirSync(tmpdir())) {
    const m = pattern.exec(name);
    if (!m) continue;
    const owner = Number(m[2] ?? m[1]);
    if (!alive(owner)) rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

let fixtures: TlsFixtures | undefined;

/**
 * The certificate fixtures, made once per test run: vitest's workers are children of one
 * runner process, so the directory is keyed by the parent's PID; the first worker builds it
 * in a private directory and renames it into place (atomic), the others load it. Directories
 * of runs that have ended are removed by the next run.
 */
export function tlsFixtures(): TlsFixtures {
  if (fixtures) return fixtures;
  const dir = join(tmpdir(), `${FIXTURE_PREFIX}${process.ppid}`);
  let manifest: Manifest | undefined;
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  } catch {
    manifest = undefined;
  }
  // Leaves are backdated an hour and valid for a year; a day-old set is rebuilt anyway.
  if (!manifest || Date.now() - Date.parse(manifest.created) > 86_400_000) {
    sweepStaleFixtures();
    const scratch = `${dir}.tmp-${process.pid}`;
    rmSync(scratch, { recursive: true, force: true });
    mkdirSync(scratch, { recursive: true });
    buildFixtures(scratch);
    if (manifest) rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(scratch, dir);
    } catch (e) {
      // Another worker got there first (ENOTEMPTY/EEXIST): theirs is as good as ours.
      rmSync(scratch, { recursive: true, force: true });
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    }
  }
  const server = Object.fromEntries(
    KEY_KINDS.map((k) => [k, { ca: loadIdentity(dir, `${k}-ca`), leaf: loadIdentity(dir, `${k}-leaf`) }]),
  ) as TlsFixtures['server'];
  fixtures = {
    dir,
    server,
    serverCaBundle: join(dir, 'server-cas.pem'),
    client: {
      ca: loadIdentity(dir, 'client-ca'),
      leaf: loadIdentity(dir, 'client-leaf'),
      rsaLeaf: loadIdentity(dir, 'client-rsa-leaf'),
    },
    wrongName: loadIdentity(dir, 'wrong-name'),
    unrelatedCa: loadIdentity(dir, 'unrelated-ca'),
    names: { dns: SERVER_NAME, ips: SERVER_IPS },
  };
  return fixtures;
}

/** A fresh private scratch directory for session files, early data and key logs. */
export function scratchDir(label = 'run'): string {
  const dir = join(tlsFixtures().dir, `${label}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`);
  mkdirSync(dir, { recursive: true });
  scratchDirs.push(dir);
  return dir;
}
const scratchDirs: string[] = [];

// ---------------------------------------------------------------------------------------------
// Child processes, bounded
// ---------------------------------------------------------------------------------------------

const live = new Set<PeerProcess>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Last resort if a test file dies without its afterAll: no peer outlives the worker.
  process.once('exit', () => {
    for (const p of live) p.killNow();
  });
}

/**
 * A running peer program: its output so far, its stdin, and a bounded stop. Marks, waitFor
 * and text() work on stdout and stderr interleaved as they arrived (peers print their status
 * lines to either), stdout() on stdout alone (data a client received).
 */
export class PeerProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly command: string;
  private out = '';
  private err = '';
  private all = '';
  private waiters: { re: RegExp; since: number; resolve: (m: RegExpExecArray) => void }[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exitStatus: { code: number | null; signal: NodeJS.Signals | null } | undefined;

  constructor(program: string, args: string[], opts: { cwd?: string } = {}) {
    installExitHook();
    this.command = [program, ...args].join(' ');
    this.child = spawn(program, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    if (this.child.pid === undefined) throw new Error(`could not start ${program}`);
    this.pid = this.child.pid;
    live.add(this);
    this.child.stdout!.setEncoding('latin1');
    this.child.stderr!.setEncoding('latin1');
    this.child.stdout!.on('data', (s: string) => {
      this.out += s;
      this.all += s;
      this.check();
    });
    this.child.stderr!.on('data', (s: string) => {
      this.err += s;
      this.all += s;
      this.check();
    });
    // A peer that exits early makes our writes fail with EPIPE: the exit status tells the story.
    this.child.stdin!.on('error', () => {});
    this.exited = new Promise((resolve) => {
      this.child.on('close', (code, signal) => {
        live.delete(this);
        this.exitStatus = { code, signal };
        resolve(this.exitStatus);
      });
    });
  }

  private check(): void {
    this.waiters = this.waiters.filter((w) => {
      const re = new RegExp(w.re.source, w.re.flags.replace('g', ''));
      const m = re.exec(this.all.slice(w.since));
      if (m) w.resolve(m);
      return !m;
    });
  }

  /** What the program wrote to stdout. */
  stdout(): string {
    return this.out;
  }
  stderr(): string {
    return this.err;
  }
  /** stdout and stderr interleaved, from `since` (a mark()) on. */
  text(since = 0): string {
    return this.all.slice(since);
  }
  /** For failure messages. */
  output(): string {
    return this.all;
  }
  /** A position in the output: pass it to text()/waitFor()/facts() to look only at what came later. */
  mark(): number {
    return this.all.length;
  }

  write(data: string | Uint8Array): void {
    if (this.child.stdin!.writable) this.child.stdin!.write(data);
  }
  endInput(): void {
    if (this.child.stdin!.writable) this.child.stdin!.end();
  }

  /** Resolves with the first match of `re` in the output (from `since`); rejects after timeoutMs or on exit. */
  waitFor(re: RegExp, opts: { since?: number; timeoutMs?: number } = {}): Promise<RegExpExecArray> {
    const since = opts.since ?? 0;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const waiter = {
        re,
        since,
        resolve: (m: RegExpExecArray) => {
          clearTimeout(timer);
          resolve(m);
        },
      };
      const fail = (why: string): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`${this.command}: ${why} waiting for ${re}\n${this.output()}`));
      };
      const timer = setTimeout(() => fail(`timed out after ${timeoutMs} ms`), timeoutMs);
      this.waiters.push(waiter);
      this.check();
      void this.exited.then((s) => {
        // Output may still be flushing when 'close' fires; check() ran on every chunk already.
        if (this.waiters.includes(waiter)) {
          clearTimeout(timer);
          fail(`exited (code ${s.code}, signal ${s.signal})`);
        }
      });
    });
  }

  killNow(): void {
    if (this.exitStatus) return;
    try {
      process.kill(this.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }

  /** SIGTERM by PID, SIGKILL after graceMs; resolves when the process is gone. */
  async stop(graceMs = 1000): Promise<void> {
    if (this.exitStatus) return;
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      return;
    }
    const timer = setTimeout(() => this.killNow(), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Stops every peer this worker started and removes scratch directories (for afterAll). */
export async function stopAllPeers(): Promise<void> {
  await Promise.all([...live].map((p) => p.stop()));
  for (const d of scratchDirs.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the caller retries if it is taken). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitListening(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// ---------------------------------------------------------------------------------------------
// Facts about a handshake, parsed from what the peers print
// ---------------------------------------------------------------------------------------------

/** What a peer reported about one TLS connection. Absent fields: the peer did not say. */
export interface TlsFacts {
  /** 'TLSv1.3' (OpenSSL spelling; GnuTLS's TLS1.3 and curl's are mapped to it). */
  protocol?: string;
  /** IANA cipher suite name. */
  cipher?: string;
  /** Key-exchange group: 'x25519', 'P-256', ... */
  group?: string;
  /** Whether the session was resumed (a PSK from a ticket was accepted). */
  reused?: boolean;
  /** More than one ClientHello in the connection: the server sent a HelloRetryRequest. */
  helloRetry?: boolean;
  /** ClientHellos seen (with OpenSSL -msg, GnuTLS does not say). */
  clientHellos?: number;
  /** Client side: what happened to the early data it offered. */
  earlyData?: 'accepted' | 'rejected' | 'not sent';
  /** Server side: whether early data arrived. */
  earlyDataReceived?: boolean;
  /** Certificate verification verdict on the peer's certificate. */
  verifyOk?: boolean;
  verifyCode?: number;
  verifyMessage?: string;
  /** ALPN protocol, null when none was negotiated. */
  alpn?: string | null;
  /** Alert descriptions, e.g. 'close_notify', 'bad_certificate', 'unknown_ca' (OpenSSL names). */
  alertsSent: string[];
  alertsReceived: string[];
  keyUpdatesSent: number;
  keyUpdatesReceived: number;
  /** NewSessionTicket messages received (client side). */
  ticketsReceived: number;
  /** The peer certificate's subject, as printed. */
  peerSubject?: string;
  /** Whether the peer presented a certificate (server: a client certificate). */
  peerCertificate?: boolean;
  /** Exported keying material (RFC 8446 §7.5), lowercase hex, when the peer was asked for it. */
  keyingMaterial?: string;
}

function emptyFacts(): TlsFacts {
  return { alertsSent: [], alertsReceived: [], keyUpdatesSent: 0, keyUpdatesReceived: 0, ticketsReceived: 0 };
}

/** TLS alert names by code (RFC 8446 §6), the way OpenSSL prints them. */
const ALERT_NAMES: Record<number, string> = {
  0: 'close_notify',
  10: 'unexpected_message',
  20: 'bad_record_mac',
  22: 'record_overflow',
  40: 'handshake_failure',
  42: 'bad_certificate',
  43: 'unsupported_certificate',
  44: 'certificate_revoked',
  45: 'certificate_expired',
  46: 'certificate_unknown',
  47: 'illegal_parameter',
  48: 'unknown_ca',
  49: 'access_denied',
  50: 'decode_error',
  51: 'decrypt_error',
  70: 'protocol_version',
  71: 'insufficient_security',
  80: 'internal_error',
  86: 'inappropriate_fallback',
  90: 'user_canceled',
  109: 'missing_extension',
  110: 'unsupported_extension',
  112: 'unrecognized_name',
  113: 'bad_certificate_status_response',
  115: 'unknown_psk_identity',
  116: 'certificate_required',
  120: 'no_application_protocol',
};
export function alertName(code: number): string {
  return ALERT_NAMES[code] ?? `alert_${code}`;
}

function count(text: string, re: RegExp): number {
  return [...text.matchAll(new RegExp(re.source, `${re.flags.replace('g', '')}g`))].length;
}

/**
 * Facts from OpenSSL output: s_client's connection summary, s_server's interactive, -rev and
 * -www status text, and the -msg message trace (ClientHellos, KeyUpdates, alerts).
 */
export function parseOpensslOutput(text: string): TlsFacts {
  const f = emptyFacts();
  const summary = /^(New|Reused), (TLSv[\d.]+|SSLv\d), Cipher is (\S+)/m.exec(text);
  if (summary) {
    f.reused = summary[1] === 'Reused';
    f.protocol = summary[2];
    f.cipher = summary[3];
  }
  const proto = /^Protocol version: (\S+)/m.exec(text) ?? /^\s*Protocol\s*: (\S+)/m.exec(text);
  if (!f.protocol && proto) f.protocol = proto[1];
  const cipher = /^CIPHER is (\S+)/m.exec(text) ?? /^Ciphersuite: (\S+)/m.exec(text);
  if (!f.cipher && cipher) f.cipher = cipher[1];
  if (/^Reused session-id/m.test(text)) f.reused = true;
  // s_client: "Server Temp Key: X25519, 253 bits" or "Server Temp Key: ECDH, prime256v1, 256 bits".
  const temp = /^Server Temp Key: (?:ECDH, )?([\w-]+),/m.exec(text);
  if (temp) f.group = normalizeGroup(temp[1]!);
  // -trace: the key_share group in the (last) ServerHello.
  const traceGroups = [...text.matchAll(/ServerHello, Length=\d+[\s\S]*?NamedGroup: (\w+)/g)];
  if (!f.group && traceGroups.length > 0) f.group = normalizeGroup(traceGroups.at(-1)![1]!);
  const early = /^Early data was (accepted|rejected|not sent)/m.exec(text);
  if (early) f.earlyData = early[1] as TlsFacts['earlyData'];
  if (/^Early data received:/m.test(text)) f.earlyDataReceived = true;
  else if (/^No early data received/m.test(text)) f.earlyDataReceived = false;
  const verify = /Verify return code: (\d+) \(([^)]*)\)/.exec(text);
  if (verify) {
    f.verifyCode = Number(verify[1]);
    f.verifyMessage = verify[2];
    f.verifyOk = f.verifyCode === 0;
  }
  const verr = /verify error:num=(\d+):(.*)/.exec(text);
  if (verr) {
    f.verifyCode = Number(verr[1]);
    f.verifyMessage = verr[2]!.trim();
    f.verifyOk = false;
  }
  const alpn = /^ALPN protocol: (\S+)/m.exec(text);
  if (alpn) f.alpn = alpn[1]!;
  else if (/^No ALPN negotiated/m.test(text)) f.alpn = null;
  const ch = count(text, /^(>>>|<<<) [^\n]*Handshake \[length [0-9a-f]+\], ClientHello/m);
  if (ch > 0) {
    f.clientHellos = ch;
    f.helloRetry = ch > 1;
  }
  f.keyUpdatesSent = count(text, /^>>> [^\n]*, KeyUpdate$/m);
  f.keyUpdatesReceived = count(text, /^<<< [^\n]*, KeyUpdate$/m);
  for (const m of text.matchAll(/^(>>>|<<<) [^\n]*Alert \[length [0-9a-f]+\], (?:warning|fatal) (\w+)/gm)) {
    (m[1] === '>>>' ? f.alertsSent : f.alertsReceived).push(m[2]!);
  }
  // Without -msg an alert still shows in the error queue: "... SSL alert number 48".
  for (const m of text.matchAll(/SSL alert number (\d+)/g)) {
    const name = alertName(Number(m[1]));
    if (!f.alertsReceived.includes(name)) f.alertsReceived.push(name);
  }
  f.ticketsReceived = count(text, /^Post-Handshake New Session Ticket arrived/m);
  const ekm = /Keying material: ([0-9A-Fa-f]+)/.exec(text);
  if (ekm) f.keyingMaterial = ekm[1]!.toLowerCase();
  const subject = /^subject=(.*)$/m.exec(text);
  if (subject) f.peerSubject = subject[1]!.trim();
  if (/^Client certificate$/m.test(text)) f.peerCertificate = true;
  else if (/^No peer certificate|no client certificate available/m.test(text)) f.peerCertificate = false;
  return f;
}

/** GnuTLS output, split into connections (gnutls-cli: "Connecting to"; gnutls-serv: "Accepted connection"). */
export function parseGnutlsConnections(text: string): TlsFacts[] {
  return splitAt(text, /^(?:Connecting to '|\* Accepted connection from)/gm).map(parseGnutlsConnection);
}

/** The pieces of text that start at each match of `marker` (text before the first is dropped). */
function splitAt(text: string, marker: RegExp): string[] {
  const starts = [...text.matchAll(marker)].map((m) => m.index);
  return starts.map((start, i) => text.slice(start, starts[i + 1]));
}

function parseGnutlsConnection(text: string): TlsFacts {
  const f = emptyFacts();
  // - Description: (TLS1.3-X.509)-(ECDHE-X25519)-(ECDSA-SECP256R1-SHA256)-(AES-256-GCM)
  const desc = /^- Description: \((TLS[\d.]+)[^)]*\)-(?:\(([^)]*)\))?-(?:\([^)]*\)-)?\(([^)]*)\)/m.exec(text);
  if (desc) {
    f.protocol = desc[1]!.replace('TLS', 'TLSv');
    if (desc[2]) f.group = normalizeGroup(desc[2]);
    f.cipher = GNUTLS_CIPHER_TO_SUITE[desc[3]!] ?? desc[3];
  }
  const curve = /^ - Using curve: (\S+)/m.exec(text);
  if (curve) f.group = normalizeGroup(curve[1]!);
  const version = /^- Version: (TLS[\d.]+)/m.exec(text);
  if (version) f.protocol = version[1]!.replace('TLS', 'TLSv');
  f.reused = /^\*\*\* This is a resumed session/m.test(text);
  const status = /^- Status: (.*)$/m.exec(text);
  if (status) {
    f.verifyOk = /is trusted/.test(status[1]!) && !/NOT trusted/.test(status[1]!);
    f.verifyMessage = status[1]!.trim();
  }
  if (/\*\*\* PKI verification of server certificate failed/.test(text)) f.verifyOk = false;
  const alpn = /^- Application protocol: (\S+)/m.exec(text);
  f.alpn = alpn ? alpn[1]! : null;
  const ekm = /^- Key material: ([0-9a-fA-F]+)/m.exec(text);
  if (ekm) f.keyingMaterial = ekm[1]!.toLowerCase();
  for (const m of text.matchAll(/\*\*\* Received alert \[(\d+)\]/g))
    f.alertsReceived.push(alertName(Number(m[1])));
  const subject = /subject `([^']*)'/.exec(text);
  if (subject) f.peerSubject = subject[1];
  if (/- Peer did not send any certificate|- Peer's certificate was NOT verified/.test(text))
    f.peerCertificate = false;
  else if (/Certificate\[0\] info|Peer's certificate (?:is|was) trusted/.test(text)) f.peerCertificate = true;
  return f;
}

/** curl -v output (stderr), split into connections. */
export function parseCurlConnections(stderr: string): TlsFacts[] {
  return splitAt(stderr, /^\* Connected to /gm).map((text) => {
    const f = emptyFacts();
    const using = /^\* SSL connection using (TLSv[\d.]+) \/ (\S+)/m.exec(text);
    if (using) {
      f.protocol = using[1];
      f.cipher = using[2];
    }
    const hellos = count(text, /^\* TLSv1\.3 \(OUT\), TLS handshake, Client hello/m);
    if (hellos > 0) {
      f.clientHellos = hellos;
      f.helloRetry = hellos > 1;
    }
    // A resumed TLS 1.3 handshake has no Certificate message (RFC 8446 §2.2).
    if (using) f.reused = !/^\* TLSv1\.3 \(IN\), TLS handshake, Certificate \(11\)/m.test(text);
    f.peerCertificate = /^\* TLSv1\.3 \(IN\), TLS handshake, Certificate \(11\)/m.test(text);
    if (/SSL certificate verify ok/.test(text)) f.verifyOk = true;
    const vfail = /SSL certificate problem: (.*)/.exec(text);
    if (vfail) {
      f.verifyOk = false;
      f.verifyMessage = vfail[1]!.trim();
    }
    const alpn =
      /^\* ALPN: server accepted (\S+)/m.exec(text) ?? /^\* ALPN, server accepted to use (\S+)/m.exec(text);
    f.alpn = alpn ? alpn[1]! : null;
    for (const m of text.matchAll(/^\* TLSv1\.3 \((IN|OUT)\), TLS alert, ([\w ]+) \(\d+\)/gm)) {
      (m[1] === 'OUT' ? f.alertsSent : f.alertsReceived).push(m[2]!.trim().replace(/ /g, '_'));
    }
    f.ticketsReceived = count(text, /^\* TLSv1\.3 \(IN\), TLS handshake, Newsession Ticket/m);
    const subject = /^\* {1,2}subject: (.*)$/m.exec(text);
    if (subject) f.peerSubject = subject[1]!.trim();
    return f;
  });
}

// ---------------------------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------------------------

export interface PeerServer {
  /** 'openssl s_server' or 'gnutls-serv'. */
  kind: string;
  port: number;
  process: PeerProcess;
  /** stdout + stderr so far. */
  output(): string;
  /** Facts parsed from the output after `since` (a process.mark()). */
  facts(since?: number): TlsFacts;
  stop(): Promise<void>;
}

export interface OpensslServerOptions {
  /** The server's certificate and key; without them (and with `psk`) -nocert: PSK only. */
  certFile?: string;
  keyFile?: string;
  /** An external PSK (RFC 8446 §2.2): identity and key (hex). */
  psk?: { identity: string; keyHex: string };
  /** The one protocol version to speak; TLS 1.3 by default (tls1_2 for version-negotiation tests). */
  version?: 'tls1_3' | 'tls1_2';
  /**
   * 'rev': each line comes back reversed (an echo whose answer the sender did not write);
   * 'www': GET / returns a status page with the session summary (New/Reused, cipher, shared
   * groups); 'interactive': received data goes to stdout, stdin goes to the client, and stdin
   * lines 'k'/'K' send a KeyUpdate (K: update_requested). Early data needs 'interactive'.
   * Beware: in 'interactive' a stdin line starting with 'Q' stops the server.
   * 'WWW': GET /name serves the file `name` from `docRoot`.
   */
  mode?: 'rev' | 'www' | 'WWW' | 'interactive';
  /** The directory 'WWW' serves files from. */
  docRoot?: string;
  ciphersuites?: string;
  /** Colon-separated, preference order (OpenSSL names: X25519, P-256). */
  groups?: string;
  earlyData?: boolean;
  maxEarlyData?: number;
  /** Require a client certificate that chains to this CA (-Verify 1 -verify_return_error). */
  requireClientCert?: { caFile: string };
  alpn?: string[];
  numTickets?: number;
  keylogFile?: string;
  /** Print keying material exported with this label (RFC 8446 §7.5, no context). */
  keymatExport?: { label: string; length: number };
  /** -msg message trace (default true): ClientHello/KeyUpdate/alert counts. */
  msg?: boolean;
  /** -trace: a full decode, including the ServerHello's key_share group. */
  trace?: boolean;
  extraArgs?: string[];
}

/** How long a peer server may take to start listening. */
const START_TIMEOUT_MS = 10_000;

async function startWithRetry(
  kind: string,
  program: string,
  makeArgs: (port: number) => string[],
  ready: RegExp,
  parse: (text: string) => TlsFacts,
  cwd?: string,
): Promise<PeerServer> {
  let lastError: unknown;
  // The free port may be taken between our probe and the peer's bind: try a few.
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    const p = new PeerProcess(program, makeArgs(port), { cwd });
    try {
      // Both peers print their ready line right after listen(): no probe connection needed,
      // which would otherwise show up in their output as a failed handshake.
      await p.waitFor(ready, { timeoutMs: START_TIMEOUT_MS });
      return {
        kind,
        port,
        process: p,
        output: () => p.output(),
        facts: (since = 0) => parse(p.text(since)),
        stop: () => p.stop(),
      };
    } catch (e) {
      lastError = e;
      await p.stop();
      if (!/in use|bind|Address/i.test(p.output())) break;
    }
  }
  throw lastError;
}

/** openssl s_server -tls1_3 on 127.0.0.1 (a free port); resolves once it listens. */
export async function startOpensslServer(opts: OpensslServerOptions): Promise<PeerServer> {
  requirePeer('openssl');
  const mode = opts.mode ?? 'rev';
  if (opts.earlyData && mode !== 'interactive') {
    throw new Error("openssl s_server accepts early data only in mode 'interactive'");
  }
  const args = (port: number): string[] => {
    const a = ['s_server', `-${opts.version ?? 'tls1_3'}`, '-accept', `127.0.0.1:${port}`];
    if (opts.certFile && opts.keyFile) a.push('-cert', opts.certFile, '-key', opts.keyFile);
    else a.push('-nocert');
    if (opts.psk) a.push('-psk', opts.psk.keyHex, '-psk_identity', opts.psk.identity);
    if (mode === 'rev') a.push('-rev');
    if (mode === 'www') a.push('-www');
    if (mode === 'WWW') a.push('-WWW');
    if (opts.ciphersuites) a.push('-ciphersuites', opts.ciphersuites);
    if (opts.groups) a.push('-groups', opts.groups);
    if (opts.earlyData) a.push('-early_data');
    if (opts.maxEarlyData !== undefined) a.push('-max_early_data', String(opts.maxEarlyData));
    if (opts.requireClientCert) {
      a.push('-Verify', '1', '-verify_return_error', '-CAfile', opts.requireClientCert.caFile);
    }
    if (opts.alpn) a.push('-alpn', opts.alpn.join(','));
    if (opts.numTickets !== undefined) a.push('-num_tickets', String(opts.numTickets));
    if (opts.keylogFile) a.push('-keylogfile', opts.keylogFile);
    if (opts.keymatExport) {
      a.push('-keymatexport', opts.keymatExport.label, '-keymatexportlen', String(opts.keymatExport.length));
    }
    if (opts.msg ?? true) a.push('-msg');
    if (opts.trace) a.push('-trace');
    a.push(...(opts.extraArgs ?? []));
    return a;
  };
  if (mode === 'WWW' && !opts.docRoot) throw new Error("mode 'WWW' needs a docRoot");
  return startWithRetry('openssl s_server', 'openssl', args, /^ACCEPT$/m, parseOpensslOutput, opts.docRoot);
}

export interface GnutlsServerOptions {
  certFile: string;
  keyFile: string;
  /** 'echo': every record comes back; 'http': GET returns a status page. */
  mode?: 'echo' | 'http';
  /** A full priority string (see gnutlsPriority); TLS 1.3 only by default. */
  priority?: string;
  requireClientCert?: { caFile: string };
  alpn?: string[];
  earlyData?: boolean;
  noTicket?: boolean;
  extraArgs?: string[];
}

/**
 * gnutls-serv on a free port. It has no bind-address option and listens on every interface
 * (accepting only: nothing is sent unless a client connects, and only loopback clients do).
 */
export async function startGnutlsServer(opts: GnutlsServerOptions): Promise<PeerServer> {
  requirePeer('gnutls-serv');
  const args = (port: number): string[] => {
    const a = [
      opts.mode === 'http' ? '--http' : '--echo',
      '-p',
      String(port),
      '--x509certfile',
      opts.certFile,
      '--x509keyfile',
      opts.keyFile,
      '--priority',
      opts.priority ?? gnutlsPriority(),
    ];
    if (opts.requireClientCert)
      a.push('--require-client-cert', '--x509cafile', opts.requireClientCert.caFile);
    else a.push('--disable-client-cert');
    if (opts.alpn) for (const p of opts.alpn) a.push('--alpn', p);
    if (opts.earlyData) a.push('--earlydata');
    if (opts.noTicket) a.push('--noticket');
    a.push(...(opts.extraArgs ?? []));
    return a;
  };
  return startWithRetry(
    'gnutls-serv',
    'gnutls-serv',
    args,
    /listening on IPv4 .*done/,
    (t) => parseGnutlsConnections(t).at(-1) ?? emptyFacts(),
  );
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

export interface PeerRun {
  command: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  /** True when the run was killed because its timeout ran out. */
  timedOut: boolean;
  stdout: string;
  stderr: string;
  /** The (last) connection's facts. */
  facts: TlsFacts;
  /** Every connection's facts, in order (gnutls-cli --resume and curl with several URLs make more than one). */
  connections: TlsFacts[];
}

export interface RunOptions {
  /** Written to the program's stdin once it has started. */
  input?: string | Uint8Array;
  /**
   * Keep stdin open until stdout matches this (then close it, which makes s_client and
   * gnutls-cli send close_notify and exit). Without it stdin closes right after `input`.
   */
  until?: RegExp;
  /** Delay before closing stdin once `until` matched (or after input), e.g. to let tickets arrive. */
  lingerMs?: number;
  /** Kill by PID after this long (default 10 s). */
  timeoutMs?: number;
  /** Leave stdin open (no `until`): the caller writes and ends it through the process. */
  keepInputOpen?: boolean;
}

/** A client run in progress: its process (write to it, wait for its output) and its outcome. */
export interface PeerRunning<R extends PeerRun = PeerRun> {
  process: PeerProcess;
  result: Promise<R>;
}

function startPeer(
  program: string,
  args: string[],
  opts: RunOptions,
  parse: (stdout: string, stderr: string) => TlsFacts[],
): PeerRunning {
  const p = new PeerProcess(program, args);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    p.killNow();
  }, timeoutMs);
  if (opts.input !== undefined) p.write(opts.input);
  const closeInput = (): void => {
    if (opts.lingerMs) setTimeout(() => p.endInput(), opts.lingerMs);
    else p.endInput();
  };
  if (opts.until) {
    p.waitFor(opts.until, { timeoutMs: timeoutMs + 1000 }).then(closeInput, () => {});
  } else if (!opts.keepInputOpen) {
    closeInput();
  }
  const result = p.exited.then((status): PeerRun => {
    clearTimeout(timer);
    const stdout = p.stdout();
    const stderr = p.stderr();
    const connections = parse(stdout, stderr);
    return {
      command: p.command,
      code: status.code,
      signal: status.signal,
      timedOut,
      stdout,
      stderr,
      facts: connections.at(-1) ?? emptyFacts(),
      connections,
    };
  });
  return { process: p, result };
}

export interface OpensslClientOptions extends RunOptions {
  port: number;
  host?: string;
  /** SNI and the name verified (-verify_hostname); default 'stepwire.test'. null: no SNI. */
  servername?: string | null;
  caFile?: string;
  /** Abort the handshake on a verification failure, like a real client (default true). */
  verifyReturnError?: boolean;
  ciphersuites?: string;
  groups?: string;
  sessOut?: string;
  sessIn?: string;
  earlyDataFile?: string;
  keylogFile?: string;
  certFile?: string;
  keyFile?: string;
  alpn?: string[];
  /** Keep reading after stdin's EOF until the server closes (-ign_eof; no commands then). */
  ignEof?: boolean;
  /** Interactive command letters on stdin (k, K, Q, R); off by default (-nocommands). */
  commands?: boolean;
  /** An external PSK (RFC 8446 §2.2): identity and key (hex). */
  psk?: { identity: string; keyHex: string };
  /** The one protocol version to speak; TLS 1.3 by default (tls1_2 for version-negotiation tests). */
  version?: 'tls1_3' | 'tls1_2';
  /** Print keying material exported with this label (RFC 8446 §7.5, no context). */
  keymatExport?: { label: string; length: number };
  msg?: boolean;
  trace?: boolean;
  extraArgs?: string[];
}

/** openssl s_client -tls1_3 against 127.0.0.1:port; resolves when it has exited. */
export function runOpensslClient(opts: OpensslClientOptions): Promise<PeerRun> {
  return startOpensslClient(opts).result;
}

/**
 * openssl s_client, running: with `commands: true`, stdin lines 'k' and 'K' make it send a
 * KeyUpdate (K: update_requested); otherwise -nocommands, so data is never taken for a command.
 */
export function startOpensslClient(opts: OpensslClientOptions): PeerRunning {
  requirePeer('openssl');
  const servername = opts.servername === undefined ? SERVER_NAME : opts.servername;
  const a = [
    's_client',
    `-${opts.version ?? 'tls1_3'}`,
    '-connect',
    `${opts.host ?? '127.0.0.1'}:${opts.port}`,
  ];
  if (servername !== null) a.push('-servername', servername, '-verify_hostname', servername);
  else a.push('-noservername');
  if (opts.caFile) a.push('-CAfile', opts.caFile);
  if (opts.verifyReturnError ?? true) a.push('-verify_return_error');
  if (opts.ciphersuites) a.push('-ciphersuites', opts.ciphersuites);
  if (opts.groups) a.push('-groups', opts.groups);
  if (opts.sessOut) a.push('-sess_out', opts.sessOut);
  if (opts.sessIn) a.push('-sess_in', opts.sessIn);
  if (opts.earlyDataFile) a.push('-early_data', opts.earlyDataFile);
  if (opts.keylogFile) a.push('-keylogfile', opts.keylogFile);
  if (opts.keymatExport) {
    a.push('-keymatexport', opts.keymatExport.label, '-keymatexportlen', String(opts.keymatExport.length));
  }
  if (opts.certFile) a.push('-cert', opts.certFile);
  if (opts.keyFile) a.push('-key', opts.keyFile);
  if (opts.psk) a.push('-psk', opts.psk.keyHex, '-psk_identity', opts.psk.identity);
  if (opts.alpn) a.push('-alpn', opts.alpn.join(','));
  if (opts.ignEof) a.push('-ign_eof');
  if (!opts.commands) a.push('-nocommands');
  if (opts.msg ?? true) a.push('-msg');
  if (opts.trace) a.push('-trace');
  a.push(...(opts.extraArgs ?? []));
  return startPeer('openssl', a, opts, (out, err) => [parseOpensslOutput(`${out}\n${err}`)]);
}

export interface GnutlsClientOptions extends RunOptions {
  port: number;
  host?: string;
  /** SNI and the name verified; default 'stepwire.test'. */
  servername?: string;
  caFile?: string;
  priority?: string;
  /** Two connections, the second resuming the first's session (--resume --waitresumption). */
  resume?: boolean;
  /** Sent as early data on the resumed connection (implies resume). */
  earlyDataFile?: string;
  certFile?: string;
  keyFile?: string;
  alpn?: string[];
  /** Print keying material exported with this label (RFC 8446 §7.5, no context). */
  keymatExport?: { label: string; length: number };
  extraArgs?: string[];
}

/** gnutls-cli against 127.0.0.1:port, verifying the server's name; resolves when it has exited. */
export function runGnutlsClient(opts: GnutlsClientOptions): Promise<PeerRun> {
  return startGnutlsClient(opts).result;
}

export function startGnutlsClient(opts: GnutlsClientOptions): PeerRunning {
  requirePeer('gnutls-cli');
  const servername = opts.servername ?? SERVER_NAME;
  const a = ['-p', String(opts.port), '--sni-hostname', servername, '--verify-hostname', servername];
  if (opts.caFile) a.push('--x509cafile', opts.caFile);
  a.push('--priority', opts.priority ?? gnutlsPriority());
  if (opts.resume || opts.earlyDataFile) a.push('--resume', '--waitresumption');
  if (opts.earlyDataFile) a.push(`--earlydata=${opts.earlyDataFile}`);
  if (opts.certFile && opts.keyFile) a.push('--x509certfile', opts.certFile, '--x509keyfile', opts.keyFile);
  if (opts.alpn) for (const p of opts.alpn) a.push('--alpn', p);
  if (opts.keymatExport) {
    a.push(`--keymatexport=${opts.keymatExport.label}`, `--keymatexportsize=${opts.keymatExport.length}`);
  }
  a.push(...(opts.extraArgs ?? []), opts.host ?? '127.0.0.1');
  return startPeer('gnutls-cli', a, opts, (out, err) => parseGnutlsConnections(`${out}\n${err}`));
}

export interface CurlOptions {
  port: number;
  /** Paths to fetch, in order, from https://stepwire.test:PORT (resolved to 127.0.0.1). */
  paths?: string[];
  caFile?: string;
  servername?: string;
  ciphersuites?: string;
  /** curl --curves, e.g. 'X25519' or 'P-256'. */
  curves?: string;
  http?: '1.1' | '2';
  certFile?: string;
  keyFile?: string;
  /** Force a new connection for every path (so later ones resume the first one's session). */
  freshConnections?: boolean;
  /** Request body (POST). */
  data?: string | Uint8Array;
  timeoutMs?: number;
  extraArgs?: string[];
}

export interface CurlRun extends PeerRun {
  /** One entry per transfer, from curl's -w '%{json}'. */
  transfers: { http_code: number; exitcode: number; errormsg: string | null; ssl_verify_result: number }[];
}

/** curl --tlsv1.3 -v; the body goes to stdout, per-transfer JSON and the TLS log to stderr. */
export async function runCurl(opts: CurlOptions): Promise<CurlRun> {
  requirePeer('curl');
  const host = opts.servername ?? SERVER_NAME;
  const a = ['-sS', '-v', '--tlsv1.3', '--tls-max', '1.3', '--resolve', `${host}:${opts.port}:127.0.0.1`];
  a.push('--max-time', String(Math.ceil((opts.timeoutMs ?? 10_000) / 1000)));
  if (opts.caFile) a.push('--cacert', opts.caFile, '--capath', '/nonexistent');
  if (opts.ciphersuites) a.push('--tls13-ciphers', opts.ciphersuites);
  if (opts.curves) a.push('--curves', opts.curves);
  if (opts.http === '2') a.push('--http2');
  else a.push('--http1.1');
  if (opts.certFile) a.push('--cert', opts.certFile);
  if (opts.keyFile) a.push('--key', opts.keyFile);
  if (opts.freshConnections) a.push('-H', 'Connection: close');
  // From a file: a body of any size (the argument list has a limit).
  if (opts.data !== undefined) a.push('--data-binary', `@${writeScratchFile('body', opts.data)}`);
  a.push('-w', '%{stderr}CURLINFO %{json}\\n');
  a.push(...(opts.extraArgs ?? []));
  for (const path of opts.paths ?? ['/']) a.push(`https://${host}:${opts.port}${path}`);
  const run = await startPeer('curl', a, { timeoutMs: (opts.timeoutMs ?? 10_000) + 2000 }, (_out, err) =>
    parseCurlConnections(err),
  ).result;
  const transfers = [...run.stderr.matchAll(/^CURLINFO (\{.*\})$/gm)].map(
    (m) => JSON.parse(m[1]!) as CurlRun['transfers'][number],
  );
  return { ...run, transfers };
}

/** Writes data to a fresh file in a scratch directory and returns its path (for -early_data, --earlydata). */
export function writeScratchFile(name: string, data: string | Uint8Array): string {
  const path = join(scratchDir('file'), name);
  writeFileSync(path, data);
  return path;
}
