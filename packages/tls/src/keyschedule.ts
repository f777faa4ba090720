/**
 * The TLS 1.3 key schedule (RFC 8446 §7): HKDF-Expand-Label, Derive-Secret, the chain
 * early -> handshake -> master secret, the secrets derived from each, traffic keys,
 * Finished, PSK binders, resumption, exporters and key update; plus the transcript hash
 * with its HelloRetryRequest rewrite (§4.4.1).
 */
import { concatBytes, utf8 } from '@stepwire/wire';
import { CipherSuite, HandshakeType } from './codec/common.ts';
import {
  AEAD_KEY_LENGTH,
  AEAD_NONCE_LENGTH,
  type AeadName,
  type CryptoProvider,
  HASH_LENGTH,
  type HashName,
  type RunningHash,
} from './crypto/provider.ts';

/** What a cipher suite means to the key schedule and record layer (RFC 8446 §B.4). */
export interface CipherSuiteParams {
  id: number;
  name: string;
  hash: HashName;
  aead: AeadName;
  hashLength: number;
  keyLength: number;
  ivLength: number;
}

function suite(id: number, name: string, hash: HashName, aead: AeadName): CipherSuiteParams {
  return {
    id,
    name,
    hash,
    aead,
    hashLength: HASH_LENGTH[hash],
    keyLength: AEAD_KEY_LENGTH[aead],
    ivLength: AEAD_NONCE_LENGTH,
  };
}

export const CIPHER_SUITES: ReadonlyMap<number, CipherSuiteParams> = new Map(
  [
    suite(CipherSuite.TLS_AES_128_GCM_SHA256, 'TLS_AES_128_GCM_SHA256', 'sha256', 'AES_128_GCM'),
    suite(CipherSuite.TLS_AES_256_GCM_SHA384, 'TLS_AES_256_GCM_SHA384', 'sha384', 'AES_256_GCM'),
    suite(
      CipherSuite.TLS_CHACHA20_POLY1305_SHA256,
      'TLS_CHACHA20_POLY1305_SHA256',
      'sha256',
      'CHACHA20_POLY1305',
    ),
  ].map((s) => [s.id, s]),
);

export function cipherSuite(id: number): CipherSuiteParams {
  const s = CIPHER_SUITES.get(id);
  if (!s) throw new RangeError(`unsupported cipher suite 0x${id.toString(16)}`);
  return s;
}

/** "tls13 " + Label, per label: the schedule uses a dozen labels, over and over. */
const fullLabels = new Map<string, Uint8Array>();

function fullLabel(label: string): Uint8Array {
  let l = fullLabels.get(label);
  if (!l) {
    l = utf8(`tls13 ${label}`);
    // opaque label<7..255> = "tls13 " + Label.
    if (l.length > 255) throw new RangeError('HkdfLabel field too long');
    if (fullLabels.size < 64) fullLabels.set(label, l);
  }
  return l;
}

/** The HkdfLabel structure of RFC 8446 §7.1, exposed so traces and tests can show the `info`. */
export function hkdfLabel(label: string, context: Uint8Array, length: number): Uint8Array {
  const l = fullLabel(label);
  // opaque context<0..255>.
  if (context.length > 255) throw new RangeError('HkdfLabel field too long');
  // struct { uint16 length; opaque label<7..255>; opaque context<0..255>; } HkdfLabel.
  const out = new Uint8Array(4 + l.length + context.length);
  out[0] = length >> 8;
  out[1] = length & 0xff;
  out[2] = l.length;
  out.set(l, 3);
  out[3 + l.length] = context.length;
  out.set(context, 4 + l.length);
  return out;
}

/** HKDF-Expand-Label(Secret, Label, Context, Length) (RFC 8446 §7.1). */
export function hkdfExpandLabel(
  c: CryptoProvider,
  hash: HashName,
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  return c.hkdfExpand(hash, secret, hkdfLabel(label, context, length), length);
}

/**
 * Derive-Secret(Secret, Label, Messages) (RFC 8446 §7.1), taking Transcript-Hash(Messages)
 * already computed, since the transcript is hashed once and used for several labels.
 */
export function deriveSecret(
  c: CryptoProvider,
  hash: HashName,
  secret: Uint8Array,
  label: string,
  transcriptHash: Uint8Array,
): Uint8Array {
  return hkdfExpandLabel(c, hash, secret, label, transcriptHash, HASH_LENGTH[hash]);
}

/** Traffic keying material for one direction (RFC 8446 §7.3). */
export interface TrafficKeys {
  key: Uint8Array;
  iv: Uint8Array;
}

