export { nobleCrypto } from './noble.ts';
export { nodeCrypto } from './node.ts';
export {
  AEAD_KEY_LENGTH,
  AEAD_NONCE_LENGTH,
  AEAD_TAG_LENGTH,
  type Aead,
  type AeadName,
  type CryptoProvider,
  type GroupName,
  HASH_LENGTH,
  type HashName,
  type KeyPair,
  KeyShareError,
  PUBLIC_KEY_LENGTH,
} from './provider.ts';
