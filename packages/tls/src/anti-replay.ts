/**
 * 0-RTT anti-replay (RFC 8446 §8): a strike register the server asks, once per ClientHello
 * that offers early data, whether its PSK binder was seen before. 0-RTT data is taken only
 * the first time (§8.2, "single-use tickets" generalised to binders); any other answer makes
 * the server refuse the early data and carry on with a 1-RTT handshake, which is always safe.
 *
 * `AntiReplayCache` (server.ts) keeps the register in memory: a restart forgets it, and two
 * server processes behind one address each have their own, so a ClientHello recorded on the
 * wire can be replayed into the other process, or into the same one after a restart, while
 * its ticket is still good. `FileAntiReplayStore` keeps it in files that every instance on
 * the host reads, so a replay is refused across restarts and processes for as long as the
 * ticket lives.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  fstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { Counters } from '@stepwire/wire';

/** What a TLS server asks before it takes 0-RTT data (RFC 8446 §8). */
export interface AntiReplayStore {
  /**
   * True exactly once per `key` (the PSK binder, in hex) while `expiresAt` (ms, the ticket's
   * end of life) has not passed; false for a key seen before, and false whenever the store
   * cannot be sure (full, unreadable): a refusal only costs the client a round trip.
   */
  firstUse(key: string, expiresAt: number, now: number): boolean;
}

export interface FileAntiReplayOptions {
  /** Entries a segment may hold; past that, new keys for its period are refused. Default 100 000. */
  maxEntriesPerSegment?: number;
  /** The period of ticket expiry times one segment file covers (ms). Default one hour. */
  segmentMs?: number;
  /**
   * How long after the last expiry in a segment it is deleted (ms): processes whose clocks
   * differ by less than this agree on what has expired. Default one minute.
   */
  clockSkewMs?: number;
}

/**
 * One log entry, 32 bytes: a 2-byte mark (so a misaligned file is noticed, not misread),
 * 14 bytes of SHA-256 of the key (a collision only refuses 0-RTT), the expiry as a float64,
 * and the id of the instance that wrote it (which tells an instance where its own append
 * landed among the others').
 */
const ENTRY = 32;
const MARK = [0x41, 0x52] as const; // 'AR'
const DIGEST = 14;
const SEGMENT_NAME = /^strike-(\d+)\.log$/;

interface Segment {
  readonly index: number;
  readonly fd: number;
  /** File offset up to which entries are in `keys`. */
  read: number;
  readonly keys: Set<string>;
  /** A torn or foreign entry was found: every key of this period is refused from now on. */
  broken: boolean;
}

/**
 * A strike register as an append-only log on disk, shared by every instance that opens the
 * same directory, one after the other or at once, in one process or several.
 *
 * Entries are filed by their ticket's expiry into one segment per `segmentMs`; a replayed
 * ClientHello carries the same binder for the same ticket, so it lands in the same segment.
 * A whole segment is deleted once every ticket in it has expired (RFC 8446 §8: the register
 * need only cover the window in which a ClientHello would be accepted), so the log is
 * pruned without rewriting anything a concurrent writer could be appending to, and it is
 * bounded: at most `maxEntriesPerSegment` entries per segment, and as many live segments as
 * a ticket lifetime (7 days at most, §4.6.1) spans.
 *
 * A check reads what other instances appended since its last look, and a new key is appended
 * with O_APPEND, whose writes land whole and in one order for every reader; the instance then
 * reads up to its own entry: if the same key appears before it, another instance won, and the
 * answer is false. So among concurrent instances exactly the first append in the file is
 * accepted. The I/O is synchronous (the TLS machine is sans-I/O and asks synchronously) and
 * happens only for ClientHellos that offer 0-RTT with a valid ticket.
 */
export class FileAntiReplayStore implements AntiReplayStore {
  readonly counters = new Counters();
  private readonly maxEntries: number;
  private readonly segmentMs: number;
  private readonly clockSkewMs: number;
  private readonly writer = randomBytes(8);
  private readonly segments = new Map<number, Segment>();
  private nextPrune = 0;

  constructor(
    readonly directory: string,
    options: FileAntiReplayOptions = {},
  ) {
    this.maxEntries = options.maxEntriesPerSegment ?? 100_000;
    this.segmentMs = options.segmentMs ?? 3_600_000;
    this.clockSkewMs = options.clockSkewMs ?? 60_000;
    mkdirSync(directory, { recursive: true, mode: 0o700 });
  }

