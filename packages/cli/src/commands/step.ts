import { spawnSync } from 'node:child_process';
import { readSync } from 'node:fs';
import { isatty } from 'node:tty';
import { formatLadderLine, formatTree, type LadderLine, packetTree } from '@stepwire/sim';

/**
 * `stepwire demo --step`: stop at every ladder line, show the packet as a layer tree (each
 * field's offset, bytes, meaning and RFC section) or the event's RFC rule, and wait for a
 * key. The wait is synchronous, inside the stack's own callback: on the virtual clock
 * nothing else can happen meanwhile, exactly as under a debugger's breakpoint.
 */

export const STEP_PROMPT =
  '  ── ⏎/n next · k next of this connection · t next TCP · l next TLS · i next IP/ICMP · u next UDP · c continue · q quit';

/** Which layers a line belongs to, for "continue to the next event of a layer". */
function layersOf(l: LadderLine): Set<string> {
  if (l.kind === 'note') {
    const layer = l.layer ?? l.text.split(' ')[0] ?? '';
    return new Set([layer, ...(layer === 'ipv4' || layer === 'ipv6' || layer === 'icmp' ? ['ip'] : [])]);
  }
  const out = new Set<string>();
  if (!l.packet) return out;
  for (const t of packetTree(l.packet)) {
    out.add(t.layer);
    if (t.layer === 'ipv4' || t.layer === 'ipv6' || t.layer === 'icmp') out.add('ip');
  }
  return out;
}

const KEY_LAYERS: Record<string, string> = { t: 'tcp', l: 'tls', i: 'ip', u: 'udp' };

/**
 * The connection a packet belongs to, the same in both directions: 'tcp 198.18.0.1:57428
 * 198.18.0.2:7' with the two ends sorted. Undefined for packets without ports.
 */
function connectionOf(l: LadderLine): string | undefined {
  if (l.kind !== 'packet' || !l.packet) return undefined;
  const tree = packetTree(l.packet);
  const ip = tree.find((t) => t.layer === 'ipv4' || t.layer === 'ipv6');
  const transport = tree.find((t) => t.layer === 'tcp' || t.layer === 'udp');
  if (!ip || !transport) return undefined;
  const value = (layer: typeof ip, name: string) => layer.fields.find((f) => f.name === name)?.value ?? '';
  const ends = [
    `${value(ip, 'Source Address')}:${value(transport, 'Source Port')}`,
    `${value(ip, 'Destination Address')}:${value(transport, 'Destination Port')}`,
  ].sort();
  return `${transport.layer} ${ends.join(' ')}`;
}

export interface KeySource {
  /** The next key pressed (one character), or undefined when input has ended. */
  read(): string | undefined;
  close(): void;
}

/**
 * Keys from the terminal, one at a time (stty -icanon -echo, restored on close and exit);
 * from a pipe, one line at a time (its first character; an empty line is Enter).
 */
export function terminalKeys(): KeySource {
  const tty = isatty(0);
  let saved: string | undefined;
  if (tty) {
    saved = spawnSync('stty', ['-g'], {
      stdio: ['inherit', 'pipe', 'inherit'],
      encoding: 'utf8',
    }).stdout.trim();
    spawnSync('stty', ['-icanon', '-echo', 'min', '1'], { stdio: 'inherit' });
  }
  const restore = () => {
    if (saved) spawnSync('stty', [saved], { stdio: 'inherit' });
    saved = undefined;
  };
  process.once('exit', restore);
  const buf = Buffer.alloc(256);
  let pending = '';
  const chunk = (): string | undefined => {
    for (;;) {
      try {
        const n = readSync(0, buf, 0, buf.length, null);
        return n === 0 ? undefined : buf.toString('utf8', 0, n);
      } catch (e) {
        // A non-blocking stdin (someone opened process.stdin): wait a little and retry.
        if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
  };
  return {
    read() {
      if (tty) {
        const c = chunk();
        return c === undefined ? undefined : c[0];
      }
      while (!pending.includes('\n')) {
        const c = chunk();
        if (c === undefined) {
          if (pending === '') return undefined;
          pending += '\n';
        } else pending += c;
      }
      const at = pending.indexOf('\n');
      const line = pending.slice(0, at);
      pending = pending.slice(at + 1);
      return line[0] ?? '\n';
    },
    close: restore,
  };
}

export class Stepper {
  /** undefined: stop at every line; a layer: stop at its next line; 'end': never again. */
  private until: string | undefined;
  /** Set by 'k': stop only at the next packet of this connection. */
  private connection: string | undefined;

  constructor(
    private readonly print: (s: string) => void,
    private readonly keys: KeySource,
    private readonly quit: () => never,
  ) {}

  readonly onLine = (l: LadderLine): void => {
    this.print(formatLadderLine(l));
    if (this.until === 'end') return;
    if (this.until !== undefined && !layersOf(l).has(this.until)) return;
    if (this.connection !== undefined && connectionOf(l) !== this.connection) return;
    this.until = undefined;
    this.connection = undefined;
    if (l.kind === 'packet' && l.packet) {
      for (const line of formatTree(l.packet, packetTree(l.packet))) this.print(line);
    } else if (l.kind === 'note') {
      this.print(`    ${l.layer ?? 'event'} event on ${l.host}${l.rfc ? `  [${l.rfc}]` : ''}`);
    }
    this.print(STEP_PROMPT);
    for (;;) {
      const key = this.keys.read();
      if (key === undefined || key === 'c') {
        this.until = 'end';
        return;
      }
      if (key === 'q') {
        this.print('quit');
        this.keys.close();
        this.quit();
      }
      if (key === 'k') {
        const c = connectionOf(l);
        if (c) {
          this.connection = c;
          this.print(`  (continuing to the next packet of ${c})`);
          return;
        }
        this.print('  (k needs a TCP or UDP packet to follow: step to one first)');
        this.print(STEP_PROMPT);
        continue;
      }
      const layer = KEY_LAYERS[key];
      if (layer) {
        this.until = layer;
        this.print(`  (continuing to the next ${layer.toUpperCase()} event)`);
        return;
      }
      if (key === '\n' || key === '\r' || key === ' ' || key === 'n' || key === 's') return;
      // Any other key: ask again.
      this.print(STEP_PROMPT);
    }
  };
}
