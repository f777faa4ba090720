import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import { Agent, type ClientResponse, request } from '@stepwire/http';
import { UsageError } from '../errors.ts';
import type { TunSession } from '../tun/session.ts';

/**
 * `stepwire fetch URL`: a curl-shaped client on our HTTP/1.1 client (and our TLS for https):
 * on node:net sockets by default (the safety guard keeps those on loopback), or with --tun on
 * our own IP and TCP over a TUN device whose kernel side is a namespace. Exit statuses follow
 * curl's where they have a meaning here.
 */

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  resolve: 6,
  connect: 7,
  httpError: 22,
  write: 23,
  timeout: 28,
  tls: 35,
  recv: 56,
  peerCertificate: 60,
  cacert: 77,
  tooManyRedirects: 47,
} as const;

export interface FetchCliOptions {
  request?: string;
  data?: string[];
  dataBinary?: string[];
  header?: string[];
  output?: string;
  include?: boolean;
  fail?: boolean;
  cacert?: string;
  insecure?: boolean;
  resolve?: string[];
  tun?: boolean;
  /** With --tun: the TUN device with offloads (IFF_VNET_HDR: GRO/TSO super-segments, partial checksums). */
  offloads?: boolean;
  netns?: string;
  silent?: boolean;
  /** Seconds for the whole transfer (curl's -m). */
  maxTime?: number;
  /** Follow redirects (curl's -L). */
  location?: boolean;
  /** Request and response heads on stderr (curl's -v). */
  verbose?: boolean;
  /** HTTP/2: h2c with prior knowledge for http URLs; https offers h2 by ALPN anyway, as curl. */
  http2?: boolean;
  /** HTTP/3 over our QUIC (https:// only, RFC 9114 §3.1), on UDP port of the URL. */
  http3?: boolean;
  /** With --http3: write the connection's qlog (JSON-SEQ) to this file. */
  qlog?: string;
}

/** Where a run writes: the body (and -i head) to out, messages and the progress bar to err. */
export interface FetchIo {
  out(bytes: Uint8Array): void;
  err(text: string): void;
  /** Whether stderr is a terminal (the progress bar is drawn only there). */
  errIsTty: boolean;
  /** Whether stdout is a terminal (no progress bar over a body printed to it). */
  outIsTty: boolean;
}

/** A failure with curl's exit status and message: `stepwire fetch: (7) Failed to connect ...`. */
export class FetchFailure extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

/** The fields to send, from -H lines (usage error on a line without a colon). */
function parseHeaders(lines: readonly string[]): [string, string][] {
  return lines.map((line) => {
    const i = line.indexOf(':');
    const name = line.slice(0, i).trim();
    if (i <= 0 || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name))
      throw new UsageError(`-H expects 'Name: value', got '${line}'`);
    return [name, line.slice(i + 1).trim()];
  });
}

/** The request body from -d / --data-binary: parts joined with '&' as curl does. */
function parseBody(data: readonly string[], binary: readonly string[]): Buffer | undefined {
  const read = (v: string, strip: boolean) => {
    if (!v.startsWith('@')) return Buffer.from(v);
    const file = readFileSync(v.slice(1));
    // curl -d @file drops carriage returns and newlines; --data-binary keeps every byte.
    return strip ? Buffer.from(file.filter((b) => b !== 0x0d && b !== 0x0a)) : file;
  };
  const parts = [...data.map((d) => read(d, true)), ...binary.map((d) => read(d, false))];
  if (parts.length === 0) return undefined;
  const joined: Buffer[] = [];
  for (const [i, p] of parts.entries()) {
    if (i > 0) joined.push(Buffer.from('&'));
    joined.push(p);
  }
  return Buffer.concat(joined);
}

