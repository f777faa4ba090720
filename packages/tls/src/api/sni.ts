/**
 * The server_name (RFC 6066 §3) of a ClientHello read from the first cleartext records, so an
 * asynchronous SNICallback can choose certificates before the machine sees the hello.
 */
import { ContentType, HandshakeType } from '../codec/common.ts';
import { decodeHandshake } from '../codec/handshake.ts';

/**
 * The server_name in the ClientHello at the start of `held` (cleartext handshake records),
 * 'incomplete' while more bytes are needed, undefined when there is none or the bytes are not
 * a ClientHello (the machine then answers them as it should).
 */
export function peekServerName(held: readonly Uint8Array[]): string | undefined | 'incomplete' {
  const all = Buffer.concat(held);
  const body: Buffer[] = [];
  let at = 0;
  let have = 0;
  while (all.length - at >= 5) {
    if (all[at] !== ContentType.handshake) return undefined;
    const len = all.readUInt16BE(at + 3);
    if (all.length - at < 5 + len) break;
    body.push(all.subarray(at + 5, at + 5 + len));
    have += len;
    at += 5 + len;
    const msg = Buffer.concat(body);
    if (msg.length >= 4) {
      if (msg[0] !== HandshakeType.client_hello) return undefined;
      const need = 4 + msg.readUIntBE(1, 3);
      if (have >= need) {
        try {
          const ch = decodeHandshake(new Uint8Array(msg.subarray(0, need)));
          if (ch.msgType !== 'client_hello') return undefined;
          const sni = ch.extensions.find((e) => e.type === 'server_name');
          return sni && 'hostName' in sni ? sni.hostName : undefined;
        } catch {
          return undefined;
        }
      }
    }
  }
  // A ClientHello is at most 2^24 bytes, but we hold no more than 64 KiB waiting for one.
  return all.length > 1 << 16 ? undefined : 'incomplete';
}
