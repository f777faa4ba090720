/**
 * The complaint of issue #12 against `stepwire serve --tun`: a client that sends a bad record
 * right after the handshake (and more bytes behind it) must read our alert, not a TCP reset.
 * The client is a kernel socket in the test's own namespace (our TLS client in a child
 * process, `ip netns exec`), the server serve's HTTPS on our TCP over TUN. After the fatal
 * alert the server half-closes and drains until the client's FIN before it closes, so its
 * TCP never aborts with unread bytes (which would discard the alert). In this setup the alert
 * happened to arrive even before that drain existed (it left before the abort); the case
 * where the abort would drop it is packages/tls/test/socket-drain.test.ts's kernel-like pair.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown } from '@stepwire/link';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
const TSX = path.join(root, 'node_modules/.bin/tsx');
const NS = `sw-tls-drain-${process.pid}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-tls-drain-'));
let serve: ChildProcess | undefined;
let ca = '';

/** Our client over a kernel socket: handshake, then a record of unknown type and 64 KiB more. */
const CLIENT = `
import * as fs from 'node:fs';
import net from 'node:net';
import { certificateVerifier, TlsClient, TlsSocket } from ${JSON.stringify(path.join(root, 'packages/tls/src/index.ts'))};
const raw = net.connect(443, '198.18.0.2');
const s = new TlsSocket(raw, new TlsClient({ serverName: 'stepwire.test', verifier: certificateVerifier({ ca: fs.readFileSync(process.argv[2], 'utf8') }) }));
s.on('secure', () => {
  raw.write(Uint8Array.of(0x63, 3, 3, 0, 1, 0));
  raw.write(Buffer.alloc(65536, 0x41));
});
s.on('error', (e) => {
  console.log(JSON.stringify({ alert: e.alert, sentByUs: e.sentByUs, code: e.code }));
  process.exit(0);
});
s.startHandshake();
setTimeout(() => { console.log('timeout'); process.exit(1); }, 10000);
`;

beforeAll(async () => {
  requireRootAndPrograms(['ip']);
  netnsDown(NS);
  fs.writeFileSync(path.join(dir, 'client.ts'), CLIENT);
  serve = spawn(process.execPath, [BIN, 'serve', '--tun', '--netns', NS], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, STEPWIRE_HOME: path.join(dir, 'home') },
  });
  let out = '';
  serve.stdout?.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  await waitForLine(serve, /^ready$/, 30_000);
  ca =
    out
      .split('\n')
      .find((l) => l.startsWith('ca: '))
      ?.slice(4) ?? '';
}, 40_000);

afterAll(async () => {
  if (serve && serve.exitCode === null && serve.signalCode === null) {
    const exited = new Promise((r) => serve?.once('close', r));
    serve.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
    if (serve.exitCode === null && serve.signalCode === null) serve.kill('SIGKILL');
  }
  netnsDown(NS);
  fs.rmSync(dir, { recursive: true, force: true });
});

it('a bad record and more data after the handshake: the kernel-side client reads unexpected_message', async () => {
  const out = await new Promise<string>((resolve) =>
    execFile(
      'ip',
      ['netns', 'exec', NS, TSX, path.join(dir, 'client.ts'), ca],
      { cwd: root, timeout: 20_000 },
      (_e, stdout, stderr) => resolve(`${stdout}${stderr}`),
    ),
  );
  const line = out.split('\n').find((l) => l.startsWith('{'));
  expect(line, out).toBeDefined();
  expect(JSON.parse(line ?? '{}')).toEqual({
    alert: 'unexpected_message',
    sentByUs: false,
    code: 'ERR_SSL_SSLV3_ALERT_UNEXPECTED_MESSAGE',
  });
});
