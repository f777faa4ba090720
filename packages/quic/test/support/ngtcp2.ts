/**
 * ngtcp2's example programs (the GnuTLS build, gtlsserver and gtlsclient) as QUIC peers over
 * node:dgram on loopback, for the interop tests: the site gtlsserver serves (a self-signed
 * certificate and an htdocs folder), both programs started with the flags every test passes,
 * our own client and server on a QuicDriver, and the few HTTP/3 bytes the QUIC-level tests
 * write by hand, so that what they check stays QUIC. Everything started here is recorded;
 * `closeNgtcp2` (in afterEach) kills the processes it started, by handle (PID), and closes
 * the drivers and sockets.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createSocket, type Socket } from 'node:dgram';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { pki } from '@stepwire/tls';
import { ByteReader, concatBytes, RealClock, type TraceBus, utf8 } from '@stepwire/wire';
import { selfSignedCertificate } from '../../../../test/support/peer-process.ts';
import type { QuicConnection } from '../../src/connection/connection.ts';
import type { QuicConnectionEvent } from '../../src/connection/types.ts';
import { QuicDriver } from '../../src/endpoint/driver.ts';
import { type ConnectOptions, QuicEndpoint, type QuicServerConfig } from '../../src/endpoint/endpoint.ts';
import { readVarint } from '../../src/packet/varint.ts';
import type { QuicTlsClientOptions, QuicTlsServerOptions } from '../../src/tls/handshake.ts';
import { quicClientTls, quicServerTls } from './tls.ts';
import { waitFor } from './wait.ts';

const children: ChildProcess[] = [];
const sockets: Socket[] = [];
const drivers: QuicDriver[] = [];

/** For afterEach: only the processes started here, by their handle; then drivers and sockets. */
export function closeNgtcp2(): void {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of drivers.splice(0)) d.close();
  for (const s of sockets.splice(0)) s.close();
}

/** A driver that closeNgtcp2 closes. */
export function tracked(driver: QuicDriver): QuicDriver {
  drivers.push(driver);
  return driver;
}

// ---- The site and the ports ----

export interface Site {
  /** A temporary folder for the test's files (key logs, downloads). */
  dir: string;
  /** PEM files of a self-signed certificate for stepwire.test. */
  key: string;
  cert: string;
  htdocs: string;
  /** For afterAll. */
  remove(): void;
}

/** A temporary folder with a self-signed certificate and `files` in htdocs. */
export function gtlsSite(prefix: string, files: Record<string, string | Uint8Array> = {}): Site {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const { key, cert } = selfSignedCertificate(dir);
  const htdocs = join(dir, 'htdocs');
  mkdirSync(htdocs);
  for (const [name, data] of Object.entries(files)) writeFileSync(join(htdocs, name), data);
  return { dir, key, cert, htdocs, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A UDP port free on `address` now: bind, read, release (loopback only). */
export async function freePort(address = '127.0.0.1'): Promise<number> {
  const probe = createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, address, r));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  return port;
}

/** A node:dgram socket on 127.0.0.1 (an ephemeral port), closed by closeNgtcp2. */
export async function loopbackSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  sockets.push(s);
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
  return s;
}

export { waitFor };

// ---- gtlsserver and gtlsclient ----

/**
 * gtlsserver serving the site's htdocs on 127.0.0.1 (a free port unless `port`), with `args`
 * before the address (`--tx-loss=0.1`, `-V`, `--preferred-ipv4-addr=...`).
 */
export async function startGtlsServer(
  site: Site,
  o: { args?: string[]; port?: number } = {},
): Promise<{ port: number; server: ChildProcess }> {
  const port = o.port ?? (await freePort());
  const server = spawn(
    'gtlsserver',
    ['--quiet', '-d', site.htdocs, ...(o.args ?? []), '127.0.0.1', String(port), site.key, site.cert],
    { stdio: 'ignore' },
  );
  children.push(server);
  // Give it a moment to bind; a QUIC client retransmits its Initial anyway.
  await new Promise((r) => setTimeout(r, 300));
  return { port, server };
}

