/**
 * `stepwire serve --tun` answers each client with the certificate its signature_algorithms
 * can verify (issue #12): `openssl s_client -sigalgs rsa_pss_rsae_sha256` gets the RSA leaf,
 * `-sigalgs ed25519` the Ed25519 leaf, `-sigalgs ecdsa_secp256r1_sha256` the ECDSA leaf, each
 * verified against serve's CA, from inside the test's own network namespace (198.18.0.0/15).
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { netnsDown } from '@stepwire/link';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requireRootAndPrograms, waitForLine } from '../packages/cli/src/tun/kernel.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(root, 'packages/cli/bin/stepwire.js');
const NS = `sw-tls-sigalgs-${process.pid}`;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sw-tls-sigalgs-'));
let serve: ChildProcess | undefined;
let ca = '';

beforeAll(async () => {
  requireRootAndPrograms(['ip', 'openssl']);
  netnsDown(NS);
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

/** openssl s_client inside the namespace; stdin closed at once (it sends close_notify and exits). */
function sClient(args: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = execFile(
      'ip',
      ['netns', 'exec', NS, 'openssl', 's_client', '-connect', '198.18.0.2:443', ...args],
      { timeout: 15_000 },
      (_err, stdout, stderr) => resolve(`${stdout}\n${stderr}`),
    );
    child.stdin?.end();
  });
}

describe('stepwire serve --tun: HTTPS picks the certificate by signature_algorithms', () => {
  it.each([
    ['rsa_pss_rsae_sha256', /Peer signature type: RSA-PSS/, /a:PKEY: rsaEncryption, 2048/],
    ['ed25519', /Peer signature type: ed25519/i, /a:PKEY: ED25519/],
    ['ecdsa_secp256r1_sha256', /Peer signature type: ECDSA/, /a:PKEY: id-ecPublicKey, 256/],
  ])('openssl s_client -sigalgs %s', async (sigalgs, signature, key) => {
    const out = await sClient([
      '-tls1_3',
      '-servername',
      'stepwire.test',
      '-verify_hostname',
      'stepwire.test',
      '-CAfile',
      ca,
      '-verify_return_error',
      '-sigalgs',
      sigalgs,
    ]);
    expect(out).toMatch(/Verify return code: 0 \(ok\)/);
    expect(out).toMatch(signature);
    expect(out).toMatch(key);
  });
});