export function trafficKeys(c: CryptoProvider, s: CipherSuiteParams, trafficSecret: Uint8Array): TrafficKeys {
  return {
    key: hkdfExpandLabel(c, s.hash, trafficSecret, 'key', new Uint8Array(0), s.keyLength),
    iv: hkdfExpandLabel(c, s.hash, trafficSecret, 'iv', new Uint8Array(0), s.ivLength),
  };
}

/** finished_key = HKDF-Expand-Label(BaseKey, "finished", "", Hash.length) (RFC 8446 §4.4.4). */
export function finishedKey(c: CryptoProvider, hash: HashName, baseKey: Uint8Array): Uint8Array {
  return hkdfExpandLabel(c, hash, baseKey, 'finished', new Uint8Array(0), HASH_LENGTH[hash]);
}

/** verify_data = HMAC(finished_key, Transcript-Hash(...)) (RFC 8446 §4.4.4); binders use the same (§4.2.11.2). */
export function finishedVerifyData(
  c: CryptoProvider,
  hash: HashName,
  baseKey: Uint8Array,
  transcriptHash: Uint8Array,
): Uint8Array {
  return c.hmac(hash, finishedKey(c, hash, baseKey), transcriptHash);
}

/** application_traffic_secret_N+1 (RFC 8446 §7.2). */
export function nextTrafficSecret(c: CryptoProvider, hash: HashName, secret: Uint8Array): Uint8Array {
  return hkdfExpandLabel(c, hash, secret, 'traffic upd', new Uint8Array(0), HASH_LENGTH[hash]);
}

/** The PSK a ticket stands for: HKDF-Expand-Label(resumption_master_secret, "resumption", ticket_nonce, Hash.length) (RFC 8446 §4.6.1). */
export function resumptionPsk(
  c: CryptoProvider,
  hash: HashName,
  resumptionMasterSecret: Uint8Array,
  ticketNonce: Uint8Array,
): Uint8Array {
  return hkdfExpandLabel(c, hash, resumptionMasterSecret, 'resumption', ticketNonce, HASH_LENGTH[hash]);
}

/** TLS-Exporter(label, context_value, key_length) (RFC 8446 §7.5) over an (early_)exporter_master_secret. */
export function exportKeyingMaterial(
  c: CryptoProvider,
  hash: HashName,
  exporterSecret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  const empty = c.hash(hash, new Uint8Array(0));
  const derived = deriveSecret(c, hash, exporterSecret, label, empty);
  return hkdfExpandLabel(c, hash, derived, 'exporter', c.hash(hash, context), length);
}

/**
 * The secret chain of RFC 8446 §7.1. Each stage is computed once, in order:
 * early (from the PSK or zeros), handshake (adding the (EC)DHE secret), master.
 * Every derived secret takes the transcript hash at the point the RFC names.
 */
export class KeySchedule {
  readonly hashLength: number;
  private readonly zeros: Uint8Array;
  private readonly emptyHash: Uint8Array;
  private early?: Uint8Array;
  private handshake?: Uint8Array;
  private master?: Uint8Array;

  constructor(
    readonly crypto: CryptoProvider,
    readonly hash: HashName,
  ) {
    this.hashLength = HASH_LENGTH[hash];
    this.zeros = new Uint8Array(this.hashLength);
    this.emptyHash = crypto.hash(hash, new Uint8Array(0));
  }

  private derive(secret: Uint8Array, label: string, th: Uint8Array): Uint8Array {
    return deriveSecret(this.crypto, this.hash, secret, label, th);
  }

  private need(s: Uint8Array | undefined, stage: string): Uint8Array {
    if (!s) throw new Error(`key schedule: ${stage} secret not computed yet`);
    return s;
  }

  /** Early Secret = HKDF-Extract(0, PSK), PSK = 0 when none (RFC 8446 §7.1). */
  deriveEarlySecret(psk?: Uint8Array): Uint8Array {
    this.early = this.crypto.hkdfExtract(this.hash, this.zeros, psk ?? this.zeros);
    return this.early;
  }
  get earlySecret(): Uint8Array {
    return this.need(this.early, 'early');
  }

  /** binder_key: "ext binder" for external PSKs, "res binder" for resumption (RFC 8446 §7.1). */
  binderKey(kind: 'external' | 'resumption'): Uint8Array {
    return this.derive(this.earlySecret, kind === 'external' ? 'ext binder' : 'res binder', this.emptyHash);
  }
  /** Transcript hash over the ClientHello. */
  clientEarlyTrafficSecret(chHash: Uint8Array): Uint8Array {
    return this.derive(this.earlySecret, 'c e traffic', chHash);
  }
  earlyExporterMasterSecret(chHash: Uint8Array): Uint8Array {
    return this.derive(this.earlySecret, 'e exp master', chHash);
  }

