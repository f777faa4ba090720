/**
 * A property test of your own code, using stepwire's codecs and fast-check arbitraries.
 *
 * Say you write a router's forwarding step: decrement the TTL and patch the header checksum
 * incrementally (RFC 1624) instead of summing the header again. Two properties pin it down
 * for every IPv4 packet @stepwire/ip/testing can generate (options, fragments, any payload):
 *  1. it equals re-encoding the decoded packet with ttl - 1 (our encoder is the oracle);
 *  2. on arbitrary bytes it never crashes: it forwards, or refuses with a ParseError.
 * Each run prints its seed; pass `--seed N` to replay a failure exactly.
 *
 *   pnpm example property-test [--seed N]
 */
import { decodeIpv4, encodeIpv4 } from '@stepwire/ip';
import { arbitraryIpv4Packet } from '@stepwire/ip/testing';
import { ParseError, updateChecksum } from '@stepwire/wire';
import fc from 'fast-check';

/** The code under test: TTL − 1 with an RFC 1624 incremental checksum update; null when TTL runs out. */
export function forward(packet: Uint8Array): Uint8Array | null {
  decodeIpv4(packet); // refuse what is not a valid IPv4 packet (throws ParseError)
  const ttl = packet[8] ?? 0;
  if (ttl <= 1) return null; // RFC 791: the datagram is discarded (and ICMP Time Exceeded sent)
  const out = packet.slice();
  // TTL and protocol share one 16-bit word of the header (bytes 8–9).
  const oldWord = (ttl << 8) | (packet[9] ?? 0);
  const newWord = ((ttl - 1) << 8) | (packet[9] ?? 0);
  const sum = updateChecksum(((packet[10] ?? 0) << 8) | (packet[11] ?? 0), oldWord, newWord);
  out[8] = ttl - 1;
  out[10] = sum >> 8;
  out[11] = sum & 0xff;
  return out;
}

const seedArg = process.argv.indexOf('--seed');
const seed = seedArg > 0 ? Number(process.argv[seedArg + 1]) : Date.now() % 2 ** 31;
const params = { seed, numRuns: 500 };
console.log(`seed ${seed}`);

// 1. The incremental update agrees with a full re-encode, for every packet.
fc.assert(
  fc.property(arbitraryIpv4Packet(64), (p) => {
    const bytes = encodeIpv4(p);
    const forwarded = forward(bytes);
    if (p.ttl <= 1) return forwarded === null;
    const expected = encodeIpv4({ ...p, ttl: p.ttl - 1 });
    // decodeIpv4 verifies the header checksum: a wrong patch throws here.
    return (
      forwarded !== null && Buffer.from(forwarded).equals(expected) && decodeIpv4(forwarded).ttl === p.ttl - 1
    );
  }),
  params,
);
console.log('ok: forward() matches a full re-encode (500 packets)');

// 2. Hostile input: forward() returns or throws ParseError, nothing else.
fc.assert(
  fc.property(fc.uint8Array({ maxLength: 80 }), (bytes) => {
    try {
      forward(bytes);
    } catch (e) {
      if (!(e instanceof ParseError)) throw e;
    }
  }),
  params,
);
console.log('ok: forward() never crashes on arbitrary bytes (500 inputs)');
