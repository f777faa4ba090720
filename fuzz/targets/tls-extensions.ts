/**
 * TLS 1.3 extension blocks (RFC 8446 §4.2) in each message that carries them: the first byte
 * picks the context, the rest is the block with its 2-byte length.
 */
import { type ExtensionContext, readExtensions } from '../../packages/tls/src/codec/extensions.ts';
import { ByteReader } from '../../packages/wire/src/bytes.ts';
import { only } from './expect.ts';

const CONTEXTS: ExtensionContext[] = [
  'client_hello',
  'server_hello',
  'hello_retry_request',
  'encrypted_extensions',
  'certificate_request',
  'certificate',
  'new_session_ticket',
];

export function fuzz(data: Uint8Array): void {
  if (data.length === 0) return;
  const ctx = CONTEXTS[data[0]! % CONTEXTS.length]!;
  only(() => readExtensions(new ByteReader(data.subarray(1), 'tls'), ctx));
}
