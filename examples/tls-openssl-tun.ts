/**
 * Our TLS 1.3 client, on our TCP, on a Linux TUN device, against OpenSSL's s_server.
 *
 * The example makes a network namespace holding the kernel side of a TUN device
 * (198.18.0.1, RFC 2544's benchmarking range), starts `openssl s_server -www` inside it,
 * and connects from our stack (198.18.0.2) with our TLS client, checking OpenSSL's
 * certificate against a CA made for the run. Everything runs on the real clock; the
 * network holds the process open while our sockets are busy. The namespace is removed at
 * the end, and also if the program fails or is interrupted. Root only.
 *
 *   sudo pnpm example tls-openssl-tun
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetwork } from '@stepwire/sim';
import { pki } from '@stepwire/tls';

if (process.getuid?.() !== 0) {
  console.error('tls-openssl-tun: needs root (it makes a network namespace and a TUN device)');
  process.exit(1);
}

const net = createNetwork({ clock: 'real', trace: (line) => console.log(line) });
const dir = mkdtempSync(join(tmpdir(), 'stepwire-example-'));
try {
  const me = net.tun('stepwire', { netns: `sw-example-${process.pid}` });
  console.log(`our stack ${me.ipv4}, the kernel ${me.kernel.v4} in namespace ${me.netns.name}`);

  // A CA and a certificate for OpenSSL (stepwire.test, 198.18.0.x), valid from an hour ago.
  const { ca, leaf } = pki.createStepwireCredentials(new Date(Date.now() - 3600_000));
  writeFileSync(join(dir, 'cert.pem'), leaf.certificatePem);
  writeFileSync(join(dir, 'key.pem'), leaf.privateKeyPem);

  const server = me.netns.spawn('openssl', [
    's_server',
    '-accept',
    '4433',
    '-tls1_3',
    '-www',
    '-naccept',
    '1',
    '-cert',
    join(dir, 'cert.pem'),
    '-key',
    join(dir, 'key.pem'),
  ]);
  // s_server says ACCEPT once it listens.
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on('data', (d: Buffer) => d.toString().includes('ACCEPT') && resolve());
    server.once('exit', (code) => reject(new Error(`openssl s_server exited with ${code}`)));
  });

  const tls = me.tls.connect({
    host: me.kernel.v4,
    port: 4433,
    servername: 'stepwire.test',
    ca: ca.certificatePem,
  });
  const page = await new Promise<string>((resolve, reject) => {
    let text = '';
    tls.on('secureConnect', () => tls.write('GET / HTTP/1.0\r\n\r\n'));
    tls.on('data', (d: Buffer) => (text += d));
    tls.on('end', () => resolve(text));
    tls.on('error', reject);
  });
  console.log(`verified OpenSSL's certificate: ${tls.authorized}, cipher ${tls.getCipher?.()?.name ?? '?'}`);
  // s_server -www answers with an HTML page describing the session it negotiated.
  const cipherLine = page.split('\n').find((l) => l.includes('Cipher is'));
  console.log(`OpenSSL says: ${page.split('\r\n')[0]}; ${cipherLine?.trim() ?? '(no cipher line)'}`);
} finally {
  net.close(); // removes the namespace and its device
  rmSync(dir, { recursive: true, force: true });
}