/** gtlsclient with exactly `args`, killed by closeNgtcp2; `output` collects stdout and stderr (up to 1 MiB). */
export function spawnGtlsClient(
  args: string[],
  o: { env?: NodeJS.ProcessEnv; output?: boolean } = {},
): { child: ChildProcess; output: () => string } {
  const child = spawn('gtlsclient', args, {
    stdio: o.output ? ['ignore', 'pipe', 'pipe'] : 'ignore',
    ...(o.env ? { env: o.env } : {}),
  });
  children.push(child);
  let out = '';
  const keep = (d: Buffer) => {
    if (out.length < 1 << 20) out += d.toString();
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return { child, output: () => out };
}

/** The exit code, or -1 when it has not exited within `ms` (closeNgtcp2 kills it then). */
export function exitOf(child: ChildProcess, ms = 30_000): Promise<number | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(-1), ms);
    child.once('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
}

export interface GtlsClientRun {
  /** Flags before the address (`-n 30`, `--key-update=1ms`, `--download=DIR`). */
  args?: string[];
  /** Paths fetched from https://127.0.0.1:PORT; default `/`. */
  paths?: string[];
  /** `--quiet` (default); without it gtlsclient prints the header fields it got. */
  quiet?: boolean;
  /** Its idle timeout (`--timeout`), default 10s; false for its own default. */
  timeout?: string | false;
  env?: NodeJS.ProcessEnv;
  output?: boolean;
  /** How long to wait for it to exit (ms). */
  waitMs?: number;
}

/**
 * gtlsclient fetching `paths` from 127.0.0.1:`port`, until it exits: it does so with 0 once
 * every stream closed (`--exit-on-all-streams-close`), that is once each response arrived whole.
 */
export async function runGtlsClient(
  port: number,
  o: GtlsClientRun = {},
): Promise<{ code: number | null; out: string }> {
  const timeout = o.timeout ?? '10s';
  const { child, output } = spawnGtlsClient(
    [
      ...(o.quiet === false ? [] : ['--quiet']),
      '--exit-on-all-streams-close',
      ...(timeout ? [`--timeout=${timeout}`] : []),
      ...(o.args ?? []),
      '127.0.0.1',
      String(port),
      ...(o.paths ?? ['/']).map((p) => `https://127.0.0.1:${port}${p}`),
    ],
    { ...(o.env ? { env: o.env } : {}), ...(o.output ? { output: true } : {}) },
  );
  const code = await exitOf(child, o.waitMs);
  return { code, out: output() };
}

// ---- Our side ----

/** Our TLS client in QUIC mode, verifying the site's certificate for stepwire.test, offering h3. */
export function ourClientTls(
  site: Site,
  extra: Partial<Omit<QuicTlsClientOptions, 'transportParameters'>> = {},
): ConnectOptions['tls'] {
  return quicClientTls(readFileSync(site.cert, 'utf8'), 'h3', extra);
}

/** Our TLS server in QUIC mode with the stepwire credentials' leaf, offering h3. */
export function ourServerTls(
  creds: ReturnType<typeof pki.createStepwireCredentials>,
  extra: Partial<Omit<QuicTlsServerOptions, 'transportParameters'>> = {},
): QuicServerConfig['tls'] {
  return quicServerTls(creds.leaf, 'h3', extra);
}

export interface OurGet {
  driver: QuicDriver;
  conn: QuicConnection;
  clock: RealClock;
  /** Every event of the connection, in order. */
  events: QuicConnectionEvent[];
  /** The request stream's bytes so far (HTTP/3 frames), and whether its FIN came. */
  response: Uint8Array;
  fin: boolean;
  /** The connection has left the handshake and established states (closed, draining, ...). */
  ended(): boolean;
}

