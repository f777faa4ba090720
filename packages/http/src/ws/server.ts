import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import { WebSocketConnection } from './connection.ts';
import { acceptDeflate, PerMessageDeflate, type PerMessageDeflateOptions } from './deflate.ts';
import {
  checkClientHandshake,
  encodeHandshakeResponse,
  formatExtensions,
  fromRawHeaders,
  type HeaderList,
  serverHandshakeHeaders,
} from './handshake.ts';
import { WebSocket, type WebSocketDriverOptions } from './websocket.ts';

/** What the helper needs of an upgrade request: node:http's IncomingMessage has it, so does ours. */
export interface UpgradeRequest {
  method?: string | undefined;
  url?: string | undefined;
  httpVersion: string;
  rawHeaders: string[];
}

export interface WebSocketServerOptions extends WebSocketDriverOptions {
  /** Listen to this server's 'upgrade' event (node:http's or ours). Omit for `handleUpgrade` only. */
  server?: { on(event: 'upgrade', l: (req: UpgradeRequest, socket: Duplex, head: Buffer) => void): unknown };
  /** Only accept upgrades whose path (without the query) is this. */
  path?: string;
  /** Pick a subprotocol from the client's list (RFC 6455 §4.2.2 item /subprotocol/); false for none. */
  handleProtocols?: (protocols: Set<string>, req: UpgradeRequest) => string | false;
  /** Accept or refuse by Origin and request (RFC 6455 §10.2); refusals get 403. */
  verifyClient?: (info: { origin: string | undefined; req: UpgradeRequest }) => boolean;
  /** Accept permessage-deflate offers (RFC 7692); true for defaults. */
  perMessageDeflate?: boolean | PerMessageDeflateOptions;
  maxPayload?: number;
  maskingKey?: () => Uint8Array;
}

function refuse(socket: Duplex, status: number, reason: string, headers: HeaderList = []): void {
  const body = Buffer.from(`${reason}\n`);
  socket.end(
    Buffer.concat([
      encodeHandshakeResponse(
        status,
        status === 426
          ? 'Upgrade Required'
          : status === 403
            ? 'Forbidden'
            : status === 405
              ? 'Method Not Allowed'
              : 'Bad Request',
        [
          ...headers,
          ['Connection', 'close'],
          ['Content-Type', 'text/plain'],
          ['Content-Length', String(body.length)],
        ],
      ),
      body,
    ]),
  );
}

/**
 * The server side of the opening handshake (RFC 6455 §4.2) for sockets handed over by an
 * HTTP server's 'upgrade' event, shaped like ws's WebSocketServer: `handleUpgrade(req,
 * socket, head, cb)` and a 'connection' event (ws, req).
 */
export class WebSocketServer extends EventEmitter {
  readonly clients = new Set<WebSocket>();
  /** Refused handshakes by reason, for stats. */
  readonly refused = new Map<number, number>();

  constructor(readonly options: WebSocketServerOptions = {}) {
    super();
    options.server?.on('upgrade', (req, socket, head) => {
      if (options.path !== undefined && (req.url ?? '/').split('?')[0] !== options.path) {
        refuse(socket, 400, 'no WebSocket here');
        return;
      }
      this.handleUpgrade(req, socket, head, (ws) => this.emit('connection', ws, req));
    });
  }

  handleUpgrade(
    req: UpgradeRequest,
    socket: Duplex,
    head: Uint8Array,
    cb: (ws: WebSocket, req: UpgradeRequest) => void,
  ): void {
    const o = this.options;
    const headers = fromRawHeaders(req.rawHeaders);
    const check = checkClientHandshake(req.method ?? 'GET', req.httpVersion, headers);
    const count = (status: number) => this.refused.set(status, (this.refused.get(status) ?? 0) + 1);
    if (!check.ok) {
      count(check.status);
      refuse(socket, check.status, check.reason, check.headers);
      return;
    }
    if (o.verifyClient && !o.verifyClient({ origin: check.origin, req })) {
      count(403);
      refuse(socket, 403, 'origin or request refused');
      return;
    }
    let protocol: string | undefined;
    if (check.protocols.length > 0 && o.handleProtocols) {
      const pick = o.handleProtocols(new Set(check.protocols), req);
      // RFC 6455 §4.2.2: the answer is one of the client's values, or none.
      if (pick !== false && check.protocols.includes(pick)) protocol = pick;
    } else if (check.protocols.length > 0 && !o.handleProtocols) {
      // ws's default: the client's first choice.
      protocol = check.protocols[0];
    }
    let deflate: PerMessageDeflate | undefined;
    let extensions: string | undefined;
    if (o.perMessageDeflate) {
      const options = o.perMessageDeflate === true ? {} : o.perMessageDeflate;
      const agreed = acceptDeflate(check.extensions, options);
      if (agreed) {
        deflate = new PerMessageDeflate(agreed.params, 'server', options.threshold, options.level);
        extensions = formatExtensions([agreed.response]);
      }
    }
    if (socket.destroyed) return;
    socket.write(
      encodeHandshakeResponse(
        101,
        'Switching Protocols',
        serverHandshakeHeaders({
          key: check.key,
          ...(protocol !== undefined ? { protocol } : {}),
          ...(extensions ? { extensions } : {}),
        }),
      ),
    );
    const core = new WebSocketConnection({
      role: 'server',
      traceFrames: !!o.trace,
      deflate,
      ...(o.maxPayload !== undefined ? { maxPayload: o.maxPayload } : {}),
      ...(o.maskingKey ? { maskingKey: o.maskingKey } : {}),
    });
    const ws = new WebSocket(o);
    ws.protocol = protocol ?? '';
    ws.extensions = extensions ?? '';
    this.clients.add(ws);
    ws.on('close', () => this.clients.delete(ws));
    // Errors of one connection are that connection's business; an unhandled 'error' would crash.
    ws.on('error', (e) => {
      if (ws.listenerCount('error') === 1) this.emit('wsClientError', e, ws);
    });
    cb(ws, req);
    ws.attach(socket, core, head);
  }

  /** Close every connection with 1001 (going away) and stop. */
  close(cb?: () => void): void {
    for (const ws of this.clients) ws.close(1001, 'server closing');
    cb?.();
  }
}