/** host:port:addr entries of --resolve, keyed 'host:port' (lower case). */
function parseResolve(entries: readonly string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (const e of entries) {
    const match = /^([^:]+):(\d+):(.+)$/.exec(e);
    const addr = match?.[3]?.replace(/^\[|\]$/g, '') ?? '';
    if (!match || net.isIP(addr) === 0)
      throw new UsageError(`--resolve expects host:port:address, got '${e}'`);
    m.set(`${match[1]?.toLowerCase()}:${match[2]}`, addr);
  }
  return m;
}

/** Where to connect for host:port: --resolve, an address literal, or localhost; else curl's 6. */
function addressFor(host: string, port: number, resolve: Map<string, string>, tun: boolean): string {
  const given = resolve.get(`${host.toLowerCase()}:${port}`);
  if (given) return given;
  if (net.isIP(host) !== 0) return host;
  if (!tun && host.toLowerCase() === 'localhost') return '127.0.0.1';
  throw new FetchFailure(EXIT.resolve, `Could not resolve host: ${host}`);
}

/** curl's exit status for an error of the connection or the exchange. */
function exitFor(e: Error & { code?: string }, connected: boolean): FetchFailure {
  const code = e.code ?? '';
  const text = e.message;
  if (code === 'ETIMEDOUT_MAX') return new FetchFailure(EXIT.timeout, text);
  if (/certificate|unknown_ca|bad_certificate|verif/i.test(text))
    return new FetchFailure(EXIT.peerCertificate, `SSL certificate problem: ${text}`);
  if (/tls|alert|handshake|ssl/i.test(`${code} ${text}`))
    return new FetchFailure(EXIT.tls, `TLS connect error: ${text}`);
  if (
    !connected ||
    ['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'EADDRNOTAVAIL'].includes(code)
  )
    return new FetchFailure(EXIT.connect, `Failed to connect: ${text}`);
  return new FetchFailure(EXIT.recv, `Failure when receiving data from the peer: ${text}`);
}

const MiB = 1024 * 1024;
/** Bodies at least this large get a progress bar (when stderr is a terminal). */
export const PROGRESS_FROM = MiB;

function fmtBytes(n: number): string {
  return n >= MiB ? `${(n / MiB).toFixed(1)} MiB` : n >= 1024 ? `${(n / 1024).toFixed(1)} KiB` : `${n} B`;
}

/** A one-line progress bar on stderr, redrawn at most ten times a second. */
export class Progress {
  private last = 0;
  private shown = false;
  private readonly start = performance.now();
  constructor(
    private readonly io: FetchIo,
    private readonly total: number | undefined,
  ) {}
  update(received: number, final = false): void {
    const now = performance.now();
    if (!final && now - this.last < 100) return;
    if (!this.shown && !final && received < PROGRESS_FROM && (this.total ?? 0) < PROGRESS_FROM) return;
    if (!this.shown && final) return;
    this.last = now;
    this.shown = true;
    const rate = received / Math.max(0.001, (now - this.start) / 1000);
    const width = 30;
    let bar: string;
    if (this.total) {
      const f = Math.min(1, received / this.total);
      const fill = Math.round(f * width);
      bar = `[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${(f * 100).toFixed(0).padStart(3)}%  ${fmtBytes(received)} / ${fmtBytes(this.total)}`;
    } else bar = `${fmtBytes(received)}`;
    this.io.err(`\r${bar}  ${fmtBytes(rate)}/s\x1b[K${final ? '\n' : ''}`);
  }
}

/** Run one fetch; resolves with the exit status (usage errors are thrown as UsageError). */
export async function runFetch(rawUrl: string, o: FetchCliOptions, io: FetchIo): Promise<number> {
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new UsageError(`not a URL: '${rawUrl}'`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new UsageError(`only http:// and https:// URLs, got '${url.protocol}'`);
  if (o.offloads && !o.tun) throw new UsageError('--offloads goes with --tun');
  const headers = parseHeaders(o.header ?? []);
  const body = parseBody(o.data ?? [], o.dataBinary ?? []);
  const resolve = parseResolve(o.resolve ?? []);
  const methodOf = (o.request ?? (body ? 'POST' : 'GET')).toUpperCase();
  const has = (name: string) => headers.some(([n]) => n.toLowerCase() === name);
  if (!has('user-agent')) headers.push(['User-Agent', 'stepwire-fetch']);
  if (!has('accept')) headers.push(['Accept', '*/*']);
  if (o.data?.length && !has('content-type'))
    headers.push(['Content-Type', 'application/x-www-form-urlencoded']);

  const fail = (f: FetchFailure) => {
    if (!o.silent) io.err(`stepwire fetch: (${f.code}) ${f.message}\n`);
    return f.code;
  };
  let ca: string | undefined;
  try {
    ca = o.cacert ? readFileSync(o.cacert, 'utf8') : undefined;
  } catch (e) {
    return fail(
      new FetchFailure(EXIT.cacert, `cannot read the CA file ${o.cacert}: ${(e as Error).message}`),
    );
  }
  const verbose = (text: string) => {
    if (o.verbose) io.err(`${text}\n`);
  };
  if (o.http3) {
    if (url.protocol !== 'https:') throw new UsageError('--http3 needs an https:// URL (RFC 9114 §3.1)');
    if (o.http2) throw new UsageError('--http2 and --http3 exclude each other');
    // QUIC and HTTP/3 load only for --http3.
    const { fetchH3 } = await import('./fetch-h3.ts');
    return await fetchH3(
      url,
      { method: methodOf, headers, body, ca },
      (hostname, port) => addressFor(hostname, port, resolve, o.tun === true),
      o,
      io,
      fail,
    );
  }

  const session = o.tun ? await openSession(o) : undefined;
  let connected = false;
  /** Where each origin's connection goes: resolved before its request, read by connect. */
  const addresses = new Map<string, string>();
  const agent = new Agent({
    keepAlive: false,
    // As curl: https offers h2 by ALPN (RFC 9113 §3.2); --http2 speaks h2c to http origins (§3.3).
    http2: o.http2 ? 'prior-knowledge' : true,
    connect: (origin): Duplex => {
      const address = addresses.get(`${origin.hostname}:${origin.port}`) ?? origin.hostname;
      const socket = session
        ? session.tcp.connect({ host: address, port: origin.port })
        : net.connect({ host: address, port: origin.port });
      socket.setNoDelay(true);
      socket.once('connect', () => {
        connected = true;
        verbose(`* Connected to ${origin.hostname} (${address}) port ${origin.port}`);
      });
      return socket;
    },
    ...(url.protocol === 'https:' || o.location
      ? {
          tls: {
            ...(ca ? { ca } : {}),
            ...(o.insecure ? { rejectUnauthorized: false } : {}),
          },
        }
      : {}),
  });
  let current: ReturnType<typeof request> | undefined;
  const timer =
    o.maxTime !== undefined
      ? setTimeout(() => {
          current?.destroy(
            Object.assign(new Error(`Operation timed out after ${o.maxTime} s`), { code: 'ETIMEDOUT_MAX' }),
          );
        }, o.maxTime * 1000)
      : undefined;
  let fd: number | undefined;
  try {
    let method = methodOf;
    let sending = body;
    for (let hops = 0; ; hops++) {
      const hostname = url.hostname.replace(/^\[|\]$/g, '');
      const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
      try {
        addresses.set(`${hostname}:${port}`, addressFor(hostname, port, resolve, o.tun === true));
      } catch (e) {
        if (e instanceof FetchFailure) return fail(e);
        throw e;
      }
      connected = false;
      const res = await new Promise<ClientResponse | FetchFailure>((answer) => {
        const req = request(url, { method, headers, agent });
        current = req;
        req.on('error', (e: Error & { code?: string }) => answer(exitFor(e, connected)));
        req.on('response', answer);
        verbose(`> ${method} ${url.pathname}${url.search} HTTP/1.1`);
        verbose(`> Host: ${url.host}`);
        for (const [n, v] of headers) verbose(`> ${n}: ${v}`);
        req.end(sending);
      });
      if (res instanceof FetchFailure) return fail(res);
      verbose(`< ${statusLine(res)}`);
      for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
        verbose(`< ${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
      const location = res.headers.location;
      if (o.location && REDIRECTS.has(res.statusCode) && location) {
        res.resume();
        if (hops >= MAX_REDIRECTS)
          return fail(
            new FetchFailure(EXIT.tooManyRedirects, `Maximum (${MAX_REDIRECTS}) redirects followed`),
          );
        if (o.include) io.out(Buffer.from(`${head(res)}\r\n\r\n`));
        const next = new URL(location, url);
        if (next.protocol !== 'http:' && next.protocol !== 'https:')
          return fail(new FetchFailure(EXIT.failure, `redirect to an unsupported URL: ${next.href}`));
        verbose(`* Following the redirect to ${next.href}`);
        // As curl: 303 turns into GET; so do 301 and 302 after a POST (RFC 9110 §15.4.2-4 allow it).
        if (
          res.statusCode === 303 ||
          ((res.statusCode === 301 || res.statusCode === 302) && method === 'POST')
        ) {
          method = 'GET';
          sending = undefined;
        }
        url = next;
        continue;
      }
      if (o.fail && res.statusCode >= 400) {
        res.resume();
        return fail(new FetchFailure(EXIT.httpError, `The requested URL returned error: ${res.statusCode}`));
      }
      try {
        if (o.output) fd = openSync(o.output, 'w');
      } catch (e) {
        res.resume();
        return fail(new FetchFailure(EXIT.write, `cannot write ${o.output}: ${(e as Error).message}`));
      }
      const write = (b: Uint8Array) => (fd !== undefined ? writeSync(fd, b) : io.out(b));
      if (o.include) write(Buffer.from(`${head(res)}\r\n\r\n`));
      const length = Number(res.headers['content-length']);
      const showProgress = io.errIsTty && !o.silent && (o.output !== undefined || !io.outIsTty);
      const progress = showProgress
        ? new Progress(io, Number.isFinite(length) ? length : undefined)
        : undefined;
      let received = 0;
      return await new Promise<number>((done) => {
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          write(chunk);
          progress?.update(received);
        });
        res.on('end', () => {
          progress?.update(received, true);
          done(EXIT.ok);
        });
        res.on('error', (e: Error & { code?: string }) => done(fail(exitFor(e, true))));
      });
    }
  } finally {
    if (timer) clearTimeout(timer);
    if (fd !== undefined) closeSync(fd);
    agent.destroy();
    await session?.close();
  }
}

/** The --tun session, with offloads when asked (our IP/TCP/UDP and the TUN code load only for --tun). */
export async function openSession(o: FetchCliOptions): Promise<TunSession> {
  const { TunSession } = await import('../tun/session.ts');
  return TunSession.open({ netns: o.netns ?? 'stepwire', ...(o.offloads ? { offloads: true } : {}) });
}

/** The status line and fields as they came. */
function head(res: ClientResponse): string {
  const lines = [statusLine(res)];
  for (let i = 0; i + 1 < res.rawHeaders.length; i += 2)
    lines.push(`${res.rawHeaders[i]}: ${res.rawHeaders[i + 1]}`);
  return lines.join('\r\n');
}

/** As curl prints it: `HTTP/1.1 200 OK`, and `HTTP/2 200` (HTTP/2 has no reason phrase, RFC 9113 §8.3.2). */
function statusLine(res: ClientResponse): string {
  return res.httpVersionMajor === 2
    ? `HTTP/2 ${res.statusCode}`
    : `HTTP/${res.httpVersion} ${res.statusCode} ${res.statusMessage}`;
}

export const REDIRECTS = new Set([301, 302, 303, 307, 308]);
/** curl's default --max-redirs is 50; fetch's limit (20) is the smaller of the two known ones. */
export const MAX_REDIRECTS = 20;
