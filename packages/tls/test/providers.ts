import { type CryptoProvider, nobleCrypto, nodeCrypto } from '../src/crypto/index.ts';

/** Every crypto-dependent test runs once per provider (describe.each over this list). */
export const PROVIDERS: readonly CryptoProvider[] = [nobleCrypto, nodeCrypto];
