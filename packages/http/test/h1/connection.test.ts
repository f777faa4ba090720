import { fc, test as fcTest } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import type { ResponseHead } from '../../src/h1/codec.ts';
import { Http1Connection, type Http1Event, LocalProtocolError } from '../../src/h1/connection.ts';
import { EVENT_RULES, STATE_RULES } from '../../src/h1/state.ts';
import {
  arbitraryHttpishBytes,
  arbitraryRequestMessage,
  arbitraryResponseHead,
  arbitrarySplit,
  bodyOf,
  encodeRequestMessage,
} from '../../src/h1/testing.ts';

const b = (s: string) => Buffer.from(s, 'latin1');
const V11 = { major: 1, minor: 1 };
const res = (status: number, fields: [string, string][] = [], reason = 'OK'): ResponseHead => ({
  version: V11,
  status,
  reason,
  fields,
});

function server(opts: ConstructorParameters<typeof Http1Connection>[0] | object = {}) {
  return new Http1Connection({ role: 'server', ...opts });
}

/** The first error event's kind and status from feeding `s` to a fresh server. */
function rejectOf(s: string, opts: object = {}): { kind: string; status: number } | undefined {
  const c = server(opts);
  const ev = c.receive(b(s));
  const e = ev.find((x) => x.type === 'error');
  if (e?.type !== 'error') return undefined;
  expect(c.theirState).toBe('ERROR');
  return { kind: e.error.kind, status: e.error.status };
}

/** Event summaries, data merged, for comparing streams of events. */
function summary(evs: Http1Event[]): unknown[] {
  const out: unknown[] = [];
  let data: Buffer[] = [];
  const flush = () => {
    if (data.length) out.push({ data: Buffer.concat(data).toString('hex') });
    data = [];
  };
  for (const e of evs) {
    if (e.type === 'data') {
      data.push(Buffer.from(e.data));
      continue;
    }
    flush();
    if (e.type === 'request') out.push({ request: e.head, framing: e.framing });
    else if (e.type === 'error') out.push({ error: e.error.kind });
    else out.push(e);
  }
  flush();
  return out;
}

