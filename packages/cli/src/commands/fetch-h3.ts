import { createSocket } from 'node:dgram';
import { closeSync, openSync, writeSync } from 'node:fs';
import {
  type DatagramSocketLike,
  H3RequestError,
  type H3Response,
  QlogWriter,
  type QuicConnection,
} from '@stepwire/quic';
import { RealClock, TraceBus, type TraceEvent } from '@stepwire/wire';
import { dualStackSocket } from '../services/h3.ts';
import { connectH3, H3ConnectError, type H3Connection } from '../services/h3-client.ts';
import {
  EXIT,
  type FetchCliOptions,
  FetchFailure,
  type FetchIo,
  MAX_REDIRECTS,
  openSession,
  Progress,
  REDIRECTS,
} from './fetch.ts';

/** `stepwire fetch --http3`, in a file of its own so that other fetches do not load QUIC. */

/** QUIC transport error names for -v (RFC 9000 §20.1). */
const QUIC_ERRORS: Record<number, string> = {
  0: 'NO_ERROR',
  1: 'INTERNAL_ERROR',
  2: 'CONNECTION_REFUSED',
  3: 'FLOW_CONTROL_ERROR',
  7: 'FRAME_ENCODING_ERROR',
  8: 'TRANSPORT_PARAMETER_ERROR',
  10: 'PROTOCOL_VIOLATION',
};

/** TLS alerts that mean "your certificate is not good enough" (RFC 8446 §6.2): curl's 60. */
const CERTIFICATE_ALERTS = new Set([42, 43, 44, 45, 46, 48]);

/**
 * `fetch --http3`: one request (and, with -L, its redirects), printed as curl prints it, the
 * exit status out. The body streams to its destination as it arrives (with the progress bar),
 * so a download's size is not bounded by memory. A redirect to the same origin reuses the
 * connection; one to another https origin opens a new connection; one to http:// cannot be
 * followed over HTTP/3 and fails (curl would fall back to TCP; we do not mix).
 */
