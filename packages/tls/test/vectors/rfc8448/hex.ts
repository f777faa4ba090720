import { fromHex } from '@stepwire/wire';

/** Hex as the RFC prints it (spaces and line breaks allowed) to bytes. */
export const h = (s: string): Uint8Array => fromHex(s);