describe('Http1Connection: request smuggling defenses (RFC 9112 §6.1, §6.3, §11.2)', () => {
  it('TE+CL: Transfer-Encoding with Content-Length is 400', () => {
    expect(
      rejectOf(
        'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
      ),
    ).toEqual({ kind: 'te-and-cl', status: 400 });
  });
  it('TE in HTTP/1.0 is 400', () => {
    expect(rejectOf('POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).toEqual({
      kind: 'te-in-http10',
      status: 400,
    });
  });
  it('TE not ending in chunked on a request is 400', () => {
    expect(rejectOf('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n')).toEqual({
      kind: 'te-not-chunked',
      status: 400,
    });
    expect(rejectOf('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n')?.kind).toBe(
      'te-not-chunked',
    );
  });
  it('TE chunked twice is 400', () => {
    expect(
      rejectOf(
        'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n',
      )?.kind,
    ).toBe('te-not-chunked');
  });
  it('TE with an unknown coding before chunked is 501', () => {
    expect(rejectOf('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n')).toEqual({
      kind: 'te-unsupported',
      status: 501,
    });
  });
  it('duplicate differing Content-Length is 400', () => {
    expect(
      rejectOf('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd'),
    ).toEqual({
      kind: 'duplicate-content-length',
      status: 400,
    });
    expect(rejectOf('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd')?.kind).toBe(
      'duplicate-content-length',
    );
  });
  it('duplicate equal Content-Length is one length (RFC 9110 §8.6)', () => {
    const c = server();
    const ev = c.receive(
      b('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc'),
    );
    expect(summary(ev).slice(1)).toEqual([{ data: '616263' }, { type: 'end' }]);
  });
  it('Content-Length that is not digits is 400', () => {
    expect(rejectOf('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc')?.kind).toBe(
      'bad-content-length',
    );
    expect(rejectOf('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc')?.kind).toBe(
      'bad-content-length',
    );
  });
  it('bare CR is 400', () => {
    expect(rejectOf('GET / HTTP/1.1\r\nHost: a\rX-Smuggle: 1\r\n\r\n')).toEqual({
      kind: 'bare-cr',
      status: 400,
    });
  });
  it('obs-fold is 400', () => {
    expect(rejectOf('GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n\tcontinued\r\n\r\n')).toEqual({
      kind: 'obs-fold',
      status: 400,
    });
  });
  it('whitespace before colon is 400', () => {
    expect(rejectOf('GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n')).toEqual({
      kind: 'space-before-colon',
      status: 400,
    });
  });
  it('NUL in a value is 400', () => {
    expect(rejectOf('GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n')).toEqual({
      kind: 'bad-field-value',
      status: 400,
    });
  });
  it('CTL in a value is 400', () => {
    expect(rejectOf('GET / HTTP/1.1\r\nHost: a\r\nX: a\x7fb\r\n\r\n')?.kind).toBe('bad-field-value');
  });
  it('Host missing in HTTP/1.1 is 400', () => {
    expect(rejectOf('GET / HTTP/1.1\r\nX: y\r\n\r\n')).toEqual({ kind: 'missing-host', status: 400 });
  });
  it('Host duplicate is 400', () => {
    expect(rejectOf('GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n')).toEqual({
      kind: 'duplicate-host',
      status: 400,
    });
  });
  it('HTTP/1.0 without Host is fine', () => {
    expect(summary(server().receive(b('GET / HTTP/1.0\r\n\r\n')))).toHaveLength(2);
  });
  it('chunk size overflow, bad hex and a missing CRLF after data are 400', () => {
    const pre = 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n';
    expect(rejectOf(`${pre}10000000000000000\r\n`)?.kind).toBe('chunk-size-overflow');
    expect(rejectOf(`${pre}zz\r\n`)?.kind).toBe('bad-chunk-size');
    expect(rejectOf(`${pre}3\r\nabcd\r\n`)?.kind).toBe('bad-chunk-crlf');
    expect(rejectOf(`${pre}3\nabc\r\n`)?.kind).toBe('bare-lf');
  });
  it('nothing after an error is parsed: a smuggled second request never appears', () => {
    const c = server();
    const ev = c.receive(
      b(
        'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n',
      ),
    );
    expect(ev.map((e) => e.type)).toEqual(['error']);
    expect(c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'))).toEqual([]);
  });
});

describe('Http1Connection: limits', () => {
  it('a request-line over the limit is 414', () => {
    expect(rejectOf(`GET /${'a'.repeat(9000)} HTTP/1.1\r\nHost: a\r\n\r\n`)).toEqual({
      kind: 'uri-too-long',
      status: 414,
    });
    // also before the line is complete
    expect(rejectOf(`GET /${'a'.repeat(9000)}`)?.status).toBe(414);
    expect(
      rejectOf(`GET /${'a'.repeat(100)} HTTP/1.1\r\nHost: a\r\n\r\n`, { limits: { maxRequestLineSize: 64 } })
        ?.status,
    ).toBe(414);
  });
  it('a header section over 16 KiB is 431', () => {
    const big = `GET / HTTP/1.1\r\nHost: a\r\n${'X-Pad: 0123456789012345678901234567890123456789\r\n'.repeat(400)}\r\n`;
    expect(rejectOf(big)).toEqual({ kind: 'header-too-large', status: 431 });
    expect(rejectOf(big.slice(0, 17000))?.status).toBe(431);
  });
  it('one field line over its limit is 431', () => {
    expect(
      rejectOf(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'v'.repeat(200)}\r\n\r\n`, {
        limits: { maxFieldLineSize: 100 },
      }),
    ).toEqual({ kind: 'field-line-too-large', status: 431 });
  });
  it('too many field lines is 431', () => {
    expect(
      rejectOf(`GET / HTTP/1.1\r\nHost: a\r\n${'X: 1\r\n'.repeat(20)}\r\n`, {
        limits: { maxFieldCount: 10 },
      }),
    ).toEqual({ kind: 'too-many-fields', status: 431 });
  });
  it('a body over the limit is 413, by Content-Length at once, by chunks as they come', () => {
    const limits = { maxBodySize: 10 };
    expect(rejectOf('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n', { limits })).toEqual({
      kind: 'body-too-large',
      status: 413,
    });
    const c = server({ limits });
    const ev = c.receive(
      b('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\n'),
    );
    expect(summary(ev).map((e) => Object.keys(e as object)[0])).toEqual(['request', 'data', 'error']);
  });
  it('a chunk-size line over its limit is 400', () => {
    expect(
      rejectOf(`POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1;${'x'.repeat(5000)}`)?.kind,
    ).toBe('chunk-ext-too-large');
  });
});

describe('Http1Connection: message exchange', () => {
  it('pipelined requests come out one cycle at a time, responses in order (RFC 9112 §9.3.2)', () => {
    const c = server();
    const ev = c.receive(
      b(
        'GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\nGET /3 HTTP/1.1\r\nHost: a\r\n\r\n',
      ),
    );
    expect(ev.filter((e) => e.type === 'request')).toHaveLength(1);
    expect(c.bufferedBytes).toBeGreaterThan(0);
    const targets: string[] = [];
    let next = ev;
    for (let i = 0; i < 3; i++) {
      const r = next.find((e) => e.type === 'request');
      if (r?.type === 'request') targets.push(r.head.target);
      c.send({ type: 'response', head: res(200, [['Content-Length', '0']]) });
      c.send({ type: 'end' });
      next = c.pump();
    }
    expect(targets).toEqual(['/1', '/2', '/3']);
    expect(c.cycles).toBe(3);
  });

  it('a response cannot be sent twice, nor data beyond Content-Length', () => {
    const c = server();
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    c.send({ type: 'response', head: res(200, [['Content-Length', '2']]) });
    expect(() => c.send({ type: 'response', head: res(200) })).toThrow(LocalProtocolError);
    expect(() => c.send({ type: 'data', data: b('abc') })).toThrow(LocalProtocolError);
    expect(() => c.send({ type: 'end' })).toThrow(/short/);
  });

  it('chunked responses with trailers are framed by send()', () => {
    const c = server();
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    const out = [
      c.send({ type: 'response', head: res(200, [['Transfer-Encoding', 'chunked']]) }),
      c.send({ type: 'data', data: b('hello') }),
      c.send({ type: 'end', trailers: [['X-Sum', '1']] }),
    ];
    expect(Buffer.concat(out).toString()).toBe(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 1\r\n\r\n',
    );
  });

  it('HEAD, 204 and 304 responses carry no body (RFC 9110 §9.3.2, §15.3.5, §15.4.5)', () => {
    const c = server();
    c.receive(b('HEAD / HTTP/1.1\r\nHost: a\r\n\r\n'));
    c.send({ type: 'response', head: res(200, [['Content-Length', '5']]) });
    expect(c.send({ type: 'data', data: b('hello') })).toHaveLength(0);
    c.send({ type: 'end' });
    // the client side: a response to HEAD with Content-Length ends at its head
    const cl = new Http1Connection({ role: 'client' });
    cl.send({
      type: 'request',
      head: { method: 'HEAD', target: '/', version: V11, fields: [['Host', 'a']] },
    });
    cl.send({ type: 'end' });
    const ev = cl.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n'));
    expect(ev.map((e) => e.type)).toEqual(['response', 'end']);
    for (const status of [204, 304]) {
      const k = new Http1Connection({ role: 'client' });
      k.send({
        type: 'request',
        head: { method: 'GET', target: '/', version: V11, fields: [['Host', 'a']] },
      });
      k.send({ type: 'end' });
      expect(k.receive(b(`HTTP/1.1 ${status} X\r\nContent-Length: 9\r\n\r\n`)).map((e) => e.type)).toEqual([
        'response',
        'end',
      ]);
    }
  });

  it('1xx interim responses precede the final one; Expect: 100-continue is reported', () => {
    const c = server();
    const ev = c.receive(b('PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n'));
    const r = ev[0];
    expect(r?.type === 'request' && r.expectContinue).toBe(true);
    expect(Buffer.from(c.send({ type: 'informational', head: res(100, [], 'Continue') })).toString()).toBe(
      'HTTP/1.1 100 Continue\r\n\r\n',
    );
    expect(summary(c.receive(b('abc')))).toEqual([{ data: '616263' }, { type: 'end' }]);
  });

  it('Connection: close from the client ends the connection after the response', () => {
    const c = server();
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n'));
    c.send({ type: 'response', head: res(200, [['Content-Length', '0']]) });
    c.send({ type: 'end' });
    expect(c.ourState).toBe('MUST_CLOSE');
    expect(c.pump()).toEqual([]);
  });

  it('bytes after a request with Connection: close are dropped, not buffered (RFC 9112 §9.6)', () => {
    const c = server();
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n'));
    c.send({ type: 'response', head: res(200, [['Content-Length', '0']]) });
    c.send({ type: 'end' });
    expect(c.receive(b('GET /more HTTP/1.1\r\nHost: a\r\n\r\n'.repeat(100)))).toEqual([]);
    expect(c.bufferedBytes).toBe(0);
    expect(c.droppedBytes).toBeGreaterThan(0);
  });

  it('Connection: close from the server ends it too, and HTTP/1.0 closes unless keep-alive', () => {
    const c = server();
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    c.send({
      type: 'response',
      head: res(200, [
        ['Content-Length', '0'],
        ['Connection', 'close'],
      ]),
    });
    c.send({ type: 'end' });
    expect(c.ourState).toBe('MUST_CLOSE');
    const d = server();
    const ev = d.receive(b('GET / HTTP/1.0\r\n\r\n'));
    expect(ev[0]?.type === 'request' && ev[0].keepAlive).toBe(false);
    const k = server();
    const ev2 = k.receive(b('GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'));
    expect(ev2[0]?.type === 'request' && ev2[0].keepAlive).toBe(true);
  });

  it('Upgrade: 101 switches and hands over the bytes after the head', () => {
    const c = server();
    const ev = c.receive(
      b('GET /chat HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n\x81\x00raw'),
    );
    expect(ev[0]?.type === 'request' && ev[0].upgrade).toEqual(['websocket']);
    expect(c.theirState).toBe('MIGHT_SWITCH_PROTOCOL');
    c.send({
      type: 'informational',
      head: res(
        101,
        [
          ['Upgrade', 'websocket'],
          ['Connection', 'Upgrade'],
        ],
        'Switching Protocols',
      ),
    });
    expect(c.ourState).toBe('SWITCHED_PROTOCOL');
    expect(c.theirState).toBe('SWITCHED_PROTOCOL');
    expect(Buffer.from(c.takeRemainder()).toString('latin1')).toBe('\x81\x00raw');
  });

  it('Upgrade declined: a normal response and the connection carries on', () => {
    const c = server();
    c.receive(
      b(
        'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n',
      ),
    );
    c.send({ type: 'response', head: res(200, [['Content-Length', '0']]) });
    c.send({ type: 'end' });
    const ev = c.pump();
    expect(ev[0]?.type === 'request' && ev[0].head.target).toBe('/2');
  });

  it('CONNECT: a 2xx turns the connection into a tunnel (RFC 9110 §9.3.6), on both roles', () => {
    const c = server();
    c.receive(b('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01'));
    c.send({ type: 'response', head: res(200, [], 'Connection Established') });
    expect(c.ourState).toBe('SWITCHED_PROTOCOL');
    expect([...c.takeRemainder()]).toEqual([0x16, 3, 1]);
    const k = new Http1Connection({ role: 'client' });
    k.send({
      type: 'request',
      head: {
        method: 'CONNECT',
        target: 'example.com:443',
        version: V11,
        fields: [['Host', 'example.com:443']],
      },
    });
    k.send({ type: 'end' });
    const ev = k.receive(b('HTTP/1.1 200 OK\r\n\r\ntunnel'));
    expect(ev[0]?.type === 'upgrade' && Buffer.from(ev[0].rest).toString()).toBe('tunnel');
  });

  it('a client reads a close-delimited response to the EOF', () => {
    const k = new Http1Connection({ role: 'client' });
    k.send({ type: 'request', head: { method: 'GET', target: '/', version: V11, fields: [['Host', 'a']] } });
    k.send({ type: 'end' });
    expect(summary(k.receive(b('HTTP/1.1 200 OK\r\n\r\nabc')))).toHaveLength(2);
    expect(summary(k.receiveEof())).toEqual([{ type: 'end' }, { type: 'closed' }]);
  });

  it('EOF inside a head or a body is an error; EOF between requests is a close', () => {
    const c = server();
    c.receive(b('GET / HT'));
    expect(summary(c.receiveEof())).toEqual([{ error: 'truncated' }]);
    const d = server();
    d.receive(b('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\nabc'));
    expect(summary(d.receiveEof())).toEqual([{ error: 'truncated' }]);
    const e = server();
    expect(e.receiveEof()).toEqual([{ type: 'closed' }]);
  });
});

describe('Http1Connection: the client role', () => {
  const get = (c: Http1Connection, method = 'GET', fields: [string, string][] = []) => {
    c.send({
      type: 'request',
      head: { method, target: '/', version: V11, fields: [['Host', 'a'], ...fields] },
    });
    c.send({ type: 'end' });
  };
  it('keeps the connection for the next request when both messages are done', () => {
    const c = new Http1Connection({ role: 'client' });
    get(c);
    expect(summary(c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok')))).toHaveLength(3);
    expect([c.ourState, c.theirState]).toEqual(['IDLE', 'IDLE']);
    get(c);
    c.receive(b('HTTP/1.1 204 No Content\r\n\r\n'));
    expect(c.cycles).toBe(2);
  });
  it('a response with Transfer-Encoding and Content-Length is refused (RFC 9112 §6.1)', () => {
    const c = new Http1Connection({ role: 'client' });
    get(c);
    expect(
      summary(c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n'))),
    ).toEqual([{ error: 'te-and-cl' }]);
  });
  it('a response with differing Content-Lengths is refused', () => {
    const c = new Http1Connection({ role: 'client' });
    get(c);
    expect(
      summary(c.receive(b('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n'))),
    ).toEqual([{ error: 'duplicate-content-length' }]);
  });
  it('a response that is not chunked-last runs to the close (RFC 9112 §6.3 rule 4)', () => {
    const c = new Http1Connection({ role: 'client' });
    get(c);
    const ev = c.receive(b('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz'));
    expect(ev[0]?.type === 'response' && ev[0].framing).toEqual({ kind: 'close' });
    expect(summary(c.receiveEof())).toEqual([{ type: 'end' }, { type: 'closed' }]);
  });
  it('101 to an Upgrade request hands over the rest', () => {
    const c = new Http1Connection({ role: 'client' });
    get(c, 'GET', [
      ['Connection', 'Upgrade'],
      ['Upgrade', 'websocket'],
    ]);
    const ev = c.receive(
      b('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x02hi'),
    );
    expect(ev[0]?.type).toBe('upgrade');
    expect(ev[0]?.type === 'upgrade' && Buffer.from(ev[0].rest).toString('latin1')).toBe('\x81\x02hi');
    expect([c.ourState, c.theirState]).toEqual(['SWITCHED_PROTOCOL', 'SWITCHED_PROTOCOL']);
  });
  it('an early response, before the request body is sent, is read', () => {
    const c = new Http1Connection({ role: 'client' });
    c.send({
      type: 'request',
      head: {
        method: 'POST',
        target: '/',
        version: V11,
        fields: [
          ['Host', 'a'],
          ['Content-Length', '10'],
        ],
      },
    });
    const ev = c.receive(
      b('HTTP/1.1 413 Content Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'),
    );
    expect(ev.map((e) => e.type)).toEqual(['response', 'end']);
    expect(c.ourState).toBe('SEND_BODY');
  });
  it('a client cannot send a second request before the cycle ends', () => {
    const c = new Http1Connection({ role: 'client' });
    get(c);
    expect(() => get(c)).toThrow(LocalProtocolError);
  });
});

describe('Http1Connection: slowloris timeouts (deadlines for the driver)', () => {
  const timeouts = { headersTimeout: 1000, requestTimeout: 5000, keepAliveTimeout: 300 };
  it('headers timeout: a head that never ends', () => {
    const c = server({ timeouts, now: 0 });
    expect(c.nextTimeout()).toBe(1000);
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n'), 100);
    expect(c.nextTimeout()).toBe(1100);
    expect(c.onTimeout(1099)).toEqual([]);
    expect(c.onTimeout(1100)).toEqual([{ type: 'timeout', kind: 'headers' }]);
    expect(c.nextTimeout()).toBeUndefined();
  });
  it('request timeout: a body that trickles', () => {
    const c = server({ timeouts, now: 0 });
    c.receive(b('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n'), 10);
    c.receive(b('a'), 2000);
    expect(c.nextTimeout()).toBe(5010);
    expect(c.onTimeout(5010)).toEqual([{ type: 'timeout', kind: 'request' }]);
  });
  it('keep-alive timeout: idle after a response', () => {
    const c = server({ timeouts, now: 0 });
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 5);
    expect(c.nextTimeout()).toBeUndefined();
    c.send({ type: 'response', head: res(200, [['Content-Length', '0']]) }, 50);
    c.send({ type: 'end' }, 60);
    // The advertised 300 ms and node:http's 1,000 ms buffer (keepAliveTimeoutBuffer).
    expect(c.nextTimeout()).toBe(1360);
    expect(c.onTimeout(1359)).toEqual([]);
    expect(c.onTimeout(1360)).toEqual([{ type: 'timeout', kind: 'keep-alive' }]);
  });
  it('keep-alive timeout: the buffer past the advertised time is configurable, and off with the timeout', () => {
    const c = server({ timeouts: { ...timeouts, keepAliveTimeoutBuffer: 0 }, now: 0 });
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 5);
    c.send({ type: 'response', head: res(200, [['Content-Length', '0']]) }, 50);
    c.send({ type: 'end' }, 60);
    expect(c.nextTimeout()).toBe(360);
    const off = server({ timeouts: { ...timeouts, keepAliveTimeout: 0 }, now: 0 });
    off.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 5);
    off.send({ type: 'response', head: res(200, [['Content-Length', '0']]) }, 50);
    off.send({ type: 'end' }, 60);
    expect(off.nextTimeout()).toBeUndefined();
  });
  it('no deadline while the application owes a response', () => {
    const c = server({ timeouts, now: 0 });
    c.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'), 5);
    expect(c.nextTimeout()).toBeUndefined();
  });
});

describe('Http1Connection: the state table', () => {
  it('every row cites RFC 9110 or RFC 9112', () => {
    for (const r of [...EVENT_RULES, ...STATE_RULES]) expect(r.rfc).toMatch(/^RFC 911[02] §/);
  });
  it('a transition missing from the table is refused', () => {
    const c = server();
    expect(() => c.send({ type: 'data', data: b('x') })).toThrow(LocalProtocolError);
    expect(() => c.send({ type: 'informational', head: res(100) })).toThrow(LocalProtocolError);
  });
});

describe('Http1Connection: laws', () => {
  fcTest.prop([
    arbitraryRequestMessage.chain((m) => fc.tuple(fc.constant(m), arbitrarySplit(encodeRequestMessage(m)))),
  ])('the same events however the bytes are split', ([m, pieces]) => {
    const whole = server().receive(encodeRequestMessage(m));
    const c = server();
    const split = pieces.flatMap((p) => c.receive(p));
    expect(summary(split)).toEqual(summary(whole));
    const body = Buffer.concat(whole.flatMap((e) => (e.type === 'data' ? [Buffer.from(e.data)] : [])));
    expect(body.equals(Buffer.from(bodyOf(m)))).toBe(true);
    expect(whole[whole.length - 1]).toEqual({ type: 'end' });
  });

  fcTest.prop([arbitraryRequestMessage])('round trip: what a client sends, a server receives', (m) => {
    const client = new Http1Connection({ role: 'client' });
    const head = {
      ...m.head,
      fields: m.head.fields.filter(
        ([n]) => n.toLowerCase() !== 'transfer-encoding' && n.toLowerCase() !== 'content-length',
      ),
    };
    const data = bodyOf(m);
    head.fields.push(
      m.body.kind === 'length' ? ['Content-Length', String(data.length)] : ['Transfer-Encoding', 'chunked'],
    );
    const bytes: Uint8Array[] = [client.send({ type: 'request', head })];
    if (m.body.kind === 'chunked')
      for (const c of m.body.chunked.chunks) bytes.push(client.send({ type: 'data', data: c.data }));
    else bytes.push(client.send({ type: 'data', data }));
    bytes.push(
      client.send({ type: 'end', trailers: m.body.kind === 'chunked' ? m.body.chunked.trailers : [] }),
    );
    const ev = server().receive(Buffer.concat(bytes));
    const r = ev[0];
    expect(r?.type === 'request' && r.head).toEqual(head);
    const got = Buffer.concat(ev.flatMap((e) => (e.type === 'data' ? [Buffer.from(e.data)] : [])));
    expect(got.equals(Buffer.from(data))).toBe(true);
  });

  fcTest.prop([
    arbitraryResponseHead,
    fc.array(fc.uint8Array({ minLength: 1, maxLength: 50 }), { maxLength: 4 }),
    fc.boolean(),
  ])('round trip: what a server sends, a client receives (chunked or by length)', (head, chunks, chunked) => {
    const srv = server();
    srv.receive(b('GET / HTTP/1.1\r\nHost: a\r\n\r\n'));
    const total = chunks.reduce((n, c) => n + c.length, 0);
    const framing: [string, string] = chunked
      ? ['Transfer-Encoding', 'chunked']
      : ['Content-Length', String(total)];
    const h = { ...head, version: V11, fields: [...head.fields, framing] };
    const wire = [
      srv.send({ type: 'response', head: h }),
      ...chunks.map((d) => srv.send({ type: 'data', data: d })),
      srv.send({ type: 'end' }),
    ];
    const cl = new Http1Connection({ role: 'client' });
    cl.send({ type: 'request', head: { method: 'GET', target: '/', version: V11, fields: [['Host', 'a']] } });
    cl.send({ type: 'end' });
    const ev = cl.receive(Buffer.concat(wire));
    expect(ev[0]?.type === 'response' && ev[0].head).toEqual(h);
    const got = Buffer.concat(ev.flatMap((e) => (e.type === 'data' ? [Buffer.from(e.data)] : [])));
    expect(got.equals(Buffer.concat(chunks))).toBe(true);
    expect(ev[ev.length - 1]).toEqual({ type: 'end' });
  });
  fcTest.prop([
    fc.array(fc.oneof(arbitraryHttpishBytes, fc.uint8Array({ maxLength: 64 })), { maxLength: 6 }),
    fc.boolean(),
  ])('total over arbitrary bytes: events, never a throw, on both roles', (pieces, asClient) => {
    const c = new Http1Connection({ role: asClient ? 'client' : 'server' });
    if (asClient) {
      c.send({
        type: 'request',
        head: { method: 'GET', target: '/', version: V11, fields: [['Host', 'a']] },
      });
      c.send({ type: 'end' });
    }
    for (const p of pieces) {
      const ev = c.receive(p);
      for (const e of ev) expect(typeof e.type).toBe('string');
      // a server keeps answering: the application finishes each response
      if (!asClient && ev.some((e) => e.type === 'request') && c.ourState === 'SEND_RESPONSE') {
        c.send({ type: 'response', head: res(200, [['Content-Length', '0']]) });
        c.send({ type: 'end' });
      }
    }
    c.receiveEof();
  });
});
