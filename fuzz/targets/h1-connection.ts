/**
 * The HTTP/1.1 connection core (RFC 9112) as a server fed arbitrary client bytes: chunks with
 * a 2-byte length each, then the end of the stream. Framing errors come back as error events
 * (HttpParseError, a ParseError); nothing may throw from receive() or onTimeout(), and the
 * EOF may end only in an event or a ParseError.
 */
import { Http1Connection } from '../../packages/http/src/h1/connection.ts';
import { chunks, only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  const c = new Http1Connection({ role: 'server', limits: { maxHeaderSize: 8192, maxBodySize: 1 << 16 } });
  let now = 0;
  for (const chunk of chunks(data)) {
    c.receive(chunk, now);
    now += 1000;
    const t = c.nextTimeout();
    if (t !== undefined && t <= now) c.onTimeout(now);
  }
  only(() => c.receiveEof(now));
}
