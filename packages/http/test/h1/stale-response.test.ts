import { describe, expect, it } from 'vitest';
import type { ServerResponse } from '../../src/h1/index.ts';
import { createServer } from '../../src/h1/server.ts';
import { FakeSocket, settle } from './fake-socket.ts';

/**
 * A handler that keeps `res` after its response went out and uses it later, while the same
 * connection carries the next request, must get an error (a throw or an 'error' event) or a
 * no-op: nothing it does may reach the wire, and above all not inside another request's
 * response. Whatever the server reuses from one cycle to the next (connection core, response
 * channel), the old response is refused.
 */

const GET = (path: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: t\r\n${extra}\r\n`;

/** Every way an application can try to write through a response, each caught and recorded. */
function tryEverything(res: ServerResponse, log: string[]): void {
  const attempt = (what: string, f: () => unknown): void => {
    try {
      const r = f();
      log.push(`${what}:${r === false ? 'false' : 'ok'}`);
    } catch (e) {
      log.push(`${what}:throw ${(e as { code?: string }).code ?? (e as Error).message}`);
    }
  };
  attempt('setHeader', () => res.setHeader('x-stale', 'STALE'));
  attempt('writeHead', () => res.writeHead(500, { 'x-stale': 'STALE' }));
  attempt('flushHeaders', () => res.flushHeaders());
  attempt('write', () => res.write('STALE-WRITE'));
  attempt('end', () => res.end('STALE-END'));
  attempt('addTrailers', () => res.addTrailers({ 'x-stale': 'STALE' }));
  // interim responses go to the connection, not through the response's stream: the guard
  // must be the exchange's own (its generation), not the Writable's ended state
  attempt('writeContinue', () => res.writeContinue());
  attempt('writeProcessing', () => res.writeProcessing());
  attempt('writeEarlyHints', () => res.writeEarlyHints({ link: '</stale.css>; rel=preload' }));
  attempt('destroy', () => res.destroy());
}

/** The responses in `wire`, in order: status line and body of each (Content-Length framed). */
function responses(wire: string): { status: string; body: string }[] {
  const out: { status: string; body: string }[] = [];
  let rest = wire;
  while (rest.length > 0) {
    const end = rest.indexOf('\r\n\r\n');
    if (end < 0) throw new Error(`trailing bytes on the wire: ${JSON.stringify(rest)}`);
    const head = rest.slice(0, end);
    const m = /\r\ncontent-length: (\d+)/i.exec(head);
    if (!m) throw new Error(`response without Content-Length: ${JSON.stringify(head)}`);
    const n = Number(m[1]);
    out.push({ status: head.slice(0, head.indexOf('\r\n')), body: rest.slice(end + 4, end + 4 + n) });
    rest = rest.slice(end + 4 + n);
  }
  return out;
}

/** Calls that are no-ops on a finished response (as in node:http): the wire checks cover them. */
const NO_OPS = new Set([
  'flushHeaders',
  'addTrailers',
  'writeContinue',
  'writeProcessing',
  'writeEarlyHints',
  'destroy',
]);

describe('a response used after it finished (stale reference)', () => {
  it('is refused while the same connection answers the next requests; nothing stale reaches the wire', async () => {
    const kept: ServerResponse[] = [];
    const errors: string[] = [];
    const log: string[] = [];
    let later: ServerResponse | undefined;
    const server = createServer((req, res) => {
      res.on('error', (e: Error & { code?: string }) => errors.push(e.code ?? e.message));
      if (req.url === '/1') {
        kept.push(res);
        res.end('first');
      } else if (req.url === '/2') {
        // request 1's response is done: its handler comes back to it during request 2
        const stale = kept[0] as ServerResponse;
        tryEverything(stale, log);
        kept.push(res);
        res.end('second');
      } else {
        // request 3 answers later; meanwhile both old responses are tried again
        later = res;
      }
    });
    const sock = new FakeSocket();
    server.emit('connection', sock);
    sock.feed(GET('/1'));
    await settle();
    sock.feed(GET('/2'));
    await settle();
    sock.feed(GET('/3'));
    await settle();
    expect(later).toBeDefined();
    for (const stale of kept) tryEverything(stale, log);
    await settle();
    (later as ServerResponse).end('third');
    await settle();

    const got = responses(sock.output);
    expect(got.map((r) => r.body)).toEqual(['first', 'second', 'third']);
    expect(got.every((r) => r.status === 'HTTP/1.1 200 OK')).toBe(true);
    expect(sock.output).not.toContain('STALE');
    // every attempt was refused: a throw, false, or an error event — none went through as ok
    // except the ones that are no-ops by node:http's rules (flushHeaders once sent,
    // addTrailers after the end: the wire check above shows nothing went out)
    for (const entry of log) {
      const [what, outcome] = entry.split(':') as [string, string];
      if (NO_OPS.has(what)) continue;
      expect(outcome === 'false' || outcome.startsWith('throw') || what === 'end', entry).toBe(true);
    }
    expect(log.filter((e) => e.startsWith('setHeader:throw ERR_HTTP_HEADERS_SENT'))).toHaveLength(3);
    // a write is refused with false (the finished response is destroyed) and no byte
    expect(log.filter((e) => e === 'write:false')).toHaveLength(3);
    expect(errors.every((c) => c === 'ERR_STREAM_WRITE_AFTER_END' || c === 'ERR_STREAM_DESTROYED')).toBe(
      true,
    );
    // the connection is still good for a fourth request
    sock.feed(GET('/1'));
    await settle();
    expect(responses(sock.output).map((r) => r.body)).toEqual(['first', 'second', 'third', 'first']);
    expect(server.stats().counters['local-protocol-errors'] ?? 0).toBe(0);
    // the interim responses tried through old responses were counted as refused, not sent
    expect(server.stats().counters['stale-response-calls']).toBeGreaterThanOrEqual(9);
    sock.destroy();
  });

  it('on a closed connection it neither throws out of the server nor writes', async () => {
    let kept: ServerResponse | undefined;
    const server = createServer((_req, res) => {
      res.on('error', () => {});
      kept = res;
      res.end('only');
    });
    const sock = new FakeSocket();
    server.emit('connection', sock);
    sock.feed(GET('/', 'Connection: close\r\n'));
    await settle();
    const before = sock.output;
    expect(responses(before).map((r) => r.body)).toEqual(['only']);
    const log: string[] = [];
    tryEverything(kept as ServerResponse, log);
    await settle();
    expect(sock.output).toBe(before);
    expect(log).toContain('setHeader:throw ERR_HTTP_HEADERS_SENT');
    expect(log).toContain('write:false');
  });
});
