/** TLS 1.3 record layer codecs (RFC 8446 §5): header, TLSPlaintext, TLSCiphertext, TLSInnerPlaintext, alerts. */
import { decodeAlert } from '../../packages/tls/src/codec/alert.ts';
import {
  decodeRecordHeader,
  decodeTLSCiphertext,
  decodeTLSInnerPlaintext,
  decodeTLSPlaintext,
  encodeTLSPlaintext,
} from '../../packages/tls/src/codec/record.ts';
import { only, reencodes } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeRecordHeader(data));
  reencodes('TLSPlaintext', data, (b) => decodeTLSPlaintext(b), encodeTLSPlaintext);
  only(() => decodeTLSCiphertext(data));
  only(() => decodeTLSInnerPlaintext(data));
  only(() => decodeAlert(data));
}
