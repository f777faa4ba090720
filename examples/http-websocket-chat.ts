/**
 * WebSocket push: a chat room on three hosts, every message to every member in one order.
 *
 * Three clients on three hosts upgrade `GET /chat` to a
 * WebSocket (RFC 6455 §4) and the server pushes every message to every member, in one order.
 *
 * Either side may speak at any time on the one connection: no polling, no request per
 * message. Alice, Bob and Carol speak at 100, 150, 200 and 205 ms; the server numbers each
 * message as it arrives and fans it out, so all three see the same sequence one link delay
 * (5 ms) after the server relays it.
 *
 *   pnpm example http-websocket-chat
 *   pnpm example http-websocket-chat --tun    # root: real packets, the kernel routing (lib/stage.ts)
 */
import { ws } from '@stepwire/http';
import { isMain, stage } from './lib/stage.ts';

export const SCRIPT: [number, string, string][] = [
  [100, 'alice', 'hi all'],
  [150, 'bob', 'hello alice'],
  [200, 'carol', 'hey, what did I miss?'],
  [205, 'alice', 'nothing yet'],
];

export interface Line {
  seq: number;
  from: string;
  text: string;
}

export async function run(o: { seed?: number; print?: boolean; tun?: boolean } = {}) {
  const names = ['alice', 'bob', 'carol'];
  const s = stage((_req, res) => res.writeHead(404).end(), {
    seed: o.seed ?? 1,
    print: o.print ?? false,
    tun: o.tun ?? false,
    clients: names,
  });
  try {
    const room = new Set<ws.WebSocket>();
    const relayedAt: number[] = [];
    let seq = 0;
    const wss = new ws.WebSocketServer({ server: s.http, path: '/chat', clock: s.net.clock });
    wss.on('connection', (peer: ws.WebSocket) => {
      room.add(peer);
      peer.on('message', (data: Buffer) => {
        const m = JSON.parse(data.toString()) as { from: string; text: string };
        const line: Line = { seq: ++seq, ...m };
        relayedAt.push(s.now());
        s.log('server', `#${line.seq} from ${m.from} → ${room.size} members`);
        for (const member of room) member.send(JSON.stringify(line));
      });
      peer.on('close', () => room.delete(peer));
    });

    const seen = new Map<string, (Line & { at: number })[]>();
    const sockets = new Map<string, ws.WebSocket>();
    await s.net.run(
      Promise.all(
        s.clients.map(
          (host) =>
            new Promise<void>((resolve, reject) => {
              const c = ws.connectWebSocket(`ws://${s.server.ipv4}/chat`, {
                socket: host.tcp.connect({ host: s.server.ipv4, port: 80 }),
                clock: s.net.clock,
              });
              const lines: (Line & { at: number })[] = [];
              seen.set(host.name, lines);
              sockets.set(host.name, c);
              c.on('message', (data: Buffer) => {
                const line = JSON.parse(data.toString()) as Line;
                lines.push({ ...line, at: s.now() });
                s.log(host.name, `← #${line.seq} ${line.from}: ${line.text}`);
              });
              c.on('open', () => {
                s.log(host.name, 'joined');
                resolve();
              });
              c.on('error', reject);
            }),
        ),
      ),
    );
    for (const [at, from, text] of SCRIPT)
      s.at(at, () => {
        s.log(from, `→ ${text}`);
        sockets.get(from)?.send(JSON.stringify({ from, text }));
      });
    await s.net.run(() => [...seen.values()].every((l) => l.length === SCRIPT.length));
    for (const c of sockets.values()) c.close(1000, 'bye');
    await s.net.run(() => room.size === 0);
    return { seen: Object.fromEntries(seen), relayedAt, timeline: s.timeline };
  } finally {
    await s.close();
  }
}

if (isMain(import.meta.url)) await run({ print: true, tun: process.argv.includes('--tun') });
