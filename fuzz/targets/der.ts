/** DER (X.690) as our ASN.1 reader takes it: any tree, INTEGER and OBJECT IDENTIFIER bodies. */
import { decodeAsn1, decodeInteger, decodeOid } from '../../packages/tls/src/pki/der.ts';
import { only } from './expect.ts';

export function fuzz(data: Uint8Array): void {
  only(() => decodeAsn1(data));
  only(() => decodeInteger(data));
  only(() => decodeOid(data));
}