/**
 * Our client on a QuicDriver over `socket` (a fresh loopback one by default), connected to
 * 127.0.0.1:`port`: once connected it opens its control stream and sends GET `path`. Each
 * piece of the response is added to `response` before `onResponseData` sees it.
 */
export async function ourGet(
  site: Site,
  port: number,
  o: {
    path: string;
    socket?: Socket;
    trace?: TraceBus;
    tls?: Partial<Omit<QuicTlsClientOptions, 'transportParameters'>>;
    transport?: ConnectOptions['transport'];
    onResponseData?: (c: QuicConnection, get: OurGet) => void;
  },
): Promise<OurGet> {
  const socket = o.socket ?? (await loopbackSocket());
  const clock = new RealClock();
  const got = { events: [] as QuicConnectionEvent[], response: new Uint8Array(0) as Uint8Array, fin: false };
  let requestId = -1;
  const driver = tracked(
    new QuicDriver(
      new QuicEndpoint({ tlsEpoch: Date.now() - clock.now(), ...(o.trace ? { trace: o.trace } : {}) }),
      socket,
      clock,
      {
        onEvent: (c, e) => {
          got.events.push(e);
          if (e.type === 'connected') {
            c.write(c.openStream('uni'), CONTROL_STREAM);
            requestId = c.openStream('bidi');
            c.write(requestId, getRequest(`127.0.0.1:${port}`, o.path), true);
          }
          if (e.type === 'stream-data' && e.id === requestId) {
            got.response = concatBytes(got.response, e.data);
            got.fin ||= e.fin;
            o.onResponseData?.(c, get);
          }
        },
      },
    ),
  );
  const conn = driver.connect(
    { address: '127.0.0.1', port },
    { tls: ourClientTls(site, o.tls), ...(o.transport ? { transport: o.transport } : {}) },
  );
  const get: OurGet = Object.assign(got, {
    driver,
    conn,
    clock,
    ended: () => conn.state !== 'established' && conn.state !== 'handshaking',
  });
  return get;
}

/** H3_NO_ERROR (RFC 9114 §8.1) in an application CONNECTION_CLOSE; then wait until we have drained (RFC 9000 §10.2). */
export async function closeAndDrain(g: Pick<OurGet, 'driver' | 'conn' | 'clock'>): Promise<void> {
  g.conn.close(g.clock.now(), 0x100, '');
  g.driver.flush();
  await waitFor('our side to close', () => g.conn.isDrained, 10_000);
}

export interface OurServer {
  port: number;
  socket: Socket;
  driver: QuicDriver;
  /** Every event of every connection, in order. */
  events: { conn: QuicConnection; e: QuicConnectionEvent }[];
  /** Each connection's request streams' bytes. */
  requests: Map<QuicConnection, Map<number, Uint8Array>>;
  /** Requests answered. */
  answered: number;
}

/**
 * Our server on a fresh loopback socket: each connection opens its control stream, and each
 * request (a client-initiated bidirectional stream, RFC 9114 §6.1) is answered, at its FIN,
 * with :status 200 and `body` in one DATA frame.
 */