  firstUse(key: string, expiresAt: number, now: number): boolean {
    if (!(expiresAt >= now)) {
      this.counters.inc('anti-replay.expired');
      return false;
    }
    try {
      this.prune(now);
      const seg = this.segment(Math.floor(expiresAt / this.segmentMs));
      this.catchUp(seg);
      const digest = keyDigest(key);
      const id = hexOf(digest);
      if (seg.broken) return this.refuse('anti-replay.broken-segment');
      if (seg.keys.has(id)) return this.refuse('anti-replay.replayed');
      if (seg.keys.size >= this.maxEntries) return this.refuse('anti-replay.full');
      // A file length that is not a whole number of entries: a writer died mid-entry, and
      // what follows would be misaligned. Refuse rather than guess.
      if (fstatSync(seg.fd).size % ENTRY !== 0) {
        seg.broken = true;
        return this.refuse('anti-replay.broken-segment');
      }
      const entry = new Uint8Array(ENTRY);
      entry[0] = MARK[0];
      entry[1] = MARK[1];
      entry.set(digest, 2);
      new DataView(entry.buffer).setFloat64(2 + DIGEST, expiresAt);
      entry.set(this.writer, 2 + DIGEST + 8);
      if (writeSync(seg.fd, entry) !== ENTRY) {
        seg.broken = true;
        return this.refuse('anti-replay.write-failed');
      }
      // Read up to our own entry: an earlier entry with this key (another instance's) wins.
      const won = this.catchUp(seg, id);
      if (!won) return this.refuse('anti-replay.replayed');
      this.counters.inc('anti-replay.accepted');
      return true;
    } catch {
      // The directory vanished, a permission changed, the disk is full: no 0-RTT, no crash.
      return this.refuse('anti-replay.io-error');
    }
  }

  /** Close the files (the log stays for the next instance). */
  close(): void {
    for (const s of this.segments.values()) closeSync(s.fd);
    this.segments.clear();
  }

  private refuse(counter: string): false {
    this.counters.inc(counter);
    return false;
  }

  private segment(index: number): Segment {
    let s = this.segments.get(index);
    if (!s) {
      // 'a': O_APPEND | O_CREAT; reads use explicit positions, so one descriptor serves both.
      const fd = openSync(join(this.directory, `strike-${index}.log`), 'a+', 0o600);
      s = { index, fd, read: 0, keys: new Set(), broken: false };
      this.segments.set(index, s);
    }
    return s;
  }

  /**
   * Read the whole entries appended since the last look. With `mine`, stop at this instance's
   * entry for that key and say whether it is the first entry for the key; an entry not found
   * (the segment was deleted under us) counts as lost.
   */
  private catchUp(seg: Segment, mine?: string): boolean {
    const size = fstatSync(seg.fd).size;
    const whole = size - ((size - seg.read) % ENTRY);
    const bytes = whole - seg.read;
    if (bytes <= 0) return mine === undefined;
    // Bounded: a segment never holds more than maxEntries entries we take (plus a few racing).
    const cap = (this.maxEntries + 1024) * ENTRY;
    const buf = new Uint8Array(Math.min(bytes, cap));
    const n = readSync(seg.fd, buf, 0, buf.length, seg.read);
    let firstForMine = true;
    for (let at = 0; at + ENTRY <= n; at += ENTRY) {
      seg.read += ENTRY;
      if (buf[at] !== MARK[0] || buf[at + 1] !== MARK[1]) {
        seg.broken = true;
        return false;
      }
      const id = hexOf(buf.subarray(at + 2, at + 2 + DIGEST));
      if (mine !== undefined && id === mine) {
        const w = buf.subarray(at + 2 + DIGEST + 8, at + ENTRY);
        if (equal(w, this.writer)) {
          const first = firstForMine && !seg.keys.has(id);
          seg.keys.add(id);
          return first;
        }
        firstForMine = false;
      }
      seg.keys.add(id);
    }
    return mine === undefined;
  }

  /** Delete segments whose every ticket has expired (at most once per minute). */
  private prune(now: number): void {
    if (now < this.nextPrune) return;
    this.nextPrune = now + 60_000;
    for (const name of readdirSync(this.directory)) {
      const m = SEGMENT_NAME.exec(name);
      if (!m) continue;
      const index = Number(m[1]);
      if ((index + 1) * this.segmentMs + this.clockSkewMs >= now) continue;
      const open = this.segments.get(index);
      if (open) {
        closeSync(open.fd);
        this.segments.delete(index);
      }
      try {
        unlinkSync(join(this.directory, name));
        this.counters.inc('anti-replay.pruned');
      } catch {
        // Another instance deleted it first.
      }
    }
  }

  /** Bytes on disk, for stats and tests. */
  get diskBytes(): number {
    let n = 0;
    for (const name of readdirSync(this.directory))
      if (SEGMENT_NAME.test(name)) n += statSync(join(this.directory, name)).size;
    return n;
  }
}

function keyDigest(key: string): Uint8Array {
  const d = createHash('sha256').update(key).digest();
  return new Uint8Array(d.buffer, d.byteOffset, DIGEST);
}

function hexOf(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex');
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