export async function fetchH3(
  firstUrl: URL,
  req: { method: string; headers: [string, string][]; body: Buffer | undefined; ca: string | undefined },
  addressOf: (hostname: string, port: number) => string,
  o: FetchCliOptions,
  io: FetchIo,
  fail: (f: FetchFailure) => number,
): Promise<number> {
  const verbose = (text: string) => {
    if (o.verbose) io.err(`${text}\n`);
  };
  const session = o.tun ? await openSession(o) : undefined;
  const clock = session ? session.clock : new RealClock();
  const trace = new TraceBus();
  let onConnection: ((c: QuicConnection) => void) | undefined;
  // -v: each QUIC packet of a handshake with its frames, as the connection traces it (layer 'quic').
  let handshaking = true;
  if (o.verbose)
    trace.on((e: TraceEvent) => {
      if (handshaking && e.layer === 'quic')
        verbose(`* QUIC ${e.dir === 'out' ? '>' : e.dir === 'in' ? '<' : '·'} ${e.summary}`);
    });
  let qlogFd: number | undefined;
  if (o.qlog) {
    try {
      qlogFd = openSync(o.qlog, 'w');
    } catch (e) {
      await session?.close();
      return fail(new FetchFailure(EXIT.write, `cannot write ${o.qlog}: ${(e as Error).message}`));
    }
    const fd = qlogFd;
    let conn: QuicConnection | undefined;
    const qlog = new QlogWriter((r) => writeSync(fd, r), {
      vantagePoint: 'client',
      title: `stepwire fetch --http3 ${firstUrl.href}`,
      referenceTime: Date.now() - clock.now(),
    });
    trace.on((e) => qlog.observe(e, conn ? () => conn?.stats() ?? {} : undefined));
    onConnection = (c) => {
      conn = c;
    };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new FetchFailure(EXIT.timeout, `Operation timed out after ${o.maxTime ?? 30} s`)),
      (o.maxTime ?? 30) * 1000,
    );
  });
  // A rejection nobody awaits yet (between requests) must not become an unhandled one.
  deadline.catch(() => {});
  let current: { origin: string; h3: H3Connection; socket: { close(): void } } | undefined;
  const closeCurrent = () => {
    current?.h3.close();
    current?.socket.close();
    current = undefined;
  };

  /** A socket and a QUIC + HTTP/3 connection to one origin, or the FetchFailure that stopped it. */
  const open = async (
    hostname: string,
    address: string,
    port: number,
    authority: string,
  ): Promise<{ h3: H3Connection; socket: { close(): void } }> => {
    let socket: { close(): void };
    let dgram: DatagramSocketLike;
    if (session) {
      const s4 = session.udp.createSocket('udp4');
      const s6 = session.udp.createSocket('udp6');
      s4.bindSync(0);
      s6.bindSync(0);
      socket = {
        close: () => {
          s4.close();
          s6.close();
        },
      };
      dgram = dualStackSocket(s4, s6);
    } else {
      const family = address.includes(':') ? 'udp6' : 'udp4';
      const s = createSocket(family);
      await new Promise<void>((r, j) => {
        s.once('error', j);
        s.bind(0, family === 'udp6' ? '::1' : '127.0.0.1', () => {
          s.off('error', j);
          r();
        });
      });
      s.on('error', () => {});
      socket = s;
      dgram = s;
    }
    verbose(`*   Trying ${address}:${port} (UDP, QUIC v1)...`);
    handshaking = true;
    // node:dgram does not report ICMP port unreachable on an unconnected socket: a server
    // that never answers is seen only by a timeout, 10 s for the handshake as a connect timeout.
    let connectTimer: ReturnType<typeof setTimeout> | undefined;
    const connectDeadline = new Promise<never>((_, reject) => {
      connectTimer = setTimeout(
        () =>
          reject(
            new FetchFailure(
              EXIT.timeout,
              `Connection timed out: no QUIC handshake with ${address} port ${port} in 10 s`,
            ),
          ),
        Math.min(10, o.maxTime ?? 10) * 1000,
      );
    });
    try {
      const h3 = await Promise.race([
        connectH3({
          socket: dgram,
          clock,
          remote: { address, port },
          serverName: hostname,
          authority,
          ...(req.ca ? { ca: req.ca } : {}),
          ...(o.insecure ? { insecure: true } : {}),
          trace,
          traceHost: 'fetch',
          ...(onConnection ? { onConnection } : {}),
        }),
        deadline,
        connectDeadline,
      ]);
      handshaking = false;
      verbose(`* Connected to ${hostname} (${address}) port ${port} over QUIC, ALPN ${h3.alpn ?? '?'}`);
      return { h3, socket };
    } catch (e) {
      socket.close();
      throw connectFailure(e);
    } finally {
      clearTimeout(connectTimer);
    }
  };

  let fd: number | undefined;
  try {
    let url = firstUrl;
    let method = req.method;
    let sending = req.body;
    for (let hops = 0; ; hops++) {
      const hostname = url.hostname.replace(/^\[|\]$/g, '');
      const port = url.port ? Number(url.port) : 443;
      const origin = `${hostname.toLowerCase()}:${port}`;
      if (current?.origin !== origin) {
        closeCurrent();
        current = { origin, ...(await open(hostname, addressOf(hostname, port), port, url.host)) };
      }
      const path = `${url.pathname}${url.search}`;
      const fields: [string, string][] = [
        [':method', method],
        [':scheme', 'https'],
        [':authority', url.host],
        [':path', path],
        // RFC 9114 §4.2: field names are lower case in HTTP/3.
        ...req.headers.map(([n, v]): [string, string] => [n.toLowerCase(), v]),
      ];
      if (sending && !req.headers.some(([n]) => n.toLowerCase() === 'content-length'))
        fields.push(['content-length', String(sending.length)]);
      verbose(`> ${method} ${path} HTTP/3`);
      for (const [n, v] of fields) verbose(`> ${n}: ${v}`);

      // What the head decides for the body: write it, skip it (a redirect followed, -f), or
      // stop on a failure to open the output.
      let sink: 'write' | 'skip' = 'skip';
      let failure: FetchFailure | undefined;
      let redirectTo: URL | undefined;
      let redirectStatus = 0;
      let progress: Progress | undefined;
      let received = 0;
      const write = (b: Uint8Array) => (fd !== undefined ? writeSync(fd, b) : io.out(b));
      const onResponse = (res: H3Response) => {
        const headLines = [
          `HTTP/3 ${res.status}`,
          ...res.headers.filter(([n]) => !n.startsWith(':')).map(([n, v]) => `${n}: ${v}`),
        ];
        for (const l of headLines) verbose(`< ${l}`);
        const location = res.headers.find(([n]) => n === 'location')?.[1];
        if (o.location && REDIRECTS.has(res.status) && location) {
          if (o.include) write(Buffer.from(`${headLines.join('\r\n')}\r\n\r\n`));
          redirectTo = new URL(location, url);
          redirectStatus = res.status;
          return;
        }
        if (o.fail && res.status >= 400) {
          failure = new FetchFailure(EXIT.httpError, `The requested URL returned error: ${res.status}`);
          return;
        }
        try {
          if (o.output && fd === undefined) fd = openSync(o.output, 'w');
        } catch (e) {
          failure = new FetchFailure(EXIT.write, `cannot write ${o.output}: ${(e as Error).message}`);
          return;
        }
        sink = 'write';
        if (o.include) write(Buffer.from(`${headLines.join('\r\n')}\r\n\r\n`));
        const length = Number(res.headers.find(([n]) => n === 'content-length')?.[1]);
        if (io.errIsTty && !o.silent && (o.output !== undefined || !io.outIsTty))
          progress = new Progress(io, Number.isFinite(length) ? length : undefined);
      };
      const onData = (chunk: Uint8Array) => {
        if (sink !== 'write') return;
        received += chunk.length;
        write(chunk);
        progress?.update(received);
      };
      try {
        await Promise.race([
          current.h3.client.request(fields, sending, [], { onResponse, onData }),
          deadline,
        ]);
      } catch (e) {
        if (e instanceof FetchFailure) return fail(e);
        const text = e instanceof H3RequestError ? e.message : String((e as Error).message);
        return fail(new FetchFailure(EXIT.recv, `Failure when receiving data from the peer: ${text}`));
      }
      if (failure) return fail(failure);
      if (redirectTo) {
        if (hops >= MAX_REDIRECTS)
          return fail(
            new FetchFailure(EXIT.tooManyRedirects, `Maximum (${MAX_REDIRECTS}) redirects followed`),
          );
        if (redirectTo.protocol !== 'https:')
          return fail(
            new FetchFailure(
              EXIT.failure,
              `redirect to ${redirectTo.href}, which HTTP/3 cannot reach (RFC 9114 §3.1)`,
            ),
          );
        verbose(`* Following the redirect to ${redirectTo.href}`);
        // As curl (and the HTTP/1.1 path above): 303 turns into GET; so do 301 and 302 after a POST.
        if (
          redirectStatus === 303 ||
          ((redirectStatus === 301 || redirectStatus === 302) && method === 'POST')
        ) {
          method = 'GET';
          sending = undefined;
        }
        url = redirectTo;
        continue;
      }
      progress?.update(received, true);
      return EXIT.ok;
    }
  } catch (e) {
    if (e instanceof FetchFailure) return fail(e);
    throw e;
  } finally {
    if (timer) clearTimeout(timer);
    if (fd !== undefined) closeSync(fd);
    closeCurrent();
    if (qlogFd !== undefined) closeSync(qlogFd);
    await session?.close();
  }
}

/** How a failed QUIC/HTTP/3 connect maps onto curl's exit statuses. */
function connectFailure(e: unknown): FetchFailure {
  if (e instanceof FetchFailure) return e;
  if (e instanceof H3ConnectError) {
    const alert = e.alert;
    if (alert !== undefined)
      return CERTIFICATE_ALERTS.has(alert)
        ? new FetchFailure(EXIT.peerCertificate, `SSL certificate problem: ${e.message}`)
        : new FetchFailure(EXIT.tls, `QUIC/TLS handshake failed: ${e.message}`);
    const name = e.error && !e.error.application ? QUIC_ERRORS[e.error.code] : undefined;
    return new FetchFailure(EXIT.connect, `Failed to connect: ${name ? `${name} ` : ''}${e.message}`);
  }
  const m = (e as Error).message;
  if (/certificate|verif|unknown_ca/i.test(m))
    return new FetchFailure(EXIT.peerCertificate, `SSL certificate problem: ${m}`);
  return new FetchFailure(EXIT.tls, `QUIC/TLS handshake failed: ${m}`);
}