export async function ourServer(
  creds: ReturnType<typeof pki.createStepwireCredentials>,
  body: Uint8Array,
  o: {
    trace?: TraceBus;
    tls?: Partial<Omit<QuicTlsServerOptions, 'transportParameters'>>;
    server?: Omit<QuicServerConfig, 'tls'>;
    onConnection?: (conn: QuicConnection) => void;
  } = {},
): Promise<OurServer> {
  const socket = await loopbackSocket();
  const clock = new RealClock();
  const endpoint = new QuicEndpoint({
    tlsEpoch: Date.now() - clock.now(),
    ...(o.trace ? { trace: o.trace } : {}),
    server: { ...o.server, tls: ourServerTls(creds, o.tls) },
  });
  const response = concatBytes(RESPONSE_HEADERS, h3Frame(0x00, body));
  const seen = {
    events: [] as OurServer['events'],
    requests: new Map<QuicConnection, Map<number, Uint8Array>>(),
    answered: 0,
  };
  const driver = tracked(
    new QuicDriver(endpoint, socket, clock, {
      ...(o.onConnection ? { onConnection: o.onConnection } : {}),
      onEvent: (conn, e) => {
        seen.events.push({ conn, e });
        if (e.type === 'connected') conn.write(conn.openStream('uni'), CONTROL_STREAM);
        if (e.type === 'stream-data' && e.id % 4 === 0) {
          const m = seen.requests.get(conn) ?? new Map<number, Uint8Array>();
          seen.requests.set(conn, m);
          m.set(e.id, concatBytes(m.get(e.id) ?? new Uint8Array(0), e.data));
          if (e.fin) {
            seen.answered++;
            conn.write(e.id, response, true);
          }
        }
      },
    }),
  );
  return Object.assign(seen, { port: (socket.address() as { port: number }).port, socket, driver });
}

// ---- The HTTP/3 bytes, by hand (RFC 9114 §7, RFC 9204 §4.5) ----

function varint(v: number): Uint8Array {
  // RFC 9000 §16: 1, 2 or 4 bytes are enough here.
  return v < 64
    ? Uint8Array.of(v)
    : v < 16384
      ? Uint8Array.of(0x40 | (v >> 8), v & 0xff)
      : Uint8Array.of(0x80 | ((v >>> 24) & 0x3f), (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** An HTTP/3 frame: Type (i), Length (i), payload (RFC 9114 §7.1). */
export function h3Frame(type: number, payload: Uint8Array): Uint8Array {
  return concatBytes(varint(type), varint(payload.length), payload);
}

/** Control stream: stream type 0x00 then SETTINGS (0x04) with nothing in it (RFC 9114 §6.2.1, §7.2.4). */
export const CONTROL_STREAM = concatBytes(Uint8Array.of(0x00), h3Frame(0x04, new Uint8Array(0)));

/** A literal with a static name reference (RFC 9204 §4.5.4), value without Huffman. */
function literal(staticIndex: number, value: string): Uint8Array {
  const v = utf8(value);
  if (staticIndex > 14 || v.length > 126) throw new RangeError('kept to one-byte prefixes');
  return concatBytes(Uint8Array.of(0x50 | staticIndex, v.length), v);
}

/**
 * HEADERS of GET https://authority/path (RFC 9204 §4.5): :method GET (static 17) and
 * :scheme https (23) indexed, :authority (0) and :path (1) literal; no dynamic table.
 */
export function getRequest(authority: string, path: string): Uint8Array {
  const section = concatBytes(
    Uint8Array.of(0x00, 0x00, 0xc0 | 17, 0xc0 | 23),
    literal(0, authority),
    literal(1, path),
  );
  return h3Frame(0x01, section);
}

/** HEADERS with :status 200, static entry 25. */
export const RESPONSE_HEADERS = h3Frame(0x01, Uint8Array.of(0x00, 0x00, 0xc0 | 25));

/** The HTTP/3 frames of a request or response stream. */
export function h3Frames(bytes: Uint8Array): { type: number; payload: Uint8Array }[] {
  const r = new ByteReader(bytes, 'h3');
  const out: { type: number; payload: Uint8Array }[] = [];
  while (!r.atEnd) {
    const type = readVarint(r, 'type');
    const length = readVarint(r, 'length');
    out.push({ type, payload: r.copy(length, 'payload') });
  }
  return out;
}

/** The body of a response stream: its DATA frames' payloads (RFC 9114 §7.2.1). */
export function h3Body(bytes: Uint8Array): Uint8Array {
  return concatBytes(
    ...h3Frames(bytes)
      .filter((f) => f.type === 0x00)
      .map((f) => f.payload),
  );
}
