/** Private keys in DER: PKCS #8 (RFC 5208/5958), SEC 1 EC keys (RFC 5915), PKCS #1 RSA keys (RFC 8017). */
import { decodePkcs1, decodePkcs8, decodeSec1 } from '../../packages/tls/src/pki/keys.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodePkcs8(data));
  only(() => decodeSec1(data));
  only(() => decodePkcs1(data));
}
