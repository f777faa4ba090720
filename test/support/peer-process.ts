/**
 * Running a peer program for an interop test: a hard time limit (the process is killed by its
 * PID, never by name), stdout and stderr collected, optional stdin; and a throwaway
 * self-signed certificate made by OpenSSL for peers that need one.
 */
import { execFileSync, spawn } from 'node:child_process';
import { join } from 'node:path';

export interface PeerRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function runPeer(cmd: string, args: string[], timeoutMs = 20_000, input?: string): Promise<PeerRun> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
    });
    const t = setTimeout(() => {
      if (p.pid) process.kill(p.pid, 'SIGKILL');
    }, timeoutMs);
    p.on('error', (e) => {
      clearTimeout(t);
      reject(new Error(`${cmd} could not run (${e.message}); scripts/install-peers.sh installs it`));
    });
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) p.stdin.end(input);
    else p.stdin.end();
  });
}

/** A P-256 self-signed certificate for `cn` (also its DNS name), valid one day: `{ key, cert }` PEM paths in `dir`. */
export function selfSignedCertificate(dir: string, cn = 'stepwire.test'): { key: string; cert: string } {
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=DNS:${cn}`,
      '-days',
      '1',
    ],
    { stdio: 'ignore' },
  );
  return { key, cert };
}