  /** Handshake Secret = HKDF-Extract(Derive-Secret(Early, "derived", ""), (EC)DHE) (RFC 8446 §7.1). */
  deriveHandshakeSecret(sharedSecret: Uint8Array | undefined): Uint8Array {
    const salt = this.derive(this.earlySecret, 'derived', this.emptyHash);
    // psk_ke mode has no (EC)DHE input: zeros of Hash.length stand in.
    this.handshake = this.crypto.hkdfExtract(this.hash, salt, sharedSecret ?? this.zeros);
    return this.handshake;
  }
  get handshakeSecret(): Uint8Array {
    return this.need(this.handshake, 'handshake');
  }
  /** Transcript hash over ClientHello...ServerHello. */
  clientHandshakeTrafficSecret(th: Uint8Array): Uint8Array {
    return this.derive(this.handshakeSecret, 'c hs traffic', th);
  }
  serverHandshakeTrafficSecret(th: Uint8Array): Uint8Array {
    return this.derive(this.handshakeSecret, 's hs traffic', th);
  }

  /** Master Secret = HKDF-Extract(Derive-Secret(Handshake, "derived", ""), 0) (RFC 8446 §7.1). */
  deriveMasterSecret(): Uint8Array {
    const salt = this.derive(this.handshakeSecret, 'derived', this.emptyHash);
    this.master = this.crypto.hkdfExtract(this.hash, salt, this.zeros);
    return this.master;
  }
  get masterSecret(): Uint8Array {
    return this.need(this.master, 'master');
  }
  /** Transcript hash over ClientHello...server Finished. */
  clientApplicationTrafficSecret0(th: Uint8Array): Uint8Array {
    return this.derive(this.masterSecret, 'c ap traffic', th);
  }
  serverApplicationTrafficSecret0(th: Uint8Array): Uint8Array {
    return this.derive(this.masterSecret, 's ap traffic', th);
  }
  exporterMasterSecret(th: Uint8Array): Uint8Array {
    return this.derive(this.masterSecret, 'exp master', th);
  }
  /** Transcript hash over ClientHello...client Finished. */
  resumptionMasterSecret(th: Uint8Array): Uint8Array {
    return this.derive(this.masterSecret, 'res master', th);
  }
}

/**
 * The handshake transcript (RFC 8446 §4.4.1). Messages are kept until the hash function is
 * known (the client sends ClientHello before the server picks a suite). The first hash taken
 * starts a running hash that every later message feeds, so each Transcript-Hash costs a copy
 * of the running state rather than a pass over every message so far.
 */
export class Transcript {
  private parts: Uint8Array[] = [];
  private length = 0;
  private joined?: Uint8Array;
  private running?: { crypto: CryptoProvider; alg: HashName; hash: RunningHash; fed: number };

  /** Append one whole handshake message (4-byte header included). */
  add(message: Uint8Array): void {
    this.parts.push(message);
    this.length += message.length;
    this.joined = undefined;
  }

  get bytes(): Uint8Array {
    if (!this.joined) this.joined = this.parts.length === 1 ? this.parts[0] : concatBytes(...this.parts);
    return this.joined ?? new Uint8Array(0);
  }

  get size(): number {
    return this.length;
  }

  hash(c: CryptoProvider, hash: HashName): Uint8Array {
    if (!c.runningHash) return c.hash(hash, this.bytes);
    let r = this.running;
    if (!r || r.crypto !== c || r.alg !== hash) {
      r = { crypto: c, alg: hash, hash: c.runningHash(hash), fed: 0 };
      this.running = r;
    }
    for (; r.fed < this.parts.length; r.fed++) r.hash.update(this.parts[r.fed] as Uint8Array);
    return r.hash.copy().digest();
  }

  /**
   * After a HelloRetryRequest the first ClientHello is replaced by the synthetic
   * message_hash message: handshake type 254, length Hash.length, body Hash(ClientHello1)
   * (RFC 8446 §4.4.1). Call with only ClientHello1 in the transcript, before adding the HRR.
   */
  replaceWithMessageHash(c: CryptoProvider, hash: HashName): void {
    const h = this.hash(c, hash);
    const m = new Uint8Array(4 + h.length);
    m[0] = HandshakeType.message_hash;
    m[3] = h.length;
    m.set(h, 4);
    this.parts = [m];
    this.length = m.length;
    this.joined = undefined;
    this.running = undefined;
  }
}
