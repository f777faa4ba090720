/**
 * The HTTP/2 connection core (RFC 9113) as a server fed arbitrary client bytes: chunks with a
 * 2-byte length each (the client preface must come first, as on the wire). Every request gets
 * a response with a little data, so the send side, flow control and stream states run too;
 * time passes between chunks (SETTINGS timeout, flood buckets). receive() and onTimeout()
 * answer protocol errors with GOAWAY/RST_STREAM, never an exception; the user calls are made
 * only where the API allows them (the stream can still send).
 */
import { Http2Connection } from '../../packages/http/src/h2/connection.ts';
import { chunks } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  const c = new Http2Connection({
    role: 'server',
    settings: { maxConcurrentStreams: 8, maxHeaderListSize: 8192, initialWindowSize: 65535 },
    connectionWindow: 1 << 16,
  });
  c.start(0);
  let now = 0;
  for (const chunk of chunks(data)) {
    const events = c.receive(chunk, now);
    for (const e of events) {
      if (e.type === 'headers' && e.kind !== 'trailers' && c.canSend(e.streamId)) {
        c.respond(e.streamId, [{ name: ':status', value: '200' }], false);
        if (c.canSend(e.streamId)) c.sendData(e.streamId, new Uint8Array(100), true);
      }
      if (e.type === 'data') c.consumed(e.streamId, e.data.length);
    }
    c.output();
    now += 50;
    const t = c.nextTimeout();
    if (t !== undefined && t <= now) c.onTimeout(now);
    c.output();
  }
}
